"""Packaging: the built wheel carries templates, static files, the catalog and the migrations,
and the portal works when installed from it into a clean virtualenv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest
from conftest import migrations_head

from portal.static_files import file_version

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent

REQUIRED_FILES = (
    "portal/__init__.py",
    "portal/py.typed",
    "portal/catalog.schema.json",
    "portal/flows.schema.json",
    "portal/flow_examples/sandbox.yaml",
    "portal/migrations/versions/0005_flows.py",
    "portal/_data/templates/portal/_flow.html",
    "portal/apps/sandbox.yaml",
    "portal/apps/sandbox-keys.yaml",
    "portal/apps/sandbox-basic.yaml",
    "portal/apps/slack.yaml",
    "portal/apps/hubspot.yaml",
    "portal/apps/intercom.yaml",
    "portal/apps/pipedrive.yaml",
    "portal/migrations/env.py",
    "portal/migrations/script.py.mako",
    "portal/migrations/versions/0001_initial.py",
    "portal/_data/templates/portal/base.html",
    "portal/_data/templates/portal/embed.html",
    "portal/_data/templates/portal/_marketplace.html",
    "portal/_data/templates/portal/_app_grid.html",
    "portal/_data/static/portal.js",
    "portal/_data/static/portal.css",
    "portal/_data/static/frame.js",
    "portal/_data/static/vendor/htmx-2.0.8.min.js",
)

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import portal
    from portal import _paths, user_hash
    from portal.service import create_app

    host = "https://host.example"
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "wheel-test",
        "PORTAL_DATABASE_URL": "sqlite:///wheel.sqlite3",
        "PORTAL_ALLOWED_ORIGINS": [host],
        "PORTAL_APP_KEYS": {"k": ["s"]},
        "PORTAL_APPS": {"sandbox-keys": {"base_url": "http://127.0.0.1:9"}},
    })
    client = app.test_client()
    created = client.post(
        "/portal/api/v1/sessions",
        json={"appKey": "k", "userId": "u1", "hash": user_hash("s", "u1")},
        headers={"Origin": host},
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    bearer = {"Authorization": "Bearer " + created.get_json()["token"], "Origin": host}
    shell = client.get("/portal/embed/apps")
    grid = client.get("/portal/ui/apps?q=sandbox", headers=bearer)  # page 1 of a search
    css = client.get("/portal/static/portal.css")
    htmx = client.get("/portal/static/vendor/htmx-2.0.8.min.js")
    print(json.dumps({
        "portal_file": portal.__file__,
        "templates_dir": str(_paths.TEMPLATES_DIR),
        "static_dir": str(_paths.STATIC_DIR),
        "sys_path": sys.path,
        "shell": [shell.status_code, shell.get_data(as_text=True)],
        "grid": [grid.status_code, grid.get_data(as_text=True)],
        "css": [css.status_code, css.mimetype, css.get_data(as_text=True)],
        "htmx": [htmx.status_code, len(htmx.get_data())],
        "revision": app.extensions["portal"].store.current_revision(),
    }))
    """
)


def run(cmd: list[str], cwd: Path, timeout: int = 600, **kw: object) -> str:
    result = subprocess.run(
        cmd,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kw,  # type: ignore[arg-type]
    )
    assert result.returncode == 0, (
        f"{cmd}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    )
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    cmd = [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:  # offline: build with the venv's own hatchling
        run([*cmd, "--no-isolation"], cwd=REPO)
    wheels = list(out.glob("connect_portal-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_contains_package_data(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for name in REQUIRED_FILES:
            assert name in names, name
        assert not any("__pycache__" in n or n.startswith("tests/") for n in names)
        packaged_css = archive.read("portal/_data/static/portal.css")
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "portal = portal.cli:portal_cli" in archive.read(entry_points).decode()
        # pyproject.toml says MIT: the wheel carries the licence text itself (PEP 639).
        licence = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        assert archive.read(licence) == (REPO / "LICENSE").read_bytes()
    assert packaged_css == (REPO / "static" / "portal.css").read_bytes()


def test_installed_wheel_serves_the_marketplace(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"][
        "dependencies"
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    run([*pip, *dependencies], cwd=tmp_path, env=env)
    run([*pip, "--no-deps", str(wheel)], cwd=tmp_path, env=env)

    work = tmp_path / "work"
    work.mkdir()
    (work / "check.py").write_text(SCRIPT, "utf-8")
    report = json.loads(run([str(python), "check.py"], cwd=work, env=env).splitlines()[-1])

    site_packages = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            cwd=work,
            env=env,
        ).strip()
    )
    assert site_packages.is_relative_to(venv)
    assert Path(report["portal_file"]).is_relative_to(site_packages), report["portal_file"]
    assert not any(Path(p).resolve() == REPO for p in report["sys_path"] if p)
    assert Path(report["templates_dir"]) == site_packages / "portal" / "_data" / "templates"
    assert Path(report["static_dir"]) == site_packages / "portal" / "_data" / "static"
    assert report["revision"] == migrations_head()  # migrations shipped and applied

    status, shell = report["shell"]
    assert status == 200, shell[-2000:]
    assert 'id="portal-main"' in shell
    assert 'data-portal-content-url="/portal/ui/apps' in shell
    # Versioned static URLs (portal.static_files), the version of the installed copy.
    css = f"/portal/static/portal.css?v={file_version('portal.css', REPO / 'static')}"
    assert f'<link rel="stylesheet" href="{css}">' in shell
    # The marketplace shell loads htmx after first paint (frame.js reads this attribute).
    htmx = "vendor/htmx-2.0.8.min.js"
    assert (
        f'data-portal-htmx="/portal/static/{htmx}?v={file_version(htmx, REPO / "static")}"' in shell
    )

    status, grid = report["grid"]
    assert status == 200, grid[-2000:]
    assert 'class="portal-market"' in grid
    assert 'id="portal-app-grid"' in grid
    assert 'name="q"' in grid
    assert "Sandbox Analytics" in grid  # a shipped catalog app, configured above

    status, mimetype, css = report["css"]
    assert (status, mimetype) == (200, "text/css")
    assert css == (REPO / "static" / "portal.css").read_text("utf-8")
    assert report["htmx"][0] == 200 and report["htmx"][1] > 10_000
