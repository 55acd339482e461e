"""The README's code blocks, run as a newcomer would run them (see tests/readme_blocks.py).

Each test takes a block verbatim and substitutes only placeholders (``…``), secrets and URLs.
The browser blocks (the script tag, Paragon's calls, the iframe, the proxy) run in real
Chromium in tests/e2e/test_readme_browser.py.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from conftest import Browser, connect_sandbox, new_session, stack_database
from flask import Flask, abort, request
from readme_blocks import ROOT, block, blocks, claims, fill, inline_code

from portal import user_hash
from portal._serving import ServerThread
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DemoStack
from portal.webhooks import pending_count
from portal.worker import run_once

PYTHON = sys.executable
#: The environment of a newcomer's shell: no Flask app, no portal configuration.
BARE_ENV = {
    k: v
    for k, v in os.environ.items()
    if not (k.startswith(("PORTAL_", "FLASK_")) or k == "SECRET_KEY")
}


def sh(
    command: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one README shell line (``python``/``flask`` are this interpreter's) and return it."""
    argv = shlex.split(command.split("  #", 1)[0])
    if argv[0] == "python":
        argv[0] = PYTHON
    elif argv[0] == "flask":
        argv = [PYTHON, "-m", "flask", *argv[1:]]
    return subprocess.run(
        argv, cwd=cwd, env=env or BARE_ENV, capture_output=True, text=True, timeout=120, check=False
    )


# --------------------------------------------------------------------------- coverage


def test_every_readme_block_is_run_by_a_test() -> None:
    """A block nobody runs, or a claim on a block that is gone, fails the suite."""
    present = {b.key for b in blocks()}
    claimed = {key for key, _ in claims()}
    assert not present - claimed, f"README blocks no test runs: {sorted(present - claimed)}"
    assert not claimed - present, (
        f"tests claim README blocks that are gone: {sorted(claimed - present)}"
    )


def test_configuration_table_lists_every_key_with_its_default() -> None:
    """The README's configuration table has one row per key of portal/config.py, in its order,
    with the default as written there (a key added to the code and not to the docs fails)."""
    import ast

    source = (ROOT / "portal" / "config.py").read_text("utf-8")
    tree = ast.parse(source)
    defaults = next(
        node.value
        for node in tree.body
        if isinstance(node, ast.AnnAssign | ast.Assign) and isinstance(node.value, ast.Dict)
    )
    assert isinstance(defaults, ast.Dict)
    expected = [
        (key.value, ast.get_source_segment(source, value))
        for key, value in zip(defaults.keys, defaults.values, strict=True)
        if isinstance(key, ast.Constant)
    ]
    readme = (ROOT / "README.md").read_text("utf-8")
    rows = re.findall(r"^\| `(PORTAL_[A-Z0-9_]+)` \| `(.*?)` \|", readme, re.M)
    assert [key for key, _ in rows] == [key for key, _ in expected]
    for (key, shown), (_, default) in zip(rows, expected, strict=True):
        assert " ".join(shown.split()) == " ".join((default or "").split()), key


# --------------------------------------------------------------------------- set-up


