"""The sandbox OAuth 2.0 provider, driven over real HTTP on a loopback port.

A ``requests.Session`` plays the browser on the consent page; plain ``requests`` calls play the
client at the token, revocation and resource endpoints.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from portal.sandbox.testing import RunningSandbox, start_sandbox

REDIRECT_URI = "http://127.0.0.1:9/callback"
ALL_SCOPES = "profile contacts.read contacts.write"

BASIC_CLIENT = {
    "client_id": "basic-client",
    "client_secret": "basic-secret",
    "client_name": "Test Portal",
    "redirect_uris": [REDIRECT_URI],
    "scope": ALL_SCOPES,
    "token_endpoint_auth_method": "client_secret_basic",
}
POST_CLIENT = {
    "client_id": "post-client",
    "client_secret": "post-secret",
    "redirect_uris": [REDIRECT_URI],
    "scope": ALL_SCOPES,
    "token_endpoint_auth_method": "client_secret_post",
}
PUBLIC_CLIENT = {
    "client_id": "public-client",
    "redirect_uris": [REDIRECT_URI],
    "scope": "profile contacts.read",
    "token_endpoint_auth_method": "none",
}


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[RunningSandbox]:
    """A sandbox on 127.0.0.1:<free port>, served by werkzeug's threaded server in a thread."""
    server = start_sandbox({"SANDBOX_CLIENTS": [BASIC_CLIENT, POST_CLIENT, PUBLIC_CLIENT]})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _reset_hooks(sandbox_server: RunningSandbox) -> Iterator[None]:
    requests.post(f"{sandbox_server.url}/_sandbox/reset", timeout=5).raise_for_status()
    yield
    requests.post(f"{sandbox_server.url}/_sandbox/reset", timeout=5).raise_for_status()


# -- helpers -----------------------------------------------------------------------------------


def pkce_pair() -> tuple[str, str]:
    """A fresh RFC 7636 verifier (64 chars) and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(base: str, **params: str | None) -> str:
    query = {k: v for k, v in params.items() if v is not None}
    return f"{base}/oauth/authorize?{urlencode(query)}"


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "consent page has no CSRF field"
    return match.group(1)


def user_ids_from(html: str) -> list[str]:
    return re.findall(r'name="user" value="(\d+)"', html)


@dataclass
class Approval:
    """What the client's redirect URI received, plus what the client kept."""

    location: str
    params: dict[str, str]
    verifier: str
    client: dict[str, Any]


