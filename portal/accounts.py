"""Connected-account service: upsert, list, delete, and the event payloads built from them.

Views call these functions inside one :meth:`portal.store.Store.session` transaction; nothing
here commits on its own, so a failure anywhere leaves no half-written row.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict, TypeVar

from sqlalchemy import Select, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .crypto import Sealer
from .errors import CredentialError, InvalidRequest, ResourceNotFound
from .store import AccountTag, ConnectedAccount, Store, utcnow

_Row = TypeVar("_Row")


class AccountDict(TypedDict):
    """The public shape of a connected account (DESIGN.md "Events"); never a credential."""

    id: str
    app: str
    label: str
    external_id: str
    status: str
    scopes: list[str]
    created_at: str
    modified_at: str
    metadata: dict[str, Any]


def iso(value: datetime) -> str:
    """ISO-8601 UTC with a ``Z`` suffix and millisecond precision: ``2026-11-21T19:30:00.123Z``."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def to_dict(account: ConnectedAccount) -> AccountDict:
    """The public :class:`AccountDict` of ``account``."""
    return {
        "id": account.id,
        "app": account.app,
        "label": account.label,
        "external_id": account.external_id,
        "status": account.status,
        "scopes": list(account.scopes or []),
        "created_at": iso(account.created_at),
        "modified_at": iso(account.modified_at),
        "metadata": dict(account.account_metadata or {}),
    }


def new_account_id() -> str:
    """A fresh, unguessable connected-account id (``ca_`` + 24 url-safe characters)."""
    return "ca_" + secrets.token_urlsafe(18)


def list_accounts(
    session: Session,
    user_id: str,
    app: str | None = None,
    *,
    project: str,
    tag: str | None = None,
) -> list[ConnectedAccount]:
    """``user_id``'s accounts in ``project`` (of ``app`` when given, carrying ``tag`` in
    ``metadata.tags`` when given), ``modified_at`` descending. The same user id in another
    project is another end user."""
    query = select(ConnectedAccount).where(
        ConnectedAccount.project == project, ConnectedAccount.user_id == user_id
    )
    if app is not None:
        query = query.where(ConnectedAccount.app == app)
    if tag is not None:
        query = query.join(
            AccountTag,
            (AccountTag.account_id == ConnectedAccount.id) & (AccountTag.project == project),
        ).where(AccountTag.tag == tag)
    query = query.order_by(ConnectedAccount.modified_at.desc(), ConnectedAccount.id)
    return list(session.scalars(query))


def get_account(
    session: Session, user_id: str, account_id: str, *, project: str
) -> ConnectedAccount:
    """One of ``user_id``'s accounts in ``project``.

    :raises ResourceNotFound: no such account *for this user of this project* (another user's
        or another project's id gives the same 404, so existence is not revealed).
    """
    account = session.get(ConnectedAccount, account_id)
    if account is None or account.project != project or account.user_id != user_id:
        raise ResourceNotFound("No such connected account.")
    return account


def user_accounts(
    store: Store, user_id: str, app: str | None = None, *, project: str, tag: str | None = None
) -> list[ConnectedAccount]:
    """:func:`list_accounts` in a read transaction of its own; the rows come back detached,
    every column loaded."""
    with store.read() as session:
        return list_accounts(session, user_id, app, project=project, tag=tag)


def user_account(store: Store, user_id: str, account_id: str, *, project: str) -> ConnectedAccount:
    """:func:`get_account` in a read transaction of its own (the row comes back detached).

    :raises ResourceNotFound: no such account for this user of this project.
    """
    with store.read() as session:
        return get_account(session, user_id, account_id, project=project)


def connected_counts(store: Store, user_id: str, *, project: str) -> Counter[str]:
    """``{app slug: number of user_id's accounts of it}`` in ``project`` (apps without one are
    absent), whatever the accounts' status."""
    with store.read() as session:
        return Counter(
            session.scalars(
                select(ConnectedAccount.app).where(
                    ConnectedAccount.project == project, ConnectedAccount.user_id == user_id
                )
            )
        )


