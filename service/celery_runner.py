"""Solves on a Celery pool over Redis: the :class:`JobRunner` for more than one machine.

The database stays the record of every job; the broker carries plan ids (and, with
``part_slots``, the parts of split days and their answers: :mod:`service.celery_parts`). A task names its
plan and *takes* it (:func:`take`): a queued plan is claimed atomically, a plan held by a worker
that is gone (a dead process of this host, or a stale heartbeat) is recovered first, and a plan
that is final or held by a live worker is left alone. So a task delivered twice (a pool child
killed mid-solve: acks late + reject on worker lost; a whole worker killed: Redis's visibility
timeout; the API resending after a restart) solves at most once at a time, and every write names
its worker (:class:`service.store.Store`), so the result is written once.

The solve itself is :func:`service.jobs.run_job`, as in the local worker processes: heartbeat,
progress, and the cancel flag read twice a second. Cancelling is cooperative first (the flag; the
best plan so far is kept) and a kill second: a plan still solving ``cancel_kill_s`` after its cancel
is revoked with SIGKILL and marked cancelled.

Worker settings follow ``../shared/docs/facts.md`` ("Job queues"): prefork, one solve per child,
as many children as the machine has cores for solves (``solve_cores`` each), prefetch 1, late
acks, reject on worker lost, and a hard time limit (the plan's own plus ``hard_limit_grace_s``)
below Redis's visibility timeout.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from service.celery_parts import PART_TASK, CeleryParts, parts_queue, solve_part
from service.config import Settings, get_settings
from service.jobs import ROUTING_SOLVE, run_job, solve_function, worker_id_for
from service.networks import NetworkRegistry
from service.schemas import Status
from service.store import ClaimedJob, Store

log = logging.getLogger(__name__)

SOLVE_TASK = "doorstep.solve"
KILL_SLACK_S = 5.0
"""Celery's hard limit comes this long after the API's own (``hard_limit_grace_s``), so the plan is
first marked failed with a reason, then its process killed."""


def make_celery(settings: Settings) -> Celery:
    app = Celery("doorstep", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,  # a solve lost with its worker is delivered again
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # long tasks: a worker holds only what it solves
        task_time_limit=settings.max_time_limit_s + settings.hard_limit_grace_s + KILL_SLACK_S,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,  # the database has the outcome (a part's answer goes back to its solve)
        result_backend=settings.broker_url,
        result_expires=3600,
        # A part's answer is wanted within seconds: with Redis away, Celery's default (20 retries a
        # second apart) held a part's solve 19 s before it could go on without the part.
        result_backend_transport_options={
            "retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
        },
        task_default_queue=settings.celery_queue,
        task_publish_retry_policy={"max_retries": 3, "interval_start": 0, "interval_step": 0.5},
        worker_concurrency=worker_concurrency(settings),
        # A new pool child readies its solver (numba, the engines' forkserver) before it says it is
        # up: seconds on a loaded machine, where Celery's default 4 s killed it.
        worker_proc_alive_timeout=120,
    )
    app.task(name=SOLVE_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)(_solve_task)
    # A part is wanted only until its batch ends: not delivered again, its answer kept for its solve.
    app.task(name=PART_TASK, acks_late=False, ignore_result=False)(_solve_part_task)
    return app


def worker_concurrency(settings: Settings) -> int:
    """Solves at once on this machine: its cores over the cores one solve uses."""
    cores = os.cpu_count() or 1
    return max(1, cores // (settings.solve_cores or cores))


# -- the worker side (one Celery pool child per solve) -----------------------------------------------


@dataclass(slots=True)
class _Child:
    settings: Settings
    store: Store
    registry: NetworkRegistry
    solve: Any
    worker_id: str
    shutdown: threading.Event


_child: _Child | None = None


def _let_solves_start_processes() -> None:
    """Make a Celery pool child able to start the solve's engine processes.

    Its process record is billiard's: daemonic (multiprocessing refuses children to a daemon) and
    with an authentication key multiprocessing cannot send to its forkserver. The engines die
    with this process anyway (PR_SET_PDEATHSIG, :mod:`routing.solver.portfolio`).
    """
    config = multiprocessing.current_process()._config  # type: ignore[attr-defined]
    config["daemon"] = False
    config["authkey"] = multiprocessing.process.AuthenticationString(os.urandom(32))  # type: ignore[attr-defined]


def _child_context() -> _Child:
    """The pool child's database, networks and solve function, made once per process."""
    global _child
    if _child is None or _child.worker_id != worker_id_for(os.getpid()):
        _let_solves_start_processes()
        settings = get_settings()
        solve = solve_function(settings)
        if settings.solve_cores:
            solve = functools.partial(solve, cores=settings.solve_cores)
        _child = _Child(
            settings=settings,
            store=Store.from_url(settings.resolved_database_url),
            registry=NetworkRegistry(settings),
            solve=solve,
            worker_id=worker_id_for(os.getpid()),
            shutdown=threading.Event(),
        )
    return _child


