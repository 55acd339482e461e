"""The hosted marketplace of a connect link without an app (``POST /api/v1/connect-links``
with no ``app``): ``GET /link/apps`` lists the apps, ``POST /link/apps/<app>`` starts the
connect of the one picked. The link was spent when it was opened (``GET /link``, which puts its
id in this browser's Flask session); the pick binds it to one attempt
(:func:`portal.connect_links.pick`), so the link still connects one app, once.
"""

from __future__ import annotations

import logging

from flask import Blueprint, render_template, session, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm

from .. import connect_links
from ..errors import InvalidConnectAttempt, ResourceNotFound
from ..state import current_portal
from .common import app_logo, app_summary, own_origin, page_context
from .connect import LINK_SESSION_KEY

log = logging.getLogger("portal.connect")


class PickForm(FlaskForm):  # type: ignore[misc]
    """The button of one app on the hosted marketplace: a CSRF token (Flask-WTF) only."""


def link_apps() -> ResponseReturnValue:
    """``GET /link/apps``: the marketplace of the connect link this browser opened, one button
    per enabled app. A link that is not (or no longer) waiting for its pick is a 400 page."""
    connect_links.opened_marketplace(current_portal, session.get(LINK_SESSION_KEY))
    apps = [{**app_summary(app, 0), "logo": app_logo(app)} for app in current_portal.enabled_apps()]
    return render_template(
        "portal/link_apps.html", apps=apps, form=PickForm(), **page_context("link-apps")
    )


def link_pick(app: str) -> ResponseReturnValue:
    """``POST /link/apps/<app>`` (CSRF token): start the connect of ``app`` for the link's user
    and project, towards the link's ``successUrl``. Answers 200 with a page that moves on to
    the connect URL (a redirect after a form POST would stay under this page's CSP
    ``form-action`` all the way to the provider). 400 page: bad CSRF token, or a link already
    picked, revoked or expired; 404: no such app."""
    form = PickForm()
    if not form.validate_on_submit():
        raise InvalidConnectAttempt("This page expired. Open the connect link again.")
    link = connect_links.opened_marketplace(current_portal, session.get(LINK_SESSION_KEY))
    definition = current_portal.app(app)
    if definition is None:
        raise ResourceNotFound(f"There is no app called “{app}”.")
    own = own_origin()
    ticket, attempt_id, _ = current_portal.tokens.issue_ticket(
        link.user_id, definition.slug, own, own, project=link.project
    )
    connect_links.pick(current_portal, link.id, definition.slug, attempt_id)
    session.pop(LINK_SESSION_KEY, None)
    log.info("connect link %s picked %s", link.id, definition.slug)
    target = url_for(
        "portal.connect", app=definition.slug, ticket=ticket, return_to=link.success_url
    )
    return render_template(
        "portal/connect_continue.html",
        app=app_summary(definition, 0),
        authorize_url=target,
        **page_context("connect-continue"),
    ), 200


def register(bp: Blueprint) -> None:
    """Add the hosted-marketplace routes of connect links to ``bp``."""
    bp.add_url_rule("/link/apps", "link_apps", link_apps)
    bp.add_url_rule("/link/apps/<app>", "link_pick", link_pick, methods=["POST"])
