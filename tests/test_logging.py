"""Structured logging (portal/logs.py): request ids, JSON lines, access lines, and no secret in
any log line while the whole flow runs over real HTTP against the sandbox stack."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urljoin, urlsplit

import pytest
import requests
from conftest import Api, Browser, Consent, connect_sandbox, new_session, parse_form, stack_database
from flask import current_app, has_app_context

from portal import user_hash
from portal.credentials import open_sealed
from portal.demo import (
    DEMO_APP_KEY,
    DEMO_APP_SECRET,
    DEMO_CLIENT_SECRET,
    DEMO_ENCRYPTION_KEY,
    DemoStack,
)
from portal.logs import (
    REDACTED,
    JsonFormatter,
    PortalLogHandler,
    RedactingFilter,
    RequestContextFilter,
    handler_filters,
    redact,
)
from portal.store import ConnectedAccount

SECRET_KEY = "demo-secret-key-change-me"  # portal_config's SECRET_KEY
API_KEY = "sk_demo_ada"
BASIC_PASSWORD = "lovelace"
#: The sandbox provider's Flask app name (its logs are the provider's, not the portal's).
SANDBOX_APP = "portal.sandbox"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


class Capture(logging.Handler):
    """Keeps every record it sees once, formatted as JSON *before* any redaction, from server
    threads only (the test's own client-side logs, e.g. urllib3 naming a connect URL with its
    ticket, are not the portal's)."""

    def __init__(self, test_thread: int) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.test_thread = test_thread
        self.addFilter(RequestContextFilter())
        self.setFormatter(JsonFormatter())
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.test_thread or getattr(record, "_captured", False):
            return
        if has_app_context() and current_app.name == SANDBOX_APP:
            return  # the provider's own logs (another company's server in real life)
        record._captured = True
        line = self.format(record)
        with self._lock2:
            self.lines.append(line)


@pytest.fixture(scope="module")
def json_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    """A stack of its own whose portal logs JSON (PORTAL_LOG_FORMAT set explicitly)."""
    tmp = tmp_path_factory.mktemp("logging")
    running = DemoStack(0, 0, 0, PORTAL_LOG_FORMAT="json", **stack_database(tmp, "p")).start()
    yield running
    running.stop()


@pytest.fixture
def logs(json_stack: DemoStack) -> Iterator[dict[str, Any]]:
    """Everything logged while the test runs: ``raw`` (root and ``portal`` trees at DEBUG,
    werkzeug, before redaction) and ``handler`` (what the portal's own handler wrote)."""
    portal_logger = logging.getLogger("portal")
    handler = next(h for h in portal_logger.handlers if isinstance(h, PortalLogHandler))
    stream = io.StringIO()
    handler.setStream(stream)
    capture = Capture(threading.get_ident())
    root = logging.getLogger()
    saved = {name: logging.getLogger(name).level for name in ("", "portal", "werkzeug", "urllib3")}
    for name in saved:
        logging.getLogger(name).setLevel(logging.DEBUG)
    # First in the portal logger's list, so it sees records before the portal handler's
    # redaction filter rewrites them; the root copy catches every other logger.
    portal_logger.handlers.insert(0, capture)
    root.addHandler(capture)
    result: dict[str, Any] = {"capture": capture, "stream": stream}
    try:
        yield result
    finally:
        portal_logger.removeHandler(capture)
        root.removeHandler(capture)
        handler.setStream(None)  # back to following sys.stderr
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def all_lines(logs: dict[str, Any]) -> list[str]:
    """Raw captured lines plus the portal handler's own output lines."""
    handler_lines = [line for line in logs["stream"].getvalue().splitlines() if line]
    return [*logs["capture"].lines, *handler_lines]


def encoded_forms(secret: str) -> set[str]:
    """``secret`` as it could show up in a log: plain, URL-encoded, base64 (std and URL-safe)."""
    raw = secret.encode()
    forms = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        json.dumps(secret)[1:-1],
    }
    return {f for f in forms if len(f) >= 6}


def leaks(lines: list[str], secrets_: dict[str, str]) -> list[str]:
    """``"<name>: <line>"`` for every line holding any form of any secret."""
    found = []
    for name, secret in secrets_.items():
        for form in encoded_forms(secret):
            for line in lines:
                if form in line:
                    found.append(f"{name}: {line[:300]}")
    return found


