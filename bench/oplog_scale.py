"""Scale of the operators' log: the first page of ``GET /api/v1/admin/log`` with 10,000 and
1,000,000 entries.

For SQLite and PostgreSQL, builds two databases: one with ``SMALL`` log entries, one with
``LARGE``, bulk-inserted (``executemany`` on SQLite, ``COPY`` on PostgreSQL) through migration
0006's indexes: five kinds, ten apps, 5,000 end users, one in seven failed, one entry a second
going back in time. The measured end user ``bench-user`` has 100 entries in both databases.
Two portal apps, one per database, answer the first page (50 entries, newest first) unfiltered,
filtered by user, and filtered by status and app, in turn (Flask test client, app secret as
bearer: the cost measured is the portal's, database included); prints medians, the
large/small ratio and the query plan of the filtered query.

    .venv/bin/python bench/oplog_scale.py [--quick] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from _common import Row, interleaved, median, table
from storage_scale import database

KINDS = ("function_call", "app_event_run", "flow_run", "webhook", "health_check")
APPS = tuple(f"app-{n}" for n in range(10))
USER = "bench-user"
COLUMNS = (
    "id",
    "project",
    "kind",
    "user_id",
    "app",
    "account_id",
    "status",
    "duration_ms",
    "ref_id",
    "request",
    "error",
    "created_at",
)
QUERIES = (
    ("first page", ""),
    ("first page, ?user_id=", f"&user_id={USER}"),
    ("first page, ?status=failed&app=", "&status=failed&app=app-3"),
)


def build(config: dict[str, Any], rows: int) -> tuple[Any, float]:
    """A portal app on ``config``'s database holding ``rows`` log entries (100 of them
    ``USER``'s), and the seconds the bulk insert took."""
    from portal.demo import DEMO_APP_KEY, portal_config
    from portal.service import create_app

    app = create_app(
        portal_config(
            "http://localhost:5001",
            "http://127.0.0.1:5002",
            ["http://127.0.0.1:9"],
            PORTAL_RATE_LIMITS_ENABLED=False,
            **config,
        )
    )
    engine = app.extensions["portal"].store.engine
    start = datetime.now(UTC).replace(tzinfo=None)
    every = max(1, rows // 100)
    request = json.dumps({"function": "bench-function", "method": "GET", "params": ["limit"]})

    def filler() -> Any:
        for i in range(rows):
            user = USER if i % every == 0 else f"user-{i % 5000}"
            failed = i % 7 == 0
            yield (
                f"op_bench_{i:08d}",
                DEMO_APP_KEY,
                KINDS[i % 5],
                user,
                APPS[i % 10],
                f"ca_bench_{i % 20000}",
                "failed" if failed else "succeeded",
                i % 900,
                f"ref_{i}",
                request,
                "HTTP 503" if failed else None,
                start - timedelta(seconds=i),
            )

    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        began = time.perf_counter()
        if engine.dialect.name == "sqlite":
            cur.execute("BEGIN")  # one transaction for the whole fill (see storage_scale)
            marks = ", ".join("?" * len(COLUMNS))
            cur.executemany(
                f"INSERT INTO portal_oplog ({', '.join(COLUMNS)}) VALUES ({marks})",
                ((*r[:-1], r[-1].strftime("%Y-%m-%d %H:%M:%S.%f")) for r in filler()),
            )
        else:
            with cur.copy(f"COPY portal_oplog ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in filler():
                    copy.write_row(row)
        raw.commit()
        cur.execute("ANALYZE" if engine.dialect.name == "sqlite" else "ANALYZE portal_oplog")
        raw.commit()
        seconds = time.perf_counter() - began
    finally:
        raw.close()
    return app, seconds


def explain(app: Any) -> str:
    """The database's plan of the first page filtered by status and app."""
    from sqlalchemy import select
    from sqlalchemy.dialects import postgresql, sqlite

    from portal.demo import DEMO_APP_KEY
    from portal.store import OplogEntry

    engine = app.extensions["portal"].store.engine
    query = (
        select(OplogEntry)
        .where(
            OplogEntry.project == DEMO_APP_KEY,
            OplogEntry.status == "failed",
            OplogEntry.app == "app-3",
        )
        .order_by(OplogEntry.created_at.desc(), OplogEntry.id.desc())
        .limit(51)
    )
    dialect = sqlite.dialect() if engine.dialect.name == "sqlite" else postgresql.dialect()
    sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(prefix + sql)
        return "\n".join("    " + " ".join(str(c) for c in row) for row in cur.fetchall())
    finally:
        raw.close()


def run(quick: bool = False, backends: tuple[str, ...] = ("sqlite", "postgresql")) -> list[Row]:
    from portal.demo import DEMO_APP_SECRET

    small, large = (5_000, 20_000) if quick else (10_000, 1_000_000)
    rounds = 20 if quick else 150
    headers = {"Authorization": f"Bearer {DEMO_APP_SECRET}"}
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            with database(backend, tmp) as cfg_small, database(backend, tmp) as cfg_large:
                app_s, _ = build(cfg_small, small)
                app_l, fill = build(cfg_large, large)
                print(f"oplog_scale: {backend} {large:,} entries inserted in {fill:.1f} s; plan:")
                print(explain(app_l))
                c_s, c_l = app_s.test_client(), app_l.test_client()
                for label, query in QUERIES:

                    def call(
                        client: Any, path: str = f"/portal/api/v1/admin/log?limit=50{query}"
                    ) -> None:
                        response = client.get(path, headers=headers)
                        assert response.status_code == 200, response.status
                        assert len(response.json["entries"]) == 50, len(response.json["entries"])

                    times = interleaved(
                        {"small": lambda c=c_s: call(c), "large": lambda c=c_l: call(c)}, rounds
                    )
                    s, lg = median(times["small"]), median(times["large"])
                    rows.append(
                        Row(
                            f"7 oplog {label}, {backend}, {large:,} entries",
                            f"{lg * 1000:.2f} ms",
                            f"{s * 1000:.2f} ms at {small:,}",
                            lg / s,
                            "<= 1.30",
                            lg / s <= 1.3,
                        )
                    )
                for a in (app_s, app_l):
                    a.extensions["portal"].store.engine.dispose()
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks it runs")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), action="append")
    args = parser.parse_args()
    print(table(run(args.quick, tuple(args.backend or ("sqlite", "postgresql")))))
