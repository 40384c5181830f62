"""``solve(problem) -> Plan``: one entry point over the engines.

1. With demand areas, bus stops are chosen first (CP-SAT covering, :mod:`routing.coverage`);
   visits and stops that no vehicle could serve even alone are set aside with a reason.
2. The engines run side by side in worker processes (one per core), each problem going to the
   strongest engine that can express it: two PyVRP searches when PyVRP can (plain capacities and
   windows); VROOM on every core, then OR-Tools' guided local search from VROOM's answer, when
   VROOM can (home-visit days: skills, breaks, priorities); two differently guided OR-Tools
   searches otherwise (buses, stops, labs). A mixed fleet whose buses and teams never share a
   task is split into independent parts, one per core (:mod:`routing.solver.parts`). Engines
   are known only through a small protocol (:mod:`routing.solver.engine`) and listed, strongest
   first, in :mod:`routing.solver.registry`; the settings of a solve are one :class:`SolveParams`.
   A day too large for one search in its budget is split into parts of routes solved side by
   side, joined and improved across the seams (:mod:`routing.solver.split`).
3. Every answer, and every incumbent on the way, is judged by the independent evaluator; the
   plan is the best feasible one, scheduled by the evaluator, with a reason for each visit left out.
   "Best" puts serving people first: fewer required visits left out, class by class from the most
   urgent, beats any saving in travel (:func:`rank`), as VROOM's own objective does.
4. A search that has converged stops early (:func:`converged`): small problems answer at once.
   Should the best still break a rule (an engine's model is approximate somewhere), the tasks at
   fault are taken out (:mod:`routing.solver.repair`) rather than a broken plan returned.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from routing.coverage import StopChoice, choose_stops
from routing.errors import ProblemError, SolverError
from routing.evaluate import Evaluation, evaluate
from routing.model import Priority, Problem, Visit
from routing.plan import AreaCoverage, Plan, Reason, Unassigned
from routing.solver.engine import Engine, EngineRun
from routing.solver.params import SolveParams
from routing.solver.parts import independent_parts
from routing.solver.portfolio import GRACE_S, Job, run_engine, run_portfolio, warm_up
from routing.solver.reasons import explain_missing, unservable_tasks
from routing.solver.registry import AUTO, engine_named, engine_names, engines, register, unregister
from routing.solver.repair import make_feasible
from routing.solver.split import (
    CONSTRUCT_MAX_S,
    CONSTRUCT_SHARE,
    LOCAL_PARTS,
    SPLIT_ABOVE_TASKS,
    PartRunner,
    quick,
    solve_split,
)

REPAIR_EVERY_S = 1.0
"""How often per part, at most, an incumbent that breaks a rule is repaired (in this process)."""
REPAIR_SHARE = 0.1
"""Repairs of incumbents take at most about this share of this process's time: on a large plan a
repair is many evaluations, and this process must keep reading the engines and the deadline."""

PARTS_APART = 2
"""Independent parts (buses and teams) are searched apart even with fewer cores than this: one
search over both is larger than two sharing a core. ``bench.city``'s district (13 buses, 6 teams,
300 households) at 30 s, pinned to one core, seeds 1-3: 116, 128, 108 households served with the
parts merged, 143, 148, 134 apart; on two cores 143, 148, 135."""
MIN_STALL_S = 0.1
"""A search converges only after going at least this long without improving the best plan
(a warm-started search reports its start first, and its first move may take a moment)..."""
STALL_S_PER_TASK_CUBED = 1e-5
"""...and this long times the cube of the tasks: 10 tasks 0.01 s, 30 tasks 0.27 s, 100 tasks 10 s.
Local search settles more slowly than linearly, and a fleet shrinks in rare jumps: stopped
after a 5 s stall, Solomon C101 kept the 11th vehicle PyVRP's full 10 s removed..."""
STALL_FACTOR = 2.0
"""...and this many times as long as it took to find it (a search still improving late goes on)."""

