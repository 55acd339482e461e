"""Credential-injecting API proxy: the end user's request, sent to the app's API only.

``build_url`` is the SSRF guard: the caller names a *path* under the app's configured API base
URL (catalog ``api.base_url``); anything that could leave it — an absolute or scheme-relative
URL, user info or a scheme (``@``, ``:`` in the first segment), backslashes, control characters
(CR/LF), or ``.``/``..`` segments in any encoding, also with a path parameter (``..;``,
``%2e%2e;jsessionid=x``, which Tomcat and Jetty resolve as ``..``) — is refused before any
outbound request. Redirects are never followed
(a redirect to another host would carry the credential with it).

For apps with account fields the base URL is the one resolved with the account's own values
(``https://{subdomain}.zendesk.com/api/v2`` -> ``https://acme.zendesk.com/api/v2``), and the
request is pinned to it exactly as to a fixed one. Every outbound request to an end-user-chosen
host (a ``hostname`` account field) is also resolved once, refused (403 ``upstream_refused``)
when an address is not public, and sent to the address that was checked
(:func:`ensure_public_host`, :mod:`portal.outbound`).

Request headers: only an allow-list of caller headers is forwarded (never ``Authorization``,
``Cookie``, ``Host`` or proxy headers); the app's static ``api.headers`` are added and win over
caller headers of the same name; the credential is added last, as the catalog says.

Response headers: a proxied response never carries the upstream's security-relevant headers.
Only :data:`PASSED_RESPONSE_HEADERS` come back (content type and language, the cache
validators ``ETag`` and ``Last-Modified``, ``Location``, ``Allow``, ``Retry-After``, rate-limit
headers — any name starting ``x-ratelimit-``, ``x-rate-limit-`` or ``ratelimit-`` —, request ids,
pagination counts, OAuth scope lists, ``Deprecation`` and ``Sunset``). ``Link`` comes back only
as its pagination targets (``next``, ``prev``, ``previous``, ``first``, ``last``), rewritten as
``<target>; rel="…"`` (:func:`pagination_links`). Everything else is dropped: the upstream's
``Content-Security-Policy`` (and ``-Report-Only``), ``X-Frame-Options``,
``X-Content-Type-Options``, ``Set-Cookie``, ``Access-Control-*``, ``Refresh``,
``Clear-Site-Data``, ``Permissions-Policy``, ``Cross-Origin-*``, ``Strict-Transport-Security``,
``Origin-Agent-Cluster``, ``Service-Worker-Allowed``, ``Set-Login``, ``WWW-Authenticate``,
``Content-Disposition``, ``Cache-Control``, hop-by-hop headers and anything unknown.

The body never runs as a page on the portal's (in mounted mode: the host's) origin: every
answer of the proxy route carries :data:`RESPONSE_SECURITY_HEADERS` (a CSP ``sandbox`` without
``allow-scripts``, ``default-src 'none'``; ``X-Content-Type-Options: nosniff``), assigned by the
views over anything else, and an answer whose type is not clearly inert
(:data:`INERT_CONTENT_TYPES`, ``+json``) — HTML, XHTML, SVG, XML, PDF, script, unknown or
missing — also ``Content-Disposition: attachment`` (a navigation to it is a download). A missing
``Content-Type`` is sent as ``application/octet-stream``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlencode, urlsplit

import certifi
import urllib3
from sqlalchemy import bindparam, select
from urllib3.util import make_headers

from . import credentials as credential_service
from . import logs, outbound
from .errors import InvalidRequest, PortalHTTPError
from .identity import request_kwargs
from .store import ConnectedAccount

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.sql.compiler import Compiled
    from werkzeug.datastructures import Headers

    from .catalog import App
    from .state import PortalState

log = logging.getLogger(__name__)

#: Caller headers forwarded upstream (lower case). Everything else is dropped.
FORWARDED_REQUEST_HEADERS = frozenset(
    {
        "accept",
        "accept-language",
        "content-type",
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
        "idempotency-key",
        "prefer",
    }
)
#: Upstream response headers passed back (lower case); every other one is dropped (the module
#: docstring says why). ``Link`` is filtered apart (:func:`pagination_links`).
PASSED_RESPONSE_HEADERS = frozenset(
    {
        "content-type",
        "content-language",
        "etag",
        "last-modified",
        "location",
        "allow",
        "retry-after",
        "ratelimit",
        "ratelimit-policy",
        "x-request-id",
        "request-id",
        "x-correlation-id",
        "x-trace-id",
        "x-amzn-requestid",
        "x-amz-request-id",
        "x-github-request-id",
        "x-total-count",
        "x-total",
        "x-total-pages",
        "x-page",
        "x-per-page",
        "x-next-page",
        "x-prev-page",
        "x-oauth-scopes",
        "x-accepted-oauth-scopes",
        "deprecation",
        "sunset",
    }
)
#: Name prefixes of rate-limit headers passed back as well (GitHub's ``x-ratelimit-remaining``,
#: X's ``x-rate-limit-reset``, the IETF draft's ``ratelimit-limit``).
PASSED_RESPONSE_PREFIXES = ("x-ratelimit-", "x-rate-limit-", "ratelimit-")
#: Link relations (RFC 8288 §3.3) whose targets come back in ``Link``: pagination only.
PAGINATION_RELATIONS = frozenset({"next", "prev", "previous", "first", "last"})
#: Media types (essence, lower case) a browser shows as data, never as an active document; so
#: are ``*/*+json`` types. Anything else answers with ``Content-Disposition: attachment``.
INERT_CONTENT_TYPES = frozenset(
    {
        "application/json",
        "application/x-ndjson",
        "text/plain",
        "text/csv",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
    }
)
#: The CSP of every answer of the proxy route: a sandbox without ``allow-scripts`` (no script,
#: a unique opaque origin, no forms or popups), nothing loaded, not framed (CSP Level 3 §6.3.2 ``sandbox``).
PROXY_CONTENT_SECURITY_POLICY = (
    "sandbox; default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
#: Assigned (never defaulted) on every answer of the proxy route, errors included.
RESPONSE_SECURITY_HEADERS = (
    ("Content-Security-Policy", PROXY_CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
)
_ATTACHMENT = ("Content-Disposition", "attachment")
_OCTET_STREAM = ("Content-Type", "application/octet-stream")
#: Characters allowed in a ``Link`` target passed back (printable ASCII but ``<>"\`` and space).
_LINK_TARGET_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - set('<>"\\')
_BAD_PATH = re.compile(r"[\x00-\x20\x7f\\]")


#: One connection pool for every upstream call (keep-alive saves a TCP, and often a TLS,
#: handshake per request), thread-safe. urllib3 directly rather than ``requests``: the proxy
#: needs none of its per-call preparation (cookie jars, hooks, environment merging), which
#: cost about a millisecond a call. It keeps no cookies, reads no environment proxies or
#: ``~/.netrc``, never follows a redirect (a redirect to another host would carry the
#: credential with it) and never retries. Certificates are checked against certifi's bundle,
#: as ``requests`` did. Up to 256 idle keep-alive connections per upstream origin and process:
#: a gevent worker has that many calls in flight at once and more (fewer would close and
#: reopen connections under load; more are opened when needed, never waited for).
_http = urllib3.PoolManager(
    num_pools=32, maxsize=256, cert_reqs="CERT_REQUIRED", ca_certs=certifi.where()
)
#: Sent unless the caller or the catalog says otherwise (what ``requests`` sent before).
DEFAULT_REQUEST_HEADERS = {
    "User-Agent": "connect-portal-proxy/1",
    "Accept": "*/*",
    **make_headers(accept_encoding=True),
}
#: Bytes per chunk streamed back to the caller.
CHUNK_SIZE = 64 * 1024


class UpstreamTimeout(PortalHTTPError):
    """504: the app's API did not answer in time."""

    code = 504
    error_code = "upstream_timeout"


