"""``solve(problem) -> Plan``: one entry point over the engines.

1. With demand areas, bus stops are chosen first (CP-SAT covering, :mod:`routing.coverage`);
   visits and stops that no vehicle could serve even alone are set aside with a reason.
2. The engines run side by side in worker processes (one per core): PyVRP and OR-Tools when
   PyVRP can express the problem, two differently tuned OR-Tools searches when it cannot.
3. Every answer, and every incumbent on the way, is judged by the independent evaluator; the
   plan is the best feasible one, scheduled by the evaluator, with a reason for each visit left out.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from routing.coverage import choose_stops
from routing.errors import ProblemError, SolverError
from routing.evaluate import Evaluation, evaluate
from routing.model import Problem
from routing.plan import AreaCoverage, Plan, Reason, Unassigned
from routing.solver.portfolio import EngineRun, run_engine, run_portfolio, warm_up
from routing.solver.pyvrp_engine import pyvrp_unsupported
from routing.solver.reasons import explain_missing, unservable_tasks

ENGINES = ("auto", "ortools", "pyvrp")

__all__ = ["ENGINES", "Progress", "solve", "warm_up"]


@dataclass(frozen=True, slots=True)
class Progress:
    """An improving incumbent: what a progress bar or the API shows while solving."""

    elapsed_s: float
    cost: float
    vehicles: int
    assigned: int
    engine: str
    routes: Mapping[str, Sequence[str]]


def plan_runs(problem: Problem, visit_ids: Sequence[str], engine: str, seed: int, cores: int) -> list[EngineRun]:
    """Which engine runs to start for ``engine`` on this problem."""
    if engine not in ENGINES:
        raise ProblemError(f'engine must be one of {", ".join(ENGINES)}, got "{engine}"', path=("engine",))
    unsupported = pyvrp_unsupported(problem, visit_ids)
    if engine == "pyvrp":
        if unsupported:
            raise ProblemError(f"engine pyvrp cannot model {unsupported}; use auto or ortools", path=("engine",))
        return [EngineRun("pyvrp", seed)]
    if engine == "ortools":
        return [EngineRun("ortools", seed)]
    if unsupported:
        # Only OR-Tools models it: a second core runs a differently guided search.
        runs = [EngineRun("ortools", seed), EngineRun("ortools", seed, {"variant": "tabu"})]
    else:
        # PyVRP is the stronger search (facts.md); the prize-collecting twin (another seed)
        # also answers when the fleet cannot take every visit, which plain PyVRP cannot.
        runs = [EngineRun("pyvrp", seed), EngineRun("pyvrp", seed + 1, {"variant": "prizes"})]
    if cores < 2:
        runs = [EngineRun("ortools", seed)] if unsupported else [EngineRun("pyvrp", seed, {"variant": "prizes"})]
    return runs


def solve(
    problem: Problem,
    *,
    time_limit_s: float,
    seed: int = 0,
    engine: str = "auto",
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    initial: Mapping[str, Sequence[str]] | None = None,
    cores: int | None = None,
    in_process: bool = False,
) -> Plan:
    """The best plan found within ``time_limit_s`` seconds (wall clock, all included).

    ``on_progress`` receives each improving incumbent; ``should_stop`` is polled every 0.1 s
    and, when true, ends the solve with the best plan so far. ``initial`` (vehicle id -> visit
    ids) warm-starts the engines, e.g. from the previous version of a plan.
    ``in_process=True`` runs the first engine in this process (no cancellation, one core):
    for notebooks and tests.
    """
    if not time_limit_s > 0:
        raise ProblemError(f"time_limit_s must be > 0, got {time_limit_s}", path=("time_limit_s",))
    started = time.time()
    deadline = started + time_limit_s
    coverage: tuple[AreaCoverage, ...] = ()
    if problem.areas:
        choice = choose_stops(problem, time_limit_s=min(10.0, 0.05 * time_limit_s), seed=seed)
        coverage = choice.coverage
        problem = problem.with_stops(choice.stops)
    set_aside = unservable_tasks(problem)
    visit_ids = [t.id for t in problem.tasks if t.id not in set_aside]
    runs = plan_runs(problem, visit_ids, engine, seed, cores or os.cpu_count() or 1)

    best: list[tuple[tuple[bool, float], Evaluation, str]] = []
    evaluations: dict[str, Evaluation] = {}

    def consider(label: str, routes: Mapping[str, Sequence[str]]) -> None:
        evaluation = evaluate(problem, routes)
        key = (not evaluation.feasible, evaluation.cost)
        if not best or key < best[0][0]:
            best[:] = [(key, evaluation, label)]
            if on_progress is not None:
                on_progress(
                    Progress(
                        elapsed_s=time.time() - started,
                        cost=evaluation.cost,
                        vehicles=evaluation.vehicles_used,
                        assigned=len(problem.tasks) - len(evaluation.missing),
                        engine=label,
                        routes={k: list(v) for k, v in routes.items()},
                    )
                )
        evaluations[label] = evaluation

    stats: dict[str, object] = {"set_aside": len(set_aside), "runs": []}
    if not visit_ids:
        consider("none", {})
    elif in_process:
        routes = run_engine(runs[0], problem, visit_ids, deadline, initial, lambda _c, r: consider(runs[0].label, r))
        if routes is not None:
            consider(runs[0].label, routes)
    else:
        results = run_portfolio(
            runs,
            problem,
            visit_ids,
            deadline=deadline,
            initial=initial,
            on_incumbent=lambda label, _cost, routes: consider(label, routes),
            should_stop=should_stop,
        )
        run_stats = []
        for result in results:
            entry: dict[str, object] = {"engine": result.run.label, "error": result.error}
            if result.routes is not None:
                consider(result.run.label, result.routes)
                final = evaluations[result.run.label]
                entry.update(cost=final.cost, feasible=final.feasible)
            run_stats.append(entry)
        stats["runs"] = run_stats
        if not best and all(r.error not in (None, "stopped", "did not finish in time") for r in results):
            raise SolverError("every engine failed: " + "; ".join(str(r.error).splitlines()[-1] for r in results))
    if not best:
        consider("none", {})
    _, evaluation, label = best[0]
    unassigned = tuple(explain_missing(problem, evaluation, set_aside))
    return Plan(
        routes=evaluation.routes,
        unassigned=unassigned,
        violations=evaluation.violations,
        cost=evaluation.cost,
        engine=label,
        solve_s=time.time() - started,
        stats=stats,
        coverage=_after_routing(coverage, unassigned),
    )


def _after_routing(coverage: tuple[AreaCoverage, ...], unassigned: tuple[Unassigned, ...]) -> tuple[AreaCoverage, ...]:
    """Areas whose chosen stop did not make it into any route are not covered after all."""
    left_out = {u.visit_id: u for u in unassigned if u.kind == "stop"}
    out = []
    for area in coverage:
        stop = left_out.get(area.stop_id or "")
        if stop is not None and area.reason is None:
            area = AreaCoverage(
                area.area_id,
                area.population,
                area.stop_id,
                area.walk_m,
                Reason.STOP_NOT_SERVED,
                f'its bus stop "{stop.visit_id}" is not served: {stop.detail}',
            )
        out.append(area)
    return tuple(out)
