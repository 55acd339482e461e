"""Hosted connect links (:mod:`portal.connect_links`): ``POST /api/v1/connect-links``, the
``/link?token=…`` page, single use, expiry, revocation, redirect targets, projects, logs.

The connect flow runs against the live sandbox provider over loopback HTTP; the isolation,
log and rate-limit tests use an in-process portal (Flask test client) wired to that sandbox.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import subprocess
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from conftest import Browser
from flask import Flask
from readme_blocks import block, fill
from sqlalchemy import update

from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DemoStack
from portal.errors import InvalidConnectAttempt
from portal.logs import redact_query_values
from portal.store import ConnectAttempt, ConnectLink, utcnow

PREFIX = "/portal/api/v1"


def create(stack: DemoStack, secret: str = DEMO_APP_SECRET, **body: Any) -> requests.Response:
    return requests.post(
        f"{stack.portal.url}{PREFIX}/connect-links",
        json={"userId": "u-link", "app": "sandbox", **body},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=10,
    )


def made(stack: DemoStack, **body: Any) -> dict[str, Any]:
    answer = create(stack, **body)
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def return_target(response: requests.Response) -> str:
    refresh = re.search(r'<meta http-equiv="refresh" content="0;url=([^"]+)">', response.text)
    assert refresh, response.text[:500]
    return html.unescape(refresh.group(1))


def run_link(url: str, decision: str = "allow") -> tuple[requests.Response, str]:
    """Open a link in a fresh browser and go through the sandbox's consent: (result, attempt)."""
    browser = Browser()
    opened = browser.http.get(url, allow_redirects=False, timeout=10)
    assert opened.status_code == 302, opened.text[:500]
    connect = opened.headers["Location"]
    assert urlsplit(connect).path == "/portal/connect/sandbox"
    started = browser.http.get(urljoin(url, connect), allow_redirects=False, timeout=10)
    assert started.status_code == 302, started.text[:500]
    consent = browser.consent(started.headers["Location"], decision=decision)
    result = browser.callback(consent.callback_url)
    ticket = parse_qs(urlsplit(connect).query)["ticket"][0]
    return result, ticket


def attempt_of(stack: DemoStack, link_id: str) -> ConnectAttempt:
    with stack.portal_app.extensions["portal"].store.read() as db:
        link = db.get(ConnectLink, link_id)
        assert link is not None and link.attempt_id is not None
        attempt = db.get(ConnectAttempt, link.attempt_id)
        assert attempt is not None
        return attempt


