"""The exact request each shipped function builds, checked against the provider's documented
shape (method, path under the app's API base URL, query and JSON body), and where each
paginated function finds its next cursor in the provider's documented response.

``tests/test_functions.py`` covers the Slack, HubSpot, Intercom and Pipedrive functions it was
written for; this file covers the rest, and a test below fails when a shipped function is in
neither. Every function also names its source (``# source: <provider docs URL>``) right above
its entry in the app's YAML file.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

import pytest
import test_catalog_gaps
import test_functions
from test_functions import REQUESTS as BASE_REQUESTS

from portal.catalog import SHIPPED_DIR, Catalog, dotted, load_catalog
from portal.functions import build_request, validate_params
from portal.proxy import build_url

CLOUD = "11223344-a1b2-3b33-c444-def123456789"
SHEET = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"
PAGE = "b55c9c91-384d-452b-81db-d1ef79372b75"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(environ={})


def built(catalog: Catalog, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The request ``name`` builds for ``params`` (body decoded), after checking they validate."""
    fn = catalog.function(name)
    assert fn is not None, name
    assert validate_params(fn, params) == [], params
    spec = build_request(fn, params)
    body = spec["body"]
    if body is not None and spec["content_type"] == "application/x-www-form-urlencoded":
        body = parse_qsl(body.decode(), strict_parsing=True)
    elif body is not None:
        assert spec["content_type"] == "application/json"
        body = json.loads(body)
    return {"method": spec["method"], "path": spec["path"], "query": spec["query"], "body": body}


def req(
    method: str, path: str, query: list[tuple[str, str]] | None = None, body: Any = None
) -> dict[str, Any]:
    return {"method": method, "path": path, "query": query or [], "body": body}


# (function, params, expected request). Values follow the examples of the page named by the
# function's `# source:` comment.
REQUESTS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # ---------------------------------------------------------------- Slack
    (
        "slack-list-messages",
        {"channel": "C123ABC456", "oldest": "1234567890.123456", "inclusive": True, "limit": 20},
        req(
            "GET",
            "conversations.history",
            [
                ("channel", "C123ABC456"),
                ("oldest", "1234567890.123456"),
                ("inclusive", "true"),
                ("limit", "20"),
            ],
        ),
    ),
    (
        "slack-update-message",
        {
            "channel": "C123ABC456",
            "ts": "1401383885.000061",
            "text": "Updated text you carefully authored",
        },
        req(
            "POST",
            "chat.update",
            body={
                "channel": "C123ABC456",
                "ts": "1401383885.000061",
                "text": "Updated text you carefully authored",
            },
        ),
    ),
    (
        "slack-get-channel",
        {"channel": "C123ABC456", "include_num_members": True},
        req(
            "GET",
            "conversations.info",
            [("channel", "C123ABC456"), ("include_num_members", "true")],
        ),
    ),
    ("slack-list-users", {"limit": 200}, req("GET", "users.list", [("limit", "200")])),
    ("slack-get-user", {"user": "W123ABC456"}, req("GET", "users.info", [("user", "W123ABC456")])),
    (
        "slack-find-user-by-email",
        {"email": "spengler@ghostbusters.example.com"},
        req("GET", "users.lookupByEmail", [("email", "spengler@ghostbusters.example.com")]),
    ),
    # ---------------------------------------------------------------- HubSpot
    (
        "hubspot-get-contact",
        {"contact_id": "12345", "properties": "email,firstname,lastname"},
        req("GET", "crm/v3/objects/contacts/12345", [("properties", "email,firstname,lastname")]),
    ),
    (
        "hubspot-update-contact",
        {"contact_id": "12345", "properties": {"lifecyclestage": "customer", "phone": ""}},
        req(
            "PATCH",
            "crm/v3/objects/contacts/12345",
            body={"properties": {"lifecyclestage": "customer", "phone": ""}},
        ),
    ),
    (
        "hubspot-list-contacts",
        {"limit": 100, "properties": "email,firstname"},
        req(
            "GET", "crm/v3/objects/contacts", [("limit", "100"), ("properties", "email,firstname")]
        ),
    ),
    (
        "hubspot-search-contacts",
        {
            "filter_groups": [
                {
                    "filters": [
                        {
                            "propertyName": "email",
                            "operator": "CONTAINS_TOKEN",
                            "value": "*@hubspot.com",
                        }
                    ]
                }
            ],
            "properties": ["email", "firstname"],
            "sorts": [{"propertyName": "createdate", "direction": "DESCENDING"}],
        },
        req(
            "POST",
            "crm/v3/objects/contacts/search",
            body={
                "filterGroups": [
                    {
                        "filters": [
                            {
                                "propertyName": "email",
                                "operator": "CONTAINS_TOKEN",
                                "value": "*@hubspot.com",
                            }
                        ]
                    }
                ],
                "properties": ["email", "firstname"],
                "sorts": [{"propertyName": "createdate", "direction": "DESCENDING"}],
                "limit": 100,
            },
        ),
    ),
    (
        "hubspot-search-contacts",
        {"query": "x", "limit": 10},
        req("POST", "crm/v3/objects/contacts/search", body={"query": "x", "limit": 10}),
    ),
    (
        "hubspot-create-company",
        {"name": "HubSpot", "domain": "hubspot.com"},
        req(
            "POST",
            "crm/v3/objects/companies",
            body={"properties": {"name": "HubSpot", "domain": "hubspot.com"}},
        ),
    ),
    (
        "hubspot-list-companies",
        {"limit": 10, "properties": "name,domain"},
        req("GET", "crm/v3/objects/companies", [("limit", "10"), ("properties", "name,domain")]),
    ),
    (
        "hubspot-create-deal",
        {
            "dealname": "New deal",
            "amount": "1500.00",
            "pipeline": "default",
            "dealstage": "contractsent",
            "closedate": "2019-12-07T16:50:06.678Z",
        },
        req(
            "POST",
            "crm/v3/objects/deals",
            body={
                "properties": {
                    "dealname": "New deal",
                    "amount": "1500.00",
                    "pipeline": "default",
                    "dealstage": "contractsent",
                    "closedate": "2019-12-07T16:50:06.678Z",
                }
            },
        ),
    ),
    ("hubspot-list-deals", {}, req("GET", "crm/v3/objects/deals")),
    # ---------------------------------------------------------------- Notion
    (
        "notion-search",
        {
            "query": "External tasks",
            "filter": {"value": "data_source", "property": "object"},
            "sort": {"direction": "ascending", "timestamp": "last_edited_time"},
        },
        req(
            "POST",
            "search",
            body={
                "query": "External tasks",
                "filter": {"value": "data_source", "property": "object"},
                "sort": {"direction": "ascending", "timestamp": "last_edited_time"},
            },
        ),
    ),
    ("notion-get-page", {"page_id": PAGE}, req("GET", f"pages/{PAGE}")),
    (
        "notion-create-page",
        {
            "parent": {"page_id": "494c87d0-72c4-4cf6-960f-55f8427f7692"},
            "properties": {
                "title": {"title": [{"text": {"content": "A note from your pals at Notion"}}]}
            },
            "children": [
                {
                    "object": "block",
                    "paragraph": {
                        "rich_text": [
                            {"text": {"content": "You made this page using the Notion API."}}
                        ]
                    },
                }
            ],
        },
        req(
            "POST",
            "pages",
            body={
                "parent": {"page_id": "494c87d0-72c4-4cf6-960f-55f8427f7692"},
                "properties": {
                    "title": {"title": [{"text": {"content": "A note from your pals at Notion"}}]}
                },
                "children": [
                    {
                        "object": "block",
                        "paragraph": {
                            "rich_text": [
                                {"text": {"content": "You made this page using the Notion API."}}
                            ]
                        },
                    }
                ],
            },
        ),
    ),
    (
        "notion-update-page",
        {"page_id": PAGE, "properties": {"In stock": {"checkbox": True}}},
        req("PATCH", f"pages/{PAGE}", body={"properties": {"In stock": {"checkbox": True}}}),
    ),
    (
        "notion-query-data-source",
        {
            "data_source_id": "897e5a76ae524b489fdfe71f5945d1af",
            "filter": {"property": "Landmark", "rich_text": {"contains": "Bridge"}},
            "sorts": [{"property": "Last ordered", "direction": "ascending"}],
            "page_size": 50,
        },
        req(
            "POST",
            "data_sources/897e5a76ae524b489fdfe71f5945d1af/query",
            body={
                "filter": {"property": "Landmark", "rich_text": {"contains": "Bridge"}},
                "sorts": [{"property": "Last ordered", "direction": "ascending"}],
                "page_size": 50,
            },
        ),
    ),
    (
        "notion-list-block-children",
        {"block_id": PAGE, "page_size": 100},
        req("GET", f"blocks/{PAGE}/children", [("page_size", "100")]),
    ),
    # ---------------------------------------------------------------- Jira
    (
        "jira-search-issues",
        {"cloud_id": CLOUD, "jql": "project = HSP", "fields": "summary,status", "max_results": 50},
        req(
            "GET",
            f"ex/jira/{CLOUD}/rest/api/3/search/jql",
            [("jql", "project = HSP"), ("fields", "summary,status"), ("maxResults", "50")],
        ),
    ),
    (
        "jira-get-issue",
        {"cloud_id": CLOUD, "issue": "ED-1", "expand": "renderedFields"},
        req("GET", f"ex/jira/{CLOUD}/rest/api/3/issue/ED-1", [("expand", "renderedFields")]),
    ),
    (
        "jira-create-issue",
        {
            "cloud_id": CLOUD,
            "project_key": "HSP",
            "summary": "Main order flow broken",
            "issue_type": "Bug",
            "description": {
                "type": "doc",
                "version": 1,
                "content": [
                    {
                        "type": "paragraph",
                        "content": [{"type": "text", "text": "Order entry fails"}],
                    }
                ],
            },
            "labels": ["bugfix", "blitz_test"],
        },
        req(
            "POST",
            f"ex/jira/{CLOUD}/rest/api/3/issue",
            body={
                "fields": {
                    "project": {"key": "HSP"},
                    "summary": "Main order flow broken",
                    "issuetype": {"name": "Bug"},
                    "description": {
                        "type": "doc",
                        "version": 1,
                        "content": [
                            {
                                "type": "paragraph",
                                "content": [{"type": "text", "text": "Order entry fails"}],
                            }
                        ],
                    },
                    "labels": ["bugfix", "blitz_test"],
                }
            },
        ),
    ),
    (
        "jira-update-issue",
        {
            "cloud_id": CLOUD,
            "issue": "10000",
            "fields": {"summary": "Completed orders still displaying in pending"},
        },
        req(
            "PUT",
            f"ex/jira/{CLOUD}/rest/api/3/issue/10000",
            body={"fields": {"summary": "Completed orders still displaying in pending"}},
        ),
    ),
    (
        "jira-add-comment",
        {
            "cloud_id": CLOUD,
            "issue": "HSP-1",
            "body": {
                "type": "doc",
                "version": 1,
                "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "Lorem ipsum"}]}
                ],
            },
        },
        req(
            "POST",
            f"ex/jira/{CLOUD}/rest/api/3/issue/HSP-1/comment",
            body={
                "body": {
                    "type": "doc",
                    "version": 1,
                    "content": [
                        {"type": "paragraph", "content": [{"type": "text", "text": "Lorem ipsum"}]}
                    ],
                }
            },
        ),
    ),
    # ---------------------------------------------------------------- GitHub
    (
        "github-get-issue",
        {"owner": "octocat", "repo": "Hello-World", "issue_number": 1347},
        req("GET", "repos/octocat/Hello-World/issues/1347"),
    ),
    (
        "github-update-issue",
        {
            "owner": "octocat",
            "repo": "Hello-World",
            "issue_number": 1347,
            "title": "Found a bug",
            "body": "I'm having a problem with this.",
            "assignees": ["octocat"],
            "state": "open",
            "labels": ["bug"],
        },
        req(
            "PATCH",
            "repos/octocat/Hello-World/issues/1347",
            body={
                "title": "Found a bug",
                "body": "I'm having a problem with this.",
                "state": "open",
                "labels": ["bug"],
                "assignees": ["octocat"],
            },
        ),
    ),
    (
        "github-create-issue-comment",
        {"owner": "octocat", "repo": "Hello-World", "issue_number": 1347, "body": "Me too"},
        req("POST", "repos/octocat/Hello-World/issues/1347/comments", body={"body": "Me too"}),
    ),
    (
        "github-get-pull-request",
        {"owner": "octocat", "repo": "Hello-World", "pull_number": 1347},
        req("GET", "repos/octocat/Hello-World/pulls/1347"),
    ),
    (
        "github-create-pull-request",
        {
            "owner": "octocat",
            "repo": "Hello-World",
            "title": "Amazing new feature",
            "body": "Please pull these awesome changes in!",
            "head": "octocat:new-feature",
            "base": "master",
        },
        req(
            "POST",
            "repos/octocat/Hello-World/pulls",
            body={
                "title": "Amazing new feature",
                "head": "octocat:new-feature",
                "base": "master",
                "body": "Please pull these awesome changes in!",
            },
        ),
    ),
    # ---------------------------------------------------------------- Gmail
    (
        "gmail-send-message",
        {
            "raw": "VG86IGFAYi5leGFtcGxlDQpTdWJqZWN0OiBIaQ0KDQpIZWxsbw",
            "thread_id": "18c2f0e1a2b3c4d5",
        },
        req(
            "POST",
            "users/me/messages/send",
            body={
                "raw": "VG86IGFAYi5leGFtcGxlDQpTdWJqZWN0OiBIaQ0KDQpIZWxsbw",
                "threadId": "18c2f0e1a2b3c4d5",
            },
        ),
    ),
    (
        "gmail-list-messages",
        {"q": "from:someuser@example.com is:unread", "max_results": 50},
        req(
            "GET",
            "users/me/messages",
            [("q", "from:someuser@example.com is:unread"), ("maxResults", "50")],
        ),
    ),
    (
        "gmail-get-message",
        {"id": "18c2f0e1a2b3c4d5", "format": "metadata"},
        req("GET", "users/me/messages/18c2f0e1a2b3c4d5", [("format", "metadata")]),
    ),
    # ---------------------------------------------------------------- Google Sheets
    (
        # The A1 range is one path segment: '!' and ':' are percent-encoded, which Google decodes.
        "google-sheets-get-values",
        {"spreadsheet_id": SHEET, "range": "Sheet1!A1:D5", "major_dimension": "ROWS"},
        req("GET", f"spreadsheets/{SHEET}/values/Sheet1%21A1%3AD5", [("majorDimension", "ROWS")]),
    ),
    (
        "google-sheets-append-rows",
        {
            "spreadsheet_id": SHEET,
            "range": "Sheet1!A1:E1",
            "values": [["Door", "$15", "2", "3/15/2016"]],
        },
        req(
            "POST",
            f"spreadsheets/{SHEET}/values/Sheet1%21A1%3AE1:append",
            [("valueInputOption", "USER_ENTERED")],
            {"values": [["Door", "$15", "2", "3/15/2016"]]},
        ),
    ),
    (
        "google-sheets-update-values",
        {
            "spreadsheet_id": SHEET,
            "range": "Sheet1!A1:C1",
            "values": [[1, 2, "=A1+B1"]],
            "value_input_option": "RAW",
        },
        req(
            "PUT",
            f"spreadsheets/{SHEET}/values/Sheet1%21A1%3AC1",
            [("valueInputOption", "RAW")],
            {"values": [[1, 2, "=A1+B1"]]},
        ),
    ),
    (
        "google-sheets-get-spreadsheet",
        {"spreadsheet_id": SHEET},
        req("GET", f"spreadsheets/{SHEET}"),
    ),
]

