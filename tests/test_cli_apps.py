"""``flask portal apps list|show|validate`` run through Flask's real CLI runner, and the
catalog schema served for hosts' editors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask

from portal.catalog import SHIPPED_DIR
from portal.errors import CatalogError
from portal.service import create_app

BASE_URL = "https://portal.example"

#: A valid API-key app definition; the tests break copies of it.
GOOD: dict[str, Any] = {
    "slug": "good",
    "title": "Good App",
    "description": "An app used by the CLI tests.",
    "categories": ["Analytics"],
    "docs_url": "https://docs.good.example/api-keys",
    "auth": {"type": "api_key", "placement": {"in": "header", "name": "X-API-Key"}},
    "api": {"base_url": "https://api.good.example/v1"},
}


def portal_app(tmp_path: Path, **overrides: Any) -> Flask:
    config = {
        "SECRET_KEY": "test-secret",
        "TESTING": True,
        "PORTAL_BASE_URL": BASE_URL,
        "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "PORTAL_APP_KEYS": {"key": ["secret"]},
    }
    config.update(overrides)
    return create_app(config)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """One portal app for the read-only commands (building one loads the whole catalog)."""
    return portal_app(tmp_path_factory.mktemp("cli"))


def run(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["portal", "apps", *args])


def write(directory: Path, name: str, data: Any) -> Path:
    path = directory / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), "utf-8")
    return path


@pytest.fixture
def broken_dir(tmp_path: Path) -> Path:
    """One valid file and five broken ones, each broken differently."""
    directory = tmp_path / "catalog"
    directory.mkdir()
    write(directory, "good.yaml", GOOD)
    # Two schema problems in one file: both must be reported.
    write(
        directory,
        "two-problems.yaml",
        {**GOOD, "slug": "two-problems", "title": 42, "auth": {"type": "telepathy"}},
    )
    write(
        directory,
        "no-docs.yaml",
        {k: v for k, v in GOOD.items() if k != "docs_url"} | {"slug": "no-docs"},
    )
    write(directory, "not-yaml.yaml", "slug: [unclosed\n  title: :")
    write(directory, "renamed.yaml", {**GOOD, "slug": "other-name"})
    # Schema-valid, but a function name must start with the app's slug (checked at load).
    write(
        directory,
        "bad-function.yml",
        {
            **GOOD,
            "slug": "bad-function",
            "functions": [
                {
                    "name": "someone-else-list",
                    "title": "List",
                    "method": "GET",
                    "path": "/things",
                    "params": {"type": "object"},
                }
            ],
        },
    )
    return directory


def test_validate_passes_on_the_shipped_catalog(app: Flask) -> None:
    result = run(app, "validate")
    shipped = len([*SHIPPED_DIR.glob("*.yaml"), *SHIPPED_DIR.glob("*.yml")])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"{shipped} app definition file(s) valid"
    assert result.stderr == ""


def test_validate_reports_every_problem_with_file_and_field(app: Flask, broken_dir: Path) -> None:
    result = run(app, "validate", str(broken_dir))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    problems, summary = lines[:-1], lines[-1]

    def about(name: str) -> list[str]:
        return [p for p in problems if p.startswith(f"{broken_dir / name}: ")]

    two = about("two-problems.yaml")
    assert any(p.split(": ")[1] == "title" and "42 is not of type 'string'" in p for p in two)
    assert any(p.split(": ")[1] == "auth.type" or p.split(": ")[1] == "auth" for p in two)
    assert len(two) >= 2
    assert [p.split(": ")[1] for p in about("no-docs.yaml")] == ["(top level)"]
    assert "'docs_url' is a required property" in about("no-docs.yaml")[0]
    assert about("not-yaml.yaml") and "not valid YAML" in about("not-yaml.yaml")[0]
    assert about("renamed.yaml") == [
        f"{broken_dir / 'renamed.yaml'}: slug: 'other-name' must match the file name 'renamed'"
    ]
    assert about("bad-function.yml") and "someone-else-list" in about("bad-function.yml")[0]
    assert about("good.yaml") == []
    assert len({p.split(": ")[0] for p in problems}) == 5
    assert summary == f"{len(problems)} problem(s) in 5 of 6 file(s)"


def test_validate_single_file_and_catalog_paths(tmp_path: Path, broken_dir: Path) -> None:
    app = portal_app(tmp_path)
    one = run(app, "validate", str(broken_dir / "good.yaml"))
    assert one.exit_code == 0 and one.stdout.strip() == "1 app definition file(s) valid"
    # Without arguments: the shipped catalog plus PORTAL_CATALOG_PATHS (here a broken one,
    # which the portal itself would refuse to load, so the app is built without it).
    app.config["PORTAL_CATALOG_PATHS"] = [str(broken_dir)]
    everything = run(app, "validate")
    assert everything.exit_code == 1
    assert str(broken_dir / "renamed.yaml") in everything.stderr
    assert str(SHIPPED_DIR) not in everything.stderr


def test_show_prints_what_a_host_registers(app: Flask, tmp_path: Path) -> None:
    result = run(app, "show", "hubspot")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert f"redirect URL:  {BASE_URL}/portal/oauth/hubspot/callback" in out
    assert "client_id:     NOT SET" in out and "PORTAL_HUBSPOT_CLIENT_ID" in out
    with app.app_context():
        from portal.extension import current_portal

        hubspot = current_portal.catalog.get("hubspot")
    assert f"docs:          {hubspot.docs_url}" in out
    assert f"scopes:        {' '.join(hubspot.oauth2.scopes)}" in out
    for function in hubspot.functions:
        assert function.name in out

    configured = portal_app(
        tmp_path, PORTAL_APPS={"hubspot": {"client_id": "id-1", "client_secret": "shh-123"}}
    )
    shown = run(configured, "show", "hubspot").stdout
    assert "client_id:     set" in shown and "state:         ready" in shown
    assert "shh-123" not in shown and "id-1" not in shown


def test_show_api_key_app_and_unknown_app(app: Flask) -> None:
    result = run(app, "show", "sandbox-keys")
    assert result.exit_code == 0
    assert "api key:       header X-API-Key" in result.stdout
    assert "redirect URL" not in result.stdout
    missing = run(app, "show", "nope")
    assert missing.exit_code != 0 and "no app called 'nope'" in missing.stderr


def test_list_names_every_app(app: Flask) -> None:
    result = run(app, "list")
    assert result.exit_code == 0
    slugs = {line.split()[0] for line in result.stdout.splitlines()}
    assert {p.stem for p in SHIPPED_DIR.glob("*.yaml")} <= slugs


def test_schema_is_served_for_editors(app: Flask) -> None:
    response = app.test_client().get("/portal/api/v1/catalog.schema.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    on_disk = json.loads((SHIPPED_DIR.parent / "catalog.schema.json").read_text("utf-8"))
    assert response.get_json() == on_disk


# ---------------------------------------------------- catalog URLs: https (or loopback http)

#: A valid OAuth 2.0 app with every kind of catalog URL; the tests below break one at a time.
OAUTH_GOOD: dict[str, Any] = {
    "slug": "urls",
    "title": "URL App",
    "description": "An app whose every URL field is set.",
    "categories": ["Analytics"],
    "docs_url": "https://docs.urls.example/oauth",
    "icon": "https://cdn.urls.example/logo.svg",
    "auth": {
        "type": "oauth2",
        "authorize_url": "https://urls.example/oauth/authorize",
        "token_url": "https://urls.example/oauth/token",
        "refresh_url": "https://urls.example/oauth/refresh",
        "revoke_url": "https://urls.example/oauth/revoke",
        "server_metadata_url": "https://urls.example/.well-known/oauth-authorization-server",
        "issuer": "https://urls.example",
    },
    "api": {"base_url": "https://api.urls.example/v1"},
    "identity": {"url": "https://api.urls.example/v1/me", "external_id": "id"},
}

URL_FIELDS = [
    "docs_url",
    "icon",
    "auth.authorize_url",
    "auth.token_url",
    "auth.refresh_url",
    "auth.revoke_url",
    "auth.server_metadata_url",
    "auth.issuer",
    "api.base_url",
    "identity.url",
]
HOSTILE_URLS = [
    "javascript:alert(document.domain)",
    "JavaScript://%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "data:image/svg+xml;base64,PHN2Zy8+",
    "http://urls.example/plain-http",
    "vbscript:msgbox(1)",
]


def _with(field: str, value: str) -> dict[str, Any]:
    data = json.loads(json.dumps(OAUTH_GOOD))
    *parents, leaf = field.split(".")
    node = data
    for parent in parents:
        node = node[parent]
    node[leaf] = value
    return data


@pytest.mark.parametrize("value", HOSTILE_URLS)
@pytest.mark.parametrize("field", URL_FIELDS)
@pytest.mark.security("Catalog URLs (`docs_url`, icons, endpoints) with `javascript:` or `data:`")
def test_catalog_url_that_is_not_https_is_refused_naming_file_and_field(
    app: Flask, tmp_path: Path, field: str, value: str
) -> None:
    directory = tmp_path / "catalog"
    directory.mkdir()
    path = write(directory, "urls.yaml", _with(field, value))

    result = run(app, "validate", str(path))
    assert result.exit_code == 1, result.stdout
    problems = result.stderr.splitlines()[:-1]
    assert problems and all(p.startswith(f"{path}: {field}: ") for p in problems), problems

    # At start-up: the portal refuses to load the catalog, naming the same file and field.
    with pytest.raises(CatalogError) as info:
        portal_app(tmp_path, PORTAL_CATALOG_PATHS=[str(directory)])
    assert f"{path}: {field}: " in str(info.value)


@pytest.mark.parametrize(
    "value",
    ["https://urls.example/x", "http://127.0.0.1:5002/x", "http://localhost:8080/x", "http://[::1]/x"],
)
@pytest.mark.parametrize("field", URL_FIELDS)
@pytest.mark.security("Catalog URLs (`docs_url`, icons, endpoints) with `javascript:` or `data:`")
def test_catalog_urls_may_be_https_or_loopback_http(
    app: Flask, tmp_path: Path, field: str, value: str
) -> None:
    path = write(tmp_path, "urls.yaml", _with(field, value))
    result = run(app, "validate", str(path))
    assert result.exit_code == 0, result.stderr


def test_icon_file_names_stay_valid(app: Flask, tmp_path: Path) -> None:
    path = write(tmp_path, "urls.yaml", _with("icon", "sandbox.svg"))
    assert run(app, "validate", str(path)).exit_code == 0
    for bad in ("../secret.svg", "sub/dir.svg", "C:\\icon.svg"):
        path = write(tmp_path, "urls.yaml", _with("icon", bad))
        assert run(app, "validate", str(path)).exit_code == 1, bad


def test_base_url_setting_over_plain_http_is_refused_at_start_up(tmp_path: Path) -> None:
    # The sandbox's endpoints are "{base_url}/…": the host's setting is checked once filled in.
    with pytest.raises(CatalogError, match=r"sandbox\.yaml: auth\.authorize_url: "):
        portal_app(tmp_path, PORTAL_APPS={"sandbox": {"base_url": "http://sandbox.example"}})
    portal_app(tmp_path, PORTAL_APPS={"sandbox": {"base_url": "http://127.0.0.1:5002"}})