__all__ = [
    "Engine",
    "EngineRun",
    "Progress",
    "SolveParams",
    "engine_names",
    "rank",
    "register",
    "solve",
    "unregister",
    "warm_up",
]


@dataclass(frozen=True, slots=True)
class Progress:
    """An improving incumbent: what a progress bar or the API shows while solving."""

    elapsed_s: float
    cost: float
    vehicles: int
    assigned: int
    engine: str
    routes: Mapping[str, Sequence[str]]


def plan_runs(problem: Problem, task_ids: Sequence[str], engine: str, seed: int, cores: int) -> list[EngineRun]:
    """Which engine runs to start for ``engine`` (a name, or ``auto``) on this problem."""
    if engine != AUTO:
        chosen = engine_named(engine)
        gap = chosen.unsupported(problem, task_ids)
        if gap:
            raise ProblemError(f"engine {engine} cannot model {gap}; use auto or ortools", path=("engine",))
        return [chosen.alone(problem, seed, cores)]
    for candidate in engines():
        if candidate.unsupported(problem, task_ids) is None:
            return candidate.portfolio(problem, seed, cores)
    raise SolverError("no engine can model this problem")  # OR-Tools models every problem


def solve(
    problem: Problem,
    params: SolveParams | None = None,
    *,
    time_limit_s: float | None = None,
    seed: int | None = None,
    engine: str | None = None,
    cores: int | None = None,
    in_process: bool | None = None,
    full_budget: bool | None = None,
    split: bool | None = None,
    split_above_tasks: int | None = None,
    part_tasks: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    initial: Mapping[str, Sequence[str]] | None = None,
    part_runner: PartRunner = LOCAL_PARTS,
) -> Plan:
    """The best plan found within ``params.time_limit_s`` seconds (wall clock, all included).

    The settings come as :class:`SolveParams`, or as keywords of the same names (a keyword
    given with ``params`` overrides it): ``solve(problem, time_limit_s=10, engine="ortools")``.
    ``on_progress`` receives each improving incumbent; ``should_stop`` is polled every 0.1 s
    and, when true, ends the solve with the best plan so far. ``initial`` (vehicle id -> visit
    ids) warm-starts the engines, e.g. from the previous version of a plan. ``part_runner`` is
    where the parts of a split day are searched (:class:`routing.solver.split.PartRunner`).
    """
    params = _with_keywords(
        params,
        time_limit_s=time_limit_s,
        seed=seed,
        engine=engine,
        cores=cores,
        in_process=in_process,
        full_budget=full_budget,
        split=split,
        split_above_tasks=split_above_tasks,
        part_tasks=part_tasks,
    )
    started = time.time()
    choice: StopChoice | None = None
    if problem.areas:
        choice = choose_stops(problem, time_limit_s=min(10.0, 0.05 * params.time_limit_s), seed=params.seed)
        problem = problem.with_stops(choice.routed_stops)
    set_aside = unservable_tasks(problem)
    task_ids = [t.id for t in problem.tasks if t.id not in set_aside]
    cores = params.cores or os.cpu_count() or 1
    runs = plan_runs(problem, task_ids, params.engine, params.seed, cores)  # checks what the engine can model
    incumbents = _Incumbents(problem, started, on_progress)
    stats: dict[str, object] = {"set_aside": len(set_aside), "runs": []}
    deadline = started + params.time_limit_s
    if not task_ids:
        incumbents.offer("none", 0, {})
    elif _splits(params, task_ids, runs):
        stats |= _search_split(
            problem, task_ids, params, incumbents, started, initial, should_stop, cores, part_runner
        )
    elif params.in_process:
        run = runs[0]
        routes = run_engine(run, problem, task_ids, deadline, initial, lambda _c, r: incumbents.offer(run.label, 0, r))
        if routes is not None:
            incumbents.offer(run.label, 0, routes, final=True)
    else:
        jobs = _jobs(problem, task_ids, params.engine, params.seed, cores)
        # Fleet descent (bus stops) searches smaller fleets from scratch: the best plan stalls by design.
        may_stop_early = not (params.full_budget or problem.stops)
        stats |= _search(jobs, incumbents, deadline, initial, should_stop, may_stop_early, len(task_ids))
    return _plan(problem, incumbents, choice, set_aside, stats, started)


