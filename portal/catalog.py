"""The catalog: app definitions loaded from YAML and validated against a JSON Schema.

One YAML file per app: the shipped ones in ``portal/apps/``, then every directory in
``PORTAL_CATALOG_PATHS`` (a host's file with the same slug replaces a shipped one). Each file is
validated against ``portal/catalog.schema.json`` (JSON Schema 2020-12) when loaded; an invalid
file raises :class:`~portal.errors.CatalogError` naming the file and the field.

Secrets never come from YAML: ``client_id``/``client_secret`` (and the ``webhook_secret`` of
provider webhooks) are read from ``PORTAL_APPS[slug]`` or the environment
(``PORTAL_<SLUG>_CLIENT_ID``, ``…_CLIENT_SECRET``, ``…_WEBHOOK_SECRET``, the slug upper-cased
with ``-`` as ``_``).

Account fields (catalog ``account_fields``) are values the end user enters before connecting
(a subdomain, a region, a self-hosted host name). URLs keep their ``{name}`` placeholders in the
loaded :class:`App`; :meth:`App.resolve` substitutes one account's values (checked by
:func:`validate_account_fields`, or taken from the token response and checked by
:func:`validate_token_field`) and gives the :class:`App` that account's requests use.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from jsonschema import Draft202012Validator

from ._paths import STATIC_DIR
from .errors import CatalogError

SHIPPED_DIR = Path(__file__).resolve().parent / "apps"
SCHEMA: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parent / "catalog.schema.json").read_text("utf-8")
)
_VALIDATOR = Draft202012Validator(SCHEMA)

AuthType = Literal["oauth2", "oauth2_client_credentials", "api_key", "basic"]
FieldFormat = Literal["dns_label", "hostname", "enum", "digits", "uuid", "path_prefix"]

#: ``{name}`` placeholders of account fields (``{base_url}`` is substituted at load).
PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]{0,31})\}")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)
_DIGITS = re.compile(r"[0-9]{1,32}", re.ASCII)
#: One segment of a ``path_prefix`` value: RFC 3986 §2.3 unreserved characters only.
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9._~-]{1,64}", re.ASCII)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)
#: Placeholders of ``api.headers`` values filled from the host's OAuth client (never logged).
CLIENT_PLACEHOLDERS = frozenset({"client_id", "client_secret"})
#: Host names that only make sense inside a network (RFC 6761 §6.3, RFC 6762, RFC 8375).
_INTERNAL_SUFFIXES = ("localhost", "local", "internal", "localdomain", "home.arpa")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
#: Request headers an ``api.headers`` entry may not set: credentials, routing, framing.
FORBIDDEN_STATIC_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "forwarded",
    }
)


class InvalidAccountField(ValueError):
    """An account field value that is not valid for its format.

    :ivar field: the field's ``name``; :ivar message: a sentence for the end user.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class AccountField:
    """One ``account_fields`` entry: a value the end user enters before connecting."""

    name: str
    label: str
    format: FieldFormat
    help: str | None = None
    prefix: str | None = None
    suffix: str | None = None
    enum: tuple[str, ...] = ()


@dataclass(frozen=True)
class TokenResponse:
    """Dotted paths of the values in a token response (catalog ``auth.token_response``);
    ``fields`` maps placeholder names to paths whose values fill them (e.g. ``instance_url``)."""

    access_token: str = "access_token"
    refresh_token: str = "refresh_token"
    expires_in: str = "expires_in"
    scope: str = "scope"
    fields: Mapping[str, str] = field(default_factory=dict)

    @property
    def standard(self) -> bool:
        """True when every path is the RFC 6749 §5.1 top-level name."""
        return (self.access_token, self.refresh_token, self.expires_in, self.scope) == (
            "access_token",
            "refresh_token",
            "expires_in",
            "scope",
        )


@dataclass(frozen=True)
class Revocation:
    """A revocation request that is not RFC 7009's (catalog ``auth.revocation``).

    ``method`` ``url`` (``{client_id}`` is the host's client id, percent-encoded; account
    field placeholders are the account's), authenticated by ``auth`` (``client_basic``: HTTP
    Basic with the host's client id and secret, RFC 7617; ``bearer``: the token being revoked,
    RFC 6750 §2.1; ``none``), carrying ``token`` (``access_token`` or ``refresh_token``; the
    access token when the account has no refresh token) as ``token_param`` in ``token_in``
    (``json`` body, ``form`` body, ``query``, or ``none``). Any 2xx answer is success (GitHub
    answers 204), unless ``api.error_when`` matches its JSON body (Slack's ``ok: false``).
    """

    url: str
    method: Literal["POST", "DELETE", "GET"] = "POST"
    auth: Literal["client_basic", "bearer", "none"] = "none"
    token_in: Literal["json", "form", "query", "none"] = "form"
    token_param: str = "token"
    token: Literal["access_token", "refresh_token"] = "refresh_token"


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
    #: Scopes a connect may ask for on top of ``scopes`` (incremental authorization: catalog
    #: ``auth.optional_scopes``); any other extra scope is refused.
    optional_scopes: tuple[str, ...] = ()
    pkce: bool = True
    #: With ``pkce=False`` only: the provider's document that rejects PKCE for this client
    #: (catalog ``auth.pkce_unsupported_source``, an https URL; required by the schema).
    pkce_unsupported_source: str | None = None
    token_endpoint_auth_method: str = "client_secret_basic"
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    token_params: Mapping[str, str] = field(default_factory=dict)
    token_response: TokenResponse = field(default_factory=TokenResponse)
    #: A separate refresh endpoint (``auth.refresh_url``); ``None``: the token endpoint.
    refresh_url: str | None = None
    #: Account fields read from the authorization response's query: name -> parameter.
    callback_fields: Mapping[str, str] = field(default_factory=dict)
    #: The value sent as ``redirect_uri`` instead of the callback URL (``auth.custom_redirect_uri``
    #: with ``PORTAL_APPS[slug].redirect_uri_value``, e.g. eBay's RuName).
    redirect_uri_value: str | None = field(default=None, repr=False)
    custom_redirect_uri: bool = False
    #: The provider's JWK Set (``auth.jwks_uri``) that verifies id_tokens when there is no
    #: ``server_metadata_url`` to name it.
    jwks_uri: str | None = None
    #: A revocation request that is not RFC 7009's (``auth.revocation``), instead of
    #: ``revoke_url``.
    revocation: Revocation | None = None


def requested_scopes(settings: OAuth2Settings) -> list[str]:
    """The scopes an authorization request of ``settings`` asks for, each on its own (the
    catalog's ``scopes``; ``scope_separator`` only joins them)."""
    return [s for scope in settings.scopes for s in scope.split() if s]


@dataclass(frozen=True)
class TokenPlacement:
    """Where an OAuth access token goes on API calls (``auth.placement``): ``bearer``
    (RFC 6750 §2.1) or the ``name`` header as ``<prefix><token>``."""

    placement_in: Literal["bearer", "header"] = "bearer"
    name: str | None = None
    prefix: str = ""


