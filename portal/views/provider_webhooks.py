"""``/api/v1/provider-webhooks/<app>``: where providers deliver their notifications.

No portal authentication (the provider has no session and sends no cookie, so CSRF does not
apply either): the provider's own signature is the authentication, checked by
:func:`portal.provider_webhooks.ingest` before anything is read.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from .. import provider_webhooks
from ..callers import own_origin
from ..errors import PayloadTooLarge
from ..state import current_portal


def receive(app: str) -> tuple[Response, int]:
    """``POST``: verify and forward one notification.

    :returns: 202 ``{"accepted": n}``, ``n`` the webhooks queued for the host (0 for a topic
        that is no trigger, or for no connected account); 200 for a handshake (Slack's
        ``{"challenge": …}``, Asana's ``X-Hook-Secret`` echoed). 401 ``invalid_signature``,
        400 ``invalid_json``, 404 for an app without webhooks, 413 above
        :data:`~portal.provider_webhooks.MAX_BODY`.
    """
    definition = provider_webhooks.webhook_app(current_portal, app)
    limit = provider_webhooks.MAX_BODY
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge("The notification is larger than 1 MiB.")
    # Read one byte past the limit: Werkzeug stops at max_content_length without raising for
    # a chunked body, which would truncate it silently (and break its signature).
    request.max_content_length = limit + 1
    body = request.get_data(cache=False)
    if len(body) > limit:
        raise PayloadTooLarge("The notification is larger than 1 MiB.")
    query = request.query_string.decode("latin-1")
    # The URL as the provider called it (HubSpot v3 signs it): the portal's public origin.
    url = (
        own_origin().rstrip("/")
        + request.script_root
        + request.path
        + (f"?{query}" if query else "")
    )
    outcome = provider_webhooks.ingest(
        current_portal,
        definition,
        body,
        dict(request.headers.items()),
        method=request.method,
        url=url,
        query=request.args.to_dict(),
    )
    if outcome.reply is not None:
        response = jsonify(outcome.reply)
    else:
        response = jsonify({"accepted": outcome.accepted})
    response.headers.update(outcome.headers)
    return response, 200 if outcome.handshake else 202


def probe(app: str) -> Response:
    """``HEAD``: providers check the endpoint before subscribing it (Intercom sends a HEAD
    request when the endpoint URL is saved). 200 for an app that takes webhooks, else 404."""
    provider_webhooks.webhook_app(current_portal, app)
    return Response(status=200)


def register(bp: Blueprint) -> None:
    """Add the provider webhook routes to ``bp``."""
    bp.add_url_rule(
        "/api/v1/provider-webhooks/<app>", "api_provider_webhook", receive, methods=["POST"]
    )
    bp.add_url_rule(
        "/api/v1/provider-webhooks/<app>",
        "api_provider_webhook_probe",
        probe,
        methods=["HEAD"],
    )