def _splits(params: SolveParams, task_ids: Sequence[str], runs: Sequence[EngineRun]) -> bool:
    """Whether to split the day (:mod:`routing.solver.split`): as asked, else for ``auto`` above
    the size given, or above the size measured for the engine it chose."""
    if params.split is not None:
        return params.split
    if params.engine != AUTO or params.in_process:
        return False
    above = params.split_above_tasks
    if above is None:
        above = SPLIT_ABOVE_TASKS.get(runs[0].engine.name) if runs else None
    return above is not None and len(task_ids) > above


def _search_split(
    problem: Problem,
    task_ids: Sequence[str],
    params: SolveParams,
    incumbents: _Incumbents,
    started: float,
    initial: Mapping[str, Sequence[str]] | None,
    should_stop: Callable[[], bool] | None,
    cores: int,
    part_runner: PartRunner,
) -> dict[str, object]:
    """A whole-day construction for a share of the budget, then the split search until the end."""
    deadline = started + params.time_limit_s
    built_by = started + min(CONSTRUCT_MAX_S, CONSTRUCT_SHARE * params.time_limit_s)

    def construction_over() -> bool:
        # A large day's whole-day engine may overrun its limit (VROOM did, by minutes): the split
        # goes on without its answer, from the tasks themselves.
        return time.time() > built_by + GRACE_S or (should_stop is not None and should_stop())

    jobs = [replace(job, run=quick(job.run)) for job in _jobs(problem, task_ids, params.engine, params.seed, cores)]
    stats = _search(jobs, incumbents, built_by, initial, construction_over, False, len(task_ids))
    stats["construction_s"] = round(time.time() - started, 2)
    if should_stop is not None and should_stop():
        return stats
    incumbents.join_parts()
    stats["split"] = solve_split(
        problem,
        task_ids,
        incumbents,
        engine=params.engine,
        seed=params.seed,
        cores=cores,
        deadline=deadline,
        should_stop=should_stop,
        part_tasks=params.part_tasks,
        runner=part_runner,
    )
    return stats


def _with_keywords(params: SolveParams | None, **keywords: object) -> SolveParams:
    """``params`` with the keywords given (not None) instead of its own values."""
    given = {name: value for name, value in keywords.items() if value is not None}
    if params is None:
        if "time_limit_s" not in given:
            raise TypeError("solve() needs params or time_limit_s")
        return SolveParams(**given)  # type: ignore[arg-type]
    return replace(params, **given)  # type: ignore[arg-type]


def _search(
    jobs: Sequence[Job],
    incumbents: _Incumbents,
    deadline: float,
    initial: Mapping[str, Sequence[str]] | None,
    should_stop: Callable[[], bool] | None,
    may_stop_early: bool,
    tasks: int,
) -> dict[str, object]:
    """Run the jobs side by side, every answer offered to ``incumbents``; the search's stats."""
    incumbents.part_problems = {job.run.part or 0: job.problem for job in jobs}
    incumbents.expected = {job.run.label for job in jobs}

    def stop() -> bool:
        if should_stop is not None and should_stop():
            return True
        return may_stop_early and converged(incumbents, tasks)

    results = run_portfolio(
        jobs,
        deadline=deadline,
        initial=initial,
        on_incumbent=lambda label, _cost, routes: incumbents.offer(label, _part_of(jobs, label), routes),
        should_stop=stop,
    )
    stats: dict[str, object] = {"parts": len(incumbents.part_problems)}
    stats["converged"] = may_stop_early and converged(incumbents, tasks)
    stats["runs"] = [
        {"engine": r.run.label, "error": r.error}
        | (incumbents.offer(r.run.label, _part_of(jobs, r.run.label), r.routes, final=True)
           if r.routes is not None else {})
        for r in results
    ]
    if incumbents.best is None and all(r.error not in (None, "stopped", "did not finish in time") for r in results):
        raise SolverError("every engine failed: " + "; ".join(str(r.error).splitlines()[-1] for r in results))
    return stats


