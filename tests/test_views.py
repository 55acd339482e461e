"""Pages and headers (SECURITY.md "Browser and embedding", the parts that need no browser)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import requests
from conftest import Api

from portal import accounts as account_service
from portal.demo import DemoStack

ROOT = Path(__file__).resolve().parent.parent


def test_no_wildcard_postmessage_anywhere() -> None:
    pattern = re.compile(r"postMessage\([^)]*['\"]\*['\"]")
    offenders = [
        str(path)
        for folder in ("static", "templates", "portal")
        for path in (ROOT / folder).rglob("*")
        if path.is_file()
        and "vendor" not in path.parts
        and path.suffix in (".js", ".html", ".py", ".ts")
        and pattern.search(path.read_text("utf-8"))
    ]
    assert offenders == []


def test_pages_send_strict_csp_and_no_referrer(stack: DemoStack, api: Api) -> None:
    for path in (
        "/portal/embed/apps",
        "/portal/embed/apps/sandbox",
        "/portal/embed/apps?mode=inline&layout=narrow",
    ):
        response = requests.get(stack.portal.url + path, timeout=10)
        assert response.status_code == 200
        csp = response.headers["Content-Security-Policy"]
        assert f"frame-ancestors 'self' {stack.host.url}" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "script-src 'self'" in csp
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"


def test_pages_load_no_third_party_script(stack: DemoStack, api: Api) -> None:
    pages = [
        requests.get(stack.portal.url + "/portal/embed/apps", timeout=10).text,
        requests.get(stack.portal.url + "/portal/ui/apps", headers=api.headers, timeout=10).text,
    ]
    for html in pages:
        for src in re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", html):
            assert src.startswith("/portal/static/"), src
        # No inline script except JSON data blocks, no inline style or handlers (CSP).
        for tag in re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html):
            assert 'type="application/json"' in tag
        assert not re.search(r"\sstyle=", html)
        assert not re.search(r"\son[a-z]+=", html)


def test_htmx_is_pinned_and_eval_disabled(stack: DemoStack) -> None:
    html = requests.get(stack.portal.url + "/portal/embed/apps", timeout=10).text
    assert "/portal/static/vendor/htmx-2.0.8.min.js" in html
    assert '"allowEval":false' in html and '"includeIndicatorStyles":false' in html
    assert (ROOT / "static/vendor/htmx-2.0.8.LICENSE").is_file()


def test_hostile_label_is_inert_in_every_view(stack: DemoStack, api: Api) -> None:
    hostile = "</script><script>alert(1)</script>"
    state = stack.portal_app.extensions["portal"]
    with state.store.session() as db:
        account, _ = account_service.upsert_account(
            db,
            state.sealer,
            user_id=api.user_id,
            app="sandbox",
            external_id="x1",
            label=hostile,
            scopes=[],
            credentials={"type": "oauth2", "access_token": "t"},
            expires_at=None,
        )
    page = requests.get(
        f"{stack.portal.url}/portal/ui/apps/sandbox", headers=api.headers, timeout=10
    ).text
    assert hostile not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    listing = api.get("/connected-accounts").json()["connected_accounts"]
    assert listing[0]["label"] == hostile  # JSON carries it as data; the browser test renders it
    deleted = api.delete(f"/connected-accounts/{account.id}")
    assert deleted.status_code == 200


def test_callback_and_api_are_no_store(stack: DemoStack, api: Api) -> None:
    response = requests.get(stack.portal.url + "/portal/oauth/sandbox/callback?state=x", timeout=10)
    assert response.status_code == 400
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert api.get("/apps").headers["Cache-Control"] == "no-store"


def test_marketplace_search_and_category_filter(stack: DemoStack, api: Api) -> None:
    url = f"{stack.portal.url}/portal/ui/apps"
    everything = requests.get(url, headers=api.headers, timeout=10).text
    for title in ("Sandbox CRM", "Sandbox Analytics", "Sandbox Files"):
        assert title in everything
    grid = requests.get(
        url,
        params={"q": "analytics"},
        headers={**api.headers, "HX-Request": "true", "HX-Target": "portal-app-grid"},
        timeout=10,
    ).text
    assert grid.lstrip().startswith("<ul") and 'id="portal-app-grid"' in grid
    assert "Sandbox Analytics" in grid and "Sandbox CRM" not in grid
    by_category = requests.get(
        url, params={"category": "File storage"}, headers=api.headers, timeout=10
    ).text
    assert "Sandbox Files" in by_category and "Sandbox Analytics" not in by_category


def test_unknown_app_page_is_404_page(stack: DemoStack, api: Api) -> None:
    response = requests.get(f"{stack.portal.url}/portal/embed/apps/nope", timeout=10)
    assert response.status_code == 404
    assert "nope" in response.text and "<html" in response.text


def test_hsts_only_over_https(make_app: Any) -> None:
    app = make_app()
    secure = app.test_client().get("/portal/api/v1", base_url="https://portal.example")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    page = app.test_client().get("/portal/embed/apps", base_url="https://portal.example")
    assert "includeSubDomains" in page.headers["Strict-Transport-Security"]
    plain = app.test_client().get("/portal/api/v1", base_url="http://portal.example")
    assert "Strict-Transport-Security" not in plain.headers
