"""A host page on loopback for the browser benchmarks (headless Debian Chromium, Playwright).

:func:`bench_stack` starts a :class:`~portal.demo.DemoStack` whose host app serves
``/bench?user=<id>``: a page that loads the SDK the way the README says (``portal.min.js`` from
the portal's origin) and a small script from its own origin that exposes ``window.bench``.
"""

from __future__ import annotations

import json
from typing import Any

from _common import CHROMIUM, CHROMIUM_ARGS
from flask import Response, request
from markupsafe import escape

# epoch milliseconds in any frame: performance.timeOrigin + performance.now().
BENCH_JS = """
(function () {
  'use strict';
  const ds = document.body.dataset;
  const now = () => performance.timeOrigin + performance.now();
  window.bench = {
    now,
    // new ConnectPortal + showApps('modal'): epoch ms of the start and of the 'ready' event.
    portal() {
      const r = { start: now(), ready: null, errors: [] };
      const p = new ConnectPortal({ appKey: ds.appKey, userId: ds.userId, hash: ds.hash });
      p.eventEmitter.on('ready', () => { r.ready = now(); });
      p.eventEmitter.on('error', (e) => r.errors.push(e));
      p.showApps('modal');
      window.portal = p;
      window.run = r;
      return r.start;
    },
    // A bare iframe of the same size, in the same place: 'ready' is its load event.
    bare(src) {
      const r = { start: now(), ready: null, errors: [] };
      const f = document.createElement('iframe');
      Object.assign(f.style, { position: 'fixed', inset: '5vh 5vw', width: '90vw', height: '90vh', border: '0' });
      f.addEventListener('load', () => { r.ready = now(); }, { once: true });
      f.src = src;
      document.body.append(f);
      window.run = r;
      return r.start;
    },
  };
})();
"""


def _page(portal_url: str) -> Response:
    from portal import user_hash
    from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET

    user = request.args.get("user", "bench-user")
    attrs = {
        "data-app-key": DEMO_APP_KEY,
        "data-user-id": user,
        "data-hash": user_hash(DEMO_APP_SECRET, user),
    }
    body_attrs = " ".join(f'{k}="{escape(v)}"' for k, v in attrs.items())
    return Response(
        f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bench host page</title>
<script src="{escape(portal_url)}/portal/static/portal.min.js"></script>
<script defer src="/bench.js"></script>
</head><body {body_attrs}>
<h1>bench host page</h1>
<button type="button" id="connect">Connect</button>
</body></html>""",
        mimetype="text/html",
    )


def bench_stack(database_url: str, **portal_overrides: Any) -> Any:
    """A started :class:`DemoStack` (no worker, no rate limits) whose host serves ``/bench``."""
    from portal.demo import DemoStack

    portal_overrides.setdefault("PORTAL_RATE_LIMITS_ENABLED", False)
    stack = DemoStack(0, 0, 0, database_url=database_url, worker=False, **portal_overrides)
    stack.host_app.add_url_rule("/bench", "bench_page", lambda: _page(stack.portal.url))
    stack.host_app.add_url_rule(
        "/bench.js", "bench_js", lambda: Response(BENCH_JS, mimetype="text/javascript")
    )
    return stack


def launch(playwright: Any) -> Any:
    """Headless Chromium from Debian (Playwright never downloads a browser here)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def dumps(value: Any) -> str:
    """JSON for a JavaScript expression."""
    return json.dumps(value)
