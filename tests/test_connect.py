"""The connect flow against the real sandbox provider over loopback HTTP.

Covers SECURITY.md "Connect flow": every hostile callback is refused with a 400 page before any
token request, and no connected-account row is written.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import re
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from conftest import Api, Browser, connect_sandbox, new_session, sandbox_stats
from sqlalchemy import func, select, text, update

from portal.attempts import exchange_bound
from portal.demo import DEMO_CLIENT_SECRET, DemoStack
from portal.store import ConnectAttempt, ConnectedAccount, utcnow


def account_count(stack: DemoStack, user_id: str) -> int:
    store = stack.portal_app.extensions["portal"].store
    with store.session() as db:
        return int(
            db.scalar(
                select(func.count())
                .select_from(ConnectedAccount)
                .where(ConnectedAccount.user_id == user_id)
            )
        )


def token_requests(stack: DemoStack) -> int:
    return int(sandbox_stats(stack)["token_requests"]["authorization_code"])


def result_message(html: str) -> dict[str, Any]:
    match = re.search(
        r'<script type="application/json" id="portal-connect-result">(.*?)</script>', html, re.S
    )
    assert match, "no connect result on the page"
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def begin(
    api: Api, browser: Browser, app: str = "sandbox", **extra: str
) -> tuple[str, dict[str, Any]]:
    """Start an attempt and approve at the provider; returns (callback URL, ticket)."""
    ticket = api.ticket(app)
    url = ticket["connect_url"] + ("&" + urlencode(extra) if extra else "")
    started = browser.start(url)
    assert started.status_code == 302
    return browser.consent(started.headers["Location"]).callback_url, ticket


def with_params(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return parts._replace(query=urlencode(params)).geturl()


# --------------------------------------------------------------------------- happy path


def test_connect_creates_account_and_result_page(stack: DemoStack, sandbox: str, api: Api) -> None:
    response, ticket = connect_sandbox(api)
    assert response.status_code == 200
    message = result_message(response.text)
    assert message["targetOrigin"] == stack.portal.url  # the iframe opened the popup
    envelope = message["message"]
    assert envelope["source"] == "connect-portal" and envelope["version"] == 1
    assert envelope["type"] == "portal:connect-result"
    payload = envelope["payload"]["payload"]
    assert payload["app"] == {
        "name": "sandbox",
        "title": "Sandbox CRM",
        "icon_url": f"{stack.portal.url}/portal/static/icons/sandbox.svg",
    }
    [account] = payload["connected_accounts"]
    assert account["id"] == payload["connectedAccountId"]
    assert account["label"] == "ada@sandbox.test"
    assert set(account) == {
        "id",
        "app",
        "label",
        "external_id",
        "status",
        "scopes",
        "created_at",
        "modified_at",
        "metadata",
    }
    assert "access_token" not in response.text
    status = api.get(f"/connect-attempts/{ticket['attempt_id']}").json()
    assert status["status"] == "connected"
    assert status["connectedAccountId"] == account["id"]


def test_result_goes_to_host_origin_when_portal_js_opened_the_popup(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    response, _ = connect_sandbox(api, opener="host")
    assert result_message(response.text)["targetOrigin"] == stack.host.url


def test_reconnecting_same_external_account_updates_and_another_adds(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    first, _ = connect_sandbox(api, user=None)
    again, _ = connect_sandbox(api, user=None)
    first_id = result_message(first.text)["message"]["payload"]["payload"]["connectedAccountId"]
    again_id = result_message(again.text)["message"]["payload"]["payload"]["connectedAccountId"]
    assert first_id == again_id
    assert account_count(stack, api.user_id) == 1
    page = Browser().http.get  # noqa: F841  (documenting: each connect uses a fresh browser)
    other, _ = connect_sandbox(api, user="grace")
    accounts = result_message(other.text)["message"]["payload"]["payload"]["connected_accounts"]
    assert len(accounts) == 2
    assert accounts[0]["modified_at"] >= accounts[1]["modified_at"]
    assert accounts[0]["label"] == "grace@sandbox.test"


@pytest.mark.security("Every authorize URL uses PKCE S256")
def test_authorize_request_uses_code_flow_with_pkce_s256(stack: DemoStack, api: Api) -> None:
    ticket = api.ticket()
    response = Browser().start(ticket["connect_url"])
    params = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}
    assert params["response_type"] == "code"  # no implicit flow
    assert params["code_challenge_method"] == "S256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", params["code_challenge"])
    assert params["redirect_uri"] == f"{stack.portal.url}/portal/oauth/sandbox/callback"
    assert len(params["state"]) >= 32


@pytest.mark.security("Every authorize URL uses PKCE S256")
def test_pkce_verifier_is_fresh_and_matches_challenge(make_app: Any, stack: DemoStack) -> None:
    app = make_app()
    client = app.test_client()
    token = _session_via_client(client, stack)
    verifiers = []
    for _ in range(2):
        ticket = client.post(
            "/portal/api/v1/connect-tickets",
            json={"app": "sandbox"},
            headers={"Authorization": f"Bearer {token}"},
        ).json
        response = client.get(
            urlsplit(ticket["connect_url"])._replace(scheme="", netloc="").geturl()
        )
        params = parse_qs(urlsplit(response.headers["Location"]).query)
        state = params["state"][0]
        with client.session_transaction() as session:
            verifier = session[f"_state_sandbox_{state}"]["data"]["code_verifier"]
        assert 43 <= len(verifier) <= 128  # RFC 7636 §4.1
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        assert params["code_challenge"][0] == challenge  # RFC 7636 §4.2
        verifiers.append(verifier)
    assert verifiers[0] != verifiers[1]


def _session_via_client(client: Any, stack: DemoStack, user: str = "u-client") -> str:
    from portal import user_hash
    from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET

    response = client.post(
        "/portal/api/v1/sessions",
        json={"appKey": DEMO_APP_KEY, "userId": user, "hash": user_hash(DEMO_APP_SECRET, user)},
        headers={"Origin": stack.host.url},
    )
    assert response.status_code == 201, response.json
    return str(response.json["token"])


def _start_via_client(app: Any, stack: DemoStack, user: str = "u-client") -> tuple[Any, Any]:
    """Session, ticket and connect request through ``app``'s test client: (client, response)."""
    client = app.test_client()
    token = _session_via_client(client, stack, user)
    ticket = client.post(
        "/portal/api/v1/connect-tickets",
        json={"app": "sandbox"},
        headers={"Authorization": f"Bearer {token}"},
    ).json
    path = urlsplit(ticket["connect_url"])._replace(scheme="", netloc="").geturl()
    return client, client.get(path)


