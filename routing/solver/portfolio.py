"""Running engines in worker processes, side by side, and collecting what they find.

OR-Tools holds the GIL for its whole search (facts.md), so engines never run in a thread: each
run is a process, one per core. Runs report every improving incumbent through a queue; the
caller sees them as they come, can stop early (cancellation keeps the best so far), and gets
every run's final routes to judge with the evaluator.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from typing import Any

from routing.model import Problem

Routes = dict[str, list[str]]

FORKSERVER_PRELOAD = [
    # The caller's main module, imported once by the server rather than by every engine process
    # (a worker's is the `doorstep` command: importing the web stack took 0.9 s per solve).
    "__main__",
    "routing.solver._forkserver",
    "routing.solver.ortools_engine",
    "routing.solver.vroom_engine",
    "pyvrp",
]
"""What the forkserver imports once, so each engine process starts ready (and dies with its caller)."""

GRACE_S = 2.0
"""How long past the deadline a run may take to hand back its answer before it is killed."""

MIN_SEARCH_S = 1.0
"""The least search time an engine process gets, however late it started."""

FIRST_ANSWER_WAIT_S = 30.0
"""How long past the deadline the portfolio waits for a first answer when no run has given one.
On a loaded machine an engine process can start after the deadline (seen: a 2 s solve with the
load at 15 on 2 cores); stopping then would answer a plan that visits nobody, every household
"unassigned" for want of an answer, not of a vehicle."""

SEND_ALL_BELOW = 100
"""Runs on fewer tasks than this send every improvement."""
SEND_INTERVAL_S_PER_TASK = 0.002
"""Least time between two incumbents a run sends, per task."""

MIN_FOLLOW_UP_S = 0.2
"""Below this much time left, VROOM's answer is final (OR-Tools would not even build its model)."""


@dataclass(frozen=True, slots=True)
class EngineRun:
    """One engine with its settings, as one process of a portfolio."""

    engine: str  # "ortools", "pyvrp" or "vroom"
    seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        variant = self.options.get("variant")
        part = self.options.get("part")
        name = self.engine if variant is None else f"{self.engine}:{variant}"
        return f"{name}#{self.seed}" if part is None else f"{name}#{self.seed}@part{part}"


@dataclass(slots=True)
class RunResult:
    run: EngineRun
    routes: Routes | None
    error: str | None = None
    finished: bool = False


def run_engine(
    run: EngineRun,
    problem: Problem,
    visit_ids: Sequence[str],
    deadline: float,
    initial: Mapping[str, Sequence[str]] | None,
    on_incumbent: Callable[[int, Routes], object] | None,
) -> Routes | None:
    """Run one engine in this process (the worker's body, also usable in-process)."""
    if run.engine == "vroom":
        from routing.solver.vroom_engine import solve_vroom

        routes = solve_vroom(
            problem,
            visit_ids,
            deadline=deadline,
            threads=int(run.options.get("threads", 1)),
            on_incumbent=on_incumbent,
        )
        if run.options.get("then") != "ortools" or time.time() > deadline - MIN_FOLLOW_UP_S:
            return routes
        # VROOM stops when its exploration is done, often well before the deadline: guided local
        # search goes on from its answer (other moves, a search that never stops by itself).
        # Its answer is already with the caller as an incumbent, so nothing is lost if this is worse.
        run = EngineRun("ortools", run.seed, {k: v for k, v in run.options.items() if k == "part"})
        initial = routes
    if run.engine == "pyvrp":
        from routing.solver.pyvrp_engine import solve_pyvrp

        return solve_pyvrp(
            problem,
            visit_ids,
            deadline=deadline,
            seed=run.seed,
            prizes_only=run.options.get("variant") == "prizes",
            fleet_first=run.options.get("variant") == "fleet",
            initial=initial,
            on_incumbent=on_incumbent,
        )
    if run.engine == "ortools":
        from routing.solver.ortools_engine import METAHEURISTIC, OrToolsParams, solve_ortools

        variant = run.options.get("variant")
        params = OrToolsParams()
        if variant == "tabu":
            params = OrToolsParams(metaheuristic=METAHEURISTIC.GENERIC_TABU_SEARCH)
        elif variant == "annealing":
            params = OrToolsParams(metaheuristic=METAHEURISTIC.SIMULATED_ANNEALING)
        return solve_ortools(
            problem,
            visit_ids,
            deadline=deadline,
            seed=run.seed,
            params=params,
            initial=initial,
            on_incumbent=on_incumbent,
            fleet_descent=variant == "fleet",
        )
    raise ValueError(f"unknown engine {run.engine!r}")


