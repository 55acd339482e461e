"""Themes (portal/theme.py): strict checking of every value, the WCAG contrast arithmetic, the
served stylesheet, and the theme of a session (POST /sessions, GET /session)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from conftest import Api
from flask import Flask

from portal import user_hash
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DemoStack
from portal.errors import ConfigurationError, InvalidRequest
from portal.theme import (
    DARK_SURFACE,
    LIGHT_SURFACE,
    Theme,
    accent_properties,
    config_theme,
    contrast_ratio,
    parse_colour,
    parse_theme,
    relative_luminance,
    stylesheet,
    text_on,
)

HOSTILE = [
    ("accent", "red;}body{display:none"),
    ("accent", "#fff;}body{display:none}"),
    ("accent", "url(javascript:alert(1))"),
    ("accent", "expression(alert(1))"),
    ("accent", "red"),
    ("accent", "hsl(0, 100%, 50%)"),
    ("accent", "var(--x)"),
    ("accent", "rgb(300, 0, 0)"),
    ("accent", "rgba(0, 0, 0, 0.5)"),  # translucent: its text contrast cannot be known
    ("accent", "rgb(1,2,3))"),
    ("accent", "#12345"),
    ("accent", "#ff00ff\n"),
    ("radius", "100000px"),
    ("radius", "33px"),
    ("radius", "3rem"),
    ("radius", "1e9px"),
    ("radius", "-4px"),
    ("radius", "4em"),
    ("radius", "calc(1px + 1px)"),
    ("radius", "4px;}"),
    ("font", "Inter; } body { display:none"),
    ("font", "url(https://evil.example/f.woff)"),
    ("font", "Inter, url(x)"),
    ("font", "expression(alert(1))"),
    ("font", "Ｉｎｔｅｒ"),  # fullwidth letters
    ("font", "Noto Sans\u202e"),  # a bidi override
    ("font", "游ゴシック"),
    ("font", '"Inter'),
    ("font", "Inter\\, serif"),
    ("font", "a," * 10 + "serif"),
    ("font", "x" * 201),
    ("font", "Inter,,serif"),
    ("density", "cozy"),
    ("mode", "system"),
    ("logo", "javascript:alert(1)"),
    ("logo", "data:image/svg+xml,<svg onload=alert(1)>"),
    ("logo", "http://host.example/logo.png"),
    ("logo", "https://user:pw@host.example/logo.png"),
    ("logo", 'https://host.example/a"b.png'),
    ("logo", "https://host.example/" + "a" * 1100),
    ("name", ""),
    ("name", "x" * 61),
    ("name", "Acme\u202eevil"),
    ("name", "Acme\x00"),
]


@pytest.mark.parametrize(("key", "value"), HOSTILE)
def test_hostile_values_are_refused_naming_the_field(key: str, value: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_theme({key: value})
    assert caught.value.error_code == "invalid_theme"
    assert caught.value.details[0]["field"] == f"theme.{key}"


@pytest.mark.parametrize("value", [["#fff"], 12, {"a": 1}, True])
def test_non_string_values_and_unknown_keys_are_refused(value: Any) -> None:
    with pytest.raises(InvalidRequest, match="accent"):
        parse_theme({"accent": value})
    with pytest.raises(InvalidRequest) as caught:
        parse_theme({"accent": "#fff", "background": "#000"})
    assert caught.value.details[0]["field"] == "theme.background"
    with pytest.raises(InvalidRequest):
        parse_theme("dark")


def test_values_are_re_serialised_not_copied() -> None:
    theme = parse_theme(
        {
            "mode": "dark",
            "accent": "#0F7",
            "radius": "0.50rem",
            "font": "  'Iowan Old Style',Georgia ,  serif",
            "density": "compact",
            "logo": "https://host.example/logo.png",
            "name": "  Acme   Corp ",
        }
    )
    assert theme == Theme(
        mode="dark",
        accent="#00ff77",
        radius="0.5rem",
        font='"Iowan Old Style", "Georgia", serif',
        density="compact",
        logo="https://host.example/logo.png",
        name="Acme Corp",
    )
    assert parse_theme({"accent": "rgb(15, 118, 110)"}).accent == "#0f766e"
    assert parse_theme({"accent": "rgba(15,118,110,1)"}).accent == "#0f766e"
    assert parse_colour("rgba(0, 0, 0, .25)") == ((0, 0, 0), 0.25)


def test_config_theme_keeps_the_mode_string_form() -> None:
    assert config_theme("dark") == Theme(mode="dark")
    assert config_theme({"accent": "#0f766e"}).scheme == "auto"
    with pytest.raises(ConfigurationError, match=r"PORTAL_THEME\.accent"):
        config_theme({"accent": "red;}"})
    with pytest.raises(ConfigurationError, match="PORTAL_THEME.mode"):
        config_theme("purple")


def test_session_keys_override_the_servers_key_by_key() -> None:
    server = Theme(mode="dark", accent="#0f766e", name="Acme")
    merged = Theme(accent="#b91c1c").over(server)
    assert merged == Theme(mode="dark", accent="#b91c1c", name="Acme")


def test_relative_luminance_and_contrast_match_wcag_reference_values() -> None:
    # WCAG 2.2 definitions: white 1, black 0, so black on white is (1.05 / 0.05) = 21:1.
    assert relative_luminance((255, 255, 255)) == pytest.approx(1.0)
    assert relative_luminance((0, 0, 0)) == 0.0
    assert contrast_ratio((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    # Pure sRGB primaries: their luminance is the channel's coefficient.
    assert relative_luminance((255, 0, 0)) == pytest.approx(0.2126)
    assert relative_luminance((0, 255, 0)) == pytest.approx(0.7152)
    assert relative_luminance((0, 0, 255)) == pytest.approx(0.0722)
    # #777777 on white is the well-known 4.48:1 (just fails AA); #767676 4.54:1 (passes).
    assert contrast_ratio((0x77,) * 3, (255, 255, 255)) == pytest.approx(4.48, abs=0.01)
    assert contrast_ratio((0x76,) * 3, (255, 255, 255)) == pytest.approx(4.54, abs=0.01)
    # The piecewise sRGB curve: 0.04045 and below is linear (10 / 255 / 12.92).
    assert relative_luminance((10, 10, 10)) == pytest.approx(10 / 255 / 12.92)


@pytest.mark.parametrize(
    ("accent", "text"),
    [
        ("#4f46e5", "#ffffff"),  # indigo
        ("#facc15", "#000000"),  # yellow
        ("#777777", "#000000"),  # mid grey: 4.48 on white, 4.69 on black
        ("#0f766e", "#ffffff"),
        ("#ffffff", "#000000"),
        ("#000000", "#ffffff"),
        ("#ff0000", "#000000"),  # red: 5.25 on black, 4.00 on white
    ],
)
def test_text_on_the_accent_reaches_4_5_to_1(accent: str, text: str) -> None:
    props, light_text, dark_text = accent_properties(accent)
    assert props["--portal-accent-contrast"] == text
    rgb = parse_colour(accent)[0]
    on = parse_colour(text)[0]
    hover = parse_colour(props["--portal-accent-hover"])[0]
    assert contrast_ratio(rgb, on) >= 4.5
    assert contrast_ratio(hover, on) >= contrast_ratio(rgb, on)
    assert contrast_ratio(parse_colour(light_text)[0], LIGHT_SURFACE) >= 4.5
    assert contrast_ratio(parse_colour(dark_text)[0], DARK_SURFACE) >= 4.5


def test_every_grey_gets_a_readable_text_colour() -> None:
    for level in range(256):
        grey = (level, level, level)
        assert contrast_ratio(grey, text_on(grey)) >= 4.58


def test_stylesheet_holds_only_parsed_values() -> None:
    theme = parse_theme(
        {"accent": "#facc15", "radius": "6px", "font": "Georgia, serif", "density": "compact"}
    )
    css = stylesheet(theme)
    assert "--portal-accent: #facc15;" in css
    assert "--portal-accent-contrast: #000000;" in css
    assert "--portal-radius-sm: 6px;" in css and "--portal-radius: 9px;" in css
    assert '--portal-font: "Georgia", serif;' in css
    assert "--portal-space-2: 12px;" in css
    # Declarations only: one rule per mode, nothing but custom properties inside.
    for declaration in re.findall(r"^\s+([^{}]+);$", css, flags=re.M):
        assert declaration.strip().startswith("--portal-"), declaration
    assert "url(" not in css and "@import" not in css and "expression" not in css


# --- over HTTP: the session's theme, and the served stylesheet ------------------------------


def _session(stack: DemoStack, theme: Any, user: str = "theme-user") -> requests.Response:
    body = {
        "appKey": DEMO_APP_KEY,
        "userId": user,
        "hash": user_hash(DEMO_APP_SECRET, user),
        "theme": theme,
    }
    return requests.post(
        f"{stack.portal.url}/portal/api/v1/sessions",
        json=body,
        headers={"Origin": stack.host.url},
        timeout=10,
    )


def test_a_session_theme_reaches_the_session_and_its_stylesheet(stack: DemoStack) -> None:
    theme = {"mode": "dark", "accent": "#0F766E", "radius": "4px", "name": "Acme"}
    response = _session(stack, theme)
    assert response.status_code == 201, response.text
    api = Api(stack, "theme-user", response.json()["token"])
    session = api.get("/session").json()
    assert session["theme"]["mode"] == "dark"
    assert session["theme"]["name"] == "Acme" and session["theme"]["logo"] is None
    href = session["theme"]["stylesheet"]
    assert href.startswith("/portal/theme.css?t=")
    css = requests.get(stack.portal.url + href, timeout=10)
    assert css.status_code == 200
    assert css.headers["Content-Type"].startswith("text/css")
    assert css.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "--portal-accent: #0f766e;" in css.text and "--portal-radius-sm: 4px;" in css.text
    # The same theme, the same URL (a cached stylesheet serves every session of that theme).
    again = Api(stack, "theme-user", _session(stack, theme).json()["token"])
    assert again.get("/session").json()["theme"]["stylesheet"] == href


def test_a_session_without_theme_has_the_servers(api: Api) -> None:
    assert api.get("/session").json()["theme"] == {
        "mode": "auto",
        "stylesheet": None,
        "name": None,
        "logo": None,
    }


def test_embed_token_from_the_backend_takes_a_theme(stack: DemoStack) -> None:
    response = requests.post(
        f"{stack.portal.url}/portal/api/v1/sessions",
        json={"userId": "embed-theme", "origin": stack.host.url, "theme": {"mode": "light"}},
        headers={"Authorization": f"Bearer {DEMO_APP_SECRET}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    api = Api(stack, "embed-theme", response.json()["token"])
    assert api.get("/session").json()["theme"]["mode"] == "light"
    refused = requests.post(
        f"{stack.portal.url}/portal/api/v1/sessions",
        json={"userId": "embed-theme", "origin": stack.host.url, "theme": {"font": "url(x)"}},
        headers={"Authorization": f"Bearer {DEMO_APP_SECRET}"},
        timeout=10,
    )
    assert refused.status_code == 400
    assert refused.json()["error_details"] == [
        {
            "field": "theme.font",
            "message": "must be a list of font family names "
            "(letters, digits, spaces, hyphens, quotes)",
        }
    ]


def test_an_invalid_session_theme_is_a_400_naming_the_field(stack: DemoStack) -> None:
    response = _session(stack, {"accent": "red;}body{display:none"})
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error", "message", "error_details"}
    assert body["error"] == "invalid_theme"
    assert body["error_details"][0]["field"] == "theme.accent"
    assert "theme.accent" in body["message"]


def test_a_forged_stylesheet_url_is_404(stack: DemoStack) -> None:
    for t in ("", "eyJhY2NlbnQiOiJyZWQ7fSJ9.forged", "x" * 50):
        response = requests.get(f"{stack.portal.url}/portal/theme.css?t={t}", timeout=10)
        assert response.status_code == 404


def test_the_server_theme_reaches_every_page(make_app: Any) -> None:
    app: Flask = make_app(
        PORTAL_THEME={"mode": "dark", "accent": "#b91c1c", "font": "Georgia, serif"}
    )
    client = app.test_client()
    page = client.get("/portal/embed/apps").get_data(as_text=True)
    assert '<html lang="en" dir="ltr" data-portal-theme="dark">' in page
    href = re.search(r'<link rel="stylesheet" href="(/portal/theme\.css\?t=[^"]+)">', page)
    assert href is not None
    css = client.get(href.group(1).replace("&amp;", "&"))
    assert css.status_code == 200 and "--portal-accent: #b91c1c;" in css.get_data(as_text=True)
    assert "style=" not in page and "<style" not in page


def test_the_server_themes_logo_and_name_head_every_page(make_app: Any) -> None:
    app: Flask = make_app(
        PORTAL_THEME={"name": "Acme <Corp>", "logo": "https://acme.example/logo.svg?a=1&b=2"}
    )
    page = app.test_client().get("/portal/embed/apps").get_data(as_text=True)
    assert (
        '<p class="portal-brand"><img class="portal-brand__logo" '
        'src="https://acme.example/logo.svg?a=1&amp;b=2" alt="Acme &lt;Corp&gt;" height="24">'
    ) in page
    assert "Acme <Corp>" not in page
    # Mode only (the older string form): no stylesheet, no brand.
    plain = make_app(PORTAL_THEME="light").test_client().get("/portal/embed/apps")
    text = plain.get_data(as_text=True)
    assert 'data-portal-theme="light"' in text
    assert "theme.css" not in text and "portal-brand" not in text


def test_an_invalid_server_theme_stops_start_up(make_app: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"PORTAL_THEME\.radius"):
        make_app(PORTAL_THEME={"radius": "1000px"})


def test_the_popup_of_a_themed_session_wears_its_theme(stack: DemoStack) -> None:
    """The connect ticket carries the session's theme: the popup's form page has its mode,
    stylesheet and name (an unthemed session's popup has the server's)."""
    theme = {"mode": "dark", "accent": "#b91c1c", "name": "Acme"}
    api = Api(stack, "popup-theme", _session(stack, theme, "popup-theme").json()["token"])
    page = requests.get(api.ticket("sandbox-keys")["connect_url"], timeout=10).text
    assert '<html lang="en" dir="ltr" data-portal-theme="dark">' in page
    assert '<link rel="stylesheet" href="/portal/theme.css?t=' in page
    assert '<span class="portal-brand__name">Acme</span>' in page
    plain = Api(stack, "popup-plain", _session(stack, None, "popup-plain").json()["token"])
    page = requests.get(plain.ticket("sandbox-keys")["connect_url"], timeout=10).text
    assert 'data-portal-theme="auto"' in page and "theme.css" not in page
