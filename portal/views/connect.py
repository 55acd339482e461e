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

import logging
import secrets
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm

from .. import attempts, connect_links
from ..attempts import AttemptFailed, CredentialsRefused
from ..auth import TicketClaims, origin_of_url
from ..catalog import (
    App,
    InvalidAccountField,
    redirect_uri,
    validate_field_value,
)
from ..connect_errors import failure_message, provider_error_message
from ..errors import CatalogError, InvalidConnectAttempt, ProviderError, ResourceNotFound
from ..i18n import N_, SESSION_KEY, requested_language
from ..state import current_portal
from ..store import ConnectAttempt
from .common import app_ref, app_summary, own_origin, page_context, use_theme
from .connect_form import asked_fields, form_fields, form_for

log = logging.getLogger("portal.connect")

_FORM_SESSION_KEY = "_portal_form_attempts"
#: Flask-session key of the marketplace connect link this browser opened (its id only).
LINK_SESSION_KEY = "_portal_link"


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
            raise InvalidConnectAttempt(N_("This connect link belongs to another user."))


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
) -> tuple[str, int]:
    connected = error is None
    return_to = attempt.return_to
    hosted = False
    if not connected:
        # A hosted connect link's failure goes to its errorUrl; without one, to this result
        # page (no opener to close back to), never to its successUrl as if it had worked.
        hosted, error_url = connect_links.error_url(current_portal, attempt.id)
        if hosted:
            return_to = error_url
    if return_to:
        # Redirect mode: back to the host page. Not a 303: the navigation that reaches the
        # callback began as a form POST on the provider's consent page, and browsers apply that
        # page's CSP `form-action` to every redirect that follows it, which blocks a redirect to
        # the host's origin. A page of our own that moves on (meta refresh, plus a link) starts
        # a fresh navigation instead. The query carries the attempt's id only, never the
        # outcome: anyone can put values in a host page's URL, so portal.js asks
        # GET /api/v1/connect-attempts/<id> (answered for the attempt's own user only) instead.
        # The id is no credential: the connect URL's ticket already shows it (signed, not
        # encrypted), the host page's script got it with the ticket, and the ticket is spent.
        parts = urlsplit(return_to)
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
        hosted=hosted,
        result_json={"targetOrigin": attempt.opener_origin, "message": message},
        **page_context("connect-done"),
    )
    return page, status_code


def _fail(
    attempt: ConnectAttempt, app: App, code: str, message: str, status_code: int
) -> tuple[str, int]:
    """End ``attempt`` as failed (:func:`portal.attempts.fail`) and render its result page."""
    message = attempts.fail(current_portal, attempt, app, code, message)
    return _result(attempt, app, error={"type": code, "message": message}, status_code=status_code)


def _finish(
    attempt: ConnectAttempt,
    app: App,
    credentials: dict[str, Any],
    scopes: list[str],
    identity: tuple[str, str] | None = None,
) -> tuple[str, int]:
    """Store the account (:func:`portal.attempts.finish`) and render the result page; a
    failure there ends the attempt. ``app`` is resolved for the account."""
    try:
        connected = attempts.finish(
            current_portal, attempt, app, credentials, scopes, app_ref(app), identity
        )
    except AttemptFailed as exc:
        return _fail(attempt, app, exc.code, exc.message, exc.status_code)
    return _result(attempt, app, account=connected.account, payload=connected.payload)


# --------------------------------------------------------------------------- routes


def _bound_attempt(claims: TicketClaims, definition: App, return_to: str | None) -> ConnectAttempt:
    """The attempt of a form-based connect (credentials form, or the account-field step of an
    OAuth app), started on the first GET and bound to this browser's session."""
    bound: list[str] = session.get(_FORM_SESSION_KEY, [])
    attempt = attempts.get(current_portal, claims.attempt_id)
    if attempt is None:
        if request.method != "GET":
            raise InvalidConnectAttempt(N_("Open the connect link first."))
        attempts.start(current_portal, claims, definition.slug, None, return_to)
        log.info("connect to %s started (form)", definition.slug)
        session[_FORM_SESSION_KEY] = [*bound[-4:], claims.attempt_id]
        attempt = attempts.get(current_portal, claims.attempt_id)
        assert attempt is not None
    elif (
        attempt.status != "started"
        or attempt.state_hash is not None
        or claims.attempt_id not in bound
    ):
        raise InvalidConnectAttempt(
            N_("This connect link was already used. Close this window and try again."),
            code="ticket_used",
        )
    return attempt


