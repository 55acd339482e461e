"""The background worker: runs queued app-event functions, checks connected accounts' health
(:mod:`portal.health`) and delivers due webhooks.

``flask portal worker`` runs :func:`run_forever`; ``--once`` runs :func:`run_once`. Any number
of workers may run against one database (see :mod:`portal.webhooks` and :mod:`portal.events`
for how they share work). SIGTERM and SIGINT stop the loop between two items: the item in hand
finishes and is recorded, claimed items not yet started are given back.

The demo (:class:`portal.demo.DemoStack`) runs a :class:`Worker` in a daemon thread.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime
from types import FrameType
from typing import Any

from flask import Flask

from . import events, health, webhooks

log = logging.getLogger(__name__)

#: Items (runs, then webhooks) handled per pass, each kind: bounds one pass's duration.
BATCH = 100


class Worker:
    """Work loop over one portal app.

    :param app: a Flask app with :class:`~portal.ConnectPortal` initialised.
    :param interval: seconds to sleep when a pass found nothing to do; default
        ``PORTAL_WORKER_POLL_INTERVAL``.
    :param batch: items of each kind per pass.
    """

    def __init__(self, app: Flask, interval: float | None = None, batch: int = BATCH) -> None:
        self.app = app
        state = app.extensions["portal"]
        self.interval = float(
            interval if interval is not None else state.config["PORTAL_WORKER_POLL_INTERVAL"]
        )
        self.batch = batch
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: datetime | None = None) -> int:
        """One pass: queued app-event runs, due health checks, then due webhooks (those the
        runs and checks just produced included). Returns how many items were handled (``0``: nothing to do)."""
        state = self.app.extensions["portal"]
        handled = 0
        with self.app.app_context():
            handled += events.run_due(state, now, self.batch, stop=self.stopping)
            handled += health.check_due(state, now, self.batch, stop=self.stopping)
            handled += webhooks.deliver_due(state, now, self.batch, stop=self.stopping)
        return handled

    def run(self) -> None:
        """Loop until :meth:`stop`; an error in one pass is logged and the loop goes on."""
        log.info("portal worker started (poll interval %.2f s)", self.interval)
        while not self.stopping.is_set():
            try:
                handled = self.run_once()
            except Exception:
                log.exception("portal worker pass failed; retrying after the poll interval")
                handled = 0
            if not handled:
                self.stopping.wait(self.interval)
        log.info("portal worker stopped")

    def stop(self, timeout: float | None = 30.0) -> None:
        """Ask the loop to stop after the item in hand; wait for the thread if there is one."""
        self.stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """True while the thread started by :meth:`start` runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Worker:
        """Run the loop in a daemon thread; returns ``self``."""
        self._thread = threading.Thread(target=self.run, name="portal-worker", daemon=True)
        self._thread.start()
        return self


def run_once(app: Flask, now: datetime | None = None, batch: int = BATCH) -> int:
    """One worker pass over ``app``; returns how many items were handled."""
    return Worker(app, interval=0, batch=batch).run_once(now)


def run_forever(app: Flask, interval: float | None = None) -> None:
    """Work until SIGTERM or SIGINT (handlers installed when called from the main thread)."""
    worker = Worker(app, interval)
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def _stop(signum: int, _frame: FrameType | None) -> None:
            log.info("portal worker: signal %d, stopping after the current item", signum)
            worker.stopping.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, _stop)
    try:
        worker.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
