"""The function params form (showFunction): portal/forms.py and the /portal/ui/functions views."""

from __future__ import annotations

import base64
import json
import re
import uuid
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Api, connect_sandbox, database_config, new_session
from flask import Flask, request, session

from portal import ConnectPortal, forms
from portal.accounts import upsert_account
from portal.crypto import generate_key
from portal.demo import DemoStack
from portal.functions import validate_params

KITCHEN_YAML = """
slug: kitchen
title: Kitchen Sink
description: Every kind of parameter.
categories: [Testing]
docs_url: https://kitchen.example/docs
auth:
  type: api_key
  placement: {in: header, name: X-API-Key}
api:
  base_url: "https://kitchen.example/api"
functions:
  - name: kitchen-order
    title: Place an order
    description: Orders something.
    method: POST
    path: /orders
    params:
      type: object
      additionalProperties: false
      required: [dish, servings, size]
      properties:
        dish: {type: string, title: Dish name, minLength: 2, description: What to cook.}
        servings: {type: integer, minimum: 1, maximum: 12, default: 2}
        weight_kg: {type: number, exclusiveMinimum: 0}
        spicy: {type: boolean, default: true}
        gift_wrap: {type: boolean}
        size: {enum: [small, medium, large], default: medium}
        notes: {type: [string, "null"], maxLength: 1000}
        toppings: {type: array, items: {type: string}, description: Extra toppings.}
        delivery: {type: object}
        website: {type: string, format: uri}
    body: {dish: "{dish}"}
"""

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "count"],
    "properties": {
        "name": {"type": "string", "title": "Full name", "description": "Who it is."},
        "email": {"type": "string", "format": "email", "pattern": "^[^@\\s]+@[^@\\s]+$"},
        "count": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
        "ratio": {"type": "number", "maximum": 1.5},
        "active": {"type": "boolean"},
        "flag": {"type": "boolean", "default": False},
        "ref": {"type": ["string", "integer"], "minLength": 1},
        "contact": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "color": {"enum": ["red", "green", 7, None], "default": "green"},
        "mode": {"const": "fast"},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "meta": {"type": "object"},
        "anything": {},
        "nickname": {"type": ["string", "null"], "maxLength": 2000},
        "next_page": {"type": "string"},
        "sendAt": {"type": "string", "format": "date"},
    },
}


def b64(params: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(params).encode()).rstrip(b"=").decode()


# --------------------------------------------------------------------------- HTML helper


class Doc(HTMLParser):
    """Start tags with their attributes, and the text inside every element that has an id."""

    VOID = {"input", "img", "br", "meta", "link", "hr", "source", "col", "wbr", "area"}

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.texts: dict[str, str] = {}
        self._open: list[str | None] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag not in self.VOID:
            self._open.append(a.get("id"))
            if a.get("id"):
                self.texts.setdefault(a["id"], "")

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for element_id in self._open:
            if element_id:
                self.texts[element_id] += data

    def find(self, tag: str, **attrs: str) -> dict[str, str]:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, (tag, attrs, found)
        return found[0]

    def find_all(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            a
            for t, a in self.tags
            if t == tag and all(a.get(k.rstrip("_")) == v for k, v in attrs.items())
        ]

    def text(self, element_id: str) -> str:
        return " ".join(self.texts[element_id].split())


def field_error(doc: Doc, name: str) -> str:
    """The error text shown for control ``name``, checked to be wired to the control."""
    control = next(a for t, a in doc.tags if a.get("name") == name and t != "form")
    assert control.get("aria-invalid") == "true", control
    errors_id = f"{control['id']}-errors"
    assert errors_id in control.get("aria-describedby", "").split(), control
    return doc.text(errors_id)


def result_block(html: str) -> dict[str, Any]:
    match = re.search(
        r'<script type="application/json" id="portal-function-params">(.*?)</script>', html, re.S
    )
    assert match, "no result block"
    return json.loads(match.group(1))  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- fields_for