class RecordingBrowser(Browser):
    """A popup browser that remembers the state it was sent with and the code it got back."""

    def __init__(self) -> None:
        super().__init__()
        self.consents: list[Consent] = []
        self.authorize_urls: list[str] = []

    def consent(
        self, authorize_url: str, decision: str = "allow", user: str | None = None
    ) -> Consent:
        self.authorize_urls.append(authorize_url)
        result = super().consent(authorize_url, decision, user)
        self.consents.append(result)
        return result


def connect_form(api: Api, app: str, fields: dict[str, str]) -> str:
    """Connect an API-key or Basic app through its form; returns the ticket used."""
    browser = Browser()
    ticket = api.ticket(app)
    page = browser.http.get(ticket["connect_url"], timeout=10)
    assert page.status_code == 200, page.text[:300]
    form = parse_form(page.text)
    done = browser.http.post(
        urljoin(ticket["connect_url"], form["action"]),
        data={**form["fields"], **fields},
        timeout=10,
    )
    assert done.status_code == 200, done.text[:300]
    return str(ticket["ticket"])


def sealed_secrets(stack: DemoStack, user: str) -> dict[str, str]:
    """The user's stored access/refresh tokens and sealed blobs, opened the portal's way."""
    state = stack.portal_app.extensions["portal"]
    found: dict[str, str] = {}
    with stack.portal_app.app_context(), state.store.session() as db:
        rows = db.query(ConnectedAccount).filter(ConnectedAccount.user_id == user).all()
        for row in rows:
            data = open_sealed(state, row)
            blob = row.credentials
            found[f"sealed blob {row.id}"] = blob if isinstance(blob, str) else blob.decode()
            for key in ("access_token", "refresh_token", "api_key", "password"):
                if data.get(key):
                    found[f"{key} of {row.app} {row.id}"] = str(data[key])
    return found


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


# --------------------------------------------------------------------------- the whole flow


