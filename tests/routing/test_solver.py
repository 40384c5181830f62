"""Each rule the solver must respect, proved on a tiny problem and checked by the evaluator.

Most tests run one engine in-process for speed; the portfolio (worker processes) has its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from routing.errors import ProblemError
from routing.evaluate import evaluate
from routing.model import Break, Objective, Priority, Problem, TimeWindow
from routing.plan import Plan, Reason, StepKind
from routing.solver import Progress, rank, solve
from tests.routing.street import H, street_problem, team, visit

ENGINES = ["ortools", "pyvrp", "vroom"]


def solved(problem: Problem, engine: str = "ortools", **kwargs: object) -> Plan:
    plan = solve(problem, time_limit_s=1.0, seed=1, engine=engine, in_process=True, **kwargs)  # type: ignore[arg-type]
    # The plan's own verdict and a fresh evaluation of its order must agree: feasible.
    assert plan.violations == ()
    again = evaluate(problem, {r.vehicle_id: [s.id for s in r.steps[1:-1]] for r in plan.routes})
    assert again.feasible, again.violations
    assert {u.visit_id for u in plan.unassigned} == set(again.missing)
    return plan


def route_of(plan: Plan, visit_id: str) -> str:
    return next(r.vehicle_id for r in plan.routes if visit_id in r.visit_ids)


@pytest.mark.parametrize("engine", ENGINES)
def test_tiny_instance_reaches_its_known_optimum(engine: str) -> None:
    # Four doors along one street, one team: the optimum goes out and back once (2 x 4 km).
    problem = street_problem([visit("c", 3000), visit("a", 1000), visit("d", 4000), visit("b", 2000)], [team("t1")])
    plan = solved(problem, engine)
    assert plan.route("t1").distance_m == 8000
    assert plan.unassigned == ()


@pytest.mark.parametrize("engine", ENGINES)
def test_capacity_splits_visits_across_vehicles(engine: str) -> None:
    problem = street_problem(
        [visit(f"v{i}", 1000 * (i + 1), demand={"tubes": 3}) for i in range(4)],
        [team("t1", capacity={"tubes": 6}), team("t2", capacity={"tubes": 6})],
    )
    plan = solved(problem, engine)
    assert [len(r.visit_ids) for r in plan.routes] == [2, 2]
    assert all(r.steps[-1].load["tubes"] <= 6 for r in plan.routes)


@pytest.mark.parametrize("engine", ENGINES)
def test_several_time_windows_serve_in_one_of_them(engine: str) -> None:
    windows = (TimeWindow(9 * H, 9 * H + 600), TimeWindow(14 * H, 14 * H + 600))
    problem = street_problem(
        [visit("twice", 1000, time_windows=windows), visit("noon", 1000, time_windows=(TimeWindow(12 * H, 13 * H),))],
        [team("t1")],
    )
    plan = solved(problem, engine)
    start = next(s.start_s for s in plan.route("t1").steps if s.id == "twice")
    assert any(w.start_s <= start <= w.end_s for w in windows)


def test_service_time_is_setup_plus_people() -> None:
    problem = street_problem([visit("family", 500, people=4, setup_s=420, per_person_s=90)], [team("t1")])
    step = next(s for s in solved(problem).route("t1").steps if s.id == "family")
    assert step.departure_s - step.start_s == 420 + 4 * 90


def test_skills_send_the_visit_to_the_team_that_has_them() -> None:
    problem = street_problem(
        [visit("baby", 1000, skills=frozenset({"paediatric"})), visit("elder", 1200)],
        [team("plain", fixed_cost=0), team("paeds", skills=frozenset({"paediatric"}), fixed_cost=10_000)],
    )
    plan = solved(problem)
    assert route_of(plan, "baby") == "paeds"


@pytest.mark.parametrize("engine", ENGINES)
def test_fixed_cost_keeps_the_expensive_vehicle_home(engine: str) -> None:
    problem = street_problem(
        [visit("a", 1000), visit("b", 1500)],
        [team("van", fixed_cost=100_000, profile="drive"), team("walker", fixed_cost=0, profile="drive")],
    )
    plan = solved(problem, engine)
    assert not plan.route("van").is_used
    assert plan.route("walker").visit_ids


def test_shift_window_decides_who_can_come() -> None:
    problem = street_problem(
        [visit("late", 1000, time_windows=(TimeWindow(15 * H, 16 * H),))],
        [team("morning", shift=TimeWindow(8 * H, 12 * H)), team("afternoon", shift=TimeWindow(12 * H, 18 * H))],
    )
    assert route_of(solved(problem), "late") == "afternoon"


def test_max_duration_splits_the_day() -> None:
    problem = street_problem(
        [visit(f"v{i}", 100 * i, setup_s=1800, per_person_s=0) for i in range(1, 5)],
        [team("t1", max_duration_s=2 * H), team("t2", max_duration_s=2 * H)],
    )
    plan = solved(problem)
    assert all(r.duration_s <= 2 * H for r in plan.routes)
    assert plan.unassigned == ()


def test_breaks_are_scheduled_inside_a_long_day() -> None:
    lunch = Break("lunch", TimeWindow(11 * H + 1800, 13 * H + 1800), 1800)
    problem = street_problem(
        [
            visit("morning", 500, time_windows=(TimeWindow(9 * H, 10 * H),)),
            visit("afternoon", 800, time_windows=(TimeWindow(14 * H, 15 * H),)),
        ],
        [team("t1", breaks=(lunch,))],
    )
    plan = solved(problem)
    kinds = [s.kind for s in plan.route("t1").steps]
    assert StepKind.BREAK in kinds
    brk = next(s for s in plan.route("t1").steps if s.kind is StepKind.BREAK)
    assert lunch.window.start_s <= brk.start_s <= lunch.window.end_s


def test_every_incumbent_the_ortools_search_reports_has_its_breaks() -> None:
    """Incumbents are judged by the evaluator as they come: one without its lunch break would
    count as broken, and a long solve's progress (and best-so-far) would stall on the first."""
    from routing.solver.ortools_engine import solve_ortools

    lunch = Break("lunch", TimeWindow(11 * H, 13 * H), 1800)
    problem = street_problem(
        [visit(f"v{i}", 150 * i, setup_s=1800, per_person_s=0) for i in range(1, 11)],  # 5 h of doors
        [team("t1", breaks=(lunch,))],
    )
    seen: list[dict[str, list[str]]] = []
    final = solve_ortools(problem, [v.id for v in problem.visits], deadline=time.time() + 1.0,
                          on_incumbent=lambda _cost, routes: seen.append(routes))
    assert seen and seen[-1] == final
    for routes in seen:
        assert all("lunch" in order for order in routes.values()), routes
        assert evaluate(problem, routes).feasible