def approve(
    sandbox: RunningSandbox,
    *,
    client: dict[str, Any] = BASIC_CLIENT,
    scope: str = ALL_SCOPES,
    user_index: int = 0,
    decision: str = "allow",
) -> Approval:
    """Open the consent page in a fresh browser session, pick a user, press a button."""
    verifier, challenge = pkce_pair()
    url = authorize_url(
        sandbox.url,
        response_type="code",
        client_id=client["client_id"],
        redirect_uri=REDIRECT_URI,
        scope=scope,
        state=secrets.token_urlsafe(16),
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    browser = requests.Session()
    page = browser.get(url, timeout=5)
    assert page.status_code == 200, page.text
    form = {"csrf_token": csrf_from(page.text), "decision": decision}
    form["user"] = user_ids_from(page.text)[user_index]
    answer = browser.post(url, data=form, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    return Approval(location, query_of(location), verifier, client)


def client_auth(client: dict[str, Any]) -> tuple[dict[str, str], Any]:
    """(extra form fields, requests auth) for the client's registered auth method."""
    method = client["token_endpoint_auth_method"]
    if method == "client_secret_basic":
        return {}, (client["client_id"], client["client_secret"])
    if method == "client_secret_post":
        return {"client_id": client["client_id"], "client_secret": client["client_secret"]}, None
    return {"client_id": client["client_id"]}, None


def token_request(
    sandbox: RunningSandbox, client: dict[str, Any], timeout: float = 5, **form: str
) -> requests.Response:
    extra, auth = client_auth(client)
    return requests.post(
        f"{sandbox.url}/oauth/token", data={**form, **extra}, auth=auth, timeout=timeout
    )


def exchange(
    sandbox: RunningSandbox, approval: Approval, verifier: str | None = None
) -> requests.Response:
    return token_request(
        sandbox,
        approval.client,
        grant_type="authorization_code",
        code=approval.params["code"],
        redirect_uri=REDIRECT_URI,
        code_verifier=verifier or approval.verifier,
    )


def refresh(
    sandbox: RunningSandbox, refresh_token: str, client: dict[str, Any] = BASIC_CLIENT
) -> requests.Response:
    return token_request(sandbox, client, grant_type="refresh_token", refresh_token=refresh_token)


def tokens_for(sandbox: RunningSandbox, **kwargs: Any) -> dict[str, Any]:
    """The token response of a complete code + PKCE flow."""
    response = exchange(sandbox, approve(sandbox, **kwargs))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def userinfo(sandbox: RunningSandbox, token: str) -> requests.Response:
    return requests.get(f"{sandbox.url}/oauth/userinfo", headers=bearer(token), timeout=5)


def stats(sandbox: RunningSandbox) -> dict[str, Any]:
    body: dict[str, Any] = requests.get(f"{sandbox.url}/_sandbox/stats", timeout=5).json()
    return body


def set_fault(sandbox: RunningSandbox, mode: str | None, **extra: Any) -> requests.Response:
    return requests.post(
        f"{sandbox.url}/_sandbox/faults", json={"token_endpoint": mode, **extra}, timeout=5
    )


# -- authorization code + PKCE -----------------------------------------------------------------


def test_full_code_flow_with_pkce(sandbox_server: RunningSandbox) -> None:
    approval = approve(sandbox_server)
    assert approval.location.startswith(REDIRECT_URI + "?")
    assert approval.params["code"]

    response = exchange(sandbox_server, approval)

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == ALL_SCOPES
    assert body["access_token"] and body["refresh_token"]
    me = userinfo(sandbox_server, body["access_token"])
    assert me.status_code == 200
    assert me.json()["preferred_username"] == "ada"


def test_authorization_response_carries_state_and_iss(sandbox_server: RunningSandbox) -> None:
    verifier, challenge = pkce_pair()
    url = authorize_url(
        sandbox_server.url,
        response_type="code",
        client_id="basic-client",
        redirect_uri=REDIRECT_URI,
        scope="profile",
        state="state-123",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    browser = requests.Session()
    page = browser.get(url, timeout=5)
    form = {"csrf_token": csrf_from(page.text), "decision": "allow", "user": "1"}
    answer = browser.post(url, data=form, allow_redirects=False, timeout=5)

    params = query_of(answer.headers["Location"])
    assert params["state"] == "state-123"
    assert params["iss"] == sandbox_server.url  # RFC 9207 §2


def test_public_and_client_secret_post_clients_complete_the_flow(
    sandbox_server: RunningSandbox,
) -> None:
    for client in (POST_CLIENT, PUBLIC_CLIENT):
        body = tokens_for(sandbox_server, client=client, scope="profile")
        assert userinfo(sandbox_server, body["access_token"]).status_code == 200


def test_client_must_use_its_registered_auth_method(sandbox_server: RunningSandbox) -> None:
    approval = approve(sandbox_server)
    response = requests.post(
        f"{sandbox_server.url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": approval.params["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": approval.verifier,
            "client_id": "basic-client",
            "client_secret": "basic-secret",  # a client_secret_basic client using POST auth
        },
        timeout=5,
    )
    assert response.status_code in (400, 401)
    assert response.json()["error"] == "invalid_client"


def test_wrong_client_secret_is_refused(sandbox_server: RunningSandbox) -> None:
    approval = approve(sandbox_server)
    wrong = dict(BASIC_CLIENT, client_secret="not-the-secret")
    response = exchange(sandbox_server, Approval(**{**approval.__dict__, "client": wrong}))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def _authorize_get(sandbox: RunningSandbox, **overrides: str | None) -> requests.Response:
    _, challenge = pkce_pair()
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": "basic-client",
        "redirect_uri": REDIRECT_URI,
        "scope": "profile",
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return requests.get(authorize_url(sandbox.url, **params), allow_redirects=False, timeout=5)


def test_missing_pkce_is_refused(sandbox_server: RunningSandbox) -> None:
    response = _authorize_get(sandbox_server, code_challenge=None, code_challenge_method=None)

    assert response.status_code == 302
    params = query_of(response.headers["Location"])
    assert response.headers["Location"].startswith(REDIRECT_URI)
    assert params["error"] == "invalid_request"
    assert "code" not in params
    assert params["state"] == "s1"
    assert params["iss"] == sandbox_server.url


def test_missing_pkce_is_refused_on_the_consent_post_too(sandbox_server: RunningSandbox) -> None:
    browser = requests.Session()
    good = browser.get(_authorize_get(sandbox_server).url, timeout=5)
    url = authorize_url(
        sandbox_server.url,
        response_type="code",
        client_id="basic-client",
        redirect_uri=REDIRECT_URI,
        state="s2",
    )
    form = {"csrf_token": csrf_from(good.text), "decision": "allow", "user": "1"}
    answer = browser.post(url, data=form, allow_redirects=False, timeout=5)

    params = query_of(answer.headers["Location"])
    assert params["error"] == "invalid_request"
    assert "code" not in params


@pytest.mark.parametrize("method", ["plain", None, "S512"])
def test_only_s256_is_accepted(sandbox_server: RunningSandbox, method: str | None) -> None:
    # No method means "plain" (RFC 7636 §4.3), which is refused too.
    response = _authorize_get(sandbox_server, code_challenge_method=method)

    assert response.status_code == 302
    params = query_of(response.headers["Location"])
    assert params["error"] == "invalid_request"
    assert "code" not in params


def test_wrong_verifier_gets_invalid_grant(sandbox_server: RunningSandbox) -> None:
    approval = approve(sandbox_server)
    other_verifier, _ = pkce_pair()

    response = exchange(sandbox_server, approval, verifier=other_verifier)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "access_token" not in response.json()


def test_missing_verifier_is_refused(sandbox_server: RunningSandbox) -> None:
    approval = approve(sandbox_server)
    response = token_request(
        sandbox_server,
        BASIC_CLIENT,
        grant_type="authorization_code",
        code=approval.params["code"],
        redirect_uri=REDIRECT_URI,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_code_replay_fails_and_revokes_the_first_tokens(sandbox_server: RunningSandbox) -> None:
    approval = approve(sandbox_server)
    first = exchange(sandbox_server, approval)
    assert first.status_code == 200
    assert userinfo(sandbox_server, first.json()["access_token"]).status_code == 200

    second = exchange(sandbox_server, approval)

    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    # RFC 6749 §4.1.2: tokens issued from a replayed code SHOULD be revoked.
    assert userinfo(sandbox_server, first.json()["access_token"]).status_code == 401
    assert refresh(sandbox_server, first.json()["refresh_token"]).status_code == 400


def test_code_is_bound_to_its_client_and_redirect_uri(sandbox_server: RunningSandbox) -> None:
    approval = approve(sandbox_server)
    stolen = Approval(**{**approval.__dict__, "client": POST_CLIENT})
    assert exchange(sandbox_server, stolen).json()["error"] == "invalid_grant"

    response = token_request(
        sandbox_server,
        BASIC_CLIENT,
        grant_type="authorization_code",
        code=approval.params["code"],
        redirect_uri="http://127.0.0.1:9/other",
        code_verifier=approval.verifier,
    )
    assert response.json()["error"] == "invalid_grant"


def test_deny_redirects_with_access_denied(sandbox_server: RunningSandbox) -> None:
    approval = approve(sandbox_server, decision="deny")

    assert approval.location.startswith(REDIRECT_URI)
    assert approval.params["error"] == "access_denied"
    assert approval.params["iss"] == sandbox_server.url
    assert approval.params["state"]
    assert "code" not in approval.params


def test_consent_page_shows_client_scopes_and_users(sandbox_server: RunningSandbox) -> None:
    response = _authorize_get(sandbox_server, scope="profile contacts.read")

    assert response.status_code == 200
    html = response.text
    assert "<title>Sandbox provider — authorize Test Portal</title>" in html
    assert "Read your contacts" in html and "contacts.write" not in html
    assert "Ada Lovelace" in html and "Grace Hopper" in html and "Linus Torvalds" in html
    assert re.search(r'value="1" checked', html)
    assert 'value="allow"' in html and 'value="deny"' in html
    # Strict CSP: no inline script or style, not frameable.
    assert "<script" not in html and "style=" not in html and "<style" not in html
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    # Chromium checks form-action against the 302 that follows the POST, so the client's
    # redirect origin (and only it) is allowed too.
    assert "form-action 'self' http://127.0.0.1:9;" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    css = requests.get(f"{sandbox_server.url}/static/sandbox.css", timeout=5)
    assert css.status_code == 200 and "prefers-color-scheme: dark" in css.text


def test_consent_post_without_valid_csrf_token_is_refused(sandbox_server: RunningSandbox) -> None:
    url = _authorize_get(sandbox_server).url
    browser = requests.Session()
    browser.get(url, timeout=5)
    other_browser = requests.Session()
    foreign_token = csrf_from(other_browser.get(url, timeout=5).text)

    for form in (
        {"decision": "allow", "user": "1"},
        {"decision": "allow", "user": "1", "csrf_token": foreign_token},
    ):
        answer = browser.post(url, data=form, allow_redirects=False, timeout=5)
        assert answer.status_code == 400
        assert "Location" not in answer.headers


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"redirect_uri": "http://evil.example/callback"}, "invalid_request"),
        ({"redirect_uri": REDIRECT_URI + "/../evil"}, "invalid_request"),
        ({"client_id": "no-such-client"}, "invalid_client"),
        ({"client_id": None}, "invalid_client"),
    ],
)
def test_bad_client_or_redirect_uri_shows_an_error_page_and_never_redirects(
    sandbox_server: RunningSandbox, overrides: dict[str, str | None], error: str
) -> None:
    response = _authorize_get(sandbox_server, **overrides)

    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")
    assert f'data-sandbox-error="{error}"' in response.text
    assert "evil.example" not in response.headers.get("Content-Security-Policy", "")


