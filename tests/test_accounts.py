"""portal/accounts.py and portal/store.py: upsert, listing, isolation, encryption at rest,
timestamps, migrations and concurrent upserts."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import database_url, migrations_head, sqlite_only
from sqlalchemy import func, inspect, select, text

from portal import accounts
from portal.crypto import Sealer, generate_key
from portal.demo import DEMO_APP_KEY
from portal.errors import ResourceNotFound
from portal.store import VERSION_TABLE, ConnectedAccount, Store

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ACCESS = "at-PLAINTEXT-0123456789abcdef"
REFRESH = "rt-PLAINTEXT-fedcba9876543210"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "portal.sqlite3"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A migrated store on a fresh test database (SQLite file or PostgreSQL schema)."""
    s = Store(database_url(tmp_path, "portal"))
    s.upgrade()
    yield s
    s.dispose()


@pytest.fixture
def sqlite_store(db_path: Path) -> Iterator[Store]:
    """A migrated store on the SQLite file ``db_path``, for tests that read the file itself."""
    s = Store(f"sqlite:///{db_path}")
    s.upgrade()
    yield s
    s.dispose()


@pytest.fixture
def sealer() -> Sealer:
    return Sealer([generate_key()])


def creds(access: str = ACCESS, refresh: str = REFRESH) -> dict[str, Any]:
    return {"type": "oauth2", "access_token": access, "refresh_token": refresh}


def upsert(
    store: Store,
    sealer: Sealer,
    user: str = "user-1",
    app: str = "sandbox",
    external_id: str = "ext-1",
    label: str = "ada@example.com",
    credentials: dict[str, Any] | None = None,
    scopes: tuple[str, ...] = ("profile",),
) -> tuple[str, bool]:
    with store.session() as session:
        account, created = accounts.upsert_account(
            session,
            sealer,
            project=DEMO_APP_KEY,
            user_id=user,
            app=app,
            external_id=external_id,
            label=label,
            scopes=list(scopes),
            credentials=credentials or creds(),
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
        return account.id, created


def load(store: Store, account_id: str) -> ConnectedAccount:
    with store.session() as session:
        account = session.get(ConnectedAccount, account_id)
        assert account is not None
        return account


def count_rows(store: Store) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(ConnectedAccount)) or 0)


# --------------------------------------------------------------------------- upsert


def test_upsert_creates_then_updates_same_identity(store: Store, sealer: Sealer) -> None:
    first_id, created = upsert(store, sealer, label="old label", scopes=("profile",))
    assert created is True
    before = load(store, first_id)
    time.sleep(0.01)

    second_id, created = upsert(
        store,
        sealer,
        label="new label",
        scopes=("profile", "contacts.read"),
        credentials=creds("at-new", "rt-new"),
    )
    assert created is False
    assert second_id == first_id
    after = load(store, first_id)
    assert after.modified_at > before.modified_at
    assert after.created_at == before.created_at
    assert after.label == "new label"
    assert after.scopes == ["profile", "contacts.read"]
    assert after.credentials != before.credentials
    assert sealer.open(first_id, after.credentials) == creds("at-new", "rt-new")
    assert count_rows(store) == 1


def test_upsert_reactivates_account(store: Store, sealer: Sealer) -> None:
    account_id, _ = upsert(store, sealer)
    with store.session() as session:
        account = session.get(ConnectedAccount, account_id)
        assert account is not None
        account.status = "needs_reauth"
    upsert(store, sealer)
    assert load(store, account_id).status == "active"


def test_different_external_id_adds_a_row(store: Store, sealer: Sealer) -> None:
    a, _ = upsert(store, sealer, external_id="ext-1")
    b, created = upsert(store, sealer, external_id="ext-2")
    assert created is True
    assert a != b
    assert count_rows(store) == 2


def test_identity_is_per_user_and_per_app(store: Store, sealer: Sealer) -> None:
    ids = {
        upsert(store, sealer, user="user-1", app="sandbox")[0],
        upsert(store, sealer, user="user-2", app="sandbox")[0],
        upsert(store, sealer, user="user-1", app="other")[0],
    }
    assert len(ids) == 3
    assert count_rows(store) == 3


def test_account_ids_are_unguessable() -> None:
    ids = {accounts.new_account_id() for _ in range(200)}
    assert len(ids) == 200
    for account_id in ids:
        assert account_id.startswith("ca_")
        assert len(account_id) >= 27


def test_long_label_is_truncated(store: Store, sealer: Sealer) -> None:
    account_id, _ = upsert(store, sealer, label="x" * 1000)
    assert load(store, account_id).label == "x" * 255


# --------------------------------------------------------------------------- list / get / delete