@pytest.mark.parametrize("engine", ENGINES)
def test_open_end_and_separate_depots(engine: str) -> None:
    problem = street_problem(
        [visit("a", 1000), visit("b", 2000)],
        [team("bus", start_depot="north", end_depot=None), team("van", start_depot="north", end_depot="south")],
        depots=(("north", 0.0), ("south", 5000.0)),
    )
    plan = solved(problem, engine)
    used = plan.used_routes
    assert len(used) == 1
    assert used[0].vehicle_id == "bus"  # open end: no trip back costs nothing
    assert used[0].distance_m == 2000


def test_walk_and_drive_profiles_and_speed_factor() -> None:
    problem = street_problem(
        [visit("a", 1000)],
        [team("walker", profile="walk"), team("bus", profile="drive", speed_factor=0.5)],
    )
    plan = solved(problem)
    assert route_of(plan, "a") == "bus"  # 400 s by slow bus beats 2000 s on foot
    assert plan.route("bus").travel_s == 400


@pytest.mark.parametrize("engine", ENGINES)
def test_quarantine_goes_first_when_the_fleet_is_short(engine: str) -> None:
    problem = street_problem(
        [
            visit("routine", 1000, demand={"tubes": 5}),
            visit("quarantine", 1000, demand={"tubes": 5}, priority=Priority.QUARANTINE),
        ],
        [team("t1", capacity={"tubes": 5})],
    )
    # PyVRP cannot leave a required visit out: its prize-collecting twin can.
    plan = solved(problem, engine) if engine != "pyvrp" else solve(problem, time_limit_s=1.0, seed=1, cores=1)
    assert plan.route("t1").visit_ids == ["quarantine"]
    assert [(u.visit_id, u.reason) for u in plan.unassigned] == [("routine", Reason.FLEET_FULL)]
    assert "tubes" in plan.unassigned[0].detail