def test_fields_follow_schema_order_and_hide_the_cursor() -> None:
    names = [f.name for f in forms.fields_for(SCHEMA)]
    assert names == [n for n in SCHEMA["properties"] if n != "next_page"]
    assert forms.fields_for({"type": "object"}) == []


def test_field_for_each_type() -> None:
    f = {field.name: field for field in forms.fields_for(SCHEMA)}
    name = f["name"]
    assert (name.kind, name.widget, name.label, name.required) == (
        "string",
        "text",
        "Full name",
        True,
    )
    assert name.description == "Who it is." and not name.has_default
    assert (f["email"].widget, f["email"].label, f["email"].format) == ("email", "Email", "email")
    count = f["count"]
    assert (count.kind, count.widget, count.step, count.minimum, count.maximum) == (
        "integer",
        "number",
        "1",
        1,
        10,
    )
    assert count.required and count.has_default and count.default == 3
    assert (f["ratio"].kind, f["ratio"].step, f["ratio"].maximum) == ("number", "any", 1.5)
    assert (f["flag"].kind, f["flag"].widget, f["flag"].required) == ("boolean", "checkbox", False)
    color = f["color"]
    assert (color.kind, color.widget, color.default) == ("enum", "select", "green")
    assert [(o.value, o.label) for o in color.options] == [
        ('"red"', "red"),
        ('"green"', "green"),
        ("7", "7"),
        ("null", "null"),
    ]
    assert [o.label for o in f["mode"].options] == ["fast"]
    assert (f["tags"].kind, f["tags"].widget, f["tags"].hint) == (
        "json",
        "textarea",
        "A JSON array.",
    )
    assert (f["meta"].kind, f["meta"].types, f["meta"].hint) == (
        "json",
        ("object",),
        "A JSON object.",
    )
    assert (f["anything"].kind, f["anything"].types, f["anything"].hint) == ("json", (), "JSON.")
    assert (f["active"].kind, f["active"].widget) == ("enum", "select")  # optional, no default
    assert [(o.value, o.label) for o in f["active"].options] == [("true", "Yes"), ("false", "No")]
    assert (f["flag"].kind, f["flag"].widget) == ("boolean", "checkbox")
    assert (f["ref"].kind, f["ref"].widget, f["ref"].types) == (
        "json",
        "text",
        ("string", "integer"),
    )
    assert f["ref"].hint == ""
    assert (f["contact"].widget, f["contact"].types, f["contact"].hint) == (
        "textarea",
        ("string", "array"),
        "Text, or JSON.",
    )
    assert (f["nickname"].kind, f["nickname"].widget, f["nickname"].max_length) == (
        "string",
        "textarea",
        2000,
    )
    assert (f["sendAt"].widget, f["sendAt"].label) == ("date", "Send at")


def test_field_ids_are_unique_and_safe() -> None:
    fields = forms.fields_for(
        {"properties": {"a.b": {"type": "string"}, "a-b": {"type": "string"}, "x y": {}}}
    )
    ids = [f.id for f in fields]
    assert ids == ["portal-param-a-b", "portal-param-a-b-2", "portal-param-x-y"]
    assert fields[0].help_id == "portal-param-a-b-help"
    assert fields[0].errors_id == "portal-param-a-b-errors"


@pytest.mark.parametrize(
    ("name", "label"),
    [("first_name", "First name"), ("sendAt", "Send at"), ("api-key", "Api key"), ("x", "X")],
)
def test_labels_fall_back_to_the_humanised_name(name: str, label: str) -> None:
    assert forms.fields_for({"properties": {name: {"type": "string"}}})[0].label == label


# --------------------------------------------------------------------------- coerce


