"""Where the package's templates and static files live.

In a source checkout they sit beside the package (``templates/``, ``static/`` at the top of the
repository); in an installed wheel they are carried inside it as ``portal/_data/templates`` and
``portal/_data/static`` (see ``[tool.hatch.build.targets.wheel.force-include]``).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _locate(name: str) -> Path:
    bundled = _PACKAGE_DIR / "_data" / name
    if bundled.is_dir():
        return bundled
    return _PACKAGE_DIR.parent / name


#: Directory holding ``portal/…`` Jinja templates.
TEMPLATES_DIR: Path = _locate("templates")
#: Directory holding ``portal.js``, ``frame.js``, ``portal.css``, icons and vendored htmx.
STATIC_DIR: Path = _locate("static")
