"""Host authentication: user hashes, app secrets, session tokens and connect tickets.

* **User hash** (the Integry scheme): ``hex(HMAC-SHA256(key=app_secret, msg=utf8(user_id)))``,
  lowercase; compared with :func:`hmac.compare_digest`.
* **Session token**: a short-lived token the browser side uses after host authentication,
  signed with :class:`itsdangerous.URLSafeTimedSerializer` (salt ``portal.session``) and bound to
  the verified host origin.
* **Connect ticket**: a single-use signed token (salt ``portal.connect-ticket``) that starts one
  connect attempt in the popup; single use is enforced by the attempt row it creates.
* **JWT user token** (the Paragon scheme): a JWT (RFC 7519) the host backend signs with its
  private key (RS256/ES256); the portal verifies it with public keys from its configuration only,
  following the JWT Best Current Practices (RFC 8725). See :func:`verify_user_token`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    load_pem_private_key,
    load_pem_public_key,
)
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from joserfc import jwt
from joserfc.errors import (
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from .errors import AuthenticationFailed, InvalidConnectAttempt, InvalidRequest

#: Tokens longer than this are refused before any signature work (DoS guard), in characters.
MAX_TOKEN_LENGTH = 4096
#: How many verified session tokens a process remembers (:meth:`TokenService.read_session`).
VERIFIED_SESSIONS_MAX = 4096

log = logging.getLogger("portal")

SESSION_SALT = "portal.session"
TICKET_SALT = "portal.connect-ticket"


def user_hash(app_secret: str, user_id: str) -> str:
    """The ``hash`` a host backend computes for ``user_id``.

    :returns: lowercase hex HMAC-SHA256 of the UTF-8 ``user_id`` keyed with ``app_secret``
        (RFC 2104), 64 characters.
    :raises ValueError: ``user_id`` holds a lone surrogate (U+D800-U+DFFF), which has no UTF-8
        form (RFC 3629 §3); the portal refuses such ids too (:func:`check_user_id`).
    """
    try:
        message = user_id.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("user_id contains a lone surrogate; it has no UTF-8 encoding.") from exc
    return hmac.new(app_secret.encode(), message, hashlib.sha256).hexdigest()


def verify_user_hash(secrets_: Iterable[str], user_id: str, presented: str) -> bool:
    """True when ``presented`` is the user hash of ``user_id`` under any of ``secrets_``.

    Every secret is compared in constant time (:func:`hmac.compare_digest`), so rotation
    (old and new secret accepted together) leaks nothing through timing. An id that has no
    UTF-8 form (a lone surrogate) has no hash: ``False``.
    """
    if _has_surrogate(user_id):
        return False
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


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_user_id(user_id: Any, max_length: int) -> str:
    """Validate an opaque end-user id: any non-empty Unicode string up to ``max_length`` chars.

    "Unicode string" means a sequence of Unicode scalar values: a lone surrogate
    (U+D800-U+DFFF, e.g. from a JSON ``"\\ud800"`` escape, RFC 8259 §8.2) has no UTF-8 form
    (RFC 3629 §3), so it could neither be hashed nor stored.

    :raises InvalidRequest: (400, code ``invalid_user_id``) not a string, empty, too long,
        containing NUL, or containing a lone surrogate.
    """
    if not isinstance(user_id, str) or not user_id:
        raise InvalidRequest("userId must be a non-empty string.", code="invalid_user_id")
    if len(user_id) > max_length:
        raise InvalidRequest(
            f"userId is longer than {max_length} characters.", code="invalid_user_id"
        )
    if "\x00" in user_id:
        raise InvalidRequest("userId must not contain NUL.", code="invalid_user_id")
    if _has_surrogate(user_id):
        raise InvalidRequest(
            "userId must be valid Unicode text: it contains a lone surrogate or bytes that "
            "are not UTF-8.",
            code="invalid_user_id",
        )
    return user_id


def host_named_user_id(header: str | None, query_string: bytes, max_length: int) -> str:
    """The end user a host backend names server-to-server, checked by :func:`check_user_id`.

    :param header: the ``X-Portal-User-Id`` value as the WSGI server decoded it (ISO-8859-1,
        PEP 3333); its octets are read as UTF-8 (RFC 9110 §5.5 leaves non-ASCII octets to the
        application).
    :param query_string: the raw query string; its ``user_id`` parameter is percent-decoded
        and read as UTF-8 (the WHATWG URL form encoding).
    :returns: the user id; the header wins when both are present.
    :raises InvalidRequest: (400, ``invalid_user_id``) missing, or not UTF-8 (invalid bytes,
        or the encoded form of a lone surrogate such as ``%ED%A0%80``), or refused by
        :func:`check_user_id`. Invalid bytes are never replaced or left percent-encoded, so two
        different byte strings never become one id.
    """
    raw: bytes | None = None
    if header:
        try:
            raw = header.encode("latin-1")
        except UnicodeEncodeError:  # not from a WSGI server; already text
            return check_user_id(header, max_length)
    else:
        # ISO-8859-1 keeps every octet, raw or percent-encoded, as one code point.
        pairs = parse_qsl(query_string.decode("latin-1"), True, encoding="latin-1")
        raw = next((v.encode("latin-1") for k, v in pairs if k == "user_id"), None)
    # surrogateescape maps each invalid byte to a lone surrogate, which check_user_id refuses.
    user_id = raw.decode("utf-8", "surrogateescape") if raw is not None else None
    return check_user_id(user_id, max_length)


def normalize_origin(value: str | None) -> str | None:
    """``scheme://host[:port]`` in lowercase, default ports dropped; ``None`` if not an origin.

    Origins are compared as RFC 6454 serialisations; anything with a path, user info, query or
    fragment, or a scheme other than http/https, is not an origin. (A pure function of the
    string: the last 1,024 answers are remembered, since every API call normalises its
    ``Origin``.)
    """
    if not value or not isinstance(value, str) or len(value) > 255:
        return None
    return _normalize_origin(value)


@functools.lru_cache(maxsize=1024)
def _normalize_origin(value: str) -> str | None:
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
    #: The session's theme keys (portal.theme.Theme.as_dict()), checked when issued.
    theme: dict[str, str] | None = None


@dataclass(frozen=True)
class TicketClaims:
    """What a valid connect ticket says.

    ``attempt_id`` is the nonce that becomes the attempt's primary key; ``opener_origin`` is
    where the popup's result is posted (the portal's own origin when the iframe opened it, the
    host origin when ``portal.js`` did). ``project`` is the app key (tenant) of the caller the
    ticket was issued to: the attempt, and the account it connects, belong to it (``None`` in a
    ticket signed before projects existed). ``reconnect_account_id`` names the account a
    reconnect ticket re-authorizes (``POST /connected-accounts/<id>/reconnect``), else ``None``.
    ``scopes`` are the extra scopes the connect asks for (checked against the app's
    ``optional_scopes`` when the ticket was issued), ``()`` for none.
    """

    attempt_id: str
    user_id: str
    app: str
    host_origin: str
    opener_origin: str
    project: str | None = None
    reconnect_account_id: str | None = None
    scopes: tuple[str, ...] = ()
    #: The theme keys of the session the ticket was issued to (its popup pages wear them).
    theme: dict[str, str] | None = None


class TokenService:
    """Signs and checks session tokens and connect tickets with the app's ``SECRET_KEY``."""

    def __init__(self, secret_key: str | bytes, session_ttl: int, ticket_ttl: int) -> None:
        self._sessions = URLSafeTimedSerializer(secret_key, salt=SESSION_SALT)
        self._tickets = URLSafeTimedSerializer(secret_key, salt=TICKET_SALT)
        self.session_ttl = session_ttl
        self.ticket_ttl = ticket_ttl
        # token -> (claims, signed at): a token's signature and content never change, so one
        # HMAC check per token and process is enough; its age is still checked at every use.
        self._verified: OrderedDict[str, tuple[SessionClaims, float]] = OrderedDict()
        self._verified_lock = threading.Lock()

    def issue_session(
        self,
        user_id: str,
        origin: str,
        app_key: str | None,
        theme: dict[str, str] | None = None,
    ) -> tuple[str, int]:
        """A new session token and its expiry (Unix seconds). ``theme``: the session's checked
        theme keys (:meth:`portal.theme.Theme.as_dict`), carried in the token."""
        data: dict[str, Any] = {"u": user_id, "o": origin, "k": app_key}
        if theme:
            data["t"] = theme
        token = self._sessions.dumps(data)
        return token, int(time.time()) + self.session_ttl

    def read_session(self, token: str) -> SessionClaims:
        """Check a session token.

        :raises AuthenticationFailed: oversized, forged, or older than ``session_ttl``.
        """
        if len(token) > MAX_TOKEN_LENGTH:
            raise AuthenticationFailed("Session token is too long.", code="invalid_token")
        with self._verified_lock:
            known = self._verified.get(token)
            if known is not None:
                # itsdangerous' own age rule: expired when older than the TTL or from the future.
                if 0 <= int(time.time()) - known[1] <= self.session_ttl:
                    self._verified.move_to_end(token)
                    return known[0]
                del self._verified[token]
        try:
            data, signed_at = self._sessions.loads(
                token, max_age=self.session_ttl, return_timestamp=True
            )
        except SignatureExpired as exc:
            raise AuthenticationFailed("Session token expired.", code="token_expired") from exc
        except BadSignature as exc:
            raise AuthenticationFailed("Session token is invalid.", code="invalid_token") from exc
        claims = SessionClaims(
            user_id=data["u"],
            origin=data["o"],
            app_key=data.get("k"),
            expires_at=int(signed_at.timestamp()) + self.session_ttl,
            theme=data.get("t"),
        )
        with self._verified_lock:
            self._verified[token] = (claims, signed_at.timestamp())
            while len(self._verified) > VERIFIED_SESSIONS_MAX:
                self._verified.popitem(last=False)
        return claims

    def issue_ticket(
        self,
        user_id: str,
        app: str,
        host_origin: str,
        opener_origin: str,
        *,
        project: str,
        reconnect: str | None = None,
        scopes: Sequence[str] = (),
        theme: dict[str, str] | None = None,
    ) -> tuple[str, str, int]:
        """A new connect ticket for ``user_id`` of ``project`` (an app key):
        ``(ticket, attempt_id, expires_at)``. With ``reconnect`` (an account id) the ticket
        re-authorizes that account instead of adding one; ``scopes`` are extra scopes to ask
        for (already checked: :func:`portal.oauth.extra_scopes`)."""
        attempt_id = secrets.token_urlsafe(24)
        data: dict[str, Any] = {
            "n": attempt_id,
            "u": user_id,
            "a": app,
            "h": host_origin,
            "p": opener_origin,
            "k": project,
        }
        if reconnect is not None:
            data["r"] = reconnect
        if scopes:
            data["s"] = list(scopes)
        if theme:
            data["t"] = theme
        ticket = self._tickets.dumps(data)
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
            project=data.get("k"),
            reconnect_account_id=data.get("r"),
            scopes=tuple(str(s) for s in data.get("s") or ()),
            theme=data.get("t"),
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