# Functions shipped before this file: their requests, from the same kind of documented examples.
REQUESTS += [
    (
        "airtable-create-record",
        {
            "base_id": "appABC1234567890a",
            "table": "Tasks",
            "fields": {"Name": "Buy milk", "Done": False},
            "typecast": True,
        },
        req(
            "POST",
            "appABC1234567890a/Tasks",
            body={"fields": {"Name": "Buy milk", "Done": False}, "typecast": True},
        ),
    ),
    (
        "anthropic-create-message",
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": "Hello, Claude"}],
        },
        req(
            "POST",
            "messages",
            body={
                "model": "claude-sonnet-4-5",
                "max_tokens": 1024,
                "messages": [{"role": "user", "content": "Hello, Claude"}],
            },
        ),
    ),
    (
        "asana-create-task",
        {
            "name": "Buy catnip",
            "notes": "Mittens really likes the stuff",
            "workspace": "12345",
            "due_on": "2019-09-15",
        },
        req(
            "POST",
            "tasks",
            body={
                "data": {
                    "name": "Buy catnip",
                    "notes": "Mittens really likes the stuff",
                    "workspace": "12345",
                    "due_on": "2019-09-15",
                }
            },
        ),
    ),
    (
        "clickup-create-task",
        {
            "list_id": "900100",
            "name": "New Task Name",
            "description": "New Task Description",
            "assignees": [183],
            "priority": 3,
            "due_date": 1508369194377,
        },
        req(
            "POST",
            "v2/list/900100/task",
            body={
                "name": "New Task Name",
                "description": "New Task Description",
                "assignees": [183],
                "priority": 3,
                "due_date": 1508369194377,
            },
        ),
    ),
    (
        "github-create-issue",
        {
            "owner": "octocat",
            "repo": "Hello-World",
            "title": "Found a bug",
            "body": "I'm having a problem with this.",
            "labels": ["bug"],
            "assignees": ["octocat"],
        },
        req(
            "POST",
            "repos/octocat/Hello-World/issues",
            body={
                "title": "Found a bug",
                "body": "I'm having a problem with this.",
                "labels": ["bug"],
                "assignees": ["octocat"],
            },
        ),
    ),
    (
        "google-analytics-run-report",
        {
            "property_id": "123456789",
            "date_ranges": [{"startDate": "2020-03-31", "endDate": "today"}],
            "metrics": [{"name": "activeUsers"}],
            "dimensions": [{"name": "city"}],
        },
        req(
            "POST",
            "properties/123456789:runReport",
            body={
                "dateRanges": [{"startDate": "2020-03-31", "endDate": "today"}],
                "metrics": [{"name": "activeUsers"}],
                "dimensions": [{"name": "city"}],
            },
        ),
    ),
    (
        "google-calendar-create-event",
        {
            "calendar_id": "primary",
            "summary": "Google I/O 2015",
            "location": "800 Howard St., San Francisco, CA 94103",
            "start": "2015-05-28T09:00:00-07:00",
            "end": "2015-05-28T17:00:00-07:00",
        },
        req(
            "POST",
            "calendars/primary/events",
            body={
                "summary": "Google I/O 2015",
                "location": "800 Howard St., San Francisco, CA 94103",
                "start": {"dateTime": "2015-05-28T09:00:00-07:00"},
                "end": {"dateTime": "2015-05-28T17:00:00-07:00"},
            },
        ),
    ),
    (
        "mattermost-create-post",
        {"channel_id": "4xp9fdt77pncbef59f4k1qe83o", "message": "Hello"},
        req("POST", "posts", body={"channel_id": "4xp9fdt77pncbef59f4k1qe83o", "message": "Hello"}),
    ),
    (
        "openai-create-response",
        {"model": "gpt-4.1", "input": "Tell me a three sentence bedtime story about a unicorn."},
        req(
            "POST",
            "responses",
            body={
                "model": "gpt-4.1",
                "input": "Tell me a three sentence bedtime story about a unicorn.",
            },
        ),
    ),
    (
        "todoist-create-task",
        {"content": "Buy Milk", "due_string": "tomorrow at 12:00", "priority": 4},
        req(
            "POST",
            "tasks",
            body={"content": "Buy Milk", "due_string": "tomorrow at 12:00", "priority": 4},
        ),
    ),
    (
        "webex-post-message",
        {"toPersonEmail": "julie@example.com", "markdown": "**Hello**"},
        req(
            "POST", "messages", body={"toPersonEmail": "julie@example.com", "markdown": "**Hello**"}
        ),
    ),
    (
        "zoom-create-meeting",
        {
            "topic": "My Meeting",
            "type": 2,
            "start_time": "2022-03-25T07:29:29Z",
            "duration": 60,
            "timezone": "America/Los_Angeles",
        },
        req(
            "POST",
            "users/me/meetings",
            body={
                "topic": "My Meeting",
                "type": 2,
                "start_time": "2022-03-25T07:29:29Z",
                "duration": 60,
                "timezone": "America/Los_Angeles",
            },
        ),
    ),
    (
        # Zulip's REST API takes form fields, not JSON.
        "zulip-send-message",
        {
            "to": "Denmark",
            "topic": "Castle",
            "content": "I come not, friends, to steal away your hearts.",
        },
        req(
            "POST",
            "messages",
            body=[
                ("type", "stream"),
                ("to", "Denmark"),
                ("topic", "Castle"),
                ("content", "I come not, friends, to steal away your hearts."),
            ],
        ),
    ),
]

# Zendesk, Stripe, Salesforce, Asana, Airtable, Google Calendar and Drive, Calendly.
REQUESTS += [
    (
        "zendesk-list-tickets",
        {"sort": "-updated_at"},
        req("GET", "tickets", [("page[size]", "100"), ("sort", "-updated_at")]),
    ),
    ("zendesk-get-ticket", {"ticket_id": 35436}, req("GET", "tickets/35436")),
    (
        "zendesk-create-ticket",
        {
            "subject": "My printer is on fire!",
            "comment": "The smoke is very colorful.",
            "priority": "urgent",
            "requester": {"name": "The Customer", "email": "thecustomer@domain.com"},
        },
        req(
            "POST",
            "tickets",
            body={
                "ticket": {
                    "subject": "My printer is on fire!",
                    "comment": {"body": "The smoke is very colorful."},
                    "priority": "urgent",
                    "requester": {"name": "The Customer", "email": "thecustomer@domain.com"},
                }
            },
        ),
    ),
    (
        "zendesk-update-ticket",
        {
            "ticket_id": 35436,
            "status": "solved",
            "comment": {"body": "Thanks for choosing Acme Jet Motors.", "public": True},
        },
        req(
            "PUT",
            "tickets/35436",
            body={
                "ticket": {
                    "status": "solved",
                    "comment": {"body": "Thanks for choosing Acme Jet Motors.", "public": True},
                }
            },
        ),
    ),
    (
        "zendesk-search",
        {"query": "status<solved requester:jane@example.com", "type": "ticket", "page_size": 100},
        req(
            "GET",
            "search/export",
            [
                ("query", "status<solved requester:jane@example.com"),
                ("filter[type]", "ticket"),
                ("page[size]", "100"),
            ],
        ),
    ),
    (
        "zendesk-list-users",
        {"role": "agent"},
        req("GET", "users", [("role", "agent"), ("page[size]", "100")]),
    ),
    (
        "stripe-connect-search-customers",
        {"query": "name:'Jane Doe' AND metadata['foo']:'bar'", "limit": 20},
        req(
            "GET",
            "customers/search",
            [("query", "name:'Jane Doe' AND metadata['foo']:'bar'"), ("limit", "20")],
        ),
    ),
    (
        "stripe-connect-get-customer",
        {"customer_id": "cus_NffrFeUfNV2Hib"},
        req("GET", "customers/cus_NffrFeUfNV2Hib"),
    ),
    (
        # Stripe's API takes form-encoded bodies.
        "stripe-connect-create-customer",
        {"name": "Jenny Rosen", "email": "jennyrosen@example.com"},
        req(
            "POST", "customers", body=[("email", "jennyrosen@example.com"), ("name", "Jenny Rosen")]
        ),
    ),
    (
        "stripe-connect-update-customer",
        {"customer_id": "cus_NffrFeUfNV2Hib", "description": "VIP"},
        req("POST", "customers/cus_NffrFeUfNV2Hib", body=[("description", "VIP")]),
    ),
    (
        "stripe-connect-search-payment-intents",
        {"query": "status:'succeeded' AND metadata['order_id']:'6735'"},
        req(
            "GET",
            "payment_intents/search",
            [("query", "status:'succeeded' AND metadata['order_id']:'6735'")],
        ),
    ),
    (
        "stripe-connect-search-invoices",
        {"query": "total>999 AND metadata['order_id']:'6735'"},
        req("GET", "invoices/search", [("query", "total>999 AND metadata['order_id']:'6735'")]),
    ),
    (
        "salesforce-query",
        {"q": "SELECT Name FROM Account WHERE Industry = 'Energy'"},
        req("GET", "query", [("q", "SELECT Name FROM Account WHERE Industry = 'Energy'")]),
    ),
    (
        "salesforce-search",
        {"q": "FIND {Acme} IN NAME FIELDS RETURNING Account(Id, Name)"},
        req("GET", "search", [("q", "FIND {Acme} IN NAME FIELDS RETURNING Account(Id, Name)")]),
    ),
    (
        "salesforce-get-record",
        {
            "sobject": "Account",
            "record_id": "001D000000INjVe",
            "fields": "AccountNumber,BillingPostalCode",
        },
        req(
            "GET",
            "sobjects/Account/001D000000INjVe",
            [("fields", "AccountNumber,BillingPostalCode")],
        ),
    ),
    (
        "salesforce-create-record",
        {"sobject": "Account", "fields": {"Name": "Express Logistics and Transport"}},
        req("POST", "sobjects/Account", body={"Name": "Express Logistics and Transport"}),
    ),
    (
        "salesforce-update-record",
        {
            "sobject": "Account",
            "record_id": "001D000000INjVe",
            "fields": {"BillingCity": "San Francisco"},
        },
        req("PATCH", "sobjects/Account/001D000000INjVe", body={"BillingCity": "San Francisco"}),
    ),
    ("salesforce-describe-object", {"sobject": "Account"}, req("GET", "sobjects/Account/describe")),
    (
        "asana-list-tasks",
        {"project": "1331", "opt_fields": "name,completed"},
        req(
            "GET", "tasks", [("project", "1331"), ("opt_fields", "name,completed"), ("limit", "50")]
        ),
    ),
    ("asana-get-task", {"task_gid": "12345"}, req("GET", "tasks/12345")),
    (
        "asana-update-task",
        {"task_gid": "12345", "completed": True, "due_on": "2019-09-15"},
        req("PUT", "tasks/12345", body={"data": {"completed": True, "due_on": "2019-09-15"}}),
    ),
    (
        "asana-add-comment",
        {"task_gid": "12345", "text": "This is a very nice comment."},
        req("POST", "tasks/12345/stories", body={"data": {"text": "This is a very nice comment."}}),
    ),
    (
        "airtable-list-records",
        {"base_id": "appABC1234567890a", "table": "Tasks", "view": "Grid view", "page_size": 50},
        req("GET", "appABC1234567890a/Tasks", [("view", "Grid view"), ("pageSize", "50")]),
    ),
    (
        "airtable-get-record",
        {"base_id": "appABC1234567890a", "table": "Tasks", "record_id": "rec560UJdUtocSouk"},
        req("GET", "appABC1234567890a/Tasks/rec560UJdUtocSouk"),
    ),
    (
        "airtable-update-record",
        {
            "base_id": "appABC1234567890a",
            "table": "Tasks",
            "record_id": "rec560UJdUtocSouk",
            "fields": {"Status": "Done"},
        },
        req(
            "PATCH",
            "appABC1234567890a/Tasks/rec560UJdUtocSouk",
            body={"fields": {"Status": "Done"}},
        ),
    ),
    (
        "google-calendar-list-events",
        {
            "calendar_id": "primary",
            "time_min": "2026-01-01T00:00:00Z",
            "single_events": True,
            "order_by": "startTime",
        },
        req(
            "GET",
            "calendars/primary/events",
            [
                ("timeMin", "2026-01-01T00:00:00Z"),
                ("singleEvents", "true"),
                ("orderBy", "startTime"),
            ],
        ),
    ),
    (
        "google-drive-list-files",
        {"q": "name contains 'report' and trashed = false", "page_size": 10},
        req(
            "GET",
            "files",
            [("q", "name contains 'report' and trashed = false"), ("pageSize", "10")],
        ),
    ),
    (
        "google-drive-get-file",
        {"file_id": "1ZdR3L3qP4Bkq8noWLJHSr_iBau0DNT4Kli4SxNc2YEo", "fields": "id,name,mimeType"},
        req(
            "GET",
            "files/1ZdR3L3qP4Bkq8noWLJHSr_iBau0DNT4Kli4SxNc2YEo",
            [("fields", "id,name,mimeType")],
        ),
    ),
    (
        "calendly-list-scheduled-events",
        {
            "user": "https://api.calendly.com/users/AAAAAAAAAAAAAAAA",
            "status": "active",
            "count": 50,
        },
        req(
            "GET",
            "scheduled_events",
            [
                ("user", "https://api.calendly.com/users/AAAAAAAAAAAAAAAA"),
                ("status", "active"),
                ("count", "50"),
            ],
        ),
    ),
    (
        "calendly-list-event-types",
        {"organization": "https://api.calendly.com/organizations/AAAAAAAAAAAAAAAA"},
        req(
            "GET",
            "event_types",
            [("organization", "https://api.calendly.com/organizations/AAAAAAAAAAAAAAAA")],
        ),
    ),
]

