"""Proxy overhead: the same request direct to an upstream API and through the portal proxy.

Both run under gunicorn on loopback (2 workers each, gthread): a minimal upstream WSGI API
(``bench/_upstream.py``) and ``portal.service:create_app()`` with a fresh SQLite database
holding one connected account of the ``sandbox`` app whose API base URL is that upstream.
``wrk`` (Debian's) loads ``GET /api/contacts?limit=10`` direct (with the account's bearer token)
and ``GET /portal/api/v1/proxy/sandbox/contacts?limit=10`` through the portal (with a session
token), at 1 and at 64 connections, alternating direct and proxied runs, several rounds;
reports medians of requests/s and of the latency p50/p99 wrk measured, and the servers' CPU
time per request (from ``/proc``; far less sensitive to a busy machine than latencies).
Both sides use the same gunicorn settings: gthread workers with 16 threads (the deployment
README.md recommends; sync workers would queue 64 connections behind 2 requests).

    .venv/bin/python bench/proxy_overhead.py [--quick]
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import requests
from _common import ROOT, Row, cli, free_port, median, stop, wait_for_http, wait_for_port

BENCH = Path(__file__).resolve().parent
ACCESS_TOKEN = "bench-access-token"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _gunicorn(app: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [
        str(ROOT / ".venv/bin/gunicorn"),
        "--chdir",
        str(BENCH),
        "-w",
        "2",
        "-k",
        "gthread",
        "--threads",
        "16",
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        app,
    ]
    return subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def cpu_seconds(master: subprocess.Popen[bytes]) -> float:
    """User + system CPU seconds used so far by the gunicorn master's worker processes (Linux
    ``/proc``): what one request costs the server, whatever else keeps the machine busy."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
    for pid in children:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14, 15)
    return total


