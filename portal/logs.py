"""Structured logging: a request id per portal request, JSON lines, and a redaction safety net.

Every portal request gets an id: the caller's ``X-Request-Id`` when it matches
:data:`REQUEST_ID_PATTERN` (so a log line can never be forged through it), else a fresh
``secrets.token_hex(16)``. The id is echoed in the ``X-Request-Id`` response header and put on
every log record a portal handler sees during the request (:class:`RequestContextFilter`), with
the request's method and path (never its query string: tickets and codes travel there). Each
portal request ends with one access line on the ``portal.access`` logger.

``PORTAL_LOG_FORMAT`` (``"text"`` or ``"json"``) chooses the format of the handler the portal
attaches to its own ``portal`` logger. The handler is attached only when the host set the key
itself (:mod:`portal.service` and :mod:`portal.demo` do): a mounted portal leaves the host's
logging alone, and a host adds :func:`handler_filters` to its own handlers to get request ids
and redaction there too.

Redaction is a safety net, not the policy: portal code never logs a token, secret, code, state,
user hash, sealed blob or password. :class:`RedactingFilter` masks anything in the final message
(and traceback) that looks like one anyway: ``Bearer``/``Basic`` credentials, ``Authorization``
headers, and ``access_token=``, ``refresh_token=``, ``code=``, ``client_secret=``, ``state=``
(…) pairs in query strings, form bodies and JSON.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from flask import Blueprint, Flask, g, has_request_context, request
from werkzeug.wrappers import Response

#: Header carrying the request id, in and out.
REQUEST_ID_HEADER = "X-Request-Id"
#: An incoming request id is kept only if it matches this (8-64 characters, no spaces, no
#: control characters); anything else is replaced by a generated one.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{8,64}")
#: The formats ``PORTAL_LOG_FORMAT`` accepts.
LOG_FORMATS = ("text", "json")
#: Text-format layout of the portal handler.
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
#: What replaces a masked value.
REDACTED = "[redacted]"

access_log = logging.getLogger("portal.access")

#: Names of the parameters whose values are masked in ``name=value`` and ``"name": "value"``.
SECRET_NAMES = (
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "client_assertion",
    "code",
    "code_verifier",
    "state",
    "ticket",
    "token",
    "password",
    "passwd",
    "secret",
    "api_key",
    "apikey",
    "hash",
    "userHash",
    "user_hash",
    "session_token",
    "embed_token",
)
_NAMES = "|".join(re.escape(n) for n in sorted(SECRET_NAMES, key=len, reverse=True))
#: ``(pattern, replacement)`` pairs applied in order to the final message.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization / Proxy-Authorization / Cookie headers, API key and named access-token
    # headers (X-Shopify-Access-Token), in text or in a dict's repr.
    (
        re.compile(
            r"""(?i)((?:proxy-)?authorization|cookie|x-api-key|x-[a-z0-9-]*access-token)"""
            r"""(["']?\s*[:=]\s*["']?)"""
            r"""(?![\s"']*\[redacted\])[^"'\r\n,}]+"""
        ),
        r"\1\2" + REDACTED,
    ),
    # RFC 6750 bearer and RFC 7617 basic credentials anywhere.
    (re.compile(r"(?i)\b(bearer)(\s+)(?!\[redacted\])[A-Za-z0-9._~+/=-]+"), r"\1\2" + REDACTED),
    (
        re.compile(r"\b((?i:basic))(\s+)(?=[A-Za-z0-9+/]*[A-Z0-9+/=])[A-Za-z0-9+/]{8,}={0,2}"),
        r"\1\2" + REDACTED,
    ),
    # name=value (query strings, form bodies, repr of kwargs).
    (
        re.compile(
            rf"""(?i)(?<![A-Za-z0-9_])({_NAMES})(=)(?![\s"']*\[redacted\])[^&\s"',;)}}\]]+"""
        ),
        r"\1\2" + REDACTED,
    ),
    # name: value, name: 'value' (reprs and prose, e.g. Authlib's "Using code_verifier: '…'").
    (
        re.compile(
            rf"""(?i)(?<![A-Za-z0-9_"'])({_NAMES})(\s*:\s*)(['"]?)(?![\s"']*\[redacted\])[^\s'",;)}}\]&]+"""
        ),
        r"\1\2\3" + REDACTED,
    ),
    # "name": "value" (JSON, Python reprs).
    (
        re.compile(rf"""(?i)(["']({_NAMES})["']\s*:\s*["'])(?![\s"']*\[redacted\])[^"']*"""),
        r"\1" + REDACTED,
    ),
)

