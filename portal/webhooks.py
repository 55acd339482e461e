"""Webhooks to the host backend: a transactional outbox, signed deliveries, ordered per key.

Writing: :func:`enqueue` adds a row to ``portal_webhook_outbox`` in the caller's session, so the
webhook exists exactly when the change it reports was committed (a failed transaction leaves
neither). Rows are written only while ``PORTAL_WEBHOOK_URL`` is set: with webhooks disabled
nothing would ever read them, and the table would only grow. Changes made while the URL was
unset are therefore not reported later.

Delivering: :func:`deliver_due` (run by ``flask portal worker``) POSTs due rows, at least once,
with the same ``X-Portal-Webhook-Id`` on every attempt, so the host de-duplicates by id:

* per ``ordering_key`` (an account id, or an app event id) only the oldest row that is neither
  delivered nor given up is eligible, so a host sees each account's webhooks in order;
* a 2xx answer marks the row delivered; anything else (another status, a timeout, a refused
  connection, a redirect) schedules a retry after ``min(2 ** (attempts - 1), 3600)`` seconds
  plus up to 10 % jitter; after ``PORTAL_WEBHOOK_MAX_ATTEMPTS`` attempts the row is given up
  and the key's later rows become eligible;
* several workers (threads or processes) may run at once: a row is claimed in a short
  transaction (``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite every portal
  transaction holds the write lock, see :mod:`portal.store`) that leases it by moving
  ``next_attempt_at`` past the delivery's timeout; the POST happens outside any transaction.
  A worker that dies mid-delivery leaves the lease to expire, and the row is sent again.

Body and headers (the contract hosts code against)::

    POST <PORTAL_WEBHOOK_URL>
    Content-Type: application/json
    X-Portal-Webhook-Id: wh_…
    X-Portal-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

    {"id": "wh_…", "type": "account.connected", "project": "<app key>",
     "created_at": "2026-11-22T10:00:00.000Z", "data": {…}}

``project`` is the app key (tenant) whose data the webhook reports; one receiver serving
several projects tells them apart by it (the outbox row carries it too).

The signature scheme is Stripe's: the timestamp is signed with the body, so a captured request
cannot be replayed after ``tolerance`` seconds. The secret is ``PORTAL_WEBHOOK_SECRET`` (a
string, or a list during a rotation: one ``v1=`` per secret), else the first secret of the first
``PORTAL_APP_KEYS`` entry. Hosts check requests with :func:`verify_webhook`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests
from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session, aliased

from . import oplog
from .accounts import iso
from .errors import ConfigurationError, PortalError
from .store import WebhookOutbox, utcnow

if TYPE_CHECKING:
    from .state import PortalState

log = logging.getLogger(__name__)

#: Every webhook type the portal sends.
WEBHOOK_TYPES = frozenset(
    {
        "account.connected",
        "account.reconnected",
        "account.disconnected",
        "account.needs_reauth",
        "account.recovered",
        "app_event.run_finished",
        "app.webhook",
        "flow.updated",
    }
)
ID_HEADER = "X-Portal-Webhook-Id"
SIGNATURE_HEADER = "X-Portal-Signature"
#: Longest wait between two attempts, in seconds.
MAX_BACKOFF = 3600
#: Largest signature header :func:`verify_webhook` reads, in characters.
MAX_SIGNATURE_HEADER = 4096
#: Rows claimed per transaction: each is leased for the whole batch's worst-case duration.
CLAIM_BATCH = 10
#: Extra lease on top of the batch's worst-case duration, in seconds.
LEASE_MARGIN = 60.0


class WebhookVerificationError(PortalError, ValueError):
    """A webhook request failed :func:`verify_webhook`: missing or garbled signature header,
    no matching signature, a timestamp outside the tolerance, or a body that is not a JSON
    object. The message says which, and never contains a secret."""


# --------------------------------------------------------------------------- signing


def _secret_list(secret: str | Sequence[str]) -> list[str]:
    found = [secret] if isinstance(secret, str) else list(secret)
    found = [s for s in found if isinstance(s, str) and s]
    if not found:
        raise ValueError("no webhook secret given")
    return found


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str | Sequence[str], body: bytes, timestamp: int) -> str:
    """The ``X-Portal-Signature`` header for ``body`` sent at ``timestamp`` (unix seconds).

    ``t=<timestamp>,v1=<hex HMAC-SHA256(secret, f"{t}." + body)>``, with one ``v1`` per secret
    when several are given (a rotation: receivers holding either secret accept it).
    """
    parts = [f"t={int(timestamp)}"]
    parts += [f"v1={_digest(s, body, int(timestamp))}" for s in _secret_list(secret)]
    return ",".join(parts)


def verify_webhook(
    body: bytes | str,
    signature_header: str | None,
    secret: str | Sequence[str],
    tolerance: int = 300,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a webhook request from the portal and return its decoded body.

    :param body: the raw request body, exactly as received (``request.get_data()``).
    :param signature_header: the ``X-Portal-Signature`` header.
    :param secret: the webhook secret, or several (any one may match: secret rotation).
    :param tolerance: largest accepted distance between the signed timestamp and ``now``, in
        seconds (both directions).
    :param now: the current unix time; default ``time.time()``.
    :returns: ``{"id", "type", "created_at", "data"}``.
    :raises WebhookVerificationError: see the class. Signatures are compared in constant time
        (``hmac.compare_digest``).
    """
    raw = body.encode() if isinstance(body, str) else bytes(body)
    if not signature_header:
        raise WebhookVerificationError(f"The {SIGNATURE_HEADER} header is missing.")
    if len(signature_header) > MAX_SIGNATURE_HEADER:
        raise WebhookVerificationError(f"The {SIGNATURE_HEADER} header is too long.")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in signature_header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise WebhookVerificationError(f"The {SIGNATURE_HEADER} header is garbled.")
        if key == "t":
            if timestamp is not None or not value.isdigit() or len(value) > 12:
                raise WebhookVerificationError(f"The {SIGNATURE_HEADER} timestamp is garbled.")
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookVerificationError(
            f"The {SIGNATURE_HEADER} header needs a timestamp (t=) and a signature (v1=)."
        )
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("The webhook timestamp is outside the tolerance.")
    matched = False
    for candidate in _secret_list(secret):
        expected = _digest(candidate, raw, timestamp)
        for presented in signatures:
            # No early exit: every comparison runs, each in constant time.
            matched |= hmac.compare_digest(expected, presented)
    if not matched:
        raise WebhookVerificationError("No webhook signature matches.")
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise WebhookVerificationError("The webhook body is not JSON.") from exc
    if not isinstance(document, dict):
        raise WebhookVerificationError("The webhook body is not a JSON object.")
    return document


