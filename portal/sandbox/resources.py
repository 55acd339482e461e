"""Demo users, their contacts and the registered clients: queries the views call.

Every function takes the :class:`~sqlalchemy.orm.Session` to use; none commits except the ones
that write (:func:`seed_users`, :func:`load_clients`, :func:`create_contact`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from .config import SCOPE_DESCRIPTIONS, TOKEN_ENDPOINT_AUTH_METHODS
from .models import DEMO_CREDENTIALS, DEMO_USERS, Client, Contact, User, digest

#: Page size of ``GET /api/contacts`` when ``limit`` is absent.
DEFAULT_PAGE_SIZE = 10
#: Largest accepted ``limit``; larger values are clamped to it.
MAX_PAGE_SIZE = 100


class InvalidCursor(ValueError):
    """A ``cursor`` query parameter that this server did not issue."""


@dataclass(frozen=True)
class ContactPage:
    """One page of contacts and the opaque cursor of the next (``None`` on the last page)."""

    contacts: list[Contact]
    next_cursor: str | None


def seed_users(session: Session) -> None:
    """Insert :data:`~portal.sandbox.models.DEMO_USERS` and their contacts, once."""
    if session.scalar(select(User.id).limit(1)) is not None:
        return
    for username, name, email, contacts in DEMO_USERS:
        api_key, password = DEMO_CREDENTIALS[username]
        user = User(
            username=username,
            name=name,
            email=email,
            api_key_hash=digest(api_key),
            password_hash=digest(password),
        )
        session.add(user)
        session.flush()
        for contact_name, contact_email in contacts:
            session.add(Contact(user_id=user.id, name=contact_name, email=contact_email))
    session.commit()


def validate_client_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check one ``SANDBOX_CLIENTS`` entry and fill its defaults.

    :returns: ``{client_id, client_secret, client_name, redirect_uris, scope,
        token_endpoint_auth_method, grant_types, owner_id}``.
    :raises ValueError: on a missing ``client_id``, no or non-absolute ``redirect_uris`` (for a
        client of the code grant), an unknown scope, auth method or grant type, a confidential
        client without a secret, or a client credentials client without a known ``user``.
    """
    client_id = raw.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise ValueError(f"SANDBOX_CLIENTS entry without a client_id: {dict(raw)!r}")
    method = raw.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in TOKEN_ENDPOINT_AUTH_METHODS:
        raise ValueError(f"client {client_id!r}: unknown token_endpoint_auth_method {method!r}")
    secret = raw.get("client_secret")
    if method != "none" and not secret:
        raise ValueError(f"client {client_id!r}: {method} needs a client_secret")
    grant_types = list(raw.get("grant_types") or ["authorization_code", "refresh_token"])
    unknown_grants = set(grant_types) - {
        "authorization_code",
        "refresh_token",
        "client_credentials",
    }
    if unknown_grants:
        raise ValueError(f"client {client_id!r}: unknown grant types {sorted(unknown_grants)}")
    owner_id = None
    if "client_credentials" in grant_types:
        names = [u[0] for u in DEMO_USERS]
        if raw.get("user") not in names:
            raise ValueError(f"client {client_id!r}: client_credentials needs a demo `user`")
        owner_id = raw["user"]  # a username here; load_clients turns it into the user's id
    uris = list(raw.get("redirect_uris") or [])
    if not uris and "authorization_code" in grant_types:
        raise ValueError(f"client {client_id!r}: redirect_uris is empty")
    for uri in uris:
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            raise ValueError(f"client {client_id!r}: redirect URI {uri!r} is not absolute")
    scope = raw.get("scope") or " ".join(SCOPE_DESCRIPTIONS)
    unknown = set(scope.split()) - set(SCOPE_DESCRIPTIONS)
    if unknown:
        raise ValueError(f"client {client_id!r}: unknown scopes {sorted(unknown)}")
    return {
        "client_id": client_id,
        "client_secret": secret if method != "none" else None,
        "client_name": raw.get("client_name") or client_id,
        "redirect_uris": uris,
        "scope": " ".join(scope.split()),
        "token_endpoint_auth_method": method,
        "grant_types": grant_types,
        "owner_id": owner_id,
    }


