"""portal/worker.py and ``flask portal worker``: one pass, the loop in a thread, and a real
worker process stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conftest import database_url
from test_webhooks import Receiver

from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_ENCRYPTION_KEY
from portal.store import WebhookOutbox
from portal.webhooks import enqueue, pending_count
from portal.worker import Worker


def test_cli_once_runs_one_pass(make_app: Any) -> None:
    receiver = Receiver().start()
    try:
        app = make_app(PORTAL_WEBHOOK_URL=receiver.url)
        with app.app_context(), app.extensions["portal"].store.session() as db:
            enqueue(db, "account.connected", {"n": 1}, "ca_cli", project=DEMO_APP_KEY)
        result = app.test_cli_runner().invoke(args=["portal", "worker", "--once"])
        assert result.exit_code == 0, result.output
        assert "handled 1 item(s)" in result.output
        assert len(receiver.delivered()) == 1
    finally:
        receiver.stop()


def test_worker_thread_delivers_and_stops_promptly(make_app: Any) -> None:
    receiver = Receiver().start()
    try:
        app = make_app(PORTAL_WEBHOOK_URL=receiver.url, PORTAL_WORKER_POLL_INTERVAL=0.05)
        worker = Worker(app).start()
        with app.app_context(), app.extensions["portal"].store.session() as db:
            enqueue(db, "account.connected", {"n": 1}, "ca_thread", project=DEMO_APP_KEY)
        deadline = time.monotonic() + 10
        while not receiver.delivered() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(receiver.delivered()) == 1
        began = time.monotonic()
        worker.stop()
        assert time.monotonic() - began < 2
        assert not worker.alive
    finally:
        receiver.stop()


def test_sigterm_stops_a_worker_process(tmp_path: Path, make_app: Any) -> None:
    receiver = Receiver().start()
    database = database_url(tmp_path, "worker")
    app = make_app(PORTAL_DATABASE_URL=database, PORTAL_WEBHOOK_URL=receiver.url)
    state = app.extensions["portal"]
    with app.app_context(), state.store.session() as db:
        webhook_id = enqueue(db, "account.connected", {"n": 1}, "ca_process", project=DEMO_APP_KEY)
    env = {
        **os.environ,
        "SECRET_KEY": "worker-test",
        "PORTAL_DATABASE_URL": database,
        "PORTAL_ENCRYPTION_KEYS": json.dumps([DEMO_ENCRYPTION_KEY]),
        "PORTAL_APP_KEYS": json.dumps({DEMO_APP_KEY: [DEMO_APP_SECRET]}),
        "PORTAL_WEBHOOK_URL": receiver.url,
        "PORTAL_WORKER_POLL_INTERVAL": "0.1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "portal.service:create_app", "portal", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not receiver.delivered() and time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            time.sleep(0.05)
        assert [e["id"] for e in receiver.delivered()] == [webhook_id]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        output = process.stdout.read() if process.stdout else ""
        assert "portal worker running" in output
        assert pending_count(state) == 0
        with state.store.read() as db:
            row = db.get(WebhookOutbox, webhook_id)
            assert row is not None and row.delivered_at is not None and row.attempts == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
        receiver.stop()
        state.store.dispose()
