"""The independent evaluator: schedules by hand-checkable arithmetic and lists every violation."""

from __future__ import annotations

import pytest

from routing.errors import UnknownReferenceError
from routing.evaluate import evaluate
from routing.model import Break, Objective, TimeWindow
from routing.plan import StepKind, ViolationKind
from tests.routing.street import H, street_problem, team, visit


def kinds(evaluation: object) -> list[ViolationKind]:
    return [v.kind for v in evaluation.violations]  # type: ignore[attr-defined]


def test_schedule_adds_travel_service_and_leaves_late_enough_not_to_wait() -> None:
    # 1 km at 10 m/s = 100 s; the door opens at 09:00, so the team leaves at 08:58:20.
    problem = street_problem([visit("a", 1000, time_windows=(TimeWindow(9 * H, 10 * H),))], [team("t1")])
    route = evaluate(problem, {"t1": ["a"]}).routes[0]
    start, a, end = route.steps
    assert start.departure_s == 9 * H - 100
    assert (a.arrival_s, a.wait_s, a.start_s, a.departure_s) == (9 * H, 0, 9 * H, 9 * H + 360)
    assert end.arrival_s == 9 * H + 460
    assert (route.distance_m, route.travel_s) == (2000, 200)


def test_cost_is_travel_plus_fixed_cost_plus_penalties_of_missing_visits() -> None:
    problem = street_problem(
        [visit("a", 1000), visit("b", 500)],
        [team("t1", fixed_cost=50)],
        objective=Objective(duration_cost_per_s=1.0, distance_cost_per_m=0.5, unassigned_penalty=1000),
    )
    evaluation = evaluate(problem, {"t1": ["a"]})
    assert evaluation.travel_cost == 50 + 200 + 0.5 * 2000
    assert evaluation.missing == ("b",)
    assert evaluation.penalty == 1000


def test_arriving_after_the_last_window_is_late() -> None:
    problem = street_problem([visit("a", 1000, time_windows=(TimeWindow(0, 8 * H),))], [team("t1")])
    evaluation = evaluate(problem, {"t1": ["a"]})
    assert kinds(evaluation) == [ViolationKind.LATE]
    assert "after its last window 00:00-08:00 closed" in evaluation.violations[0].message


def test_a_second_window_is_used_when_the_first_has_closed() -> None:
    windows = (TimeWindow(7 * H, 8 * H), TimeWindow(13 * H, 14 * H))
    problem = street_problem([visit("a", 1000, time_windows=windows)], [team("t1")])
    evaluation = evaluate(problem, {"t1": ["a"]})
    assert evaluation.feasible
    assert evaluation.routes[0].steps[1].start_s == 13 * H


@pytest.mark.parametrize(
    ("vehicle", "routes", "expected"),
    [
        # 3 tubes + 3 tubes in a vehicle that carries 4
        (team("t1", capacity={"tubes": 4}), {"t1": ["a", "b"]}, ViolationKind.OVER_CAPACITY),
        # a paediatric visit by a team without the skill
        (team("t1"), {"t1": ["kid"]}, ViolationKind.MISSING_SKILL),
        # a shift that ends before the team is back
        (team("t1", shift=TimeWindow(8 * H, 8 * H + 300)), {"t1": ["a"]}, ViolationKind.SHIFT_OVERRUN),
        # a route longer than the team may work
        (team("t1", max_duration_s=400), {"t1": ["a", "b"]}, ViolationKind.MAX_DURATION),
        # the same visit twice
        (team("t1"), {"t1": ["a", "a"]}, ViolationKind.DUPLICATE_VISIT),
    ],
)
def test_each_rule_broken_is_listed(vehicle: object, routes: dict[str, list[str]], expected: ViolationKind) -> None:
    problem = street_problem(
        [
            visit("a", 1000, demand={"tubes": 3}),
            visit("b", 2000, demand={"tubes": 3}),
            visit("kid", 300, skills=frozenset({"paediatric"})),
        ],
        [vehicle],  # type: ignore[list-item]
    )
    assert expected in kinds(evaluate(problem, routes))


