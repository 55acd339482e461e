"""The README's "Connection lifecycle" blocks, run as written against the live portal of the
session's stack (see tests/readme_blocks.py): the ``verify:`` YAML in an app file, the
metadata calls, and the operators' log calls."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import connect_sandbox, new_session
from readme_blocks import ROOT, block, fill

from portal.catalog import load_catalog
from portal.demo import DEMO_APP_SECRET, DemoStack

SECTION = "Connection lifecycle: health, metadata, the operators' log"


@pytest.mark.readme(SECTION, 0)
def test_verify_block_loads_in_an_app_file(tmp_path: Path) -> None:
    """The block, appended to a copy of an API-key app with another slug, loads as App.verify."""
    definition = yaml.safe_load((ROOT / "portal/apps/sandbox-keys.yaml").read_text("utf-8"))
    definition.pop("verify", None)
    definition["slug"] = "readme-verify"
    definition["docs_url"] = "https://k.example/docs"
    text = yaml.safe_dump(definition) + block(SECTION, 0).code
    (tmp_path / "readme-verify.yaml").write_text(text, "utf-8")
    app = load_catalog(
        [tmp_path], app_settings={"readme-verify": {"base_url": "https://k.example"}}
    ).get("readme-verify")
    assert app is not None and app.verify is not None
    assert (app.verify.path, app.verify.method) == ("/me", "GET")


@pytest.mark.readme(SECTION, 1)
@pytest.mark.readme(SECTION, 2)
def test_metadata_and_log_blocks_as_written(stack: DemoStack, sandbox: str) -> None:
    user = f"readme-meta-{uuid.uuid4().hex[:8]}"
    api = new_session(stack, user)
    response, _ = connect_sandbox(api)
    assert response.status_code == 200
    account_id = api.get("/connected-accounts").json()["connected_accounts"][0]["id"]
    base = f"{stack.portal.url}/portal/api/v1"
    namespace: dict[str, Any] = {"APP_SECRET": DEMO_APP_SECRET, "account_id": account_id}
    code = fill(
        block(SECTION, 1).code,
        {"https://portal.example/portal/api/v1": base, '"u-42"': repr(user)},
    )
    exec(compile(code, "README.md (metadata)", "exec"), namespace)
    assert namespace["account"]["metadata"] == {"tags": ["vip", "eu"], "crm_id": 42}
    assert [a["id"] for a in namespace["vips"]] == [account_id]

    # A failed function call to find in the log: the sandbox API is down for one call.
    import requests

    requests.post(f"{sandbox}/_sandbox/faults", json={"api": "500"}, timeout=5)
    failed = requests.post(
        f"{base}/functions/sandbox-list-contacts/invoke",
        json={"params": {}},
        headers={"Authorization": f"Bearer {DEMO_APP_SECRET}", "X-Portal-User-Id": user},
        timeout=10,
    )
    assert failed.status_code == 200 and failed.json()["network_code"] == 500
    exec(compile(block(SECTION, 2).code, "README.md (log)", "exec"), namespace)
    log = namespace["log"]
    assert log["entries"] and {e["status"] for e in log["entries"]} == {"failed"}
    assert log["entries"][0]["user_id"] == user and log["entries"][0]["error"] == "HTTP 500"
    assert namespace["detail"]["account"]["id"] == account_id
