"""Refresh coalescing: N concurrent proxied calls on an expired access token.

Starts the demo stack (sandbox provider, portal) on loopback with a fresh SQLite database,
connects one sandbox account, then per round: N concurrent ``GET`` through the portal proxy on a
fresh token, and N concurrent on a token that both the sandbox and the portal consider expired
(the sandbox rotates refresh tokens). Counts the refresh requests that reached the provider
(target: exactly 1 per round) and compares the median call latency of the two batches.

    .venv/bin/python bench/refresh_coalescing.py [--quick]
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import requests
from _common import Row, cli, median


def _expire(stack: Any, account_id: str) -> None:
    from portal.store import ConnectedAccount

    assert requests.post(f"{stack.sandbox.url}/_sandbox/expire-access-tokens", timeout=5).ok
    state = stack.portal_app.extensions["portal"]
    past = time.time() - 30
    with state.store.session() as db:
        account = db.get(ConnectedAccount, account_id)
        data = state.sealer.open(account.id, account.credentials)
        data["expires_at"] = int(past)
        account.credentials = state.sealer.seal(account.id, data)
        account.expires_at = datetime.fromtimestamp(past, UTC)


def _refreshes(stack: Any) -> int:
    stats = requests.get(f"{stack.sandbox.url}/_sandbox/stats", timeout=5).json()
    return int(stats["token_requests"]["refresh_token"])


def run(quick: bool = False) -> list[Row]:
    from conftest import connect_sandbox, new_session

    from portal.demo import DemoStack

    calls, rounds = (20, 1) if quick else (200, 3)
    with tempfile.TemporaryDirectory() as tmp:
        stack = DemoStack(
            0,
            0,
            0,
            database_url=f"sqlite:///{tmp}/bench.sqlite3",
            worker=False,
            PORTAL_RATE_LIMITS_ENABLED=False,
        ).start()
        try:
            api = new_session(stack, "bench-refresh")
            connect_sandbox(api)
            account_id = api.get("/connected-accounts?app=sandbox").json()["connected_accounts"][0][
                "id"
            ]
            url = f"{api.base}/proxy/sandbox/contacts?limit=1"
            http = requests.Session()
            http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=calls))

            def call(_: int) -> float:
                began = time.perf_counter()
                response = http.get(url, headers=api.headers, timeout=60)
                assert response.status_code == 200, response.text[:300]
                return time.perf_counter() - began

            fresh: list[float] = []
            expired: list[float] = []
            counts: list[int] = []
            with ThreadPoolExecutor(max_workers=calls) as pool:
                list(pool.map(call, range(calls)))  # warm up connections and caches
                for _ in range(rounds):
                    fresh.append(median(list(pool.map(call, range(calls)))))
                    _expire(stack, account_id)
                    before = _refreshes(stack)
                    expired.append(median(list(pool.map(call, range(calls)))))
                    counts.append(_refreshes(stack) - before)
        finally:
            stack.stop()
    f, e = median(fresh), median(expired)
    return [
        Row(
            f"5 refreshes for {calls} concurrent calls, expired token",
            " ".join(str(c) for c in counts) + f" (per round, {rounds} rounds)",
            "",
            None,
            "exactly 1 per round",
            all(c == 1 for c in counts),
        ),
        Row(
            f"5 median call latency, {calls} concurrent, expired token",
            f"{e * 1000:.1f} ms",
            f"{f * 1000:.1f} ms fresh token",
            e / f,
            "information",
            None,
        ),
    ]


if __name__ == "__main__":
    cli(run, __doc__)