def test_a_break_is_taken_in_its_window_and_may_interrupt_a_drive() -> None:
    lunch = Break("lunch", TimeWindow(12 * H, 12 * H + 1800), 1800)
    problem = street_problem(
        [
            visit("a", 100, time_windows=(TimeWindow(11 * H, 11 * H + 60),)),
            visit("b", 50_000, time_windows=(TimeWindow(12 * H, 16 * H),)),
        ],
        [team("t1", breaks=(lunch,))],
    )
    evaluation = evaluate(problem, {"t1": ["a", "lunch", "b"]})
    assert evaluation.feasible, evaluation.violations
    steps = evaluation.routes[0].steps
    assert [s.kind for s in steps] == [StepKind.START, StepKind.VISIT, StepKind.BREAK, StepKind.VISIT, StepKind.END]
    a, brk, b = steps[1], steps[2], steps[3]
    assert brk.start_s == 12 * H and brk.departure_s == 12 * H + 1800
    # a 4990 s drive from a to b; the break at 12:00 interrupts it for 1800 s.
    assert b.arrival_s == a.departure_s + 4990 + 1800


def test_leaving_later_never_eats_into_the_walk_before_a_break() -> None:
    """The time walked before lunch is not waiting: the day may start later only by the idle time.

    Walking to "b" (20 min) fits before lunch opens at 11:00 if "a" ends by 10:40. Counting
    that walk as waiting once let the team leave 10 min too late and reach "b" at 11:50."""
    lunch = Break("lunch", TimeWindow(11 * H, 12 * H), 1800)
    problem = street_problem(
        [
            visit("a", 60, setup_s=600, per_person_s=0, time_windows=(TimeWindow(10 * H, 11 * H),)),
            visit("b", 1260, setup_s=600, per_person_s=0, time_windows=(TimeWindow(11 * H + 1800, 11 * H + 2400),)),
        ],
        [team("t1", profile="walk", breaks=(lunch,))],
    )
    evaluation = evaluate(problem, {"t1": ["a", "lunch", "b"]})
    assert evaluation.feasible, evaluation.violations
    _, a, brk, b, _ = evaluation.routes[0].steps
    assert a.departure_s <= 10 * H + 2400 and brk.start_s == 11 * H and b.start_s <= 11 * H + 2400
    assert brk.arrival_s == a.departure_s + 1200 and brk.wait_s == brk.start_s - brk.arrival_s  # walked, then idle


def test_a_break_the_route_works_through_is_missing_but_one_after_work_is_not() -> None:
    lunch = Break("lunch", TimeWindow(12 * H, 12 * H + 1800), 1800)
    late = [visit("a", 100, time_windows=(TimeWindow(15 * H, 16 * H),)), visit("b", 200)]
    problem = street_problem(late, [team("t1", breaks=(lunch,))])
    # a morning-only day ends before the window: the break is taken after work
    assert evaluate(problem, {"t1": ["b"]}).feasible
    # a day from 08:00 to 15:00+ with no break listed works through it
    early = street_problem(
        [*late, visit("c", 300, time_windows=(TimeWindow(8 * H, 9 * H),))], [team("t1", breaks=(lunch,))]
    )
    assert ViolationKind.BREAK_MISSING in kinds(evaluate(early, {"t1": ["c", "a"]}))


def test_open_end_finishes_at_the_last_service() -> None:
    problem = street_problem([visit("a", 1000)], [team("t1", end_depot=None)])
    route = evaluate(problem, {"t1": ["a"]}).routes[0]
    assert route.steps[-1].kind is StepKind.END
    assert route.steps[-1].arrival_s == route.steps[-2].departure_s
    assert route.distance_m == 1000


def test_speed_factor_stretches_travel() -> None:
    problem = street_problem([visit("a", 1000)], [team("bus", speed_factor=0.5)])
    assert evaluate(problem, {"bus": ["a"]}).routes[0].travel_s == 400


def test_unknown_ids_are_bad_input_not_violations() -> None:
    problem = street_problem([visit("a", 1000)], [team("t1")])
    with pytest.raises(UnknownReferenceError, match='"ghost" is not a site'):
        evaluate(problem, {"t1": ["ghost"]})
    with pytest.raises(UnknownReferenceError, match='"t9": not a vehicle'):
        evaluate(problem, {"t9": ["a"]})


def test_serving_a_visit_with_another_vehicle_than_before_costs_the_reassignment() -> None:
    problem = street_problem(
        [visit("a", 1000, preferred_vehicle="t1")],
        [team("t1"), team("t2")],
        objective=Objective(reassignment_cost=900),
    )
    assert evaluate(problem, {"t2": ["a"]}).travel_cost == evaluate(problem, {"t1": ["a"]}).travel_cost + 900
