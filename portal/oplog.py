"""The operators' log: function calls, app-event runs, flow runs, webhook deliveries and
account health checks, newest first, in one table (``portal_oplog``).

Writers call :func:`record` in the transaction of what they log (the function call's record,
the run's result, the webhook's delivery outcome, the health check's verdict). Readers are the
admin page and ``GET /api/v1/admin/log`` (:mod:`portal.views.admin`): :func:`page` filters by
project, kind, user, app, status and a time range and pages by an opaque cursor; :func:`detail`
adds the related account. Every filter has an index ending in ``(created_at, id)``
(migration 0006), so a first page, and every later one, is one index range scan whatever the
table's size (``bench/oplog_scale.py`` measures it with 1 M entries).

An entry never holds a credential or a token: ``request`` is the request's *shape* (function
name and parameter names, webhook type, HTTP method and verification path), ``error`` a short
text the portal wrote itself (an error code, ``HTTP 503``), never a provider's response body.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypedDict

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from .accounts import iso
from .errors import InvalidRequest, ResourceNotFound
from .store import ConnectedAccount, OplogEntry, utcnow

if TYPE_CHECKING:
    from .extension import PortalState

#: What an entry logs.
KINDS = ("function_call", "app_event_run", "flow_run", "webhook", "health_check")
#: An entry's outcome: ``retrying`` is a webhook attempt that failed and will be retried.
STATUSES = ("succeeded", "failed", "retrying")
#: Entries per page: the default and the most a caller may ask for.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
#: Longest ``error`` kept, in characters.
MAX_ERROR = 500


class EntryDict(TypedDict):
    """The public shape of one log entry (no credential, no token, no response body)."""

    id: str
    kind: str
    project: str
    user_id: str | None
    app: str | None
    account_id: str | None
    status: str
    duration_ms: int | None
    ref_id: str | None
    request: Any
    error: str | None
    created_at: str


def record(
    db: Session,
    *,
    project: str,
    kind: str,
    status: str,
    user_id: str | None = None,
    app: str | None = None,
    account_id: str | None = None,
    duration_ms: int | None = None,
    ref_id: str | None = None,
    request: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> str:
    """Add one entry in ``db``'s transaction; returns its id (``op_…``).

    :param kind: one of :data:`KINDS`; :param status: one of :data:`STATUSES`.
    :param request: the request's shape, JSON-serialisable; never a credential or a value a
        user typed in as a secret.
    :param error: a short portal-written reason (cut to :data:`MAX_ERROR` characters).
    :raises ValueError: unknown ``kind`` or ``status``.
    """
    if kind not in KINDS or status not in STATUSES:
        raise ValueError(f"unknown oplog kind or status: {kind!r}, {status!r}")
    entry_id = "op_" + secrets.token_urlsafe(12)
    db.add(
        OplogEntry(
            id=entry_id,
            project=project,
            kind=kind,
            status=status,
            user_id=None if user_id is None else user_id[:1024],
            app=app,
            account_id=account_id,
            duration_ms=duration_ms,
            ref_id=ref_id,
            request=dict(request) if request is not None else None,
            error=None if error is None else error[:MAX_ERROR],
            created_at=utcnow(),
        )
    )
    return entry_id


def to_dict(entry: OplogEntry) -> EntryDict:
    """The public :class:`EntryDict` of ``entry``."""
    return {
        "id": entry.id,
        "kind": entry.kind,
        "project": entry.project,
        "user_id": entry.user_id,
        "app": entry.app,
        "account_id": entry.account_id,
        "status": entry.status,
        "duration_ms": entry.duration_ms,
        "ref_id": entry.ref_id,
        "request": entry.request,
        "error": entry.error,
        "created_at": iso(entry.created_at),
    }


def encode_cursor(entry: OplogEntry) -> str:
    """An opaque cursor pointing just after ``entry`` (newest first)."""
    raw = json.dumps([entry.created_at.isoformat(), entry.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """``(created_at, id)`` of a cursor from :func:`encode_cursor`.

    :raises InvalidRequest: 400 ``invalid_cursor``.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, entry_id = json.loads(raw)
        moment = datetime.fromisoformat(when)
        if moment.tzinfo is None or not isinstance(entry_id, str):
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidRequest(
            "`cursor` is not a cursor of this log.", code="invalid_cursor"
        ) from exc
    return moment.astimezone(UTC), entry_id


