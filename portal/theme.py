"""Themes: how the portal looks inside a host (issue 15).

A theme is ``{mode, accent, radius, font, density, logo, name}`` (every key optional). The host
sets one on the server (``PORTAL_THEME``, a dict or the older mode string) and one per session
(``theme`` in ``POST /api/v1/sessions``, from ``new ConnectPortal({theme})`` or the embed
token's server-to-server request); the session's keys override the server's.

Every value is checked here and re-serialised from what was parsed, never copied: a colour
becomes ``#rrggbb``, a length ``<number>px`` or ``<number>rem``, a font stack a list of quoted
family names and generic keywords. Only :func:`stylesheet` writes CSS, and only from a
:class:`Theme` built by :func:`parse_theme`: the portal's pages load it as a served stylesheet
(``GET <prefix>/theme.css?t=…``), so the CSP (``style-src 'self'``, no inline style) is kept.

Contrast follows WCAG 2.2 (relative luminance and contrast ratio, definitions in §"Relative
luminance" and SC 1.4.3): text on the accent is black or white, whichever contrasts more
(always >= 4.58:1), and accent-coloured text on the portal's surfaces is darkened (light) or
lightened (dark) until it reaches 4.5:1.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError, InvalidRequest

#: The keys a theme may have.
THEME_KEYS = ("mode", "accent", "radius", "font", "density", "logo", "name")
MODES = ("light", "dark", "auto")
DENSITIES = ("compact", "comfortable")
#: Bounds of ``radius`` (CSS px; a rem is 16 px).
MAX_RADIUS_PX = 32.0
MAX_FONT_LENGTH = 200
MAX_FONT_FAMILIES = 8
MAX_LOGO_LENGTH = 1024
MAX_NAME_LENGTH = 60
#: WCAG 2.2 SC 1.4.3 (AA) minimum contrast of normal text.
MIN_CONTRAST = 4.5
#: The darkest light surface and the lightest dark surface of static/portal.css, on which
#: accent-coloured text (links, initials) is drawn.
LIGHT_SURFACE = (0xF1, 0xF1, 0xF4)
DARK_SURFACE = (0x20, 0x20, 0x27)
GENERIC_FAMILIES = frozenset(
    {
        "serif",
        "sans-serif",
        "monospace",
        "cursive",
        "fantasy",
        "system-ui",
        "ui-serif",
        "ui-sans-serif",
        "ui-monospace",
        "ui-rounded",
        "math",
        "emoji",
        "fangsong",
    }
)

_HEX = re.compile(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_NUM = r"\s*(\d{1,3}(?:\.\d+)?)\s*"
_RGB = re.compile(rf"rgba?\({_NUM},{_NUM},{_NUM}(?:,\s*(0|1|0?\.\d+|1\.0+)\s*)?\)")
_LENGTH = re.compile(r"(\d{1,3}(?:\.\d{1,3})?)(px|rem)")
# One family: a quoted name or a bare one, ASCII letters, digits, spaces and hyphens only.
_FAMILY = re.compile(r"""\s*(?:"([A-Za-z0-9 \-]+)"|'([A-Za-z0-9 \-]+)'|([A-Za-z0-9 \-]+))\s*""")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Theme:
    """A checked theme; ``None`` is "the portal's default" for that key.

    ``accent`` is ``#rrggbb``; ``radius`` ``<n>px``/``<n>rem``; ``font`` a canonical CSS
    ``font-family`` list; ``logo`` an https URL; ``name`` plain text (escaped where shown).
    """

    mode: str | None = None
    accent: str | None = None
    radius: str | None = None
    font: str | None = None
    density: str | None = None
    logo: str | None = None
    name: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The keys that are set, in :data:`THEME_KEYS` order."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def over(self, base: Theme) -> Theme:
        """This theme's set keys over ``base`` (a session's theme over the server's)."""
        return replace(base, **self.as_dict())

    @property
    def scheme(self) -> str:
        """``light``, ``dark`` or ``auto`` (the default: follows ``prefers-color-scheme``)."""
        return self.mode or "auto"

    def style_keys(self) -> dict[str, str]:
        """The keys :func:`stylesheet` uses (not mode, logo or name)."""
        keys = ("accent", "radius", "font", "density")
        return {k: v for k, v in self.as_dict().items() if k in keys}

    @property
    def styled(self) -> bool:
        """True when the theme changes anything :func:`stylesheet` writes."""
        return any((self.accent, self.radius, self.font, self.density == "compact"))