def test_bad_redirect_uri_is_not_followed_on_post_either(sandbox_server: RunningSandbox) -> None:
    browser = requests.Session()
    token = csrf_from(browser.get(_authorize_get(sandbox_server).url, timeout=5).text)
    url = _authorize_get(sandbox_server, redirect_uri="http://evil.example/cb").url

    answer = browser.post(
        url, data={"csrf_token": token, "decision": "deny"}, allow_redirects=False, timeout=5
    )

    assert answer.status_code == 400
    assert "Location" not in answer.headers


def test_error_description_is_escaped_on_the_error_page(sandbox_server: RunningSandbox) -> None:
    response = _authorize_get(sandbox_server, redirect_uri="http://x/<script>alert(1)</script>")
    assert response.status_code == 400
    assert "<script>alert(1)" not in response.text


def test_unsupported_response_type_and_unknown_scope_go_back_to_the_client(
    sandbox_server: RunningSandbox,
) -> None:
    for overrides, error in (
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "profile admin"}, "invalid_scope"),
    ):
        response = _authorize_get(sandbox_server, **overrides)
        assert response.status_code == 302
        params = query_of(response.headers["Location"])
        assert params["error"] == error
        assert params["iss"] == sandbox_server.url


@pytest.mark.parametrize("grant_type", ["password", "implicit"])
def test_only_code_and_refresh_grants_exist(
    sandbox_server: RunningSandbox, grant_type: str
) -> None:
    response = token_request(
        sandbox_server, BASIC_CLIENT, grant_type=grant_type, username="ada", password="x"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_code_clients_may_not_use_client_credentials(sandbox_server: RunningSandbox) -> None:
    # The grant exists for machine-to-machine clients only (grant_types: [client_credentials]);
    # a client registered for the code grant is refused (RFC 6749 §5.2 unauthorized_client).
    response = token_request(sandbox_server, BASIC_CLIENT, grant_type="client_credentials")
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


# -- refresh tokens ----------------------------------------------------------------------------


def test_refresh_rotates_the_refresh_token(sandbox_server: RunningSandbox) -> None:
    first = tokens_for(sandbox_server)

    response = refresh(sandbox_server, first["refresh_token"])

    assert response.status_code == 200, response.text
    second = response.json()
    assert second["token_type"] == "Bearer"
    assert second["expires_in"] == 3600
    assert second["scope"] == ALL_SCOPES
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert userinfo(sandbox_server, second["access_token"]).status_code == 200
    third = refresh(sandbox_server, second["refresh_token"])
    assert third.status_code == 200


def test_refresh_can_narrow_but_not_widen_scope(sandbox_server: RunningSandbox) -> None:
    first = tokens_for(sandbox_server, scope="profile contacts.read")

    wider = token_request(
        sandbox_server,
        BASIC_CLIENT,
        grant_type="refresh_token",
        refresh_token=first["refresh_token"],
        scope="profile contacts.write",
    )
    assert wider.json()["error"] == "invalid_scope"

    narrower = token_request(
        sandbox_server,
        BASIC_CLIENT,
        grant_type="refresh_token",
        refresh_token=first["refresh_token"],
        scope="profile",
    )
    assert narrower.status_code == 200
    assert narrower.json()["scope"] == "profile"


def test_refresh_token_reuse_revokes_the_whole_grant(sandbox_server: RunningSandbox) -> None:
    first = tokens_for(sandbox_server)
    second = refresh(sandbox_server, first["refresh_token"]).json()
    assert userinfo(sandbox_server, second["access_token"]).status_code == 200

    reuse = refresh(sandbox_server, first["refresh_token"])

    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    assert userinfo(sandbox_server, second["access_token"]).status_code == 401
    assert userinfo(sandbox_server, first["access_token"]).status_code == 401
    assert refresh(sandbox_server, second["refresh_token"]).json()["error"] == "invalid_grant"


def test_refresh_token_of_another_client_is_refused(sandbox_server: RunningSandbox) -> None:
    first = tokens_for(sandbox_server)
    response = refresh(sandbox_server, first["refresh_token"], client=POST_CLIENT)
    assert response.json()["error"] == "invalid_grant"
    # The owner's grant is untouched.
    assert refresh(sandbox_server, first["refresh_token"]).status_code == 200


def test_concurrent_refreshes_with_one_token_let_exactly_one_through(
    sandbox_server: RunningSandbox,
) -> None:
    first = tokens_for(sandbox_server)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        status = refresh(sandbox_server, first["refresh_token"]).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200] + [400] * 7
    assert stats(sandbox_server)["token_requests"]["refresh_token"] == 8


