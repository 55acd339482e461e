"""Hosted connect links: a URL the host sends by e-mail, SMS or support chat.

``POST /api/v1/connect-links`` (app secret) calls :func:`create`; the URL it answers,
``<portal>/link?token=…``, opens the connect flow of one app on the portal's own origin with no
host page. The link is single-use (:func:`spend` spends it in one conditional update),
expires (``expiresIn`` seconds, :data:`DEFAULT_TTL` by default, at most :data:`MAX_TTL`) and
can be revoked (:func:`revoke`). After the connect the browser goes to ``successUrl`` or
``errorUrl`` (both on ``PORTAL_ALLOWED_ORIGINS``) with the attempt id only, like redirect mode.

The token travels in the query string: the portal's access line logs the path only, and the
development server's access line masks ``token=`` (:mod:`portal.logs`). Only its SHA-256 is
stored.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, select, update

from .auth import origin_of_url
from .errors import InvalidConnectAttempt, InvalidRequest, ResourceNotFound
from .store import ConnectLink, utcnow

if TYPE_CHECKING:
    from .state import PortalState

#: Lifetime of a link when ``expiresIn`` is not given, in seconds (30 minutes, as Nango's).
DEFAULT_TTL = 30 * 60
#: The longest ``expiresIn`` accepted, in seconds (7 days).
MAX_TTL = 7 * 24 * 3600


@dataclass(frozen=True)
class Created:
    """A new link: its id, its token (shown once, in the URL) and its expiry."""

    id: str
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class Opened:
    """A link just spent: who and what it connects, and where the browser goes after."""

    id: str
    project: str
    user_id: str
    app: str
    success_url: str | None


def hash_token(token: str) -> str:
    """SHA-256 hex of a link token: only the hash is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def allowed_url(state: PortalState, value: Any, name: str) -> str | None:
    """``value`` when it is an absolute http(s) URL on ``PORTAL_ALLOWED_ORIGINS`` (or the
    portal's own origin), ``None`` when absent.

    :raises InvalidRequest: 400 ``invalid_redirect``, any other value (a hostile URL is refused
        when the link is made, never followed later).
    """
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 2048:
        raise InvalidRequest(f"`{name}` must be a URL.", code="invalid_redirect")
    origin = origin_of_url(value)
    if origin is None or (origin not in state.allowed_origins and origin != state.own_origin):
        raise InvalidRequest(
            f"`{name}` must be on one of PORTAL_ALLOWED_ORIGINS.", code="invalid_redirect"
        )
    return value


def ttl(value: Any) -> int:
    """The link lifetime in seconds from ``expiresIn`` (``None``: :data:`DEFAULT_TTL`).

    :raises InvalidRequest: not an integer from 60 to :data:`MAX_TTL`.
    """
    if value is None:
        return DEFAULT_TTL
    if isinstance(value, bool) or not isinstance(value, int) or not 60 <= value <= MAX_TTL:
        raise InvalidRequest(
            f"`expiresIn` must be a whole number of seconds from 60 to {MAX_TTL}.",
            code="invalid_expires_in",
        )
    return value


def create(
    state: PortalState,
    *,
    project: str,
    user_id: str,
    app: str,
    expires_in: int,
    success_url: str | None,
    error_url: str | None,
) -> Created:
    """Store a new link for ``user_id`` of ``project`` to connect ``app`` (arguments already
    checked: :func:`allowed_url`, :func:`ttl`)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    link = ConnectLink(
        id="cl_" + secrets.token_urlsafe(18),
        project=project,
        user_id=user_id,
        app=app,
        token_hash=hash_token(token),
        success_url=success_url,
        error_url=error_url,
        expires_at=now + timedelta(seconds=expires_in),
        created_at=now,
    )
    with state.store.session() as db:
        db.add(link)
    return Created(link.id, token, link.expires_at)


def revoke(state: PortalState, link_id: str, *, project: str) -> None:
    """Revoke link ``link_id`` of ``project`` (again: no change).

    :raises ResourceNotFound: no such link in ``project``.
    """
    with state.store.session() as db:
        link = db.scalars(
            select(ConnectLink).where(ConnectLink.id == link_id, ConnectLink.project == project)
        ).first()
        if link is None:
            raise ResourceNotFound("There is no such connect link.")
        if link.revoked_at is None:
            link.revoked_at = utcnow()


def peek(state: PortalState, token: str | None) -> Opened:
    """The usable link of ``token`` (nothing is changed: :func:`spend` spends it).

    :raises InvalidConnectAttempt: unknown, used or revoked (``invalid_link``; the message does
        not say which, so a token cannot be probed) or expired (``link_expired``): the end user
        reads it on a page.
    """
    if not token or len(token) > 128:
        raise InvalidConnectAttempt("This connect link is not valid.", code="invalid_link")
    with state.store.read() as db:
        link = db.scalars(
            select(ConnectLink).where(ConnectLink.token_hash == hash_token(token))
        ).first()
    if link is None or link.used_at is not None or link.revoked_at is not None:
        raise InvalidConnectAttempt(
            "This connect link is not valid any more. Ask for a new one.", code="invalid_link"
        )
    if link.expires_at <= utcnow():
        raise InvalidConnectAttempt(
            "This connect link has expired. Ask for a new one.", code="link_expired"
        )
    return Opened(link.id, link.project, link.user_id, link.app, link.success_url)


def spend(state: PortalState, link_id: str, attempt_id: str) -> None:
    """Mark link ``link_id`` used by connect attempt ``attempt_id``: one conditional update, so
    of two browsers opening it at once only one goes on.

    :raises InvalidConnectAttempt: ``invalid_link``, it was used, revoked or expired meanwhile.
    """
    now = utcnow()
    with state.store.session() as db:
        result = cast(
            "CursorResult[Any]",
            db.execute(
                update(ConnectLink)
                .where(
                    ConnectLink.id == link_id,
                    ConnectLink.used_at.is_(None),
                    ConnectLink.revoked_at.is_(None),
                    ConnectLink.expires_at > now,
                )
                .values(used_at=now, attempt_id=attempt_id)
            ),
        )
        if not result.rowcount:
            raise InvalidConnectAttempt(
                "This connect link is not valid any more. Ask for a new one.",
                code="invalid_link",
            )


def error_url(state: PortalState, attempt_id: str) -> str | None:
    """The ``errorUrl`` of the link that started attempt ``attempt_id``, if any."""
    with state.store.read() as db:
        value: str | None = db.scalar(
            select(ConnectLink.error_url).where(ConnectLink.attempt_id == attempt_id)
        )
        return value