@dataclass(frozen=True)
class ClientCredentialsSettings:
    """An OAuth 2.0 client credentials app (RFC 6749 §4.4): the *end user* enters their own
    client id and secret; the portal runs the grant at ``token_url`` and again when the token
    expires or is refused."""

    token_url: str
    scopes: tuple[str, ...] = ()
    scope_separator: str = " "
    token_endpoint_auth_method: str = "client_secret_basic"
    token_params: Mapping[str, str] = field(default_factory=dict)
    client_id_label: str = "Client ID"
    client_secret_label: str = "Client secret"
    key_help: str | None = None


@dataclass(frozen=True)
class ApiKeySettings:
    """Where an API key goes on each request: ``placement_in`` is header (``placement_name:
    <prefix><key>``), query, bearer, basic_username (HTTP Basic, key as the user name,
    ``password`` as the password) or basic_password (HTTP Basic, the fixed ``username`` and
    the key as the password, e.g. Mailgun's ``api:<key>``)."""

    placement_in: Literal["header", "query", "bearer", "basic_username", "basic_password"]
    placement_name: str | None
    key_label: str = "API key"
    key_help: str | None = None
    prefix: str = ""
    password: str = ""
    #: With ``basic_password``: the fixed HTTP Basic user name (Mailgun's ``api``).
    username: str = ""


@dataclass(frozen=True)
class BasicSettings:
    """Labels of the HTTP Basic (RFC 7617) username and password fields."""

    username_label: str = "Username"
    password_label: str = "Password"


@dataclass(frozen=True)
class Identity:
    """How to learn the external account after connect: ``method`` ``url`` (with the JSON
    ``body`` when ``has_body``), then read dotted paths of the JSON answer."""

    url: str
    external_id: str
    label: str | None
    method: Literal["GET", "POST"] = "GET"
    body: Any = None
    has_body: bool = False
    #: Placeholders filled from the identity response: name -> dotted path.
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ErrorWhen:
    """Body-based failure detection (catalog ``api.error_when``): a 2xx JSON answer whose
    value at the dotted ``path`` equals ``equals`` is a failure (Slack's ``{"ok": false,
    "error": "channel_not_found"}`` with HTTP 200); ``message`` is the dotted path of the
    provider's error text; ``status`` is the HTTP status the proxy and functions report for
    it instead of the 2xx."""

    path: str
    equals: Any
    message: str | None = None
    status: int = 502

    def failure(self, document: Any) -> str | None:
        """The provider's error text (printable ASCII, at most 200 characters; ``"error"``
        when it sent none) when ``document`` (parsed JSON) is a failure, else ``None``.
        ``equals`` compares by JSON type too: ``false`` never matches ``0``."""
        found = dotted(document, self.path) if isinstance(document, (dict, list)) else None
        if found is None or type(found) is not type(self.equals) or found != self.equals:
            return None
        text = dotted(document, self.message) if self.message else None
        if not isinstance(text, str):
            return "error"
        cleaned = "".join(c for c in text if " " <= c <= "~")[:200].strip()
        return cleaned or "error"


@dataclass(frozen=True)
class Lookup:
    """A follow-up call after the credentials are known (catalog ``lookups:`` entry): ``GET``
    ``url`` with the new credentials, then read ``fields`` (placeholder name -> dotted path of
    the JSON answer), each validated like ``identity.fields``. Atlassian's
    ``/oauth/token/accessible-resources`` gives the cloud id of the Jira/Confluence base path."""

    url: str
    fields: Mapping[str, str]


@dataclass(frozen=True)
class Verify:
    """How the health checker (:mod:`portal.health`) asks whether stored credentials still
    work: ``method`` ``path`` under ``api.base_url``, sent through the proxy with the
    account's credentials. A 2xx answer is healthy; 401 or 403 means the end user must
    reconnect; anything else (429, 5xx, no answer) says nothing about the credentials."""

    path: str
    method: Literal["GET", "POST"] = "GET"


@dataclass(frozen=True)
class Pagination:
    """Cursor pagination: where ``params.next_page`` goes, and where the next cursor is.

    Two more kinds, where ``next_page`` is the *URL* of the next page: ``next_url`` (dotted
    path, or top-level key such as ``@odata.nextLink``, of that URL in the JSON body: Graph,
    Salesforce's ``nextRecordsUrl``) and ``next_link`` (the ``Link`` header's ``rel="next"``
    target, RFC 8288: GitHub, Shopify REST, Freshdesk). Such a URL is only ever followed on
    the account's own API base URL (:func:`portal.functions.next_page_target`).
    """

    cursor_param: str = ""
    next_cursor: str = ""
    cursor_in: Literal["query", "body"] = "query"
    next_url: str | None = None
    next_link: bool = False

    @property
    def url_based(self) -> bool:
        """True when ``next_page`` is the next page's URL (``next_url``/``next_link``)."""
        return bool(self.next_url) or self.next_link


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
    #: The call changes something at the provider or acts for the user (create, update, delete,
    #: send, spend); ``False`` for reads. YAML ``destructive:``; default: any method but GET.
    #: Served as the MCP tool annotations ``destructiveHint``/``readOnlyHint``.
    destructive: bool = True
    #: Scopes the account must have been granted (YAML ``required_scopes:``); without them the
    #: call answers 403 ``insufficient_scope`` (RFC 6750 §3.1) with a reconnect hint.
    required_scopes: tuple[str, ...] = ()


#: Signature schemes of provider webhooks (:data:`portal.webhook_schemes.SCHEMES` implements
#: each; catalog ``webhooks.signature.scheme``).
WebhookScheme = Literal[
    "hmac_hex",
    "slack",
    "hubspot_v3",
    "github",
    "stripe",
    "shopify",
    "zendesk",
    "asana",
    "linear",
    "atlassian_jwt",
    "basic_auth",
]


@dataclass(frozen=True)
class WebhookSignature:
    """How a provider signs its notifications.

    ``scheme`` ``hmac_hex`` (the default): ``prefix`` + hex HMAC (RFC 2104) of the raw body with
    ``algorithm`` in the ``header`` request header. Every other scheme is one provider's own
    (:mod:`portal.webhook_schemes`) and ignores ``header``/``algorithm``/``prefix``. The key is
    ``secret``: the app's ``client_secret``, its ``webhook_secret`` (``PORTAL_APPS[slug]
    ["webhook_secret"]`` or ``PORTAL_<SLUG>_WEBHOOK_SECRET``), or ``account``: one learnt per
    connected account in a handshake (Asana's ``X-Hook-Secret``). ``tolerance``: the replay
    window of schemes with a timestamp, in seconds (``None``: the scheme's documented one).
    """

    header: str = ""
    algorithm: Literal["sha1", "sha256"] = "sha256"
    prefix: str = ""
    secret: Literal["client_secret", "webhook_secret", "account"] = "client_secret"
    scheme: WebhookScheme = "hmac_hex"
    tolerance: int | None = None