def test_expire_access_tokens_hook_then_refresh(sandbox_server: RunningSandbox) -> None:
    first = tokens_for(sandbox_server)

    expired = requests.post(f"{sandbox_server.url}/_sandbox/expire-access-tokens", timeout=5)

    assert expired.status_code == 200 and expired.json()["expired"] >= 1
    response = userinfo(sandbox_server, first["access_token"])
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    second = refresh(sandbox_server, first["refresh_token"]).json()
    assert userinfo(sandbox_server, second["access_token"]).status_code == 200


# -- revocation (RFC 7009) ---------------------------------------------------------------------


def _revoke(
    sandbox: RunningSandbox,
    token: str,
    hint: str | None = None,
    client: dict[str, Any] = BASIC_CLIENT,
) -> requests.Response:
    extra, auth = client_auth(client)
    form = {"token": token, **extra}
    if hint:
        form["token_type_hint"] = hint
    return requests.post(f"{sandbox.url}/oauth/revoke", data=form, auth=auth, timeout=5)


def test_revoking_an_access_token(sandbox_server: RunningSandbox) -> None:
    body = tokens_for(sandbox_server)

    response = _revoke(sandbox_server, body["access_token"], hint="access_token")

    assert response.status_code == 200
    assert userinfo(sandbox_server, body["access_token"]).status_code == 401
    # The refresh token survives an access-token revocation.
    assert refresh(sandbox_server, body["refresh_token"]).status_code == 200