@pytest.mark.security("no secret in logs")
def test_whole_flow_logs_json_with_request_ids_and_no_secret(
    json_stack: DemoStack, logs: dict[str, Any]
) -> None:
    stack = json_stack
    requests.post(f"{stack.sandbox.url}/_sandbox/reset", timeout=5).raise_for_status()
    user = f"log-user-{uuid.uuid4().hex[:10]}"
    secrets_: dict[str, str] = {
        "app secret": DEMO_APP_SECRET,
        "client secret": DEMO_CLIENT_SECRET,
        "SECRET_KEY": SECRET_KEY,
        "encryption key": DEMO_ENCRYPTION_KEY,
        "user hash": user_hash(DEMO_APP_SECRET, user),
        "API key": API_KEY,
        "basic password": BASIC_PASSWORD,
        "basic credentials": base64.b64encode(f"ada:{BASIC_PASSWORD}".encode()).decode(),
    }

    # Session tokens: the browser way (hash) and server to server (app secret).
    api = new_session(stack, user)
    secrets_["session token"] = api.token
    minted = requests.post(
        f"{stack.portal.url}/portal/api/v1/sessions",
        json={"userId": user, "origin": stack.host.url},
        headers={"Authorization": f"Bearer {DEMO_APP_SECRET}"},
        timeout=10,
    )
    assert minted.status_code == 201, minted.text
    secrets_["server-minted session token"] = minted.json()["token"]

    # OAuth connect, with the state and code the popup carried.
    browser = RecordingBrowser()
    done, ticket = connect_sandbox(api, browser)
    assert done.status_code == 200, done.text[:300]
    secrets_["oauth ticket"] = ticket["ticket"]
    consent = browser.consents[0]
    secrets_["authorization code"] = consent.params["code"]
    secrets_["state"] = consent.params["state"]
    authorize_query = dict(
        p.split("=", 1) for p in urlsplit(browser.authorize_urls[0]).query.split("&")
    )
    assert authorize_query["state"]  # the same state, as sent to the provider

    # API-key and Basic connect through their forms.
    secrets_["api-key ticket"] = connect_form(api, "sandbox-keys", {"api_key": API_KEY})
    secrets_["basic ticket"] = connect_form(
        api, "sandbox-basic", {"username": "ada", "password": BASIC_PASSWORD}
    )
    secrets_.update(sealed_secrets(stack, user))

    # Proxy calls for each app.
    for app in ("sandbox", "sandbox-keys", "sandbox-basic"):
        response = api.get(f"/proxy/{app}/contacts?limit=2")
        assert response.status_code == 200, (app, response.text[:300])

    # Forced refresh: the sandbox now refuses every access token it issued.
    expired = requests.post(f"{stack.sandbox.url}/_sandbox/expire-access-tokens", timeout=5)
    assert expired.status_code == 200
    response = api.get("/proxy/sandbox/contacts")
    assert response.status_code == 200, response.text[:300]
    secrets_.update(sealed_secrets(stack, user))  # the refreshed (rotated) tokens too

    # A function invocation, then disconnect every account.
    invoked = api.post("/functions/sandbox-list-contacts/invoke", json={"params": {"limit": 1}})
    assert invoked.status_code == 200, invoked.text[:300]
    accounts = api.get("/connected-accounts").json()["connected_accounts"]
    assert len(accounts) == 3
    for account in accounts:
        assert api.delete(f"/connected-accounts/{account['id']}").status_code == 200

    # Let the worker deliver the webhooks (their log lines count too).
    hooks = f"{stack.host.url}/webhooks/portal"
    assert wait_for(
        lambda: (
            sum(
                w.get("data", w).get("user_id") == user
                for w in requests.get(hooks, timeout=5).json()["webhooks"]
            )
            >= 6
        )
    )
    time.sleep(0.3)  # the "delivered" line follows the delivery itself

    lines = all_lines(logs)
    assert len(lines) > 20
    parsed = [json.loads(line) for line in lines]  # every line is one JSON object
    for entry in parsed:
        assert "request_id" in entry and "ts" in entry and "level" in entry, entry
        assert entry["ts"].endswith("+00:00")
    messages = " | ".join(e["message"] for e in parsed)
    for expected in (
        "connect to sandbox started",
        "connect to sandbox finished",
        "connect to sandbox-keys finished",
        "connect to sandbox-basic finished",
        "proxy sandbox GET",
        "upstream 401",
        "refreshed",
        "disconnected",
        "webhook",
    ):
        assert expected in messages, expected

    access = [e for e in parsed if e["logger"] == "portal.access"]
    assert len(access) >= 15
    for entry in access:
        assert GENERATED_ID.fullmatch(entry["request_id"]), entry
        assert isinstance(entry["status"], int) and entry["duration_ms"] >= 0
        assert "?" not in entry["path"] and "?" not in entry["message"]
    # Service lines logged inside a request carry that request's id, method and path.
    finished = next(e for e in parsed if "connect to sandbox finished" in e["message"])
    assert finished["path"] == "/portal/oauth/sandbox/callback"
    assert any(
        a["request_id"] == finished["request_id"] and a["path"] == finished["path"] for a in access
    )

    assert len(secrets_) >= 20, sorted(secrets_)
    assert leaks(lines, secrets_) == []


def test_the_leak_check_finds_a_planted_secret(json_stack: DemoStack, logs: dict[str, Any]) -> None:
    """The assertion above can fail: a secret logged by server code is found, in plain, URL
    and base64 forms, and the redaction filter does not hide a bare value from it."""
    planted = f"planted-{uuid.uuid4().hex}"
    done = threading.Event()

    def server_side() -> None:
        log = logging.getLogger("portal.test")
        log.warning("oops %s", planted)
        log.warning("encoded %s", base64.b64encode(planted.encode()).decode())
        log.warning("url %s", quote("a/" + planted + "/b", safe=""))
        done.set()

    threading.Thread(target=server_side).start()
    assert done.wait(5)
    found = leaks(all_lines(logs), {"planted": planted})
    assert len(found) >= 3, found
    assert any('"logger": "portal.test"' in f for f in found)