class UpstreamError(PortalHTTPError):
    """502: the app's API could not be reached."""

    code = 502
    error_code = "upstream_error"


def build_url(base_url: str, path: str, *, allow_empty: bool = False) -> str:
    """``base_url`` joined with the caller's ``path``, or :class:`InvalidRequest`.

    ``path`` is what follows ``/proxy/<app>/`` (already percent-decoded once by the router):
    it is decoded until stable, checked, then re-quoted, so ``%2e%2e%2f`` is caught as ``../``.
    ``@`` and ``:`` are accepted after the first segment (Teams channel ids such as
    ``19:abc@thread.tacv2``; they go out as ``%40`` and ``:``): the path always follows
    ``base_url`` and a ``/``, so they cannot become user info or a scheme; the first segment
    keeps refusing both (``evil.example@``, ``javascript:``).

    :param allow_empty: an empty ``path`` is ``base_url`` itself (a function whose endpoint is
        the base URL, e.g. a GraphQL API); the proxy route never passes it.
    :raises InvalidRequest: ``invalid_path`` for anything that could leave ``base_url``.
    """
    if allow_empty and path == "":
        return base_url
    decoded = path
    for _ in range(3):
        again = unquote(decoded)
        if again == decoded:
            break
        decoded = again
    if unquote(decoded) != decoded:
        raise InvalidRequest("The path is encoded too many times.", code="invalid_path")
    if (
        not decoded
        or decoded.startswith("/")
        or "://" in decoded
        or _BAD_PATH.search(decoded)
        or ":" in decoded.split("/", 1)[0]
        or "@" in decoded.split("/", 1)[0]
    ):
        raise InvalidRequest("The path must be relative to the app's API.", code="invalid_path")
    # ``..;x`` is ``..`` with a path parameter to Tomcat and Jetty: the part before ``;`` counts.
    if any(s.partition(";")[0] in (".", "..") for s in decoded.split("/")):
        raise InvalidRequest("The path must not contain '.' or '..' segments.", code="invalid_path")
    base = urlsplit(base_url)
    url = base_url.rstrip("/") + "/" + quote(decoded, safe="/;,=+!$&'()*~:")
    target = urlsplit(url)
    if (target.scheme, target.netloc) != (base.scheme, base.netloc) or not target.path.startswith(
        base.path.rstrip("/") + "/"
    ):
        raise InvalidRequest("The path leaves the app's API.", code="invalid_path")
    return url