@pytest.mark.readme("Set-up: two commands", 0)
def test_setup_commands_install_then_run() -> None:
    """``make demo`` and ``make test`` exist and install before they run (a dry run of each:
    ``make test`` itself is what CI runs, so running it here would recurse)."""
    lines = [
        line.split("#", 1)[0].strip() for line in block("Set-up: two commands").code.splitlines()
    ]
    assert lines == ["make demo", "make test"]
    for target, runs in (("demo", "-m portal.demo"), ("test", "pytest")):
        dry = subprocess.run(
            ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        assert "pip install" in dry, dry
        assert dry.index("pip install") < dry.index(runs), dry
    assert "make test" in (ROOT / ".ci" / "run").read_text("utf-8")


# --------------------------------------------------------------------------- mounted


@pytest.fixture
def fresh_dir(tmp_path: Path) -> Iterator[Path]:
    """An empty working directory with nothing configured (the README's reader's shell)."""
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(cwd)


@pytest.mark.readme("Mount it in a Flask app", 0)
def test_generate_key_needs_no_app(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    for line in block("Mount it in a Flask app", 0).code.splitlines():
        command = line.split("  #", 1)[0].strip()
        result = sh(command, tmp_path)
        assert result.returncode == 0, result.stderr
        Fernet(result.stdout.strip())  # a valid key
    alternative = re.search(r"# or: (.+)$", block("Mount it in a Flask app", 0).code, re.M)
    assert alternative is not None
    result = sh(alternative.group(1), tmp_path)
    assert result.returncode == 0, result.stderr
    Fernet(result.stdout.strip())


@pytest.fixture
def readme_sandbox(tmp_path: Path) -> Iterator[tuple[ServerThread, str]]:
    """The mounted app's server (bound, not yet serving) and the README's sandbox command
    running with that app's callback URL, on a free port."""
    server = ServerThread("127.0.0.1", 0)
    command = block("Mount it in a Flask app", 2).code.strip()
    command = fill(
        command,
        {
            "--port 5002": "--port 0",
            "https://app.example": server.url,
        },
    )
    process = subprocess.Popen(
        [PYTHON, *shlex.split(command)[1:]],
        cwd=tmp_path,
        env=BARE_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.search(r"on (http://127\.0\.0\.1:\d+)", first)
        assert match, first + (process.stderr.read() if process.poll() is not None else "")  # type: ignore[union-attr]
        yield server, match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)
        if server._thread.is_alive():  # shutdown() waits forever on a server never started
            server.stop()
        else:
            server.server.server_close()


@pytest.mark.readme("Mount it in a Flask app", 1)
@pytest.mark.readme("Mount it in a Flask app", 2)
def test_mounted_app_as_written_connects_with_the_sandbox(
    fresh_dir: Path, readme_sandbox: tuple[ServerThread, str]
) -> None:
    """The mount snippet, verbatim but for secrets and URLs, plus the README's sandbox line:
    a logged-out visitor is sent to the login page; after login the end user connects the
    sandbox app over real HTTP and the account is theirs."""
    from cryptography.fernet import Fernet

    server, sandbox_url = readme_sandbox
    sandbox_entry = json.loads(
        "{" + inline_code("Mount it in a Flask app", r'^"sandbox": \{') + "}"
    )
    sandbox_entry["sandbox"]["base_url"] = fill(
        sandbox_entry["sandbox"]["base_url"], {"http://127.0.0.1:5002": sandbox_url}
    )
    apps = {"slack": {"client_id": "readme-slack-id", "client_secret": "readme-slack-secret"}}
    apps.update(sandbox_entry)
    code = fill(
        block("Mount it in a Flask app", 1).code,
        {
            'SECRET_KEY="…"': f'SECRET_KEY="{os.urandom(16).hex()}"',
            '"https://app.example"': repr(server.url),
            'PORTAL_ENCRYPTION_KEYS=["…"]': f"PORTAL_ENCRYPTION_KEYS=[{Fernet.generate_key().decode()!r}]",
            'PORTAL_APPS={"slack": {"client_id": "…", "client_secret": "…"}}': f"PORTAL_APPS={apps!r}",
        },
    )
    namespace: dict[str, Any] = {"__name__": "readme_host"}
    exec(compile(code, "README.md (Mount it in a Flask app)", "exec"), namespace)
    app: Flask = namespace["app"]
    from flask import redirect, session

    # The host's own login (the README leaves it to the host): what PORTAL_LOGIN_URL names.
    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "POST":
            session["user_id"] = request.form["user"]
            return redirect(request.args.get("next") or "/")
        return "login form"

    server.start(app)
    browser = Browser()
    out = browser.http.get(f"{server.url}/portal/apps", allow_redirects=False, timeout=10)
    assert out.status_code == 302
    assert out.headers["Location"] == "/login?next=%2Fportal%2Fapps"
    browser.http.post(f"{server.url}/login?next=/portal/apps", data={"user": "u-42"}, timeout=10)
    page = browser.http.get(f"{server.url}/portal/apps", timeout=10)
    assert page.status_code == 200 and "portal-error" not in page.text
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert csrf, page.text[:500]
    headers = {"X-CSRFToken": csrf.group(1)}
    catalog = browser.http.get(f"{server.url}/portal/api/v1/apps", headers=headers, timeout=10)
    assert catalog.status_code == 200, catalog.text
    assert {"slack", "sandbox"} <= {a["name"] for a in catalog.json()["apps"]}
    ticket = browser.http.post(
        f"{server.url}/portal/api/v1/connect-tickets",
        json={"app": "sandbox", "opener": "frame"},
        headers=headers,
        timeout=10,
    )
    assert ticket.status_code == 201, ticket.text
    started = browser.start(ticket.json()["connect_url"])
    assert started.status_code == 302, started.text[:300]
    assert started.headers["Location"].startswith(sandbox_url + "/oauth/authorize")
    consent = browser.consent(started.headers["Location"], user="ada")
    done = browser.callback(consent.callback_url)
    assert done.status_code == 200, done.text[:500]
    listed = browser.http.get(
        f"{server.url}/portal/api/v1/connected-accounts", headers=headers, timeout=10
    )
    assert listed.status_code == 200, listed.text
    accounts = listed.json()["connected_accounts"]
    assert [a["app"] for a in accounts] == ["sandbox"]
    # The instance folder of the README's app holds its SQLite database (the default).
    assert list((fresh_dir / "instance").glob("*.sqlite3"))


# --------------------------------------------------------------------------- script tag


@pytest.mark.readme("Embed it by script tag (another origin)", 0)
def test_user_hash_snippet() -> None:
    import hashlib
    import hmac

    namespace: dict[str, Any] = {"APP_SECRET": "s3cret", "user_id": "u-42"}
    exec(block("Embed it by script tag (another origin)", 0).code, namespace)
    expected = hmac.new(b"s3cret", b"u-42", hashlib.sha256).hexdigest()
    assert namespace["hash"] == expected == user_hash("s3cret", "u-42")


@pytest.mark.readme("Paragon-style: a signed JWT instead of the hash", 0)
def test_sign_user_token_snippet(stack: DemoStack) -> None:
    """The signed token authenticates that user on the live portal (``GET /user``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    user = f"readme-{os.urandom(4).hex()}"
    # The demo host's signing key: the portal trusts its public half for the demo project.
    namespace: dict[str, Any] = {"PRIVATE_KEY_PEM": stack.jwt_private_key, "user_id": user}
    code = fill(
        block("Paragon-style: a signed JWT instead of the hash", 0).code,
        {'"APP_KEY"': repr(DEMO_APP_KEY)},
    )
    exec(code, namespace)
    answer = requests.get(
        f"{stack.portal.url}/portal/api/v1/user",
        headers={"Authorization": f"Bearer {namespace['user_token']}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["authenticated"] is True
    assert answer.json()["userId"] == user
    # The same snippet with a key the portal does not know is refused.
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    namespace["PRIVATE_KEY_PEM"] = stranger.decode()
    exec(code, namespace)
    refused = requests.get(
        f"{stack.portal.url}/portal/api/v1/user",
        headers={"Authorization": f"Bearer {namespace['user_token']}"},
        timeout=10,
    )
    assert refused.status_code == 401


# --------------------------------------------------------------------------- iframe


@pytest.mark.readme("Embed it by iframe", 0)
def test_embed_token_curl_as_written(stack: DemoStack, tmp_path: Path) -> None:
    """The README's curl line, run by curl, mints a token the embed page accepts."""
    command = block("Embed it by iframe", 0).code
    command = command.split("\n# ->", 1)[0]
    command = fill(
        command,
        {
            "https://portal.example": stack.portal.url,
            "https://app.example": stack.host.url,
        },
    )
    result = subprocess.run(
        ["sh", "-c", command],
        env={**BARE_ENV, "APP_SECRET": DEMO_APP_SECRET},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    promised = re.search(r"# -> (\{.*\})", block("Embed it by iframe", 0).code)
    assert promised
    assert set(answer) == set(re.findall(r'"(\w+)":', promised.group(1)))
    assert answer["user_id"] == "u-42" and answer["origin"] == stack.host.url
    session = requests.get(
        f"{stack.portal.url}/portal/api/v1/session",
        headers={"Authorization": f"Bearer {answer['token']}", "Origin": stack.host.url},
        timeout=10,
    )
    assert session.status_code == 200 and session.json()["user_id"] == "u-42"


# --------------------------------------------------------------------------- YAML


def _acme(tmp_path: Path) -> Path:
    catalog = tmp_path / "catalog"
    catalog.mkdir(exist_ok=True)
    path = catalog / "acme.yaml"
    path.write_text(block("Add an app by YAML").code, "utf-8")
    return path


@pytest.mark.readme("Add an app by YAML", 0)
def test_acme_yaml_as_written_is_valid(tmp_path: Path) -> None:
    _acme(tmp_path)
    result = sh("flask portal apps validate ./catalog/acme.yaml", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 app definition file(s) valid" in result.stdout


@pytest.mark.readme("Writing your own app file", 0)
def test_schema_modeline_keeps_the_file_valid(tmp_path: Path) -> None:
    """The editor modeline, as the first line of the README's acme.yaml, changes nothing for
    the validator; the schema it names is the one the portal serves."""
    path = _acme(tmp_path)
    modeline = block("Writing your own app file", 0).code
    assert modeline.splitlines()[1] == "slug: acme"
    path.write_text(modeline.splitlines()[0] + "\n" + path.read_text("utf-8"), "utf-8")
    result = sh("flask portal apps validate ./catalog/acme.yaml", tmp_path)
    assert result.returncode == 0, result.stderr
    served = urlsplit(modeline.split("$schema=", 1)[1].split()[0]).path
    assert served == "/portal/api/v1/catalog.schema.json"


@pytest.mark.readme("Writing your own app file", 1)
def test_console_session_as_shown(tmp_path: Path) -> None:
    """Each ``$`` line of the console block, run: ``validate`` reports the shown problem for
    the shown mistake, then ``show``, ``list``, ``crosscheck`` and the ``functions`` commands
    work with ``portal.service:create_app``."""
    console = block("Writing your own app file", 1).code
    commands = [
        line[2:].split("  #", 1)[0].strip()
        for line in console.splitlines()
        if line.startswith("$ ")
    ]
    assert [c.split()[:4] for c in commands] == [
        ["flask", "portal", "apps", "validate"],
        ["flask", "portal", "apps", "show"],
        ["flask", "portal", "apps", "list"],
        ["flask", "portal", "apps", "crosscheck"],
        ["flask", "portal", "functions", "list"],
        ["flask", "portal", "functions", "show"],
    ]
    path = _acme(tmp_path)
    good = path.read_text("utf-8")
    path.write_text(good.replace("type: oauth2 ", "type: oauth  "), "utf-8")
    broken = sh(commands[0], tmp_path)
    assert broken.returncode == 1
    shown = [line.split("  #", 1)[0].strip() for line in console.splitlines()[1:3]]
    assert broken.stderr.splitlines()[0].startswith(shown[0].replace("[…]", "["))
    assert broken.stderr.splitlines()[-1] == shown[1]
    path.write_text(good, "utf-8")
    from cryptography.fernet import Fernet

    env = {
        **BARE_ENV,
        "FLASK_APP": "portal.service:create_app",
        "SECRET_KEY": "readme-secret",
        "PORTAL_ENCRYPTION_KEYS": json.dumps([Fernet.generate_key().decode()]),
        "PORTAL_BASE_URL": "https://portal.example",
        "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "PORTAL_CATALOG_PATHS": json.dumps([str(path.parent)]),
        "PORTAL_APPS": json.dumps(
            {"acme": {"client_id": "acme-id", "client_secret": "acme-secret"}}
        ),
    }
    show = sh(commands[1], tmp_path, env)
    assert show.returncode == 0, show.stderr
    promised = re.search(r"redirect URL:\s+(\S+)", console)
    assert promised and re.search(
        r"redirect URL:\s+" + re.escape(promised.group(1)), show.stdout
    ), show.stdout
    listed = sh(commands[2], tmp_path, env)
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^\s*acme\b.*ready", listed.stdout, re.M), listed.stdout
    crosscheck = sh(commands[3], tmp_path, env)
    assert crosscheck.returncode == 0, crosscheck.stderr
    assert "unexplained differences: none" in crosscheck.stdout.splitlines()[-1]
    functions = sh(commands[4], tmp_path, env)
    assert functions.returncode == 0, functions.stderr
    assert re.search(r"^github-create-issue\s+POST\s+/repos/", functions.stdout, re.M)
    shown_fn = sh(commands[5], tmp_path, env)
    assert shown_fn.returncode == 0, shown_fn.stderr
    assert shown_fn.stdout.startswith("Transition an issue (jira-transition-issue)\n")


@pytest.mark.readme("Writing your own app file", 2)
def test_pkce_exemption_fragment_validates_only_with_its_source(tmp_path: Path) -> None:
    """The README's ``pkce: false`` fragment, put into acme.yaml's ``auth``, validates; without
    its ``pkce_unsupported_source`` line it is refused, naming the field."""
    import yaml

    path = _acme(tmp_path)
    fragment = yaml.safe_load(block("Writing your own app file", 2).code)
    data = yaml.safe_load(path.read_text("utf-8"))
    data["auth"].update(fragment["auth"])
    path.write_text(yaml.safe_dump(data, sort_keys=False), "utf-8")
    accepted = sh("flask portal apps validate ./catalog/acme.yaml", tmp_path)
    assert accepted.returncode == 0, accepted.stderr
    del data["auth"]["pkce_unsupported_source"]
    path.write_text(yaml.safe_dump(data, sort_keys=False), "utf-8")
    refused = sh("flask portal apps validate ./catalog/acme.yaml", tmp_path)
    assert refused.returncode == 1
    assert "pkce" in refused.stderr, refused.stderr


def test_validate_reports_every_problem_at_once(tmp_path: Path) -> None:
    """Schema problems and the slug/file-name check come out of one run together."""
    path = _acme(tmp_path)
    text = path.read_text("utf-8").replace("slug: acme", "slug: acme-crm")
    text = text.replace("type: oauth2 ", "type: oauth  ").replace("docs_url:", "# docs_url:")
    path.write_text(text, "utf-8")
    result = sh("flask portal apps validate ./catalog/acme.yaml", tmp_path)
    assert result.returncode == 1
    problems = [
        line for line in result.stderr.splitlines() if line.startswith("catalog/acme.yaml: ")
    ]
    assert len(problems) == 3, result.stderr
    assert any("'docs_url' is a required property" in p for p in problems)
    assert any(p.startswith("catalog/acme.yaml: auth.type:") for p in problems)
    assert any("must match the file name 'acme'" in p for p in problems)
    assert result.stderr.splitlines()[-1] == "3 problem(s) in 1 of 1 file(s)"


# --------------------------------------------------------------------------- webhooks and client


def readme_receiver(secret: str) -> tuple[Flask, list[dict[str, Any]]]:
    """The README's webhook receiver, verbatim, in a host app; ``handle`` records events."""
    app = Flask("readme_receiver")
    handled: list[dict[str, Any]] = []
    seen: set[str] = set()
    namespace: dict[str, Any] = {
        "app": app,
        "request": request,
        "abort": abort,
        "CURRENT_SECRET": secret,
        "PREVIOUS_SECRET": "an-old-secret",
        "already_seen": lambda webhook_id: webhook_id in seen,
        "handle": lambda event: (seen.add(event["id"]), handled.append(event)),
    }
    exec(block("Webhooks, app events and the worker", 1).code, namespace)
    return app, handled


@pytest.fixture(scope="module")
def hooked(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[DemoStack, list[dict[str, Any]], list[dict[str, Any]]]]:
    """A demo stack whose webhooks go to the README's receiver and whose app events are the
    README's ``PORTAL_APP_EVENTS``; no worker thread (the tests drive it)."""
    app, handled = readme_receiver(DEMO_APP_SECRET)
    raw: list[dict[str, Any]] = []

    @app.before_request
    def keep_raw() -> None:
        raw.append({"headers": dict(request.headers), "body": request.get_data()})

    receiver = ServerThread("127.0.0.1", 0).start(app)
    events_config: dict[str, Any] = {}
    exec(block("Webhooks, app events and the worker", 2).code, events_config)
    tmp = tmp_path_factory.mktemp("readme-hooks")
    running = DemoStack(
        0,
        0,
        0,
        **stack_database(tmp, "portal"),
        worker=False,
        PORTAL_WEBHOOK_URL=receiver.url + "/webhooks/portal",
        PORTAL_APP_EVENTS=events_config["PORTAL_APP_EVENTS"],
    ).start()
    yield running, handled, raw
    running.stop()
    receiver.stop()


def drain(app: Flask) -> None:
    for _ in range(20):
        run_once(app)
        if pending_count(app.extensions["portal"]) == 0:
            return
    raise AssertionError("the outbox did not drain")


@pytest.mark.readme("Webhooks, app events and the worker", 0)
@pytest.mark.readme("Webhooks, app events and the worker", 1)
def test_webhook_wire_format_and_receiver_as_written(hooked: Any) -> None:
    """A real ``account.connected`` reaches the README's receiver, verified, with the headers
    and body keys the README shows."""
    stack, handled, raw = hooked
    user = f"readme-{os.urandom(4).hex()}"
    response, _ = connect_sandbox(new_session(stack, user))
    assert response.status_code == 200
    drain(stack.portal_app)
    mine = [e for e in handled if e["data"].get("user_id") == user]
    assert [e["type"] for e in mine] == ["account.connected"]
    wire = block("Webhooks, app events and the worker", 0).code
    request_line, *header_lines = wire.split("\n\n", 1)[0].splitlines()
    assert request_line == "POST <PORTAL_WEBHOOK_URL>"
    delivered = next(r for r in raw if json.loads(r["body"])["id"] == mine[0]["id"])
    for line in header_lines:
        name, shown = (part.strip() for part in line.split(":", 1))
        value = delivered["headers"][name]
        if name == "X-Portal-Signature":
            assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", value), value
        elif name == "X-Portal-Webhook-Id":
            assert value == mine[0]["id"] and value.startswith("wh_")
        else:
            assert value == shown
    shown_body = wire.split("\n\n", 1)[1]
    top_keys = re.findall(r'\{"(\w+)":|, "(\w+)":', shown_body.split('"data"')[0])
    assert {a or b for a, b in top_keys} | {"data"} == set(mine[0])
    assert set(re.findall(r'"(\w+)":', shown_body.split('"data": ', 1)[1])) <= set(mine[0]["data"])


@pytest.mark.readme("Webhooks, app events and the worker", 2)
@pytest.mark.readme("Webhooks, app events and the worker", 3)
def test_python_client_as_written(hooked: Any) -> None:
    """The PortalClient block against the live portal, for a user with a sandbox account;
    its event runs the README's PORTAL_APP_EVENTS function."""
    stack, handled, _ = hooked
    # Two sandbox accounts: the block deletes the newest, so its event runs on the other.
    for sandbox_user in ("grace", "ada"):
        connected, _ = connect_sandbox(new_session(stack, "u-42"), user=sandbox_user)
        assert connected.status_code == 200, connected.text[:300]
    code = fill(
        block("Webhooks, app events and the worker", 3).code,
        {
            "https://portal.example/portal": f"{stack.portal.url}/portal",
            "https://app.example": stack.host.url,
            '"APP_KEY"': repr(DEMO_APP_KEY),
        },
    )
    namespace: dict[str, Any] = {"SECRET": DEMO_APP_SECRET}
    exec(compile(code, "README.md (Python client)", "exec"), namespace)
    client = namespace["portal"]
    remaining = client.list_accounts("u-42", app="sandbox")
    assert [a["id"] for a in remaining] != [namespace["account"]["id"]] and len(remaining) == 1
    drain(stack.portal_app)
    finished = [
        e
        for e in handled
        if e["type"] == "app_event.run_finished" and e["data"]["user_id"] == "u-42"
    ]
    assert [e["data"]["function"] for e in finished] == ["sandbox-create-contact"]
    assert finished[0]["data"]["status"] == "succeeded", finished[0]["data"]


# --------------------------------------------------------------------------- layout


@pytest.mark.readme("Layout", 0)
def test_layout_tree_matches_the_repository() -> None:
    """Every top-level folder the tree names exists, and so does every file or folder it
    names inside them (``views/``, ``sandbox/``, ``portal.d.ts``, ``vendor/htmx-2.0.8``…)."""
    tree = block("Layout").code
    tops = [line.split()[0] for line in tree.splitlines() if line and not line[0].isspace()]
    assert tops == ["portal/", "templates/", "static/", "tests/", "bench/"]
    for top in tops:
        assert (ROOT / top).is_dir(), top
    for name in ("views/", "sandbox/", "migrations/"):
        assert (ROOT / "portal" / name).is_dir(), name
    for name in ("portal.js", "portal.d.ts", "portal.min.js", "frame.js", "portal.css"):
        assert (ROOT / "static" / name).is_file(), name
    htmx = re.search(r"vendor/(htmx-[\d.]+)", tree)
    assert htmx and (ROOT / "static" / "vendor" / f"{htmx.group(1)}.min.js").is_file()
