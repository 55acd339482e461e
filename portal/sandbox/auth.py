"""Authentication of resource requests: bearer tokens (RFC 6750), and for the API the demo
users' API keys and Basic credentials.

Bearer errors are JSON ``{"error", "message"}`` with an RFC 6750 §3 ``WWW-Authenticate``
challenge: 401 without a token (no error code, §3.1) or with a bad one (``invalid_token``); 403
when the token lacks the scope (``insufficient_scope`` with the ``scope`` needed).

API keys (``X-API-Key: sk_demo_ada``) and Basic credentials (RFC 7617, ``ada:lovelace``) exist
for the portal's ``api_key`` and ``basic`` demo apps; they act as the user with every scope.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6750 import InsufficientScopeError
from flask import Response, g, jsonify, request

from .db import db_session
from .models import User
from .resources import get_user, user_by_api_key, user_by_password
from .server import REALM
from .state import sandbox_state

F = TypeVar("F", bound=Callable[..., Any])

_G_USER = "_sandbox_user"
#: Header carrying a demo API key.
API_KEY_HEADER = "X-API-Key"


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


def credentials_error(kind: str) -> Response:
    """401 for a wrong or missing API key (``kind="api_key"``) or Basic credentials
    (``kind="basic"``), with a matching challenge (RFC 7235 §4.1)."""
    if kind == "basic":
        message = "Send a demo username and password with HTTP Basic authentication."
        challenge = f'Basic realm="{REALM}", charset="UTF-8"'
    else:
        message = f"Send a demo API key in the {API_KEY_HEADER} header."
        challenge = f'Bearer realm="{REALM}"'
    response = jsonify({"error": "invalid_credentials", "message": message})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = challenge
    response.headers["Cache-Control"] = "no-store"
    return response


def api_key_user() -> User | None:
    """The demo user whose key is in the ``X-API-Key`` header, if any."""
    key = request.headers.get(API_KEY_HEADER, "")
    return user_by_api_key(db_session(), key) if key else None


def basic_user() -> User | None:
    """The demo user whose username and password came with HTTP Basic, if any."""
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username or auth.password is None:
        return None
    return user_by_password(db_session(), auth.username, auth.password)


def _uses_basic() -> bool:
    return request.headers.get("Authorization", "").lower().startswith("basic ")


def require_token(scope: str | None = None, *, allow_credentials: bool = False) -> Callable[[F], F]:
    """Decorator: the request must carry a valid, unexpired, unrevoked bearer token with
    ``scope`` (any token when ``None``); otherwise :func:`bearer_error` answers.

    :param allow_credentials: also accept a demo API key (``X-API-Key``) or HTTP Basic
        credentials instead of a bearer token; they carry every scope.
    """

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user: User | None
            if allow_credentials and _uses_basic():
                user = basic_user()
                if user is None:
                    return credentials_error("basic")
            elif (
                allow_credentials
                and API_KEY_HEADER in request.headers
                and "Authorization" not in request.headers
            ):
                user = api_key_user()
                if user is None:
                    return credentials_error("api_key")
            else:
                try:
                    token = sandbox_state().protector.acquire_token([scope] if scope else None)
                except OAuth2Error as error:
                    return bearer_error(error, scope)
                user = get_user(db_session(), token.user_id)
                if user is None:  # users are never deleted; a missing one is a bug
                    raise RuntimeError("token without a user")
            setattr(g, _G_USER, user)
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorator


def current_user() -> User:
    """The user the request authenticated as (set by :func:`require_token`)."""
    user: User = getattr(g, _G_USER)
    return user