#: LogRecord attributes that are not ``extra`` fields.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "method",
    "path",
    "taskName",
}


#: Words one of which every rule of :data:`_RULES` needs to find in a text (lower case): an
#: ASCII text holding none of them (the access line of most requests, the portal's own ids)
#: has nothing to mask and is left as it is without running the rules.
TRIGGER_WORDS = tuple(
    sorted(
        {"authorization", "cookie", "api-key", "access-token", "bearer", "basic"}
        | {n.lower() for n in SECRET_NAMES}
    )
)


#: Any of :data:`TRIGGER_WORDS` (one search instead of a scan per word: every log line is tested).
_TRIGGER = re.compile("|".join(re.escape(word) for word in TRIGGER_WORDS))


def may_hold_secret(text: str) -> bool:
    """False only when a rule of :func:`redact` cannot match in ``text``: it is ASCII and
    contains none of :data:`TRIGGER_WORDS` in any case. Non-ASCII text always counts (the
    rules' case-insensitive matching also takes ``\u017f`` for ``s``, ``\u212a`` for ``k``)."""
    if not text.isascii():
        return True
    return _TRIGGER.search(text.lower()) is not None


def redact(text: str) -> str:
    """``text`` with everything that looks like a credential replaced by :data:`REDACTED`."""
    if not may_hold_secret(text):
        return text
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """``text`` with control characters (CR, LF, …) as ``\\xNN``/``\\uNNNN``: a caller's path can
    never start a forged line in a text log."""
    if text.isprintable():  # none of _UNPRINTABLE's characters is printable: nothing to do
        return text
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


# --------------------------------------------------------------------------- request context


def valid_request_id(value: str | None) -> bool:
    """True when ``value`` is an acceptable incoming request id (:data:`REQUEST_ID_PATTERN`)."""
    return value is not None and REQUEST_ID_PATTERN.fullmatch(value) is not None


def request_id() -> str | None:
    """The current request's id (created on first use); ``None`` outside a request."""
    if not has_request_context():
        return None
    current: str | None = g.get("_portal_request_id")
    if current is None:
        incoming = request.headers.get(REQUEST_ID_HEADER)
        current = incoming if valid_request_id(incoming) else secrets.token_hex(16)
        g._portal_request_id = current
        g.setdefault("_portal_request_start", time.perf_counter())
    return current


def begin_request() -> None:
    """``before_request`` hook: start the clock and fix the request id."""
    g._portal_request_start = time.perf_counter()
    request_id()


def end_request(response: Response) -> Response:
    """``after_request`` hook: echo the request id (unless the response already carries one,
    as a proxied upstream answer may) and write the access line.

    The access line is ``portal.access`` at INFO (WARNING for 5xx) with ``extra`` fields
    ``status`` and ``duration_ms`` (time until the response object is ready; a streamed body
    is not included), followed by what the request's services added
    (:func:`add_to_access_line`: the proxy's upstream status and time). The record carries the
    request's id, method and path already (:class:`RequestContextFilter` does not look again).
    """
    rid = request_id()
    if rid is not None:
        # setdefault: a proxied upstream answer keeps its own X-Request-Id (it passes through
        # as it is); the portal's id is in the access line either way.
        response.headers.setdefault(REQUEST_ID_HEADER, rid)
    status = response.status_code
    level = logging.WARNING if status >= 500 else logging.INFO
    if not access_log.isEnabledFor(level):
        return response
    started = g.get("_portal_request_start")
    duration = (time.perf_counter() - started) * 1000 if started is not None else 0.0
    method, path = request.method, request.path
    extra: dict[str, Any] = {"request_id": rid, "method": method, "path": path}
    extra["status"], extra["duration_ms"] = status, round(duration, 3)
    line = "%s %s %d %.1f ms"
    args: list[Any] = [printable(method), printable(path), status, duration]
    notes: list[str] | None = g.get("_portal_access_notes")
    if notes is not None:
        extra.update(g._portal_access_fields)
        line += "; %s"
        args.append("; ".join(notes))
    access_log.log(level, line, *args, extra=extra)
    return response


