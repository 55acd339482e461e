"""portal/flows.py and portal/views/flows.py: host-declared flows, each end user's switch and
settings, runs from app events and provider webhooks, and the accounts and functions pages.

The integration tests run a stack of their own (sandbox provider, portal, host app on loopback)
declaring the demo's flow and a flow whose setting loads its choices from the user's Sandbox
CRM; its worker is driven by the tests (``run_once``).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Api, Browser, connect_sandbox, new_session, stack_database
from sqlalchemy import select

from portal import flows
from portal.catalog import load_catalog
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DemoStack, sandbox_app_settings
from portal.errors import ConfigurationError
from portal.flows import EXAMPLES_DIR, Flow, FlowSet, Trigger
from portal.store import AppEventRun, FlowSetting
from portal.worker import run_once

OTHER_KEY = "other-project-key"
OTHER_SECRET = "other-project-secret"
TRIGGER = f"/projects/{DEMO_APP_KEY}/sdk/events/trigger"
FLOW = "/flows/sandbox/contact-to-crm"

#: A second sandbox flow whose setting's choices come from the user's own contacts.
DEAL_FLOWS = """
flows:
  - name: deal-to-contact
    app: sandbox
    title: Deals become contacts
    description: Adds a contact for the owner you pick whenever a deal is won.
    trigger: {event: Deal Won}
    function: sandbox-create-contact
    params:
      name: "{payload.deal.name} for {settings.owner}"
      email: "{settings.owner}"
    settings:
      type: object
      additionalProperties: false
      required: [owner]
      properties:
        owner:
          title: Owner
          type: string
          minLength: 1
          x-portal-choices:
            function: sandbox-list-contacts
            params: {limit: 5}
            value: email
            label: name
"""


def flow(settings: dict[str, Any] | None = None, **overrides: Any) -> Flow:
    """A flow built in the test (no file): the demo's, by default."""
    values: dict[str, Any] = {
        "name": "contact-to-crm",
        "title": "Copy contacts",
        "description": "Copies contacts.",
        "app": "sandbox",
        "trigger": Trigger("app_event", "Contact Created"),
        "function": "sandbox-create-contact",
        "params": {"name": "{payload.name} ({settings.tag})", "email": "{payload.email}"},
        "settings_schema": settings
        or {
            "type": "object",
            "additionalProperties": False,
            "required": ["tag"],
            "properties": {"tag": {"type": "string", "minLength": 1, "maxLength": 40}},
        },
    }
    values.update(overrides)
    return Flow(**values)