def test_coerce_gives_typed_values() -> None:
    fields = forms.fields_for(SCHEMA)
    params = forms.coerce(
        fields,
        {
            "name": " Ada ",
            "email": "",
            "count": " 7 ",
            "ratio": "0.25",
            "active": "false",
            "flag": "true",
            "ref": "x1",
            "contact": "ada@example.com",
            "color": "7",
            "mode": '"fast"',
            "tags": '["a", "b"]',
            "meta": '{"k": 1}',
            "anything": "42",
            "nickname": "",
            "next_page": "cursor-from-the-form",
        },
    )
    assert params == {
        "name": " Ada ",
        "count": 7,
        "ratio": 0.25,
        "active": False,
        "flag": True,
        "ref": "x1",
        "contact": "ada@example.com",
        "color": 7,
        "mode": "fast",
        "tags": ["a", "b"],
        "meta": {"k": 1},
        "anything": 42,
    }
    assert type(params["count"]) is int


@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [
        ("count", "abc", "abc"),
        ("count", "1.5", "1.5"),
        ("count", "-3", -3),
        ("ratio", "2", 2),
        ("ratio", "1e3", 1000.0),
        ("ratio", "nan", "nan"),
        ("ratio", "inf", "inf"),
        ("color", '"blue"', '"blue"'),
        ("color", "null", None),
        ("tags", "[1,", "[1,"),
        ("tags", "   ", None),
        ("active", "maybe", "maybe"),
        ("ref", "7", 7),
        ("ref", '"7"', "7"),
        ("contact", '["a"]', ["a"]),
    ],
)
def test_coerce_leaves_unreadable_values_to_the_validator(
    field: str, raw: str, expected: Any
) -> None:
    params = forms.coerce(forms.fields_for(SCHEMA), {field: raw})
    if raw.strip() == "" and field == "tags":
        assert field not in params
    else:
        assert params[field] == expected


def test_unchecked_checkbox_is_false_and_empty_inputs_are_left_out() -> None:
    empty = {"name": "", "count": "", "color": "", "active": "", "ref": "", "contact": ""}
    assert forms.coerce(forms.fields_for(SCHEMA), empty) == {"flag": False}


def test_coerced_form_is_checked_by_jsonschema(stack: DemoStack) -> None:
    function = stack.portal_app.extensions["portal"].catalog.function("sandbox-list-contacts")
    fields = forms.fields_for(function.params)
    assert validate_params(function, forms.coerce(fields, {"limit": "5"})) == []
    [detail] = validate_params(function, forms.coerce(fields, {"limit": "five"}))
    assert detail["field"] == "limit"


# --------------------------------------------------------------------------- shown values


def test_values_from_params_prefill_then_defaults() -> None:
    fields = forms.fields_for(SCHEMA)
    shown = forms.values_from_params(
        fields, {"name": "Ada", "count": 5, "tags": ["x"], "color": 7, "ratio": 0.5}
    )
    assert shown["name"] == "Ada"
    assert shown["count"] == "5"
    assert shown["ratio"] == "0.5"
    assert shown["tags"] == '[\n  "x"\n]'
    assert shown["color"] == "7"
    assert shown["flag"] is False and shown["active"] == ""
    assert shown["email"] == "" and shown["meta"] == ""
    defaults = forms.values_from_params(fields, {})
    assert (defaults["count"], defaults["color"]) == ("3", '"green"')
    prefilled = forms.values_from_params(fields, {"flag": True, "active": False, "ref": 7})
    assert (prefilled["flag"], prefilled["active"], prefilled["ref"]) == (True, "false", "7")


def test_values_from_form_show_what_was_typed() -> None:
    fields = forms.fields_for(SCHEMA)
    shown = forms.values_from_form(
        fields, {"count": "abc", "flag": "true", "active": "false", "tags": "[1,"}
    )
    assert (shown["count"], shown["flag"], shown["active"], shown["tags"], shown["name"]) == (
        "abc",
        True,
        "false",
        "[1,",
        "",
    )


# --------------------------------------------------------------------------- error messages


