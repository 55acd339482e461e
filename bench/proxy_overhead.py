"""Proxy overhead, measured side by side in one run.

Starts the demo stack (sandbox provider, portal, host) on loopback with a fresh SQLite database,
connects one sandbox account, then times N sequential ``GET /api/contacts?limit=10`` requests
straight to the sandbox (with the account's access token) and N through the portal proxy
(``/portal/api/v1/proxy/sandbox/contacts?limit=10`` with a session token), interleaved in
rounds so machine noise hits both alike. Prints medians, p95 and the ratio.

    .venv/bin/python bench/proxy_overhead.py [--requests 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from conftest import connect_sandbox, new_session  # noqa: E402

from portal.demo import DemoStack  # noqa: E402
from portal.store import ConnectedAccount  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack = DemoStack(0, 0, 0, database_url=f"sqlite:///{tmp}/bench.sqlite3").start()
        try:
            api = new_session(stack, "bench-user")
            connect_sandbox(api)
            state = stack.portal_app.extensions["portal"]
            with state.store.session() as db:
                account = db.query(ConnectedAccount).one()
                token = state.sealer.open(account.id, account.credentials)["access_token"]
            direct_http, proxied_http = requests.Session(), requests.Session()
            direct_url = f"{stack.sandbox.url}/api/contacts?limit=10"
            proxy_url = f"{api.base}/proxy/sandbox/contacts?limit=10"
            direct_headers = {"Authorization": f"Bearer {token}"}
            direct, proxied = [], []
            for _ in range(args.requests):
                began = time.perf_counter()
                assert direct_http.get(direct_url, headers=direct_headers).status_code == 200
                direct.append(time.perf_counter() - began)
                began = time.perf_counter()
                assert proxied_http.get(proxy_url, headers=api.headers).status_code == 200
                proxied.append(time.perf_counter() - began)
        finally:
            stack.stop()

    def p95(values: list[float]) -> float:
        return sorted(values)[int(len(values) * 0.95) - 1]

    d, p = statistics.median(direct), statistics.median(proxied)
    print(f"requests per path        {args.requests}")
    print(f"direct to sandbox        median {d * 1000:7.2f} ms   p95 {p95(direct) * 1000:7.2f} ms")
    print(f"through the portal proxy median {p * 1000:7.2f} ms   p95 {p95(proxied) * 1000:7.2f} ms")
    print(f"proxy / direct (median)  {p / d:5.2f}x   (added {1000 * (p - d):.2f} ms)")


if __name__ == "__main__":
    main()