def parse_time(value: str | None, name: str) -> datetime | None:
    """An ISO-8601 time filter (``2026-12-05T10:00:00Z``); a time without a zone is UTC.

    :raises InvalidRequest: 400 ``invalid_filter`` naming ``name``.
    """
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequest(
            f"`{name}` must be an ISO-8601 time, e.g. 2026-12-05T10:00:00Z.",
            code="invalid_filter",
            details=[{"field": name, "message": "not an ISO-8601 time"}],
        ) from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def filters_from(args: Mapping[str, str]) -> dict[str, Any]:
    """The filters of a query string: ``project``, ``kind``, ``user_id``, ``app``, ``status``
    (each an exact match), ``since`` / ``until`` (ISO-8601; ``since`` inclusive, ``until``
    exclusive), ``cursor`` and ``limit`` (1..:data:`MAX_PAGE_SIZE`). Empty values are ignored.

    :raises InvalidRequest: 400 ``invalid_filter`` (an unknown kind or status, a bad time or
        limit) or ``invalid_cursor``.
    """
    found: dict[str, Any] = {}
    for name in ("project", "kind", "user_id", "app", "status"):
        value = args.get(name) or None
        if value is not None and len(value) > 1024:
            raise InvalidRequest(f"`{name}` is too long.", code="invalid_filter")
        found[name] = value
    for name, allowed in (("kind", KINDS), ("status", STATUSES)):
        if found[name] is not None and found[name] not in allowed:
            raise InvalidRequest(
                f"`{name}` must be one of {', '.join(allowed)}.",
                code="invalid_filter",
                details=[{"field": name, "message": "unknown value"}],
            )
    found["since"] = parse_time(args.get("since"), "since")
    found["until"] = parse_time(args.get("until"), "until")
    found["cursor"] = args.get("cursor") or None
    limit = args.get("limit") or str(PAGE_SIZE)
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_PAGE_SIZE:
        raise InvalidRequest(
            f"`limit` must be a whole number from 1 to {MAX_PAGE_SIZE}.", code="invalid_filter"
        )
    found["limit"] = int(limit)
    return found


def page(
    state: PortalState,
    *,
    scope: str | None,
    project: str | None = None,
    kind: str | None = None,
    user_id: str | None = None,
    app: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
    with_accounts: bool = False,
) -> dict[str, Any]:
    """One page of the log, newest first (``created_at`` then ``id``, both descending).

    :param scope: the only project the caller may see (an app secret's key), or ``None`` for
        every project (the host's ``admin_check``); ``project`` narrows further.
    :param with_accounts: add ``"account"`` (:func:`account_summary` or ``None``) to each
        entry, read in one more query.
    :returns: ``{"entries": [EntryDict…], "next_cursor": str | None}``; ``next_cursor`` is
        ``None`` on the last page.
    :raises InvalidRequest: a garbled ``cursor``.
    """
    conditions = []
    for column, value in (
        (OplogEntry.project, scope),
        (OplogEntry.project, project),
        (OplogEntry.kind, kind),
        (OplogEntry.user_id, user_id),
        (OplogEntry.app, app),
        (OplogEntry.status, status),
    ):
        if value is not None:
            conditions.append(column == value)
    if since is not None:
        conditions.append(OplogEntry.created_at >= since)
    if until is not None:
        conditions.append(OplogEntry.created_at < until)
    if cursor is not None:
        after, after_id = decode_cursor(cursor)
        conditions.append(tuple_(OplogEntry.created_at, OplogEntry.id) < tuple_(after, after_id))
    statement = (
        select(OplogEntry)
        .where(*conditions)
        .order_by(OplogEntry.created_at.desc(), OplogEntry.id.desc())
        .limit(limit + 1)
    )
    with state.store.read() as db:
        rows = list(db.scalars(statement))
        more = len(rows) > limit
        rows = rows[:limit]
        entries: list[dict[str, Any]] = [dict(to_dict(r)) for r in rows]
        if with_accounts:
            ids = {r.account_id for r in rows if r.account_id}
            found = (
                {
                    a.id: a
                    for a in db.scalars(
                        select(ConnectedAccount).where(ConnectedAccount.id.in_(ids))
                    )
                }
                if ids
                else {}
            )
            for entry in entries:
                account = found.get(entry["account_id"] or "")
                ok = account is not None and account.project == entry["project"]
                entry["account"] = account_summary(account) if ok and account else None
    return {
        "entries": entries,
        "next_cursor": encode_cursor(rows[-1]) if more and rows else None,
    }


def account_summary(account: ConnectedAccount) -> dict[str, Any]:
    """What the log shows of a related account: ``{id, app, label, external_id, status,
    health_reason, health_checked_at}``; never a credential."""
    return {
        "id": account.id,
        "app": account.app,
        "label": account.label,
        "external_id": account.external_id,
        "status": account.status,
        "health_reason": account.health_reason,
        "health_checked_at": (
            iso(account.health_checked_at) if account.health_checked_at else None
        ),
    }


def detail(state: PortalState, entry_id: str, *, scope: str | None) -> dict[str, Any]:
    """One entry with its related account: ``{**EntryDict, "account": {id, app, label,
    external_id, status, health_reason, health_checked_at} | None}`` (``None`` when the entry
    names no account or the account is gone). Never a credential.

    :raises ResourceNotFound: no such entry in ``scope`` (another project's id is the same 404).
    """
    with state.store.read() as db:
        entry = db.get(OplogEntry, entry_id)
        if entry is None or (scope is not None and entry.project != scope):
            raise ResourceNotFound("No such log entry.", code="unknown_log_entry")
        result: dict[str, Any] = dict(to_dict(entry))
        account = db.get(ConnectedAccount, entry.account_id) if entry.account_id else None
        ok = account is not None and account.project == entry.project
        result["account"] = account_summary(account) if ok and account else None
    return result
