"""Versioned static URLs (portal.static_files, issue 14 item 3): every page names its static
files with ``?v=<hash>`` of their content; those answers are cached for a year without
revalidation, anything else briefly; the SDK's hidden frame briefly; API answers never."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import requests
from conftest import Api

from portal._paths import STATIC_DIR
from portal.demo import DemoStack
from portal.static_files import IMMUTABLE_CACHE, SHORT_CACHE, file_version

# The icons' URLs are absolute (the host page shows them too).
ASSET = re.compile(r'(?:src|href|data-portal-htmx)="(?:https?://[^/"]+)?(/portal/static/[^"]+)"')


def test_file_version_is_the_content_hash_and_follows_edits(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text("one", "utf-8")
    first = file_version("a.js", tmp_path)
    assert first == hashlib.sha256(b"one").hexdigest()[:16]
    (tmp_path / "a.js").write_text("two!", "utf-8")
    assert file_version("a.js", tmp_path) == hashlib.sha256(b"two!").hexdigest()[:16]
    assert file_version("missing.js", tmp_path) is None
    assert file_version("../a.js", tmp_path / "sub") is None  # never outside the folder


def test_pages_name_static_files_by_version_and_those_are_immutable(
    stack: DemoStack, api: Api
) -> None:
    pages = [
        requests.get(stack.portal.url + "/portal/embed/apps", timeout=10).text,
        requests.get(stack.portal.url + "/portal/embed/rpc", timeout=10).text,
    ]
    assets = {url for page in pages for url in ASSET.findall(page)}
    # frame.js, portal.css, htmx and the cards' icons.
    assert {"frame.js", "portal.css", "vendor/htmx-2.0.8.min.js"} <= {
        u.split("?")[0].removeprefix("/portal/static/") for u in assets
    }
    assert any("/icons/" in u for u in assets)
    for url in assets:
        path, _, query = url.replace("&amp;", "&").partition("?")
        name = path.removeprefix("/portal/static/")
        assert query == f"v={file_version(name)}", url
        response = requests.get(stack.portal.url + url.replace("&amp;", "&"), timeout=10)
        assert response.status_code == 200
        assert hashlib.sha256(response.content).hexdigest()[:16] == file_version(name)
        assert response.headers["Cache-Control"] == IMMUTABLE_CACHE, url


def test_unversioned_or_stale_static_urls_are_cached_briefly(stack: DemoStack) -> None:
    base = stack.portal.url + "/portal/static/"
    plain = requests.get(base + "portal.min.js", timeout=10)
    stale = requests.get(base + "frame.js?v=0000000000000000", timeout=10)
    missing = requests.get(base + "no-such-file.js?v=0000000000000000", timeout=10)
    assert plain.status_code == stale.status_code == 200
    assert plain.headers["Cache-Control"] == stale.headers["Cache-Control"] == SHORT_CACHE
    assert missing.status_code == 404 and missing.headers["Cache-Control"] == "no-store"
    assert (STATIC_DIR / "portal.min.js").read_bytes() == plain.content


def test_rpc_frame_is_cached_briefly_and_the_api_never(stack: DemoStack, api: Api) -> None:
    rpc = requests.get(stack.portal.url + "/portal/embed/rpc", timeout=10)
    assert rpc.headers["Cache-Control"] == SHORT_CACHE
    # The page's own policy (framing by allowed hosts only), not the API's.
    assert f"frame-ancestors 'self' {stack.host.url}" in rpc.headers["Content-Security-Policy"]
    session = api.get("/session")
    assert session.headers["Cache-Control"] == "no-store"
    # API JSON: nothing in it may load or be framed.
    assert (
        session.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    )


def test_session_token_carries_its_host_origin_for_frame_js(stack: DemoStack, api: Api) -> None:
    """frame.js reads the session's host origin from the token's payload instead of asking
    ``GET /session`` (one request less per frame); the token is signed, so a forged one gets
    only errors. The payload is base64url JSON with ``o``; a compressed one (a leading ``.``)
    makes frame.js ask the server, which must say the same."""
    token = api.headers["Authorization"].removeprefix("Bearer ")
    payload = token.split(".")[0]
    assert payload, "an uncompressed payload"
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["o"] == api.get("/session").json()["origin"] == stack.host.url
