"""SQLAlchemy 2 models and the portal's own engine.

The portal never shares the host's database session: it builds its own engine from
``PORTAL_DATABASE_URL`` (an SQLite file in the instance folder by default), and every table is
prefixed ``portal_``. Schema changes ship as Alembic migrations in ``portal/migrations``; the
version table is ``portal_alembic_version`` so it never collides with the host's own Alembic.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    DateTime,
    Engine,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

VERSION_TABLE = "portal_alembic_version"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, truncated to microseconds."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC, on every backend (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class JSONText(TypeDecorator[Any]):
    """JSON stored as text, identical on SQLite and PostgreSQL."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else json.loads(value)


class Base(DeclarativeBase):
    """Declarative base of every portal table."""


class ConnectedAccount(Base):
    """One end user's authorization of one external account in one app.

    ``project`` is the app key (the tenant) it was connected under: every query reads it for
    one project only. Unique on ``(project, user_id, app, external_id)``: reconnecting the same
    external account updates the row, connecting a different one adds a row.
    ``credentials`` is a sealed blob (:class:`portal.crypto.Sealer`), never plaintext.
    """

    __tablename__ = "portal_connected_accounts"
    __table_args__ = (
        UniqueConstraint(
            "project", "user_id", "app", "external_id", name="uq_portal_account_identity"
        ),
        Index("ix_portal_connected_accounts_owner", "project", "user_id"),
        Index("ix_portal_connected_accounts_health", "health_next_at"),
        Index("ix_portal_connected_accounts_health_checked", "health_checked_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(1024), index=True)
    app: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(255))
    label: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32), default="active")
    scopes: Mapped[list[str]] = mapped_column(JSONText, default=list)
    credentials: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The host's own JSON object about the account (``PATCH /connected-accounts/<id>``);
    #: never secret. The column is ``metadata`` (the attribute name is taken by SQLAlchemy).
    account_metadata: Mapped[dict[str, Any] | None] = mapped_column(
        "metadata", JSONText, nullable=True
    )
    #: Health checks (:mod:`portal.health`): when the last one ran, when the next is due
    #: (``None``: as soon as possible), why the last one failed, failures in a row.
    health_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    health_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    health_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    health_failures: Mapped[int] = mapped_column(Integer, default=0)


