"""The OpenAPI 3.1 document: every /api/v1 route is in it, and real responses match it.

The document is also pinned byte for byte in ``tests/data/openapi.golden.json``, so a
refactoring of ``portal/openapi.py`` cannot change it unnoticed. After a deliberate change
(a new route, a new schema), regenerate the golden copy and review its diff::

    .venv/bin/python tests/test_openapi.py --write
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Api, connect_sandbox
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from portal.demo import DemoStack
from portal.openapi import build

DOC = build("/portal")
GOLDEN = Path(__file__).resolve().parent / "data" / "openapi.golden.json"
REGENERATE = ".venv/bin/python tests/test_openapi.py --write"


def serialise(document: dict[str, Any]) -> str:
    """The golden copy's text: key order kept as built (it is the order readers see)."""
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


REGISTRY = Registry().with_resource("urn:openapi", Resource(DOC, specification=DRAFT202012))


def _absolute_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: ("urn:openapi" + v if k == "$ref" and v.startswith("#/") else _absolute_refs(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_absolute_refs(v) for v in node]
    return node


def openapi_path(rule: str) -> str:
    """Werkzeug's ``/x/<conv:name>`` as OpenAPI's ``/x/{name}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def check(response: requests.Response, path: str, method: str) -> None:
    """``response`` is documented for ``method path`` and its JSON body matches the schema."""
    operation = DOC["paths"][path][method.lower()]
    documented = operation["responses"].get(str(response.status_code)) or operation[
        "responses"
    ].get("default")
    assert documented, f"{method} {path} answered {response.status_code}, which is undocumented"
    schema = documented.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return
    validator = Draft202012Validator(_absolute_refs(schema), registry=REGISTRY)
    errors = sorted(validator.iter_errors(response.json()), key=str)
    assert not errors, f"{method} {path} {response.status_code}: {errors[0].message}"


def test_document_is_openapi_31_with_valid_schemas() -> None:
    assert DOC["openapi"].startswith("3.1")
    for schema in DOC["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)  # raises SchemaError naming the problem


def test_document_is_served(stack: DemoStack) -> None:
    response = requests.get(f"{stack.portal.url}/portal/api/v1/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.json() == DOC


def test_every_api_route_is_described(stack: DemoStack) -> None:
    missing = []
    for rule in stack.portal_app.url_map.iter_rules():
        if not rule.rule.startswith("/portal/api/v1"):
            continue
        path = openapi_path(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if method.lower() not in DOC["paths"].get(path, {}):
                missing.append(f"{method} {path}")
    assert missing == []


def test_every_described_operation_exists(stack: DemoStack) -> None:
    routes = {
        (openapi_path(r.rule), m.lower())
        for r in stack.portal_app.url_map.iter_rules()
        for m in (r.methods or set())
    }
    described = {
        (path, method)
        for path, item in DOC["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert described - routes == set()


API = "/portal/api/v1"


def test_responses_match_the_document(stack: DemoStack, sandbox: str, api: Api) -> None:
    base = stack.portal.url

    def call(method: str, path: str, template: str, **kw: Any) -> requests.Response:
        headers = kw.pop("headers", api.headers)
        response = requests.request(method, base + path, headers=headers, timeout=15, **kw)
        check(response, template, method)
        return response

    call("GET", API, API)
    call("GET", f"{API}/openapi.json", f"{API}/openapi.json")
    call(
        "POST",
        f"{API}/sessions",
        f"{API}/sessions",
        json={"appKey": "nope", "userId": "u", "hash": "x"},
        headers={"Origin": stack.host.url},
    )
    call(
        "POST",
        f"{API}/sessions",
        f"{API}/sessions",
        json={"userId": "u"},
        headers={"Origin": "https://evil.example"},
    )
    call(
        "GET",
        f"{API}/origin-check?origin=https%3A%2F%2Fevil.example",
        f"{API}/origin-check",
        headers={},
    )
    call("GET", f"{API}/session", f"{API}/session")
    call("GET", f"{API}/apps", f"{API}/apps", headers={})
    call("GET", f"{API}/apps", f"{API}/apps")
    call("GET", f"{API}/apps/sandbox", f"{API}/apps/{{app}}")
    call("GET", f"{API}/apps/nope", f"{API}/apps/{{app}}")
    call("GET", f"{API}/connected-accounts", f"{API}/connected-accounts")
    call(
        "POST",
        f"{API}/functions/sandbox-list-contacts/invoke",
        f"{API}/functions/{{name}}/invoke",
        json={"params": {}},
    )
    call("GET", f"{API}/proxy/sandbox/contacts", f"{API}/proxy/{{app}}/{{path}}")
    ticket = call(
        "POST", f"{API}/connect-tickets", f"{API}/connect-tickets", json={"app": "sandbox"}
    )
    connect_sandbox(api)
    call(
        "GET",
        f"{API}/connect-attempts/{ticket.json()['attempt_id']}",
        f"{API}/connect-attempts/{{attempt_id}}",
    )
    [account] = call(
        "GET", f"{API}/connected-accounts?app=sandbox", f"{API}/connected-accounts"
    ).json()["connected_accounts"]
    call(
        "GET",
        f"{API}/connected-accounts/{account['id']}",
        f"{API}/connected-accounts/{{account_id}}",
    )
    call("GET", f"{API}/connected-accounts/ca_nope", f"{API}/connected-accounts/{{account_id}}")
    call("GET", f"{API}/functions", f"{API}/functions")
    call("GET", f"{API}/functions/sandbox-create-contact", f"{API}/functions/{{name}}")
    call("GET", f"{API}/functions/nope", f"{API}/functions/{{name}}")
    call(
        "POST",
        f"{API}/functions/sandbox-create-contact/invoke",
        f"{API}/functions/{{name}}/invoke",
        json={"params": {"name": ""}},
    )
    call(
        "POST",
        f"{API}/functions/sandbox-create-contact/invoke",
        f"{API}/functions/{{name}}/invoke",
        json={"params": {"name": "Zed", "email": "zed@example.test"}},
    )
    call(
        "POST",
        f"{API}/functions/sandbox-list-contacts/invoke",
        f"{API}/functions/{{name}}/invoke",
        json={"params": {"limit": 2}},
    )
    call("GET", f"{API}/proxy/sandbox/contacts?limit=1", f"{API}/proxy/{{app}}/{{path}}")
    call("GET", f"{API}/proxy/sandbox/%2e%2e/oauth/userinfo", f"{API}/proxy/{{app}}/{{path}}")
    call(
        "DELETE",
        f"{API}/connected-accounts/{account['id']}",
        f"{API}/connected-accounts/{{account_id}}",
    )


@pytest.mark.parametrize(
    "rule",
    ["/portal/api/v1/proxy/<app>/<portal_anypath:path>", "/portal/api/v1/apps/<app>"],
)
def test_openapi_path_conversion(rule: str) -> None:
    assert "<" not in openapi_path(rule)


def test_document_is_identical_to_the_golden_copy() -> None:
    expected = GOLDEN.read_text("utf-8")
    actual = serialise(build("/portal"))
    assert actual == expected, (
        f"build('/portal') differs from {GOLDEN.name}. If the change is deliberate (a new "
        f"route or schema), regenerate it with `{REGENERATE}` and review the diff."
    )


def test_prefix_only_moves_the_paths() -> None:
    """Every path follows ``prefix``; nothing else in the document depends on it."""
    moved = serialise(build("/host/portal/")).replace('"/host/portal/api/v1', '"/portal/api/v1')
    assert moved == GOLDEN.read_text("utf-8")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: {REGENERATE}")
    import portal

    root = GOLDEN.parent.parent.parent
    if not Path(portal.__file__).resolve().is_relative_to(root):
        sys.exit(f"portal is imported from {portal.__file__}, not {root}: set PYTHONPATH={root}")
    GOLDEN.write_text(serialise(build("/portal")), "utf-8")
    print(f"wrote {GOLDEN.relative_to(root)}")
