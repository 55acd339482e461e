"""The connect-attempt lifecycle: one row of :class:`~portal.store.ConnectAttempt` per ticket.

``status`` moves ``started`` -> ``exchanging`` -> ``connected`` | ``failed``:

* :func:`start` inserts the row under the ticket's nonce (a second insert fails: the ticket is
  single-use), with the hash of the OAuth ``state`` when the flow goes to the provider at once;
* :func:`bind_state` gives a form-started OAuth attempt its ``state`` (once);
* :func:`claim` moves ``started`` -> ``exchanging`` atomically, so a replayed code or state never
  reaches the token endpoint twice (RFC 6749 §10.5, RFC 9700 §4.7);
* :func:`exchange` (OAuth: code for token, then identity) and :func:`check_credentials` (a
  form's API key, client id/secret or Basic credentials) talk to the provider;
* :func:`finish` stores the account and marks the attempt ``connected`` in one transaction
  (a reconnect attempt, whose ``account_id`` is set from the start, re-authorizes that account
  in place and refuses another external account); :func:`fail` marks it ``failed``;
* :func:`status` is what ``GET /api/v1/connect-attempts/<id>`` answers; :func:`expired` and
  :func:`exchange_bound` are the two time rules.

Every function takes the app's :class:`~portal.state.PortalState` and works outside a request
too. The views (:mod:`portal.views.connect`, :mod:`portal.views.api`) parse the request, call
these and render.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from flask import current_app
from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from . import accounts as account_service
from . import signals, webhooks
from .connect_errors import portal_error_message
from .errors import CatalogError, InvalidConnectAttempt, ProviderError, ResourceNotFound
from .identity import fetch_identity, lookup_identity, run_lookups
from .oauth import granted_scopes, token_expiry
from .store import ConnectAttempt, ConnectedAccount, utcnow

if TYPE_CHECKING:
    from .auth import TicketClaims
    from .catalog import App
    from .state import PortalState

log = logging.getLogger("portal.connect")

#: Slack added to the longest code exchange, in seconds (see :func:`exchange_bound`).
EXCHANGE_MARGIN = 30.0

#: ``{name, title, icon_url}`` of an app as event payloads carry it, from its slug.
AppRef = Callable[[str], Mapping[str, str]]


class AttemptFailed(Exception):
    """The attempt ends here: the result page says ``code``/``message`` with ``status_code``.

    Raised by the steps of the flow; the view records it with :func:`fail` and renders it.
    """

    def __init__(self, code: str, message: str, status_code: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status_code = status_code


class CredentialsRefused(Exception):
    """The provider refused the credentials the end user entered (or sent account details that
    cannot be used): the connect form is shown again with ``message``; the attempt goes on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Connected:
    """What :func:`finish` stored: the public account, whether it is new, and the
    ``app-connected`` event payload (``{app, connectedAccountId, connected_accounts}``)."""

    account: account_service.AccountDict
    created: bool
    payload: dict[str, Any]


@dataclass(frozen=True)
class Exchanged:
    """What :func:`exchange` got: the OAuth credentials to seal, the granted scopes, the app
    resolved with every account field, those fields, and the identity ``(external id, label)``
    when the identity lookup already ran (else ``None``: :func:`finish` runs it)."""

    credentials: dict[str, Any]
    scopes: list[str]
    resolved: App
    fields: dict[str, str]
    identity: tuple[str, str] | None


def hash_state(value: str) -> str:
    """SHA-256 hex of an OAuth ``state`` value: only the hash is stored."""
    return hashlib.sha256(value.encode()).hexdigest()


