"""Credential-injecting API proxy: the end user's request, sent to the app's API only.

``build_url`` is the SSRF guard: the caller names a *path* under the app's configured API base
URL (catalog ``api.base_url``); anything that could leave it — an absolute or scheme-relative
URL, user info (``@``), backslashes, control characters (CR/LF), or ``.``/``..`` segments in
any encoding — is refused before any outbound request. Redirects are never followed (a
redirect to another host would carry the credential with it).

Headers: only an allow-list of caller headers is forwarded (never ``Authorization``,
``Cookie``, ``Host`` or proxy headers); the credential is added as the catalog says; upstream
``Set-Cookie`` and hop-by-hop headers are dropped on the way back.
"""

from __future__ import annotations

import http.cookiejar
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

import requests
import requests.adapters

from . import credentials as credential_service
from .errors import InvalidRequest, PortalHTTPError
from .identity import request_kwargs

if TYPE_CHECKING:
    from .catalog import App
    from .extension import PortalState

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


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Accept and return no cookie: the pooled session is shared by every end user, so an
    upstream cookie must never be stored and replayed for someone else."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


def _pooled_session() -> requests.Session:
    session = requests.Session()
    session.cookies.set_policy(_NoCookies())
    # No environment proxies and no ~/.netrc credentials: only what the catalog says is sent.
    session.trust_env = False
    adapter = requests.adapters.HTTPAdapter(pool_connections=32, pool_maxsize=64)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


#: One connection pool for every upstream call (keep-alive saves a TCP, and often a TLS,
#: handshake per request). Thread-safe for this use: no cookies, no per-request state.
_http = _pooled_session()


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
) -> ProxyResponse:
    """Send one request for the account and stream the answer back.

    The access token is refreshed first when it is about to expire; an upstream 401 forces one
    refresh and one retry, never more.

    :raises InvalidRequest: the path is refused (no request is sent).
    :raises UpstreamTimeout: 504 on a timeout; :raises UpstreamError: 502 when unreachable.
    :raises credentials.NeedsReauth: the account needs the end user to reconnect.
    """
    url = build_url(app.api_base_url, path)
    sent_headers = {k: v for k, v in headers.items() if k.lower() in FORWARDED_REQUEST_HEADERS}
    creds = credential_service.fresh(state, app, account_id)
    response = _send(state, app, creds.data, method, url, query, sent_headers, body)
    if response.status_code == 401 and creds.data.get("type") == "oauth2":
        response.close()
        rejected = creds.data.get("access_token")
        creds = credential_service.fresh(state, app, account_id, rejected_token=rejected)
        response = _send(state, app, creds.data, method, url, query, sent_headers, body)
    out_headers = [
        (k, v) for k, v in response.headers.items() if k.lower() not in DROPPED_RESPONSE_HEADERS
    ]

    def stream() -> Iterator[bytes]:
        try:
            yield from response.iter_content(chunk_size=64 * 1024)
        finally:
            response.close()

    return ProxyResponse(response.status_code, out_headers, stream())


def _send(
    state: PortalState,
    app: App,
    data: dict[str, Any],
    method: str,
    url: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes | None,
) -> requests.Response:
    kwargs = request_kwargs(app, data)
    params = list(query) + list(kwargs["params"].items())
    try:
        return _http.request(
            method,
            url,
            params=params,
            headers={**headers, **kwargs["headers"]},
            auth=kwargs["auth"],
            data=body,
            allow_redirects=False,
            stream=True,
            timeout=float(state.config["PORTAL_HTTP_TIMEOUT"]),
        )
    except requests.Timeout as exc:
        raise UpstreamTimeout(f"{app.title} did not answer in time.") from exc
    except requests.RequestException as exc:
        raise UpstreamError(f"{app.title} could not be reached.") from exc
