"""A ``digits`` account field filled from a JSON response accepts the JSON number providers
send (Basecamp's and Harvest's account ids, Ecwid's store_id), not only a string."""

from __future__ import annotations

from typing import Any

import pytest

from portal.catalog import Catalog, InvalidAccountField, load_catalog, validate_token_field


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(environ={})


@pytest.mark.parametrize(
    ("slug", "name", "raw", "expected"),
    [
        ("basecamp", "account_id", 9999999, "9999999"),
        ("harvest", "account_id", 123456, "123456"),
        ("ecwid", "store_id", 1003, "1003"),
        ("basecamp", "account_id", "9999999", "9999999"),
    ],
)
def test_numeric_ids_fill_digits_fields(
    catalog: Catalog, slug: str, name: str, raw: Any, expected: str
) -> None:
    app = catalog.get(slug)
    assert app is not None
    assert validate_token_field(app, name, raw) == expected


@pytest.mark.parametrize("raw", [True, -5, 1.5, None, [1], 10**40])
def test_other_values_are_still_refused(catalog: Catalog, raw: Any) -> None:
    app = catalog.get("basecamp")
    assert app is not None
    with pytest.raises(InvalidAccountField):
        validate_token_field(app, "account_id", raw)