def test_revoking_a_refresh_token_revokes_its_grant(sandbox_server: RunningSandbox) -> None:
    body = tokens_for(sandbox_server)

    # A wrong hint must not stop the server from finding the token (RFC 7009 §2.1).
    response = _revoke(sandbox_server, body["refresh_token"], hint="access_token")

    assert response.status_code == 200
    assert refresh(sandbox_server, body["refresh_token"]).json()["error"] == "invalid_grant"
    assert userinfo(sandbox_server, body["access_token"]).status_code == 401
    assert stats(sandbox_server)["revocations"] == 1


def test_revoking_unknown_or_already_revoked_tokens_answers_200(
    sandbox_server: RunningSandbox,
) -> None:
    body = tokens_for(sandbox_server)
    assert _revoke(sandbox_server, "not-a-token").status_code == 200
    assert _revoke(sandbox_server, body["access_token"]).status_code == 200
    assert _revoke(sandbox_server, body["access_token"]).status_code == 200


def test_revocation_requires_client_authentication(sandbox_server: RunningSandbox) -> None:
    body = tokens_for(sandbox_server)
    response = requests.post(
        f"{sandbox_server.url}/oauth/revoke", data={"token": body["access_token"]}, timeout=5
    )
    assert response.status_code in (400, 401)
    assert response.json()["error"] == "invalid_client"
    assert userinfo(sandbox_server, body["access_token"]).status_code == 200


# -- userinfo and the API ----------------------------------------------------------------------


def test_userinfo(sandbox_server: RunningSandbox) -> None:
    body = tokens_for(sandbox_server, user_index=1)

    response = userinfo(sandbox_server, body["access_token"])

    assert response.status_code == 200
    assert response.json() == {
        "sub": "2",
        "name": "Grace Hopper",
        "email": "grace@sandbox.test",
        "preferred_username": "grace",
    }
    missing = requests.get(f"{sandbox_server.url}/oauth/userinfo", timeout=5)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    bad = userinfo(sandbox_server, "forged")
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    assert stats(sandbox_server)["userinfo_requests"] == 3


def test_api_me(sandbox_server: RunningSandbox) -> None:
    body = tokens_for(sandbox_server, user_index=2, scope="profile")
    response = requests.get(
        f"{sandbox_server.url}/api/me", headers=bearer(body["access_token"]), timeout=5
    )
    assert response.json() == {
        "id": "3",
        "username": "linus",
        "name": "Linus Torvalds",
        "email": "linus@sandbox.test",
    }


def test_contacts_pagination_walks_every_page(sandbox_server: RunningSandbox) -> None:
    token = tokens_for(sandbox_server, scope="contacts.read")["access_token"]
    url = f"{sandbox_server.url}/api/contacts"

    everything = requests.get(url, params={"limit": 100}, headers=bearer(token), timeout=5).json()
    assert everything["next_cursor"] is None
    assert len(everything["data"]) >= 12

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        page = requests.get(url, params=params, headers=bearer(token), timeout=5)
        assert page.status_code == 200
        body = page.json()
        assert 1 <= len(body["data"]) <= 5
        seen.extend(c["id"] for c in body["data"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert len(body["data"]) == 5

    assert seen == [c["id"] for c in everything["data"]]
    assert len(set(seen)) == len(seen)
    assert pages == -(-len(seen) // 5)
    first = everything["data"][0]
    assert set(first) == {"id", "name", "email", "created_at"}
    assert first["created_at"].endswith("Z")

    default = requests.get(url, headers=bearer(token), timeout=5).json()
    assert len(default["data"]) == 10 and default["next_cursor"]
    clamped = requests.get(url, params={"limit": 1000}, headers=bearer(token), timeout=5)
    assert clamped.status_code == 200 and len(clamped.json()["data"]) <= 100


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"cursor": "garbage!"}, "invalid_cursor"),
        ({"limit": "0"}, "invalid_request"),
        ({"limit": "ten"}, "invalid_request"),
    ],
)
def test_contacts_rejects_bad_paging(
    sandbox_server: RunningSandbox, params: dict[str, str], error: str
) -> None:
    token = tokens_for(sandbox_server, scope="contacts.read")["access_token"]
    response = requests.get(
        f"{sandbox_server.url}/api/contacts", params=params, headers=bearer(token), timeout=5
    )
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response.json()["message"]


