"""The portal blueprint: thin views over the service modules."""

from __future__ import annotations

from flask import Blueprint

from .._paths import STATIC_DIR, TEMPLATES_DIR


def create_blueprint() -> Blueprint:
    """A fresh ``portal`` blueprint with every route, hook and error handler registered."""
    from . import admin, api, common, connect, functions, links, provider_webhooks, proxy, ui
    from . import agents as agent_views
    from . import events as app_events
    from . import flows as flow_views

    bp = Blueprint(
        "portal",
        __name__,
        template_folder=str(TEMPLATES_DIR),
        static_folder=str(STATIC_DIR),
        static_url_path="/static",
    )
    common.register(bp)
    api.register(bp)
    ui.register(bp)
    connect.register(bp)
    links.register(bp)
    proxy.register(bp)
    functions.register(bp)
    app_events.register(bp)
    provider_webhooks.register(bp)
    admin.register(bp)
    agent_views.register(bp)
    flow_views.register(bp)
    return bp
