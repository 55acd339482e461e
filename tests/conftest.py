"""Fixtures: the real stack (sandbox provider, portal, host app) on loopback, and helpers
that act as a browser over real HTTP."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from flask import Flask
from sqlalchemy import Engine, create_engine, text

from portal import user_hash
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DemoStack, portal_config
from portal.service import create_app as create_portal_app

#: The backend under test: unset for SQLite files, or a PostgreSQL URL (``make test`` runs
#: the suite once for each). On PostgreSQL every database is a fresh schema of that database.
TEST_DATABASE_URL = os.environ.get("PORTAL_TEST_DATABASE_URL", "")
ON_POSTGRESQL = TEST_DATABASE_URL.startswith("postgresql")
#: Marks a test that inspects SQLite files themselves; the SQLite pass runs it.
sqlite_only = pytest.mark.skipif(
    ON_POSTGRESQL, reason="inspects SQLite files on disk; covered by the SQLite pass"
)
_schemas: list[str] = []


@functools.cache
def _admin_engine() -> Engine:
    return create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")


def _fresh_schema() -> str:
    """Create an empty schema, named for this xdist worker, dropped at the session's end."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    schema = f"portal_test_{worker}_{uuid.uuid4().hex[:12]}"
    with _admin_engine().connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    _schemas.append(schema)
    return schema


def database_url(tmp: Path, name: str) -> str:
    """A fresh, empty test database: a new SQLite file ``<tmp>/<name>.sqlite3``, or, when
    ``PORTAL_TEST_DATABASE_URL`` is a PostgreSQL URL, a new schema of that database (the URL
    selects it with ``options=-csearch_path=<schema>``). Every call gives a new database."""
    if not TEST_DATABASE_URL:
        return f"sqlite:///{tmp / name}.sqlite3"
    if not ON_POSTGRESQL:
        raise RuntimeError("PORTAL_TEST_DATABASE_URL must be a postgresql URL (or unset).")
    separator = "&" if "?" in TEST_DATABASE_URL else "?"
    return f"{TEST_DATABASE_URL}{separator}options=-csearch_path%3D{_fresh_schema()}"


def database_config(tmp: Path, name: str) -> dict[str, Any]:
    """Portal config for a fresh test database (:func:`database_url`). The portal migrates
    only SQLite on its own, so PostgreSQL gets ``PORTAL_AUTO_MIGRATE=True``."""
    config: dict[str, Any] = {"PORTAL_DATABASE_URL": database_url(tmp, name)}
    if ON_POSTGRESQL:
        config["PORTAL_AUTO_MIGRATE"] = True
    return config


@pytest.fixture(scope="session", autouse=True)
def _drop_test_schemas() -> Iterator[None]:
    """Drop every schema this worker created (set up first, so torn down last)."""
    yield
    if not _schemas:
        return
    with _admin_engine().connect() as conn:
        conn.execute(text("SET lock_timeout = '30s'"))
        for schema in _schemas:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    _admin_engine().dispose()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    """Sandbox provider, portal service and demo host app, each on its own loopback origin."""
    tmp = tmp_path_factory.mktemp("stack")
    running = DemoStack(0, 0, 0, **stack_database(tmp, "portal")).start()
    yield running
    running.stop()


def stack_database(tmp: Path, name: str) -> dict[str, Any]:
    """:class:`DemoStack` keyword arguments for a fresh test database."""
    config = database_config(tmp, name)
    return {"database_url": config.pop("PORTAL_DATABASE_URL"), **config}


@pytest.fixture
def sandbox(stack: DemoStack) -> Iterator[str]:
    """The sandbox provider's URL, with faults and counters reset around the test."""
    requests.post(f"{stack.sandbox.url}/_sandbox/reset", timeout=5).raise_for_status()
    yield stack.sandbox.url
    requests.post(f"{stack.sandbox.url}/_sandbox/reset", timeout=5).raise_for_status()


def sandbox_stats(stack: DemoStack) -> dict[str, Any]:
    """The sandbox's request counters."""
    return requests.get(f"{stack.sandbox.url}/_sandbox/stats", timeout=5).json()  # type: ignore[no-any-return]


@pytest.fixture
def user_id() -> str:
    """A fresh end-user id, so tests sharing the stack never see each other's accounts."""
    return f"user-{uuid.uuid4().hex[:12]}"


@dataclass
class Api:
    """A host page's view of the portal API: a session token bound to the host origin."""

    stack: DemoStack
    user_id: str
    token: str

    @property
    def base(self) -> str:
        return f"{self.stack.portal.url}/portal/api/v1"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Origin": self.stack.host.url}

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.base + path, headers=self.headers, timeout=10, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return requests.post(self.base + path, headers=self.headers, timeout=10, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return requests.delete(self.base + path, headers=self.headers, timeout=10, **kw)

    def ticket(self, app: str = "sandbox", opener: str = "frame") -> dict[str, Any]:
        response = self.post("/connect-tickets", json={"app": app, "opener": opener})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]


