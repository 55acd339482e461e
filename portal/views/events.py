"""App events: ``POST /api/v1/projects/<app_key>/sdk/events/trigger`` and
``GET /api/v1/events/<id>`` (Paragon's ``event(name, payload)``)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from .. import events as event_service
from ..errors import InvalidRequest
from ..state import current_portal
from .common import current_caller

#: Largest trigger body, in bytes.
MAX_BODY = 64 * 1024


def trigger_event(app_key: str) -> tuple[Response, int]:
    """``POST /api/v1/projects/<app_key>/sdk/events/trigger`` ``{name, payload}``.

    Bearer: a session token, a JWT user token or the app secret (server-to-server) of project
    ``app_key``. Records the event and queues the functions ``PORTAL_APP_EVENTS[name]`` names;
    answers before any of them runs.

    :returns: 202 ``{id, name, runs: [{id, function, status, flow?}]}``: ``status``
        ``queued``, or ``skipped`` for a flow its user has not turned on or that is not ready
        (``runs`` is empty for an event nobody subscribed to).
    :raises ProjectMismatch: 403, the caller belongs to another project.
    :raises InvalidRequest: 400, no ``name`` or a ``payload`` that is not an object.
    """
    caller = current_caller()
    if caller.app_key is None or caller.app_key != app_key:
        raise event_service.ProjectMismatch("This token belongs to another project.")
    request.max_content_length = MAX_BODY
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.", code="invalid_json")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > event_service.MAX_NAME_LENGTH:
        raise InvalidRequest(
            f"`name` must be a non-empty string of at most {event_service.MAX_NAME_LENGTH} "
            "characters.",
            details=[{"field": "name", "message": "invalid event name"}],
        )
    payload = body.get("payload", {})
    if not isinstance(payload, dict):
        raise InvalidRequest(
            "`payload` must be a JSON object.",
            details=[{"field": "payload", "message": "must be an object"}],
        )
    event, runs = event_service.trigger(
        current_portal, caller.user_id, app_key, name, payload, project=caller.project
    )
    result = {
        "id": event.id,
        "name": event.name,
        "runs": [
            {"id": r.id, "function": r.function, "status": r.status, **_flow_of(r)} for r in runs
        ],
    }
    return jsonify(result), 202


def _flow_of(run: object) -> dict[str, str]:
    flow = getattr(run, "flow", None)
    return {"flow": flow} if flow else {}


def get_event(id: str) -> Response:
    """``GET /api/v1/events/<id>``: ``{id, name, payload, created_at, runs: [{id, function,
    status, result, finished_at}]}``; another user's or another project's event is a 404."""
    caller = current_caller()
    return jsonify(
        event_service.get_event(current_portal, caller.user_id, id, project=caller.project)
    )


def register(bp: Blueprint) -> None:
    """Add the app-event routes to ``bp``."""
    bp.add_url_rule(
        "/api/v1/projects/<app_key>/sdk/events/trigger",
        "api_trigger_event",
        trigger_event,
        methods=["POST"],
    )
    bp.add_url_rule("/api/v1/events/<id>", "api_event", get_event)