def webhook_secrets(config: Mapping[str, Any]) -> list[str]:
    """The secrets signing webhooks: ``PORTAL_WEBHOOK_SECRET`` (a string or a list), else the
    first secret of the first ``PORTAL_APP_KEYS`` entry; ``[]`` when neither is set."""
    configured = config.get("PORTAL_WEBHOOK_SECRET")
    if configured:
        return [configured] if isinstance(configured, str) else [s for s in configured if s]
    first = next(iter((config.get("PORTAL_APP_KEYS") or {}).values()), None)
    return [first[0]] if first else []


# --------------------------------------------------------------------------- writing


def new_webhook_id() -> str:
    """A fresh webhook id: ``wh_`` + 24 url-safe characters."""
    return "wh_" + secrets.token_urlsafe(18)


def enqueue(
    db: Session,
    type: str,
    data: Mapping[str, Any],
    ordering_key: str,
    *,
    project: str,
    state: PortalState | None = None,
) -> str | None:
    """Add a webhook to the outbox in ``db``'s transaction (a :meth:`Store.session`).

    :param type: one of :data:`WEBHOOK_TYPES`.
    :param data: the webhook's ``data`` (JSON-serialisable).
    :param ordering_key: webhooks with the same key are delivered in the order they were
        enqueued: the account id for ``account.*`` and ``app.webhook``, the event id for
        ``app_event.run_finished``, the user's flow row id for ``flow.updated``.
    :param project: the app key whose data this webhook reports (the body's ``project``).
    :param state: the portal; default the current app's.
    :returns: the webhook id (``wh_…``), or ``None`` when ``PORTAL_WEBHOOK_URL`` is unset (no
        row is written: see the module docs).
    :raises ValueError: unknown ``type``.
    """
    if type not in WEBHOOK_TYPES:
        raise ValueError(f"unknown webhook type {type!r}")
    if state is None:
        from .state import current_portal

        state = current_portal
    if not state.config.get("PORTAL_WEBHOOK_URL"):
        return None
    now = utcnow()
    webhook_id = new_webhook_id()
    body = json.dumps(
        {
            "id": webhook_id,
            "type": type,
            "project": project,
            "created_at": iso(now),
            "data": data,
        },
        separators=(",", ":"),
    )
    row = WebhookOutbox(
        id=webhook_id,
        project=project,
        ordering_key=ordering_key[:64],
        type=type,
        payload=body,
        created_at=now,
        attempts=0,
        next_attempt_at=now,
    )
    if db.get_bind().dialect.name != "postgresql":
        # No sequences here; the transaction holds SQLite's write lock (BEGIN IMMEDIATE), so
        # no other writer can take the same number.
        row.seq = (db.scalar(select(func.max(WebhookOutbox.seq))) or 0) + 1
    db.add(row)
    db.flush()
    return webhook_id


