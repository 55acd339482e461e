"""Single-flight refresh across OS processes sharing one database (SECURITY.md "Proxy and
tokens": 50 concurrent calls with an expired access token and a rotating refresh token, across
two processes sharing one database -> exactly one refresh request reaches the provider; all 50
succeed).

A dedicated :class:`DemoStack` (sandbox provider, portal, host) runs in this process on the
shared database and does the connect; two more portal processes (``subprocess.Popen``, each
its own Python interpreter serving :func:`portal.service.create_app` with the stack portal's
configuration on its own port) only proxy. Their per-process thread locks cannot see each
other: only the database lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL ``SELECT … FOR UPDATE``)
keeps the refresh single-flight. Run for an SQLite file and for PostgreSQL (a fresh schema).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import connect_sandbox, new_session, sandbox_stats

from portal.demo import DEMO_APP_SECRET, DemoStack, portal_config
from portal.store import ConnectedAccount

pytestmark = [
    pytest.mark.slow,
    # The multi-process tests run one after another on one xdist worker: side by side they
    # would share two cores and PostgreSQL's connection limit with dozens of processes.
    pytest.mark.xdist_group("processes"),
]

ROOT = Path(__file__).resolve().parent.parent
CALLS = 50
START_TIMEOUT = 60.0

SERVE_SCRIPT = """
import json, os, sys
from werkzeug.serving import make_server
from portal._serving import QuietRequestHandler
from portal.service import create_app

app = create_app(json.loads(os.environ["PORTAL_TEST_CONFIG"]))
server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as f:
    f.write(str(server.server_port))
