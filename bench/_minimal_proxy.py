"""The floor a Flask proxy can reach: one route, one pooled urllib3 call, nothing else
(gunicorn ``_minimal_proxy:app``, ``BENCH_UPSTREAM`` = the upstream's URL).

``GET /proxy/<path>`` sends ``GET <upstream>/api/<path>?<query>`` with a fixed bearer token
and answers the upstream's status, ``Content-Type`` and body. No authentication, no account,
no logging, no header rules: what any Python proxy on Flask pays at least.
"""

from __future__ import annotations

import os

import urllib3
from flask import Flask, Response, request

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9")
HEADERS = {"Authorization": "Bearer bench-access-token"}
http = urllib3.PoolManager(maxsize=256)
app = Flask(__name__)


@app.get("/proxy/<path:path>")
def proxy(path: str) -> Response:
    """One upstream call, its answer relayed."""
    query = request.query_string.decode()
    upstream = http.request(
        "GET", f"{UPSTREAM}/api/{path}" + (f"?{query}" if query else ""), headers=HEADERS
    )
    return Response(
        upstream.data,
        status=upstream.status,
        content_type=upstream.headers.get("Content-Type", "application/octet-stream"),
    )