@dataclass(frozen=True)
class WebhookAccount:
    """Which connected accounts a notification is for: those whose ``match`` field equals the
    value read at the dotted ``payload_path`` of the notification, or in its ``header``
    request header, or in its ``query`` parameter (of the URL the host subscribed).

    ``match``: ``external_id`` (the identity's id), ``account_field`` (the account field
    ``field`` + ``suffix``, e.g. Shopify's ``shop`` + ``.myshopify.com``, read from the sealed
    credentials) or ``id`` (the connected account's own id, for URLs made per account).
    """

    payload_path: str = ""
    match: Literal["external_id", "account_field", "id"] = "external_id"
    header: str = ""
    query: str = ""
    field: str = ""
    suffix: str = ""


@dataclass(frozen=True)
class WebhookSpec:
    """An app's provider webhooks (catalog ``webhooks:`` block).

    The topic read at ``topic_path`` (or in the ``topic_header`` request header) is renamed
    through ``topics`` (provider topic -> trigger name; unlisted topics keep their name); only
    names in ``triggers`` are forwarded. ``topic_path`` may name several dotted paths separated
    by spaces: their values joined with ``.`` make the topic (Asana ``task.added``).
    ``batch``: the dotted path of a list of events in one notification (``.``: the body is
    that list, as HubSpot sends it); each event is routed and forwarded on its own.
    """

    signature: WebhookSignature
    account: WebhookAccount
    topic_path: str
    triggers: tuple[str, ...]
    topics: Mapping[str, str] = field(default_factory=dict)
    topic_header: str = ""
    batch: str = ""

    def trigger(self, topic: str) -> str | None:
        """The trigger ``topic`` is forwarded as, or ``None`` when it is not forwarded."""
        name = self.topics.get(topic, topic)
        return name if name in self.triggers else None


@dataclass(frozen=True)
class ClientCredentials:
    """The host's OAuth client registration for one app (never from YAML)."""

    client_id: str | None
    client_secret: str | None = field(repr=False, default=None)
    #: The secret a provider signs its webhooks with when it is not the client secret (Slack's
    #: signing secret, Stripe's ``whsec_…``): ``PORTAL_APPS[slug]["webhook_secret"]`` or
    #: ``PORTAL_<SLUG>_WEBHOOK_SECRET``.
    webhook_secret: str | None = field(repr=False, default=None)


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
    client_credentials: ClientCredentialsSettings | None = None
    account_fields: tuple[AccountField, ...] = ()
    api_headers: Mapping[str, str] = field(default_factory=dict)
    #: Where an OAuth access token goes (``auth.placement`` of oauth2 apps).
    token_placement: TokenPlacement = field(default_factory=TokenPlacement)
    #: Placeholder values this App was resolved with (empty for the catalog's own App).
    resolved_fields: Mapping[str, str] = field(default_factory=dict)
    #: The health check's verification call (``verify:``), if the app defines one.
    verify: Verify | None = None
    #: Follow-up calls that fill placeholders after the credentials are known (``lookups:``).
    lookups: tuple[Lookup, ...] = ()
    #: Body-based failure detection of 2xx answers (``api.error_when``).
    error_when: ErrorWhen | None = None

    @property
    def usable(self) -> bool:
        """True when the app can be connected as configured."""
        return not self.missing

    @property
    def icon_file(self) -> str | None:
        """The icon to show: ``icon`` as given (a file name under ``static/icons/`` or an https
        URL), else ``<slug>.svg`` when ``static/icons/<slug>.svg`` exists, else ``None`` (the
        marketplace then draws a monogram tile)."""
        if self.icon:
            return self.icon
        name = f"{self.slug}.svg"
        return name if (STATIC_DIR / "icons" / name).is_file() else None

    @property
    def token_fields(self) -> Mapping[str, str]:
        """Placeholders filled from the token response (``auth.token_response.fields``)."""
        return self.oauth2.token_response.fields if self.oauth2 else {}

    @property
    def callback_fields(self) -> Mapping[str, str]:
        """Account fields read from the authorization response (``auth.callback_fields``)."""
        return self.oauth2.callback_fields if self.oauth2 else {}

    @property
    def identity_fields(self) -> Mapping[str, str]:
        """Placeholders filled from the identity response (``identity.fields``)."""
        return self.identity.fields if self.identity else {}

    @property
    def lookup_fields(self) -> Mapping[str, str]:
        """Placeholders filled from the ``lookups:`` calls: name -> dotted path."""
        return {name: path for lookup in self.lookups for name, path in lookup.fields.items()}

    @property
    def derived_fields(self) -> frozenset[str]:
        """Placeholders the provider fills (token response, callback query, identity
        response, lookups): never asked of the end user."""
        return frozenset(
            {*self.token_fields, *self.callback_fields, *self.identity_fields, *self.lookup_fields}
        )

    def headers_for(self) -> dict[str, str]:
        """``api.headers`` with ``{client_id}``/``{client_secret}`` (the host's client) and
        the account's resolved field values substituted; a header whose placeholder has no
        value is left out rather than sent with a literal ``{name}``."""
        if not self.api_headers:
            return {}
        values: dict[str, str] = dict(self.resolved_fields)
        if self.client.client_id:
            values["client_id"] = self.client.client_id
        if self.client.client_secret:
            values["client_secret"] = self.client.client_secret
        out: dict[str, str] = {}
        for name, value in self.api_headers.items():
            if "{" not in value:
                out[name] = value
                continue
            names = PLACEHOLDER.findall(value)
            if all(n in values for n in names):
                out[name] = PLACEHOLDER.sub(lambda m: values[m.group(1)], value)
        return out

    @property
    def placeholders(self) -> frozenset[str]:
        """Every ``{name}`` still in this App's URLs and scopes (empty once fully resolved)."""
        return frozenset(PLACEHOLDER.findall(" ".join(_urls(self)))) | self.scope_placeholders

    @functools.cached_property
    def _placeholders(self) -> tuple[frozenset[str], frozenset[str]]:
        """``(names, header_names)``: the ``{name}`` placeholders :meth:`resolve` fills in the
        app's URLs and scopes, and those of its ``api.headers`` values (kept for
        ``headers_for()``); found once per app, not on every call."""
        names = set(self.placeholders)
        if self.oauth2 is not None and self.oauth2.revocation is not None:
            names |= set(PLACEHOLDER.findall(self.oauth2.revocation.url)) - CLIENT_PLACEHOLDERS
        header_names = set(PLACEHOLDER.findall(" ".join(self.api_headers.values())))
        return frozenset(names), frozenset(header_names)

    def resolve(self, values: Mapping[str, str]) -> App:
        """This app with ``{name}`` placeholders replaced by ``values`` (one account's account
        field and token-response values, already validated) in the OAuth, token, revocation,
        API base and identity URLs. The values are spliced verbatim: only pass values from
        :func:`validate_account_fields` / :func:`validate_token_field`.

        :raises CatalogError: a substituted URL is not an absolute http(s) URL.
        """
        names, header_names = self._placeholders
        if not names and not header_names:
            return self  # most apps: every proxied call passes here
        subs = {k: str(v) for k, v in values.items() if k in names | header_names}

        def sub(url: str | None) -> str | None:
            if url is None:
                return None
            out = PLACEHOLDER.sub(lambda m: subs.get(m.group(1), m.group(0)), url)
            if out != url:
                parts = urlsplit(out)
                if parts.scheme not in ("http", "https") or not parts.hostname:
                    raise CatalogError(f"{self.slug}: {out!r} is not an absolute http(s) URL")
            return out

        oauth2 = self.oauth2
        if oauth2 is not None:
            oauth2 = replace(
                oauth2,
                scopes=tuple(self._scope(s, subs) for s in oauth2.scopes),
                authorize_url=sub(oauth2.authorize_url),
                token_url=sub(oauth2.token_url),
                revoke_url=sub(oauth2.revoke_url),
                refresh_url=sub(oauth2.refresh_url),
                server_metadata_url=sub(oauth2.server_metadata_url),
                issuer=sub(oauth2.issuer),
                jwks_uri=sub(oauth2.jwks_uri),
                revocation=(
                    replace(oauth2.revocation, url=sub(oauth2.revocation.url) or "")
                    if oauth2.revocation
                    else None
                ),
            )
        cc = self.client_credentials
        if cc is not None:
            cc = replace(cc, token_url=sub(cc.token_url) or cc.token_url)
        identity = self.identity
        if identity is not None:
            identity = replace(identity, url=sub(identity.url) or identity.url)
        lookups = tuple(replace(lk, url=sub(lk.url) or lk.url) for lk in self.lookups)
        return replace(
            self,
            oauth2=oauth2,
            client_credentials=cc,
            identity=identity,
            lookups=lookups,
            api_base_url=sub(self.api_base_url) or "",
            resolved_fields={**self.resolved_fields, **subs},
        )

    @property
    def scope_placeholders(self) -> frozenset[str]:
        """Account fields used in the OAuth scopes (``{org}`` in Dynamics 365's
        ``https://{org}.crm.dynamics.com/user_impersonation``)."""
        scopes = self.oauth2.scopes if self.oauth2 else ()
        return frozenset(PLACEHOLDER.findall(" ".join(scopes)))

    def _scope(self, scope: str, subs: Mapping[str, str]) -> str:
        """``scope`` with account-field values filled in.

        :raises CatalogError: a filled scope contains whitespace, a control character or the
            scope separator (it would split into more scopes than the catalog asked for).
        """
        if "{" not in scope:
            return scope
        out = PLACEHOLDER.sub(lambda m: subs.get(m.group(1), m.group(0)), scope)
        separator = self.oauth2.scope_separator if self.oauth2 else " "
        if out != scope and (
            re.search(r"[\x00-\x20\x7f]", out) or (separator.strip() and separator in out)
        ):
            raise CatalogError(f"{self.slug}: scope {scope!r} cannot take this value")
        return out

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