def test_optional_visit_is_served_when_its_penalty_outweighs_the_trip() -> None:
    problem = street_problem([visit("worth_it", 9000, required=False, penalty=1_000_000)], [team("t1")])
    plan = solved(problem)
    assert plan.route("t1").visit_ids == ["worth_it"]


def test_optional_visit_alone_far_away_is_not_worth_serving() -> None:
    problem = street_problem([visit("far", 9000, required=False, penalty=10)], [team("t1")])
    plan = solved(problem)
    assert [(u.visit_id, u.reason) for u in plan.unassigned] == [("far", Reason.NOT_WORTH_SERVING)]


def test_every_reason_code_for_visits_that_cannot_be_served() -> None:
    problem = street_problem(
        [
            visit("needs_paeds", 100, skills=frozenset({"paediatric"})),
            visit("huge_school", 200, demand={"tubes": 600}),
            visit("too_far", 500_000, time_windows=(TimeWindow(9 * H, 9 * H + 60),)),
            visit("fine", 300, demand={"tubes": 1}),
        ],
        [team("t1", capacity={"tubes": 50})],
    )
    plan = solved(problem)
    reasons = {u.visit_id: u.reason for u in plan.unassigned}
    assert reasons == {
        "needs_paeds": Reason.NO_SKILLED_VEHICLE,
        "huge_school": Reason.OVER_CAPACITY,
        "too_far": Reason.UNREACHABLE,
    }
    assert plan.route("t1").visit_ids == ["fine"]
    assert all(u.detail for u in plan.unassigned)


@pytest.mark.parametrize("engine", ENGINES)
def test_same_seed_same_plan(engine: str) -> None:
    problem = street_problem(
        [visit(f"v{i}", 700 * i, demand={"tubes": 1}) for i in range(1, 9)],
        [team("t1", capacity={"tubes": 4}), team("t2", capacity={"tubes": 4})],
    )
    first, second = solved(problem, engine), solved(problem, engine)
    assert [r.visit_ids for r in first.routes] == [r.visit_ids for r in second.routes]


def test_portfolio_in_worker_processes_reports_progress_and_honours_stop() -> None:
    problem = street_problem(
        [visit(f"v{i}", 300 * i, demand={"tubes": 1}) for i in range(1, 30)],
        [team(f"t{k}", capacity={"tubes": 10}) for k in range(4)],
    )
    seen: list[Progress] = []
    plan = solve(problem, time_limit_s=30, seed=3, on_progress=seen.append, should_stop=lambda: len(seen) > 0)
    assert seen and seen[0].assigned > 0
    assert plan.solve_s < 15  # stopped long before the limit, with the best plan so far
    assert plan.violations == () and plan.unassigned == ()


def test_unknown_engine_and_bad_time_limit_are_input_errors() -> None:
    problem = street_problem([visit("a", 100)], [team("t1")])
    with pytest.raises(ProblemError, match="engine must be one of auto, ortools, pyvrp, vroom"):
        solve(problem, time_limit_s=1, engine="cplex")
    with pytest.raises(ProblemError, match="time_limit_s must be > 0"):
        solve(problem, time_limit_s=0)
    breaks = street_problem([visit("a", 100)], [team("t1", breaks=(Break("b", TimeWindow(0, 10), 60),))])
    with pytest.raises(ProblemError, match="engine pyvrp cannot model crew breaks"):
        solve(breaks, time_limit_s=1, engine="pyvrp")


