"""Languages of the portal's pages (Flask-Babel, gettext catalogs in ``portal/translations``).

The locale of a request is chosen in this order (:func:`select_locale`):

1. ``?lang=`` on the URL: what the SDK's ``new ConnectPortal({lang})`` puts on the iframe URL,
   and what the app page puts on its connect links (so the popup speaks the same language);
2. the language the connect popup stored in the Flask session (it survives the provider's
   OAuth redirect, which drops the query);
3. the browser's ``Accept-Language`` (RFC 9110 §12.5.4), best match among the supported ones
   (frame.js sends the page's own language there on its htmx requests);
4. ``PORTAL_DEFAULT_LANGUAGE``.

A ``lang`` value is only ever used after it matched one of ``PORTAL_LANGUAGES``: anything else
(``<script>``, ``../../etc``) is ignored, never echoed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import flask_babel
from babel import Locale
from flask import Flask, current_app, has_request_context, request, session
from flask_babel import Babel, LazyString, format_timedelta, get_locale


def gettext(message: str, **variables: Any) -> str:
    """Flask-Babel's ``gettext`` with types: ``message`` in the request's language, with
    ``%(name)s`` placeholders filled from ``variables``; ``message`` itself outside a request."""
    return str(flask_babel.gettext(message, **variables))


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    """Flask-Babel's ``ngettext`` with types: the plural form for ``num`` (``%(num)d``)."""
    return str(flask_babel.ngettext(singular, plural, num, **variables))


def lazy_gettext(message: str, **variables: Any) -> LazyString:
    """Flask-Babel's ``lazy_gettext``: translated each time it is turned into a string."""
    lazy: LazyString = flask_babel.lazy_gettext(message, **variables)
    return lazy


_ = gettext


#: The shipped catalogs: ``<locale>/LC_MESSAGES/messages.po`` and its compiled ``.mo``.
TRANSLATIONS_DIR: Path = Path(__file__).parent / "translations"
#: Flask session key of the language a connect popup was opened in.
SESSION_KEY = "portal_lang"
#: Languages written right to left (their pages get ``dir="rtl"``).
RTL_LANGUAGES = frozenset({"ar", "he", "fa", "ur"})
#: What a ``lang`` value may look like before it is matched (BCP 47 language[-region]).
_LANG_SHAPE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,4})?")


def N_(message: str) -> str:  # noqa: N802 (gettext's name for it)
    """Mark ``message`` for extraction without translating it now (a class attribute, an
    exception's text): the error page translates it when it shows it (gettext's ``N_``)."""
    return message


#: The catalog's category names, each translated on the page (:func:`category_name`); a category
#: not listed here is shown as the catalog spells it.
CATEGORIES: frozenset[str] = frozenset(
    {
        N_("AI"),
        N_("Accounting"),
        N_("Analytics"),
        N_("CRM"),
        N_("Calendar"),
        N_("Communication"),
        N_("Construction"),
        N_("Data warehouse"),
        N_("Design"),
        N_("Developer tools"),
        N_("E-commerce"),
        N_("E-signature"),
        N_("ERP"),
        N_("Email"),
        N_("Events"),
        N_("Field service"),
        N_("Files & documents"),
        N_("Forms & surveys"),
        N_("HR"),
        N_("IT service management"),
        N_("Identity"),
        N_("Legal"),
        N_("Marketing"),
        N_("Payments"),
        N_("Payroll"),
        N_("Product management"),
        N_("Productivity"),
        N_("Project management"),
        N_("Recruiting"),
        N_("Sales"),
        N_("Scheduling"),
        N_("Security"),
        N_("Shipping"),
        N_("Social media"),
        N_("Support"),
        N_("Team chat"),
        N_("Video & meetings"),
    }
)


def category_name(name: str) -> str:
    """``name`` (a catalog category, e.g. ``"Developer tools"``) in the page's language when it
    is one of :data:`CATEGORIES`, else unchanged."""
    return _(name) if name in CATEGORIES else name


def init_babel(app: Flask) -> None:
    """Install Flask-Babel on ``app`` with the portal's locale selector and catalogs.

    A host that already runs Flask-Babel keeps its own instance and locale selector: the
    portal's catalog directory is added to its translation directories (same ``messages``
    domain), so the host's and the portal's strings both translate.

    :raises ValueError: ``PORTAL_DEFAULT_LANGUAGE`` is not one of ``PORTAL_LANGUAGES``.
    """
    config = app.config
    if config["PORTAL_DEFAULT_LANGUAGE"] not in config["PORTAL_LANGUAGES"]:
        raise ValueError(
            f"PORTAL_DEFAULT_LANGUAGE {config['PORTAL_DEFAULT_LANGUAGE']!r} is not one of "
            f"PORTAL_LANGUAGES {config['PORTAL_LANGUAGES']!r}."
        )
    if "babel" in app.extensions:
        directories = app.extensions["babel"].translation_directories
        if str(TRANSLATIONS_DIR) not in directories:
            directories.append(str(TRANSLATIONS_DIR))
    else:
        Babel(
            app,
            locale_selector=select_locale,
            default_locale=config["PORTAL_DEFAULT_LANGUAGE"],
            default_translation_directories=str(TRANSLATIONS_DIR),
        )
    app.jinja_env.globals.update(template_globals())


