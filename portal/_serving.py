"""Run WSGI apps on loopback in background threads (the demo and the test suite use this)."""

from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class QuietRequestHandler(WSGIRequestHandler):
    """Logs nothing per request: query strings carry tickets, codes and states."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class _Deferred:
    """A WSGI app set after the server is bound, so its URL (port) can go into its config."""

    def __init__(self) -> None:
        self.app: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.app(environ, start_response)


class ServerThread:
    """A threaded werkzeug server on ``host``, port ``port`` (0 picks a free one).

    ``url_host`` is the host name put in :attr:`url` (e.g. ``localhost`` while binding
    ``127.0.0.1``, so two servers on one machine are two different origins).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, url_host: str | None = None) -> None:
        self._app = _Deferred()
        self.server: BaseWSGIServer = make_server(
            host, port, self._app, threaded=True, request_handler=QuietRequestHandler
        )
        self.port: int = self.server.socket.getsockname()[1]
        self.url = f"http://{url_host or host}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self, app: Any) -> ServerThread:
        """Serve ``app`` from now on; returns ``self``."""
        self._app.app = app
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
