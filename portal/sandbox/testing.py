"""Run a sandbox on a loopback port in a background thread (tests, demo, benchmarks).

::

    sandbox = start_sandbox({"SANDBOX_CLIENTS": [...]})
    try:
        requests.get(f"{sandbox.url}/.well-known/oauth-authorization-server")
    finally:
        sandbox.stop()

The port is chosen by the OS (port 0), and ``SANDBOX_ISSUER`` defaults to the URL it ends up on:
the server socket is bound first, then the app is built for that URL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from . import create_app


def _not_ready(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


@dataclass
class RunningSandbox:
    """A sandbox served by werkzeug's threaded server in a daemon thread."""

    url: str
    app: Flask
    server: BaseWSGIServer
    thread: threading.Thread = field(repr=False)

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join(timeout=10)
        self.server.server_close()


def start_sandbox(
    config: Mapping[str, Any] | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> RunningSandbox:
    """Bind ``host:port`` (0: any free port), build the app, serve it in a thread.

    :param config: passed to :func:`portal.sandbox.create_app`; ``SANDBOX_ISSUER`` defaults to
        ``http://<host>:<bound port>``.
    :returns: the running server; call :meth:`RunningSandbox.stop` when done.
    """
    server = make_server(host, port, _not_ready, threaded=True)
    url = f"http://{host}:{server.server_port}"
    try:
        app = create_app({"SANDBOX_ISSUER": url, **(config or {})})
    except BaseException:
        server.server_close()
        raise
    server.app = app
    thread = threading.Thread(
        target=server.serve_forever, name=f"sandbox-{server.server_port}", daemon=True
    )
    thread.start()
    return RunningSandbox(url=url, app=app, server=server, thread=thread)
