"""The safety net: a plan that breaks a rule is mended before it is returned."""

from __future__ import annotations

from routing.evaluate import evaluate
from routing.model import Break, TimeWindow
from routing.solver.repair import make_feasible
from tests.routing.street import H, district_problem, lab, street_problem, team, visit


def test_a_long_wait_between_samples_gets_a_lab_drop_in_between() -> None:
    problem = district_problem(
        vehicles=[team("t1")],
        visits=[
            visit("morning", 500, demand={"tubes": 1}, time_windows=(TimeWindow(9 * H, 10 * H),)),
            visit("afternoon", 800, demand={"tubes": 1}, time_windows=(TimeWindow(14 * H, 15 * H),)),
        ],
        labs=[lab("lab", 1000)],
    )
    routes, removed = make_feasible(problem, {"t1": ["morning", "afternoon", "lab"]})
    assert routes == {"t1": ["morning", "lab", "afternoon", "lab"]} and removed == []
    assert evaluate(problem, routes).feasible


def test_a_forgotten_final_drop_and_break_are_added() -> None:
    lunch = Break("lunch", TimeWindow(11 * H, 12 * H), 1800)
    problem = district_problem(
        vehicles=[team("t1", breaks=(lunch,))],
        visits=[
            visit("a", 500, demand={"tubes": 1}, time_windows=(TimeWindow(10 * H, 11 * H),)),
            visit("b", 600, demand={"tubes": 1}, time_windows=(TimeWindow(12 * H, 13 * H),)),
        ],
        labs=[lab("lab", 1000)],
    )
    routes, removed = make_feasible(problem, {"t1": ["a", "b"]})
    assert removed == [] and routes["t1"][-1] == "lab" and "lunch" in routes["t1"]
    assert evaluate(problem, routes).feasible


def test_a_visit_that_cannot_be_on_time_is_taken_out() -> None:
    problem = street_problem(
        [visit("early", 1000, time_windows=(TimeWindow(8 * H, 8 * H + 60),)), visit("late", 9000)],
        [team("t1")],
    )
    routes, removed = make_feasible(problem, {"t1": ["late", "early"]})
    assert removed == ["early"] and routes == {"t1": ["late"]}


def test_each_route_is_mended_on_its_own_and_a_visit_in_two_routes_is_kept_in_one() -> None:
    problem = street_problem(
        [
            visit("early", 1000, time_windows=(TimeWindow(8 * H, 8 * H + 60),)),
            visit("late", 9000),
            visit("early-too", 1200, time_windows=(TimeWindow(8 * H, 8 * H + 60),)),
            visit("far", 8000),
            visit("shared", 3000),
        ],
        [team("t1"), team("t2")],
    )
    # Each team reaches its early visit too late; both teams were given "shared".
    routes, removed = make_feasible(
        problem, {"t1": ["late", "early", "shared"], "t2": ["far", "early-too", "shared"]}
    )
    assert sorted(removed) == ["early", "early-too", "shared"]
    assert sorted(t for order in routes.values() for t in order) == ["far", "late", "shared"]
    assert evaluate(problem, routes).feasible
