"""OAuth 2.0 client side of the connect flow, one Authlib client per catalog app.

* Authorization code grant with PKCE S256 (RFC 6749 §4.1, RFC 7636 §4.2): Authlib generates a
  fresh 64-character verifier per authorization request and keeps it, with the ``state``, in the
  popup's first-party Flask session (so a state finished in another browser has no verifier).
* ``redirect_uri`` is ``PORTAL_BASE_URL`` + the app's own callback path, one per app
  (RFC 9700 §4.4 mix-up defence), never built from request headers. Apps with
  ``auth.custom_redirect_uri`` (eBay's RuName) send the host's ``redirect_uri_value`` instead,
  in the authorization and the token request alike; the provider still redirects back to the
  callback, which the host registered under that name.
* A refresh goes to ``auth.refresh_url`` when the app has a separate refresh endpoint
  (Figma, Adobe Acrobat Sign), else to the token endpoint.
* Authorization-response ``iss`` is checked against the app's issuer (RFC 9207 §2.4).
* Apps that request ``openid`` send a fresh ``nonce`` and check the ``id_token`` against the
  provider's keys (``auth.jwks_uri``, or the discovery document's), OpenID Connect Core 1.0
  §3.1.2.1 and §3.1.3.7: its ``nonce`` must be the one this browser's attempt sent. That is
  what refuses an injected authorization code (RFC 9700 §4.5.3) on an app whose provider
  rejects PKCE; a mismatch is ``ProviderError("invalid_nonce")``, any other bad ``id_token``
  ``invalid_id_token``.
* Revocation per RFC 7009.
* Client credentials grant (RFC 6749 §4.4) with the end user's own client id and secret.

Provider quirks are catalog data and honoured on every request they concern: ``scopes`` joined
with ``scope_separator`` and ``authorize_params`` in the authorization URL; ``token_params`` and
``token_endpoint_auth_method`` on the code exchange, every refresh and the client credentials
grant (the method also on revocation); ``token_response`` paths when reading any token
response (:func:`read_token`).

Apps with account fields (``{subdomain}`` in their URLs) get an Authlib client per connect
attempt, built from the App resolved with that attempt's values; the values travel in the
popup's Authlib state data (first-party, signed session) so the callback exchanges the code at
the same host the user authorised at.

Apps whose host the end user chose (a ``hostname`` account field) get every session — Authlib's
own (authorization URL, server metadata, code exchange) and the ones built here (refresh,
client credentials, revocation) — with :class:`~portal.outbound.PinnedAdapter` mounted: each
request's host is resolved once, refused when not public (``upstream_refused``), and connected
to at the checked address.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import FlaskOAuth2App
from authlib.integrations.flask_client.integration import FlaskIntegration
from authlib.integrations.requests_client import OAuth2Session
from flask import redirect
from flask import session as flask_session
from joserfc.errors import ClaimError, JoseError
from werkzeug.wrappers import Response

from .catalog import (
    App,
    Catalog,
    InvalidAccountField,
    Revocation,
    dotted,
    requested_scopes,
    validate_token_field,
)
from .errors import InvalidRequest, ProviderError
from .outbound import HostRefused, Outbound, refused_message, user_chosen

log = logging.getLogger(__name__)


class OAuthClients:
    """Authlib clients for the catalog's OAuth 2.0 apps.

    :param catalog: the loaded catalog; apps that are not usable (no client id) get no client.
    :param timeout: timeout of every provider request, in seconds.
    :param outbound: the policy for end-user-chosen hosts (default: public addresses only).
    """

    def __init__(self, catalog: Catalog, timeout: float, outbound: Outbound | None = None) -> None:
        self.timeout = timeout
        self.outbound = outbound or Outbound()
        self._clients: dict[str, FlaskOAuth2App] = {}
        for app in catalog:
            if app.oauth2 is not None and app.usable and not _oauth_placeholders(app):
                self._clients[app.slug] = self._build(app)

    def _build(self, app: App) -> FlaskOAuth2App:
        settings = app.oauth2
        assert settings is not None
        client_kwargs: dict[str, Any] = {
            "scope": settings.scope_separator.join(settings.scopes) or None,
            "token_endpoint_auth_method": settings.token_endpoint_auth_method,
            "default_timeout": self.timeout,
        }
        if settings.pkce:
            client_kwargs["code_challenge_method"] = "S256"
        # Authlib keeps extra keyword arguments as server metadata: the id_token keys, without
        # fetching a discovery document.
        metadata = {"jwks_uri": settings.jwks_uri} if settings.jwks_uri else {}
        client = FlaskOAuth2App(
            FlaskIntegration(app.slug),
            name=app.slug,
            client_id=app.client.client_id,
            client_secret=app.client.client_secret,
            authorize_url=settings.authorize_url,
            access_token_url=settings.token_url,
            access_token_params=dict(settings.token_params) or None,
            authorize_params=dict(settings.authorize_params) or None,
            server_metadata_url=settings.server_metadata_url,
            client_kwargs=client_kwargs,
            **metadata,
        )
        if user_chosen(app):
            # Authlib builds every session it uses (metadata, token) with ``client_cls``.
            outbound = self.outbound

            def pinned_session(*args: Any, **kwargs: Any) -> OAuth2Session:
                return outbound.mount(OAuth2Session(*args, **kwargs))

            client.client_cls = pinned_session
        return client

    def _session(
        self, app: App, client_id: str | None, client_secret: str | None, **kwargs: Any
    ) -> OAuth2Session:
        """An Authlib session for the portal's own token calls (refresh, client credentials,
        revocation) with this client and the portal's timeout, pinned (:meth:`Outbound.mount`)
        when ``app``'s host is end-user-chosen. ``kwargs`` go to :class:`OAuth2Session`."""
        session = OAuth2Session(
            client_id=client_id,
            client_secret=client_secret,
            default_timeout=self.timeout,
            **kwargs,
        )
        if user_chosen(app):
            self.outbound.mount(session)
        return session

    def client(self, slug: str) -> FlaskOAuth2App:
        """The Authlib client of ``slug`` (apps without placeholders in their OAuth URLs).

        :raises KeyError: ``slug`` is not a usable OAuth 2.0 app.
        """
        return self._clients[slug]

    def client_for(self, app: App) -> FlaskOAuth2App:
        """The Authlib client for ``app`` as resolved for one account (:meth:`App.resolve`):
        the shared one when the app's OAuth URLs have no placeholders, else a new one.

        :raises ProviderError: ``unsupported_app`` when the app is not a usable OAuth 2.0 app
            or a placeholder of its OAuth URLs has no value.
        """
        if app.oauth2 is None or not app.usable:
            raise ProviderError("unsupported_app", f"{app.title} has no OAuth client.")
        if not app.resolved_fields and app.slug in self._clients:
            return self._clients[app.slug]
        if _oauth_placeholders(app):
            raise ProviderError(
                "invalid_request", f"{app.title} needs its account details before connecting."
            )
        return self._build(app)

    def authorize_redirect(
        self, app: App, redirect_uri: str, state: str, extra_scopes: Sequence[str] = ()
    ) -> Response:
        """302 to the provider's authorization endpoint, storing state + PKCE verifier (and
        the account field values ``app`` was resolved with) in the Flask session
        (RFC 6749 §4.1.1, RFC 7636 §4.3). ``extra_scopes`` (already checked by
        :func:`extra_scopes`) are asked for on top of the app's ``scopes`` (RFC 6749 §3.3).

        :raises ProviderError: server metadata (RFC 8414) could not be fetched.
        """
        client = self.client_for(app)
        if app.oauth2 is not None and app.oauth2.redirect_uri_value:
            redirect_uri = app.oauth2.redirect_uri_value
        extra: dict[str, str] = {}
        if extra_scopes and app.oauth2 is not None:
            asked = requested_scopes(app.oauth2)
            asked += [s for s in extra_scopes if s not in asked]
            extra["scope"] = app.oauth2.scope_separator.join(asked)
        if app.oauth2 is not None and "openid" in requested_scopes(app.oauth2):
            # Authlib adds a nonce by itself only when the scope string splits on spaces; a
            # `,`-joined scope would go without one (OpenID Connect Core §3.1.2.1).
            extra["nonce"] = generate_token(32)
        try:
            rv = client.create_authorization_url(redirect_uri, state=state, **extra)
        except HostRefused as exc:
            raise ProviderError("upstream_refused", refused_message(app)) from exc
        except (requests.RequestException, ValueError) as exc:
            raise ProviderError(
                "temporarily_unavailable",
                f"{app.title} could not be reached ({type(exc).__name__}).",
            ) from exc
        if "nonce" in extra:
            rv.setdefault("nonce", extra["nonce"])
        client.save_authorize_data(
            redirect_uri=redirect_uri, account_fields=dict(app.resolved_fields), **rv
        )
        return redirect(rv["url"])

    def state_fields(self, app: App, state: str) -> dict[str, str]:
        """The account field values the attempt with ``state`` was started with (from this
        browser's Authlib state data); ``{}`` when there are none."""
        data = flask_session.get(f"_state_{app.slug}_{state}") or {}
        fields = (data.get("data") or {}).get("account_fields") or {}
        return {str(k): str(v) for k, v in fields.items()}

    def _server_metadata(self, app: App) -> dict[str, Any]:
        """The app's RFC 8414 server metadata (Authlib caches it per client), ``{}`` when the
        app declares no ``server_metadata_url``.

        :raises ProviderError: the metadata document could not be fetched.
        """
        if app.oauth2 is None or not app.oauth2.server_metadata_url:
            return {}
        try:
            return dict(self.client_for(app).load_server_metadata())
        except HostRefused as exc:
            raise ProviderError("upstream_refused", refused_message(app)) from exc
        except (requests.RequestException, ValueError) as exc:
            raise ProviderError(
                "temporarily_unavailable", f"{app.title} could not be reached."
            ) from exc

    def expected_issuer(self, app: App) -> str | None:
        """The issuer the authorization response's ``iss`` must equal (RFC 9207 §2.4): the
        app's configured ``issuer``, else the ``issuer`` of its discovered server metadata.

        :raises ProviderError: the metadata document could not be fetched.
        """
        if app.issuer:
            return app.issuer
        issuer = self._server_metadata(app).get("issuer")
        return str(issuer) if issuer else None

    def issuer_required(self, app: App) -> bool:
        """True when the authorization response must carry ``iss``: the app's server metadata
        says ``authorization_response_iss_parameter_supported: true`` (RFC 9207 §2.4, §3), so a
        response without it is refused.

        :raises ProviderError: the metadata document could not be fetched.
        """
        metadata = self._server_metadata(app)
        return metadata.get("authorization_response_iss_parameter_supported") is True

    def has_state(self, app: App, state: str) -> bool:
        """True when this browser's session holds the Authlib state data for ``state``."""
        return bool(flask_session.get(f"_state_{app.slug}_{state}"))

    def exchange_code(self, app: App) -> dict[str, Any]:
        """Exchange the callback's ``code`` for tokens (RFC 6749 §4.1.3), with the PKCE verifier.

        :returns: the token as :func:`read_token` gives it, with ``fields`` (the
            ``token_response.fields`` values, validated).
        :raises ProviderError: the provider refused (its ``error`` code), failed (HTTP 5xx,
            timeout, unreachable), or answered something that is not a JSON token response
            (``invalid_response`` also for a token-response field that fails validation);
            ``invalid_nonce`` when the ``id_token``'s ``nonce`` is missing or is not the one
            this attempt sent (OpenID Connect Core §3.1.3.7 step 11: an injected code);
            ``invalid_id_token`` for any other ``id_token`` that fails verification (signature,
            ``iss``, ``aud``, ``exp``, or no keys to check it with).
        """
        client = self.client_for(app)
        try:
            with _provider_errors(app, "token request"):
                token = client.authorize_access_token()
        except MismatchingStateError as exc:
            raise ProviderError("invalid_state", "The sign-in session was not found.") from exc
        except ClaimError as exc:
            if exc.claim == "nonce":
                raise ProviderError(
                    "invalid_nonce",
                    f"The sign-in response from {app.title} does not belong to this sign-in "
                    "attempt (OpenID Connect nonce mismatch). Start again.",
                ) from exc
            raise ProviderError(
                "invalid_id_token",
                f"{app.title} sent an ID token that is not valid ({exc.claim}).",
            ) from exc
        except (JoseError, RuntimeError) as exc:
            if isinstance(exc, RuntimeError) and "jwks_uri" not in str(exc):
                raise  # only Authlib's "no keys to verify the id_token with" is the provider's
            raise ProviderError(
                "invalid_id_token", f"{app.title} sent an ID token that could not be verified."
            ) from exc
        return read_token(app, token, with_fields=True)

    def refresh(self, app: App, refresh_token: str) -> dict[str, Any]:
        """Exchange a refresh token for new tokens (RFC 6749 §6).

        ``app`` is resolved for the account (:meth:`App.resolve`); ``token_params`` and
        ``token_endpoint_auth_method`` apply as on the code exchange. The request goes to
        ``auth.refresh_url`` when set, else to the token endpoint.

        :returns: the token as :func:`read_token` gives it; when the response carries no
            refresh token the one presented is kept, as the provider keeps it valid.
        :raises ProviderError: ``invalid_grant`` when the provider refuses the refresh token
            (revoked, rotated, expired); other codes as :meth:`exchange_code`.
        """
        settings = app.oauth2
        if settings is None:
            raise ProviderError("unsupported_app", f"{app.title} has no OAuth client.")
        client = self.client_for(app)
        with _provider_errors(app, "refresh"):
            url = (
                settings.refresh_url
                or settings.token_url
                or client.load_server_metadata().get("token_endpoint")
            )
            with self._session(
                app,
                app.client.client_id,
                app.client.client_secret,
                token_endpoint_auth_method=settings.token_endpoint_auth_method,
            ) as session:
                raw = session.refresh_token(
                    url, refresh_token=refresh_token, **dict(settings.token_params)
                )
        token = read_token(app, raw, lenient=True)
        token.setdefault("refresh_token", refresh_token)
        return token

    def client_credentials_grant(
        self, app: App, client_id: str, client_secret: str
    ) -> dict[str, Any]:
        """Run the client credentials grant (RFC 6749 §4.4) with the end user's client.

        Client authentication is the app's ``token_endpoint_auth_method`` (RFC 6749 §2.3.1:
        HTTP Basic, or the form body); ``scopes`` are joined with ``scope_separator``;
        ``token_params`` are added to the form. ``app`` is resolved for the account.

        :returns: the token as :func:`read_token` gives it (never a refresh token).
        :raises ProviderError: ``invalid_client`` (or the provider's other RFC 6749 §5.2 code)
            when it refuses the client; other failures as :meth:`exchange_code`.
        """
        settings = app.client_credentials
        if settings is None:
            raise ProviderError("unsupported_app", f"{app.title} has no client credentials.")
        scope = settings.scope_separator.join(settings.scopes) or None
        with _provider_errors(app, "token request"):
            with self._session(
                app,
                client_id,
                client_secret,
                token_endpoint_auth_method=settings.token_endpoint_auth_method,
                scope=scope,
            ) as session:
                raw = session.fetch_token(
                    settings.token_url,
                    grant_type="client_credentials",
                    **dict(settings.token_params),
                )
        token = read_token(app, raw)
        token.pop("refresh_token", None)
        return token

    def revoke(self, app: App, credentials: dict[str, Any]) -> bool:
        """Revoke the account's refresh (else access) token at the provider (RFC 7009 §2.1).

        :returns: True when the provider answered 200; False when the app has no revocation
            endpoint or revocation failed (logged without any token; never raises).
        """
        settings = app.oauth2
        if settings is None or not app.usable:
            return False
        if settings.revocation is not None:
            return self._revoke_declared(app, settings.revocation, credentials)
        url = settings.revoke_url
        try:
            if url is None and settings.server_metadata_url:
                url = self.client_for(app).load_server_metadata().get("revocation_endpoint")
            if url is None:
                return False
            token, hint = (
                (credentials["refresh_token"], "refresh_token")
                if credentials.get("refresh_token")
                else (credentials.get("access_token"), "access_token")
            )
            if not token:
                return False
            with self._session(
                app,
                app.client.client_id,
                app.client.client_secret,
                revocation_endpoint_auth_method=settings.token_endpoint_auth_method,
            ) as session:
                response = session.revoke_token(url, token=token, token_type_hint=hint)
            if response.status_code != 200:
                log.warning("revocation at %s answered HTTP %s", app.slug, response.status_code)
                return False
            return True
        except (requests.RequestException, OAuthError, ValueError, ProviderError) as exc:
            log.warning("revocation at %s failed: %s", app.slug, type(exc).__name__)
            return False

    def _revoke_declared(self, app: App, spec: Revocation, credentials: dict[str, Any]) -> bool:
        """Revoke as ``auth.revocation`` says (GitHub's ``DELETE
        /applications/{client_id}/grant`` with HTTP Basic and a JSON body, Slack's
        ``auth.revoke`` with the token as bearer, Google's ``?token=``). No redirect is
        followed; the request goes through the outbound policy when the host is end-user
        chosen. Never raises.

        :returns: True on a 2xx answer that ``api.error_when`` does not mark as failed.
        """
        token = credentials.get(spec.token) or credentials.get("access_token")
        if not token:
            return False
        url = spec.url.replace("{client_id}", quote(app.client.client_id or "", safe=""))
        kwargs: dict[str, Any] = {"headers": {"Accept": "application/json"}}
        if spec.auth == "client_basic":
            kwargs["auth"] = (app.client.client_id or "", app.client.client_secret or "")
        elif spec.auth == "bearer":
            kwargs["headers"]["Authorization"] = f"Bearer {token}"
        if spec.token_in == "json":
            kwargs["json"] = {spec.token_param: token}
        elif spec.token_in == "form":
            kwargs["data"] = {spec.token_param: token}
        elif spec.token_in == "query":
            kwargs["params"] = {spec.token_param: token}
        try:
            with requests.Session() as session:
                if user_chosen(app):
                    self.outbound.mount(session)
                response = session.request(
                    spec.method, url, timeout=self.timeout, allow_redirects=False, **kwargs
                )
        except requests.RequestException as exc:
            log.warning("revocation at %s failed: %s", app.slug, type(exc).__name__)
            return False
        if not 200 <= response.status_code < 300:
            log.warning("revocation at %s answered HTTP %s", app.slug, response.status_code)
            return False
        if app.error_when is not None and response.content:
            try:
                failure = app.error_when.failure(response.json())
            except ValueError:
                failure = None
            if failure is not None:
                log.warning("revocation at %s answered an error (%s)", app.slug, failure)
                return False
        return True