def test_field_errors_read_like_a_form() -> None:
    schema = {**SCHEMA, "additionalProperties": False}
    fields = forms.fields_for(schema)
    params = {
        "email": "nope",
        "count": 0,
        "ratio": 2,
        "color": "blue",
        "tags": [1],
        "meta": "[",
        "extra": 1,
    }

    class F:
        params = schema

    details = validate_params(F, params)  # type: ignore[arg-type]
    per_field, general = forms.field_errors(fields, params, details)
    assert per_field["name"] == ["This field is required."]
    assert per_field["email"] == ["Enter a valid e-mail address."]
    assert per_field["count"] == ["Enter 1 or more."]
    assert per_field["ratio"] == ["Enter 1.5 or less."]
    assert per_field["color"] == ["Choose one of the options."]
    assert per_field["tags"] == ["0: 1 is not of type 'string'"]
    assert per_field["meta"] == ["Enter a JSON object."]
    assert len(general) == 1 and "extra" in general[0]


def test_type_errors_name_the_expected_input() -> None:
    fields = forms.fields_for(SCHEMA)

    class F:
        params = SCHEMA

    params = forms.coerce(
        fields, {"name": "x", "count": "abc", "ratio": "x", "tags": "{", "ref": "1.5"}
    )
    per_field, _ = forms.field_errors(fields, params, validate_params(F, params))  # type: ignore[arg-type]
    assert per_field["count"] == ["Enter a whole number."]
    assert per_field["ratio"] == ["Enter a number."]
    assert per_field["tags"] == ["Enter a JSON array."]
    assert per_field["ref"] == ["Enter text or a whole number."]


# --------------------------------------------------------------------------- ?params=


def test_params_round_trip_through_base64url() -> None:
    params = {"name": "Zoë 🚀", "n": 1, "list": [True, None]}
    encoded = forms.encode_params(params)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", encoded)
    assert forms.decode_params(encoded) == params
    assert forms.decode_params(b64(params)) == params
    padded = base64.urlsafe_b64encode(json.dumps(params).encode()).decode()
    assert forms.decode_params(padded) == params
    assert forms.decode_params(None) == {} and forms.decode_params("") == {}


@pytest.mark.parametrize(
    "encoded",
    [
        "!!!",
        "abc",  # not a whole number of bytes' worth
        b64([1, 2]),  # JSON, but not an object
        base64.b64encode(b'{"a": "??>"}').decode(),  # standard alphabet: '+' or '/'
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "A" * (forms.MAX_ENCODED_PARAMS + 4),
    ],
)
def test_malformed_params_are_refused(encoded: str) -> None:
    assert forms.decode_params(encoded) is None


# --------------------------------------------------------------------------- live stack


def ui(stack: DemoStack, name: str) -> str:
    return f"{stack.portal.url}/portal/ui/functions/{name}"


@pytest.fixture
def connected(stack: DemoStack, sandbox: str, api: Api) -> str:
    """``api``'s user with one sandbox account, connected through the real OAuth flow."""
    callback, _ = connect_sandbox(api)
    assert callback.status_code == 200, callback.text[:500]
    [account] = api.get("/connected-accounts?app=sandbox").json()["connected_accounts"]
    return str(account["id"])


def test_form_partial_is_prefilled_and_names_the_account(
    stack: DemoStack, api: Api, connected: str
) -> None:
    response = requests.get(
        ui(stack, "sandbox-create-contact"),
        params={"params": b64({"name": "Ada"}), "mode": "modal"},
        headers=api.headers,
        timeout=10,
    )
    assert response.status_code == 200
    doc = Doc(response.text)
    name = doc.find("input", name="name")
    assert (name["value"], name["type"], name.get("required")) == ("Ada", "text", "")
    assert name["aria-describedby"] == f"{name['id']}-help"
    assert doc.text(f"{name['id']}-help") == "Full name."
    email = doc.find("input", name="email")
    assert (email["value"], email["type"]) == ("", "email")
    assert doc.find("input", name="connectedAccountId", type="hidden")["value"] == connected
    assert "ada@sandbox.test" in response.text
    assert doc.find_all("select", name="connectedAccountId") == []
    form = doc.find("form")
    assert form["hx-post"].startswith("/portal/ui/functions/sandbox-create-contact")
    assert "novalidate" in form
    assert doc.find_all("button", type="submit")
    assert doc.find_all("button", **{"data-portal-close": ""})  # Cancel in the modal
    assert "portal-function-params" not in response.text