def add_to_access_line(note: str, fields: dict[str, Any]) -> bool:
    """Say ``note`` (a finished sentence) in this request's access line instead of a line of
    its own (one log line per proxied call, not two), with ``fields`` among the line's
    ``extra`` fields (a later note's field of the same name wins). ``note`` is redacted with
    the rest of the line: it must not carry what the caller sent (no path, no query).

    :returns: ``False`` outside a portal request (there is no access line to come): the caller
        logs ``note`` itself.
    """
    if not has_request_context() or g.get("_portal_request_start") is None:
        return False
    notes: list[str] | None = g.get("_portal_access_notes")
    if notes is None:
        g._portal_access_notes = notes = []
        g._portal_access_fields = {}
    notes.append(note)
    g._portal_access_fields.update(fields)
    return True


def install(bp: Blueprint) -> None:
    """Add the request-id and access-log hooks to ``bp`` (first ``before_request``, so even a
    preflight answer is timed)."""
    bp.before_request_funcs.setdefault(None, []).insert(0, begin_request)
    bp.after_request(end_request)


# --------------------------------------------------------------------------- filters, formatter


class RequestContextFilter(logging.Filter):
    """Puts ``request_id``, ``method`` and ``path`` (no query string) on every record handled
    during a request; ``None`` outside one. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            if has_request_context():
                record.request_id = request_id()
                record.method = request.method
                record.path = request.path
            else:
                record.request_id = record.method = record.path = None
        return True


class RedactingFilter(logging.Filter):
    """Masks credential-looking values (:func:`redact`) in the record's final message, its
    traceback and its string ``extra`` fields. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw text
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _RECORD_FIELDS and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


