"""Functions: typed actions of an app, invoked for an end user (the Integry surface).

A function (catalog ``functions:``) maps JSON-Schema ``params`` onto one HTTP request under the
app's API base URL: ``{param}`` placeholders in the path (URL-encoded), query and body
templates. Invocation validates ``params`` with jsonschema (Draft 2020-12) and returns the
seed's shapes (``../shared/seeds/002``):

* executed: ``{"network_code": <upstream status>, "output": <body or its output path>,
  "next_page": <cursor or "">}`` (``next_page`` only for paginated functions); a 2xx whose
  body the app's ``api.error_when`` marks as a failure reports ``error_when.status`` with the
  whole body as ``output`` and adds ``error`` and ``error_details``;
* not executed: ``{"error": <summary>, "error_details": [{"field", "message"}…]}``.

Executed calls are recorded (function, account, HTTP status, duration) and listed by
``flask portal function-calls``. Requests go through :mod:`portal.proxy`, so the SSRF guard,
credential injection and token refresh are the proxy's.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from jsonschema import Draft202012Validator
from requests.utils import parse_header_links

from . import oplog
from .accounts import list_accounts
from .catalog import App, Function, dotted
from .errors import InsufficientScope, InvalidRequest, ResourceNotFound
from .proxy import account_app, build_url, forward
from .store import FunctionCall, utcnow

if TYPE_CHECKING:
    from .state import PortalState

log = logging.getLogger(__name__)

_WHOLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MISSING = object()

#: ``params`` key that carries the pagination cursor (the seed's name).
NEXT_PAGE = "next_page"


def signature(function: Function) -> dict[str, Any]:
    """The function's signature, as ``getFunction`` returns it.

    :returns: ``{name, app, title, description, parameters: <JSON Schema>, paginated: bool,
        required_scopes: [str]}``; ``required_scopes`` are the scopes an account must have
        been granted for the function to run (else 403 ``insufficient_scope``): a host can
        ask for them up front with ``connectApp``/``reconnectApp``'s ``scopes``.
    """
    return {
        "name": function.name,
        "app": function.app,
        "title": function.title,
        "description": function.description,
        "parameters": dict(function.params),
        "paginated": function.pagination is not None,
        "required_scopes": list(function.required_scopes),
    }


def validate_params(function: Function, params: Any) -> list[dict[str, str]]:
    """Every violation of the function's params schema, each ``{"field", "message"}``.

    ``field`` is the dotted path of the offending value (``""`` for the object itself; for a
    missing required property, the property's own path).
    """
    if not isinstance(params, Mapping):
        return [{"field": "", "message": "params must be an object"}]
    checked = {k: v for k, v in params.items() if k != NEXT_PAGE}
    details = []
    validator = Draft202012Validator(dict(function.params))
    for error in sorted(validator.iter_errors(checked), key=lambda e: list(e.absolute_path)):
        path = [str(p) for p in error.absolute_path]
        if error.validator == "required":
            match = re.match(r"'([^']+)'", error.message)
            if match:
                path.append(match.group(1))
        details.append({"field": ".".join(path), "message": error.message})
    return details


def with_defaults(function: Function, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with the schema's top-level ``default`` values filled in."""
    filled = dict(params)
    for name, schema in function.params.get("properties", {}).items():
        if name not in filled and isinstance(schema, Mapping) and "default" in schema:
            filled[name] = schema["default"]
    return filled


def render(template: Any, params: Mapping[str, Any]) -> Any:
    """Fill a template: a string that is exactly ``{name}`` becomes the param's (typed) value,
    other ``{name}`` occurrences are formatted into the string; keys whose value is an absent
    param are dropped."""
    if isinstance(template, str):
        whole = _WHOLE.fullmatch(template)
        if whole:
            return params.get(whole.group(1), _MISSING)
        return _WHOLE.sub(lambda m: str(params.get(m.group(1), "")), template)
    if isinstance(template, Mapping):
        out = {k: render(v, params) for k, v in template.items()}
        return {k: v for k, v in out.items() if v is not _MISSING}
    if isinstance(template, list):
        return [v for v in (render(item, params) for item in template) if v is not _MISSING]
    return template


def _set_dotted(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value


def next_page_target(base_url: str, value: Any) -> tuple[str, list[tuple[str, str]]]:
    """The ``(path, query)`` of a next-page URL (``pagination.next_url``/``next_link``) under
    ``base_url`` (the account's API base URL): ``path`` relative to it, still percent-encoded
    (:func:`portal.proxy.build_url` checks it again), ``query`` as pairs.

    ``value`` is an absolute URL with the base URL's scheme, host and port (compared exactly,
    no user info) whose path is under the base URL's path, or a path starting with ``/`` on
    the base URL's origin (Salesforce's ``nextRecordsUrl``). Anything else, a URL on another
    host above all, is refused: the credential is only ever sent to the app's own API.

    :raises InvalidRequest: ``invalid_params``, naming ``next_page``.
    """
    refused = InvalidRequest(
        "params.next_page is not a page of this app's API.",
        code="invalid_params",
        details=[{"field": NEXT_PAGE, "message": "not a next page of this app's API"}],
    )
    if not isinstance(value, str) or not value or len(value) > 8192:
        raise refused
    if re.search(r"[\x00-\x20\x7f\\]", value):
        raise refused
    base = urlsplit(base_url)
    try:
        if value.startswith("/") and not value.startswith("//"):
            target = urlsplit(f"{base.scheme}://{base.netloc}{value}")
        else:
            target = urlsplit(value)
        target.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise refused from exc
    if (target.scheme, target.netloc) != (base.scheme, base.netloc) or target.fragment:
        raise refused
    prefix = base.path.rstrip("/") + "/"
    if target.path.rstrip("/") == prefix.rstrip("/"):
        path = ""
    elif target.path.startswith(prefix):
        path = target.path[len(prefix) :]
    else:
        raise refused
    return path, parse_qsl(target.query, keep_blank_values=True)


def build_request(
    function: Function, params: Mapping[str, Any], base_url: str | None = None
) -> dict[str, Any]:
    """The HTTP request a call makes: ``{method, path, query: [(k, v)…], body: bytes|None,
    content_type}``. ``path`` is relative to the app's API base URL.

    For a URL-based pagination (``next_url``/``next_link``) with ``params.next_page``, the
    path and query are those of that URL, held to ``base_url`` (:func:`next_page_target`).

    :raises InvalidRequest: a path param is missing, or a next-page URL is refused.
    """
    values = with_defaults(function, params)

    def path_value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise InvalidRequest(
                f"params.{name} is needed for the request path.",
                code="invalid_params",
                details=[{"field": name, "message": f"'{name}' is a required property"}],
            )
        return quote(str(values[name]), safe="")

    path = _WHOLE.sub(path_value, function.path).lstrip("/")
    query = render(function.query or {}, values)
    body = render(function.body, values) if function.body is not None else None
    cursor = params.get(NEXT_PAGE)
    next_pairs: list[tuple[str, str]] | None = None
    if function.pagination is not None and cursor not in (None, ""):
        if function.pagination.url_based:
            # The next URL carries the whole query (Graph's $skiptoken, GitHub's page=2).
            path, next_pairs = next_page_target(base_url or "", cursor)
        elif function.pagination.cursor_in == "body":
            body = dict(body or {})
            _set_dotted(body, function.pagination.cursor_param, cursor)
        else:
            query[function.pagination.cursor_param] = cursor
    query_items = [
        (
            k,
            json.dumps(v)
            if isinstance(v, (dict, list))
            else str(v).lower()
            if isinstance(v, bool)
            else str(v),
        )
        for k, v in query.items()
    ]
    if next_pairs is not None:
        query_items = next_pairs
    content_type = None
    raw: bytes | None = None
    if body is not None and function.method not in ("GET", "DELETE"):
        if function.body_format == "form":
            raw = urlencode(body).encode()
            content_type = "application/x-www-form-urlencoded"
        else:
            raw = json.dumps(body).encode()
            content_type = "application/json"
    return {
        "method": function.method,
        "path": path,
        "query": query_items,
        "body": raw,
        "content_type": content_type,
    }


def not_executed(summary: str, details: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The seed's not-executed result: ``{"error", "error_details"}``."""
    return {"error": summary, "error_details": details or []}


def check_scopes(function: Function, app: App, account_id: str, granted: Sequence[str]) -> None:
    """Refuse a call of ``function`` (of ``app``) with account ``account_id`` whose ``granted``
    scopes lack one of the function's ``required_scopes`` (nothing is sent upstream). The
    reconnect hint asks for the missing ones that are ``app``'s ``optional_scopes`` (the
    default scopes are asked for by every connect anyway).

    :raises InsufficientScope: 403 ``insufficient_scope`` (RFC 6750 §3.1): the message names
        the missing scopes; ``error_details`` hold one entry ``{field: "scopes", message,
        missing_scopes, connectedAccountId, reconnect: {method, path, body}}`` saying how to
        get them: a reconnect asking for them (``reconnectApp(app, id, {scopes})``).
    """
    missing = [s for s in function.required_scopes if s not in granted]
    if not missing:
        return
    names = " ".join(missing)
    optional = app.oauth2.optional_scopes if app.oauth2 is not None else ()
    raise InsufficientScope(
        f"This account was not granted the scopes {function.name} needs: {names}. "
        "Reconnect it asking for them.",
        details=[
            {
                "field": "scopes",
                "message": f"Missing scopes: {names}.",
                "missing_scopes": missing,
                "connectedAccountId": account_id,
                "reconnect": {
                    "method": "POST",
                    "path": f"/api/v1/connected-accounts/{account_id}/reconnect",
                    "body": {"scopes": [s for s in missing if s in optional]},
                },
            }
        ],
    )


def invoke(
    state: PortalState,
    function: Function,
    user_id: str,
    params: Any,
    connected_account_id: str | None = None,
    *,
    project: str,
) -> tuple[int, dict[str, Any]]:
    """Run ``function`` for ``user_id`` of ``project`` (an app key) with one of that user's
    accounts in that project; returns ``(http_status, result)``.

    ``http_status`` is 200 when the function executed (whatever the upstream answered: see
    ``network_code``), 400 for invalid params and 404 when no account is connected; those two
    are not executed and not recorded.

    :raises proxy.UpstreamTimeout: 504; :raises proxy.UpstreamError: 502 (recorded with
        status 0); :raises proxy.UpstreamRefused: 403 when the account's end-user-chosen host
        resolves to a non-public address (nothing sent; see :mod:`portal.outbound`);
        :raises credentials.NeedsReauth: 409; :raises InsufficientScope: 403, the account
        lacks one of the function's ``required_scopes`` (:func:`check_scopes`; not recorded).
    """
    app = state.app(function.app)
    if app is None:
        return 404, not_executed(f"The app {function.app!r} is not enabled.")
    details = validate_params(function, params)
    if details:
        return 400, not_executed("Invalid params.", details)
    with state.store.read() as db:
        granted = {
            a.id: list(a.scopes or [])
            for a in list_accounts(db, user_id, app.slug, project=project)
        }
    accounts = list(granted)
    if connected_account_id is None:
        if not accounts:
            return 404, not_executed(f"No {app.title} account is connected.")
        connected_account_id = accounts[0]
    elif connected_account_id not in accounts:
        return 404, not_executed("No such connected account.")
    check_scopes(function, app, connected_account_id, granted[connected_account_id])
    try:
        owned = account_app(state, app, connected_account_id, (project, user_id))
        spec = build_request(function, params, owned.api_base_url)
        # The proxy's SSRF guard, before recording, on the account's own base URL.
        build_url(owned.api_base_url, spec["path"], allow_empty=True)
    except InvalidRequest as exc:
        return 400, not_executed(
            "Invalid params.", exc.details or [{"field": "", "message": str(exc.description)}]
        )
    headers = {"Accept": "application/json"}
    if spec["content_type"]:
        headers["Content-Type"] = spec["content_type"]
    started = time.perf_counter()
    status = 0
    try:
        response = forward(
            state,
            app,
            connected_account_id,
            method=spec["method"],
            path=spec["path"],
            query=spec["query"],
            headers=headers,
            body=spec["body"],
            owner=(project, user_id),
            allow_empty=True,
        )
        status = response.status
        raw = b"".join(response.body)
    finally:
        shape = {
            "function": function.name,
            "method": spec["method"],
            "params": sorted(params) if isinstance(params, dict) else [],
        }
        _record(state, function, project, user_id, connected_account_id, status, started, shape)
    try:
        document: Any = json.loads(raw) if raw else None
    except ValueError:
        document = raw.decode("utf-8", "replace")
    output = (
        dotted(document, function.output) if function.output and 200 <= status < 300 else document
    )
    result: dict[str, Any] = {"network_code": status, "output": output}
    if function.pagination is not None:
        result["next_page"] = (
            _next_page(function, owned.api_base_url, document, response.headers)
            if 200 <= status < 300
            else ""
        )
    failure = app.error_when.failure(document) if app.error_when is not None else None
    if failure is not None and status == app.error_when.status:  # type: ignore[union-attr]
        # api.error_when: a 2xx whose body says failure (Slack's ok: false), reported by the
        # proxy as error_when.status; the provider's error text joins the result.
        result["error"] = f"{app.title} answered with an error: {failure}"
        result["error_details"] = [{"field": "", "message": failure}]
    return 200, result


def _next_page(
    function: Function, base_url: str, document: Any, headers: list[tuple[str, str]]
) -> str:
    """The ``next_page`` of an executed 2xx call: the cursor at ``next_cursor``, or the next
    page's URL (``next_url`` in the body, ``next_link`` in the ``Link`` header), which is
    given only when :func:`next_page_target` accepts it (else ``""``: a hostile or confused
    upstream cannot steer the next call, and its credential, to another host)."""
    pagination = function.pagination
    assert pagination is not None
    if not pagination.url_based:
        cursor = dotted(document, pagination.next_cursor)
        return "" if cursor in (None, False) else str(cursor)
    found: Any = None
    if pagination.next_url:
        if isinstance(document, Mapping) and pagination.next_url in document:
            found = document[pagination.next_url]  # "@odata.nextLink": a key with a dot
        else:
            found = dotted(document, pagination.next_url)
    else:
        for name, value in headers:
            if name.lower() == "link":
                found = next(
                    (
                        link.get("url")
                        for link in parse_header_links(value)
                        if "next" in str(link.get("rel", "")).split()
                    ),
                    None,
                )
                break
    if found in (None, ""):
        return ""
    try:
        next_page_target(base_url, found)
    except InvalidRequest:
        log.warning("function %s: the next page is not on the app's API; not given", function.name)
        return ""
    return str(found)


def _record(
    state: PortalState,
    function: Function,
    project: str,
    user_id: str,
    account_id: str,
    status: int,
    started: float,
    shape: dict[str, Any],
) -> None:
    duration_ms = int((time.perf_counter() - started) * 1000)
    call_id = "fc_" + secrets.token_urlsafe(12)
    with state.store.session() as db:
        oplog.record(
            db,
            project=project,
            kind="function_call",
            status="succeeded" if 200 <= status < 300 else "failed",
            user_id=user_id,
            app=function.app,
            account_id=account_id,
            duration_ms=duration_ms,
            ref_id=call_id,
            request=shape,
            error=None if 200 <= status < 300 else (f"HTTP {status}" if status else "unreachable"),
        )
        db.add(
            FunctionCall(
                id=call_id,
                project=project,
                function=function.name,
                app=function.app,
                user_id=user_id,
                account_id=account_id,
                http_status=status,
                duration_ms=duration_ms,
                created_at=utcnow(),
            )
        )


def find(state: PortalState, name: str) -> Function:
    """The enabled function called ``name``.

    :raises ResourceNotFound: unknown function, or its app is not enabled.
    """
    function = state.catalog.function(name)
    if function is None or state.app(function.app) is None:
        raise ResourceNotFound(f"No function called {name!r}.", code="unknown_function")
    return function