def _invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid theme: `{field}` {message}.",
        code="invalid_theme",
        details=[{"field": field, "message": message}],
    )


def parse_colour(text: str) -> tuple[RGB, float]:
    """``#rgb``, ``#rrggbb``, ``rgb(r, g, b)`` or ``rgba(r, g, b, a)`` (0-255, alpha 0-1):
    ``((r, g, b), alpha)``.

    :raises ValueError: anything else (named colours, ``hsl()``, ``url()``, ``var()``, extra
        characters).
    """
    if m := _HEX.fullmatch(text):
        digits = m.group(1)
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        r, g, b = (int(digits[i : i + 2], 16) for i in (0, 2, 4))
        return (r, g, b), 1.0
    if m := _RGB.fullmatch(text):
        if text.startswith("rgba(") != (m.group(4) is not None):
            raise ValueError("rgb() takes three numbers, rgba() four")
        parts = [float(m.group(i)) for i in (1, 2, 3)]
        if any(p > 255 for p in parts):
            raise ValueError("channels are 0 to 255")
        alpha = float(m.group(4)) if m.group(4) is not None else 1.0
        r, g, b = (round(p) for p in parts)
        return (r, g, b), alpha
    raise ValueError("must be #rgb, #rrggbb, rgb() or rgba()")


def hex_colour(rgb: RGB) -> str:
    """``#rrggbb`` of an RGB triple."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def relative_luminance(rgb: RGB) -> float:
    """WCAG 2.2 relative luminance of an sRGB colour (0 black to 1 white)."""

    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: RGB, b: RGB) -> float:
    """WCAG 2.2 contrast ratio ``(L1 + 0.05) / (L2 + 0.05)``, 1 to 21."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_on(background: RGB) -> RGB:
    """Black or white, whichever contrasts more with ``background`` (at least 4.58:1)."""
    black, white = (0, 0, 0), (255, 255, 255)
    return (
        black if contrast_ratio(background, black) >= contrast_ratio(background, white) else white
    )


def mix(a: RGB, b: RGB, weight: float) -> RGB:
    """``a`` moved ``weight`` (0-1) of the way to ``b``, per sRGB channel."""
    r, g, bl = (round(x + (y - x) * weight) for x, y in zip(a, b, strict=True))
    return (r, g, bl)


def readable_on(colour: RGB, surface: RGB, minimum: float = MIN_CONTRAST) -> RGB:
    """``colour``, mixed towards black or white (whichever side ``surface`` is not on) in 5 %
    steps until its contrast with ``surface`` is at least ``minimum``."""
    target = (0, 0, 0) if relative_luminance(surface) > 0.18 else (255, 255, 255)
    for step in range(21):
        candidate = mix(colour, target, step / 20)
        if contrast_ratio(candidate, surface) >= minimum:
            return candidate
    return target


def parse_length(text: str, field: str) -> str:
    """``<n>px`` (0-32) or ``<n>rem`` (0-2), re-serialised.

    :raises InvalidRequest: ``invalid_theme`` naming ``field``.
    """
    m = _LENGTH.fullmatch(text)
    if not m:
        raise _invalid(field, "must be a length in px or rem, e.g. 8px")
    number, unit = float(m.group(1)), m.group(2)
    px = number * (16 if unit == "rem" else 1)
    if not math.isfinite(px) or px > MAX_RADIUS_PX:
        raise _invalid(field, f"must be at most {MAX_RADIUS_PX:g}px (2rem)")
    return f"{number:g}{unit}"


