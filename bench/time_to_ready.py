"""Time to ready: from ``showApps('modal')`` to ``ready`` and to the marketplace painted.

Two portals run side by side on loopback (werkzeug threaded servers, SQLite), one with a
catalog of 10 apps and one with the full catalog's size (as many apps as ``portal/apps/``
ships, at least 120), both made of copies of the ``sandbox-keys`` definition in a temp dir
(``PORTAL_CATALOG_PATHS`` + ``PORTAL_ENABLED_APPS``), so the figures do not depend on which
apps need OAuth client ids. A host page (headless Chromium) calls ``new ConnectPortal(...)``
and ``showApps('modal')``; ``ready`` is the SDK's event, "painted" is the first animation frame
in which the iframe shows an app card. The baseline is a bare iframe, in the same place, loading
a static HTML file from the same server with the same bytes as what the portal paints from (the
shell, which carries the first page of cards; shell + content when it does not). Fresh page per
run, one browser context (static files cached, as for a returning user), rounds interleaved;
medians.

    .venv/bin/python bench/time_to_ready.py [--quick]
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from _browser import bench_stack, dumps, launch
from _common import ROOT, Row, cli, median

CARD = "#portal-app-grid .portal-card"
PAINTED = (
    f"() => document.querySelector({CARD!r}) ? performance.timeOrigin + performance.now() : null"
)
# The browser's own paint timing (Paint Timing, first-contentful-paint, read through a buffered
# PerformanceObserver): epoch ms of the frame's first paint of content. The shell's first paint
# already holds its first page of cards, as the bare page's does.
FCP = """() => new Promise((resolve) => {
  new PerformanceObserver((list, observer) => {
    const entry = list.getEntriesByName('first-contentful-paint')[0];
    if (entry) { observer.disconnect(); resolve(performance.timeOrigin + entry.startTime); }
  }).observe({ type: 'paint', buffered: true });
})"""


def catalog(folder: Path, count: int, sandbox_url: str) -> list[str]:
    """``count`` API-key app definitions in ``folder``; returns their slugs."""
    source = (ROOT / "portal/apps/sandbox-keys.yaml").read_text("utf-8")
    source = source.replace("{base_url}", sandbox_url)
    data = yaml.safe_load(source)
    folder.mkdir(parents=True)
    slugs = []
    for i in range(count):
        slug = f"bench-app-{i:03d}"
        entry = dict(data, slug=slug, title=f"Bench App {i:03d}")
        # (a field the catalog schema may require; the shipped file may predate it)
        entry.setdefault("docs_url", "https://example.com/docs")
        (folder / f"{slug}.yaml").write_text(yaml.safe_dump(entry), "utf-8")
        slugs.append(slug)
    return slugs


def bare_file(stack: Any, folder: Path) -> None:
    """Serve, from the portal's own server, one static page as big as shell + marketplace."""
    import requests
    from conftest import new_session

    api = new_session(stack, "bench-user")

    shell = requests.get(f"{stack.portal.url}/portal/embed/apps?mode=modal", timeout=10).text
    content = requests.get(
        f"{stack.portal.url}/portal/ui/apps?mode=modal", headers=api.headers, timeout=10
    ).text
    if "portal-card" in shell:
        # The shell paints the first page of cards itself (frame.js fetches the user's version
        # afterwards): the bare page is that shell, scripts dropped, at the shell's size.
        html, target = shell, len(shell)
    else:
        # The content in place of the shell's empty main: it paints by itself.
        html, target = shell.replace("</main>", content + "</main>", 1), len(shell) + len(content)
    html = "\n".join(line for line in html.splitlines() if "<script" not in line)
    html += "<!--" + "x" * max(0, target - len(html) - 7) + "-->"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bare.html").write_text(html, "utf-8")


def add_bare_route(stack: Any, folder: Path) -> None:
    """``/bench/bare.html`` on the portal's server (added before it serves its first request)."""
    from flask import send_file

    stack.portal_app.add_url_rule(
        "/bench/bare.html", "bench_bare", lambda: send_file(folder / "bare.html")
    )