os.replace(tmp, sys.argv[1])
server.serve_forever()
"""


# --------------------------------------------------------------------------- databases


# --------------------------------------------------------------------------- processes


class PortalProcess:
    """One portal served by its own Python process on a free loopback port."""

    def __init__(self, config: dict[str, Any], workdir: Path, name: str) -> None:
        self.port_file = workdir / f"{name}.port"
        self.log_path = workdir / f"{name}.log"
        script = workdir / "serve_portal.py"
        script.write_text(SERVE_SCRIPT, "utf-8")
        env = {
            **os.environ,
            "PORTAL_TEST_CONFIG": json.dumps(config),
            "PYTHONPATH": str(ROOT),
        }
        self._log = open(self.log_path, "wb")  # closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(self.port_file)],
            cwd=str(workdir),
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.url = ""

    def wait_ready(self, deadline: float) -> None:
        """Wait (bounded) for the port file, then for the portal to answer."""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"portal process exited early:\n{self.log()}")
            if self.port_file.exists():
                self.url = f"http://127.0.0.1:{self.port_file.read_text().strip()}"
                try:
                    requests.get(f"{self.url}/portal/api/v1/apps", timeout=2)
                    return
                except requests.RequestException:
                    pass
            time.sleep(0.05)
        raise AssertionError(f"portal process did not start in time:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        text = self.log_path.read_text("utf-8", errors="replace")
        # Warnings, errors and tracebacks only: access lines would push them out of the report.
        return "\n".join(line for line in text.splitlines() if " INFO " not in line)[-6000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


# --------------------------------------------------------------------------- the test


def _expire_stored_token(stack: DemoStack, account_id: str) -> None:
    state = stack.portal_app.extensions["portal"]
    past = time.time() - 30
    with state.store.session() as db:
        account = db.get(ConnectedAccount, account_id)
        assert account is not None
        data = state.sealer.open(account.id, account.credentials)
        data["expires_at"] = int(past)
        account.credentials = state.sealer.seal(account.id, data)
        account.expires_at = datetime.fromtimestamp(past, UTC)


def _stored(stack: DemoStack, account_id: str) -> dict[str, Any]:
    state = stack.portal_app.extensions["portal"]
    with state.store.session() as db:
        account = db.get(ConnectedAccount, account_id)
        assert account is not None
        return state.sealer.open(account.id, account.credentials)  # type: ignore[no-any-return]


def slow_token_endpoint(sandbox_url: str, seconds: float = 0.5) -> None:
    """The sandbox's token endpoint answers (normally) only after ``seconds``: a refresh stays
    in flight long enough for every concurrent call to pile up behind it."""
    response = requests.post(
        f"{sandbox_url}/_sandbox/faults",
        json={"token_endpoint": "timeout", "timeout_seconds": seconds},
        timeout=5,
    )
    assert response.status_code == 200


@pytest.mark.parametrize("expiry", ["known", "provider-only"])
@pytest.mark.security("50 concurrent calls with an expired access token")
def test_two_processes_refresh_exactly_once(
    shared_database: str, tmp_path: Path, expiry: str
) -> None:
    """``known``: the stored expiry is in the past too (every call wants a pre-emptive
    refresh); ``provider-only``: only the sandbox expired the token (every call gets a 401 and
    forces a refresh of the token it saw rejected)."""
    stack = DemoStack(0, 0, 0, database_url=shared_database, PORTAL_AUTO_MIGRATE=True)
    processes: list[PortalProcess] = []
    try:
        stack.start()
        api = new_session(stack, f"user-mp-{uuid.uuid4().hex[:8]}")
        callback, _ = connect_sandbox(api)
        assert callback.status_code == 200, callback.text[:300]
        [account] = api.get("/connected-accounts?app=sandbox").json()["connected_accounts"]
        before = _stored(stack, account["id"])

        config = portal_config(
            stack.portal.url,  # the redirect URI the sandbox knows; these processes only proxy
            stack.sandbox.url,
            [stack.host.url],
            PORTAL_DATABASE_URL=shared_database,
            PORTAL_AUTO_MIGRATE=False,
        )
        deadline = time.monotonic() + START_TIMEOUT
        processes = [PortalProcess(config, tmp_path, f"portal-{n}") for n in (1, 2)]
        for process in processes:
            process.wait_ready(deadline)
        assert len({p.proc.pid for p in processes} | {os.getpid()}) == 3

        response = requests.post(f"{stack.sandbox.url}/_sandbox/expire-access-tokens", timeout=5)
        assert response.json()["expired"] >= 1
        if expiry == "known":
            _expire_stored_token(stack, account["id"])
        requests.post(f"{stack.sandbox.url}/_sandbox/reset", timeout=5).raise_for_status()
        slow_token_endpoint(stack.sandbox.url)

        barrier = threading.Barrier(CALLS)
        headers = {"Authorization": f"Bearer {DEMO_APP_SECRET}", "X-Portal-User-Id": api.user_id}

        def call(n: int) -> tuple[int, str]:
            url = f"{processes[n % 2].url}/portal/api/v1/proxy/sandbox/me"
            barrier.wait(timeout=30)
            try:
                answer = requests.get(url, headers=headers, timeout=60)
            except requests.RequestException as exc:
                return 0, repr(exc)
            return answer.status_code, answer.text

        with ThreadPoolExecutor(max_workers=CALLS) as pool:
            results = list(pool.map(call, range(CALLS)))
        failed = [r for r in results if r[0] != 200]
        assert not failed, (failed[:3], [p.log() for p in processes])
        assert all(json.loads(body)["username"] == "ada" for _, body in results)

        stats = sandbox_stats(stack)
        assert stats["token_requests"]["refresh_token"] == 1, stats
        expected_api = CALLS if expiry == "known" else None
        if expected_api is not None:
            assert stats["api_requests"] == expected_api  # nobody sent the stale token
        else:
            # Each call: at most one rejected attempt, then one retry (never a loop).
            assert CALLS < stats["api_requests"] <= 2 * CALLS

        after = _stored(stack, account["id"])
        assert after["refresh_token"] != before["refresh_token"]
        assert after["access_token"] != before["access_token"]
        # The grant survived: no rotated-away refresh token was ever replayed (the sandbox
        # revokes the whole grant on reuse), so both processes still proxy.
        for process in processes:
            again = requests.get(
                f"{process.url}/portal/api/v1/proxy/sandbox/me", headers=headers, timeout=30
            )
            assert again.status_code == 200, again.text
        assert sandbox_stats(stack)["token_requests"]["refresh_token"] == 1
    finally:
        for process in processes:
            process.stop()
        stack.stop()
        stack.portal_app.extensions["portal"].store.dispose()