def unusable_warnings(catalog: Catalog, enabled: Iterable[str] | None) -> list[str]:
    """What to tell the operator at start-up about apps that will not show: one line per slug
    of ``enabled`` (``PORTAL_ENABLED_APPS``) that is not in the catalog, or is there but not
    usable, naming what it still needs (``"client_id"``, ``"base_url"`` …). ``[]`` when
    ``enabled`` is ``None`` (every usable app shows, nothing was asked for by name)."""
    if enabled is None:
        return []
    lines = []
    for slug in enabled:
        app = catalog.get(slug)
        if app is None:
            lines.append(f"PORTAL_ENABLED_APPS names {slug!r}, which is not in the catalog")
        elif not app.usable:
            lines.append(
                f"PORTAL_ENABLED_APPS names {slug!r}, which is not configured: it needs "
                + ", ".join(app.missing)
                + f" (flask portal apps show {slug})"
            )
    return lines


#: Client ids and secrets copied from a README or a template, not real values: "…", "...",
#: "<client id>", "xxx", "changeme", "your-client-id", "TODO".
_PLACEHOLDER_VALUE = re.compile(
    r"\s*(?:…+|\.{3,}|\*+|x{3,}|<[^>]*>|\{[^}]*\}|todo|tbd|changeme|change[-_ ]me|your[-_ ].*)\s*",
    re.I,
)


def is_placeholder_value(value: str | None) -> bool:
    """True for a missing client id/secret or one that is plainly a placeholder (``"…"``,
    ``"<client id>"``, ``"your-client-id"``): such an app is reported as not configured
    rather than shown and then failing at the provider."""
    return not value or _PLACEHOLDER_VALUE.fullmatch(value) is not None


def _urls(app: App) -> list[str]:
    urls = [app.api_base_url]
    if app.oauth2 is not None:
        o = app.oauth2
        urls += [
            u
            for u in (
                o.authorize_url,
                o.token_url,
                o.revoke_url,
                o.refresh_url,
                o.server_metadata_url,
                o.issuer,
                o.jwks_uri,
            )
            if u
        ]
    if app.client_credentials is not None:
        urls.append(app.client_credentials.token_url)
    if app.identity is not None:
        urls.append(app.identity.url)
    urls += [lookup.url for lookup in app.lookups]
    return urls


def redirect_uri(portal: Any, slug: str, url_prefix: str | None = None) -> str:
    """The redirect URI a host registers for ``slug``'s OAuth app: the portal's base URL + URL
    prefix + ``/oauth/<slug>/callback`` (one per app, RFC 9700 §4.4.2).

    :param portal: ``PORTAL_BASE_URL`` as a string (``url_prefix`` then defaults to
        ``"/portal"``), or the portal's state (``current_portal``), whose ``base_url`` and
        ``PORTAL_URL_PREFIX`` are used.
    """
    if isinstance(portal, str):
        base = portal
        prefix = "/portal" if url_prefix is None else url_prefix
    else:
        base = portal.base_url or ""
        prefix = portal.config["PORTAL_URL_PREFIX"] if url_prefix is None else url_prefix
    return f"{base.rstrip('/')}{prefix.rstrip('/')}/oauth/{slug}/callback"


def _check_hostname(value: str) -> str | None:
    """Why ``value`` (lower case) is not an acceptable public host name, or ``None``."""
    if len(value) > 253:
        return "is too long"
    labels = value.split(".")
    if len(labels) < 2:
        return "must be a full host name such as support.example.com"
    if not all(_DNS_LABEL.fullmatch(label) for label in labels):
        return "may only contain letters, digits, hyphens and dots between labels"
    if labels[-1].isdigit() or not re.search(r"[a-z]", labels[-1]):
        return "must not be an IP address"
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:  # pragma: no cover - caught by the numeric-label rule above
        return "must not be an IP address"
    if any(value == s or value.endswith("." + s) for s in _INTERNAL_SUFFIXES):
        return "must be a public host name"
    return None