def test_list_ordered_by_modified_at_desc(store: Store, sealer: Sealer) -> None:
    ids = []
    for n in range(3):
        ids.append(upsert(store, sealer, external_id=f"ext-{n}")[0])
        time.sleep(0.01)
    with store.session() as session:
        listed = [a.id for a in accounts.list_accounts(session, "user-1", project=DEMO_APP_KEY)]
    assert listed == list(reversed(ids))

    upsert(store, sealer, external_id="ext-0")  # reconnect the oldest: it moves to the top
    with store.session() as session:
        listed = [a.id for a in accounts.list_accounts(session, "user-1", project=DEMO_APP_KEY)]
        dicts = [
            accounts.to_dict(a)
            for a in accounts.list_accounts(session, "user-1", project=DEMO_APP_KEY)
        ]
    assert listed == [ids[0], ids[2], ids[1]]
    assert [d["modified_at"] for d in dicts] == sorted(
        (d["modified_at"] for d in dicts), reverse=True
    )


def test_list_filters_by_user_and_app(store: Store, sealer: Sealer) -> None:
    mine = upsert(store, sealer, user="user-1", app="sandbox")[0]
    other_app = upsert(store, sealer, user="user-1", app="other")[0]
    upsert(store, sealer, user="user-2", app="sandbox")
    with store.session() as session:
        assert {a.id for a in accounts.list_accounts(session, "user-1", project=DEMO_APP_KEY)} == {
            mine,
            other_app,
        }
        assert [
            a.id for a in accounts.list_accounts(session, "user-1", "sandbox", project=DEMO_APP_KEY)
        ] == [mine]
        assert accounts.list_accounts(session, "user-3", project=DEMO_APP_KEY) == []


def test_get_account_of_another_user_is_not_found(store: Store, sealer: Sealer) -> None:
    account_id, _ = upsert(store, sealer, user="user-a")
    with store.session() as session:
        assert (
            accounts.get_account(session, "user-a", account_id, project=DEMO_APP_KEY).id
            == account_id
        )
        with pytest.raises(ResourceNotFound) as other_user:
            accounts.get_account(session, "user-b", account_id, project=DEMO_APP_KEY)
        with pytest.raises(ResourceNotFound) as missing:
            accounts.get_account(session, "user-b", "ca_does_not_exist", project=DEMO_APP_KEY)
    # The same 404 whether or not the id exists: existence is not revealed.
    assert other_user.value.code == missing.value.code == 404
    assert other_user.value.description == missing.value.description


def test_delete_account(store: Store, sealer: Sealer) -> None:
    keep, _ = upsert(store, sealer, external_id="keep")
    gone, _ = upsert(store, sealer, external_id="gone")
    with store.session() as session:
        accounts.delete_account(
            session, accounts.get_account(session, "user-1", gone, project=DEMO_APP_KEY)
        )
    with store.session() as session:
        assert [a.id for a in accounts.list_accounts(session, "user-1", project=DEMO_APP_KEY)] == [
            keep
        ]
        with pytest.raises(ResourceNotFound):
            accounts.get_account(session, "user-1", gone, project=DEMO_APP_KEY)


def test_failed_transaction_writes_nothing(store: Store, sealer: Sealer) -> None:
    with pytest.raises(RuntimeError), store.session() as session:
        accounts.upsert_account(
            session,
            sealer,
            project=DEMO_APP_KEY,
            user_id="user-1",
            app="sandbox",
            external_id="ext-1",
            label="x",
            scopes=[],
            credentials=creds(),
            expires_at=None,
        )
        raise RuntimeError("crash before commit")
    assert count_rows(store) == 0


def test_event_payload_shape(store: Store, sealer: Sealer) -> None:
    account_id, _ = upsert(store, sealer)
    with store.session() as session:
        rows = accounts.list_accounts(session, "user-1", project=DEMO_APP_KEY)
        ref = {"name": "sandbox", "title": "Sandbox CRM", "icon_url": "http://x/icon.svg"}
        payload = accounts.event_payload(ref, account_id, rows)
    assert payload["app"] == ref
    assert payload["connectedAccountId"] == account_id
    assert [a["id"] for a in payload["connected_accounts"]] == [account_id]
    assert "credentials" not in payload["connected_accounts"][0]


# --------------------------------------------------------------------------- encryption at rest


@sqlite_only
@pytest.mark.security("A database dump contains no plaintext token or client secret")
def test_database_dump_contains_no_plaintext_token(
    sqlite_store: Store, sealer: Sealer, db_path: Path
) -> None:
    store = sqlite_store
    account_id, _ = upsert(store, sealer)
    upsert(store, sealer, external_id="ext-2", credentials=creds(ACCESS + "-2", REFRESH + "-2"))

    with store.engine.connect() as conn:
        raw_rows = [
            tuple(row)
            for table in ("portal_connected_accounts", "portal_connect_attempts")
            for row in conn.execute(text(f"SELECT * FROM {table}"))
        ]
    assert len(raw_rows) == 2
    dumped = "\n".join(repr(row) for row in raw_rows)
    assert account_id in dumped  # the dump does hold the rows...
    assert ACCESS not in dumped and REFRESH not in dumped  # ...but no token

    with sqlite3.connect(db_path) as conn:
        sql_dump = "\n".join(conn.iterdump())
    assert "portal_connected_accounts" in sql_dump
    assert ACCESS not in sql_dump and REFRESH not in sql_dump
    store.dispose()
    on_disk = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
    assert ACCESS.encode() not in on_disk and REFRESH.encode() not in on_disk
    assert sealer.open(account_id, load(store, account_id).credentials)["access_token"] == ACCESS


