"""Connected-account service: upsert, list, delete, and the event payloads built from them.

Views call these functions inside one :meth:`portal.store.Store.session` transaction; nothing
here commits on its own, so a failure anywhere leaves no half-written row.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .crypto import Sealer
from .errors import ResourceNotFound
from .store import ConnectedAccount, utcnow


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
    }


def new_account_id() -> str:
    """A fresh, unguessable connected-account id (``ca_`` + 24 url-safe characters)."""
    return "ca_" + secrets.token_urlsafe(18)


def list_accounts(session: Session, user_id: str, app: str | None = None) -> list[ConnectedAccount]:
    """``user_id``'s accounts (of ``app`` when given), ``modified_at`` descending."""
    query = select(ConnectedAccount).where(ConnectedAccount.user_id == user_id)
    if app is not None:
        query = query.where(ConnectedAccount.app == app)
    query = query.order_by(ConnectedAccount.modified_at.desc(), ConnectedAccount.id)
    return list(session.scalars(query))


def get_account(session: Session, user_id: str, account_id: str) -> ConnectedAccount:
    """One of ``user_id``'s accounts.

    :raises ResourceNotFound: no such account *for this user* (another user's id gives the same
        404, so existence is not revealed).
    """
    account = session.get(ConnectedAccount, account_id)
    if account is None or account.user_id != user_id:
        raise ResourceNotFound("No such connected account.")
    return account


def upsert_account(
    session: Session,
    sealer: Sealer,
    *,
    user_id: str,
    app: str,
    external_id: str,
    label: str,
    scopes: Sequence[str],
    credentials: dict[str, Any],
    expires_at: datetime | None,
) -> tuple[ConnectedAccount, bool]:
    """Insert or update the account unique on ``(user_id, app, external_id)``.

    Reconnecting the same external account replaces its credentials, label, scopes and status
    and bumps ``modified_at``; a different external account adds a row.

    :returns: ``(account, created)``.
    """
    query = select(ConnectedAccount).where(
        ConnectedAccount.user_id == user_id,
        ConnectedAccount.app == app,
        ConnectedAccount.external_id == external_id,
    )
    account = session.scalars(query).first()
    created = account is None
    now = utcnow()
    if account is None:
        account = ConnectedAccount(
            id=new_account_id(), user_id=user_id, app=app, external_id=external_id, created_at=now
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
