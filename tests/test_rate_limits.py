"""Rate limits (SECURITY.md: "Connect and proxy endpoints are rate-limited per end user and per
app key -> 429 with Retry-After") and their Redis storage shared by several processes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal import user_hash
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DemoStack

REDIS_URL = "redis://127.0.0.1:6379/0"
OTHER_KEY, OTHER_SECRET = "other-app", "other-app-secret"
APP_KEYS = {DEMO_APP_KEY: [DEMO_APP_SECRET], OTHER_KEY: [OTHER_SECRET]}


def session_for(
    client: FlaskClient, stack: DemoStack, user: str, app_key: str = DEMO_APP_KEY
) -> dict[str, str]:
    """Headers of a host page holding a fresh session token for ``user``."""
    secret = dict(APP_KEYS)[app_key][0]
    response = client.post(
        "/portal/api/v1/sessions",
        json={"appKey": app_key, "userId": user, "hash": user_hash(secret, user)},
        headers={"Origin": stack.host.url},
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json['token']}", "Origin": stack.host.url}


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


def assert_rate_limited(response: Any, json: bool = True) -> None:
    assert response.status_code == 429, response.text[:300]
    assert int(response.headers["Retry-After"]) >= 1
    if json:
        assert response.json == {
            "error": "rate_limited",
            "message": response.json["message"],
            "error_details": [],
        }
        assert response.json["message"]
    else:
        assert response.mimetype == "text/html"


def proxy(client: FlaskClient, headers: dict[str, str]) -> Any:
    return client.get("/portal/api/v1/proxy/sandbox/me", headers=headers)


@pytest.mark.security("Connect and proxy endpoints are rate-limited")
def test_proxy_is_limited_per_end_user(make_app: Any, stack: DemoStack) -> None:
    client = make_app(PORTAL_APP_KEYS=APP_KEYS, PORTAL_RATE_LIMIT_PROXY="3/minute").test_client()
    alice = session_for(client, stack, new_user())
    for _ in range(3):
        assert proxy(client, alice).status_code != 429
    assert_rate_limited(proxy(client, alice))
    # Another end user of the same app key still gets through.
    assert proxy(client, session_for(client, stack, new_user())).status_code != 429


@pytest.mark.security("Connect and proxy endpoints are rate-limited")
def test_proxy_is_limited_per_app_key(make_app: Any, stack: DemoStack) -> None:
    client = make_app(
        PORTAL_APP_KEYS=APP_KEYS, PORTAL_RATE_LIMIT_PROXY_APP_KEY="3/minute"
    ).test_client()
    for _ in range(3):
        assert proxy(client, session_for(client, stack, new_user())).status_code != 429
    assert_rate_limited(proxy(client, session_for(client, stack, new_user())))
    # Another app key has its own budget.
    other = session_for(client, stack, new_user(), OTHER_KEY)
    assert proxy(client, other).status_code != 429


def test_sessions_are_limited_per_app_key_and_origin(make_app: Any, stack: DemoStack) -> None:
    client = make_app(PORTAL_APP_KEYS=APP_KEYS, PORTAL_RATE_LIMIT_SESSIONS="2/minute").test_client()
    session_for(client, stack, new_user())
    session_for(client, stack, new_user())
    user = new_user()
    response = client.post(
        "/portal/api/v1/sessions",
        json={"appKey": DEMO_APP_KEY, "userId": user, "hash": user_hash(DEMO_APP_SECRET, user)},
        headers={"Origin": stack.host.url},
    )
    assert_rate_limited(response)
    session_for(client, stack, new_user(), OTHER_KEY)


def test_invoke_is_limited_per_end_user(make_app: Any, stack: DemoStack) -> None:
    client = make_app(PORTAL_APP_KEYS=APP_KEYS, PORTAL_RATE_LIMIT_INVOKE="2/minute").test_client()
    alice = session_for(client, stack, new_user())
    url = "/portal/api/v1/functions/no-such-function/invoke"
    for _ in range(2):
        assert client.post(url, json={"params": {}}, headers=alice).status_code == 404
    assert_rate_limited(client.post(url, json={"params": {}}, headers=alice))
    bob = session_for(client, stack, new_user())
    assert client.post(url, json={"params": {}}, headers=bob).status_code == 404


@pytest.mark.security("Connect and proxy endpoints are rate-limited")
def test_connect_tickets_and_connect_are_limited_per_end_user(
    make_app: Any, stack: DemoStack
) -> None:
    client = make_app(PORTAL_APP_KEYS=APP_KEYS, PORTAL_RATE_LIMIT_CONNECT="2/minute").test_client()
    alice = session_for(client, stack, new_user())
    tickets = []
    for _ in range(2):
        response = client.post(
            "/portal/api/v1/connect-tickets", json={"app": "sandbox"}, headers=alice
        )
        assert response.status_code == 201, response.text
        tickets.append(response.json["connect_url"])
    assert_rate_limited(
        client.post("/portal/api/v1/connect-tickets", json={"app": "sandbox"}, headers=alice)
    )
    # The popup's page: an HTML 429, counted for the ticket's end user.
    popup = make_app(PORTAL_APP_KEYS=APP_KEYS, PORTAL_RATE_LIMIT_CONNECT="2/minute").test_client()
    path = tickets[0].split(stack.portal.url, 1)[-1]
    first = popup.get(path)
    assert first.status_code == 302
    assert popup.get(path).status_code != 429
    assert_rate_limited(popup.get(path), json=False)
    # Bob's connect link still opens.
    bob = session_for(client, stack, new_user())
    ticket = client.post("/portal/api/v1/connect-tickets", json={"app": "sandbox"}, headers=bob)
    assert popup.get(ticket.json["connect_url"].split(stack.portal.url, 1)[-1]).status_code == 302


def test_disabled_flag_turns_limits_off(make_app: Any, stack: DemoStack) -> None:
    client = make_app(
        PORTAL_APP_KEYS=APP_KEYS,
        PORTAL_RATE_LIMITS_ENABLED=False,
        PORTAL_RATE_LIMIT_PROXY="1/minute",
        PORTAL_RATE_LIMIT_SESSIONS="1/minute",
    ).test_client()
    alice = session_for(client, stack, new_user())
    session_for(client, stack, new_user())
    for _ in range(5):
        assert proxy(client, alice).status_code != 429


def test_host_routes_are_never_limited(make_app: Any, stack: DemoStack) -> None:
    app: Flask = make_app(PORTAL_APP_KEYS=APP_KEYS, PORTAL_RATE_LIMIT_PROXY="1/minute")
    app.add_url_rule("/host-page", "host_page", lambda: "ok")
    client = app.test_client()
    for _ in range(5):
        assert client.get("/host-page").status_code == 200


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own in Redis, whose keys are deleted afterwards."""
    redis = pytest.importorskip("redis")
    server = redis.Redis.from_url(REDIS_URL)
    try:
        server.ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    prefix = f"portal-test-{uuid.uuid4().hex}"
    yield prefix
    keys = list(server.scan_iter(f"*{prefix}*"))
    if keys:
        server.delete(*keys)
    server.close()


def test_redis_storage_shares_limits_between_processes(
    make_app: Any, stack: DemoStack, redis_prefix: str
) -> None:
    # Two Flask apps on one Redis stand for two processes of one deployment.
    config = {
        "PORTAL_APP_KEYS": APP_KEYS,
        "PORTAL_REDIS_URL": REDIS_URL,
        "PORTAL_RATE_LIMIT_KEY_PREFIX": redis_prefix,
        "PORTAL_RATE_LIMIT_PROXY": "3/minute",
    }
    one, two = make_app(**config).test_client(), make_app(**config).test_client()
    alice = session_for(one, stack, new_user())
    assert proxy(one, alice).status_code != 429
    assert proxy(two, alice).status_code != 429
    assert proxy(one, alice).status_code != 429
    assert_rate_limited(proxy(two, alice))
    assert_rate_limited(proxy(one, alice))
    bob = session_for(two, stack, new_user())
    assert proxy(one, bob).status_code != 429
