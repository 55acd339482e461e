"""portal/agents.py and the catalog's ``destructive`` flag, without a server (the MCP
endpoint over loopback HTTP is tests/test_mcp.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from itsdangerous import URLSafeTimedSerializer

from portal.agents import AgentScope, as_format, mint_token, read_token
from portal.catalog import load_catalog
from portal.errors import AuthenticationFailed

SHIPPED = Path(__file__).resolve().parent.parent / "portal" / "apps"
KEY = "agents-test-secret-key"


def test_every_shipped_function_says_whether_it_is_destructive() -> None:
    """Explicit in every shipped file, and every GET is a read."""
    for path in sorted(SHIPPED.glob("*.yaml")):
        for function in yaml.safe_load(path.read_text("utf-8")).get("functions") or []:
            assert isinstance(function.get("destructive"), bool), (path.name, function["name"])
            if function["method"] == "GET":
                assert function["destructive"] is False, function["name"]


def test_destructive_defaults_to_every_method_but_get(tmp_path: Path) -> None:
    source = yaml.safe_load((SHIPPED / "sandbox.yaml").read_text("utf-8"))
    for function in source["functions"]:
        function.pop("destructive")
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(source), "utf-8")
    catalog = load_catalog([tmp_path], {})
    app = catalog.get("sandbox")
    assert app is not None
    assert {f.name: f.destructive for f in app.functions} == {
        "sandbox-list-contacts": False,
        "sandbox-create-contact": True,
        "sandbox-delete-contact": True,
        "sandbox-get-contact": False,
    }
    # The shipped reads that POST say so themselves.
    shipped = load_catalog([], {})
    search = shipped.function("intercom-search-contacts")
    assert search is not None and search.method == "POST" and search.destructive is False


def test_token_round_trip_and_refusals() -> None:
    scope = AgentScope("proj", "ü-42", apps=frozenset({"sandbox"}), functions=None)
    token, expires_at = mint_token(KEY, scope, 60)
    read = read_token(KEY, token, 3600)
    assert (read.project, read.user_id, read.apps, read.functions) == (
        "proj",
        "ü-42",
        frozenset({"sandbox"}),
        None,
    )
    assert read.expires_at == expires_at
    with pytest.raises(AuthenticationFailed) as other_key:
        read_token("another-key", token, 3600)
    assert other_key.value.error_code == "invalid_token"
    # The same key and payload signed for another purpose (a session token's salt).
    other_salt = URLSafeTimedSerializer(KEY, salt="portal.session").dumps(
        {"k": "proj", "u": "x", "x": expires_at}
    )
    with pytest.raises(AuthenticationFailed):
        read_token(KEY, other_salt, 3600)
    # Expired by its own expiry, and by the portal's ceiling (signed longer ago than max_ttl).
    expired, _ = mint_token(KEY, scope, -1)
    with pytest.raises(AuthenticationFailed) as late:
        read_token(KEY, expired, 3600)
    assert late.value.error_code == "token_expired"
    with pytest.raises(AuthenticationFailed) as ceiling:
        read_token(KEY, token, -1)
    assert ceiling.value.error_code == "token_expired"
    with pytest.raises(AuthenticationFailed):
        read_token(KEY, "x" * 5000, 3600)


def test_formats_carry_the_same_schema() -> None:
    tool = {
        "name": "sandbox-list-contacts",
        "title": "List contacts",
        "description": "Contacts.",
        "input_schema": {"type": "object", "properties": {"limit": {"type": "integer"}}},
        "read_only": True,
        "destructive": False,
    }
    openai = as_format(tool, "openai")
    anthropic = as_format(tool, "anthropic")
    mcp = as_format(tool, "mcp")
    assert openai["type"] == "function"
    assert openai["function"]["parameters"] == anthropic["input_schema"] == mcp["inputSchema"]
    assert mcp["annotations"]["readOnlyHint"] is True
    assert mcp["annotations"]["destructiveHint"] is False
    with pytest.raises(ValueError):
        as_format(tool, "xml")
