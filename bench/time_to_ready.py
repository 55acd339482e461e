"""Time to ready: from ``showApps('modal')`` to ``ready`` and to the marketplace painted.

Portals run side by side on loopback (werkzeug threaded servers, SQLite), with a catalog of 10
apps, of 132 (issue 14 item 4's size) and of the full catalog's size (as many apps as
``portal/apps/`` ships, at least 120; ``--quick``: 10 and the full size only), all made of copies of the ``sandbox-keys`` definition in a temp dir
(``PORTAL_CATALOG_PATHS`` + ``PORTAL_ENABLED_APPS``), so the figures do not depend on which
apps need OAuth client ids. A host page (headless Chromium) calls ``new ConnectPortal(...)``
and ``showApps('modal')``; ``ready`` is the SDK's event, "painted" is the first animation frame
in which the iframe shows an app card (a Playwright poll, so it also waits for the frame's
main thread), "first contentful paint" the browser's own Paint Timing entry of the frame's
document (PerformanceObserver), issue 14 item 4's measure. The baseline is a bare iframe, in the same place, loading
a static HTML file from the same server with the same bytes as what the portal paints from (the
shell, which carries the first page of cards; shell + content when it does not). Fresh page per
run, one browser context (static files cached, as for a returning user), rounds interleaved;
medians.

    .venv/bin/python bench/time_to_ready.py [--quick] [--rounds N] [--before DIR]

``--before DIR`` measures the portal of another checkout (``git archive <commit> portal
templates static | tar -x -C DIR``) the same way right after, in a process of its own, and adds
its rows marked ``(before)``: a comparison across two runs, not interleaved (the ratios to the
bare iframe are each measured side by side in their own run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from _browser import bench_stack, dumps, launch
from _common import ROOT, Row, median, table

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


# The frame document's Navigation Timing (epoch ms): first byte, last byte, domInteractive (the
# parser done). Where a gap between the portal and the bare page lies: the server, or the parse.
NAVIGATION = """() => {
  const n = performance.getEntriesByType('navigation')[0], o = performance.timeOrigin;
  return [o + n.responseStart, o + n.responseEnd, o + n.domInteractive];
}"""


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


def measure(context: Any, stack: Any, kind: str) -> tuple[float, ...]:
    """One fresh page: ms from the call to ready, to painted, to first contentful paint, and to
    the frame document's first byte, last byte and ``domInteractive``."""
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
        first_byte, last_byte, interactive = frame.evaluate(NAVIGATION)
        ready = page.wait_for_function("window.run.ready", timeout=30000).json_value()
        errors = page.evaluate("window.run.errors")
        assert not errors, errors
        marks = (ready, painted, fcp, first_byte, last_byte, interactive)
        return tuple(mark - start for mark in marks)
    finally:
        page.close()


Times = dict[tuple[int, str], list[tuple[float, ...]]]


def measure_all(quick: bool, rounds: int = 5) -> Times:
    """Per (catalog size, "portal" | "bare"): one :func:`measure` tuple per round."""
    from playwright.sync_api import sync_playwright

    full = max(120, len(list((ROOT / "portal/apps").glob("*.yaml"))))
    # Issue 14 item 4 names 132 apps (the catalog's size then); the full catalog's too.
    sizes = (10, full) if quick else tuple(sorted({10, 132, full}))
    rounds = 1 if quick else rounds
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
            times: Times = {}
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
    return times


def rows_of(times: Times, label: str = "") -> list[Row]:
    """The table's rows for ``times``; ``label`` (e.g. " (before)") makes them information."""
    sizes = sorted({n for n, _ in times})

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
    for n in sizes:
        # Where the first paint's gap lies (information): the server's answer, or the parse.
        first, bare_first = m(n, "portal", 3), m(n, "bare", 3)
        rows.append(
            Row(
                f"14.4 frame document's first byte, {n} apps",
                f"{first:.0f} ms",
                f"{bare_first:.0f} ms bare iframe",
                first / bare_first,
                "information",
                None,
            )
        )
        parse = m(n, "portal", 5) - m(n, "portal", 4)
        bare_parse = m(n, "bare", 5) - m(n, "bare", 4)
        rows.append(
            Row(
                f"14.4 frame document's parse (last byte to domInteractive), {n} apps",
                f"{parse:.0f} ms",
                f"{bare_parse:.0f} ms bare iframe",
                parse / bare_parse,
                "information",
                None,
            )
        )
    for big in sizes[1:]:
        fcp_growth = m(big, "portal", 2) / m(10, "portal", 2)
        bare_growth = m(big, "bare", 2) / m(10, "bare", 2)
        rows.append(
            Row(
                f"14.4 first contentful paint growth, {big} vs 10 apps",
                f"{m(big, 'portal', 2):.0f} ms",
                f"{m(10, 'portal', 2):.0f} ms at 10 apps (bare: {bare_growth:.2f}x)",
                fcp_growth,
                "<= 1.10",
                fcp_growth <= 1.1,
            )
        )
        growth = m(big, "portal", 1) / m(10, "portal", 1)
        rows.append(
            Row(
                f"2 painted growth, {big} vs 10 apps",
                f"{m(big, 'portal', 1):.0f} ms",
                f"{m(10, 'portal', 1):.0f} ms at 10 apps",
                growth,
                "<= 1.30",
                growth <= 1.3,
            )
        )
    if label:
        for row in rows:
            row.benchmark += label
            row.target, row.met = "information", None
    return rows


def run(quick: bool = False, before: str | None = None, rounds: int = 5) -> list[Row]:
    """The rows, and with ``before`` (another checkout's portal, measured right after in a
    process of its own, not interleaved) the same rows for it, marked ``(before)``."""
    rows = rows_of(measure_all(quick, rounds))
    if before:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "before.json"
            args = [sys.executable, __file__, "--portal-root", before, "--dump", str(out)]
            args += ["--rounds", str(rounds)]
            subprocess.run(args + (["--quick"] if quick else []), check=True)
            dumped = json.loads(out.read_text("utf-8"))
        old: Times = {
            (int(k.split(":")[0]), k.split(":")[1]): [tuple(t) for t in v]
            for k, v in dumped.items()
        }
        rows += rows_of(old, " (before)")
    return rows


def main() -> None:
    """``--quick``, ``--before DIR``; ``--portal-root``/``--dump`` are the subprocess's."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round: checks it runs")
    parser.add_argument("--before", help="a checkout whose portal is measured too")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (medians); default 5")
    parser.add_argument("--portal-root", help=argparse.SUPPRESS)
    parser.add_argument("--dump", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.portal_root:
        sys.path.insert(0, str(Path(args.portal_root).resolve()))
        times = measure_all(args.quick, args.rounds)
        Path(args.dump).write_text(json.dumps({f"{n}:{k}": v for (n, k), v in times.items()}))
        return
    print(table(run(args.quick, args.before, args.rounds)))


if __name__ == "__main__":
    main()