#: What the proxy reads of the account row (:class:`portal.credentials.SealedRow`): only the
#: caller's project's rows, for the caller's user id, of this app.
_OWNED = select(
    ConnectedAccount.id,
    ConnectedAccount.user_id,
    ConnectedAccount.app,
    ConnectedAccount.credentials,
).where(
    ConnectedAccount.project == bindparam("project"),
    ConnectedAccount.user_id == bindparam("user_id"),
    ConnectedAccount.app == bindparam("app"),
)
#: The caller's most recently modified account of the app (list_accounts' first).
LATEST_ACCOUNT = _OWNED.order_by(ConnectedAccount.modified_at.desc(), ConnectedAccount.id).limit(1)
#: ``?connectedAccountId=``, only when it is the caller's and of this app.
NAMED_ACCOUNT = _OWNED.where(ConnectedAccount.id == bindparam("id"))


@dataclass(frozen=True)
class AccountRow:
    """The columns of an account row the proxy needs (a :class:`credentials.SealedRow`)."""

    id: str
    user_id: str
    app: str
    credentials: bytes


#: ``(SQL text, positional parameter names or None, compiled)`` per dialect class, paramstyle
#: and statement: each statement is compiled once per process.
_COMPILED: dict[tuple[type, str, bool], tuple[str, tuple[str, ...] | None, Compiled]] = {}