def handler_filters() -> list[logging.Filter]:
    """The filters a portal handler carries: request context first, then redaction."""
    return [RequestContextFilter(), RedactingFilter()]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (ISO-8601 UTC), ``level``, ``logger``, ``message``,
    ``request_id``, ``method``, ``path``, then ``extra`` fields (``status`` and
    ``duration_ms`` on access lines; names starting with ``_`` are left out) and ``exc_info``
    (the traceback text) when present. Non-JSON values are written as ``str(value)``."""

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            RequestContextFilter().filter(record)
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "method": getattr(record, "method", None),
            "path": getattr(record, "path", None),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = record.stack_info
        return json.dumps(entry, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
        return super().format(record)


def formatter_for(log_format: str) -> logging.Formatter:
    """The formatter of ``PORTAL_LOG_FORMAT`` ``log_format``.

    :raises ValueError: not one of :data:`LOG_FORMATS`.
    """
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return _TextFormatter(TEXT_FORMAT)
    raise ValueError(f"PORTAL_LOG_FORMAT must be one of {LOG_FORMATS}, not {log_format!r}.")


class PortalLogHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """The handler the portal attaches to its ``portal`` logger (stderr by default)."""

    def __init__(self, log_format: str, stream: Any = None) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        #: Without a stream of its own, write to whatever ``sys.stderr`` is at each record
        #: (a test runner or a daemon may replace it after start-up).
        self._follow_stderr = stream is None
        self.setFormatter(formatter_for(log_format))
        for f in handler_filters():
            self.addFilter(f)

    def setStream(self, stream: Any) -> Any:
        """Write to ``stream`` from now on; ``None``: follow ``sys.stderr`` again. Returns the
        previous stream."""
        self._follow_stderr = stream is None
        return super().setStream(sys.stderr if stream is None else stream)

    def emit(self, record: logging.LogRecord) -> None:
        if self._follow_stderr and self.stream is not sys.stderr:
            self.stream = sys.stderr
        super().emit(record)


_SECRET_NAMES_LOWER = frozenset(n.lower() for n in SECRET_NAMES)
#: The query string of a URL inside a log line: from ``?`` to the next space (the request line's
#: ``HTTP/1.1``), quote or fragment.
_QUERY_IN_TEXT = re.compile(r"""\?([^\s"'#]*)""")


def _redact_query(match: re.Match[str]) -> str:
    pieces = re.split(r"([&;])", match.group(1))
    for i, piece in enumerate(pieces):
        name, eq, _ = piece.partition("=")
        # The name as the server reads it: percent-decoded, and compared case-insensitively.
        if eq and unquote_plus(name).strip().lower() in _SECRET_NAMES_LOWER:
            pieces[i] = f"{name}={REDACTED}"
            # A ";" inside a value is not a separator for most servers: mask up to the next "&".
            j = i + 1
            while j + 1 < len(pieces) and pieces[j] == ";":
                pieces[j] = pieces[j + 1] = ""
                j += 2
    return "?" + "".join(pieces)


def redact_query_values(text: str) -> str:
    """``text`` with the value of every query parameter named in :data:`SECRET_NAMES` replaced
    by :data:`REDACTED`, in each ``?query`` of it (a request line, a URL).

    Names are compared as a server reads them (percent-decoded, any case), and a value is
    masked whole, up to the next ``&`` (RFC 3986 §3.4 leaves ``;`` inside a value).
    """
    return _QUERY_IN_TEXT.sub(_redact_query, text)


class AccessLineFilter(RedactingFilter):
    """A :class:`RedactingFilter` for the Werkzeug development server's logger: its access lines
    (``"GET /portal/oauth/x/callback?code=…&state=… HTTP/1.1" 302 -``, printed by ``flask run``
    and ``app.run()``) carry the whole query string. Every string argument of the record has
    its secret query values masked (:func:`redact_query_values`) before the message is built
    and redacted as usual. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_query_values(a) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = redact_query_values(record.msg)
        return super().filter(record)


#: Loggers of the libraries the portal drives as an OAuth client that log credentials at DEBUG
#: (Authlib logs the PKCE verifier and token responses). They get a :class:`RedactingFilter`
#: of their own, so no handler anywhere (the host's included) sees those values.
DEPENDENCY_LOGGERS = (
    "authlib.integrations.base_client.sync_app",
    "authlib.integrations.base_client.async_app",
)
#: Werkzeug's logger: the development server's access lines (``flask run``, ``app.run()``, the
#: demo). It gets an :class:`AccessLineFilter`.
WERKZEUG_LOGGER = "werkzeug"


def protect_dependencies() -> None:
    """Add a :class:`RedactingFilter` to each of :data:`DEPENDENCY_LOGGERS` and an
    :class:`AccessLineFilter` to :data:`WERKZEUG_LOGGER` (once each). A logger's own filters
    run before any handler, so the values never reach the host's handlers either."""
    for name in DEPENDENCY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
    werkzeug_logger = logging.getLogger(WERKZEUG_LOGGER)
    if not any(isinstance(f, AccessLineFilter) for f in werkzeug_logger.filters):
        werkzeug_logger.addFilter(AccessLineFilter())


def configure(app: Flask, explicit: bool) -> PortalLogHandler | None:
    """Attach (or re-format) the process's one :class:`PortalLogHandler` on the ``portal``
    logger when ``PORTAL_LOG_FORMAT`` was set by the host (``explicit``); the root logger is
    never touched. The ``portal`` logger's level becomes INFO if it was unset. Always:
    :func:`protect_dependencies`.

    :raises ValueError: ``PORTAL_LOG_FORMAT`` is not ``"text"`` or ``"json"``.
    """
    log_format = app.config["PORTAL_LOG_FORMAT"]
    formatter = formatter_for(log_format)
    protect_dependencies()
    if not explicit:
        return None
    logger = logging.getLogger("portal")
    for handler in logger.handlers:
        if isinstance(handler, PortalLogHandler):
            handler.setFormatter(formatter)
            return handler
    handler = PortalLogHandler(log_format)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    return handler
