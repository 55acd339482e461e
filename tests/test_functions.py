"""Functions (Integry-style typed actions): the Slack, HubSpot, Intercom and Pipedrive catalog
entries and the requests their functions build, then getFunction / invokeFunction end to end
against the live sandbox provider.

The request tables follow each provider's own documentation: method, path, query and JSON body
are compared exactly, so a template change that would send something the provider does not
document fails here.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Api, connect_sandbox, new_session
from sqlalchemy import select

from portal._paths import STATIC_DIR
from portal.catalog import (
    SHIPPED_DIR,
    Catalog,
    Function,
    Pagination,
    dotted,
    load_catalog,
    validate_definition,
)
from portal.demo import DemoStack
from portal.functions import build_request, validate_params
from portal.store import FunctionCall

APPS = ("slack", "hubspot", "intercom", "pipedrive")
NOT_EXECUTED_KEYS = {"error", "error_details"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    """The shipped catalog with a client registered for each of the four apps."""
    return load_catalog(
        app_settings={slug: {"client_id": "x", "client_secret": "y"} for slug in APPS},
        environ={},
    )


def function(catalog: Catalog, name: str) -> Function:
    found = catalog.function(name)
    assert found is not None, name
    return found


def built(catalog: Catalog, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``build_request`` for ``name`` with the body decoded, after checking the params validate."""
    fn = function(catalog, name)
    assert validate_params(fn, params) == [], params
    spec = build_request(fn, params)
    body = spec["body"]
    if body is not None:
        assert spec["content_type"] == "application/json"
        body = json.loads(body)
    else:
        assert spec["content_type"] is None
    return {"method": spec["method"], "path": spec["path"], "query": spec["query"], "body": body}


# --------------------------------------------------------------------------- catalog entries


@pytest.mark.parametrize("slug", APPS)
def test_definition_validates_against_the_schema(slug: str) -> None:
    path = SHIPPED_DIR / f"{slug}.yaml"
    data = yaml.safe_load(path.read_text("utf-8"))
    assert validate_definition(data, path) == []
    assert data["slug"] == slug


OAUTH = {
    "slack": {
        "authorize_url": "https://slack.com/oauth/v2/authorize",
        "token_url": "https://slack.com/api/oauth.v2.access",
        "revoke_url": None,  # auth.revoke is not RFC 7009
        "scopes": ("chat:write", "channels:read"),
        "scope_separator": ",",
        "pkce": False,
        "token_endpoint_auth_method": "client_secret_basic",
    },
    "hubspot": {
        "authorize_url": "https://app.hubspot.com/oauth/authorize",
        "token_url": "https://api.hubapi.com/oauth/2026-03/token",
        "revoke_url": "https://api.hubapi.com/oauth/2026-03/token/revoke",
        "scopes": ("oauth", "crm.objects.contacts.write"),
        "scope_separator": " ",
        "pkce": True,
        "token_endpoint_auth_method": "client_secret_post",
    },
    "intercom": {
        "authorize_url": "https://app.intercom.com/oauth",
        "token_url": "https://api.intercom.io/auth/eagle/token",
        "revoke_url": None,
        "scopes": (),  # permissions are set on the app in the Developer Hub
        "scope_separator": " ",
        "pkce": True,
        "token_endpoint_auth_method": "client_secret_post",
    },
    "pipedrive": {
        "authorize_url": "https://oauth.pipedrive.com/oauth/authorize",
        "token_url": "https://oauth.pipedrive.com/oauth/token",
        "revoke_url": "https://oauth.pipedrive.com/oauth/revoke",
        "scopes": (),  # scopes are set on the app in Developer Hub
        "scope_separator": " ",
        "pkce": True,
        "token_endpoint_auth_method": "client_secret_basic",
    },
}

API_AND_IDENTITY = {
    "slack": ("https://slack.com/api", "https://slack.com/api/auth.test", "team_id", "team"),
    "hubspot": (
        "https://api.hubapi.com",
        "https://api.hubapi.com/account-info/2026-03/details",
        "portalId",
        None,
    ),
    "intercom": (
        "https://api.intercom.io",
        "https://api.intercom.io/me",
        "app.id_code",
        "app.name",
    ),
    "pipedrive": (
        "https://api.pipedrive.com",
        "https://api.pipedrive.com/v1/users/me",
        "data.id",
        "data.email",
    ),
}