def _compiled(engine: Engine, named: bool) -> tuple[str, tuple[str, ...] | None, Compiled]:
    dialect = engine.dialect
    key = (type(dialect), dialect.paramstyle, named)
    entry = _COMPILED.get(key)
    if entry is None:
        compiled = (NAMED_ACCOUNT if named else LATEST_ACCOUNT).compile(dialect=dialect)
        order = tuple(compiled.positiontup or ()) if compiled.positional else None
        entry = _COMPILED[key] = (str(compiled), order, compiled)
    return entry


def owned_account(
    state: PortalState, project: str, user_id: str, app: str, account_id: str | None
) -> AccountRow | None:
    """The account the proxy sends a call for: ``account_id`` when given, else the end user's
    most recently modified account of ``app`` (``list_accounts``' first) — either way only a
    row of ``project``, of ``user_id`` and of ``app``; ``None`` when there is none.

    The hot path of every proxied call: one ``SELECT`` of four columns on a pooled connection
    of the store's engine (its pool, pre-ping and SQLite pragmas apply), the statement
    compiled by SQLAlchemy once per process, run on the driver's cursor without an explicit
    ``BEGIN`` (one statement reads one consistent snapshot on its own, in SQLite and in
    PostgreSQL) and without SQLAlchemy's per-execution machinery: together about a tenth of a
    millisecond per call less. The connection goes back to the pool (rolled back) at once.

    :raises sqlite3.Error, psycopg.Error: the driver's, when the database fails.
    """
    sql, order, compiled = _compiled(state.store.engine, account_id is not None)
    bound: Any = compiled.construct_params(
        {"project": project, "user_id": user_id, "app": app, "id": account_id}
    )
    params: Any = tuple(bound[name] for name in order) if order is not None else bound
    connection = state.store.engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        finally:
            cursor.close()
    finally:
        connection.close()  # back to the pool, which rolls it back
    if row is None:
        return None
    return AccountRow(str(row[0]), str(row[1]), str(row[2]), bytes(row[3]))


def account_app(
    state: PortalState, app: App, account_id: str, owner: tuple[str, str] | None = None
) -> App:
    """``app`` resolved with the account's stored account-field values (:meth:`App.resolve`):
    its ``api_base_url`` is the one :func:`build_url` must pin this account's requests to.

    :param owner: ``(project, user_id)`` the account must belong to.
    :raises ResourceNotFound: no such account (of ``owner``, when given).
    """
    project, user_id = owner if owner is not None else (None, None)
    stored = credential_service.load(state, account_id, user_id, project=project)
    return app.resolve(stored.data.get("account_fields") or {})


@dataclass
class ProxyResponse:
    """What the proxy answers: upstream status, filtered headers, and the body: a list of
    one ``bytes`` when the upstream said a length of at most :data:`CHUNK_SIZE` and no
    content encoding (read at once, so the answer carries a ``Content-Length`` and goes out
    unchunked), else a stream of chunks."""

    status: int
    headers: list[tuple[str, str]]
    body: Iterable[bytes]