def exchange_bound(config: Mapping[str, Any]) -> timedelta:
    """How long a connect attempt may stay ``exchanging`` before it is reported as failed.

    While ``exchanging`` one portal process talks to the provider (the token request, then the
    identity request, each bounded by ``PORTAL_HTTP_TIMEOUT``) and then commits the account.
    An attempt still ``exchanging`` after ``2 × PORTAL_HTTP_TIMEOUT + 30 s`` (50 s by default)
    belongs to a process that died mid-exchange: no one will ever finish it, so
    ``GET /connect-attempts/<id>`` reports it ``failed`` with ``connect_interrupted`` and the
    popup's opener settles (the user connects again with a new ticket).

    :param config: the Flask config (``PORTAL_HTTP_TIMEOUT`` in seconds).
    """
    return timedelta(seconds=2 * float(config["PORTAL_HTTP_TIMEOUT"]) + EXCHANGE_MARGIN)


def expired(state: PortalState, attempt: ConnectAttempt) -> bool:
    """True when ``attempt`` is older than ``PORTAL_TICKET_TTL`` seconds: the popup took too
    long (its ticket's lifetime bounds the whole flow)."""
    ttl = timedelta(seconds=state.config["PORTAL_TICKET_TTL"])
    return attempt.created_at + ttl < utcnow()


def start(
    state: PortalState,
    claims: TicketClaims,
    app: str,
    state_hash: str | None,
    return_to: str | None,
) -> None:
    """Insert the ``started`` attempt of ``claims`` (id: the ticket's nonce) for app ``app``.
    A reconnect ticket's account id is stored in ``account_id`` at once (see :func:`finish`),
    its extra scopes in ``scopes`` (see :func:`exchange`).

    :raises InvalidConnectAttempt: ``ticket_used``, the ticket already started an attempt.
    """
    now = utcnow()
    attempt = ConnectAttempt(
        id=claims.attempt_id,
        project=claims.project or state.mounted_project,
        user_id=claims.user_id,
        app=app,
        status="started",
        state_hash=state_hash,
        host_origin=claims.host_origin,
        opener_origin=claims.opener_origin,
        return_to=return_to,
        scopes=list(claims.scopes) or None,
        # A reconnect names its account from the start; finish() re-authorizes that one.
        account_id=claims.reconnect_account_id,
        created_at=now,
        updated_at=now,
    )
    try:
        with state.store.session() as db:
            db.add(attempt)
    except IntegrityError as exc:
        raise InvalidConnectAttempt(
            "This connect link was already used. Close this window and try again.",
            code="ticket_used",
        ) from exc


def get(state: PortalState, attempt_id: str) -> ConnectAttempt | None:
    """The attempt with id ``attempt_id`` (detached), or ``None``."""
    with state.store.read() as db:
        attempt: ConnectAttempt | None = db.get(ConnectAttempt, attempt_id)
        return attempt


def for_state(state: PortalState, state_value: str) -> ConnectAttempt | None:
    """The attempt an OAuth ``state`` value was issued to, or ``None``."""
    with state.store.read() as db:
        attempt: ConnectAttempt | None = db.scalars(
            select(ConnectAttempt).where(ConnectAttempt.state_hash == hash_state(state_value))
        ).first()
        return attempt


def bind_state(state: PortalState, attempt_id: str, state_value: str) -> bool:
    """Give a ``started`` attempt without one the hash of ``state_value`` (the form step of an
    OAuth app, before the redirect). ``False`` when it already had one or moved on (replay)."""
    with state.store.session() as db:
        result = cast(
            "CursorResult[Any]",
            db.execute(
                update(ConnectAttempt)
                .where(
                    ConnectAttempt.id == attempt_id,
                    ConnectAttempt.status == "started",
                    ConnectAttempt.state_hash.is_(None),
                )
                .values(state_hash=hash_state(state_value), updated_at=utcnow())
            ),
        )
        return bool(result.rowcount)