# --------------------------------------------------------------------------- hostile callbacks


@pytest.mark.parametrize(
    "change",
    [
        {"state": None},
        {"state": "not-a-state-we-issued"},
        {"state": ""},
        {"state": "x" * 600},
    ],
    ids=["missing", "mismatched", "empty", "oversized"],
)
@pytest.mark.security("Missing, mismatched, expired (> 10 min) or replayed `state`")
def test_bad_state_is_refused_before_token_request(
    stack: DemoStack, sandbox: str, api: Api, change: dict[str, str | None]
) -> None:
    browser = Browser()
    callback, _ = begin(api, browser)
    before = token_requests(stack)
    response = browser.callback(with_params(callback, **change))
    assert response.status_code == 400
    assert "text/html" in response.headers["Content-Type"]
    assert token_requests(stack) == before
    assert account_count(stack, api.user_id) == 0


@pytest.mark.security("Missing, mismatched, expired (> 10 min) or replayed `state`")
def test_expired_state_is_refused(stack: DemoStack, sandbox: str, api: Api) -> None:
    browser = Browser()
    callback, ticket = begin(api, browser)
    store = stack.portal_app.extensions["portal"].store
    with store.session() as db:
        db.execute(
            update(ConnectAttempt)
            .where(ConnectAttempt.id == ticket["attempt_id"])
            .values(created_at=utcnow() - timedelta(minutes=11))
        )
    response = browser.callback(callback)
    assert response.status_code == 400
    assert token_requests(stack) == 0
    assert account_count(stack, api.user_id) == 0