# ----------------------------------------------------------------------------- JWT user tokens

#: JOSE header parameters refused in a user token: ``jwk``/``jku``/``x5u``/``x5c`` carry or point
#: at a key (the verification key must come from configuration only, RFC 8725 §3.1 and §3.10;
#: following ``jku`` would also be an SSRF), and ``crit`` demands extensions the portal does not
#: implement (RFC 7515 §4.1.11).
FORBIDDEN_JWT_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit"})
#: Clock skew tolerated on ``exp``, ``nbf`` and ``iat``, in seconds.
JWT_LEEWAY = 30
#: ``typ`` header values accepted when present (RFC 7519 §5.1, RFC 8725 §3.11).
JWT_TYPES = frozenset({"jwt", "application/jwt"})

_SigningKey = RSAKey | ECKey | OKPKey


def _user_token_error(message: str) -> AuthenticationFailed:
    return AuthenticationFailed(message, code="invalid_user_token")


def _b64json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    try:
        return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        return None


def peek_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The **unverified** ``(header, claims)`` of a JWS compact serialisation, else ``None``.

    Only for routing (is this bearer a JWT, and for which ``aud``?); nothing read here is
    trusted before :func:`verify_user_token` has checked the signature. A session token (three
    dot-separated parts as well) has no ``alg`` in its first part, so it is not a JWT here.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        return None
    header_part, claims_part, _ = token.split(".")
    header, claims = _b64json(header_part), _b64json(claims_part)
    if not isinstance(header, dict) or "alg" not in header or not isinstance(claims, dict):
        return None
    return header, claims