def claim(state: PortalState, attempt_id: str, from_status: str = "started") -> bool:
    """Move the attempt to ``exchanging``; ``False`` when someone else already did (replay)."""
    with state.store.session() as db:
        result = cast(
            "CursorResult[Any]",
            db.execute(
                update(ConnectAttempt)
                .where(ConnectAttempt.id == attempt_id, ConnectAttempt.status == from_status)
                .values(status="exchanging", updated_at=utcnow())
            ),
        )
        return bool(result.rowcount)


def mark_failed(state: PortalState, attempt_id: str, code: str, message: str) -> None:
    """Set the attempt ``failed`` with ``error_code``/``error_message`` (no signal, no log)."""
    with state.store.session() as db:
        db.execute(
            update(ConnectAttempt)
            .where(ConnectAttempt.id == attempt_id)
            .values(status="failed", updated_at=utcnow(), error_code=code, error_message=message)
        )


def fail(state: PortalState, attempt: ConnectAttempt, app: App, code: str, message: str) -> str:
    """End ``attempt`` as failed: record it (a storage failure is logged, not raised), send
    :data:`portal.signals.connect_failed` and log it.

    :returns: the message the end user reads (:func:`portal.connect_errors.portal_error_message`).
    """
    message = portal_error_message(code, app.title, message)
    try:
        mark_failed(state, attempt.id, code, message)
    except SQLAlchemyError:
        log.exception("could not record the failure of a connect attempt")
    signals.connect_failed.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        user_id=attempt.user_id,
        app=app.slug,
        error=code,
        message=message,
    )
    log.info("connect to %s failed: %s", app.slug, code, extra={"app": app.slug, "error": code})
    return message


def finish(
    state: PortalState,
    attempt: ConnectAttempt,
    app: App,
    credentials: dict[str, Any],
    scopes: list[str],
    ref: Mapping[str, str],
    identity: tuple[str, str] | None = None,
) -> Connected:
    """Identity lookup (unless ``identity`` is already known), then account upsert, attempt
    ``connected`` and the ``account.connected``/``account.reconnected`` webhook (and
    ``account.recovered`` when the account was ``needs_reauth``) in one transaction; then :data:`portal.signals.account_connected`. ``app`` is resolved for the
    account; ``ref`` is its ``{name, title, icon_url}``.

    A reconnect attempt (``attempt.account_id`` set by :func:`start`) re-authorizes that
    account in place (:func:`portal.accounts.reconnect_account`): same id, label and flows,
    new credentials, webhook ``account.reconnected``.

    :raises AttemptFailed: the identity lookup failed (502), or the database did (503
        ``storage_unavailable``); a reconnect signed in as another external account (409
        ``wrong_account``) or whose account was deleted meanwhile (404 ``account_gone``).
    """
    timeout = float(state.config["PORTAL_HTTP_TIMEOUT"])
    try:
        external_id, label = identity or fetch_identity(app, credentials, timeout, state.outbound)
    except ProviderError as exc:
        raise AttemptFailed(exc.code, exc.message, 502) from exc
    expires_at = (
        token_expiry(credentials)
        if credentials.get("type") in ("oauth2", "oauth2_client_credentials")
        else None
    )
    try:
        with state.store.session() as db:
            previous = _status_before(db, attempt, app, external_id)
            if attempt.account_id is not None:
                account = _reconnect(
                    state, db, attempt, app, external_id, label, scopes, credentials, expires_at
                )
                created = False
            else:
                account, created = account_service.upsert_account(
                    db,
                    state.sealer,
                    project=attempt.project,
                    user_id=attempt.user_id,
                    app=app.slug,
                    external_id=external_id,
                    label=label,
                    scopes=scopes,
                    credentials=credentials,
                    expires_at=expires_at,
                )
            db.execute(
                update(ConnectAttempt)
                .where(ConnectAttempt.id == attempt.id)
                .values(status="connected", account_id=account.id, updated_at=utcnow())
            )
            public = account_service.to_dict(account)
            accounts = account_service.list_accounts(
                db, attempt.user_id, app.slug, project=attempt.project
            )
            payload = account_service.event_payload(dict(ref), account.id, accounts)
            webhooks.enqueue(
                db,
                "account.connected" if created else "account.reconnected",
                {
                    "user_id": attempt.user_id,
                    "app": app.slug,
                    "account": public,
                    "connected_accounts": payload["connected_accounts"],
                },
                account.id,
                project=attempt.project,
                state=state,
            )
            if previous == "needs_reauth" and not created:
                # The same webhook as a health check that passes again (portal.health).
                webhooks.enqueue(
                    db,
                    "account.recovered",
                    {
                        "user_id": attempt.user_id,
                        "app": app.slug,
                        "account": public,
                        "reason": None,
                    },
                    account.id,
                    project=attempt.project,
                    state=state,
                )
    except SQLAlchemyError as exc:
        log.exception("could not store the connected account for %s", app.slug)
        raise AttemptFailed(
            "storage_unavailable",
            "The account could not be saved. Please try connecting again.",
            503,
        ) from exc
    signals.account_connected.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        user_id=attempt.user_id,
        app=app.slug,
        account=public,
        created=created,
    )
    log.info(
        "connect to %s finished: account %s %s",
        app.slug,
        public["id"],
        "created" if created else "reconnected",
        extra={"app": app.slug, "account_id": public["id"]},
    )
    return Connected(public, created, payload)