def test_a_makespan_cost_spreads_the_doors_over_the_teams() -> None:
    """Travel time alone sends one team down the street for all six doors (the other stays home);
    pricing the makespan gets both out and everyone home sooner, for a little more walking."""
    doors = [visit(f"v{i}", 100 * i, setup_s=1800, per_person_s=0) for i in range(1, 7)]
    teams = [team("t1", profile="walk"), team("t2", profile="walk")]
    packed = solved(street_problem(doors, teams))
    spread_problem = street_problem(doors, teams, objective=Objective(makespan_cost_per_s=1.0))
    spread = solved(spread_problem)

    def last_return(plan: Plan) -> float:
        return max(r.steps[-1].start_s for r in plan.used_routes)

    assert len(packed.used_routes) == 1 and len(spread.used_routes) == 2
    assert last_return(spread) <= last_return(packed) - 2 * 1800
    evaluation = evaluate(spread_problem, {r.vehicle_id: [s.id for s in r.steps[1:-1]] for r in spread.routes})
    first_out = min(r.steps[0].start_s for r in spread.used_routes)
    assert evaluation.makespan_cost == last_return(spread) - first_out
    assert evaluation.cost == evaluation.travel_cost + evaluation.makespan_cost + evaluation.penalty
    from routing.solver.pyvrp_engine import pyvrp_unsupported

    assert pyvrp_unsupported(spread_problem, [v.id for v in spread_problem.visits]) == "a makespan cost"


def test_objective_weights_change_what_is_cheapest() -> None:
    # Distance-only cost: walking 1 km costs the same as driving it; fixed cost decides.
    problem = street_problem(
        [visit("a", 1000)],
        [team("walker", profile="walk", fixed_cost=1), team("bus", fixed_cost=5)],
        objective=Objective(duration_cost_per_s=0.0, distance_cost_per_m=1.0),
    )
    assert route_of(solved(problem), "a") == "walker"


def test_pyvrp_fleet_first_finds_the_smaller_fleet_and_falls_back_to_prizes_when_short() -> None:
    import time

    from routing.solver.pyvrp_engine import solve_pyvrp

    roomy = street_problem(
        [visit(f"v{i}", 500 * i, demand={"tubes": 1}) for i in range(1, 7)],
        [team(f"t{k}", capacity={"tubes": 3}, fixed_cost=1000) for k in range(4)],
    )
    routes = solve_pyvrp(roomy, [v.id for v in roomy.visits], deadline=time.time() + 1.5, seed=1, fleet_first=True)
    assert routes is not None and len(routes) == 2
    short = street_problem(
        [visit(f"v{i}", 500 * i, demand={"tubes": 2}) for i in range(1, 5)],
        [team("t1", capacity={"tubes": 4}, fixed_cost=1000)],
    )
    routes = solve_pyvrp(short, [v.id for v in short.visits], deadline=time.time() + 1.5, seed=1, fleet_first=True)
    assert routes is not None and sum(len(r) for r in routes.values()) == 2  # the rest left out, not None


def test_explaining_many_optional_visits_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from routing.solver import reasons

    monkeypatch.setattr(reasons, "INSERTION_CHECKS", 3)
    problem = street_problem(
        [visit(f"far{i}", 9000 + i, required=False, penalty=1) for i in range(20)], [team("t1")]
    )
    plan = solved(problem)
    assert len(plan.unassigned) == 20
    assert {u.reason for u in plan.unassigned} == {Reason.NOT_WORTH_SERVING}


# A caller that solves for a minute; with "threads" it has a second thread, so its engines start
# from a forkserver (as in the service's workers), otherwise they are forked from it directly.
LONG_SOLVE = """
import sys, threading, time
from routing.solver import solve
from tests.routing.street import street_problem, team, visit
if sys.argv[1] == "threads":
    threading.Thread(target=time.sleep, args=(120,), daemon=True).start()
problem = street_problem([visit(f"v{i}", 300 * i) for i in range(1, 40)], [team(f"t{k}") for k in range(4)])
print("solving", flush=True)
solve(problem, time_limit_s=60, seed=1, engine="ortools", cores=2)
"""


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signals are Linux's")
@pytest.mark.parametrize("mode", ["fork", "threads"])
def test_engines_stop_when_their_caller_is_killed(mode: str) -> None:
    root = Path(__file__).parents[2]
    with subprocess.Popen([sys.executable, "-c", LONG_SOLVE, mode], cwd=root, stdout=subprocess.PIPE,
                          text=True) as caller:
        try:
            assert caller.stdout is not None and caller.stdout.readline().strip() == "solving"
            deadline = time.monotonic() + 20
            engines: set[int] = set()
            while time.monotonic() < deadline and not engines:
                time.sleep(0.2)
                engines = {p for p in _descendants(caller.pid) if _running(p)}
            assert engines, "the solve started no engine process"
            time.sleep(1.0)  # the engines are searching
            os.kill(caller.pid, signal.SIGKILL)
            caller.wait(timeout=10)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(_running(p) for p in engines):
                time.sleep(0.2)
            assert not any(_running(p) for p in engines), "engine processes outlived their caller"
        finally:
            if caller.poll() is None:
                caller.kill()


