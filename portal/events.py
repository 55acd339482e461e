"""App events: a host tells the portal something happened for an end user, and the portal runs
the functions configured for that event (Paragon's ``event(name, payload)``).

``PORTAL_APP_EVENTS`` maps an event name to the functions it runs, each with a params template
filled from the event payload by :func:`portal.functions.render` (``"{email}"`` becomes the
payload's ``email``, keeping its JSON type)::

    PORTAL_APP_EVENTS = {"Contact Created": [
        {"function": "sandbox-create-contact", "params": {"name": "{name}", "email": "{email}"}},
    ]}

:func:`trigger` records the event and one ``queued`` run per function and returns at once; the
worker (``flask portal worker``, :func:`run_due`) invokes each run for the event's user in the
event's project (their most recently modified account of the function's app in that project,
never another project's), records ``succeeded`` or ``failed`` with
the result, and sends the host an ``app_event.run_finished`` webhook in the same transaction.
An unknown event name is recorded with no runs, as Paragon does. Payloads are not validated
against any schema.

Flows (:mod:`portal.flows`) whose trigger is the event's name add one run each: ``queued`` with
the user's settings merged into the params (and run with the account the user chose) when that
user turned the flow on and it is ready, else ``skipped`` at once with the reason in
``result``.

Runs are claimed like webhooks (see :mod:`portal.webhooks`), so several workers never start one
run twice. A run whose worker died while it was ``running`` is started again once its lease
expires (the function may then have run twice: at least once), at most
:data:`MAX_RUN_ATTEMPTS` times before it is marked ``failed``.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select, update
from werkzeug.exceptions import Forbidden

from . import flows, oplog, webhooks
from .accounts import iso
from .errors import PortalHTTPError, ResourceNotFound
from .functions import find, invoke, not_executed, render
from .store import AppEvent, AppEventRun, utcnow

if TYPE_CHECKING:
    from .state import PortalState

log = logging.getLogger(__name__)

#: Longest event name, in characters.
MAX_NAME_LENGTH = 255
#: Starts of one run (the first plus restarts after a lost worker) before it is failed.
MAX_RUN_ATTEMPTS = 3
#: Runs claimed per transaction.
CLAIM_BATCH = 10


class ProjectMismatch(PortalHTTPError, Forbidden):
    """403: the caller authenticated for another project (app key) than the URL names."""

    error_code = "project_mismatch"


def new_event_id() -> str:
    """A fresh event id: ``ev_`` + 24 url-safe characters."""
    return "ev_" + secrets.token_urlsafe(18)


def new_run_id() -> str:
    """A fresh run id: ``run_`` + 24 url-safe characters."""
    return "run_" + secrets.token_urlsafe(18)


def subscriptions(state: PortalState, name: str) -> list[Mapping[str, Any]]:
    """The ``PORTAL_APP_EVENTS`` entries of event ``name`` (``[]`` when none)."""
    entries = (state.config.get("PORTAL_APP_EVENTS") or {}).get(name) or []
    return [e for e in entries if isinstance(e, Mapping) and isinstance(e.get("function"), str)]


def trigger(
    state: PortalState,
    user_id: str,
    app_key: str | None,
    name: str,
    payload: Mapping[str, Any],
    *,
    project: str,
) -> tuple[AppEvent, list[AppEventRun]]:
    """Record event ``name`` for ``user_id`` of ``project`` and queue one run per configured
    function.

    Nothing is invoked here: the worker runs the queue.

    :param app_key: the app key the caller authenticated with (``None`` for mounted callers).
    :param project: the project (app key) the event and its runs belong to.
    :returns: ``(event, runs)``; ``runs`` is empty for an event name nobody subscribed to.
    """
    now = utcnow()
    event = AppEvent(
        id=new_event_id(),
        project=project,
        user_id=user_id,
        app_key=app_key,
        name=name,
        payload=dict(payload),
        created_at=now,
    )
    runs = [
        AppEventRun(
            id=new_run_id(),
            event_id=event.id,
            project=project,
            function=entry["function"],
            params=render(entry.get("params") or {}, payload),
            status="queued",
            attempts=0,
            created_at=now,
        )
        for entry in subscriptions(state, name)
    ]
    with state.store.session() as db:
        db.add(event)
        db.flush()  # the runs reference the event
        runs += flows.event_runs(state, db, event, payload)
        db.add_all(runs)
    log.info("app event %s %r for a user: %d run(s) queued", event.id, name, len(runs))
    return event, runs


def run_dict(run: AppEventRun) -> dict[str, Any]:
    """``{id, function, status, result, finished_at}`` (``finished_at`` ISO-8601 or ``None``),
    plus ``flow`` (``<app>/<flow>``) for a flow's run; ``status`` ``skipped`` has
    ``result = {"error": reason, "message"}``."""
    out = {
        "id": run.id,
        "function": run.function,
        "status": run.status,
        "result": run.result,
        "finished_at": iso(run.finished_at) if run.finished_at else None,
    }
    if run.flow is not None:
        out["flow"] = run.flow
    return out


def get_event(state: PortalState, user_id: str, event_id: str, *, project: str) -> dict[str, Any]:
    """One of ``user_id``'s events in ``project``: ``{id, name, payload, created_at, runs:
    [run_dict…]}``.

    :raises ResourceNotFound: no such event *for this user of this project* (another user's or
        project's id gives the same 404, so existence is not revealed).
    """
    with state.store.read() as db:
        event = db.get(AppEvent, event_id)
        if event is None or event.project != project or event.user_id != user_id:
            raise ResourceNotFound("No such event.")
        runs = db.scalars(
            select(AppEventRun)
            .where(AppEventRun.event_id == event.id, AppEventRun.project == project)
            .order_by(AppEventRun.created_at, AppEventRun.id)
        )
        return {
            "id": event.id,
            "name": event.name,
            "payload": event.payload,
            "created_at": iso(event.created_at),
            "runs": [run_dict(r) for r in runs],
        }


# --------------------------------------------------------------------------- the worker's side


@dataclass(frozen=True)
class _Claimed:
    id: str
    event_id: str
    project: str
    user_id: str
    function: str
    params: Any
    attempts: int
    account_id: str | None = None


def _lease(state: PortalState) -> timedelta:
    # A run is at most: a token refresh, the call, a forced refresh and a retry.
    return timedelta(seconds=4 * float(state.config["PORTAL_HTTP_TIMEOUT"]) + 60)


def _claim(state: PortalState, now: datetime, batch: int) -> list[_Claimed]:
    stale = now - _lease(state)
    query = (
        select(AppEventRun, AppEvent.user_id)
        .join(
            AppEvent,
            and_(AppEvent.id == AppEventRun.event_id, AppEvent.project == AppEventRun.project),
        )
        .where(
            or_(
                AppEventRun.status == "queued",
                and_(AppEventRun.status == "running", AppEventRun.started_at < stale),
            )
        )
        .order_by(AppEventRun.created_at, AppEventRun.id)
        .limit(batch)
    )
    claimed: list[_Claimed] = []
    lost: list[tuple[AppEventRun, str]] = []
    with state.store.session() as db:
        if db.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=AppEventRun)
        for run, user_id in db.execute(query).all():
            if run.attempts >= MAX_RUN_ATTEMPTS:
                lost.append((run, user_id))
                continue
            run.status = "running"
            run.started_at = now
            run.attempts += 1
            claimed.append(
                _Claimed(
                    run.id,
                    run.event_id,
                    run.project,
                    user_id,
                    run.function,
                    run.params,
                    run.attempts,
                    run.account_id,
                )
            )
        for run, user_id in lost:
            result = {"error": "worker_lost", "message": "The run was interrupted too often."}
            _finish_in(
                db,
                state,
                run.id,
                run.event_id,
                run.project,
                user_id,
                run.function,
                "failed",
                result,
                run.attempts,
            )
    return claimed


def _finish_in(
    db: Any,
    state: PortalState,
    run_id: str,
    event_id: str,
    project: str,
    user_id: str,
    function: str,
    status: str,
    result: Any,
    attempts: int,
) -> None:
    finished = db.execute(
        update(AppEventRun)
        .where(
            AppEventRun.id == run_id,
            AppEventRun.status == "running",
            AppEventRun.attempts == attempts,  # not restarted by another worker meanwhile
        )
        .values(status=status, result=result, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if not finished.rowcount:
        log.warning("app event run %s was restarted elsewhere; this result is dropped", run_id)
        return
    webhooks.enqueue(
        db,
        "app_event.run_finished",
        {
            "event_id": event_id,
            "run_id": run_id,
            "user_id": user_id,
            "function": function,
            "status": status,
            "result": result,
        },
        event_id,
        project=project,
        state=state,
    )


def _execute(state: PortalState, run: _Claimed) -> tuple[str, Any]:
    """Invoke the run's function: ``(status, result)``."""
    try:
        function = find(state, run.function)
        code, result = invoke(
            state, function, run.user_id, run.params, run.account_id, project=run.project
        )
    except PortalHTTPError as exc:  # unknown function, timeout, needs_reauth, …
        return "failed", {"error": exc.error_code, "message": exc.description}
    except Exception:
        log.exception("app event run %s (%s) raised", run.id, run.function)
        return "failed", {"error": "internal_error", "message": "The function could not run."}
    if code == 200 and 200 <= int(result.get("network_code", 0)) < 300:
        return "succeeded", result
    return "failed", result if isinstance(result, dict) else not_executed(str(result))


def run_due(
    state: PortalState,
    now: datetime | None = None,
    limit: int = 100,
    *,
    stop: threading.Event | None = None,
) -> int:
    """Run up to ``limit`` queued runs (must be called inside an app context: the functions use
    the proxy and token refresh). Returns how many were run.

    :param stop: checked between runs; once set, unstarted claimed runs go back to the queue.
    """
    done = 0
    while done < limit and not (stop is not None and stop.is_set()):
        claimed = _claim(state, now or utcnow(), min(CLAIM_BATCH, limit - done))
        if not claimed:
            break
        for index, run in enumerate(claimed):
            if stop is not None and stop.is_set():
                _requeue(state, claimed[index:])
                return done
            began = time.perf_counter()
            status, result = _execute(state, run)
            with state.store.session() as db:
                error = result.get("error") if isinstance(result, dict) else None
                if status == "failed" and error is None and isinstance(result, dict):
                    error = f"HTTP {result.get('network_code')}"
                oplog.record(
                    db,
                    project=run.project,
                    kind="app_event_run",
                    status=status,
                    user_id=run.user_id,
                    duration_ms=int((time.perf_counter() - began) * 1000),
                    ref_id=run.id,
                    request={"event_id": run.event_id, "function": run.function},
                    error=str(error) if error is not None else None,
                )
                _finish_in(
                    db,
                    state,
                    run.id,
                    run.event_id,
                    run.project,
                    run.user_id,
                    run.function,
                    status,
                    result,
                    run.attempts,
                )
            log.info("app event run %s (%s) %s", run.id, run.function, status)
            done += 1
    return done


def _requeue(state: PortalState, runs: list[_Claimed]) -> None:
    with state.store.session() as db:
        for run in runs:
            db.execute(
                update(AppEventRun)
                .where(AppEventRun.id == run.id, AppEventRun.status == "running")
                .values(status="queued", started_at=None, attempts=run.attempts - 1)
                .execution_options(synchronize_session=False)
            )