def parse_font(text: str, field: str = "theme.font") -> str:
    """A ``font-family`` stack of local fonts: comma-separated family names of ASCII letters,
    digits, spaces and hyphens, each bare or in quotes; re-serialised with every non-generic
    name in double quotes. No ``url()``, no ``@font-face``, nothing remote.

    :raises InvalidRequest: ``invalid_theme`` naming ``field``.
    """
    if len(text) > MAX_FONT_LENGTH:
        raise _invalid(field, f"must be at most {MAX_FONT_LENGTH} characters")
    families = text.split(",")
    if len(families) > MAX_FONT_FAMILIES:
        raise _invalid(field, f"must list at most {MAX_FONT_FAMILIES} families")
    out = []
    for part in families:
        m = _FAMILY.fullmatch(part)
        name = m and (m.group(1) or m.group(2) or m.group(3) or "").strip()
        if not name:
            raise _invalid(
                field,
                "must be a list of font family names (letters, digits, spaces, hyphens, quotes)",
            )
        name = " ".join(name.split())
        bare = m is not None and m.group(3) is not None
        out.append(name if bare and name.lower() in GENERIC_FAMILIES else f'"{name}"')
    return ", ".join(out)


def parse_logo(text: str, field: str = "theme.logo") -> str:
    """An absolute ``https:`` URL of an image (the CSP's ``img-src`` allows ``https:``; a
    ``data:`` URL is refused: it may carry an SVG of any size).

    :raises InvalidRequest: ``invalid_theme`` naming ``field``.
    """
    if len(text) > MAX_LOGO_LENGTH or re.search(r"[\s\"'<>\\`]", text) or _CONTROL.search(text):
        raise _invalid(field, "must be an https URL without spaces or quotes")
    try:
        parts = urlsplit(text)
    except ValueError:
        raise _invalid(field, "must be an https URL") from None
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise _invalid(field, "must be an https URL with a host and no credentials")
    return text


def parse_name(text: str, field: str = "theme.name") -> str:
    """Plain text of at most :data:`MAX_NAME_LENGTH` characters, no control or bidi-override
    characters; shown escaped.

    :raises InvalidRequest: ``invalid_theme`` naming ``field``.
    """
    name = " ".join(text.split())
    if not name or len(name) > MAX_NAME_LENGTH or _CONTROL.search(name):
        raise _invalid(field, f"must be 1 to {MAX_NAME_LENGTH} characters of plain text")
    return name


def parse_theme(value: Any, field: str = "theme") -> Theme:
    """Check a theme object from JSON (or a config dict).

    :param value: ``{mode?, accent?, radius?, font?, density?, logo?, name?}``, all strings.
    :raises InvalidRequest: 400 ``invalid_theme``; ``error_details`` names the first bad field
        (``theme.accent`` …), including unknown keys.
    """
    if not isinstance(value, dict):
        raise _invalid(field, "must be an object")
    unknown = sorted(str(k) for k in value if k not in THEME_KEYS)
    if unknown:
        raise _invalid(f"{field}.{unknown[0]}", f"is not a theme key ({', '.join(THEME_KEYS)})")
    values: dict[str, str] = {}
    for key in THEME_KEYS:
        raw = value.get(key)
        if raw is None:
            continue
        name = f"{field}.{key}"
        if not isinstance(raw, str):
            raise _invalid(name, "must be a string")
        if len(raw) > MAX_LOGO_LENGTH:
            raise _invalid(name, f"must be at most {MAX_LOGO_LENGTH} characters")
        if key == "mode" or key == "density":
            allowed = MODES if key == "mode" else DENSITIES
            if raw not in allowed:
                raise _invalid(name, f"must be one of {', '.join(allowed)}")
            values[key] = raw
        elif key == "accent":
            try:
                rgb, alpha = parse_colour(raw)
            except ValueError as exc:
                raise _invalid(name, str(exc)) from None
            if alpha < 1:
                raise _invalid(name, "must be opaque (its text contrast is computed)")
            values[key] = hex_colour(rgb)
        elif key == "radius":
            values[key] = parse_length(raw, name)
        elif key == "font":
            values[key] = parse_font(raw, name)
        elif key == "logo":
            values[key] = parse_logo(raw, name)
        else:
            values[key] = parse_name(raw, name)
    return Theme(**values)