@worker_process_init.connect
def _warm_up(**_: Any) -> None:
    """Ready each pool child before its first task, so a plan's budget does not pay for it."""
    context = _child_context()
    from routing.fastest_paths import warm_up as compile_matrix_search

    compile_matrix_search()
    if context.settings.solve_function == ROUTING_SOLVE:
        from routing.solver import warm_up

        warm_up()
    log.info("worker %s ready", context.worker_id)


def _holder_gone(worker_id: str, heartbeat_age_s: float | None, stale_after_s: float) -> bool:
    """Whether the worker holding a plan is gone: a process of this host that no longer runs, or
    silent longer than ``stale_after_s`` (another host's)."""
    host, _, pid = worker_id.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
    return heartbeat_age_s is None or heartbeat_age_s > stale_after_s


def take(store: Store, plan_id: str, worker_id: str, settings: Settings) -> ClaimedJob | None:
    """Claim the plan a task names, or None when there is nothing for this delivery to do."""
    for _ in range(3):
        row = store.get(plan_id)
        if row is None or row.status.is_final:
            log.info("plan %s: already %s", plan_id, row.status.value if row else "gone")
            return None
        if row.status is Status.QUEUED:
            job = store.claim_plan(plan_id, worker_id)
            if job is not None:
                log.info("plan %s: taken by %s (attempt %d)", plan_id, worker_id, job.attempts)
                return job
            continue  # claimed (or cancelled) a moment ago: look again
        if row.worker_id == worker_id:
            return None
        age = None if row.heartbeat_at is None else time.time() - row.heartbeat_at.timestamp()
        if row.worker_id is not None and not _holder_gone(row.worker_id, age, settings.stale_after_s):
            log.info("plan %s: solved by %s already", plan_id, row.worker_id)
            return None  # a live worker solves it: this is a second delivery
        log.warning("plan %s: its worker %s is gone; taking it over", plan_id, row.worker_id)
        store.recover(
            stale_after_s=settings.stale_after_s,
            max_attempts=settings.max_attempts,
            dead_workers=frozenset({row.worker_id} if row.worker_id else ()),
        )
    return None


def _solve_task(task: Any, plan_id: str) -> str:
    context = _child_context()
    job = take(context.store, plan_id, context.worker_id, context.settings)
    if job is None:
        return "nothing to do"
    solve = context.solve
    parts: CeleryParts | None = None
    if context.settings.part_slots and context.settings.solve_function == ROUTING_SOLVE:
        # An app of its own per solve: after Redis was away, Celery's result consumer asks to be
        # restarted, and this keeps that to the one solve.
        parts = CeleryParts(make_celery(context.settings), context.settings)
        solve = functools.partial(solve, part_runner=parts)
    try:
        run_job(
            job,
            store=context.store,
            worker_id=context.worker_id,
            settings=context.settings,
            registry=context.registry,
            solve=solve,
            shutdown=context.shutdown,
        )
    finally:
        if parts is not None:
            parts.app.close()
    if parts is not None and parts.sent:
        log.info("plan %s: %d parts sent to other workers, %d answered in time", plan_id, parts.sent, parts.returned)
    return "solved"


def _solve_part_task(payload: str) -> dict[str, Any]:
    context = _child_context()
    return solve_part(payload, context.settings.part_key, context.shutdown)


