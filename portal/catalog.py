"""The catalog: app definitions loaded from YAML and validated against a JSON Schema.

One YAML file per app: the shipped ones in ``portal/apps/``, then every directory in
``PORTAL_CATALOG_PATHS`` (a host's file with the same slug replaces a shipped one). Each file is
validated against ``portal/catalog.schema.json`` (JSON Schema 2020-12) when loaded; an invalid
file raises :class:`~portal.errors.CatalogError` naming the file and the field.

Secrets never come from YAML: ``client_id``/``client_secret`` are read from
``PORTAL_APPS[slug]`` or the environment (``PORTAL_<SLUG>_CLIENT_ID``, ``…_CLIENT_SECRET``, the
slug upper-cased with ``-`` as ``_``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from jsonschema import Draft202012Validator

from .errors import CatalogError

SHIPPED_DIR = Path(__file__).resolve().parent / "apps"
SCHEMA: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parent / "catalog.schema.json").read_text("utf-8")
)
_VALIDATOR = Draft202012Validator(SCHEMA)

AuthType = Literal["oauth2", "api_key", "basic"]


@dataclass(frozen=True)
class OAuth2Settings:
    """Endpoints and quirks of an OAuth 2.0 authorization-code app (RFC 6749 §4.1)."""

    authorize_url: str | None
    token_url: str | None
    revoke_url: str | None
    server_metadata_url: str | None
    issuer: str | None
    scopes: tuple[str, ...]
    scope_separator: str = " "
    pkce: bool = True
    token_endpoint_auth_method: str = "client_secret_basic"
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    token_params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiKeySettings:
    """Where an API key goes on each request: ``placement_in`` is header, query or bearer."""

    placement_in: Literal["header", "query", "bearer"]
    placement_name: str | None
    key_label: str = "API key"
    key_help: str | None = None


@dataclass(frozen=True)
class BasicSettings:
    """Labels of the HTTP Basic (RFC 7617) username and password fields."""

    username_label: str = "Username"
    password_label: str = "Password"


@dataclass(frozen=True)
class Identity:
    """How to learn the external account after connect: GET ``url``, read dotted paths."""

    url: str
    external_id: str
    label: str | None


@dataclass(frozen=True)
class Pagination:
    """Cursor pagination: where ``params.next_page`` goes, and where the next cursor is."""

    cursor_param: str
    next_cursor: str
    cursor_in: Literal["query", "body"] = "query"


@dataclass(frozen=True)
class Function:
    """A typed action of an app (an Integry *function*): JSON-Schema ``params`` mapped onto one
    HTTP request under the app's API base URL."""

    name: str
    app: str
    title: str
    description: str
    method: str
    path: str
    params: Mapping[str, Any]
    query: Mapping[str, Any] | None
    body: Any
    body_format: Literal["json", "form"]
    output: str
    pagination: Pagination | None


@dataclass(frozen=True)
class WebhookSignature:
    """How a provider signs its notifications: ``prefix`` + hex HMAC (RFC 2104) of the raw
    body with ``algorithm``, keyed with the app's ``secret`` (only ``client_secret`` so far),
    in the ``header`` request header."""

    header: str
    algorithm: Literal["sha1", "sha256"]
    prefix: str = ""
    secret: Literal["client_secret"] = "client_secret"


@dataclass(frozen=True)
class WebhookAccount:
    """Which connected accounts a notification is for: those whose ``match`` field equals the
    value at the dotted ``payload_path``."""

    payload_path: str
    match: Literal["external_id"] = "external_id"


@dataclass(frozen=True)
class WebhookSpec:
    """An app's provider webhooks (catalog ``webhooks:`` block).

    The topic read at ``topic_path`` is renamed through ``topics`` (provider topic -> trigger
    name; unlisted topics keep their name); only names in ``triggers`` are forwarded.
    """

    signature: WebhookSignature
    account: WebhookAccount
    topic_path: str
    triggers: tuple[str, ...]
    topics: Mapping[str, str] = field(default_factory=dict)

    def trigger(self, topic: str) -> str | None:
        """The trigger ``topic`` is forwarded as, or ``None`` when it is not forwarded."""
        name = self.topics.get(topic, topic)
        return name if name in self.triggers else None


@dataclass(frozen=True)
class ClientCredentials:
    """The host's OAuth client registration for one app (never from YAML)."""

    client_id: str | None
    client_secret: str | None = field(repr=False, default=None)


@dataclass(frozen=True)
class App:
    """One app of the catalog, with ``{base_url}`` already substituted.

    ``usable`` is false when the app cannot run yet (OAuth app without a client id, or URLs that
    need a ``base_url`` nobody configured); ``missing`` says what is missing.
    """

    slug: str
    title: str
    description: str
    categories: tuple[str, ...]
    icon: str | None
    docs_url: str | None
    auth_type: AuthType
    oauth2: OAuth2Settings | None
    api_key: ApiKeySettings | None
    basic: BasicSettings | None
    api_base_url: str
    identity: Identity | None
    client: ClientCredentials
    source: Path
    missing: tuple[str, ...] = ()
    functions: tuple[Function, ...] = ()
    webhooks: WebhookSpec | None = None

    @property
    def usable(self) -> bool:
        """True when the app can be connected as configured."""
        return not self.missing

    @property
    def issuer(self) -> str | None:
        """Expected RFC 9207 ``iss`` value, if known."""
        return self.oauth2.issuer if self.oauth2 else None


