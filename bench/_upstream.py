"""A minimal upstream test API for the proxy benchmark (gunicorn ``_upstream:app``).

Answers every ``GET`` that carries a bearer token with the same small JSON body (about the size
of one page of sandbox contacts), and 401 otherwise: the cheapest API the proxy can sit before.
A path starting ``/api/slow/`` answers the same after 50 ms (:data:`SLOW_SECONDS`): a realistic
API. The benchmark serves it with gevent workers, so the wait costs no thread and any number of
calls can wait at once, as with a real provider.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

BODY = json.dumps(
    {
        "contacts": [
            {"id": i, "name": f"Contact {i}", "email": f"c{i}@example.com"} for i in range(10)
        ],
        "next_cursor": None,
    }
).encode()
#: How long a ``/api/slow/…`` call takes (seconds).
SLOW_SECONDS = 0.05


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The WSGI app."""
    if not environ.get("HTTP_AUTHORIZATION", "").startswith("Bearer "):
        start_response(
            "401 Unauthorized", [("Content-Type", "application/json"), ("Content-Length", "2")]
        )
        return [b"{}"]
    if environ.get("PATH_INFO", "").startswith("/api/slow/"):
        time.sleep(SLOW_SECONDS)  # gevent's sleep under gevent workers
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]
    )
    return [BODY]