def test_create_and_fetch_a_contact(sandbox_server: RunningSandbox) -> None:
    token = tokens_for(sandbox_server, user_index=1)["access_token"]
    url = f"{sandbox_server.url}/api/contacts"

    created = requests.post(
        url,
        json={"name": "Katherine Johnson", "email": "kj@sandbox.test"},
        headers=bearer(token),
        timeout=5,
    )

    assert created.status_code == 201
    contact = created.json()
    assert contact["name"] == "Katherine Johnson"
    fetched = requests.get(f"{url}/{contact['id']}", headers=bearer(token), timeout=5)
    assert fetched.json() == contact
    # Invisible to another user: 404, not 403.
    other = tokens_for(sandbox_server, user_index=2)["access_token"]
    assert (
        requests.get(f"{url}/{contact['id']}", headers=bearer(other), timeout=5).status_code == 404
    )
    bad = requests.post(url, json={"name": "", "email": "x"}, headers=bearer(token), timeout=5)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"


def test_scopes_are_enforced(sandbox_server: RunningSandbox) -> None:
    url = f"{sandbox_server.url}/api/contacts"
    read_only = tokens_for(sandbox_server, scope="contacts.read")["access_token"]
    profile_only = tokens_for(sandbox_server, scope="profile")["access_token"]

    assert requests.get(url, headers=bearer(read_only), timeout=5).status_code == 200
    denied = requests.post(
        url, json={"name": "N", "email": "n@sandbox.test"}, headers=bearer(read_only), timeout=5
    )
    assert denied.status_code == 403
    assert denied.json()["error"] == "insufficient_scope"
    assert 'scope="contacts.write"' in denied.headers["WWW-Authenticate"]
    listing = requests.get(url, headers=bearer(profile_only), timeout=5)
    assert listing.status_code == 403
    assert 'scope="contacts.read"' in listing.headers["WWW-Authenticate"]


def test_api_errors_are_json(sandbox_server: RunningSandbox) -> None:
    response = requests.get(f"{sandbox_server.url}/api/nothing-here", timeout=5)
    assert response.status_code == 404
    assert set(response.json()) == {"error", "message"}
    missing = requests.get(f"{sandbox_server.url}/api/contacts", timeout=5)
    assert missing.status_code == 401
    assert missing.json()["error"] == "missing_token"
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="sandbox"'


def test_api_key_identity_and_api_access(sandbox_server: RunningSandbox) -> None:
    base = sandbox_server.url

    me = requests.get(f"{base}/apikey/me", headers={"X-API-Key": "sk_demo_grace"}, timeout=5)
    contacts = requests.get(
        f"{base}/api/contacts", headers={"X-API-Key": "sk_demo_grace"}, timeout=5
    )

    assert me.status_code == 200
    assert me.json() == {
        "id": "2",
        "username": "grace",
        "name": "Grace Hopper",
        "email": "grace@sandbox.test",
    }
    assert contacts.status_code == 200 and contacts.json()["data"]
    for headers in ({"X-API-Key": "sk_wrong"}, {}):
        refused = requests.get(f"{base}/apikey/me", headers=headers, timeout=5)
        assert refused.status_code == 401
        assert refused.json()["error"] == "invalid_credentials"
    wrong = requests.get(f"{base}/api/me", headers={"X-API-Key": "sk_wrong"}, timeout=5)
    assert wrong.status_code == 401


def test_basic_identity_and_api_access(sandbox_server: RunningSandbox) -> None:
    base = sandbox_server.url

    me = requests.get(f"{base}/basic/me", auth=("ada", "lovelace"), timeout=5)
    api_me = requests.get(f"{base}/api/me", auth=("linus", "torvalds"), timeout=5)

    assert me.status_code == 200 and me.json()["username"] == "ada"
    assert api_me.status_code == 200 and api_me.json()["username"] == "linus"
    for auth in (("ada", "wrong"), ("nobody", "lovelace"), ("grace", "lovelace")):
        refused = requests.get(f"{base}/basic/me", auth=auth, timeout=5)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Basic ")
    assert requests.get(f"{base}/api/me", auth=("ada", "wrong"), timeout=5).status_code == 401
    # Basic credentials never work where OAuth is required.
    assert (
        requests.get(f"{base}/oauth/userinfo", auth=("ada", "lovelace"), timeout=5).status_code
        == 401
    )


# -- metadata ----------------------------------------------------------------------------------


