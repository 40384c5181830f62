"""Large days: split into parts, solved side by side, joined, then improved across the seams.

Above a few hundred tasks a whole-day search stops improving within minutes (``bench.large``:
VROOM on a 500-visit day gave its first and only answer at the 60 s time limit, and on 1,000
visits that answer travelled about 10 % more than the split's in the same minute). A
route-based decomposition (Santini, Schneider, Vidal and Vigo, "Decomposition strategies for
vehicle routing heuristics", 2023; POPMUSIC, Taillard and Voss 2002) keeps every search small:

1. **Construct**: the usual whole-day search, VROOM at its quick level (:func:`quick`), for
   :data:`CONSTRUCT_SHARE` of the budget (at most :data:`CONSTRUCT_MAX_S`) gives routes.
2. **Parts**: the routes are swept by the polar angle of their centroids around the depots and cut
   into groups of about :data:`PART_TASKS` tasks (:func:`sweep_parts`); a task left out goes with
   its angle's neighbours, an idle vehicle with the part that has most tasks per vehicle. Each
   part is a :meth:`Problem.subproblem`, and a route stays whole, so its timing stays coherent.
3. **Solve**: the parts run side by side, one engine process per core (the portfolio's
   machinery), warm-started from its routes where the engine takes it. A part's answer replaces its routes only when
   it ranks better on the part (:func:`rank`): parts share no vehicle and no task, so feasibility,
   households left out and cost add up, and a better part is a better day.
4. **Seams**: POPMUSIC. A seed route and its nearest routes (:func:`neighbourhood`: centroid and
   mean service time) are re-solved as one sub-problem; seeds are first the routes next to a cut
   of step 2, then any route a change touched, until every route has been a seed without an
   improvement (the search has converged) or the budget ends.

Whatever the parts find, the joined plan is judged by the evaluator as a whole and offered like
any other answer: the whole-day incumbent of step 1 wins if it ranks better, so a split plan never
leaves out more households, class by class, than the construction did.

Where the parts of a batch run is the caller's :class:`PartRunner`: by default engine processes on
this machine, one per core (:class:`LocalParts`); the service's Celery runner sends all but this
worker's share to other machines (``service.celery_parts``), and batches get as wide as the
runner's slots. A part that does not come back in time just keeps its routes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np

from routing.evaluate import evaluate
from routing.model import Problem
from routing.solver.engine import EngineRun, Routes
from routing.solver.portfolio import GRACE_S, Job, RunResult, run_portfolio

if TYPE_CHECKING:
    from routing.solver import _Incumbents

SPLIT_ABOVE_TASKS: Mapping[str, int] = {"vroom": 400, "ortools": 600}
"""``auto`` splits a day with more tasks than this, by the engine it gives the day to (measured
in ``bench.large``, 2 cores, 60 s). Home-visit days (VROOM): 250 visits split into one part, 2 %
more travel than whole; 500 visits 1-2 % less; 1,000 visits 10 % less; 2,000 visits: the
whole-day search had no plan at all at 60 s. OR-Tools' days (``--lab-days``: the same days with
labs, seed 1, two runs): 750 visits, 27 and 23 more households served split (685 and 681 against
658) and 0.5 % and 6 % less travel; 1,000, the same households, 3.5 % and 9 % less travel, the first
plan at 26 s and 17 s against 71 s and 62 s; 500, the runs disagree (the same households and 30 %
more travel; 9 more households and 25 % more travel): so above 600, between the sizes measured.
PyVRP's days are not split: on 1,000-customer Gehring-Homberger the whole-day search used as few or
fewer vehicles (RC2_10_1: 24 against 26)."""
PART_TASKS = 200
"""Tasks per part: small enough for an engine to converge in seconds, large enough that a part
holds several whole routes to exchange visits between."""
MIN_PART_TASKS = 10
"""Smaller parts are not worth an engine process each."""
CONSTRUCT_SHARE = 0.25
"""Share of the budget the whole-day construction gets (step 1)..."""
CONSTRUCT_MAX_S = 15.0
"""...at most: VROOM's quick level uses its whole time limit, and with 75 s of a 300 s budget the
2,000-visit day's first plan came at 75 s where 15 s (a 60 s budget) gave as many households."""
SLICE_S_PER_TASK = 0.03
"""A part's search time per task (200 tasks: 6 s)..."""
MIN_SLICE_S = 2.0
"""...never less than this (an engine process must start and build its model)..."""
MIN_ROUNDS = 2
"""...and short enough that the parts and at least one round of seams fit in what is left."""
TIME_WEIGHT = 0.5
"""How much a difference in mean service time counts against one in place when choosing a seed
route's neighbours (both scaled by their spread over the day's routes)."""

Part = tuple[list[str], list[str]]
"""(vehicle ids, task ids) of one sub-problem."""


