"""Shared helpers of the benchmarks: result rows, the table, medians, loopback stacks.

Every benchmark module has ``run(quick: bool) -> list[Row]`` and a ``main()``; ``bench/run.py``
runs them all and prints one table. Timings are medians of repeated runs, and every ratio
compares two things measured side by side in the same run (interleaved where possible), so a
noisy shared machine slows both alike.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))  # the portal of this checkout, whatever the venv installed
# Per-request access logs of the in-process portals would drown the figures.
logging.getLogger("portal").setLevel(logging.WARNING)
CHROMIUM = os.environ.get("PORTAL_BENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Row:
    """One line of the table.

    ``figure`` and ``baseline`` are what was measured and what it is compared with (already
    formatted, units included); ``ratio`` is figure/baseline (or ``None``); ``target`` says what
    passes; ``met`` is ``None`` when the row is information only.
    """

    benchmark: str
    figure: str
    baseline: str
    ratio: float | None
    target: str
    met: bool | None


def table(rows: Sequence[Row]) -> str:
    """The rows as a fixed-width text table (one header line, one line per row)."""
    head = ("benchmark", "figure", "baseline", "ratio", "target", "met?")
    lines = [
        (
            r.benchmark,
            r.figure,
            r.baseline,
            "" if r.ratio is None else f"{r.ratio:.2f}",
            r.target,
            {True: "yes", False: "NO", None: "-"}[r.met],
        )
        for r in rows
    ]
    widths = [max(len(str(x[i])) for x in [head, *lines]) for i in range(len(head))]
    out = [
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [head, *lines]
    ]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def median(values: Sequence[float]) -> float:
    """The median (``statistics.median``)."""
    return statistics.median(values)


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered)) - 1))]


def interleaved(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Call every function once per round, in turn, ``rounds`` times; seconds per call."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(rounds):
        # Alternate the order so neither side always runs first (warm caches, CPU boost).
        names = list(fns) if i % 2 == 0 else list(reversed(fns))
        for name in names:
            began = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - began)
    return times


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    """Block until something accepts on 127.0.0.1:``port``; ``TimeoutError`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def wait_for_http(url: str, timeout: float = 90.0) -> None:
    """Block until ``url`` answers at all (gunicorn binds before its workers have loaded the
    app, and a loaded machine takes a while); ``TimeoutError`` otherwise."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=max(1.0, deadline - time.monotonic()))
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise TimeoutError(f"{url} does not answer")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a child we started, then wait for it (kill after 10 s)."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cli(run: Callable[[bool], list[Row]], doc: str | None) -> None:
    """The ``main()`` of a benchmark module: ``--quick`` and one table."""
    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks it runs")
    args = parser.parse_args()
    print(table(run(args.quick)))