def _plan(
    problem: Problem,
    incumbents: _Incumbents,
    choice: StopChoice | None,
    set_aside: dict[str, Unassigned],
    stats: dict[str, object],
    started: float,
) -> Plan:
    """The plan of the best answer: repaired if it still breaks a rule, stops resolved, every
    visit left out with its reason."""
    if incumbents.best is None:
        incumbents.offer("none", 0, {})
    assert incumbents.best is not None
    evaluation, label = incumbents.best
    if not evaluation.feasible:
        routes, removed = make_feasible(problem, _orders(evaluation))
        evaluation = evaluate(problem, routes)
        stats["repaired"] = {"removed": removed, "feasible": evaluation.feasible}
    coverage: tuple[AreaCoverage, ...] = ()
    if choice is not None:
        # The stand-ins the routes do not use leave the problem; a served one takes its chosen
        # stop's place, so only a chosen stop left out is reported.
        choice = choice.resolved({step for r in evaluation.routes for step in r.stop_ids})
        problem = problem.with_stops(choice.stops)
        evaluation = evaluate(problem, _orders(evaluation))
        kept = {t.id for t in problem.tasks}
        set_aside = {k: v for k, v in set_aside.items() if k in kept}
        coverage = choice.coverage
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


def _jobs(problem: Problem, task_ids: Sequence[str], engine: str, seed: int, cores: int) -> list[Job]:
    """Engine runs over the problem, or over its independent parts (one or more runs each)."""
    parts = independent_parts(problem, task_ids, at_most=max(cores, PARTS_APART)) if engine == AUTO else []
    if len(parts) < 2:
        return [Job(run, problem, task_ids) for run in plan_runs(problem, task_ids, engine, seed, cores)]
    jobs = []
    for k, (vehicle_ids, ids) in enumerate(parts):
        part = problem.subproblem(vehicle_ids, ids)
        for run in plan_runs(part, ids, engine, seed, max(1, cores // len(parts))):
            jobs.append(Job(replace(run, part=k), part, ids))
    return jobs


def converged(incumbents: _Incumbents, tasks: int) -> bool:
    """Whether the search has gone long enough without improving the best plan to stop.

    Every run must have answered at least once. Long enough is then :data:`MIN_STALL_S`,
    :data:`STALL_S_PER_TASK_CUBED` times the tasks cubed, and :data:`STALL_FACTOR` times as
    long as the search took from its first answer to its best: a 2-visit request stops a fraction
    of a second after its first answer; a day that was still improving late in its budget uses all
    of it. (Counted from the first answer, not the start: starting the engine processes on a busy
    machine would otherwise count as search.)
    """
    if incumbents.improved_at is None or incumbents.first_at is None:
        return False
    if not incumbents.expected <= incumbents.answered:
        return False  # an engine that has not answered yet (PyVRP's fleet-first twin) may do better
    stalled = time.time() - incumbents.improved_at
    searching = incumbents.improved_at - incumbents.first_at
    return stalled >= max(MIN_STALL_S, STALL_S_PER_TASK_CUBED * tasks**3, STALL_FACTOR * searching)


def _orders(evaluation: Evaluation) -> dict[str, list[str]]:
    """Each route's steps between start and end (tasks, lab drops, breaks), by vehicle."""
    return {r.vehicle_id: [s.id for s in r.steps[1:-1]] for r in evaluation.routes}


def _part_of(jobs: Sequence[Job], label: str) -> int:
    return next(job.run.part or 0 for job in jobs if job.run.label == label)


class _Incumbents:
    """The best routes so far per independent part, and the best whole plan, by the evaluator."""

    def __init__(self, problem: Problem, started: float, on_progress: Callable[[Progress], None] | None) -> None:
        self.problem = problem
        self.started = started
        self.on_progress = on_progress
        self.parts: dict[int, tuple[Rank, dict[str, list[str]], str]] = {}
        self.part_problems: dict[int, Problem] = {}
        self.best: tuple[Evaluation, str] | None = None
        self.expected: set[str] = set()
        """The runs whose answers the search waits for before it may converge."""
        self.answered: set[str] = set()
        self.first_at: float | None = None
        """When (``time.time()``) the first answer came."""
        self.improved_at: float | None = None
        """When the best plan last improved."""
        self._next_repair: dict[int, float] = {}

    def offer(
        self, label: str, part: int, routes: Mapping[str, Sequence[str]], *, final: bool = False
    ) -> dict[str, object]:
        """Consider routes found for one part; returns their own cost and feasibility.

        Routes that break a rule are first made feasible (the tasks at fault taken out): an
        engine's ``final`` answer always, incumbents at most every :data:`REPAIR_EVERY_S` per part
        (and within :data:`REPAIR_SHARE` of the time).
        An engine only approximates some rules (OR-Tools' sample age leaves out waiting), and a
        long search presses against them: repaired, its answer still counts with all else it
        serves, and the best plan so far (progress, a solve stopped early) keeps up with it.
        """
        self.answered.add(label)
        if self.first_at is None:
            self.first_at = time.time()
        part_problem = self.part_problems.get(part, self.problem)
        own = evaluate(part_problem, routes)
        reported: dict[str, object] = {"cost": own.cost, "feasible": own.feasible}
        started = time.monotonic()
        if not own.feasible and (final or started >= self._next_repair.get(part, -math.inf)):
            routes, removed = make_feasible(part_problem, routes)
            own = evaluate(part_problem, routes)
            reported["repaired"] = {"removed": len(removed), "feasible": own.feasible}
            took = time.monotonic() - started
            self._next_repair[part] = started + max(REPAIR_EVERY_S, took / REPAIR_SHARE)
        key = rank(part_problem, own)
        if part not in self.parts or key < self.parts[part][0]:
            self.improved_at = time.time()
            self.parts[part] = (key, {k: list(v) for k, v in routes.items()}, label)
            # The parts share no vehicle and no task: the best plan is each part's best.
            merged = {k: v for _, r, _ in self.parts.values() for k, v in r.items()}
            whole = evaluate(self.problem, merged) if self.part_problems else own
            labels = "+".join(sorted({lbl for _, _, lbl in self.parts.values()}))
            self.best = (whole, labels)
            self._report(whole, labels, merged)
        return reported

    def join_parts(self) -> None:
        """From now on every offer is a whole plan (the split search's joined ones): the best so
        far becomes the one part to beat."""
        self.part_problems = {}
        self.parts = {}
        if self.best is not None:
            evaluation, label = self.best
            self.parts[0] = (rank(self.problem, evaluation), _orders(evaluation), label)

    def _report(self, evaluation: Evaluation, label: str, routes: Mapping[str, Sequence[str]]) -> None:
        if self.on_progress is None:
            return
        self.on_progress(
            Progress(
                elapsed_s=time.time() - self.started,
                cost=evaluation.cost,
                vehicles=evaluation.vehicles_used,
                assigned=len(self.problem.tasks) - len(evaluation.missing),
                engine=label,
                routes={k: list(v) for k, v in routes.items()},
            )
        )


Rank = tuple[bool, int, tuple[int, ...], float]


def rank(problem: Problem, evaluation: Evaluation) -> Rank:
    """How good a plan is, smaller first: feasible, then fewest broken rules, then fewest
    required visits left out class by class from the most urgent, then cheapest.

    Nobody may be missed: a plan that serves more households of a priority class beats one that
    travels less, whatever the objective's weights (its penalties already say so when travel
    costs stay below them; this holds when they do not), as VROOM's objective does.
    """
    missing = [0] * (max(Priority) + 1)
    for task_id in evaluation.missing:
        task = problem.task(task_id)
        if isinstance(task, Visit) and task.required:
            missing[max(Priority) - task.priority] += 1
    return (not evaluation.feasible, len(evaluation.violations), tuple(missing), evaluation.cost)


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
