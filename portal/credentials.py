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

Client credentials accounts (RFC 6749 §4.4) have no refresh token: the same single-flight path
re-runs the grant with the end user's stored client id and secret; ``invalid_client`` there
means the end user's client was deleted or its secret rotated, and likewise needs reauth.

A token stored without ``expires_at`` (the token response had no ``expires_in``) is never
stale before use; only an upstream 401 renews it, and only when it can be renewed.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from flask import current_app
from sqlalchemy import select

from . import signals, webhooks
from .accounts import for_update, to_dict
from .errors import CredentialError, PortalHTTPError, ProviderError, ResourceNotFound
from .oauth import token_expiry
from .store import ConnectedAccount

if TYPE_CHECKING:
    from .catalog import App
    from .crypto import Sealer
    from .state import PortalState

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


class SealedRow(Protocol):
    """What opening needs of an account row: a :class:`ConnectedAccount`, or a Core row of
    those columns (``select(ConnectedAccount.id, ….credentials)``)."""

    @property
    def id(self) -> str: ...

    @property
    def user_id(self) -> str: ...

    @property
    def app(self) -> str: ...

    @property
    def credentials(self) -> bytes: ...


def open_sealed(state: PortalState, account: SealedRow) -> dict[str, Any]:
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


#: How long (seconds) an opened credential stays in process memory, and how many accounts.
OPENED_TTL = 60.0
OPENED_MAX = 1024


