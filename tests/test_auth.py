"""Host authentication (SECURITY.md "Host authentication"), over real HTTP to the portal."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from conftest import Api, new_session

from portal import user_hash
from portal.auth import TokenService, normalize_origin, origin_of_url, verify_user_hash
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DemoStack
from portal.errors import AuthenticationFailed


def create_session(
    stack: DemoStack, body: dict[str, Any], origin: str | None = None, **headers: str
) -> requests.Response:
    sent = dict(headers)
    if origin is not None:
        sent["Origin"] = origin
    return requests.post(
        f"{stack.portal.url}/portal/api/v1/sessions", json=body, headers=sent, timeout=10
    )


def browser_body(
    user: str, secret: str = DEMO_APP_SECRET, key: str = DEMO_APP_KEY
) -> dict[str, str]:
    return {"appKey": key, "userId": user, "hash": user_hash(secret, user)}


def test_user_hash_is_lowercase_hex_hmac_sha256() -> None:
    # HMAC-SHA256(key="key", msg="The quick brown fox jumps over the lazy dog"), RFC 4231 style vector
    assert user_hash("key", "The quick brown fox jumps over the lazy dog") == (
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )


def test_session_for_valid_hash(stack: DemoStack) -> None:
    response = create_session(stack, browser_body("alice"), stack.host.url)
    assert response.status_code == 201
    body = response.json()
    assert body["user_id"] == "alice" and body["origin"] == stack.host.url
    assert response.headers["Access-Control-Allow-Origin"] == stack.host.url


@pytest.mark.security("HMAC hash computed for user B presented with user A")
def test_hash_of_user_b_presented_for_user_a_is_401(stack: DemoStack) -> None:
    body = {"appKey": DEMO_APP_KEY, "userId": "alice", "hash": user_hash(DEMO_APP_SECRET, "bob")}
    response = create_session(stack, body, stack.host.url)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_hash"
    assert set(response.json()) == {"error", "message", "error_details"}


@pytest.mark.parametrize(
    "body",
    [
        browser_body("alice", key="wrong-key"),
        browser_body("alice", secret="wrong-secret"),
        {"appKey": DEMO_APP_KEY, "userId": "alice"},
        {"appKey": DEMO_APP_KEY, "userId": "alice", "hash": 12345},
    ],
    ids=["wrong-app-key", "wrong-secret", "missing-hash", "hash-not-string"],
)
@pytest.mark.security("Wrong or revoked app key / app secret")
def test_wrong_app_key_or_secret_is_401(stack: DemoStack, body: dict[str, Any]) -> None:
    assert create_session(stack, body, stack.host.url).status_code == 401


@pytest.mark.security("Wrong or revoked app key / app secret")
def test_server_to_server_session_needs_a_valid_app_secret(stack: DemoStack) -> None:
    url = f"{stack.portal.url}/portal/api/v1/sessions"
    body = {"userId": "alice", "origin": stack.host.url}
    ok = requests.post(
        url, json=body, headers={"Authorization": f"Bearer {DEMO_APP_SECRET}"}, timeout=10
    )
    assert ok.status_code == 201
    bad = requests.post(url, json=body, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert bad.status_code == 401
    other_origin = requests.post(
        url,
        json={"userId": "alice", "origin": "https://evil.example"},
        headers={"Authorization": f"Bearer {DEMO_APP_SECRET}"},
        timeout=10,
    )
    assert other_origin.status_code == 403


@pytest.mark.security("Wrong or revoked app key / app secret")
def test_secret_rotation_overlap_then_old_refused(make_app: Any, stack: DemoStack) -> None:
    def session(app: Any, secret: str) -> int:
        client = app.test_client()
        return int(
            client.post(
                "/portal/api/v1/sessions",
                json=browser_body("alice", secret=secret),
                headers={"Origin": stack.host.url},
            ).status_code
        )

    during = make_app(PORTAL_APP_KEYS={DEMO_APP_KEY: ["new-secret", DEMO_APP_SECRET]})
    assert session(during, "new-secret") == 201
    assert session(during, DEMO_APP_SECRET) == 201
    after = make_app(PORTAL_APP_KEYS={DEMO_APP_KEY: ["new-secret"]})
    assert session(after, "new-secret") == 201
    assert session(after, DEMO_APP_SECRET) == 401
    revoked = make_app(PORTAL_APP_KEYS={})
    assert session(revoked, "new-secret") == 401


def test_disallowed_origin_gets_no_session_and_no_cors(stack: DemoStack) -> None:
    response = create_session(stack, browser_body("alice"), "https://evil.example")
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers
    assert create_session(stack, browser_body("alice"), None).status_code == 403
    preflight = requests.options(
        f"{stack.portal.url}/portal/api/v1/sessions",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers
    allowed = requests.options(
        f"{stack.portal.url}/portal/api/v1/sessions",
        headers={"Origin": stack.host.url, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert allowed.headers["Access-Control-Allow-Origin"] == stack.host.url
    assert "Authorization" in allowed.headers["Access-Control-Allow-Headers"]


def test_only_a_preflight_answer_carries_the_preflight_headers(stack: DemoStack) -> None:
    # Fetch Standard: Allow-Headers, Allow-Methods and Max-Age are read from a preflight's
    # answer only; an actual answer needs Access-Control-Allow-Origin (and Vary: Origin).
    preflight_only = (
        "Access-Control-Allow-Headers",
        "Access-Control-Allow-Methods",
        "Access-Control-Max-Age",
    )
    preflight = requests.options(
        f"{stack.portal.url}/portal/api/v1/sessions",
        headers={"Origin": stack.host.url, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 204
    assert all(name in preflight.headers for name in preflight_only)
    actual = create_session(stack, browser_body("alice"), stack.host.url)
    assert actual.status_code == 201
    assert actual.headers["Access-Control-Allow-Origin"] == stack.host.url
    assert "Origin" in actual.headers["Vary"]
    assert not [name for name in preflight_only if name in actual.headers]


@pytest.mark.security("Oversized token or header (1 MB)")
def test_oversized_token_and_body_are_refused_quickly(stack: DemoStack) -> None:
    huge = "a" * (1024 * 1024)
    began = time.monotonic()
    response = requests.get(
        f"{stack.portal.url}/portal/api/v1/apps",
        headers={"Authorization": f"Bearer {huge}"},
        timeout=10,
    )
    assert response.status_code in (401, 413, 431)
    body = requests.post(
        f"{stack.portal.url}/portal/api/v1/sessions",
        data=b'{"userId": "' + huge.encode() + b'"}',
        headers={"Origin": stack.host.url, "Content-Type": "application/json"},
        timeout=10,
    )
    assert body.status_code == 413
    assert time.monotonic() - began < 5


@pytest.mark.parametrize(
    "user",
    ["ünïcødé-用户-🙂", "a" * 255, "with space and 'quotes' and <tags>", "e\u0301", "\u00e9"],
)
@pytest.mark.security("`user_id` is opaque")
def test_user_id_is_opaque_unicode(stack: DemoStack, user: str) -> None:
    response = create_session(stack, browser_body(user), stack.host.url)
    assert response.status_code == 201
    assert response.json()["user_id"] == user


@pytest.mark.parametrize("user", ["a" * 256, "", "nul\x00byte"])
@pytest.mark.security("`user_id` is opaque")
def test_user_id_out_of_bounds_is_400(stack: DemoStack, user: str) -> None:
    response = create_session(stack, browser_body(user), stack.host.url)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_user_id"


@pytest.mark.security("`user_id` is opaque")
def test_user_ids_that_look_alike_do_not_collide(stack: DemoStack, sandbox: str) -> None:
    from conftest import connect_sandbox

    nfd, nfc = new_session(stack, "e\u0301"), new_session(stack, "\u00e9")
    connect_sandbox(nfd)
    assert len(nfd.get("/connected-accounts").json()["connected_accounts"]) == 1
    assert nfc.get("/connected-accounts").json()["connected_accounts"] == []
    upper = new_session(stack, "E\u0301")
    assert upper.get("/connected-accounts").json()["connected_accounts"] == []


@pytest.mark.security("Session token from origin A used by a page on origin B")
def test_session_token_used_from_another_origin_is_refused(stack: DemoStack, api: Api) -> None:
    ok = requests.get(f"{api.base}/apps", headers=api.headers, timeout=10)
    assert ok.status_code == 200
    other = requests.get(
        f"{api.base}/apps",
        headers={"Authorization": f"Bearer {api.token}", "Origin": "https://evil.example"},
        timeout=10,
    )
    assert other.status_code == 403
    assert other.json()["error"] == "origin_mismatch"


@pytest.mark.security("Account id of user A requested with user B's session")
def test_account_of_user_a_with_session_of_user_b_is_404(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    from conftest import connect_sandbox

    connect_sandbox(api)
    [account] = api.get("/connected-accounts").json()["connected_accounts"]
    mallory = new_session(stack, api.user_id + "-mallory")
    missing = mallory.get("/connected-accounts/ca_doesnotexist")
    for response in (
        mallory.get(f"/connected-accounts/{account['id']}"),
        mallory.delete(f"/connected-accounts/{account['id']}"),
    ):
        assert response.status_code == 404
        assert response.json() == missing.json()
    assert len(api.get("/connected-accounts").json()["connected_accounts"]) == 1


def test_forged_and_expired_session_tokens_are_401() -> None:
    tokens = TokenService("secret", session_ttl=1, ticket_ttl=600)
    token, _ = tokens.issue_session("alice", "http://host.example", None)
    with pytest.raises(AuthenticationFailed):
        TokenService("other-secret", 1, 600).read_session(token)
    with pytest.raises(AuthenticationFailed):
        tokens.read_session(token[:-2] + "xx")
    time.sleep(2.1)
    with pytest.raises(AuthenticationFailed) as info:
        tokens.read_session(token)
    assert info.value.error_code == "token_expired"


def test_api_without_token_is_401_with_www_authenticate(stack: DemoStack) -> None:
    response = requests.get(f"{stack.portal.url}/portal/api/v1/apps", timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_verify_user_hash_accepts_any_rotation_secret() -> None:
    digest = user_hash("old", "u")
    assert verify_user_hash(["new", "old"], "u", digest)
    assert verify_user_hash(["new", "old"], "u", digest.upper())
    assert not verify_user_hash(["new"], "u", digest)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("HTTPS://Example.COM:443", "https://example.com"),
        ("http://127.0.0.1:5000/", "http://127.0.0.1:5000"),
        ("https://example.com/path", None),
        ("https://user@example.com", None),
        ("ftp://example.com", None),
        ("null", None),
    ],
)
def test_normalize_origin(value: str, expected: str | None) -> None:
    assert normalize_origin(value) == expected


@pytest.mark.parametrize(
    "url",
    [
        "//evil.example",
        "/\\evil.example",
        "https:evil.example",
        "javascript:alert(1)",
        "https://a@evil.example/",
        "http://evil.example\r\nX: y",
        "  https://evil.example",
    ],
)
def test_origin_of_url_refuses_ambiguous_forms(url: str) -> None:
    assert origin_of_url(url) is None


# ------------------------------------------------------------- user ids with lone surrogates

LONE_SURROGATE = "\ud800"  # not a Unicode scalar value: no UTF-8 encoding exists (RFC 3629 §3)


def _raw_json(body: str) -> bytes:
    # The `\ud800` escape is written by hand: the JSON text itself stays pure ASCII, the way a
    # hostile client sends it (RFC 8259 §8.2 allows it, json.loads turns it into a lone surrogate).
    return body.encode("ascii")


def _assert_invalid_user_id(response: requests.Response) -> None:
    assert response.status_code == 400, (response.status_code, response.text[:300])
    body = response.json()
    assert set(body) == {"error", "message", "error_details"}
    assert body["error"] == "invalid_user_id"


@pytest.mark.security("A user id with a lone surrogate")
def test_lone_surrogate_user_id_in_session_bodies_is_400(stack: DemoStack) -> None:
    url = f"{stack.portal.url}/portal/api/v1/sessions"
    json_headers = {"Content-Type": "application/json"}
    browser = requests.post(
        url,
        data=_raw_json(f'{{"appKey": "{DEMO_APP_KEY}", "userId": "\\ud800", "hash": "{"0" * 64}"}}'),
        headers={**json_headers, "Origin": stack.host.url},
        timeout=10,
    )
    _assert_invalid_user_id(browser)
    server = requests.post(
        url,
        data=_raw_json(f'{{"userId": "a\\udfffb", "origin": "{stack.host.url}"}}'),
        headers={**json_headers, "Authorization": f"Bearer {DEMO_APP_SECRET}"},
        timeout=10,
    )
    _assert_invalid_user_id(server)


@pytest.mark.security("A user id with a lone surrogate")
def test_lone_surrogate_user_id_from_host_backend_is_400(stack: DemoStack) -> None:
    url = f"{stack.portal.url}/portal/api/v1/apps"
    bearer = {"Authorization": f"Bearer {DEMO_APP_SECRET}"}
    # ?user_id= with the would-be UTF-8 of U+D800 (CESU-8 style bytes, invalid UTF-8).
    for query in ("user_id=%ED%A0%80", "user_id=a%ED%B0%80", "user_id=%FF"):
        _assert_invalid_user_id(requests.get(f"{url}?{query}", headers=bearer, timeout=10))
    # The same bytes raw in the header (requests sends bytes values unchanged).
    raw = requests.get(
        url, headers={**bearer, "X-Portal-User-Id": b"\xed\xa0\x80"}, timeout=10
    )
    _assert_invalid_user_id(raw)
    # Valid ids still work on both channels: UTF-8 in the query, printable ASCII in the header.
    assert requests.get(f"{url}?user_id=%C3%A9", headers=bearer, timeout=10).status_code == 200
    ok = requests.get(url, headers={**bearer, "X-Portal-User-Id": "alice"}, timeout=10)
    assert ok.status_code == 200


def test_user_hash_of_a_lone_surrogate_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        user_hash(DEMO_APP_SECRET, LONE_SURROGATE)
    assert verify_user_hash([DEMO_APP_SECRET], LONE_SURROGATE, "0" * 64) is False


@pytest.mark.parametrize("authorization", ["Bearer ", "Bearer", "Basic abc", "sk-secret"])
def test_empty_or_malformed_app_secret_is_named_as_such(
    stack: DemoStack, authorization: str
) -> None:
    """A backend minting an embed token with an empty ``$APP_SECRET`` hears about its secret,
    not about an origin (it was reported as ``origin_not_allowed``)."""
    response = create_session(
        stack, {"userId": "u-42", "origin": stack.host.url}, Authorization=authorization
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_app_secret"
    assert "Bearer <app secret>" in response.json()["message"]


def test_wrong_app_secret_is_named_as_such(stack: DemoStack) -> None:
    response = create_session(
        stack, {"userId": "u-42", "origin": stack.host.url}, Authorization="Bearer not-it"
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_app_secret"