def forward(
    state: PortalState,
    app: App,
    account_id: str,
    *,
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: Mapping[str, str] | Headers,
    body: bytes | None,
    account: credential_service.SealedRow | None = None,
    owner: tuple[str, str] | None = None,
    allow_empty: bool = False,
) -> ProxyResponse:
    """Send one request for the account and stream the answer back.

    ``account`` is the row of ``account_id`` when the caller has just read it (the proxy view
    has, to check it is the end user's): its credentials are opened from it instead of read
    again (:func:`credentials.open_cached`: no decrypt when this process opened that very blob
    moments ago). Otherwise the row is read by id, and must belong to ``owner``
    (``(project, user_id)``) when given. ``allow_empty``: an empty ``path`` is the base URL
    itself (functions only, :func:`build_url`).

    The access token is refreshed (or, for client credentials, the grant re-run) first when it
    is about to expire; an upstream 401 forces one renewal and one retry, never more, and no
    retry at all when the token cannot be renewed.

    :raises InvalidRequest: the path is refused (no request is sent).
    :raises UpstreamRefused: 403 when an end-user-chosen host resolves to a private address.
    :raises UpstreamTimeout: 504 on a timeout; :raises UpstreamError: 502 when unreachable.
    :raises credentials.NeedsReauth: the account needs the end user to reconnect.
    """
    # The path is checked against the account's own base URL before anything is sent. One
    # read and one decrypt serve both that check and the (usually fresh) credentials.
    if account is not None and account.id == account_id:
        stored = credential_service.Credentials(
            account.id, account.user_id, account.app, credential_service.open_cached(state, account)
        )
    else:
        project, user_id = owner if owner is not None else (None, None)
        stored = credential_service.load(state, account_id, user_id, project=project)
    app = app.resolve(stored.data.get("account_fields") or {})
    url = build_url(app.api_base_url, path, allow_empty=allow_empty)
    pin = ensure_public_host(state, app, urlsplit(url).hostname or "")
    sent_headers = {k: v for k, v in headers.items() if k.lower() in FORWARDED_REQUEST_HEADERS}
    creds = credential_service.fresh(state, app, account_id, current=stored)
    started = time.perf_counter()
    response = _send(state, app, creds.data, method, url, query, sent_headers, body, pin)
    if response.status == 401 and creds.data.get("type") in credential_service.TOKEN_TYPES:
        log.info("proxy %s: upstream 401 for account %s; one forced refresh", app.slug, account_id)
        rejected = creds.data.get("access_token")
        renewed = credential_service.fresh(state, app, account_id, rejected_token=rejected)
        if renewed.data.get("access_token") != rejected:
            response.close()
            response.release_conn()
            creds = renewed
            response = _send(state, app, creds.data, method, url, query, sent_headers, body, pin)
    elapsed = (time.perf_counter() - started) * 1000
    # No path or query: they are the caller's and may carry anything. Inside a request the
    # line is the request's access line (one line per call); a job logs it on its own.
    note = (
        f"proxy {app.slug} {method} for account {account_id}: "
        f"upstream {response.status} in {elapsed:.1f} ms"
    )
    fields = {
        "app": app.slug,
        "account_id": account_id,
        "upstream_status": response.status,
        "upstream_ms": round(elapsed, 3),
    }
    if not logs.add_to_access_line(note, fields):
        log.info("%s", note, extra=fields)
    out_headers = response_headers(response.headers.items())
    if app.error_when is not None and method != "HEAD" and 200 <= response.status < 300:
        checked = _declared_failure(app, response, out_headers)
        if checked is not None:
            return checked
    if method != "HEAD" and response.status not in (204, 304) and response.status >= 200:
        length = response.headers.get("Content-Length", "")
        # Not when encoded: a small gzip body can decode to a thousand times its size, which
        # the stream below never holds in memory at once.
        encoded = response.headers.get("Content-Encoding", "identity").strip().lower()
        if length.isdigit() and int(length) <= CHUNK_SIZE and encoded in ("", "identity"):
            try:
                data = response.read(decode_content=True)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                response.close()
                response.release_conn()
                log.warning("proxy %s: upstream body failed (%s)", app.slug, type(exc).__name__)
                if isinstance(exc, urllib3.exceptions.TimeoutError):
                    raise UpstreamTimeout(f"{app.title} did not answer in time.") from exc
                raise UpstreamError(f"{app.title} could not be reached.") from exc
            response.release_conn()
            return ProxyResponse(response.status, out_headers, [data])

    def stream() -> Iterator[bytes]:
        done = False
        try:
            yield from response.stream(CHUNK_SIZE, decode_content=True)
            done = True
        finally:
            if not done:  # the caller went away mid-body: the connection cannot be reused
                response.close()
            response.release_conn()

    return ProxyResponse(response.status, out_headers, stream())


