"""SQLAlchemy 2 models of the sandbox provider, and the demo data it is seeded with.

Tables are prefixed ``sandbox_`` and live on their own :class:`Base`, never on the portal's.
Tokens and authorization codes are stored as SHA-256 digests only: the raw values exist in the
token response and nowhere else.

The three OAuth models implement Authlib's duck-typed mixins
(:class:`authlib.oauth2.rfc6749.ClientMixin`, ``AuthorizationCodeMixin``, ``TokenMixin``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, TokenMixin
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list
from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def digest(value: str) -> str:
    """SHA-256 hex digest of a token or code, the only form in which one is stored."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class Base(DeclarativeBase):
    """Declarative base of every sandbox table."""


class User(Base):
    """A demo resource owner. ``sub`` (RFC 7519 / OIDC) is the string form of ``id``."""

    __tablename__ = "sandbox_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    #: SHA-256 of the user's demo API key (``sk_demo_<username>``), see :data:`DEMO_CREDENTIALS`.
    api_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    #: SHA-256 of the user's published demo password (never a real one).
    password_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)

    @property
    def sub(self) -> str:
        """Stable subject identifier, e.g. ``"1"``."""
        return str(self.id)

    def get_user_id(self) -> int:
        """Authlib's user protocol."""
        return self.id


class Contact(Base):
    """One contact in a demo user's address book."""

    __tablename__ = "sandbox_contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("sandbox_users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[float] = mapped_column(Float, default=time.time)


class Client(Base, ClientMixin):
    """A registered OAuth client (RFC 6749 §2), loaded from ``SANDBOX_CLIENTS``."""

    __tablename__ = "sandbox_clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(100), unique=True)
    client_secret: Mapped[str | None] = mapped_column(String(200), nullable=True)
    client_name: Mapped[str] = mapped_column(String(200))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    scope: Mapped[str] = mapped_column(Text)
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(40))
    #: Grants this client may use (RFC 7591 §2 ``grant_types``).
    grant_types: Mapped[list[str]] = mapped_column(
        JSON, default=lambda: ["authorization_code", "refresh_token"]
    )
    #: The demo user a machine-to-machine client acts for (client credentials grant only).
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("sandbox_users.id"), nullable=True)

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str | None) -> str:
        """The requested scopes this client may have; all of its scopes when none are requested
        (RFC 6749 §3.3 lets the server apply a pre-defined default)."""
        allowed = scope_to_list(self.scope) or []
        if not scope:
            return str(list_to_scope(allowed))
        # Commas too: apps such as Slack join scopes with "," (catalog scope_separator).
        requested = [s for s in re.split(r"[\s,]+", scope) if s]
        return str(list_to_scope([s for s in requested if s in allowed]))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact string match against the registered URIs (RFC 9700 §4.1.3)."""
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if self.client_secret is None:
            return False
        return hmac.compare_digest(self.client_secret.encode(), client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # One registered method for the token and the revocation endpoint alike.
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


class AuthorizationCode(Base, AuthorizationCodeMixin):
    """An issued authorization code (RFC 6749 §4.1.2) with its PKCE challenge (RFC 7636 §4.4).

    ``grant_id`` names the authorization: every token descended from this code carries it, so
    replaying the code or reusing a rotated refresh token revokes them all at once.
    ``used_at`` is set when the code is redeemed; a code is never redeemed twice.
    """

    __tablename__ = "sandbox_authorization_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    grant_id: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int] = mapped_column(ForeignKey("sandbox_users.id"))
    redirect_uri: Mapped[str] = mapped_column(Text, default="")
    scope: Mapped[str] = mapped_column(Text, default="")
    #: ``""`` when the request carried none (allowed only with the ``"optional"`` PKCE policy).
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(10))
    #: The OpenID Connect ``nonce`` of the authorization request (``None``: none sent).
    nonce: Mapped[str | None] = mapped_column(String(255), nullable=True, default=None)
    #: ``/regions/<region>/tenants/<workspace>`` the code was issued under (``None``: the root
    #: endpoints); it is redeemed only there, and its tokens only work there.
    tenant: Mapped[str | None] = mapped_column(String(140), nullable=True)
    issued_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return self.expires_at <= time.time()

    def get_nonce(self) -> str | None:
        """The request's OpenID Connect ``nonce`` (Authlib's ``AuthorizationCodeMixin``)."""
        return self.nonce

    def get_auth_time(self) -> int:
        """When the user consented (Unix seconds): the code's issue time."""
        return int(self.issued_at)

    def get_acr(self) -> str | None:
        """No authentication context class (OpenID Connect Core §2)."""
        return None

    def get_amr(self) -> list[str] | None:
        """No authentication methods reference (RFC 8176)."""
        return None