@pytest.mark.security("Missing, mismatched, expired (> 10 min) or replayed `state`")
@pytest.mark.security("Code replayed -> second attempt fails")
def test_replayed_code_and_state_exchange_once(stack: DemoStack, sandbox: str, api: Api) -> None:
    browser = Browser()
    callback, _ = begin(api, browser)
    assert browser.callback(callback).status_code == 200
    replay = browser.callback(callback)
    assert replay.status_code == 400
    assert token_requests(stack) == 1
    assert account_count(stack, api.user_id) == 1


@pytest.mark.security("State from browser A finished in browser B")
def test_state_finished_in_another_browser_is_refused(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    callback, _ = begin(api, Browser())
    response = Browser().callback(callback)  # browser B has no state cookie
    assert response.status_code == 400
    assert "another browser" in response.text
    assert token_requests(stack) == 0
    assert account_count(stack, api.user_id) == 0


@pytest.mark.security("App A's state delivered to app B's callback")
def test_state_of_app_a_at_app_b_callback_is_refused(
    make_app: Any, stack: DemoStack, sandbox: str, tmp_path: Path
) -> None:
    catalog = tmp_path / "apps"
    catalog.mkdir()
    definition = (Path(__file__).parent.parent / "portal/apps/sandbox.yaml").read_text()
    definition = definition.split("\nfunctions:")[0]  # its functions are named sandbox-*
    (catalog / "sandbox-two.yaml").write_text(
        definition.replace("slug: sandbox", "slug: sandbox-two")
    )
    apps = {
        **stack.portal_app.config["PORTAL_APPS"],
        "sandbox-two": dict(stack.portal_app.config["PORTAL_APPS"]["sandbox"]),
    }
    app = make_app(PORTAL_CATALOG_PATHS=[str(catalog)], PORTAL_APPS=apps)
    client, started = _start_via_client(app, stack)
    consent = Browser().consent(started.headers["Location"])
    parts = urlsplit(consent.callback_url)
    response = client.get(f"/portal/oauth/sandbox-two/callback?{parts.query}")
    assert response.status_code == 400
    assert token_requests(stack) == 0


@pytest.mark.security("Provider sends `iss` (RFC 9207)")
def test_issuer_mismatch_is_refused_before_token_request(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    browser = Browser()
    callback, _ = begin(api, browser)
    assert parse_qs(urlsplit(callback).query)["iss"] == [stack.sandbox.url]  # RFC 9207
    response = browser.callback(with_params(callback, iss="https://evil.example"))
    assert response.status_code == 400
    assert token_requests(stack) == 0
    assert account_count(stack, api.user_id) == 0


def _sandbox_with_metadata(make_app: Any, stack: DemoStack, tmp_path: Path) -> Any:
    """The sandbox app as a host would declare a provider it discovers through RFC 8414
    metadata: ``server_metadata_url`` and no ``issuer`` of its own (same slug, so the sandbox's
    registered redirect URI still fits)."""
    catalog = tmp_path / "apps"
    catalog.mkdir()
    definition = (Path(__file__).parent.parent / "portal/apps/sandbox.yaml").read_text()
    definition = definition.replace(
        '  issuer: "{base_url}"\n',
        '  server_metadata_url: "{base_url}/.well-known/oauth-authorization-server"\n',
    )
    assert "server_metadata_url" in definition and "issuer:" not in definition
    (catalog / "sandbox.yaml").write_text(definition)
    return make_app(PORTAL_CATALOG_PATHS=[str(catalog)])


@pytest.mark.security("Callback without `iss`")
def test_callback_without_iss_is_refused_when_metadata_advertises_it(
    make_app: Any, stack: DemoStack, sandbox: str, tmp_path: Path
) -> None:
    metadata = requests.get(f"{sandbox}/.well-known/oauth-authorization-server", timeout=5).json()
    assert metadata["authorization_response_iss_parameter_supported"] is True
    app = _sandbox_with_metadata(make_app, stack, tmp_path)
    store = app.extensions["portal"].store

    # With `iss` the discovered issuer is accepted: the app connects.
    client, started = _start_via_client(app, stack, user="u-iss-ok")
    consent = Browser().consent(started.headers["Location"])
    assert consent.params["iss"] == metadata["issuer"]
    ok = client.get(f"/portal/oauth/sandbox/callback?{urlsplit(consent.callback_url).query}")
    assert ok.status_code == 200, ok.text[:500]
    assert token_requests(stack) == 1

    # Without it: 400 before any token request, the attempt failed, the opener told.
    client, started = _start_via_client(app, stack, user="u-iss-missing")
    consent = Browser().consent(started.headers["Location"])
    response = client.get(with_params(consent.callback_url, iss=None).split(stack.portal.url)[1])
    assert response.status_code == 400
    assert token_requests(stack) == 1
    message = result_message(response.get_data(as_text=True))
    assert message["message"]["payload"]["status"] == "failed"
    assert message["message"]["payload"]["error"]["type"] == "invalid_issuer"
    with store.read() as db:
        attempt = db.scalars(
            select(ConnectAttempt).where(ConnectAttempt.user_id == "u-iss-missing")
        ).one()
        assert (attempt.status, attempt.error_code) == ("failed", "invalid_issuer")
        assert db.scalar(
            select(func.count()).select_from(ConnectedAccount).where(
                ConnectedAccount.user_id == "u-iss-missing"
            )
        ) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "evil.example"},
        {"X-Forwarded-Host": "evil.example"},
        {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"},
    ],
)
@pytest.mark.security("Spoofed `Host` / `X-Forwarded-Host`")
def test_spoofed_host_headers_do_not_change_redirect_uri(
    stack: DemoStack, api: Api, headers: dict[str, str]
) -> None:
    ticket = api.ticket()
    response = requests.get(
        ticket["connect_url"], headers=headers, allow_redirects=False, timeout=10
    )
    assert response.status_code == 302
    params = parse_qs(urlsplit(response.headers["Location"]).query)
    assert params["redirect_uri"] == [f"{stack.portal.url}/portal/oauth/sandbox/callback"]


