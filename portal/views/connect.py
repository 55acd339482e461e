"""The connect flow in the popup: ticket -> provider -> callback -> result page.

Order of checks at the callback (RFC 6749 §10.12, RFC 9700 §4.7, RFC 9207 §2.4): ``state`` must
name a started, unexpired attempt *of this app*, and this browser must hold its Authlib state
data; ``iss`` must match the app's issuer; only then is the attempt claimed (atomically, so a
replayed code or state never reaches the token endpoint twice) and the code exchanged.

Apps with ``account_fields`` ask for them first: in the same form as the API key, Basic or
client-credentials fields, or, for OAuth apps, in a form step before the redirect to the
provider. Values are validated strictly (:func:`portal.catalog.validate_field_value`); an
invalid one re-renders the form with a 400 and nothing is stored or sent. For OAuth apps the
values travel with the attempt's Authlib state data, so the callback exchanges the code at the
host the user authorised at; the token response's own fields (``token_response.fields``) are
validated before use. The values are stored inside the account's sealed credentials
(``account_fields``).
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
from wtforms import Field, PasswordField, SelectField, StringField, ValidationError
from wtforms.validators import DataRequired, Length

from .. import accounts as account_service
from .. import signals, webhooks
from ..auth import TicketClaims, origin_of_url
from ..catalog import (
    AccountField,
    App,
    BasicSettings,
    CatalogError,
    InvalidAccountField,
    redirect_uri,
    validate_field_value,
)
from ..connect_errors import failure_message, portal_error_message, provider_error_message
from ..errors import InvalidConnectAttempt, ProviderError, ResourceNotFound
from ..extension import current_portal
from ..identity import fetch_identity, lookup_identity
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
    return redirect_uri(current_portal, app.slug)


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
        project=claims.project or current_portal.mounted_project,
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

#: The one query parameter redirect mode adds to ``return_to``: the attempt's id.
RETURN_ATTEMPT_PARAM = "portal_attempt"


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
        # Redirect mode: back to the host page. Not a 303: the navigation that reaches the
        # callback began as a form POST on the provider's consent page, and browsers apply that
        # page's CSP `form-action` to every redirect that follows it, which blocks a redirect to
        # the host's origin. A page of our own that moves on (meta refresh, plus a link) starts
        # a fresh navigation instead. The query carries the attempt's id only, never the
        # outcome: anyone can put values in a host page's URL, so portal.js asks
        # GET /api/v1/connect-attempts/<id> (answered for the attempt's own user only) instead.
        # The id is no credential: the connect URL's ticket already shows it (signed, not
        # encrypted), the host page's script got it with the ticket, and the ticket is spent.
        parts = urlsplit(attempt.return_to)
        kept = [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if k != RETURN_ATTEMPT_PARAM  # a stale one would be read first
        ]
        query = urlencode([*kept, (RETURN_ATTEMPT_PARAM, attempt.id)])
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
    message = portal_error_message(code, app.title, message)
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
    log.info("connect to %s failed: %s", app.slug, code, extra={"app": app.slug, "error": code})
    return _result(attempt, app, error={"type": code, "message": message}, status_code=status_code)


def _finish(
    attempt: ConnectAttempt,
    app: App,
    credentials: dict[str, Any],
    scopes: list[str],
    identity: tuple[str, str] | None = None,
) -> Response | tuple[str, int]:
    """Identity lookup (unless ``identity`` is already known), then account upsert and
    attempt completion in one transaction. ``app`` is resolved for the account."""
    state = current_portal
    timeout = float(state.config["PORTAL_HTTP_TIMEOUT"])
    try:
        external_id, label = identity or fetch_identity(app, credentials, timeout, state.outbound)
    except ProviderError as exc:
        return _fail(attempt, app, exc.code, exc.message, 502)
    try:
        with state.store.session() as db:
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
                expires_at=token_expiry(credentials)
                if credentials.get("type") in ("oauth2", "oauth2_client_credentials")
                else None,
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
                project=attempt.project,
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
    log.info(
        "connect to %s finished: account %s %s",
        app.slug,
        public["id"],
        "created" if created else "reconnected",
        extra={"app": app.slug, "account_id": public["id"]},
    )
    return _result(attempt, app, account=public, payload=payload)


# --------------------------------------------------------------------------- routes


def _credential_fields(app: App) -> dict[str, Any]:
    """The credential fields of ``app``'s connect form, labelled from the catalog: an API
    key; a client id and secret (RFC 6749 §4.4); a Basic (RFC 7617) username and password; none
    for OAuth 2.0 apps (their form is the account-field step before the redirect)."""
    if app.api_key is not None:
        return {
            "api_key": PasswordField(
                app.api_key.key_label,
                validators=[DataRequired(), Length(max=4096)],
                description=app.api_key.key_help or "",
            )
        }
    if app.client_credentials is not None:
        cc = app.client_credentials
        return {
            "client_id": StringField(
                cc.client_id_label, validators=[DataRequired(), Length(max=512)]
            ),
            "client_secret": PasswordField(
                cc.client_secret_label,
                validators=[DataRequired(), Length(max=4096)],
                description=cc.key_help or "",
            ),
        }
    if app.oauth2 is not None:
        return {}
    labels = app.basic or BasicSettings()
    return {
        "username": StringField(
            labels.username_label, validators=[DataRequired(), Length(max=512)]
        ),
        "password": PasswordField(
            labels.password_label, validators=[DataRequired(), Length(max=4096)]
        ),
    }


#: Prefix of the form field carrying account field ``name`` (``account_subdomain``).
ACCOUNT_FIELD_PREFIX = "account_"


class _ValidAccountField:
    """WTForms validator running :func:`validate_field_value`; stores the normalised value."""

    def __init__(self, spec: AccountField) -> None:
        self.spec = spec

    def __call__(self, form: FlaskForm, field: Field) -> None:
        try:
            field.data = validate_field_value(self.spec, field.data)
        except InvalidAccountField as exc:
            raise ValidationError(exc.message) from None


def _choices(pairs: list[tuple[str, str]]) -> list[Any]:
    """``SelectField`` choices: ``SelectChoice`` objects on WTForms 3.3+ (tuples are
    deprecated there), ``(value, label)`` tuples before."""
    try:
        from wtforms.fields.choices import SelectChoice
    except ImportError:  # WTForms < 3.3
        return list(pairs)
    return [SelectChoice(value, label) for value, label in pairs]


def _asked_fields(app: App) -> list[AccountField]:
    """The account fields the end user enters (not those the provider fills: token response,
    authorization response query, identity response)."""
    derived = app.derived_fields
    return [f for f in app.account_fields if f.name not in derived]


def _form_for(app: App) -> FlaskForm:
    """The connect form of ``app``: its account fields first, then its credential fields
    (none for OAuth apps, whose form is the account-field step before the redirect)."""
    attrs: dict[str, Any] = {}
    for spec in _asked_fields(app):
        if spec.format == "enum":
            attrs[ACCOUNT_FIELD_PREFIX + spec.name] = SelectField(
                spec.label,
                choices=_choices([("", "Choose…"), *((v, v) for v in spec.enum)]),
                validators=[_ValidAccountField(spec)],
                description=spec.help or "",
                validate_choice=False,
            )
        else:
            attrs[ACCOUNT_FIELD_PREFIX + spec.name] = StringField(
                spec.label,
                validators=[_ValidAccountField(spec)],
                description=spec.help or "",
                render_kw={
                    "autocomplete": "off",
                    "autocapitalize": "none",
                    "spellcheck": "false",
                    "maxlength": "253",
                },
            )
    # Account fields first (where the account is), then the credentials for it.
    attrs.update(_credential_fields(app))
    form: FlaskForm = type("ConnectForm", (FlaskForm,), attrs)()
    for spec in _asked_fields(app):
        bound = form[ACCOUNT_FIELD_PREFIX + spec.name]
        bound.portal_prefix = spec.prefix or ""
        bound.portal_suffix = spec.suffix or ""
    return form


def _form_fields(app: App, form: FlaskForm) -> dict[str, str]:
    """The validated account field values of a submitted, valid ``form``."""
    return {spec.name: form[ACCOUNT_FIELD_PREFIX + spec.name].data for spec in _asked_fields(app)}


def _refused_client(app: App, exc: ProviderError) -> str:
    if exc.code in ("invalid_client", "unauthorized_client", "invalid_grant", "access_denied"):
        return f"{app.title} did not accept this client ID and secret."
    if exc.code == "invalid_scope":
        return f"This {app.title} client may not use the scopes this app needs."
    return exc.message


def _bound_attempt(claims: TicketClaims, definition: App, return_to: str | None) -> ConnectAttempt:
    """The attempt of a form-based connect (credentials form, or the account-field step of an
    OAuth app), started on the first GET and bound to this browser's session."""
    bound: list[str] = session.get(_FORM_SESSION_KEY, [])
    with current_portal.store.read() as db:
        attempt = db.get(ConnectAttempt, claims.attempt_id)
    if attempt is None:
        if request.method != "GET":
            raise InvalidConnectAttempt("Open the connect link first.")
        _start_attempt(claims, definition, None, return_to)
        log.info("connect to %s started (form)", definition.slug)
        session[_FORM_SESSION_KEY] = [*bound[-4:], claims.attempt_id]
        with current_portal.store.session() as db:
            attempt = db.get(ConnectAttempt, claims.attempt_id)
        assert attempt is not None
    elif (
        attempt.status != "started"
        or attempt.state_hash is not None
        or claims.attempt_id not in bound
    ):
        raise InvalidConnectAttempt(
            "This connect link was already used. Close this window and try again.",
            code="ticket_used",
        )
    return attempt


