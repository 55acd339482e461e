"""Key rotation end to end while the portal serves (SECURITY.md "Proxy and tokens": key
rotation -> every account still works; "Load and faults": process killed mid-request).

200 accounts are connected under the old key through one portal process. A second portal
process, already configured with ``[new, old]``, keeps 20 threads proxying (and, since the
sandbox's access tokens are fresh for only 2 s, refreshing with rotating refresh tokens) while
``flask portal rotate-keys --batch-size 5`` runs as a child process. The first run is SIGKILLed
after a few committed batches, a second run finishes the job. Then every row opens with the new
key alone, every stored refresh token is the one the provider currently holds (nothing lost,
nothing reverted to a stale blob), and no proxied call got anything but 200.
"""

from __future__ import annotations

import random
import re
import secrets
import signal
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from conftest import Browser
from flask import Flask
from processes import (
    HOST_ORIGIN,
    PortalServer,
    browser_headers,
    flask_command,
    free_port,
    migrate,
    server_headers,
    start_provider,
)
from sqlalchemy import create_engine, select, text

from portal import user_hash
from portal.accounts import for_update, reseal_credentials, upsert_account
from portal.crypto import Sealer, generate_key
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, portal_config
from portal.errors import CredentialError
from portal.sandbox.models import Token, digest
from portal.service import create_app
from portal.store import ConnectedAccount, Store

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("processes"),  # see tests/test_multiprocess.py
    pytest.mark.security("Key rotation (add new key, rotate, drop old key)"),
    pytest.mark.security("Process killed mid-request"),
]

ACCOUNTS = 200
THREADS = 20
BATCH = 5
PROGRESS = re.compile(r"^(\d+)/(\d+): re-sealed", re.M)