def test_metadata_document(sandbox_server: RunningSandbox) -> None:
    base = sandbox_server.url
    oauth = requests.get(f"{base}/.well-known/oauth-authorization-server", timeout=5).json()
    oidc = requests.get(f"{base}/.well-known/openid-configuration", timeout=5).json()

    assert oauth == oidc
    assert oauth["issuer"] == base
    assert oauth["authorization_endpoint"] == f"{base}/oauth/authorize"
    assert oauth["token_endpoint"] == f"{base}/oauth/token"
    assert oauth["revocation_endpoint"] == f"{base}/oauth/revoke"
    assert oauth["userinfo_endpoint"] == f"{base}/oauth/userinfo"
    assert oauth["code_challenge_methods_supported"] == ["S256"]
    assert oauth["response_types_supported"] == ["code"]
    assert set(oauth["grant_types_supported"]) == {"authorization_code", "refresh_token"}
    assert set(oauth["scopes_supported"]) == {"openid", *ALL_SCOPES.split(), "contacts.delete"}
    assert oauth["jwks_uri"] == f"{base}/oauth/jwks"
    assert oauth["id_token_signing_alg_values_supported"] == ["RS256"]
    assert oauth["authorization_response_iss_parameter_supported"] is True
    assert set(oauth["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "none",
    }
    # Every advertised endpoint answers (not 404).
    for key in ("authorization_endpoint", "token_endpoint", "revocation_endpoint"):
        assert requests.post(oauth[key], timeout=5).status_code != 404


def test_metadata_ignores_a_spoofed_host_header(sandbox_server: RunningSandbox) -> None:
    response = requests.get(
        f"{sandbox_server.url}/.well-known/oauth-authorization-server",
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
        timeout=5,
    )
    assert "evil.example" not in response.text


# -- faults and stats --------------------------------------------------------------------------


def test_stats_count_token_requests_by_grant_type(sandbox_server: RunningSandbox) -> None:
    body = tokens_for(sandbox_server)
    refresh(sandbox_server, body["refresh_token"])
    refresh(sandbox_server, "unknown")

    counted = stats(sandbox_server)

    assert counted["token_requests"] == {
        "authorization_code": 1,
        "refresh_token": 2,
        "client_credentials": 0,
    }
    assert counted["revocations"] == 0
    assert counted["userinfo_requests"] == 0


@pytest.mark.parametrize("mode", ["500", "html", "malformed_json"])
def test_token_endpoint_faults(sandbox_server: RunningSandbox, mode: str) -> None:
    approval = approve(sandbox_server)
    assert set_fault(sandbox_server, mode).json()["token_endpoint"] == mode

    for _ in range(2):  # the fault stays until cleared
        response = exchange(sandbox_server, approval)
        if mode == "500":
            assert response.status_code == 500
            assert not response.headers["Content-Type"].startswith("application/json")
        elif mode == "html":
            assert response.status_code == 200
            assert response.headers["Content-Type"].startswith("text/html")
        else:
            assert response.status_code == 200
            assert response.headers["Content-Type"].startswith("application/json")
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.text)

    assert stats(sandbox_server)["token_requests"]["authorization_code"] == 2
    assert set_fault(sandbox_server, None).json()["token_endpoint"] is None
    # The misbehaving answers did not consume the code.
    assert exchange(sandbox_server, approval).status_code == 200


def test_token_endpoint_timeout_fault(sandbox_server: RunningSandbox) -> None:
    approval = approve(sandbox_server)
    set_fault(sandbox_server, "timeout", timeout_seconds=0.6)

    with pytest.raises(requests.exceptions.ReadTimeout):
        token_request(
            sandbox_server,
            BASIC_CLIENT,
            timeout=0.2,
            grant_type="refresh_token",
            refresh_token="whatever",
        )
    started = time.monotonic()
    response = exchange(sandbox_server, approval)  # a patient client gets a real answer

    assert time.monotonic() - started >= 0.6
    assert response.status_code == 200
    assert response.json()["access_token"]


def test_fault_hook_validates_input_and_reset_clears_everything(
    sandbox_server: RunningSandbox,
) -> None:
    assert set_fault(sandbox_server, "teapot").status_code == 400
    assert set_fault(sandbox_server, "timeout", timeout_seconds="soon").status_code == 400
    assert requests.post(f"{sandbox_server.url}/_sandbox/faults", timeout=5).status_code == 400

    set_fault(sandbox_server, "500")
    shown = requests.get(f"{sandbox_server.url}/_sandbox/faults", timeout=5).json()
    assert shown["token_endpoint"] == "500"
    tokens = token_request(sandbox_server, BASIC_CLIENT, grant_type="refresh_token")
    assert tokens.status_code == 500
    requests.post(f"{sandbox_server.url}/_sandbox/reset", timeout=5)

    assert stats(sandbox_server) == {
        "token_requests": {"authorization_code": 0, "refresh_token": 0, "client_credentials": 0},
        "revocations": 0,
        "userinfo_requests": 0,
        "api_requests": 0,
    }
    after = token_request(sandbox_server, BASIC_CLIENT, grant_type="refresh_token")
    assert after.status_code == 400 and after.json()["error"] == "invalid_request"