def config_theme(value: Any) -> Theme:
    """``PORTAL_THEME``: a mode string (``"auto"``, ``"light"``, ``"dark"``, the older form)
    or a theme dict.

    :raises ConfigurationError: with the field and what is wrong.
    """
    if isinstance(value, str):
        value = {"mode": value}
    try:
        return parse_theme(value, "PORTAL_THEME")
    except InvalidRequest as exc:
        raise ConfigurationError(str(exc.description)) from None


def _scaled(length: str, factor: float) -> str:
    m = _LENGTH.fullmatch(length)
    assert m is not None  # a Theme's radius was parsed by parse_length
    return f"{float(m.group(1)) * factor:.4g}{m.group(2)}"


#: ``--portal-space-*`` of ``density: compact`` (comfortable is portal.css's own scale).
COMPACT_SPACING = {
    "--portal-space-half": "3px",
    "--portal-space-1": "6px",
    "--portal-space-2": "12px",
    "--portal-space-3": "16px",
    "--portal-space-4": "24px",
    "--portal-space-5": "32px",
    "--portal-space-6": "40px",
    "--portal-topbar-height": "48px",
}


def accent_properties(accent: str) -> tuple[dict[str, str], str, str]:
    """The accent's custom properties, and its text colour on light and on dark surfaces.

    ``--portal-accent-contrast`` is black or white (:func:`text_on`); the hover colour moves
    away from it, so the same text stays readable; ``--portal-accent-text`` is the accent made
    readable (4.5:1) on the darkest light / lightest dark surface.
    """
    rgb, _ = parse_colour(accent)
    on = text_on(rgb)
    hover = mix(rgb, (0, 0, 0) if on == (255, 255, 255) else (255, 255, 255), 0.12)
    props = {
        "--portal-accent": hex_colour(rgb),
        "--portal-accent-hover": hex_colour(hover),
        "--portal-accent-contrast": hex_colour(on),
    }
    light = hex_colour(readable_on(rgb, LIGHT_SURFACE))
    dark = hex_colour(readable_on(rgb, DARK_SURFACE))
    return props, light, dark


def stylesheet(theme: Theme) -> str:
    """The theme as CSS custom properties over static/portal.css's defaults.

    The selector ``html:root[data-portal-theme]`` outranks portal.css's light and dark
    palettes, so the host's accent wins in both modes; only the accent's text colour differs
    per mode. Every value comes from a parsed :class:`Theme`.
    """
    props: dict[str, str] = {}
    dark_text = None
    if theme.accent:
        accent, light_text, dark_text = accent_properties(theme.accent)
        props.update(accent)
        props["--portal-accent-text"] = light_text
    if theme.radius:
        # Buttons and fields get the radius, cards and panels 1.5 times it (portal.css: 8/12).
        props["--portal-radius-sm"] = theme.radius
        props["--portal-radius"] = _scaled(theme.radius, 1.5)
    if theme.font:
        props["--portal-font"] = theme.font
    if theme.density == "compact":
        props.update(COMPACT_SPACING)
    lines = ["/* Connect Portal theme (portal/theme.py) */", "html:root[data-portal-theme] {"]
    lines += [f"  {k}: {v};" for k, v in props.items()]
    lines.append("}")
    if dark_text:
        dark_rule = f"  --portal-accent-text: {dark_text};"
        lines += ['html:root[data-portal-theme="dark"] {', dark_rule, "}"]
        lines += [
            "@media (prefers-color-scheme: dark) {",
            '  html:root[data-portal-theme="auto"] {',
            "  " + dark_rule,
            "  }",
            "}",
        ]
    return "\n".join(lines) + "\n"