# --------------------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ("GET /portal/oauth/sandbox/callback?code=AbC123xyz&state=St4te-value", "AbC123xyz"),
        ("GET /portal/oauth/sandbox/callback?code=AbC123xyz&state=St4te-value", "St4te-value"),
        ("headers {'Authorization': 'Bearer tok-abcdef123'}", "tok-abcdef123"),
        ("Authorization: Bearer tok-abcdef123", "tok-abcdef123"),
        ("Authorization: Basic YWRhOmxvdmVsYWNl", "YWRhOmxvdmVsYWNl"),
        ("body grant_type=refresh_token&refresh_token=r-123456&client_secret=cs-987", "r-123456"),
        ("body grant_type=refresh_token&refresh_token=r-123456&client_secret=cs-987", "cs-987"),
        ('token response {"access_token": "at-555555", "token_type": "Bearer"}', "at-555555"),
        ("redirect https://x.example/cb#access_token=at-777777&x=1", "at-777777"),
        ("ticket=eyJ.ticket.sig in a URL", "eyJ.ticket.sig"),
    ],
)
def test_redaction_masks_credential_shapes(message: str, secret: str) -> None:
    assert secret not in redact(message)
    assert REDACTED in redact(message)
    # Idempotent: a record that passes two portal handlers reads the same.
    assert redact(redact(message)) == redact(message)


def test_redaction_keeps_ordinary_text() -> None:
    for text in (
        "connect to sandbox failed: access_denied",
        "webhook 123 attempt 2 failed: HTTP 502",
        "status_code=200 error_code=invalid_grant",
        "Basic authentication failed",
    ):
        assert redact(text) == text


def test_portal_logger_redacts_a_secret_through_its_handler(json_stack: DemoStack) -> None:
    """A secret logged through the portal logger reaches the portal handler's output masked,
    in the message, in ``extra`` fields and in a traceback."""
    stream = io.StringIO()
    handler = PortalLogHandler("json", stream)
    logger = logging.getLogger("portal.redaction-test")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.info("token response access_token=%s", "at-SECRET-1")
        logger.info("calling", extra={"url": "https://api.example/x?code=c-SECRET-2"})
        try:
            raise RuntimeError("Authorization: Bearer b-SECRET-3")
        except RuntimeError:
            logger.exception("failed with %s", "client_secret=cs-SECRET-4")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    out = stream.getvalue()
    for secret in ("at-SECRET-1", "c-SECRET-2", "b-SECRET-3", "cs-SECRET-4"):
        assert secret not in out
    # The record also passed the stack's own portal handler: redacting twice changes nothing.
    assert "client_secret=[redacted]" in out and "[redacted]]" not in out
    entries = [json.loads(line) for line in out.splitlines()]
    assert len(entries) == 3
    assert entries[2]["exc_info"].startswith("Traceback")
    assert entries[0]["request_id"] is None  # outside a request


def test_handler_filters_and_text_format() -> None:
    filters = handler_filters()
    assert isinstance(filters[0], RequestContextFilter) and isinstance(filters[1], RedactingFilter)
    stream = io.StringIO()
    handler = PortalLogHandler("text", stream)
    record = logging.LogRecord("portal.x", logging.INFO, __file__, 1, "state=%s", ("s-1",), None)
    handler.handle(record)
    assert stream.getvalue().rstrip().endswith("INFO portal.x [-] state=[redacted]")


# --------------------------------------------------------------------------- request ids