def match_language(value: str | None, supported: list[str]) -> str | None:
    """The supported locale name (``"pt_BR"``) that ``value`` (``"pt-br"``, ``"pt_BR"``, ``"fr"``)
    names exactly (case-insensitive, ``-`` or ``_``), else ``None``; never raises."""
    if not value or not _LANG_SHAPE.fullmatch(value):
        return None
    wanted = value.replace("-", "_").lower()
    for name in supported:
        if name.lower() == wanted:
            return name
    return None


def requested_language() -> str | None:
    """The supported locale the request's ``?lang=`` names, else ``None``."""
    return match_language(request.args.get("lang"), current_app.config["PORTAL_LANGUAGES"])


def page_language() -> str:
    """The current locale's name (``"pt_BR"``), for links that open a page of their own (the
    connect popup) so it speaks the language of the page that opened it."""
    locale = current_locale()
    return f"{locale.language}_{locale.territory}" if locale.territory else locale.language


def select_locale() -> str:
    """Flask-Babel's locale selector: ``?lang=``, the session's language, Accept-Language, then
    ``PORTAL_DEFAULT_LANGUAGE`` (see the module docstring). Returns a gettext locale name."""
    config = current_app.config
    supported: list[str] = config["PORTAL_LANGUAGES"]
    chosen = requested_language() or match_language(session.get(SESSION_KEY), supported)
    if chosen:
        return chosen
    tags = {name.replace("_", "-"): name for name in supported}
    # Werkzeug's best_match falls back from "fr-CA" to "fr", and from "pt" to nothing.
    best = request.accept_languages.best_match(list(tags))
    if best is None:
        bases = {tag.split("-")[0]: tag for tag in reversed(list(tags))}
        best = request.accept_languages.best_match(list(bases))
        best = bases.get(best) if best else None
    return tags[best] if best else str(config["PORTAL_DEFAULT_LANGUAGE"])


def current_locale() -> Locale:
    """The request's :class:`babel.Locale` (English outside a request)."""
    return (get_locale() if has_request_context() else None) or Locale("en")


def html_lang() -> str:
    """The BCP 47 tag of the current locale for ``<html lang>``: ``"pt-BR"``, ``"ar"``."""
    locale = current_locale()
    return f"{locale.language}-{locale.territory}" if locale.territory else locale.language


def text_direction() -> str:
    """``"rtl"`` for a right-to-left locale, else ``"ltr"`` (for ``<html dir>``)."""
    return "rtl" if current_locale().language in RTL_LANGUAGES else "ltr"


def relative_time(value: datetime, now: datetime | None = None) -> str:
    """``"just now"`` under a minute, else ``"5 minutes ago"``/``"il y a 5 minutes"``: the
    time from ``value`` (aware UTC) to ``now``, in whole minutes, hours or days, localized by
    Babel's ``format_timedelta`` (CLDR relative-time patterns)."""
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    if seconds < 60:
        return _("just now")
    if seconds < 3600:
        delta, unit = seconds // 60 * 60, "minute"
    elif seconds < 86400:
        delta, unit = seconds // 3600 * 3600, "hour"
    else:
        delta, unit = seconds // 86400 * 86400, "day"
    # threshold > 1 keeps "25 hours" from rounding up to "1 day", like the English original.
    return str(format_timedelta(-delta, granularity=unit, threshold=1000, add_direction=True))


def frame_strings() -> dict[str, str]:
    """The few sentences static/frame.js writes itself, in the page's language: base.html puts
    them in a ``<script type="application/json" id="portal-strings">`` (data, not code, so the
    CSP holds). ``%s`` stands for an app's title or an HTTP status."""
    return {
        "expired": _("Your session has expired; reload the page."),
        "invalid_token": _(
            "This page could not be opened: its access link is missing or not valid. Reload "
            "the page; if it happens again, contact the support of the site you are on."
        ),
        "window_closed": _("The window was closed before the connection finished."),
        "retry": _("Retry"),
        "http_error": _("Something went wrong (HTTP %s). Please try again."),
        "unreachable": _("The portal could not be reached. Please try again."),
        "not_loaded": _("The portal could not be loaded; reload the page."),
        "waiting": _("Waiting for %s…"),
        "failed": _("Connecting %s failed."),
        "confirm_disconnect": _("Confirm disconnect"),
        "disconnecting": _("Disconnecting…"),
        "connected": _("Connected %s."),
        "disconnected": _("Disconnected."),
    }


def template_globals() -> dict[str, Any]:
    """Jinja globals of the portal's templates: ``portal_lang()``, ``portal_dir()`` and
    ``portal_frame_strings()`` and ``portal_category(name)``."""
    return {
        "portal_lang": html_lang,
        "portal_dir": text_direction,
        "portal_frame_strings": frame_strings,
        "portal_category": category_name,
    }