# Pipedrive v2, Intercom, Todoist, Zoom, Box, Outlook, Linear.
REQUESTS += [
    (
        "pipedrive-get-all-deals",
        {"status": "open", "sort_by": "update_time", "sort_direction": "desc", "limit": 100},
        req(
            "GET",
            "api/v2/deals",
            [
                ("status", "open"),
                ("sort_by", "update_time"),
                ("sort_direction", "desc"),
                ("limit", "100"),
            ],
        ),
    ),
    (
        "pipedrive-add-a-deal",
        {"title": "Big deal", "value": 5000, "currency": "EUR", "person_id": 1, "org_id": 2},
        req(
            "POST",
            "api/v2/deals",
            body={
                "title": "Big deal",
                "value": 5000,
                "currency": "EUR",
                "person_id": 1,
                "org_id": 2,
            },
        ),
    ),
    (
        "pipedrive-update-a-deal",
        {"id": 42, "status": "won"},
        req("PATCH", "api/v2/deals/42", body={"status": "won"}),
    ),
    (
        "pipedrive-get-all-organizations",
        {"limit": 500},
        req("GET", "api/v2/organizations", [("limit", "500")]),
    ),
    (
        "pipedrive-search-persons",
        {"term": "will@example.com", "fields": "email", "exact_match": True},
        req(
            "GET",
            "api/v2/persons/search",
            [("term", "will@example.com"), ("fields", "email"), ("exact_match", "true")],
        ),
    ),
    (
        "intercom-list-conversations",
        {"per_page": 20},
        req("GET", "conversations", [("per_page", "20")]),
    ),
    (
        "intercom-reply-to-conversation",
        {"id": "123", "admin_id": "991267715", "body": "Thanks again :)"},
        req(
            "POST",
            "conversations/123/reply",
            body={
                "message_type": "comment",
                "type": "admin",
                "admin_id": "991267715",
                "body": "Thanks again :)",
            },
        ),
    ),
    (
        "todoist-list-tasks",
        {"project_id": "6Jf8VQXxpwv56VQ7", "limit": 50},
        req("GET", "tasks", [("project_id", "6Jf8VQXxpwv56VQ7"), ("limit", "50")]),
    ),
    (
        "todoist-close-task",
        {"task_id": "6X7rM8997g3RQmvh"},
        req("POST", "tasks/6X7rM8997g3RQmvh/close"),
    ),
    (
        "todoist-update-task",
        {"task_id": "6X7rM8997g3RQmvh", "content": "Buy Coffee", "due_string": "tomorrow"},
        req(
            "POST",
            "tasks/6X7rM8997g3RQmvh",
            body={"content": "Buy Coffee", "due_string": "tomorrow"},
        ),
    ),
    (
        "zoom-list-meetings",
        {"type": "upcoming", "page_size": 30},
        req("GET", "users/me/meetings", [("type", "upcoming"), ("page_size", "30")]),
    ),
    ("zoom-get-meeting", {"meeting_id": 85746065432}, req("GET", "meetings/85746065432")),
    (
        "box-list-folder-items",
        {"folder_id": "0", "fields": "name,size", "limit": 1000},
        req(
            "GET",
            "folders/0/items",
            [("usemarker", "true"), ("fields", "name,size"), ("limit", "1000")],
        ),
    ),
    ("box-get-file", {"file_id": "12345"}, req("GET", "files/12345")),
    (
        "microsoft-outlook-send-mail",
        {
            "subject": "Meet for lunch?",
            "content": "The new cafeteria is open.",
            "to_recipients": [{"emailAddress": {"address": "frannis@contoso.com"}}],
            "save_to_sent_items": False,
        },
        req(
            "POST",
            "me/sendMail",
            body={
                "message": {
                    "subject": "Meet for lunch?",
                    "body": {"contentType": "Text", "content": "The new cafeteria is open."},
                    "toRecipients": [{"emailAddress": {"address": "frannis@contoso.com"}}],
                },
                "saveToSentItems": False,
            },
        ),
    ),
    (
        "linear-create-issue",
        {
            "team_id": "9cfb482a-81e3-4154-b5b9-2c805e70a02d",
            "title": "New exception",
            "description": "More detailed error report in markdown",
        },
        req(
            "POST",
            "graphql",
            body={
                "query": "mutation IssueCreate($input: IssueCreateInput!) { issueCreate(input: $input) { success issue { id identifier title url } } }",
                "variables": {
                    "input": {
                        "teamId": "9cfb482a-81e3-4154-b5b9-2c805e70a02d",
                        "title": "New exception",
                        "description": "More detailed error report in markdown",
                    }
                },
            },
        ),
    ),
    (
        "linear-list-issues",
        {"filter": {"team": {"key": {"eq": "ENG"}}}},
        req(
            "POST",
            "graphql",
            body={
                "query": "query Issues($first: Int, $after: String, $filter: IssueFilter) { issues(first: $first, after: $after, filter: $filter) { nodes { id identifier title url priority state { name } assignee { name } } pageInfo { hasNextPage endCursor } } }",
                "variables": {"first": 50, "filter": {"team": {"key": {"eq": "ENG"}}}},
            },
        ),
    ),
]

# HubSpot owners and tickets, YouTube, Google Contacts, BigQuery, Google Docs, Square, Gorgias,
# Eventbrite.
DOC = "195j9eDD3ccgjQRttHhJPymLJUCOUjs-jmwTrekvdjFE"
REQUESTS += [
    (
        "hubspot-list-owners",
        {"email": "owner@example.com"},
        req("GET", "crm/v3/owners", [("email", "owner@example.com")]),
    ),
    (
        "hubspot-create-ticket",
        {
            "subject": "troubleshoot report",
            "hs_pipeline": "0",
            "hs_pipeline_stage": "1",
            "hs_ticket_priority": "HIGH",
        },
        req(
            "POST",
            "crm/v3/objects/tickets",
            body={
                "properties": {
                    "subject": "troubleshoot report",
                    "hs_pipeline": "0",
                    "hs_pipeline_stage": "1",
                    "hs_ticket_priority": "HIGH",
                }
            },
        ),
    ),
    (
        "hubspot-list-tickets",
        {"limit": 100},
        req("GET", "crm/v3/objects/tickets", [("limit", "100")]),
    ),
    (
        "youtube-list-my-playlists",
        {"max_results": 25},
        req(
            "GET",
            "playlists",
            [("part", "snippet,contentDetails"), ("mine", "true"), ("maxResults", "25")],
        ),
    ),
    (
        "youtube-search-my-videos",
        {"q": "launch", "order": "date"},
        req(
            "GET",
            "search",
            [
                ("part", "snippet"),
                ("forMine", "true"),
                ("type", "video"),
                ("q", "launch"),
                ("order", "date"),
            ],
        ),
    ),
    (
        "google-contacts-list-contacts",
        {"page_size": 100},
        req(
            "GET",
            "people/me/connections",
            [("personFields", "names,emailAddresses,phoneNumbers"), ("pageSize", "100")],
        ),
    ),
    (
        "google-bigquery-list-datasets",
        {"project_id": "my-project-123"},
        req("GET", "projects/my-project-123/datasets"),
    ),
    (
        "google-bigquery-run-query",
        {"project_id": "my-project-123", "query": "SELECT 17 AS answer", "timeout_ms": 10000},
        req(
            "POST",
            "projects/my-project-123/queries",
            body={"query": "SELECT 17 AS answer", "useLegacySql": False, "timeoutMs": 10000},
        ),
    ),
    ("google-docs-get-document", {"document_id": DOC}, req("GET", f"documents/{DOC}")),
    (
        "google-docs-create-document",
        {"title": "Meeting notes"},
        req("POST", "documents", body={"title": "Meeting notes"}),
    ),
    (
        "google-docs-batch-update",
        {
            "document_id": DOC,
            "requests": [{"insertText": {"location": {"index": 1}, "text": "Hello"}}],
        },
        req(
            "POST",
            f"documents/{DOC}:batchUpdate",
            body={"requests": [{"insertText": {"location": {"index": 1}, "text": "Hello"}}]},
        ),
    ),
    (
        "square-list-customers",
        {"limit": 50, "sort_field": "CREATED_AT", "sort_order": "DESC"},
        req(
            "GET",
            "customers",
            [("limit", "50"), ("sort_field", "CREATED_AT"), ("sort_order", "DESC")],
        ),
    ),
    (
        "square-search-orders",
        {
            "location_ids": ["057P5VYJ4A5X1", "18YC4JDH91E1H"],
            "query": {
                "filter": {"state_filter": {"states": ["COMPLETED"]}},
                "sort": {"sort_field": "CLOSED_AT", "sort_order": "DESC"},
            },
            "limit": 3,
            "return_entries": True,
        },
        req(
            "POST",
            "orders/search",
            body={
                "location_ids": ["057P5VYJ4A5X1", "18YC4JDH91E1H"],
                "query": {
                    "filter": {"state_filter": {"states": ["COMPLETED"]}},
                    "sort": {"sort_field": "CLOSED_AT", "sort_order": "DESC"},
                },
                "limit": 3,
                "return_entries": True,
            },
        ),
    ),
    (
        "gorgias-list-tickets",
        {"order_by": "updated_datetime:desc", "limit": 30},
        req("GET", "tickets", [("order_by", "updated_datetime:desc"), ("limit", "30")]),
    ),
    ("gorgias-get-ticket", {"id": 42}, req("GET", "tickets/42")),
    (
        "eventbrite-list-organization-events",
        {"organization_id": "123456789", "status": "live"},
        req("GET", "organizations/123456789/events/", [("status", "live")]),
    ),
]

