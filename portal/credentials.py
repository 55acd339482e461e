"""Fresh credentials for a connected account: refresh before use, single-flight.

An access token is refreshed when it expires within ``PORTAL_REFRESH_MARGIN`` seconds, or when
the caller saw the provider reject it (an upstream 401: ``rejected_token``). Refreshes are
single-flight:

* across threads of one process, by a lock per account;
* across processes sharing the database, by locking the account row for the whole refresh:
  ``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite every portal transaction starts with
  ``BEGIN IMMEDIATE`` (see :mod:`portal.store`), which holds the database's write lock.

Whoever gets the lock re-reads the row first: if another thread or process refreshed meanwhile
it uses that result and sends nothing. A rotated refresh token is saved in the same transaction
that read the old one, so no two refreshes ever present the same refresh token (RFC 9700 §4.14).
``invalid_grant`` therefore means the grant itself is gone: the account becomes
``needs_reauth`` and :data:`portal.signals.token_refresh_failed` is sent; nothing retries.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import current_app
from sqlalchemy import select

from . import signals, webhooks
from .accounts import to_dict
from .errors import CredentialError, PortalHTTPError, ProviderError, ResourceNotFound
from .oauth import token_expiry
from .store import ConnectedAccount

if TYPE_CHECKING:
    from .catalog import App
    from .extension import PortalState

log = logging.getLogger(__name__)

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


class NeedsReauth(PortalHTTPError):
    """409: the provider refused the refresh token; the end user must reconnect the account."""

    code = 409
    error_code = "needs_reauth"


class CredentialsUnreadable(PortalHTTPError):
    """409: the stored credentials do not open (no configured key, tampered, or copied from
    another account); the end user must reconnect. Logged without any secret."""

    code = 409
    error_code = "credentials_unreadable"


def open_sealed(state: PortalState, account: ConnectedAccount) -> dict[str, Any]:
    """Open ``account``'s credentials.

    :raises CredentialsUnreadable: see :class:`CredentialsUnreadable`.
    """
    try:
        return state.sealer.open(account.id, account.credentials)
    except CredentialError as exc:
        log.warning("credentials of connected account %s cannot be opened: %s", account.id, exc)
        raise CredentialsUnreadable(
            "The stored credentials for this account cannot be read; reconnect the account."
        ) from exc


class UpstreamUnavailable(PortalHTTPError):
    """502: the provider failed while refreshing a token."""

    code = 502
    error_code = "upstream_error"


@dataclass(frozen=True)
class Credentials:
    """An account's opened credentials, with the account facts callers need."""

    account_id: str
    user_id: str
    app: str
    data: dict[str, Any]


def _lock_for(account_id: str) -> threading.Lock:
    with _locks_guard:
        lock = _locks.get(account_id)
        if lock is None:
            lock = _locks[account_id] = threading.Lock()
        return lock


def _stale(data: dict[str, Any], margin: float, rejected_token: str | None) -> bool:
    if data.get("type") != "oauth2":
        return False
    if rejected_token is not None:
        # Refresh only if the token the provider rejected is still the current one.
        return bool(data.get("access_token") == rejected_token)
    expires_at = data.get("expires_at")
    return expires_at is not None and float(expires_at) - margin <= time.time()


def load(state: PortalState, account_id: str, user_id: str | None = None) -> Credentials:
    """Open an account's credentials as stored (no refresh).

    :raises ResourceNotFound: no such account (for ``user_id``, when given).
    """
    with state.store.read() as db:
        account = db.get(ConnectedAccount, account_id)
        if account is None or (user_id is not None and account.user_id != user_id):
            raise ResourceNotFound("No such connected account.")
        return Credentials(
            account.id,
            account.user_id,
            account.app,
            open_sealed(state, account),
        )


def fresh(
    state: PortalState,
    app: App,
    account_id: str,
    *,
    rejected_token: str | None = None,
) -> Credentials:
    """The account's credentials, refreshed first when stale (see module docs).

    :param rejected_token: the access token an upstream answered 401 to; forces one refresh
        unless another caller already replaced that token.
    :raises NeedsReauth: the provider refused the refresh token (``invalid_grant``).
    :raises UpstreamUnavailable: the token endpoint failed (5xx, timeout, bad response).
    """
    margin = float(state.config["PORTAL_REFRESH_MARGIN"])
    current = load(state, account_id)
    if not _stale(current.data, margin, rejected_token) or not current.data.get("refresh_token"):
        return current
    with _lock_for(account_id):
        failed: ProviderError | None = None
        with state.store.session() as db:
            query = select(ConnectedAccount).where(ConnectedAccount.id == account_id)
            if db.get_bind().dialect.name == "postgresql":
                query = query.with_for_update()
            account = db.scalars(query).one()
            data = open_sealed(state, account)
            if not _stale(data, margin, rejected_token) or not data.get("refresh_token"):
                return Credentials(account.id, account.user_id, account.app, data)
            try:
                token = state.oauth.refresh(app, data["refresh_token"])
            except ProviderError as exc:
                if exc.code != "invalid_grant":
                    raise UpstreamUnavailable(exc.message, code="upstream_error") from exc
                account.status = "needs_reauth"
                failed = exc
                webhooks.enqueue(
                    db,
                    "account.needs_reauth",
                    {"user_id": account.user_id, "app": account.app, "account": to_dict(account)},
                    account.id,
                    state=state,
                )
            else:
                data = {
                    **data,
                    **{
                        k: token[k]
                        for k in ("access_token", "refresh_token", "token_type", "scope")
                        if token.get(k)
                    },
                }
                expiry = token_expiry(token)
                data["expires_at"] = int(expiry.timestamp()) if expiry else None
                account.credentials = state.sealer.seal(account.id, data)
                account.expires_at = expiry
                account.status = "active"
            user_id, slug = account.user_id, account.app
        sender = current_app._get_current_object()  # type: ignore[attr-defined]
        if failed is not None:
            signals.token_refresh_failed.send(
                sender, user_id=user_id, app=slug, account_id=account_id, error=failed.code
            )
            raise NeedsReauth(
                f"{app.title} no longer accepts this connection; reconnect the account.",
            )
        signals.token_refreshed.send(sender, user_id=user_id, app=slug, account_id=account_id)
        return Credentials(account_id, user_id, slug, data)
