"""Scale of storage: getConnectedAccounts and the marketplace with 1,000 and 1,000,000 rows.

For SQLite and PostgreSQL, builds two databases: one with ``SMALL`` connected accounts, one
with ``LARGE``, spread over many end users (three apps each), bulk-inserted (``executemany`` on
SQLite, ``COPY`` on PostgreSQL) with one fixed sealed credential blob (the rows are never
opened). The measured end user has three real accounts in both. Two portal apps, one per
database, answer ``GET /api/v1/connected-accounts?app=sandbox`` and the marketplace
``GET /ui/apps`` in turn (Flask test client: the cost measured is the portal's, database
included); prints medians, the large/small ratio and the query plan of the account listing.

    .venv/bin/python bench/storage_scale.py [--quick] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from _common import Row, interleaved, median, table

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
USER = "bench-user"
APPS = ("sandbox", "slack", "hubspot")
COLUMNS = (
    "id",
    "user_id",
    "app",
    "external_id",
    "label",
    "status",
    "scopes",
    "credentials",
    "project",
    "expires_at",
    "created_at",
    "modified_at",
)


@contextmanager
def database(backend: str, tmp: str) -> Iterator[dict[str, Any]]:
    """Config for a fresh empty database (a SQLite file, or a PostgreSQL schema dropped after)."""
    if backend == "sqlite":
        yield {"PORTAL_DATABASE_URL": f"sqlite:///{tmp}/{uuid.uuid4().hex}.sqlite3"}
        return
    from sqlalchemy import create_engine, text

    schema = f"portal_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield {
            "PORTAL_DATABASE_URL": f"{PG_URL}?options=-csearch_path%3D{schema}",
            "PORTAL_AUTO_MIGRATE": True,
        }
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def build(config: dict[str, Any], rows: int) -> tuple[Any, dict[str, str], float]:
    """A portal app on ``config``'s database holding ``rows`` accounts (3 of them ``USER``'s),
    a session's headers for ``USER``, and the seconds the bulk insert took."""
    from portal import accounts, user_hash
    from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, portal_config
    from portal.service import create_app

    origin = "http://127.0.0.1:9"
    app = create_app(
        portal_config(
            "http://localhost:5001",
            "http://127.0.0.1:5002",
            [origin],
            PORTAL_RATE_LIMITS_ENABLED=False,
            **config,
        )
    )
    state = app.extensions["portal"]
    with state.store.session() as db:
        for n, name in enumerate(APPS):
            accounts.upsert_account(
                db,
                state.sealer,
                project=state.mounted_project,  # the demo's only app key
                user_id=USER,
                app=name,
                external_id=str(n),
                label=name,
                scopes=[],
                expires_at=None,
                credentials={"type": "oauth2", "access_token": "x", "token_type": "Bearer"},
            )
    engine = state.store.engine
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(f"SELECT {', '.join(COLUMNS)} FROM portal_connected_accounts")
        template = list(cur.fetchone())
        began = time.perf_counter()
        filler = (
            (f"ca_bench_{i}", f"user-{i // 3:07d}", APPS[i % 3], str(i), *template[4:])
            for i in range(rows - len(APPS))
        )
        if engine.dialect.name == "sqlite":
            # The store's SQLite connections run in autocommit and BEGIN themselves: one
            # transaction for the whole fill, not one per row.
            cur.execute("BEGIN")
            marks = ", ".join("?" * len(COLUMNS))
            cur.executemany(
                f"INSERT INTO portal_connected_accounts ({', '.join(COLUMNS)}) VALUES ({marks})",
                filler,
            )
        else:
            with cur.copy(
                f"COPY portal_connected_accounts ({', '.join(COLUMNS)}) FROM STDIN"
            ) as copy:
                for row in filler:
                    copy.write_row(row)
        raw.commit()
        cur.execute(
            "ANALYZE" if engine.dialect.name == "sqlite" else "ANALYZE portal_connected_accounts"
        )
        raw.commit()
        seconds = time.perf_counter() - began
    finally:
        raw.close()
    client = app.test_client()
    response = client.post(
        "/portal/api/v1/sessions",
        headers={"Origin": origin},
        json={"appKey": DEMO_APP_KEY, "userId": USER, "hash": user_hash(DEMO_APP_SECRET, USER)},
    )
    assert response.status_code == 201, response.text
    return app, {"Authorization": f"Bearer {response.json['token']}", "Origin": origin}, seconds


def explain(app: Any) -> str:
    """The database's plan of the account listing query (one line per plan step)."""
    from sqlalchemy import select
    from sqlalchemy.dialects import postgresql, sqlite

    from portal.store import ConnectedAccount

    engine = app.extensions["portal"].store.engine
    query = (
        select(ConnectedAccount)
        .where(ConnectedAccount.user_id == USER, ConnectedAccount.app == "sandbox")
        .order_by(ConnectedAccount.modified_at.desc(), ConnectedAccount.id)
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
    small, large = (1_000, 20_000) if quick else (1_000, 1_000_000)
    rounds = 20 if quick else 150
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            with database(backend, tmp) as cfg_small, database(backend, tmp) as cfg_large:
                app_s, headers_s, _ = build(cfg_small, small)
                app_l, headers_l, fill = build(cfg_large, large)
                print(f"storage_scale: {backend} {large:,} rows inserted in {fill:.1f} s; plan:")
                print(explain(app_l))
                c_s, c_l = app_s.test_client(), app_l.test_client()
                for label, path in (
                    ("getConnectedAccounts", "/portal/api/v1/connected-accounts?app=sandbox"),
                    ("marketplace render", "/portal/ui/apps"),
                ):

                    def call(client: Any, headers: dict[str, str], path: str = path) -> None:
                        response = client.get(path, headers=headers)
                        assert response.status_code == 200, response.status

                    times = interleaved(
                        {
                            "small": lambda c=c_s, h=headers_s: call(c, h),
                            "large": lambda c=c_l, h=headers_l: call(c, h),
                        },
                        rounds,
                    )
                    s, lg = median(times["small"]), median(times["large"])
                    rows.append(
                        Row(
                            f"4 {label}, {backend}, {large:,} rows",
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
