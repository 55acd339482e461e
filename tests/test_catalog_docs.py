"""``docs/functions.md`` and the README's catalog counts are generated from the catalog
(``scripts/gen_functions_doc.py --write``); these tests fail when either is stale."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import gen_functions_doc  # noqa: E402

from portal.catalog import Catalog, load_catalog  # noqa: E402

FIX = "run `python scripts/gen_functions_doc.py --write`"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(environ={})


def test_functions_doc_is_up_to_date(catalog: Catalog) -> None:
    assert gen_functions_doc.DOC.read_text("utf-8") == gen_functions_doc.functions_doc(catalog), FIX


def test_functions_doc_lists_every_function_once_with_its_source(catalog: Catalog) -> None:
    doc = gen_functions_doc.DOC.read_text("utf-8")
    rows = [line for line in doc.splitlines() if line.startswith("| ") and "`" in line]
    names = [re.search(r"\| `([a-z0-9-]+)` \|", row).group(1) for row in rows]  # type: ignore[union-attr]
    shipped = [f.name for a in gen_functions_doc.real_apps(catalog) for f in a.functions]
    assert sorted(names) == sorted(shipped) and len(names) == len(set(names))
    assert all("[docs](https://" in row for row in rows)


def test_readme_states_the_counts(catalog: Catalog) -> None:
    readme = gen_functions_doc.README.read_text("utf-8")
    found = gen_functions_doc.COUNTS.search(readme)
    assert found, "README.md lost its counts sentence"
    apps, functions, with_functions = map(int, re.findall(r"\d+", found.group(0)))
    slugs = {p.stem for p in (ROOT / "portal" / "apps").glob("*.yaml")}
    assert apps == len({s for s in slugs if not s.startswith("sandbox")}), FIX
    assert (functions, with_functions) == (
        sum(len(a.functions) for a in gen_functions_doc.real_apps(catalog)),
        sum(1 for a in gen_functions_doc.real_apps(catalog) if a.functions),
    ), FIX
    assert gen_functions_doc.readme_with_counts(readme, catalog) == readme, FIX


def test_a_stale_count_is_caught(catalog: Catalog) -> None:
    readme = gen_functions_doc.README.read_text("utf-8")
    stale = gen_functions_doc.COUNTS.sub(
        "The catalog ships **1 apps** and **2 functions** on **3 of them**", readme
    )
    assert gen_functions_doc.readme_with_counts(stale, catalog) == readme
    with pytest.raises(ValueError):
        gen_functions_doc.readme_with_counts("no sentence here", catalog)