def _oauth_placeholders(app: App) -> bool:
    o = app.oauth2
    if o is None:
        return False
    urls = (o.authorize_url, o.token_url, o.revoke_url, o.server_metadata_url, o.issuer, o.jwks_uri)
    return any("{" in u for u in urls if u) or bool(app.scope_placeholders)


def read_token(
    app: App, raw: Any, *, with_fields: bool = False, lenient: bool = False
) -> dict[str, Any]:
    """The values of a token response, read where the app's ``token_response`` says.

    :param raw: the parsed JSON token response (RFC 6749 §5.1, or the provider's shape).
    :param with_fields: also read and validate ``token_response.fields`` into ``"fields"``.
    :param lenient: when a value is not at its configured path, use the RFC 6749 name at the
        top level (refresh responses of some providers are flat).
    :returns: ``{access_token, token_type?, refresh_token?, expires_at?, scope?, fields?}``;
        ``expires_at`` (Unix seconds) only when the response gave a lifetime: a token without
        one does not expire until revoked.
    :raises ProviderError: ``invalid_response`` without an access token, or with a field
        that fails :func:`~portal.catalog.validate_token_field`.
    """
    if not isinstance(raw, dict):
        raise ProviderError("invalid_response", f"{app.title} sent no access token.")
    failure = app.error_when.failure(raw) if app.error_when is not None else None
    if failure is not None:  # api.error_when: Slack's {"ok": false, "error": "..."} with 200
        raise ProviderError("access_denied", f"{app.title} refused the connection ({failure}).")
    paths = app.oauth2.token_response if app.oauth2 is not None else None

    def value(name: str) -> Any:
        path = getattr(paths, name) if paths is not None else name
        found = dotted(raw, path)
        if found in (None, "") and lenient and path != name:
            found = raw.get(name)
        return None if found in (None, "") else found

    access_token = value("access_token")
    if not isinstance(access_token, str):
        raise ProviderError("invalid_response", f"{app.title} sent no access token.")
    token: dict[str, Any] = {"access_token": access_token}
    if raw.get("token_type"):
        token["token_type"] = raw["token_type"]
    refresh = value("refresh_token")
    if isinstance(refresh, str):
        token["refresh_token"] = refresh
    scope = value("scope")
    if scope is not None:
        token["scope"] = scope
    expires_in = value("expires_in")
    if paths is None or paths.expires_in == "expires_in":
        expiry = token_expiry(raw)
    else:
        expiry = token_expiry({"expires_in": expires_in})
    if expiry is not None:
        token["expires_at"] = int(expiry.timestamp())
    if with_fields:
        fields = {}
        for name, path in app.token_fields.items():
            try:
                fields[name] = validate_token_field(app, name, dotted(raw, path))
            except InvalidAccountField as exc:
                raise ProviderError("invalid_response", exc.message) from exc
        token["fields"] = fields
    return token