@pytest.mark.parametrize(
    "return_to",
    [
        "//evil.example/x",
        "/\\evil.example",
        "https:evil.example",
        "javascript:alert(1)",
        "https://evil.example/",
        "http://127.0.0.1.evil.example/",
    ],
)
@pytest.mark.security("`return_to` not on an allowed origin")
def test_return_to_off_the_allow_list_is_ignored(
    stack: DemoStack, sandbox: str, api: Api, return_to: str
) -> None:
    browser = Browser()
    callback, _ = begin(api, browser, return_to=return_to)
    response = browser.callback(callback)
    assert response.status_code == 200  # the popup result page, never a way to return_to
    assert "Location" not in response.headers
    assert "http-equiv" not in response.text
    assert "evil.example" not in response.text


def return_target(response: requests.Response) -> str:
    """The URL a redirect-mode result page moves on to (its meta refresh, also its link)."""
    refresh = re.search(r'<meta http-equiv="refresh" content="0;url=([^"]+)">', response.text)
    assert refresh, response.text[:500]
    assert f'href="{refresh.group(1)}"' in response.text  # a link too, for no-meta-refresh
    return html.unescape(refresh.group(1))


#: The only parameter redirect mode adds to ``return_to``: a reference to the attempt, whose
#: outcome the SDK asks the server for. Never the outcome itself.
RESULT_PARAMS = ("portal_status", "portal_app", "portal_account", "portal_error")


