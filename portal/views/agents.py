"""AI agents: ``/mcp`` (the MCP server), ``POST /api/v1/mcp-tokens``, ``GET /api/v1/tools``.

An agent authenticates as one end user of one project (:func:`agent_scope`): an MCP token
minted by the host (``Authorization: Bearer <token>``), or any caller the JSON API accepts
(the app secret as bearer with ``X-Portal-User-Id``; a session token; a JWT user token).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from werkzeug.exceptions import NotImplemented as WerkzeugNotImplemented

from .. import agents
from ..auth import app_key_for_secret, bearer_token, check_user_id
from ..callers import agent_scope
from ..errors import AuthenticationFailed, InvalidRequest, OriginNotAllowed, PortalHTTPError
from ..state import current_portal
from .common import own_origin, request_origin

#: Largest ``POST /api/v1/mcp-tokens`` body, in bytes.
MAX_BODY = 64 * 1024
#: Largest MCP (JSON-RPC) request body, in bytes.
MAX_MCP_BODY = 1024 * 1024


class McpNotInstalled(PortalHTTPError, WerkzeugNotImplemented):
    """501: the ``mcp`` SDK is not installed (``pip install 'connect-portal[mcp]'``)."""

    error_code = "mcp_not_installed"


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _connect_link(slug: str) -> dict[str, Any]:
    """A connect ticket URL for ``slug`` (the page opens in the user's own browser; its result
    goes to the portal's own origin)."""
    scope = agent_scope()
    origin = own_origin()
    ticket, _attempt, expires_at = current_portal.tokens.issue_ticket(
        scope.user_id, slug, origin, origin, project=scope.project
    )
    return {
        "connect_url": origin + url_for("portal.connect", app=slug, ticket=ticket),
        "expires_at": _iso(expires_at),
    }


def mcp_endpoint() -> Response:
    """``POST /mcp``: the MCP Streamable HTTP endpoint (stateless, JSON answers).

    ``GET`` (a server-sent event stream) and ``DELETE`` (ending a session) answer 405, as the
    transport allows a server without streams or sessions to (MCP 2025-11-25, "Streamable
    HTTP" §2.2 and §2.5.3). Browsers' requests must come from an allowed origin (same section,
    security warning: servers validate ``Origin`` against DNS rebinding).

    :raises OriginNotAllowed: 403 ``origin_not_allowed``.
    :raises AuthenticationFailed: 401, with ``WWW-Authenticate: Bearer``.
    :raises McpNotInstalled: 501: the ``mcp`` extra is not installed.
    """
    origin = request_origin()
    if origin is not None and origin not in {*current_portal.allowed_origins, own_origin()}:
        raise OriginNotAllowed("MCP requests from this origin are not allowed.")
    scope = agent_scope()
    if request.method != "POST":
        # Never hand a GET to the SDK: in stateless mode it would hold an empty event stream
        # open for ever, and with it a server thread.
        answer = jsonify(
            {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": -32000, "message": "Method not allowed: POST only."},
            }
        )
        answer.status_code = 405
        answer.headers["Allow"] = "POST"
        return answer
    try:
        from .. import mcp as mcp_server
    except ImportError as exc:  # the optional extra is missing
        raise McpNotInstalled(
            "The MCP server needs the mcp SDK: pip install 'connect-portal[mcp]'."
        ) from exc
    request.max_content_length = MAX_MCP_BODY
    state = current_app.extensions["portal"]
    status, headers, body = mcp_server.handle(
        request, mcp_server.AgentRequest(state, scope, _connect_link)
    )
    return Response(body, status=status, headers=headers)


def create_mcp_token() -> tuple[Response, int]:
    """``POST /api/v1/mcp-tokens`` ``{userId, apps?, functions?, expiresIn?}`` with the app
    secret as bearer: a short-lived MCP token for that user of the secret's project.

    ``apps``/``functions`` narrow the user's tools to those apps / function names;
    ``expiresIn`` is in seconds (default ``PORTAL_MCP_TOKEN_TTL``, at most
    ``PORTAL_MCP_TOKEN_MAX_TTL``).

    :returns: 201 ``{token, expires_at, url, user_id}``: ``url`` is the MCP endpoint.
    :raises AuthenticationFailed: 401 ``invalid_app_secret``: no valid app secret as bearer.
    :raises InvalidRequest: 400: bad ``userId``, unknown apps or functions, bad ``expiresIn``.
    """
    config = current_portal.config
    secret = bearer_token(request.headers.get("Authorization"))
    project = app_key_for_secret(config["PORTAL_APP_KEYS"], secret) if secret else None
    if project is None:
        raise AuthenticationFailed(
            "Mint MCP tokens with the app secret as bearer.", code="invalid_app_secret"
        )
    request.max_content_length = MAX_BODY
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.", code="invalid_json")
    user_id = check_user_id(body.get("userId"), config["PORTAL_USER_ID_MAX_LENGTH"])
    apps, names = agents.check_lists(current_portal, body.get("apps"), body.get("functions"))
    expires_in = body.get("expiresIn", config["PORTAL_MCP_TOKEN_TTL"])
    ceiling = int(config["PORTAL_MCP_TOKEN_MAX_TTL"])
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int)
        or not (0 < expires_in <= ceiling)
    ):
        raise InvalidRequest(
            f"`expiresIn` must be a whole number of seconds from 1 to {ceiling}.",
            code="invalid_expires_in",
        )
    token, expires_at = agents.mint_token(
        config["SECRET_KEY"],
        agents.AgentScope(project, user_id, apps=apps, functions=names),
        expires_in,
    )
    answer = {
        "token": token,
        "expires_at": _iso(expires_at),
        "url": own_origin() + url_for("portal.mcp"),
        "user_id": user_id,
    }
    return jsonify(answer), 201


def list_tools() -> Response:
    """``GET /api/v1/tools?format=mcp|openai|anthropic``: the agent's tools (as ``/mcp``
    lists them) as MCP tools, OpenAI function tools or Anthropic tools.

    :returns: ``{format, tools: [...]}``.
    :raises InvalidRequest: 400 ``invalid_format``.
    """
    format_ = request.args.get("format", "mcp")
    if format_ not in agents.FORMATS:
        raise InvalidRequest(
            "`format` must be one of: " + ", ".join(agents.FORMATS), code="invalid_format"
        )
    found = agents.tools(current_portal, agent_scope())
    return jsonify({"format": format_, "tools": [agents.as_format(t, format_) for t in found]})


def register(bp: Blueprint) -> None:
    """Add the agent routes to ``bp``."""
    bp.add_url_rule("/mcp", "mcp", mcp_endpoint, methods=["GET", "POST", "DELETE"])
    bp.add_url_rule("/api/v1/mcp-tokens", "api_mcp_tokens", create_mcp_token, methods=["POST"])
    bp.add_url_rule("/api/v1/tools", "api_tools", list_tools)