def wrk(
    url: str, connections: int, seconds: float, authorization: str, origin: str = ""
) -> dict[str, float]:
    """One wrk run: ``{"rps", "p50", "p99", "requests"}`` (latencies in ms); non-2xx answers
    fail it."""
    out = subprocess.run(
        [
            "wrk",
            "-t",
            "1" if connections == 1 else "2",
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(BENCH / "auth.lua"),
            url,
        ],
        env={**os.environ, "BENCH_AUTHORIZATION": authorization, "BENCH_ORIGIN": origin},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Non-2xx" not in out and "Socket errors" not in out, out

    def latency(pct: str) -> float:
        value, unit = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * UNITS[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests_done = float(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p50": latency("50"), "p99": latency("99"), "requests": requests_done}


def _seed(config: dict[str, Any]) -> None:
    """Create the schema and one connected account (a non-expiring bearer token)."""
    from portal import accounts
    from portal.service import create_app

    app = create_app(config)
    state = app.extensions["portal"]
    with state.store.session() as db:
        accounts.upsert_account(
            db,
            state.sealer,
            project=state.mounted_project,  # the demo's only app key
            user_id="bench-user",
            app="sandbox",
            external_id="1",
            label="Bench",
            scopes=["contacts.read"],
            expires_at=None,
            credentials={"type": "oauth2", "access_token": ACCESS_TOKEN, "token_type": "Bearer"},
        )


def run(quick: bool = False) -> list[Row]:
    from portal import user_hash
    from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, portal_config

    seconds, rounds = (1, 1) if quick else (4, 3)
    up_port, portal_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    portal_url = f"http://localhost:{portal_port}"
    origin = "http://127.0.0.1:9"
    with tempfile.TemporaryDirectory() as tmp:
        config = portal_config(
            portal_url,
            upstream,
            [origin],
            PORTAL_DATABASE_URL=f"sqlite:///{tmp}/bench.sqlite3",
            PORTAL_RATE_LIMITS_ENABLED=False,
            PORTAL_LOG_FORMAT="text",
        )
        _seed(config)
        env = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in config.items()}
        children = [
            _gunicorn("_upstream:app", up_port, {}),
            _gunicorn("portal.service:create_app()", portal_port, env),
        ]
        try:
            wait_for_port(up_port)
            wait_for_port(portal_port)
            # Both workers of each: a few requests, so no timed run pays for an app import.
            for _ in range(4):
                wait_for_http(f"{upstream}/")
                wait_for_http(f"{portal_url}/portal/api/v1/")
            session = requests.post(
                f"{portal_url}/portal/api/v1/sessions",
                headers={"Origin": origin},
                timeout=10,
                json={
                    "appKey": DEMO_APP_KEY,
                    "userId": "bench-user",
                    "hash": user_hash(DEMO_APP_SECRET, "bench-user"),
                },
            )
            assert session.status_code == 201, session.text
            token = session.json()["token"]
            direct_url = f"{upstream}/api/contacts?limit=10"
            proxy_url = f"{portal_url}/portal/api/v1/proxy/sandbox/contacts?limit=10"
            check = requests.get(
                proxy_url,
                timeout=10,
                headers={"Authorization": f"Bearer {token}", "Origin": origin},
            )
            assert check.status_code == 200, check.text[:300]
            results: dict[tuple[str, int], list[dict[str, float]]] = {}
            for _ in range(rounds):
                for connections in (1, 64):
                    for side, url, auth, org, server in (
                        ("direct", direct_url, ACCESS_TOKEN, "", children[0]),
                        ("proxy", proxy_url, token, origin, children[1]),
                    ):
                        cpu = cpu_seconds(server)
                        result = wrk(url, connections, seconds, f"Bearer {auth}", org)
                        # Milliseconds of server CPU per request (the portal's includes its
                        # own call to the upstream, not the upstream's work).
                        result["cpu_ms"] = (cpu_seconds(server) - cpu) * 1000 / result["requests"]
                        results.setdefault((side, connections), []).append(result)
        finally:
            for child in children:
                stop(child)

    def m(side: str, c: int, key: str) -> float:
        return median([r[key] for r in results[(side, c)]])

    rows = []
    for c in (1, 64):
        ratio = m("proxy", c, "rps") / m("direct", c, "rps")
        rows.append(
            Row(
                f"3 proxy throughput, {c} conn",
                f"{m('proxy', c, 'rps'):.0f} req/s",
                f"{m('direct', c, 'rps'):.0f} req/s direct",
                ratio,
                ">= 0.50" if c == 64 else "information",
                ratio >= 0.5 if c == 64 else None,
            )
        )
    added50 = m("proxy", 1, "p50") - m("direct", 1, "p50")
    added99 = m("proxy", 1, "p99") - m("direct", 1, "p99")
    rows.append(
        Row(
            "3 proxy added latency p50, 1 conn",
            f"{added50:+.2f} ms",
            f"{m('direct', 1, 'p50'):.2f} ms direct",
            m("proxy", 1, "p50") / m("direct", 1, "p50"),
            "<= +2 ms",
            added50 <= 2.0,
        )
    )
    rows.append(
        Row(
            "3 proxy added latency p99, 1 conn",
            f"{added99:+.2f} ms",
            f"{m('direct', 1, 'p99'):.2f} ms direct",
            m("proxy", 1, "p99") / m("direct", 1, "p99"),
            "information",
            None,
        )
    )
    added64 = m("proxy", 64, "p50") - m("direct", 64, "p50")
    rows.append(
        Row(
            "3 proxy added latency p50, 64 conn",
            f"{added64:+.2f} ms",
            f"{m('direct', 64, 'p50'):.2f} ms direct",
            None,
            "information",
            None,
        )
    )
    cpu_proxy = median([r["cpu_ms"] for c in (1, 64) for r in results[("proxy", c)]])
    cpu_direct = median([r["cpu_ms"] for c in (1, 64) for r in results[("direct", c)]])
    rows.append(
        Row(
            "3 server CPU per request (portal vs upstream)",
            f"{cpu_proxy:.2f} ms",
            f"{cpu_direct:.2f} ms upstream",
            cpu_proxy / cpu_direct,
            "information",
            None,
        )
    )
    return rows


if __name__ == "__main__":
    cli(run, __doc__)