def validate_field_value(spec: AccountField, raw: Any) -> str:
    """The normalised value of one account field, or :class:`InvalidAccountField`.

    * ``dns_label``: one RFC 1123 §2.1 label: surrounding spaces dropped, lower-cased, 1-63
      characters of ``a-z 0-9 -``, not starting or ending with ``-``. No dots, slashes, ``@``,
      ``%``, ports or non-ASCII letters.
    * ``hostname``: two or more such labels joined by dots, at most 253 characters, a
      top-level label with a letter (so never an IPv4 literal), no IPv6 literal, no port, no
      ``localhost``/``.local``/``.internal`` names.
    * ``enum``: exactly one of the listed values.
    * ``digits``: 1-32 ASCII digits (e.g. QuickBooks' ``realmId``).
    * ``uuid``: an RFC 9562 UUID, 8-4-4-4-12 hex digits, lower-cased.
    * ``path_prefix``: optional: ``""``, or ``/seg/seg`` of RFC 3986 unreserved characters
      (a self-hosted instance under a path, ``https://{host}{path}``; :func:`_path_prefix`).
    """
    if spec.format == "path_prefix":
        return _path_prefix(spec, raw)
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidAccountField(spec.name, f"{spec.label} is required.")
    if spec.format == "enum":
        if raw not in spec.enum:
            raise InvalidAccountField(spec.name, f"{spec.label} must be one of the listed values.")
        return raw
    value = raw.strip()
    if not value.isascii():
        raise InvalidAccountField(spec.name, f"{spec.label} may only use the letters a-z.")
    value = value.lower()
    if spec.format == "digits":
        if not _DIGITS.fullmatch(value):
            raise InvalidAccountField(spec.name, f"{spec.label} must be a number.")
        return value
    if spec.format == "uuid":
        if not _UUID.fullmatch(value):
            raise InvalidAccountField(spec.name, f"{spec.label} must be an identifier (UUID).")
        return value
    if spec.format == "dns_label":
        if value == "localhost":
            raise InvalidAccountField(spec.name, f"{spec.label} cannot be localhost.")
        if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
            raise InvalidAccountField(
                spec.name,
                f"{spec.label} may only contain letters, digits and inner hyphens "
                "(1-63 characters, no dots).",
            )
        return value
    problem = _check_hostname(value)
    if problem:
        raise InvalidAccountField(spec.name, f"{spec.label} {problem}.")
    return value


def _path_prefix(spec: AccountField, raw: Any) -> str:
    """A ``path_prefix`` value: ``""`` (none), else ``/seg/seg`` (a leading ``/`` added, a
    trailing one dropped), 1-8 segments of RFC 3986 unreserved characters, case kept, no
    ``.`` or ``..`` segment, at most 128 characters. Nothing that could leave the path:
    no ``%``, ``?``, ``#``, ``@``, ``:``, ``\\``, ``;`` or whitespace.

    :raises InvalidAccountField: any other value.
    """
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise InvalidAccountField(spec.name, f"{spec.label} must be a path such as /jenkins.")
    value = raw.strip().strip("/")
    if not value:
        return ""
    segments = value.split("/")
    if (
        len(value) > 128
        or len(segments) > 8
        or not all(_PATH_SEGMENT.fullmatch(seg) for seg in segments)
        or any(seg in (".", "..") for seg in segments)
    ):
        raise InvalidAccountField(
            spec.name,
            f"{spec.label} must be a path such as /jenkins: letters, digits, '-', '_', '.' "
            "and '~' between slashes.",
        )
    return "/" + value


def validate_account_fields(app: App, values: Mapping[str, Any]) -> dict[str, str]:
    """Every account field of ``app`` from ``values`` (form input), validated by
    :func:`validate_field_value`; fields filled from the token response are not read.

    :returns: ``{name: normalised value}``.
    :raises InvalidAccountField: the first field that is missing or invalid.
    """
    derived = app.derived_fields
    return {
        spec.name: validate_field_value(spec, values.get(spec.name))
        for spec in app.account_fields
        if spec.name not in derived
    }


#: What a catalog URL must be (``docs_url``, an ``icon`` URL, every endpoint): ``https``, or
#: plain ``http`` on a loopback host for development. Anything else (``javascript:``,
#: ``data:``, ``http://`` to another host) is refused when the catalog is validated or loaded.
URL_RULE = "must be an https URL (plain http only on 127.0.0.1, localhost or [::1])"
#: An ``icon`` that is a file name under ``static/icons/`` (no path, no scheme).
ICON_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def is_catalog_url(value: str) -> bool:
    """True for an absolute ``https`` URL with a host, or an ``http`` URL whose host is
    ``127.0.0.1``, ``localhost`` or ``[::1]`` (development only).

    ``javascript:``, ``data:``, ``vbscript:`` and every other scheme are refused; so are URLs
    with whitespace or control characters, which browsers strip before parsing (WHATWG URL).
    """
    if not isinstance(value, str) or re.search(r"[\x00-\x20\x7f\\]", value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if not host or not value.lower().startswith(parts.scheme + "://"):
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and host in _LOOPBACK_HOSTS)


def validate_token_field(app: App, name: str, raw: Any) -> str:
    """A placeholder value read from a token response (``token_response.fields``) or an
    identity response (``identity.fields``), checked before it is spliced into any URL.

    When ``name`` is also an account field, the value must be valid for that field's format;
    otherwise it must be an absolute ``https`` URL without user info, query or fragment (the
    trailing ``/`` dropped), whose host is a public host name (no IP literal, no localhost);
    plain ``http`` is accepted only on loopback and only for the built-in sandbox apps.

    :raises InvalidAccountField: the value is missing or not acceptable.
    """
    spec = next((f for f in app.account_fields if f.name == name), None)
    if spec is not None:
        # A JSON number (Basecamp's and Harvest's account ids, Ecwid's store_id) fills a
        # ``digits`` field as its decimal digits; booleans and other types stay refused.
        if spec.format == "digits" and type(raw) is int and raw >= 0:
            raw = str(raw)
        return validate_field_value(spec, raw)
    bad = InvalidAccountField(name, f"{app.title} sent an unusable {name}.")
    if not isinstance(raw, str) or len(raw) > 2048 or not raw.isascii():
        raise bad
    if re.search(r"[\x00-\x20\x7f\\{}]", raw):
        raise bad
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise bad from exc
    host = (parts.hostname or "").lower()
    if parts.username is not None or "@" in parts.netloc or parts.query or parts.fragment:
        raise bad
    if not host or "%" in raw:
        raise bad
    loopback_ok = app.slug.startswith("sandbox") and host in _LOOPBACK_HOSTS
    if parts.scheme == "https":
        if port is not None and not loopback_ok and port != 443:
            raise bad
        if not loopback_ok and _check_hostname(host) is not None:
            raise bad
    elif not (parts.scheme == "http" and loopback_ok):
        raise bad
    if any(s in (".", "..") for s in parts.path.split("/")):
        raise bad
    return raw.rstrip("/")


def validate_definition(data: Any, source: Path | str) -> list[str]:
    """Every schema violation of one parsed definition, each as ``"<file>: <field>: <problem>"``."""
    return schema_problems(_VALIDATOR, data, source)


def schema_problems(validator: Draft202012Validator, data: Any, source: Path | str) -> list[str]:
    """Every violation of ``validator``'s JSON Schema by ``data``, each as
    ``"<file>: <field>: <problem>"``, in field order. A ``pattern`` rule with an ``x-error``
    says that sentence instead of the regex; an ``anyOf``/``oneOf`` names what would satisfy it.
    Shared by the catalog and the flows files (portal/flows.py)."""
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        message = error.message
        if error.validator == "pattern" and isinstance(error.schema, dict):
            rule = error.schema.get("x-error")
            message = f"{error.instance!r} {rule}" if rule else message
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


