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

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _browser import bench_stack, launch
from _common import Row, median, table


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
        # Served from the browser's cache: nothing came over the network (Chromium reports
        # no encoded bytes, so Playwright's body size is minus the headers' size).
        cached = sizes["responseBodySize"] + sizes["responseHeadersSize"] <= 0
        log.append(
            {
                "url": request.url,
                "method": request.method,
                "bytes": 0 if cached else sum(sizes.values()),
                "type": request.resource_type,
                "cached": cached,
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


def _provider(url: str, stack_portal: str) -> bool:
    """A request to the OAuth provider (the sandbox), not to the portal."""
    return not url.startswith(stack_portal)


def measure(quick: bool) -> dict[str, Any]:
    """``{"cold": [log…], "warm": [log…], "portal": origin}``, one log per round."""
    from playwright.sync_api import sync_playwright

    rounds = 1 if quick else 3
    cold: list[list[dict[str, Any]]] = []
    warm: list[list[dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        stack = bench_stack(f"sqlite:///{tmp}/portal.sqlite3").start()
        portal = stack.portal.url
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
    for logs in (cold, warm):
        for log in logs:
            for e in log:
                e["provider"] = _provider(e["url"], portal)
    return {"cold": cold, "warm": warm}


def _figures(logs: list[list[dict[str, Any]]]) -> dict[str, float]:
    """Medians over rounds of the requests that went over the network (not from the cache):
    all of them, the portal's (all but the provider's), those beyond the protocol minimum's
    (the portal's but its connect URL and callback, and the provider's), their bytes, the
    minimum's bytes, and the requests answered from the cache."""
    net = [[e for e in log if not e["cached"]] for log in logs]
    return {
        "requests": median([len(log) for log in net]),
        "portal_requests": median([sum(1 for e in log if not e["provider"]) for log in net]),
        "beyond": median(
            [
                sum(1 for e in log if not e["provider"] and not _minimal(e["url"], e["method"]))
                for log in net
            ]
        ),
        "bytes": median([sum(e["bytes"] for e in log) for log in net]),
        "minimum": median(
            [sum(e["bytes"] for e in log if _minimal(e["url"], e["method"])) for log in net]
        ),
        "cached": median([sum(1 for e in log if e["cached"]) for log in logs]),
    }


def _listing(label: str, log: list[dict[str, Any]]) -> None:
    kinds = Counter(
        f"{e['method']} {urlsplit(e['url']).path}" + (" (from cache)" if e["cached"] else "")
        for e in log
    )
    print(f"connect_cost: {label}, requests of the last round:")
    for key, count in sorted(kinds.items()):
        print(f"    {count} x {key}")


def _measure_before(directory: str, quick: bool) -> dict[str, Any]:
    """The same measurement with the portal imported from ``directory`` (another checkout)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "before.json"
        args = [sys.executable, __file__, "--portal-root", directory, "--dump", str(out)]
        subprocess.run(args + (["--quick"] if quick else []), check=True)
        result: dict[str, Any] = json.loads(out.read_text("utf-8"))
        return result


def _was(before: dict[str, float] | None, key: str, text: str) -> str:
    """``"; before <text>"`` with the before run's figure, or nothing without one."""
    return f"; before {text.format(before[key])}" if before else ""


def run(quick: bool = False, before: str | None = None) -> list[Row]:
    """Rows of benchmark 6 and issue 14 item 3's targets; with ``before``, the same figures for
    the portal of that checkout, measured in the same run, side by side."""
    results = {"after": measure(quick)}
    if before:
        results["before"] = _measure_before(before, quick)
    rows = []
    for label, key in (("first visit", "cold"), ("second connect", "warm")):
        for name, result in results.items():
            _listing(f"{label} ({name})", result[key][-1])
        f = _figures(results["after"][key])
        b = _figures(results["before"][key]) if before else None
        rows.append(
            Row(
                f"6 connect flow requests, {label}",
                f"{f['requests']:.0f} requests ({f['cached']:.0f} from cache)"
                + _was(b, "requests", "{:.0f}"),
                "4 protocol minimum",
                f["requests"] / 4,
                "information",
                None,
            )
        )
        ratio = f["bytes"] / f["minimum"]
        warm = key == "warm"
        rows.append(
            Row(
                f"6 connect flow bytes, {label}",
                f"{f['bytes'] / 1024:.1f} KiB ({ratio:.2f}x)"
                + (
                    f"; before {b['bytes'] / 1024:.1f} KiB ({b['bytes'] / b['minimum']:.2f}x)"
                    if b
                    else ""
                ),
                f"{f['minimum'] / 1024:.1f} KiB protocol minimum",
                ratio,
                "<= 1.30" if warm else "information",
                ratio <= 1.3 if warm else None,
            )
        )
        rows.append(
            Row(
                f"14.3 {label}: requests beyond the provider's own",
                f"{f['portal_requests']:.0f} requests" + _was(b, "portal_requests", "{:.0f}"),
                f"{f['beyond']:.0f} beyond the protocol's 4",
                None,
                "information" if warm else "<= 6",
                None if warm else f["portal_requests"] <= 6,
            )
        )
    return rows


def main() -> None:
    """``--quick``, ``--before DIR``; ``--portal-root``/``--dump`` are the subprocess's."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round: checks it runs")
    parser.add_argument("--before", help="a checkout whose portal is measured too (side by side)")
    parser.add_argument("--portal-root", help=argparse.SUPPRESS)
    parser.add_argument("--dump", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.portal_root:
        sys.path.insert(0, str(Path(args.portal_root).resolve()))
        Path(args.dump).write_text(json.dumps(measure(args.quick)), "utf-8")
        return
    print(table(run(args.quick, args.before)))


if __name__ == "__main__":
    main()