def token_expiry(token: dict[str, Any]) -> datetime | None:
    """When the access token expires (aware UTC), from ``expires_at`` or ``expires_in``."""
    expires_at = token.get("expires_at")
    if expires_at is None and token.get("expires_in") is not None:
        try:
            expires_at = time.time() + float(token["expires_in"])
        except (TypeError, ValueError):
            return None
    if expires_at is None:
        return None
    try:
        return datetime.fromtimestamp(float(expires_at), UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def granted_scopes(app: App, token: dict[str, Any], extra_scopes: Sequence[str] = ()) -> list[str]:
    """Scopes the provider granted: the token response's ``scope`` (RFC 6749 §5.1, split on the
    app's ``scope_separator``), else the ones requested, which RFC 6749 §3.3 says were granted
    when the response omits ``scope``: the app's ``scopes`` plus ``extra_scopes`` (those a
    connect asked for on top, :func:`extra_scopes`)."""
    settings = app.oauth2 or app.client_credentials
    separator = settings.scope_separator if settings else " "
    scope = token.get("scope")
    if isinstance(scope, list):
        return [str(s) for s in scope]
    if isinstance(scope, str) and scope.strip():
        parts = scope.split(separator) if separator.strip() else scope.split()
        return [s.strip() for s in parts if s.strip()]
    requested = list(settings.scopes) if settings else []
    return requested + [s for s in extra_scopes if s not in requested]


#: The most extra scopes one connect may ask for.
MAX_EXTRA_SCOPES = 50


def extra_scopes(app: App, value: Any) -> tuple[str, ...]:
    """The extra scopes of a connect request body's ``scopes`` (incremental authorization):
    ``()`` when absent or empty, else a list of scope strings, each one of ``app``'s
    ``optional_scopes`` (catalog ``auth.optional_scopes``), duplicates dropped, order kept.

    :raises InvalidRequest: 400 ``invalid_scope`` (the RFC 6749 §4.1.2.1 word), not a list of
        strings, more than :data:`MAX_EXTRA_SCOPES`, or a scope ``app`` does not declare
        optional (the message and ``error_details`` name each one and the allowed ones).
    """
    if value is None:
        return ()
    if (
        not isinstance(value, list)
        or len(value) > MAX_EXTRA_SCOPES
        or not all(isinstance(s, str) and 0 < len(s) <= 200 for s in value)
    ):
        raise InvalidRequest(
            f"`scopes` must be a list of at most {MAX_EXTRA_SCOPES} scope names.",
            code="invalid_scope",
        )
    allowed = app.oauth2.optional_scopes if app.oauth2 is not None else ()
    refused = [s for s in value if s not in allowed]
    if refused:
        offer = ", ".join(allowed) if allowed else "none"
        raise InvalidRequest(
            f"{app.title} does not offer these scopes per connect: {', '.join(refused)}. "
            f"Its optional scopes: {offer}.",
            code="invalid_scope",
            details=[
                {"field": "scopes", "message": f"'{s}' is not an optional scope of {app.slug}."}
                for s in refused
            ],
        )
    return tuple(dict.fromkeys(value))


@contextmanager
def _provider_errors(app: App, what: str) -> Iterator[None]:
    """Turn what a token-endpoint call can raise into :class:`ProviderError` (RFC 6749 §5.2
    codes when the provider sent one)."""
    try:
        yield
    except OAuthError as exc:
        if app.error_when is not None and exc.error and not exc.description:
            # Authlib read the body's ``error`` member itself (Slack's {"ok": false, "error":
            # "invalid_code"}): say it in words, as read_token does for the rest.
            code = "".join(c for c in str(exc.error) if " " <= c <= "~")[:200]
            raise ProviderError(
                str(exc.error), f"{app.title} refused the connection ({code})."
            ) from exc
        raise ProviderError(exc.error or "server_error", _describe(exc)) from exc
    except HostRefused as exc:
        raise ProviderError("upstream_refused", refused_message(app)) from exc
    except requests.Timeout as exc:
        raise ProviderError(
            "temporarily_unavailable", f"{app.title} did not answer in time."
        ) from exc
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise ProviderError(
            "server_error", f"{app.title} answered the {what} with HTTP {status}."
        ) from exc
    except requests.RequestException as exc:
        raise ProviderError(
            "temporarily_unavailable", f"{app.title} could not be reached."
        ) from exc
    except ValueError as exc:
        raise ProviderError(
            "invalid_response", f"{app.title} sent a {what} response that is not valid JSON."
        ) from exc


def _describe(exc: OAuthError) -> str:
    text = exc.description or exc.error or "The provider refused the request."
    return str(text)[:500]
