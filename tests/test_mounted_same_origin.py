"""Mounted mode: every cookie-authenticated call to the JSON API needs same-origin proof.

A mounted host serves the portal on its own origin with its own cookie session (SameSite=Lax),
so a top-level navigation from another site carries that cookie. The portal therefore asks
every cookie-authenticated ``/api/`` request, GET included, for a Flask-WTF CSRF token in
``X-CSRFToken`` and refuses ``Sec-Fetch-Site: cross-site``/``same-site`` outright (403
``csrf_failed``). The full pages stay navigable from other sites: they change nothing.

Everything runs over real HTTP on loopback: the mounted host app, and an upstream API of our own
that records every request reaching it (so "nothing sent upstream" is observed, not assumed).
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import database_config
from flask import Flask, jsonify, request, session

from portal import ConnectPortal
from portal import accounts as account_service
from portal import events as event_service
from portal._serving import ServerThread
from portal.crypto import generate_key
from portal.store import AppEvent, ConnectedAccount

pytestmark = pytest.mark.security("a cookie-authenticated request with no same-origin proof")

#: An API-key app of our own whose API is the recording upstream below.
PROBE_YAML = """
slug: probe
title: Probe
description: A loopback API that records every request reaching it.
docs_url: https://probe.example/docs
categories: [Testing]
auth:
  type: api_key
  placement: {in: header, name: X-API-Key}
  key_label: API key
api:
  base_url: "{base_url}/api"
identity:
  url: "{base_url}/apikey/me"
  external_id: id
  label: name
functions:
  - name: probe-ping
    title: Ping the probe
    description: Sends one request upstream.
    method: POST
    path: /ping
    params:
      type: object
      properties:
        note: {type: string}
    body: {note: "{note}"}
