"""Health checks of connected accounts, run by the worker (:mod:`portal.worker`).

Each account is checked at most every ``PORTAL_HEALTH_INTERVAL`` seconds (24 h by default),
sooner when a token that cannot be renewed expires earlier, or a refresh token's own expiry is
known and comes earlier. A check:

* OAuth accounts whose access token would lapse before the next check: refresh it now, through
  the single-flight refresh of :func:`portal.credentials.fresh` (so a refresh token that
  expires when unused stays alive, and a revoked grant is found before the end user needs it);
* then, when the app's YAML has a ``verify:`` block, that call through the proxy with the
  account's credentials (API keys, Basic credentials and OAuth tokens alike);
* an access token that cannot be renewed and has expired fails the check.

A failed check (the provider refused the refresh token, the verification call answered 401 or
403, the credentials no longer open) sets the account ``needs_reauth`` with a reason and sends
the ``account.needs_reauth`` webhook once; a later passing check sets it ``active`` again and
sends ``account.recovered``. An answer that says nothing about the credentials (429, 5xx, a
timeout) is the provider's trouble: every account of that app is postponed (per-provider
backoff, doubling from :data:`BACKOFF_BASE` up to the interval) and nothing changes.

Claiming is shared by any number of workers: one short transaction picks due rows (``SELECT …
FOR UPDATE SKIP LOCKED`` on PostgreSQL, under a transaction-scoped advisory lock that also
makes the rate limit exact; on SQLite every portal transaction holds the write lock) and moves
their ``health_next_at`` past a lease, so a row is checked by one worker once per interval.
At most ``PORTAL_HEALTH_MAX_PER_MINUTE`` accounts are claimed in any 60 seconds, all workers
together (claims are counted by ``health_checked_at``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select, text, update

from . import oplog, webhooks
from .accounts import for_update, to_dict
from .admin import unhealthy_dict
from .credentials import (
    TOKEN_TYPES,
    CredentialsUnreadable,
    NeedsReauth,
    UpstreamUnavailable,
    fresh,
    open_sealed,
    renewable,
)
from .errors import PortalHTTPError
from .store import ConnectedAccount, utcnow

if TYPE_CHECKING:
    from .catalog import App
    from .extension import PortalState

log = logging.getLogger(__name__)

#: First per-provider pause after an inconclusive answer, in seconds; doubles per failure in a
#: row, capped at the check interval.
BACKOFF_BASE = 300
#: How long a claimed row stays away from other workers while it is checked, in seconds.
LEASE = 600
#: PostgreSQL advisory lock key of the claim transaction (``hashtext('portal.health')``-like).
ADVISORY_KEY = 724_811_903
#: Longest reason kept on an account, in characters.
MAX_REASON = 300


@dataclass(frozen=True)
class Verdict:
    """What one check found: ``outcome`` is ``"ok"``, ``"reauth"`` (the end user must
    reconnect) or ``"unavailable"`` (the provider could not say); ``reason`` is a short text."""

    outcome: str
    reason: str | None = None


def _per_minute(state: PortalState) -> int:
    return max(0, int(state.config["PORTAL_HEALTH_MAX_PER_MINUTE"]))


def _interval(state: PortalState) -> float:
    return float(state.config["PORTAL_HEALTH_INTERVAL"])


def claim(state: PortalState, now: datetime, batch: int) -> list[str]:
    """Claim up to ``batch`` due accounts (see the module docs); returns their ids.

    A claimed row gets ``health_checked_at = now`` (it counts against the per-minute limit)
    and ``health_next_at = now + LEASE`` (no other worker takes it meanwhile; a worker that
    dies leaves it to come back after the lease).
    """
    if _interval(state) <= 0:
        return []
    # Never checked: due one interval after it was (re)connected, when it was known good.
    unchecked_due = now - timedelta(seconds=_interval(state))
    due = or_(
        and_(
            ConnectedAccount.health_next_at.is_(None),
            ConnectedAccount.modified_at <= unchecked_due,
        ),
        ConnectedAccount.health_next_at <= now,
    )
    # Most passes find nothing due: say so from a read, without taking the write lock.
    with state.store.read() as db:
        if db.scalar(select(ConnectedAccount.id).where(due).limit(1)) is None:
            return []
    with state.store.session() as db:
        postgres = db.get_bind().dialect.name == "postgresql"
        if postgres:
            # Serialises claims, so the per-minute count below cannot be raced past.
            db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_KEY})
        recent = db.scalar(
            select(func.count())
            .select_from(ConnectedAccount)
            .where(ConnectedAccount.health_checked_at > now - timedelta(seconds=60))
        )
        budget = min(batch, _per_minute(state) - int(recent or 0))
        if budget <= 0:
            return []
        query = (
            select(ConnectedAccount.id)
            .where(due)
            .order_by(ConnectedAccount.health_next_at.asc().nulls_first(), ConnectedAccount.id)
            .limit(budget)
        )
        if postgres:
            query = query.with_for_update(skip_locked=True)
        ids = list(db.scalars(query))
        if ids:
            db.execute(
                update(ConnectedAccount)
                .where(ConnectedAccount.id.in_(ids))
                .values(health_checked_at=now, health_next_at=now + timedelta(seconds=LEASE))
                .execution_options(synchronize_session=False)
            )
    return ids


def next_check(state: PortalState, data: dict[str, Any] | None, now: datetime) -> datetime:
    """When the account whose credentials are ``data`` is next due: ``now`` + the interval,
    or earlier when an access token that cannot be renewed expires first, or when a refresh
    token's expiry (``refresh_expires_at``, unix seconds) minus ``PORTAL_REFRESH_MARGIN``
    comes first."""
    due = now + timedelta(seconds=_interval(state))
    if not data or data.get("type") not in TOKEN_TYPES:
        return due
    margin = float(state.config["PORTAL_REFRESH_MARGIN"])
    candidates = [due]
    if data.get("expires_at") and not renewable(data):
        candidates.append(datetime.fromtimestamp(float(data["expires_at"]), now.tzinfo))
    if data.get("refresh_expires_at"):
        moment = float(data["refresh_expires_at"]) - margin
        candidates.append(datetime.fromtimestamp(moment, now.tzinfo))
    return max(min(candidates), now + timedelta(seconds=1))


def _verify(state: PortalState, app: App, account_id: str) -> Verdict:
    from .proxy import forward

    assert app.verify is not None
    try:
        response = forward(
            state,
            app,
            account_id,
            method=app.verify.method,
            path=app.verify.path.lstrip("/"),  # the proxy takes paths relative to the API
            query=[],
            headers={"Accept": "application/json"},
            body=None,
        )
        status = response.status
        for _chunk in response.body:  # drain and close the stream
            pass
    except NeedsReauth:
        return Verdict("reauth", "The provider refused the refresh token.")
    except CredentialsUnreadable:
        return Verdict("reauth", "The stored credentials cannot be read.")
    except PortalHTTPError as exc:  # timeout, unreachable, refused host
        return Verdict("unavailable", f"verify: {exc.error_code}")
    if 200 <= status < 300:
        return Verdict("ok")
    if status in (401, 403):
        return Verdict("reauth", f"The verification call {app.verify.path} answered HTTP {status}.")
    return Verdict("unavailable", f"verify: HTTP {status}")


def check(state: PortalState, app: App, account_id: str, status: str) -> Verdict:
    """Check one account (see the module docs). Never raises for what the provider does."""
    try:
        with state.store.read() as db:
            row = db.get(ConnectedAccount, account_id)
            if row is None:
                return Verdict("ok")
            data = open_sealed(state, row)
    except CredentialsUnreadable:
        return Verdict("reauth", "The stored credentials cannot be read.")
    if data.get("type") in TOKEN_TYPES and renewable(data) and status == "needs_reauth":
        # The grant was refused before: only a reconnect mends it, and asking again would
        # only repeat the refusal (and its webhook).
        return Verdict("reauth", None)
    if data.get("type") in TOKEN_TYPES:
        horizon = time.time() + _interval(state) + float(state.config["PORTAL_REFRESH_MARGIN"])
        expires_at = data.get("expires_at")
        lapses = expires_at is not None and float(expires_at) <= horizon
        if renewable(data) and lapses:
            try:
                fresh(state, app, account_id, rejected_token=data.get("access_token"))
            except NeedsReauth:
                return Verdict("reauth", "The provider refused the refresh token.")
            except CredentialsUnreadable:
                return Verdict("reauth", "The stored credentials cannot be read.")
            except (UpstreamUnavailable, PortalHTTPError) as exc:
                return Verdict("unavailable", f"refresh: {exc.error_code}")
            return _verify(state, app, account_id) if app.verify else Verdict("ok")
        if not renewable(data) and expires_at is not None and float(expires_at) <= time.time():
            return Verdict("reauth", "The access token expired and cannot be renewed.")
    if app.verify is not None:
        return _verify(state, app, account_id)
    if status == "needs_reauth":
        # Nothing here proves the credentials work again: only a passing check or a
        # reconnect (which resets the status) ends needs_reauth.
        return Verdict("reauth", None)
    return Verdict("ok")


def _webhook_data(account: ConnectedAccount, reason: str | None) -> dict[str, Any]:
    return {
        "user_id": account.user_id,
        "app": account.app,
        "account": to_dict(account),
        "reason": reason,
    }


def _apply(
    state: PortalState, account_id: str, verdict: Verdict, now: datetime, took_ms: int
) -> str | None:
    """Record ``verdict`` on the account (one transaction, row locked); returns the app slug
    to back off from when the verdict was ``unavailable``."""
    with state.store.session() as db:
        query = select(ConnectedAccount).where(ConnectedAccount.id == account_id)
        account = db.scalars(for_update(db, query)).first()
        if account is None:
            return None
        try:
            data: dict[str, Any] | None = state.sealer.open(account.id, account.credentials)
        except Exception:
            data = None
        account.health_checked_at = now
        backoff_app = None
        if verdict.outcome == "ok":
            account.health_failures = 0
            account.health_reason = None
            account.health_next_at = next_check(state, data, now)
            if account.status == "needs_reauth":
                account.status = "active"
                webhooks.enqueue(
                    db,
                    "account.recovered",
                    _webhook_data(account, None),
                    account.id,
                    project=account.project,
                    state=state,
                )
                log.info("account %s (%s) recovered", account.id, account.app)
        elif verdict.outcome == "reauth":
            account.health_failures = 0
            if verdict.reason is not None:
                account.health_reason = verdict.reason[:MAX_REASON]
            account.health_next_at = now + timedelta(seconds=_interval(state))
            # A refused refresh was marked (and its webhook sent) by credentials.fresh already.
            if account.status != "needs_reauth":
                account.status = "needs_reauth"
                webhooks.enqueue(
                    db,
                    "account.needs_reauth",
                    _webhook_data(account, account.health_reason),
                    account.id,
                    project=account.project,
                    state=state,
                )
                log.warning(
                    "account %s (%s) needs reauth: %s",
                    account.id,
                    account.app,
                    account.health_reason,
                )
        else:
            account.health_failures = (account.health_failures or 0) + 1
            pause = min(_interval(state), BACKOFF_BASE * 2 ** (account.health_failures - 1))
            account.health_next_at = now + timedelta(seconds=pause)
            backoff_app = account.app
            # Politeness per provider: this app's other accounts wait as long.
            db.execute(
                update(ConnectedAccount)
                .where(
                    ConnectedAccount.app == account.app,
                    ConnectedAccount.id != account.id,
                    or_(
                        ConnectedAccount.health_next_at.is_(None),
                        ConnectedAccount.health_next_at < account.health_next_at,
                    ),
                )
                .values(health_next_at=account.health_next_at)
                .execution_options(synchronize_session=False)
            )
        oplog.record(
            db,
            project=account.project,
            kind="health_check",
            status="succeeded" if verdict.outcome == "ok" else "failed",
            user_id=account.user_id,
            app=account.app,
            account_id=account.id,
            duration_ms=took_ms,
            ref_id=account.id,
            request={"verify": verdict.outcome, "account_status": account.status},
            error=verdict.reason if verdict.outcome != "ok" else None,
        )
        return backoff_app


def check_due(
    state: PortalState,
    now: datetime | None = None,
    limit: int = 100,
    *,
    stop: threading.Event | None = None,
) -> int:
    """Claim and check up to ``limit`` due accounts (inside an app context: a refresh sends
    signals). Returns how many were checked. Accounts of an app that is not enabled are only
    rescheduled.

    :param now: the current time (tests pass a later one); default :func:`utcnow`.
    :param stop: checked between accounts; once set, unchecked claimed rows are given back.
    """
    claimed = claim(state, now or utcnow(), limit)
    done = 0
    paused: set[str] = set()
    for index, account_id in enumerate(claimed):
        if stop is not None and stop.is_set():
            _release(state, claimed[index:], now)
            break
        with state.store.read() as db:
            row = db.get(ConnectedAccount, account_id)
            slug, status = (row.app, row.status) if row is not None else (None, None)
        app = state.app(slug) if slug is not None else None
        when = now or utcnow()
        if app is None or slug in paused or status is None:
            _reschedule(state, account_id, when, slug in paused)
            continue
        began = time.perf_counter()
        verdict = check(state, app, account_id, status)
        took = int((time.perf_counter() - began) * 1000)
        backoff_app = _apply(state, account_id, verdict, when, took)
        if backoff_app is not None:
            paused.add(backoff_app)
        done += 1
    return done


def _reschedule(state: PortalState, account_id: str, now: datetime, paused: bool) -> None:
    """Give an unchecked claim back: a paused provider's account keeps its backoff time,
    a disabled app's account comes back after the interval."""
    if paused:
        return  # _apply already moved every account of that app past the pause
    with state.store.session() as db:
        db.execute(
            update(ConnectedAccount)
            .where(ConnectedAccount.id == account_id)
            .values(health_next_at=now + timedelta(seconds=_interval(state)))
            .execution_options(synchronize_session=False)
        )


