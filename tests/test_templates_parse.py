"""Every template compiles in the environment that renders it.

A template with a syntax error fails only when a request renders it, and pybabel's extractor
skips it without a word (its strings then look unused to tests/test_i18n.py): this names the
file and the line at once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import TemplateSyntaxError

from portal.demo import DemoStack

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = sorted(
    p.relative_to(ROOT / "templates").as_posix() for p in ROOT.glob("templates/**/*.html")
)


def test_the_templates_folder_is_found() -> None:
    assert "portal/base.html" in TEMPLATES and len(TEMPLATES) > 30, TEMPLATES


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_compiles(stack: DemoStack, name: str) -> None:
    env = stack.portal_app.jinja_env
    source = (ROOT / "templates" / name).read_text("utf-8")
    try:
        env.parse(source, name=name, filename=name)
    except TemplateSyntaxError as exc:  # the file and line, rather than a bare traceback
        pytest.fail(f"{name}:{exc.lineno}: {exc.message}")
    # And the loader the app renders with finds it under that name.
    assert env.get_template(name).name == name


def test_a_broken_template_is_caught(stack: DemoStack) -> None:
    """The check above can fail: an unclosed block is a TemplateSyntaxError."""
    with pytest.raises(TemplateSyntaxError):
        stack.portal_app.jinja_env.parse("{% if x %}<p>{% elif y %}")