def new_session(stack: DemoStack, user: str) -> Api:
    """A session token for ``user`` created the way portal.js does it."""
    response = requests.post(
        f"{stack.portal.url}/portal/api/v1/sessions",
        json={"appKey": DEMO_APP_KEY, "userId": user, "hash": user_hash(DEMO_APP_SECRET, user)},
        headers={"Origin": stack.host.url},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return Api(stack, user, response.json()["token"])


@pytest.fixture
def api(stack: DemoStack, user_id: str) -> Api:
    """A session for a fresh user."""
    return new_session(stack, user_id)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(
                {"action": a.get("action", ""), "fields": {}, "buttons": [], "radios": []}
            )
        elif self.forms and tag == "input":
            kind = a.get("type", "text")
            if kind == "radio":
                self.forms[-1]["radios"].append(a.get("value", ""))
                if "checked" in a or a.get("name") not in self.forms[-1]["fields"]:
                    self.forms[-1]["fields"][a["name"]] = a.get("value", "")
            elif "name" in a:
                self.forms[-1]["fields"][a["name"]] = a.get("value", "")
        elif self.forms and tag == "button" and "name" in a:
            self.forms[-1]["buttons"].append((a["name"], a.get("value", "")))


def continue_url(status_code: int, page: str) -> str:
    """The provider URL of the page an OAuth app's account-field form answers with: a 200 that
    moves on by meta refresh and a link (the same URL in both), not a 302, which Chromium would
    block under the form page's CSP ``form-action``."""
    import html as html_module
    import re

    assert status_code == 200, page[:500]
    link = re.search(r'<a [^>]*href="([^"]+)" id="portal-continue-link"', page)
    refresh = re.search(r'<meta http-equiv="refresh" content="0;url=([^"]+)">', page)
    assert link and refresh, page[:800]
    assert link.group(1) == refresh.group(1)
    return html_module.unescape(link.group(1))


def parse_form(html: str) -> dict[str, Any]:
    """The first form of a page: ``{"action", "fields", "buttons"}``."""
    parser = _FormParser()
    parser.feed(html)
    assert parser.forms, "no form on the page"
    return parser.forms[0]


@dataclass
class Consent:
    """What happened at the provider: the callback URL it redirected to, and its params."""

    callback_url: str
    params: dict[str, str]


class Browser:
    """A ``requests`` session standing in for the popup's browser (keeps its own cookies)."""

    def __init__(self) -> None:
        self.http = requests.Session()

    def start(self, connect_url: str) -> requests.Response:
        """Open the connect URL; OAuth apps answer 302 to the provider."""
        return self.http.get(connect_url, allow_redirects=False, timeout=10)

    def consent(
        self, authorize_url: str, decision: str = "allow", user: str | None = None
    ) -> Consent:
        """Load the provider's consent page and press Allow/Deny."""
        page = self.http.get(authorize_url, timeout=10)
        assert page.status_code == 200, page.text[:500]
        form = parse_form(page.text)
        fields = dict(form["fields"])
        if user is not None:
            # The consent page lists the demo users in DEMO_USERS order, by database id.
            from portal.sandbox.models import DEMO_USERS

            index = [u[0] for u in DEMO_USERS].index(user)
            fields["user"] = form["radios"][index]
        fields["decision"] = decision
        response = self.http.post(
            urljoin(authorize_url, form["action"]), data=fields, allow_redirects=False, timeout=10
        )
        assert response.status_code in (302, 303), response.text[:500]
        location = response.headers["Location"]
        params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        return Consent(location, params)

    def callback(self, url: str) -> requests.Response:
        """Deliver the provider's redirect to the portal's callback."""
        return self.http.get(url, allow_redirects=False, timeout=30)


def connect_sandbox(
    api: Api, browser: Browser | None = None, user: str | None = None, opener: str = "frame"
) -> tuple[requests.Response, dict[str, Any]]:
    """Run the whole OAuth connect flow for ``api``'s user; returns (callback response, ticket)."""
    browser = browser or Browser()
    ticket = api.ticket("sandbox", opener)
    started = browser.start(ticket["connect_url"])
    assert started.status_code == 302, started.text[:500]
    consent = browser.consent(started.headers["Location"], user=user)
    return browser.callback(consent.callback_url), ticket


@pytest.fixture
def make_app(tmp_path: Path, stack: DemoStack) -> Any:
    """Build an in-process portal app wired to the live sandbox, with config overrides and a
    fresh database; its redirect URI equals the live portal's, so the sandbox accepts it."""

    def factory(**overrides: Any) -> Flask:
        config = portal_config(
            stack.portal.url,
            stack.sandbox.url,
            [stack.host.url],
            TESTING=True,
            **database_config(tmp_path, uuid.uuid4().hex),
        )
        config.update(overrides)
        return create_portal_app(config)

    return factory


def migrations_head() -> str:
    """The newest revision shipped in portal/migrations (what an upgrade must reach)."""
    from alembic.script import ScriptDirectory

    from portal.store import MIGRATIONS_DIR

    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert head is not None
    return head


#: The PostgreSQL server for tests that need one whatever PORTAL_TEST_DATABASE_URL says.
PG_URL = os.environ.get("PORTAL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database that several processes or workers share: an SQLite file, or a
    new PostgreSQL schema (dropped after). Parametrised, so a test runs on both."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.sqlite3'}"
        return
    schema = f"portal_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, connect_args={"connect_timeout": 5})
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # any connection failure means "no PostgreSQL here"
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
