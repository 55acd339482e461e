"""Disconnecting an account: revoke at the provider, delete the row, tell the host.

:func:`disconnect` is what ``DELETE /api/v1/connected-accounts/<id>`` does
(:mod:`portal.views.api` parses the request and answers the payload).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import current_app

from . import accounts as account_service
from . import signals, webhooks
from .errors import CatalogError, CredentialError

if TYPE_CHECKING:
    from .state import PortalState

#: The logger name these lines had when the view did this work (log filters keep working).
log = logging.getLogger("portal.views.api")


@dataclass(frozen=True)
class Disconnected:
    """What :func:`disconnect` did: the deleted account (public shape), its app's slug,
    whether the provider confirmed the revocation, and the ``app-disconnected`` payload
    ``{app, connectedAccountId, connected_accounts}``."""

    account: account_service.AccountDict
    app: str
    revoked: bool
    payload: dict[str, Any]


def disconnect(
    state: PortalState,
    account_id: str,
    *,
    user_id: str,
    project: str,
    ref: Callable[[str], Mapping[str, str]],
) -> Disconnected:
    """Revoke the account's token at the provider (OAuth apps; RFC 7009: a failure is logged
    and does not block the disconnect, §2.2), delete the row and enqueue the
    ``account.disconnected`` webhook in one transaction, then send
    :data:`portal.signals.account_disconnected`. ``ref(slug)`` gives the app's
    ``{name, title, icon_url}`` for the payload.

    :raises ResourceNotFound: no such account for this user of this project.
    """
    with state.store.session() as session:
        account = account_service.get_account(session, user_id, account_id, project=project)
        try:
            credentials: dict[str, Any] | None = state.sealer.open(account.id, account.credentials)
        except CredentialError:
            credentials = None  # unreadable: nothing to revoke, the row still goes
        public = account_service.to_dict(account)
        slug = account.app
    definition = state.catalog.get(slug)
    revoked = False
    if credentials is not None and definition is not None and definition.oauth2 is not None:
        # Revocation failure is logged and does not block the disconnect (RFC 7009 §2.2).
        try:
            resolved = definition.resolve(credentials.get("account_fields") or {})
        except CatalogError:
            resolved = None
        revoked = state.oauth.revoke(resolved, credentials) if resolved else False
    with state.store.session() as session:
        account = account_service.get_account(session, user_id, account_id, project=project)
        account_service.delete_account(session, account)
        remaining = account_service.list_accounts(session, user_id, slug, project=project)
        payload = account_service.event_payload(dict(ref(slug)), account_id, remaining)
        webhooks.enqueue(
            session,
            "account.disconnected",
            {
                "user_id": user_id,
                "app": slug,
                "account": public,
                "connected_accounts": payload["connected_accounts"],
            },
            account_id,
            project=project,
            state=state,
        )
    signals.account_disconnected.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        user_id=user_id,
        app=slug,
        account=public,
        revoked=revoked,
    )
    log.info(
        "account %s of %s disconnected (revoked at the provider: %s)",
        account_id,
        slug,
        "yes" if revoked else "no",
        extra={"app": slug, "account_id": account_id},
    )
    return Disconnected(public, slug, revoked, payload)
