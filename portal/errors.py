"""The portal's exception tree.

``PortalError`` is the root. Errors a user or a caller can cause subclass a
:mod:`werkzeug.exceptions` class too, so a host customises them with ``errorhandler``; each has a
machine-readable ``code`` used in the JSON error body
``{"error": code, "message": text, "error_details": [...]}``.
"""

from __future__ import annotations

from typing import Any

from werkzeug.exceptions import (
    BadRequest,
    Forbidden,
    HTTPException,
    NotFound,
    RequestEntityTooLarge,
    TooManyRequests,
    Unauthorized,
)


class PortalError(Exception):
    """Root of every exception the portal raises on purpose."""


class ConfigurationError(PortalError, RuntimeError):
    """The portal is configured wrongly; raised at start-up with what to fix."""


class CatalogError(ConfigurationError):
    """An app definition is invalid. The message names the file and the field."""


class CredentialError(PortalError):
    """A sealed credential cannot be opened: unknown key, tampered blob, or another row's blob."""


class PortalHTTPError(PortalError, HTTPException):
    """Base of user-facing portal errors; carries a stable ``code`` and optional details."""

    error_code = "error"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(description=message)
        if code is not None:
            self.error_code = code
        self.details = details or []


class InvalidRequest(PortalHTTPError, BadRequest):
    """400: malformed or invalid input."""

    error_code = "invalid_request"


class InvalidConnectAttempt(InvalidRequest):
    """400: a connect ticket, OAuth ``state`` or callback that must not be honoured."""

    error_code = "invalid_connect_attempt"


class AuthenticationFailed(PortalHTTPError, Unauthorized):
    """401: missing, invalid or expired host authentication or session token."""

    error_code = "unauthorized"


class InsufficientScope(PortalHTTPError, Forbidden):
    """403: the connected account was not granted a scope the call needs (RFC 6750 §3.1
    ``insufficient_scope``); ``error_details`` name the missing scopes and how to reconnect."""

    error_code = "insufficient_scope"


class OriginNotAllowed(PortalHTTPError, Forbidden):
    """403: the request comes from an origin the portal is not configured to serve."""

    error_code = "origin_not_allowed"


class ResourceNotFound(PortalHTTPError, NotFound):
    """404: no such app or connected account *for this end user*."""

    error_code = "not_found"


class PayloadTooLarge(PortalHTTPError, RequestEntityTooLarge):
    """413: a body or token larger than the portal accepts."""

    error_code = "payload_too_large"


class RateLimited(PortalHTTPError, TooManyRequests):
    """429: too many requests (a ``PORTAL_RATE_LIMIT_*`` limit is used up). ``retry_after`` is
    in seconds and goes out as the ``Retry-After`` header (RFC 9110 §10.2.3)."""

    error_code = "rate_limited"
    retry_after: int = 60


class ProviderError(PortalError):
    """A provider answered a connect, token or identity call wrongly.

    ``code`` is an OAuth 2.0 error code where the provider sent one (RFC 6749 §4.1.2.1, §5.2),
    else one of ``server_error``, ``temporarily_unavailable``, ``invalid_response``, or
    ``upstream_refused`` (an end-user-chosen host resolves to a non-public address).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
