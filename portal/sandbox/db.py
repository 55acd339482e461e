"""The sandbox's engine and its session-per-request discipline.

One :class:`Store` per app, in ``app.extensions["sandbox"].store``. A request gets one
:class:`~sqlalchemy.orm.Session` the first time it asks (:func:`db_session`) and loses it at
app-context teardown, rolled back unless something committed.

SQLite (the default, in-memory with ``StaticPool``) has one connection shared by every thread, so
sessions on it must not interleave: :class:`Store` holds a lock from the moment a request opens
its session until teardown. Other databases use an ordinary pool and no lock; the code and
refresh-token paths use conditional ``UPDATE … WHERE used_at IS NULL`` so they stay single-use
without it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from .models import Base

_G_KEY = "_sandbox_db_session"


class Store:
    """Engine, session factory and (for SQLite) the connection lock of one sandbox app.

    :param url: SQLAlchemy URL, or ``None`` for a process-lifetime in-memory SQLite database.
    """

    def __init__(self, url: str | None) -> None:
        kwargs: dict[str, Any] = {}
        if url is None or url in ("sqlite://", "sqlite:///:memory:"):
            url = "sqlite://"
            kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        elif url.startswith("sqlite"):
            kwargs = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        self.engine: Engine = create_engine(url, **kwargs)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        self._lock: threading.Lock | None = (
            threading.Lock() if self.engine.dialect.name == "sqlite" else None
        )

    def create_all(self) -> None:
        """Create the sandbox tables if they do not exist."""
        Base.metadata.create_all(self.engine)

    def open(self) -> Session:
        """A new session, after taking the lock if the database needs one. Pair with
        :meth:`close`."""
        if self._lock is not None:
            self._lock.acquire()
        try:
            return self._factory()
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise

    def close(self, session: Session) -> None:
        """Roll back whatever was not committed, close the session, release the lock."""
        try:
            session.close()
        finally:
            if self._lock is not None:
                self._lock.release()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session outside any request (seeding, CLI); committed by the caller."""
        session = self.open()
        try:
            yield session
        finally:
            self.close(session)


def db_session() -> Session:
    """The current request's session, opened on first use."""
    session: Session | None = g.get(_G_KEY)
    if session is None:
        session = current_app.extensions["sandbox"].store.open()
        setattr(g, _G_KEY, session)
    return session


def init_app(app: Flask, store: Store) -> None:
    """Close the request's session (and release the lock) at app-context teardown."""

    @app.teardown_appcontext
    def _close_session(exc: BaseException | None) -> None:
        session: Session | None = g.pop(_G_KEY, None)
        if session is not None:
            store.close(session)
