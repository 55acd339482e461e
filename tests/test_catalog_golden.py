"""Every shipped app loads to the same :class:`~portal.catalog.App` as recorded.

``tests/data/catalog.golden.json`` holds, per slug, a digest of the loaded app (every field,
``repr=False`` ones included) in two configurations: unconfigured (no settings, empty
environment: what is ``missing``) and configured (client id, secret, base URL and redirect URI
value from ``PORTAL_APPS``). A refactoring of ``portal/catalog.py`` must leave every digest
unchanged. After a deliberate change (an edited or new app file, a new field of ``App``),
regenerate the digests and review the changed slugs::

    .venv/bin/python tests/test_catalog_golden.py --write
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from portal.catalog import SHIPPED_DIR, App, load_catalog, read_definitions

GOLDEN = Path(__file__).resolve().parent / "data" / "catalog.golden.json"
REGENERATE = ".venv/bin/python tests/test_catalog_golden.py --write"


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses as dicts of *all* their fields, in order."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return value.relative_to(SHIPPED_DIR).as_posix()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def digest(app: App) -> str:
    text = json.dumps(plain(app), sort_keys=False, ensure_ascii=False, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def configured_settings() -> dict[str, dict[str, str]]:
    """``PORTAL_APPS`` that configures every shipped app."""
    return {
        data["slug"]: {
            "client_id": f"id-{data['slug']}",
            "client_secret": f"secret-{data['slug']}",
            "base_url": f"https://{data['slug']}.base.example",
            "redirect_uri_value": f"ru-{data['slug']}",
        }
        for _, data in read_definitions([SHIPPED_DIR])
    }


def digests() -> dict[str, dict[str, str]]:
    """``{slug: {"unconfigured": digest, "configured": digest}}`` of every shipped app."""
    bare = load_catalog(environ={})
    full = load_catalog(app_settings=configured_settings(), environ={})
    return {
        app.slug: {"unconfigured": digest(app), "configured": digest(full.get(app.slug))}
        for app in bare
    }


def test_every_shipped_app_loads_as_recorded() -> None:
    expected = json.loads(GOLDEN.read_text("utf-8"))
    actual = digests()
    changed = sorted(
        slug for slug in expected.keys() | actual.keys() if expected.get(slug) != actual.get(slug)
    )
    assert not changed, (
        f"these apps load differently from {GOLDEN.name}: {', '.join(changed)}. If the change "
        f"is deliberate, regenerate it with `{REGENERATE}` and review the diff."
    )


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: {REGENERATE}")
    import portal

    root = GOLDEN.parent.parent.parent
    if not Path(portal.__file__).resolve().is_relative_to(root):
        sys.exit(f"portal is imported from {portal.__file__}, not {root}: set PYTHONPATH={root}")
    GOLDEN.write_text(json.dumps(digests(), indent=1, sort_keys=True) + "\n", "utf-8")
    print(f"wrote {GOLDEN.relative_to(root)}")
