"""The OAuth 2.0 authorization server: Authlib's Flask integration, configured strictly.

- Authorization code grant only (RFC 6749 §4.1), with PKCE required for every client and
  ``S256`` the only method (RFC 7636, RFC 9700 §2.1.1). Codes live
  ``SANDBOX_AUTHORIZATION_CODE_TTL`` seconds and are redeemed once; presenting a redeemed code
  revokes every token issued from it (RFC 6749 §4.1.2).
- Refresh token grant with rotation: every refresh returns a new refresh token and retires the
  old one; presenting a retired refresh token revokes the whole grant (RFC 9700 §4.14.2).
- Client credentials grant (RFC 6749 §4.4) for machine-to-machine clients registered with
  ``grant_types: [client_credentials]``; their tokens act for the client's demo ``user``.
- Tenant endpoints (``/regions/<region>/tenants/<workspace>/oauth/…``, see
  :mod:`portal.sandbox.variants`): a code or refresh token is redeemed only under the tenant it
  was issued under, and its access tokens only work there.
- Every authorization response, success or error, carries ``iss`` (RFC 9207 §2).
- OpenID Connect Core 1.0 §3.1: a code granted with the ``openid`` scope also buys an RS256
  ``id_token`` (``iss``, ``aud`` = client id, ``sub``, ``nonce`` of the authorization request,
  ``at_hash``), verifiable with the keys at ``/oauth/jwks``. The ``/_sandbox/faults`` hook can
  make PKCE optional for confidential clients and give the ``id_token`` a wrong ``nonce``.
- Revocation (RFC 7009) of access or refresh tokens; revoking a refresh token revokes its grant
  (RFC 7009 §2.1).
- A bearer :class:`~authlib.integrations.flask_oauth2.ResourceProtector` for userinfo and the API
  (RFC 6750).
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any, cast

from authlib.common.security import generate_token
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, OAuth2Request, grants
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, Response, current_app, g
from joserfc.jwk import RSAKey
from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from .config import SCOPE_DESCRIPTIONS, TOKEN_ENDPOINT_AUTH_METHODS
from .db import db_session
from .models import AuthorizationCode, Client, Token, User, digest
from .resources import get_client
from .state import sandbox_state

#: Realm named in ``WWW-Authenticate`` challenges (RFC 6750 §3).
REALM = "sandbox"
_G_TENANT = "_sandbox_tenant"


def current_tenant() -> str | None:
    """The tenant (``<region>/<workspace>``) the current request came in under, if any."""
    tenant: str | None = g.get(_G_TENANT)
    return tenant


def set_tenant(tenant: str | None) -> None:
    """Mark the current request as one under ``tenant`` (see :func:`current_tenant`)."""
    setattr(g, _G_TENANT, tenant)


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


def revoke_grant(session: Session, grant_id: str) -> None:
    """Revoke every access and refresh token descended from one authorization, and retire its
    code. Does not commit."""
    now = time.time()
    session.execute(
        update(Token)
        .where(Token.grant_id == grant_id, Token.access_token_revoked_at.is_(None))
        .values(access_token_revoked_at=now)
    )
    session.execute(
        update(Token)
        .where(Token.grant_id == grant_id, Token.refresh_token_revoked_at.is_(None))
        .values(refresh_token_revoked_at=now)
    )
    session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.grant_id == grant_id, AuthorizationCode.used_at.is_(None))
        .values(used_at=now)
    )


def expire_access_tokens(session: Session) -> int:
    """Make every unexpired access token expired now (refresh tokens stay usable) and commit.

    :returns: how many access tokens were changed.
    """
    now = time.time()
    result = session.execute(update(Token).where(Token.expires_at > now).values(expires_at=now - 1))
    session.commit()
    return _rowcount(result)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    """RFC 6749 §4.1 with single-use, hashed, short-lived codes bound to a PKCE challenge."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(TOKEN_ENDPOINT_AUTH_METHODS)

    def save_authorization_code(self, code: str, request: OAuth2Request) -> AuthorizationCode:
        session = db_session()
        data = request.payload.data
        now = time.time()
        row = AuthorizationCode(
            code_hash=digest(code),
            grant_id=secrets.token_hex(16),
            client_id=request.client.get_client_id(),
            user_id=request.user.id,
            redirect_uri=request.payload.redirect_uri or "",
            scope=request.scope or "",
            code_challenge=data.get("code_challenge") or "",
            code_challenge_method=data.get("code_challenge_method") or "",
            nonce=data.get("nonce") or None,
            tenant=current_tenant(),
            issued_at=now,
            expires_at=now + float(current_app.config["SANDBOX_AUTHORIZATION_CODE_TTL"]),
        )
        session.add(row)
        session.commit()
        return row

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        session = db_session()
        row: AuthorizationCode | None = session.scalar(
            select(AuthorizationCode).where(AuthorizationCode.code_hash == digest(code))
        )
        if row is None or row.client_id != client.get_client_id():
            return None
        if row.tenant != current_tenant():
            return None  # issued under another tenant: unknown here
        if row.used_at is not None:
            # RFC 6749 §4.1.2: a code used twice is refused, and the tokens it bought revoked.
            revoke_grant(session, row.grant_id)
            session.commit()
            return None
        if row.is_expired():
            return None
        return row

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        # Runs after save_token (same transaction): claim the code atomically so two concurrent
        # exchanges cannot both succeed; the loser's token row is rolled back.
        session = db_session()
        claimed = _rowcount(
            session.execute(
                update(AuthorizationCode)
                .where(
                    AuthorizationCode.id == authorization_code.id,
                    AuthorizationCode.used_at.is_(None),
                )
                .values(used_at=time.time())
            )
        )
        if claimed != 1:
            session.rollback()
            raise InvalidGrantError("The authorization code was already used.")
        session.commit()

    def authenticate_user(self, authorization_code: AuthorizationCode) -> User | None:
        return db_session().get(User, authorization_code.user_id)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """RFC 6749 §6 with rotation and reuse detection (RFC 9700 §4.14.2)."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(TOKEN_ENDPOINT_AUTH_METHODS)
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        session = db_session()
        row: Token | None = session.scalar(
            select(Token).where(Token.refresh_token_hash == digest(refresh_token))
        )
        if row is None or row.tenant != current_tenant():
            return None
        if not row.refresh_token_active():
            client = self.request.client
            if client is not None and row.check_client(client):
                # A retired refresh token came back: someone holds a copy. Revoke the grant.
                revoke_grant(session, row.grant_id)
                session.commit()
            return None
        return row

    def authenticate_user(self, refresh_token: Token) -> User | None:
        return db_session().get(User, refresh_token.user_id)

    def revoke_old_credential(self, refresh_token: Token) -> None:
        # Runs after save_token (same transaction): retire the presented refresh token
        # atomically; if a concurrent refresh already did, roll back the new token.
        session = db_session()
        claimed = _rowcount(
            session.execute(
                update(Token)
                .where(Token.id == refresh_token.id, Token.refresh_token_revoked_at.is_(None))
                .values(refresh_token_revoked_at=time.time())
            )
        )
        if claimed != 1:
            session.rollback()
            raise InvalidGrantError("The refresh token was already used.")
        session.commit()


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """RFC 6749 §4.4 for machine-to-machine clients; no refresh token (§4.4.3)."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class RequiredS256CodeChallenge(CodeChallenge):
    """PKCE for every client, confidential ones included, and ``S256`` only (RFC 9700 §2.1.1:
    ``plain`` adds nothing when the challenge can leak)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge") and not data.get("code_challenge_method"):
            # The "optional" policy (a test hook) lets a confidential client go without PKCE,
            # as most real providers do; public clients always need it (RFC 7636 §4.4.1).
            client = grant.request.client
            optional = sandbox_state().monitor.pkce == "optional"
            if optional and client is not None and client.token_endpoint_auth_method != "none":
                return
        if not data.get("code_challenge"):
            raise InvalidRequestError(
                "PKCE is required: send code_challenge and code_challenge_method=S256 (RFC 7636)."
            )
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is supported.")
        super().validate_code_challenge(grant, redirect_uri)


class OpenIDConnect(OpenIDCode):
    """OpenID Connect Core 1.0 §3.1.3.3: an RS256 ``id_token`` for codes granted with the
    ``openid`` scope, carrying the authorization request's ``nonce`` (§3.1.2.1) — or, with the
    ``wrong_nonce`` fault set, another one."""

    def __init__(self, key: RSAKey) -> None:
        super().__init__(require_nonce=False)
        self._key = key

    def resolve_client_private_key(self, client: Any) -> RSAKey:
        return self._key

    def get_client_algorithm(self, client: Any) -> str:
        return "RS256"

    def get_encode_header(self, client: Any) -> dict[str, str]:
        return {"alg": "RS256", "kid": str(self._key.kid)}

    def get_client_claims(self, client: Any) -> dict[str, Any]:
        return {
            "iss": str(current_app.config["SANDBOX_ISSUER"]),
            "aud": [client.get_client_id()],
        }

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        # A nonce is single-use per client (OpenID Connect Core §15.5.2).
        return (
            db_session().scalar(
                select(AuthorizationCode.id).where(
                    AuthorizationCode.client_id == request.payload.client_id,
                    AuthorizationCode.nonce == nonce,
                )
            )
            is not None
        )

    def get_authorization_code_claims(self, authorization_code: Any) -> dict[str, Any]:
        claims: dict[str, Any] = super().get_authorization_code_claims(authorization_code)
        if sandbox_state().monitor.id_token_fault == "wrong_nonce":
            claims["nonce"] = "not-" + str(claims.get("nonce", "the-nonce-sent"))
        return claims

    def generate_user_info(self, user: User, scope: str) -> UserInfo:
        info = UserInfo(sub=user.sub)
        if "profile" in scope.split():
            info.update(name=user.name, preferred_username=user.username, email=user.email)
        return info


class Issuer(IssuerParameter):
    """Adds ``iss`` = ``SANDBOX_ISSUER`` to every authorization response (RFC 9207 §2)."""

    def get_issuer(self) -> str:
        return str(current_app.config["SANDBOX_ISSUER"])

    def add_to(self, response: Response) -> Response:
        """Add ``iss`` to a redirect built outside ``create_authorization_response``."""
        self.add_issuer_parameter(None, response)
        return response


class Revocation(RevocationEndpoint):
    """RFC 7009 token revocation, searching both token types whatever the hint (§2.1)."""

    CLIENT_AUTH_METHODS = list(TOKEN_ENDPOINT_AUTH_METHODS)

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        session = db_session()
        value = digest(token_string)
        by_access = select(Token).where(Token.access_token_hash == value)
        by_refresh = select(Token).where(Token.refresh_token_hash == value)
        order = (
            [by_refresh, by_access]
            if token_type_hint == "refresh_token"
            else [
                by_access,
                by_refresh,
            ]
        )
        for query in order:
            row: Token | None = session.scalar(query)
            if row is not None:
                return row
        return None

    def revoke_token(self, token: Token, request: OAuth2Request) -> None:
        session = db_session()
        if token.refresh_token_hash == digest(request.form["token"]):
            if token.refresh_token_active():
                revoke_grant(session, token.grant_id)
        elif token.access_token_revoked_at is None:
            token.access_token_revoked_at = time.time()
        session.commit()


class BearerValidator(BearerTokenValidator):
    """Looks access tokens up by digest; expiry, revocation and scope are checked by Authlib."""

    def authenticate_token(self, token_string: str) -> Token | None:
        return db_session().scalar(
            select(Token).where(Token.access_token_hash == digest(token_string))
        )


def _query_client(client_id: str) -> Client | None:
    return get_client(db_session(), client_id)


def _save_token(token: dict[str, Any], request: OAuth2Request) -> None:
    # Flushed, not committed: the code claim / refresh retirement that follows commits both.
    # Client credentials tokens are committed here: nothing follows them.
    grant_type = request.payload.grant_type
    if grant_type == "refresh_token":
        grant_id, user_id = request.refresh_token.grant_id, request.user.id
        tenant = request.refresh_token.tenant
    elif grant_type == "client_credentials":
        grant_id, user_id, tenant = secrets.token_hex(16), request.client.owner_id, None
    else:
        grant_id, user_id = request.authorization_code.grant_id, request.user.id
        tenant = request.authorization_code.tenant
    now = time.time()
    refresh = token.get("refresh_token")
    session = db_session()
    session.add(
        Token(
            grant_id=grant_id,
            client_id=request.client.get_client_id(),
            user_id=user_id,
            tenant=tenant,
            token_type=token["token_type"],
            access_token_hash=digest(token["access_token"]),
            refresh_token_hash=digest(refresh) if refresh else None,
            scope=token.get("scope", ""),
            issued_at=now,
            expires_at=now + int(token["expires_in"]),
        )
    )
    session.flush()
    if grant_type == "client_credentials":
        session.commit()


def _expires_in(client: Client, grant_type: str) -> int:
    return int(current_app.config["SANDBOX_ACCESS_TOKEN_TTL"])


def _random_token(**kwargs: Any) -> str:
    return str(generate_token(48))


class _Server(AuthorizationServer):
    """Authlib's server, reading a requested scope split on spaces or commas (Slack-style
    apps join scopes with ``,``; see the catalog's ``scope_separator``)."""

    def validate_requested_scope(self, scope: str | None) -> None:
        super().validate_requested_scope(" ".join(re.split(r"[\s,]+", scope)) if scope else scope)


def create_authorization_server(app: Flask, id_token_key: RSAKey) -> AuthorizationServer:
    """The configured Authlib server: code + PKCE S256 (+ OpenID Connect ``id_token`` signed
    with ``id_token_key``), rotating refresh, RFC 7009, RFC 9207."""
    server = _Server(app, query_client=_query_client, save_token=_save_token)
    server.scopes_supported = list(SCOPE_DESCRIPTIONS)
    server.register_token_generator(
        "default", BearerTokenGenerator(_random_token, _random_token, _expires_in)
    )
    server.register_grant(
        AuthorizationCodeGrant,
        [RequiredS256CodeChallenge(required=True), OpenIDConnect(id_token_key)],
    )
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_endpoint(Revocation)
    server.register_extension(Issuer())
    return server


def create_resource_protector() -> ResourceProtector:
    """A bearer-token protector (RFC 6750) backed by :class:`BearerValidator`."""
    protector = ResourceProtector()
    protector.register_token_validator(BearerValidator(realm=REALM))
    return protector
