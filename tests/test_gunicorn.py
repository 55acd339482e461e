"""The portal as deployed: gunicorn with several workers, two services on one database.

Process A is ``gunicorn -w 3 'portal.service:create_app()'`` and process B a second such
gunicorn on another port, both configured by ``PORTAL_*`` environment variables only, sharing
one database (an SQLite file, or a fresh PostgreSQL schema). An account connected through A is
listed, proxied, invoked and disconnected through B; the gunicorn access logs (``%(p)s``: the
worker pid) show the requests were served by several workers, so nothing of the flow can live
in one worker's memory.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from conftest import Browser
from processes import (
    PortalServer,
    browser_headers,
    free_port,
    migrate,
    server_headers,
    session_token,
    start_provider,
)

from portal.demo import portal_config

pytestmark = [
    pytest.mark.slow,
    # The multi-process tests run one after another on one xdist worker: side by side they
    # would share two cores and PostgreSQL's connection limit with dozens of processes.
    pytest.mark.xdist_group("processes"),
]

WORKERS = 3


@pytest.fixture
def services(
    shared_database: str, tmp_path: Path
) -> Iterator[tuple[PortalServer, PortalServer, str]]:
    """Processes A and B (gunicorn, 3 workers each) and the provider's URL."""
    ports = free_port(), free_port()
    provider = start_provider([f"http://127.0.0.1:{p}" for p in ports])
    config = portal_config(
        "http://unused.invalid",  # each process gets its own PORTAL_BASE_URL
        provider.url,
        ["http://127.0.0.1:9"],
        PORTAL_DATABASE_URL=shared_database,
        PORTAL_AUTO_MIGRATE=False,
        PORTAL_RATE_LIMITS_ENABLED=False,
    )
    migrate(config)
    servers = [
        PortalServer(config, port, tmp_path, name, workers=WORKERS)
        for port, name in zip(ports, ("a", "b"), strict=True)
    ]
    try:
        for server in servers:
            server.ready()
        yield servers[0], servers[1], provider.url
    finally:
        for server in servers:
            server.stop()
        provider.stop()


def _spread(server: PortalServer, path: str, headers: dict[str, str], calls: int = 60) -> None:
    """``calls`` concurrent GETs (12 at a time), all answered 200."""

    def get(_: int) -> int:
        return requests.get(server.url + path, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = Counter(pool.map(get, range(calls)))
    assert statuses == {200: calls}, statuses


def test_connect_in_one_process_use_in_the_other(
    services: tuple[PortalServer, PortalServer, str],
) -> None:
    a, b, provider = services
    user = f"user-gu-{uuid.uuid4().hex[:8]}"

    # Connect through A: session, ticket, the popup's redirect, consent, callback.
    token = session_token(a.url, user)
    ticket = requests.post(
        f"{a.url}/portal/api/v1/connect-tickets",
        json={"app": "sandbox", "opener": "frame"},
        headers=browser_headers(token),
        timeout=10,
    )
    assert ticket.status_code == 201, ticket.text
    connect_url = ticket.json()["connect_url"]
    assert connect_url.startswith(a.url)
    browser = Browser()
    started = browser.start(connect_url)
    assert started.status_code == 302, started.text[:300]
    assert started.headers["Location"].startswith(provider)
    consent = browser.consent(started.headers["Location"])
    assert consent.callback_url.startswith(f"{a.url}/portal/oauth/sandbox/callback")
    done = browser.callback(consent.callback_url)
    assert done.status_code == 200, done.text[:300]

    # Use it through B, with the session token A issued and with server credentials.
    listed = requests.get(
        f"{b.url}/portal/api/v1/connected-accounts?app=sandbox",
        headers=browser_headers(token),
        timeout=10,
    )
    assert listed.status_code == 200, listed.text
    [account] = listed.json()["connected_accounts"]
    me = requests.get(
        f"{b.url}/portal/api/v1/proxy/sandbox/me", headers=server_headers(user), timeout=10
    )
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "ada"
    invoked = requests.post(
        f"{b.url}/portal/api/v1/functions/sandbox-create-contact/invoke",
        json={"params": {"name": "Grace Hopper", "email": "grace@example.com"}},
        headers=browser_headers(token),
        timeout=10,
    )
    assert invoked.status_code == 200, invoked.text
    contacts = requests.get(
        f"{a.url}/portal/api/v1/proxy/sandbox/contacts?limit=100",
        headers=server_headers(user),
        timeout=10,
    )
    assert contacts.status_code == 200, contacts.text
    assert "grace@example.com" in contacts.text  # written through B, read through A

    # Many concurrent calls on both: several workers of each serve them.
    _spread(b, "/portal/api/v1/proxy/sandbox/me", server_headers(user))
    _spread(a, "/portal/api/v1/connected-accounts?app=sandbox", browser_headers(token))
    for server in (a, b):
        pids = Counter(server.access_pids())
        assert len(pids) >= 2, (server.name, pids, server.log())

    gone = requests.delete(
        f"{b.url}/portal/api/v1/connected-accounts/{account['id']}",
        headers=browser_headers(token),
        timeout=10,
    )
    assert gone.status_code in (200, 204), gone.text
    for server in (a, b):
        after = requests.get(
            f"{server.url}/portal/api/v1/connected-accounts?app=sandbox",
            headers=browser_headers(token),
            timeout=10,
        )
        assert after.json()["connected_accounts"] == []
        proxied = requests.get(
            f"{server.url}/portal/api/v1/proxy/sandbox/me",
            headers=server_headers(user),
            timeout=10,
        )
        assert proxied.status_code in (404, 409), proxied.text
