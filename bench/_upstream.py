"""A minimal upstream test API for the proxy benchmark (gunicorn ``_upstream:app``).

Answers every ``GET`` that carries a bearer token with the same small JSON body (about the size
of one page of sandbox contacts), and 401 otherwise: the cheapest API the proxy can sit before.
"""

from __future__ import annotations

import json
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


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The WSGI app."""
    if not environ.get("HTTP_AUTHORIZATION", "").startswith("Bearer "):
        start_response(
            "401 Unauthorized", [("Content-Type", "application/json"), ("Content-Length", "2")]
        )
        return [b"{}"]
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]
    )
    return [BODY]