# Freshdesk, Figma, Miro, ClickUp, GitLab, Harvest, Mailchimp, Xero, Typeform, OneDrive.
REQUESTS += [
    (
        "freshdesk-get-ticket",
        {"id": 20, "include": "conversations"},
        req("GET", "tickets/20", [("include", "conversations")]),
    ),
    (
        "freshdesk-create-ticket",
        {
            "subject": "Support Needed...",
            "description": "Details about the issue...",
            "email": "tom@outerspace.com",
            "priority": 1,
            "status": 2,
        },
        req(
            "POST",
            "tickets",
            body={
                "subject": "Support Needed...",
                "description": "Details about the issue...",
                "email": "tom@outerspace.com",
                "status": 2,
                "priority": 1,
            },
        ),
    ),
    (
        "freshdesk-update-ticket",
        {"id": 20, "priority": 2, "status": 3},
        req("PUT", "tickets/20", body={"status": 3, "priority": 2}),
    ),
    (
        "figma-get-file",
        {"file_key": "FiLeKeY123", "depth": 1},
        req("GET", "v1/files/FiLeKeY123", [("depth", "1")]),
    ),
    ("figma-get-comments", {"file_key": "FiLeKeY123"}, req("GET", "v1/files/FiLeKeY123/comments")),
    (
        "figma-post-comment",
        {"file_key": "FiLeKeY123", "message": "Looks great", "comment_id": "123456"},
        req(
            "POST",
            "v1/files/FiLeKeY123/comments",
            body={"message": "Looks great", "comment_id": "123456"},
        ),
    ),
    # A path parameter is percent-encoded ('=' too), as in Miro's own examples.
    ("miro-get-board", {"board_id": "uXjVOD6LSME="}, req("GET", "boards/uXjVOD6LSME%3D")),
    (
        "miro-create-sticky-note",
        {
            "board_id": "uXjVOD6LSME=",
            "content": "Hello",
            "shape": "square",
            "position": {"x": 0, "y": 0},
        },
        req(
            "POST",
            "boards/uXjVOD6LSME%3D/sticky_notes",
            body={"data": {"content": "Hello", "shape": "square"}, "position": {"x": 0, "y": 0}},
        ),
    ),
    (
        "clickup-get-task",
        {"task_id": "9hz", "include_subtasks": True},
        req("GET", "v2/task/9hz", [("include_subtasks", "true")]),
    ),
    (
        "clickup-update-task",
        {"task_id": "9hz", "name": "Updated Task Name", "priority": 1},
        req("PUT", "v2/task/9hz", body={"name": "Updated Task Name", "priority": 1}),
    ),
    (
        "gitlab-create-issue",
        {"project_id": 4, "title": "Issues with auth", "labels": "bug"},
        req("POST", "projects/4/issues", body={"title": "Issues with auth", "labels": "bug"}),
    ),
    (
        "gitlab-get-merge-request",
        {"project_id": 4, "iid": 1},
        req("GET", "projects/4/merge_requests/1"),
    ),
    (
        "harvest-list-time-entries",
        {"project_id": 14307913, "from": "2017-03-01", "to": "2017-03-31", "per_page": 100},
        req(
            "GET",
            "time_entries",
            [
                ("project_id", "14307913"),
                ("from", "2017-03-01"),
                ("to", "2017-03-31"),
                ("per_page", "100"),
            ],
        ),
    ),
    (
        "harvest-create-time-entry",
        {"project_id": 14307913, "task_id": 8083365, "spent_date": "2017-03-21", "hours": 1.0},
        req(
            "POST",
            "time_entries",
            body={
                "project_id": 14307913,
                "task_id": 8083365,
                "spent_date": "2017-03-21",
                "hours": 1.0,
            },
        ),
    ),
    (
        "mailchimp-add-list-member",
        {
            "list_id": "57afe96172",
            "email_address": "urist.mcvankab@freddiesjokes.com",
            "status": "subscribed",
            "merge_fields": {"FNAME": "Urist", "LNAME": "McVankab"},
        },
        req(
            "POST",
            "lists/57afe96172/members",
            body={
                "email_address": "urist.mcvankab@freddiesjokes.com",
                "status": "subscribed",
                "merge_fields": {"FNAME": "Urist", "LNAME": "McVankab"},
            },
        ),
    ),
    (
        "xero-create-contact",
        {
            "name": "ABC Limited",
            "email_address": "john.smith@gmail.com",
            "first_name": "John",
            "last_name": "Smith",
        },
        req(
            "POST",
            "Contacts",
            body={
                "Contacts": [
                    {
                        "Name": "ABC Limited",
                        "EmailAddress": "john.smith@gmail.com",
                        "FirstName": "John",
                        "LastName": "Smith",
                    }
                ]
            },
        ),
    ),
    ("typeform-get-form", {"form_id": "u6nXL7"}, req("GET", "forms/u6nXL7")),
    (
        "microsoft-onedrive-get-item",
        {"item_id": "01BYE5RZ6QN3ZWBTUFOFD3GSPGOHDJD36K", "select": "id,name,size"},
        req(
            "GET",
            "me/drive/items/01BYE5RZ6QN3ZWBTUFOFD3GSPGOHDJD36K",
            [("$select", "id,name,size")],
        ),
    ),
]

# ------------------------------------------------ issue 17 item 2, second wave: Slack, HubSpot,
# GitHub, Jira, Gmail, Google Sheets, Notion. Values follow each source page's examples.
REQUESTS += [
    (
        "slack-list-replies",
        {"channel": "C123ABC456", "ts": "1234567890.123456", "limit": 20},
        req(
            "GET",
            "conversations.replies",
            [("channel", "C123ABC456"), ("ts", "1234567890.123456"), ("limit", "20")],
        ),
    ),
    (
        "slack-add-reaction",
        {"channel": "C123ABC456", "timestamp": "1234567890.123456", "name": "thumbsup"},
        req(
            "POST",
            "reactions.add",
            body={"channel": "C123ABC456", "timestamp": "1234567890.123456", "name": "thumbsup"},
        ),
    ),
    (
        "slack-delete-message",
        {"channel": "C123ABC456", "ts": "1401383885.000061"},
        req("POST", "chat.delete", body={"channel": "C123ABC456", "ts": "1401383885.000061"}),
    ),
    (
        "slack-create-channel",
        {"name": "endeavor", "is_private": False},
        req("POST", "conversations.create", body={"name": "endeavor", "is_private": False}),
    ),
    (
        "slack-invite-to-channel",
        {"channel": "C012AB3CD", "users": "W1234567890,U2345678901"},
        req(
            "POST",
            "conversations.invite",
            body={"channel": "C012AB3CD", "users": "W1234567890,U2345678901"},
        ),
    ),
    (
        "hubspot-get-company",
        {"company_id": "512", "properties": "name,domain", "associations": "contacts"},
        req(
            "GET",
            "crm/v3/objects/companies/512",
            [("properties", "name,domain"), ("associations", "contacts")],
        ),
    ),
    (
        "hubspot-update-company",
        {"company_id": "512", "properties": {"industry": "COMPUTER_SOFTWARE"}},
        req(
            "PATCH",
            "crm/v3/objects/companies/512",
            body={"properties": {"industry": "COMPUTER_SOFTWARE"}},
        ),
    ),
    (
        "hubspot-search-companies",
        {
            "filter_groups": [
                {"filters": [{"propertyName": "domain", "operator": "EQ", "value": "hubspot.com"}]}
            ],
            "limit": 10,
        },
        req(
            "POST",
            "crm/v3/objects/companies/search",
            body={
                "filterGroups": [
                    {
                        "filters": [
                            {"propertyName": "domain", "operator": "EQ", "value": "hubspot.com"}
                        ]
                    }
                ],
                "limit": 10,
            },
        ),
    ),
    (
        "hubspot-get-deal",
        {"deal_id": "1001", "properties": "dealname,amount"},
        req("GET", "crm/v3/objects/deals/1001", [("properties", "dealname,amount")]),
    ),
    (
        "hubspot-update-deal",
        {"deal_id": "1001", "properties": {"dealstage": "closedwon", "amount": "1500.00"}},
        req(
            "PATCH",
            "crm/v3/objects/deals/1001",
            body={"properties": {"dealstage": "closedwon", "amount": "1500.00"}},
        ),
    ),
    (
        "hubspot-search-deals",
        {"query": "renewal", "properties": ["dealname", "amount"]},
        req(
            "POST",
            "crm/v3/objects/deals/search",
            body={"query": "renewal", "properties": ["dealname", "amount"], "limit": 100},
        ),
    ),
    (
        "github-search-issues",
        {"q": "repo:octocat/Hello-World is:issue is:open label:bug", "sort": "created", "page": 2},
        req(
            "GET",
            "search/issues",
            [
                ("q", "repo:octocat/Hello-World is:issue is:open label:bug"),
                ("sort", "created"),
                ("page", "2"),
            ],
        ),
    ),
    (
        "github-get-repository",
        {"owner": "octocat", "repo": "Hello-World"},
        req("GET", "repos/octocat/Hello-World"),
    ),
    (
        "github-add-labels",
        {"owner": "octocat", "repo": "Hello-World", "issue_number": 1347, "labels": ["bug"]},
        req("POST", "repos/octocat/Hello-World/issues/1347/labels", body={"labels": ["bug"]}),
    ),
    (
        "github-request-reviewers",
        {
            "owner": "octocat",
            "repo": "Hello-World",
            "pull_number": 1347,
            "reviewers": ["octocat", "hubot", "other_user"],
            "team_reviewers": ["justice-league"],
        },
        req(
            "POST",
            "repos/octocat/Hello-World/pulls/1347/requested_reviewers",
            body={
                "reviewers": ["octocat", "hubot", "other_user"],
                "team_reviewers": ["justice-league"],
            },
        ),
    ),
    (
        "github-merge-pull-request",
        {
            "owner": "octocat",
            "repo": "Hello-World",
            "pull_number": 1347,
            "commit_title": "Expand enum",
            "commit_message": "Add a new value to the merge_method enum",
            "merge_method": "squash",
        },
        req(
            "PUT",
            "repos/octocat/Hello-World/pulls/1347/merge",
            body={
                "commit_title": "Expand enum",
                "commit_message": "Add a new value to the merge_method enum",
                "merge_method": "squash",
            },
        ),
    ),
    (
        "jira-get-transitions",
        {"cloud_id": CLOUD, "issue": "HSP-1"},
        req("GET", f"ex/jira/{CLOUD}/rest/api/3/issue/HSP-1/transitions"),
    ),
    (
        "jira-transition-issue",
        {
            "cloud_id": CLOUD,
            "issue": "HSP-1",
            "transition_id": "5",
            "fields": {"resolution": {"name": "Fixed"}},
        },
        req(
            "POST",
            f"ex/jira/{CLOUD}/rest/api/3/issue/HSP-1/transitions",
            body={"transition": {"id": "5"}, "fields": {"resolution": {"name": "Fixed"}}},
        ),
    ),
    (
        "jira-assign-issue",
        {"cloud_id": CLOUD, "issue": "10000", "account_id": "5b10ac8d82e05b22cc7d4ef5"},
        req(
            "PUT",
            f"ex/jira/{CLOUD}/rest/api/3/issue/10000/assignee",
            body={"accountId": "5b10ac8d82e05b22cc7d4ef5"},
        ),
    ),
    (
        "jira-get-comments",
        {"cloud_id": CLOUD, "issue": "HSP-1", "start_at": 50, "max_results": 50},
        req(
            "GET",
            f"ex/jira/{CLOUD}/rest/api/3/issue/HSP-1/comment",
            [("startAt", "50"), ("maxResults", "50")],
        ),
    ),
    (
        "gmail-list-threads",
        {"q": "subject:invoice is:unread", "max_results": 50},
        req("GET", "users/me/threads", [("q", "subject:invoice is:unread"), ("maxResults", "50")]),
    ),
    ("gmail-list-labels", {}, req("GET", "users/me/labels")),
    (
        "gmail-modify-labels",
        {"id": "18c5f1a2b3d4e5f6", "remove_label_ids": ["UNREAD", "INBOX"]},
        req(
            "POST",
            "users/me/messages/18c5f1a2b3d4e5f6/modify",
            body={"removeLabelIds": ["UNREAD", "INBOX"]},
        ),
    ),
    (
        "gmail-trash-message",
        {"id": "18c5f1a2b3d4e5f6"},
        req("POST", "users/me/messages/18c5f1a2b3d4e5f6/trash"),
    ),
    (
        "gmail-create-draft",
        {"raw": "VG86IGFAYi5leGFtcGxlDQpTdWJqZWN0OiBIaQ0KDQpIZWxsbw"},
        req(
            "POST",
            "users/me/drafts",
            body={"message": {"raw": "VG86IGFAYi5leGFtcGxlDQpTdWJqZWN0OiBIaQ0KDQpIZWxsbw"}},
        ),
    ),
    (
        "google-sheets-clear-values",
        {"spreadsheet_id": SHEET, "range": "Sheet1!A2:D"},
        req("POST", f"spreadsheets/{SHEET}/values/Sheet1%21A2%3AD:clear", body={}),
    ),
    (
        "google-sheets-create-spreadsheet",
        {"title": "Sales 2026", "time_zone": "America/New_York"},
        req(
            "POST",
            "spreadsheets",
            body={"properties": {"title": "Sales 2026", "timeZone": "America/New_York"}},
        ),
    ),
    (
        "notion-append-blocks",
        {
            "block_id": PAGE,
            "children": [
                {
                    "object": "block",
                    "type": "paragraph",
                    "paragraph": {"rich_text": [{"type": "text", "text": {"content": "Hello"}}]},
                }
            ],
        },
        req(
            "PATCH",
            f"blocks/{PAGE}/children",
            body={
                "children": [
                    {
                        "object": "block",
                        "type": "paragraph",
                        "paragraph": {
                            "rich_text": [{"type": "text", "text": {"content": "Hello"}}]
                        },
                    }
                ]
            },
        ),
    ),
    ("notion-list-users", {"page_size": 50}, req("GET", "users", [("page_size", "50")])),
    (
        "notion-create-comment",
        {"page_id": PAGE, "text": "Hello world"},
        req(
            "POST",
            "comments",
            body={
                "parent": {"page_id": PAGE},
                "rich_text": [{"type": "text", "text": {"content": "Hello world"}}],
            },
        ),
    ),
    ("notion-get-data-source", {"data_source_id": PAGE}, req("GET", f"data_sources/{PAGE}")),
]