def _accepted_algorithms(algorithms: Iterable[str]) -> list[str]:
    # Never "none" and never a symmetric algorithm, whatever the configuration says: the keys
    # are public, so an HMAC keyed with one would let anybody mint tokens (RFC 8725 §2.1, §3.1).
    return [a for a in algorithms if a.lower() != "none" and not a.upper().startswith("HS")]


def _joserfc_key(key: Any) -> _SigningKey:
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return RSAKey.import_key(key)
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return ECKey.import_key(key)
    if isinstance(
        key,
        ed25519.Ed25519PublicKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PublicKey
        | ed448.Ed448PrivateKey,
    ):
        return OKPKey.import_key(key)
    raise ValueError(f"unsupported key type {type(key).__name__}")


@functools.lru_cache(maxsize=64)
def _public_key(pem: str) -> _SigningKey | None:
    # The key type is taken from the PEM itself, never guessed from a string: joserfc would
    # otherwise fall back to an "oct" (HMAC) key, the classic algorithm-confusion hole.
    try:
        return _joserfc_key(load_pem_public_key(pem.encode()))
    except (ValueError, TypeError):
        log.error("PORTAL_JWT_PUBLIC_KEYS holds an entry that is not a PEM public key; ignored")
        return None


def verify_user_token(
    token: Any,
    keys: Sequence[str],
    audience: str,
    algorithms: Collection[str],
    max_ttl: int,
    *,
    max_user_id_length: int = 255,
    now: int | None = None,
) -> str:
    """Verify a host-signed JWT user token (Paragon's ``authenticate``) and return its user id.

    The token is a JWS compact serialisation (RFC 7515 §7.1) of JWT claims (RFC 7519), checked
    along RFC 8725 (JSON Web Token Best Current Practices):

    * at most :data:`MAX_TOKEN_LENGTH` characters, checked before any decoding;
    * ``alg`` must be one of ``algorithms``; ``none`` and every ``HS*`` are refused even if
      configured (RFC 8725 §3.1, §3.2);
    * a header carrying ``jwk``, ``jku``, ``x5u``, ``x5c`` or ``crit`` is refused: the key is one
      of ``keys`` (PEM public keys from configuration), never one the token names, and nothing is
      fetched (RFC 8725 §3.10); ``typ``, when present, must be ``JWT`` (RFC 8725 §3.11);
    * the signature must verify with one of ``keys``;
    * ``exp`` is required and in the future (RFC 7519 §4.1.4), and at most ``max_ttl`` seconds
      ahead of now (and of ``iat`` when present); ``aud`` is required and must be (or contain)
      ``audience``, the projectId (§4.1.3, RFC 8725 §3.9); ``sub`` is required and is the user id,
      checked like ``userId`` (:func:`check_user_id`); ``iat`` and ``nbf`` are optional but must
      not be in the future. :data:`JWT_LEEWAY` seconds of clock skew are tolerated.

    :param token: the presented token.
    :param keys: PEM public keys (RSA, EC or Ed25519) of the project.
    :param audience: the projectId the token must be for.
    :param algorithms: accepted ``alg`` values (``PORTAL_JWT_ALGORITHMS``).
    :param max_ttl: longest accepted remaining lifetime, in seconds (``PORTAL_JWT_MAX_TTL``).
    :param max_user_id_length: longest accepted ``sub``, in characters.
    :param now: the current Unix time (tests); default :func:`time.time`.
    :returns: the ``sub`` claim, the end user's opaque id.
    :raises AuthenticationFailed: with code ``invalid_user_token`` and a message saying which
        check failed, for any of the above.
    """
    if not isinstance(token, str) or not token:
        raise _user_token_error("userToken must be a non-empty string.")
    if len(token) > MAX_TOKEN_LENGTH:
        raise _user_token_error(f"User token is longer than {MAX_TOKEN_LENGTH} characters.")
    peeked = peek_jwt(token)
    if peeked is None:
        raise _user_token_error("User token is not a signed JWT (JWS compact serialisation).")
    header = peeked[0]
    alg = header.get("alg")
    accepted = _accepted_algorithms(algorithms)
    if not isinstance(alg, str) or alg.lower() == "none":
        raise _user_token_error("Unsigned user tokens (alg none) are refused.")
    if alg.upper().startswith("HS"):
        raise _user_token_error(
            f"Symmetric algorithm {alg} is refused: sign user tokens with a private key "
            f"({', '.join(accepted)})."
        )
    if alg not in accepted:
        raise _user_token_error(f"Algorithm {alg} is not accepted ({', '.join(accepted)}).")
    forbidden = sorted(FORBIDDEN_JWT_HEADERS.intersection(header))
    if forbidden:
        raise _user_token_error(
            f"User token header carries {', '.join(forbidden)}: verification keys come from the "
            "portal's configuration only."
        )
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in JWT_TYPES):
        raise _user_token_error("User token `typ` header must be JWT.")

    registry = JWSRegistry(algorithms=[alg], strict_check_header=False)
    claims: dict[str, Any] | None = None
    for pem in keys:
        key = _public_key(pem)
        if key is None:
            continue
        try:
            claims = jwt.decode(token, key, registry=registry).claims
            break
        except (JoseError, ValueError, TypeError):
            continue
    if claims is None:
        raise _user_token_error(
            "User token signature does not verify with any key configured for this project."
        )

    current = int(time.time()) if now is None else now
    checks = jwt.JWTClaimsRegistry(
        now=current,
        leeway=JWT_LEEWAY,
        exp={"essential": True},
        aud={"essential": True, "value": audience},
        sub={"essential": True},
    )
    try:
        checks.validate(claims)
    except ExpiredTokenError as exc:
        raise _user_token_error("User token has expired.") from exc
    except (MissingClaimError, InvalidClaimError, JoseError) as exc:
        # e.g. "Missing claim: 'exp'", "Invalid claim: 'aud'"
        raise _user_token_error(f"User token refused: {exc.description}") from exc
    exp = claims["exp"]
    iat = claims.get("iat")
    if exp - current > max_ttl + JWT_LEEWAY or (iat is not None and exp - iat > max_ttl):
        raise _user_token_error(f"User token lives longer than the accepted {max_ttl} seconds.")
    try:
        return check_user_id(claims["sub"], max_user_id_length)
    except InvalidRequest as exc:
        raise _user_token_error(
            f"User token `sub` is not a valid user id: {exc.description}"
        ) from exc