def _redirect_to_provider(
    attempt_id: str,
    definition: App,
    resolved: App,
    state_value: str,
    *,
    via_page: bool = False,
    scopes: Sequence[str] = (),
) -> ResponseReturnValue:
    """The way to the provider's authorization endpoint (RFC 6749 §4.1.1), state and PKCE
    verifier stored first: a 302, or with ``via_page`` (the answer to a form POST) a 200 page
    that moves on by meta refresh and a link. Browsers apply the form page's CSP
    ``form-action`` to redirects after a form submission (CSP Level 3 §6.4.1), and the
    provider's origin may depend on what the user typed, so no allow-list could cover it; a
    meta refresh is a new navigation. The state/PKCE data are already in the session cookie of
    this answer either way. ``scopes`` are the attempt's extra scopes. A refused or
    unreachable provider ends the attempt (result page)."""
    try:
        response = current_portal.oauth.authorize_redirect(
            resolved, callback_uri(definition), state_value, scopes
        )
    except ProviderError as exc:
        attempt = attempts.get(current_portal, attempt_id)
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


def connect(app: str) -> ResponseReturnValue:
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
    use_theme(claims.theme)
    return_to = safe_return_to(request.values.get("return_to"))
    lang = requested_language()
    if lang:  # the popup's later pages (after the provider's redirect too) speak it
        session[SESSION_KEY] = lang

    if definition.oauth2 is not None and not asked_fields(definition):
        if request.method != "GET":
            raise InvalidConnectAttempt(N_("OAuth apps are connected with GET."))
        state_value = secrets.token_urlsafe(32)
        attempts.start(
            current_portal, claims, definition.slug, attempts.hash_state(state_value), return_to
        )
        log.info("connect to %s started (OAuth 2.0)", definition.slug)
        return _redirect_to_provider(
            claims.attempt_id, definition, definition, state_value, scopes=claims.scopes
        )

    attempt = _bound_attempt(claims, definition, return_to)
    if attempts.expired(current_portal, attempt):
        return _fail(attempt, definition, "expired", N_("This connect link has expired."), 400)

    form = form_for(definition)
    error = None
    if request.method == "POST" and form.validate_on_submit():
        try:
            return _submit(attempt, definition, form)
        except AttemptFailed as exc:
            return _fail(attempt, definition, exc.code, exc.message, exc.status_code)
        except CredentialsRefused as exc:
            error = exc.message
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
            lang=lang,
        ),
        **page_context("connect-form"),
    ), (400 if request.method == "POST" else 200)


def _submit(attempt: ConnectAttempt, definition: App, form: FlaskForm) -> ResponseReturnValue:
    """A valid connect form: OAuth apps go on to the provider with the account fields; the
    others are checked (token request, identity lookup) and connected.

    :raises AttemptFailed: the provider refused outright (``upstream_refused``, 403).
    :raises CredentialsRefused: the provider refused these credentials (the form is shown
        again).
    :raises InvalidConnectAttempt: the attempt was already used (replay).
    """
    fields = form_fields(definition, form)
    try:
        resolved = definition.resolve(fields)
    except CatalogError as exc:  # cannot happen with validated values; refuse anyway
        raise InvalidConnectAttempt(N_("These account details cannot be used.")) from exc
    if definition.oauth2 is not None:
        state_value = secrets.token_urlsafe(32)
        if not attempts.bind_state(current_portal, attempt.id, state_value):
            raise InvalidConnectAttempt(N_("This connect link was already used."), code="ticket_used")
        return _redirect_to_provider(
            attempt.id,
            definition,
            resolved,
            state_value,
            via_page=True,
            scopes=attempt.scopes or (),
        )
    checked = attempts.check_credentials(current_portal, definition, resolved, form.data, fields)
    if not attempts.claim(current_portal, attempt.id):
        raise InvalidConnectAttempt(N_("This connect link was already used."), code="ticket_used")
    return _finish(attempt, checked.resolved, checked.credentials, checked.scopes, checked.identity)