def raw_request(url: str, header_block: str) -> tuple[int, dict[str, str]]:
    """Send a GET with hand-written header lines (``requests`` refuses CR/LF in values)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            (
                f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"{header_block}Connection: close\r\n\r\n"
            ).encode("latin-1")
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


def test_request_id_is_echoed_when_valid(json_stack: DemoStack, logs: dict[str, Any]) -> None:
    url = f"{json_stack.portal.url}/portal/api/v1/openapi.json"
    mine = f"req-{uuid.uuid4().hex[:20]}"
    response = requests.get(url, headers={"X-Request-Id": mine}, timeout=10)
    assert response.headers["X-Request-Id"] == mine
    generated = requests.get(url, timeout=10).headers["X-Request-Id"]
    assert GENERATED_ID.fullmatch(generated)
    assert requests.get(url, timeout=10).headers["X-Request-Id"] != generated
    # Errors (401 JSON, an error page) carry one too.
    for path in ("/portal/api/v1/connected-accounts", "/portal/connect/no-such-app"):
        answer = requests.get(json_stack.portal.url + path, timeout=10)
        assert answer.status_code in (400, 401, 404)
        assert GENERATED_ID.fullmatch(answer.headers["X-Request-Id"])
    entries = [json.loads(line) for line in logs["capture"].lines]
    assert any(e["logger"] == "portal.access" and e["request_id"] == mine for e in entries)


@pytest.mark.parametrize(
    "header_block",
    [
        "X-Request-Id: abcdefgh\r\n injected-line\r\n",  # obs-fold: a newline in the value
        "X-Request-Id: " + "a" * 200 + "\r\n",
        "X-Request-Id: short\r\n",
        "X-Request-Id: has space inside\r\n",
        'X-Request-Id: "quoted"-id-x\r\n',
        "X-Request-Id: abcdefgh\x0b12345\r\n",
    ],
)
def test_hostile_request_id_is_replaced(
    json_stack: DemoStack, logs: dict[str, Any], header_block: str
) -> None:
    status, headers = raw_request(
        f"{json_stack.portal.url}/portal/api/v1/openapi.json", header_block
    )
    assert status == 200
    assert GENERATED_ID.fullmatch(headers["x-request-id"]), headers["x-request-id"]
    access = [
        json.loads(line)
        for line in logs["capture"].lines
        if '"portal.access"' in line and headers["x-request-id"] in line
    ]
    assert len(access) == 1
    assert "injected" not in json.dumps(access)


def test_no_handler_without_explicit_log_format(tmp_path: Path) -> None:
    """A mounted portal (PORTAL_LOG_FORMAT not set by the host) adds no handler anywhere and
    leaves the root logger alone; an unknown format is a configuration error."""
    from flask import Flask

    from portal import ConnectPortal
    from portal.errors import ConfigurationError

    portal_logger = logging.getLogger("portal")
    before = (list(portal_logger.handlers), list(logging.getLogger().handlers))
    host = Flask("host", instance_path=str(tmp_path))
    host.config.update(
        SECRET_KEY="x",
        TESTING=True,
        PORTAL_DATABASE_URL=f"sqlite:///{tmp_path / 'p.sqlite3'}",
    )
    ConnectPortal(host)
    assert (list(portal_logger.handlers), list(logging.getLogger().handlers)) == before
    assert host.config["PORTAL_LOG_FORMAT"] == "text"
    response = host.test_client().get("/portal/api/v1/apps")
    assert GENERATED_ID.fullmatch(response.headers["X-Request-Id"])

    bad = Flask("bad", instance_path=str(tmp_path))
    bad.config.update(SECRET_KEY="x", TESTING=True, PORTAL_LOG_FORMAT="xml")
    with pytest.raises(ConfigurationError, match="PORTAL_LOG_FORMAT"):
        ConnectPortal(bad)


def test_app_key_is_not_secret_but_present() -> None:
    """Sanity: the leak check is not tripped by public values (the app key, the user id)."""
    assert leaks([f"app key {DEMO_APP_KEY}"], {"app secret": DEMO_APP_SECRET}) == []


# ------------------------------------------------ the demo's and `flask run`'s console output

#: Values sent in the query of every request below; none may reach a log line.
QUERY_SECRETS = {
    "code": "SECRETcode1",
    "state": "SECRETstate2",
    "ticket": "SECRETticket3",
    "token": "SECRETtoken4",
    "hash": "SECREThash5",
    "id_token": "SECRETidtoken6",
    "access_token": "SECRETaccess7",
    "refresh_token": "SECRETrefresh8",
    "client_secret": "SECRETclient9",
}
#: The same names in other spellings a server still reads as those parameters.
QUERY_SPELLINGS = "&".join(
    [
        "Code=SECRETcase10",  # names are compared case-insensitively
        "st%61te=SECRETencoded11",  # a percent-encoded name
        "ticket=SECRET;semi12",  # a value with characters the generic rule stops at
    ]
)


def _secret_query() -> str:
    return "&".join(f"{k}={v}" for k, v in QUERY_SECRETS.items()) + "&" + QUERY_SPELLINGS


def _secrets() -> list[str]:
    return [*QUERY_SECRETS.values(), "SECRETcase10", "SECRETencoded11", "semi12"]


def _wait_for_output(proc: Any, text: str) -> str:
    """The process's output once it contains ``text`` (bounded; fails if the process exits)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        output = proc.log_path.read_text("utf-8", errors="replace")
        if text in output:
            return output
        if proc.proc.poll() is not None:
            raise AssertionError(f"{proc.name} exited:\n{output[-3000:]}")
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in the output of {proc.name}")