def upsert_account(
    session: Session,
    sealer: Sealer,
    *,
    project: str,
    user_id: str,
    app: str,
    external_id: str,
    label: str,
    scopes: Sequence[str],
    credentials: dict[str, Any],
    expires_at: datetime | None,
) -> tuple[ConnectedAccount, bool]:
    """Insert or update the account unique on ``(project, user_id, app, external_id)``.

    Reconnecting the same external account replaces its credentials, label, scopes and status
    and bumps ``modified_at``; a different external account adds a row.

    :returns: ``(account, created)``.
    """
    query = select(ConnectedAccount).where(
        ConnectedAccount.project == project,
        ConnectedAccount.user_id == user_id,
        ConnectedAccount.app == app,
        ConnectedAccount.external_id == external_id,
    )
    account = session.scalars(query).first()
    created = account is None
    now = utcnow()
    if account is None:
        account = ConnectedAccount(
            id=new_account_id(),
            project=project,
            user_id=user_id,
            app=app,
            external_id=external_id,
            created_at=now,
        )
        try:
            with session.begin_nested():
                _fill(account, sealer, label, scopes, credentials, expires_at, now)
                session.add(account)
                session.flush()
        except IntegrityError:
            # Another request connected the same external account a moment ago: update it.
            account = session.scalars(query).one()
            created = False
            _fill(account, sealer, label, scopes, credentials, expires_at, now)
    else:
        _fill(account, sealer, label, scopes, credentials, expires_at, now)
    session.flush()
    return account, created


def _fill(
    account: ConnectedAccount,
    sealer: Sealer,
    label: str,
    scopes: Sequence[str],
    credentials: dict[str, Any],
    expires_at: datetime | None,
    now: datetime,
) -> None:
    account.label = label[:255]
    account.scopes = list(scopes)
    account.status = "active"
    account.credentials = sealer.seal(account.id, credentials)
    account.expires_at = expires_at
    account.modified_at = now
    # Just (re)connected: known good; the next health check is one interval from now.
    account.health_reason = None
    account.health_failures = 0
    account.health_next_at = None


#: Largest metadata object, in bytes of compact JSON (UTF-8).
MAX_METADATA_BYTES = 4096
#: Most tags in ``metadata.tags``, and the longest tag, in characters.
MAX_TAGS = 20
MAX_TAG_LENGTH = 64


def check_metadata(value: Any) -> dict[str, Any]:
    """Validate host metadata: a JSON object of at most :data:`MAX_METADATA_BYTES` bytes
    (compact UTF-8 JSON) whose optional ``tags`` is a list of at most :data:`MAX_TAGS`
    distinct non-empty strings of at most :data:`MAX_TAG_LENGTH` characters. Schema-free
    otherwise. It is shown to whoever may read the account and sent in webhooks: never put a
    secret in it.

    :returns: ``value`` unchanged.
    :raises InvalidRequest: 400 ``invalid_metadata``, with ``error_details`` naming the field.
    """
    import json

    if not isinstance(value, dict):
        raise InvalidRequest("`metadata` must be a JSON object.", code="invalid_metadata")
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_METADATA_BYTES:
        raise InvalidRequest(
            f"`metadata` is {size} bytes of JSON; at most {MAX_METADATA_BYTES} are kept.",
            code="invalid_metadata",
            details=[{"field": "metadata", "message": f"larger than {MAX_METADATA_BYTES} bytes"}],
        )
    tags = value.get("tags")
    if tags is not None:
        bad = (
            not isinstance(tags, list)
            or len(tags) > MAX_TAGS
            or len(set(map(str, tags))) != len(tags)
            or not all(isinstance(t, str) and 0 < len(t) <= MAX_TAG_LENGTH for t in tags)
        )
        if bad:
            raise InvalidRequest(
                f"`metadata.tags` must be a list of at most {MAX_TAGS} distinct strings of "
                f"1 to {MAX_TAG_LENGTH} characters.",
                code="invalid_metadata",
                details=[{"field": "metadata.tags", "message": "not a list of short strings"}],
            )
    return value