def test_serving_more_households_beats_travelling_less_whatever_the_weights() -> None:
    # Two doors 4 km apart on foot; at 100,000 per second walked, leaving one out "costs" less
    # (its penalty is 10 million) than the walk to it. Nobody may be missed: both are served.
    problem = street_problem(
        [visit("near", 100), visit("far", 4000)],
        [team("t1", profile="walk")],
        objective=Objective(duration_cost_per_s=100_000),
    )
    both, one = evaluate(problem, {"t1": ["near", "far"]}), evaluate(problem, {"t1": ["near"]})
    assert one.cost < both.cost
    assert rank(problem, both) < rank(problem, one)
    plan = solve(problem, time_limit_s=2.0, seed=1)
    assert plan.unassigned == ()


def test_the_most_urgent_class_is_counted_first() -> None:
    problem = street_problem(
        [visit("routine-1", 100), visit("routine-2", 200), visit("quarantine", 300, priority=Priority.QUARANTINE)],
        [team("t1")],
    )
    # Two routine households left out rank better than one quarantined household left out.
    two_routine = evaluate(problem, {"t1": ["quarantine"]})
    one_quarantine = evaluate(problem, {"t1": ["routine-1", "routine-2"]})
    assert rank(problem, two_routine) < rank(problem, one_quarantine)


def test_a_converged_small_problem_answers_long_before_its_time_limit() -> None:
    problem = street_problem(
        [visit("a", 300, demand={"tubes": 1}), visit("b", 900, demand={"tubes": 1})],
        [team("t1", breaks=(Break("lunch", TimeWindow(12 * H, 13 * H), 1800),)), team("t2")],
    )
    plan = solve(problem, time_limit_s=20, seed=1)
    assert plan.stats["converged"] is True
    assert plan.solve_s < 10  # half the budget: the search stopped itself, not the deadline
    assert plan.unassigned == () and plan.violations == ()


def test_a_request_may_ask_for_the_whole_budget() -> None:
    problem = street_problem([visit("a", 300)], [team("t1")])
    plan = solve(problem, time_limit_s=1.5, seed=1, full_budget=True)
    assert plan.stats["converged"] is False
    assert plan.solve_s >= 1.4


@pytest.mark.parametrize("engine", ["auto", "ortools", "vroom"])
def test_engines_that_start_after_the_deadline_still_answer(engine: str) -> None:
    # A budget shorter than an engine process's start, as on a loaded machine: the plan must
    # still serve the households, not list them all unassigned for want of an answer.
    problem = street_problem([visit("a", 300), visit("b", 900), visit("c", 1500)], [team("t1"), team("t2")])
    plan = solve(problem, time_limit_s=0.001, seed=1, engine=engine)
    assert plan.unassigned == () and plan.violations == ()


def test_a_portfolio_whose_engines_start_past_the_deadline_waits_for_their_first_answer() -> None:
    from routing.solver.portfolio import GRACE_S, EngineRun, Job, run_portfolio

    # The engine processes start when the deadline and its grace have passed already (a loaded
    # machine: process start and imports took longer than the whole budget).
    problem = street_problem([visit("a", 300), visit("b", 900)], [team("t1")])
    late = time.time() - GRACE_S - 1.0
    results = run_portfolio([Job(EngineRun("ortools", 1), problem, ["a", "b"])], deadline=late)
    assert results[0].routes is not None and sorted(results[0].routes["t1"]) == ["a", "b"]
