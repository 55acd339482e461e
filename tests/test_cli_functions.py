"""``flask portal functions list|show`` and ``flask portal apps crosscheck``, run through
Flask's real CLI runner on the shipped catalog."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from portal.catalog import load_catalog
from portal.functions import signature
from portal.service import create_app

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import crosscheck  # noqa: E402


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    tmp = tmp_path_factory.mktemp("cli-functions")
    return create_app(
        {
            "SECRET_KEY": "test-secret",
            "TESTING": True,
            "PORTAL_BASE_URL": "https://portal.example",
            "PORTAL_DATABASE_URL": f"sqlite:///{tmp / 'portal.sqlite3'}",
            "PORTAL_APP_KEYS": {"key": ["secret"]},
        }
    )


def run(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["portal", *args])


def test_list_names_every_function_of_the_catalog(app: Flask) -> None:
    result = run(app, "functions", "list")
    assert result.exit_code == 0, result.output
    every = [f for a in load_catalog(environ={}) for f in a.functions]
    lines = result.output.splitlines()
    assert lines[-1] == f"{len(every)} function(s)"
    assert [line.split()[0] for line in lines[:-1]] == [f.name for f in every]
    post = next(line for line in lines if line.startswith("slack-post-message "))
    assert post.split()[1:3] == ["POST", "/chat.postMessage"] and post.endswith(" write")
    history = next(line for line in lines if line.startswith("slack-list-messages "))
    assert history.endswith(" paginated read")


def test_list_one_app_as_json(app: Flask) -> None:
    result = run(app, "functions", "list", "--app", "github", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    github = load_catalog(environ={}).get("github")
    assert github is not None and len(rows) == len(github.functions) > 0
    first = github.functions[0]
    assert rows[0] == {
        **signature(first),
        "method": first.method,
        "path": first.path,
        "destructive": first.destructive,
    }
    assert {r["app"] for r in rows} == {"github"}


def test_list_unknown_app_is_an_error(app: Flask) -> None:
    result = run(app, "functions", "list", "--app", "no-such-app")
    assert result.exit_code == 1
    assert "there is no app called 'no-such-app'" in result.output


def test_show_prints_request_pagination_and_params(app: Flask) -> None:
    result = run(app, "functions", "show", "hubspot-search-contacts")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Search contacts (hubspot-search-contacts)"
    assert "  request:     POST /crm/v3/objects/contacts/search" in lines
    assert (
        "  pagination:  params.next_page -> body after; next cursor <- paging.next.after" in lines
    )
    assert "  output:      results" in lines
    start = lines.index("  params:") + 1
    schema = json.loads("\n".join(line[4:] for line in lines[start:]))
    fn = load_catalog(environ={}).function("hubspot-search-contacts")
    assert fn is not None and schema == dict(fn.params)


def test_show_a_read_without_pagination(app: Flask) -> None:
    result = run(app, "functions", "show", "github-get-issue")
    assert result.exit_code == 0, result.output
    assert "  changes:     no (read only)" in result.output
    assert "pagination:" not in result.output


def test_show_unknown_function_is_an_error(app: Flask) -> None:
    result = run(app, "functions", "show", "slack-no-such-thing")
    assert result.exit_code == 1
    assert "there is no function called 'slack-no-such-thing'" in result.output


def test_apps_crosscheck_prints_the_scripts_report(app: Flask) -> None:
    result = run(app, "apps", "crosscheck", "--unexplained")
    expected = crosscheck.report(crosscheck.crosscheck())
    assert result.output.splitlines() == expected
    unexplained = any(r.status == "differs" and not r.explanation for r in crosscheck.crosscheck())
    assert result.exit_code == (1 if unexplained else 0)
    everything = run(app, "apps", "crosscheck", "--all")
    assert everything.exit_code == 0
    assert len(everything.output.splitlines()) > len(expected)