def _worker(
    run: EngineRun,
    problem: Problem,
    visit_ids: Sequence[str],
    deadline: float,
    initial: Mapping[str, Sequence[str]] | None,
    out: Any,
) -> None:
    _die_with_parent()
    deadline = max(deadline, time.time() + MIN_SEARCH_S)
    last_sent = [0.0]
    # Improvements come in bursts. Each one sent costs the caller an evaluation, on the cores the
    # engines need: a large problem's are dear (1,000 visits: one every 2 s at most). A small
    # problem's are cheap, and all are sent: the caller stops a converged search soon after the
    # last one it has seen, so one held back could be lost.
    interval_s = 0.0 if len(visit_ids) < SEND_ALL_BELOW else SEND_INTERVAL_S_PER_TASK * len(visit_ids)

    def on_incumbent(cost: int, routes: Routes) -> None:
        now = time.time()
        if now - last_sent[0] >= interval_s:
            last_sent[0] = now
            out.put(("incumbent", run.label, cost, routes))

    try:
        routes = run_engine(run, problem, visit_ids, deadline, initial, on_incumbent)
        out.put(("done", run.label, None, routes))
    except Exception:  # reported to the parent, which keeps the other runs' answers
        out.put(("error", run.label, None, traceback.format_exc(limit=8)))


def _context() -> BaseContext:
    methods = mp.get_all_start_methods()
    # fork is the fastest start and needs no pickling, but is only safe without other threads.
    if "fork" in methods and threading.active_count() == 1:
        return mp.get_context("fork")
    # forkserver is safe with threads (a web worker); warm_up() starts it ahead of the first solve,
    # or its start (importing the engines, and the caller's main module) eats the first budget.
    if "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(FORKSERVER_PRELOAD)
        return ctx
    return mp.get_context("spawn")


def warm_up() -> None:
    """Import the engines and start the process server now rather than in the first solve."""
    import pyvrp  # noqa: F401

    import routing.solver.ortools_engine  # noqa: F401

    if "forkserver" in mp.get_all_start_methods():
        from multiprocessing import forkserver

        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(FORKSERVER_PRELOAD)
        forkserver.ensure_running()


def _die_with_parent() -> None:
    """Have the kernel kill this engine process when its parent dies (Linux).

    A worker killed outright (SIGKILL, out of memory) must not leave its engines searching on to
    their deadlines. A watchdog thread could not do it: OR-Tools holds the GIL while it searches.
    The parent is the caller (fork) or the forkserver, which does the same (``_forkserver``).
    """
    if not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() == 1:  # the parent was gone before the call
        os._exit(1)


@dataclass(frozen=True, slots=True)
class Job:
    """An engine run on a problem (or an independent part of one) and the tasks to route."""

    run: EngineRun
    problem: Problem
    task_ids: Sequence[str]


def run_portfolio(
    jobs: Sequence[Job],
    *,
    deadline: float,
    initial: Mapping[str, Sequence[str]] | None = None,
    on_incumbent: Callable[[str, int, Routes], object] | None = None,
    should_stop: Callable[[], bool] | None = None,
    poll_s: float = 0.1,
) -> list[RunResult]:
    """Run each engine in its own process until ``deadline`` (``time.time()``) or a stop.

    Returns one result per run: its final routes, or None with the error if it failed or
    was stopped (the incumbents reported on the way are the caller's to keep).
    """
    ctx = _context()
    out = ctx.Queue()
    results = {job.run.label: RunResult(job.run, None) for job in jobs}
    processes = [
        ctx.Process(  # type: ignore[attr-defined]
            target=_worker,
            args=(job.run, job.problem, list(job.task_ids), deadline, initial, out),
            name=f"doorstep-{job.run.label}",
            daemon=False,
        )
        for job in jobs
    ]
    for process in processes:
        process.start()
    stopped = False
    # Until a first answer comes, wait past the deadline; from it, a run has GRACE_S to hand back its final.
    end = deadline + FIRST_ANSWER_WAIT_S
    answered = False

    def on_answer() -> None:
        nonlocal answered, end
        if not answered:
            answered, end = True, max(deadline, time.time()) + GRACE_S

    try:
        while not all(r.finished for r in results.values()):
            if not stopped and should_stop is not None and should_stop():
                stopped = True
                break
            if time.time() > end:
                break
            try:
                kind, label, cost, payload = out.get(timeout=poll_s)
            except queue.Empty:
                if not any(p.is_alive() for p in processes) and out.empty():
                    break
                continue
            result = results[label]
            if kind == "incumbent":
                on_answer()
                if on_incumbent is not None:
                    on_incumbent(label, cost, payload)
            elif kind == "done":
                result.routes, result.finished = payload, True
                if payload is not None:
                    on_answer()
            else:
                result.error, result.finished = payload, True
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)
        out.close()
    for result in results.values():
        if not result.finished and result.error is None:
            result.error = "stopped" if stopped else "did not finish in time"
    return list(results.values())
