"""OAuth 2.0 client side of the connect flow, one Authlib client per catalog app.

* Authorization code grant with PKCE S256 (RFC 6749 §4.1, RFC 7636 §4.2): Authlib generates a
  fresh 64-character verifier per authorization request and keeps it, with the ``state``, in the
  popup's first-party Flask session (so a state finished in another browser has no verifier).
* ``redirect_uri`` is ``PORTAL_BASE_URL`` + the app's own callback path, one per app
  (RFC 9700 §4.4 mix-up defence), never built from request headers.
* Authorization-response ``iss`` is checked against the app's issuer (RFC 9207 §2.4).
* Revocation per RFC 7009.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import requests
from authlib.integrations.base_client.errors import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import FlaskOAuth2App
from authlib.integrations.flask_client.integration import FlaskIntegration
from authlib.integrations.requests_client import OAuth2Session
from flask import session as flask_session
from werkzeug.wrappers import Response

from .catalog import App, Catalog
from .errors import ProviderError

log = logging.getLogger(__name__)


class OAuthClients:
    """Authlib clients for the catalog's OAuth 2.0 apps.

    :param catalog: the loaded catalog; apps that are not usable (no client id) get no client.
    :param timeout: timeout of every provider request, in seconds.
    """

    def __init__(self, catalog: Catalog, timeout: float) -> None:
        self.timeout = timeout
        self._clients: dict[str, FlaskOAuth2App] = {}
        for app in catalog:
            if app.oauth2 is not None and app.usable:
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
        return FlaskOAuth2App(
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
        )

    def client(self, slug: str) -> FlaskOAuth2App:
        """The Authlib client of ``slug``.

        :raises KeyError: ``slug`` is not a usable OAuth 2.0 app.
        """
        return self._clients[slug]

    def authorize_redirect(self, app: App, redirect_uri: str, state: str) -> Response:
        """302 to the provider's authorization endpoint, storing state + PKCE verifier in the
        Flask session (RFC 6749 §4.1.1, RFC 7636 §4.3).

        :raises ProviderError: server metadata (RFC 8414) could not be fetched.
        """
        client = self.client(app.slug)
        try:
            return client.authorize_redirect(redirect_uri, state=state)
        except (requests.RequestException, ValueError) as exc:
            raise ProviderError(
                "temporarily_unavailable",
                f"{app.title} could not be reached ({type(exc).__name__}).",
            ) from exc

    def expected_issuer(self, app: App) -> str | None:
        """The issuer the authorization response's ``iss`` must equal (RFC 9207 §2.4): the
        app's configured ``issuer``, else the ``issuer`` of its discovered server metadata.

        :raises ProviderError: the metadata document could not be fetched.
        """
        if app.issuer:
            return app.issuer
        if app.oauth2 is None or not app.oauth2.server_metadata_url:
            return None
        try:
            issuer = self.client(app.slug).load_server_metadata().get("issuer")
        except (requests.RequestException, ValueError) as exc:
            raise ProviderError(
                "temporarily_unavailable", f"{app.title} could not be reached."
            ) from exc
        return str(issuer) if issuer else None

    def has_state(self, app: App, state: str) -> bool:
        """True when this browser's session holds the Authlib state data for ``state``."""
        return bool(flask_session.get(f"_state_{app.slug}_{state}"))

    def exchange_code(self, app: App) -> dict[str, Any]:
        """Exchange the callback's ``code`` for tokens (RFC 6749 §4.1.3), with the PKCE verifier.

        :returns: the token response (``access_token``, ``token_type``, optional
            ``refresh_token``, ``expires_in``/``expires_at``, ``scope``).
        :raises ProviderError: the provider refused (its ``error`` code), failed (HTTP 5xx,
            timeout, unreachable), or answered something that is not a JSON token response.
        """
        client = self.client(app.slug)
        try:
            with _provider_errors(app, "token request"):
                token = client.authorize_access_token()
        except MismatchingStateError as exc:
            raise ProviderError("invalid_state", "The sign-in session was not found.") from exc
        return _checked_token(app, token)

    def refresh(self, app: App, refresh_token: str) -> dict[str, Any]:
        """Exchange a refresh token for new tokens (RFC 6749 §6).

        :returns: the token response; when it carries no ``refresh_token`` the one presented is
            kept (Authlib does this), as the provider keeps it valid.
        :raises ProviderError: ``invalid_grant`` when the provider refuses the refresh token
            (revoked, rotated, expired); other codes as :meth:`exchange_code`.
        """
        settings = app.oauth2
        if settings is None or app.slug not in self._clients:
            raise ProviderError("unsupported_app", f"{app.title} has no OAuth client.")
        client = self._clients[app.slug]
        with _provider_errors(app, "refresh"):
            url = settings.token_url or client.load_server_metadata().get("token_endpoint")
            with OAuth2Session(
                client_id=app.client.client_id,
                client_secret=app.client.client_secret,
                token_endpoint_auth_method=settings.token_endpoint_auth_method,
                default_timeout=self.timeout,
            ) as session:
                token = session.refresh_token(url, refresh_token=refresh_token)
        return _checked_token(app, token)

    def revoke(self, app: App, credentials: dict[str, Any]) -> bool:
        """Revoke the account's refresh (else access) token at the provider (RFC 7009 §2.1).

        :returns: True when the provider answered 200; False when the app has no revocation
            endpoint or revocation failed (logged without any token; never raises).
        """
        settings = app.oauth2
        if settings is None or app.slug not in self._clients:
            return False
        url = settings.revoke_url
        try:
            if url is None and settings.server_metadata_url:
                url = self._clients[app.slug].load_server_metadata().get("revocation_endpoint")
            if url is None:
                return False
            token, hint = (
                (credentials["refresh_token"], "refresh_token")
                if credentials.get("refresh_token")
                else (credentials.get("access_token"), "access_token")
            )
            if not token:
                return False
            with OAuth2Session(
                client_id=app.client.client_id,
                client_secret=app.client.client_secret,
                revocation_endpoint_auth_method=settings.token_endpoint_auth_method,
                default_timeout=self.timeout,
            ) as session:
                response = session.revoke_token(url, token=token, token_type_hint=hint)
            if response.status_code != 200:
                log.warning("revocation at %s answered HTTP %s", app.slug, response.status_code)
                return False
            return True
        except (requests.RequestException, OAuthError, ValueError) as exc:
            log.warning("revocation at %s failed: %s", app.slug, type(exc).__name__)
            return False


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


def granted_scopes(app: App, token: dict[str, Any]) -> list[str]:
    """Scopes the provider granted (RFC 6749 §5.1 ``scope``), else the ones requested."""
    settings = app.oauth2
    separator = settings.scope_separator if settings else " "
    scope = token.get("scope")
    if isinstance(scope, list):
        return [str(s) for s in scope]
    if isinstance(scope, str) and scope.strip():
        parts = scope.split(separator) if separator.strip() else scope.split()
        return [s.strip() for s in parts if s.strip()]
    return list(settings.scopes) if settings else []


@contextmanager
def _provider_errors(app: App, what: str) -> Iterator[None]:
    """Turn what a token-endpoint call can raise into :class:`ProviderError` (RFC 6749 §5.2
    codes when the provider sent one)."""
    try:
        yield
    except OAuthError as exc:
        raise ProviderError(exc.error or "server_error", _describe(exc)) from exc
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


def _checked_token(app: App, token: Any) -> dict[str, Any]:
    if not isinstance(token, dict) or not token.get("access_token"):
        raise ProviderError("invalid_response", f"{app.title} sent no access token.")
    return dict(token)


def _describe(exc: OAuthError) -> str:
    text = exc.description or exc.error or "The provider refused the request."
    return str(text)[:500]