# ------------------------------------------------ issue 17 item 2, second wave: Stripe, Airtable,
# Asana, Linear, Intercom, Pipedrive, Zoom, Calendly.
BASE = "appLkNDICXNqxSDhG"
CAL_EVENT = "ABCDABCDABCDABCD"
REQUESTS += [
    (
        "stripe-connect-search-charges",
        {"query": "amount>999 AND metadata['order_id']:'6735'", "limit": 20},
        req(
            "GET",
            "charges/search",
            [("query", "amount>999 AND metadata['order_id']:'6735'"), ("limit", "20")],
        ),
    ),
    (
        "stripe-connect-search-subscriptions",
        {"query": "status:'active' AND metadata['order_id']:'6735'"},
        req(
            "GET",
            "subscriptions/search",
            [("query", "status:'active' AND metadata['order_id']:'6735'")],
        ),
    ),
    (
        "stripe-connect-search-products",
        {"query": "active:'true' AND metadata['order_id']:'6735'"},
        req("GET", "products/search", [("query", "active:'true' AND metadata['order_id']:'6735'")]),
    ),
    (
        "stripe-connect-get-invoice",
        {"invoice_id": "in_1MtHbELkdIwHu7ixl4OzzPMv"},
        req("GET", "invoices/in_1MtHbELkdIwHu7ixl4OzzPMv"),
    ),
    (
        "stripe-connect-create-invoice-item",
        {
            "customer": "cus_NeZwdNtLEOXuvB",
            "amount": 1099,
            "currency": "usd",
            "description": "Setup fee",
        },
        req(
            "POST",
            "invoiceitems",
            body=[
                ("customer", "cus_NeZwdNtLEOXuvB"),
                ("amount", "1099"),
                ("currency", "usd"),
                ("description", "Setup fee"),
            ],
        ),
    ),
    (
        "stripe-connect-create-invoice",
        {
            "customer": "cus_NeZwdNtLEOXuvB",
            "collection_method": "send_invoice",
            "days_until_due": 30,
            "auto_advance": "false",
        },
        req(
            "POST",
            "invoices",
            body=[
                ("customer", "cus_NeZwdNtLEOXuvB"),
                ("collection_method", "send_invoice"),
                ("days_until_due", "30"),
                ("auto_advance", "false"),
            ],
        ),
    ),
    (
        "stripe-connect-finalize-invoice",
        {"invoice_id": "in_1MtGmCLkdIwHu7ix6PgS6g8S"},
        req("POST", "invoices/in_1MtGmCLkdIwHu7ix6PgS6g8S/finalize"),
    ),
    (
        "stripe-connect-send-invoice",
        {"invoice_id": "in_1MtGmCLkdIwHu7ix6PgS6g8S"},
        req("POST", "invoices/in_1MtGmCLkdIwHu7ix6PgS6g8S/send"),
    ),
    (
        "stripe-connect-get-payment-intent",
        {"payment_intent_id": "pi_3MtwBwLkdIwHu7ix28a3tqPa"},
        req("GET", "payment_intents/pi_3MtwBwLkdIwHu7ix28a3tqPa"),
    ),
    (
        "stripe-connect-create-refund",
        {"charge": "ch_1NirD82eZvKYlo2CIvbtLWuY", "reason": "requested_by_customer"},
        req(
            "POST",
            "refunds",
            body=[("charge", "ch_1NirD82eZvKYlo2CIvbtLWuY"), ("reason", "requested_by_customer")],
        ),
    ),
    ("airtable-list-bases", {}, req("GET", "meta/bases")),
    (
        "airtable-get-base-schema",
        {"base_id": BASE},
        req("GET", f"meta/bases/{BASE}/tables"),
    ),
    (
        "airtable-delete-record",
        {"base_id": BASE, "table": "Tasks", "record_id": "rec560UJdUtocSouk"},
        req("DELETE", f"{BASE}/Tasks/rec560UJdUtocSouk"),
    ),
    (
        "asana-list-projects",
        {"workspace": "1331", "archived": False, "opt_fields": "name,owner.name"},
        req(
            "GET",
            "projects",
            [
                ("workspace", "1331"),
                ("archived", "false"),
                ("opt_fields", "name,owner.name"),
                ("limit", "50"),
            ],
        ),
    ),
    ("asana-list-workspaces", {"limit": 10}, req("GET", "workspaces", [("limit", "10")])),
    (
        "asana-create-project",
        {"name": "Stuff to buy", "workspace": "1331", "team": "14916", "due_on": "2026-09-15"},
        req(
            "POST",
            "projects",
            body={
                "data": {
                    "name": "Stuff to buy",
                    "workspace": "1331",
                    "team": "14916",
                    "due_on": "2026-09-15",
                }
            },
        ),
    ),
    (
        "linear-update-issue",
        {"id": "BLA-123", "title": "New Issue Title"},
        req(
            "POST",
            "graphql",
            body={
                "query": "mutation IssueUpdate($id: String!, $input: IssueUpdateInput!) "
                "{ issueUpdate(id: $id, input: $input) { success issue { id identifier title url"
                " state { name } } } }",
                "variables": {"id": "BLA-123", "input": {"title": "New Issue Title"}},
            },
        ),
    ),
    (
        "linear-list-teams",
        {"first": 20},
        req(
            "POST",
            "graphql",
            body={
                "query": "query Teams($first: Int, $after: String) { teams(first: $first, after:"
                " $after) { nodes { id key name states { nodes { id name type } } } pageInfo"
                " { hasNextPage endCursor } } }",
                "variables": {"first": 20},
            },
        ),
    ),
    ("intercom-list-contacts", {"per_page": 25}, req("GET", "contacts", [("per_page", "25")])),
    (
        "intercom-get-conversation",
        {"id": "1295", "display_as": "plaintext"},
        req("GET", "conversations/1295", [("display_as", "plaintext")]),
    ),
    (
        "intercom-create-note",
        {"id": "6762f0dd1bb69f9f2193bb83", "body": "New note", "admin_id": "123"},
        req(
            "POST",
            "contacts/6762f0dd1bb69f9f2193bb83/notes",
            body={"body": "New note", "admin_id": "123"},
        ),
    ),
    (
        "intercom-tag-contact",
        {"contact_id": "63a07ddf05a32042dffac965", "tag_id": "7522907"},
        req("POST", "contacts/63a07ddf05a32042dffac965/tags", body={"id": "7522907"}),
    ),
    ("pipedrive-get-a-deal", {"id": 42}, req("GET", "api/v2/deals/42")),
    (
        "pipedrive-search-deals",
        {"term": "renewal", "fields": "title,notes", "status": "open", "limit": 50},
        req(
            "GET",
            "api/v2/deals/search",
            [("term", "renewal"), ("fields", "title,notes"), ("status", "open"), ("limit", "50")],
        ),
    ),
    (
        "pipedrive-add-an-organization",
        {"name": "Acme", "owner_id": 7},
        req("POST", "api/v2/organizations", body={"name": "Acme", "owner_id": 7}),
    ),
    (
        "pipedrive-add-an-activity",
        {
            "subject": "Discuss revenue with John",
            "type": "lunch",
            "due_date": "2026-12-05",
            "due_time": "12:30",
            "deal_id": 42,
            "person_id": 7,
        },
        req(
            "POST",
            "v1/activities",
            body={
                "subject": "Discuss revenue with John",
                "type": "lunch",
                "due_date": "2026-12-05",
                "due_time": "12:30",
                "deal_id": 42,
                "person_id": 7,
            },
        ),
    ),
    (
        "pipedrive-add-a-note",
        {"content": "Called, will call back Monday", "deal_id": 42, "pinned_to_deal_flag": 1},
        req(
            "POST",
            "v1/notes",
            body={
                "content": "Called, will call back Monday",
                "deal_id": 42,
                "pinned_to_deal_flag": 1,
            },
        ),
    ),
    (
        "zoom-update-meeting",
        {"meeting_id": 85746065432, "topic": "My Meeting", "duration": 60},
        req("PATCH", "meetings/85746065432", body={"topic": "My Meeting", "duration": 60}),
    ),
    (
        "zoom-delete-meeting",
        {"meeting_id": 85746065432, "cancel_meeting_reminder": True},
        req("DELETE", "meetings/85746065432", [("cancel_meeting_reminder", "true")]),
    ),
    (
        "zoom-list-recordings",
        {"from": "2026-11-01", "to": "2026-11-30", "page_size": 30},
        req(
            "GET",
            "users/me/recordings",
            [("from", "2026-11-01"), ("to", "2026-11-30"), ("page_size", "30")],
        ),
    ),
    ("calendly-get-current-user", {}, req("GET", "users/me")),
    (
        "calendly-list-event-invitees",
        {"event_uuid": CAL_EVENT, "status": "active", "count": 20},
        req(
            "GET",
            f"scheduled_events/{CAL_EVENT}/invitees",
            [("status", "active"), ("count", "20")],
        ),
    ),
    (
        "calendly-cancel-event",
        {"event_uuid": CAL_EVENT, "reason": "Schedule conflict"},
        req(
            "POST",
            f"scheduled_events/{CAL_EVENT}/cancellation",
            body={"reason": "Schedule conflict"},
        ),
    ),
]