def _status_before(db: Session, attempt: ConnectAttempt, app: App, external_id: str) -> str | None:
    """The status of the account this attempt is about to update (the reconnected one, or the
    same external account connected again), row locked; ``None`` when it adds one."""
    query = select(ConnectedAccount.status).where(
        ConnectedAccount.project == attempt.project,
        ConnectedAccount.user_id == attempt.user_id,
        ConnectedAccount.app == app.slug,
    )
    if attempt.account_id is not None:
        query = query.where(ConnectedAccount.id == attempt.account_id)
    else:
        query = query.where(ConnectedAccount.external_id == external_id)
    status: str | None = db.scalar(account_service.for_update(db, query))
    return status


def _reconnect(
    state: PortalState,
    db: Session,
    attempt: ConnectAttempt,
    app: App,
    external_id: str,
    label: str,
    scopes: list[str],
    credentials: dict[str, Any],
    expires_at: datetime | None,
) -> ConnectedAccount:
    assert attempt.account_id is not None
    try:
        return account_service.reconnect_account(
            db,
            state.sealer,
            account_id=attempt.account_id,
            project=attempt.project,
            user_id=attempt.user_id,
            app=app.slug,
            external_id=external_id,
            label=label,
            scopes=scopes,
            credentials=credentials,
            expires_at=expires_at,
        )
    except ResourceNotFound as exc:
        raise AttemptFailed(
            "account_gone",
            f"The {app.title} account to reconnect was removed. Connect it again instead.",
            404,
        ) from exc
    except account_service.OtherExternalAccount as exc:
        raise AttemptFailed(
            "wrong_account",
            f"You signed in as another account: {exc.label}. Sign in to {app.title} as the "
            "account you are reconnecting, or connect this one as a new account.",
            409,
        ) from exc


