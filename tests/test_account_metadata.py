"""Account metadata (issue 19 item 5): ``PATCH /connected-accounts/<id>`` sets a small,
schema-free JSON object; it comes back in Account payloads and webhooks; ``?tag=`` filters the
list by ``metadata.tags``; another project (tenant) can neither read nor write it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask

from portal import accounts as account_service
from portal.store import WebhookOutbox

A, B = "proj-meta-a", "proj-meta-b"
SECRET = {A: "secret-meta-a", B: "secret-meta-b"}
API = "/portal/api/v1"


def server(project: str, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {SECRET[project]}", "X-Portal-User-Id": user}


def add(app: Flask, project: str, user: str, external_id: str, slug: str = "sandbox-keys") -> str:
    state = app.extensions["portal"]
    with state.store.session() as db:
        account, _ = account_service.upsert_account(
            db,
            state.sealer,
            project=project,
            user_id=user,
            app=slug,
            external_id=external_id,
            label=external_id,
            scopes=[],
            credentials={"type": "api_key", "api_key": "sk_demo_ada"},
            expires_at=None,
        )
        return account.id


@pytest.fixture
def app(make_app: Any) -> Flask:
    return make_app(  # type: ignore[no-any-return]
        PORTAL_APP_KEYS={A: [SECRET[A]], B: [SECRET[B]]},
        PORTAL_RATE_LIMITS_ENABLED=False,
        PORTAL_WEBHOOK_URL="http://127.0.0.1:9/hook",
    )


def test_patch_sets_metadata_returned_in_payloads_and_webhooks(app: Flask) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    account_id = add(app, A, user, "ext-1")
    client = app.test_client()
    metadata = {"tags": ["vip", "eu"], "crm_id": 42, "note": "préféré"}
    patched = client.patch(
        f"{API}/connected-accounts/{account_id}",
        json={"metadata": metadata},
        headers=server(A, user),
    )
    assert patched.status_code == 200, patched.json
    assert patched.json["metadata"] == metadata
    read = client.get(f"{API}/connected-accounts/{account_id}", headers=server(A, user)).json
    assert read["metadata"] == metadata
    listed = client.get(f"{API}/connected-accounts", headers=server(A, user)).json
    assert [a["metadata"] for a in listed["connected_accounts"]] == [metadata]
    # Webhooks carry the Account payload, metadata included.
    client.delete(f"{API}/connected-accounts/{account_id}", headers=server(A, user))
    import json

    with app.extensions["portal"].store.read() as db:
        bodies = [json.loads(r.payload) for r in db.query(WebhookOutbox).all()]
    [gone] = [b for b in bodies if b["type"] == "account.disconnected"]
    assert gone["data"]["account"]["metadata"] == metadata


def test_tag_filter_and_replacing_tags(app: Flask) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    first, second = add(app, A, user, "ext-1"), add(app, A, user, "ext-2")
    client = app.test_client()
    for account_id, tags in ((first, ["vip"]), (second, ["vip", "trial"])):
        response = client.patch(
            f"{API}/connected-accounts/{account_id}",
            json={"metadata": {"tags": tags}},
            headers=server(A, user),
        )
        assert response.status_code == 200

    def tagged(tag: str) -> list[str]:
        body = client.get(f"{API}/connected-accounts?tag={tag}", headers=server(A, user)).json
        return sorted(a["id"] for a in body["connected_accounts"])

    assert tagged("vip") == sorted([first, second])
    assert tagged("trial") == [second]
    assert tagged("nope") == []
    client.patch(
        f"{API}/connected-accounts/{second}", json={"metadata": {}}, headers=server(A, user)
    )
    assert tagged("trial") == [] and tagged("vip") == [first]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metadata": "not an object"}, None),
        ({"metadata": {"blob": "x" * 5000}}, "metadata"),
        ({"metadata": {"tags": "vip"}}, "metadata.tags"),
        ({"metadata": {"tags": ["a", "a"]}}, "metadata.tags"),
        ({"metadata": {"tags": ["x" * 65]}}, "metadata.tags"),
        ({"metadata": {"tags": [str(i) for i in range(21)]}}, "metadata.tags"),
        ({"metadata": {}, "label": "sneaky"}, None),
    ],
)
def test_invalid_metadata_is_refused(app: Flask, body: dict[str, Any], field: str | None) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    account_id = add(app, A, user, "ext-1")
    client = app.test_client()
    response = client.patch(
        f"{API}/connected-accounts/{account_id}", json=body, headers=server(A, user)
    )
    assert response.status_code == 400
    assert response.json["error"] == "invalid_metadata"
    if field:
        assert response.json["error_details"][0]["field"] == field
    read = client.get(f"{API}/connected-accounts/{account_id}", headers=server(A, user)).json
    assert read["metadata"] == {}


def test_other_project_can_neither_read_nor_write_nor_filter(app: Flask) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    mine = add(app, A, user, "ext-1")
    theirs = add(app, B, user, "ext-1")
    client = app.test_client()
    assert (
        client.patch(
            f"{API}/connected-accounts/{mine}",
            json={"metadata": {"tags": ["a-only"]}},
            headers=server(A, user),
        ).status_code
        == 200
    )
    # B, same end user id, A's account id: the same 404 as a missing account.
    hijack = client.patch(
        f"{API}/connected-accounts/{mine}",
        json={"metadata": {"tags": ["b"]}},
        headers=server(B, user),
    )
    assert hijack.status_code == 404
    b_list = client.get(f"{API}/connected-accounts?tag=a-only", headers=server(B, user)).json
    assert b_list["connected_accounts"] == []
    # B tagging its own account with A's tag does not make A's show up for B, nor B's for A.
    client.patch(
        f"{API}/connected-accounts/{theirs}",
        json={"metadata": {"tags": ["a-only"]}},
        headers=server(B, user),
    )
    b_ids = [
        a["id"]
        for a in client.get(f"{API}/connected-accounts?tag=a-only", headers=server(B, user)).json[
            "connected_accounts"
        ]
    ]
    a_ids = [
        a["id"]
        for a in client.get(f"{API}/connected-accounts?tag=a-only", headers=server(A, user)).json[
            "connected_accounts"
        ]
    ]
    assert b_ids == [theirs] and a_ids == [mine]
    a_read = client.get(f"{API}/connected-accounts/{mine}", headers=server(A, user)).json
    assert a_read["metadata"] == {"tags": ["a-only"]}


def test_browser_sessions_cannot_set_metadata(app: Flask, stack: Any) -> None:
    from portal import user_hash

    user = f"u-{uuid.uuid4().hex[:8]}"
    account_id = add(app, A, user, "ext-1")
    client = app.test_client()
    session = client.post(
        f"{API}/sessions",
        json={"appKey": A, "userId": user, "hash": user_hash(SECRET[A], user)},
        headers={"Origin": stack.host.url},
    ).json
    response = client.patch(
        f"{API}/connected-accounts/{account_id}",
        json={"metadata": {"x": 1}},
        headers={"Authorization": f"Bearer {session['token']}", "Origin": stack.host.url},
    )
    assert response.status_code == 401 and response.json["error"] == "server_only"