def test_api_faults_take_the_api_down_or_revoke_demo_credentials(
    sandbox_server: RunningSandbox,
) -> None:
    """The health checks' fault switches: ``{"api": "500"}`` and
    ``{"api": "reject_credentials"}``, counted like any API request; reset clears them."""
    hook = f"{sandbox_server.url}/_sandbox/faults"
    me = f"{sandbox_server.url}/api/me"
    key = {"X-API-Key": "sk_demo_ada"}
    assert requests.get(me, headers=key, timeout=5).status_code == 200
    assert requests.post(hook, json={"api": "teapot"}, timeout=5).status_code == 400

    assert requests.post(hook, json={"api": "reject_credentials"}, timeout=5).json()["api"] == (
        "reject_credentials"
    )
    refused = requests.get(me, headers=key, timeout=5)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_credentials"
    basic = requests.get(f"{sandbox_server.url}/basic/me", auth=("ada", "lovelace"), timeout=5)
    assert basic.status_code == 401

    requests.post(hook, json={"api": "500"}, timeout=5)
    assert requests.get(me, headers=key, timeout=5).status_code == 500
    assert stats(sandbox_server)["api_requests"] == 4  # faults included

    requests.post(f"{sandbox_server.url}/_sandbox/reset", timeout=5)
    assert requests.get(hook, timeout=5).json()["api"] is None
    assert requests.get(me, headers=key, timeout=5).status_code == 200


def test_counters_are_exact_under_concurrency(sandbox_server: RunningSandbox) -> None:
    token = tokens_for(sandbox_server, scope="profile")["access_token"]

    threads = [threading.Thread(target=userinfo, args=(sandbox_server, token)) for _ in range(25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert stats(sandbox_server)["userinfo_requests"] == 25


# -- configuration -----------------------------------------------------------------------------


def test_create_app_requires_an_issuer() -> None:
    from portal.sandbox import create_app

    with pytest.raises(RuntimeError, match="SANDBOX_ISSUER"):
        create_app({})
    with pytest.raises(RuntimeError, match="SANDBOX_ISSUER"):
        create_app({"SANDBOX_ISSUER": "ftp://127.0.0.1"})


def test_create_app_rejects_bad_clients() -> None:
    from portal.sandbox import create_app

    base = {"SANDBOX_ISSUER": "http://127.0.0.1:5002"}
    for bad in (
        {"client_id": "x", "redirect_uris": [REDIRECT_URI]},  # basic auth without a secret
        {"client_id": "x", "client_secret": "s", "redirect_uris": []},
        {"client_id": "x", "client_secret": "s", "redirect_uris": ["/relative"]},
        {"client_id": "x", "client_secret": "s", "redirect_uris": [REDIRECT_URI], "scope": "root"},
    ):
        with pytest.raises(ValueError):
            create_app({**base, "SANDBOX_CLIENTS": [bad]})


def test_code_and_access_token_lifetimes_come_from_config() -> None:
    other = start_sandbox(
        {
            "SANDBOX_CLIENTS": [BASIC_CLIENT],
            "SANDBOX_AUTHORIZATION_CODE_TTL": 1,
            "SANDBOX_ACCESS_TOKEN_TTL": 120,
        }
    )
    try:
        fresh = exchange(other, approve(other))
        assert fresh.status_code == 200
        assert fresh.json()["expires_in"] == 120

        stale = approve(other)
        time.sleep(1.2)
        late = exchange(other, stale)
        assert late.status_code == 400
        assert late.json()["error"] == "invalid_grant"
    finally:
        other.stop()


def test_insecure_transport_is_a_clear_error_not_a_crash(sandbox_server: RunningSandbox) -> None:
    # Authlib accepts plain http only for loopback hosts; a non-loopback Host is refused cleanly.
    headers = {"Host": "sandbox.internal"}
    page = requests.get(
        _authorize_get(sandbox_server).url, headers=headers, allow_redirects=False, timeout=5
    )
    token = requests.post(f"{sandbox_server.url}/oauth/token", headers=headers, timeout=5)

    assert page.status_code == 400 and "insecure_transport" in page.text
    assert token.status_code == 400 and token.json()["error"] == "insecure_transport"


def test_test_hooks_can_be_disabled() -> None:
    from portal.sandbox import create_app

    app = create_app({"SANDBOX_ISSUER": "http://127.0.0.1:5002", "SANDBOX_TEST_HOOKS": False})
    assert app.test_client().get("/_sandbox/stats").status_code == 404
    assert app.config["SESSION_COOKIE_NAME"] == "sandbox_session"