def measure(context: Any, stack: Any, kind: str) -> tuple[float, float, float]:
    """One fresh page: (ms to ready, ms to painted, ms to first contentful paint) from the
    call."""
    page = context.new_page()
    try:
        page.goto(f"{stack.host.url}/bench")
        with page.expect_event("frameattached") as info:
            if kind == "portal":
                start = page.evaluate("window.bench.portal()")
            else:
                start = page.evaluate(
                    f"window.bench.bare({dumps(stack.portal.url + '/bench/bare.html')})"
                )
        frame = info.value
        painted = frame.wait_for_function(PAINTED, polling="raf", timeout=30000).json_value()
        fcp = frame.evaluate(FCP)
        ready = page.wait_for_function("window.run.ready", timeout=30000).json_value()
        errors = page.evaluate("window.run.errors")
        assert not errors, errors
        return ready - start, painted - start, fcp - start
    finally:
        page.close()


def run(quick: bool = False) -> list[Row]:
    from playwright.sync_api import sync_playwright

    full = max(120, len(list((ROOT / "portal/apps").glob("*.yaml"))))
    sizes = (10, full)
    rounds = 1 if quick else 5
    stacks: dict[int, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for n in sizes:
                sandbox_url = "http://127.0.0.1:9"  # never called: nothing is connected
                folder = Path(tmp) / f"apps{n}"
                slugs = catalog(folder, n, sandbox_url)
                stacks[n] = bench_stack(
                    f"sqlite:///{tmp}/portal{n}.sqlite3",
                    PORTAL_CATALOG_PATHS=[str(folder)],
                    PORTAL_ENABLED_APPS=slugs,
                )
                add_bare_route(stacks[n], Path(tmp) / f"bare{n}")
                stacks[n].start()
                bare_file(stacks[n], Path(tmp) / f"bare{n}")
            times: dict[tuple[int, str], list[tuple[float, float, float]]] = {}
            with sync_playwright() as p:
                browser = launch(p)
                # The host page's CSP forbids eval, which Playwright's polling needs; bypassing
                # it changes no request and no timing of the portal.
                context = browser.new_context(bypass_csp=True)
                for n in sizes:  # warm-up: caches, first compile; not counted
                    for kind in ("portal", "bare"):
                        measure(context, stacks[n], kind)
                for i in range(rounds):
                    order = [(n, k) for n in sizes for k in ("portal", "bare")]
                    for n, kind in order if i % 2 == 0 else reversed(order):
                        times.setdefault((n, kind), []).append(measure(context, stacks[n], kind))
                browser.close()
        finally:
            for s in stacks.values():
                s.stop()

    def m(n: int, kind: str, which: int) -> float:
        return median([t[which] for t in times[(n, kind)]])

    rows = []
    for n in sizes:
        ready, bare_load = m(n, "portal", 0), m(n, "bare", 0)
        rows.append(
            Row(
                f"2 time to ready, {n} apps",
                f"{ready:.0f} ms",
                f"{bare_load:.0f} ms bare iframe load",
                ready / bare_load,
                "<= 1.50",
                ready / bare_load <= 1.5,
            )
        )
        painted, bare_painted = m(n, "portal", 1), m(n, "bare", 1)
        rows.append(
            Row(
                f"2 time to marketplace painted, {n} apps",
                f"{painted:.0f} ms",
                f"{bare_painted:.0f} ms bare iframe",
                painted / bare_painted,
                "<= 1.50",
                painted / bare_painted <= 1.5,
            )
        )
    for n in sizes:
        fcp, bare_fcp = m(n, "portal", 2), m(n, "bare", 2)
        rows.append(
            Row(
                f"14.4 first contentful paint, {n} apps",
                f"{fcp:.0f} ms",
                f"{bare_fcp:.0f} ms bare iframe",
                fcp / bare_fcp,
                "<= 1.20",
                fcp / bare_fcp <= 1.2,
            )
        )
    fcp_growth = m(full, "portal", 2) / m(10, "portal", 2)
    bare_growth = m(full, "bare", 2) / m(10, "bare", 2)
    rows.append(
        Row(
            f"14.4 first contentful paint growth, {full} vs 10 apps",
            f"{m(full, 'portal', 2):.0f} ms",
            f"{m(10, 'portal', 2):.0f} ms at 10 apps (bare: {bare_growth:.2f}x)",
            fcp_growth,
            "<= 1.10",
            fcp_growth <= 1.1,
        )
    )
    growth = m(full, "portal", 1) / m(10, "portal", 1)
    rows.append(
        Row(
            f"2 painted growth, {full} vs 10 apps",
            f"{m(full, 'portal', 1):.0f} ms",
            f"{m(10, 'portal', 1):.0f} ms at 10 apps",
            growth,
            "<= 1.30",
            growth <= 1.3,
        )
    )
    return rows


if __name__ == "__main__":
    cli(run, __doc__)
