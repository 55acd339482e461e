"""``GET /api/v1/origin-check`` (portal/views/api.py): the public answer portal.js uses to name
``origin_not_allowed`` when ``POST /sessions`` fails without a CORS answer (issue 12)."""

from __future__ import annotations

import requests

from portal.demo import DemoStack

URL = "/portal/api/v1/origin-check"


def test_origin_check_answers_any_page_without_credentials(stack: DemoStack) -> None:
    evil = "https://evil.example"
    response = requests.get(
        stack.portal.url + URL, params={"origin": evil}, headers={"Origin": evil}, timeout=10
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
    body = response.json()
    assert body["origin"] == evil and body["allowed"] is False
    assert evil in body["message"] and "PORTAL_ALLOWED_ORIGINS" in body["message"]


def test_origin_check_confirms_an_allowed_origin(stack: DemoStack) -> None:
    # Without the parameter, the browser's Origin header is the one asked about.
    response = requests.get(stack.portal.url + URL, headers={"Origin": stack.host.url}, timeout=10)
    assert response.json() == {
        "origin": stack.host.url,
        "allowed": True,
        "message": f"{stack.host.url} is in PORTAL_ALLOWED_ORIGINS.",
    }
    # Not an origin (a path, a script URL): not allowed, and said so.
    response = requests.get(
        stack.portal.url + URL, params={"origin": "javascript:alert(1)"}, timeout=10
    )
    assert response.json()["origin"] is None and response.json()["allowed"] is False