@dataclass
class _AppFile:
    """One app file being loaded: where its errors point, what it still needs, and the
    placeholders its URLs may use.

    :ivar samples: a sample value per placeholder (account, token-response and identity
        fields), only to check that a URL is absolute once substituted.
    :ivar missing: what the app still needs (``"base_url"``, ``"client_id"`` …), in the order
        found; it becomes :attr:`App.missing`.
    """

    path: Path
    #: ``PORTAL_<SLUG>``: the slug upper-cased, ``-`` as ``_`` (environment variable names).
    env_prefix: str
    settings: Mapping[str, Any]
    env: Mapping[str, str]
    base_url: Any
    names: list[str]
    samples: dict[str, str]
    missing: list[str] = field(default_factory=list)
    #: Account fields the provider fills (callback query, identity response, lookups).
    derived: set[str] = field(default_factory=set)

    def url(self, value: str | None, field_name: str) -> str | None:
        """``value`` checked as a catalog URL, placeholders kept; ``None`` when absent or when
        it needs a ``base_url`` nobody configured (then ``"base_url"`` is missing).

        :raises CatalogError: an unknown placeholder, or not an absolute http(s) URL that
            :func:`is_catalog_url` accepts once substituted.
        """
        if value is None:
            return None
        if "{base_url}" in value:
            if not self.base_url:
                if "base_url" not in self.missing:
                    self.missing.append("base_url")
                return None
            value = value.replace("{base_url}", str(self.base_url).rstrip("/"))
        unknown = sorted(set(PLACEHOLDER.findall(value)) - set(self.samples))
        if unknown or re.search(r"\{(?![a-z][a-z0-9_]{0,31}\})", value):
            raise CatalogError(
                f"{self.path}: {field_name}: placeholder {{{unknown[0] if unknown else '?'}}} "
                "is not an account field, a token_response field or an identity field"
            )
        checked = PLACEHOLDER.sub(lambda m: self.samples[m.group(1)], value)
        try:
            parts = urlsplit(checked)
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError:  # "http://[::1" (unbalanced brackets), "https://x:99999"
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise CatalogError(
                f"{self.path}: {field_name}: {value!r} is not an absolute http(s) URL"
            )
        if not is_catalog_url(checked):
            raise CatalogError(f"{self.path}: {field_name}: {value!r} {URL_RULE}")
        return value


def _build_app(
    path: Path, data: dict[str, Any], settings: Mapping[str, Any], env: Mapping[str, str]
) -> App:
    """The :class:`App` of one schema-valid definition, section by section.

    :raises CatalogError: a rule the JSON Schema cannot express, naming file and field.
    """
    slug: str = data["slug"]
    auth = data["auth"]
    account_fields = _account_fields(path, data.get("account_fields", []))
    names = [f.name for f in account_fields]
    token_fields = dict(auth.get("token_response", {}).get("fields", {}))
    identity_fields = dict((data.get("identity") or {}).get("fields", {}))
    lookup_fields = {n: p for lk in data.get("lookups", []) for n, p in lk["fields"].items()}
    for name in auth.get("callback_fields", {}):
        if name not in names:
            raise CatalogError(
                f"{path}: auth.callback_fields.{name}: not an account field (declare it in "
                "account_fields with a format)"
            )
    samples = {f.name: "/x" if f.format == "path_prefix" else "x" for f in account_fields}
    samples.update(
        {
            name: "https://x.example"
            for name in (*token_fields, *identity_fields, *lookup_fields)
            if name not in samples
        }
    )
    env_prefix = "PORTAL_" + slug.upper().replace("-", "_")
    base_url = settings.get("base_url") or env.get(f"{env_prefix}_BASE_URL") or data.get("base_url")
    app_file = _AppFile(path, env_prefix, settings, env, base_url, names, samples)
    app_file.derived = {*auth.get("callback_fields", {}), *identity_fields, *lookup_fields}

    oauth2 = api_key = basic = client_credentials = None
    if auth["type"] == "oauth2":
        oauth2 = _oauth2(app_file, auth, token_fields)
    elif auth["type"] == "oauth2_client_credentials":
        client_credentials = _client_credentials_grant(app_file, auth)
    elif auth["type"] == "api_key":
        api_key = _api_key(auth)
    else:
        basic = BasicSettings(
            username_label=auth.get("username_label", "Username"),
            password_label=auth.get("password_label", "Password"),
        )

    api_base_url = app_file.url(data["api"]["base_url"], "api.base_url") or ""
    identity = _identity(app_file, data.get("identity"), identity_fields, api_base_url)
    lookups = _lookups(app_file, data.get("lookups", []), api_base_url)
    api_headers = _api_headers(app_file, data["api"].get("headers", {}))
    token_placement = _token_placement(path, auth)
    client = _client(app_file, oauth2, api_headers)
    _check_links(path, data)
    functions = _functions(path, slug, data.get("functions", []))
    webhooks = _webhook_spec(path, data["webhooks"], names) if "webhooks" in data else None
    verify = _verify(path, data.get("verify"))

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
        missing=tuple(app_file.missing),
        client_credentials=client_credentials,
        account_fields=account_fields,
        api_headers=api_headers,
        token_placement=token_placement,
        verify=verify,
        lookups=lookups,
        error_when=ErrorWhen(**data["api"]["error_when"]) if "error_when" in data["api"] else None,
    )


def _lookups(
    app_file: _AppFile, entries: list[dict[str, Any]], api_base_url: str
) -> tuple[Lookup, ...]:
    """The ``lookups:`` section; a relative ``url`` is under ``api_base_url``. A lookup whose
    URL needs a ``base_url`` nobody configured is left out (``"base_url"`` is then missing).

    :raises CatalogError: a URL that uses a field a lookup fills, a field filled by two
        lookups, or not a catalog URL.
    """
    path = app_file.path
    lookups: list[Lookup] = []
    every = [name for entry in entries for name in entry["fields"]]
    if len(set(every)) != len(every):
        raise CatalogError(f"{path}: lookups: a field is filled by two lookups")
    for i, entry in enumerate(entries):
        url: str | None = entry["url"]
        assert url is not None
        if not url.startswith(("http://", "https://", "{")):
            if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", url):
                raise CatalogError(f"{path}: lookups.{i}.url: {url!r} {URL_RULE}")
            url = api_base_url.rstrip("/") + "/" + url.lstrip("/") if api_base_url else None
        else:
            url = app_file.url(url, f"lookups.{i}.url")
        own = set(PLACEHOLDER.findall(url or "")) & set(every)
        if own:
            raise CatalogError(
                f"{path}: lookups.{i}.url: cannot use {{{sorted(own)[0]}}}, which a lookup fills"
            )
        if url:
            lookups.append(Lookup(url=url, fields=dict(entry["fields"])))
    return tuple(lookups)