def load_clients(session: Session, clients: Iterable[Mapping[str, Any]]) -> None:
    """Insert or update each configured client (see ``SANDBOX_CLIENTS``).

    :raises ValueError: from :func:`validate_client_config`.
    """
    for raw in clients:
        data = validate_client_config(raw)
        if data["owner_id"] is not None:
            data["owner_id"] = session.scalar(
                select(User.id).where(User.username == data["owner_id"])
            )
        client = session.scalar(select(Client).where(Client.client_id == data["client_id"]))
        if client is None:
            session.add(Client(**data))
        else:
            for key, value in data.items():
                setattr(client, key, value)
    session.commit()


def get_client(session: Session, client_id: str) -> Client | None:
    """The registered client with this ``client_id``."""
    return session.scalar(select(Client).where(Client.client_id == client_id))


def list_users(session: Session) -> list[User]:
    """Every demo user, in seeding order."""
    return list(session.scalars(select(User).order_by(User.id)))


def get_user(session: Session, user_id: int) -> User | None:
    """The demo user with this primary key."""
    return session.get(User, user_id)


def user_by_api_key(session: Session, api_key: str) -> User | None:
    """The demo user whose API key this is (looked up by digest)."""
    if not api_key:
        return None
    return session.scalar(select(User).where(User.api_key_hash == digest(api_key)))


def user_by_password(session: Session, username: str, password: str) -> User | None:
    """The demo user with this username and password (digest compared in constant time)."""
    user = session.scalar(select(User).where(User.username == username))
    expected = user.password_hash if user is not None and user.password_hash else digest("")
    matches = hmac.compare_digest(expected, digest(password))
    return user if user is not None and user.password_hash and matches else None


def profile_json(user: User) -> dict[str, str]:
    """``{id, username, name, email}``: the ``/api/me`` and ``/{apikey,basic}/me`` shape."""
    return {"id": user.sub, "username": user.username, "name": user.name, "email": user.email}


def user_json(user: User) -> dict[str, str]:
    """``{sub, name, email, preferred_username}``: OIDC Core §5.1 standard claims."""
    return {
        "sub": user.sub,
        "name": user.name,
        "email": user.email,
        "preferred_username": user.username,
    }


def contact_json(contact: Contact) -> dict[str, str]:
    """``{id, name, email, created_at}`` with ``id`` a string and ``created_at`` ISO-8601 UTC."""
    created = datetime.fromtimestamp(contact.created_at, UTC)
    return {
        "id": str(contact.id),
        "name": contact.name,
        "email": contact.email,
        "created_at": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def _encode_cursor(after_id: int) -> str:
    raw = json.dumps({"after": after_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        after = json.loads(raw)["after"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidCursor("cursor is not one this server issued") from exc
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise InvalidCursor("cursor is not one this server issued")
    return after


def list_contacts(
    session: Session, user: User, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
) -> ContactPage:
    """One page of ``user``'s contacts in creation order (keyset pagination on ``id``).

    :param limit: page size, clamped to ``1..MAX_PAGE_SIZE``.
    :param cursor: ``next_cursor`` of the previous page, or ``None`` for the first.
    :raises InvalidCursor: if ``cursor`` does not decode.
    """
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    after = _decode_cursor(cursor) if cursor else 0
    rows = list(
        session.scalars(
            select(Contact)
            .where(Contact.user_id == user.id, Contact.id > after)
            .order_by(Contact.id)
            .limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return ContactPage(rows, _encode_cursor(rows[-1].id) if more else None)


def get_contact(session: Session, user: User, contact_id: int) -> Contact | None:
    """``user``'s contact with this id; ``None`` for another user's (no existence leak)."""
    return session.scalar(
        select(Contact).where(Contact.id == contact_id, Contact.user_id == user.id)
    )


def delete_contact(session: Session, user: User, contact_id: int) -> bool:
    """Remove ``user``'s contact with this id and commit; ``False`` when there is none (another
    user's contact is none too: no existence leak)."""
    found = get_contact(session, user, contact_id)
    if found is None:
        return False
    session.delete(found)
    session.commit()
    return True


def create_contact(session: Session, user: User, name: str, email: str) -> Contact:
    """Add a contact to ``user``'s address book and commit."""
    contact = Contact(user_id=user.id, name=name, email=email)
    session.add(contact)
    session.commit()
    return contact
