"""The MCP server at ``/mcp``: the official ``mcp`` SDK's server, run inside the Flask app.

The SDK's server is ASGI. The portal serves it in the Flask request that receives it: the
Streamable HTTP transport in its **stateless JSON-response mode** (MCP 2025-11-25 "Streamable
HTTP"; ``StreamableHTTPSessionManager(stateless=True, json_response=True)``) answers each POST
with one complete JSON body and keeps nothing between requests, so one short event loop per
request (:func:`handle`, ``anyio.run``) runs the SDK's own transport, JSON-RPC dispatch and
lowlevel :class:`mcp.server.lowlevel.Server` to the end and returns. Why not a second service
or an ASGI bridge: the request is already authenticated, rate-limited, logged and scoped to its
project by the portal's Flask code, mounted hosts get ``/portal/mcp`` on their own app with no
extra process or port, and gunicorn deployments stay one WSGI app. The price: no server-sent
event streams (no progress notifications, no server-to-client requests), which function calls
do not need.

The handlers (:func:`_list_tools`, :func:`_call_tool`) run in that loop's thread with the Flask
request's context (context variables are copied into the loop's tasks); they call the portal's
synchronous services (:mod:`portal.agents`) directly, as the loop serves this request only.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError

from . import agents

if TYPE_CHECKING:
    from werkzeug.wrappers import Request

    from .state import PortalState

#: Largest JSON-RPC request body the transport accepts, in bytes (the view limits it too).
MAX_BODY = 1024 * 1024

INSTRUCTIONS = (
    "Tools act for one end user on the apps they connected to this portal. When a tool answers "
    "not_connected, show the user its connect_url and call the tool again once they have "
    "connected. A paginated tool returns next_page: pass it back as next_page for more."
)


@dataclass(frozen=True)
class AgentRequest:
    """What the handlers of one MCP request need: the portal, who the agent acts for, and how
    to make a connect link."""

    state: PortalState
    scope: agents.AgentScope
    connect_link: agents.ConnectLink


_current: contextvars.ContextVar[AgentRequest] = contextvars.ContextVar("portal_mcp_request")


async def _list_tools(
    ctx: Any, params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    current = _current.get()
    found = agents.tools(current.state, current.scope)
    return types.ListToolsResult(
        tools=[types.Tool.model_validate(agents.as_format(t, "mcp")) for t in found]
    )


async def _call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    current = _current.get()
    try:
        outcome = agents.call(
            current.state, current.scope, params.name, params.arguments, current.connect_link
        )
    except agents.UnknownTool:
        raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}") from None
    return types.CallToolResult(
        content=[types.TextContent(text=agents.text_of(outcome.result))],
        structured_content=outcome.result,
        is_error=outcome.is_error,
    )


@functools.cache
def server() -> Server[Any]:
    """The lowlevel MCP server (one per process; it keeps no state of its own)."""
    try:
        portal_version = version("connect-portal")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        portal_version = "0"
    return Server(
        "connect-portal",
        version=portal_version,
        title="Connect Portal",
        instructions=INSTRUCTIONS,
        on_list_tools=_list_tools,
        on_call_tool=_call_tool,
    )


def handle(request: Request, agent: AgentRequest) -> tuple[int, list[tuple[str, str]], bytes]:
    """Answer one MCP Streamable HTTP request (POST, GET or DELETE) for ``agent``.

    :returns: ``(status, headers, body)`` as the SDK's transport wrote them (JSON-RPC results
        and errors as JSON; 4xx for requests the transport refuses, e.g. a missing
        ``Accept: application/json, text/event-stream``).
    """
    body = request.get_data(cache=False)
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.path.encode("utf-8"),
        "root_path": "",
        "query_string": request.query_string,
        "headers": [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()
        ],
        "client": None,
        "server": None,
    }
    answer: dict[str, Any] = {"status": 500, "headers": [], "body": []}
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = message.get("headers", [])
        elif message["type"] == "http.response.body":
            answer["body"].append(message.get("body", b""))

    async def main() -> None:
        manager = StreamableHTTPSessionManager(
            server(), json_response=True, stateless=True, max_request_body_size=MAX_BODY
        )
        async with manager.run():
            await manager.handle_request(scope, receive, send)  # type: ignore[arg-type]

    token = _current.set(agent)
    try:
        _run_to_completion(main)
    finally:
        _current.reset(token)
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in answer["headers"]]
    return int(answer["status"]), headers, b"".join(answer["body"])


def _run_to_completion(main: Callable[[], Awaitable[None]]) -> None:
    """Run ``main`` on an event loop of its own and wait for it.

    ``anyio.run`` refuses to start where an asyncio loop already runs in the calling thread (an
    async-aware host server, or Playwright's sync API in a test process); the loop then runs in
    a short-lived thread of its own, with this request's context variables.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        anyio.run(main)
        return
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="portal-mcp") as pool:
        pool.submit(lambda: context.run(anyio.run, main)).result()
