"""The OpenAPI 3.1 document of the JSON API (``GET /api/v1/openapi.json``).

Hand-written, so the names and descriptions are the API's own; ``tests/test_openapi.py``
checks that every ``/api/v1`` route is described and that real responses match the schemas
(OpenAPI 3.1 schemas are JSON Schema 2020-12).
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> Schema:
    return _json(_ref("Error"), description)


_ISO = {"type": "string", "format": "date-time"}

SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "required": ["error", "message", "error_details"],
        "properties": {
            "error": {"type": "string", "description": "Stable machine-readable code."},
            "message": {"type": "string"},
            "error_details": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Account": {
        "type": "object",
        "description": "A connected account; never carries a credential.",
        "required": [
            "id",
            "app",
            "label",
            "external_id",
            "status",
            "scopes",
            "created_at",
            "modified_at",
        ],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string"},
            "app": {"type": "string"},
            "label": {"type": "string"},
            "external_id": {"type": "string"},
            "status": {"type": "string", "enum": ["active", "needs_reauth"]},
            "scopes": {"type": "array", "items": {"type": "string"}},
            "created_at": _ISO,
            "modified_at": _ISO,
        },
    },
    "AppRef": {
        "type": "object",
        "required": ["name", "title", "icon_url"],
        "properties": {
            "name": {"type": "string"},
            "title": {"type": "string"},
            "icon_url": {"type": "string"},
        },
    },
    "AppSummary": {
        "type": "object",
        "required": [
            "name",
            "title",
            "description",
            "categories",
            "icon_url",
            "auth_type",
            "connected",
        ],
        "properties": {
            "name": {"type": "string"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "categories": {"type": "array", "items": {"type": "string"}},
            "icon_url": {"type": "string"},
            "auth_type": {
                "type": "string",
                "enum": ["oauth2", "oauth2_client_credentials", "api_key", "basic"],
            },
            "connected": {"type": "boolean"},
            "connected_count": {"type": "integer", "minimum": 0},
        },
    },
    "AccountEvent": {
        "type": "object",
        "description": "Payload of app-connected / app-disconnected.",
        "required": ["app", "connectedAccountId", "connected_accounts"],
        "properties": {
            "app": _ref("AppRef"),
            "connectedAccountId": {"type": "string"},
            "connected_accounts": {"type": "array", "items": _ref("Account")},
        },
    },
    "Session": {
        "type": "object",
        "required": ["token", "expires_at", "user_id", "origin"],
        "properties": {
            "token": {"type": "string"},
            "expires_at": _ISO,
            "user_id": {"type": "string"},
            "origin": {"type": "string"},
        },
    },
    "FunctionSignature": {
        "type": "object",
        "required": ["name", "app", "title", "description", "parameters", "paginated"],
        "properties": {
            "name": {"type": "string"},
            "app": {"type": "string"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "parameters": {"type": "object", "description": "JSON Schema of params."},
            "paginated": {"type": "boolean"},
        },
    },
    "FunctionExecuted": {
        "type": "object",
        "required": ["network_code", "output"],
        "properties": {
            "network_code": {"type": "integer"},
            "output": {},
            "next_page": {"type": "string", "description": "Empty when there are no more pages."},
        },
    },
    "FunctionNotExecuted": {
        "type": "object",
        "required": ["error", "error_details"],
        "properties": {
            "error": {"type": "string"},
            "error_details": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    },
    "User": {
        "type": "object",
        "description": "Paragon's getUser() shape.",
        "required": ["authenticated", "userId", "integrations"],
        "properties": {
            "authenticated": {"const": True},
            "userId": {"type": "string"},
            "integrations": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["enabled"],
                    "properties": {
                        "enabled": {"type": "boolean"},
                        "connectedAccounts": {"type": "integer"},
                        "needsReauth": {"type": "boolean"},
                    },
                },
            },
        },
    },
    "EventRun": {
        "type": "object",
        "required": ["id", "function", "status"],
        "properties": {
            "id": {"type": "string"},
            "function": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed"]},
            "result": {},
            "finished_at": {"type": ["string", "null"]},
        },
    },
    "AppEvent": {
        "type": "object",
        "required": ["id", "name", "runs"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "payload": {},
            "created_at": _ISO,
            "runs": {"type": "array", "items": _ref("EventRun")},
        },
    },
}

_APP = {"name": "app", "in": "path", "required": True, "schema": {"type": "string"}}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_AUTH: list[dict[str, list[str]]] = [
    {"sessionToken": []},
    {"appSecret": [], "userId": []},
    {"userToken": []},
]
_UNAUTHORIZED = {"401": _error("Missing, invalid or expired authentication.")}
#: Rate-limited operations (portal.ratelimit), with a ``Retry-After`` header.
_RATE_LIMITED = {"429": _error("Too many requests (see Retry-After).")}


def _op(summary: str, responses: dict[str, Schema], **extra: Any) -> Schema:
    op: Schema = {"summary": summary, "responses": responses}
    op.setdefault("security", _AUTH)
    op.update(extra)
    return op


def build(prefix: str = "/portal") -> dict[str, Any]:
    """The OpenAPI 3.1 document, with paths under ``prefix`` + ``/api/v1``."""
    api = f"{prefix.rstrip('/')}/api/v1"
    paths: dict[str, Any] = {
        f"{api}": {
            "get": _op(
                "API index.",
                {"200": _json({"type": "object"}, "Name and version.")},
                security=[],
            )
        },
        f"{api}/openapi.json": {
            "get": _op(
                "This document.", {"200": _json({"type": "object"}, "OpenAPI 3.1.")}, security=[]
            )
        },
        f"{api}/catalog.schema.json": {
            "get": _op(
                "The JSON Schema (2020-12) of an app definition file (portal/catalog.schema.json).",
                {"200": _json({"type": "object"}, "JSON Schema.")},
                security=[],
            )
        },
        f"{api}/admin/apps": {
            "get": _op(
                "Operators: every catalog app, configured or not (with what to register), and "
                "its connected-account counts by status; no secret.",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["apps", "totals"],
                            "properties": {
                                "apps": {"type": "array", "items": {"type": "object"}},
                                "totals": {"type": "object"},
                            },
                        },
                        "The overview.",
                    ),
                    "401": _error("Neither the app secret as bearer nor the host's admin check."),
                },
                security=[{"appSecret": []}],
            )
        },
        f"{api}/sessions": {
            "post": _op(
                "Exchange host authentication for a session token.",
                {
                    "201": _json(_ref("Session"), "A session token bound to the host origin."),
                    "400": _error("Invalid body or userId."),
                    "401": _error("Wrong app key, hash, app secret or user token."),
                    "403": _error("Origin not allowed."),
                    "413": _error("Body too large."),
                    **_RATE_LIMITED,
                },
                security=[{}, {"appSecret": []}],
                requestBody={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {
                                        "type": "object",
                                        "required": ["appKey", "userId", "hash"],
                                        "properties": {
                                            "appKey": {"type": "string"},
                                            "userId": {"type": "string"},
                                            "hash": {"type": "string"},
                                        },
                                    },
                                    {
                                        "type": "object",
                                        "required": ["projectId", "userToken"],
                                        "properties": {
                                            "projectId": {"type": "string"},
                                            "userToken": {"type": "string"},
                                        },
                                    },
                                    {
                                        "type": "object",
                                        "required": ["userId", "origin"],
                                        "properties": {
                                            "userId": {"type": "string"},
                                            "origin": {"type": "string"},
                                        },
                                    },
                                ]
                            }
                        }
                    },
                },
            )
        },
        f"{api}/origin-check": {
            "get": _op(
                "Whether a page origin may use the portal (public, CORS-open: "
                "Access-Control-Allow-Origin: *). portal.js asks when POST /sessions fails "
                "without a CORS answer, to report origin_not_allowed.",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["origin", "allowed", "message"],
                            "properties": {
                                "origin": {"type": ["string", "null"]},
                                "allowed": {"type": "boolean"},
                                "message": {"type": "string"},
                            },
                        },
                        "The normalised origin (default: the Origin header) and the answer.",
                    )
                },
                security=[],
                parameters=[
                    {
                        "name": "origin",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                    }
                ],
            )
        },
        f"{api}/session": {
            "get": _op(
                "Who the bearer is and the verified host origin.",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["user_id", "origin", "via"],
                            "properties": {
                                "user_id": {"type": "string"},
                                "origin": {"type": ["string", "null"]},
                                "via": {"type": "string"},
                            },
                        },
                        "The caller.",
                    ),
                    **_UNAUTHORIZED,
                },
            )
        },
        f"{api}/user": {
            "get": _op(
                "Paragon getUser().", {"200": _json(_ref("User"), "The user."), **_UNAUTHORIZED}
            )
        },
        f"{api}/apps": {
            "get": _op(
                "Enabled apps with the caller's connected flags.",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["apps"],
                            "properties": {"apps": {"type": "array", "items": _ref("AppSummary")}},
                        },
                        "Apps.",
                    ),
                    **_UNAUTHORIZED,
                },
            )
        },
        f"{api}/apps/{{app}}": {
            "get": _op(
                "One app and the caller's accounts of it.",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["app", "connected_accounts"],
                            "properties": {
                                "app": _ref("AppSummary"),
                                "connected_accounts": {"type": "array", "items": _ref("Account")},
                            },
                        },
                        "The app.",
                    ),
                    "404": _error("No such app."),
                    **_UNAUTHORIZED,
                },
                parameters=[_APP],
            )
        },
        f"{api}/connected-accounts": {
            "get": _op(
                "The caller's connected accounts, modified_at descending.",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["connected_accounts"],
                            "properties": {
                                "connected_accounts": {"type": "array", "items": _ref("Account")}
                            },
                        },
                        "Accounts.",
                    ),
                    "404": _error("No such app."),
                    **_UNAUTHORIZED,
                },
                parameters=[
                    {"name": "app", "in": "query", "required": False, "schema": {"type": "string"}}
                ],
            )
        },
        f"{api}/connected-accounts/{{account_id}}": {
            "parameters": [
                {"name": "account_id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "get": _op(
                "One of the caller's accounts (another user's or project's id is a 404).",
                {
                    "200": _json(_ref("Account"), "The account."),
                    "404": _error("Not found."),
                    **_UNAUTHORIZED,
                },
            ),
            "delete": _op(
                "Revoke at the provider (best effort) and delete.",
                {
                    "200": _json(_ref("AccountEvent"), "The app-disconnected payload."),
                    "404": _error("Not found."),
                    **_UNAUTHORIZED,
                },
            ),
        },
        f"{api}/connect-tickets": {
            "post": _op(
                "A single-use connect ticket for the popup.",
                {
                    "201": _json(
                        {
                            "type": "object",
                            "required": ["ticket", "connect_url", "attempt_id", "expires_at"],
                            "properties": {
                                "ticket": {"type": "string"},
                                "connect_url": {"type": "string"},
                                "attempt_id": {"type": "string"},
                                "expires_at": _ISO,
                            },
                        },
                        "The ticket.",
                    ),
                    "400": _error("Invalid body."),
                    "404": _error("No such app."),
                    "413": _error("Body too large."),
                    **_UNAUTHORIZED,
                    **_RATE_LIMITED,
                },
                requestBody={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["app"],
                                "properties": {
                                    "app": {"type": "string"},
                                    "opener": {
                                        "type": "string",
                                        "enum": ["host", "frame"],
                                        "default": "host",
                                    },
                                },
                            }
                        }
                    },
                },
            )
        },
        f"{api}/connect-attempts/{{attempt_id}}": {
            "get": _op(
                "The result of a connect attempt (for an opener that lost the popup).",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["status"],
                            "properties": {
                                "status": {
                                    "type": "string",
                                    "enum": ["pending", "connected", "failed"],
                                },
                                "app": {"type": "string"},
                                "connectedAccountId": {"type": "string"},
                                "payload": _ref("AccountEvent"),
                                "error": {"type": "object"},
                            },
                        },
                        "The status.",
                    ),
                    **_UNAUTHORIZED,
                },
                parameters=[
                    {
                        "name": "attempt_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
            )
        },
        f"{api}/proxy/{{app}}/{{path}}": {
            "parameters": [
                _APP,
                {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}},
                {
                    "name": "connectedAccountId",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                },
            ],
            **{
                method: _op(
                    "Send the request to the app's API with the end user's credentials.",
                    {
                        "default": {
                            "description": (
                                "The upstream's response, status and body as they are; only "
                                "allow-listed upstream headers, and the portal's sandbox CSP."
                            )
                        },
                        "400": _error("Path refused."),
                        "404": _error("No such app or no connected account."),
                        "409": _error("The account needs the end user to reconnect."),
                        "403": _error("The account's self-hosted API host is a private address."),
                        "413": _error("Body too large."),
                        "502": _error("Upstream unreachable."),
                        "504": _error("Upstream timed out."),
                        **_UNAUTHORIZED,
                        **_RATE_LIMITED,
                    },
                )
                for method in ("get", "post", "put", "patch", "delete")
            },
        },
        f"{api}/functions": {
            "get": _op(
                "Signatures of the enabled apps' functions.",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["functions"],
                            "properties": {
                                "functions": {"type": "array", "items": _ref("FunctionSignature")}
                            },
                        },
                        "Functions.",
                    ),
                    **_UNAUTHORIZED,
                },
                parameters=[
                    {"name": "app", "in": "query", "required": False, "schema": {"type": "string"}}
                ],
            )
        },
        f"{api}/functions/{{name}}": {
            "get": _op(
                "getFunction: a function's signature.",
                {
                    "200": _json(_ref("FunctionSignature"), "The signature."),
                    "404": _error("No such function."),
                    **_UNAUTHORIZED,
                },
                parameters=[
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
            )
        },
        f"{api}/functions/{{name}}/invoke": {
            "post": _op(
                "invokeFunction.",
                {
                    "200": _json(_ref("FunctionExecuted"), "Executed (see network_code)."),
                    "400": _json(_ref("FunctionNotExecuted"), "Invalid params: not executed."),
                    "404": _json(
                        _ref("FunctionNotExecuted"), "No account connected: not executed."
                    ),
                    "409": _error("The account needs the end user to reconnect."),
                    "403": _error("The account's self-hosted API host is a private address."),
                    "413": _error("Body too large."),
                    "502": _error("The app's API could not be reached."),
                    "504": _error("The app's API did not answer in time."),
                    **_UNAUTHORIZED,
                    **_RATE_LIMITED,
                },
                parameters=[
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                requestBody={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "params": {"type": "object"},
                                    "connectedAccountId": {"type": "string"},
                                },
                            }
                        }
                    },
                },
            )
        },
        f"{api}/projects/{{app_key}}/sdk/events/trigger": {
            "post": _op(
                "Paragon event(): record an App Event; its function runs happen in the worker.",
                {
                    "202": _json(_ref("AppEvent"), "Recorded; runs queued."),
                    "400": _error("Invalid body."),
                    "403": _error("Another project."),
                    "413": _error("Body too large."),
                    **_UNAUTHORIZED,
                },
                requestBody={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string", "minLength": 1, "maxLength": 255},
                                    "payload": {"type": "object"},
                                },
                            }
                        }
                    },
                },
                parameters=[
                    {
                        "name": "app_key",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
            )
        },
        f"{api}/events/{{id}}": {
            "get": _op(
                "An App Event and its runs.",
                {
                    "200": _json(_ref("AppEvent"), "The event."),
                    "404": _error("Not found."),
                    **_UNAUTHORIZED,
                },
                parameters=[_ID],
            )
        },
        f"{api}/provider-webhooks/{{app}}": {
            "post": _op(
                "Provider webhook ingress, verified by the provider's signature.",
                {
                    "202": _json(
                        {"type": "object", "properties": {"accepted": {"type": "integer"}}},
                        "Accepted.",
                    ),
                    "400": _error("Not JSON."),
                    "401": _error("Bad signature."),
                    "404": _error("No such app or no webhooks."),
                    "413": _error("Body too large."),
                },
                security=[],
                parameters=[_APP],
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Connect Portal API",
            "version": "1",
            "description": (
                "The JSON API used by portal.js, frame.js and host backends. Errors always have "
                "the shape {error, message, error_details}. Every route reads and writes the "
                "caller's project (app key) only: the same user id under another app key is "
                "another end user."
            ),
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "sessionToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Session token from POST /sessions.",
                },
                "appSecret": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The host's app secret (server-to-server).",
                },
                "userId": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Portal-User-Id",
                    "description": "The end user, with appSecret.",
                },
                "userToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A host-signed JWT user token.",
                },
            },
        },
    }
