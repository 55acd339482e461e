"""Languages (README "Languages", portal/i18n.py): the catalogs are complete and compiled, the
locale is chosen as documented, right-to-left pages say so, hostile ``lang`` values fall back."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from flask import Flask
from readme_blocks import block

from portal.catalog import load_catalog
from portal.config import DEFAULTS
from portal.i18n import CATEGORIES, TRANSLATIONS_DIR, match_language, relative_time

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ["en", "fr", "de", "es", "ja", "pt_BR", "it", "zh_CN", "ar"]


def _directory(lang: str) -> Path:
    """A catalog's folder: Babel's own name of the locale, which is what Flask-Babel looks for
    (``zh_CN`` is ``zh_Hans_CN`` to Babel: a ``zh_CN`` folder would never be found)."""
    return TRANSLATIONS_DIR / str(Locale.parse(lang)) / "LC_MESSAGES"


def _po(lang: str) -> Catalog:
    with (_directory(lang) / "messages.po").open("rb") as f:
        return read_po(f, locale=lang)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """Every marked string of the portal, extracted the way the README says (pybabel)."""
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    CommandLineInterface().run(
        [
            "pybabel",
            "-q",
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "-k",
            "N_",
            "--no-location",
            "-o",
            str(pot),
            str(ROOT),
        ]
    )
    with pot.open("rb") as f:
        return read_po(f)


def test_extraction_finds_the_templates_and_the_python_strings(extracted: Catalog) -> None:
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in extracted if m.id}
    # One from a template, one from frame.js's sentences, one from an end-user error.
    assert {"Search apps", "Retry", "You chose not to connect {app}."} <= ids
    assert len(ids) > 150


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalog_has_every_string_translated_and_none_fuzzy(extracted: Catalog, lang: str) -> None:
    catalog = _po(lang)
    missing = [m.id for m in extracted if m.id and m.id not in catalog]
    assert missing == [], f"{lang}: not in the catalog (run the README's update steps)"
    wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in extracted if m.id}
    stale = [
        m.id for m in catalog if m.id and (m.id if isinstance(m.id, str) else m.id[0]) not in wanted
    ]
    assert stale == [], f"{lang}: entries no template or module uses any more"
    untranslated = [
        m.id
        for m in catalog
        if m.id and not all(m.string if isinstance(m.string, (list, tuple)) else [m.string])
    ]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert untranslated == [], f"{lang}: untranslated"
    assert fuzzy == [], f"{lang}: fuzzy"
    assert not catalog.fuzzy, f"{lang}: the catalog header is marked fuzzy"
    # Placeholders kept (Babel's python-format checker) and every plural form filled in.
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalog.check()]
    assert problems == []
    for m in catalog:
        if m.id and not isinstance(m.id, str):
            assert len(m.string) == catalog.num_plurals, (lang, m.id)
            names = set(re.findall(r"%\((\w+)\)", m.id[1]))
            for form in m.string:
                assert set(re.findall(r"%\((\w+)\)", form)) <= names, (lang, form)
        elif m.id:
            # Same placeholders, and the {app} of connect_errors' sentences too.
            assert sorted(re.findall(r"%\(\w+\)s|%s|\{app\}|<[^>]+>", m.id)) == sorted(
                re.findall(r"%\(\w+\)s|%s|\{app\}|<[^>]+>", m.string)
            ), (lang, m.id, m.string)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_compiled_catalog_is_not_stale(lang: str) -> None:
    """The committed .mo (what Flask-Babel loads) says exactly what its .po says. When this
    fails: `pybabel compile -d portal/translations` (README "Languages")."""
    directory = _directory(lang)
    with (directory / "messages.mo").open("rb") as f:
        compiled = read_mo(f)
    fresh = io.BytesIO()
    write_mo(fresh, _po(lang))
    fresh.seek(0)
    expected = read_mo(fresh)

    def table(catalog: Catalog) -> dict[Any, Any]:
        return {
            (m.id if isinstance(m.id, str) else tuple(m.id)): (
                m.string if isinstance(m.string, str) else tuple(m.string)
            )
            for m in catalog
            if m.id
        }

    assert table(compiled) == table(expected)


def test_every_catalog_category_is_translatable() -> None:
    """A category of the shipped catalog that is not in portal.i18n.CATEGORIES would stay
    English on every page."""
    catalog = load_catalog([Path(p) for p in DEFAULTS["PORTAL_CATALOG_PATHS"]], {})
    categories = {c for app in catalog for c in app.categories}
    assert len(categories) > 20
    assert categories - CATEGORIES == set()


def test_lang_values_match_supported_locales_only() -> None:
    supported = LANGUAGES
    assert match_language("pt-BR", supported) == "pt_BR"
    assert match_language("pt-br", supported) == "pt_BR"
    assert match_language("zh_CN", supported) == "zh_CN"
    assert match_language("FR", supported) == "fr"
    for hostile in ("<script>", "../../etc", "fr;q=1", "fr\n", "", None, "x" * 300, "pt", "he"):
        assert match_language(hostile, supported) is None, hostile


# ------------------------------------------------------------------------------- pages


@pytest.fixture
def app(make_app: Any) -> Flask:
    built: Flask = make_app()
    return built


def _html_tag(page: str) -> str:
    match = re.search(r"<html[^>]*>", page)
    assert match, page[:200]
    return match.group(0)


def _get(app: Flask, url: str, accept: str | None = None) -> str:
    headers = {"Accept-Language": accept} if accept else {}
    response = app.test_client().get(url, headers=headers)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def test_french_marketplace_speaks_french(app: Flask) -> None:
    page = _get(app, "/portal/embed/apps?lang=fr")
    assert _html_tag(page).startswith('<html lang="fr" dir="ltr"')
    assert 'placeholder="Rechercher des apps"' in page
    assert "<title>Connecter des apps</title>" in page
    assert "Outils de développement" in page  # a category name, translated
    assert "Search apps" not in page
    strings = re.search(r'<script type="application/json" id="portal-strings">(.*?)</script>', page)
    assert strings and json.loads(strings.group(1))["retry"] == "Réessayer"


def test_locale_order_lang_then_session_then_accept_language_then_default(
    make_app: Any,
) -> None:
    app = make_app(PORTAL_DEFAULT_LANGUAGE="de")
    # Nothing asked: the configured default.
    assert 'lang="de"' in _html_tag(_get(app, "/portal/embed/apps"))
    # Accept-Language: the best supported match (q-values honoured, region falls back).
    assert 'lang="ja"' in _html_tag(_get(app, "/portal/embed/apps", "ko, ja;q=0.8, en;q=0.5"))
    assert 'lang="fr"' in _html_tag(_get(app, "/portal/embed/apps", "fr-CA"))
    assert 'lang="pt-BR"' in _html_tag(_get(app, "/portal/embed/apps", "pt"))
    assert 'lang="de"' in _html_tag(_get(app, "/portal/embed/apps", "ko"))
    # ?lang= beats Accept-Language.
    assert 'lang="es"' in _html_tag(_get(app, "/portal/embed/apps?lang=es", "ja"))
    # The session's language (set by a connect popup opened with ?lang=) beats Accept-Language,
    # and ?lang= beats the session.
    client = app.test_client()
    with client.session_transaction() as session:
        session["portal_lang"] = "it"
    page = client.get("/portal/embed/apps", headers={"Accept-Language": "ja"}).get_data(True)
    assert 'lang="it"' in _html_tag(page)
    page = client.get("/portal/embed/apps?lang=zh-CN").get_data(as_text=True)
    assert 'lang="zh-CN"' in _html_tag(page)
    assert 'placeholder="搜索应用"' in page  # Babel says zh_Hans_CN: the zh_CN catalog still loads
    # A language the host did not enable is never chosen.
    narrow = make_app(PORTAL_LANGUAGES=["en", "fr"])
    assert 'lang="en"' in _html_tag(_get(narrow, "/portal/embed/apps?lang=ja", "ja"))


def test_arabic_pages_are_right_to_left(app: Flask) -> None:
    page = _get(app, "/portal/embed/apps?lang=ar")
    assert _html_tag(page).startswith('<html lang="ar" dir="rtl"')
    assert "ابحث في التطبيقات" in page
    assert 'dir="ltr"' in _html_tag(_get(app, "/portal/embed/apps?lang=he"))


@pytest.mark.parametrize(
    "hostile", ["<script>alert(1)</script>", "../../etc/passwd", '"><img src=x>', "fr%00"]
)
def test_hostile_lang_falls_back_and_is_never_echoed(app: Flask, hostile: str) -> None:
    response = app.test_client().get(
        "/portal/embed/apps", query_string={"lang": hostile}, headers={"Accept-Language": "fr"}
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert _html_tag(page).startswith('<html lang="fr" dir="ltr"')
    assert hostile not in page
    assert "alert(1)" not in page and "passwd" not in page and "<img src=x>" not in page


def test_unknown_default_language_is_a_configuration_error(make_app: Any) -> None:
    from portal.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="PORTAL_DEFAULT_LANGUAGE"):
        make_app(PORTAL_DEFAULT_LANGUAGE="xx")


def test_error_page_speaks_the_language(app: Flask) -> None:
    response = app.test_client().get("/portal/embed/apps/no-such-app?lang=de")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert '<h1 class="portal-error__title">Nicht gefunden</h1>' in page
    assert "Es gibt keine App namens „no-such-app“." in page
    assert "Fehlercode 404" in page


@pytest.mark.parametrize(
    ("lang", "minutes", "expected"),
    [
        ("en", 3, "3 minutes ago"),
        ("fr", 3, "il y a 3 minutes"),
        ("de", 120, "vor 2 Stunden"),
        ("ja", 3, "3 分前"),
        ("ar", 0, "الآن"),
        ("es", 60 * 24 * 2, "hace 2 días"),
        ("en", 60 * 25, "1 day ago"),
    ],
)
def test_relative_times_are_localized(app: Flask, lang: str, minutes: int, expected: str) -> None:
    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    with app.test_request_context(f"/portal/embed/apps?lang={lang}"):
        assert relative_time(now - timedelta(minutes=minutes, seconds=5), now) == expected


def test_portal_css_uses_logical_properties() -> None:
    """Right-to-left pages mirror because no rule of portal.css says left or right (except the
    [dir="rtl"] overrides and a spinner's border colour, which only shapes its arc)."""
    css = (ROOT / "static" / "portal.css").read_text("utf-8")
    physical = re.compile(
        r"^\s*(?:(?:margin|padding)-(?:left|right)|left|right|float|clear)\s*:"
        r"|text-align:\s*(?:left|right)\b",
        re.M,
    )
    assert physical.findall(css) == []
    asymmetric = re.compile(r"^[ \t]*(?:margin|padding):[ \t]*(\S+) (\S+) (\S+) (\S+);", re.M)
    lopsided = [m.group(0).strip() for m in asymmetric.finditer(css) if m.group(2) != m.group(4)]
    assert lopsided == []


@pytest.mark.readme("Languages", 0)
def test_readme_language_config_as_written(make_app: Any) -> None:
    """The README's PORTAL_LANGUAGES / PORTAL_DEFAULT_LANGUAGE block, run on a portal app."""
    app = make_app()
    exec(block("Languages", 0).code, {"app": app})
    assert 'lang="fr"' in _html_tag(_get(app, "/portal/embed/apps", "ja"))
    assert 'lang="de"' in _html_tag(_get(app, "/portal/embed/apps?lang=de", "ja"))
    assert 'dir="rtl"' in _html_tag(_get(app, "/portal/embed/apps", "ar-EG"))
    # Spanish is shipped but not enabled: the default.
    assert 'lang="fr"' in _html_tag(_get(app, "/portal/embed/apps?lang=es", "es"))


def test_connect_popup_keeps_the_language_across_the_providers_redirect(
    stack: Any, api: Any
) -> None:
    """The app page's connect link carries its language; the popup stores it in its session,
    so the result page after the provider's redirect (which has no ?lang=) speaks it too."""
    from conftest import Browser

    page = requests.get(
        f"{stack.portal.url}/portal/ui/apps/sandbox",
        params={"mode": "modal", "layout": "wide"},
        headers={**api.headers, "Accept-Language": "ja"},
        timeout=10,
    )
    assert page.status_code == 200, page.text[:300]
    link = re.search(r'data-portal-connect-url="([^"]+)"', page.text)
    assert link and "lang=ja" in link.group(1)
    assert "接続済みアカウント" in page.text  # "Connected accounts": Accept-Language chose ja

    browser = Browser()
    ticket = api.ticket("sandbox")
    started = browser.start(ticket["connect_url"] + "&lang=ja")
    assert started.status_code == 302, started.text[:300]
    consent = browser.consent(started.headers["Location"], decision="deny")
    assert "lang=" not in consent.callback_url
    result = browser.callback(consent.callback_url)
    assert 'lang="ja"' in _html_tag(result.text)
    assert "を接続しないことを選びました。" in result.text  # access_denied, in Japanese