def status(
    state: PortalState, attempt_id: str, *, project: str, user_id: str, ref: AppRef
) -> dict[str, Any]:
    """The popup's result for an opener that lost it (``GET /api/v1/connect-attempts/<id>``).

    ``{status: "pending"|"connected"|"failed", app, connectedAccountId?, payload?, error?}``.
    Unknown ids, and other users' or other projects' attempts, read as ``{status: "pending"}``.
    An attempt stuck in ``exchanging`` longer than :func:`exchange_bound` (its process died
    during the code exchange) reads as ``failed`` with error type ``connect_interrupted``; the
    row itself is left as is. ``ref(slug)`` gives the app's ``{name, title, icon_url}``.
    """
    with state.store.read() as db:
        attempt = db.get(ConnectAttempt, attempt_id)
        if attempt is None or attempt.project != project or attempt.user_id != user_id:
            return {"status": "pending"}
        result: dict[str, Any] = {"status": "pending", "app": attempt.app}
        if attempt.status == "connected" and attempt.account_id:
            accounts = account_service.list_accounts(db, user_id, attempt.app, project=project)
            result.update(
                status="connected",
                connectedAccountId=attempt.account_id,
                payload=account_service.event_payload(
                    dict(ref(attempt.app)), attempt.account_id, accounts
                ),
            )
        elif attempt.status == "failed":
            result.update(
                status="failed",
                error={"type": attempt.error_code, "message": attempt.error_message},
            )
        elif (
            attempt.status == "exchanging"
            and attempt.updated_at + exchange_bound(state.config) < utcnow()
        ):
            result.update(
                status="failed",
                error={
                    "type": "connect_interrupted",
                    "message": "The connection was interrupted. Please try connecting again.",
                },
            )
    return result


def exchange(
    state: PortalState,
    definition: App,
    resolved: App,
    fields: dict[str, str],
    extra_scopes: Sequence[str] = (),
) -> Exchanged:
    """The ``exchanging`` step of a claimed OAuth attempt: exchange the code of this request's
    authorization response (RFC 6749 §4.1.3, PKCE RFC 7636 §4.5, via
    :meth:`portal.oauth.OAuthClients.exchange_code`), then look up the identity when the
    identity response fills account fields. ``resolved`` is ``definition`` resolved with
    ``fields`` (the account fields known so far); ``extra_scopes`` are the ones the attempt
    asked for on top of the app's (granted when the token response has no ``scope``).

    :raises AttemptFailed: the provider failed (502; a nonce that is not this attempt's: 400)
        or sent unusable or incomplete account details (502 ``invalid_response``).
    """
    unusable = f"{definition.title} sent account details that cannot be used."
    try:
        resolved = resolved.resolve(fields)
        token = state.oauth.exchange_code(resolved)
        # Values the token response fills (e.g. Salesforce's instance_url), validated by
        # read_token, join the account fields; the API and identity URLs then use them.
        fields = {**fields, **token.pop("fields", {})}
        resolved = resolved.resolve(fields)
    except ProviderError as exc:
        # A nonce that is not this attempt's is a forged or injected response, not a provider
        # fault: 400, like a bad state (OpenID Connect Core §3.1.3.7, RFC 9700 §4.5).
        status_code = 400 if exc.code == "invalid_nonce" else 502
        raise AttemptFailed(exc.code, exc.message, status_code) from exc
    except CatalogError as exc:
        raise AttemptFailed("invalid_response", unusable, 502) from exc
    credentials: dict[str, Any] = {
        "type": "oauth2",
        **{
            k: token[k]
            for k in ("access_token", "refresh_token", "token_type", "expires_at", "scope")
            if k in token
        },
    }
    timeout = float(state.config["PORTAL_HTTP_TIMEOUT"])
    if definition.lookups:
        # Values follow-up calls fill (Atlassian's cloud id), validated by run_lookups, join
        # the account fields before the identity, API URL and headers use them.
        try:
            fields = {**fields, **run_lookups(resolved, credentials, timeout, state.outbound)}
            resolved = resolved.resolve(fields)
        except ProviderError as exc:
            raise AttemptFailed(exc.code, exc.message, 502) from exc
        except CatalogError as exc:
            raise AttemptFailed("invalid_response", unusable, 502) from exc
    identity: tuple[str, str] | None = None
    if definition.identity_fields:
        # Values the identity response fills (Mailchimp's dc, Xero's tenantId), validated by
        # lookup_identity, join the account fields before the API URL and headers use them.
        try:
            external_id, label, found = lookup_identity(
                resolved, credentials, timeout, state.outbound
            )
            fields = {**fields, **found}
            resolved = resolved.resolve(fields)
        except ProviderError as exc:
            raise AttemptFailed(exc.code, exc.message, 502) from exc
        except CatalogError as exc:
            raise AttemptFailed("invalid_response", unusable, 502) from exc
        identity = (external_id, label)
    if resolved.placeholders or set(definition.derived_fields) - set(fields):
        raise AttemptFailed(
            "invalid_response",
            f"{definition.title} did not send every account detail this app needs.",
            502,
        )
    return Exchanged(
        credentials, granted_scopes(resolved, token, extra_scopes), resolved, fields, identity
    )


