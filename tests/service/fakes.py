"""Stand-in solve functions for job tests (``Settings.solve_function``), importable by workers.

They make the job tests deterministic: a real solver's timing varies; these do not.
Plans come from the independent evaluator, as the real solver's do.
"""

from __future__ import annotations

import time
from typing import Any

from routing.evaluate import evaluate
from routing.model import Problem
from routing.plan import Plan


def _plan(problem: Problem, engine: str) -> Plan:
    """Every visit on the first vehicle, in request order."""
    vehicle = problem.vehicles[0]
    evaluation = evaluate(problem, {vehicle.id: [v.id for v in problem.visits]})
    return Plan(
        routes=evaluation.routes,
        unassigned=(),
        violations=evaluation.violations,
        cost=evaluation.cost,
        engine=engine,
    )


def quick_solve(problem: Problem, *, time_limit_s: float, **_: Any) -> Plan:
    return _plan(problem, "fake-quick")


def sleepy_solve(
    problem: Problem, *, time_limit_s: float, on_progress: Any = None, should_stop: Any = None, **_: Any
) -> Plan:
    """Runs its whole time limit unless stopped; reports progress every 0.1 s."""
    from routing.solver import Progress

    started = time.monotonic()
    while time.monotonic() - started < time_limit_s:
        if should_stop is not None and should_stop():
            break
        if on_progress is not None:
            on_progress(
                Progress(
                    elapsed_s=time.monotonic() - started,
                    cost=1000.0,
                    vehicles=1,
                    assigned=len(problem.visits),
                    engine="fake-sleepy",
                    routes={},
                )
            )
        time.sleep(0.1)
    plan = _plan(problem, "fake-sleepy")
    return Plan(
        routes=plan.routes,
        unassigned=(),
        violations=plan.violations,
        cost=plan.cost,
        engine=plan.engine,
        solve_s=time.monotonic() - started,
    )


def broken_solve(problem: Problem, **_: Any) -> Plan:
    raise RuntimeError("engine exploded")
