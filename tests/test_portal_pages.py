"""What the end user reads inside the portal's pages (issue 12, "polish"): server-rendered HTML
over real HTTP to the loopback demo stack, no browser. The behaviours a browser must show
(wrapping at 375 px, focus, the disconnect Cancel) are in tests/e2e/test_phone_polish_browser.py.
"""

from __future__ import annotations

import html as html_module
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest
import requests
from conftest import Api, Browser, parse_form

from portal import accounts as account_service
from portal.catalog import load_catalog
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_ENABLED_APPS, DemoStack

ROOT = Path(__file__).resolve().parent.parent
LONG_LABEL = "marie-claire.delacroix-fontaine@research.example-university.org"


def text_of(fragment: str) -> str:
    """The text a reader sees in an HTML fragment: tags dropped, entities decoded, spaces
    collapsed."""
    return " ".join(html_module.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def insert(stack: DemoStack, user: str, label: str, external_id: str, app: str = "sandbox") -> str:
    state = stack.portal_app.extensions["portal"]
    with state.store.session() as db:
        account, _ = account_service.upsert_account(
            db,
            state.sealer,
            project=DEMO_APP_KEY,
            user_id=user,
            app=app,
            external_id=external_id,
            label=label,
            scopes=[],
            credentials={"type": "oauth2", "access_token": "not-a-real-token"},
            expires_at=None,
        )
        return str(account.id)


def app_page(stack: DemoStack, api: Api, app: str) -> str:
    response = requests.get(
        f"{stack.portal.url}/portal/ui/apps/{app}", headers=api.headers, timeout=10
    )
    assert response.status_code == 200, response.text[:300]
    return response.text


def account_row(page: str, account_id: str) -> str:
    match = re.search(
        rf'<li class="portal-account" data-portal-account="{account_id}"[^>]*>(.*?)</li>',
        page,
        re.S,
    )
    assert match, page[:2000]
    return match.group(1)


# ------------------------------------------------------------------------ account labels


def label_pieces(row: str) -> list[str]:
    """The pieces of an account row's label between its line-break points (``<wbr>``), each
    checked to be one unbreakable piece."""
    label = re.search(
        r'<strong class="portal-account__label"[^>]*><bdi>(.*?)</bdi></strong>', row, re.S
    )
    assert label, row
    pieces = label.group(1).split("<wbr>")
    for piece in pieces:
        assert re.fullmatch(r'<span class="portal-unbroken">[^<]*</span>', piece), piece
    return [text_of(p) for p in pieces]


def test_email_label_may_break_only_after_at_and_dots(stack: DemoStack, api: Api) -> None:
    """A long e-mail label offers line breaks (``<wbr>``) right after ``@`` and each dot and
    nowhere else (each piece between them is one unbreakable inline block, hyphens included);
    the text read aloud or copied is unchanged."""
    account = insert(stack, api.user_id, LONG_LABEL, "1")
    pieces = label_pieces(account_row(app_page(stack, api, "sandbox"), account))
    assert pieces == [
        "marie-claire.",
        "delacroix-fontaine@",
        "research.",
        "example-university.",
        "org",
    ]
    assert "".join(pieces) == LONG_LABEL


def test_label_with_spaces_wraps_at_its_spaces(stack: DemoStack, api: Api) -> None:
    """A label that is not one word ("Acme Inc. Sales") is left as text: it wraps at spaces."""
    account = insert(stack, api.user_id, "Acme Inc. Sales", "acme-1")
    row = account_row(app_page(stack, api, "sandbox"), account)
    assert "<bdi>Acme Inc. Sales</bdi>" in row


def test_breakable_label_stays_escaped(stack: DemoStack, api: Api) -> None:
    """The break points never let markup of a hostile label through."""
    hostile = "<img/src=x/onerror=alert(1)>@evil.example"
    account = insert(stack, api.user_id, hostile, "h-1")
    row = account_row(app_page(stack, api, "sandbox"), account)
    assert "<img" not in row
    assert "&lt;img/src=x/onerror=alert(1)&gt;@</span>" in row
    assert label_pieces(row) == ["<img/src=x/onerror=alert(1)>@", "evil.", "example"]


def test_external_id_is_labelled_not_a_bare_number(stack: DemoStack, api: Api) -> None:
    """The provider's account id next to the label says what it is ("ID 1"), so it does not
    read like a count; an id equal to the label is not repeated."""
    numbered = insert(stack, api.user_id, "ada@sandbox.test", "1")
    same = insert(stack, api.user_id, "grace", "grace")
    page = app_page(stack, api, "sandbox")
    numbered_row = account_row(page, numbered)
    ident = re.search(r'<span class="portal-account__id">(.*?)</span>\s*</p>', numbered_row, re.S)
    assert ident, numbered_row
    assert text_of(ident.group(1)) == "ID 1"
    assert "portal-account__id" not in account_row(page, same)


def test_external_id_shown_once_when_there_is_no_label(stack: DemoStack, api: Api) -> None:
    """Without a label the id stands in for it, once."""
    account = insert(stack, api.user_id, "", "U-42")
    row = account_row(app_page(stack, api, "sandbox"), account)
    assert "portal-account__id" not in row
    assert (
        text_of(re.sub(r".*?<p class=\"portal-account__name\">(.*?)</p>.*", r"\1", row, flags=re.S))
        == "U-42"
    )


# ------------------------------------------------------------------ connect note per auth type


@pytest.mark.parametrize(
    ("app", "note"),
    [
        ("sandbox", "You'll sign in to Sandbox CRM in a new window."),
        ("sandbox-keys", "You'll enter your Sandbox Analytics API key in a new window."),
        ("sandbox-basic", "You'll enter your Sandbox Files username and password in a new window."),
        (
            "sandbox-m2m",
            "You'll enter your Sandbox Machine API client ID and secret in a new window.",
        ),
        ("sandbox-regional", "You'll sign in to Sandbox Helpdesk in a new window."),
    ],
)
def test_connect_note_fits_the_auth_type(stack: DemoStack, api: Api, app: str, note: str) -> None:
    page = app_page(stack, api, app)
    found = re.search(r'<p class="portal-connect__note">(.*?)</p>', page, re.S)
    assert found, page[:2000]
    assert text_of(found.group(1)) == note


# ------------------------------------------------------------------------ disconnect confirm


def test_disconnect_renders_a_cancel_for_its_confirmation(stack: DemoStack, api: Api) -> None:
    """Each account has, beside its Disconnect button, a Cancel button (hidden until the first
    click asks for confirmation; static/frame.js shows it) tied to that account."""
    account = insert(stack, api.user_id, "ada@sandbox.test", "1")
    row = account_row(app_page(stack, api, "sandbox"), account)
    cancel = re.search(r"<button [^>]*data-portal-disconnect-cancel[^>]*>(.*?)</button>", row, re.S)
    assert cancel, row
    assert text_of(cancel.group(1)) == "Cancel"
    tag = cancel.group(0)
    assert ' type="button"' in tag and " hidden" in tag
    assert f'aria-describedby="portal-account-{account}-label"' in tag


# ------------------------------------------------------------------------- the key form


def key_form(api: Api, app: str) -> tuple[Browser, str, dict[str, Any], str]:
    browser = Browser()
    ticket = api.ticket(app)
    page = browser.http.get(ticket["connect_url"], timeout=10)
    assert page.status_code == 200, page.text[:300]
    form = parse_form(page.text)
    return browser, requests.compat.urljoin(ticket["connect_url"], form["action"]), form, page.text


def input_tag(page: str, name: str) -> str:
    found = re.search(rf'<input [^>]*name="{name}"[^>]*>', page)
    assert found, page[:3000]
    return found.group(0)


def test_key_form_focuses_its_first_field(stack: DemoStack, api: Api) -> None:
    """The form opens with the focus in its first field: the key itself when that is all it
    asks, the data region when the app also asks where the account is."""
    _, _, _, page = key_form(api, "sandbox-keys")
    assert " autofocus" in input_tag(page, "api_key")
    _, _, _, page = key_form(api, "sandbox-tenant-keys")
    region = re.search(r'<select [^>]*name="account_region"[^>]*>', page)
    assert region and " autofocus" in region.group(0), page[:3000]
    assert " autofocus" not in input_tag(page, "api_key")


def test_rejected_key_is_cleared_with_a_reason_and_focused(stack: DemoStack, api: Api) -> None:
    """After the provider refused the key, the form keeps the non-secret fields, puts the focus
    in the key field again and says why it is empty: a secret is never written back into the
    page (it would sit in the HTML of a page the browser may keep, and a refused key is wrong
    anyway)."""
    browser, action, form, _ = key_form(api, "sandbox-tenant-keys")
    fields = {**form["fields"], "account_region": "eu", "account_workspace": "acme"}
    bad = browser.http.post(action, data={**fields, "api_key": "sk_wrong_secret"}, timeout=10)
    assert bad.status_code == 400
    assert "sk_wrong_secret" not in bad.text
    key = input_tag(bad.text, "api_key")
    assert " autofocus" in key and 'value="' not in key.replace('value=""', "")
    assert 'value="acme"' in input_tag(bad.text, "account_workspace")
    assert re.search(r'<option selected value="eu">|<option value="eu" selected>', bad.text), (
        bad.text[:3000]
    )
    described = re.search(r'aria-describedby="([^"]+)"', key)
    assert described, key
    cleared = re.search(
        r'<p class="portal-help portal-help--cleared" id="([^"]+)">(.*?)</p>', bad.text, re.S
    )
    assert cleared, bad.text[:3000]
    assert cleared.group(1) in described.group(1).split()
    assert (
        text_of(cleared.group(2))
        == "For your security, this field was cleared. Please enter it again."
    )


def test_key_form_focuses_the_first_field_to_fix(stack: DemoStack, api: Api) -> None:
    """A field error (an empty workspace) takes the focus; the key typed is cleared and says so."""
    browser, action, form, _ = key_form(api, "sandbox-tenant-keys")
    fields = {**form["fields"], "account_region": "eu", "account_workspace": ""}
    bad = browser.http.post(action, data={**fields, "api_key": "sk_typed_value_123"}, timeout=10)
    assert bad.status_code == 400
    assert " autofocus" in input_tag(bad.text, "account_workspace")
    assert " autofocus" not in input_tag(bad.text, "api_key")
    assert "sk_typed_value_123" not in bad.text
    assert "this field was cleared" in bad.text


def test_unknown_workspace_reads_as_plain_language(stack: DemoStack, api: Api) -> None:
    """The provider has no such workspace (its account lookup answers 404): the form says so in
    words, not "HTTP 404", and keeps what was typed in the non-secret fields."""
    browser, action, form, _ = key_form(api, "sandbox-tenant-keys")
    fields = {**form["fields"], "account_region": "eu", "account_workspace": "no-such-workspace"}
    bad = browser.http.post(action, data={**fields, "api_key": "sk_demo_ada"}, timeout=10)
    assert bad.status_code == 400
    alert = re.search(
        r'<div class="portal-alert portal-alert--danger" role="alert">(.*?)</div>', bad.text, re.S
    )
    assert alert, bad.text[:3000]
    assert text_of(alert.group(1)) == (
        "Sandbox Status Pages did not find this account. Check the details you entered."
    )
    assert 'value="no-such-workspace"' in input_tag(bad.text, "account_workspace")


def test_empty_key_is_not_said_to_be_cleared(stack: DemoStack, api: Api) -> None:
    browser, action, form, _ = key_form(api, "sandbox-keys")
    bad = browser.http.post(action, data={**form["fields"], "api_key": ""}, timeout=10)
    assert bad.status_code == 400
    assert " autofocus" in input_tag(bad.text, "api_key")
    assert "was cleared" not in bad.text


# ------------------------------------------------------- API-key apps in the marketplace


def card_titles(html: str) -> list[str]:
    return [
        html_module.unescape(t)
        for t in re.findall(r'<span class="portal-card__title">([^<]*)</span>', html)
    ]


def test_apps_that_need_no_host_configuration_are_listed_unless_enabled_apps_restricts(
    make_app: Any,
) -> None:
    """README "Which apps the marketplace shows": with ``PORTAL_ENABLED_APPS`` unset, API-key,
    username/password and client-credentials apps are listed (the end user brings the
    credential); OAuth apps only once the host configured their client. Set, it is the whole
    list: nothing else shows, and other apps' pages are 404."""
    headers = {"Authorization": f"Bearer {DEMO_APP_SECRET}", "X-Portal-User-Id": "u-listing"}
    everything = make_app(PORTAL_ENABLED_APPS=None)
    with everything.app_context():
        listed = {a.slug for a in everything.extensions["portal"].enabled_apps()}
    catalog = load_catalog()
    needs_no_host = {a.slug for a in catalog if a.oauth2 is None}
    assert len(needs_no_host) >= 30
    assert needs_no_host <= listed
    unconfigured_oauth = {
        a.slug
        for a in catalog
        if a.oauth2 is not None and not a.usable and not a.slug.startswith("sandbox")
    }
    assert unconfigured_oauth and not unconfigured_oauth & listed
    client = everything.test_client()
    assert client.get("/portal/ui/apps/openai", headers=headers).status_code == 200

    restricted = make_app(PORTAL_ENABLED_APPS=["sandbox-keys", "sandbox"])
    client = restricted.test_client()
    html = client.get("/portal/ui/apps", headers=headers).get_data(as_text=True)
    assert card_titles(html) == ["Sandbox Analytics", "Sandbox CRM"]
    assert client.get("/portal/ui/apps/openai", headers=headers).status_code == 404
    ticket = client.post("/portal/api/v1/connect-tickets", json={"app": "openai"}, headers=headers)
    assert ticket.status_code == 404, ticket.get_data(as_text=True)
    allowed = client.post(
        "/portal/api/v1/connect-tickets", json={"app": "sandbox-keys"}, headers=headers
    )
    assert allowed.status_code == 201, allowed.get_data(as_text=True)


# --------------------------------------------------------------------------- sandbox icons


def test_every_sandbox_app_has_its_own_icon() -> None:
    """Ten sandbox apps, ten different SVG files, each a plain image (no script, no link out)."""
    catalog = load_catalog()
    icons = {slug: catalog.get(slug).icon_file for slug in DEMO_ENABLED_APPS}  # type: ignore[union-attr]
    assert len(set(icons.values())) == len(icons), icons
    for slug, name in icons.items():
        assert name and name.endswith(".svg"), slug
        path = ROOT / "static" / "icons" / name
        root = ElementTree.parse(path).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg", name
        text = path.read_text("utf-8")
        assert "<script" not in text and "href" not in text and "url(http" not in text, name
        assert root.get("viewBox") == "0 0 64 64", name


# ----------------------------------------------------------------- failure copy (attempts)


def test_a_foreign_issuer_reads_as_plain_language(stack: DemoStack, api: Api) -> None:
    """RFC 9207's ``iss`` check failed: the popup and the app page's poll say it in words, not
    "iss mismatch" or "unexpected issuer"."""
    browser = Browser()
    ticket = api.ticket("sandbox")
    started = browser.start(ticket["connect_url"])
    consent = browser.consent(started.headers["Location"])
    query = parse_qs(urlsplit(consent.callback_url).query)
    query["iss"] = ["https://evil.example"]
    from urllib.parse import urlencode

    bad = consent.callback_url.split("?")[0] + "?" + urlencode({k: v[0] for k, v in query.items()})
    response = browser.callback(bad)
    assert response.status_code == 400
    page = text_of(response.text)
    assert "issuer" not in page and "iss " not in page
    assert "The sign-in answer did not come from Sandbox CRM, so it was not used." in page
    attempt = api.get(f"/connect-attempts/{ticket['attempt_id']}").json()
    assert attempt["status"] == "failed"
    assert attempt["error"] == {
        "type": "invalid_issuer",
        "message": "The sign-in answer did not come from Sandbox CRM, so it was not used. "
        "Please try again.",
    }


def test_an_expired_connect_link_reads_as_plain_language(stack: DemoStack) -> None:
    """A connect link past its time (or forged): a plain heading, the sentence, the status code
    last; no HTTP reason phrase ("Bad Request") for the end user."""
    response = requests.get(
        f"{stack.portal.url}/portal/connect/sandbox?ticket=not-a-ticket", timeout=10
    )
    assert response.status_code == 400
    page = text_of(response.text)
    assert "Bad Request" not in page
    heading = re.search(r'<h1 class="portal-error__title">(.*?)</h1>', response.text)
    # The heading is a translated message (Markup from gettext: the apostrophe is not escaped).
    assert heading and html_module.unescape(heading.group(1)) == "That didn't work"
    assert "This connect link is not valid." in page
    assert page.endswith("Error code 400")


@pytest.mark.parametrize(
    ("code", "sentence"),
    [
        ("access_denied", "You chose not to connect Acme."),
        ("window_closed", "The window was closed before the connection finished."),
        ("server_error", "Acme reported a problem. Please try again."),
        (
            "temporarily_unavailable",
            "Acme is not available right now. Please try again in a moment.",
        ),
        (
            "invalid_issuer",
            "The sign-in answer did not come from Acme, so it was not used. Please try again.",
        ),
        ("expired", "The connection took too long and expired. Please try again."),
        ("no_such_code", "Connecting Acme did not work. Please try again."),
    ],
)
def test_failure_sentences_are_plain_language(code: str, sentence: str) -> None:
    from portal.connect_errors import MESSAGES, failure_message

    assert failure_message(code, "Acme") == sentence
    jargon = re.compile(
        r"resource owner|authorization server|issuer|\biss\b|nonce|RFC|state|grant|scope", re.I
    )
    for template in MESSAGES.values():
        assert not jargon.search(template), template


@pytest.mark.parametrize(
    ("code", "description", "sentence"),
    [
        (
            "invalid_grant",
            "The provided authorization grant is invalid, expired, revoked, does not match the "
            "redirection URI used in the authorization request, or was issued to another client.",
            "Acme did not accept this sign-in: it may have expired or been used already. "
            "Please try again.",
        ),
        (
            "invalid_client",
            "Client authentication failed.",
            "Acme does not let this app connect accounts right now.",
        ),
        ("temporarily_unavailable", "Acme did not answer in time.", "Acme did not answer in time."),
        (
            "invalid_response",
            "Acme sent an account that is not JSON.",
            "Acme sent an account that is not JSON.",
        ),
    ],
)
def test_token_endpoint_errors_read_as_plain_language(
    code: str, description: str, sentence: str
) -> None:
    """The callback's code exchange failed (RFC 6749 §5.2): the provider's developer text is
    replaced by a sentence; the portal's own messages (a timeout) are kept."""
    from portal.connect_errors import portal_error_message

    assert portal_error_message(code, "Acme", description) == sentence
