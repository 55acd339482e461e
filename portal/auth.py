"""Host authentication: user hashes, app secrets, session tokens and connect tickets.

* **User hash** (the Integry scheme): ``hex(HMAC-SHA256(key=app_secret, msg=utf8(user_id)))``,
  lowercase; compared with :func:`hmac.compare_digest`.
* **Session token**: a short-lived token the browser side uses after host authentication,
  signed with :class:`itsdangerous.URLSafeTimedSerializer` (salt ``portal.session``) and bound to
  the verified host origin.
* **Connect ticket**: a single-use signed token (salt ``portal.connect-ticket``) that starts one
  connect attempt in the popup; single use is enforced by the attempt row it creates.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .errors import AuthenticationFailed, InvalidConnectAttempt, InvalidRequest

#: Tokens longer than this are refused before any signature work (DoS guard), in characters.
MAX_TOKEN_LENGTH = 4096

SESSION_SALT = "portal.session"
TICKET_SALT = "portal.connect-ticket"


def user_hash(app_secret: str, user_id: str) -> str:
    """The ``hash`` a host backend computes for ``user_id``.

    :returns: lowercase hex HMAC-SHA256 of the UTF-8 ``user_id`` keyed with ``app_secret``
        (RFC 2104), 64 characters.
    """
    return hmac.new(app_secret.encode(), user_id.encode("utf-8"), hashlib.sha256).hexdigest()


def verify_user_hash(secrets_: Iterable[str], user_id: str, presented: str) -> bool:
    """True when ``presented`` is the user hash of ``user_id`` under any of ``secrets_``.

    Every secret is compared in constant time (:func:`hmac.compare_digest`), so rotation
    (old and new secret accepted together) leaks nothing through timing.
    """
    ok = False
    candidate = presented.strip().lower().encode()
    for secret in secrets_:
        ok |= hmac.compare_digest(user_hash(secret, user_id).encode(), candidate)
    return ok


def app_key_for_secret(app_keys: Mapping[str, Sequence[str]], presented: str) -> str | None:
    """The app key whose accepted secrets include ``presented`` (server-to-server bearer)."""
    found = None
    for key, accepted in app_keys.items():
        for secret in accepted:
            if hmac.compare_digest(secret.encode(), presented.encode()):
                found = key
    return found


def check_user_id(user_id: Any, max_length: int) -> str:
    """Validate an opaque end-user id: any non-empty Unicode string up to ``max_length`` chars.

    :raises InvalidRequest: not a string, empty, too long, or containing NUL.
    """
    if not isinstance(user_id, str) or not user_id:
        raise InvalidRequest("userId must be a non-empty string.", code="invalid_user_id")
    if len(user_id) > max_length:
        raise InvalidRequest(
            f"userId is longer than {max_length} characters.", code="invalid_user_id"
        )
    if "\x00" in user_id:
        raise InvalidRequest("userId must not contain NUL.", code="invalid_user_id")
    return user_id


def normalize_origin(value: str | None) -> str | None:
    """``scheme://host[:port]`` in lowercase, default ports dropped; ``None`` if not an origin.

    Origins are compared as RFC 6454 serialisations; anything with a path, user info, query or
    fragment, or a scheme other than http/https, is not an origin.
    """
    if not value or not isinstance(value, str) or len(value) > 255:
        return None
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.username or parts.password or parts.query or parts.fragment:
        return None
    if parts.path not in ("", "/"):
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def origin_of_url(url: str) -> str | None:
    """The origin of an absolute http(s) URL, or ``None`` for anything else.

    Relative and scheme-relative forms (``//evil.example``, ``/\\evil.example``,
    ``https:evil.example``, ``javascript:…``) yield ``None``.
    """
    if not isinstance(url, str) or any(c in url for c in "\\\r\n\t\x00") or len(url) > 2048:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not url.lower().startswith(parts.scheme + "://"):
        return None
    if parts.username or parts.password:
        return None
    try:
        return normalize_origin(f"{parts.scheme}://{parts.netloc}")
    except ValueError:
        return None


@dataclass(frozen=True)
class SessionClaims:
    """What a valid session token says: whose session, for which host origin, until when."""

    user_id: str
    origin: str
    app_key: str | None
    expires_at: int  # Unix time, seconds


@dataclass(frozen=True)
class TicketClaims:
    """What a valid connect ticket says.

    ``attempt_id`` is the nonce that becomes the attempt's primary key; ``opener_origin`` is
    where the popup's result is posted (the portal's own origin when the iframe opened it, the
    host origin when ``portal.js`` did).
    """

    attempt_id: str
    user_id: str
    app: str
    host_origin: str
    opener_origin: str


class TokenService:
    """Signs and checks session tokens and connect tickets with the app's ``SECRET_KEY``."""

    def __init__(self, secret_key: str | bytes, session_ttl: int, ticket_ttl: int) -> None:
        self._sessions = URLSafeTimedSerializer(secret_key, salt=SESSION_SALT)
        self._tickets = URLSafeTimedSerializer(secret_key, salt=TICKET_SALT)
        self.session_ttl = session_ttl
        self.ticket_ttl = ticket_ttl

    def issue_session(self, user_id: str, origin: str, app_key: str | None) -> tuple[str, int]:
        """A new session token and its expiry (Unix seconds)."""
        token = self._sessions.dumps({"u": user_id, "o": origin, "k": app_key})
        return token, int(time.time()) + self.session_ttl

    def read_session(self, token: str) -> SessionClaims:
        """Check a session token.

        :raises AuthenticationFailed: oversized, forged, or older than ``session_ttl``.
        """
        if len(token) > MAX_TOKEN_LENGTH:
            raise AuthenticationFailed("Session token is too long.", code="invalid_token")
        try:
            data, signed_at = self._sessions.loads(
                token, max_age=self.session_ttl, return_timestamp=True
            )
        except SignatureExpired as exc:
            raise AuthenticationFailed("Session token expired.", code="token_expired") from exc
        except BadSignature as exc:
            raise AuthenticationFailed("Session token is invalid.", code="invalid_token") from exc
        return SessionClaims(
            user_id=data["u"],
            origin=data["o"],
            app_key=data.get("k"),
            expires_at=int(signed_at.timestamp()) + self.session_ttl,
        )

    def issue_ticket(
        self, user_id: str, app: str, host_origin: str, opener_origin: str
    ) -> tuple[str, str, int]:
        """A new connect ticket: ``(ticket, attempt_id, expires_at)``."""
        attempt_id = secrets.token_urlsafe(24)
        ticket = self._tickets.dumps(
            {"n": attempt_id, "u": user_id, "a": app, "h": host_origin, "p": opener_origin}
        )
        return ticket, attempt_id, int(time.time()) + self.ticket_ttl

    def read_ticket(self, ticket: str | None, app: str) -> TicketClaims:
        """Check a connect ticket presented for ``app``.

        :raises InvalidConnectAttempt: missing, oversized, forged, expired, or for another app.
        """
        if not ticket or len(ticket) > MAX_TOKEN_LENGTH:
            raise InvalidConnectAttempt("The connect link is missing its ticket.")
        try:
            data = self._tickets.loads(ticket, max_age=self.ticket_ttl)
        except SignatureExpired as exc:
            raise InvalidConnectAttempt(
                "This connect link has expired. Close this window and try again.",
                code="ticket_expired",
            ) from exc
        except BadSignature as exc:
            raise InvalidConnectAttempt("This connect link is not valid.") from exc
        if data.get("a") != app:
            raise InvalidConnectAttempt("This connect link is for another app.")
        return TicketClaims(
            attempt_id=data["n"],
            user_id=data["u"],
            app=data["a"],
            host_origin=data["h"],
            opener_origin=data["p"],
        )


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750 §2.1), else ``None``.

    :raises AuthenticationFailed: a bearer header longer than :data:`MAX_TOKEN_LENGTH`.
    """
    if not header:
        return None
    if len(header) > MAX_TOKEN_LENGTH + 7:
        raise AuthenticationFailed("Authorization header is too long.", code="invalid_token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
