"""Credential-injecting API proxy: the end user's request, sent to the app's API only.

``build_url`` is the SSRF guard: the caller names a *path* under the app's configured API base
URL (catalog ``api.base_url``); anything that could leave it — an absolute or scheme-relative
URL, user info (``@``), backslashes, control characters (CR/LF), or ``.``/``..`` segments in
any encoding — is refused before any outbound request. Redirects are never followed (a
redirect to another host would carry the credential with it).

For apps with account fields the base URL is the one resolved with the account's own values
(``https://{subdomain}.zendesk.com/api/v2`` -> ``https://acme.zendesk.com/api/v2``), and the
request is pinned to it exactly as to a fixed one.

Headers: only an allow-list of caller headers is forwarded (never ``Authorization``,
``Cookie``, ``Host`` or proxy headers); the app's static ``api.headers`` are added and win over
caller headers of the same name; the credential is added last, as the catalog says; upstream
``Set-Cookie`` and hop-by-hop headers are dropped on the way back.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlencode, urlsplit

import certifi
import urllib3
from urllib3.util import make_headers

from . import credentials as credential_service
from .errors import InvalidRequest, PortalHTTPError
from .identity import request_kwargs

if TYPE_CHECKING:
    from .catalog import App
    from .extension import PortalState

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
#: Upstream headers never passed back (RFC 9110 §7.6.1 hop-by-hop, cookies, and length/encoding
#: which no longer match once the body is re-streamed decoded).
DROPPED_RESPONSE_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "set-cookie",
        "set-cookie2",
        "content-length",
        "content-encoding",
        "www-authenticate",
    }
)
_BAD_PATH = re.compile(r"[\x00-\x20\x7f\\@]")


#: One connection pool for every upstream call (keep-alive saves a TCP, and often a TLS,
#: handshake per request), thread-safe. urllib3 directly rather than ``requests``: the proxy
#: needs none of its per-call preparation (cookie jars, hooks, environment merging), which
#: cost about a millisecond a call. It keeps no cookies, reads no environment proxies or
#: ``~/.netrc``, never follows a redirect (a redirect to another host would carry the
#: credential with it) and never retries. Certificates are checked against certifi's bundle,
#: as ``requests`` did.
_http = urllib3.PoolManager(
    num_pools=32, maxsize=64, cert_reqs="CERT_REQUIRED", ca_certs=certifi.where()
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


def build_url(base_url: str, path: str) -> str:
    """``base_url`` joined with the caller's ``path``, or :class:`InvalidRequest`.

    ``path`` is what follows ``/proxy/<app>/`` (already percent-decoded once by the router):
    it is decoded until stable, checked, then re-quoted, so ``%2e%2e%2f`` is caught as ``../``.

    :raises InvalidRequest: ``invalid_path`` for anything that could leave ``base_url``.
    """
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
    ):
        raise InvalidRequest("The path must be relative to the app's API.", code="invalid_path")
    segments = decoded.split("/")
    if any(s in (".", "..") for s in segments):
        raise InvalidRequest("The path must not contain '.' or '..' segments.", code="invalid_path")
    base = urlsplit(base_url)
    url = base_url.rstrip("/") + "/" + quote(decoded, safe="/;,=+!$&'()*~:")
    target = urlsplit(url)
    if (target.scheme, target.netloc) != (base.scheme, base.netloc) or not target.path.startswith(
        base.path.rstrip("/") + "/"
    ):
        raise InvalidRequest("The path leaves the app's API.", code="invalid_path")
    return url


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
    """What the proxy answers: upstream status, filtered headers, and the body as a stream."""

    status: int
    headers: list[tuple[str, str]]
    body: Iterator[bytes]


def forward(
    state: PortalState,
    app: App,
    account_id: str,
    *,
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes | None,
    account: credential_service.SealedRow | None = None,
    owner: tuple[str, str] | None = None,
) -> ProxyResponse:
    """Send one request for the account and stream the answer back.

    ``account`` is the row of ``account_id`` when the caller has just read it (the proxy view
    has, to check it is the end user's): its credentials are opened from it instead of read
    again (:func:`credentials.open_cached`: no decrypt when this process opened that very blob
    moments ago). Otherwise the row is read by id, and must belong to ``owner``
    (``(project, user_id)``) when given.

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
    url = build_url(app.api_base_url, path)
    if any(spec.format == "hostname" for spec in app.account_fields):
        ensure_public_host(app, urlsplit(url).hostname or "")
    sent_headers = {k: v for k, v in headers.items() if k.lower() in FORWARDED_REQUEST_HEADERS}
    creds = credential_service.fresh(state, app, account_id, current=stored)
    started = time.perf_counter()
    response = _send(state, app, creds.data, method, url, query, sent_headers, body)
    if response.status == 401 and creds.data.get("type") in credential_service.TOKEN_TYPES:
        log.info("proxy %s: upstream 401 for account %s; one forced refresh", app.slug, account_id)
        rejected = creds.data.get("access_token")
        renewed = credential_service.fresh(state, app, account_id, rejected_token=rejected)
        if renewed.data.get("access_token") != rejected:
            response.close()
            response.release_conn()
            creds = renewed
            response = _send(state, app, creds.data, method, url, query, sent_headers, body)
    elapsed = (time.perf_counter() - started) * 1000
    # No path or query: they are the caller's and may carry anything.
    log.info(
        "proxy %s %s for account %s: upstream %d in %.1f ms",
        app.slug,
        method,
        account_id,
        response.status,
        elapsed,
        extra={
            "app": app.slug,
            "account_id": account_id,
            "upstream_status": response.status,
            "upstream_ms": round(elapsed, 3),
        },
    )
    out_headers = [
        (k, v) for k, v in response.headers.items() if k.lower() not in DROPPED_RESPONSE_HEADERS
    ]

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


class UpstreamRefused(PortalHTTPError):
    """403: the app's API host, chosen by the end user, resolves to a non-public address."""

    code = 403
    error_code = "upstream_refused"


def ensure_public_host(app: App, host: str) -> None:
    """Refuse an end-user-chosen API host (a ``hostname`` account field: a self-hosted
    instance) that resolves to an address which is not globally routable: loopback, private
    (RFC 1918, RFC 4193), link-local (cloud metadata at 169.254.169.254), shared, reserved or
    multicast. The field's validator already refuses IP literals and ``localhost``; this catches
    names that point inside the portal's network (``db.corp.example``, a wildcard DNS service).

    A name that does not resolve is left to the request itself (502). This check does not pin
    the connection to the address it checked, so a DNS answer that changes between the two
    lookups (rebinding) is not covered; run the portal behind an egress firewall for that.

    :raises UpstreamRefused: 403 when any resolved address is not global.
    """
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global or address.is_multicast:
            log.warning("proxy %s: refused a host resolving to a non-public address", app.slug)
            raise UpstreamRefused(
                f"{app.title}: the host of this account points to a private network address."
            )


def _send(
    state: PortalState,
    app: App,
    data: dict[str, Any],
    method: str,
    url: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes | None,
) -> urllib3.BaseHTTPResponse:
    """One upstream request, the body not yet read (``preload_content=False``)."""
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
    timeout = float(state.config["PORTAL_HTTP_TIMEOUT"])
    try:
        return _http.request(
            method,
            url,
            body=body,
            headers=sent,
            redirect=False,
            retries=False,
            preload_content=False,
            decode_content=True,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
        )
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
