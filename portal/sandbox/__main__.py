"""``python -m portal.sandbox [--host H] [--port P] [--issuer URL] [--redirect-uri URL …]
[--clients FILE.json]``.

Serves the sandbox provider with werkzeug's threaded server (no per-request access log: query
strings carry codes and states) and prints its URL (``--port 0`` picks a free port). Without ``--clients`` it registers
the demo client ``sandbox-demo`` / ``sandbox-demo-secret``; ``--redirect-uri`` (repeatable) sets
that client's redirect URIs, e.g. ``http://127.0.0.1:5000/portal/oauth/sandbox/callback`` for a
portal mounted in an app on port 5000 (default: the demo portal's, port 5001). ``--clients`` is a
JSON file holding a list of clients: ``[{"client_id": …, "client_secret": …, "redirect_uris":
[…], "scope": "profile contacts.read contacts.write"}]`` (every key is described at
``SANDBOX_CLIENTS`` in :mod:`portal.sandbox.config`).
"""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path
from typing import Any

from .._serving import ServerThread
from . import create_app
from .config import DEFAULTS


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m portal.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5002)
    parser.add_argument("--issuer", help="external base URL (default http://HOST:PORT)")
    parser.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        metavar="URL",
        help="redirect URI of the demo client sandbox-demo (repeatable; default: the demo's)",
    )
    parser.add_argument(
        "--clients", type=Path, help="JSON file with a list of clients (SANDBOX_CLIENTS)"
    )
    args = parser.parse_args(argv)
    if args.clients and args.redirect_uri:
        parser.error("--redirect-uri sets the demo client's URIs; put them in --clients instead")
    # Bound before the app exists, so --port 0 (a free port) still gets the right issuer URL.
    server = ServerThread(args.host, args.port)
    config: dict[str, Any] = {"SANDBOX_ISSUER": args.issuer or server.url}
    if args.clients:
        config["SANDBOX_CLIENTS"] = json.loads(args.clients.read_text(encoding="utf-8"))
    elif args.redirect_uri:
        demo = dict(DEFAULTS["SANDBOX_CLIENTS"][0], redirect_uris=list(args.redirect_uri))
        config["SANDBOX_CLIENTS"] = [demo]
    app = create_app(config)
    print(
        f"Sandbox OAuth 2.0 provider on {server.url} (issuer {config['SANDBOX_ISSUER']})",
        flush=True,
    )
    server.start(app)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