"""

#: A Chromium-like cross-site top-level navigation (what ``<a href>`` from another site sends).
CROSS_SITE_NAVIGATION = {
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-User": "?1",
}
#: What frame.js's fetch from a mounted page sends besides the CSRF header.
SAME_ORIGIN_FETCH = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}


class Upstream:
    """A loopback API that records ``(method, path)`` of every request under ``/api/``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        app = Flask(f"upstream_{uuid.uuid4().hex[:8]}")

        @app.route("/apikey/me")
        def me() -> Any:
            return jsonify({"id": "probe-user", "name": "Probe User"})

        @app.route("/api/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        def api(rest: str) -> Any:
            with self._lock:
                self.requests.append((request.method, "/api/" + rest))
            return jsonify({"ok": True, "path": rest})

        self.server = ServerThread("127.0.0.1", 0).start(app)
        self.url = self.server.url

    def received(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self.requests)


@dataclass
class MountedHost:
    """The mounted host over real HTTP, its Flask app and the upstream its probe app calls."""

    url: str
    app: Flask
    upstream: Upstream

    def login(self, user: str) -> requests.Session:
        """A browser-like client logged in to the host as ``user`` (the host's cookie)."""
        client = requests.Session()
        response = client.post(f"{self.url}/login", data={"user": user}, timeout=10)
        assert response.status_code == 200
        return client

    def csrf(self, client: requests.Session) -> str:
        """The CSRF token a mounted page puts in its ``<meta name="csrf-token">``."""
        html = client.get(f"{self.url}/portal/apps", timeout=10).text
        match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
        assert match, "no csrf-token meta tag"
        return match.group(1)

    def seed_account(self, user: str) -> str:
        state = self.app.extensions["portal"]
        with state.store.session() as db:
            account, _ = account_service.upsert_account(
                db,
                state.sealer,
                project=state.mounted_project,
                user_id=user,
                app="probe",
                external_id="probe-user",
                label="Probe User",
                scopes=[],
                credentials={"type": "api_key", "api_key": "sk_probe"},
                expires_at=None,
            )
            return account.id

    def seed_event(self, user: str) -> str:
        with self.app.app_context():
            state = self.app.extensions["portal"]
            event, _ = event_service.trigger(
                state, user, None, "probe.seen", {"n": 1}, project=state.mounted_project
            )
        return event.id

    def account_ids(self, user: str) -> list[str]:
        state = self.app.extensions["portal"]
        with state.store.read() as db:
            rows = db.query(ConnectedAccount.id).filter(ConnectedAccount.user_id == user)
            return [r.id for r in rows]

    def event_count(self) -> int:
        state = self.app.extensions["portal"]
        with state.store.read() as db:
            return db.query(AppEvent).count()


def mounted_host_app(tmp_path: Path, upstream_url: str) -> Flask:
    """A host app with its own session login (``POST /login``, ``POST /logout``), the portal
    mounted on it, and the probe app (``PROBE_YAML``) pointed at ``upstream_url``."""
    catalog = tmp_path / "catalog"
    catalog.mkdir(exist_ok=True)
    (catalog / "probe.yaml").write_text(PROBE_YAML, "utf-8")
    app = Flask(f"host_{uuid.uuid4().hex[:8]}", instance_path=str(tmp_path / "instance"))
    app.config.update(
        SECRET_KEY="host-secret",
        PORTAL_ENCRYPTION_KEYS=[generate_key()],
        PORTAL_APPS={"probe": {"base_url": upstream_url}},
        PORTAL_ENABLED_APPS=["probe"],
        PORTAL_CATALOG_PATHS=[str(catalog)],
        **database_config(tmp_path, uuid.uuid4().hex),
    )
    portal = ConnectPortal()

    @app.post("/login")
    def login() -> str:
        session["user"] = request.form["user"]
        return "ok"

    @app.post("/logout")
    def logout() -> str:
        session.clear()
        return "bye"

    portal.user_loader(lambda: session.get("user"))
    portal.init_app(app)
    return app


@pytest.fixture
def host(tmp_path: Path) -> Iterator[MountedHost]:
    upstream = Upstream()
    app = mounted_host_app(tmp_path, upstream.url)
    server = ServerThread("127.0.0.1", 0).start(app)
    yield MountedHost(server.url, app, upstream)
    server.stop()
    upstream.server.stop()


def assert_refused(response: requests.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == "csrf_failed"
    assert body["message"]
    assert body["error_details"] == []


# --------------------------------------------------------------------------- the proxy


def test_cross_site_navigation_to_the_proxy_sends_nothing_upstream(host: MountedHost) -> None:
    alice = host.login("alice")
    host.seed_account("alice")
    response = alice.get(
        f"{host.url}/portal/api/v1/proxy/probe/contacts", headers=CROSS_SITE_NAVIGATION
    )
    assert_refused(response)
    assert host.upstream.received() == []


def test_proxy_get_without_any_proof_sends_nothing_upstream(host: MountedHost) -> None:
    """A browser that sends no Sec-Fetch-* headers: the CSRF header is still required."""
    alice = host.login("alice")
    host.seed_account("alice")
    assert_refused(alice.get(f"{host.url}/portal/api/v1/proxy/probe/contacts"))
    assert_refused(
        alice.get(
            f"{host.url}/portal/api/v1/proxy/probe/contacts", headers={"X-CSRFToken": "forged"}
        )
    )
    assert host.upstream.received() == []


@pytest.mark.parametrize("site", ["cross-site", "same-site", "none"])
def test_a_valid_csrf_header_does_not_excuse_another_site(host: MountedHost, site: str) -> None:
    alice = host.login("alice")
    host.seed_account("alice")
    token = host.csrf(alice)
    response = alice.get(
        f"{host.url}/portal/api/v1/proxy/probe/contacts",
        headers={"X-CSRFToken": token, "Sec-Fetch-Site": site, "Sec-Fetch-Mode": "cors"},
    )
    assert_refused(response)
    assert host.upstream.received() == []


def test_proxy_with_same_origin_proof_works(host: MountedHost) -> None:
    alice = host.login("alice")
    host.seed_account("alice")
    token = host.csrf(alice)
    response = alice.get(
        f"{host.url}/portal/api/v1/proxy/probe/contacts",
        headers={"X-CSRFToken": token, **SAME_ORIGIN_FETCH},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True, "path": "contacts"}
    # A browser without Fetch Metadata still passes with the CSRF header alone.
    again = alice.get(
        f"{host.url}/portal/api/v1/proxy/probe/contacts", headers={"X-CSRFToken": token}
    )
    assert again.status_code == 200, again.text
    assert host.upstream.received() == [("GET", "/api/contacts"), ("GET", "/api/contacts")]


def test_not_logged_in_is_still_401(host: MountedHost) -> None:
    response = requests.get(
        f"{host.url}/portal/api/v1/proxy/probe/contacts", headers=CROSS_SITE_NAVIGATION, timeout=10
    )
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert host.upstream.received() == []


# --------------------------------------------------------------------------- functions


def test_function_invoke_needs_same_origin_proof(host: MountedHost) -> None:
    alice = host.login("alice")
    host.seed_account("alice")
    url = f"{host.url}/portal/api/v1/functions/probe-ping/invoke"
    body = {"params": {"note": "hi"}}
    assert_refused(alice.post(url, json=body, headers=CROSS_SITE_NAVIGATION))
    assert_refused(alice.post(url, json=body))
    assert host.upstream.received() == []
    # Reading a function's signature is cookie-authenticated too.
    assert_refused(alice.get(f"{host.url}/portal/api/v1/functions/probe-ping"))
    assert_refused(alice.get(f"{host.url}/portal/api/v1/functions"))

    token = host.csrf(alice)
    done = alice.post(url, json=body, headers={"X-CSRFToken": token, **SAME_ORIGIN_FETCH})
    assert done.status_code == 200, done.text
    assert host.upstream.received() == [("POST", "/api/ping")]
    signature = alice.get(
        f"{host.url}/portal/api/v1/functions/probe-ping", headers={"X-CSRFToken": token}
    )
    assert signature.status_code == 200
    assert signature.json()["name"] == "probe-ping"


# --------------------------------------------------------------------------- events


def test_events_need_same_origin_proof(host: MountedHost) -> None:
    alice = host.login("alice")
    event_id = host.seed_event("alice")
    read = f"{host.url}/portal/api/v1/events/{event_id}"
    assert_refused(alice.get(read, headers=CROSS_SITE_NAVIGATION))
    assert_refused(alice.get(read))
    trigger = f"{host.url}/portal/api/v1/projects/any/sdk/events/trigger"
    assert_refused(alice.post(trigger, json={"name": "probe.seen"}, headers=CROSS_SITE_NAVIGATION))
    assert_refused(alice.post(trigger, json={"name": "probe.seen"}))
    assert host.event_count() == 1

    token = host.csrf(alice)
    got = alice.get(read, headers={"X-CSRFToken": token, **SAME_ORIGIN_FETCH})
    assert got.status_code == 200, got.text
    assert got.json()["id"] == event_id


# --------------------------------------------------------------------------- accounts


def test_account_reads_and_deletes_need_same_origin_proof(host: MountedHost) -> None:
    alice = host.login("alice")
    account_id = host.seed_account("alice")
    api = f"{host.url}/portal/api/v1"
    for path in ("/connected-accounts", f"/connected-accounts/{account_id}", "/session", "/user"):
        assert_refused(alice.get(api + path, headers=CROSS_SITE_NAVIGATION))
        assert_refused(alice.get(api + path))
    one = f"{api}/connected-accounts/{account_id}"
    assert_refused(alice.delete(one, headers=CROSS_SITE_NAVIGATION))
    assert_refused(alice.delete(one))
    assert_refused(
        alice.post(f"{api}/connect-tickets", json={"app": "probe"}, headers=CROSS_SITE_NAVIGATION)
    )
    assert host.account_ids("alice") == [account_id]

    token = host.csrf(alice)
    proof = {"X-CSRFToken": token, **SAME_ORIGIN_FETCH}
    listed = alice.get(f"{api}/connected-accounts", headers=proof)
    assert listed.status_code == 200
    assert [a["id"] for a in listed.json()["connected_accounts"]] == [account_id]
    deleted = alice.delete(one, headers=proof)
    assert deleted.status_code == 200, deleted.text
    assert host.account_ids("alice") == []


# --------------------------------------------------------------------------- pages


@pytest.mark.parametrize(
    "path", ["/portal/apps", "/portal/apps/probe", "/portal/functions/probe-ping"]
)
def test_pages_stay_navigable_from_another_site(host: MountedHost, path: str) -> None:
    """A top-level navigation from another site opens the pages (they change nothing)."""
    alice = host.login("alice")
    response = alice.get(host.url + path, headers=CROSS_SITE_NAVIGATION)
    assert response.status_code == 200, response.text
    assert 'data-portal-mounted="1"' in response.text
    assert host.upstream.received() == []


def test_htmx_form_submit_from_another_site_is_refused(host: MountedHost) -> None:
    """The function form's POST partial changes nothing upstream but is an unsafe method: it
    needs the same proof even with a valid token."""
    alice = host.login("alice")
    host.seed_account("alice")
    token = host.csrf(alice)
    response = alice.post(
        f"{host.url}/portal/ui/functions/probe-ping",
        data={"note": "x"},
        headers={"X-CSRFToken": token, "Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 403
    ok = alice.post(
        f"{host.url}/portal/ui/functions/probe-ping",
        data={"note": "x"},
        headers={"X-CSRFToken": token, "Sec-Fetch-Site": "same-origin", "HX-Request": "true"},
    )
    assert ok.status_code == 200, ok.text
    assert "portal-function-params" in ok.text