FUNCTIONS = {
    "slack": [
        "slack-post-message",
        "slack-list-channels",
        "slack-list-messages",
        "slack-update-message",
        "slack-get-channel",
        "slack-list-users",
        "slack-get-user",
        "slack-find-user-by-email",
        "slack-list-replies",
        "slack-add-reaction",
        "slack-delete-message",
        "slack-create-channel",
        "slack-invite-to-channel",
    ],
    "hubspot": [
        "hubspot-create-contact",
        "hubspot-get-contact",
        "hubspot-update-contact",
        "hubspot-list-contacts",
        "hubspot-search-contacts",
        "hubspot-create-company",
        "hubspot-list-companies",
        "hubspot-create-deal",
        "hubspot-list-deals",
        "hubspot-list-owners",
        "hubspot-create-ticket",
        "hubspot-list-tickets",
        "hubspot-get-company",
        "hubspot-update-company",
        "hubspot-search-companies",
        "hubspot-get-deal",
        "hubspot-update-deal",
        "hubspot-search-deals",
    ],
    "intercom": [
        "intercom-create-contact",
        "intercom-update-contact",
        "intercom-get-contact",
        "intercom-search-contacts",
        "intercom-send-message",
        "intercom-list-conversations",
        "intercom-reply-to-conversation",
        "intercom-list-contacts",
        "intercom-get-conversation",
        "intercom-create-note",
        "intercom-tag-contact",
    ],
    "pipedrive": [
        "pipedrive-add-a-person",
        "pipedrive-get-all-persons",
        "pipedrive-get-all-deals",
        "pipedrive-add-a-deal",
        "pipedrive-update-a-deal",
        "pipedrive-get-all-organizations",
        "pipedrive-search-persons",
        "pipedrive-get-a-deal",
        "pipedrive-search-deals",
        "pipedrive-add-an-organization",
        "pipedrive-add-an-activity",
        "pipedrive-add-a-note",
    ],
}


@pytest.mark.parametrize("slug", APPS)
def test_oauth_settings(catalog: Catalog, slug: str) -> None:
    app = catalog.get(slug)
    assert app is not None and app.auth_type == "oauth2" and app.oauth2 is not None
    settings = app.oauth2
    assert {key: getattr(settings, key) for key in OAUTH[slug]} == OAUTH[slug]
    assert settings.authorize_params == {} and settings.token_params == {}
    assert app.docs_url and app.docs_url.startswith("https://")
    assert app.client.client_id == "x" and app.usable


@pytest.mark.parametrize("slug", APPS)
def test_api_base_and_identity(catalog: Catalog, slug: str) -> None:
    app = catalog.get(slug)
    assert app is not None and app.identity is not None
    base, url, external_id, label = API_AND_IDENTITY[slug]
    assert app.api_base_url == base
    assert (app.identity.url, app.identity.external_id, app.identity.label) == (
        url,
        external_id,
        label,
    )


@pytest.mark.parametrize("slug", APPS)
def test_functions_of_each_app(catalog: Catalog, slug: str) -> None:
    app = catalog.get(slug)
    assert app is not None
    assert [f.name for f in app.functions] == FUNCTIONS[slug]
    for fn in app.functions:
        assert fn.app == slug and fn.title and fn.description
        # Every parameter is described, so getFunction is self-explanatory.
        for name, schema in fn.params.get("properties", {}).items():
            assert schema.get("description"), f"{fn.name}.{name} has no description"


@pytest.mark.parametrize("slug", APPS)
def test_apps_need_a_client_id_until_configured(slug: str) -> None:
    app = load_catalog(environ={}).get(slug)
    assert app is not None
    assert not app.usable and app.missing == ("client_id",)
    from_env = load_catalog(
        environ={
            f"PORTAL_{slug.upper()}_CLIENT_ID": "cid",
            f"PORTAL_{slug.upper()}_CLIENT_SECRET": "s",
        }
    ).get(slug)
    assert from_env is not None and from_env.usable


@pytest.mark.parametrize(("slug", "colour"), [("hubspot", "#FF7A59"), ("intercom", "#6AFDEF")])
def test_icons_are_shipped_with_the_brand_colour(catalog: Catalog, slug: str, colour: str) -> None:
    app = catalog.get(slug)
    assert app is not None and app.icon == f"{slug}.svg"
    svg = (Path(STATIC_DIR) / "icons" / app.icon).read_text("utf-8")
    assert svg.startswith("<svg") and 'viewBox="0 0 24 24"' in svg
    assert f'fill="{colour}"' in svg
    assert "<script" not in svg and "href" not in svg


@pytest.mark.parametrize("slug", ["slack", "pipedrive"])
def test_apps_without_a_simple_icons_svg_use_the_default_icon(catalog: Catalog, slug: str) -> None:
    app = catalog.get(slug)
    assert app is not None and app.icon is None


# --------------------------------------------------------------------------- requests built

