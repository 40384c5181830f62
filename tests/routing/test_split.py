"""Large days split into parts, solved side by side, joined, improved across the seams.

A 120-visit day from the project's generator stands in for a large one: the threshold and the
part size are lowered by parameter, so the split search runs its three parts and its seams in
seconds. Every plan is judged by the independent evaluator.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import pytest

from routing.errors import ProblemError
from routing.evaluate import evaluate
from routing.matrix import travel_matrix
from routing.model import Depot, Problem, Visit
from routing.network import RoadNetwork
from routing.plan import Plan
from routing.scenarios import home_visit_scenario
from routing.solver import Progress, SolveParams, rank, solve
from routing.solver.portfolio import Job, RunResult
from routing.solver.split import LOCAL_PARTS, sweep_parts

VISITS, TEAMS = 120, 6
PART_TASKS = 40
"""Three parts of about 40 visits."""
BUDGET_S = 12.0


@pytest.fixture(scope="module")
def day(aguascalientes_walk: RoadNetwork, aguascalientes_drive: RoadNetwork) -> Problem:
    """120 home visits for 6 teams on foot and by van: skills, lunch breaks, several windows."""
    depots, vehicles, visits = home_visit_scenario(
        aguascalientes_walk, aguascalientes_drive, visits=VISITS, teams=TEAMS, seed=2
    )
    sites: list[Depot | Visit] = [*depots, *visits]
    points, ids = [s.location for s in sites], [s.id for s in sites]
    matrices = {
        "walk": travel_matrix(aguascalientes_walk, points, ids=ids),
        "drive": travel_matrix(aguascalientes_drive, points, ids=ids),
    }
    return Problem(depots=depots, vehicles=vehicles, visits=visits, matrices=matrices)


@pytest.fixture(scope="module")
def whole(day: Problem) -> Plan:
    """The day solved whole (split off), the baseline."""
    return solve(day, SolveParams(time_limit_s=BUDGET_S, split=False, full_budget=True, seed=1))


def orders(plan: Plan) -> dict[str, list[str]]:
    return {r.vehicle_id: [s.id for s in r.steps[1:-1]] for r in plan.routes if r.task_ids}


def test_parts_partition_the_tasks_and_the_vehicles_and_never_cut_a_route(day: Problem, whole: Plan) -> None:
    tasks = [v.id for v in day.visits]
    parts = sweep_parts(day, orders(whole), tasks, part_tasks=PART_TASKS)
    assert len(parts) == round(VISITS / PART_TASKS)
    vehicles_of_parts = [v for vehicle_ids, _ in parts for v in vehicle_ids]
    tasks_of_parts = [t for _, ids in parts for t in ids]
    assert sorted(vehicles_of_parts) == sorted(v.id for v in day.vehicles)  # each vehicle once
    assert sorted(tasks_of_parts) == sorted(tasks)  # each task once, those left out too
    part_of_task = {t: k for k, (_, ids) in enumerate(parts) for t in ids}
    part_of_vehicle = {v: k for k, (vehicle_ids, _) in enumerate(parts) for v in vehicle_ids}
    for route in whole.used_routes:
        assert {part_of_task[t] for t in route.task_ids} == {part_of_vehicle[route.vehicle_id]}


def test_parts_of_a_day_without_routes_are_swept_from_its_tasks(day: Problem) -> None:
    tasks = [v.id for v in day.visits]
    parts = sweep_parts(day, {}, tasks, part_tasks=PART_TASKS)
    assert sorted(t for _, ids in parts for t in ids) == sorted(tasks)
    assert all(vehicle_ids for vehicle_ids, _ in parts)  # every part has a fleet for its work


def test_a_split_day_serves_everyone_the_whole_day_serves_and_is_feasible(day: Problem, whole: Plan) -> None:
    # auto chooses the split above the (lowered) threshold
    params = SolveParams(time_limit_s=BUDGET_S, split_above_tasks=VISITS // 2, part_tasks=PART_TASKS, seed=1)
    plan = solve(day, params)
    assert "split" in plan.stats and plan.stats["split"]["parts"] == 3  # type: ignore[index]
    evaluation = evaluate(day, orders(plan))
    assert evaluation.feasible and plan.violations == ()
    # Nobody may be missed: no more required visits left out, class by class, than the whole day.
    assert rank(day, evaluation)[:3] <= rank(day, evaluate(day, orders(whole)))[:3]
    served = {t for r in plan.routes for t in r.task_ids}
    explained = {u.visit_id for u in plan.unassigned}
    assert served | explained == {v.id for v in day.visits} and not served & explained
    assert all(u.reason and u.detail for u in plan.unassigned)


class Elsewhere:
    """A part runner with one slot more than the solve's cores (as the Celery runner's parts on
    another worker): it records the parts of each batch and searches them here, or loses every
    answer (workers that never answer)."""

    def __init__(self, *, lose: bool = False) -> None:
        self.lose = lose
        self.batches: list[list[int]] = []

    def width(self, cores: int) -> int:
        return cores + 1

    def __call__(
        self,
        jobs: Sequence[Job],
        *,
        cores: int,
        deadline: float,
        initial: Mapping[str, Sequence[str]] | None,
        on_incumbent: Callable[..., object] | None,
        should_stop: Callable[[], bool] | None,
    ) -> list[RunResult]:
        self.batches.append(sorted({job.run.part or 0 for job in jobs}))
        if self.lose:
            return [RunResult(job.run, None, "did not come back in time") for job in jobs]
        return LOCAL_PARTS(jobs, cores=cores, deadline=deadline, initial=initial, on_incumbent=on_incumbent,
                           should_stop=should_stop)


def test_a_part_runner_gets_batches_as_wide_as_its_slots_and_its_answers_make_the_plan(
    day: Problem, whole: Plan
) -> None:
    runner = Elsewhere()
    params = SolveParams(time_limit_s=BUDGET_S, split=True, part_tasks=PART_TASKS, seed=1, cores=2)
    plan = solve(day, params, part_runner=runner)
    assert runner.batches[0] == [0, 1, 2]  # all three parts at once: two cores and one slot elsewhere
    assert max(len(batch) for batch in runner.batches) == 3
    evaluation = evaluate(day, orders(plan))
    assert evaluation.feasible and plan.violations == ()
    assert rank(day, evaluation)[:3] <= rank(day, evaluate(day, orders(whole)))[:3]


def test_parts_that_never_come_back_leave_the_constructed_plan_whole(day: Problem) -> None:
    runner = Elsewhere(lose=True)
    started = time.monotonic()
    plan = solve(day, SolveParams(time_limit_s=BUDGET_S, split=True, part_tasks=PART_TASKS, seed=1),
                 part_runner=runner)
    assert time.monotonic() - started < BUDGET_S + 10
    assert runner.batches and plan.engine != "split"  # no part improved: the construction's plan
    assert plan.violations == () and evaluate(day, orders(plan)).feasible
    served = {t for r in plan.routes for t in r.task_ids}
    assert served | {u.visit_id for u in plan.unassigned} == {v.id for v in day.visits}
    assert len(served) >= 0.9 * VISITS  # a plan, not an empty one


def test_should_stop_ends_a_split_solve_promptly_with_the_best_plan(day: Problem) -> None:
    seen: list[Progress] = []
    params = SolveParams(time_limit_s=60, split=True, part_tasks=PART_TASKS, seed=1)
    started = time.monotonic()
    plan = solve(day, params, on_progress=seen.append, should_stop=lambda: any(p.engine == "split" for p in seen))
    assert time.monotonic() - started < 20  # the parts' engines stopped too, long before 60 s
    assert seen[-1].engine == "split"
    assert plan.engine == "split" and plan.violations == ()
    assert VISITS - len(plan.unassigned) == seen[-1].assigned  # the best plan so far, not a fresh one


def test_a_small_day_is_not_split_unless_asked(day: Problem) -> None:
    plan = solve(day.subproblem([v.id for v in day.vehicles], [v.id for v in day.visits[:8]]), time_limit_s=5)
    assert "split" not in plan.stats


@pytest.mark.parametrize(
    ("engine", "tasks", "splits"),
    [
        ("vroom", 400, False), ("vroom", 401, True),  # home-visit days
        ("ortools", 600, False), ("ortools", 601, True),  # days with labs or stops
        ("pyvrp", 5000, False),  # fleet minimisation needs the whole day
    ],
)  # fmt: skip
def test_auto_splits_each_engines_days_above_the_size_measured_for_it(engine: str, tasks: int, splits: bool) -> None:
    from routing.solver import _splits
    from routing.solver.engine import EngineRun
    from routing.solver.registry import engine_named

    runs = [EngineRun(engine_named(engine), 1)]
    assert _splits(SolveParams(time_limit_s=60), [f"v-{i}" for i in range(tasks)], runs) is splits


@pytest.mark.parametrize(
    ("settings", "field", "message"),
    [
        # Not a yes/no: "auto" is None, not a string.
        ({"split": "auto"}, "split", "split must be true, false or null, got 'auto'"),
        # No day has fewer than one task to split above.
        ({"split_above_tasks": 0}, "split_above_tasks", "split_above_tasks must be >= 1, got 0"),
        # A part too small to be worth an engine process.
        ({"part_tasks": 3}, "part_tasks", "part_tasks must be >= 10, got 3"),
        # Parts run in engine processes, side by side.
        ({"split": True, "in_process": True}, "split", "split needs engine processes"),
    ],
)
def test_bad_split_params_name_their_field(settings: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(ProblemError, match=message) as error:
        SolveParams(time_limit_s=1, **settings)  # type: ignore[arg-type]
    assert error.value.path == (field,)
