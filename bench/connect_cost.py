"""Connect flow cost: requests and bytes the browser makes from clicking Connect to
``app-connected``, popup included, against the protocol minimum.

Headless Chromium on loopback (the demo stack: sandbox OAuth provider, portal, host page). The
host page's button calls ``portal.connectApp('sandbox')`` (the popup path of the SDK); the
popup consents at the sandbox; the run ends at the SDK's ``app-connected`` event. Every request
of the browser context (host page and popup) in between is recorded with its sizes
(``Request.sizes()``: headers and bodies, both ways). The protocol minimum is the four requests
OAuth 2.0 needs in the popup: the portal's connect URL (302 to the provider), the provider's
authorize page, the consent form post (302 to the callback), and the callback; its bytes are
those four requests' own bytes in the same run. Runs twice per round: a cold browser context
(first visit) and a warm one (second connect, caches filled).

    .venv/bin/python bench/connect_cost.py [--quick]
"""

from __future__ import annotations

import tempfile
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from _browser import bench_stack, launch
from _common import Row, cli, median


def _minimal(url: str, method: str) -> bool:
    path = urlsplit(url).path
    return (
        (method == "GET" and path.startswith("/portal/connect/"))
        or (path.endswith("/authorize"))
        or (method == "GET" and path.startswith("/portal/oauth/") and path.endswith("/callback"))
    )


def connect_once(context: Any, stack: Any, user: str) -> list[dict[str, Any]]:
    """Open the host page, wait for ``ready``, click Connect, consent, wait for app-connected;
    returns the requests made between the click and the event."""
    page = context.new_page()
    page.goto(f"{stack.host.url}/bench?user={user}")
    page.evaluate("""() => {
      window.connected = null;
      window.p = new ConnectPortal({ appKey: document.body.dataset.appKey,
        userId: document.body.dataset.userId, hash: document.body.dataset.hash });
      window.p.eventEmitter.on('app-connected', (e) => { window.connected = e; });
      return new Promise((resolve) => window.p.eventEmitter.on('ready', resolve));
    }""")
    page.evaluate("""() => document.getElementById('connect').addEventListener('click',
      () => window.p.connectApp('sandbox'))""")
    log: list[dict[str, Any]] = []
    recording = True

    def done(request: Any) -> None:
        if not recording:
            return
        sizes = request.sizes()
        log.append(
            {
                "url": request.url,
                "method": request.method,
                "bytes": sum(sizes.values()),
                "type": request.resource_type,
            }
        )

    context.on("requestfinished", done)
    try:
        with page.expect_popup() as info:
            page.click("#connect")
        popup = info.value
        popup.wait_for_selector("button[value=allow]")
        popup.click("button[value=allow]")
        page.wait_for_function("window.connected", timeout=30000)
        recording = False
    finally:
        context.remove_listener("requestfinished", done)
        page.close()
    return log


def run(quick: bool = False) -> list[Row]:
    from playwright.sync_api import sync_playwright

    rounds = 1 if quick else 3
    cold: list[list[dict[str, Any]]] = []
    warm: list[list[dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        stack = bench_stack(f"sqlite:///{tmp}/portal.sqlite3").start()
        try:
            with sync_playwright() as p:
                browser = launch(p)
                for r in range(rounds):
                    # (Playwright's polling needs eval, which the host page's CSP forbids.)
                    context = browser.new_context(bypass_csp=True)
                    cold.append(connect_once(context, stack, f"bench-cold-{r}"))
                    warm.append(connect_once(context, stack, f"bench-warm-{r}"))
                    context.close()
                browser.close()
        finally:
            stack.stop()
    rows = []
    for label, logs in (("first visit", cold), ("second connect", warm)):
        counts = [len(log) for log in logs]
        total = [sum(e["bytes"] for e in log) for log in logs]
        minimum = [sum(e["bytes"] for e in log if _minimal(e["url"], e["method"])) for log in logs]
        needed = [sum(1 for e in log if _minimal(e["url"], e["method"])) for log in logs]
        n, b, mb = median(counts), median(total), median(minimum)
        rows.append(
            Row(
                f"6 connect flow requests, {label}",
                f"{n:.0f} requests",
                f"{median(needed):.0f} protocol minimum",
                n / 4,
                "information",
                None,
            )
        )
        rows.append(
            Row(
                f"6 connect flow bytes, {label}",
                f"{b / 1024:.1f} KiB",
                f"{mb / 1024:.1f} KiB protocol minimum",
                b / mb,
                "information",
                None,
            )
        )
        kinds = Counter(f"{e['method']} {urlsplit(e['url']).path}" for e in logs[-1])
        print(f"connect_cost: {label}, requests of the last round:")
        for key, count in sorted(kinds.items()):
            print(f"    {count} x {key}")
    return rows


if __name__ == "__main__":
    cli(run, __doc__)
