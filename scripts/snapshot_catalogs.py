"""Rebuild the crosscheck snapshot (``scripts/data/``) from local clones of the two MIT catalogs.

Usage::

    python scripts/snapshot_catalogs.py GRANT_GIT_DIR AMP_CONNECTORS_GIT_DIR

Each argument is a git directory (a clone or a bare mirror); the files are read at ``HEAD`` with
``git show``, so no work tree is needed. Writes:

* ``scripts/data/grant-oauth.json``: ``simov/grant`` ``config/oauth.json`` (MIT), verbatim, under
  a ``_source`` key naming the repository, path and commit;
* ``scripts/data/amp-connectors.json``: for every ``SetInfo(...)`` block of ``amp-labs/connectors``
  ``providers/*.go`` (MIT) its provider name, display name, auth type and the authorize / token /
  base URLs, with the file it came from.

Only URLs are kept from amp-labs (facts, extracted by the regular expressions below), so the
snapshot stays small; ``crosscheck.py`` reads nothing else.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"

_CONST = re.compile(r'^\s*(?:const\s+)?(\w+)\s+Provider\s*=\s*"([^"]+)"', re.M)
_SETINFO = re.compile(r"SetInfo\(\s*(\w+)\s*,")
_FIELDS = {
    "display_name": re.compile(r'^\s*DisplayName:\s*"([^"]*)"', re.M),
    "auth_type": re.compile(r"^\s*AuthType:\s*(\w+)", re.M),
    "base_url": re.compile(r'^\s*BaseURL:\s*"([^"]*)"', re.M),
    "authorize_url": re.compile(r'^\s*AuthURL:\s*"([^"]*)"', re.M),
    "token_url": re.compile(r'^\s*TokenURL:\s*"([^"]*)"', re.M),
}


def _git(repo: str, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", repo, *args], check=True, capture_output=True, text=True
    ).stdout


def grant(repo: str) -> dict[str, Any]:
    """``config/oauth.json`` at HEAD with its provenance."""
    commit = _git(repo, "rev-parse", "HEAD").strip()
    providers = json.loads(_git(repo, "show", "HEAD:config/oauth.json"))
    return {
        "_source": {
            "repository": "https://github.com/simov/grant",
            "path": "config/oauth.json",
            "commit": commit,
            "url": f"https://github.com/simov/grant/blob/{commit}/config/oauth.json",
            "license": "MIT (see LICENSE-grant)",
        },
        "providers": providers,
    }


def amp(repo: str) -> dict[str, Any]:
    """Every provider's URLs from ``providers/*.go`` at HEAD."""
    commit = _git(repo, "rev-parse", "HEAD").strip()
    files = [
        f
        for f in _git(repo, "ls-tree", "--name-only", "HEAD", "providers/").split()
        if f.endswith(".go") and not f.endswith("_test.go")
    ]
    sources = {f: _git(repo, "show", f"HEAD:{f}") for f in files}
    names = {c: v for text in sources.values() for c, v in _CONST.findall(text)}
    providers: dict[str, Any] = {}
    for path, text in sorted(sources.items()):
        starts = [(m.start(), m.group(1)) for m in _SETINFO.finditer(text)]
        for i, (start, const) in enumerate(starts):
            end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
            block = text[start:end]
            entry: dict[str, Any] = {"file": path}
            for key, pattern in _FIELDS.items():
                found = pattern.search(block)
                entry[key] = found.group(1) if found else None
            providers[names.get(const, const)] = entry
    return {
        "_source": {
            "repository": "https://github.com/amp-labs/connectors",
            "path": "providers/*.go",
            "commit": commit,
            "url": f"https://github.com/amp-labs/connectors/tree/{commit}/providers",
            "license": "MIT (see LICENSE-amp-connectors)",
        },
        "providers": dict(sorted(providers.items())),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    for name, data in (("grant-oauth.json", grant(argv[1])), ("amp-connectors.json", amp(argv[2]))):
        (DATA / name).write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", "utf-8")
        print(f"{name}: {len(data['providers'])} providers at {data['_source']['commit']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