REQUESTS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "slack-post-message",
        {"channel": "C1234567890", "text": "Hello world"},
        {
            "method": "POST",
            "path": "chat.postMessage",
            "query": [],
            "body": {"channel": "C1234567890", "text": "Hello world"},
        },
    ),
    (
        "slack-post-message",
        {
            "channel": "C1234567890",
            "text": "Hello world",
            "blocks": [{"type": "section", "text": {"type": "plain_text", "text": "Hello world"}}],
            "thread_ts": "1405894322.002768",
            "reply_broadcast": True,
            "unfurl_links": False,
        },
        {
            "method": "POST",
            "path": "chat.postMessage",
            "query": [],
            "body": {
                "channel": "C1234567890",
                "text": "Hello world",
                "blocks": [
                    {"type": "section", "text": {"type": "plain_text", "text": "Hello world"}}
                ],
                "thread_ts": "1405894322.002768",
                "reply_broadcast": True,
                "unfurl_links": False,
            },
        },
    ),
    (
        "slack-list-channels",
        {},
        {"method": "GET", "path": "conversations.list", "query": [], "body": None},
    ),
    (
        "slack-list-channels",
        {"types": "public_channel,private_channel", "exclude_archived": True, "limit": 200},
        {
            "method": "GET",
            "path": "conversations.list",
            "query": [
                ("types", "public_channel,private_channel"),
                ("exclude_archived", "true"),
                ("limit", "200"),
            ],
            "body": None,
        },
    ),
    (
        "hubspot-create-contact",
        {"email": "example@hubspot.com", "firstname": "Jane", "lastname": "Doe"},
        {
            "method": "POST",
            "path": "crm/v3/objects/contacts",
            "query": [],
            "body": {
                "properties": {
                    "email": "example@hubspot.com",
                    "firstname": "Jane",
                    "lastname": "Doe",
                }
            },
        },
    ),
    (
        "hubspot-create-contact",
        {"email": "example@hubspot.com"},
        {
            "method": "POST",
            "path": "crm/v3/objects/contacts",
            "query": [],
            "body": {"properties": {"email": "example@hubspot.com"}},
        },
    ),
    (
        # Intercom's own "Create contact" example (also in Paragon's Intercom guide).
        "intercom-create-contact",
        {
            "role": "user",
            "external_id": "25",
            "email": "wash@serenity.io",
            "phone": "+1123456789",
            "name": "Hoban Washburn",
            "avatar": "https://example.org/128Wash.jpg",
            "last_seen_at": 1571069751,
            "signed_up_at": 1571069751,
            "owner_id": 127,
            "unsubscribed_from_emails": False,
            "custom_attributes": {"paid_subscriber": True, "monthly_spend": 155.5, "team_mates": 1},
        },
        {
            "method": "POST",
            "path": "contacts",
            "query": [],
            "body": {
                "role": "user",
                "external_id": "25",
                "email": "wash@serenity.io",
                "phone": "+1123456789",
                "name": "Hoban Washburn",
                "avatar": "https://example.org/128Wash.jpg",
                "last_seen_at": 1571069751,
                "signed_up_at": 1571069751,
                "owner_id": 127,
                "unsubscribed_from_emails": False,
                "custom_attributes": {
                    "paid_subscriber": True,
                    "monthly_spend": 155.5,
                    "team_mates": 1,
                },
            },
        },
    ),
    (
        "intercom-create-contact",
        {"role": "lead"},
        {"method": "POST", "path": "contacts", "query": [], "body": {"role": "lead"}},
    ),
    (
        "intercom-update-contact",
        {"id": "63a07ddf05a32042dffac965", "email": "joebloggs@intercom.io", "name": "joe bloggs"},
        {
            "method": "PUT",
            "path": "contacts/63a07ddf05a32042dffac965",
            "query": [],
            "body": {"email": "joebloggs@intercom.io", "name": "joe bloggs"},
        },
    ),
    (
        # A path parameter is URL-encoded: it can never add a path segment.
        "intercom-update-contact",
        {"id": "../admins/1", "name": "x"},
        {
            "method": "PUT",
            "path": "contacts/..%2Fadmins%2F1",
            "query": [],
            "body": {"name": "x"},
        },
    ),
    (
        "intercom-get-contact",
        {"id": "63a07ddf05a32042dffac965"},
        {"method": "GET", "path": "contacts/63a07ddf05a32042dffac965", "query": [], "body": None},
    ),
    (
        "intercom-search-contacts",
        {"query": {"field": "email", "operator": "~", "value": "timur+1"}},
        {
            "method": "POST",
            "path": "contacts/search",
            "query": [],
            "body": {
                "query": {"field": "email", "operator": "~", "value": "timur+1"},
                "pagination": {"per_page": 50},
            },
        },
    ),
    (
        "intercom-search-contacts",
        {
            "query": {
                "operator": "AND",
                "value": [
                    {"field": "role", "operator": "=", "value": "user"},
                    {"field": "email", "operator": "~", "value": "@example.com"},
                ],
            },
            "per_page": 5,
        },
        {
            "method": "POST",
            "path": "contacts/search",
            "query": [],
            "body": {
                "query": {
                    "operator": "AND",
                    "value": [
                        {"field": "role", "operator": "=", "value": "user"},
                        {"field": "email", "operator": "~", "value": "@example.com"},
                    ],
                },
                "pagination": {"per_page": 5},
            },
        },
    ),
    (
        # Intercom's own "Create a message" example.
        "intercom-send-message",
        {
            "message_type": "email",
            "subject": "Hey",
            "body": "Ponies, cute small horses or something more sinister?",
            "template": "plain",
            "from_admin_id": "394051",
            "to_type": "user",
            "to_id": "536e564f316c83104c000020",
        },
        {
            "method": "POST",
            "path": "messages",
            "query": [],
            "body": {
                "message_type": "email",
                "subject": "Hey",
                "body": "Ponies, cute small horses or something more sinister?",
                "template": "plain",
                "from": {"type": "admin", "id": "394051"},
                "to": {"type": "user", "id": "536e564f316c83104c000020"},
            },
        },
    ),
    (
        "intercom-send-message",
        {
            "message_type": "inapp",
            "body": "Hello there",
            "from_admin_id": 394051,
            "to_type": "lead",
            "to_id": "536e564f316c83104c000020",
            "create_conversation_without_contact_reply": True,
        },
        {
            "method": "POST",
            "path": "messages",
            "query": [],
            "body": {
                "message_type": "inapp",
                "body": "Hello there",
                "from": {"type": "admin", "id": 394051},
                "to": {"type": "lead", "id": "536e564f316c83104c000020"},
                "create_conversation_without_contact_reply": True,
            },
        },
    ),
    (
        "pipedrive-add-a-person",
        {"name": "Will Smith"},
        {"method": "POST", "path": "v1/persons", "query": [], "body": {"name": "Will Smith"}},
    ),
    (
        "pipedrive-add-a-person",
        {
            "name": "Will Smith",
            "owner_id": 123,
            "org_id": 1234,
            "email": [{"value": "12345@email.com", "primary": True, "label": "work"}],
            "phone": "12345",
            "visible_to": "3",
            "marketing_status": "subscribed",
        },
        {
            "method": "POST",
            "path": "v1/persons",
            "query": [],
            "body": {
                "name": "Will Smith",
                "owner_id": 123,
                "org_id": 1234,
                "email": [{"value": "12345@email.com", "primary": True, "label": "work"}],
                "phone": "12345",
                "visible_to": "3",
                "marketing_status": "subscribed",
            },
        },
    ),
    (
        "pipedrive-get-all-persons",
        {},
        {"method": "GET", "path": "v1/persons", "query": [], "body": None},
    ),
    (
        "pipedrive-get-all-persons",
        {"limit": 100, "first_char": "w", "sort": "name ASC"},
        {
            "method": "GET",
            "path": "v1/persons",
            "query": [("first_char", "w"), ("limit", "100"), ("sort", "name ASC")],
            "body": None,
        },
    ),
]


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    REQUESTS,
    ids=[f"{r[0]}-{i}" for i, r in enumerate(REQUESTS)],
)
def test_request_built(
    catalog: Catalog, name: str, params: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert built(catalog, name, params) == expected


def test_every_shipped_function_has_a_request_test(catalog: Catalog) -> None:
    # The functions added with issue 17 have their request tests in test_function_requests.py.
    from test_function_requests import REQUESTS as MORE

    tested = {name for name, _, _ in REQUESTS} | {
        name for name, _, _ in MORE if name.split("-", 1)[0] in FUNCTIONS
    }
    assert tested == {name for names in FUNCTIONS.values() for name in names}


# --------------------------------------------------------------------------- pagination

PAGINATION = {
    "slack-list-channels": Pagination(
        cursor_param="cursor", next_cursor="response_metadata.next_cursor", cursor_in="query"
    ),
    "intercom-search-contacts": Pagination(
        cursor_param="pagination.starting_after",
        next_cursor="pages.next.starting_after",
        cursor_in="body",
    ),
    "pipedrive-get-all-persons": Pagination(
        cursor_param="start",
        next_cursor="additional_data.pagination.next_start",
        cursor_in="query",
    ),
    **{
        name: Pagination(
            cursor_param="cursor", next_cursor="response_metadata.next_cursor", cursor_in="query"
        )
        for name in ("slack-list-messages", "slack-list-users", "slack-list-replies")
    },
    **{
        name: Pagination(cursor_param="after", next_cursor="paging.next.after", cursor_in="query")
        for name in (
            "hubspot-list-contacts",
            "hubspot-list-companies",
            "hubspot-list-deals",
            "hubspot-list-owners",
            "hubspot-list-tickets",
        )
    },
    **{
        name: Pagination(cursor_param="after", next_cursor="paging.next.after", cursor_in="body")
        for name in (
            "hubspot-search-contacts",
            "hubspot-search-companies",
            "hubspot-search-deals",
        )
    },
    **{
        name: Pagination(
            cursor_param="cursor", next_cursor="additional_data.next_cursor", cursor_in="query"
        )
        for name in (
            "pipedrive-get-all-deals",
            "pipedrive-get-all-organizations",
            "pipedrive-search-persons",
            "pipedrive-search-deals",
        )
    },
    **{
        name: Pagination(
            cursor_param="starting_after",
            next_cursor="pages.next.starting_after",
            cursor_in="query",
        )
        for name in ("intercom-list-conversations", "intercom-list-contacts")
    },
}


def test_paginated_functions(catalog: Catalog) -> None:
    paginated = {
        f.name: f.pagination
        for slug in APPS
        for f in catalog.get(slug).functions  # type: ignore[union-attr]
        if f.pagination is not None
    }
    assert paginated == PAGINATION


def test_slack_cursor_goes_in_the_query(catalog: Catalog) -> None:
    request = built(
        catalog, "slack-list-channels", {"limit": 20, "next_page": "dXNlcjpVMDYxTkZUVDI="}
    )
    assert request["query"] == [("limit", "20"), ("cursor", "dXNlcjpVMDYxTkZUVDI=")]
    assert request["body"] is None


def test_intercom_cursor_goes_in_the_body_pagination(catalog: Catalog) -> None:
    cursor = "Wy0xLCI1ZjIyYzQzZjkxMjU5NmY1MDNiMjA4ZWUiLDJd"
    request = built(
        catalog,
        "intercom-search-contacts",
        {"query": {"field": "email", "operator": "~", "value": "timur+1"}, "next_page": cursor},
    )
    assert request["query"] == []  # not ?starting_after=, which Intercom ignores for search
    assert request["body"] == {
        "query": {"field": "email", "operator": "~", "value": "timur+1"},
        "pagination": {"per_page": 50, "starting_after": cursor},
    }


def test_pipedrive_cursor_is_the_start_offset(catalog: Catalog) -> None:
    request = built(catalog, "pipedrive-get-all-persons", {"limit": 100, "next_page": "100"})
    assert request["query"] == [("limit", "100"), ("start", "100")]


@pytest.mark.parametrize("name", sorted(PAGINATION))
def test_an_empty_cursor_is_the_first_page(catalog: Catalog, name: str) -> None:
    params: dict[str, Any] = {
        "intercom-search-contacts": {"query": {"field": "role", "operator": "=", "value": "user"}},
        "hubspot-search-contacts": {"query": "jane"},
        "hubspot-search-companies": {"query": "hubspot"},
        "hubspot-search-deals": {"query": "renewal"},
        "slack-list-messages": {"channel": "C1234567890"},
        "slack-list-replies": {"channel": "C1234567890", "ts": "1234567890.123456"},
        "pipedrive-search-persons": {"term": "will"},
        "pipedrive-search-deals": {"term": "renewal"},
    }.get(name, {})
    assert built(catalog, name, {**params, "next_page": ""}) == built(catalog, name, params)


def test_next_page_is_ignored_by_functions_without_pagination(catalog: Catalog) -> None:
    assert built(
        catalog, "hubspot-create-contact", {"email": "a@b.example", "next_page": "x"}
    ) == built(catalog, "hubspot-create-contact", {"email": "a@b.example"})


# Response shapes from the providers' documentation: where the next cursor sits, and that the
# last page has none.
RESPONSES = [
    (
        "slack-list-channels",
        {
            "ok": True,
            "channels": [{"id": "C012AB3CD", "name": "general"}],
            "response_metadata": {"next_cursor": "dGVhbTpDMDYxRkE1UEI="},
        },
        "dGVhbTpDMDYxRkE1UEI=",
    ),
    (
        "slack-list-channels",
        {"ok": True, "channels": [], "response_metadata": {"next_cursor": ""}},
        "",
    ),
    (
        "intercom-search-contacts",
        {
            "type": "list",
            "data": [],
            "total_count": 78,
            "pages": {
                "type": "pages",
                "next": {
                    "page": 2,
                    "starting_after": "Wy0xLCI1ZjIyYzQzZjkxMjU5NmY1MDNiMjA4ZWUiLDJd",
                },
                "page": 1,
                "per_page": 50,
                "total_pages": 2,
            },
        },
        "Wy0xLCI1ZjIyYzQzZjkxMjU5NmY1MDNiMjA4ZWUiLDJd",
    ),
    (
        "intercom-search-contacts",
        {"type": "list", "data": [], "pages": {"type": "pages", "page": 2, "total_pages": 2}},
        None,
    ),
    (
        "pipedrive-get-all-persons",
        {
            "success": True,
            "data": [{"id": 1, "name": "Will Smith"}],
            "additional_data": {
                "pagination": {
                    "start": 0,
                    "limit": 100,
                    "more_items_in_collection": True,
                    "next_start": 100,
                }
            },
        },
        100,
    ),
    (
        "pipedrive-get-all-persons",
        {
            "success": True,
            "data": [],
            "additional_data": {
                "pagination": {"start": 100, "limit": 100, "more_items_in_collection": False}
            },
        },
        None,
    ),
]


@pytest.mark.parametrize(("name", "document", "cursor"), RESPONSES)
def test_next_cursor_path_matches_the_documented_response(
    catalog: Catalog, name: str, document: dict[str, Any], cursor: Any
) -> None:
    fn = function(catalog, name)
    assert fn.pagination is not None
    assert dotted(document, fn.pagination.next_cursor) == cursor
    if fn.output:
        assert dotted(document, fn.output) == document["data"]


# --------------------------------------------------------------------------- param validation

INVALID = [
    ("slack-post-message", {"text": "hi"}, "channel", "'channel' is a required property"),
    ("slack-post-message", {"channel": "C1"}, "", "is not valid under any of the given schemas"),
    ("slack-post-message", {"channel": "C1", "text": "x", "as_user": True}, "", "as_user"),
    ("slack-list-channels", {"limit": 1000}, "limit", "1000 is greater than the maximum of 999"),
    ("slack-list-channels", {"types": "channels"}, "types", "does not match"),
    ("slack-list-channels", {"exclude_archived": "yes"}, "exclude_archived", "is not of type"),
    ("hubspot-create-contact", {}, "", "is not valid under any of the given schemas"),
    ("hubspot-create-contact", {"email": "not-an-address"}, "email", "does not match"),
    (
        "intercom-create-contact",
        {"role": "admin"},
        "role",
        "'admin' is not one of ['user', 'lead']",
    ),
    ("intercom-create-contact", {"name": "No key"}, "", "is not valid under any"),
    ("intercom-create-contact", {"role": "user", "owner_id": "127"}, "owner_id", "is not of type"),
    ("intercom-update-contact", {"email": "a@b.example"}, "id", "'id' is a required property"),
    ("intercom-update-contact", {"id": "1"}, "", "does not have enough properties"),
    ("intercom-update-contact", {"id": "1", "role": "visitor"}, "role", "is not one of"),
    ("intercom-get-contact", {}, "id", "'id' is a required property"),
    ("intercom-search-contacts", {}, "query", "'query' is a required property"),
    (
        "intercom-search-contacts",
        {"query": {"field": "email", "value": "x"}},
        "query.operator",
        "'operator' is a required property",
    ),
    (
        "intercom-search-contacts",
        {"query": {"field": "email", "operator": "=", "value": "x"}, "per_page": 151},
        "per_page",
        "151 is greater than the maximum of 150",
    ),
    (
        "intercom-send-message",
        {"message_type": "inapp", "body": "Hi", "from_admin_id": "1", "to_type": "user"},
        "to_id",
        "'to_id' is a required property",
    ),
    (
        "intercom-send-message",
        {
            "message_type": "sms",
            "body": "Hi",
            "from_admin_id": "1",
            "to_type": "user",
            "to_id": "2",
        },
        "message_type",
        "'sms' is not one of ['inapp', 'email']",
    ),
    (
        "intercom-send-message",
        {
            "message_type": "inapp",
            "body": "Hi",
            "from_admin_id": "1",
            "to_type": "admin",
            "to_id": "2",
        },
        "to_type",
        "'admin' is not one of ['user', 'lead']",
    ),
    (
        "intercom-send-message",
        {
            "message_type": "email",
            "subject": "Hey",
            "body": "Hi",
            "template": "fancy",
            "from_admin_id": "1",
            "to_type": "user",
            "to_id": "2",
        },
        "template",
        "'fancy' is not one of ['plain', 'personal']",
    ),
    ("pipedrive-add-a-person", {"email": "a@b.example"}, "name", "'name' is a required property"),
    ("pipedrive-add-a-person", {"name": "W", "visible_to": "2"}, "visible_to", "is not one of"),
    ("pipedrive-add-a-person", {"name": "W", "visible_to": 3}, "visible_to", "is not one of"),
    (
        "pipedrive-add-a-person",
        {"name": "W", "marketing_status": "maybe"},
        "marketing_status",
        "'maybe' is not one of ['no_consent', 'unsubscribed', 'subscribed', 'archived']",
    ),
    (
        "pipedrive-add-a-person",
        {"name": "W", "email": [{"primary": True}]},
        "email",
        "is not valid under any of the given schemas",
    ),
    (
        "pipedrive-get-all-persons",
        {"limit": 501},
        "limit",
        "501 is greater than the maximum of 500",
    ),
    ("pipedrive-get-all-persons", {"first_char": "ab"}, "first_char", "is too long"),
]


@pytest.mark.parametrize(
    ("name", "params", "field", "message"),
    INVALID,
    ids=[f"{r[0]}-{r[2] or 'object'}-{i}" for i, r in enumerate(INVALID)],
)
def test_invalid_params_are_refused_with_the_field(
    catalog: Catalog, name: str, params: dict[str, Any], field: str, message: str
) -> None:
    details = validate_params(function(catalog, name), params)
    assert details, params
    assert all(set(d) == {"field", "message"} for d in details)
    assert any(d["field"] == field and message in d["message"] for d in details), details


def test_email_messages_need_a_subject_and_a_template(catalog: Catalog) -> None:
    details = validate_params(
        function(catalog, "intercom-send-message"),
        {
            "message_type": "email",
            "body": "Hi",
            "from_admin_id": "1",
            "to_type": "user",
            "to_id": "2",
        },
    )
    assert sorted(d["field"] for d in details) == ["subject", "template"]


def test_next_page_is_not_a_param(catalog: Catalog) -> None:
    fn = function(catalog, "slack-list-channels")
    assert validate_params(fn, {"next_page": "abc"}) == []
    assert validate_params(fn, []) == [{"field": "", "message": "params must be an object"}]


# --------------------------------------------------------------------------- live sandbox


def function_calls(stack: DemoStack, user_id: str) -> list[tuple[str, int, str]]:
    """``(function, http_status, account_id)`` of every recorded call of ``user_id``."""
    store = stack.portal_app.extensions["portal"].store
    with store.session() as db:
        rows = db.execute(
            select(FunctionCall.function, FunctionCall.http_status, FunctionCall.account_id)
            .where(FunctionCall.user_id == user_id)
            .order_by(FunctionCall.created_at)
        ).all()
    return [(r[0], r[1], r[2]) for r in rows]


def invoke(api: Api, name: str, params: Any, **extra: Any) -> tuple[int, dict[str, Any]]:
    response = api.post(f"/functions/{name}/invoke", json={"params": params, **extra})
    return response.status_code, response.json()


def account_id(api: Api) -> str:
    accounts = api.get("/connected-accounts", params={"app": "sandbox"}).json()
    return str(accounts["connected_accounts"][0]["id"])


@pytest.fixture
def connected(api: Api, sandbox: str) -> Iterator[Api]:
    """``api``'s user with the sandbox connected (as the default demo user)."""
    callback, _ = connect_sandbox(api)
    assert callback.status_code == 200, callback.text[:500]
    yield api


def test_get_function_signature(api: Api, catalog: Catalog) -> None:
    response = api.get("/functions/sandbox-list-contacts")
    assert response.status_code == 200
    signature = response.json()
    assert set(signature) == {
        "name",
        "app",
        "title",
        "description",
        "parameters",
        "paginated",
        "required_scopes",
    }
    assert signature["name"] == "sandbox-list-contacts" and signature["app"] == "sandbox"
    assert signature["required_scopes"] == []
    # A function that needs a scope says which, so a host can ask for it before the call.
    delete = api.get("/functions/sandbox-delete-contact").json()
    assert delete["required_scopes"] == list(
        function(catalog, "sandbox-delete-contact").required_scopes
    )
    assert delete["required_scopes"], delete
    assert signature["paginated"] is True
    assert signature["parameters"] == dict(function(catalog, "sandbox-list-contacts").params)
    create = api.get("/functions/sandbox-create-contact").json()
    assert create["paginated"] is False
    assert create["parameters"]["required"] == ["name", "email"]

    listed = api.get("/functions", params={"app": "sandbox"}).json()["functions"]
    assert [f["name"] for f in listed] == [
        "sandbox-list-contacts",
        "sandbox-create-contact",
        "sandbox-delete-contact",
        "sandbox-get-contact",
    ]


def test_functions_of_unconfigured_apps_are_not_offered(api: Api) -> None:
    names = {f["name"] for f in api.get("/functions").json()["functions"]}
    assert not any(name.startswith(tuple(f"{s}-" for s in APPS)) for name in names)
    for name in ("slack-post-message", "intercom-search-contacts", "no-such-function"):
        response = api.get(f"/functions/{name}")
        assert response.status_code == 404
        assert response.json()["error"] == "unknown_function"
        status, _ = invoke(api, name, {})
        assert status == 404


def test_invoke_success_shape(connected: Api, stack: DemoStack) -> None:
    api = connected
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    status, created = invoke(api, "sandbox-create-contact", {"name": "Ada Byron", "email": email})
    assert status == 200, created
    assert set(created) == {"network_code", "output"}  # not paginated: no next_page
    assert created["network_code"] == 201
    assert created["output"]["email"] == email

    status, got = invoke(api, "sandbox-get-contact", {"id": created["output"]["id"]})
    assert status == 200 and got["network_code"] == 200
    assert got["output"] == created["output"]

    status, page = invoke(api, "sandbox-list-contacts", {"limit": 2})
    assert status == 200
    assert set(page) == {"network_code", "output", "next_page"}
    assert page["network_code"] == 200 and len(page["output"]) == 2
    assert isinstance(page["next_page"], str) and page["next_page"]

    # An upstream error is still an executed call: 200 with the upstream status.
    status, missing = invoke(api, "sandbox-get-contact", {"id": "999999999"})
    assert status == 200 and missing["network_code"] == 404
    assert missing["output"]["error"] == "not_found"

    account = account_id(api)
    assert function_calls(stack, api.user_id) == [
        ("sandbox-create-contact", 201, account),
        ("sandbox-get-contact", 200, account),
        ("sandbox-list-contacts", 200, account),
        ("sandbox-get-contact", 404, account),
    ]


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("sandbox-create-contact", {"name": "No Email"}, "email"),
        ("sandbox-create-contact", {"name": "Bad", "email": "not-an-address"}, "email"),
        ("sandbox-create-contact", {"name": "", "email": "a@b.example"}, "name"),
        ("sandbox-list-contacts", {"limit": 1000}, "limit"),
        ("sandbox-list-contacts", {"limit": "ten"}, "limit"),
        ("sandbox-list-contacts", {"colour": "red"}, ""),
        ("sandbox-get-contact", {}, "id"),
        ("sandbox-list-contacts", ["not", "an", "object"], ""),
    ],
)
def test_invalid_params_are_400_and_not_recorded(
    connected: Api, stack: DemoStack, name: str, params: Any, field: str
) -> None:
    status, body = invoke(connected, name, params)
    assert status == 400
    assert set(body) == NOT_EXECUTED_KEYS
    assert isinstance(body["error"], str) and body["error"]
    assert body["error_details"], body
    assert all(set(d) == {"field", "message"} for d in body["error_details"])
    assert field in [d["field"] for d in body["error_details"]]
    assert function_calls(stack, connected.user_id) == []


