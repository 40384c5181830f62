"""Background solves: a small :class:`JobRunner` interface and its local implementation.

:class:`LocalProcessRunner` starts ``settings.workers`` solver processes (multiprocessing
*spawn*, non-daemonic: the solver starts its own engine subprocesses). The database is the
queue: each worker claims the oldest queued job atomically (:meth:`Store.claim`), computes the
travel matrices on the job's network (loaded once per process), solves, and stores the plan
document. While solving it beats a heartbeat and reads the job's cancel flag twice a second, so
``DELETE /v1/plans/{id}`` stops the solve within a second and keeps the best plan so far.

A supervisor thread in the API process (no CPU work) restarts dead workers, re-queues the jobs
of workers that died or went silent (``stale_after_s``; failed after ``max_attempts``), and
kills a solve that overruns its time limit by ``hard_limit_grace_s``. On shutdown, workers stop
their solves and put the jobs back in the queue, so a restart loses nothing; a worker whose API
process dies stops the same way (:mod:`service.lifeline`).

A multi-machine pool (Celery/Redis) is another :class:`JobRunner`; the API only calls
``submit`` and ``cancel``.
"""

from __future__ import annotations

import contextlib
import faulthandler
import functools
import importlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from typing import Any, Protocol

from routing.errors import NetworkError, ProblemError
from service.config import Settings
from service.lifeline import WakePipe, die_with_parent, stop_on_signal, wait_for_wake, watch_parent
from service.networks import NetworkRegistry
from service.pipeline import document_of, prepare, solve_prepared
from service.schemas import PlanRequest, Status, dump_document, error_loc
from service.store import ClaimedJob, Store

log = logging.getLogger(__name__)

DUMP_STACKS = signal.SIGUSR1
"""Makes a worker write every thread's stack to its standard error (the server's log)."""


