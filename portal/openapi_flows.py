"""The OpenAPI paths of flows (:mod:`portal.flows`): ``GET /flows`` and
``PUT /flows/{app}/{flow}``, merged into :func:`portal.openapi.build` by one call."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

#: A flow as one end user sees it (:meth:`portal.flows.UserFlow.to_dict`).
FLOW: Schema = {
    "type": "object",
    "required": [
        "name",
        "title",
        "description",
        "app",
        "trigger",
        "enabled",
        "settings",
        "settings_schema",
        "status",
        "connectedAccountId",
    ],
    "properties": {
        "name": {"type": "string"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "app": {"type": "string"},
        "trigger": {
            "type": "object",
            "required": ["type", "name"],
            "properties": {
                "type": {"enum": ["app_event", "webhook"]},
                "name": {"type": "string"},
            },
        },
        "enabled": {"type": "boolean"},
        "settings": {"type": "object", "description": "The user's values (schema defaults first)."},
        "settings_schema": {"type": "object", "description": "JSON Schema of `settings`."},
        "status": {
            "enum": ["ready", "needs_settings", "needs_account"],
            "description": "needs_settings: invalid settings, or a settings schema that changed "
            "since they were saved (the values still valid are kept).",
        },
        "connectedAccountId": {
            "type": ["string", "null"],
            "description": "The account the flow runs with; null: the most recent one.",
        },
    },
}

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


#: Who may call them: as every other caller-scoped route of the API.
AUTH: list[dict[str, list[str]]] = [
    {"sessionToken": []},
    {"appSecret": [], "userId": []},
    {"userToken": []},
]


def flow_paths(api: str) -> dict[str, Any]:
    """The flow paths under ``api`` (``<prefix>/api/v1``)."""
    auth = AUTH
    unauthorized = {"401": _json(_ERROR, "Missing, invalid or expired authentication.")}
    return {
        f"{api}/flows": {
            "get": {
                "summary": "The flows of enabled apps as the caller sees them (getFlows).",
                "security": auth,
                "parameters": [
                    {"name": "app", "in": "query", "required": False, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["flows"],
                            "properties": {"flows": {"type": "array", "items": FLOW}},
                        },
                        "Flows.",
                    ),
                    "404": _json(_ERROR, "No such app."),
                    **unauthorized,
                },
            }
        },
        f"{api}/flows/{{app}}/{{flow}}": {
            "parameters": [
                {"name": "app", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "flow", "in": "path", "required": True, "schema": {"type": "string"}},
            ],
            "put": {
                "summary": "Turn the caller's flow on or off and save its settings (setFlow); "
                "settings are validated against settings_schema; fires flow.updated.",
                "security": auth,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "enabled": {"type": "boolean"},
                                    "settings": {"type": "object"},
                                    "connectedAccountId": {"type": ["string", "null"]},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(FLOW, "The flow, saved."),
                    "400": _json(
                        _ERROR, "invalid_json, invalid_settings (error_details), needs_account."
                    ),
                    "404": _json(_ERROR, "unknown_flow or unknown_account."),
                    **unauthorized,
                },
            },
        },
    }