class _OpenedCache:
    """Opened credentials by account id, each valid only for the exact sealed blob it was
    opened from: a refresh, reconnect or key rotation in any process writes a new blob (Fernet
    tokens carry a fresh IV and timestamp), so the next read of the row misses and opens the
    new one; a deleted row is never read, so never served. Entries expire ``OPENED_TTL``
    seconds after they were opened (plaintext does not linger), least recently used first
    beyond ``OPENED_MAX``. Thread-safe."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, tuple[bytes, float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, account_id: str, blob: bytes) -> dict[str, Any] | None:
        with self._lock:
            item = self._items.get(account_id)
            if item is None:
                return None
            if item[0] != blob or item[1] <= time.monotonic():
                del self._items[account_id]
                return None
            self._items.move_to_end(account_id)
            return item[2]

    def put(self, account_id: str, blob: bytes, data: dict[str, Any]) -> None:
        with self._lock:
            self._items[account_id] = (blob, time.monotonic() + OPENED_TTL, data)
            self._items.move_to_end(account_id)
            while len(self._items) > OPENED_MAX:
                self._items.popitem(last=False)


#: One cache per :class:`~portal.crypto.Sealer` (per app and key set): a blob another app's
#: keys opened is never treated as opened by this app's keys.
_opened: weakref.WeakKeyDictionary[Sealer, _OpenedCache] = weakref.WeakKeyDictionary()
_opened_guard = threading.Lock()


def open_cached(state: PortalState, account: SealedRow) -> dict[str, Any]:
    """:func:`open_sealed`, skipping the decrypt when this process opened the very same blob of
    this account less than ``OPENED_TTL`` seconds ago (the proxy's hot path; the caller has
    just read the row, so ownership and the current blob are always checked against the
    database). Returns a new top-level dict each call.

    :raises CredentialsUnreadable: see :class:`CredentialsUnreadable`.
    """
    with _opened_guard:
        cache = _opened.get(state.sealer)
        if cache is None:
            cache = _opened[state.sealer] = _OpenedCache()
    blob = bytes(account.credentials)
    data = cache.get(account.id, blob)
    if data is None:
        data = open_sealed(state, account)
        cache.put(account.id, blob, data)
    return dict(data)


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


#: Credential types whose access token expires and can be renewed.
TOKEN_TYPES = frozenset({"oauth2", "oauth2_client_credentials"})
#: Provider error codes that mean the stored grant or client is gone for good.
REAUTH_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})


def renewable(data: dict[str, Any]) -> bool:
    """True when a new access token can be had without the end user: a refresh token
    (RFC 6749 §6), or stored client credentials (§4.4)."""
    if data.get("type") == "oauth2":
        return bool(data.get("refresh_token"))
    if data.get("type") == "oauth2_client_credentials":
        return bool(data.get("client_id") and data.get("client_secret"))
    return False


def _stale(data: dict[str, Any], margin: float, rejected_token: str | None) -> bool:
    if data.get("type") not in TOKEN_TYPES:
        return False
    if rejected_token is not None:
        # Refresh only if the token the provider rejected is still the current one.
        return bool(data.get("access_token") == rejected_token)
    expires_at = data.get("expires_at")
    return expires_at is not None and float(expires_at) - margin <= time.time()


def load(
    state: PortalState,
    account_id: str,
    user_id: str | None = None,
    *,
    project: str | None = None,
) -> Credentials:
    """Open an account's credentials as stored (no refresh).

    Callers acting for an end user pass both ``project`` and ``user_id``: an account of
    another project or user is then the same 404 as a missing one. Only code that already read
    the row for its owner (or the worker's own bookkeeping) loads by id alone.

    :raises ResourceNotFound: no such account (in ``project`` and for ``user_id``, when given).
    """
    with state.store.read() as db:
        account = db.get(ConnectedAccount, account_id)
        if (
            account is None
            or (user_id is not None and account.user_id != user_id)
            or (project is not None and account.project != project)
        ):
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
    current: Credentials | None = None,
) -> Credentials:
    """The account's credentials, refreshed first when stale (see module docs).

    :param rejected_token: the access token an upstream answered 401 to; forces one refresh
        unless another caller already replaced that token.
    :param current: what :func:`load` just returned for this account, to spare a second read
        and decrypt; a refresh still re-reads the row under the lock.
    :raises NeedsReauth: the provider refused the refresh token (``invalid_grant``) or the
        end user's client (``invalid_client``).
    :raises UpstreamUnavailable: the token endpoint failed (5xx, timeout, bad response).
    """
    margin = float(state.config["PORTAL_REFRESH_MARGIN"])
    if current is None or current.account_id != account_id:
        current = load(state, account_id)
    if not _stale(current.data, margin, rejected_token) or not renewable(current.data):
        return current
    with _lock_for(account_id):
        failed: ProviderError | None = None
        with state.store.session() as db:
            query = select(ConnectedAccount).where(ConnectedAccount.id == account_id)
            account = db.scalars(for_update(db, query)).one()
            data = open_sealed(state, account)
            if not _stale(data, margin, rejected_token) or not renewable(data):
                return Credentials(account.id, account.user_id, account.app, data)
            resolved = app.resolve(data.get("account_fields") or {})
            try:
                if data["type"] == "oauth2_client_credentials":
                    token = state.oauth.client_credentials_grant(
                        resolved, data["client_id"], data["client_secret"]
                    )
                else:
                    token = state.oauth.refresh(resolved, data["refresh_token"])
            except ProviderError as exc:
                if exc.code not in REAUTH_ERRORS:
                    log.warning("refresh of account %s failed: %s", account_id, exc.code)
                    raise UpstreamUnavailable(exc.message, code="upstream_error") from exc
                account.status = "needs_reauth"
                failed = exc
                webhooks.enqueue(
                    db,
                    "account.needs_reauth",
                    {"user_id": account.user_id, "app": account.app, "account": to_dict(account)},
                    account.id,
                    project=account.project,
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
            log.warning("refresh of account %s refused (%s): needs reauth", account_id, failed.code)
            signals.token_refresh_failed.send(
                sender, user_id=user_id, app=slug, account_id=account_id, error=failed.code
            )
            raise NeedsReauth(
                f"{app.title} no longer accepts this connection; reconnect the account.",
            )
        log.info("access token of account %s (%s) refreshed", account_id, slug)
        signals.token_refreshed.send(sender, user_id=user_id, app=slug, account_id=account_id)
        return Credentials(account_id, user_id, slug, data)
