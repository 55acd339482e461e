"""portal/catalog.py, portal/catalog.schema.json and the shipped portal/apps/*.yaml."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml
from conftest import Browser
from flask import Flask
from jsonschema import Draft202012Validator

from portal import user_hash
from portal.catalog import (
    SCHEMA,
    SHIPPED_DIR,
    Catalog,
    dotted,
    load_catalog,
    read_definitions,
    validate_definition,
)
from portal.demo import (
    DEMO_APP_KEY,
    DEMO_APP_SECRET,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DemoStack,
)
from portal.errors import CatalogError, ConfigurationError
from portal.sandbox.testing import start_sandbox

SHIPPED_SLUGS = {
    "sandbox",
    "sandbox-keys",
    "sandbox-basic",
    "sandbox-m2m",
    "sandbox-regional",
    "sandbox-nested",
    "sandbox-forever",
    "sandbox-post",
    "sandbox-tenant-keys",
    "slack",
    "hubspot",
    "intercom",
    "pipedrive",
}


def _all_shipped() -> set[str]:
    """Every shipped slug (one per portal/apps/*.yaml; the catalog grows)."""
    return {p.stem for p in SHIPPED_DIR.glob("*.yaml")}


def definition(slug: str, **overrides: Any) -> dict[str, Any]:
    """A valid API-key app definition, with top-level keys replaced by ``overrides``."""
    data: dict[str, Any] = {
        "slug": slug,
        "title": f"{slug.title()} App",
        "description": f"The {slug} test app.",
        "categories": ["Testing"],
        "docs_url": f"https://docs.example.com/{slug}",
        "auth": {"type": "api_key", "placement": {"in": "header", "name": "X-Key"}},
        "api": {"base_url": "https://api.example.com/v1"},
    }
    data.update(overrides)
    return data


def oauth_definition(slug: str, **auth: Any) -> dict[str, Any]:
    """A valid OAuth 2.0 app definition whose URLs use ``{base_url}``."""
    settings = {
        "type": "oauth2",
        "authorize_url": "{base_url}/oauth/authorize",
        "token_url": "{base_url}/oauth/token",
        "scopes": ["read"],
    }
    settings.update(auth)
    return definition(
        slug,
        auth=settings,
        api={"base_url": "{base_url}/api"},
        identity={"url": "/me", "external_id": "data.id", "label": "data.email"},
    )


def write(directory: Path, slug: str, data: Any, suffix: str = ".yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{slug}{suffix}"
    path.write_text(yaml.safe_dump(data, sort_keys=False), "utf-8")
    return path


def catalog_error(paths: list[Path], **kw: Any) -> str:
    with pytest.raises(CatalogError) as info:
        load_catalog(paths, environ={}, **kw)
    return str(info.value)


# --------------------------------------------------------------------------- shipped catalog


def test_schema_is_a_valid_2020_12_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", sorted(SHIPPED_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_definition_validates(path: Path) -> None:
    data = yaml.safe_load(path.read_text("utf-8"))
    assert validate_definition(data, path) == []
    assert data["slug"] == path.stem


def test_shipped_catalog_loads() -> None:
    catalog = load_catalog(environ={})
    assert isinstance(catalog, Catalog)
    # The catalog grows: every shipped file is one app, and these are among them.
    assert {app.slug for app in catalog} >= SHIPPED_SLUGS
    assert {app.slug for app in catalog} == {p.stem for p in SHIPPED_DIR.glob("*.yaml")}
    sandbox = catalog.get("sandbox")
    assert sandbox is not None
    assert sandbox.auth_type == "oauth2"
    assert sandbox.oauth2 is not None and sandbox.oauth2.pkce is True
    assert "contacts.read" in sandbox.oauth2.scopes
    assert catalog.get("sandbox-keys").auth_type == "api_key"  # type: ignore[union-attr]
    assert catalog.get("sandbox-basic").auth_type == "basic"  # type: ignore[union-attr]
    assert catalog.get("nope") is None
    assert "sandbox" in catalog and "nope" not in catalog


def test_shipped_apps_are_not_usable_until_configured() -> None:
    catalog = load_catalog(environ={})
    sandbox = catalog.get("sandbox")
    assert sandbox is not None and not sandbox.usable
    assert set(sandbox.missing) == {"base_url", "client_id"}
    keys = catalog.get("sandbox-keys")
    assert keys is not None and keys.missing == ("base_url",)
    # Sandbox apps need a base_url; real API-key apps with fixed URLs are usable as shipped.
    assert [a.slug for a in catalog.usable() if a.slug.startswith("sandbox")] == []
    assert all(not a.missing for a in catalog.usable())


def test_shipped_apps_usable_once_configured() -> None:
    catalog = load_catalog(
        app_settings={
            "sandbox": {
                "base_url": "http://127.0.0.1:9/",
                "client_id": "cid",
                "client_secret": "s",
            },
            "sandbox-keys": {"base_url": "http://127.0.0.1:9"},
        },
        environ={},
    )
    sandbox = catalog.get("sandbox")
    assert sandbox is not None and sandbox.usable and sandbox.missing == ()
    assert sandbox.oauth2 is not None
    # The trailing slash of base_url is dropped before substitution.
    assert sandbox.oauth2.authorize_url == "http://127.0.0.1:9/oauth/authorize"
    assert sandbox.oauth2.token_url == "http://127.0.0.1:9/oauth/token"
    assert sandbox.oauth2.revoke_url == "http://127.0.0.1:9/oauth/revoke"
    assert sandbox.issuer == "http://127.0.0.1:9"
    assert sandbox.api_base_url == "http://127.0.0.1:9/api"
    assert sandbox.identity is not None
    assert sandbox.identity.url == "http://127.0.0.1:9/oauth/userinfo"
    usable_sandbox = [a.slug for a in catalog.usable() if a.slug.startswith("sandbox")]
    assert usable_sandbox == ["sandbox-keys", "sandbox"]  # by title
    assert [a.slug for a in catalog.usable(["sandbox", "sandbox-basic", "x"])] == ["sandbox"]


# --------------------------------------------------------------------------- host directories


def test_host_directory_adds_an_app(tmp_path: Path) -> None:
    path = write(tmp_path / "apps", "acme", definition("acme", icon="acme.svg"))
    catalog = load_catalog([tmp_path / "apps"], environ={})
    assert {a.slug for a in catalog} == _all_shipped() | {"acme"}
    acme = catalog.get("acme")
    assert acme is not None
    assert acme.title == "Acme App"
    assert acme.source == path
    assert acme.usable  # api_key app with absolute URLs: nothing to configure
    assert acme.api_key is not None
    assert (acme.api_key.placement_in, acme.api_key.placement_name) == ("header", "X-Key")


def test_yml_extension_is_loaded_too(tmp_path: Path) -> None:
    write(tmp_path, "other", definition("other"), suffix=".yml")
    assert "other" in load_catalog([tmp_path], environ={})


def test_same_slug_replaces_shipped_app(tmp_path: Path) -> None:
    path = write(tmp_path, "sandbox", definition("sandbox", title="Our Sandbox"))
    catalog = load_catalog([tmp_path], environ={})
    assert len(catalog) == len(_all_shipped())
    sandbox = catalog.get("sandbox")
    assert sandbox is not None
    assert sandbox.title == "Our Sandbox"
    assert sandbox.auth_type == "api_key"
    assert sandbox.source == path


def test_later_directory_wins(tmp_path: Path) -> None:
    write(tmp_path / "one", "acme", definition("acme", title="First"))
    write(tmp_path / "two", "acme", definition("acme", title="Second"))
    catalog = load_catalog([tmp_path / "one", tmp_path / "two"], environ={})
    assert catalog.get("acme").title == "Second"  # type: ignore[union-attr]


def test_missing_catalog_directory_is_an_error(tmp_path: Path) -> None:
    message = catalog_error([tmp_path / "does-not-exist"])
    assert str(tmp_path / "does-not-exist") in message


def test_catalog_error_is_a_configuration_error() -> None:
    assert issubclass(CatalogError, ConfigurationError)


# --------------------------------------------------------------------------- invalid files


def test_missing_title_names_file_and_field(tmp_path: Path) -> None:
    data = definition("acme")
    del data["title"]
    path = write(tmp_path, "acme", data)
    message = catalog_error([tmp_path])
    assert str(path) in message
    assert "'title'" in message


def test_bad_auth_type_names_file_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "acme", definition("acme", auth={"type": "saml"}))
    message = catalog_error([tmp_path])
    assert f"{path}: auth.type:" in message
    assert "saml" in message


def test_oauth2_without_endpoints_names_file_and_missing_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "acme", definition("acme", auth={"type": "oauth2", "scopes": ["x"]}))
    message = catalog_error([tmp_path])
    assert f"{path}: auth" in message
    # The reader must learn which keys to add, not only that "auth" is invalid.
    assert "server_metadata_url" in message, message
    assert "authorize_url" in message, message


def test_oauth2_with_only_authorize_url_is_invalid(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "acme",
        definition("acme", auth={"type": "oauth2", "authorize_url": "https://a.example/auth"}),
    )
    assert f"{path}: auth" in catalog_error([tmp_path])


def test_api_key_without_placement_names_file_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "acme", definition("acme", auth={"type": "api_key"}))
    message = catalog_error([tmp_path])
    assert f"{path}: auth:" in message
    assert "'placement'" in message


def test_header_placement_needs_a_name(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "acme",
        definition("acme", auth={"type": "api_key", "placement": {"in": "header"}}),
    )
    message = catalog_error([tmp_path])
    assert f"{path}: auth.placement:" in message
    assert "'name'" in message


def test_bearer_placement_needs_no_name(tmp_path: Path) -> None:
    write(
        tmp_path,
        "acme",
        definition("acme", auth={"type": "api_key", "placement": {"in": "bearer"}}),
    )
    acme = load_catalog([tmp_path], environ={}).get("acme")
    assert acme is not None and acme.api_key is not None
    assert acme.api_key.placement_in == "bearer"


def test_slug_not_matching_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, "acme", definition("acme-crm"))
    message = catalog_error([tmp_path])
    assert f"{path}: slug:" in message
    assert "acme-crm" in message


def test_invalid_yaml_names_file(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text("slug: [unclosed\n  title: x: y\n", "utf-8")
    message = catalog_error([tmp_path])
    assert str(path) in message
    assert "YAML" in message


@pytest.mark.parametrize("text", ["", "- just\n- a list\n", "plain string\n"])
def test_yaml_that_is_not_a_mapping_is_a_catalog_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(text, "utf-8")
    assert str(path) in catalog_error([tmp_path])


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    no_title = definition("first")
    del no_title["title"]
    first = write(tmp_path, "first", no_title)
    second = write(tmp_path, "second", definition("second", auth={"type": "api_key"}))
    third = tmp_path / "third.yaml"
    third.write_text("slug: [", "utf-8")
    write(tmp_path, "fine", definition("fine"))
    message = catalog_error([tmp_path])
    assert str(first) in message and "'title'" in message
    assert str(second) in message and "'placement'" in message
    assert str(third) in message
    assert "fine.yaml" not in message


def test_several_errors_in_one_file_are_all_reported(tmp_path: Path) -> None:
    data = definition("acme", auth={"type": "bogus"}, categories=[])
    del data["description"]
    path = write(tmp_path, "acme", data)
    message = catalog_error([tmp_path])
    assert f"{path}: auth.type:" in message
    assert f"{path}: categories:" in message
    assert "'description'" in message


def test_read_definitions_returns_valid_files_in_order(tmp_path: Path) -> None:
    write(tmp_path, "b-app", definition("b-app"))
    write(tmp_path, "a-app", definition("a-app"))
    found = read_definitions([tmp_path])
    assert [data["slug"] for _, data in found] == ["a-app", "b-app"]


@pytest.mark.parametrize("slug", ["Acme", "-acme", "acme_crm", "a" * 64])
def test_bad_slug_pattern(tmp_path: Path, slug: str) -> None:
    path = write(tmp_path, slug, definition(slug))
    assert f"{path}: slug:" in catalog_error([tmp_path])


# --------------------------------------------------------------------------- secrets


def test_client_secret_in_yaml_is_rejected(tmp_path: Path) -> None:
    data = oauth_definition("acme")
    data["client_secret"] = "s3cr3t-in-yaml"
    path = write(tmp_path, "acme", data)
    message = catalog_error([tmp_path])
    assert str(path) in message
    assert "client_secret" in message


@pytest.mark.parametrize("key", ["client_id", "client_secret"])
def test_client_credentials_inside_auth_are_rejected(tmp_path: Path, key: str) -> None:
    path = write(tmp_path, "acme", oauth_definition("acme", **{key: "from-yaml"}))
    message = catalog_error([tmp_path])
    assert f"{path}: auth:" in message
    assert key in message


def test_client_credentials_from_portal_apps(tmp_path: Path) -> None:
    write(tmp_path, "acme", oauth_definition("acme"))
    catalog = load_catalog(
        [tmp_path],
        {"acme": {"client_id": "cid-1", "client_secret": "sec-1", "base_url": "https://acme.io"}},
        environ={},
    )
    acme = catalog.get("acme")
    assert acme is not None and acme.usable
    assert (acme.client.client_id, acme.client.client_secret) == ("cid-1", "sec-1")
    assert "sec-1" not in repr(acme.client)


def test_client_credentials_from_environment(tmp_path: Path) -> None:
    write(tmp_path, "acme-crm", oauth_definition("acme-crm"))
    env = {
        "PORTAL_ACME_CRM_CLIENT_ID": "env-id",
        "PORTAL_ACME_CRM_CLIENT_SECRET": "env-secret",
        "PORTAL_ACME_CRM_BASE_URL": "https://crm.acme.io",
    }
    acme = load_catalog([tmp_path], environ=env).get("acme-crm")
    assert acme is not None and acme.usable
    assert (acme.client.client_id, acme.client.client_secret) == ("env-id", "env-secret")
    assert acme.oauth2 is not None
    assert acme.oauth2.token_url == "https://crm.acme.io/oauth/token"


def test_client_credentials_default_to_os_environ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "acme", oauth_definition("acme"))
    monkeypatch.setenv("PORTAL_ACME_CLIENT_ID", "os-env-id")
    acme = load_catalog([tmp_path], {"acme": {"base_url": "https://acme.io"}}).get("acme")
    assert acme is not None and acme.client.client_id == "os-env-id"
    assert acme.usable


def test_portal_apps_wins_over_environment(tmp_path: Path) -> None:
    write(tmp_path, "acme", oauth_definition("acme"))
    acme = load_catalog(
        [tmp_path],
        {"acme": {"client_id": "config-id", "base_url": "https://acme.io"}},
        environ={"PORTAL_ACME_CLIENT_ID": "env-id"},
    ).get("acme")
    assert acme is not None and acme.client.client_id == "config-id"


def test_portal_apps_scopes_replace_defaults(tmp_path: Path) -> None:
    write(tmp_path, "acme", oauth_definition("acme", scopes=["a", "b"]))
    acme = load_catalog(
        [tmp_path],
        {"acme": {"client_id": "x", "base_url": "https://acme.io", "scopes": ["c"]}},
        environ={},
    ).get("acme")
    assert acme is not None and acme.oauth2 is not None
    assert acme.oauth2.scopes == ("c",)


# --------------------------------------------------------------------------- base_url


def test_oauth_app_not_usable_without_client_id(tmp_path: Path) -> None:
    write(tmp_path, "acme", oauth_definition("acme"))
    acme = load_catalog([tmp_path], {"acme": {"base_url": "https://acme.io"}}, environ={}).get(
        "acme"
    )
    assert acme is not None
    assert not acme.usable
    assert acme.missing == ("client_id",)


def test_app_not_usable_without_base_url(tmp_path: Path) -> None:
    write(tmp_path, "acme", oauth_definition("acme"))
    acme = load_catalog([tmp_path], {"acme": {"client_id": "x"}}, environ={}).get("acme")
    assert acme is not None
    assert not acme.usable
    assert acme.missing == ("base_url",)
    assert acme.oauth2 is not None and acme.oauth2.authorize_url is None
    assert all(acme.slug != a.slug for a in load_catalog([tmp_path], environ={}).usable())


def test_base_url_default_from_yaml(tmp_path: Path) -> None:
    write(tmp_path, "acme", {**oauth_definition("acme"), "base_url": "https://default.acme.io"})
    acme = load_catalog([tmp_path], {"acme": {"client_id": "x"}}, environ={}).get("acme")
    assert acme is not None and acme.usable
    assert acme.api_base_url == "https://default.acme.io/api"
    overridden = load_catalog(
        [tmp_path], {"acme": {"client_id": "x", "base_url": "https://eu.acme.io"}}, environ={}
    ).get("acme")
    assert overridden is not None
    assert overridden.api_base_url == "https://eu.acme.io/api"


def test_relative_identity_url_is_under_api_base_url(tmp_path: Path) -> None:
    write(tmp_path, "acme", oauth_definition("acme"))
    acme = load_catalog(
        [tmp_path], {"acme": {"client_id": "x", "base_url": "https://acme.io"}}, environ={}
    ).get("acme")
    assert acme is not None and acme.identity is not None
    assert acme.identity.url == "https://acme.io/api/me"
    assert (acme.identity.external_id, acme.identity.label) == ("data.id", "data.email")


@pytest.mark.parametrize(
    "base_url", ["ftp://files.acme.io", "javascript:alert(1)", "acme.io", "file:///etc"]
)
def test_non_http_url_after_substitution_is_an_error(tmp_path: Path, base_url: str) -> None:
    path = write(tmp_path, "acme", oauth_definition("acme"))
    message = catalog_error(
        [tmp_path], app_settings={"acme": {"client_id": "x", "base_url": base_url}}
    )
    assert str(path) in message
    assert "auth.authorize_url" in message


def test_non_http_literal_url_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "acme", definition("acme", api={"base_url": "gopher://acme.io/api"}))
    message = catalog_error([tmp_path])
    assert f"{path}: api.base_url:" in message


# --------------------------------------------------------------------------- dotted()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("sub", "u1"),
        ("data.user.id", 42),
        ("data.user.emails.0", "a@x.io"),
        ("data.user.emails.1", "b@x.io"),
        ("data.user.emails.2", None),
        ("data.teams.0.name", "core"),
        ("data.missing.id", None),
        ("sub.deeper", None),
        ("data.user.emails.first", None),
        ("data.user.emails.-1", None),
        ("data", {"user": {"id": 42, "emails": ["a@x.io", "b@x.io"]}, "teams": [{"name": "core"}]}),
    ],
)
def test_dotted(path: str, expected: Any) -> None:
    data = {
        "sub": "u1",
        "data": {"user": {"id": 42, "emails": ["a@x.io", "b@x.io"]}, "teams": [{"name": "core"}]},
    }
    assert dotted(data, path) == expected


def test_dotted_on_non_container() -> None:
    assert dotted(None, "a") is None
    assert dotted("text", "0") is None
    assert dotted([["x"]], "0.0") == "x"


# --------------------------------------------------------------------------- OpenID discovery


def _oidc_definition(metadata_url: str, api_base: str, **auth: str) -> dict[str, Any]:
    return definition(
        "my-oidc",
        title="My OIDC",
        auth={
            "type": "oauth2",
            "server_metadata_url": metadata_url,
            "scopes": ["profile", "contacts.read"],
            **auth,
        },
        api={"base_url": api_base},
        identity={
            "url": f"{api_base.rsplit('/api', 1)[0]}/oauth/userinfo",
            "external_id": "sub",
            "label": "email",
        },
    )


def _session_token(client: Any, stack: DemoStack, user: str) -> str:
    response = client.post(
        "/portal/api/v1/sessions",
        json={"appKey": DEMO_APP_KEY, "userId": user, "hash": user_hash(DEMO_APP_SECRET, user)},
        headers={"Origin": stack.host.url},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["token"]  # type: ignore[no-any-return]


def _ticket(client: Any, stack: DemoStack, token: str, app: str) -> dict[str, Any]:
    response = client.post(
        "/portal/api/v1/connect-tickets",
        json={"app": app, "opener": "frame"},
        headers={"Authorization": f"Bearer {token}", "Origin": stack.host.url},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def _connect_path(ticket: dict[str, Any]) -> str:
    parts = urlsplit(ticket["connect_url"])
    return f"{parts.path}?{parts.query}"


def _assert_pkce_redirect(
    client: Any, location: str, authorization_endpoint: str, redirect_uri: str, client_id: str
) -> dict[str, str]:
    assert location.split("?", 1)[0] == authorization_endpoint
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert params["response_type"] == "code"
    assert params["client_id"] == client_id
    assert params["redirect_uri"] == redirect_uri
    assert params["code_challenge_method"] == "S256"
    assert params["state"]
    assert set(params["scope"].split()) == {"profile", "contacts.read"}
    # The challenge is S256 of a fresh 43-128 character verifier kept in this browser's session.
    with client.session_transaction() as session:
        data = session[f"_state_my-oidc_{params['state']}"]["data"]
    verifier = data["code_verifier"]
    assert 43 <= len(verifier) <= 128
    digest = hashlib.sha256(verifier.encode()).digest()
    assert params["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return params


def test_app_from_yaml_with_server_metadata_url_redirects_to_discovered_endpoint(
    tmp_path: Path, stack: DemoStack, make_app: Any
) -> None:
    metadata_url = f"{stack.sandbox.url}/.well-known/openid-configuration"
    write(tmp_path / "apps", "my-oidc", _oidc_definition(metadata_url, f"{stack.sandbox.url}/api"))
    app: Flask = make_app(
        PORTAL_CATALOG_PATHS=[str(tmp_path / "apps")],
        PORTAL_APPS={"my-oidc": {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}},
    )
    definition_ = app.extensions["portal"].catalog.get("my-oidc")
    assert definition_.usable
    assert definition_.oauth2.authorize_url is None and definition_.oauth2.token_url is None

    metadata = requests.get(metadata_url, timeout=5).json()
    client = app.test_client()
    token = _session_token(client, stack, "oidc-user")
    apps = client.get("/portal/api/v1/apps", headers={"Authorization": f"Bearer {token}"})
    assert "my-oidc" in [a["name"] for a in apps.get_json()["apps"]]

    response = client.get(_connect_path(_ticket(client, stack, token, "my-oidc")))
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    _assert_pkce_redirect(
        client,
        response.headers["Location"],
        metadata["authorization_endpoint"],
        f"{stack.portal.url}/portal/oauth/my-oidc/callback",
        DEMO_CLIENT_ID,
    )


@pytest.mark.parametrize("explicit_issuer", [False, True], ids=["discovered-iss", "yaml-iss"])
def test_app_from_yaml_with_server_metadata_url_connects_end_to_end(
    tmp_path: Path, stack: DemoStack, make_app: Any, explicit_issuer: bool
) -> None:
    """The whole flow against a second sandbox whose client is registered for my-oidc's
    redirect URI: discovery, consent, callback (with RFC 9207 ``iss``), token exchange,
    identity, stored account. Without ``issuer`` in the YAML, the expected ``iss`` is the
    ``issuer`` of the discovered metadata (RFC 8414 §2, RFC 9207 §2.4)."""
    redirect_uri = f"{stack.portal.url}/portal/oauth/my-oidc/callback"
    provider = start_sandbox(
        {
            "SANDBOX_CLIENTS": [
                {
                    "client_id": "oidc-client",
                    "client_secret": "oidc-secret",
                    "redirect_uris": [redirect_uri],
                    "scope": "profile contacts.read contacts.write",
                }
            ],
        }
    )
    try:
        metadata_url = f"{provider.url}/.well-known/openid-configuration"
        extra = {"issuer": provider.url} if explicit_issuer else {}
        write(
            tmp_path / "apps",
            "my-oidc",
            _oidc_definition(metadata_url, f"{provider.url}/api", **extra),
        )
        app: Flask = make_app(
            PORTAL_CATALOG_PATHS=[str(tmp_path / "apps")],
            PORTAL_APPS={"my-oidc": {"client_id": "oidc-client", "client_secret": "oidc-secret"}},
        )
        client = app.test_client()
        token = _session_token(client, stack, "oidc-user-2")
        started = client.get(_connect_path(_ticket(client, stack, token, "my-oidc")))
        assert started.status_code == 302, started.get_data(as_text=True)[:500]
        _assert_pkce_redirect(
            client,
            started.headers["Location"],
            f"{provider.url}/oauth/authorize",
            redirect_uri,
            "oidc-client",
        )

        consent = Browser().consent(started.headers["Location"])
        assert consent.callback_url.startswith(redirect_uri + "?")
        assert "code" in consent.params, consent.params
        assert consent.params["iss"] == provider.url
        callback = client.get(
            urlsplit(consent.callback_url).path, query_string=urlsplit(consent.callback_url).query
        )
        body = callback.get_data(as_text=True)
        assert callback.status_code == 200, body[-1500:]
        result = json.loads(body.split('id="portal-connect-result">', 1)[1].split("</script>")[0])
        assert result["message"]["payload"]["status"] == "connected", result

        accounts = client.get(
            "/portal/api/v1/connected-accounts?app=my-oidc",
            headers={"Authorization": f"Bearer {token}"},
        ).get_json()["connected_accounts"]
        assert len(accounts) == 1
        assert accounts[0]["app"] == "my-oidc"
        assert accounts[0]["external_id"]
        assert "@" in accounts[0]["label"]
    finally:
        provider.stop()
