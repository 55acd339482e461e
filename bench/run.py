"""Run every benchmark and print one table (``make bench``).

    .venv/bin/python bench/run.py [--quick] [--only NAME ...]

Each benchmark runs in this process, one after the other (never two at once: they would
measure each other), and prints its notes as it goes; the table comes last. ``--quick`` uses
tiny sizes and single rounds: it checks that everything runs, its figures mean nothing.
"""

from __future__ import annotations

import argparse
import importlib
import time
import traceback

from _common import Row, table

BENCHMARKS = (
    "sdk_size",
    "time_to_ready",
    "proxy_overhead",
    "storage_scale",
    "refresh_coalescing",
    "connect_cost",
    "oplog_scale",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks it runs")
    parser.add_argument("--only", action="append", choices=BENCHMARKS)
    args = parser.parse_args()
    rows: list[Row] = []
    failed = []
    began = time.monotonic()
    for name in args.only or BENCHMARKS:
        started = time.monotonic()
        print(f"== {name}", flush=True)
        try:
            rows.extend(importlib.import_module(name).run(args.quick))
        except Exception:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
        print(f"== {name}: {time.monotonic() - started:.0f} s", flush=True)
    print()
    print(table(rows))
    print(
        f"\n{len(rows)} rows, {sum(r.met is True for r in rows)} targets met, "
        f"{sum(r.met is False for r in rows)} not met; {time.monotonic() - began:.0f} s"
        + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