class PartRunner(Protocol):
    """Where a batch of parts is searched: :func:`run_portfolio`'s contract, and how many parts at once."""

    def width(self, cores: int) -> int:
        """How many parts a batch holds for a solve given ``cores`` on this machine."""
        ...

    def __call__(
        self,
        jobs: Sequence[Job],
        *,
        cores: int,
        deadline: float,
        initial: Mapping[str, Sequence[str]] | None,
        on_incumbent: Callable[[str, int | None, Routes], object] | None,
        should_stop: Callable[[], bool] | None,
    ) -> list[RunResult]:
        """One result per job, by ``deadline`` (``time.time()``) plus :data:`GRACE_S`, or at a stop."""
        ...


class LocalParts:
    """Every part of a batch as an engine process on this machine, one per core."""

    def width(self, cores: int) -> int:
        return cores

    def __call__(
        self,
        jobs: Sequence[Job],
        *,
        cores: int,
        deadline: float,
        initial: Mapping[str, Sequence[str]] | None,
        on_incumbent: Callable[[str, int | None, Routes], object] | None,
        should_stop: Callable[[], bool] | None,
    ) -> list[RunResult]:
        return run_portfolio(
            jobs, deadline=deadline, initial=initial, on_incumbent=on_incumbent, should_stop=should_stop
        )


LOCAL_PARTS = LocalParts()


@dataclass(slots=True)
class _Route:
    """What the grouping needs to know of one route (or of one task no route serves)."""

    vehicle_id: str | None
    task_ids: list[str]
    x: float
    y: float
    t: float
    angle: float = 0.0


def quick(run: EngineRun) -> EngineRun:
    """The run as step 1 makes it: VROOM at its quick exploration level and without OR-Tools
    after it (a whole-day VROOM at full exploration overran its limit by minutes on 2,000
    visits, leaving no routes to split); other engines answer early anyway."""
    return replace(run, variant="quick", then=None) if run.engine.name == "vroom" else run


def route_items(problem: Problem, routes: Mapping[str, Sequence[str]], task_ids: Sequence[str]) -> list[_Route]:
    """Every used route, and every task of ``task_ids`` no route serves, with its centroid
    (metres, a local flat projection), mean service time and polar angle around the depots."""
    wanted = set(task_ids)
    evaluation = evaluate(problem, routes)
    lat0 = float(np.mean([d.location[1] for d in problem.depots]))
    lon0 = float(np.mean([d.location[0] for d in problem.depots]))
    scale_x = 111_320.0 * math.cos(math.radians(lat0))

    def xy(location: tuple[float, float]) -> tuple[float, float]:
        return (location[0] - lon0) * scale_x, (location[1] - lat0) * 111_320.0

    items = []
    served: set[str] = set()
    for route in evaluation.routes:
        steps = [s for s in route.steps if s.id in wanted]
        if not steps:
            continue
        points = [xy(problem.task(s.id).location) for s in steps]
        served.update(s.id for s in steps)
        items.append(
            _Route(
                route.vehicle_id,
                [s.id for s in steps],
                float(np.mean([p[0] for p in points])),
                float(np.mean([p[1] for p in points])),
                float(np.mean([s.arrival_s for s in steps])),
            )
        )
    for task_id in task_ids:
        if task_id not in served:
            task = problem.task(task_id)
            windows = task.time_windows
            middle = (windows[0].start_s + windows[-1].end_s) / 2 if windows else 0.0
            items.append(_Route(None, [task_id], *xy(task.location), middle))
    for item in items:
        item.angle = math.atan2(item.y, item.x)
    return items


def sweep_parts(
    problem: Problem,
    routes: Mapping[str, Sequence[str]],
    task_ids: Sequence[str],
    *,
    part_tasks: int = PART_TASKS,
    start: float = 0.0,
) -> list[Part]:
    """Routes (and tasks no route serves) swept by polar angle from ``start`` (radians) and cut
    into parts of about ``part_tasks`` tasks: a partition of ``task_ids`` and of the vehicles.

    A route is never cut. Vehicles without a route go one by one to the part with the most
    tasks per vehicle, so each part has a fleet for its work (and the spare vehicles of a fleet
    larger than needed are spread evenly).
    """
    items = route_items(problem, routes, task_ids)
    return _with_idle(problem, [_part_of_items(items, group) for group in _sweep(items, part_tasks, start)])


def _sweep(items: Sequence[_Route], part_tasks: int, start: float) -> list[list[int]]:
    """Indices of ``items`` per part, each part's in sweep order (its first and last are at its seams)."""
    order = sorted(range(len(items)), key=lambda i: (items[i].angle - start) % (2 * math.pi))
    total = sum(len(r.task_ids) for r in items)
    count = max(1, round(total / part_tasks))
    groups: list[list[int]] = [[] for _ in range(count)]
    done = 0
    for i in order:
        size = len(items[i].task_ids)
        # The part this item's middle falls in: cuts at equal shares of the tasks.
        groups[min(count - 1, int((done + size / 2) * count / max(1, total)))].append(i)
        done += size
    return [g for g in groups if g]


