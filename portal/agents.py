"""AI agents: an end user's functions as tools (MCP and function-calling schemas).

An agent acts for one end user of one project (:class:`AgentScope`): it authenticates with the
project's app secret plus the user id, or with a short-lived **MCP token** the host mints for
that user (:func:`mint_token`, itsdangerous, salt ``portal.mcp-token``), optionally narrowed to
some apps or functions.

The tools of a scope (:func:`tools`) are the functions of the apps the user has connected in
that project, filtered by ``PORTAL_MCP_TOOLS`` (allow-list), ``PORTAL_MCP_READ_ONLY`` (no
``destructive`` function) and the token's lists, plus :data:`CONNECT_TOOL`, which answers a
connect link for an app the user has not connected yet. :func:`call` runs a tool through
:func:`portal.functions.invoke`, the code path of ``invokeFunction`` (validated, recorded in the
function-call log, limited to the scope's own accounts) and returns the seed's result shape.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.exceptions import HTTPException

from . import functions as function_service
from .accounts import list_accounts
from .auth import MAX_TOKEN_LENGTH
from .catalog import Function
from .errors import AuthenticationFailed, InvalidRequest

if TYPE_CHECKING:
    from .state import PortalState

#: itsdangerous salt of MCP tokens (one salt per purpose: a session token or a connect ticket
#: never reads as an MCP token, nor the other way round).
MCP_TOKEN_SALT = "portal.mcp-token"
#: The tool that answers a connect link. Function names never contain ``_`` (catalog schema),
#: so it cannot collide with one.
CONNECT_TOOL = "connect_app"
#: The optional tool argument naming one of the user's accounts of the function's app.
ACCOUNT_ARGUMENT = "connectedAccountId"
#: Formats of ``GET /api/v1/tools``.
FORMATS = ("mcp", "openai", "anthropic")

#: ``connect_link(app_slug)`` -> ``{"connect_url", "expires_at"}`` (built by the view layer,
#: which knows the portal's origin and URL rules).
ConnectLink = Callable[[str], dict[str, Any]]


@dataclass(frozen=True)
class AgentScope:
    """Who an agent acts for: ``user_id`` of ``project`` (an app key); ``apps`` and
    ``functions`` narrow the tools when set (a minted token's allow-lists)."""

    project: str
    user_id: str
    apps: frozenset[str] | None = None
    functions: frozenset[str] | None = None
    #: Unix time the scope's token expires at; ``None`` for app-secret callers.
    expires_at: int | None = None


def _serializer(secret_key: str | bytes) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=MCP_TOKEN_SALT)


def mint_token(secret_key: str | bytes, scope: AgentScope, expires_in: int) -> tuple[str, int]:
    """A signed MCP token for ``scope``, valid ``expires_in`` seconds: ``(token, expires_at)``
    (Unix seconds). The token carries the project, user, allow-lists and expiry; it is signed,
    not encrypted (nothing secret in it)."""
    expires_at = int(time.time()) + int(expires_in)
    payload: dict[str, Any] = {"k": scope.project, "u": scope.user_id, "x": expires_at}
    if scope.apps is not None:
        payload["a"] = sorted(scope.apps)
    if scope.functions is not None:
        payload["f"] = sorted(scope.functions)
    return _serializer(secret_key).dumps(payload), expires_at


def read_token(secret_key: str | bytes, token: str, max_ttl: int) -> AgentScope:
    """The scope of an MCP token.

    :raises AuthenticationFailed: 401 ``invalid_token`` (oversized, forged, tampered with, or
        signed for another purpose) or ``token_expired`` (past its own expiry, or older than
        ``max_ttl`` seconds).
    """
    if len(token) > MAX_TOKEN_LENGTH:
        raise AuthenticationFailed("The MCP token is too long.", code="invalid_token")
    try:
        data = _serializer(secret_key).loads(token, max_age=max_ttl)
    except SignatureExpired as exc:
        raise AuthenticationFailed("The MCP token has expired.", code="token_expired") from exc
    except BadSignature as exc:
        raise AuthenticationFailed("The MCP token is not valid.", code="invalid_token") from exc
    if not isinstance(data, dict) or not isinstance(data.get("x"), int):
        raise AuthenticationFailed("The MCP token is not valid.", code="invalid_token")
    if data["x"] <= time.time():
        raise AuthenticationFailed("The MCP token has expired.", code="token_expired")
    apps, names = data.get("a"), data.get("f")
    return AgentScope(
        project=str(data["k"]),
        user_id=str(data["u"]),
        apps=None if apps is None else frozenset(apps),
        functions=None if names is None else frozenset(names),
        expires_at=data["x"],
    )


