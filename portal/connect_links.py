"""Hosted connect links: a URL the host sends by e-mail, SMS or support chat.

``POST /api/v1/connect-links`` (app secret) calls :func:`create`; the URL it answers,
``<portal>/link?token=…``, opens the connect flow of one app on the portal's own origin with no
host page, or, for a link without an app, a hosted marketplace where the user picks one
(:func:`pick` binds the pick to the link once). A link may carry extra ``scopes`` (from its
app's ``optional_scopes``). The link is single-use (:func:`spend` spends it in one conditional update),
expires (``expiresIn`` seconds, :data:`DEFAULT_TTL` by default, at most :data:`MAX_TTL`) and
can be revoked (:func:`revoke`). After the connect the browser goes to ``successUrl`` or
``errorUrl`` (both on ``PORTAL_ALLOWED_ORIGINS``) with the attempt id only, like redirect mode.
A failed connect never goes to ``successUrl``: without an ``errorUrl`` the portal's own result
page says what failed (:func:`error_url`).

The token travels in the query string: the portal's access line logs the path only, and the
development server's access line masks ``token=`` (:mod:`portal.logs`). Only its SHA-256 is
stored.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, CursorResult, select, update

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
    #: ``None``: a marketplace link (the user picks the app).
    app: str | None
    success_url: str | None
    scopes: tuple[str, ...] = ()


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
    app: str | None,
    expires_in: int,
    success_url: str | None,
    error_url: str | None,
    scopes: Sequence[str] = (),
) -> Created:
    """Store a new link for ``user_id`` of ``project`` to connect ``app`` (``None``: any app of
    the marketplace) asking for the extra ``scopes`` (arguments already checked:
    :func:`allowed_url`, :func:`ttl`, :func:`portal.oauth.extra_scopes`)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    link = ConnectLink(
        id="cl_" + secrets.token_urlsafe(18),
        project=project,
        user_id=user_id,
        app=app,
        scopes=list(scopes) or None,
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
    return Opened(
        link.id, link.project, link.user_id, link.app, link.success_url, tuple(link.scopes or ())
    )


def spend(state: PortalState, link_id: str, attempt_id: str | None) -> None:
    """Mark link ``link_id`` used by connect attempt ``attempt_id`` (``None`` for a marketplace
    link, whose attempt :func:`pick` names later): one conditional update, so of two browsers
    opening it at once only one goes on.

    :raises InvalidConnectAttempt: ``invalid_link``, it was used, revoked or expired meanwhile.
    """
    now = utcnow()
    _update_or_refuse(
        state,
        link_id,
        (
            ConnectLink.used_at.is_(None),
            ConnectLink.revoked_at.is_(None),
            ConnectLink.expires_at > now,
        ),
        {"used_at": now, "attempt_id": attempt_id},
        "This connect link is not valid any more. Ask for a new one.",
    )


def opened_marketplace(state: PortalState, link_id: str | None) -> Opened:
    """The marketplace link ``link_id`` this browser opened (:func:`spend`), still waiting for
    its app: not picked, not revoked, opened at most ``PORTAL_TICKET_TTL`` seconds ago.

    :raises InvalidConnectAttempt: ``invalid_link`` otherwise (the end user reads it on a page).
    """
    link = None
    if link_id:
        with state.store.read() as db:
            link = db.get(ConnectLink, link_id)
    ttl = timedelta(seconds=state.config["PORTAL_TICKET_TTL"])
    if (
        link is None
        or link.app is not None
        or link.used_at is None
        or link.attempt_id is not None
        or link.revoked_at is not None
        or link.used_at + ttl < utcnow()
    ):
        raise InvalidConnectAttempt(
            "This connect link is not valid any more. Ask for a new one.", code="invalid_link"
        )
    return Opened(link.id, link.project, link.user_id, None, link.success_url)


def pick(state: PortalState, link_id: str, app: str, attempt_id: str) -> None:
    """Bind the marketplace link ``link_id`` (opened, :func:`spend`) to the connect attempt
    ``attempt_id`` of the app the user picked: one conditional update, so a link connects one
    app only, once.

    :raises InvalidConnectAttempt: ``invalid_link``, the link already named its attempt (a
        second pick, from another tab or the back button) or was revoked meanwhile.
    """
    _update_or_refuse(
        state,
        link_id,
        (
            ConnectLink.app.is_(None),
            ConnectLink.used_at.is_not(None),
            ConnectLink.attempt_id.is_(None),
            ConnectLink.revoked_at.is_(None),
        ),
        {"attempt_id": attempt_id, "app": app},
        "This connect link was already used. Ask for a new one.",
    )


def _update_or_refuse(
    state: PortalState,
    link_id: str,
    conditions: tuple[ColumnElement[bool], ...],
    values: dict[str, Any],
    refusal: str,
) -> None:
    """Set ``values`` on link ``link_id`` in one conditional UPDATE, only while every one of
    ``conditions`` holds, so of two requests at once only one goes on.

    :raises InvalidConnectAttempt: ``invalid_link`` with ``refusal`` when no row matched.
    """
    with state.store.session() as db:
        result = cast(
            "CursorResult[Any]",
            db.execute(
                update(ConnectLink).where(ConnectLink.id == link_id, *conditions).values(**values)
            ),
        )
        if not result.rowcount:
            raise InvalidConnectAttempt(refusal, code="invalid_link")


def error_url(state: PortalState, attempt_id: str) -> tuple[bool, str | None]:
    """Whether a link started attempt ``attempt_id``, and that link's ``errorUrl`` (``None``
    when it has none: the failed connect then ends on the portal's result page, never on the
    link's ``successUrl``)."""
    with state.store.read() as db:
        row = db.execute(
            select(ConnectLink.error_url).where(ConnectLink.attempt_id == attempt_id)
        ).first()
    if row is None:
        return False, None
    return True, row[0]
