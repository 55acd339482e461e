"""The connect flow in the popup: ticket -> provider -> callback -> result page.

Order of checks at the callback (RFC 6749 §10.12, RFC 9700 §4.7, RFC 9207 §2.4): ``state`` must
name a started, unexpired attempt *of this app*, and this browser must hold its Authlib state
data; ``iss`` must match the app's issuer; only then is the attempt claimed (atomically, so a
replayed code or state never reaches the token endpoint twice) and the code exchanged.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, current_app, render_template, request, session, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from .. import accounts as account_service
from .. import signals, webhooks
from ..auth import TicketClaims, origin_of_url
from ..catalog import App
from ..errors import InvalidConnectAttempt, ProviderError, ResourceNotFound
from ..extension import current_portal
from ..identity import fetch_identity
from ..oauth import granted_scopes, token_expiry
from ..store import ConnectAttempt, utcnow
from .common import app_ref, app_summary, page_context

log = logging.getLogger("portal.connect")

_FORM_SESSION_KEY = "_portal_form_attempts"


def _hash_state(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def callback_uri(app: App) -> str:
    """The app's one redirect URI: ``PORTAL_BASE_URL`` + prefix + ``/oauth/<app>/callback``.

    Built from configuration only, so a spoofed ``Host``/``X-Forwarded-Host`` cannot change it.
    """
    base = current_portal.base_url or ""
    prefix = current_portal.config["PORTAL_URL_PREFIX"].rstrip("/")
    return f"{base}{prefix}/oauth/{app.slug}/callback"


def safe_return_to(value: str | None) -> str | None:
    """``value`` if it is an absolute http(s) URL on an allowed origin (or the portal's own),
    else ``None``: relative, scheme-relative and backslash forms are ignored, never followed."""
    if not value:
        return None
    origin = origin_of_url(value)
    if origin is None:
        return None
    if origin in current_portal.allowed_origins or origin == current_portal.own_origin:
        return value
    return None


def _app_or_404(slug: str) -> App:
    app = current_portal.app(slug)
    if app is None:
        raise ResourceNotFound(f"There is no app called “{slug}”.")
    return app


def _check_ticket_user(claims: TicketClaims) -> None:
    portal = current_portal.portal
    if portal.has_user_loader:
        user = portal.load_user()
        if user is not None and user != claims.user_id:
            raise InvalidConnectAttempt("This connect link belongs to another user.")


def _start_attempt(
    claims: TicketClaims, app: App, state_hash: str | None, return_to: str | None
) -> None:
    now = utcnow()
    attempt = ConnectAttempt(
        id=claims.attempt_id,
        user_id=claims.user_id,
        app=app.slug,
        status="started",
        state_hash=state_hash,
        host_origin=claims.host_origin,
        opener_origin=claims.opener_origin,
        return_to=return_to,
        created_at=now,
        updated_at=now,
    )
    try:
        with current_portal.store.session() as db:
            db.add(attempt)
    except IntegrityError as exc:
        raise InvalidConnectAttempt(
            "This connect link was already used. Close this window and try again.",
            code="ticket_used",
        ) from exc


def _expired(attempt: ConnectAttempt) -> bool:
    ttl = timedelta(seconds=current_portal.config["PORTAL_TICKET_TTL"])
    return attempt.created_at + ttl < utcnow()


def _set_status(attempt_id: str, status: str, **values: Any) -> None:
    with current_portal.store.session() as db:
        db.execute(
            update(ConnectAttempt)
            .where(ConnectAttempt.id == attempt_id)
            .values(status=status, updated_at=utcnow(), **values)
        )


def _claim(attempt_id: str, from_status: str = "started") -> bool:
    """Move the attempt to ``exchanging``; False when someone else already did (replay)."""
    with current_portal.store.session() as db:
        result = db.execute(
            update(ConnectAttempt)
            .where(ConnectAttempt.id == attempt_id, ConnectAttempt.status == from_status)
            .values(status="exchanging", updated_at=utcnow())
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- result page


def _result(
    attempt: ConnectAttempt,
    app: App,
    *,
    account: Mapping[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
    error: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response | tuple[str, int]:
    connected = error is None
    if attempt.return_to:
        # Redirect mode: back to the host page with the result in its query. Not a 303: the
        # navigation that reaches the callback began as a form POST on the provider's consent
        # page, and browsers apply that page's CSP `form-action` to every redirect that
        # follows it, which blocks a redirect to the host's origin. A page of our own that
        # moves on (meta refresh, plus a link) starts a fresh navigation instead.
        params = {"portal_status": "connected" if connected else "failed", "portal_app": app.slug}
        if connected and account:
            params["portal_account"] = account["id"]
        if error:
            params["portal_error"] = error["type"]
        parts = urlsplit(attempt.return_to)
        query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *params.items()])
        page = render_template(
            "portal/return.html",
            return_url=urlunsplit(parts._replace(query=query)),
            status="connected" if connected else "failed",
            app=app_summary(app, 0),
            error=error,
            **page_context("return"),
        )
        return page, status_code
    message = {
        "source": "connect-portal",
        "version": 1,
        "type": "portal:connect-result",
        "payload": {
            "status": "connected" if connected else "failed",
            "attemptId": attempt.id,
            "app": app.slug,
            "payload": payload,
            "error": error,
        },
    }
    page = render_template(
        "portal/connect_done.html",
        status="connected" if connected else "failed",
        app=app_summary(app, 0),
        account=account,
        error=error,
        result_json={"targetOrigin": attempt.opener_origin, "message": message},
        **page_context("connect-done"),
    )
    return page, status_code


def _fail(
    attempt: ConnectAttempt, app: App, code: str, message: str, status_code: int
) -> Response | tuple[str, int]:
    try:
        _set_status(attempt.id, "failed", error_code=code, error_message=message)
    except SQLAlchemyError:
        log.exception("could not record the failure of a connect attempt")
    signals.connect_failed.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        user_id=attempt.user_id,
        app=app.slug,
        error=code,
        message=message,
    )
    log.info("connect to %s failed: %s", app.slug, code)
    return _result(attempt, app, error={"type": code, "message": message}, status_code=status_code)


def _finish(
    attempt: ConnectAttempt,
    app: App,
    credentials: dict[str, Any],
    scopes: list[str],
) -> Response | tuple[str, int]:
    """Identity lookup, then account upsert and attempt completion in one transaction."""
    state = current_portal
    timeout = float(state.config["PORTAL_HTTP_TIMEOUT"])
    try:
        external_id, label = fetch_identity(app, credentials, timeout)
    except ProviderError as exc:
        return _fail(attempt, app, exc.code, exc.message, 502)
    try:
        with state.store.session() as db:
            account, created = account_service.upsert_account(
                db,
                state.sealer,
                user_id=attempt.user_id,
                app=app.slug,
                external_id=external_id,
                label=label,
                scopes=scopes,
                credentials=credentials,
                expires_at=token_expiry(credentials)
                if credentials.get("type") == "oauth2"
                else None,
            )
            db.execute(
                update(ConnectAttempt)
                .where(ConnectAttempt.id == attempt.id)
                .values(status="connected", account_id=account.id, updated_at=utcnow())
            )
            public = account_service.to_dict(account)
            accounts = account_service.list_accounts(db, attempt.user_id, app.slug)
            payload = account_service.event_payload(app_ref(app), account.id, accounts)
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
                state=state,
            )
    except SQLAlchemyError:
        log.exception("could not store the connected account for %s", app.slug)
        return _fail(
            attempt,
            app,
            "storage_unavailable",
            "The account could not be saved. Please try connecting again.",
            503,
        )
    signals.account_connected.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        user_id=attempt.user_id,
        app=app.slug,
        account=public,
        created=created,
    )
    return _result(attempt, app, account=public, payload=payload)


# --------------------------------------------------------------------------- routes


class ApiKeyForm(FlaskForm):
    """The API-key connect form (the label comes from the catalog)."""

    api_key = PasswordField("API key", validators=[DataRequired(), Length(max=4096)])


class BasicAuthForm(FlaskForm):
    """The HTTP Basic (RFC 7617) connect form."""

    username = StringField("Username", validators=[DataRequired(), Length(max=512)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=4096)])


def _form_for(app: App) -> FlaskForm:
    if app.api_key is not None:
        form: FlaskForm = ApiKeyForm()
        form.api_key.label.text = app.api_key.key_label
        form.api_key.description = app.api_key.key_help or ""
        return form
    form = BasicAuthForm()
    if app.basic is not None:
        form.username.label.text = app.basic.username_label
        form.password.label.text = app.basic.password_label
    return form


def connect(app: str) -> Any:
    """``GET|POST /connect/<app>?ticket=…[&return_to=…]``: start (or submit) one connect attempt.

    OAuth 2.0 apps: 302 to the provider's authorization endpoint with ``state`` and a PKCE S256
    challenge. API-key and basic apps: a Flask-WTF form, checked by an identity lookup.
    """
    definition = _app_or_404(app)
    claims = current_portal.tokens.read_ticket(request.values.get("ticket"), definition.slug)
    _check_ticket_user(claims)
    return_to = safe_return_to(request.values.get("return_to"))

    if definition.oauth2 is not None:
        if request.method != "GET":
            raise InvalidConnectAttempt("OAuth apps are connected with GET.")
        state_value = secrets.token_urlsafe(32)
        _start_attempt(claims, definition, _hash_state(state_value), return_to)
        try:
            return current_portal.oauth.authorize_redirect(
                definition, callback_uri(definition), state_value
            )
        except ProviderError as exc:
            with current_portal.store.session() as db:
                attempt = db.get(ConnectAttempt, claims.attempt_id)
            assert attempt is not None
            return _fail(attempt, definition, exc.code, exc.message, 502)

    bound: list[str] = session.get(_FORM_SESSION_KEY, [])
    with current_portal.store.read() as db:
        attempt = db.get(ConnectAttempt, claims.attempt_id)
    if attempt is None:
        if request.method != "GET":
            raise InvalidConnectAttempt("Open the connect link first.")
        _start_attempt(claims, definition, None, return_to)
        session[_FORM_SESSION_KEY] = [*bound[-4:], claims.attempt_id]
        with current_portal.store.session() as db:
            attempt = db.get(ConnectAttempt, claims.attempt_id)
        assert attempt is not None
    elif attempt.status != "started" or claims.attempt_id not in bound:
        raise InvalidConnectAttempt(
            "This connect link was already used. Close this window and try again.",
            code="ticket_used",
        )
    if _expired(attempt):
        return _fail(attempt, definition, "expired", "This connect link has expired.", 400)

    form = _form_for(definition)
    error = None
    if request.method == "POST" and form.validate_on_submit():
        if definition.api_key is not None:
            credentials = {"type": "api_key", "api_key": form.data["api_key"].strip()}
        else:
            credentials = {
                "type": "basic",
                "username": form.data["username"],
                "password": form.data["password"],
            }
        try:
            fetch_identity(
                definition, credentials, float(current_portal.config["PORTAL_HTTP_TIMEOUT"])
            )
        except ProviderError as exc:
            error = exc.message
        else:
            if not _claim(attempt.id):
                raise InvalidConnectAttempt(
                    "This connect link was already used.", code="ticket_used"
                )
            return _finish(attempt, definition, credentials, [])
    return render_template(
        "portal/connect_form.html",
        app=app_summary(definition, 0),
        form=form,
        error=error,
        form_action=url_for(
            "portal.connect",
            app=definition.slug,
            ticket=request.values.get("ticket"),
            return_to=return_to,
        ),
        **page_context("connect-form"),
    ), (400 if request.method == "POST" else 200)


def oauth_callback(app: str) -> Any:
    """``GET /oauth/<app>/callback``: the app's redirect URI (RFC 6749 §4.1.2)."""
    definition = current_portal.catalog.get(app)
    if definition is None or definition.oauth2 is None or not definition.usable:
        raise ResourceNotFound(f"There is no OAuth app called “{app}”.")
    state_value = request.args.get("state")
    if not state_value or len(state_value) > 512:
        raise InvalidConnectAttempt("The sign-in response has no state.", code="invalid_state")
    with current_portal.store.read() as db:
        attempt = db.scalars(
            select(ConnectAttempt).where(ConnectAttempt.state_hash == _hash_state(state_value))
        ).first()
    if attempt is None:
        raise InvalidConnectAttempt(
            "The sign-in response does not match any connect attempt.", code="invalid_state"
        )
    if attempt.app != definition.slug:
        raise InvalidConnectAttempt(
            "The sign-in response was sent to the wrong app.", code="invalid_state"
        )
    if attempt.status != "started":
        raise InvalidConnectAttempt("This sign-in response was already used.", code="invalid_state")
    if not current_portal.oauth.has_state(definition, state_value):
        raise InvalidConnectAttempt(
            "This sign-in was started in another browser or its session was lost. "
            "Start again from the app.",
            code="invalid_state",
        )
    if _expired(attempt):
        _set_status(attempt.id, "failed", error_code="expired", error_message="expired")
        raise InvalidConnectAttempt("This sign-in took too long. Start again.", code="expired")
    iss = request.args.get("iss")
    try:
        expected_issuer = current_portal.oauth.expected_issuer(definition)
    except ProviderError as exc:
        return _fail(attempt, definition, exc.code, exc.message, 502)
    if iss is not None and expected_issuer is not None and iss != expected_issuer:
        _set_status(attempt.id, "failed", error_code="invalid_issuer", error_message="iss mismatch")
        raise InvalidConnectAttempt(
            "The sign-in response came from an unexpected issuer.", code="invalid_issuer"
        )
    if error := request.args.get("error"):
        description = request.args.get("error_description") or {
            "access_denied": f"Access to {definition.title} was denied.",
        }.get(error, f"{definition.title} reported an error.")
        return _fail(attempt, definition, error[:64], description[:500], 400)
    if not _claim(attempt.id):
        raise InvalidConnectAttempt("This sign-in response was already used.", code="invalid_state")
    try:
        token = current_portal.oauth.exchange_code(definition)
    except ProviderError as exc:
        return _fail(attempt, definition, exc.code, exc.message, 502)
    credentials: dict[str, Any] = {
        "type": "oauth2",
        **{
            k: token[k]
            for k in ("access_token", "refresh_token", "token_type", "expires_at", "scope")
            if k in token
        },
    }
    if "expires_at" not in credentials and (expiry := token_expiry(token)) is not None:
        credentials["expires_at"] = int(expiry.timestamp())
    return _finish(attempt, definition, credentials, granted_scopes(definition, token))


def register(bp: Blueprint) -> None:
    """Add the connect-flow routes to ``bp``."""
    bp.add_url_rule("/connect/<app>", "connect", connect, methods=["GET", "POST"])
    bp.add_url_rule("/oauth/<app>/callback", "oauth_callback", oauth_callback)
