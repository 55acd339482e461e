"""The OpenAPI 3.1 document of the JSON API (``GET /api/v1/openapi.json``).

Hand-written, so the names and descriptions are the API's own; ``tests/test_openapi.py``
checks that every ``/api/v1`` route is described and that real responses match the schemas
(OpenAPI 3.1 schemas are JSON Schema 2020-12).
"""

from __future__ import annotations

from typing import Any

from .openapi_flows import flow_paths

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
            "metadata",
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
            "metadata": {
                "type": "object",
                "description": "The host's own JSON object (at most 4096 bytes; never secret); "
                "`tags`, a list of strings, is filterable with `?tag=`.",
            },
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
        "required": [
            "name",
            "app",
            "title",
            "description",
            "parameters",
            "paginated",
            "required_scopes",
        ],
        "properties": {
            "name": {"type": "string"},
            "app": {"type": "string"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "parameters": {"type": "object", "description": "JSON Schema of params."},
            "paginated": {"type": "boolean"},
            "required_scopes": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Scopes the account must have been granted (else 403"
                " insufficient_scope); ask for them with connectApp's scopes.",
            },
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


def _path_param(name: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query_param(name: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}


def _json_body(schema: Schema) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _object(*required: str, **properties: Schema) -> Schema:
    """``{"type": "object", "required": [...], "properties": {...}}`` in that key order."""
    return {"type": "object", "required": list(required), "properties": properties}


def _list_of(key: str, item: Schema, description: str) -> Schema:
    """A 200 response ``{key: [item, ...]}``."""
    return _json(
        {
            "type": "object",
            "required": [key],
            "properties": {key: {"type": "array", "items": item}},
        },
        description,
    )


def _meta_paths(api: str) -> dict[str, Schema]:
    """The unauthenticated documents: the index, this document, the catalog's schema."""
    return {
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
    }


def _admin_paths(api: str) -> dict[str, Schema]:
    """The operators' overview (app secret or the host's admin check)."""
    overview = {
        "type": "object",
        "required": ["apps", "totals"],
        "properties": {
            "apps": {"type": "array", "items": {"type": "object"}},
            "totals": {"type": "object"},
        },
    }
    return {
        f"{api}/admin/apps": {
            "get": _op(
                "Operators: every catalog app, configured or not (with what to register), and "
                "its connected-account counts by status; no secret.",
                {
                    "200": _json(overview, "The overview."),
                    "401": _error("Neither the app secret as bearer nor the host's admin check."),
                },
                security=[{"appSecret": []}],
            )
        },
        **_admin_log_paths(api),
    }


def _admin_log_paths(api: str) -> dict[str, Schema]:
    """The operators' log and the unhealthy accounts (app secret or the host's admin check)."""
    string = {"type": "string"}
    nullable = {"type": ["string", "null"]}
    entry = _object(
        "id",
        "kind",
        "project",
        "status",
        "created_at",
        id=string,
        kind={
            "type": "string",
            "enum": ["function_call", "app_event_run", "flow_run", "webhook", "health_check"],
        },
        project=string,
        user_id=nullable,
        app=nullable,
        account_id=nullable,
        status={"type": "string", "enum": ["succeeded", "failed", "retrying"]},
        duration_ms={"type": ["integer", "null"], "description": "Milliseconds."},
        ref_id=nullable,
        request={"description": "The request's shape (names only, never a value or token)."},
        error=nullable,
        created_at=_ISO,
    )
    page = _object(
        "entries",
        "next_cursor",
        entries={"type": "array", "items": entry},
        next_cursor={
            "type": ["string", "null"],
            "description": "Pass as `cursor`; null: last page.",
        },
    )
    detail = {
        **entry,
        "properties": {**entry["properties"], "account": {"type": ["object", "null"]}},
    }
    admin_only = {"401": _error("Neither the app secret as bearer nor the host's admin check.")}
    filters = [
        _query_param(name)
        for name in (
            "project",
            "kind",
            "user_id",
            "app",
            "status",
            "since",
            "until",
            "cursor",
            "limit",
        )
    ]
    unhealthy = _object("accounts", accounts={"type": "array", "items": {"type": "object"}})
    return {
        f"{api}/admin/log": {
            "get": _op(
                "Operators: function calls, app-event and flow runs, webhook deliveries and "
                "health checks, newest first; filters are exact matches, `since`/`until` "
                "ISO-8601 times; paged by `cursor` (`limit` 1-200, default 50).",
                {
                    "200": _json(page, "One page."),
                    "400": _error("Invalid filter or cursor."),
                    **admin_only,
                },
                parameters=filters,
                security=[{"appSecret": []}],
            )
        },
        f"{api}/admin/log/{{entry_id}}": {
            "get": _op(
                "Operators: one log entry with its related account (never a credential).",
                {
                    "200": _json(detail, "The entry."),
                    "404": _error("No such entry (in this project)."),
                    **admin_only,
                },
                parameters=[_path_param("entry_id")],
                security=[{"appSecret": []}],
            )
        },
        f"{api}/admin/unhealthy-accounts": {
            "get": _op(
                "Operators: accounts in needs_reauth with the reason and time of their last "
                "health check.",
                {"200": _json(unhealthy, "The accounts."), **admin_only},
                security=[{"appSecret": []}],
            )
        },
    }


def _session_paths(api: str) -> dict[str, Schema]:
    """Sessions: exchanging host authentication for a token, and who the bearer is."""
    string = {"type": "string"}
    # The session's theme (portal.theme; README "Theming"): checked strictly, 400 invalid_theme.
    theme: Schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "mode": {"enum": ["light", "dark", "auto"]},
            "accent": {"type": "string", "description": "#rgb, #rrggbb, rgb() or opaque rgba()"},
            "radius": {"type": "string", "description": "0-32px or 0-2rem"},
            "font": {"type": "string", "maxLength": 200},
            "density": {"enum": ["compact", "comfortable"]},
            "logo": {"type": "string", "maxLength": 1024, "description": "an https URL"},
            "name": {"type": "string", "maxLength": 60},
        },
    }
    by_hash = _object(
        "appKey", "userId", "hash", appKey=string, userId=string, hash=string, theme=theme
    )
    by_jwt = _object("projectId", "userToken", projectId=string, userToken=string, theme=theme)
    by_secret = _object("userId", "origin", userId=string, origin=string, theme=theme)
    nullable = {"type": ["string", "null"]}
    caller = _object(
        "user_id",
        "origin",
        "via",
        "theme",
        user_id=string,
        origin=nullable,
        via=string,
        theme=_object(
            "mode",
            "stylesheet",
            "name",
            "logo",
            mode={"enum": ["light", "dark", "auto"]},
            stylesheet=nullable,
            name=nullable,
            logo=nullable,
        ),
    )
    return {
        f"{api}/sessions": {
            "post": _op(
                "Exchange host authentication for a session token.",
                {
                    "201": _json(_ref("Session"), "A session token bound to the host origin."),
                    "400": _error("Invalid body, userId or theme (invalid_theme)."),
                    "401": _error("Wrong app key, hash, app secret or user token."),
                    "403": _error("Origin not allowed."),
                    "413": _error("Body too large."),
                    **_RATE_LIMITED,
                },
                security=[{}, {"appSecret": []}],
                requestBody=_json_body({"oneOf": [by_hash, by_jwt, by_secret]}),
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
                "Who the bearer is, the verified host origin and the session's theme.",
                {"200": _json(caller, "The caller."), **_UNAUTHORIZED},
            )
        },
        f"{api}/user": {
            "get": _op(
                "Paragon getUser().", {"200": _json(_ref("User"), "The user."), **_UNAUTHORIZED}
            )
        },
    }


def _app_paths(api: str) -> dict[str, Schema]:
    """The catalog as the caller sees it: enabled apps and one app with its accounts."""
    one_app = _object(
        "app",
        "connected_accounts",
        app=_ref("AppSummary"),
        connected_accounts={"type": "array", "items": _ref("Account")},
    )
    return {
        f"{api}/apps": {
            "get": _op(
                "Enabled apps with the caller's connected flags.",
                {"200": _list_of("apps", _ref("AppSummary"), "Apps."), **_UNAUTHORIZED},
            )
        },
        f"{api}/apps/{{app}}": {
            "get": _op(
                "One app and the caller's accounts of it.",
                {
                    "200": _json(one_app, "The app."),
                    "404": _error("No such app."),
                    **_UNAUTHORIZED,
                },
                parameters=[_APP],
            )
        },
    }


#: ``scopes`` of a connect ticket, reconnect or connect link request (incremental authorization).
_EXTRA_SCOPES: Schema = {
    "type": "array",
    "items": {"type": "string"},
    "maxItems": 50,
    "description": "Extra scopes to ask for, each one of the app's optional_scopes (catalog);"
    " any other is refused with 400 invalid_scope.",
}


def _account_paths(api: str) -> dict[str, Schema]:
    """Connected accounts: list, read, revoke and delete, reconnect."""
    string = {"type": "string"}
    reconnect_ticket = _object(
        "ticket",
        "connect_url",
        "attempt_id",
        "expires_at",
        "connectedAccountId",
        ticket=string,
        connect_url=string,
        attempt_id=string,
        expires_at=_ISO,
        connectedAccountId=string,
    )
    reconnect_request = _object(
        opener={"type": "string", "enum": ["host", "frame"], "default": "host"},
        scopes=_EXTRA_SCOPES,
    )
    return {
        f"{api}/connected-accounts": {
            "get": _op(
                "The caller's connected accounts, modified_at descending.",
                {
                    "200": _list_of("connected_accounts", _ref("Account"), "Accounts."),
                    "404": _error("No such app."),
                    **_UNAUTHORIZED,
                },
                parameters=[_query_param("app"), _query_param("tag")],
            )
        },
        f"{api}/connected-accounts/{{account_id}}": {
            "parameters": [_path_param("account_id")],
            "get": _op(
                "One of the caller's accounts (another user's or project's id is a 404).",
                {
                    "200": _json(_ref("Account"), "The account."),
                    "404": _error("Not found."),
                    **_UNAUTHORIZED,
                },
            ),
            "patch": _op(
                "Server-to-server: replace the account's metadata (a JSON object of at most "
                "4096 bytes; `tags`: at most 20 distinct strings of 1-64 characters).",
                {
                    "200": _json(_ref("Account"), "The account."),
                    "400": _error("Invalid body or metadata."),
                    "404": _error("Not found."),
                    "413": _error("Body too large."),
                    **_UNAUTHORIZED,
                },
                requestBody=_json_body(
                    {
                        "type": "object",
                        "required": ["metadata"],
                        "additionalProperties": False,
                        "properties": {"metadata": {"type": "object"}},
                    }
                ),
                security=[{"appSecret": [], "userId": []}],
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
        f"{api}/connected-accounts/{{account_id}}/reconnect": {
            "parameters": [_path_param("account_id")],
            "post": _op(
                "A single-use connect ticket that re-authorizes this account: it keeps its id,"
                " label and flows, its credentials are replaced (webhook account.reconnected)."
                " Signing in as another external account fails the attempt with wrong_account."
                " A needs_reauth account that reconnects also sends account.recovered.",
                {
                    "201": _json(reconnect_ticket, "The ticket."),
                    "400": _error("Invalid body, or a scope outside optional_scopes."),
                    "404": _error("Not found (another user's or project's id too)."),
                    "413": _error("Body too large."),
                    **_UNAUTHORIZED,
                    **_RATE_LIMITED,
                },
                requestBody={**_json_body(reconnect_request), "required": False},
            ),
        },
    }


def _connect_paths(api: str) -> dict[str, Schema]:
    """The connect flow's API: a ticket for the popup, and an attempt's result."""
    string = {"type": "string"}
    ticket = _object(
        "ticket",
        "connect_url",
        "attempt_id",
        "expires_at",
        ticket=string,
        connect_url=string,
        attempt_id=string,
        expires_at=_ISO,
    )
    ticket_request = _object(
        "app",
        app=string,
        opener={"type": "string", "enum": ["host", "frame"], "default": "host"},
        scopes=_EXTRA_SCOPES,
    )
    status = _object(
        "status",
        status={"type": "string", "enum": ["pending", "connected", "failed"]},
        app=string,
        connectedAccountId=string,
        payload=_ref("AccountEvent"),
        error={"type": "object"},
    )
    return {
        f"{api}/connect-tickets": {
            "post": _op(
                "A single-use connect ticket for the popup.",
                {
                    "201": _json(ticket, "The ticket."),
                    "400": _error("Invalid body, or a scope outside optional_scopes."),
                    "404": _error("No such app."),
                    "413": _error("Body too large."),
                    **_UNAUTHORIZED,
                    **_RATE_LIMITED,
                },
                requestBody=_json_body(ticket_request),
            )
        },
        f"{api}/connect-attempts/{{attempt_id}}": {
            "get": _op(
                "The result of a connect attempt (for an opener that lost the popup).",
                {"200": _json(status, "The status."), **_UNAUTHORIZED},
                parameters=[_path_param("attempt_id")],
            )
        },
    }


def _connect_link_paths(api: str) -> dict[str, Schema]:
    """Hosted connect links (app secret): create one, revoke one."""
    string = {"type": "string"}
    url = {"type": "string", "format": "uri"}
    link = _object("id", "url", "expires_at", id=string, url=url, expires_at=_ISO)
    link_request = _object(
        "userId",
        userId=string,
        app={**string, "description": "Without it the link opens the marketplace."},
        scopes=_EXTRA_SCOPES,
        expiresIn={"type": "integer", "minimum": 60, "maximum": 604800, "default": 1800},
        successUrl=url,
        errorUrl=url,
    )
    revoked = _object("id", "revoked", id=string, revoked={"type": "boolean"})
    return {
        f"{api}/connect-links": {
            "post": _op(
                "A single-use, expiring hosted connect link for one end user and app (or, without"
                " app, the marketplace: the user picks one app): the URL opens the connect flow"
                " on the portal's origin, then goes to successUrl or errorUrl (allowed origins"
                " only) with the attempt id. A failed connect without errorUrl ends on the"
                " portal's result page, never on successUrl.",
                {
                    "201": _json(link, "The link (its token is in url, shown once)."),
                    "400": _error(
                        "Invalid body, successUrl/errorUrl, expiresIn, or a scope outside"
                        " optional_scopes."
                    ),
                    "401": _error("Missing or unknown app secret."),
                    "404": _error("No such app."),
                    "413": _error("Body too large."),
                    **_RATE_LIMITED,
                },
                security=[{"appSecret": []}],
                requestBody=_json_body(link_request),
            )
        },
        f"{api}/connect-links/{{link_id}}": {
            "delete": _op(
                "Revoke a connect link (another project's id is a 404).",
                {
                    "200": _json(revoked, "Revoked."),
                    "401": _error("Missing or unknown app secret."),
                    "404": _error("Not found."),
                },
                security=[{"appSecret": []}],
                parameters=[_path_param("link_id")],
            )
        },
    }


def _proxy_paths(api: str) -> dict[str, Schema]:
    """The proxy: any method, any path under the app's API base."""
    upstream = {
        "description": (
            "The upstream's response, status and body as they are; only "
            "allow-listed upstream headers, and the portal's sandbox CSP."
        )
    }
    return {
        f"{api}/proxy/{{app}}/{{path}}": {
            "parameters": [_APP, _path_param("path"), _query_param("connectedAccountId")],
            **{
                method: _op(
                    "Send the request to the app's API with the end user's credentials.",
                    {
                        "default": upstream,
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
    }


def _function_paths(api: str) -> dict[str, Schema]:
    """Functions: list, describe, invoke."""
    invoke_request = {
        "type": "object",
        "properties": {"params": {"type": "object"}, "connectedAccountId": {"type": "string"}},
    }
    return {
        f"{api}/functions": {
            "get": _op(
                "Signatures of the enabled apps' functions.",
                {
                    "200": _list_of("functions", _ref("FunctionSignature"), "Functions."),
                    **_UNAUTHORIZED,
                },
                parameters=[_query_param("app")],
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
                parameters=[_path_param("name")],
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
                    "403": _error(
                        "insufficient_scope (RFC 6750 §3.1): the account lacks the function's"
                        " required_scopes (error_details: missing_scopes and the reconnect to"
                        " ask for them); or the account's self-hosted API host is a private"
                        " address."
                    ),
                    "413": _error("Body too large."),
                    "502": _error("The app's API could not be reached."),
                    "504": _error("The app's API did not answer in time."),
                    **_UNAUTHORIZED,
                    **_RATE_LIMITED,
                },
                parameters=[_path_param("name")],
                requestBody=_json_body(invoke_request),
            )
        },
    }


def _event_paths(api: str) -> dict[str, Schema]:
    """App Events: Paragon's event() trigger and reading an event with its runs."""
    trigger = _object(
        "name",
        name={"type": "string", "minLength": 1, "maxLength": 255},
        payload={"type": "object"},
    )
    return {
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
                requestBody=_json_body(trigger),
                parameters=[_path_param("app_key")],
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
    }


def _webhook_paths(api: str) -> dict[str, Schema]:
    """Provider webhook ingress (no portal authentication: the provider's signature)."""
    return {
        f"{api}/provider-webhooks/{{app}}": {
            "post": _op(
                "Provider webhook ingress, verified by the provider's signature.",
                {
                    "200": _json(
                        {"type": "object", "properties": {"challenge": {"type": "string"}}},
                        "A handshake answered: Slack's url_verification challenge, or Asana's "
                        "X-Hook-Secret echoed (empty JSON object).",
                    ),
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
                # A per-account subscription URL (Zendesk, Asana, Linear, Jira): the connected
                # account and its token (portal.provider_webhooks.subscription_token).
                parameters=[_APP, _query_param("account"), _query_param("token")],
            )
        },
    }


#: The path groups in the document's order (readers see the paths in this order).
_PATH_GROUPS = (
    _meta_paths,
    _admin_paths,
    _session_paths,
    _app_paths,
    _account_paths,
    _connect_paths,
    _connect_link_paths,
    _proxy_paths,
    _function_paths,
    _event_paths,
    flow_paths,
    _webhook_paths,
)

SECURITY_SCHEMES: dict[str, Schema] = {
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
}


def build(prefix: str = "/portal") -> dict[str, Any]:
    """The OpenAPI 3.1 document, with paths under ``prefix`` + ``/api/v1``.

    :param prefix: the portal's URL prefix (``/portal``; a trailing slash is ignored).
    :returns: the document as a JSON-ready dict; ``tests/data/openapi.golden.json`` pins it.
    """
    api = f"{prefix.rstrip('/')}/api/v1"
    paths: dict[str, Any] = {}
    for group in _PATH_GROUPS:
        paths.update(group(api))
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
        "paths": {**paths, **agent_paths(api)},
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {**SECURITY_SCHEMES, **AGENT_SECURITY_SCHEMES},
        },
    }


#: The MCP token (``POST /mcp-tokens``) as a security scheme.
AGENT_SECURITY_SCHEMES: dict[str, Schema] = {
    "mcpToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A short-lived MCP token from POST /mcp-tokens (one end user).",
    }
}


def agent_paths(api: str) -> dict[str, Any]:
    """The AI-agent routes under ``api`` (``/mcp`` itself speaks MCP, not this API)."""
    tool_list = {
        "type": "object",
        "required": ["format", "tools"],
        "properties": {
            "format": {"enum": ["mcp", "openai", "anthropic"]},
            "tools": {"type": "array", "items": {"type": "object"}},
        },
    }
    token_answer = {
        "type": "object",
        "required": ["token", "expires_at", "url", "user_id"],
        "additionalProperties": False,
        "properties": {
            "token": {"type": "string"},
            "expires_at": _ISO,
            "url": {"type": "string", "description": "The MCP endpoint."},
            "user_id": {"type": "string"},
        },
    }
    names = {"type": "array", "items": {"type": "string"}}
    return {
        f"{api}/mcp-tokens": {
            "post": _op(
                "Mint a short-lived MCP token for one end user of the app secret's project.",
                {
                    "201": _json(token_answer, "The token and the MCP endpoint's URL."),
                    "400": _error("Invalid userId, apps, functions or expiresIn."),
                    "401": _error("No app secret as bearer."),
                    "413": _error("Body too large."),
                },
                security=[{"appSecret": []}],
                requestBody={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["userId"],
                                "properties": {
                                    "userId": {"type": "string"},
                                    "apps": names,
                                    "functions": names,
                                    "expiresIn": {"type": "integer", "minimum": 1},
                                },
                            }
                        }
                    },
                },
            )
        },
        f"{api}/tools": {
            "get": _op(
                "The end user's tools (as /mcp lists them) as MCP tools or function-calling "
                "schemas.",
                {
                    "200": _json(tool_list, "The tools."),
                    "400": _error("Unknown format."),
                    **_UNAUTHORIZED,
                },
                security=[*_AUTH, {"mcpToken": []}],
                parameters=[
                    {
                        "name": "format",
                        "in": "query",
                        "required": False,
                        "schema": {"enum": ["mcp", "openai", "anthropic"], "default": "mcp"},
                    }
                ],
            )
        },
    }