def check_lists(
    state: PortalState, apps: Any, names: Any
) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    """Validate a token request's ``apps`` and ``functions``: ``None`` or lists of enabled app
    slugs / function names.

    :raises InvalidRequest: 400 ``invalid_apps`` / ``invalid_functions`` naming the unknown ones.
    """

    def one(value: Any, field: str, known: Callable[[str], bool]) -> frozenset[str] | None:
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidRequest(f"`{field}` must be a list of strings.", code=f"invalid_{field}")
        unknown = sorted(v for v in value if not known(v))
        if unknown:
            raise InvalidRequest(
                f"`{field}` names what this portal does not offer: {', '.join(unknown)}.",
                code=f"invalid_{field}",
                details=[{"field": field, "message": f"unknown: {v}"} for v in unknown],
            )
        return frozenset(value)

    def known_function(name: str) -> bool:
        function = state.catalog.function(name)
        return function is not None and state.app(function.app) is not None

    return (
        one(apps, "apps", lambda slug: state.app(slug) is not None),
        one(names, "functions", known_function),
    )


def offered(state: PortalState, scope: AgentScope, function: Function) -> bool:
    """True when ``function`` may be a tool of ``scope``: its app is enabled, and the host's
    allow-list (``PORTAL_MCP_TOOLS``), read-only switch (``PORTAL_MCP_READ_ONLY``) and the
    scope's own lists all let it through."""
    config = state.config
    allowed: Collection[str] | None = config["PORTAL_MCP_TOOLS"]
    return (
        state.app(function.app) is not None
        and (allowed is None or function.name in allowed)
        and not (config["PORTAL_MCP_READ_ONLY"] and function.destructive)
        and (scope.apps is None or function.app in scope.apps)
        and (scope.functions is None or function.name in scope.functions)
    )


def _connected(state: PortalState, scope: AgentScope) -> dict[str, list[str]]:
    """``{app slug: [account id, …]}`` of the scope's user in the scope's project."""
    with state.store.read() as db:
        accounts = list_accounts(db, scope.user_id, project=scope.project)
    found: dict[str, list[str]] = {}
    for account in accounts:
        found.setdefault(account.app, []).append(account.id)
    return found


def input_schema(function: Function) -> dict[str, Any]:
    """The tool's input JSON Schema: the function's ``params`` plus the optional
    ``connectedAccountId`` (and ``next_page`` for a paginated function)."""
    schema = json.loads(json.dumps(dict(function.params)))
    properties = schema.setdefault("properties", {})
    properties[ACCOUNT_ARGUMENT] = {
        "type": "string",
        "description": "One of the user's accounts of this app; default: the most recent.",
    }
    if function.pagination is not None:
        properties[function_service.NEXT_PAGE] = {
            "type": "string",
            "description": "The next_page of the previous result, for the next page.",
        }
    return dict(schema)


def _tool(function: Function, app_title: str) -> dict[str, Any]:
    description = f"{app_title}: {function.description or function.title}"
    if function.pagination is not None:
        description += (
            " Paginated: when the result's next_page is not empty, call again with it as "
            "next_page for the next page."
        )
    return {
        "name": function.name,
        "title": function.title,
        "description": description,
        "input_schema": input_schema(function),
        "read_only": not function.destructive,
        "destructive": function.destructive,
    }


def _connect_tool(slugs: list[str]) -> dict[str, Any]:
    return {
        "name": CONNECT_TOOL,
        "title": "Connect an app",
        "description": (
            "A link the user opens to connect one of their accounts of an app; show it to the "
            "user. Use it before calling the tools of an app that is not connected yet."
        ),
        "input_schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["app"],
            "properties": {
                "app": {"type": "string", "enum": slugs, "description": "The app's slug."}
            },
        },
        "read_only": True,
        "destructive": False,
    }


def connectable(state: PortalState, scope: AgentScope) -> list[str]:
    """Slugs of enabled apps with at least one offered function (what ``connect_app`` takes)."""
    return [
        app.slug
        for app in state.enabled_apps()
        if any(offered(state, scope, f) for f in app.functions)
    ]


def tools(state: PortalState, scope: AgentScope) -> list[dict[str, Any]]:
    """The scope's tools, each ``{name, title, description, input_schema, read_only,
    destructive}``: offered functions of the apps the user has connected, in catalog order,
    then :data:`CONNECT_TOOL` (when some app with offered functions exists)."""
    connected = _connected(state, scope)
    found = [
        _tool(function, app.title)
        for app in state.enabled_apps()
        if app.slug in connected
        for function in app.functions
        if offered(state, scope, function)
    ]
    slugs = connectable(state, scope)
    if slugs:
        found.append(_connect_tool(slugs))
    return found


