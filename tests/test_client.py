"""portal/client.py: the host backend's Python client, against the live stack over HTTP."""

from __future__ import annotations

import uuid

import pytest
import requests
from conftest import Api, connect_sandbox

from portal import PortalClient, PortalClientError
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DemoStack


@pytest.fixture
def client(stack: DemoStack) -> PortalClient:
    return PortalClient(f"{stack.portal.url}/portal", DEMO_APP_SECRET)


@pytest.fixture
def connected(stack: DemoStack, sandbox: str, api: Api) -> str:
    """``api``'s user with one sandbox account; returns the account id."""
    response, ticket = connect_sandbox(api)
    assert response.status_code == 200
    return str(api.get(f"/connect-attempts/{ticket['attempt_id']}").json()["connectedAccountId"])


def test_create_session_gives_a_token_for_the_host_page(
    stack: DemoStack, client: PortalClient
) -> None:
    session = client.create_session("u-client-1", origin=stack.host.url)
    assert set(session) == {"token", "expires_at", "user_id", "origin"}
    assert session["user_id"] == "u-client-1" and session["origin"] == stack.host.url
    who = requests.get(
        f"{stack.portal.url}/portal/api/v1/session",
        headers={"Authorization": f"Bearer {session['token']}", "Origin": stack.host.url},
        timeout=10,
    )
    assert who.json()["user_id"] == "u-client-1"
    with pytest.raises(PortalClientError) as caught:
        client.create_session("u-client-1", origin="https://evil.example")
    assert caught.value.status == 403 and caught.value.error == "origin_not_allowed"


def test_list_apps_shows_connected_flags(
    client: PortalClient, api: Api, connected: str, user_id: str
) -> None:
    apps = {a["name"]: a for a in client.list_apps(user_id)}
    assert apps["sandbox"]["connected"] is True
    assert apps["sandbox-keys"]["connected"] is False
    assert all(not a["connected"] for a in client.list_apps(f"nobody-{uuid.uuid4().hex}"))


def test_accounts_list_get_delete(client: PortalClient, connected: str, user_id: str) -> None:
    [account] = client.list_accounts(user_id)
    assert account["id"] == connected and account["app"] == "sandbox"
    assert client.list_accounts(user_id, app="sandbox") == [account]
    assert client.list_accounts(user_id, app="sandbox-keys") == []
    assert client.get_account(user_id, connected) == account

    with pytest.raises(PortalClientError) as caught:
        client.get_account("someone-else", connected)  # another user's id: not found
    assert caught.value.status == 404 and caught.value.error == "not_found"
    assert caught.value.message

    removed = client.delete_account(user_id, connected)
    assert removed["connectedAccountId"] == connected
    assert removed["app"]["name"] == "sandbox" and removed["connected_accounts"] == []
    assert client.list_accounts(user_id) == []
    with pytest.raises(PortalClientError) as again:
        client.delete_account(user_id, connected)
    assert again.value.status == 404


def test_invoke_runs_a_function(client: PortalClient, connected: str, user_id: str) -> None:
    created = client.invoke(
        user_id, "sandbox-create-contact", {"name": "Grace", "email": "grace@example.test"}
    )
    assert created["network_code"] == 201 and created["output"]["email"] == "grace@example.test"
    listed = client.invoke(user_id, "sandbox-list-contacts", {"limit": 100}, connected)
    assert "grace@example.test" in [c["email"] for c in listed["output"]]
    assert "next_page" in listed

    with pytest.raises(PortalClientError) as caught:
        client.invoke(user_id, "sandbox-create-contact", {"name": "No Mail"})
    assert caught.value.status == 400
    assert {"field": "email", "message": "'email' is a required property"} in (caught.value.details)
    with pytest.raises(PortalClientError) as missing:
        client.invoke(user_id, "no-such-function", {})
    assert missing.value.status == 404


def test_request_goes_through_the_proxy(client: PortalClient, connected: str, user_id: str) -> None:
    made = client.request(
        user_id,
        "sandbox",
        "/contacts",
        method="POST",
        json={"name": "Linus", "email": "linus@example.test"},
    )
    assert made["email"] == "linus@example.test"
    page = client.request(user_id, "sandbox", "contacts?limit=100")
    assert "linus@example.test" in [c["email"] for c in page["data"]]

    with pytest.raises(PortalClientError) as upstream:
        client.request(user_id, "sandbox", "contacts/does-not-exist")
    assert upstream.value.status == 404
    with pytest.raises(PortalClientError) as unknown:
        client.request(user_id, "no-such-app", "anything")
    assert unknown.value.status == 404 and unknown.value.error == "unknown_app"


def test_trigger_event_and_read_it_back(client: PortalClient, user_id: str) -> None:
    queued = client.trigger_event(user_id, DEMO_APP_KEY, "Contact Created", {"name": "A"})
    assert queued["name"] == "Contact Created"
    assert [r["status"] for r in queued["runs"]] == ["queued"]
    event = client.get_event(user_id, queued["id"])
    assert event["id"] == queued["id"] and event["payload"] == {"name": "A"}

    with pytest.raises(PortalClientError) as caught:
        client.trigger_event(user_id, "another-project", "Contact Created", {})
    assert caught.value.status == 403 and caught.value.error == "project_mismatch"


def test_user_ids_a_header_cannot_carry_still_work(client: PortalClient) -> None:
    assert client.list_accounts("ユーザー\u00e9-42") == []


@pytest.mark.security("A user id with a lone surrogate")
def test_lone_surrogate_user_id_is_the_portals_400(client: PortalClient) -> None:
    # The client sends what it was given (its UTF-8 bytes, surrogates kept); the portal answers.
    for call in (
        lambda: client.list_accounts("a\ud800"),
        lambda: client.create_session("a\udfff", origin="http://127.0.0.1:9"),
    ):
        with pytest.raises(PortalClientError) as caught:
            call()
        assert (caught.value.status, caught.value.error) == (400, "invalid_user_id")


def test_wrong_secret_and_unreachable_portal(stack: DemoStack) -> None:
    wrong = PortalClient(f"{stack.portal.url}/portal", "not-the-secret")
    with pytest.raises(PortalClientError) as caught:
        wrong.list_accounts("u-1")
    assert caught.value.status == 401
    assert "not-the-secret" not in repr(wrong) and "not-the-secret" not in str(caught.value)

    nowhere = PortalClient("http://127.0.0.1:9/portal", DEMO_APP_SECRET, timeout=2)
    with pytest.raises(PortalClientError) as down:
        nowhere.list_apps("u-1")
    assert down.value.status == 0 and down.value.error == "unreachable"


def test_set_metadata_and_filter_by_tag(client: PortalClient, connected: str, user_id: str) -> None:
    account = client.set_metadata(user_id, connected, {"tags": ["vip"], "crm_id": 7})
    assert account["id"] == connected and account["metadata"] == {"tags": ["vip"], "crm_id": 7}
    assert [a["id"] for a in client.list_accounts(user_id, tag="vip")] == [connected]
    assert client.list_accounts(user_id, app="sandbox", tag="other") == []
    with pytest.raises(PortalClientError) as refused:
        client.set_metadata(user_id, connected, {"blob": "x" * 5000})
    assert refused.value.status == 400 and refused.value.error == "invalid_metadata"