def _redirect_to_provider(
    attempt_id: str, definition: App, resolved: App, state_value: str, *, via_page: bool = False
) -> Any:
    """The way to the provider's authorization endpoint (RFC 6749 §4.1.1), state and PKCE
    verifier stored first: a 302, or with ``via_page`` (the answer to a form POST) a 200 page
    that moves on by meta refresh and a link. Browsers apply the form page's CSP
    ``form-action`` to redirects after a form submission (CSP Level 3 §6.4.1), and the
    provider's origin may depend on what the user typed, so no allow-list could cover it; a
    meta refresh is a new navigation. The state/PKCE data are already in the session cookie of
    this answer either way. A refused or unreachable provider ends the attempt (result page)."""
    try:
        response = current_portal.oauth.authorize_redirect(
            resolved, callback_uri(definition), state_value
        )
    except ProviderError as exc:
        with current_portal.store.session() as db:
            attempt = db.get(ConnectAttempt, attempt_id)
        assert attempt is not None
        return _fail(attempt, definition, exc.code, exc.message, 502)
    if not via_page:
        return response
    page = render_template(
        "portal/connect_continue.html",
        app=app_summary(definition, 0),
        authorize_url=response.headers["Location"],
        **page_context("connect-continue"),
    )
    return page, 200


def connect(app: str) -> Any:
    """``GET|POST /connect/<app>?ticket=…[&return_to=…]``: start (or submit) one connect attempt.

    OAuth 2.0 apps: 302 to the provider's authorization endpoint with ``state`` and a PKCE S256
    challenge; after a form step for their account fields (if any), the POST answers 200 with a
    page that moves on to it (see :func:`_redirect_to_provider`). API-key, basic and client
    credentials apps: a Flask-WTF form (account fields included), checked by a token request
    (client credentials) and an identity lookup.
    """
    definition = _app_or_404(app)
    claims = current_portal.tokens.read_ticket(request.values.get("ticket"), definition.slug)
    _check_ticket_user(claims)
    return_to = safe_return_to(request.values.get("return_to"))

    if definition.oauth2 is not None and not _asked_fields(definition):
        if request.method != "GET":
            raise InvalidConnectAttempt("OAuth apps are connected with GET.")
        state_value = secrets.token_urlsafe(32)
        _start_attempt(claims, definition, _hash_state(state_value), return_to)
        log.info("connect to %s started (OAuth 2.0)", definition.slug)
        return _redirect_to_provider(claims.attempt_id, definition, definition, state_value)

    attempt = _bound_attempt(claims, definition, return_to)
    if _expired(attempt):
        return _fail(attempt, definition, "expired", "This connect link has expired.", 400)

    form = _form_for(definition)
    error = None
    timeout = float(current_portal.config["PORTAL_HTTP_TIMEOUT"])
    if request.method == "POST" and form.validate_on_submit():
        fields = _form_fields(definition, form)
        try:
            resolved = definition.resolve(fields)
        except CatalogError as exc:  # cannot happen with validated values; refuse anyway
            raise InvalidConnectAttempt("These account details cannot be used.") from exc
        if definition.oauth2 is not None:
            state_value = secrets.token_urlsafe(32)
            with current_portal.store.session() as db:
                claimed = db.execute(
                    update(ConnectAttempt)
                    .where(
                        ConnectAttempt.id == attempt.id,
                        ConnectAttempt.status == "started",
                        ConnectAttempt.state_hash.is_(None),
                    )
                    .values(state_hash=_hash_state(state_value), updated_at=utcnow())
                ).rowcount  # type: ignore[attr-defined]
            if not claimed:
                raise InvalidConnectAttempt(
                    "This connect link was already used.", code="ticket_used"
                )
            return _redirect_to_provider(
                attempt.id, definition, resolved, state_value, via_page=True
            )
        credentials: dict[str, Any]
        scopes: list[str] = []
        if definition.api_key is not None:
            credentials = {"type": "api_key", "api_key": form.data["api_key"].strip()}
        elif definition.client_credentials is not None:
            client_id = form.data["client_id"].strip()
            client_secret = form.data["client_secret"].strip()
            try:
                token = current_portal.oauth.client_credentials_grant(
                    resolved, client_id, client_secret
                )
            except ProviderError as exc:
                if exc.code == "upstream_refused":
                    return _fail(attempt, definition, exc.code, exc.message, 403)
                error = _refused_client(definition, exc)
                credentials = {}
            else:
                credentials = {
                    "type": "oauth2_client_credentials",
                    "client_id": client_id,
                    "client_secret": client_secret,
                    **token,
                }
                scopes = granted_scopes(definition, token)
        else:
            credentials = {
                "type": "basic",
                "username": form.data["username"],
                "password": form.data["password"],
            }
        if fields:
            credentials["account_fields"] = fields
        if error is None:
            try:
                external_id, label, found = lookup_identity(
                    resolved, credentials, timeout, current_portal.outbound
                )
                if found:  # identity.fields (validated), for API-key / Basic apps too
                    fields = {**fields, **found}
                    credentials["account_fields"] = fields
                    resolved = resolved.resolve(fields)
                identity = (external_id, label)
            except ProviderError as exc:
                if exc.code == "upstream_refused":  # the attempt ends: nothing was sent
                    return _fail(attempt, definition, exc.code, exc.message, 403)
                error = exc.message
            except CatalogError:
                error = f"{definition.title} sent account details that cannot be used."
            else:
                if not _claim(attempt.id):
                    raise InvalidConnectAttempt(
                        "This connect link was already used.", code="ticket_used"
                    )
                return _finish(attempt, resolved, credentials, scopes, identity)
    oauth_step = definition.oauth2 is not None
    return render_template(
        "portal/connect_form.html",
        app=app_summary(definition, 0),
        form=form,
        error=error,
        submit_label="Continue" if oauth_step else "Connect",
        oauth_step=oauth_step,
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
        message = failure_message("expired", definition.title)
        _set_status(attempt.id, "failed", error_code="expired", error_message=message)
        raise InvalidConnectAttempt(message, code="expired")
    # The account field values this attempt was started with, re-checked before use.
    try:
        fields = {
            spec.name: validate_field_value(
                spec, current_portal.oauth.state_fields(definition, state_value).get(spec.name)
            )
            for spec in _asked_fields(definition)
        }
        resolved = definition.resolve(fields)
    except (InvalidAccountField, CatalogError):
        _set_status(
            attempt.id,
            "failed",
            error_code="invalid_request",
            error_message=failure_message("invalid_request", definition.title),
        )
        raise InvalidConnectAttempt(
            "The account details of this sign-in are missing. Start again.",
            code="invalid_state",
        ) from None
    iss = request.args.get("iss")
    try:
        expected_issuer = current_portal.oauth.expected_issuer(resolved)
        issuer_required = current_portal.oauth.issuer_required(resolved)
    except ProviderError as exc:
        return _fail(attempt, definition, exc.code, exc.message, 502)
    if iss is None and issuer_required:
        # RFC 9207 §2.4: the provider's metadata promises `iss` on every response, so one
        # without it may come from another authorization server (mix-up attack).
        return _fail(
            attempt,
            definition,
            "invalid_issuer",
            f"The sign-in response does not say it came from {definition.title}. Start again.",
            400,
        )
    if iss is not None and expected_issuer is not None and iss != expected_issuer:
        message = failure_message("invalid_issuer", definition.title)
        _set_status(attempt.id, "failed", error_code="invalid_issuer", error_message=message)
        raise InvalidConnectAttempt(message, code="invalid_issuer")
    if error := request.args.get("error"):
        message = provider_error_message(
            error[:64], definition.title, request.args.get("error_description")
        )
        return _fail(attempt, definition, error[:64], message, 400)
    # Account fields the provider reports on the redirect (QuickBooks' realmId), validated by
    # their declared format before anything uses them.
    try:
        for name, param in definition.callback_fields.items():
            spec = next(f for f in definition.account_fields if f.name == name)
            fields[name] = validate_field_value(spec, request.args.get(param))
    except InvalidAccountField:
        return _fail(
            attempt,
            definition,
            "invalid_request",
            f"{definition.title} did not say which account was connected.",
            400,
        )
    if not _claim(attempt.id):
        raise InvalidConnectAttempt("This sign-in response was already used.", code="invalid_state")
    try:
        resolved = resolved.resolve(fields)
        token = current_portal.oauth.exchange_code(resolved)
        # Values the token response fills (e.g. Salesforce's instance_url), validated by
        # read_token, join the account fields; the API and identity URLs then use them.
        fields = {**fields, **token.pop("fields", {})}
        resolved = resolved.resolve(fields)
    except ProviderError as exc:
        # A nonce that is not this attempt's is a forged or injected response, not a provider
        # fault: 400, like a bad state (OpenID Connect Core §3.1.3.7, RFC 9700 §4.5).
        return _fail(
            attempt, definition, exc.code, exc.message, 400 if exc.code == "invalid_nonce" else 502
        )
    except CatalogError:
        return _fail(
            attempt,
            definition,
            "invalid_response",
            f"{definition.title} sent account details that cannot be used.",
            502,
        )
    credentials: dict[str, Any] = {
        "type": "oauth2",
        **{
            k: token[k]
            for k in ("access_token", "refresh_token", "token_type", "expires_at", "scope")
            if k in token
        },
    }
    identity: tuple[str, str] | None = None
    if definition.identity_fields:
        # Values the identity response fills (Mailchimp's dc, Xero's tenantId), validated by
        # lookup_identity, join the account fields before the API URL and headers use them.
        try:
            external_id, label, found = lookup_identity(
                resolved,
                credentials,
                float(current_portal.config["PORTAL_HTTP_TIMEOUT"]),
                current_portal.outbound,
            )
            fields = {**fields, **found}
            resolved = resolved.resolve(fields)
        except ProviderError as exc:
            return _fail(attempt, definition, exc.code, exc.message, 502)
        except CatalogError:
            return _fail(
                attempt,
                definition,
                "invalid_response",
                f"{definition.title} sent account details that cannot be used.",
                502,
            )
        identity = (external_id, label)
    if resolved.placeholders or set(definition.identity_fields) - set(fields):
        return _fail(
            attempt,
            definition,
            "invalid_response",
            f"{definition.title} did not send every account detail this app needs.",
            502,
        )
    if fields:
        credentials["account_fields"] = fields
    return _finish(attempt, resolved, credentials, granted_scopes(definition, token), identity)


def register(bp: Blueprint) -> None:
    """Add the connect-flow routes to ``bp``."""
    bp.add_url_rule("/connect/<app>", "connect", connect, methods=["GET", "POST"])
    bp.add_url_rule("/oauth/<app>/callback", "oauth_callback", oauth_callback)