def as_format(tool: Mapping[str, Any], format_: str) -> dict[str, Any]:
    """``tool`` (from :func:`tools`) as ``format_``: ``"mcp"`` (an MCP ``Tool``: ``inputSchema``,
    ``annotations``), ``"openai"`` (Chat Completions ``{"type": "function", "function":
    {name, description, parameters}}``) or ``"anthropic"`` (Messages API ``{name,
    description, input_schema}``).

    :raises ValueError: an unknown format.
    """
    if format_ == "openai":
        return {
            "type": "function",
            "function": {
                "name": tool["name"],
                "description": tool["description"],
                "parameters": tool["input_schema"],
            },
        }
    if format_ == "anthropic":
        return {
            "name": tool["name"],
            "description": tool["description"],
            "input_schema": tool["input_schema"],
        }
    if format_ == "mcp":
        return {
            "name": tool["name"],
            "title": tool["title"],
            "description": tool["description"],
            "inputSchema": tool["input_schema"],
            "annotations": {
                "title": tool["title"],
                "readOnlyHint": tool["read_only"],
                "destructiveHint": tool["destructive"],
                "openWorldHint": True,
            },
        }
    raise ValueError(f"unknown format {format_!r}")


@dataclass(frozen=True)
class ToolResult:
    """What a tool call answers: ``result`` is the structured content (the seed's shape, or an
    error ``{"error", "message", "error_details", …}``); ``is_error`` marks a call that did not
    do what was asked."""

    result: dict[str, Any]
    is_error: bool


class UnknownTool(LookupError):
    """The tool does not exist, or the scope may not use it (hidden by the allow-lists or
    read-only mode)."""


def _error(code: str, message: str, **extra: Any) -> ToolResult:
    return ToolResult({"error": code, "message": message, "error_details": [], **extra}, True)


def call(
    state: PortalState,
    scope: AgentScope,
    name: str,
    arguments: Mapping[str, Any] | None,
    connect_link: ConnectLink,
) -> ToolResult:
    """Run tool ``name`` for ``scope`` with ``arguments``.

    A function of an app the user has not connected answers ``not_connected`` with a connect
    link (``connect_url``) for the agent to show its user (``needs_reauth`` with one when the
    provider refused the stored connection); :data:`CONNECT_TOOL` answers one on request. Otherwise :func:`portal.functions.invoke` runs it (recorded in the function-call
    log) on ``connectedAccountId`` or the user's most recent account of the app; another
    user's or another project's account id is answered as not found, nothing sent.

    :raises UnknownTool: no such tool for this scope.
    """
    args = dict(arguments or {})
    if name == CONNECT_TOOL:
        slug = args.get("app")
        if not isinstance(slug, str) or slug not in connectable(state, scope):
            return _error(
                "invalid_params",
                "`app` must be one of: " + ", ".join(connectable(state, scope)),
            )
        app = state.app(slug)
        title = app.title if app is not None else slug
        return ToolResult(
            {
                "app": slug,
                "message": f"Open this link to connect your {title} account.",
                **connect_link(slug),
            },
            False,
        )
    function = state.catalog.function(name)
    if function is None or not offered(state, scope, function):
        raise UnknownTool(name)
    account_id = args.pop(ACCOUNT_ARGUMENT, None)
    if account_id is not None and not isinstance(account_id, str):
        return _error("invalid_params", f"`{ACCOUNT_ARGUMENT}` must be a string.")
    if account_id is None and not _connected(state, scope).get(function.app):
        app = state.app(function.app)
        title = app.title if app is not None else function.app
        return _error(
            "not_connected",
            f"The user has not connected {title} yet: show them this link to connect it, "
            "then call the tool again.",
            app=function.app,
            **connect_link(function.app),
        )
    try:
        status, result = function_service.invoke(
            state, function, scope.user_id, args, account_id, project=scope.project
        )
    except HTTPException as exc:  # upstream timeout/error, refused host, needs re-auth
        code = getattr(exc, "error_code", None) or "upstream_error"
        if code == "needs_reauth":
            # The provider refused the stored connection: the same link reconnects it.
            return _error(
                code,
                f"{exc.description} Show the user this link to reconnect, then call again.",
                app=function.app,
                **connect_link(function.app),
            )
        return _error(code, str(exc.description or exc.name))
    if status != 200:
        return ToolResult({**result, "message": result.get("error", "")}, True)
    network = result.get("network_code")
    return ToolResult(result, not (isinstance(network, int) and 200 <= network < 300))


def text_of(result: Mapping[str, Any]) -> str:
    """The result as the JSON text an MCP ``TextContent`` carries (for clients that do not read
    structured content)."""
    return json.dumps(result, ensure_ascii=False, separators=(",", ":"))