# ------------------------------------------------ issue 17 item 2, second wave: Google Calendar
# and Drive, Box, Dropbox, Outlook, Teams, Freshdesk, Zendesk, Mailchimp, Shopify, Salesforce.
MEMBER = "62eeb292278cc15f5817cb78f7790b08"  # MD5 of "urist.mcvankab@freddiesjokes.com"
SHOPIFY_PRODUCTS = (
    "query Products($first: Int!, $after: String, $query: String) { products(first: $first,"
    " after: $after, query: $query) { nodes { id title handle status vendor productType"
    " totalInventory updatedAt } pageInfo { hasNextPage endCursor } } }"
)
REQUESTS += [
    (
        "google-calendar-list-calendars",
        {"min_access_role": "writer", "max_results": 50},
        req("GET", "users/me/calendarList", [("maxResults", "50"), ("minAccessRole", "writer")]),
    ),
    (
        "google-calendar-get-event",
        {"calendar_id": "primary", "event_id": "7cbh8rpc10lrc0ckih9tafss99"},
        req("GET", "calendars/primary/events/7cbh8rpc10lrc0ckih9tafss99"),
    ),
    (
        "google-calendar-update-event",
        {
            "calendar_id": "primary",
            "event_id": "7cbh8rpc10lrc0ckih9tafss99",
            "start": {"dateTime": "2026-05-28T09:00:00-07:00"},
            "end": {"dateTime": "2026-05-28T17:00:00-07:00"},
            "send_updates": "all",
        },
        req(
            "PATCH",
            "calendars/primary/events/7cbh8rpc10lrc0ckih9tafss99",
            [("sendUpdates", "all")],
            body={
                "start": {"dateTime": "2026-05-28T09:00:00-07:00"},
                "end": {"dateTime": "2026-05-28T17:00:00-07:00"},
            },
        ),
    ),
    (
        "google-calendar-delete-event",
        {
            "calendar_id": "primary",
            "event_id": "7cbh8rpc10lrc0ckih9tafss99",
        },
        req(
            "DELETE",
            "calendars/primary/events/7cbh8rpc10lrc0ckih9tafss99",
        ),
    ),
    (
        "google-drive-create-folder",
        {"name": "Invoices", "parents": ["1Ab2Cd3Ef4Gh5Ij6Kl7Mn8Op9Qr"]},
        req(
            "POST",
            "files",
            [("fields", "id,name,webViewLink")],
            body={
                "name": "Invoices",
                "mimeType": "application/vnd.google-apps.folder",
                "parents": ["1Ab2Cd3Ef4Gh5Ij6Kl7Mn8Op9Qr"],
            },
        ),
    ),
    (
        "google-drive-share-file",
        {
            "file_id": "1Ab2Cd3Ef4Gh5Ij6Kl7Mn8Op9Qr",
            "role": "writer",
            "type": "user",
            "email_address": "lpage@example.com",
            "send_notification_email": False,
        },
        req(
            "POST",
            "files/1Ab2Cd3Ef4Gh5Ij6Kl7Mn8Op9Qr/permissions",
            [("sendNotificationEmail", "false")],
            body={"role": "writer", "type": "user", "emailAddress": "lpage@example.com"},
        ),
    ),
    (
        "box-search",
        {
            "query": "sales",
            "type": "file",
            "file_extensions": "pdf,docx",
            "limit": 100,
            "offset": 100,
        },
        req(
            "GET",
            "search",
            [
                ("query", "sales"),
                ("type", "file"),
                ("file_extensions", "pdf,docx"),
                ("limit", "100"),
                ("offset", "100"),
            ],
        ),
    ),
    (
        "box-create-folder",
        {"name": "New Folder", "parent_id": "0"},
        req("POST", "folders", body={"name": "New Folder", "parent": {"id": "0"}}),
    ),
    (
        "dropbox-get-metadata",
        {"path": "/Homework/math/Prime_Numbers.txt"},
        req("POST", "files/get_metadata", body={"path": "/Homework/math/Prime_Numbers.txt"}),
    ),
    (
        "dropbox-search",
        {"query": "cat", "path": "/Folder", "max_results": 20},
        req(
            "POST",
            "files/search_v2",
            body={"query": "cat", "options": {"path": "/Folder", "max_results": 20}},
        ),
    ),
    (
        "dropbox-create-folder",
        {"path": "/Homework/math", "autorename": False},
        req(
            "POST",
            "files/create_folder_v2",
            body={"path": "/Homework/math", "autorename": False},
        ),
    ),
    (
        "dropbox-create-shared-link",
        {"path": "/Prime_Numbers.txt"},
        req(
            "POST",
            "sharing/create_shared_link_with_settings",
            body={"path": "/Prime_Numbers.txt"},
        ),
    ),
    (
        "microsoft-outlook-search-messages",
        {"filter": "isRead eq false", "select": "subject,from", "top": 25, "skip": 25},
        req(
            "GET",
            "me/messages",
            [
                ("$filter", "isRead eq false"),
                ("$select", "subject,from"),
                ("$top", "25"),
                ("$skip", "25"),
            ],
        ),
    ),
    (
        "microsoft-outlook-get-message",
        {"id": "AAMkADhAAAW-VPeAAA=", "select": "subject,body"},
        req("GET", "me/messages/AAMkADhAAAW-VPeAAA%3D", [("$select", "subject,body")]),
    ),
    (
        "microsoft-outlook-reply-to-message",
        {
            "id": "AAMkADA1MTAAAAqldOAAA=",
            "comment": "Samantha, Randi, would you name the group please?",
        },
        req(
            "POST",
            "me/messages/AAMkADA1MTAAAAqldOAAA%3D/reply",
            body={"comment": "Samantha, Randi, would you name the group please?"},
        ),
    ),
    (
        "microsoft-outlook-create-event",
        {
            "subject": "Let's go for lunch",
            "body": {"contentType": "HTML", "content": "Does noon work for you?"},
            "start": {"dateTime": "2026-03-15T12:00:00", "timeZone": "Pacific Standard Time"},
            "end": {"dateTime": "2026-03-15T14:00:00", "timeZone": "Pacific Standard Time"},
            "location": {"displayName": "Harry's Bar"},
            "attendees": [
                {
                    "emailAddress": {"address": "samanthab@contoso.com", "name": "Samantha Booth"},
                    "type": "required",
                }
            ],
        },
        req(
            "POST",
            "me/events",
            body={
                "subject": "Let's go for lunch",
                "body": {"contentType": "HTML", "content": "Does noon work for you?"},
                "start": {"dateTime": "2026-03-15T12:00:00", "timeZone": "Pacific Standard Time"},
                "end": {"dateTime": "2026-03-15T14:00:00", "timeZone": "Pacific Standard Time"},
                "location": {"displayName": "Harry's Bar"},
                "attendees": [
                    {
                        "emailAddress": {
                            "address": "samanthab@contoso.com",
                            "name": "Samantha Booth",
                        },
                        "type": "required",
                    }
                ],
            },
        ),
    ),
    ("microsoft-teams-list-joined-teams", {}, req("GET", "me/joinedTeams")),
    (
        "microsoft-teams-create-meeting",
        {
            "subject": "User Token Meeting",
            "start_date_time": "2026-07-12T14:30:34.2444915-07:00",
            "end_date_time": "2026-07-12T15:00:34.2464912-07:00",
        },
        req(
            "POST",
            "me/onlineMeetings",
            body={
                "subject": "User Token Meeting",
                "startDateTime": "2026-07-12T14:30:34.2444915-07:00",
                "endDateTime": "2026-07-12T15:00:34.2464912-07:00",
            },
        ),
    ),
    (
        "freshdesk-reply-to-ticket",
        {"id": 141, "body": "We are working on this issue. Will keep you posted."},
        req(
            "POST",
            "tickets/141/reply",
            body={"body": "We are working on this issue. Will keep you posted."},
        ),
    ),
    (
        "freshdesk-add-note",
        {
            "id": 3,
            "body": "Hi tom, Still Angry",
            "private": False,
            "notify_emails": ["tom@yourcompany.com"],
        },
        req(
            "POST",
            "tickets/3/notes",
            body={
                "body": "Hi tom, Still Angry",
                "private": False,
                "notify_emails": ["tom@yourcompany.com"],
            },
        ),
    ),
    (
        "freshdesk-create-contact",
        {"name": "Super Man", "email": "superman@freshdesk.com"},
        req("POST", "contacts", body={"name": "Super Man", "email": "superman@freshdesk.com"}),
    ),
    (
        "freshdesk-search-tickets",
        {"query": "priority:3 AND status:2", "page": 2},
        req("GET", "search/tickets", [("query", '"priority:3 AND status:2"'), ("page", "2")]),
    ),
    (
        "zendesk-list-ticket-comments",
        {"ticket_id": 2, "sort": "-created_at"},
        req("GET", "tickets/2/comments", [("page[size]", "100"), ("sort", "-created_at")]),
    ),
    ("zendesk-get-user", {"user_id": 35436}, req("GET", "users/35436")),
    (
        "zendesk-create-user",
        {"name": "Roger Wilco", "email": "roge@example.org", "role": "end-user"},
        req(
            "POST",
            "users",
            body={"user": {"name": "Roger Wilco", "email": "roge@example.org", "role": "end-user"}},
        ),
    ),
    (
        "zendesk-list-organizations",
        {"page_size": 50},
        req("GET", "organizations", [("page[size]", "50")]),
    ),
    (
        "mailchimp-list-audiences",
        {"count": 100, "offset": 100, "fields": "lists.id,lists.name"},
        req(
            "GET", "lists", [("count", "100"), ("offset", "100"), ("fields", "lists.id,lists.name")]
        ),
    ),
    (
        "mailchimp-upsert-list-member",
        {
            "list_id": "57afe96172",
            "subscriber_hash": MEMBER,
            "email_address": "urist.mcvankab@freddiesjokes.com",
            "status_if_new": "subscribed",
            "merge_fields": {"FNAME": "Urist"},
        },
        req(
            "PUT",
            f"lists/57afe96172/members/{MEMBER}",
            body={
                "email_address": "urist.mcvankab@freddiesjokes.com",
                "status_if_new": "subscribed",
                "merge_fields": {"FNAME": "Urist"},
            },
        ),
    ),
    (
        "mailchimp-update-member-tags",
        {
            "list_id": "57afe96172",
            "subscriber_hash": MEMBER,
            "tags": [{"name": "VIP", "status": "active"}, {"name": "Trial", "status": "inactive"}],
        },
        req(
            "POST",
            f"lists/57afe96172/members/{MEMBER}/tags",
            body={
                "tags": [
                    {"name": "VIP", "status": "active"},
                    {"name": "Trial", "status": "inactive"},
                ]
            },
        ),
    ),
    (
        "shopify-list-products",
        {"query": "status:active", "first": 10},
        req(
            "POST",
            "graphql.json",
            body={"query": SHOPIFY_PRODUCTS, "variables": {"first": 10, "query": "status:active"}},
        ),
    ),
    (
        "shopify-list-orders",
        {"query": "financial_status:paid"},
        req(
            "POST",
            "graphql.json",
            body={
                "query": "query Orders($first: Int!, $after: String, $query: String) { orders(first:"
                " $first, after: $after, query: $query, reverse: true) { nodes { id name createdAt"
                " displayFinancialStatus displayFulfillmentStatus totalPriceSet { shopMoney { amount"
                " currencyCode } } customer { id displayName } } pageInfo { hasNextPage endCursor } } }",
                "variables": {"first": 50, "query": "financial_status:paid"},
            },
        ),
    ),
    (
        "shopify-list-customers",
        {"first": 100},
        req(
            "POST",
            "graphql.json",
            body={
                "query": "query Customers($first: Int!, $after: String, $query: String) { customers("
                "first: $first, after: $after, query: $query) { nodes { id displayName"
                " defaultEmailAddress { emailAddress } numberOfOrders createdAt } pageInfo"
                " { hasNextPage endCursor } } }",
                "variables": {"first": 100},
            },
        ),
    ),
    (
        "salesforce-delete-record",
        {"sobject": "Account", "record_id": "001D000000INjVe"},
        req("DELETE", "sobjects/Account/001D000000INjVe"),
    ),
    ("salesforce-describe-global", {}, req("GET", "sobjects")),
]


@pytest.mark.parametrize(
    ("name", "params", "expected"), REQUESTS, ids=[f"{r[0]}-{i}" for i, r in enumerate(REQUESTS)]
)
def test_request_built(
    catalog: Catalog, name: str, params: dict[str, Any], expected: dict[str, Any]
) -> None:
    request = built(catalog, name, params)
    assert request == expected
    # The proxy's path guard (run before every invocation) lets it through, under the base URL.
    assert build_url("https://api.example/v1", request["path"]).startswith(
        "https://api.example/v1/"
    )


#: Functions shipped before this table existed that no request test covers yet.
UNTESTED_BEFORE: set[str] = set()


def test_every_shipped_function_has_a_request_test(catalog: Catalog) -> None:
    shipped = {
        f.name for app in catalog for f in app.functions if not app.slug.startswith("sandbox")
    }
    tested = {name for name, _, _ in REQUESTS} | {name for name, _, _ in BASE_REQUESTS}
    assert sorted(shipped - tested - UNTESTED_BEFORE) == []
    assert tested <= shipped


def test_every_function_names_its_source_in_the_yaml(catalog: Catalog) -> None:
    missing = []
    for app in catalog:
        if app.slug.startswith("sandbox") or not app.functions:
            continue
        lines = (SHIPPED_DIR / f"{app.slug}.yaml").read_text("utf-8").splitlines()
        for fn in app.functions:
            at = lines.index(f"  - name: {fn.name}")
            if not re.fullmatch(r"  # source: https://\S+", lines[at - 1]):
                missing.append(fn.name)
    assert missing == []


def test_every_param_is_described_and_every_list_paginates(catalog: Catalog) -> None:
    for app in catalog:
        for fn in app.functions:
            for name, schema in fn.params.get("properties", {}).items():
                assert schema.get("description"), f"{fn.name}.{name}"
            if fn.name.split("-", 2)[1] == "list" and fn.name not in NO_CURSOR:
                assert fn.pagination is not None, fn.name


#: List functions whose provider has no cursor the function format can follow.
NO_CURSOR: set[str] = {
    # Gmail returns every label in one response (users.labels.list has no pageToken).
    "gmail-list-labels",
    # Microsoft Graph returns every joined team in one response (no @odata.nextLink).
    "microsoft-teams-list-joined-teams",
    # Mailchimp pages by offset/count; the response has no cursor (the function takes offset).
    "mailchimp-list-audiences",
}