def test_form_lists_several_accounts_in_a_select(stack: DemoStack, sandbox: str, api: Api) -> None:
    connect_sandbox(api, user="ada")
    connect_sandbox(api, user="grace")
    accounts = api.get("/connected-accounts?app=sandbox").json()["connected_accounts"]
    assert len(accounts) == 2
    older = accounts[-1]["id"]
    for chosen, expected in ((older, older), (None, accounts[0]["id"])):
        query = {"connectedAccountId": chosen} if chosen else {}
        html = requests.get(
            ui(stack, "sandbox-create-contact"), params=query, headers=api.headers, timeout=10
        ).text
        doc = Doc(html)
        doc.find("select", name="connectedAccountId")
        options = doc.find_all("option")
        assert {o["value"] for o in options} == {a["id"] for a in accounts}
        assert [o["value"] for o in options if "selected" in o] == [expected]
        assert "grace@sandbox.test" in html and "ada@sandbox.test" in html


def test_form_without_an_account_says_so(stack: DemoStack, api: Api) -> None:
    html = requests.get(ui(stack, "sandbox-create-contact"), headers=api.headers, timeout=10).text
    assert "No Sandbox CRM account is connected yet." in html
    assert 'name="connectedAccountId"' not in html


def test_malformed_prefill_is_ignored_with_a_note(stack: DemoStack, api: Api) -> None:
    response = requests.get(
        ui(stack, "sandbox-list-contacts"),
        params={"params": "%%%not-base64"},
        headers=api.headers,
        timeout=10,
    )
    assert response.status_code == 200
    assert "pre-filled values could not be read" in response.text
    assert Doc(response.text).find("input", name="limit")["value"] == "10"  # the default


def test_form_needs_authentication_and_a_known_function(stack: DemoStack, api: Api) -> None:
    anonymous = requests.get(ui(stack, "sandbox-create-contact"), timeout=10)
    assert anonymous.status_code == 401
    assert requests.post(ui(stack, "sandbox-create-contact"), timeout=10).status_code == 401
    missing = requests.get(ui(stack, "sandbox-nope"), headers=api.headers, timeout=10)
    assert missing.status_code == 404


def test_invalid_submit_rerenders_with_errors_next_to_fields(
    stack: DemoStack, api: Api, connected: str
) -> None:
    response = requests.post(
        ui(stack, "sandbox-create-contact"),
        data={"name": "", "email": "not-an-email", "connectedAccountId": connected},
        headers={**api.headers, "HX-Request": "true"},
        timeout=10,
    )
    assert response.status_code == 200
    doc = Doc(response.text)
    assert field_error(doc, "name") == "This field is required."
    assert field_error(doc, "email") == "Enter a valid e-mail address."
    assert doc.find("input", name="email")["value"] == "not-an-email"  # kept as typed
    name = doc.find("input", name="name")
    assert name["aria-describedby"].split() == [f"{name['id']}-help", f"{name['id']}-errors"]
    assert "Check the 2 fields marked below." in response.text
    assert "portal-function-params" not in response.text


def test_valid_submit_returns_the_params_block(stack: DemoStack, api: Api, connected: str) -> None:
    hostile = "Ada </script><script>alert(1)</script>"
    response = requests.post(
        ui(stack, "sandbox-create-contact") + "?mode=inline",
        data={"name": hostile, "email": "ada@example.com", "connectedAccountId": connected},
        headers=api.headers,
        timeout=10,
    )
    assert response.status_code == 200
    assert result_block(response.text) == {
        "name": "sandbox-create-contact",
        "params": {"name": hostile, "email": "ada@example.com"},
        "connectedAccountId": connected,
    }
    assert "<script>alert(1)" not in response.text
    assert "Values saved." in response.text
    doc = Doc(response.text)
    edit = doc.find("button", **{"hx-target": "#portal-function"})
    assert "params=" in edit["hx-get"] and f"connectedAccountId={connected}" in edit["hx-get"]


