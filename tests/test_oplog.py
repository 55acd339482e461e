"""portal/oplog.py, ``GET /api/v1/admin/log[/<id>]`` and the log on ``/admin`` (issue 19
item 6): real function calls, app-event runs, webhook deliveries and health checks are
logged; filters, cursor paging, tenant isolation; no credential ever shows."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from test_health import add_key_account, connect_oauth
from test_webhooks import Receiver

from portal import oplog
from portal.demo import DEMO_APP_EVENTS, DEMO_APP_KEY, DEMO_APP_SECRET, DemoStack
from portal.events import run_due
from portal.health import check_due
from portal.store import ConnectedAccount, OplogEntry, utcnow
from portal.webhooks import deliver_due

API = "/portal/api/v1"
A, B = "proj-log-a", "proj-log-b"
SECRET = {A: "secret-log-a", B: "secret-log-b"}


def test_real_work_is_logged_without_credentials(
    make_app: Any, stack: DemoStack, sandbox: str
) -> None:
    receiver = Receiver().start()
    try:
        app: Flask = make_app(
            PORTAL_WEBHOOK_URL=receiver.url,
            PORTAL_APP_EVENTS=DEMO_APP_EVENTS,
            PORTAL_RATE_LIMITS_ENABLED=False,
        )
        state = app.extensions["portal"]
        user = f"u-log-{uuid.uuid4().hex[:6]}"
        account_id = connect_oauth(app, stack, user)
        key_account = add_key_account(app, user)
        server = {"Authorization": f"Bearer {DEMO_APP_SECRET}", "X-Portal-User-Id": user}
        client = app.test_client()
        invoked = client.post(
            f"{API}/functions/sandbox-list-contacts/invoke",
            json={"params": {"limit": 2}},
            headers=server,
        )
        assert invoked.status_code == 200 and invoked.json["network_code"] == 200
        triggered = client.post(
            f"{API}/projects/{DEMO_APP_KEY}/sdk/events/trigger",
            json={"name": "Contact Created", "payload": {"name": "Ada", "email": "a@a.example"}},
            headers=server,
        )
        assert triggered.status_code == 202
        with app.app_context():
            assert run_due(state) == 1
            assert check_due(state, utcnow() + timedelta(days=1, seconds=1)) == 2
            assert deliver_due(state) >= 1
        page = client.get(
            f"{API}/admin/log?limit=200", headers={"Authorization": f"Bearer {DEMO_APP_SECRET}"}
        )
        assert page.status_code == 200
        entries = page.json["entries"]
        kinds = {e["kind"] for e in entries}
        assert {"function_call", "app_event_run", "webhook", "health_check"} <= kinds
        times = [e["created_at"] for e in entries]
        assert times == sorted(times, reverse=True)
        call = next(
            e
            for e in entries
            if e["kind"] == "function_call"
            and e["app"] == "sandbox"
            and e["request"]["function"] == "sandbox-list-contacts"
        )
        assert call["status"] == "succeeded" and call["account_id"] == account_id
        assert call["request"] == {
            "function": "sandbox-list-contacts",
            "method": "GET",
            "params": ["limit"],
        }
        assert call["duration_ms"] is not None and call["user_id"] == user
        webhook = next(e for e in entries if e["kind"] == "webhook")
        assert webhook["status"] == "succeeded" and webhook["ref_id"].startswith("wh_")
        detail = client.get(
            f"{API}/admin/log/{call['id']}", headers={"Authorization": f"Bearer {DEMO_APP_SECRET}"}
        ).json
        assert detail["account"]["id"] == account_id and detail["account"]["app"] == "sandbox"
        # No credential anywhere: not the OAuth tokens, not the API key, not a secret.
        with state.store.read() as db:
            row = db.get(ConnectedAccount, account_id)
            assert row is not None
            tokens = state.sealer.open(row.id, row.credentials)
        everything = page.get_data(as_text=True) + str(detail)
        for secret in (
            tokens["access_token"],
            tokens["refresh_token"],
            "sk_demo_ada",
            DEMO_APP_SECRET,
        ):
            assert secret not in everything
        html = client.get("/portal/admin", headers={"Authorization": f"Bearer {DEMO_APP_SECRET}"})
        text = html.get_data(as_text=True)
        assert html.status_code == 200 and "sandbox-list-contacts" in text
        assert key_account in text  # its health check entry
        for secret in (tokens["access_token"], tokens["refresh_token"], "sk_demo_ada"):
            assert secret not in text
    finally:
        receiver.stop()


@pytest.fixture
def seeded(make_app: Any) -> Flask:
    """A portal with projects A and B and 130 log entries: A has 120 (3 users, 2 apps, 4 kinds,
    one in five failed), B has 10."""
    app: Flask = make_app(PORTAL_APP_KEYS={A: [SECRET[A]], B: [SECRET[B]]})
    state = app.extensions["portal"]
    with state.store.session() as db:
        for n in range(120):
            oplog.record(
                db,
                project=A,
                kind=oplog.KINDS[n % 4],
                status="failed" if n % 5 == 0 else "succeeded",
                user_id=f"user-{n % 3}",
                app="sandbox" if n % 2 else "hubspot",
                duration_ms=n,
                ref_id=f"ref-{n}",
                request={"n": n},
            )
        for _ in range(10):
            oplog.record(db, project=B, kind="webhook", status="succeeded", user_id="user-0")
    return app


def bearer(project: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {SECRET[project]}"}


def all_pages(client: Any, project: str, query: str = "") -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(20):
        url = f"{API}/admin/log?limit=50{query}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(url, headers=bearer(project))
        assert response.status_code == 200, response.json
        found += response.json["entries"]
        cursor = response.json["next_cursor"]
        if not cursor:
            return found
    raise AssertionError("paging never ended")


def test_cursor_pages_cover_everything_once_newest_first(seeded: Flask) -> None:
    client = seeded.test_client()
    entries = all_pages(client, A)
    assert len(entries) == 120 and len({e["id"] for e in entries}) == 120
    with seeded.extensions["portal"].store.read() as db:
        rows = db.query(OplogEntry).filter(OplogEntry.project == A).all()
    newest_first = sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)
    assert [e["id"] for e in entries] == [r.id for r in newest_first]
    assert {e["project"] for e in entries} == {A}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("&kind=webhook", lambda n: n % 4 == 3),
        ("&status=failed", lambda n: n % 5 == 0),
        ("&user_id=user-1", lambda n: n % 3 == 1),
        ("&app=hubspot&kind=function_call", lambda n: n % 2 == 0 and n % 4 == 0),
        ("&project=" + A + "&status=succeeded&app=sandbox", lambda n: n % 5 and n % 2),
    ],
)
def test_filters(seeded: Flask, query: str, expected: Any) -> None:
    entries = all_pages(seeded.test_client(), A, query)
    assert sorted(int(e["ref_id"][4:]) for e in entries) == [n for n in range(120) if expected(n)]


def test_time_filters(seeded: Flask) -> None:
    client = seeded.test_client()
    with seeded.extensions["portal"].store.read() as db:
        times = sorted(e.created_at for e in db.query(OplogEntry).filter(OplogEntry.project == A))
    middle = times[60]
    since = all_pages(client, A, f"&since={middle.isoformat().replace('+00:00', 'Z')}")
    until = all_pages(client, A, f"&until={middle.isoformat().replace('+00:00', 'Z')}")
    assert len(since) + len(until) == 120
    assert all(e["created_at"] >= oplog.iso(middle) for e in since)
    bad = client.get(f"{API}/admin/log?since=yesterday", headers=bearer(A))
    assert bad.status_code == 400 and bad.json["error"] == "invalid_filter"
    assert client.get(f"{API}/admin/log?kind=nope", headers=bearer(A)).status_code == 400
    assert client.get(f"{API}/admin/log?limit=0", headers=bearer(A)).status_code == 400
    garbled = client.get(f"{API}/admin/log?cursor=%%%", headers=bearer(A))
    assert garbled.status_code == 400 and garbled.json["error"] == "invalid_cursor"


def test_projects_see_only_their_own(seeded: Flask) -> None:
    client = seeded.test_client()
    b_entries = all_pages(client, B)
    assert len(b_entries) == 10 and {e["project"] for e in b_entries} == {B}
    # B naming A's project sees nothing of it.
    assert all_pages(client, B, f"&project={A}") == []
    a_entry = all_pages(client, A)[0]
    assert client.get(f"{API}/admin/log/{a_entry['id']}", headers=bearer(B)).status_code == 404
    assert client.get(f"{API}/admin/log/{a_entry['id']}", headers=bearer(A)).status_code == 200
    assert client.get(f"{API}/admin/log").status_code == 401
    user = {"Authorization": f"Bearer {SECRET[A]}", "X-Portal-User-Id": "u"}
    assert client.get(f"{API}/admin/log", headers={"X-Portal-User-Id": "u"}).status_code == 401
    assert client.get(f"{API}/admin/log", headers=user).status_code == 200


def test_admin_page_filters_and_form_sign_in(seeded: Flask) -> None:
    client = seeded.test_client()
    page = client.get("/portal/admin?kind=webhook&user_id=user-2", headers=bearer(A))
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert text.count('class="portal-admin__log-entry"') == 10  # n % 4 == 3 and n % 3 == 2
    assert 'name="cursor"' not in text
    full = client.get("/portal/admin", headers=bearer(A)).get_data(as_text=True)
    assert full.count('class="portal-admin__log-entry"') == oplog.PAGE_SIZE
    assert 'name="cursor"' in full
    # Signed in with the form: the filter form asks for the secret again; it is never echoed.
    posted = client.post("/portal/admin", data={"app_secret": SECRET[A], "status": "failed"})
    body = posted.get_data(as_text=True)
    assert posted.status_code == 200
    assert body.count('class="portal-admin__log-entry"') == 24
    assert body.count('name="app_secret"') == 1 and SECRET[A] not in body
    paged = client.post("/portal/admin", data={"app_secret": SECRET[A]}).get_data(as_text=True)
    # The filter form and the "Older entries" form each ask for it.
    assert paged.count('name="app_secret"') == 2 and SECRET[A] not in paged
    bad = client.get("/portal/admin?since=garbage", headers=bearer(A))
    assert bad.status_code == 200 and "ISO-8601" in bad.get_data(as_text=True)