def check_credentials(
    state: PortalState,
    definition: App,
    resolved: App,
    data: Mapping[str, Any],
    fields: dict[str, str],
) -> Exchanged:
    """Check what the end user entered in the connect form of an API-key, client-credentials or
    Basic app: the token request of a client-credentials app (RFC 6749 §4.4), then the
    ``lookups:`` calls and the identity lookup, whose responses may fill more account fields
    (validated).

    :param data: the valid form's data (``api_key``; ``client_id``/``client_secret``;
        ``username``/``password``).
    :param fields: the account field values entered; ``resolved`` is ``definition`` resolved
        with them.
    :returns: the credentials (``account_fields`` inside when there are any), scopes, the app
        resolved with every field, the fields and the identity.
    :raises AttemptFailed: ``upstream_refused`` (403): the host is refused, nothing was sent.
    :raises CredentialsRefused: the provider refused them, or sent unusable account details.
    """
    credentials, scopes = _entered_credentials(state, definition, resolved, data)
    if fields:
        credentials["account_fields"] = fields
    timeout = float(state.config["PORTAL_HTTP_TIMEOUT"])
    try:
        if definition.lookups:
            fields = {**fields, **run_lookups(resolved, credentials, timeout, state.outbound)}
            credentials["account_fields"] = fields
            resolved = resolved.resolve(fields)
        external_id, label, found = lookup_identity(resolved, credentials, timeout, state.outbound)
        if found:  # identity.fields (validated), for API-key / Basic apps too
            fields = {**fields, **found}
            credentials["account_fields"] = fields
            resolved = resolved.resolve(fields)
    except ProviderError as exc:
        if exc.code == "upstream_refused":  # the attempt ends: nothing was sent
            raise AttemptFailed(exc.code, exc.message, 403) from exc
        raise CredentialsRefused(exc.message) from exc
    except CatalogError as exc:
        raise CredentialsRefused(
            f"{definition.title} sent account details that cannot be used."
        ) from exc
    return Exchanged(credentials, scopes, resolved, fields, (external_id, label))


def _entered_credentials(
    state: PortalState, definition: App, resolved: App, data: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The credentials and granted scopes the connect form's ``data`` stands for; a
    client-credentials app's are checked by a token request first."""
    if definition.api_key is not None:
        return {"type": "api_key", "api_key": data["api_key"].strip()}, []
    if definition.client_credentials is not None:
        client_id = data["client_id"].strip()
        client_secret = data["client_secret"].strip()
        try:
            token = state.oauth.client_credentials_grant(resolved, client_id, client_secret)
        except ProviderError as exc:
            if exc.code == "upstream_refused":
                raise AttemptFailed(exc.code, exc.message, 403) from exc
            raise CredentialsRefused(_refused_client(definition, exc)) from exc
        credentials = {
            "type": "oauth2_client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            **token,
        }
        return credentials, granted_scopes(definition, token)
    return {"type": "basic", "username": data["username"], "password": data["password"]}, []


def _refused_client(app: App, exc: ProviderError) -> str:
    if exc.code in ("invalid_client", "unauthorized_client", "invalid_grant", "access_denied"):
        return f"{app.title} did not accept this client ID and secret."
    if exc.code == "invalid_scope":
        return f"This {app.title} client may not use the scopes this app needs."
    return exc.message