def test_submit_coerces_by_schema_type(stack: DemoStack, api: Api, connected: str) -> None:
    url = ui(stack, "sandbox-list-contacts")
    ok = requests.post(url, data={"limit": "5"}, headers=api.headers, timeout=10)
    assert result_block(ok.text)["params"] == {"limit": 5}
    for raw, message in (("0", "Enter 1 or more."), ("abc", "Enter a whole number.")):
        bad = requests.post(url, data={"limit": raw}, headers=api.headers, timeout=10)
        assert field_error(Doc(bad.text), "limit") == message


def test_submit_refuses_another_users_account(stack: DemoStack, api: Api, connected: str) -> None:
    other = new_session(stack, f"user-{uuid.uuid4().hex[:12]}")
    response = requests.post(
        ui(stack, "sandbox-create-contact"),
        data={"name": "Ada", "email": "ada@example.com", "connectedAccountId": connected},
        headers=other.headers,
        timeout=10,
    )
    assert response.status_code == 200
    assert "portal-function-params" not in response.text
    assert "That account is not connected any more" in response.text


def test_embed_shell_passes_prefill_to_the_partial(stack: DemoStack) -> None:
    encoded = b64({"name": "Ada"})
    response = requests.get(
        f"{stack.portal.url}/portal/embed/functions/sandbox-create-contact",
        params={"mode": "modal", "layout": "narrow", "params": encoded, "connectedAccountId": "a1"},
        timeout=10,
    )
    assert response.status_code == 200
    assert "frame-ancestors 'self' " + stack.host.url in response.headers["Content-Security-Policy"]
    doc = Doc(response.text)
    main = doc.find("main", id="portal-main")
    assert main["data-portal-content-url"].startswith(
        "/portal/ui/functions/sandbox-create-contact?"
    )
    assert f"params={encoded}" in main["data-portal-content-url"]
    assert "connectedAccountId=a1" in main["data-portal-content-url"]
    assert doc.find("body")["class"] == "portal portal--modal portal--narrow"
    assert doc.find_all("button", **{"data-portal-close": ""})
    assert "Create a contact" in response.text
    assert not re.search(r"\sstyle=", response.text)
    missing = requests.get(f"{stack.portal.url}/portal/embed/functions/nope", timeout=10)
    assert missing.status_code == 404


# --------------------------------------------------------------------------- every widget (mounted)


@pytest.fixture
def kitchen(tmp_path: Path) -> Flask:
    """A mounted host whose catalog adds an app with a function taking every kind of param."""
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "kitchen.yaml").write_text(KITCHEN_YAML)
    app = Flask(f"host_{uuid.uuid4().hex[:8]}", instance_path=str(tmp_path / "instance"))
    app.config.update(
        SECRET_KEY="host-secret",
        **database_config(tmp_path, "portal"),
        PORTAL_ENCRYPTION_KEYS=[generate_key()],
        PORTAL_APPS={"sandbox-keys": {"base_url": "http://127.0.0.1:9"}},
        PORTAL_CATALOG_PATHS=[str(catalog)],
    )
    portal = ConnectPortal()

    @app.post("/login")
    def login() -> str:
        session["user"] = request.form["user"]
        return "ok"

    portal.user_loader(lambda: session.get("user"))
    portal.init_app(app)
    return app