#: The most bytes of a 2xx JSON answer read to apply ``api.error_when`` (a larger body is
#: streamed through unchecked: providers that answer errors with a 2xx send them small).
ERROR_WHEN_MAX_BYTES = 1024 * 1024


def _declared_failure(
    app: App, response: urllib3.BaseHTTPResponse, out_headers: list[tuple[str, str]]
) -> ProxyResponse | None:
    """Apply the app's ``api.error_when`` to a 2xx JSON answer: read its body (at most
    :data:`ERROR_WHEN_MAX_BYTES`) and answer ``error_when.status`` with it unchanged when the
    body says failure (Slack's ``{"ok": false}``), else the 2xx with the body read.

    :returns: ``None`` when the answer is not JSON (streamed as usual).
    :raises UpstreamTimeout, UpstreamError: the body could not be read.
    """
    assert app.error_when is not None
    essence = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if essence != "application/json" and not essence.endswith("+json"):
        return None
    chunks: list[bytes] = []
    size = 0
    try:
        stream = response.stream(CHUNK_SIZE, decode_content=True)
        for chunk in stream:
            chunks.append(chunk)
            size += len(chunk)
            if size > ERROR_WHEN_MAX_BYTES:
                break
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        response.close()
        response.release_conn()
        if isinstance(exc, urllib3.exceptions.TimeoutError):
            raise UpstreamTimeout(f"{app.title} did not answer in time.") from exc
        raise UpstreamError(f"{app.title} could not be reached.") from exc
    if size > ERROR_WHEN_MAX_BYTES:

        def rest() -> Iterator[bytes]:
            done = False
            try:
                yield from chunks
                yield from stream
                done = True
            finally:
                if not done:
                    response.close()
                response.release_conn()

        return ProxyResponse(response.status, out_headers, rest())
    response.release_conn()
    data = b"".join(chunks)
    try:
        document = json.loads(data)
    except ValueError:
        return ProxyResponse(response.status, out_headers, [data])
    failure = app.error_when.failure(document)
    if failure is None:
        return ProxyResponse(response.status, out_headers, [data])
    log.info("proxy %s: the upstream's 2xx body reports a failure (api.error_when)", app.slug)
    return ProxyResponse(app.error_when.status, out_headers, [data])