def run_worker(
    settings: Settings, *, concurrency: int | None = None, name: str | None = None, parts_only: bool = False
) -> None:
    """``doorstep worker``: a Celery worker on this machine (blocks until it is stopped). It takes
    solves and the parts of split days; ``parts_only``, parts alone (machines lent to large days)."""
    app = make_celery(settings)
    queues = [parts_queue(settings)] if parts_only else [settings.celery_queue, parts_queue(settings)]
    app.worker_main(
        [
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency or worker_concurrency(settings)}",
            f"--loglevel={settings.log_level}",
            f"--queues={','.join(queues)}",
            f"--hostname={name or f'doorstep-{os.getpid()}@{socket.gethostname()}'}",
            "--without-mingle",
            "--without-gossip",
        ]
    )


# -- the API side ------------------------------------------------------------------------------------


class CeleryRunner:
    """Sends each plan to the Celery pool and supervises what the pool cannot see.

    A supervisor thread (no CPU work) re-queues and resends plans whose worker went silent (a whole
    machine lost), fails plans that overran their time limit (Celery's own limit kills them a few
    seconds later), resends what could not be sent, and kills cancelled solves that did not stop.
    At start it resends every queued plan: a message lost with the broker, or never sent because
    the API stopped, would otherwise leave its plan queued forever (a duplicate is harmless).
    """

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.app = make_celery(settings)
        self._unsent: set[str] = set()
        self._cancelled: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    def start(self) -> None:
        for row in self.store.page(limit=10_000, status=Status.QUEUED)[0]:
            self.submit(row.id)
        self._supervisor = threading.Thread(target=self._supervise, name="celery-supervisor", daemon=True)
        self._supervisor.start()

    def stop(self) -> None:
        """The pool keeps solving: only this process's thread and connections stop."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
        self.app.close()

    def submit(self, plan_id: str) -> None:
        row = self.store.get(plan_id)
        limit = (row.time_limit_s if row else self.settings.max_time_limit_s) + self.settings.hard_limit_grace_s
        try:
            self.app.send_task(SOLVE_TASK, args=[plan_id], task_id=plan_id, queue=self.settings.celery_queue,
                               time_limit=limit + KILL_SLACK_S)
        except Exception:
            log.warning("plan %s could not be sent to the broker: retrying", plan_id, exc_info=True)
            with self._lock:
                self._unsent.add(plan_id)
        else:
            with self._lock:
                self._unsent.discard(plan_id)

    def cancel(self, plan_id: str) -> None:
        """The store holds the flag, which the solve reads; the supervisor kills it if it does not stop."""
        with self._lock:
            self._cancelled[plan_id] = time.monotonic() + self.settings.cancel_kill_s

    def health(self) -> dict[str, str]:
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        except Exception as error:
            return {"workers": f"celery broker unreachable: {type(error).__name__}"}
        return {"workers": "celery broker ok"}

    # internals ---------------------------------------------------------------------------------

    def _supervise(self) -> None:
        while not self._stopping.wait(1.0):
            try:
                self._supervise_once()
            except Exception:
                log.exception("celery supervision failed")

    def _supervise_once(self) -> None:
        settings = self.settings
        recovery = self.store.recover(stale_after_s=settings.stale_after_s, max_attempts=settings.max_attempts)
        with self._lock:
            resend = set(recovery.requeued) | self._unsent
        for plan_id in resend:
            self.submit(plan_id)
        for plan_id, _worker in self.store.overdue(grace_s=self.settings.hard_limit_grace_s):
            log.error("plan %s overran its time limit: failing it (Celery's limit kills its process)", plan_id)
            self.store.fail(plan_id, {"type": "timeout", "msg": "the solve overran its time limit and was stopped",
                                      "loc": None})
        now = time.monotonic()
        with self._lock:
            due = [plan_id for plan_id, at in self._cancelled.items() if at <= now]
            for plan_id in due:
                del self._cancelled[plan_id]
        for plan_id in due:
            self._kill_cancelled(plan_id)

    def _kill_cancelled(self, plan_id: str) -> None:
        row = self.store.get(plan_id)
        if row is None or row.status is not Status.SOLVING:
            return  # it stopped, as asked
        log.error("plan %s did not stop %.0f s after its cancel: killing it", plan_id, self.settings.cancel_kill_s)
        self.app.control.revoke(plan_id, terminate=True, signal=signal.SIGKILL)
        if row.worker_id:
            self.store.recover(
                stale_after_s=self.settings.stale_after_s,
                max_attempts=self.settings.max_attempts,
                dead_workers=frozenset({row.worker_id}),
            )