# --------------------------------------------------------------------------- delivering


@dataclass(frozen=True)
class _Claimed:
    id: str
    payload: str
    attempts: int


def backoff(attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: ``min(2 ** (attempts - 1),
    3600)`` plus up to 10 % jitter (so many failed rows do not all come back at once)."""
    base = float(min(2 ** max(attempts - 1, 0), MAX_BACKOFF))
    return base + random.uniform(0, base / 10)


def _claim(state: PortalState, now: datetime, batch: int, lease: float) -> list[_Claimed]:
    earlier = aliased(WebhookOutbox)
    blocked = exists().where(
        earlier.ordering_key == WebhookOutbox.ordering_key,
        earlier.seq < WebhookOutbox.seq,
        earlier.delivered_at.is_(None),
        earlier.given_up_at.is_(None),
    )
    query = (
        select(WebhookOutbox)
        .where(
            WebhookOutbox.delivered_at.is_(None),
            WebhookOutbox.given_up_at.is_(None),
            WebhookOutbox.next_attempt_at <= now,
            ~blocked,
        )
        .order_by(WebhookOutbox.seq)
        .limit(batch)
    )
    with state.store.session() as db:
        if db.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=WebhookOutbox)
        rows = list(db.scalars(query))
        until = now + timedelta(seconds=lease)
        for row in rows:
            row.attempts += 1
            row.next_attempt_at = until
        return [_Claimed(r.id, r.payload, r.attempts) for r in rows]


def _post(
    http: requests.Session, url: str, secret: list[str], row: _Claimed, timeout: float
) -> str | None:
    """Send one webhook; ``None`` on a 2xx answer, else a short error without any secret."""
    body = row.payload.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "connect-portal-webhooks/1",
        ID_HEADER: row.id,
        SIGNATURE_HEADER: sign(secret, body, int(time.time())),
    }
    try:
        response = http.post(
            url, data=body, headers=headers, timeout=timeout, allow_redirects=False, stream=True
        )
    except requests.Timeout:
        return f"no answer within {timeout:g} s"
    except requests.RequestException as exc:
        # The exception text names the URL, which may carry a token: only its type is kept.
        return f"could not connect ({type(exc).__name__})"
    with response:
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"


def _record(
    state: PortalState,
    row: _Claimed,
    error: str | None,
    now: datetime | None,
    max_attempts: int,
    duration_ms: int | None = None,
) -> None:
    when = now or utcnow()
    with state.store.session() as db:
        _log_attempt(db, row, error, row.attempts >= max_attempts, duration_ms)
        pending = (
            update(WebhookOutbox)
            .where(WebhookOutbox.id == row.id, WebhookOutbox.delivered_at.is_(None))
            .execution_options(synchronize_session=False)
        )
        if error is None:
            db.execute(pending.values(delivered_at=utcnow(), last_error=None))
        elif row.attempts >= max_attempts:
            db.execute(pending.values(given_up_at=when, last_error=error))
        else:
            retry_at = when + timedelta(seconds=backoff(row.attempts))
            db.execute(pending.values(next_attempt_at=retry_at, last_error=error))
    if error is None:
        log.info("webhook %s delivered (attempt %d)", row.id, row.attempts)
    elif row.attempts >= max_attempts:
        log.warning("webhook %s given up after %d attempts: %s", row.id, row.attempts, error)
    else:
        log.info("webhook %s attempt %d failed: %s", row.id, row.attempts, error)


def _log_attempt(
    db: Session, row: _Claimed, error: str | None, last: bool, duration_ms: int | None
) -> None:
    """One operators' log entry for a delivery attempt (the body's type and its data's user,
    app and account; never the body itself)."""
    try:
        body = json.loads(row.payload)
    except ValueError:
        body = {}
    raw_data = body.get("data") if isinstance(body, dict) else None
    data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    raw_account = data.get("account")
    account: dict[str, Any] = raw_account if isinstance(raw_account, dict) else {}
    oplog.record(
        db,
        project=str(body.get("project") or "") if isinstance(body, dict) else "",
        kind="webhook",
        status="succeeded" if error is None else ("failed" if last else "retrying"),
        user_id=data.get("user_id") if isinstance(data.get("user_id"), str) else None,
        app=data.get("app") if isinstance(data.get("app"), str) else None,
        account_id=account.get("id") if isinstance(account.get("id"), str) else None,
        duration_ms=duration_ms,
        ref_id=row.id,
        request={
            "type": body.get("type") if isinstance(body, dict) else None,
            "attempt": row.attempts,
        },
        error=error,
    )


def deliver_due(
    state: PortalState,
    now: datetime | None = None,
    limit: int = 100,
    *,
    stop: threading.Event | None = None,
) -> int:
    """Deliver up to ``limit`` due webhooks (see the module docs); returns how many delivery
    attempts were made (``0``: nothing was due). Does nothing while ``PORTAL_WEBHOOK_URL`` is
    unset.

    :param now: the current time (tests pass a later one to skip backoff waits); default
        :func:`portal.store.utcnow`, read afresh at each step.
    :param stop: checked between deliveries; once set, no further row is claimed.
    :raises ConfigurationError: ``PORTAL_WEBHOOK_URL`` is set but there is no secret to sign
        with.
    """
    config = state.config
    url = config.get("PORTAL_WEBHOOK_URL")
    if not url:
        return 0
    secret = webhook_secrets(config)
    if not secret:
        raise ConfigurationError(
            "PORTAL_WEBHOOK_URL is set but there is no secret to sign webhooks with: set "
            "PORTAL_WEBHOOK_SECRET (or PORTAL_APP_KEYS)."
        )
    timeout = float(config["PORTAL_WEBHOOK_TIMEOUT"])
    max_attempts = max(1, int(config["PORTAL_WEBHOOK_MAX_ATTEMPTS"]))
    attempted = 0
    with requests.Session() as http:
        http.trust_env = False  # no environment proxies or ~/.netrc credentials
        while attempted < limit and not (stop is not None and stop.is_set()):
            batch = min(CLAIM_BATCH, limit - attempted)
            # Each claimed row is leased for the time the whole batch may take.
            lease = (timeout + 1.0) * batch + LEASE_MARGIN
            claimed = _claim(state, now or utcnow(), batch, lease)
            if not claimed:
                break
            for index, row in enumerate(claimed):
                if stop is not None and stop.is_set():
                    _release(state, claimed[index:], now)
                    return attempted
                began = time.perf_counter()
                error = _post(http, url, secret, row, timeout)
                took = int((time.perf_counter() - began) * 1000)
                _record(state, row, error, now, max_attempts, took)
                attempted += 1
    return attempted


def _release(state: PortalState, rows: list[_Claimed], now: datetime | None) -> None:
    """Give back rows claimed but not sent (the worker is stopping): due again at once, and
    the claim does not count as an attempt."""
    with state.store.session() as db:
        for row in rows:
            db.execute(
                update(WebhookOutbox)
                .where(WebhookOutbox.id == row.id, WebhookOutbox.delivered_at.is_(None))
                .values(attempts=row.attempts - 1, next_attempt_at=now or utcnow())
                .execution_options(synchronize_session=False)
            )


def pending_count(state: PortalState) -> int:
    """How many webhooks are neither delivered nor given up."""
    with state.store.read() as db:
        return int(
            db.scalar(
                select(func.count())
                .select_from(WebhookOutbox)
                .where(WebhookOutbox.delivered_at.is_(None), WebhookOutbox.given_up_at.is_(None))
            )
            or 0
        )