def _release(state: PortalState, ids: list[str], now: datetime | None) -> None:
    with state.store.session() as db:
        db.execute(
            update(ConnectedAccount)
            .where(ConnectedAccount.id.in_(ids))
            .values(health_next_at=now or utcnow())
            .execution_options(synchronize_session=False)
        )


def unhealthy(state: PortalState, project: str | None, limit: int = 200) -> list[dict[str, Any]]:
    """Accounts in ``needs_reauth`` (of ``project``, or every project for ``None``), most
    recently checked first, as :func:`portal.admin.unhealthy_dict`. Never a credential."""
    scope = [] if project is None else [ConnectedAccount.project == project]
    with state.store.read() as db:
        rows = db.execute(
            select(
                ConnectedAccount.id,
                ConnectedAccount.project,
                ConnectedAccount.user_id,
                ConnectedAccount.app,
                ConnectedAccount.label,
                ConnectedAccount.health_reason,
                ConnectedAccount.health_checked_at,
                ConnectedAccount.health_next_at,
            )
            .where(ConnectedAccount.status == "needs_reauth", *scope)
            .order_by(
                ConnectedAccount.health_checked_at.desc().nulls_last(),
                ConnectedAccount.modified_at.desc(),
            )
            .limit(limit)
        ).all()
    return [unhealthy_dict(r) for r in rows]