def verify_bearer_user_token(
    token: str,
    public_keys: Mapping[str, Sequence[str]],
    algorithms: Collection[str],
    max_ttl: int,
    *,
    max_user_id_length: int = 255,
) -> tuple[str, str]:
    """A JWT user token presented as a bearer: ``(project_id, user_id)``.

    The project is the token's (unverified) ``aud`` that has keys in ``public_keys``; the token
    is then fully checked by :func:`verify_user_token` against that project's keys.

    :raises AuthenticationFailed: code ``invalid_user_token``.
    """
    peeked = peek_jwt(token)
    aud = peeked[1].get("aud") if peeked else None
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    projects = [a for a in audiences if isinstance(a, str) and public_keys.get(a)]
    if not projects:
        raise _user_token_error("User token is not for a project this portal knows.")
    failure: AuthenticationFailed | None = None
    for project in projects:
        try:
            user_id = verify_user_token(
                token,
                public_keys[project],
                project,
                algorithms,
                max_ttl,
                max_user_id_length=max_user_id_length,
            )
        except AuthenticationFailed as exc:
            failure = failure or exc
            continue
        return project, user_id
    assert failure is not None
    raise failure


def sign_user_token(
    private_key_pem: str | bytes,
    user_id: str,
    project_id: str,
    ttl: int = 3600,
    algorithm: str = "RS256",
) -> str:
    """A JWT user token for ``user_id``, as a host backend signs it for ``authenticate``.

    Claims (RFC 7519 §4.1): ``sub`` = ``user_id``, ``aud`` = ``project_id`` (the app key),
    ``iat`` = now, ``exp`` = now + ``ttl``. Header ``{"alg": algorithm, "typ": "JWT"}``.

    :param private_key_pem: an unencrypted PEM private key (RSA for ``RS*``/``PS*``, EC P-256 for
        ``ES256``, Ed25519 for ``EdDSA``).
    :param ttl: lifetime in seconds; keep it at most ``PORTAL_JWT_MAX_TTL``.
    :raises ValueError: ``algorithm`` is ``none`` or symmetric (RFC 8725 §3.1), or the key does
        not fit it.
    """
    if not _accepted_algorithms([algorithm]):
        raise ValueError(f"{algorithm} is not an asymmetric JWS algorithm.")
    pem = private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
    key = _joserfc_key(load_pem_private_key(pem, password=None))
    now = int(time.time())
    claims = {"sub": user_id, "aud": project_id, "iat": now, "exp": now + ttl}
    try:
        return jwt.encode(
            {"alg": algorithm}, claims, key, registry=JWSRegistry(algorithms=[algorithm])
        )
    except JoseError as exc:
        raise ValueError(f"Cannot sign with {algorithm}: {exc.description}") from exc