def test_mounted_form_renders_every_widget_and_submits_with_csrf(kitchen: Flask) -> None:
    client = kitchen.test_client()
    client.post("/login", data={"user": "alice"})
    state = kitchen.extensions["portal"]
    with state.store.session() as db:
        for n in (1, 2):
            upsert_account(
                db,
                state.sealer,
                project=state.mounted_project,  # alice is the host's logged-in user
                user_id="alice",
                app="kitchen",
                external_id=f"k{n}",
                label=f"Kitchen {n}",
                scopes=[],
                credentials={"type": "api_key", "api_key": "secret"},
                expires_at=None,
            )
    page = client.get(
        "/portal/functions/kitchen-order?params=" + b64({"dish": "Soup", "toppings": ["basil"]})
    )
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-portal-mounted="1"' in html
    doc = Doc(html)
    assert doc.find("input", name="dish")["value"] == "Soup"
    assert doc.find("label", **{"for": "portal-param-dish"}) is not None
    servings = doc.find("input", name="servings")
    assert (servings["type"], servings["value"], servings["min"], servings["max"]) == (
        "number",
        "2",
        "1",
        "12",
    )
    assert doc.find("input", name="weight_kg")["step"] == "any"
    assert "checked" in doc.find("input", name="spicy", type="checkbox")
    gift_wrap = doc.find("select", name="gift_wrap")  # optional flag: Yes / No / unset
    assert gift_wrap["id"] == "portal-param-gift_wrap"
    assert doc.text("portal-param-gift_wrap") == "— Yes No"
    assert [o["value"] for o in doc.find_all("option") if "selected" in o][-1] == '"medium"'
    assert "maxlength" in doc.find("textarea", name="notes")
    toppings = doc.find("textarea", name="toppings")
    assert "spellcheck" in toppings
    assert doc.texts["portal-param-toppings"] == '[\n  "basil"\n]'
    assert doc.find("input", name="website")["type"] == "url"
    assert len(doc.find_all("select", name="connectedAccountId")) == 1
    account_options = [o for o in doc.find_all("option") if o["value"].startswith("ca_")]
    assert [o["value"] for o in account_options if "selected" in o] == [account_options[0]["value"]]
    chosen = account_options[1]["value"]
    assert doc.find_all("button", **{"data-portal-close": ""}) == []  # no Cancel outside a modal

    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert csrf
    form = {
        "dish": "Stew",
        "servings": "4",
        "weight_kg": "1.25",
        "size": '"large"',
        "toppings": '["salt"]',
        "delivery": '{"to": "home"}',
        "notes": "",
        "gift_wrap": "false",
        "connectedAccountId": chosen,
    }
    refused = client.post("/portal/ui/functions/kitchen-order", data=form)
    assert refused.status_code == 403
    done = client.post(
        "/portal/ui/functions/kitchen-order?mode=page",
        data=form,
        headers={"X-CSRFToken": csrf.group(1)},
    )
    assert done.status_code == 200
    result = result_block(done.get_data(as_text=True))
    assert result["params"] == {
        "dish": "Stew",
        "servings": 4,
        "weight_kg": 1.25,
        "spicy": False,
        "gift_wrap": False,
        "size": "large",
        "toppings": ["salt"],
        "delivery": {"to": "home"},
    }
    assert result["connectedAccountId"] == chosen

    bad = client.post(
        "/portal/ui/functions/kitchen-order",
        data={**form, "dish": "S", "weight_kg": "0", "size": "", "delivery": "[]"},
        headers={"X-CSRFToken": csrf.group(1)},
    )
    doc = Doc(bad.get_data(as_text=True))
    assert field_error(doc, "dish") == "Enter at least 2 characters."
    assert field_error(doc, "weight_kg") == "Enter a number greater than 0."
    assert field_error(doc, "size") == "This field is required."
    assert field_error(doc, "delivery") == "Enter a JSON object."
    assert doc.find("textarea", name="delivery") is not None


def test_function_page_needs_a_user_loader(tmp_path: Path) -> None:
    app = Flask(f"host_{uuid.uuid4().hex[:8]}", instance_path=str(tmp_path / "instance"))
    app.config.update(
        SECRET_KEY="s",
        **database_config(tmp_path, "p"),
        PORTAL_ENCRYPTION_KEYS=[generate_key()],
        PORTAL_APPS={"sandbox-keys": {"base_url": "http://127.0.0.1:9"}},
    )
    ConnectPortal(app)
    assert app.test_client().get("/portal/functions/sandbox-keys-x").status_code == 404