# (function, a response as the provider documents it, the next cursor in it). The last page of
# each has no cursor, which the seed's next_page turns into "".
RESPONSES: list[tuple[str, Any, Any]] = [
    (
        "slack-list-messages",
        {
            "ok": True,
            "messages": [],
            "has_more": True,
            "response_metadata": {"next_cursor": "bmV4dF90czoxNTEyMDg1ODYxMDAwNTQz"},
        },
        "bmV4dF90czoxNTEyMDg1ODYxMDAwNTQz",
    ),
    (
        "slack-list-users",
        {"ok": True, "members": [], "response_metadata": {"next_cursor": "dXNlcjpVMEc5V0ZYTlo="}},
        "dXNlcjpVMEc5V0ZYTlo=",
    ),
    ("slack-list-users", {"ok": True, "members": [], "response_metadata": {"next_cursor": ""}}, ""),
    (
        "hubspot-list-contacts",
        {
            "results": [{"id": "512"}],
            "paging": {"next": {"after": "NTI1Cg%3D%3D", "link": "?after=NTI1Cg%3D%3D"}},
        },
        "NTI1Cg%3D%3D",
    ),
    ("hubspot-list-contacts", {"results": []}, None),
    (
        "hubspot-search-contacts",
        {"total": 2, "results": [{"id": "1"}], "paging": {"next": {"after": "1"}}},
        "1",
    ),
    (
        "hubspot-list-companies",
        {"results": [], "paging": {"next": {"after": "NTI1Cg%3D%3D"}}},
        "NTI1Cg%3D%3D",
    ),
    (
        "hubspot-list-deals",
        {"results": [], "paging": {"next": {"after": "NTI1Cg%3D%3D"}}},
        "NTI1Cg%3D%3D",
    ),
    (
        "notion-search",
        {
            "object": "list",
            "results": [{"object": "page"}],
            "next_cursor": "e6c6f8ff-c70e-4970-91ba-98f03e0d7fc6",
            "has_more": True,
        },
        "e6c6f8ff-c70e-4970-91ba-98f03e0d7fc6",
    ),
    (
        "notion-search",
        {"object": "list", "results": [], "next_cursor": None, "has_more": False},
        None,
    ),
    (
        "notion-query-data-source",
        {
            "object": "list",
            "results": [],
            "next_cursor": "fe2cc560-036c-44cd-90e8-294d5a74cebc",
            "has_more": True,
        },
        "fe2cc560-036c-44cd-90e8-294d5a74cebc",
    ),
    (
        "notion-list-block-children",
        {"object": "list", "results": [], "next_cursor": None, "has_more": False},
        None,
    ),
    (
        "jira-search-issues",
        {"issues": [{"id": "10002", "key": "ED-1"}], "nextPageToken": "CAEaAggD", "isLast": False},
        "CAEaAggD",
    ),
    ("jira-search-issues", {"issues": [], "isLast": True}, None),
    (
        "gmail-list-messages",
        {
            "messages": [{"id": "18c2f0e1a2b3c4d5", "threadId": "18c2f0e1a2b3c4d5"}],
            "nextPageToken": "02894761372468953486",
            "resultSizeEstimate": 201,
        },
        "02894761372468953486",
    ),
    ("gmail-list-messages", {"resultSizeEstimate": 0}, None),
]

RESPONSES += [
    (
        "zendesk-list-tickets",
        {
            "tickets": [{"id": 35436}],
            "meta": {"has_more": True, "after_cursor": "xxx", "before_cursor": "yyy"},
        },
        "xxx",
    ),
    (
        "zendesk-search",
        {"results": [], "meta": {"has_more": True, "after_cursor": "eyJmaWVsZCI6ImNyZWF0ZWRfYXQi"}},
        "eyJmaWVsZCI6ImNyZWF0ZWRfYXQi",
    ),
    ("zendesk-list-users", {"users": [], "meta": {"has_more": False, "after_cursor": None}}, None),
    (
        "stripe-connect-search-customers",
        {
            "object": "search_result",
            "url": "/v1/customers/search",
            "has_more": True,
            "data": [],
            "next_page": "WzE2NTk5MjYyNTNd",
        },
        "WzE2NTk5MjYyNTNd",
    ),
    (
        "stripe-connect-search-customers",
        {"object": "search_result", "has_more": False, "data": [], "next_page": None},
        None,
    ),
    (
        "stripe-connect-search-payment-intents",
        {"object": "search_result", "data": [], "has_more": True, "next_page": "cGF5bWVudA"},
        "cGF5bWVudA",
    ),
    (
        "stripe-connect-search-invoices",
        {"object": "search_result", "data": [], "has_more": False, "next_page": None},
        None,
    ),
    (
        "asana-list-tasks",
        {
            "data": [{"gid": "12345"}],
            "next_page": {
                "offset": "eyJ0eXAiOJiKV1iQLCJhbGciOiJIUzI1NiJ9",
                "path": "/tasks?project=1331&limit=50&offset=eyJ0eXAiOJiKV1iQLCJhbGciOiJIUzI1NiJ9",
            },
        },
        "eyJ0eXAiOJiKV1iQLCJhbGciOiJIUzI1NiJ9",
    ),
    ("asana-list-tasks", {"data": [], "next_page": None}, None),
    (
        "airtable-list-records",
        {
            "records": [{"id": "rec560UJdUtocSouk", "fields": {}}],
            "offset": "itrHkHJrQx3G6Jz2H/rec560UJdUtocSouk",
        },
        "itrHkHJrQx3G6Jz2H/rec560UJdUtocSouk",
    ),
    ("airtable-list-records", {"records": []}, None),
    (
        "google-calendar-list-events",
        {"kind": "calendar#events", "items": [], "nextPageToken": "CigKGjRxNjJ"},
        "CigKGjRxNjJ",
    ),
    (
        "google-calendar-list-events",
        {"kind": "calendar#events", "items": [], "nextSyncToken": "CPDAlvWDx70CEPDAlvWDx70CGAU="},
        None,
    ),
    (
        "google-drive-list-files",
        {
            "kind": "drive#fileList",
            "files": [],
            "nextPageToken": "~!!~AI9FV7Q",
            "incompleteSearch": False,
        },
        "~!!~AI9FV7Q",
    ),
    (
        "calendly-list-scheduled-events",
        {
            "collection": [],
            "pagination": {
                "count": 20,
                "next_page": "https://api.calendly.com/scheduled_events?count=20&page_token=sNjq4TvMDfUHEl7zHRR0k0E1PCEJWvdi",
                "next_page_token": "sNjq4TvMDfUHEl7zHRR0k0E1PCEJWvdi",
            },
        },
        "sNjq4TvMDfUHEl7zHRR0k0E1PCEJWvdi",
    ),
    (
        "calendly-list-event-types",
        {"collection": [], "pagination": {"count": 20, "next_page": None, "next_page_token": None}},
        None,
    ),
]

RESPONSES += [
    (
        "pipedrive-get-all-deals",
        {
            "success": True,
            "data": [{"id": 1}],
            "additional_data": {"next_cursor": "eyJmaWVsZCI6ImlkIiwiaWQiOjF9"},
        },
        "eyJmaWVsZCI6ImlkIiwiaWQiOjF9",
    ),
    (
        "pipedrive-get-all-deals",
        {"success": True, "data": [], "additional_data": {"next_cursor": None}},
        None,
    ),
    (
        "pipedrive-get-all-organizations",
        {"success": True, "data": [], "additional_data": {"next_cursor": "b3JnOjE="}},
        "b3JnOjE=",
    ),
    (
        "pipedrive-search-persons",
        {
            "success": True,
            "data": {"items": [{"result_score": 1.2, "item": {"id": 1}}]},
            "additional_data": {"next_cursor": "c2VhcmNoOjE="},
        },
        "c2VhcmNoOjE=",
    ),
    (
        "intercom-list-conversations",
        {
            "type": "conversation.list",
            "conversations": [],
            "pages": {
                "type": "pages",
                "next": {"per_page": 20, "starting_after": "WzE3MTk0OTM3NTcuMCwiMjUiLDJd"},
                "page": 1,
                "per_page": 20,
                "total_pages": 3,
            },
        },
        "WzE3MTk0OTM3NTcuMCwiMjUiLDJd",
    ),
    (
        "todoist-list-tasks",
        {"results": [{"id": "6X7rM8997g3RQmvh"}], "next_cursor": "eyJwYWdlIjoyfQ"},
        "eyJwYWdlIjoyfQ",
    ),
    ("todoist-list-tasks", {"results": [], "next_cursor": None}, None),
    (
        "zoom-list-meetings",
        {
            "page_size": 30,
            "total_records": 31,
            "next_page_token": "Tva2CuIdTgsv8wAnhyAdU3m06Y2HuLQtlh3",
            "meetings": [],
        },
        "Tva2CuIdTgsv8wAnhyAdU3m06Y2HuLQtlh3",
    ),
    (
        "zoom-list-meetings",
        {"page_size": 30, "total_records": 1, "next_page_token": "", "meetings": []},
        "",
    ),
    (
        "box-list-folder-items",
        {
            "entries": [{"id": "12345", "type": "file"}],
            "limit": 1000,
            "next_marker": "JV9IRGZmieiBasejOG9yDCRNgd2ymoZIbjsxbJMjIs3kioVii",
        },
        "JV9IRGZmieiBasejOG9yDCRNgd2ymoZIbjsxbJMjIs3kioVii",
    ),
    ("box-list-folder-items", {"entries": [], "limit": 1000}, None),
    (
        "linear-list-issues",
        {
            "data": {
                "issues": {
                    "nodes": [{"id": "x"}],
                    "pageInfo": {
                        "hasNextPage": True,
                        "endCursor": "5c2ea9fd-5d8f-45d3-a4a3-5c8d0b3c3b52",
                    },
                }
            }
        },
        "5c2ea9fd-5d8f-45d3-a4a3-5c8d0b3c3b52",
    ),
    (
        "linear-list-issues",
        {"data": {"issues": {"nodes": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}}},
        None,
    ),
]

RESPONSES += [
    (
        "hubspot-list-owners",
        {
            "results": [{"id": "41629779", "email": "owner@example.com"}],
            "paging": {"next": {"after": "MTAw"}},
        },
        "MTAw",
    ),
    ("hubspot-list-tickets", {"results": []}, None),
    (
        "youtube-list-my-playlists",
        {
            "kind": "youtube#playlistListResponse",
            "nextPageToken": "CAUQAA",
            "items": [{"id": "PL1"}],
        },
        "CAUQAA",
    ),
    (
        "youtube-search-my-videos",
        {"kind": "youtube#searchListResponse", "items": [], "pageInfo": {"totalResults": 0}},
        None,
    ),
    (
        "google-contacts-list-contacts",
        {
            "connections": [{"resourceName": "people/c1"}],
            "nextPageToken": "GgYKAghkEAI",
            "totalPeople": 250,
        },
        "GgYKAghkEAI",
    ),
    (
        "google-bigquery-list-datasets",
        {
            "kind": "bigquery#datasetList",
            "datasets": [{"id": "my-project-123:sales"}],
            "nextPageToken": "sales",
        },
        "sales",
    ),
    (
        "square-list-customers",
        {"customers": [{"id": "JDKYHBWT1D4F8MFH63DBMEN8Y4"}], "cursor": "9dpS093Uy12AzeE"},
        "9dpS093Uy12AzeE",
    ),
    ("square-list-customers", {"customers": []}, None),
    (
        "square-search-orders",
        {"orders": [{"id": "CAISENgvlJ6jLWAzERDzjyHVybY"}], "cursor": "123"},
        "123",
    ),
    (
        "gorgias-list-tickets",
        {
            "data": [{"id": 42}],
            "meta": {"prev_cursor": None, "next_cursor": "WzE3MDg0NjEwNDBd"},
            "object": "list",
        },
        "WzE3MDg0NjEwNDBd",
    ),
    (
        "eventbrite-list-organization-events",
        {
            "pagination": {
                "object_count": 60,
                "continuation": "eyJwYWdlIjogMn0",
                "page_size": 50,
                "has_more_items": True,
            },
            "events": [{"id": "1"}],
        },
        "eyJwYWdlIjogMn0",
    ),
]

RESPONSES += [
    (
        "harvest-list-time-entries",
        {
            "time_entries": [{"id": 636709355}],
            "per_page": 2000,
            "total_pages": 2,
            "total_entries": 2500,
            "next_page": 2,
            "previous_page": None,
            "page": 1,
        },
        2,
    ),
    (
        "harvest-list-time-entries",
        {"time_entries": [], "per_page": 2000, "total_pages": 2, "next_page": None, "page": 2},
        None,
    ),
]