def test_unconnected_account_is_404_and_not_recorded(
    api: Api, stack: DemoStack, sandbox: str
) -> None:
    status, body = invoke(api, "sandbox-list-contacts", {"limit": 5})
    assert status == 404
    assert body == {"error": body["error"], "error_details": []}
    assert "Sandbox CRM" in body["error"]

    # Another user's account is not this user's to use.
    other = new_session(stack, f"user-{uuid.uuid4().hex[:12]}")
    connect_sandbox(other)
    status, body = invoke(
        api, "sandbox-list-contacts", {"limit": 5}, connectedAccountId=account_id(other)
    )
    assert status == 404 and set(body) == NOT_EXECUTED_KEYS and body["error_details"] == []
    assert function_calls(stack, api.user_id) == []
    assert function_calls(stack, other.user_id) == []


def cli_lines(stack: DemoStack, *args: str) -> list[str]:
    result = stack.portal_app.test_cli_runner().invoke(args=["portal", *args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_pagination_walks_all_pages_and_every_call_is_recorded(
    api: Api, stack: DemoStack, sandbox: str
) -> None:
    callback, _ = connect_sandbox(api, user="linus")
    assert callback.status_code == 200
    executed = 0

    def walk(limit: int) -> list[dict[str, Any]]:
        nonlocal executed
        pages: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": limit}
        while True:
            status, page = invoke(api, "sandbox-list-contacts", params)
            executed += 1
            assert status == 200 and page["network_code"] == 200, page
            pages.append(page)
            if not page["next_page"]:
                return pages
            assert len(pages) < 50, "pagination does not stop"
            params = {"limit": limit, "next_page": page["next_page"]}

    existing = sum(len(p["output"]) for p in walk(100))
    assert existing <= 250, f"the sandbox user already has {existing} contacts"
    for i in range(250 - existing):
        status, created = invoke(
            api,
            "sandbox-create-contact",
            {"name": f"Contact {i}", "email": f"c{i}.{uuid.uuid4().hex[:6]}@example.com"},
        )
        executed += 1
        assert status == 200 and created["network_code"] == 201, created

    pages = walk(100)
    assert [len(p["output"]) for p in pages] == [100, 100, 50]
    assert [bool(p["next_page"]) for p in pages] == [True, True, False]
    assert pages[-1]["next_page"] == ""
    ids = [c["id"] for p in pages for c in p["output"]]
    assert len(ids) == 250 and len(set(ids)) == 250

    # Every executed invocation is in the call log, with the upstream status …
    calls = function_calls(stack, api.user_id)
    assert len(calls) == executed
    account = account_id(api)
    assert {(f, s, a) for f, s, a in calls} <= {
        ("sandbox-list-contacts", 200, account),
        ("sandbox-create-contact", 201, account),
    }
    assert sum(1 for f, _, _ in calls if f == "sandbox-create-contact") == 250 - existing

    # … and `flask portal function-calls` lists them.
    mine = [
        line
        for line in cli_lines(stack, "function-calls", "--limit", "100000")
        if line.endswith(f"user {api.user_id}")
    ]
    assert len(mine) == executed
    assert all(f"account {account}" in line for line in mine)
    listed = [
        line
        for line in cli_lines(
            stack, "function-calls", "--function", "sandbox-list-contacts", "--limit", "100000"
        )
        if line.endswith(f"user {api.user_id}")
    ]
    assert len(listed) == sum(1 for f, _, _ in calls if f == "sandbox-list-contacts")
    assert all(re.search(r"\bsandbox-list-contacts\s+200\b", line) for line in listed)


def test_apps_list_shows_the_new_apps_need_a_client_id(stack: DemoStack) -> None:
    lines = {line.split()[0]: line.split(None, 2)[1:] for line in cli_lines(stack, "apps", "list")}
    for slug in APPS:
        assert lines[slug] == ["oauth2", "needs client_id"]
    assert lines["sandbox"] == ["oauth2", "ready"]