def response_headers(upstream: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers of a proxied answer: the allow-listed ones of ``upstream`` (name, value pairs
    as received; see the module docstring), ``Link`` reduced to its pagination targets, one
    ``Content-Type`` (``application/octet-stream`` when missing), then
    :data:`RESPONSE_SECURITY_HEADERS` and, unless the type is inert, ``Content-Disposition:
    attachment``.
    """
    out: list[tuple[str, str]] = []
    content_type = ""
    for name, value in upstream:
        lower = name.lower()
        if lower == "content-type":
            # One only: a browser reads two (or a comma) as a list and takes the last type.
            if not content_type and value.strip():
                content_type = value
                out.append((name, value))
        elif lower in PASSED_RESPONSE_HEADERS or lower.startswith(PASSED_RESPONSE_PREFIXES):
            out.append((name, value))
        elif lower == "link":
            links = pagination_links(value)
            if links is not None:
                out.append(("Link", links))
    if not content_type:
        out.append(_OCTET_STREAM)
    out.extend(RESPONSE_SECURITY_HEADERS)
    if not is_inert(content_type):
        out.append(_ATTACHMENT)
    return out


def is_inert(content_type: str) -> bool:
    """True when a browser shows a ``content_type`` answer as data (JSON, plain text, CSV,
    raster images; :data:`INERT_CONTENT_TYPES`), never as a document that can run script.
    Parameters are ignored and case does not matter; a list (``a, b``) is not inert."""
    essence = content_type.partition(";")[0].strip().lower()
    return essence in INERT_CONTENT_TYPES or (
        essence.endswith("+json") and essence.count("/") == 1 and "," not in essence
    )


def pagination_links(value: str) -> str | None:
    """``value`` of an upstream ``Link`` header (RFC 8288 §3) reduced to its pagination links:
    ``'<https://api/x?page=2>; rel="next", <https://api/x?page=9>; rel="last"'``, or ``None``
    when none is left. A link is kept only when every one of its relation types is in
    :data:`PAGINATION_RELATIONS` and its target is plain printable ASCII; it is rewritten with
    its target and ``rel`` only (no ``anchor``, ``as`` or other parameter). A header this parser
    cannot read unambiguously (a second ``rel``, an unclosed quote or ``<``) gives ``None``.
    """
    kept: list[str] = []
    i, end = 0, len(value)
    while i < end:
        if value[i] in " \t,":
            i += 1
            continue
        if value[i] != "<":
            return None
        close = value.find(">", i + 1)
        if close < 0:
            return None
        target = value[i + 1 : close]
        i = close + 1
        rels: list[str] | None = None
        while i < end and value[i] != ",":
            if value[i] in " \t":
                i += 1
                continue
            if value[i] != ";":
                return None
            j = i + 1
            while j < end and value[j] not in "=;,":
                j += 1
            param = value[i + 1 : j].strip().lower()
            param_value = ""
            i = j
            if i < end and value[i] == "=":
                i += 1
                while i < end and value[i] in " \t":
                    i += 1
                if i < end and value[i] == '"':
                    chars: list[str] = []
                    i += 1
                    while i < end and value[i] != '"':
                        if value[i] == "\\":
                            i += 1
                        chars.append(value[i : i + 1])
                        i += 1
                    if i >= end:
                        return None
                    param_value = "".join(chars)
                    i += 1
                else:
                    j = i
                    while j < end and value[j] not in ";,":
                        j += 1
                    param_value = value[i:j].strip()
                    i = j
            if param == "rel":
                if rels is not None:
                    return None
                rels = param_value.lower().split()
        if (
            rels
            and PAGINATION_RELATIONS.issuperset(rels)
            and target
            and _LINK_TARGET_CHARS.issuperset(target)
        ):
            kept.append(f'<{target}>; rel="{" ".join(rels)}"')
    return ", ".join(kept) or None


_timeouts: dict[float, urllib3.Timeout] = {}


def _timeout(seconds: float) -> urllib3.Timeout:
    """The connect and read timeout of ``seconds`` (one object per value; urllib3 clones it
    per request)."""
    timeout = _timeouts.get(seconds)
    if timeout is None:
        timeout = _timeouts[seconds] = urllib3.Timeout(connect=seconds, read=seconds)
    return timeout


class UpstreamRefused(PortalHTTPError):
    """403: the app's API host, chosen by the end user, resolves to a non-public address."""

    code = 403
    error_code = "upstream_refused"


def ensure_public_host(state: PortalState, app: App, host: str) -> outbound.Pinned | None:
    """Resolve, check and pin an end-user-chosen API host (a ``hostname`` account field: a
    self-hosted instance); ``None`` for apps whose hosts are all fixed in the catalog (no
    lookup on their hot path).

    The name is resolved once (``state.outbound.resolver``); every address must be globally
    routable: loopback, private (RFC 1918, RFC 4193), link-local (cloud metadata at
    169.254.169.254), shared, reserved, unspecified and multicast addresses are refused, and
    so are IPv4-mapped and NAT64 addresses of those, unless inside
    ``PORTAL_OUTBOUND_ALLOWED_NETWORKS`` (:meth:`portal.outbound.Outbound.permitted`). The
    field's validator already refuses IP literals and ``localhost``; this catches names that
    point inside the portal's network (``db.corp.example``, a wildcard DNS service).

    The returned :class:`~portal.outbound.Pinned` address is the one :func:`_send` connects
    to (``Host``, SNI and the certificate check still use the name), so a DNS answer that
    changes after the check (rebinding) is never used.

    :raises UpstreamRefused: 403 when any resolved address is not permitted.
    :raises UpstreamError: 502 when the name does not resolve.
    """
    if not outbound.user_chosen(app):
        return None
    try:
        return outbound.Pinned(host, state.outbound.pick(host))
    except outbound.HostRefused as exc:
        log.warning("proxy %s: refused a host resolving to a non-public address", app.slug)
        raise UpstreamRefused(outbound.refused_message(app)) from exc
    except outbound.HostUnresolved as exc:
        log.warning("proxy %s: upstream host does not resolve", app.slug)
        raise UpstreamError(f"{app.title} could not be reached.") from exc


def _send(
    state: PortalState,
    app: App,
    data: dict[str, Any],
    method: str,
    url: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes | None,
    pin: outbound.Pinned | None = None,
) -> urllib3.BaseHTTPResponse:
    """One upstream request, the body not yet read (``preload_content=False``).

    With ``pin`` (an end-user-chosen host, :func:`ensure_public_host`) the connection goes to
    ``pin.address`` through a pool of the same :data:`_http` manager keyed by that address and
    the name (:func:`portal.outbound.pinned_pool`): ``Host``, SNI and the certificate check
    use the name, the name is never resolved again.
    """
    kwargs = request_kwargs(app, data)
    params = list(query) + list(kwargs["params"].items())
    if params:
        url += "?" + urlencode(params)
    # Case-insensitive: a caller header never doubles a default, the catalog's and the
    # credential's headers replace the caller's, HTTP Basic (RFC 7617) comes last.
    sent = urllib3.HTTPHeaderDict(DEFAULT_REQUEST_HEADERS)
    for name, value in headers.items():
        sent[name] = value
    for name, value in kwargs["headers"].items():
        sent[name] = value
    if kwargs["auth"] is not None:
        user, password = kwargs["auth"]
        sent.update(make_headers(basic_auth=f"{user}:{password}"))
    try:
        options: dict[str, Any] = {
            "body": body,
            "headers": sent,
            "redirect": False,
            "retries": False,
            "preload_content": False,
            "decode_content": True,
            "timeout": _timeout(float(state.config["PORTAL_HTTP_TIMEOUT"])),
            "assert_same_host": False,
        }
        target = urlsplit(url)
        request_target = target.path + ("?" + target.query if target.query else "")
        if pin is not None:
            scheme, _, port = outbound.url_host(url)
            sent["Host"] = outbound.host_header(scheme, pin.host, port)
            pool = outbound.pinned_pool(_http, scheme, pin, port)
        else:
            # The manager's pool for the URL's origin, asked directly: what PoolManager.urlopen
            # does for a request that follows no redirect, without parsing the URL again.
            pool = _http.connection_from_host(
                target.hostname, port=target.port, scheme=target.scheme
            )
        return pool.urlopen(method, request_target, **options)
    except urllib3.exceptions.NewConnectionError as exc:  # a ConnectTimeoutError subclass
        log.warning("proxy %s: upstream unreachable (%s)", app.slug, type(exc).__name__)
        raise UpstreamError(f"{app.title} could not be reached.") from exc
    except urllib3.exceptions.TimeoutError as exc:
        # The exception text names the URL, whose query may carry an API key: type only.
        log.warning("proxy %s: upstream timed out (%s)", app.slug, type(exc).__name__)
        raise UpstreamTimeout(f"{app.title} did not answer in time.") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        log.warning("proxy %s: upstream unreachable (%s)", app.slug, type(exc).__name__)
        raise UpstreamError(f"{app.title} could not be reached.") from exc