def oauth_callback(app: str) -> ResponseReturnValue:
    """``GET /oauth/<app>/callback``: the app's redirect URI (RFC 6749 §4.1.2).

    The attempt is found and checked (:func:`_callback_attempt`), its account fields re-read
    (:func:`_callback_fields`), the response's issuer and error checked, the attempt claimed,
    and the code exchanged (:func:`portal.attempts.exchange`); then the account is stored.
    """
    definition = current_portal.catalog.get(app)
    if definition is None or definition.oauth2 is None or not definition.usable:
        raise ResourceNotFound(f"There is no OAuth app called “{app}”.")
    state_value = request.args.get("state")
    if not state_value or len(state_value) > 512:
        raise InvalidConnectAttempt(N_("The sign-in response has no state."), code="invalid_state")
    attempt = _callback_attempt(definition, state_value)
    fields, resolved = _callback_fields(attempt, definition, state_value)
    try:
        _check_response(attempt, definition, resolved)
        fields.update(_redirect_fields(definition))
        if not attempts.claim(current_portal, attempt.id):
            raise InvalidConnectAttempt(
                N_("This sign-in response was already used."), code="invalid_state"
            )
        done = attempts.exchange(current_portal, definition, resolved, fields, attempt.scopes or ())
    except AttemptFailed as exc:
        return _fail(attempt, definition, exc.code, exc.message, exc.status_code)
    if done.fields:
        done.credentials["account_fields"] = done.fields
    return _finish(attempt, done.resolved, done.credentials, done.scopes, done.identity)


def _callback_attempt(definition: App, state_value: str) -> ConnectAttempt:
    """The ``started``, unexpired attempt of ``definition`` that ``state_value`` was issued to,
    started in this browser (its Authlib state data are in this session; RFC 6749 §10.12).

    :raises InvalidConnectAttempt: ``invalid_state`` (no such attempt, another app's, used, or
        another browser's) or ``expired`` (the attempt is then ``failed``).
    """
    attempt = attempts.for_state(current_portal, state_value)
    if attempt is None:
        raise InvalidConnectAttempt(
            N_("The sign-in response does not match any connect attempt."), code="invalid_state"
        )
    if attempt.app != definition.slug:
        raise InvalidConnectAttempt(
            N_("The sign-in response was sent to the wrong app."), code="invalid_state"
        )
    if attempt.status != "started":
        raise InvalidConnectAttempt(
            N_("This sign-in response was already used."), code="invalid_state"
        )
    if not current_portal.oauth.has_state(definition, state_value):
        raise InvalidConnectAttempt(
            N_(
                "This sign-in was started in another browser or its session was lost. "
                "Start again from the app."
            ),
            code="invalid_state",
        )
    if attempts.expired(current_portal, attempt):
        message = failure_message("expired", definition.title)
        attempts.mark_failed(current_portal, attempt.id, "expired", message)
        raise InvalidConnectAttempt(message, code="expired")
    return attempt


def _callback_fields(
    attempt: ConnectAttempt, definition: App, state_value: str
) -> tuple[dict[str, str], App]:
    """The account field values this attempt was started with (kept in its Authlib state
    data), re-checked before use, and ``definition`` resolved with them.

    :raises InvalidConnectAttempt: ``invalid_state``, a value is missing or invalid (the
        attempt is then ``failed``).
    """
    try:
        fields = {
            spec.name: validate_field_value(
                spec, current_portal.oauth.state_fields(definition, state_value).get(spec.name)
            )
            for spec in asked_fields(definition)
        }
        return fields, definition.resolve(fields)
    except (InvalidAccountField, CatalogError):
        attempts.mark_failed(
            current_portal,
            attempt.id,
            "invalid_request",
            failure_message("invalid_request", definition.title),
        )
        raise InvalidConnectAttempt(
            N_("The account details of this sign-in are missing. Start again."),
            code="invalid_state",
        ) from None