class Catalog:
    """All app definitions, keyed by slug, in load order."""

    def __init__(self, apps: Iterable[App]) -> None:
        self._apps: dict[str, App] = {}
        for app in apps:
            self._apps[app.slug] = app

    def __contains__(self, slug: object) -> bool:
        return slug in self._apps

    def __iter__(self) -> Any:
        return iter(self._apps.values())

    def __len__(self) -> int:
        return len(self._apps)

    def get(self, slug: str) -> App | None:
        """The app called ``slug``, or ``None``."""
        return self._apps.get(slug)

    def function(self, name: str) -> Function | None:
        """The function called ``name`` (of any app), or ``None``."""
        for app in self._apps.values():
            for function in app.functions:
                if function.name == name:
                    return function
        return None

    def usable(self, enabled: Iterable[str] | None = None) -> list[App]:
        """Apps that can be connected now, in ``enabled`` order when given, else by title."""
        if enabled is not None:
            return [a for s in enabled if (a := self._apps.get(s)) is not None and a.usable]
        return sorted((a for a in self._apps.values() if a.usable), key=lambda a: a.title.lower())


def validate_definition(data: Any, source: Path | str) -> list[str]:
    """Every schema violation of one parsed definition, each as ``"<file>: <field>: <problem>"``."""
    problems = []
    for error in sorted(_VALIDATOR.iter_errors(data), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        message = error.message
        if error.validator in ("anyOf", "oneOf") and error.context:
            # Name what would satisfy it ("'token_url' is a required property or …").
            message = " or ".join(sorted({sub.message for sub in error.context}))
        problems.append(f"{source}: {where}: {message}")
    return problems


def read_definitions(paths: Iterable[Path | str]) -> list[tuple[Path, dict[str, Any]]]:
    """Parse and validate every ``*.yaml``/``*.yml`` under ``paths``, in order.

    :raises CatalogError: with *all* problems found, each naming file and field.
    """
    found: list[tuple[Path, dict[str, Any]]] = []
    problems: list[str] = []
    for directory in paths:
        directory = Path(directory)
        if not directory.is_dir():
            problems.append(f"{directory}: catalog directory does not exist")
            continue
        files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
        for path in files:
            try:
                data = yaml.safe_load(path.read_text("utf-8"))
            except yaml.YAMLError as exc:
                problems.append(f"{path}: not valid YAML: {exc}")
                continue
            errors = validate_definition(data, path)
            if not errors and data["slug"] != path.stem:
                errors = [f"{path}: slug: {data['slug']!r} must match the file name {path.stem!r}"]
            problems.extend(errors)
            if not errors:
                found.append((path, data))
    if problems:
        raise CatalogError("invalid app definition(s):\n  " + "\n  ".join(problems))
    return found


def load_catalog(
    extra_paths: Iterable[Path | str] = (),
    app_settings: Mapping[str, Mapping[str, Any]] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Catalog:
    """Load the shipped catalog plus ``extra_paths`` and resolve each app's settings.

    :param app_settings: ``PORTAL_APPS``: per-slug ``client_id``, ``client_secret``,
        ``base_url`` and ``scopes`` (replaces the default scopes).
    :param environ: where ``PORTAL_<SLUG>_CLIENT_ID``/``_CLIENT_SECRET`` are looked up
        (default :data:`os.environ`).
    :raises CatalogError: an invalid file, or a resolved URL that is not absolute http(s).
    """
    settings = app_settings or {}
    env = os.environ if environ is None else environ
    apps = []
    for path, data in read_definitions([SHIPPED_DIR, *extra_paths]):
        apps.append(_build_app(path, data, settings.get(data["slug"], {}), env))
    return Catalog(apps)


def _build_app(
    path: Path, data: dict[str, Any], settings: Mapping[str, Any], env: Mapping[str, str]
) -> App:
    slug: str = data["slug"]
    env_prefix = "PORTAL_" + slug.upper().replace("-", "_")
    base_url = settings.get("base_url") or env.get(f"{env_prefix}_BASE_URL") or data.get("base_url")
    missing: list[str] = []

    def url(value: str | None, field_name: str) -> str | None:
        if value is None:
            return None
        if "{base_url}" in value:
            if not base_url:
                if "base_url" not in missing:
                    missing.append("base_url")
                return None
            value = value.replace("{base_url}", str(base_url).rstrip("/"))
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise CatalogError(f"{path}: {field_name}: {value!r} is not an absolute http(s) URL")
        return value

    auth = data["auth"]
    oauth2 = api_key = basic = None
    if auth["type"] == "oauth2":
        scopes = settings.get("scopes", auth.get("scopes", []))
        oauth2 = OAuth2Settings(
            authorize_url=url(auth.get("authorize_url"), "auth.authorize_url"),
            token_url=url(auth.get("token_url"), "auth.token_url"),
            revoke_url=url(auth.get("revoke_url"), "auth.revoke_url"),
            server_metadata_url=url(auth.get("server_metadata_url"), "auth.server_metadata_url"),
            issuer=url(auth.get("issuer"), "auth.issuer"),
            scopes=tuple(scopes),
            scope_separator=auth.get("scope_separator", " "),
            pkce=auth.get("pkce", True),
            token_endpoint_auth_method=auth.get(
                "token_endpoint_auth_method", "client_secret_basic"
            ),
            authorize_params=dict(auth.get("authorize_params", {})),
            token_params=dict(auth.get("token_params", {})),
        )
    elif auth["type"] == "api_key":
        placement = auth["placement"]
        api_key = ApiKeySettings(
            placement_in=placement["in"],
            placement_name=placement.get("name"),
            key_label=auth.get("key_label", "API key"),
            key_help=auth.get("key_help"),
        )
    else:
        basic = BasicSettings(
            username_label=auth.get("username_label", "Username"),
            password_label=auth.get("password_label", "Password"),
        )

    api_base_url = url(data["api"]["base_url"], "api.base_url") or ""
    identity = None
    if ident := data.get("identity"):
        ident_url = ident["url"]
        if not ident_url.startswith(("http://", "https://", "{base_url}")):
            ident_url = (
                api_base_url.rstrip("/") + "/" + ident_url.lstrip("/") if api_base_url else None
            )
        else:
            ident_url = url(ident_url, "identity.url")
        if ident_url:
            identity = Identity(
                url=ident_url, external_id=ident["external_id"], label=ident.get("label")
            )

    client = ClientCredentials(
        client_id=settings.get("client_id") or env.get(f"{env_prefix}_CLIENT_ID"),
        client_secret=settings.get("client_secret") or env.get(f"{env_prefix}_CLIENT_SECRET"),
    )
    if oauth2 is not None and not client.client_id:
        missing.append("client_id")

    functions = tuple(
        Function(
            name=f["name"],
            app=slug,
            title=f["title"],
            description=f.get("description", ""),
            method=f["method"],
            path=f["path"],
            params=f["params"],
            query=f.get("query"),
            body=f.get("body"),
            body_format=f.get("body_format", "json"),
            output=f.get("output", ""),
            pagination=Pagination(**f["pagination"]) if f.get("pagination") else None,
        )
        for f in data.get("functions", [])
    )
    for function in functions:
        if not function.name.startswith(slug + "-"):
            raise CatalogError(
                f"{path}: functions.{function.name}: a function name starts with '{slug}-'"
            )
        try:
            Draft202012Validator.check_schema(dict(function.params))
        except Exception as exc:  # jsonschema.SchemaError
            raise CatalogError(
                f"{path}: functions.{function.name}.params: not a valid JSON Schema: {exc}"
            ) from exc

    webhooks = _webhook_spec(path, data["webhooks"]) if "webhooks" in data else None

    return App(
        functions=functions,
        webhooks=webhooks,
        slug=slug,
        title=data["title"],
        description=data["description"],
        categories=tuple(data["categories"]),
        icon=data.get("icon"),
        docs_url=data.get("docs_url"),
        auth_type=auth["type"],
        oauth2=oauth2,
        api_key=api_key,
        basic=basic,
        api_base_url=api_base_url,
        identity=identity,
        client=client,
        source=path,
        missing=tuple(missing),
    )


def _webhook_spec(path: Path, block: Mapping[str, Any]) -> WebhookSpec:
    """The :class:`WebhookSpec` of a schema-valid ``webhooks:`` block.

    :raises CatalogError: a ``topics`` entry renames a topic to a name not in ``triggers``.
    """
    triggers = tuple(block["triggers"])
    topics = dict(block.get("topics", {}))
    for topic, name in topics.items():
        if name not in triggers:
            raise CatalogError(
                f"{path}: webhooks.topics.{topic}: {name!r} is not one of webhooks.triggers"
            )
    signature = block["signature"]
    account = block["account"]
    return WebhookSpec(
        signature=WebhookSignature(
            header=signature["header"],
            algorithm=signature["algorithm"],
            prefix=signature.get("prefix", ""),
            secret=signature.get("secret", "client_secret"),
        ),
        account=WebhookAccount(payload_path=account["payload_path"], match=account["match"]),
        topic_path=block["topic_path"],
        triggers=triggers,
        topics=topics,
    )


def dotted(data: Any, path: str) -> Any:
    """Read ``a.b.0.c`` from nested dicts/lists; ``None`` when any step is missing."""
    current = data
    for part in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current