class AccountTag(Base):
    """One tag of a connected account (``metadata.tags``), a row each so ``?tag=`` uses an
    index. Rewritten whenever the account's metadata is."""

    __tablename__ = "portal_account_tags"
    __table_args__ = (Index("ix_portal_account_tags_project_tag", "project", "tag"),)

    account_id: Mapped[str] = mapped_column(
        String(40),
        ForeignKey("portal_connected_accounts.id", ondelete="CASCADE"),
        primary_key=True,
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    project: Mapped[str] = mapped_column(String(255))


class OplogEntry(Base):
    """One entry of the operators' log (:mod:`portal.oplog`): a function call, an app-event
    run, a flow run, a webhook delivery attempt or a health check.

    ``request`` is the request's shape (names, method, type; never a value that could be a
    credential); ``status`` is ``succeeded`` | ``failed`` (``retrying`` for a webhook attempt
    that will be retried); ``duration_ms`` is wall time in milliseconds; ``ref_id`` is the id
    of the thing logged (``fc_…``, a run id, ``wh_…``, an account id).
    """

    __tablename__ = "portal_oplog"
    __table_args__ = (
        Index("ix_portal_oplog_time", "created_at", "id"),
        Index("ix_portal_oplog_project", "project", "created_at", "id"),
        Index("ix_portal_oplog_kind", "project", "kind", "created_at", "id"),
        Index("ix_portal_oplog_user", "project", "user_id", "created_at", "id"),
        Index("ix_portal_oplog_app", "project", "app", "created_at", "id"),
        Index("ix_portal_oplog_status", "project", "status", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    app: Mapped[str | None] = mapped_column(String(64), nullable=True)
    account_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    duration_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ref_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request: Mapped[Any] = mapped_column(JSONText, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConnectAttempt(Base):
    """One run of the connect flow, started by a single-use connect ticket.

    ``id`` is the ticket's nonce: inserting it twice fails, which makes the ticket single-use.
    ``status`` moves ``started`` -> ``exchanging`` -> ``connected`` | ``failed``; the iframe polls
    it when the popup lost ``window.opener``. ``project`` is the app key the ticket was issued
    for: the account it connects belongs to that project. ``account_id`` is the account it
    connected; a reconnect attempt has it from the start (the account it re-authorizes).
    """

    __tablename__ = "portal_connect_attempts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(1024))
    app: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="started")
    state_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    host_origin: Mapped[str] = mapped_column(String(255))
    opener_origin: Mapped[str] = mapped_column(String(255))
    return_to: Mapped[str | None] = mapped_column(Text, nullable=True)
    account_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: Extra scopes this connect asked for (from the app's ``optional_scopes``), or ``None``.
    scopes: Mapped[list[str] | None] = mapped_column(JSONText, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConnectLink(Base):
    """A hosted connect link (``POST /api/v1/connect-links``): a URL the host sends by e-mail,
    SMS or chat that opens the connect flow on the portal's own origin.

    Only the SHA-256 of the link's token is stored (``token_hash``). ``app`` is the app it
    connects; ``success_url``/``error_url`` are on an allowed origin (checked at creation). The
    link is single-use: opening it sets ``used_at`` and ``attempt_id`` (the connect attempt it
    started) in one conditional update; ``revoked_at`` is set by ``DELETE``. Expired, used or
    revoked links open nothing.
    """

    __tablename__ = "portal_connect_links"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(1024))
    #: The app it connects; ``None``: the link opens the marketplace and the user picks one.
    app: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: Extra scopes the connect asks for (from the app's ``optional_scopes``), or ``None``.
    scopes: Mapped[list[str] | None] = mapped_column(JSONText, nullable=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    success_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempt_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)


class FunctionCall(Base):
    """One executed function invocation (``flask portal function-calls`` lists them).

    ``http_status`` is the upstream status, 0 when the upstream could not be reached;
    ``duration_ms`` is wall time including any token refresh, in milliseconds; ``project`` is
    the app key of the caller.
    """

    __tablename__ = "portal_function_calls"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project: Mapped[str] = mapped_column(String(255))
    function: Mapped[str] = mapped_column(String(128), index=True)
    app: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(1024))
    account_id: Mapped[str] = mapped_column(String(40))
    http_status: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class WebhookOutbox(Base):
    """One webhook to the host backend, written in the transaction of the change it reports
    (a transactional outbox) and delivered by ``flask portal worker`` (:mod:`portal.webhooks`).

    ``id`` (``wh_…``) is the idempotency id the host sees on every attempt. ``payload`` is the
    exact JSON body, serialised once, so every retry sends the same bytes. ``seq`` orders rows
    (a database sequence on PostgreSQL; ``max + 1`` under SQLite's write lock): per
    ``ordering_key`` only the oldest row neither delivered nor given up is ever sent.
    ``attempts`` counts deliveries started; ``next_attempt_at`` is when the row is next due (a
    claimed row is leased by moving it forward); ``given_up_at`` is set after
    ``PORTAL_WEBHOOK_MAX_ATTEMPTS`` failures. ``project`` is the app key whose data the webhook
    reports (the payload carries it too).
    """

    __tablename__ = "portal_webhook_outbox"
    __table_args__ = (
        Index("ix_portal_webhook_outbox_seq", "seq", unique=True),
        Index("ix_portal_webhook_outbox_ordering_key", "ordering_key", "seq"),
        Index("ix_portal_webhook_outbox_due", "delivered_at", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project: Mapped[str] = mapped_column(String(255))
    seq: Mapped[int] = mapped_column(BigInteger, server_default=FetchedValue())
    ordering_key: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    given_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AppEvent(Base):
    """An app event a host sent (Paragon's ``event(name, payload)``), for one end user.

    ``project`` is the app key (tenant) the event belongs to; its runs use only that project's
    accounts. ``app_key`` is the app key the caller authenticated with (``None`` for
    mounted-mode callers, whose project is ``PORTAL_MOUNTED_PROJECT``). Each function
    ``PORTAL_APP_EVENTS[name]`` names becomes one :class:`AppEventRun`.
    """

    __tablename__ = "portal_app_events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(1024), index=True)
    app_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    name: Mapped[str] = mapped_column(String(255))
    payload: Mapped[Any] = mapped_column(JSONText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AppEventRun(Base):
    """One function run caused by an :class:`AppEvent`, executed by the worker.

    ``status`` moves ``queued`` -> ``running`` -> ``succeeded`` | ``failed``; ``result`` is the
    function's result (``{network_code, output}``) or ``{error, message}``; ``attempts`` counts
    starts (a run whose worker died is started again, at most a few times). ``project`` is its
    event's.
    """

    __tablename__ = "portal_app_event_runs"
    __table_args__ = (Index("ix_portal_app_event_runs_status", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("portal_app_events.id", ondelete="CASCADE"), index=True
    )
    project: Mapped[str] = mapped_column(String(255))
    function: Mapped[str] = mapped_column(String(128))
    params: Mapped[Any] = mapped_column(JSONText)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    result: Mapped[Any | None] = mapped_column(JSONText, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: ``<app>/<flow>`` for a run of a flow (:mod:`portal.flows`), ``None`` for a run of
    #: ``PORTAL_APP_EVENTS``.
    flow: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: The account a flow's run uses (the one its user chose); ``None``: the user's most
    #: recently modified account of the function's app.
    account_id: Mapped[str | None] = mapped_column(String(40), nullable=True)


class FlowSetting(Base):
    """One end user's state of one flow (:mod:`portal.flows`) in one project: on or off, the
    settings they filled in, and the account the flow uses.

    Unique on ``(project, user_id, app, flow)``. ``settings`` were valid against the flow's
    settings schema whose hash is ``schema_hash`` when they were written; a flow whose schema
    changed since reads as ``needs_settings`` until the user saves again. ``account_id``
    ``None`` means the user's most recently modified account of the app.
    """

    __tablename__ = "portal_flow_settings"
    __table_args__ = (
        UniqueConstraint("project", "user_id", "app", "flow", name="uq_portal_flow_setting"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(1024))
    app: Mapped[str] = mapped_column(String(64))
    flow: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    settings: Mapped[Any] = mapped_column(JSONText)
    account_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    schema_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Store:
    """The portal's engine and session factory.

    :param url: SQLAlchemy database URL.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        # hide_parameters: SQL errors and engine logging never show bound values (sealed
        # credentials, state hashes, user ids).
        kwargs: dict[str, Any] = {"future": True, "hide_parameters": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if ":memory:" in url or url in ("sqlite://", "sqlite:///"):
                kwargs["poolclass"] = StaticPool
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Reads share the pool but begin with a plain (deferred) BEGIN on SQLite, so readers run
        # side by side under WAL instead of queueing for the write lock.
        self._read_engine = self.engine.execution_options(portal_read_only=True)
        self._read_sessions = sessionmaker(self._read_engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading only. On SQLite it does not take the write lock, so it must
        not write (a write would have to upgrade its lock and may fail when busy)."""
        with self._read_sessions() as session, session.begin():
            yield session

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A Core connection in one read-only transaction (like :meth:`read`, without the ORM
        session): for hot reads of a few columns (``connection.execute(select(...))``), which
        use SQLAlchemy's compiled-statement cache and build no ORM objects."""
        with self._read_engine.connect() as connection, connection.begin():
            yield connection

    def upgrade(
        self,
        revision: str = "head",
        *,
        app_keys: Sequence[str] | None = None,
        project: str | None = None,
    ) -> None:
        """Apply Alembic migrations up to ``revision``.

        :param app_keys: the configured app keys (``PORTAL_APP_KEYS``). Migration 0004 gives
            existing rows the project ``project``, else the only key when exactly one is given.
        :param project: the project (app key) existing rows belong to.
        :raises RuntimeError: 0004 met rows but no project for them (the message says what to
            do); nothing was changed.
        """
        from alembic import command

        config = self._alembic_config()
        config.attributes["portal_app_keys"] = list(app_keys or [])
        config.attributes["portal_project"] = project
        command.upgrade(config, revision)

    def downgrade(self, revision: str) -> None:
        """Revert Alembic migrations down to ``revision`` (``"base"`` drops every table)."""
        from alembic import command

        command.downgrade(self._alembic_config(), revision)

    def current_revision(self) -> str | None:
        """The applied Alembic revision, or ``None`` on an empty database."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            return ctx.get_current_revision()

    def _alembic_config(self) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["engine"] = self.engine
        return cfg

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling never emits BEGIN before a SAVEPOINT, so a released
    # savepoint would commit on its own. Take control of BEGIN (SQLAlchemy's documented recipe,
    # "Serializable isolation / Savepoints / Transactional DDL" in the SQLite dialect docs).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers run while the connect flow writes; busy_timeout waits instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


#: Longest wait for SQLite's write lock, in seconds (as ``PRAGMA busy_timeout``).
SQLITE_LOCK_WAIT = 30.0


def _sqlite_begin(connection: Any) -> None:
    # Writers: BEGIN IMMEDIATE takes the write lock up front, so two writers wait instead of
    # one failing with "database is locked" when it upgrades a read lock. It also makes a
    # refresh single-flight across processes (portal.credentials).
    # Readers (Store.read): a deferred BEGIN, so they never wait for a writer under WAL.
    if connection.get_execution_options().get("portal_read_only"):
        connection.exec_driver_sql("BEGIN")
    elif _gevent_patched():
        begin_immediate(connection.connection.driver_connection)
    else:
        # Threads: SQLite's own busy wait (busy_timeout) releases the GIL while it sleeps.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _gevent_patched() -> bool:
    """True in a process whose ``time`` module gevent has monkey-patched (gunicorn's gevent
    workers): blocking there stops every greenlet."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("time"))


def begin_immediate(dbapi_connection: Any, wait: float = SQLITE_LOCK_WAIT) -> None:
    """``BEGIN IMMEDIATE`` on a ``sqlite3`` connection, waiting up to ``wait`` seconds for the
    write lock by sleeping in Python between tries (1 ms, doubling to 50 ms): how writers
    begin under gevent workers.

    SQLite's own busy wait (``PRAGMA busy_timeout``) sleeps inside the C library and holds
    the thread: under gevent workers that stops every greenlet of the process, the one that
    holds the lock included (it is waiting for an HTTP answer, e.g. a token refresh), so the
    worker hangs until the timeout. gevent's ``time.sleep`` yields to the other greenlets.
    (Threaded servers keep SQLite's own wait: it releases the GIL, and twenty threads polling
    in Python would fight the lock holder for it.) The connection's ``busy_timeout`` is 0 for
    the ``BEGIN`` only and restored after.

    :raises sqlite3.OperationalError: still locked after ``wait`` seconds, or any other error.
    """
    deadline = time.monotonic() + wait
    delay = 0.001
    dbapi_connection.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout={int(SQLITE_LOCK_WAIT * 1000)}")