def test_link_connects_and_goes_to_success_url_with_the_attempt_only(
    stack: DemoStack, sandbox: str
) -> None:
    success = f"{stack.host.url}/done?from=link"
    link = made(stack, successUrl=success, errorUrl=f"{stack.host.url}/failed")
    assert set(link) == {"id", "url", "expires_at"}
    assert urlsplit(link["url"]).netloc == urlsplit(stack.portal.url).netloc

    result, _ = run_link(link["url"])

    assert result.status_code == 200, result.text[:500]
    target = urlsplit(return_target(result))
    attempt = attempt_of(stack, link["id"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{stack.host.url}/done"
    assert parse_qs(target.query) == {"from": ["link"], "portal_attempt": [attempt.id]}
    assert attempt.status == "connected" and attempt.project == DEMO_APP_KEY
    assert attempt.user_id == "u-link"


def test_failed_connect_goes_to_error_url(stack: DemoStack, sandbox: str) -> None:
    link = made(stack, successUrl=f"{stack.host.url}/done", errorUrl=f"{stack.host.url}/failed")
    result, _ = run_link(link["url"], decision="deny")
    assert result.status_code == 400
    target = urlsplit(return_target(result))
    assert target.path == "/failed"
    assert parse_qs(target.query) == {"portal_attempt": [attempt_of(stack, link["id"]).id]}


def test_link_is_single_use(stack: DemoStack, sandbox: str) -> None:
    link = made(stack)
    first = requests.get(link["url"], allow_redirects=False, timeout=10)
    assert first.status_code == 302
    again = requests.get(link["url"], allow_redirects=False, timeout=10)
    assert again.status_code == 400
    assert "not valid any more" in again.text
    assert again.headers["Content-Type"].startswith("text/html")


def test_expired_link_opens_nothing(stack: DemoStack) -> None:
    link = made(stack, expiresIn=60)
    store = stack.portal_app.extensions["portal"].store
    with store.session() as db:  # a minute later, without waiting a minute
        db.execute(
            update(ConnectLink)
            .where(ConnectLink.id == link["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    answer = requests.get(link["url"], allow_redirects=False, timeout=10)
    assert answer.status_code == 400
    assert "expired" in answer.text


def test_revoked_link_opens_nothing(stack: DemoStack) -> None:
    link = made(stack)
    revoked = requests.delete(
        f"{stack.portal.url}{PREFIX}/connect-links/{link['id']}",
        headers={"Authorization": f"Bearer {DEMO_APP_SECRET}"},
        timeout=10,
    )
    assert revoked.status_code == 200 and revoked.json() == {"id": link["id"], "revoked": True}
    answer = requests.get(link["url"], allow_redirects=False, timeout=10)
    assert answer.status_code == 400
    assert "Location" not in answer.headers


@pytest.mark.parametrize(
    "field,value",
    [
        ("successUrl", "https://evil.example/steal"),
        ("successUrl", "//evil.example/steal"),
        ("successUrl", "javascript:alert(1)"),
        ("successUrl", "/relative"),
        ("errorUrl", "https://evil.example/steal"),
        ("successUrl", 42),
    ],
)
def test_hostile_redirect_url_is_refused_at_creation(
    stack: DemoStack, field: str, value: Any
) -> None:
    answer = create(stack, **{field: value})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_redirect"


@pytest.mark.parametrize("expires_in", [0, 59, 7 * 24 * 3600 + 1, "600", True])
def test_bad_expires_in_is_400(stack: DemoStack, expires_in: Any) -> None:
    answer = create(stack, expiresIn=expires_in)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_expires_in"


def test_default_lifetime_is_30_minutes(stack: DemoStack) -> None:
    link = made(stack)
    with stack.portal_app.extensions["portal"].store.read() as db:
        row = db.get(ConnectLink, link["id"])
        assert row is not None
        assert row.expires_at - row.created_at == timedelta(minutes=30)
        assert row.token_hash not in link["url"]  # only the hash is kept, the URL has the token


def test_needs_the_app_secret(stack: DemoStack) -> None:
    assert create(stack, secret="not-a-secret").status_code == 401
    session = requests.post(
        f"{stack.portal.url}{PREFIX}/connect-links",
        json={"userId": "u-link", "app": "sandbox"},
        timeout=10,
    )
    assert session.status_code == 401
    assert create(stack, app="no-such-app").status_code == 404


@pytest.fixture
def two_projects(make_app: Any) -> Flask:
    app: Flask = make_app(
        PORTAL_APP_KEYS={"proj-a": ["secret-a"], "proj-b": ["secret-b"]},
        PORTAL_RATE_LIMITS_ENABLED=False,
    )
    return app


def test_another_project_cannot_revoke_and_the_link_connects_for_its_own(
    two_projects: Flask, stack: DemoStack
) -> None:
    client = two_projects.test_client()
    link = client.post(
        f"{PREFIX}/connect-links",
        json={"userId": "u-1", "app": "sandbox"},
        headers={"Authorization": "Bearer secret-a"},
    ).json
    assert link is not None
    revoked = client.delete(
        f"{PREFIX}/connect-links/{link['id']}", headers={"Authorization": "Bearer secret-b"}
    )
    assert revoked.status_code == 404
    path = urlsplit(link["url"])
    opened = client.get(f"{path.path}?{path.query}")
    assert opened.status_code == 302
    connect = urlsplit(opened.headers["Location"])
    started = client.get(f"{connect.path}?{connect.query}")
    assert started.status_code == 302  # on to the sandbox's authorization endpoint
    with two_projects.extensions["portal"].store.read() as db:
        row = db.get(ConnectLink, link["id"])
        assert row is not None and row.attempt_id is not None
        attempt = db.get(ConnectAttempt, row.attempt_id)
        assert attempt is not None
        assert (attempt.project, attempt.user_id) == ("proj-a", "u-1")


def test_link_token_never_reaches_the_logs(
    two_projects: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    client = two_projects.test_client()
    caplog.set_level(logging.DEBUG)
    # Explicit on the portal's loggers too: an earlier test in the same worker may have left the
    # "portal" logger at a higher level (PORTAL_LOG_FORMAT sets INFO only when unset).
    caplog.set_level(logging.DEBUG, logger="portal")
    caplog.set_level(logging.DEBUG, logger="portal.access")
    link = client.post(
        f"{PREFIX}/connect-links",
        json={"userId": "u-1", "app": "sandbox"},
        headers={"Authorization": "Bearer secret-a"},
    ).json
    assert link is not None
    token = parse_qs(urlsplit(link["url"]).query)["token"][0]
    path = urlsplit(link["url"])
    for _ in range(2):  # opened, then refused as used
        client.get(f"{path.path}?{path.query}")
    assert "GET /portal/link" in caplog.text  # the access lines were written
    assert token not in caplog.text
    # The development server's request line (query included) is masked by the access filter.
    line = f'"GET {path.path}?{path.query} HTTP/1.1" 302 -'
    assert token not in redact_query_values(line)


def test_creating_links_is_rate_limited(make_app: Any) -> None:
    app: Flask = make_app(
        PORTAL_APP_KEYS={"proj-a": ["secret-a"]},
        PORTAL_RATE_LIMITS_ENABLED=True,
        PORTAL_RATE_LIMIT_CONNECT="2/minute",
    )
    client = app.test_client()
    statuses = [
        client.post(
            f"{PREFIX}/connect-links",
            json={"userId": "u-1", "app": "sandbox"},
            headers={"Authorization": "Bearer secret-a"},
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [201, 201, 429]


@pytest.mark.readme("Hosted connect links", 0)
def test_readme_connect_link_curl_as_written(stack: DemoStack, sandbox: str) -> None:
    """The README's curl line, run by curl, makes a link that connects and lands on
    successUrl."""
    user = f"u-{uuid.uuid4().hex[:12]}"
    code = block("Hosted connect links", 0).code
    command = fill(
        code.split("\n# ->", 1)[0],
        {
            "https://portal.example": stack.portal.url,
            "https://app.example": stack.host.url,
            "u-42": user,  # a fresh user: the stack is shared
        },
    )
    env = {"PATH": os.environ["PATH"], "APP_SECRET": DEMO_APP_SECRET}
    result = subprocess.run(
        ["sh", "-c", command], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    promised = re.search(r"# -> (\{.*\})", code)
    assert promised
    assert set(answer) == set(re.findall(r'"(\w+)":', promised.group(1)))
    assert answer["url"].startswith(f"{stack.portal.url}/portal/link?token=")
    done, _ = run_link(answer["url"])
    target = urlsplit(return_target(done))
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{stack.host.url}/connected"
    assert attempt_of(stack, answer["id"]).user_id == user


def test_two_opens_of_one_link_spend_it_once(two_projects: Flask) -> None:
    """Two browsers open the link at once: both read it usable, one update wins."""
    from portal import connect_links

    state = two_projects.extensions["portal"]
    with two_projects.app_context():
        created = connect_links.create(
            state,
            project="proj-a",
            user_id="u-1",
            app="sandbox",
            expires_in=600,
            success_url=None,
            error_url=None,
        )
        first = connect_links.peek(state, created.token)
        second = connect_links.peek(state, created.token)
        connect_links.spend(state, first.id, "attempt-1")
        with pytest.raises(InvalidConnectAttempt):
            connect_links.spend(state, second.id, "attempt-2")
        with state.store.read() as db:
            row = db.get(ConnectLink, created.id)
            assert row is not None and row.attempt_id == "attempt-1"