# Issue 17 item 2, second wave.
RESPONSES += [
    (
        "slack-list-replies",
        {
            "ok": True,
            "messages": [{"type": "message", "ts": "1482960137.003543", "reply_count": 3}],
            "has_more": True,
            "response_metadata": {"next_cursor": "bmV4dF90czoxNDg0Njc4MjkwNTE3MDkx"},
        },
        "bmV4dF90czoxNDg0Njc4MjkwNTE3MDkx",
    ),
    (
        "hubspot-search-companies",
        {"total": 2, "results": [{"id": "512"}], "paging": {"next": {"after": "1"}}},
        "1",
    ),
    ("hubspot-search-deals", {"total": 0, "results": []}, None),
    (
        "gmail-list-threads",
        {
            "threads": [{"id": "18c5f1a2b3d4e5f6", "snippet": "", "historyId": "1"}],
            "nextPageToken": "09876543210",
            "resultSizeEstimate": 201,
        },
        "09876543210",
    ),
    ("gmail-list-threads", {"resultSizeEstimate": 0}, None),
    (
        "notion-list-users",
        {
            "object": "list",
            "results": [{"object": "user", "id": "d40e767c-d7af-4b18-a86d-55c61f1e39a4"}],
            "next_cursor": "fe2cc560-036c-44cd-90e8-294d5a74cebc",
            "has_more": True,
            "type": "user",
        },
        "fe2cc560-036c-44cd-90e8-294d5a74cebc",
    ),
    (
        "notion-list-users",
        {"object": "list", "results": [], "next_cursor": None, "has_more": False},
        None,
    ),
]

RESPONSES += [
    (
        "stripe-connect-search-charges",
        {
            "object": "search_result",
            "url": "/v1/charges/search",
            "has_more": True,
            "data": [{"id": "ch_3MrVHDLkdIwHu7ix1Ivmo8j9"}],
            "next_page": "WzE2ODAyMDk1NjVd",
        },
        "WzE2ODAyMDk1NjVd",
    ),
    (
        "stripe-connect-search-subscriptions",
        {"object": "search_result", "has_more": False, "data": [], "next_page": None},
        None,
    ),
    (
        "stripe-connect-search-products",
        {
            "object": "search_result",
            "has_more": True,
            "data": [{"id": "prod_1"}],
            "next_page": "p2",
        },
        "p2",
    ),
    (
        "airtable-list-bases",
        {
            "bases": [
                {
                    "id": "appLkNDICXNqxSDhG",
                    "name": "Apartment Hunting",
                    "permissionLevel": "create",
                }
            ],
            "offset": "itr23sEjsdfEr3282/appSW9R5uCNmRmfl6",
        },
        "itr23sEjsdfEr3282/appSW9R5uCNmRmfl6",
    ),
    ("airtable-list-bases", {"bases": []}, None),
    (
        "asana-list-projects",
        {
            "data": [{"gid": "12345", "resource_type": "project", "name": "Stuff to buy"}],
            "next_page": {
                "offset": "eyJ0eXAiOJiKV1iQLCJhbGciOiJIUzI1NiJ9",
                "path": "/projects?limit=50&offset=eyJ0eXAiOJiKV1iQLCJhbGciOiJIUzI1NiJ9",
                "uri": "https://app.asana.com/api/1.0/projects?limit=50&offset=eyJ0eXAiOJiKV1iQLCJhbGciOiJIUzI1NiJ9",
            },
        },
        "eyJ0eXAiOJiKV1iQLCJhbGciOiJIUzI1NiJ9",
    ),
    ("asana-list-workspaces", {"data": [{"gid": "1331"}], "next_page": None}, None),
    (
        "linear-list-teams",
        {
            "data": {
                "teams": {
                    "nodes": [{"id": "x", "key": "ENG"}],
                    "pageInfo": {"hasNextPage": True, "endCursor": "a3b0c1d2"},
                }
            }
        },
        "a3b0c1d2",
    ),
    (
        "intercom-list-contacts",
        {
            "type": "list",
            "data": [{"type": "contact", "id": "6762f0dd1bb69f9f2193bb83"}],
            "total_count": 100,
            "pages": {
                "type": "pages",
                "next": {"per_page": 25, "starting_after": "WzE3MzQ1MzUzNTkwMDAsIjY3NjJmMGRkIl0="},
                "page": 1,
                "per_page": 25,
                "total_pages": 4,
            },
        },
        "WzE3MzQ1MzUzNTkwMDAsIjY3NjJmMGRkIl0=",
    ),
    (
        "pipedrive-search-deals",
        {
            "success": True,
            "data": {"items": [{"result_score": 0.6, "item": {"id": 42, "title": "Renewal"}}]},
            "additional_data": {"next_cursor": "eyJzZWFyY2giOjF9"},
        },
        "eyJzZWFyY2giOjF9",
    ),
    (
        "zoom-list-recordings",
        {
            "from": "2026-11-01",
            "to": "2026-11-30",
            "page_size": 30,
            "total_records": 45,
            "next_page_token": "Tva2CuIdTgsv8wAnhyAdU3m06Y2HuLQtlh3",
            "meetings": [{"uuid": "4444AAAiAAAAAiAiAiiAii==", "id": 85746065432}],
        },
        "Tva2CuIdTgsv8wAnhyAdU3m06Y2HuLQtlh3",
    ),
    (
        "calendly-list-event-invitees",
        {
            "collection": [{"uri": "https://api.calendly.com/scheduled_events/ABC/invitees/DEF"}],
            "pagination": {
                "count": 1,
                "next_page": "https://api.calendly.com/scheduled_events/ABC/invitees?count=1&page_token=sNjq4TvMDfUHEl7zHRR0k0E1PCEJWvdi",
                "previous_page": None,
                "next_page_token": "sNjq4TvMDfUHEl7zHRR0k0E1PCEJWvdi",
                "previous_page_token": None,
            },
        },
        "sNjq4TvMDfUHEl7zHRR0k0E1PCEJWvdi",
    ),
]

RESPONSES += [
    (
        "google-calendar-list-calendars",
        {
            "kind": "calendar#calendarList",
            "nextPageToken": "CkAKPjA",
            "items": [{"kind": "calendar#calendarListEntry", "id": "primary"}],
        },
        "CkAKPjA",
    ),
    ("google-calendar-list-calendars", {"kind": "calendar#calendarList", "items": []}, None),
    (
        "zendesk-list-ticket-comments",
        {
            "comments": [{"id": 1274, "body": "Thanks for your help!", "public": True}],
            "meta": {"has_more": True, "after_cursor": "xxx", "before_cursor": "yyy"},
            "links": {
                "next": "https://example.zendesk.com/api/v2/tickets/2/comments.json?page[after]=xxx"
            },
        },
        "xxx",
    ),
    (
        "zendesk-list-organizations",
        {"organizations": [], "meta": {"has_more": False, "after_cursor": None}},
        None,
    ),
    (
        "shopify-list-products",
        {
            "data": {
                "products": {
                    "nodes": [{"id": "gid://shopify/Product/108828309", "title": "Draft"}],
                    "pageInfo": {"hasNextPage": True, "endCursor": "eyJsYXN0X2lkIjoxMDg4MjgzMDl9"},
                }
            }
        },
        "eyJsYXN0X2lkIjoxMDg4MjgzMDl9",
    ),
    (
        "shopify-list-orders",
        {"data": {"orders": {"nodes": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}}},
        None,
    ),
    (
        "shopify-list-customers",
        {
            "data": {
                "customers": {
                    "nodes": [{"id": "gid://shopify/Customer/1"}],
                    "pageInfo": {"hasNextPage": True, "endCursor": "eyJsYXN0X2lkIjoxfQ=="},
                }
            }
        },
        "eyJsYXN0X2lkIjoxfQ==",
    ),
]


@pytest.mark.parametrize(
    ("name", "document", "cursor"), RESPONSES, ids=[f"{r[0]}-{i}" for i, r in enumerate(RESPONSES)]
)
def test_next_cursor_and_output_paths(
    catalog: Catalog, name: str, document: Any, cursor: Any
) -> None:
    fn = catalog.function(name)
    assert fn is not None and fn.pagination is not None
    assert dotted(document, fn.pagination.next_cursor) == cursor
    if fn.output:
        # The output path names the page's list of items (absent from some empty pages).
        items = dotted(document, fn.output)
        assert isinstance(items, list) or (items is None and not cursor)


def test_every_paginated_function_has_a_documented_response(catalog: Catalog) -> None:
    paginated = {
        f.name
        for app in catalog
        for f in app.functions
        if f.pagination and not app.slug.startswith("sandbox")
    }
    covered = {r[0] for r in RESPONSES} | set(test_functions.PAGINATION)
    covered |= set(test_catalog_gaps.URL_PAGED)  # next_url / next_link, tested there
    assert sorted(paginated - covered) == []


@pytest.mark.parametrize(
    "name",
    sorted({r[0] for r in RESPONSES}),
)
def test_next_page_goes_where_the_provider_reads_it(catalog: Catalog, name: str) -> None:
    fn = catalog.function(name)
    assert fn is not None and fn.pagination is not None
    params = next(p for n, p, _ in REQUESTS if n == name)
    first = built(catalog, name, params)
    second = built(catalog, name, {**params, "next_page": "CURSOR"})
    if fn.pagination.cursor_in == "query":
        assert second["query"] == [*first["query"], (fn.pagination.cursor_param, "CURSOR")]
        assert second["body"] == first["body"]
    else:
        expected = json.loads(json.dumps(first["body"]))
        *parents, last = fn.pagination.cursor_param.split(".")
        target = expected
        for part in parents:
            target = target[part]
        target[last] = "CURSOR"
        assert second["body"] == expected
        assert second["query"] == first["query"]


# Params a provider would refuse (or that would leave the documented path) fail validation,
# naming the field.
INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    ("hubspot-get-contact", {"contact_id": "bh@hubspot.com"}, "contact_id", "does not match"),
    ("jira-get-issue", {"cloud_id": CLOUD, "issue": "../../myself"}, "issue", "does not match"),
    ("jira-search-issues", {"cloud_id": CLOUD}, "jql", "'jql' is a required property"),
    ("zendesk-update-ticket", {"ticket_id": 1}, "", "does not have enough properties"),
    (
        "zendesk-create-ticket",
        {"subject": "x", "comment": "y", "priority": "p1"},
        "priority",
        "is not one of",
    ),
    ("stripe-connect-get-customer", {"customer_id": "acct_1"}, "customer_id", "does not match"),
    (
        "salesforce-get-record",
        {"sobject": "Account", "record_id": "001/../x"},
        "record_id",
        "does not match",
    ),
    (
        "google-sheets-append-rows",
        {"spreadsheet_id": SHEET, "range": "A1", "values": []},
        "values",
        "should be non-empty",
    ),
    ("asana-list-tasks", {"assignee": "me"}, "", "is not valid under any of the given schemas"),
    ("notion-get-page", {"page_id": "not-a-page"}, "page_id", "does not match"),
    ("gmail-send-message", {"raw": "To: a@b.example"}, "raw", "does not match"),
    ("slack-get-user", {"user": "C123"}, "user", "does not match"),
    # Issue 17 item 2, second wave.
    (
        "mailchimp-upsert-list-member",
        {
            "list_id": "57afe96172",
            "subscriber_hash": "urist.mcvankab@freddiesjokes.com",
            "email_address": "urist.mcvankab@freddiesjokes.com",
            "status_if_new": "subscribed",
        },
        "subscriber_hash",
        "does not match",
    ),
    (
        "stripe-connect-create-refund",
        {"payment_intent": "pi_1", "charge": "ch_1"},
        "",
        "is valid under each of",
    ),
    ("stripe-connect-get-invoice", {"invoice_id": "../customers"}, "invoice_id", "does not match"),
    ("github-request-reviewers", {"owner": "o", "repo": "r", "pull_number": 1}, "", "any of"),
    (
        "jira-transition-issue",
        {"cloud_id": CLOUD, "issue": "HSP-1", "transition_id": "Done"},
        "transition_id",
        "does not match",
    ),
    ("gmail-modify-labels", {"id": "18c5f1a2b3d4e5f6"}, "", "any of"),
    ("zoom-update-meeting", {"meeting_id": 85746065432}, "", "does not have enough properties"),
    (
        "airtable-delete-record",
        {"base_id": "appLkNDICXNqxSDhG", "table": "Tasks", "record_id": "recX/../../x"},
        "record_id",
        "does not match",
    ),
    ("freshdesk-search-tickets", {"query": 'status:2" OR "1'}, "query", "does not match"),
    ("dropbox-create-folder", {"path": "Homework"}, "path", "does not match"),
]


@pytest.mark.parametrize(
    ("name", "params", "field", "message"), INVALID, ids=[r[0] for r in INVALID]
)
def test_invalid_params_are_refused_with_the_field(
    catalog: Catalog, name: str, params: dict[str, Any], field: str, message: str
) -> None:
    fn = catalog.function(name)
    assert fn is not None
    details = validate_params(fn, params)
    assert any(d["field"] == field and message in d["message"] for d in details), details