class JobRunner(Protocol):
    """Runs solves in the background. The API calls ``submit`` after storing a queued plan and
    ``cancel`` after flagging one; ``start``/``stop`` bracket the app's lifespan."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def submit(self, plan_id: str) -> None: ...

    def cancel(self, plan_id: str) -> None: ...

    def health(self) -> dict[str, str]: ...


# -- worker process ----------------------------------------------------------------------------------


def import_function(path: str) -> Callable[..., Any]:
    """``"package.module:function"`` -> the function."""
    module, _, name = path.partition(":")
    function = getattr(importlib.import_module(module), name)
    if not callable(function):
        raise TypeError(f"{path} is not callable")
    return function


ROUTING_SOLVE = "routing.solver:solve"


def solve_function(settings: Settings) -> Callable[..., Any]:
    """The solve a worker calls: ``settings.solve_function``, with the deployment's split
    settings when it is routing's own (a stand-in takes the plan's options alone)."""
    solve = import_function(settings.solve_function)
    if settings.solve_function != ROUTING_SOLVE:
        return solve
    return functools.partial(solve, split_above_tasks=settings.split_above_tasks, part_tasks=settings.part_tasks)


def worker_id_for(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}"


class _Monitor:
    """Heartbeat and cancel flag of one job, refreshed by a thread and on demand by ``should_stop``."""

    def __init__(self, store: Store, job: ClaimedJob, worker_id: str, interval_s: float, shutdown: threading.Event):
        self.store = store
        self.job = job
        self.worker_id = worker_id
        self.interval_s = interval_s
        self.shutdown = shutdown
        self.cancelled = threading.Event()
        self._lock = threading.Lock()
        self._checked = 0.0
        self._progress: dict[str, Any] | None = None
        self._progress_saved = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job.plan_id}", daemon=True)

    def __enter__(self) -> _Monitor:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._done.wait(self.interval_s):
            self.check()

    def check(self) -> None:
        with self._lock:
            self._checked = time.monotonic()
            try:
                if not self.store.heartbeat(self.job.plan_id, self.worker_id):
                    self.cancelled.set()
            except Exception:  # a database hiccup must not kill the solve
                log.warning("heartbeat of plan %s failed", self.job.plan_id, exc_info=True)

    def should_stop(self) -> bool:
        if time.monotonic() - self._checked > 2 * self.interval_s:  # the thread is starved
            self.check()
        return self.cancelled.is_set() or self.shutdown.is_set()

    def on_progress(self, progress: Any) -> None:
        self._progress = progress_dict(progress)
        now = time.monotonic()
        if now - self._progress_saved >= 0.5:
            self._progress_saved = now
            try:
                self.store.save_progress(self.job.plan_id, self.worker_id, self._progress)
            except Exception:
                log.warning("progress of plan %s not saved", self.job.plan_id, exc_info=True)

    @property
    def progress(self) -> dict[str, Any] | None:
        return self._progress


def progress_dict(progress: Any) -> dict[str, Any]:
    """The stored form of a solver ``Progress`` (its routes are left out: the plan has them)."""
    out: dict[str, Any] = {}
    for name in ("elapsed_s", "cost", "vehicles", "assigned", "engine"):
        value = getattr(progress, name, None)
        if isinstance(value, float):
            value = round(value, 3)
        out[name] = value
    return out


def run_job(
    job: ClaimedJob,
    *,
    store: Store,
    worker_id: str,
    settings: Settings,
    registry: NetworkRegistry,
    solve: Callable[..., Any],
    shutdown: threading.Event,
) -> None:
    """Solve one claimed job and store its outcome (or put it back in the queue on shutdown)."""
    plan_id = job.plan_id
    interval = min(settings.heartbeat_s, 0.4)
    with _Monitor(store, job, worker_id, interval, shutdown) as monitor:
        try:
            prepared = prepare(PlanRequest.model_validate(job.request), registry)
            # One reading of should_stop decides: a shutdown arriving between two readings (the
            # API's death signals its workers at any moment) stored a plan as done with no routes.
            if monitor.should_stop():
                if monitor.cancelled.is_set():
                    store.finish(plan_id, worker_id, document=None)  # cancelled (or no longer ours)
                else:
                    store.release(plan_id, worker_id)  # shutting down: back in the queue
                return
            started = time.monotonic()
            plan = solve_prepared(prepared, solve, time_limit_s=job.time_limit_s, on_progress=monitor.on_progress,
                                  should_stop=monitor.should_stop)
            if shutdown.is_set() and not monitor.cancelled.is_set():
                log.info("plan %s: put back in the queue (worker shutting down)", plan_id)
                store.release(plan_id, worker_id)
                return
            document = document_of(prepared, plan)
            summary = document.summary
            final = dict(monitor.progress or {})
            final.update(
                elapsed_s=round(time.monotonic() - started, 3),
                cost=summary.get("cost"),
                vehicles=summary.get("vehicles_used"),
                assigned=summary.get("visits_assigned"),
                engine=summary.get("engine") or final.get("engine"),
            )
            status = store.finish(plan_id, worker_id, document=dump_document(document), progress=final)
            log.info("plan %s: %s in %.1f s", plan_id, status, time.monotonic() - started)
        except ProblemError as error:
            store.finish(
                plan_id, worker_id, error={"type": "input_error", "msg": str(error), "loc": error_loc(error)}
            )
        except NetworkError as error:
            log.error("plan %s: network error: %s", plan_id, error)
            store.finish(plan_id, worker_id, error={"type": "network_error", "msg": str(error), "loc": None})
        except Exception:
            log.exception("plan %s: the solve failed", plan_id)
            store.finish(
                plan_id,
                worker_id,
                error={
                    "type": "internal",
                    "msg": f"the solve failed on the server; quote plan {plan_id} to its operators",
                    "loc": None,
                },
            )


def worker_main(settings_json: str, wake: Connection, parent_pid: int) -> None:
    """Entry point of a worker process: claim, solve, repeat until SIGTERM, the end of the wake
    pipe, or the death of the API process (``parent_pid``) stops it."""
    shutdown = threading.Event()
    faulthandler.register(DUMP_STACKS, all_threads=True)  # the runner asks before it kills a stuck worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    stop_on_signal(signal.SIGTERM, shutdown)  # not shutdown.set in the handler: see there
    die_with_parent(parent_pid)
    watch_parent(parent_pid, shutdown.set)
    settings = Settings.model_validate_json(settings_json)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(processName)s %(name)s: %(message)s")
    store = Store.from_url(settings.resolved_database_url)
    registry = NetworkRegistry(settings)
    solve = solve_function(settings)
    from routing.fastest_paths import warm_up as compile_matrix_search

    compile_matrix_search()
    if settings.solve_function == ROUTING_SOLVE:
        # This process has threads, so engines start from a forkserver: start it now, or the
        # first plan's budget pays for importing the engines.
        from routing.solver import warm_up

        warm_up()
    worker_id = worker_id_for(os.getpid())
    log.info("worker %s ready", worker_id)
    try:
        while not shutdown.is_set():
            try:
                job = store.claim(worker_id)
            except Exception:
                log.warning("claiming a job failed", exc_info=True)
                job = None
            if job is None:
                if not wait_for_wake(wake, settings.poll_s):
                    break  # the API closed its end: it is stopping, or gone
                continue
            run_job(
                job,
                store=store,
                worker_id=worker_id,
                settings=settings,
                registry=registry,
                solve=solve,
                shutdown=shutdown,
            )
    finally:
        store.close()
    # Every job is stored or back in the queue: end now. The interpreter's own teardown collects
    # the objects of every library loaded (about 1,800 modules: numba, OR-Tools, pandas) and took
    # 3-6 s on a loaded machine, most of the runner's stop deadline, while the API waited for it.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# -- the runner in the API process ---------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(slots=True)
class _Worker:
    process: SpawnProcess
    wake: WakePipe


class LocalProcessRunner:
    """``settings.workers`` solver processes on this machine, supervised by a thread.

    Nothing here waits on a worker: wake-ups are non-blocking pipe writes and the stop is a
    SIGTERM with a deadline, so a dead or stuck worker can never hold up the API's shutdown.
    """

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._supervisor: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._token = uuid.uuid4().hex[:8]

    # JobRunner --------------------------------------------------------------------------------------

    def start(self) -> None:
        self._recover_dead_local_workers()
        started = threading.Event()
        # The supervisor thread starts every worker: Linux ties a worker's parent-death signal to
        # the thread that started it, and this thread lives as long as the runner (a request
        # thread would end when its pool shrinks, and take the workers with it).
        self._supervisor = threading.Thread(target=self._supervise, args=(started,), name="job-supervisor",
                                            daemon=True)
        self._supervisor.start()
        started.wait()

    def submit(self, plan_id: str) -> None:
        for worker in list(self._workers):
            worker.wake.wake()

    def cancel(self, plan_id: str) -> None:
        """The store holds the cancel flag; workers read it twice a second. Nothing else to do here."""

    def stop(self, timeout_s: float | None = None) -> None:
        """SIGTERM every worker (each puts its job back in the queue), wait up to ``timeout_s``
        (``settings.worker_stop_s``), kill what is left, and re-queue what the killed ones held."""
        timeout_s = self.settings.worker_stop_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=2)
        with self._lock:
            workers, self._workers = list(self._workers), []
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.process.terminate()
            worker.wake.close()
        for worker in workers:
            worker.process.join(timeout=max(0.1, deadline - time.monotonic()))
        dead: set[str] = set()
        for worker in workers:
            process = worker.process
            if process.is_alive():
                log.warning("worker %s did not stop in %.0f s: its stacks, then killing it", process.pid, timeout_s)
                if process.pid is not None:  # into the log: where it is stuck, for whoever reads it
                    with contextlib.suppress(OSError):
                        os.kill(process.pid, DUMP_STACKS)
                    process.join(timeout=0.5)
                process.kill()
                process.join(timeout=2)
            if process.pid is not None:
                dead.add(worker_id_for(process.pid))
        if dead:
            self.store.recover(
                stale_after_s=self.settings.stale_after_s,
                max_attempts=self.settings.max_attempts,
                dead_workers=frozenset(dead),
            )

    def health(self) -> dict[str, str]:
        if self.settings.workers == 0:
            return {"workers": "none (external runner)"}
        alive = sum(1 for w in list(self._workers) if w.process.is_alive())
        return {"workers": f"{alive}/{self.settings.workers} alive"}

    # internals --------------------------------------------------------------------------------------

    def _spawn(self) -> _Worker:
        wake = WakePipe(self._context)
        process = self._context.Process(
            target=worker_main,
            args=(self.settings.model_dump_json(), wake.reader, os.getpid()),
            name=f"doorstep-worker-{self._token}",
            daemon=False,
        )
        process.start()
        wake.reader.close()  # the worker has its copy; ours would hide the worker's end-of-file
        log.info("started worker process %s", process.pid)
        return _Worker(process, wake)

    def _recover_dead_local_workers(self) -> None:
        """At start: jobs held by workers of this host whose process is gone go back at once."""
        host = socket.gethostname()
        solving = [r for r in self.store.page(limit=10_000, status=Status.SOLVING)[0] if r.worker_id]
        dead = frozenset(
            r.worker_id
            for r in solving
            if r.worker_id
            and r.worker_id.rsplit(":", 1)[0] == host
            and not _pid_alive(int(r.worker_id.rsplit(":", 1)[1]))
        )
        recovery = self.store.recover(
            stale_after_s=self.settings.stale_after_s,
            max_attempts=self.settings.max_attempts,
            dead_workers=dead,
        )
        if recovery.requeued or recovery.failed:
            log.warning("recovered interrupted solves: requeued %s, gave up %s", recovery.requeued, recovery.failed)

    def _supervise(self, started: threading.Event) -> None:
        try:
            with self._lock:
                for _ in range(self.settings.workers):
                    self._workers.append(self._spawn())
        finally:
            started.set()
        while not self._stopping.wait(1.0):
            try:
                self._supervise_once()
            except Exception:
                log.exception("job supervision failed")

    def _supervise_once(self) -> None:
        dead: set[str] = set()
        with self._lock:
            for i, worker in enumerate(self._workers):
                process = worker.process
                if not process.is_alive() and not self._stopping.is_set():
                    log.error("worker %s exited (code %s): restarting it", process.pid, process.exitcode)
                    if process.pid is not None:
                        dead.add(worker_id_for(process.pid))
                    worker.wake.close()
                    self._workers[i] = self._spawn()
        self.store.recover(
            stale_after_s=self.settings.stale_after_s,
            max_attempts=self.settings.max_attempts,
            dead_workers=frozenset(dead),
        )
        local = {worker_id_for(w.process.pid): w.process for w in list(self._workers) if w.process.pid is not None}
        for plan_id, worker_id in self.store.overdue(grace_s=self.settings.hard_limit_grace_s):
            if worker_id not in local:
                continue  # another machine's worker: its own supervisor enforces the limit
            process = local[worker_id]
            log.error("plan %s overran its time limit: killing worker %s", plan_id, process.pid)
            self.store.fail(
                plan_id,
                {
                    "type": "timeout",
                    "msg": "the solve overran its time limit and was stopped",
                    "loc": None,
                },
            )
            process.kill()
            with contextlib.suppress(Exception):
                process.join(timeout=5)