@pytest.mark.security("Redirect mode: `?portal_status=connected&portal_account=<forged>`")
def test_return_to_on_allowed_origin_goes_back_with_attempt_only(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    """Redirect mode ends on a portal page that moves on to return_to (not a 303: the
    provider's CSP form-action would block a redirect to the host; see views/connect.py),
    carrying the attempt's id and nothing the host page could mistake for the outcome."""
    browser = Browser()
    # A stale reference in return_to (a host page that kept one) is replaced, not repeated.
    return_to = f"{stack.host.url}/settings?tab=apps&portal_attempt=stale"
    callback, ticket = begin(api, browser, return_to=return_to)
    response = browser.callback(callback)
    assert response.status_code == 200
    assert "Location" not in response.headers
    location = urlsplit(return_target(response))
    assert f"{location.scheme}://{location.netloc}" == stack.host.url
    params = parse_qs(location.query)
    assert params == {"tab": ["apps"], "portal_attempt": [ticket["attempt_id"]]}
    [account] = api.get("/connected-accounts?app=sandbox").json()["connected_accounts"]
    assert account["id"] not in response.text  # the outcome is the server's to tell
    for name in RESULT_PARAMS:
        assert name not in response.text
    assert "portal-connect-result" not in response.text  # nothing posted to an opener
    status = api.get(f"/connect-attempts/{ticket['attempt_id']}").json()
    assert status["status"] == "connected" and status["connectedAccountId"] == account["id"]


@pytest.mark.security("Redirect mode: `?portal_status=connected&portal_account=<forged>`")
def test_redirect_mode_failure_goes_back_with_attempt_only(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    browser = Browser()
    ticket = api.ticket()
    started = browser.start(ticket["connect_url"] + "&" + urlencode({"return_to": stack.host.url}))
    consent = browser.consent(started.headers["Location"], decision="deny")
    response = browser.callback(consent.callback_url)
    assert response.status_code == 400
    params = parse_qs(urlsplit(return_target(response)).query)
    assert params == {"portal_attempt": [ticket["attempt_id"]]}
    for name in RESULT_PARAMS:
        assert name not in response.text
    status = api.get(f"/connect-attempts/{ticket['attempt_id']}").json()
    assert status["status"] == "failed" and status["error"]["type"] == "access_denied"


@pytest.mark.security("`error=access_denied&error_description=<script>…`")
def test_access_denied_shows_escaped_error_and_writes_nothing(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    browser = Browser()
    ticket = api.ticket()
    started = browser.start(ticket["connect_url"])
    consent = browser.consent(started.headers["Location"], decision="deny")
    assert consent.params["error"] == "access_denied"
    hostile = with_params(consent.callback_url, error_description="<script>alert(1)</script>")
    response = browser.callback(hostile)
    assert response.status_code == 400
    assert "<script>alert(1)</script>" not in response.text
    # The user's own choice is told in plain words; the provider's description is not shown.
    assert "You chose not to connect Sandbox CRM." in response.text
    assert "alert(1)" not in response.text
    message = result_message(response.text)["message"]
    assert message["payload"]["status"] == "failed"
    assert message["payload"]["error"]["type"] == "access_denied"
    assert account_count(stack, api.user_id) == 0
    assert token_requests(stack) == 0
    status = api.get(f"/connect-attempts/{ticket['attempt_id']}").json()
    assert status["status"] == "failed" and status["error"]["type"] == "access_denied"


@pytest.mark.parametrize("fault", ["500", "html", "malformed_json"])
@pytest.mark.security("Token endpoint 500, timeout, HTML body, or malformed JSON")
def test_token_endpoint_faults_give_clear_error_and_no_row(
    stack: DemoStack, sandbox: str, api: Api, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Production log level everywhere (urllib3's DEBUG lines would show the test's own request
    # URLs), and everything the portal itself logs.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="portal")
    browser = Browser()
    callback, _ = begin(api, browser)
    requests.post(f"{sandbox}/_sandbox/faults", json={"token_endpoint": fault}, timeout=5)
    response = browser.callback(callback)
    assert response.status_code == 502
    message = result_message(response.text)["message"]["payload"]
    assert message["status"] == "failed"
    assert message["error"]["type"] in ("server_error", "invalid_response")
    assert "Sandbox CRM" in response.text
    assert account_count(stack, api.user_id) == 0
    code = parse_qs(urlsplit(callback).query)["code"][0]
    assert DEMO_CLIENT_SECRET not in caplog.text
    assert code not in caplog.text


@pytest.mark.security("Token endpoint 500, timeout, HTML body, or malformed JSON")
def test_token_endpoint_timeout(make_app: Any, stack: DemoStack, sandbox: str) -> None:
    app = make_app(PORTAL_HTTP_TIMEOUT=0.5)
    client, started = _start_via_client(app, stack)
    consent = Browser().consent(started.headers["Location"])
    requests.post(
        f"{sandbox}/_sandbox/faults",
        json={"token_endpoint": "timeout", "timeout_seconds": 2},
        timeout=5,
    )
    began = time.monotonic()
    response = client.get(f"/portal/oauth/sandbox/callback?{urlsplit(consent.callback_url).query}")
    assert time.monotonic() - began < 1.9
    assert response.status_code == 502
    assert "did not answer in time" in response.text
    store = app.extensions["portal"].store
    with store.session() as db:
        assert db.scalar(select(func.count()).select_from(ConnectedAccount)) == 0


@pytest.mark.security("Database unavailable between token exchange and commit")
def test_database_failure_at_commit_leaves_no_row_and_retry_works(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    """A real fault: the accounts table disappears between token exchange and commit."""
    store = stack.portal_app.extensions["portal"].store
    browser = Browser()
    callback, _ = begin(api, browser)
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE portal_connected_accounts RENAME TO portal_ca_away"))
    try:
        response = browser.callback(callback)
    finally:
        with store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE portal_ca_away RENAME TO portal_connected_accounts"))
    assert response.status_code == 503
    assert result_message(response.text)["message"]["payload"]["error"]["type"] == (
        "storage_unavailable"
    )
    assert account_count(stack, api.user_id) == 0
    retry, _ = connect_sandbox(api)
    assert retry.status_code == 200
    assert account_count(stack, api.user_id) == 1


# --------------------------------------------------------------------------- tickets


@pytest.mark.security("Connect ticket used twice, expired, or for another user/app")
def test_ticket_used_twice_is_refused(stack: DemoStack, api: Api) -> None:
    ticket = api.ticket()
    assert Browser().start(ticket["connect_url"]).status_code == 302
    again = Browser().start(ticket["connect_url"])
    assert again.status_code == 400
    assert "already used" in again.text


@pytest.mark.security("Connect ticket used twice, expired, or for another user/app")
def test_expired_ticket_is_refused(make_app: Any, stack: DemoStack) -> None:
    app = make_app(PORTAL_TICKET_TTL=1)
    client = app.test_client()
    token = _session_via_client(client, stack)
    ticket = client.post(
        "/portal/api/v1/connect-tickets",
        json={"app": "sandbox"},
        headers={"Authorization": f"Bearer {token}"},
    ).json
    time.sleep(2.1)
    response = client.get(urlsplit(ticket["connect_url"])._replace(scheme="", netloc="").geturl())
    assert response.status_code == 400
    assert b"expired" in response.data


@pytest.mark.security("Connect ticket used twice, expired, or for another user/app")
def test_ticket_for_another_app_is_refused(stack: DemoStack, api: Api) -> None:
    ticket = api.ticket("sandbox")
    other = ticket["connect_url"].replace("/connect/sandbox?", "/connect/sandbox-keys?")
    assert Browser().start(other).status_code == 400


def test_forged_ticket_is_refused(stack: DemoStack, api: Api) -> None:
    ticket = api.ticket("sandbox")
    forged = with_params(ticket["connect_url"], ticket=ticket["ticket"][:-4] + "AAAA")
    assert Browser().start(forged).status_code == 400


@pytest.mark.security("Connect ticket used twice, expired, or for another user/app")
def test_ticket_for_another_user_is_refused_in_mounted_mode(
    make_app: Any, stack: DemoStack
) -> None:
    app = make_app()
    app.extensions["portal"].portal.user_loader(lambda: "mallory")
    _, response = _start_via_client(app, stack, user="alice")
    assert response.status_code == 400
    assert b"another user" in response.data


def test_attempt_status_of_another_user_reads_pending(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    _, ticket = connect_sandbox(api)
    other = new_session(stack, api.user_id + "-other")
    assert other.get(f"/connect-attempts/{ticket['attempt_id']}").json() == {"status": "pending"}


def test_slow_code_exchange_in_progress_reads_pending(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    """A real exchange held 2 s by the provider: while it runs the attempt is ``exchanging``
    and polls as ``pending`` (not interrupted); then it connects."""
    requests.post(
        f"{sandbox}/_sandbox/faults",
        json={"token_endpoint": "timeout", "timeout_seconds": 2},
        timeout=5,
    ).raise_for_status()
    browser = Browser()
    callback, ticket = begin(api, browser)
    store = stack.portal_app.extensions["portal"].store
    results: list[requests.Response] = []
    worker = threading.Thread(target=lambda: results.append(browser.callback(callback)))
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while True:
            with store.read() as db:
                attempt = db.get(ConnectAttempt, ticket["attempt_id"])
                status = attempt.status if attempt else None
            if status == "exchanging":
                break
            assert time.monotonic() < deadline, f"attempt never reached exchanging: {status}"
            time.sleep(0.02)
        polled = api.get(f"/connect-attempts/{ticket['attempt_id']}").json()
        assert polled == {"status": "pending", "app": "sandbox"}
    finally:
        worker.join(timeout=30)
    assert results and results[0].status_code == 200, results
    assert api.get(f"/connect-attempts/{ticket['attempt_id']}").json()["status"] == "connected"


def test_attempt_stuck_exchanging_past_the_bound_reads_failed(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    """The process that claimed the attempt died mid-exchange (simulated by setting the row to
    ``exchanging`` and moving its ``updated_at`` back, no sleeping): inside
    :func:`~portal.attempts.exchange_bound` it reads ``pending``, past it ``failed`` with
    ``connect_interrupted``; the callback stays refused and connecting again works."""
    bound = exchange_bound(stack.portal_app.config)
    assert bound == timedelta(seconds=2 * stack.portal_app.config["PORTAL_HTTP_TIMEOUT"] + 30)
    browser = Browser()
    callback, ticket = begin(api, browser)
    store = stack.portal_app.extensions["portal"].store

    def claimed(ago: timedelta) -> dict[str, Any]:
        with store.session() as db:
            db.execute(
                update(ConnectAttempt)
                .where(ConnectAttempt.id == ticket["attempt_id"])
                .values(status="exchanging", updated_at=utcnow() - ago)
            )
        return api.get(f"/connect-attempts/{ticket['attempt_id']}").json()  # type: ignore[no-any-return]

    assert claimed(timedelta(0)) == {"status": "pending", "app": "sandbox"}
    assert claimed(bound - timedelta(seconds=5)) == {"status": "pending", "app": "sandbox"}
    stuck = claimed(bound + timedelta(seconds=1))
    assert stuck["status"] == "failed"
    assert stuck["error"]["type"] == "connect_interrupted"
    assert "try connecting again" in stuck["error"]["message"]
    # Another user still learns nothing about it.
    other = new_session(stack, api.user_id + "-other")
    assert other.get(f"/connect-attempts/{ticket['attempt_id']}").json() == {"status": "pending"}
    # The claimed callback is never exchanged; a new attempt connects.
    assert browser.callback(callback).status_code == 400
    assert token_requests(stack) == 0
    retry, _ = connect_sandbox(api)
    assert retry.status_code == 200
    assert account_count(stack, api.user_id) == 1


# --------------------------------------------------------------------------- API-key and basic


def test_api_key_form_connects_and_rejects_bad_key(stack: DemoStack, api: Api) -> None:
    browser = Browser()
    ticket = api.ticket("sandbox-keys")
    page = browser.http.get(ticket["connect_url"], timeout=10)
    assert page.status_code == 200
    assert 'type="password"' in page.text
    from conftest import parse_form

    form = parse_form(page.text)
    action = requests.compat.urljoin(ticket["connect_url"], form["action"])
    bad = browser.http.post(action, data={**form["fields"], "api_key": "sk_wrong"}, timeout=10)
    assert bad.status_code == 400
    assert "did not accept" in bad.text
    assert account_count(stack, api.user_id) == 0
    form = parse_form(bad.text)
    good = browser.http.post(action, data={**form["fields"], "api_key": "sk_demo_ada"}, timeout=10)
    assert good.status_code == 200, good.text[:300]
    message = result_message(good.text)["message"]["payload"]
    assert message["status"] == "connected"
    assert message["payload"]["connected_accounts"][0]["app"] == "sandbox-keys"
    assert "sk_demo_ada" not in good.text


def test_api_key_form_requires_csrf_token(stack: DemoStack, api: Api) -> None:
    browser = Browser()
    ticket = api.ticket("sandbox-keys")
    browser.http.get(ticket["connect_url"], timeout=10)
    response = browser.http.post(ticket["connect_url"], data={"api_key": "sk_demo_ada"}, timeout=10)
    assert response.status_code == 400
    assert account_count(stack, api.user_id) == 0


def test_basic_auth_form_connects(stack: DemoStack, api: Api) -> None:
    from conftest import parse_form

    browser = Browser()
    ticket = api.ticket("sandbox-basic")
    page = browser.http.get(ticket["connect_url"], timeout=10)
    form = parse_form(page.text)
    action = requests.compat.urljoin(ticket["connect_url"], form["action"])
    response = browser.http.post(
        action, data={**form["fields"], "username": "ada", "password": "lovelace"}, timeout=10
    )
    assert response.status_code == 200, response.text[:300]
    assert result_message(response.text)["message"]["payload"]["status"] == "connected"
    assert account_count(stack, api.user_id) == 1


def test_denied_result_page_uses_plain_words_and_keeps_the_code(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    """The popup's failure page says what happened in plain words, not the RFC 6749 §4.1.2.1
    description the provider sent; the code stays in the result message and the attempt."""
    browser = Browser()
    ticket = api.ticket()
    consent = browser.consent(browser.start(ticket["connect_url"]).headers["Location"], "deny")
    rfc_wording = "The resource owner or authorization server denied the request."
    response = browser.callback(with_params(consent.callback_url, error_description=rfc_wording))
    assert response.status_code == 400
    assert "You chose not to connect Sandbox CRM." in response.text
    assert "denied the request" not in response.text
    error = result_message(response.text)["message"]["payload"]["error"]
    assert error == {"type": "access_denied", "message": "You chose not to connect Sandbox CRM."}
    status = api.get(f"/connect-attempts/{ticket['attempt_id']}").json()
    assert status["error"] == error


@pytest.mark.security("`error=access_denied&error_description=<script>…`")
def test_provider_problem_shows_its_description_escaped(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    browser = Browser()
    ticket = api.ticket()
    consent = browser.consent(browser.start(ticket["connect_url"]).headers["Location"], "deny")
    hostile = with_params(
        consent.callback_url, error="server_error", error_description="<script>alert(1)</script>"
    )
    response = browser.callback(hostile)
    assert response.status_code == 400
    assert "<script>alert(1)</script>" not in response.text
    assert "Sandbox CRM reported a problem: &lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    error = result_message(response.text)["message"]["payload"]["error"]
    assert error["type"] == "server_error"
    assert account_count(stack, api.user_id) == 0
