"""The benchmarks of bench/ in their tiny ``--quick`` mode, so they do not rot.

Only that they run and fill the table is checked, plus the figures that are counts, not
timings: the served SDK's gzip size (against a ceiling), exactly one refresh for concurrent
calls on an expired token, and that the served SDK is the build of the committed source. No
timing is asserted.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import ON_POSTGRESQL

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
pytestmark = pytest.mark.slow


def bench(name: str) -> Any:
    """Import ``bench/<name>.py`` (the benchmarks import their siblings by plain name)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


def test_served_sdk_is_the_build_of_the_committed_source() -> None:
    banner = (ROOT / "static/portal.min.js").read_text("utf-8").splitlines()[0]
    match = re.search(r"source sha256:([0-9a-f]{16})", banner)
    assert match, banner
    source = hashlib.sha256((ROOT / "static/portal.js").read_bytes()).hexdigest()
    assert match.group(1) == source[:16], "static/portal.min.js is stale: run `make sdk`"


#: A ceiling against growth of what the script tag loads (gzip -9 bytes): the size reached
#: (3,958 B with the modal's loading state, phone sheet, focus hand-back, view refresh,
#: origin_not_allowed, showConnectedAccounts, showFunctions, getFlows and setFlow, and the
#: frame's navigation started before the session exists, its token following by postMessage;
#: then the session's theme, the modal's dimmed backdrop, `lang` and connect `scopes`, issues 15
#: and 19) plus a small margin. Issue 14's target is 3,000 B (bench/sdk_size.py TARGET): not met.
SDK_GZIP_CEILING = 4_040


def test_sdk_size_does_not_grow() -> None:
    (row,) = bench("sdk_size").run(quick=True)
    size = int(row.figure.removesuffix(" B").replace(",", ""))
    assert size <= SDK_GZIP_CEILING, row


def test_refresh_coalescing_sends_exactly_one_refresh() -> None:
    rows = bench("refresh_coalescing").run(quick=True)
    assert rows[0].met is True, rows[0]
    assert rows[1].ratio is not None and rows[1].ratio > 0


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make wrk)")
@pytest.mark.skipif(not Path("/usr/sbin/nginx").exists(), reason="Debian's nginx-light is missing")
def test_proxy_overhead_runs() -> None:
    rows = bench("proxy_overhead").run(quick=True)
    assert len(rows) == 19 and all(r.figure for r in rows)


def test_storage_scale_runs() -> None:
    backend = "postgresql" if ON_POSTGRESQL else "sqlite"
    rows = bench("storage_scale").run(quick=True, backends=(backend,))
    assert [r.ratio is not None and r.ratio > 0 for r in rows] == [True, True]


def test_oplog_scale_runs() -> None:
    backend = "postgresql" if ON_POSTGRESQL else "sqlite"
    rows = bench("oplog_scale").run(quick=True, backends=(backend,))
    assert [r.ratio is not None and r.ratio > 0 for r in rows] == [True, True, True]


@pytest.mark.e2e
def bench_in_subprocess(name: str) -> list[Any]:
    """``bench/<name>.py``'s ``run(quick=True)`` in a fresh interpreter: the browser benchmarks
    drive Playwright's sync API, which refuses to start in a worker process where another
    test's Playwright (the e2e fixtures) already runs its event loop."""
    code = (
        "import dataclasses, json, sys\n"
        f"import {name}\n"
        f"print(json.dumps([dataclasses.asdict(r) for r in {name}.run(quick=True)]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=BENCH, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return [SimpleNamespace(**row) for row in json.loads(out.stdout.strip().splitlines()[-1])]


def test_time_to_ready_runs() -> None:
    rows = bench_in_subprocess("time_to_ready")
    assert len(rows) == 12 and all(r.ratio and r.ratio > 0 for r in rows)
    # The frame's first byte and parse time, portal against the bare page, per catalog size.
    names = [r.benchmark for r in rows]
    assert sum(n.startswith("14.4 frame document's first byte") for n in names) == 2
    assert sum(n.startswith("14.4 frame document's parse") for n in names) == 2


@pytest.mark.e2e
def test_connect_cost_runs() -> None:
    rows = bench_in_subprocess("connect_cost")
    # Every flow makes at least the protocol's four requests (and their bytes).
    flow = [r for r in rows if r.benchmark.startswith("6 ")]
    assert len(flow) == 4 and all(r.ratio is not None and r.ratio >= 1 for r in flow)
    # Issue 14 item 3's count rows, first visit and second connect.
    assert [r.benchmark.startswith("14.3 ") for r in rows] == [False, False, True] * 2


def test_run_prints_one_table() -> None:
    out = subprocess.run(
        [sys.executable, "run.py", "--quick", "--only", "sdk_size"],
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert re.search(r"^benchmark\s+figure\s+baseline\s+ratio\s+target\s+met\?$", out, re.M), out