def _verify(path: Path, section: Mapping[str, Any] | None) -> Verify | None:
    """The ``verify:`` section: a path under ``api.base_url`` (no scheme, no host, no
    ``..``), so the call goes where the proxy would send it.

    :raises CatalogError: the path leaves ``api.base_url``.
    """
    if not section:
        return None
    verify_path: str = section["path"]
    if "://" in verify_path or verify_path.startswith("//") or ".." in verify_path.split("/"):
        raise CatalogError(f"{path}: verify.path: must be a path under api.base_url")
    return Verify(path=verify_path, method=section.get("method", "GET"))


def _account_fields(path: Path, entries: list[dict[str, Any]]) -> tuple[AccountField, ...]:
    """The ``account_fields:`` section.

    :raises CatalogError: two fields share a name.
    """
    account_fields = tuple(
        AccountField(
            name=f["name"],
            label=f["label"],
            format=f["format"],
            help=f.get("help"),
            prefix=f.get("prefix"),
            suffix=f.get("suffix"),
            enum=tuple(f.get("enum", ())),
        )
        for f in entries
    )
    names = [f.name for f in account_fields]
    if len(set(names)) != len(names):
        raise CatalogError(f"{path}: account_fields: two fields share a name")
    return account_fields


def _oauth2(
    app_file: _AppFile, auth: Mapping[str, Any], token_fields: dict[str, str]
) -> OAuth2Settings:
    """The ``auth:`` section of an ``oauth2`` (authorization code) app.

    :raises CatalogError: a bad URL, or the openid scope without keys to verify the id_token.
    """
    url, settings, env = app_file.url, app_file.settings, app_file.env
    scopes = settings.get("scopes", auth.get("scopes", []))
    oauth2 = OAuth2Settings(
        authorize_url=url(auth.get("authorize_url"), "auth.authorize_url"),
        token_url=url(auth.get("token_url"), "auth.token_url"),
        revoke_url=url(auth.get("revoke_url"), "auth.revoke_url"),
        refresh_url=url(auth.get("refresh_url"), "auth.refresh_url"),
        server_metadata_url=url(auth.get("server_metadata_url"), "auth.server_metadata_url"),
        issuer=url(auth.get("issuer"), "auth.issuer"),
        jwks_uri=url(auth.get("jwks_uri"), "auth.jwks_uri"),
        scopes=tuple(scopes),
        scope_separator=auth.get("scope_separator", " "),
        optional_scopes=tuple(auth.get("optional_scopes", ())),
        pkce=auth.get("pkce", True),
        pkce_unsupported_source=auth.get("pkce_unsupported_source"),
        token_endpoint_auth_method=auth.get("token_endpoint_auth_method", "client_secret_basic"),
        authorize_params=dict(auth.get("authorize_params", {})),
        token_params=dict(auth.get("token_params", {})),
        token_response=TokenResponse(
            **{k: v for k, v in auth.get("token_response", {}).items() if k != "fields"},
            fields=token_fields,
        ),
        callback_fields=dict(auth.get("callback_fields", {})),
        custom_redirect_uri=bool(auth.get("custom_redirect_uri", False)),
        redirect_uri_value=(
            (
                settings.get("redirect_uri_value")
                or env.get(f"{app_file.env_prefix}_REDIRECT_URI_VALUE")
                or None
            )
            if auth.get("custom_redirect_uri")
            else None
        ),
    )
    if "openid" in requested_scopes(oauth2) and not (oauth2.server_metadata_url or oauth2.jwks_uri):
        # The id_token (and its nonce, OpenID Connect Core §3.1.3.7) is checked against the
        # provider's keys; without them every connect would fail.
        raise CatalogError(
            f"{app_file.path}: auth.jwks_uri: an app that requests the openid scope needs the "
            "keys that verify its id_token (jwks_uri or server_metadata_url)"
        )
    for scope in oauth2.scopes:
        used = set(PLACEHOLDER.findall(scope))
        entered = set(app_file.names) - set(token_fields) - set(app_file.derived)
        if used - entered or re.search(r"\{(?![a-z][a-z0-9_]{0,31}\})", scope):
            raise CatalogError(
                f"{app_file.path}: auth.scopes: {scope!r}: a scope placeholder must be an "
                "account field the end user enters (the scopes are sent before the provider "
                "answers anything)"
            )
    if oauth2.custom_redirect_uri and not oauth2.redirect_uri_value:
        app_file.missing.append("redirect_uri_value")
    if "revocation" in auth:
        oauth2 = replace(oauth2, revocation=_revocation(app_file, auth))
    return oauth2


_CLIENT_ID_SENTINEL = "portal-client-id-0f3a"


def _revocation(app_file: _AppFile, auth: Mapping[str, Any]) -> Revocation | None:
    """``auth.revocation``: its URL checked as a catalog URL, ``{client_id}`` allowed.

    :raises CatalogError: a bad URL, or ``revoke_url`` given as well.
    """
    if "revoke_url" in auth:
        raise CatalogError(f"{app_file.path}: auth.revocation: give revocation or revoke_url")
    block = auth["revocation"]
    raw: str = block["url"]
    # {client_id} is the host's client (filled at revocation time); check the rest.
    checked = app_file.url(raw.replace("{client_id}", _CLIENT_ID_SENTINEL), "auth.revocation.url")
    if checked is None:
        return None
    url = checked.replace(_CLIENT_ID_SENTINEL, "{client_id}")
    return Revocation(
        url=url,
        method=block.get("method", "POST"),
        auth=block.get("auth", "none"),
        token_in=block.get("token_in", "form"),
        token_param=block.get("token_param", "token"),
        token=block.get("token", "refresh_token"),
    )


def _client_credentials_grant(
    app_file: _AppFile, auth: Mapping[str, Any]
) -> ClientCredentialsSettings:
    """The ``auth:`` section of an ``oauth2_client_credentials`` app."""
    token_url = app_file.url(auth["token_url"], "auth.token_url")
    return ClientCredentialsSettings(
        token_url=token_url or "",
        scopes=tuple(app_file.settings.get("scopes", auth.get("scopes", []))),
        scope_separator=auth.get("scope_separator", " "),
        token_endpoint_auth_method=auth.get("token_endpoint_auth_method", "client_secret_basic"),
        token_params=dict(auth.get("token_params", {})),
        client_id_label=auth.get("client_id_label", "Client ID"),
        client_secret_label=auth.get("client_secret_label", "Client secret"),
        key_help=auth.get("key_help"),
    )


def _api_key(auth: Mapping[str, Any]) -> ApiKeySettings:
    """The ``auth:`` section of an ``api_key`` app."""
    placement = auth["placement"]
    return ApiKeySettings(
        placement_in=placement["in"],
        placement_name=placement.get("name"),
        key_label=auth.get("key_label", "API key"),
        key_help=auth.get("key_help"),
        prefix=placement.get("prefix", ""),
        password=placement.get("password", ""),
        username=placement.get("username", ""),
    )