def _connect(portal: Flask, user: str) -> None:
    """The whole connect flow, the portal in process (its test client is the popup's browser
    on the portal side), the provider over loopback HTTP."""
    client = portal.test_client()
    created = client.post(
        "/portal/api/v1/sessions",
        json={"appKey": DEMO_APP_KEY, "userId": user, "hash": user_hash(DEMO_APP_SECRET, user)},
        headers={"Origin": HOST_ORIGIN},
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    ticket = client.post(
        "/portal/api/v1/connect-tickets",
        json={"app": "sandbox", "opener": "frame"},
        headers=browser_headers(created.json["token"]),
    )
    assert ticket.status_code == 201, ticket.get_data(as_text=True)
    started = client.get(
        urlsplit(ticket.json["connect_url"])._replace(scheme="", netloc="").geturl()
    )
    assert started.status_code == 302
    consent = Browser().consent(started.headers["Location"])
    done = client.get(f"/portal/oauth/sandbox/callback?{urlsplit(consent.callback_url).query}")
    assert done.status_code == 200, done.get_data(as_text=True)[:300]


class _WriteLock:
    """The lock every credential writer needs (SQLite: the database write lock; PostgreSQL:
    the accounts table in EXCLUSIVE mode, which FOR UPDATE waits for), on a connection opened
    up front: :meth:`hold` is then one statement, so nothing else runs between deciding to
    take the lock and holding it (opening an engine first let a fast rotate-keys finish every
    remaining batch in that gap on an idle machine)."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            self.sqlite = sqlite3.connect(
                url.removeprefix("sqlite:///"), isolation_level=None, timeout=30
            )
        else:
            self.engine = create_engine(url)
            self.conn = self.engine.connect()
            self.conn.execute(text("SELECT 1"))
            self.conn.rollback()

    @contextmanager
    def hold(self) -> Iterator[None]:
        if self.url.startswith("sqlite"):
            self.sqlite.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                self.sqlite.execute("ROLLBACK")
            return
        self.conn.execute(text("LOCK TABLE portal_connected_accounts IN EXCLUSIVE MODE"))
        try:
            yield
        finally:
            self.conn.rollback()

    def close(self) -> None:
        if self.url.startswith("sqlite"):
            self.sqlite.close()
        else:
            self.conn.close()
            self.engine.dispose()


def _seed_like_first(store: Store, sealer: Sealer, sandbox: Any, users: list[str]) -> None:
    """For each of ``users`` a connected account shaped exactly like the one connected through
    the real flow, holding a fresh access and refresh token the provider issued to its own
    grant (rows written in the sandbox's database as its token endpoint writes them)."""
    with store.read() as db:
        model = db.scalars(select(ConnectedAccount)).one()
        template = sealer.open(model.id, model.credentials)
    sandbox_store = sandbox.extensions["sandbox"].store
    with sandbox_store.session() as sdb:
        issued = sdb.scalars(select(Token)).one()
        now = time.time()
        tokens = []
        for _ in users:
            access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            sdb.add(
                Token(
                    grant_id=secrets.token_hex(16),
                    client_id=issued.client_id,
                    user_id=issued.user_id,
                    token_type=issued.token_type,
                    access_token_hash=digest(access),
                    refresh_token_hash=digest(refresh),
                    scope=issued.scope,
                    issued_at=now,
                    expires_at=now + 62,
                )
            )
            tokens.append((access, refresh))
        sdb.commit()
    with store.session() as db:
        for user, (access, refresh) in zip(users, tokens, strict=True):
            upsert_account(
                db,
                sealer,
                project=DEMO_APP_KEY,
                user_id=user,
                app=model.app,
                external_id=model.external_id,
                label=model.label,
                scopes=model.scopes,
                credentials={
                    **template,
                    "access_token": access,
                    "refresh_token": refresh,
                    "expires_at": int(now) + 62,
                },
                expires_at=model.expires_at,
            )


def _current_count(store: Store, sealer: Sealer) -> int:
    with store.read() as db:
        return sum(
            sealer.is_current(blob) for blob in db.scalars(select(ConnectedAccount.credentials))
        )



def _wait_for(done: Callable[[], bool], what: str, failures: list[str], timeout: float = 120) -> None:
    """Wait until ``done()`` (polled every 10 ms); fail naming ``what`` and the first failures
    after ``timeout`` seconds (a bound for a stuck server, not a speed requirement)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"no {what} in {timeout:.0f} s: {failures[:5]}"
        time.sleep(0.01)


def test_rotate_keys_resumes_after_sigkill_while_serving(
    shared_database: str, tmp_path: Path
) -> None:
    old, new = generate_key(), generate_key()
    callback_origin = "http://127.0.0.1:9"  # the in-process portal's redirect URI
    # Access tokens live 62 s and the portal refreshes 60 s before expiry: each is used for 2 s,
    # then the next call refreshes it (the sandbox rotates the refresh token every time).
    provider = start_provider([callback_origin], SANDBOX_ACCESS_TOKEN_TTL=62)
    config = portal_config(
        "http://unused.invalid",
        provider.url,
        ["http://127.0.0.1:9"],
        PORTAL_DATABASE_URL=shared_database,
        PORTAL_AUTO_MIGRATE=False,
        PORTAL_RATE_LIMITS_ENABLED=False,
        PORTAL_ENCRYPTION_KEYS=[old],
    )
    migrate(config)
    store = Store(shared_database)
    running: list[Any] = []
    try:
        # 1. 200 accounts under the old key: one connected through the real flow, 199 more
        # seeded as that connect left it (a fresh grant and token pair at the provider each).
        users = [f"user-rk-{uuid.uuid4().hex[:10]}" for _ in range(ACCOUNTS)]
        _connect(create_app({**config, "PORTAL_BASE_URL": callback_origin}), users[0])
        _seed_like_first(store, Sealer([old]), provider.app, users[1:])
        assert _current_count(store, Sealer([old])) == ACCOUNTS

        # 2. A portal that already has [new, old], under load from 20 threads.
        rotated_config = {**config, "PORTAL_ENCRYPTION_KEYS": [new, old]}
        serving = PortalServer(rotated_config, free_port(), tmp_path, "portal-both")
        running.append(serving)
        serving.ready()
        statuses: Counter[int] = Counter()
        failures: list[str] = []
        stop = threading.Event()
        lock = threading.Lock()

        def load(seed: int) -> None:
            rng = random.Random(seed)
            while not stop.is_set():
                user = rng.choice(users)
                try:
                    answer = requests.get(
                        f"{serving.url}/portal/api/v1/proxy/sandbox/me",
                        headers=server_headers(user),
                        timeout=120,  # SQLite serialises refreshes: slow, not failed
                    )
                    status, body = answer.status_code, answer.text[:200]
                except requests.RequestException as exc:
                    status, body = 0, repr(exc)
                with lock:
                    statuses[status] += 1
                    if status != 200:
                        failures.append(f"{status} {body}")

        threads = [threading.Thread(target=load, args=(n,), daemon=True) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        # The load is under way (first refreshes included) before rotating: wait on answers,
        # not on a clock, so a busy machine only makes this slower.
        _wait_for(lambda: statuses[200] >= THREADS, "the load's first answers", failures)

        # 3. rotate-keys, SIGKILLed after a few committed batches. It pauses after each batch
        # (holding no lock), so the test takes the write lock in that pause: SQLite's busy
        # handler is not first-come-first-served, and a rotate-keys competing for the lock
        # could otherwise commit every remaining batch before the test got it.
        write_lock = _WriteLock(shared_database)  # connected now, taken in one statement below
        rotate = flask_command(
            rotated_config,
            ["portal", "rotate-keys", "--batch-size", str(BATCH), "--pause", "0.5"],
            tmp_path,
            "rotate-1",
        )
        running.append(rotate)
        deadline = time.monotonic() + 30
        while True:
            done = [int(m.group(1)) for m in PROGRESS.finditer(rotate.log_path.read_text())]
            if done and done[-1] >= 2 * BATCH:
                break
            assert rotate.proc.poll() is None, f"rotate-keys ended early:\n{rotate.log()}"
            assert time.monotonic() < deadline, rotate.log()
            time.sleep(0.002)
        with write_lock.hold():  # its next batch waits here: it dies part way
            rotate.kill()
        write_lock.close()
        # It died part way: SIGKILLed, its own progress short of every account. (Not a count of
        # the rows under the new key: the serving portal re-seals each account it refreshes with
        # the new key too, and on a loaded machine the load reached all 200 before rotate-keys
        # was killed: a PostgreSQL pass beside stress-ng counted 200 of 200.)
        assert rotate.proc.returncode == -signal.SIGKILL, rotate.proc.returncode
        committed = max(int(m.group(1)) for m in PROGRESS.finditer(rotate.log_path.read_text()))
        assert committed < ACCOUNTS, "the first run finished before it was killed"

        # 4. Run it again: it skips what is already under the new key and finishes.
        again = flask_command(
            rotated_config,
            ["portal", "rotate-keys", "--batch-size", str(BATCH)],
            tmp_path,
            "rotate-2",
        )
        running.append(again)
        assert again.wait(timeout=60) == 0, again.log()
        summary = re.search(
            r"re-sealed (\d+) connected account\(s\).*; (\d+) already were", again.log()
        )
        assert summary, again.log()
        assert int(summary.group(1)) + int(summary.group(2)) == ACCOUNTS
        assert int(summary.group(2)) >= committed  # rows the first run committed were skipped
        # Keep the load on until answers arrive after the rotation too.
        rotated_at = statuses[200]
        _wait_for(lambda: statuses[200] > rotated_at, "an answer after the rotation", failures)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert statuses[200] > rotated_at >= THREADS, statuses
        assert not failures, (statuses, failures[:5], serving.log())
        serving.stop()
        # Nor did the portal answer 5xx to a request after its client had given up.
        answered = re.findall(r" (\d{3}) [\d.]+ ms", serving.log_path.read_text("utf-8"))
        assert answered and not [s for s in answered if s.startswith("5")], Counter(answered)

        # 5. Every row opens with the new key alone; every refresh token is the provider's
        # current one for that grant (a reverted blob would hold a retired one).
        only_new = Sealer([new])
        with store.read() as db:
            rows = list(db.scalars(select(ConnectedAccount)))
        assert len(rows) == ACCOUNTS
        sandbox_store = provider.app.extensions["sandbox"].store
        with sandbox_store.session() as sdb:
            for row in rows:
                with pytest.raises(CredentialError):
                    Sealer([old]).open(row.id, row.credentials)
                data = only_new.open(row.id, row.credentials)
                assert row.status == "active"
                token = sdb.scalar(
                    select(Token).where(Token.refresh_token_hash == digest(data["refresh_token"]))
                )
                assert token is not None, row.id
                assert token.refresh_token_revoked_at is None, f"{row.id}: stale refresh token"

        # The portal with the old key dropped serves every account.
        final = create_app({**config, "PORTAL_ENCRYPTION_KEYS": [new]})
        for user in users[:: ACCOUNTS // 20]:
            answer = final.test_client().get(
                "/portal/api/v1/proxy/sandbox/me", headers=server_headers(user)
            )
            body = answer.get_data(as_text=True)
            answer.close()  # the proxy streams: end its request context
            assert answer.status_code == 200, body
        final.extensions["portal"].store.dispose()
    finally:
        for process in running:
            process.stop()
        store.dispose()
        provider.stop()


def test_rotation_waits_for_a_refresh_in_flight_and_keeps_its_result(
    shared_database: str,
) -> None:
    """A batch reads its rows under the lock a refresh holds (``accounts.for_update``): it
    waits for the refresh to commit, then re-seals the refreshed credentials, never the ones
    it could have read before."""
    old, new = generate_key(), generate_key()
    config = portal_config(
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        ["http://127.0.0.1:9"],
        PORTAL_DATABASE_URL=shared_database,
        PORTAL_AUTO_MIGRATE=False,
    )
    migrate(config)
    store = Store(shared_database)
    sealer_old, sealer_both = Sealer([old]), Sealer([new, old])
    try:
        with store.session() as db:
            account, _ = upsert_account(
                db,
                sealer_old,
                project=DEMO_APP_KEY,
                user_id="u-lock",
                app="sandbox",
                external_id="1",
                label="ada",
                scopes=[],
                credentials={"type": "oauth2", "access_token": "at-1", "refresh_token": "rt-1"},
                expires_at=None,
            )
        result: list[Any] = []
        refreshing = store.session()
        db = refreshing.__enter__()
        try:
            row = db.scalars(
                for_update(db, select(ConnectedAccount).where(ConnectedAccount.id == account.id))
            ).one()
            rotation = threading.Thread(
                target=lambda: result.extend(reseal_credentials(store, sealer_both, 10))
            )
            rotation.start()
            rotation.join(1.0)
            assert rotation.is_alive(), "rotation did not wait for the row lock"
            # The refresh (a portal with the old key only, as a worst case) saves its result.
            fresh = {"type": "oauth2", "access_token": "at-2", "refresh_token": "rt-2"}
            row.credentials = sealer_old.seal(row.id, fresh)
        finally:
            refreshing.__exit__(None, None, None)
        rotation.join(30)
        assert not rotation.is_alive()
        assert [(b.resealed, b.skipped, b.failed) for b in result] == [(1, 0, [])]
        with store.read() as db:
            blob = db.get(ConnectedAccount, account.id).credentials  # type: ignore[union-attr]
        assert Sealer([new]).open(account.id, blob)["refresh_token"] == "rt-2"
        # Run again: nothing left to do.
        again = list(reseal_credentials(store, sealer_both, 10))
        assert [(b.resealed, b.skipped) for b in again] == [(0, 1)]
    finally:
        store.dispose()
