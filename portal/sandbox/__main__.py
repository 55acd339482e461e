"""``python -m portal.sandbox [--host H] [--port P] [--issuer URL] [--clients FILE.json]``.

Serves the sandbox provider with werkzeug's threaded server. ``--clients`` is a JSON list in the
``SANDBOX_CLIENTS`` format; without it the default demo client is registered.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from . import create_app


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m portal.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5002)
    parser.add_argument("--issuer", help="external base URL (default http://HOST:PORT)")
    parser.add_argument("--clients", type=Path, help="JSON file with SANDBOX_CLIENTS")
    args = parser.parse_args(argv)
    config: dict[str, Any] = {"SANDBOX_ISSUER": args.issuer or f"http://{args.host}:{args.port}"}
    if args.clients:
        config["SANDBOX_CLIENTS"] = json.loads(args.clients.read_text(encoding="utf-8"))
    create_app(config).run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