def _identity(
    app_file: _AppFile,
    ident: Mapping[str, Any] | None,
    identity_fields: dict[str, str],
    api_base_url: str,
) -> Identity | None:
    """The ``identity:`` section; a relative ``url`` is under ``api_base_url``. ``None`` when
    there is no section, or its URL needs a ``base_url`` nobody configured.

    :raises CatalogError: the URL uses an identity field, or is not a catalog URL.
    """
    if not ident:
        return None
    path = app_file.path
    ident_url = ident["url"]
    if set(PLACEHOLDER.findall(ident_url)) & set(identity_fields) - set(app_file.names):
        raise CatalogError(f"{path}: identity.url: cannot use an identity.fields placeholder")
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", ident_url) and not ident_url.startswith(
        ("http://", "https://")
    ):
        raise CatalogError(f"{path}: identity.url: {ident_url!r} {URL_RULE}")
    if not ident_url.startswith(("http://", "https://", "{")):
        ident_url = api_base_url.rstrip("/") + "/" + ident_url.lstrip("/") if api_base_url else None
    else:
        ident_url = app_file.url(ident_url, "identity.url")
    if not ident_url:
        return None
    return Identity(
        url=ident_url,
        external_id=ident["external_id"],
        label=ident.get("label"),
        method=ident.get("method", "GET"),
        body=ident.get("body"),
        has_body="body" in ident,
        fields=identity_fields,
    )


def _api_headers(app_file: _AppFile, headers: Mapping[str, str]) -> dict[str, str]:
    """The ``api.headers`` section: static request headers, whose values may use the host's
    client id and secret and the account fields.

    :raises CatalogError: a forbidden header, or an unknown or URL-valued placeholder.
    """
    path, samples = app_file.path, app_file.samples
    api_headers = dict(headers)
    for name, value in api_headers.items():
        if name.lower() in FORBIDDEN_STATIC_HEADERS or name.lower().startswith("proxy-"):
            raise CatalogError(f"{path}: api.headers.{name}: this header cannot be set here")
        unknown = sorted(set(PLACEHOLDER.findall(value)) - set(samples) - CLIENT_PLACEHOLDERS)
        if unknown or re.search(r"\{(?![a-z][a-z0-9_]{0,31}\})", value):
            raise CatalogError(
                f"{path}: api.headers.{name}: placeholder {{{unknown[0] if unknown else '?'}}} "
                "is not client_id, client_secret or an account field"
            )
        for placeholder in PLACEHOLDER.findall(value):
            if placeholder in samples and placeholder not in app_file.names:
                # URL-valued token/identity fields never go into a header.
                raise CatalogError(
                    f"{path}: api.headers.{name}: {{{placeholder}}} must be an account field"
                )
    return api_headers


def _token_placement(path: Path, auth: Mapping[str, Any]) -> TokenPlacement:
    """``auth.placement`` of an ``oauth2`` app (bearer for every other type).

    :raises CatalogError: the named header cannot carry a token.
    """
    placement = auth.get("placement", {}) if auth["type"] == "oauth2" else {}
    token_placement = TokenPlacement(
        placement_in=placement.get("in", "bearer"),
        name=placement.get("name"),
        prefix=placement.get("prefix", ""),
    )
    if token_placement.name and (
        token_placement.name.lower() in FORBIDDEN_STATIC_HEADERS - {"authorization"}
        or token_placement.name.lower().startswith("proxy-")
    ):
        raise CatalogError(f"{path}: auth.placement.name: this header cannot carry the token")
    return token_placement


def _client(
    app_file: _AppFile, oauth2: OAuth2Settings | None, api_headers: Mapping[str, str]
) -> ClientCredentials:
    """The host's client registration, from ``PORTAL_APPS[slug]`` or the environment; an
    OAuth app without a client id, or a header that needs an absent one, records it missing."""
    settings, env, prefix = app_file.settings, app_file.env, app_file.env_prefix
    client = ClientCredentials(
        client_id=settings.get("client_id") or env.get(f"{prefix}_CLIENT_ID"),
        client_secret=settings.get("client_secret") or env.get(f"{prefix}_CLIENT_SECRET"),
        webhook_secret=settings.get("webhook_secret") or env.get(f"{prefix}_WEBHOOK_SECRET"),
    )
    missing = app_file.missing
    if oauth2 is not None and is_placeholder_value(client.client_id):
        missing.append("client_id")
    header_values = " ".join(api_headers.values())
    for name in ("client_id", "client_secret"):
        if "{" + name + "}" in header_values and not getattr(client, name) and name not in missing:
            missing.append(name)  # e.g. Etsy's x-api-key: "{client_id}:{client_secret}"
    return client


def _check_links(path: Path, data: Mapping[str, Any]) -> None:
    """``docs_url`` and ``icon``.

    :raises CatalogError: not a catalog URL (or, for the icon, a file under static/icons/).
    """
    docs_url = data.get("docs_url")
    if docs_url is not None and not is_catalog_url(docs_url):
        raise CatalogError(f"{path}: docs_url: {docs_url!r} {URL_RULE}")
    icon = data.get("icon")
    if icon is not None and not ICON_FILE.fullmatch(icon) and not is_catalog_url(icon):
        raise CatalogError(
            f"{path}: icon: {icon!r} must be a file name under static/icons/ or a URL that "
            f"{URL_RULE.removeprefix('must be ')}"
        )


def _functions(path: Path, slug: str, entries: list[dict[str, Any]]) -> tuple[Function, ...]:
    """The ``functions:`` section.

    :raises CatalogError: a name without the ``<slug>-`` prefix, or ``params`` that is not a
        valid JSON Schema (2020-12).
    """
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
            destructive=bool(f.get("destructive", f["method"] != "GET")),
            required_scopes=tuple(f.get("required_scopes", ())),
        )
        for f in entries
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
    return functions


def _webhook_spec(path: Path, block: Mapping[str, Any], fields: Iterable[str] = ()) -> WebhookSpec:
    """The :class:`WebhookSpec` of a schema-valid ``webhooks:`` block; ``fields`` are the
    app's account field names.

    :raises CatalogError: a ``topics`` entry renames a topic to a name not in ``triggers``;
        ``account.field`` is not an account field; ``secret: account`` without a per-account
        URL (``account.query``) to learn it for.
    """
    account_block = block["account"]
    if account_block["match"] == "account_field" and account_block["field"] not in set(fields):
        raise CatalogError(
            f"{path}: webhooks.account.field: {account_block['field']!r} is not an account field"
        )
    if block["signature"].get("secret") == "account" and not account_block.get("query"):
        raise CatalogError(
            f"{path}: webhooks.signature.secret: 'account' needs webhooks.account.query"
        )
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
            header=signature.get("header", ""),
            algorithm=signature.get("algorithm", "sha256"),
            prefix=signature.get("prefix", ""),
            secret=signature.get("secret", "client_secret"),
            scheme=signature.get("scheme", "hmac_hex"),
            tolerance=signature.get("tolerance"),
        ),
        account=WebhookAccount(
            payload_path=account.get("payload_path", ""),
            match=account["match"],
            header=account.get("header", ""),
            query=account.get("query", ""),
            field=account.get("field", ""),
            suffix=account.get("suffix", ""),
        ),
        topic_path=block.get("topic_path", ""),
        triggers=triggers,
        topics=topics,
        topic_header=block.get("topic_header", ""),
        batch=block.get("batch", ""),
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
