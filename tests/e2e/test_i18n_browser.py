"""Languages in real Chromium (README "Languages", issue 15 item 2): the SDK's ``lang`` option
reaches the iframe and stays through frame.js's own loads (htmx sends the page's language),
Arabic lays out right to left (a card's icon sits right of its title, the grid starts on the
right), and a hostile ``lang`` falls back without reaching the page.

Screenshots of the marketplace and an app page in fr, ja and ar, at 375 px and wide, go to
/tmp/h12-shots/ (``H12_SHOTS`` to change it) for review by eye; they assert no pixels."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Frame, Page, expect

from portal.demo import DemoStack

from .conftest import new_context, open_host, portal_frame, settle_images

pytestmark = pytest.mark.e2e

SHOTS = Path(os.environ.get("H12_SHOTS", "/tmp/h12-shots"))
MODAL = "[role=dialog] iframe"
INLINE = "#container iframe"

# On the host page: a second SDK instance for the same user, with a `lang`, showing `what`.
SHOW = """([lang, what, mode]) => {
  const d = document.body.dataset;
  const sdk = new ConnectPortal({ appKey: d.appKey, userId: d.userId, hash: d.hash, baseUrl: d.baseUrl, lang });
  window.localized = sdk;
  return what === 'apps' ? sdk.showApps(mode, 'container') : sdk.showApp(what, mode, 'container');
}"""

# In the portal document: the boxes of the first two cards, and of the first card's icon and title.
BOXES = """() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return { x: r.left, r: r.right, y: r.top, w: r.width }; };
  const cards = [...document.querySelectorAll('.portal-card')].slice(0, 2).map(box);
  const first = document.querySelector('.portal-card');
  return {
    cards,
    card: box(first),
    icon: box(first.querySelector('.portal-card__icon')),
    title: box(first.querySelector('.portal-card__title')),
    search: box(document.querySelector('.portal-search__input')),
    searchIcon: box(document.querySelector('.portal-search__icon')),
  };
}"""


def _show(page: Page, lang: str, what: str = "apps", mode: str = "modal") -> Frame:
    page.evaluate(SHOW, [lang, what, mode])
    return portal_frame(page, MODAL if mode == "modal" else INLINE)


def test_sdk_lang_reaches_the_frame_and_its_own_loads(
    e2e_stack: DemoStack, page: Page, user_id: str
) -> None:
    open_host(page, e2e_stack, user_id)
    frame = _show(page, "fr", mode="inline")
    # Settled: frame.js has replaced the shell's first paint with the user's own version
    # (an htmx load of its own), which must speak French too.
    assert frame.evaluate("document.documentElement.lang") == "fr"
    search = frame.locator(".portal-search__input")
    expect(search).to_have_attribute("placeholder", "Rechercher des apps")
    expect(frame.locator(".portal-market__title")).to_contain_text("Apps")
    # A card opens the app page through htmx: French as well.
    frame.locator(".portal-card").first.click()
    expect(frame.locator(".portal-back")).to_contain_text("Toutes les apps")
    expect(frame.locator(".portal-section-title").first).to_contain_text("Comptes connectés")


def test_arabic_mirrors_the_layout(e2e_stack: DemoStack, page: Page, user_id: str) -> None:
    open_host(page, e2e_stack, user_id)
    frame = _show(page, "ar")
    assert frame.evaluate("[document.documentElement.lang, document.documentElement.dir]") == [
        "ar",
        "rtl",
    ]
    settle_images(page.frame_locator(MODAL))
    boxes: dict[str, Any] = frame.evaluate(BOXES)
    # The card's icon sits at the card's right (its start side; the title under it on a wide
    # card, beside it on a phone), the grid's first card right of the second (same row), the
    # search icon at the input's right end.
    card, icon = boxes["card"], boxes["icon"]
    assert card["r"] - icon["r"] < icon["x"] - card["x"], boxes
    assert icon["r"] >= boxes["title"]["r"], boxes
    first, second = boxes["cards"]
    assert first["y"] == second["y"] and first["x"] > second["x"], boxes
    search = boxes["search"]
    assert boxes["searchIcon"]["x"] > search["x"] + search["w"] / 2, boxes


def test_english_is_left_to_right(e2e_stack: DemoStack, page: Page, user_id: str) -> None:
    """The control for the Arabic test: the same measures the other way round."""
    open_host(page, e2e_stack, user_id)
    frame = _show(page, "en")
    assert frame.evaluate("document.documentElement.dir") == "ltr"
    boxes: dict[str, Any] = frame.evaluate(BOXES)
    card, icon = boxes["card"], boxes["icon"]
    assert icon["x"] - card["x"] < card["r"] - icon["r"], boxes
    assert icon["x"] <= boxes["title"]["x"], boxes
    first, second = boxes["cards"]
    assert first["y"] == second["y"] and first["x"] < second["x"], boxes


def test_hostile_lang_falls_back(e2e_stack: DemoStack, page: Page, user_id: str) -> None:
    open_host(page, e2e_stack, user_id)
    frame = _show(page, "<img src=x onerror=alert(1)>", mode="inline")
    assert frame.evaluate("document.documentElement.lang") == "en"
    assert frame.locator("img[src=x]").count() == 0
    expect(frame.locator(".portal-search__input")).to_have_attribute("placeholder", "Search apps")


@pytest.mark.parametrize("lang", ["fr", "ja", "ar"])
@pytest.mark.parametrize("width", [375, 1280])
def test_screenshots(
    e2e_stack: DemoStack, browser: Browser, user_id: str, lang: str, width: int
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    ctx = new_context(browser, viewport={"width": width, "height": 800 if width > 400 else 740})
    try:
        page = ctx.new_page()
        open_host(page, e2e_stack, user_id)
        frame = _show(page, lang)
        settle_images(page.frame_locator(MODAL))
        assert frame.evaluate("document.documentElement.lang") == lang
        page.screenshot(path=str(SHOTS / f"marketplace-{lang}-{width}.png"))
        frame.locator(".portal-card").first.click()
        expect(frame.locator(".portal-back")).to_be_visible()
        settle_images(page.frame_locator(MODAL))
        page.screenshot(path=str(SHOTS / f"app-{lang}-{width}.png"))
    finally:
        ctx.close()