@pytest.mark.security("No log line of the demo or of `flask run`")
def test_flask_run_console_carries_no_query_secret(tmp_path: Path) -> None:
    from processes import Proc, flask_command

    config = {
        "SECRET_KEY": "flask-run-test",
        "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "PORTAL_AUTO_MIGRATE": True,
        "PORTAL_APP_KEYS": {DEMO_APP_KEY: [DEMO_APP_SECRET]},
        "PORTAL_ENCRYPTION_KEYS": [DEMO_ENCRYPTION_KEY],
    }
    # Port 0: the OS picks a free loopback port; Werkzeug prints the one it got.
    proc: Proc = flask_command(config, ["run", "--host", "127.0.0.1", "--port", "0"], tmp_path, "run")
    try:
        started = _wait_for_output(proc, "Running on http://127.0.0.1:")
        url = re.search(r"Running on (http://127\.0\.0\.1:\d+)", started)
        assert url, started
        base = url.group(1)
        for path in ("/portal/oauth/sandbox/callback", "/portal/connect/sandbox", "/portal/api/v1"):
            requests.get(f"{base}{path}?{_secret_query()}", timeout=10)
        requests.get(f"{base}/portal/api/v1?end-of-test=1", timeout=10)
        output = _wait_for_output(proc, "end-of-test")
    finally:
        proc.stop()
    # Werkzeug's own access lines are there (with their paths), only their values are masked.
    assert re.search(r"GET /portal/oauth/sandbox/callback\?code=\[redacted\]&", output), output
    assert "/portal/connect/sandbox?" in output
    leaked = [s for s in _secrets() if s in output]
    assert leaked == [], output


@pytest.mark.security("No log line of the demo or of `flask run`")
def test_demo_console_carries_no_query_secret(tmp_path: Path) -> None:
    from processes import Proc

    argv = [
        sys.executable, "-m", "portal.demo",
        "--host-port", "0", "--portal-port", "0", "--sandbox-port", "0",
        "--database-url", f"sqlite:///{tmp_path / 'demo.sqlite3'}",
    ]  # fmt: skip
    proc = Proc(argv, {}, tmp_path, "demo")
    try:
        banner = _wait_for_output(proc, "Press Ctrl+C to stop.")
        urls = dict(
            host=re.search(r"open\s+(http://\S+?)/\s", banner),
            portal=re.search(r"portal\s+(http://\S+?)/portal/", banner),
            sandbox=re.search(r"sandbox provider\s+(http://\S+?)/\s", banner),
        )
        assert all(urls.values()), banner
        base = {k: m.group(1) for k, m in urls.items() if m}
        for name, path in (
            ("portal", "/portal/oauth/sandbox/callback"),
            ("portal", "/portal/connect/sandbox"),
            ("sandbox", "/oauth/authorize"),
            ("host", "/"),
        ):
            requests.get(f"{base[name]}{path}?{_secret_query()}", timeout=10)
        requests.get(f"{base['portal']}/portal/api/v1?end-of-test=1", timeout=10)
        output = _wait_for_output(proc, "/portal/api/v1 ")
    finally:
        proc.stop()
    assert "/portal/oauth/sandbox/callback" in output  # the portal's access line, path only
    leaked = [s for s in _secrets() if s in output]
    assert leaked == [], output


@pytest.mark.parametrize(
    "char", [chr(c) for c in range(0x20)] + ["\x7f", "\x85", "\x9f", "\u2028", "\u2029"]
)
def test_printable_escapes_every_line_breaking_character(char: str) -> None:
    # printable() returns a text as it is when str.isprintable() says so (the access line of
    # every call); every character the escape pattern covers must still be escaped.
    from portal.logs import printable

    escaped = printable(f"/portal/api{char}x")
    assert char not in escaped
    assert escaped.startswith("/portal/api\\") and escaped.endswith("x")


def test_printable_keeps_ordinary_paths_as_they_are() -> None:
    from portal.logs import printable

    for text in ("/portal/api/v1/proxy/slack/chat.postMessage", "/café/ünïcode/路径", ""):
        assert printable(text) is text