def _with_idle(problem: Problem, parts: list[Part], idle: Sequence[str] | None = None) -> list[Part]:
    """``parts`` with the vehicles no part has (or ``idle``) added one by one to the part with the
    most tasks per vehicle."""
    if idle is None:
        placed = {v for vehicle_ids, _ in parts for v in vehicle_ids}
        idle = [v.id for v in problem.vehicles if v.id not in placed]
    for vehicle_id in idle:
        max(parts, key=lambda p: len(p[1]) / (len(p[0]) + 1))[0].append(vehicle_id)
    return parts


def neighbourhood(items: Sequence[_Route], seed: int, *, part_tasks: int = PART_TASKS) -> list[int]:
    """The seed item and its nearest items (centroid, and mean service time weighted by
    :data:`TIME_WEIGHT`), until they hold about ``part_tasks`` tasks: indices into ``items``."""
    xs = np.array([[r.x, r.y, r.t] for r in items], dtype=float)
    spread = xs.std(axis=0)
    spread[spread == 0] = 1.0
    weights = np.array([1.0, 1.0, TIME_WEIGHT])
    scaled = xs / spread * weights
    distance = np.linalg.norm(scaled - scaled[seed], axis=1)
    chosen: list[int] = []
    tasks = 0
    for i in np.argsort(distance, kind="stable"):
        if chosen and tasks + len(items[i].task_ids) > part_tasks * 1.25:
            continue  # too big to add: a nearer small one may still fit
        chosen.append(int(i))
        tasks += len(items[i].task_ids)
        if tasks >= part_tasks:
            break
    return chosen


@dataclass(slots=True)
class _Split:
    """The state of one split solve: the day's current routes, and what to do next."""

    problem: Problem
    task_ids: Sequence[str]
    incumbents: _Incumbents
    engine: str
    seed: int
    cores: int
    deadline: float
    should_stop: Callable[[], bool] | None
    runner: PartRunner = LOCAL_PARTS
    routes: dict[str, list[str]] = field(default_factory=dict)
    stats: dict[str, int] = field(
        default_factory=lambda: {"batches": 0, "parts_solved": 0, "parts_improved": 0, "seams_tried": 0}
    )

    def stopped(self) -> bool:
        return time.time() >= self.deadline or (self.should_stop is not None and self.should_stop())

    def take_best(self) -> None:
        """Go on from the best whole plan so far (the construction's, or a joined one)."""
        best = self.incumbents.best
        if best is not None:
            self.routes = {r.vehicle_id: [s.id for s in r.steps[1:-1]] for r in best[0].routes if r.task_ids}

    def slice_s(self, tasks: int, batches_left: int) -> float:
        """How long one batch of parts searches (see :data:`SLICE_S_PER_TASK`)."""
        left = self.deadline - time.time()
        return max(MIN_SLICE_S, min(SLICE_S_PER_TASK * tasks, left / max(1, batches_left) / MIN_ROUNDS))

    def solve_batch(self, parts: Sequence[Part], slice_s: float) -> set[int]:
        """Solve disjoint parts side by side until ``slice_s`` from now; their better answers
        replace their routes. Returns the indices of the parts that improved.

        Each part gets the runs ``auto`` would make for it on one core, warm-started from its
        routes where the engine takes a warm start (PyVRP, OR-Tools). VROOM takes none: it
        searches the part afresh, then OR-Tools goes on from its answer. That fresh look beat
        OR-Tools warm-started from the part's routes (1,000 visits at 60 s: 0.90 of the whole-day
        travel against 0.91-0.95; 500 visits: 0.99 against 1.01).
        """
        from routing.solver import plan_runs, rank

        self.stats["batches"] += 1
        problems = [self.problem.subproblem(vehicle_ids, ids) for vehicle_ids, ids in parts]
        best = []
        for (vehicle_ids, _), part in zip(parts, problems, strict=True):
            current = {v: self.routes[v] for v in vehicle_ids if v in self.routes}
            best.append((rank(part, evaluate(part, current)), current))
        jobs = [
            Job(replace(run, part=k), part, ids)
            for k, ((_, ids), part) in enumerate(zip(parts, problems, strict=True))
            for run in plan_runs(part, ids, self.engine, self.seed + self.stats["batches"], 1)
        ]
        part_of = {job.run.label: job.run.part or 0 for job in jobs}
        improved: set[int] = set()

        def offer(label: str, _cost: object, routes: Routes | None) -> None:
            if routes is None:
                return
            k = part_of[label]
            key = rank(problems[k], evaluate(problems[k], routes))
            if key < best[k][0]:
                best[k] = (key, {v: list(s) for v, s in routes.items() if s})
                improved.add(k)

        ends = min(self.deadline, time.time() + slice_s)

        def stop() -> bool:
            # The portfolio waits long past its deadline for a first answer (a whole day must get
            # one); a part need not: its routes are already in the plan.
            return time.time() > ends + GRACE_S or (self.should_stop is not None and self.should_stop())

        results = self.runner(
            jobs,
            cores=self.cores,
            deadline=ends,
            initial={v: s for _, current in best for v, s in current.items()},
            on_incumbent=offer,
            should_stop=stop,
        )
        for result in results:
            offer(result.run.label, None, result.routes)
        self.stats["parts_solved"] += len(parts)
        self.stats["parts_improved"] += len(improved)
        if improved:
            for k in improved:
                for vehicle_id in parts[k][0]:
                    self.routes.pop(vehicle_id, None)
                self.routes.update(best[k][1])
            self.incumbents.offer("split", 0, self.routes)
            self.take_best()  # the joined plan, or the incumbent if it ranks better after all
        return improved


