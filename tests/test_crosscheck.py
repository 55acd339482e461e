"""``scripts/crosscheck.py``: the catalog's OAuth URLs against two MIT catalogs (simov/grant and
amp-labs/connectors), offline from the snapshot in ``scripts/data``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import crosscheck  # noqa: E402


def test_snapshot_names_its_sources_and_commits() -> None:
    for name, repo in (
        ("grant-oauth.json", "https://github.com/simov/grant"),
        ("amp-connectors.json", "https://github.com/amp-labs/connectors"),
    ):
        data = json.loads((crosscheck.DATA / name).read_text("utf-8"))
        source = data["_source"]
        assert source["repository"] == repo
        assert len(source["commit"]) == 40 and source["commit"] in source["url"]
        assert source["license"].startswith("MIT")
        assert len(data["providers"]) > 200
    for licence in ("LICENSE-grant", "LICENSE-amp-connectors"):
        assert "MIT License" in (crosscheck.DATA / licence).read_text("utf-8").replace(
            "The MIT License (MIT)", "MIT License"
        )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://{subdomain}.zendesk.com/oauth/tokens", "https://{}.zendesk.com/oauth/tokens"),
        ("https://[subdomain].zendesk.com/oauth/tokens/", "https://{}.zendesk.com/oauth/tokens"),
        ("https://{{.workspace}}.zendesk.com/oauth/tokens", "https://{}.zendesk.com/oauth/tokens"),
        (None, None),
    ],
)
def test_placeholders_compare_equal(url: str | None, expected: str | None) -> None:
    assert crosscheck.norm_url(url) == expected


def test_known_agreements_and_differences() -> None:
    rows = {(r.slug, r.catalog): r for r in crosscheck.crosscheck()}
    # Zendesk: {subdomain} here, [subdomain] in grant, {{.workspace}} in amp-labs.
    assert rows[("zendesk", "grant")].status == "same"
    assert rows[("zendesk", "amp-labs")].status == "same"
    # HubSpot's versioned token endpoint differs from amp-labs' v1 one, and says why.
    hubspot = rows[("hubspot", "amp-labs")]
    assert hubspot.status == "differs"
    assert hubspot.theirs[1] == "https://api.hubapi.com/oauth/v1/token"
    assert hubspot.explanation and "2026-03" in hubspot.explanation


def test_every_difference_is_explained_in_the_app_file() -> None:
    unexplained = sorted(
        {r.slug for r in crosscheck.crosscheck() if r.status == "differs" and not r.explanation}
    )
    assert unexplained == []


def test_script_runs_offline_and_prints_a_summary() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "crosscheck.py"), "--unexplained"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert "OAuth 2.0 apps; comparisons:" in last
    assert last.endswith("unexplained differences: none")