def write(tmp_path: Path, text: str, name: str = "flows.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


# --------------------------------------------------------------------------- declaration


def test_the_shipped_examples_are_valid_against_the_schema_and_the_catalog() -> None:
    declared = flows.load_flows(EXAMPLES_DIR)
    assert {f.key for f in declared} == {
        "sandbox/contact-to-crm",
        "slack/deal-won-to-channel",
        "intercom/welcome-new-contacts",
    }
    assert flows.check_against_catalog(declared, load_catalog()) == []
    intercom = declared.get("intercom", "welcome-new-contacts")
    assert intercom is not None and intercom.trigger == Trigger("webhook", "contact.created")


def test_an_invalid_flows_file_reports_every_problem_with_file_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
flows:
  - name: Not A Name
    title: x
    description: x
    app: sandbox
    trigger: {event: A}
    function: sandbox-create-contact
  - name: no-trigger
    title: x
    description: x
    app: sandbox
    function: sandbox-create-contact
""",
    )
    with pytest.raises(ConfigurationError) as caught:
        flows.load_flows(path)
    message = str(caught.value)
    assert f"{path}: flows.0.name: 'Not A Name' must be lower-case" in message
    assert f"{path}: flows.1: 'trigger' is a required property" in message


def test_a_settings_schema_that_is_no_json_schema_and_a_duplicate_are_refused(
    tmp_path: Path,
) -> None:
    entry = """
  - name: twice
    title: x
    description: x
    app: sandbox
    trigger: {event: A}
    function: sandbox-create-contact
"""
    path = write(
        tmp_path,
        "flows:"
        + entry
        + entry
        + entry.replace("twice", "bad-schema")
        + "    settings: {type: 7}\n",
    )
    with pytest.raises(ConfigurationError) as caught:
        flows.load_flows(path)
    assert "flows.1: sandbox/twice is declared twice" in str(caught.value)
    assert "flows.2.settings: not a valid JSON Schema" in str(caught.value)


def test_flows_are_checked_against_the_catalog() -> None:
    catalog = load_catalog()
    declared = FlowSet(
        (
            flow(function="slack-post-message"),
            flow(name="no-hook", trigger=Trigger("webhook", "contact.created")),
            flow(
                name="bad-choices",
                settings_schema={
                    "type": "object",
                    "properties": {
                        "x": {"type": "string", "x-portal-choices": {"function": "nope"}}
                    },
                },
            ),
            flow(name="elsewhere", app="no-such-app"),  # never shows: not checked
        )
    )
    problems = flows.check_against_catalog(declared, catalog)
    assert len(problems) == 3, problems
    assert "'slack-post-message' is no function of sandbox" in problems[0]
    assert "sandbox has no webhook trigger 'contact.created'" in problems[1]
    assert "settings.x.x-portal-choices needs a function of sandbox" in problems[2]


def test_the_portal_does_not_start_with_invalid_flows(make_app: Any, tmp_path: Path) -> None:
    path = write(tmp_path, "flows:\n  - name: x\n")
    with pytest.raises(ConfigurationError, match="invalid flow definition"):
        make_app(PORTAL_FLOWS_PATH=str(path))
    with pytest.raises(ConfigurationError, match="flows path does not exist"):
        make_app(PORTAL_FLOWS_PATH=str(tmp_path / "missing.yaml"))


# --------------------------------------------------------------------------- mapping


def test_mapping_keeps_json_types_formats_text_and_drops_absent_values() -> None:
    template = {
        "count": "{payload.items.1.qty}",
        "tags": ["{settings.tag}", "{payload.missing}", "fixed"],
        "title": "{payload.name} x{payload.items.1.qty} ({settings.tag}){payload.missing}",
        "gone": "{payload.missing}",
        "nested": {"all": "{payload.items}"},
        "literal": 7,
    }
    payload = {"name": "Ada", "items": [{"qty": 1}, {"qty": 3}]}
    filled = flows.fill(template, payload, {"tag": "vip"})
    assert filled == {
        "count": 3,
        "tags": ["vip", "fixed"],
        "title": "Ada x3 (vip)",
        "nested": {"all": [{"qty": 1}, {"qty": 3}]},
        "literal": 7,
    }
    assert template["gone"] == "{payload.missing}"  # the template itself is not changed


def test_settings_named_like_function_params_are_merged_unless_the_mapping_sets_them() -> None:
    declared = flow(params={"email": "{payload.email}", "name": "{payload.name}"})
    function_params = {"properties": {"name": {}, "email": {}, "limit": {}}}
    params = flows.build_params(
        declared,
        {"email": "a@b.example", "name": "Ada"},
        {"name": "ignored: the mapping sets it", "limit": 5, "tag": "not a param"},
        function_params,
    )
    assert params == {"email": "a@b.example", "name": "Ada", "limit": 5}


# --------------------------------------------------------------------------- settings


def test_settings_are_validated_completely_when_on_and_without_required_when_off() -> None:
    declared = flow()
    assert flows.validate_settings(declared, {"tag": "vip"}) == []
    assert flows.validate_settings(declared, {}) == [
        {"field": "tag", "message": "'tag' is a required property"}
    ]
    assert flows.validate_settings(declared, {}, complete=False) == []
    too_long = flows.validate_settings(declared, {"tag": "x" * 41}, complete=False)
    assert [d["field"] for d in too_long] == ["tag"]
    assert flows.validate_settings(declared, {"other": 1}, complete=False)[0]["field"] == ""
    assert flows.validate_settings(declared, ["not", "an", "object"]) == [
        {"field": "", "message": "settings must be an object"}
    ]


def test_a_changed_schema_keeps_the_values_that_still_validate() -> None:
    new = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "tag": {"type": "string", "maxLength": 3},
            "channel": {"type": "string"},
            "count": {"type": "integer"},
        },
    }
    old = {"tag": "vip", "channel": 42, "count": 2, "dropped": "undeclared"}
    assert flows.migrate_settings(new, old) == {"tag": "vip", "count": 2}
    open_schema = {**new, "additionalProperties": True}
    assert flows.migrate_settings(open_schema, old)["dropped"] == "undeclared"
    assert flows.migrate_settings(new, {"tag": "toolong"}) == {}


def row(declared: Flow, **values: Any) -> FlowSetting:
    fields: dict[str, Any] = {
        "enabled": True,
        "settings": {"tag": "vip"},
        "account_id": None,
        "schema_hash": declared.schema_hash,
    }
    fields.update(values)
    return FlowSetting(**fields)


def test_status_needs_account_settings_or_is_ready() -> None:
    declared = flow()
    assert flows.user_flow(declared, None, []).status == "needs_account"
    never_saved = flows.user_flow(declared, None, ["ca_1"])
    assert (never_saved.status, never_saved.enabled) == ("needs_settings", False)
    ready = flows.user_flow(declared, row(declared), ["ca_1", "ca_2"])
    assert (ready.status, ready.run_account_id) == ("ready", "ca_1")
    chosen = flows.user_flow(declared, row(declared, account_id="ca_2"), ["ca_1", "ca_2"])
    assert (chosen.status, chosen.run_account_id) == ("ready", "ca_2")
    gone = flows.user_flow(declared, row(declared, account_id="ca_9"), ["ca_1"])
    assert (gone.status, gone.run_account_id) == ("needs_account", None)
    invalid = flows.user_flow(declared, row(declared, settings={"tag": ""}), ["ca_1"])
    assert invalid.status == "needs_settings"


def test_a_changed_settings_schema_marks_saved_settings_needs_settings() -> None:
    before = flow()
    saved = row(before, settings={"tag": "vip", "note": "x"})
    after = flow(
        settings_schema={
            "type": "object",
            "additionalProperties": False,
            "properties": {"tag": {"type": "string"}},
        }
    )
    item = flows.user_flow(after, saved, ["ca_1"])
    # The new schema accepts {"tag": "vip"}, but the user has not seen it: needs_settings.
    assert (item.status, item.settings, item.enabled) == ("needs_settings", {"tag": "vip"}, True)
    resaved = row(after, settings=item.settings)
    assert flows.user_flow(after, resaved, ["ca_1"]).status == "ready"


# --------------------------------------------------------------------------- over HTTP


@pytest.fixture(scope="module")
def flow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    """A stack declaring the demo's flow and ``deal-to-contact``, with a second project; no
    ``PORTAL_APP_EVENTS`` (so every run is a flow's); the tests work its queues."""
    tmp = tmp_path_factory.mktemp("flows")
    deal = tmp / "deal.yaml"
    deal.write_text(DEAL_FLOWS, "utf-8")
    running = DemoStack(
        0,
        0,
        0,
        worker=False,
        PORTAL_FLOWS_PATH=[str(EXAMPLES_DIR / "sandbox.yaml"), str(deal)],
        PORTAL_APP_EVENTS={},
        PORTAL_APP_KEYS={DEMO_APP_KEY: [DEMO_APP_SECRET], OTHER_KEY: [OTHER_SECRET]},
        **stack_database(tmp, "portal"),
    ).start()
    yield running
    running.stop()


@pytest.fixture
def user(flow_stack: DemoStack) -> Api:
    return new_session(flow_stack, f"user-{uuid.uuid4().hex[:12]}")


def connected(api: Api, sandbox_user: str | None = None) -> str:
    """Connect ``api``'s user to Sandbox CRM (the real OAuth flow); returns the account id."""
    response, _ = connect_sandbox(api, Browser(), user=sandbox_user)
    assert response.status_code == 200, response.text[:300]
    accounts = api.get("/connected-accounts?app=sandbox").json()["connected_accounts"]
    return str(accounts[0]["id"])


def put(api: Api, path: str, body: Any) -> requests.Response:
    return requests.put(api.base + path, headers=api.headers, json=body, timeout=10)


def server(stack: DemoStack, user_id: str, key_secret: str = DEMO_APP_SECRET) -> dict[str, str]:
    """Server-to-server headers: an app secret and the end user."""
    return {"Authorization": f"Bearer {key_secret}", "X-Portal-User-Id": user_id}


def test_flows_list_and_switch_on_needs_an_account_and_valid_settings(user: Api) -> None:
    listed = user.get("/flows?app=sandbox")
    assert listed.status_code == 200, listed.text
    by_name = {f["name"]: f for f in listed.json()["flows"]}
    assert set(by_name) == {"contact-to-crm", "deal-to-contact"}
    crm = by_name["contact-to-crm"]
    assert crm == {
        "name": "contact-to-crm",
        "title": "Copy new contacts to Sandbox CRM",
        "description": crm["description"],
        "app": "sandbox",
        "trigger": {"type": "app_event", "name": "Contact Created"},
        "enabled": False,
        "settings": {"tag": "from-app"},
        "settings_schema": crm["settings_schema"],
        "status": "needs_account",
        "connectedAccountId": None,
    }
    assert crm["settings_schema"]["required"] == ["tag"]

    refused = put(user, FLOW, {"enabled": True})
    assert (refused.status_code, refused.json()["error"]) == (400, "needs_account")

    account = connected(user)
    invalid = put(user, FLOW, {"enabled": True, "settings": {"tag": "x" * 41}})
    assert invalid.status_code == 400
    assert invalid.json()["error"] == "invalid_settings"
    assert [d["field"] for d in invalid.json()["error_details"]] == ["tag"]
    missing = put(user, FLOW, {"enabled": True, "settings": {}})
    assert missing.json()["error_details"] == [
        {"field": "tag", "message": "'tag' is a required property"}
    ]
    # Off, a half-filled form may be saved.
    assert put(user, FLOW, {"enabled": False, "settings": {}}).status_code == 200

    on = put(user, FLOW, {"enabled": True, "settings": {"tag": "vip"}})
    assert on.status_code == 200, on.text
    assert on.json()["enabled"] is True and on.json()["status"] == "ready"
    assert on.json()["settings"] == {"tag": "vip"}
    assert on.json()["connectedAccountId"] is None  # the most recent account

    chosen = put(user, FLOW, {"connectedAccountId": account})
    assert chosen.json()["connectedAccountId"] == account and chosen.json()["enabled"] is True
    assert put(user, FLOW, {"connectedAccountId": "ca_nope"}).json()["error"] == "unknown_account"

    integration = user.get("/user").json()["integrations"]["sandbox"]
    assert integration["enabled"] is True
    assert integration["flows"]["contact-to-crm"] == {
        "enabled": True,
        "status": "ready",
        "settings": {"tag": "vip"},
    }
    assert integration["flows"]["deal-to-contact"]["enabled"] is False


def test_bad_requests_and_unknown_flows(user: Api) -> None:
    assert user.get("/flows?app=nope").json()["error"] == "unknown_app"
    assert put(user, "/flows/sandbox/nope", {"enabled": False}).json()["error"] == "unknown_flow"
    for body in ([], {"enabled": "yes"}, {"settings": []}):
        response = put(user, FLOW, body)
        assert (response.status_code, response.json()["error"]) == (400, "invalid_json"), body
    assert put(user, FLOW, {"connectedAccountId": 7}).status_code == 400
    anonymous = requests.get(user.base + "/flows", timeout=10)
    assert anonymous.status_code == 401


def test_an_app_event_runs_only_the_flows_each_user_turned_on(
    flow_stack: DemoStack, user: Api
) -> None:
    connected(user)
    assert put(user, FLOW, {"enabled": True, "settings": {"tag": "vip"}}).status_code == 200
    other = new_session(flow_stack, f"user-{uuid.uuid4().hex[:12]}")
    connected(other)  # connected, but the flow stays off

    name = f"Grace {uuid.uuid4().hex[:6]}"
    payload = {"name": name, "email": "grace@example.com"}
    mine = user.post(TRIGGER, json={"name": "Contact Created", "payload": payload}).json()
    theirs = other.post(TRIGGER, json={"name": "Contact Created", "payload": payload}).json()
    [run] = mine["runs"]
    assert run["status"] == "queued" and run["flow"] == "sandbox/contact-to-crm"
    [skipped] = theirs["runs"]
    assert skipped["status"] == "skipped" and skipped["flow"] == "sandbox/contact-to-crm"
    detail = other.get(f"/events/{theirs['id']}").json()["runs"][0]
    assert detail["result"] == {
        "error": "flow_disabled",
        "message": "The user has not turned this flow on.",
    }
    assert detail["finished_at"] is not None

    while run_once(flow_stack.portal_app):
        pass
    done = user.get(f"/events/{mine['id']}").json()["runs"][0]
    assert done["status"] == "succeeded", done
    assert done["result"]["output"]["name"] == f"{name} (vip)"  # the user's setting, merged
    assert done["result"]["output"]["email"] == "grace@example.com"


def test_a_run_uses_the_account_the_user_chose(flow_stack: DemoStack, user: Api) -> None:
    first = connected(user, "ada")
    second = connected(user, "grace")
    assert first != second
    body = {"enabled": True, "settings": {"tag": "t"}, "connectedAccountId": first}
    assert put(user, FLOW, body).status_code == 200
    event = user.post(TRIGGER, json={"name": "Contact Created", "payload": {"name": "N"}}).json()
    state = flow_stack.portal_app.extensions["portal"]
    with state.store.read() as db:
        stored = db.get(AppEventRun, event["runs"][0]["id"])
        assert stored is not None and stored.account_id == first
        assert stored.params == {"name": "N (t)"}  # no email in the payload: left out


def test_after_a_settings_schema_change_runs_are_skipped_until_the_user_saves(
    flow_stack: DemoStack, user: Api
) -> None:
    connected(user)
    assert put(user, FLOW, {"enabled": True, "settings": {"tag": "vip"}}).status_code == 200
    state = flow_stack.portal_app.extensions["portal"]
    before = state.flows
    declared = before.get("sandbox", "contact-to-crm")
    assert declared is not None
    schema = json.loads(json.dumps(declared.settings_schema))
    schema["properties"]["priority"] = {"enum": ["low", "high"]}
    schema["required"] = ["tag", "priority"]
    changed = dataclasses.replace(declared, settings_schema=schema)
    state.flows = FlowSet(tuple(changed if f is declared else f for f in before))
    try:
        item = user.get("/flows?app=sandbox").json()["flows"][0]
        assert (item["status"], item["enabled"], item["settings"]) == (
            "needs_settings",
            True,
            {"tag": "vip"},
        )
        event = user.post(TRIGGER, json={"name": "Contact Created", "payload": {}}).json()
        [run] = event["runs"]
        assert run["status"] == "skipped"
        result = user.get(f"/events/{event['id']}").json()["runs"][0]["result"]
        assert result["error"] == "needs_settings"

        fixed = put(user, FLOW, {"settings": {"tag": "vip", "priority": "high"}})
        assert fixed.json()["status"] == "ready", fixed.text
    finally:
        state.flows = before


def test_another_projects_flows_and_settings_are_invisible(
    flow_stack: DemoStack, user: Api
) -> None:
    account = connected(user)
    assert put(user, FLOW, {"enabled": True, "settings": {"tag": "mine"}}).status_code == 200
    base = user.base
    other = server(flow_stack, user.user_id, OTHER_SECRET)
    seen = requests.get(f"{base}/flows?app=sandbox", headers=other, timeout=10).json()["flows"]
    crm = next(f for f in seen if f["name"] == "contact-to-crm")
    assert (crm["enabled"], crm["settings"], crm["status"]) == (
        False,
        {"tag": "from-app"},
        "needs_account",
    )
    stolen = requests.put(
        f"{base}{FLOW}", headers=other, json={"connectedAccountId": account}, timeout=10
    )
    assert (stolen.status_code, stolen.json()["error"]) == (404, "unknown_account")
    event = requests.post(
        f"{base}/projects/{OTHER_KEY}/sdk/events/trigger",
        headers=other,
        json={"name": "Contact Created", "payload": {"name": "x"}},
        timeout=10,
    ).json()
    assert [r["status"] for r in event["runs"]] == ["skipped"]
    # The same end user, seen through the first project's secret, still has the flow on.
    mine = requests.get(
        f"{base}/flows?app=sandbox", headers=server(flow_stack, user.user_id), timeout=10
    ).json()["flows"]
    assert next(f for f in mine if f["name"] == "contact-to-crm")["settings"] == {"tag": "mine"}
    state = flow_stack.portal_app.extensions["portal"]
    assert flows.list_user_flows(state, OTHER_KEY, user.user_id, "sandbox")[0].enabled is False


def test_a_change_sends_flow_updated_to_the_host(flow_stack: DemoStack, user: Api) -> None:
    connected(user)
    saved = put(user, FLOW, {"enabled": True, "settings": {"tag": "hook"}}).json()
    while run_once(flow_stack.portal_app):
        pass
    received = requests.get(f"{flow_stack.host.url}/webhooks/portal", timeout=10).json()
    mine = [
        w
        for w in received["webhooks"]
        if w["type"] == "flow.updated" and w["data"]["user_id"] == user.user_id
    ]
    assert len(mine) == 1, received
    assert mine[0]["project"] == DEMO_APP_KEY
    assert mine[0]["data"]["app"] == "sandbox"
    assert mine[0]["data"]["flow"] == saved


def test_choices_come_from_a_function_of_the_users_own_account(user: Api) -> None:
    url = "/ui/apps/sandbox/flows/deal-to-contact/choices/owner"
    base = user.base.replace("/api/v1", "")
    none = requests.get(base + url, headers=user.headers, timeout=10)
    assert none.status_code == 200
    assert "Connect an account to load the choices." in none.text
    connected(user)
    page = requests.get(
        base + url, params={"selected": "mary@sandbox.test"}, headers=user.headers, timeout=10
    )
    assert '<option value="charles@sandbox.test">Charles Babbage</option>' in page.text
    assert '<option value="mary@sandbox.test" selected>Mary Somerville</option>' in page.text
    unknown = requests.get(base + url.replace("owner", "nope"), headers=user.headers, timeout=10)
    assert unknown.status_code == 404


def test_the_app_page_form_saves_or_answers_its_errors(user: Api) -> None:
    base = user.base.replace("/api/v1", "")
    page = requests.get(f"{base}/ui/apps/sandbox", headers=user.headers, timeout=10).text
    assert 'data-portal-flow="contact-to-crm"' in page and 'role="switch"' in page
    assert "Connect an account to turn this flow on." in page
    submit = f"{base}/ui/apps/sandbox/flows/contact-to-crm"
    no_account = requests.post(
        submit, data={"enabled": "true", "tag": "x"}, headers=user.headers, timeout=10
    )
    assert "Connect a Sandbox CRM account above before turning this flow on." in no_account.text
    connected(user)
    empty = requests.post(
        submit, data={"enabled": "true", "tag": ""}, headers=user.headers, timeout=10
    )
    assert empty.status_code == 200
    assert 'data-portal-flow-enabled="false"' in empty.text
    assert "This field is required." in empty.text
    assert "Fill in the settings marked below to turn this flow on." in empty.text
    saved = requests.post(
        submit, data={"enabled": "true", "tag": "vip"}, headers=user.headers, timeout=10
    )
    assert 'data-portal-flow-enabled="true"' in saved.text
    assert "Saved. The flow is on." in saved.text
    assert user.get("/flows?app=sandbox").json()["flows"][0]["settings"] == {"tag": "vip"}


# --------------------------------------------------------------------------- accounts, functions


def test_the_accounts_page_lists_each_account_with_reconnect_and_disconnect(user: Api) -> None:
    base = user.base.replace("/api/v1", "")
    empty = requests.get(f"{base}/ui/apps/sandbox/accounts", headers=user.headers, timeout=10)
    assert "No Sandbox CRM account connected yet." in empty.text
    account = connected(user)
    page = requests.get(f"{base}/ui/apps/sandbox/accounts", headers=user.headers, timeout=10).text
    assert f'data-portal-account="{account}" data-portal-account-status="active"' in page
    assert page.count("data-portal-connect ") == 2  # Reconnect, Connect another account
    assert f'data-portal-disconnect data-portal-account-id="{account}"' in page
    assert "Connected <time" in page
    shell = requests.get(f"{base}/embed/apps/sandbox/accounts?mode=inline", timeout=10)
    assert shell.status_code == 200 and "/portal/ui/apps/sandbox/accounts" in shell.text


def test_the_functions_list_is_searched_and_filtered_on_the_server(user: Api) -> None:
    base = user.base.replace("/api/v1", "")
    url = f"{base}/ui/functions"
    everything = requests.get(url, headers=user.headers, timeout=10).text
    assert 'data-portal-function="sandbox-create-contact"' in everything
    found = requests.get(
        url, params={"app": "sandbox", "q": "create"}, headers=user.headers, timeout=10
    )
    assert 'data-portal-function="sandbox-create-contact"' in found.text
    assert 'data-portal-function="sandbox-list-contacts"' not in found.text
    assert '<code>email</code> <span class="portal-function-item__required">required' in found.text
    assert "/portal/ui/functions/sandbox-create-contact" in found.text
    results = requests.get(
        url,
        params={"q": "no such function at all"},
        headers={**user.headers, "HX-Request": "true", "HX-Target": "portal-function-results"},
        timeout=10,
    ).text
    assert results.lstrip().startswith('<div class="portal-function-results"')
    assert "No function matches" in results


# --------------------------------------------------------------------------- provider webhooks


def test_a_provider_webhook_runs_the_flows_of_its_trigger(
    make_app: Any, stack: DemoStack, user_id: str
) -> None:
    from test_provider_webhooks import (
        CLIENT_SECRET,
        WORKSPACE,
        connect,
        contact,
        notification,
        post_signed,
    )

    app = make_app(
        PORTAL_APPS={
            **sandbox_app_settings(stack.sandbox.url),
            "intercom": {"client_id": "intercom-client-id", "client_secret": CLIENT_SECRET},
        },
        PORTAL_FLOWS_PATH=str(EXAMPLES_DIR / "intercom.yaml"),
    )
    state = app.extensions["portal"]
    account = connect(app, user_id, WORKSPACE)
    bystander = f"other-{user_id}"
    connect(app, bystander, WORKSPACE)  # same workspace, flow off
    flows.set_user_flow(
        state,
        DEMO_APP_KEY,
        user_id,
        "intercom",
        "welcome-new-contacts",
        enabled=True,
        settings={"from_admin_id": "991", "body": "Hi!"},
    )
    response = post_signed(app.test_client(), notification("contact.lead.created", contact("lead")))
    assert response.status_code == 202, response.get_data(as_text=True)
    with state.store.read() as db:
        runs = list(db.scalars(select(AppEventRun).where(AppEventRun.flow.is_not(None))))
        by_status = {r.status: r for r in runs}
    assert sorted(by_status) == ["queued", "skipped"]
    queued = by_status["queued"]
    assert queued.account_id == account
    assert queued.params == {
        "message_type": "inapp",
        "to_type": "lead",
        "to_id": "5ba682d23d7cf92bef87bfd4",
        "from_admin_id": "991",
        "body": "Hi!",
    }
    assert by_status["skipped"].result["error"] == "flow_disabled"


# --------------------------------------------------------------------------- README

SECTION = "Flows: automations each end user turns on"


@pytest.mark.readme(SECTION, 0)
def test_readme_flow_declaration_loads_and_runs_with_the_mapping(tmp_path: Path) -> None:
    from readme_blocks import block

    path = write(tmp_path, block(SECTION, 0).code)
    declared = flows.load_flows(path)
    assert flows.check_against_catalog(declared, load_catalog()) == []
    [readme_flow] = declared
    assert readme_flow.trigger == Trigger("app_event", "Contact Created")
    settings = flows.with_defaults(readme_flow, {})
    assert settings == {"tag": "from-app"}
    assert flows.build_params(readme_flow, {"name": "Ada", "email": "a@b.example"}, settings) == {
        "name": "Ada (from-app)",
        "email": "a@b.example",
    }


@pytest.mark.readme(SECTION, 1)
def test_readme_flow_curl_as_written(flow_stack: DemoStack) -> None:
    import subprocess

    from readme_blocks import block, fill

    api = new_session(flow_stack, "u-42")
    connected(api)
    command = fill(block(SECTION, 1).code, {"https://portal.example": flow_stack.portal.url})
    result = subprocess.run(
        ["sh", "-c", command],
        env={"PATH": "/usr/bin:/bin", "APP_SECRET": DEMO_APP_SECRET},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    decoder = json.JSONDecoder()
    listed, end = decoder.raw_decode(result.stdout)
    saved, _ = decoder.raw_decode(result.stdout[end:].lstrip())
    assert [f["name"] for f in listed["flows"]] == ["contact-to-crm", "deal-to-contact"]
    assert listed["flows"][0]["enabled"] is False
    assert (saved["name"], saved["enabled"], saved["settings"]) == (
        "contact-to-crm",
        True,
        {"tag": "vip"},
    )
    assert saved["status"] == "ready"


# --------------------------------------------------------------------------- mounted mode


def test_mounted_pages_and_the_flow_form_need_login_and_csrf(tmp_path: Path) -> None:
    from flask import session
    from test_extension import csrf_from, host_flask

    from portal import ConnectPortal
    from portal.accounts import upsert_account

    app = host_flask(
        tmp_path,
        PORTAL_BASE_URL="http://localhost",
        PORTAL_APPS={"sandbox": {"base_url": "http://127.0.0.1:9", "client_id": "c"}},
        PORTAL_ENABLED_APPS=["sandbox"],
        PORTAL_FLOWS_PATH=str(EXAMPLES_DIR / "sandbox.yaml"),
    )
    portal = ConnectPortal()

    @app.post("/login")
    def login() -> str:
        session["user"] = "alice"
        return "ok"

    @portal.user_loader
    def current_user() -> str | None:
        return session.get("user")

    portal.init_app(app)
    state = app.extensions["portal"]
    with state.store.session() as db:
        account, _ = upsert_account(
            db,
            state.sealer,
            project=state.mounted_project,
            user_id="alice",
            app="sandbox",
            external_id="ext-1",
            label="Alice CRM",
            scopes=[],
            credentials={"access_token": "t"},
            expires_at=None,
        )
    client = app.test_client()
    for path in ("/portal/apps/sandbox/accounts", "/portal/functions"):
        assert client.get(path).status_code == 401, path
    client.post("/login")

    accounts = client.get("/portal/apps/sandbox/accounts").get_data(as_text=True)
    assert (
        f'data-portal-account="{account.id}"' in accounts and 'data-portal-mounted="1"' in accounts
    )
    functions = client.get("/portal/functions?q=create").get_data(as_text=True)
    assert 'href="/portal/functions/sandbox-create-contact"' in functions
    assert 'data-portal-function="sandbox-list-contacts"' not in functions

    page = client.get("/portal/apps/sandbox").get_data(as_text=True)
    assert 'data-portal-flow="contact-to-crm"' in page
    submit = "/portal/ui/apps/sandbox/flows/contact-to-crm"
    refused = client.post(submit, data={"enabled": "true", "tag": "x"})
    assert refused.status_code == 403  # no same-origin proof: nothing saved
    assert (
        flows.list_user_flows(state, state.mounted_project, "alice", "sandbox")[0].enabled is False
    )
    saved = client.post(
        submit, data={"enabled": "true", "tag": "x"}, headers={"X-CSRFToken": csrf_from(page)}
    )
    assert "Saved. The flow is on." in saved.get_data(as_text=True)
    [item] = flows.list_user_flows(state, state.mounted_project, "alice", "sandbox")
    assert (item.enabled, item.settings, item.status) == (True, {"tag": "x"}, "ready")


def test_flow_answers_match_the_openapi_document(user: Api) -> None:
    from jsonschema import Draft202012Validator

    from portal.openapi import build

    paths = build("/portal")["paths"]
    listing = paths["/portal/api/v1/flows"]["get"]["responses"]["200"]
    saving = paths["/portal/api/v1/flows/{app}/{flow}"]["put"]["responses"]["200"]
    connected(user)
    listed = user.get("/flows").json()
    saved = put(user, FLOW, {"enabled": True, "settings": {"tag": "api"}}).json()
    for response, body in ((listing, listed), (saving, saved)):
        schema = response["content"]["application/json"]["schema"]
        errors = list(Draft202012Validator(schema).iter_errors(body))
        assert errors == [], errors
    assert saved["enabled"] is True


def test_first_saves_of_one_flow_at_once_leave_one_row(flow_stack: DemoStack) -> None:
    import threading

    state = flow_stack.portal_app.extensions["portal"]
    user_id = f"racer-{uuid.uuid4().hex[:8]}"
    start = threading.Barrier(6)
    failures: list[BaseException] = []

    def save(n: int) -> None:
        start.wait()
        try:
            flows.set_user_flow(
                state, DEMO_APP_KEY, user_id, "sandbox", "contact-to-crm", settings={"tag": f"t{n}"}
            )
        except BaseException as exc:  # recorded for the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=save, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with state.store.read() as db:
        rows = list(db.scalars(select(FlowSetting).where(FlowSetting.user_id == user_id)))
    assert len(rows) == 1 and rows[0].settings["tag"] in {f"t{n}" for n in range(6)}


def test_the_flow_paths_are_authenticated_like_the_rest_of_the_api() -> None:
    from portal import openapi, openapi_flows

    assert openapi_flows.AUTH == openapi._AUTH
    document = openapi.build("/portal")
    assert document["paths"]["/portal/api/v1/flows"]["get"]["security"] == openapi._AUTH