def solve_split(
    problem: Problem,
    task_ids: Sequence[str],
    incumbents: _Incumbents,
    *,
    engine: str,
    seed: int,
    cores: int,
    deadline: float,
    should_stop: Callable[[], bool] | None,
    part_tasks: int = PART_TASKS,
    runner: PartRunner = LOCAL_PARTS,
) -> dict[str, int]:
    """Steps 2-4 of the module's doc, from the best plan in ``incumbents`` (step 1's; none is
    fine: the tasks themselves are swept), until ``deadline``: every better joined plan is
    offered to ``incumbents``. Batches hold ``runner.width(cores)`` parts. Returns counts for
    the plan's stats."""
    split = _Split(problem, task_ids, incumbents, engine, seed, cores, deadline, should_stop, runner)
    width = max(1, runner.width(cores))
    split.take_best()
    items = route_items(problem, split.routes, task_ids)
    groups = _sweep(items, part_tasks, 0.0)
    parts = _with_idle(problem, [_part_of_items(items, group) for group in groups])
    split.stats["parts"] = len(parts)
    batches = [parts[i : i + width] for i in range(0, len(parts), width)]
    for b, together in enumerate(batches):
        if split.stopped():
            return split.stats
        slice_s = split.slice_s(max(len(ids) for _, ids in together), len(batches) - b)
        split.solve_batch(together, slice_s)
    # Seams (POPMUSIC): every route is a seed once, those next to a cut of the parts first; a
    # route that a change touched is a seed again. Routes are known by vehicle, tasks no
    # route serves by their id.
    seams = [items[g[0]] for g in groups] + [items[g[-1]] for g in groups]
    untried = list(dict.fromkeys([_key(r) for r in seams] + [_key(r) for r in items]))
    items = route_items(problem, split.routes, task_ids)
    while untried and not split.stopped():
        index = {_key(r): i for i, r in enumerate(items)}
        untried = [k for k in untried if k in index]  # a route emptied, a task now served
        batch: list[list[int]] = []
        taken: set[int] = set()
        for key in list(untried):
            chosen = neighbourhood(items, index[key], part_tasks=part_tasks)
            if taken & set(chosen):
                continue  # it overlaps a neighbourhood of this batch: a later batch
            untried.remove(key)
            taken.update(chosen)
            batch.append(chosen)
            if len(batch) == width:
                break
        if not batch:
            break
        sub = [_part_of_items(items, chosen) for chosen in batch]
        if any(r.vehicle_id is None for r in items):
            # Tasks no route serves: the idle vehicles join the neighbourhoods, where they may help.
            used = {r.vehicle_id for r in items}
            _with_idle(problem, sub, [v.id for v in problem.vehicles if v.id not in used])
        split.stats["seams_tried"] += len(batch)
        improved = split.solve_batch(sub, split.slice_s(max(len(ids) for _, ids in sub), 1))
        if improved:
            touched = {v for k in improved for v in sub[k][0]}
            items = route_items(problem, split.routes, task_ids)
            again = [_key(r) for r in items if r.vehicle_id in touched or r.vehicle_id is None]
            untried = list(dict.fromkeys(again + untried))
    split.stats["converged"] = int(not untried)
    return split.stats


def _key(item: _Route) -> str:
    return item.vehicle_id if item.vehicle_id is not None else f"task:{item.task_ids[0]}"


def _part_of_items(items: Sequence[_Route], chosen: Sequence[int]) -> Part:
    vehicle_ids = [items[i].vehicle_id for i in chosen]
    return [v for v in vehicle_ids if v is not None], [t for i in chosen for t in items[i].task_ids]
