"""Real portal processes for the process tests (gunicorn, SIGKILL, key rotation while serving).

Every portal here is its own OS process configured the way a deployment configures
:func:`portal.service.create_app`: ``PORTAL_*`` environment variables, JSON-encoded
(:func:`portal.service.config_from_env`). The provider is a sandbox on loopback in the test
process, with the portals' callback URLs registered, so a connect can start at any of them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from portal import user_hash
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from portal.sandbox.testing import RunningSandbox, start_sandbox
from portal.service import create_app

ROOT = Path(__file__).resolve().parent.parent
#: The host page origin every portal here allows (no page is served there: only its name).
HOST_ORIGIN = "http://127.0.0.1:9"
START_TIMEOUT = 60.0

#: A single-process threaded werkzeug server on a fixed port (so a restarted portal serves the
#: same origin, the redirect URI the provider knows).
SERVE_SCRIPT = """
import sys
from werkzeug.serving import make_server
from portal._serving import QuietRequestHandler
from portal.service import create_app

server = make_server("127.0.0.1", int(sys.argv[1]), create_app(), threaded=True,
                     request_handler=QuietRequestHandler)
server.serve_forever()
"""


def free_port() -> int:
    """A loopback port free right now (the OS picks it; a tiny race until it is bound again)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_provider(portal_urls: list[str], **overrides: Any) -> RunningSandbox:
    """A sandbox provider on loopback that accepts the callback of every portal in
    ``portal_urls`` (``overrides``: more sandbox configuration)."""
    return start_sandbox(
        {
            **overrides,
            "SECRET_KEY": "process-tests-sandbox",
            "SANDBOX_CLIENTS": [
                {
                    "client_id": DEMO_CLIENT_ID,
                    "client_secret": DEMO_CLIENT_SECRET,
                    "redirect_uris": [f"{u}/portal/oauth/sandbox/callback" for u in portal_urls],
                    "scope": "profile contacts.read contacts.write contacts.delete",
                }
            ],
        }
    )


def migrate(config: dict[str, Any]) -> None:
    """Bring the database of ``config`` to the newest migration, once, before any portal
    process starts (several processes must not migrate at the same time)."""
    app = create_app({**config, "PORTAL_AUTO_MIGRATE": True})
    app.extensions["portal"].store.dispose()


def portal_env(config: dict[str, Any]) -> dict[str, str]:
    """The process environment carrying ``config`` (each value JSON-encoded)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update({key: json.dumps(value) for key, value in config.items()})
    env["PYTHONPATH"] = str(ROOT)
    return env


class Proc:
    """One child process with its output in a log file; killed or stopped by its own pid."""

    def __init__(self, argv: list[str], config: dict[str, Any], workdir: Path, name: str) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = open(self.log_path, "ab")  # closed in stop()/kill()
        self.proc = subprocess.Popen(
            argv,
            cwd=str(workdir),
            env=portal_env(config),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: SIGKILL takes gunicorn's workers too
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_http(self, url: str, timeout: float = START_TIMEOUT) -> None:
        """Wait (bounded) until ``url`` answers, failing if the process exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited early:\n{self.log()}")
            try:
                requests.get(url, timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.05)
        raise AssertionError(f"{self.name} did not answer in time:\n{self.log()}")

    def wait(self, timeout: float) -> int:
        """Wait for the process to end; its exit status."""
        return self.proc.wait(timeout=timeout)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text("utf-8", errors="replace")[-6000:]

    def kill(self) -> None:
        """SIGKILL the process group: no handler, no cleanup, sockets closed by the kernel."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 10 s) the process group, if still running."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()


class PortalServer(Proc):
    """A portal served on ``127.0.0.1:<port>``: one threaded werkzeug process, or gunicorn
    with ``workers`` workers, sync unless ``worker_args`` say otherwise (``("-k", "gevent")``;
    ``access_log`` then records ``<pid> <request line> <status>`` per request)."""

    def __init__(
        self,
        config: dict[str, Any],
        port: int,
        workdir: Path,
        name: str,
        workers: int = 0,
        worker_args: tuple[str, ...] = (),
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.access_log = workdir / f"{name}.access.log"
        if workers:
            argv = [
                sys.executable, "-m", "gunicorn",
                "--workers", str(workers),
                "--bind", f"127.0.0.1:{port}",
                "--access-logfile", str(self.access_log),
                "--access-logformat", "%(p)s %(m)s %(U)s %(s)s",
                *worker_args,
                "portal.service:create_app()",
            ]  # fmt: skip
        else:
            argv = [sys.executable, "-c", SERVE_SCRIPT, str(port)]
        super().__init__(argv, {**config, "PORTAL_BASE_URL": self.url}, workdir, name)

    def ready(self) -> PortalServer:
        self.wait_http(f"{self.url}/portal/api/v1/apps")
        return self

    def access_pids(self) -> list[str]:
        """The worker pid of every request in the access log (gunicorn only), in order."""
        if not self.access_log.exists():
            return []
        lines = self.access_log.read_text("utf-8").splitlines()
        return [line.split()[0].strip("<>") for line in lines if line.strip()]


def flask_command(config: dict[str, Any], args: list[str], workdir: Path, name: str) -> Proc:
    """``flask --app 'portal.service:create_app()' <args>`` as a child process."""
    argv = [sys.executable, "-m", "flask", "--app", "portal.service:create_app()", *args]
    return Proc(argv, config, workdir, name)


def server_headers(user_id: str) -> dict[str, str]:
    """Server-to-server authentication of the host backend for ``user_id``."""
    return {"Authorization": f"Bearer {DEMO_APP_SECRET}", "X-Portal-User-Id": user_id}


def session_token(portal_url: str, user_id: str) -> str:
    """A session token for ``user_id`` bound to :data:`HOST_ORIGIN`, made as portal.js does."""
    response = requests.post(
        f"{portal_url}/portal/api/v1/sessions",
        json={
            "appKey": DEMO_APP_KEY,
            "userId": user_id,
            "hash": user_hash(DEMO_APP_SECRET, user_id),
        },
        headers={"Origin": HOST_ORIGIN},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def browser_headers(token: str) -> dict[str, str]:
    """What the iframe sends with a session token."""
    return {"Authorization": f"Bearer {token}", "Origin": HOST_ORIGIN}
