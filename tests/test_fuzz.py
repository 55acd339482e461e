"""Schemathesis against the portal's own OpenAPI document (portal/openapi.py), over real
loopback HTTP: every operation, with a session token, with the app secret (server to server)
and with no authentication at all. Checks: no 5xx of the portal's own, documented status
codes, documented content types, and bodies that match the documented schemas.

Bounded and deterministic: ``derandomize=True`` (a fixed seed), ``max_examples`` per operation
and generation mode, no example database. The number of requests sent is printed.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
import schemathesis
from conftest import Api, Browser, connect_sandbox, new_session, parse_form, stack_database
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portal import user_hash
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DemoStack

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: Examples per operation and generation mode.
MAX_EXAMPLES = 25
#: Proxy answers pass the upstream's status and body through as they are (documented as
#: ``default``): only the portal's own JSON errors there are held to the documented schemas. A
#: 5xx fails whoever sent it (the sandbox upstream never should).
PROXY_PATH = "/portal/api/v1/proxy/"


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    """A stack of its own (fuzzed data stays here), rate limits off so every example reaches
    the code under test rather than a 429."""
    tmp = tmp_path_factory.mktemp("fuzz")
    running = DemoStack(
        0, 0, 0, worker=False, PORTAL_RATE_LIMITS_ENABLED=False, **stack_database(tmp, "fuzz")
    ).start()
    yield running
    running.stop()


@dataclass
class FuzzUser:
    """The fuzzed end user and real values to seed path parameters with (random strings alone
    never name a real app, account, attempt or function, and would only ever reach 404s)."""

    api: Api
    known: dict[str, list[str]]
    deletable: str
    bodies: dict[tuple[str, str], list[dict[str, Any]]]


def _connect_api_key(api: Api) -> None:
    browser = Browser()
    ticket = api.ticket("sandbox-keys")
    page = browser.http.get(ticket["connect_url"], timeout=10)
    form = parse_form(page.text)
    done = browser.http.post(
        urljoin(ticket["connect_url"], form["action"]),
        data={**form["fields"], "api_key": "sk_demo_ada"},
        timeout=10,
    )
    assert done.status_code == 200, done.text[:300]


@pytest.fixture(scope="module")
def fuzz_user(fuzz_stack: DemoStack) -> FuzzUser:
    """A user with a connected sandbox account (proxy and functions go deep), a connected
    sandbox-keys account (for DELETE), a connect attempt and an app event."""
    api = new_session(fuzz_stack, f"fuzz-{uuid.uuid4().hex[:10]}")
    done, ticket = connect_sandbox(api)
    assert done.status_code == 200, done.text[:300]
    _connect_api_key(api)
    accounts = {
        a["app"]: a["id"] for a in api.get("/connected-accounts").json()["connected_accounts"]
    }
    event = api.post(
        f"/projects/{DEMO_APP_KEY}/sdk/events/trigger",
        json={"name": "Contact Created", "payload": {"name": "Fuzz", "email": "f@example.com"}},
    )
    assert event.status_code == 202, event.text
    known = {
        "app": ["sandbox", "sandbox-keys"],
        "account_id": [accounts["sandbox"]],
        "attempt_id": [ticket["attempt_id"]],
        "name": ["sandbox-list-contacts", "sandbox-create-contact", "sandbox-get-contact"],
        "app_key": [DEMO_APP_KEY],
        "id": [event.json()["id"]],
        "path": ["contacts", "me", "contacts/1"],
    }
    prefix = "/portal/api/v1"
    bodies = {
        ("POST", f"{prefix}/connect-tickets"): [
            {"app": "sandbox", "opener": "frame"},
            {"app": "sandbox-basic"},
        ],
        ("POST", f"{prefix}/sessions"): [
            {"userId": api.user_id, "origin": fuzz_stack.host.url},
            {
                "appKey": DEMO_APP_KEY,
                "userId": api.user_id,
                "hash": user_hash(DEMO_APP_SECRET, api.user_id),
            },
        ],
        ("POST", f"{prefix}/functions/{{name}}/invoke"): [
            {"params": {"limit": 2}},
            {"params": {"name": "Fuzz", "email": "fuzz@example.com"}},
            {"params": {"id": "1"}},
        ],
    }
    return FuzzUser(api, known, accounts["sandbox-keys"], bodies)


class Tally:
    """Requests sent and failures found, across the module."""

    requests = 0
    failures: list[str] = []


#: Examples per operation as ``(positive, negative)``, by authentication: the session run goes
#: deepest; without a valid bearer every operation stops at the same 401.
EXAMPLES = {"session": (MAX_EXAMPLES, 10), "server": (12, 6), "none": (6, 4)}


def _auth_headers(mode: str, stack: DemoStack, api: Api) -> dict[str, str]:
    if mode == "session":
        return {"Authorization": f"Bearer {api.token}", "Origin": stack.host.url}
    if mode == "server":
        return {"Authorization": f"Bearer {DEMO_APP_SECRET}", "X-Portal-User-Id": api.user_id}
    return {}


def _strategy(operation: Any, mode: GenerationMode, user: FuzzUser) -> Any:
    """Fully generated cases, or (half the time) cases whose path parameters name real things
    (one known value of one parameter, the rest generated) and, in positive mode, whose body is
    a known valid one."""
    generated = operation.as_strategy(generation_mode=mode)
    combos: list[dict[str, str]] = []
    for name in re.findall(r"{(\w+)}", operation.path):
        values = user.known.get(name, [])
        if operation.method.upper() == "DELETE" and name == "account_id":
            values = [user.deletable]  # the sandbox account stays for the proxy runs
        combos += [{name: v} for v in values]
    bodies: list[Any] = []
    if mode.is_positive:
        bodies = user.bodies.get((operation.method.upper(), operation.path), [])
    seeded = []
    for combo in combos or [{}]:
        for body in bodies or [None]:
            kwargs: dict[str, Any] = {}
            if combo:
                kwargs["path_parameters"] = combo
            if body is not None:
                kwargs["body"] = body
            if kwargs:
                seeded.append(operation.as_strategy(generation_mode=mode, **kwargs))
    if not seeded:
        return generated
    return st.one_of(generated, st.one_of(seeded))


def _fuzz_operation(strategy: Any, send: Callable[[Any], None], examples: int) -> None:
    @given(case=strategy)
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    def run(case: Any) -> None:
        send(case)

    run()


@pytest.mark.parametrize("auth", ["session", "server", "none"])
def test_fuzz_every_operation(fuzz_stack: DemoStack, fuzz_user: FuzzUser, auth: str) -> None:
    base = fuzz_stack.portal.url
    schema = schemathesis.openapi.from_url(f"{base}/portal/api/v1/openapi.json")
    http = requests.Session()
    headers = _auth_headers(auth, fuzz_stack, fuzz_user.api)
    found: list[str] = []
    statuses: Counter[int] = Counter()

    def send(case: Any) -> None:
        response = case.call(base_url=base, session=http, headers=headers, timeout=30)
        statuses[response.status_code] += 1
        checks = CHECKS
        if case.path.startswith(PROXY_PATH) and not _portal_error(response):
            # An upstream answer passes through as it is (documented as `default`): only the
            # portal's own answers are held to the documented schemas.
            checks = [not_a_server_error, status_code_conformance]
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except (FailureGroup, AssertionError) as exc:
            text = [line for line in str(exc).strip().splitlines() if line.strip()]
            found.append(
                f"{auth} {case.method} {case.formatted_path} -> {response.status_code}: "
                + " / ".join(text[:8])
            )

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    positive, negative = EXAMPLES[auth]
    for operation in operations:
        for mode, examples in (
            (GenerationMode.POSITIVE, positive),
            (GenerationMode.NEGATIVE, negative),
        ):
            try:
                _fuzz_operation(_strategy(operation, mode, fuzz_user), send, examples)
            except Unsatisfiable:
                # Nothing to negate (no parameters, no body): the positive run covers it.
                assert mode is GenerationMode.NEGATIVE
    sent = sum(statuses.values())
    Tally.requests += sent
    Tally.failures += found
    print(
        f"\nfuzz[{auth}]: {sent} requests over {len(operations)} operations, statuses "
        f"{dict(sorted(statuses.items()))}, {len(found)} failures (total so far: "
        f"{Tally.requests} requests)"
    )
    unique = sorted(set(found))
    assert not unique, "\n".join(unique[:40])
    if auth != "none":
        # The seeded values reach real work, not only 4xx.
        assert statuses[200] > 50 and statuses[201] > 0 and statuses[202] > 0, statuses


def _portal_error(response: requests.Response) -> bool:
    """True when the answer is the portal's own JSON error (not an upstream's body)."""
    if not response.headers.get("Content-Type", "").startswith("application/json"):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "error_details" in body


def _broken_portal() -> Any:
    """A stand-in serving four planted violations of the document, one per check."""
    from flask import Flask

    app = Flask("broken")

    @app.get("/portal/api/v1/session")
    def session() -> Any:
        return {"user_id": 5, "origin": None, "via": "session"}  # schema: user_id is a string

    @app.get("/portal/api/v1/user")
    def user() -> Any:
        return {"error": "boom", "message": "", "error_details": []}, 500  # a server error

    @app.get("/portal/api/v1/apps")
    def apps() -> Any:
        return {"apps": []}, 418  # an undocumented status

    @app.get("/portal/api/v1/functions")
    def functions() -> Any:
        return "functions", 200, {"Content-Type": "text/plain"}  # an undocumented type

    return app


def test_the_checks_catch_planted_violations(fuzz_stack: DemoStack) -> None:
    """The harness above can fail: each check, run the same way over real HTTP, rejects an
    answer that breaks the document."""
    from portal._serving import ServerThread

    schema = schemathesis.openapi.from_url(f"{fuzz_stack.portal.url}/portal/api/v1/openapi.json")
    server = ServerThread().start(_broken_portal())
    try:
        for path, check in (
            ("/session", response_schema_conformance),
            ("/user", not_a_server_error),
            ("/apps", status_code_conformance),
            ("/functions", content_type_conformance),
        ):
            case = schema[f"/portal/api/v1{path}"]["GET"].Case()
            response = case.call(base_url=server.url, timeout=10)
            with pytest.raises(FailureGroup):
                case.validate_response(response, checks=[check])
    finally:
        server.stop()