class Token(Base, TokenMixin):
    """One access token and its refresh token (RFC 6749 §1.4, §1.5).

    A refresh exchange marks this row's refresh token revoked and adds a row with the same
    ``grant_id`` (rotation, RFC 9700 §4.14.2). The access token stays valid until it expires or
    its grant is revoked.
    """

    __tablename__ = "sandbox_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int] = mapped_column(ForeignKey("sandbox_users.id"))
    token_type: Mapped[str] = mapped_column(String(40), default="Bearer")
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    issued_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    access_token_revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    refresh_token_revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: The tenant of the authorization (see :attr:`AuthorizationCode.tenant`).
    tenant: Mapped[str | None] = mapped_column(String(140), nullable=True)

    def check_client(self, client: Any) -> bool:
        return bool(self.client_id == client.get_client_id())

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, int(self.expires_at - self.issued_at))

    def is_expired(self) -> bool:
        return self.expires_at <= time.time()

    def is_revoked(self) -> bool:
        """Whether the *access token* is revoked (a rotated refresh token does not count)."""
        return self.access_token_revoked_at is not None

    def refresh_token_active(self) -> bool:
        """Whether the refresh token may still be exchanged."""
        return self.refresh_token_hash is not None and self.refresh_token_revoked_at is None


#: Demo users: ``(username, name, email, [(contact name, contact email), ...])``.
DEMO_USERS: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    (
        "ada",
        "Ada Lovelace",
        "ada@sandbox.test",
        [
            ("Charles Babbage", "charles@sandbox.test"),
            ("Mary Somerville", "mary@sandbox.test"),
            ("Augustus De Morgan", "augustus@sandbox.test"),
            ("Michael Faraday", "michael@sandbox.test"),
            ("Charles Wheatstone", "wheatstone@sandbox.test"),
            ("Annabella Byron", "annabella@sandbox.test"),
            ("William King", "william@sandbox.test"),
            ("Sophia De Morgan", "sophia@sandbox.test"),
            ("John Herschel", "john@sandbox.test"),
            ("Luigi Menabrea", "luigi@sandbox.test"),
            ("Andrew Crosse", "andrew@sandbox.test"),
            ("Charles Dickens", "dickens@sandbox.test"),
        ],
    ),
    (
        "grace",
        "Grace Hopper",
        "grace@sandbox.test",
        [
            ("Howard Aiken", "howard@sandbox.test"),
            ("Jean Sammet", "jean@sandbox.test"),
            ("Betty Holberton", "betty@sandbox.test"),
            ("Richard Bloch", "richard@sandbox.test"),
        ],
    ),
    (
        "linus",
        "Linus Torvalds",
        "linus@sandbox.test",
        [
            ("Alan Cox", "alan@sandbox.test"),
            ("Greg Kroah-Hartman", "greg@sandbox.test"),
            ("Junio Hamano", "junio@sandbox.test"),
        ],
    ),
]

#: Demo credentials of the non-OAuth sandbox apps: ``username -> (API key, password)``. They are
#: published on purpose (the portal's app catalog shows them as hints).
DEMO_CREDENTIALS: dict[str, tuple[str, str]] = {
    "ada": ("sk_demo_ada", "lovelace"),
    "grace": ("sk_demo_grace", "hopper"),
    "linus": ("sk_demo_linus", "torvalds"),
}
