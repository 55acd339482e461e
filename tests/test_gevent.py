"""The serving model README.md recommends: gunicorn with gevent workers.

A portal served by ``gunicorn -w 2 -k gevent`` (configured by ``PORTAL_*`` variables only) on a
shared database (an SQLite file, or a fresh PostgreSQL schema) takes 200 concurrent proxied
calls, twice: on a fresh token, then on a token both the provider and the portal consider
expired, while the provider's token endpoint takes 0.5 s (so every call piles up behind one
refresh). Each of the 200 calls runs in a greenlet of one of the two workers, so everything the
proxy touches is shared by up to 200 greenlets of one process: the SQLAlchemy engine and its
connection pool, psycopg's connections, urllib3's pool, the per-account refresh lock.

What must hold (observable from outside):

- all 200 answers are 200 both times: no pool exhaustion (SQLAlchemy's ``QueuePool limit …
  reached`` would answer 500) and no connection used by two greenlets at once (psycopg raises
  "another command is already in progress"; SQLite "recursive use of cursors");
- exactly one refresh request reaches the provider for the 200 calls on the expired token, and
  every API request carries the new token (none the expired one);
- the workers are gevent workers (gunicorn says so in its log), and the log holds no traceback.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from conftest import connect_sandbox, new_session, sandbox_stats
from processes import PortalServer, free_port

from portal.demo import DEMO_APP_SECRET, DemoStack, portal_config
from portal.store import ConnectedAccount

pytestmark = [
    pytest.mark.slow,
    # One after another with the other process tests (two cores, PostgreSQL's connection limit).
    pytest.mark.xdist_group("processes"),
]

CALLS = 200
#: The README's recommended worker options (section "Embed it by script tag").
GEVENT_WORKERS = ("-k", "gevent", "--worker-connections", "1000")
#: What the server log must never say.
FAILURES = (
    "Traceback",
    "QueuePool limit",
    "another command is already in progress",
    "recursive use of cursors",
    "Connection pool is full",
)


def _expire(stack: DemoStack, account_id: str) -> None:
    """The provider and the stored credentials both say the access token expired."""
    assert requests.post(f"{stack.sandbox.url}/_sandbox/expire-access-tokens", timeout=5).ok
    state = stack.portal_app.extensions["portal"]
    past = time.time() - 30
    with state.store.session() as db:
        account = db.get(ConnectedAccount, account_id)
        assert account is not None
        data = state.sealer.open(account.id, account.credentials)
        data["expires_at"] = int(past)
        account.credentials = state.sealer.seal(account.id, data)
        account.expires_at = datetime.fromtimestamp(past, UTC)


def _burst(url: str, headers: dict[str, str]) -> list[tuple[int, str]]:
    """``CALLS`` GETs released together (a barrier), each on its own connection."""
    barrier = threading.Barrier(CALLS)

    def call(_: int) -> tuple[int, str]:
        barrier.wait(timeout=60)
        try:
            answer = requests.get(url, headers=headers, timeout=120)
        except requests.RequestException as exc:
            return 0, repr(exc)
        return answer.status_code, answer.text

    with ThreadPoolExecutor(max_workers=CALLS) as pool:
        return list(pool.map(call, range(CALLS)))


def test_gevent_workers_share_pools_safely_and_refresh_once(
    shared_database: str, tmp_path: Path
) -> None:
    stack = DemoStack(0, 0, 0, database_url=shared_database, worker=False, PORTAL_AUTO_MIGRATE=True)
    server: PortalServer | None = None
    try:
        stack.start()
        api = new_session(stack, f"user-gevent-{uuid.uuid4().hex[:8]}")
        callback, _ = connect_sandbox(api)
        assert callback.status_code == 200, callback.text[:300]
        [account] = api.get("/connected-accounts?app=sandbox").json()["connected_accounts"]

        config = portal_config(
            stack.portal.url,
            stack.sandbox.url,
            [stack.host.url],
            PORTAL_DATABASE_URL=shared_database,
            PORTAL_AUTO_MIGRATE=False,
            PORTAL_RATE_LIMITS_ENABLED=False,  # 2 x 200 calls of one user in seconds
        )
        server = PortalServer(
            config, free_port(), tmp_path, "gevent", workers=2, worker_args=GEVENT_WORKERS
        ).ready()
        url = f"{server.url}/portal/api/v1/proxy/sandbox/me"
        headers = {"Authorization": f"Bearer {DEMO_APP_SECRET}", "X-Portal-User-Id": api.user_id}

        fresh = _burst(url, headers)
        assert [r[:2] for r in fresh if r[0] != 200][:3] == [], server.log()

        _expire(stack, account["id"])
        requests.post(f"{stack.sandbox.url}/_sandbox/reset", timeout=5).raise_for_status()
        slow = requests.post(
            f"{stack.sandbox.url}/_sandbox/faults",
            json={"token_endpoint": "timeout", "timeout_seconds": 0.5},
            timeout=5,
        )
        assert slow.status_code == 200
        expired = _burst(url, headers)
        assert [r for r in expired if r[0] != 200][:3] == [], server.log()
        assert {json.loads(body)["username"] for _, body in expired} == {"ada"}

        stats = sandbox_stats(stack)
        assert stats["token_requests"]["refresh_token"] == 1, stats
        assert stats["api_requests"] == CALLS, stats  # nobody sent the expired token

        log = server.log_path.read_text("utf-8", errors="replace")
        assert "Using worker: gevent" in log, log[-3000:]
        assert [f for f in FAILURES if f in log] == [], log[-6000:]
        pids = set(server.access_pids())
        assert len(pids) == 2, pids  # both workers served calls
    finally:
        if server is not None:
            server.stop()
        stack.stop()


def test_gevent_workers_refresh_two_accounts_at_once(shared_database: str, tmp_path: Path) -> None:
    """Two accounts' refreshes in flight at the same time in one worker: each holds its
    database write lock while it waits for the provider (0.5 s here). With SQLite, a second
    writer must wait for the first without stopping the worker's other greenlets (SQLite's own
    busy wait sleeps inside the C library: under gevent the whole worker, the first writer
    included, would stop until the busy timeout and the second call would fail)."""
    stack = DemoStack(0, 0, 0, database_url=shared_database, worker=False, PORTAL_AUTO_MIGRATE=True)
    server: PortalServer | None = None
    try:
        stack.start()
        users = []
        for _ in range(2):
            api = new_session(stack, f"user-gevent-{uuid.uuid4().hex[:8]}")
            callback, _ = connect_sandbox(api)
            assert callback.status_code == 200, callback.text[:300]
            [account] = api.get("/connected-accounts?app=sandbox").json()["connected_accounts"]
            users.append((api.user_id, account["id"]))
        config = portal_config(
            stack.portal.url,
            stack.sandbox.url,
            [stack.host.url],
            PORTAL_DATABASE_URL=shared_database,
            PORTAL_AUTO_MIGRATE=False,
            PORTAL_RATE_LIMITS_ENABLED=False,
        )
        # One worker: both refreshes are greenlets of the same process.
        server = PortalServer(
            config, free_port(), tmp_path, "gevent1", workers=1, worker_args=GEVENT_WORKERS
        ).ready()
        url = f"{server.url}/portal/api/v1/proxy/sandbox/me"
        for _, account_id in users:
            _expire(stack, account_id)
        requests.post(f"{stack.sandbox.url}/_sandbox/reset", timeout=5).raise_for_status()
        slow = requests.post(
            f"{stack.sandbox.url}/_sandbox/faults",
            json={"token_endpoint": "timeout", "timeout_seconds": 0.5},
            timeout=5,
        )
        assert slow.status_code == 200
        calls = 40
        barrier = threading.Barrier(calls)

        def call(n: int) -> tuple[int, str]:
            user_id = users[n % 2][0]
            headers = {"Authorization": f"Bearer {DEMO_APP_SECRET}", "X-Portal-User-Id": user_id}
            barrier.wait(timeout=60)
            try:
                answer = requests.get(url, headers=headers, timeout=120)
            except requests.RequestException as exc:
                return 0, repr(exc)
            return answer.status_code, answer.text[:300]

        with ThreadPoolExecutor(max_workers=calls) as pool:
            results = list(pool.map(call, range(calls)))
        assert [r for r in results if r[0] != 200][:3] == [], server.log()
        stats = sandbox_stats(stack)
        assert stats["token_requests"]["refresh_token"] == 2, stats  # one per account
        log = server.log_path.read_text("utf-8", errors="replace")
        assert "Using worker: gevent" in log, log[-3000:]
        assert [f for f in FAILURES if f in log] == [], log[-6000:]
    finally:
        if server is not None:
            server.stop()
        stack.stop()


def test_readme_recommends_the_workers_tested_here() -> None:
    """The tests above run the command README.md recommends (not some other configuration)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    command = f"gunicorn -w <cores> {' '.join(GEVENT_WORKERS)} 'portal.service:create_app()'"
    assert command in readme