def set_metadata(session: Session, account: ConnectedAccount, metadata: dict[str, Any]) -> None:
    """Replace ``account``'s metadata (already :func:`check_metadata`-ed) and its tag rows;
    bumps ``modified_at``."""
    account.account_metadata = metadata
    account.modified_at = utcnow()
    session.execute(delete(AccountTag).where(AccountTag.account_id == account.id))
    for tag in metadata.get("tags") or []:
        session.add(AccountTag(account_id=account.id, tag=tag, project=account.project))
    session.flush()


def delete_account(session: Session, account: ConnectedAccount) -> None:
    """Delete ``account`` (its sealed credentials go with the row)."""
    session.delete(account)
    session.flush()


def event_payload(
    app_summary: dict[str, str], account_id: str, accounts: Sequence[ConnectedAccount]
) -> dict[str, Any]:
    """Payload of ``app-connected`` / ``app-disconnected`` (DESIGN.md "Events to the host page").

    :returns: ``{"app": {name, title, icon_url}, "connectedAccountId": id,
        "connected_accounts": [AccountDict…]}``, accounts ``modified_at`` descending.
    """
    return {
        "app": app_summary,
        "connectedAccountId": account_id,
        "connected_accounts": [to_dict(a) for a in accounts],
    }


def for_update(session: Session, query: Select[_Row]) -> Select[_Row]:
    """``query`` locking the rows it reads until the transaction ends: ``SELECT … FOR UPDATE``
    on PostgreSQL; on SQLite every :meth:`portal.store.Store.session` already began with
    ``BEGIN IMMEDIATE``, which holds the database's write lock. Whoever rewrites a row's sealed
    credentials reads them through this first (token refresh, key rotation), so no writer ever
    saves what it read before another writer's commit."""
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update()
    return query


@dataclass
class ResealBatch:
    """What one batch of :func:`reseal_credentials` did (counts of rows)."""

    #: Rows re-sealed under the newest key in this batch.
    resealed: int = 0
    #: Rows already under the newest key (left as they were).
    skipped: int = 0
    #: Ids of rows no configured key opens (or sealed for another row), left untouched.
    failed: list[str] = field(default_factory=list)
    #: Rows handled so far, this batch included, and rows in all.
    done: int = 0
    total: int = 0


def reseal_credentials(
    store: Store, sealer: Sealer, batch_size: int = 100
) -> Iterator[ResealBatch]:
    """Re-seal every connected account's credentials under the newest key, one committed
    transaction per batch of ``batch_size`` rows (in id order), yielding after each commit.

    Resumable: a row already under the newest key is skipped, so running it again after an
    interruption only does what is left. Safe while the portal serves: each batch reads its
    rows under :func:`for_update`, the lock a token refresh holds while it replaces a row's
    credentials, and re-seals exactly what it read there; a refresh that committed first is
    kept, one that comes later waits for the batch and then reads the re-sealed blob.

    :param batch_size: rows per transaction (at least 1).
    :raises ValueError: ``batch_size`` below 1.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    with store.read() as db:
        ids = list(db.scalars(select(ConnectedAccount.id).order_by(ConnectedAccount.id)))
    done = 0
    for start in range(0, len(ids), batch_size):
        batch = ResealBatch(total=len(ids))
        chunk = ids[start : start + batch_size]
        with store.session() as db:
            query = (
                select(ConnectedAccount)
                .where(ConnectedAccount.id.in_(chunk))
                .order_by(ConnectedAccount.id)
            )
            for account in db.scalars(for_update(db, query)):
                try:
                    sealer.open(account.id, account.credentials)
                    if sealer.is_current(account.credentials):
                        batch.skipped += 1
                        continue
                    blob = sealer.rotate(account.credentials)
                except CredentialError:
                    batch.failed.append(account.id)
                    continue
                account.credentials = blob
                batch.resealed += 1
        done += len(chunk)
        batch.done = done
        yield batch


def replace_metadata(
    store: Store, user_id: str, account_id: str, metadata: dict[str, Any], *, project: str
) -> AccountDict:
    """Replace the metadata of one of ``user_id``'s accounts in ``project`` (already checked by
    :func:`check_metadata`) in one transaction; answers the Account payload.

    :raises ResourceNotFound: no such account for this user of this project.
    """
    with store.session() as session:
        account = get_account(session, user_id, account_id, project=project)
        set_metadata(session, account, metadata)
        return to_dict(account)
