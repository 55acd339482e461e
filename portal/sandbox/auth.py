"""Bearer-token protection of the userinfo endpoint and the API (RFC 6750).

Errors are JSON ``{"error", "message"}`` with an RFC 6750 §3 ``WWW-Authenticate`` challenge:
401 without a token (no error code, §3.1) or with a bad one (``invalid_token``); 403 when the
token lacks the scope (``insufficient_scope`` with the ``scope`` needed).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6750 import InsufficientScopeError
from flask import Response, g, jsonify

from .db import db_session
from .models import Token, User
from .server import REALM
from .state import sandbox_state

F = TypeVar("F", bound=Callable[..., Any])

_G_TOKEN = "_sandbox_token"


def bearer_error(error: OAuth2Error, scope: str | None) -> Response:
    """The JSON error and ``WWW-Authenticate`` challenge for a failed bearer check."""
    if isinstance(error, InsufficientScopeError):
        message = f"This call needs the '{scope}' scope."
        response = jsonify({"error": "insufficient_scope", "message": message})
        response.status_code = 403
        response.headers["WWW-Authenticate"] = (
            f'Bearer realm="{REALM}", error="insufficient_scope", scope="{scope}"'
        )
    elif error.error == "invalid_token":
        message = "The access token is expired, revoked, malformed or unknown."
        response = jsonify({"error": "invalid_token", "message": message})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = (
            f'Bearer realm="{REALM}", error="invalid_token", error_description="{message}"'
        )
    else:
        # No token, or not a Bearer one: RFC 6750 §3.1 says no error code in the challenge.
        message = "Send an access token: 'Authorization: Bearer <token>'."
        response = jsonify({"error": "missing_token", "message": message})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = f'Bearer realm="{REALM}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def require_token(scope: str | None = None) -> Callable[[F], F]:
    """Decorator: the request must carry a valid, unexpired, unrevoked bearer token with
    ``scope`` (any token when ``None``); otherwise :func:`bearer_error` answers."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            protector = sandbox_state().protector
            try:
                token = protector.acquire_token([scope] if scope else None)
            except OAuth2Error as error:
                return bearer_error(error, scope)
            setattr(g, _G_TOKEN, token)
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorator


def current_token() -> Token:
    """The token :func:`require_token` accepted for this request."""
    token: Token = getattr(g, _G_TOKEN)
    return token


def token_user() -> User:
    """The user the current token was issued for."""
    user = db_session().get(User, current_token().user_id)
    if user is None:  # users are never deleted; a missing one is a bug
        raise RuntimeError("token without a user")
    return user
