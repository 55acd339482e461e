"""Proxy overhead: one request direct to an API, through the portal's proxy, through the
smallest Flask proxy and through nginx, side by side in one run.

Servers, all on loopback, 2 worker processes each:

- **upstream** (``bench/_upstream.py``, gunicorn gevent workers): a minimal JSON API;
  ``/api/contacts`` answers at once, ``/api/slow/contacts`` after 50 ms (a realistic API);
- **portal**: ``portal.service:create_app()`` on a fresh SQLite database holding one connected
  account of the ``sandbox`` app whose API base URL is that upstream; rate limits off;
- **portal + limits**: the same app and database with rate limits ON, counters in Redis
  (``127.0.0.1:6379``, a key prefix of its own), limits far above what wrk reaches;
- **minimal proxy** (``bench/_minimal_proxy.py``): one Flask route doing one pooled urllib3
  call, nothing else: the floor of a proxy on Flask;
- **nginx** ``proxy_pass`` (Debian's ``/usr/sbin/nginx``, a config of our own in a temp dir,
  keep-alive to the upstream): the physical limit.

The portal, the portal with limits and the minimal proxy run under one gunicorn serving model,
:data:`SERVING` (the one README.md recommends). ``wrk`` (Debian's) loads each, alternating
targets within each round, several rounds; reports medians of requests/s and of wrk's latency
p50/p99, and the servers' CPU time per request read from ``/proc`` around each run (far less
sensitive to a busy machine than latencies; the proxies' figures include their own call to the
upstream, not the upstream's work).

    .venv/bin/python bench/proxy_overhead.py [--quick] [--worker W] [--before DIR] [--alt-worker W]

``--before DIR`` adds a target ``before``: the portal imported from ``DIR`` (e.g. ``git archive
<commit> portal templates static | tar -x -C DIR``), same database and settings, so a change is
measured against the code before it in the same run; ``--alt-worker W`` adds a target ``alt``:
this portal under another serving model (``gthread``, ``gthread64``, ``gevent``), side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import requests
from _common import ROOT, Row, free_port, median, stop, table, wait_for_http, wait_for_port

BENCH = Path(__file__).resolve().parent
ACCESS_TOKEN = "bench-access-token"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}
NGINX = "/usr/sbin/nginx"
#: gunicorn worker options of the proxies, by serving model. ``gevent`` is what README.md
#: recommends for the portal service; ``gthread`` is the thread-pool model it replaced
#: (``gthread64``: four times the threads).
WORKER_OPTIONS = {
    "gevent": ["-k", "gevent", "--worker-connections", "1000"],
    "gthread": ["-k", "gthread", "--threads", "16"],
    "gthread64": ["-k", "gthread", "--threads", "64"],
}
SERVING = "gevent"
#: Connections of the fast-API runs and of the slow-API (50 ms) runs.
FAST_CONNECTIONS = (1, 64)
SLOW_CONNECTIONS = (64, 256)


def _gunicorn(app: str, port: int, env: dict[str, str], worker: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--chdir",
        str(BENCH),
        "-w",
        "2",
        *WORKER_OPTIONS[worker],
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        app,
    ]
    # The portal of this checkout (not whichever one the interpreter has installed), unless
    # ``env`` names another (``--before``).
    env = {"PYTHONPATH": str(ROOT), **env}
    return subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


NGINX_CONF = """\
worker_processes 2;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 2048; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream api {{ server 127.0.0.1:{up_port}; keepalive 256; }}
    server {{
        listen 127.0.0.1:{port};
        location /proxy/ {{
            proxy_pass http://api/api/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer {token}";
        }}
    }}
}}
"""


def _nginx(tmp: str, port: int, up_port: int) -> subprocess.Popen[bytes]:
    """nginx in the foreground with a config of our own (``-p``: nothing outside ``tmp``)."""
    conf = Path(tmp) / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, up_port=up_port, token=ACCESS_TOKEN))
    return subprocess.Popen(
        [NGINX, "-p", tmp, "-e", f"{tmp}/nginx-error.log", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def cpu_seconds(master: subprocess.Popen[bytes]) -> float:
    """User + system CPU seconds used so far by the master's worker processes (Linux ``/proc``):
    what one request costs the server, whatever else keeps the machine busy."""
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
    """One wrk run: ``{"rps", "p50", "p99", "requests", "errors"}`` (latencies in ms;
    ``errors``: non-2xx answers plus socket errors and timeouts, 10 s)."""
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
            "--timeout",
            "10s",
            "-s",
            str(BENCH / "auth.lua"),
            url,
        ],
        env={**os.environ, "BENCH_AUTHORIZATION": authorization, "BENCH_ORIGIN": origin},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())

    def latency(pct: str) -> float:
        value, unit = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * UNITS[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests_done = float(re.search(r"(\d+) requests in", out).group(1))
    if not requests_done:  # no latency to read
        return {"rps": 0.0, "p50": 0.0, "p99": 0.0, "requests": 0.0, "errors": errors}
    return {
        "rps": rps,
        "p50": latency("50"),
        "p99": latency("99"),
        "requests": requests_done,
        "errors": errors,
    }


def measured(
    server: subprocess.Popen[bytes],
    url: str,
    connections: int,
    seconds: float,
    authorization: str,
    origin: str,
) -> dict[str, float]:
    """:func:`wrk` plus ``cpu_ms``, the server's CPU per answered request. A run that got no
    answer at all (a 1 s quick run on a machine loaded by other suites did) is run again for
    twice as long, up to 8×; then :class:`RuntimeError`."""
    for factor in (1, 2, 4, 8):
        cpu = cpu_seconds(server)
        result = wrk(url, connections, seconds * factor, authorization, origin)
        if result["requests"]:
            result["cpu_ms"] = (cpu_seconds(server) - cpu) * 1000 / result["requests"]
            return result
    raise RuntimeError(f"wrk got no answer from {url} in {seconds * 8} s")


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


def _env(config: dict[str, Any]) -> dict[str, str]:
    return {k: json.dumps(v) if not isinstance(v, str) else v for k, v in config.items()}


def measure(
    quick: bool = False,
    worker: str = SERVING,
    before: str | None = None,
    alt_worker: str | None = None,
) -> dict[tuple[str, str, int], list[dict]]:
    """Every wrk run: ``{(target, "fast"|"slow", connections): [result, …]}``; a result is
    :func:`wrk`'s plus ``cpu_ms`` (server CPU per request). Targets: ``direct``, ``portal``,
    ``limited`` (portal with Redis rate limits), ``minimal``, ``nginx``, and ``before`` (the
    portal imported from the directory ``before``) and ``alt`` (the portal under the serving
    model ``alt_worker``) when given."""
    from portal import user_hash
    from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, portal_config

    seconds, rounds = (1, 1) if quick else (3, 3)
    names = ("up", "portal", "limited", "minimal", "nginx") + (("before",) if before else ())
    names += ("alt",) if alt_worker else ()
    ports = {name: free_port() for name in names}
    upstream = f"http://127.0.0.1:{ports['up']}"
    origin = "http://127.0.0.1:9"
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        base = portal_config(
            f"http://localhost:{ports['portal']}",
            upstream,
            [origin],
            PORTAL_DATABASE_URL=f"sqlite:///{tmp}/bench.sqlite3",
            PORTAL_RATE_LIMITS_ENABLED=False,
            PORTAL_LOG_FORMAT="text",
        )
        _seed(base)
        limited = {
            **base,
            "PORTAL_BASE_URL": f"http://localhost:{ports['limited']}",
            "PORTAL_RATE_LIMITS_ENABLED": True,
            "PORTAL_REDIS_URL": "redis://127.0.0.1:6379/0",
            "PORTAL_RATE_LIMIT_KEY_PREFIX": prefix,
            "PORTAL_RATE_LIMIT_PROXY": "100000000/minute",
            "PORTAL_RATE_LIMIT_PROXY_APP_KEY": "100000000/minute",
        }
        servers = {
            "direct": _gunicorn("_upstream:app", ports["up"], {}, "gevent"),
            "portal": _gunicorn("portal.service:create_app()", ports["portal"], _env(base), worker),
            "limited": _gunicorn(
                "portal.service:create_app()", ports["limited"], _env(limited), worker
            ),
            "minimal": _gunicorn(
                "_minimal_proxy:app", ports["minimal"], {"BENCH_UPSTREAM": upstream}, worker
            ),
            "nginx": _nginx(tmp, ports["nginx"], ports["up"]),
        }
        if alt_worker:
            alt = {**base, "PORTAL_BASE_URL": f"http://localhost:{ports['alt']}"}
            servers["alt"] = _gunicorn(
                "portal.service:create_app()", ports["alt"], _env(alt), alt_worker
            )
        if before:
            old = {**base, "PORTAL_BASE_URL": f"http://localhost:{ports['before']}"}
            servers["before"] = _gunicorn(
                "portal.service:create_app()",
                ports["before"],
                {**_env(old), "PYTHONPATH": before},
                worker,
            )
        try:
            for port in ports.values():
                wait_for_port(port)
            urls = {
                "direct": f"{upstream}/api/",
                "portal": f"http://localhost:{ports['portal']}/portal/api/v1/proxy/sandbox/",
                "limited": f"http://localhost:{ports['limited']}/portal/api/v1/proxy/sandbox/",
                "minimal": f"http://127.0.0.1:{ports['minimal']}/proxy/",
                "nginx": f"http://127.0.0.1:{ports['nginx']}/proxy/",
            }
            if alt_worker:
                urls["alt"] = f"http://localhost:{ports['alt']}/portal/api/v1/proxy/sandbox/"
            if before:
                urls["before"] = f"http://localhost:{ports['before']}/portal/api/v1/proxy/sandbox/"
            auth = {"direct": ACCESS_TOKEN, "minimal": "-", "nginx": "-"}
            for name in [u for u in urls if u in ("portal", "limited", "before", "alt")]:
                root = urls[name].split("/portal/")[0]
                for _ in range(4):  # both workers: no timed run pays for an app import
                    wait_for_http(f"{root}/portal/api/v1/")
                session = requests.post(
                    f"{root}/portal/api/v1/sessions",
                    headers={"Origin": origin},
                    timeout=10,
                    json={
                        "appKey": DEMO_APP_KEY,
                        "userId": "bench-user",
                        "hash": user_hash(DEMO_APP_SECRET, "bench-user"),
                    },
                )
                assert session.status_code == 201, session.text
                auth[name] = session.json()["token"]
            for name, url in urls.items():
                for path in ("contacts?limit=10", "slow/contacts?limit=10"):
                    for _ in range(4):
                        check = requests.get(
                            url + path,
                            timeout=10,
                            headers={"Authorization": f"Bearer {auth[name]}", "Origin": origin},
                        )
                        assert check.status_code == 200, (name, check.text[:300])
            plan = [("fast", c, t) for c in FAST_CONNECTIONS for t in urls]
            slow = ["direct", "portal", "minimal"] + (["before"] if before else [])
            slow += ["alt"] if alt_worker else []
            plan += [("slow", c, t) for c in SLOW_CONNECTIONS for t in slow]
            plan += [("slow", c, "nginx") for c in SLOW_CONNECTIONS]
            results: dict[tuple[str, str, int], list[dict]] = {}
            for i in range(rounds):
                for speed, connections, target in plan if i % 2 == 0 else reversed(plan):
                    path = "contacts?limit=10" if speed == "fast" else "slow/contacts?limit=10"
                    server = servers[target]
                    org = origin if target in ("portal", "limited", "before", "alt") else ""
                    result = measured(
                        server,
                        urls[target] + path,
                        connections,
                        seconds,
                        f"Bearer {auth[target]}",
                        org,
                    )
                    results.setdefault((target, speed, connections), []).append(result)
        finally:
            for child in servers.values():
                stop(child)
    try:  # the limiter's counters of this run
        import redis

        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
    except Exception:  # noqa: BLE001 - Redis gone: nothing to clean
        pass
    return results


def run(
    quick: bool = False,
    worker: str = SERVING,
    before: str | None = None,
    alt_worker: str | None = None,
) -> list[Row]:
    results = measure(quick, worker, before, alt_worker)

    def m(target: str, speed: str, c: int, key: str) -> float:
        return median([r[key] for r in results[(target, speed, c)]])

    def errors(target: str, speed: str, c: int) -> str:
        n = int(sum(r["errors"] for r in results[(target, speed, c)]))
        return f", {n} errors" if n else ""

    def cpu(target: str) -> float:
        return median([r["cpu_ms"] for c in FAST_CONNECTIONS for r in results[(target, "fast", c)]])

    rows = []
    ratio = cpu("portal") / cpu("minimal")
    rows.append(
        Row(
            "14.1 proxy CPU per call vs minimal Flask+urllib3",
            f"{cpu('portal'):.2f} ms",
            f"{cpu('minimal'):.2f} ms minimal proxy",
            ratio,
            "<= 1.50",
            ratio <= 1.5,
        )
    )
    compared = [("before", "portal before (--before)")] if before else []
    compared += [("alt", f"portal under {alt_worker} (--alt-worker)")] if alt_worker else []
    for target, label in (
        *compared,
        ("limited", "portal, rate limits on (Redis)"),
        ("minimal", "minimal Flask+urllib3 proxy"),
        ("nginx", "nginx proxy_pass"),
        ("direct", "upstream direct"),
    ):
        rows.append(
            Row(
                f"14.1 CPU per call: {label}",
                f"{cpu(target):.2f} ms",
                f"{cpu('portal'):.2f} ms portal",
                cpu(target) / cpu("portal"),
                "information",
                None,
            )
        )
    rows.append(
        Row(
            "14.1 rate limiter cost per call (Redis)",
            f"{cpu('limited') - cpu('portal'):+.2f} ms",
            f"{cpu('portal'):.2f} ms limits off",
            cpu("limited") / cpu("portal"),
            "information",
            None,
        )
    )
    others = (["before"] if before else []) + (["alt"] if alt_worker else [])
    for target in ("portal", "minimal", "nginx", "limited", *others):
        rows.append(
            Row(
                f"14.1 throughput, 64 conn, fast API: {target}",
                f"{m(target, 'fast', 64, 'rps'):.0f} req/s" + errors(target, "fast", 64),
                f"{m('direct', 'fast', 64, 'rps'):.0f} req/s direct",
                m(target, "fast", 64, "rps") / m("direct", "fast", 64, "rps"),
                "information",
                None,
            )
        )
    added = m("portal", "fast", 1, "p50") - m("direct", "fast", 1, "p50")
    rows.append(
        Row(
            "3 proxy added latency p50, 1 conn",
            f"{added:+.2f} ms",
            f"{m('direct', 'fast', 1, 'p50'):.2f} ms direct",
            m("portal", "fast", 1, "p50") / m("direct", "fast", 1, "p50"),
            "<= +2 ms",
            added <= 2.0,
        )
    )
    for c in SLOW_CONNECTIONS:
        ratio = m("portal", "slow", c, "rps") / m("direct", "slow", c, "rps")
        rows.append(
            Row(
                f"14.2 50 ms API, {c} conn: throughput",
                f"{m('portal', 'slow', c, 'rps'):.0f} req/s" + errors("portal", "slow", c),
                f"{m('direct', 'slow', c, 'rps'):.0f} req/s direct",
                ratio,
                ">= 0.90",
                ratio >= 0.9 and not errors("portal", "slow", c),
            )
        )
        added = m("portal", "slow", c, "p50") - m("direct", "slow", c, "p50")
        rows.append(
            Row(
                f"14.2 50 ms API, {c} conn: added p50",
                f"{added:+.2f} ms",
                f"{m('direct', 'slow', c, 'p50'):.2f} ms direct",
                None,
                "<= +5 ms",
                added <= 5.0,
            )
        )
        extra = (["before"] if before else []) + (["alt"] if alt_worker else [])
        for target in ("minimal", "nginx", *extra):
            rows.append(
                Row(
                    f"14.2 50 ms API, {c} conn: {target}",
                    f"{m(target, 'slow', c, 'rps'):.0f} req/s, "
                    f"{m(target, 'slow', c, 'p50') - m('direct', 'slow', c, 'p50'):+.1f} ms p50"
                    + errors(target, "slow", c),
                    f"{m('direct', 'slow', c, 'rps'):.0f} req/s direct",
                    m(target, "slow", c, "rps") / m("direct", "slow", c, "rps"),
                    "information",
                    None,
                )
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks it runs")
    parser.add_argument("--worker", choices=sorted(WORKER_OPTIONS), default=SERVING)
    parser.add_argument("--before", metavar="DIR", help="also serve the portal found in DIR")
    parser.add_argument(
        "--alt-worker", choices=sorted(WORKER_OPTIONS), help="also serve the portal under this"
    )
    args = parser.parse_args()
    print(table(run(args.quick, args.worker, args.before, args.alt_worker)))


if __name__ == "__main__":
    main()