def test_to_dict_exposes_no_credentials(store: Store, sealer: Sealer) -> None:
    account_id, _ = upsert(store, sealer)
    public = accounts.to_dict(load(store, account_id))
    assert set(public) == {
        "id",
        "app",
        "label",
        "external_id",
        "status",
        "scopes",
        "created_at",
        "modified_at",
        "metadata",
    }
    assert ACCESS not in repr(public)


# --------------------------------------------------------------------------- times


def test_times_are_iso_8601_utc_with_z(store: Store, sealer: Sealer) -> None:
    before = datetime.now(UTC)
    account_id, _ = upsert(store, sealer)
    account = load(store, account_id)
    assert account.created_at.tzinfo is not None
    public = accounts.to_dict(account)
    for key in ("created_at", "modified_at"):
        assert ISO_Z.match(public[key]), public[key]
        parsed = datetime.fromisoformat(public[key].replace("Z", "+00:00"))
        assert abs(parsed - before) < timedelta(seconds=10)


def test_iso_converts_to_utc_milliseconds() -> None:
    value = datetime(2026, 11, 21, 19, 30, 5, 123456, tzinfo=UTC)
    assert accounts.iso(value) == "2026-11-21T19:30:05.123Z"
    assert accounts.iso(value.replace(microsecond=0)) == "2026-11-21T19:30:05.000Z"


def test_store_rejects_naive_datetimes(store: Store, sealer: Sealer) -> None:
    with pytest.raises(Exception, match="naive"), store.session() as session:
        accounts.upsert_account(
            session,
            sealer,
            project=DEMO_APP_KEY,
            user_id="u",
            app="a",
            external_id="e",
            label="l",
            scopes=[],
            credentials=creds(),
            expires_at=datetime(2030, 1, 1),
        )
    assert count_rows(store) == 0


# --------------------------------------------------------------------------- migrations


PORTAL_TABLES = {"portal_connected_accounts", "portal_connect_attempts"}


def tables(store: Store) -> set[str]:
    return set(inspect(store.engine).get_table_names())


def test_upgrade_downgrade_upgrade(tmp_path: Path, sealer: Sealer) -> None:
    store = Store(database_url(tmp_path, "m"))
    try:
        assert store.current_revision() is None
        store.upgrade()
        assert PORTAL_TABLES <= tables(store)
        assert VERSION_TABLE in tables(store)
        assert "alembic_version" not in tables(store)  # never collides with the host's Alembic
        assert store.current_revision() == migrations_head()
        upsert(store, sealer)

        store.downgrade("base")
        assert not (PORTAL_TABLES & tables(store))
        assert store.current_revision() is None

        store.upgrade()
        assert PORTAL_TABLES <= tables(store)
        assert count_rows(store) == 0
        upsert(store, sealer)
        assert count_rows(store) == 1
        store.upgrade()  # idempotent at head
        assert store.current_revision() == migrations_head()
    finally:
        store.dispose()


def test_migrations_match_the_models(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from portal.store import Base

    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_unique_identity_is_enforced_by_the_database(store: Store) -> None:
    now = "2026-01-01 00:00:00.000000"
    insert = text(
        "INSERT INTO portal_connected_accounts (id, project, user_id, app, external_id, label, "
        "status, scopes, credentials, created_at, modified_at) "
        "VALUES (:id, :project, 'u', 'a', 'e', 'l', 'active', '[]', :blob, :now, :now)"
    )
    with store.engine.begin() as conn:
        conn.execute(insert, {"id": "ca_1", "project": "p", "blob": b"\x00", "now": now})
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(insert, {"id": "ca_2", "project": "p", "blob": b"\x00", "now": now})
    # The identity is unique per project: another project may hold the same one.
    with store.engine.begin() as conn:
        conn.execute(insert, {"id": "ca_3", "project": "q", "blob": b"\x00", "now": now})


# --------------------------------------------------------------------------- concurrency


def test_concurrent_upserts_of_one_identity_end_with_one_row(store: Store, sealer: Sealer) -> None:
    workers = 8
    barrier = threading.Barrier(workers)
    results: list[tuple[str, bool]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            outcome = upsert(
                store, sealer, label=f"label-{n}", credentials=creds(f"at-{n}", f"rt-{n}")
            )
            with lock:
                results.append(outcome)
        except BaseException as exc:  # noqa: B036 - reported below
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == [], errors
    assert len(results) == workers
    assert count_rows(store) == 1
    ids = {account_id for account_id, _ in results}
    assert len(ids) == 1
    assert sum(created for _, created in results) == 1
    account = load(store, ids.pop())
    # The row holds one writer's complete state: label and credentials from the same call.
    n = account.label.removeprefix("label-")
    assert sealer.open(account.id, account.credentials) == creds(f"at-{n}", f"rt-{n}")
