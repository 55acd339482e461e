"""portal/events.py and its views: app events (Paragon's ``event(name, payload)``) against the
live stack, whose worker thread runs the functions they queue."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
import requests
from conftest import Api, connect_sandbox, new_session
from sqlalchemy import update

from portal import events
from portal.demo import DEMO_APP_KEY, DemoStack
from portal.store import AppEventRun, utcnow
from portal.worker import run_once

TRIGGER = f"/projects/{DEMO_APP_KEY}/sdk/events/trigger"
CONTACT = {"name": "Brandon", "email": "b@useparagon.example"}


def finished(stack: DemoStack, api: Api, event_id: str, timeout: float = 30) -> dict[str, Any]:
    """The event once every run finished (the test also works the queue, beside the demo's
    worker thread: claims are exclusive, so a run still runs once)."""
    deadline = time.monotonic() + timeout
    while True:
        run_once(stack.portal_app)
        event = api.get(f"/events/{event_id}").json()
        if all(r["status"] in ("succeeded", "failed") for r in event["runs"]):
            return event  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, event
        time.sleep(0.1)


def test_trigger_answers_at_once_while_the_function_is_slow(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    connect_sandbox(api)
    # The run's call must refresh the token first, and the token endpoint now takes 3 s.
    requests.post(f"{sandbox}/_sandbox/expire-access-tokens", timeout=5).raise_for_status()
    requests.post(
        f"{sandbox}/_sandbox/faults",
        json={"token_endpoint": "timeout", "timeout_seconds": 3},
        timeout=5,
    ).raise_for_status()
    began = time.monotonic()
    response = api.post(TRIGGER, json={"name": "Contact Created", "payload": CONTACT})
    assert time.monotonic() - began < 1.5
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["name"] == "Contact Created"
    [run] = body["runs"]
    assert run["function"] == "sandbox-create-contact" and run["status"] == "queued"
    assert run["id"].startswith("run_") and body["id"].startswith("ev_")

    event = finished(stack, api, body["id"])
    [done] = event["runs"]
    assert done["status"] == "succeeded", done
    assert done["result"]["network_code"] == 201


def test_worker_runs_the_function_and_tells_the_host(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    connect_sandbox(api)
    email = f"{uuid.uuid4().hex[:8]}@example.test"
    response = api.post(
        TRIGGER, json={"name": "Contact Created", "payload": {"name": "Ada L.", "email": email}}
    )
    assert response.status_code == 202
    event = finished(stack, api, response.json()["id"])
    assert event["name"] == "Contact Created"
    assert event["payload"] == {"name": "Ada L.", "email": email}
    [run] = event["runs"]
    assert run["status"] == "succeeded"
    assert run["result"]["output"]["email"] == email
    assert run["finished_at"].endswith("Z")
    contacts = api.get("/proxy/sandbox/contacts", params={"limit": 100}).json()["data"]
    assert email in [c["email"] for c in contacts]  # the function really ran upstream
    # ... and the demo host app was told, by a signed webhook.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        hooks = requests.get(f"{stack.host.url}/webhooks/portal", timeout=5).json()["webhooks"]
        mine = [h for h in hooks if h["type"] == "app_event.run_finished"]
        mine = [h for h in mine if h["data"]["run_id"] == run["id"]]
        if mine:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("no app_event.run_finished webhook")
    data = mine[0]["data"]
    assert data["event_id"] == event["id"] and data["status"] == "succeeded"
    assert data["function"] == "sandbox-create-contact" and data["user_id"] == api.user_id
    assert data["result"]["output"]["email"] == email


def test_run_without_a_connected_account_fails(stack: DemoStack, api: Api) -> None:
    response = api.post(TRIGGER, json={"name": "Contact Created", "payload": CONTACT})
    [run] = finished(stack, api, response.json()["id"])["runs"]
    assert run["status"] == "failed"
    assert "No Sandbox CRM account is connected" in run["result"]["error"]


def test_payload_missing_a_param_fails_the_run_with_details(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    connect_sandbox(api)
    response = api.post(TRIGGER, json={"name": "Contact Created", "payload": {"name": "No Mail"}})
    [run] = finished(stack, api, response.json()["id"])["runs"]
    assert run["status"] == "failed"
    assert {"field": "email", "message": "'email' is a required property"} in run["result"][
        "error_details"
    ]


def test_unknown_event_is_recorded_without_runs(stack: DemoStack, api: Api) -> None:
    response = api.post(TRIGGER, json={"name": "Invoice Paid", "payload": {"amount": 12}})
    assert response.status_code == 202
    body = response.json()
    assert body["runs"] == []
    event = api.get(f"/events/{body['id']}").json()
    assert event["name"] == "Invoice Paid" and event["payload"] == {"amount": 12}
    assert event["runs"] == [] and event["created_at"].endswith("Z")


def test_event_for_another_project_is_forbidden(api: Api) -> None:
    response = api.post(
        "/projects/someone-elses-key/sdk/events/trigger",
        json={"name": "Contact Created", "payload": CONTACT},
    )
    assert response.status_code == 403
    assert response.json()["error"] == "project_mismatch"


def test_event_of_another_user_is_not_found(stack: DemoStack, api: Api) -> None:
    event_id = api.post(TRIGGER, json={"name": "Invoice Paid", "payload": {}}).json()["id"]
    other = new_session(stack, f"user-{uuid.uuid4().hex[:12]}")
    response = other.get(f"/events/{event_id}")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert other.get("/events/ev_doesnotexist").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"payload": {}},
        {"name": "", "payload": {}},
        {"name": "x" * 256, "payload": {}},
        {"name": 42, "payload": {}},
        {"name": "Contact Created", "payload": ["not", "an", "object"]},
        {"name": "Contact Created", "payload": "text"},
    ],
    ids=["no-name", "empty-name", "long-name", "number-name", "list-payload", "text-payload"],
)
def test_invalid_trigger_body_is_refused(api: Api, body: dict[str, Any]) -> None:
    response = api.post(TRIGGER, json=body)
    assert response.status_code == 400
    assert set(response.json()) == {"error", "message", "error_details"}


def test_trigger_needs_authentication(stack: DemoStack) -> None:
    response = requests.post(
        f"{stack.portal.url}/portal/api/v1{TRIGGER}",
        json={"name": "Contact Created", "payload": CONTACT},
        timeout=10,
    )
    assert response.status_code == 401


def test_lost_run_is_restarted_then_failed(make_app: Any) -> None:
    """A worker died while a run was ``running``: once the lease is over the run starts again,
    at most MAX_RUN_ATTEMPTS times in all."""
    app = make_app()
    state = app.extensions["portal"]
    with app.app_context():
        event, [run] = events.trigger(
            state, "u-lost", DEMO_APP_KEY, "Contact Created", CONTACT, project=DEMO_APP_KEY
        )
    with state.store.session() as db:
        db.execute(
            update(AppEventRun)
            .where(AppEventRun.id == run.id)
            .values(status="running", attempts=1, started_at=utcnow())
        )
    assert run_once(app) == 0  # still leased to the (dead) worker
    later = utcnow() + timedelta(hours=1)
    assert run_once(app, now=later) == 1
    with app.app_context():
        [again] = events.get_event(state, "u-lost", event.id, project=DEMO_APP_KEY)["runs"]
    assert again["status"] == "failed"  # ran again (no account connected for u-lost)
    with state.store.session() as db:
        assert db.get(AppEventRun, run.id).attempts == 2  # type: ignore[union-attr]
        db.execute(
            update(AppEventRun)
            .where(AppEventRun.id == run.id)
            .values(status="running", attempts=events.MAX_RUN_ATTEMPTS, started_at=utcnow())
        )
    run_once(app, now=later + timedelta(hours=1))
    with app.app_context():
        [lost] = events.get_event(state, "u-lost", event.id, project=DEMO_APP_KEY)["runs"]
    assert lost["status"] == "failed" and lost["result"]["error"] == "worker_lost"