def _check_response(attempt: ConnectAttempt, definition: App, resolved: App) -> None:
    """The authorization response's ``iss`` (RFC 9207 §2.4) and ``error`` (RFC 6749 §4.1.2.1).

    :raises AttemptFailed: no ``iss`` where the provider promises one, the issuer metadata
        could not be read, or the provider answered an error.
    :raises InvalidConnectAttempt: ``invalid_issuer``, ``iss`` names another issuer (the
        attempt is then ``failed``).
    """
    iss = request.args.get("iss")
    try:
        expected_issuer = current_portal.oauth.expected_issuer(resolved)
        issuer_required = current_portal.oauth.issuer_required(resolved)
    except ProviderError as exc:
        raise AttemptFailed(exc.code, exc.message, 502) from exc
    if iss is None and issuer_required:
        # RFC 9207 §2.4: the provider's metadata promises `iss` on every response, so one
        # without it may come from another authorization server (mix-up attack).
        raise AttemptFailed(
            "invalid_issuer",
            f"The sign-in response does not say it came from {definition.title}. Start again.",
            400,
        )
    if iss is not None and expected_issuer is not None and iss != expected_issuer:
        message = failure_message("invalid_issuer", definition.title)
        attempts.mark_failed(current_portal, attempt.id, "invalid_issuer", message)
        raise InvalidConnectAttempt(message, code="invalid_issuer")
    if error := request.args.get("error"):
        message = provider_error_message(
            error[:64], definition.title, request.args.get("error_description")
        )
        raise AttemptFailed(error[:64], message, 400)


def _redirect_fields(definition: App) -> dict[str, str]:
    """Account fields the provider reports on the redirect (QuickBooks' realmId), validated by
    their declared format before anything uses them.

    :raises AttemptFailed: ``invalid_request``, one is missing or invalid.
    """
    fields: dict[str, str] = {}
    try:
        for name, param in definition.callback_fields.items():
            spec = next(f for f in definition.account_fields if f.name == name)
            fields[name] = validate_field_value(spec, request.args.get(param))
    except InvalidAccountField as exc:
        raise AttemptFailed(
            "invalid_request", f"{definition.title} did not say which account was connected.", 400
        ) from exc
    return fields


def connect_link() -> ResponseReturnValue:
    """``GET /link?token=…``: a hosted connect link (:mod:`portal.connect_links`), opened
    from an e-mail, SMS or chat with no host page. Spends the link and goes on (302) to the
    connect flow of its app (asking for the link's extra scopes) on the portal's own origin, in
    redirect mode towards its ``successUrl`` when it has one; a link without an app goes to the
    hosted marketplace (:func:`portal.views.links.link_apps`). A used, revoked, expired or
    unknown link is a page that says so (400)."""
    link = connect_links.peek(current_portal, request.args.get("token"))
    if link.app is None:
        connect_links.spend(current_portal, link.id, None)
        log.info("connect link %s opened (marketplace)", link.id)
        session[LINK_SESSION_KEY] = link.id
        return redirect(url_for("portal.link_apps"), 303)
    definition = _app_or_404(link.app)
    own = own_origin()
    ticket, attempt_id, _ = current_portal.tokens.issue_ticket(
        link.user_id, definition.slug, own, own, project=link.project, scopes=link.scopes
    )
    connect_links.spend(current_portal, link.id, attempt_id)
    log.info("connect link %s opened for %s", link.id, definition.slug)
    target = url_for(
        "portal.connect", app=definition.slug, ticket=ticket, return_to=link.success_url
    )
    return redirect(target, 302)


def register(bp: Blueprint) -> None:
    """Add the connect-flow routes to ``bp``."""
    bp.add_url_rule("/link", "connect_link", connect_link)
    bp.add_url_rule("/connect/<app>", "connect", connect, methods=["GET", "POST"])
    bp.add_url_rule("/oauth/<app>/callback", "oauth_callback", oauth_callback)
