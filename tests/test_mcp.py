"""portal/mcp.py, portal/agents.py and portal/views/agents.py: an end user's connected apps as
MCP tools, driven by the official ``mcp`` Python client over real loopback HTTP.

The portal under test has two projects (``proj-a``, ``proj-b``) and is served by a threaded
werkzeug server on 127.0.0.1 (:class:`portal._serving.ServerThread`); the provider is the live
sandbox of the session's stack. Accounts are connected through the whole OAuth flow (the test
client and the sandbox's consent page), as tests/test_projects.py does. A second portal app on
the same database, with ``PORTAL_MCP_READ_ONLY``, serves the read-only checks.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import httpx2
import pytest
import requests
from conftest import Browser, database_config
from flask import Flask
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from readme_blocks import block, fill
from sqlalchemy import func, select

from portal._serving import ServerThread
from portal.agents import AgentScope, mint_token
from portal.demo import DemoStack, portal_config
from portal.service import create_app
from portal.store import FunctionCall

A, B = "proj-a", "proj-b"
SECRET = {A: "mcp-secret-of-project-a", B: "mcp-secret-of-project-b"}
PREFIX = "/portal"
T = TypeVar("T")


class Portal:
    """A portal app served on loopback, and the test client of the same app."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client = app.test_client()
        self.server = ServerThread("127.0.0.1", 0).start(app)
        self.url = self.server.url

    @property
    def mcp_url(self) -> str:
        return f"{self.url}{PREFIX}/mcp"

    def mint(self, project: str, user: str, **body: Any) -> dict[str, Any]:
        answer = requests.post(
            f"{self.url}{PREFIX}/api/v1/mcp-tokens",
            json={"userId": user, **body},
            headers={"Authorization": f"Bearer {SECRET[project]}"},
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def connect(self, project: str, user: str, connect_url: str | None = None) -> str:
        """Connect a sandbox account for ``user`` of ``project`` (the whole OAuth flow);
        returns its id. ``connect_url``: a link the portal answered, else a fresh ticket's."""
        if connect_url is None:
            session = self.client.post(
                f"{PREFIX}/api/v1/sessions",
                json={"userId": user, "origin": HOST},
                headers={"Authorization": f"Bearer {SECRET[project]}"},
            ).json
            assert session is not None
            ticket = self.client.post(
                f"{PREFIX}/api/v1/connect-tickets",
                json={"app": "sandbox"},
                headers={"Authorization": f"Bearer {session['token']}", "Origin": HOST},
            ).json
            assert ticket is not None
            connect_url = ticket["connect_url"]
        started = self.client.get(urlsplit(connect_url)._replace(scheme="", netloc="").geturl())
        assert started.status_code == 302, started.get_data(as_text=True)[:300]
        consent = Browser().consent(started.headers["Location"])
        done = self.client.get(
            f"{PREFIX}/oauth/sandbox/callback?{urlsplit(consent.callback_url).query}"
        )
        assert done.status_code == 200, done.get_data(as_text=True)[:300]
        accounts = self.client.get(
            f"{PREFIX}/api/v1/connected-accounts",
            headers={"Authorization": f"Bearer {SECRET[project]}", "X-Portal-User-Id": user},
        ).json
        assert accounts is not None
        return str(accounts["connected_accounts"][0]["id"])

    def calls(self, user: str) -> int:
        """Rows of the function-call log for ``user``."""
        store = self.app.extensions["portal"].store
        with store.read() as db:
            return int(db.scalar(select(func.count()).where(FunctionCall.user_id == user)) or 0)


HOST = "http://127.0.0.1:9"


def run_mcp(url: str, headers: dict[str, str], work: Callable[[ClientSession], Awaitable[T]]) -> T:
    """Open an MCP session with the official client over HTTP and run ``work`` in it."""

    async def main() -> T:
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return await work(session)

    return run_async(main)


def run_async(main: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``anyio.run(main, *args)`` in a thread of its own: an xdist worker that ran the Chromium
    tests before keeps Playwright's sync loop running in its main thread, where anyio refuses
    to start a second one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(anyio.run, main, *args).result()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def portals(stack: DemoStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The two-project portal (and a read-only twin on its database) with accounts: ``alice``
    of A (connected), ``bob`` of A (connected), ``alice`` of B (connected), ``carol`` of A
    (nothing connected)."""
    tmp: Path = tmp_path_factory.mktemp("mcp")
    database = database_config(tmp, "mcp")

    def build(**overrides: Any) -> Flask:
        config = portal_config(
            stack.portal.url, stack.sandbox.url, [HOST], TESTING=True, **database
        )
        config.update(
            PORTAL_APP_KEYS={A: [SECRET[A]], B: [SECRET[B]]},
            PORTAL_ENABLED_APPS=["sandbox", "slack"],
            PORTAL_APPS={
                **config["PORTAL_APPS"],
                "slack": {"client_id": "slack-id", "client_secret": "slack-secret"},
            },
            **overrides,
        )
        return create_app(config)

    main = Portal(build())
    read_only = Portal(build(PORTAL_MCP_READ_ONLY=True))
    suffix = uuid.uuid4().hex[:8]
    users = {name: f"{name}-{suffix}" for name in ("alice", "bob", "carol")}
    accounts = {
        ("alice", A): main.connect(A, users["alice"]),
        ("bob", A): main.connect(A, users["bob"]),
        ("alice", B): main.connect(B, users["alice"]),
    }
    yield {
        "main": main,
        "read_only": read_only,
        "users": users,
        "accounts": accounts,
        "build": build,
    }
    main.server.stop()
    read_only.server.stop()


def test_tools_of_a_connected_user_with_annotations(portals: dict[str, Any]) -> None:
    main: Portal = portals["main"]
    token = main.mint(A, portals["users"]["alice"])
    assert token["url"].endswith("/portal/mcp")
    listed = run_mcp(main.mcp_url, bearer(token["token"]), lambda s: s.list_tools())
    tools = {t.name: t for t in listed.tools}
    # Sandbox is connected: its functions; Slack is not: only the connect tool offers it.
    assert {"sandbox-list-contacts", "sandbox-create-contact", "sandbox-get-contact"} <= set(tools)
    assert not any(name.startswith("slack-") for name in tools)
    assert tools["connect_app"].input_schema["properties"]["app"]["enum"] == ["sandbox", "slack"]
    listing = tools["sandbox-list-contacts"]
    assert listing.input_schema["properties"]["limit"]["maximum"] == 100
    assert listing.input_schema["properties"]["connectedAccountId"]["type"] == "string"
    assert "next_page" in listing.input_schema["properties"]
    assert listing.annotations is not None
    assert listing.annotations.read_only_hint is True
    assert listing.annotations.destructive_hint is False
    creating = tools["sandbox-create-contact"].annotations
    assert creating is not None
    assert creating.read_only_hint is False and creating.destructive_hint is True


def test_list_contacts_pages_through_next_page(portals: dict[str, Any]) -> None:
    main: Portal = portals["main"]
    user = portals["users"]["alice"]
    token = main.mint(A, user)
    before = main.calls(user)

    async def page_through(session: ClientSession) -> list[dict[str, Any]]:
        pages = []
        arguments: dict[str, Any] = {"limit": 5}
        while True:
            result = await session.call_tool("sandbox-list-contacts", arguments)
            assert result.is_error is False, result
            pages.append(result.structured_content)
            if not result.structured_content["next_page"]:
                return pages
            arguments = {"limit": 5, "next_page": result.structured_content["next_page"]}

    pages = run_mcp(main.mcp_url, bearer(token["token"]), page_through)
    assert len(pages) >= 3
    assert all(p["network_code"] == 200 for p in pages)
    names = [c["name"] for p in pages for c in p["output"]]
    # The same list in one page through invokeFunction: nothing lost or repeated by paging.
    whole = main.client.post(
        f"{PREFIX}/api/v1/functions/sandbox-list-contacts/invoke",
        json={"params": {"limit": 100}},
        headers={"Authorization": f"Bearer {SECRET[A]}", "X-Portal-User-Id": user},
    ).json
    assert whole is not None
    assert names == [c["name"] for c in whole["output"]]
    assert names[:2] == ["Charles Babbage", "Mary Somerville"]
    # Every page is a call in the function-call log (plus the one invokeFunction above).
    assert main.calls(user) == before + len(pages) + 1


def test_text_content_carries_the_same_result(portals: dict[str, Any]) -> None:
    import json

    main: Portal = portals["main"]
    token = main.mint(A, portals["users"]["alice"])
    result = run_mcp(
        main.mcp_url,
        bearer(token["token"]),
        lambda s: s.call_tool("sandbox-list-contacts", {"limit": 1}),
    )
    assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]


def test_app_secret_and_user_id_authenticate_too(portals: dict[str, Any]) -> None:
    main: Portal = portals["main"]
    user = portals["users"]["bob"]
    headers = {"Authorization": f"Bearer {SECRET[A]}", "X-Portal-User-Id": user}
    result = run_mcp(
        main.mcp_url, headers, lambda s: s.call_tool("sandbox-list-contacts", {"limit": 2})
    )
    assert result.is_error is False and result.structured_content["network_code"] == 200


def test_a_tool_without_an_account_answers_a_connect_link(portals: dict[str, Any]) -> None:
    main: Portal = portals["main"]
    user = portals["users"]["carol"]
    token = main.mint(A, user)

    listed = run_mcp(main.mcp_url, bearer(token["token"]), lambda s: s.list_tools())
    assert [t.name for t in listed.tools] == ["connect_app"]
    result = run_mcp(
        main.mcp_url,
        bearer(token["token"]),
        lambda s: s.call_tool("sandbox-list-contacts", {"limit": 2}),
    )
    assert result.is_error is True
    answer = result.structured_content
    assert answer["error"] == "not_connected" and answer["app"] == "sandbox"
    assert answer["connect_url"] in result.content[0].text  # type: ignore[union-attr]
    assert main.calls(user) == 0  # nothing ran
    # The link is a real connect link for this user: following it connects the account,
    # and the same tool call then runs.
    main.connect(A, user, answer["connect_url"])
    again = run_mcp(
        main.mcp_url,
        bearer(token["token"]),
        lambda s: s.call_tool("sandbox-list-contacts", {"limit": 2}),
    )
    assert again.is_error is False and again.structured_content["network_code"] == 200

    # The connect tool answers a link on request, for an app not connected yet.
    linked = run_mcp(
        main.mcp_url, bearer(token["token"]), lambda s: s.call_tool("connect_app", {"app": "slack"})
    )
    assert linked.is_error is False
    assert "/portal/connect/slack?ticket=" in linked.structured_content["connect_url"]


@pytest.mark.security("Account id of user A requested with user B's session")
@pytest.mark.security("Projects are tenants")
def test_another_users_or_projects_account_is_refused(portals: dict[str, Any]) -> None:
    main: Portal = portals["main"]
    users, accounts = portals["users"], portals["accounts"]
    token = main.mint(A, users["alice"])
    before = {u: main.calls(users[u]) for u in ("alice", "bob")}
    for foreign in (accounts[("bob", A)], accounts[("alice", B)]):
        result = run_mcp(
            main.mcp_url,
            bearer(token["token"]),
            lambda s, foreign=foreign: s.call_tool(
                "sandbox-list-contacts", {"limit": 2, "connectedAccountId": foreign}
            ),
        )
        assert result.is_error is True
        assert result.structured_content["error"] == "No such connected account."
        assert "network_code" not in result.structured_content
    # Its own account by id works.
    own = run_mcp(
        main.mcp_url,
        bearer(token["token"]),
        lambda s: s.call_tool(
            "sandbox-list-contacts", {"limit": 2, "connectedAccountId": accounts[("alice", A)]}
        ),
    )
    assert own.is_error is False
    assert main.calls(users["bob"]) == before["bob"]
    assert main.calls(users["alice"]) == before["alice"] + 1
    # Project B's token for the same user id sees B's account, not A's.
    b_token = main.mint(B, users["alice"])
    refused = run_mcp(
        main.mcp_url,
        bearer(b_token["token"]),
        lambda s: s.call_tool(
            "sandbox-list-contacts", {"limit": 2, "connectedAccountId": accounts[("alice", A)]}
        ),
    )
    assert refused.is_error is True and "network_code" not in refused.structured_content


def test_token_allow_lists_narrow_the_tools(portals: dict[str, Any]) -> None:
    main: Portal = portals["main"]
    token = main.mint(A, portals["users"]["alice"], functions=["sandbox-list-contacts"])

    async def work(session: ClientSession) -> tuple[list[str], Exception | None]:
        listed = await session.list_tools()
        try:
            await session.call_tool("sandbox-create-contact", {"name": "X", "email": "x@y.z"})
        except MCPError as exc:
            return [t.name for t in listed.tools], exc
        return [t.name for t in listed.tools], None

    names, error = run_mcp(main.mcp_url, bearer(token["token"]), work)
    assert names == ["sandbox-list-contacts", "connect_app"]
    assert error is not None and "Unknown tool" in str(error)
    unknown = requests.post(
        f"{main.url}{PREFIX}/api/v1/mcp-tokens",
        json={"userId": "u", "apps": ["nope"]},
        headers={"Authorization": f"Bearer {SECRET[A]}"},
        timeout=10,
    )
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_apps"


def test_read_only_mode_hides_and_refuses_destructive_tools(portals: dict[str, Any]) -> None:
    read_only: Portal = portals["read_only"]
    user = portals["users"]["alice"]
    token = read_only.mint(A, user)
    before = read_only.calls(user)

    async def work(session: ClientSession) -> tuple[list[str], Exception | None]:
        listed = await session.list_tools()
        try:
            await session.call_tool("sandbox-create-contact", {"name": "X", "email": "x@y.z"})
        except MCPError as exc:
            return [t.name for t in listed.tools], exc
        return [t.name for t in listed.tools], None

    names, error = run_mcp(read_only.mcp_url, bearer(token["token"]), work)
    assert "sandbox-list-contacts" in names and "sandbox-get-contact" in names
    assert "sandbox-create-contact" not in names
    assert error is not None and "Unknown tool" in str(error)
    assert read_only.calls(user) == before
    tools = read_only.client.get(
        f"{PREFIX}/api/v1/tools?format=openai", headers=bearer(token["token"])
    ).json
    assert tools is not None
    assert "sandbox-create-contact" not in [t["function"]["name"] for t in tools["tools"]]


def test_host_allow_list_limits_every_user(portals: dict[str, Any]) -> None:
    """``PORTAL_MCP_TOOLS``: only the listed functions are tools, for every user and token."""
    allowed = portals["build"](PORTAL_MCP_TOOLS=["sandbox-get-contact"])
    served = ServerThread("127.0.0.1", 0).start(allowed)
    try:
        headers = {
            "Authorization": f"Bearer {SECRET[A]}",
            "X-Portal-User-Id": portals["users"]["alice"],
        }

        async def work(session: ClientSession) -> tuple[list[str], Exception | None]:
            listed = await session.list_tools()
            try:
                await session.call_tool("sandbox-list-contacts", {"limit": 1})
            except MCPError as exc:
                return [t.name for t in listed.tools], exc
            return [t.name for t in listed.tools], None

        names, error = run_mcp(f"{served.url}{PREFIX}/mcp", headers, work)
    finally:
        served.stop()
    assert names == ["sandbox-get-contact", "connect_app"]
    assert error is not None and "Unknown tool" in str(error)


def test_expired_and_tampered_tokens_are_refused(portals: dict[str, Any]) -> None:
    main: Portal = portals["main"]
    token = main.mint(A, portals["users"]["alice"], expiresIn=60)["token"]
    payload, _, signature = token.rpartition(".")
    tampered = payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    other_purpose = requests.post(
        f"{main.url}{PREFIX}/api/v1/sessions",
        json={"userId": portals["users"]["alice"], "origin": HOST},
        headers={"Authorization": f"Bearer {SECRET[A]}"},
        timeout=10,
    ).json()["token"]
    # A session token is no MCP token, but a caller of the JSON API: it authenticates as that
    # user (no allow-lists) and is covered by the API's own rules; a tampered one is not.
    for bad in (tampered, "not-a-token", other_purpose + "x"):
        answer = requests.post(
            main.mcp_url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={**bearer(bad), "Accept": "application/json, text/event-stream"},
            timeout=10,
        )
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"] in ("invalid_token", "unauthorized", "invalid_session")
    with pytest.raises(Exception):  # noqa: B017 - the client raises whatever it raises on 401
        run_mcp(main.mcp_url, bearer(tampered), lambda s: s.list_tools())
    # An expired token, signed with the portal's key (minting one that has already expired
    # instead of waiting for one to expire).
    expired_token, _ = mint_token(
        main.app.config["SECRET_KEY"], AgentScope(A, portals["users"]["alice"]), -1
    )
    expired = requests.post(
        main.mcp_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={**bearer(expired_token), "Accept": "application/json, text/event-stream"},
        timeout=10,
    )
    assert expired.status_code == 401 and expired.json()["error"] == "token_expired"


def test_mint_needs_the_app_secret(portals: dict[str, Any]) -> None:
    main: Portal = portals["main"]
    token = main.mint(A, portals["users"]["alice"])["token"]
    for headers in ({}, bearer(token), bearer("wrong-secret")):
        answer = requests.post(
            f"{main.url}{PREFIX}/api/v1/mcp-tokens",
            json={"userId": "u-1"},
            headers=headers,
            timeout=10,
        )
        assert answer.status_code == 401 and answer.json()["error"] == "invalid_app_secret"
    too_long = requests.post(
        f"{main.url}{PREFIX}/api/v1/mcp-tokens",
        json={"userId": "u-1", "expiresIn": 10**9},
        headers=bearer(SECRET[A]),
        timeout=10,
    )
    assert too_long.status_code == 400 and too_long.json()["error"] == "invalid_expires_in"


@pytest.mark.parametrize("format_", ["openai", "anthropic", "mcp"])
def test_tools_as_function_calling_schemas(portals: dict[str, Any], format_: str) -> None:
    main: Portal = portals["main"]
    user = portals["users"]["alice"]
    served = requests.get(
        f"{main.url}{PREFIX}/api/v1/tools",
        params={"format": format_},
        headers={"Authorization": f"Bearer {SECRET[A]}", "X-Portal-User-Id": user},
        timeout=10,
    )
    assert served.status_code == 200, served.text
    tools = served.json()["tools"]
    token = main.mint(A, user)
    listed = run_mcp(main.mcp_url, bearer(token["token"]), lambda s: s.list_tools())
    expected = {t.name: t.input_schema for t in listed.tools}
    if format_ == "openai":
        got = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
        assert all(t["type"] == "function" for t in tools)
    elif format_ == "anthropic":
        got = {t["name"]: t["input_schema"] for t in tools}
    else:
        got = {t["name"]: t["inputSchema"] for t in tools}
    assert got == expected
    bad = requests.get(
        f"{main.url}{PREFIX}/api/v1/tools?format=xml", headers=bearer(token["token"]), timeout=10
    )
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_format"


LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
ACCEPT = {"Accept": "application/json, text/event-stream"}


def test_http_edges_of_the_endpoint(portals: dict[str, Any]) -> None:
    """No credentials: 401 with ``WWW-Authenticate``; a foreign browser origin: 403; GET and
    DELETE (a stream, a session): 405 at once, never a stream held open."""
    main: Portal = portals["main"]
    token = main.mint(A, portals["users"]["alice"])["token"]
    anonymous = requests.post(main.mcp_url, json=LIST, headers=ACCEPT, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.json()["error"] == "unauthorized"
    foreign = requests.post(
        main.mcp_url,
        json=LIST,
        headers={**ACCEPT, **bearer(token), "Origin": "https://evil.example"},
        timeout=10,
    )
    assert foreign.status_code == 403 and foreign.json()["error"] == "origin_not_allowed"
    for method in ("GET", "DELETE"):
        answer = requests.request(
            method,
            main.mcp_url,
            headers={"Accept": "text/event-stream", **bearer(token)},
            timeout=10,
        )
        assert answer.status_code == 405 and answer.headers["Allow"] == "POST"
    listed = requests.post(main.mcp_url, json=LIST, headers={**ACCEPT, **bearer(token)}, timeout=10)
    assert listed.status_code == 200 and listed.json()["result"]["tools"]


def test_rate_limit_per_end_user(portals: dict[str, Any]) -> None:
    limited = portals["build"](PORTAL_RATE_LIMIT_MCP="2/minute").test_client()
    users = portals["users"]
    headers = {
        user: {**ACCEPT, "Authorization": f"Bearer {SECRET[A]}", "X-Portal-User-Id": users[user]}
        for user in ("alice", "bob")
    }
    statuses = [
        limited.post(f"{PREFIX}/mcp", json=LIST, headers=headers["alice"]).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    refused = limited.post(f"{PREFIX}/mcp", json=LIST, headers=headers["alice"])
    assert refused.json is not None and refused.json["error"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    # Another end user of the same project has a budget of their own.
    assert limited.post(f"{PREFIX}/mcp", json=LIST, headers=headers["bob"]).status_code == 200


def test_a_refused_connection_answers_a_reconnect_link(portals: dict[str, Any]) -> None:
    """The provider refuses the stored refresh token (expired access token, forged refresh
    token written into the sealed credentials): ``needs_reauth`` with a link that reconnects."""
    from datetime import UTC, datetime, timedelta

    from portal.store import ConnectedAccount

    main: Portal = portals["main"]
    user = f"dave-{uuid.uuid4().hex[:8]}"
    account_id = main.connect(A, user)
    state = main.app.extensions["portal"]
    with state.store.session() as db:
        account = db.get(ConnectedAccount, account_id)
        assert account is not None
        data = state.sealer.open(account_id, account.credentials)
        data.update(refresh_token="refused-by-the-provider", expires_at=1)
        account.credentials = state.sealer.seal(account_id, data)
        account.expires_at = datetime.now(UTC) - timedelta(hours=1)
    token = main.mint(A, user)["token"]
    result = run_mcp(
        main.mcp_url, bearer(token), lambda s: s.call_tool("sandbox-list-contacts", {"limit": 1})
    )
    assert result.is_error is True
    assert result.structured_content["error"] == "needs_reauth"
    reconnected = main.connect(A, user, result.structured_content["connect_url"])
    assert reconnected == account_id  # the same account, active again
    again = run_mcp(
        main.mcp_url, bearer(token), lambda s: s.call_tool("sandbox-list-contacts", {"limit": 1})
    )
    assert again.is_error is False and again.structured_content["network_code"] == 200


def test_without_the_mcp_extra_the_endpoint_says_what_to_install(
    portals: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulated: a ``None`` entry for ``mcp`` in ``sys.modules`` makes its import fail as a
    missing SDK would (this venv has it installed; the wheel test's venv has not), and
    ``portal.mcp`` is imported afresh."""
    import sys

    import portal

    main: Portal = portals["main"]
    for name in [n for n in sys.modules if n == "mcp" or n.startswith("mcp.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "portal.mcp", raising=False)
    monkeypatch.delattr(portal, "mcp", raising=False)
    answer = main.client.post(
        f"{PREFIX}/mcp",
        json=LIST,
        headers={**ACCEPT, "Authorization": f"Bearer {SECRET[A]}", "X-Portal-User-Id": "u"},
    )
    assert answer.status_code == 501
    assert answer.json is not None and answer.json["error"] == "mcp_not_installed"
    assert "connect-portal[mcp]" in answer.json["message"]


# --------------------------------------------------------------------------- README

SECTION = "AI agents"


def _readme_curl(index: int, stack: DemoStack, env: dict[str, str], user: str) -> Any:
    """Run README block ``index`` of the section (a curl command) against the live demo
    portal; returns (its JSON answer, the promised answer's text)."""
    import json
    import os
    import re
    import subprocess

    code = block(SECTION, index).code
    command, _, promise = code.partition("\n# ->")
    command = fill(command, {"https://portal.example": stack.portal.url})
    if "u-42" in command:
        command = fill(command, {"u-42": user})
    bare = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "FLASK_"))}
    result = subprocess.run(
        ["sh", "-c", command],
        env={**bare, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    promised_keys = set(re.findall(r'"(\w+)":', promise.split("[", 1)[0]))
    assert promised_keys <= set(answer), (promised_keys, answer)
    return answer


@pytest.mark.readme(SECTION, 0)
@pytest.mark.readme(SECTION, 1)
@pytest.mark.readme(SECTION, 2)
@pytest.mark.readme(SECTION, 3)
def test_readme_agents_section_as_written(stack: DemoStack, sandbox: str) -> None:
    """The section's blocks against the live demo portal: the curl line mints a token, the
    Python client pages through the contacts with it, the Claude Desktop configuration's header
    authenticates (``npx mcp-remote`` itself is not run: it needs npm's registry; the official
    Python client sends the same header instead), and the tools curl line answers OpenAI tools.
    """
    import json

    from conftest import connect_sandbox, new_session

    from portal.demo import DEMO_APP_SECRET

    user = f"readme-agent-{uuid.uuid4().hex[:8]}"
    callback, _ = connect_sandbox(new_session(stack, user))
    assert callback.status_code == 200
    minted = _readme_curl(0, stack, {"APP_SECRET": DEMO_APP_SECRET}, user)
    assert minted["user_id"] == user
    assert minted["url"] == stack.mcp_url == f"{stack.portal.url}/portal/mcp"

    namespace: dict[str, Any] = {}
    exec(block(SECTION, 1).code, namespace)
    contacts = run_async(namespace["list_contacts"], minted["url"], minted["token"])
    whole = requests.post(
        f"{stack.portal.url}/portal/api/v1/functions/sandbox-list-contacts/invoke",
        json={"params": {"limit": 100}},
        headers={"Authorization": f"Bearer {DEMO_APP_SECRET}", "X-Portal-User-Id": user},
        timeout=10,
    ).json()
    assert contacts == whole["output"] and len(contacts) >= 12

    config = json.loads(fill(block(SECTION, 2).code, {"Bearer …": f"Bearer {minted['token']}"}))
    server = config["mcpServers"]["connect-portal"]
    assert server["command"] == "npx" and "mcp-remote" in server["args"]
    url = fill(
        server["args"][server["args"].index("mcp-remote") + 1],
        {"https://portal.example": stack.portal.url},
    )
    header = server["args"][server["args"].index("--header") + 1]
    header = header.replace("${AUTH_HEADER}", server["env"]["AUTH_HEADER"])
    name, _, value = header.partition(":")
    listed = run_mcp(url, {name: value}, lambda s: s.list_tools())
    assert "sandbox-list-contacts" in [t.name for t in listed.tools]

    tools = _readme_curl(3, stack, {"MCP_TOKEN": minted["token"]}, user)
    assert tools["format"] == "openai"
    assert tools["tools"][0]["function"]["name"] == "sandbox-list-contacts"
    assert tools["tools"][0]["type"] == "function"


def test_demo_token_authenticates_the_demo_user(stack: DemoStack) -> None:
    """What ``make demo`` prints (:meth:`DemoStack.mcp_token`) opens an MCP session."""
    listed = run_mcp(stack.mcp_url, bearer(stack.mcp_token()), lambda s: s.list_tools())
    assert "connect_app" in [t.name for t in listed.tools]
