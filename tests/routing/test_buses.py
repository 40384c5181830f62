"""Sampling buses: stop choice, coverage, dwell, green channels, lab drops and sample age.

Every solver result is checked by the independent evaluator (through ``solved``).
"""

from __future__ import annotations

import time

import pytest

from routing.coverage import choose_stops
from routing.evaluate import evaluate
from routing.model import Break, TimeWindow
from routing.plan import Plan, Reason, StepKind, ViolationKind
from routing.solver import solve
from routing.solver.ortools_engine import solve_ortools
from tests.routing.street import DAY, H, bus, district_problem, lab, stop, team, visit


def solved(problem: object, **kwargs: object) -> Plan:
    plan = solve(problem, time_limit_s=2.0, seed=1, engine="ortools", in_process=True, **kwargs)  # type: ignore[arg-type]
    assert plan.violations == (), plan.violations
    return plan


def steps_of(plan: Plan, vehicle_id: str) -> list[tuple[StepKind, str]]:
    return [(s.kind, s.id) for s in plan.route(vehicle_id).steps[1:-1]]


def test_dwell_is_setup_plus_people_through_the_lanes() -> None:
    problem = district_problem(
        vehicles=[bus("b1", lanes=2, seconds_per_person=20)],
        stops=[stop("plaza", 2000, people=100, setup_s=600, required=True)],
    )
    step = next(s for s in solved(problem).route("b1").steps if s.id == "plaza")
    assert step.kind is StepKind.STOP
    assert step.service_s == 600 + 100 * 20 / 2
    assert step.people == 100


def test_areas_are_covered_within_walking_range_and_far_ones_say_why() -> None:
    problem = district_problem(
        vehicles=[bus("b1")],
        stops=[stop("north", 1000), stop("south", 3000)],
        areas=[("compound", 1200, 300), ("village", 2900, 120), ("farm", 9000, 15)],
    )
    plan = solved(problem)
    cover = {a.area_id: a for a in plan.coverage}
    assert cover["compound"].stop_id == "north" and cover["compound"].walk_m == 200
    assert cover["village"].stop_id == "south" and cover["village"].walk_m == 100
    assert cover["farm"].reason is Reason.NO_STOP_IN_WALKING_RANGE
    assert "limit 400 m" in cover["farm"].detail
    people = {s.id: s.people for s in plan.route("b1").steps if s.kind is StepKind.STOP}
    assert people == {"north": 300, "south": 120}
    assert plan.summary()["people_covered"] == 420


def test_one_stop_covers_two_areas_instead_of_two_stops() -> None:
    # "mid" reaches both areas; the selection prefers one stop to two.
    problem = district_problem(
        vehicles=[bus("b1")],
        stops=[stop("west", 1000), stop("mid", 1300), stop("east", 1600)],
        areas=[("a", 1000, 50), ("b", 1600, 50)],
    )
    plan = solved(problem)
    assert [s.id for s in plan.route("b1").steps if s.kind is StepKind.STOP] == ["mid"]


def test_the_router_picks_the_car_park_that_suits_the_route() -> None:
    # Both car parks reach the compound. By the selection's own estimate "far" is cheaper (a
    # neighbour 100 m away), so it is chosen, with "near" as its stand-in; the route from the
    # depot at 0 and back is 800 m shorter through "near", so the router serves that one.
    problem = district_problem(
        vehicles=[bus("b1")],
        stops=[stop("near", 1800), stop("far", 2200), stop("other", 2300)],
        areas=[("compound", 2000, 150)],
        walk_limit_m=250,
    )
    choice = choose_stops(problem)
    assert [s.id for s in choice.stops] == ["far"] and [s.id for s in choice.stand_ins["far"]] == ["near"]
    assert {s.group for s in choice.routed_stops} == {"choice:far"}
    plan = solved(problem)
    assert [s.id for s in plan.route("b1").steps if s.kind is StepKind.STOP] == ["near"]
    assert plan.coverage[0].stop_id == "near" and plan.coverage[0].walk_m == 200
    assert plan.unassigned == ()  # neither the chosen stop nor the unused stand-in is "left out"
    assert plan.route("b1").steps[1].people == 150


def test_a_stand_in_never_pairs_alternatives_of_two_chosen_stops() -> None:
    # "gate-b" reaches the village too, but it is the alternative of "gate-a", chosen for the
    # compound: standing in for "square" could put both gates in one plan.
    problem = district_problem(
        vehicles=[bus("b1")],
        stops=[stop("gate-a", 1000, group="compound"), stop("square", 3000), stop("gate-b", 2900, group="compound"),
               stop("lane", 3100)],
        areas=[("compound", 1000, 200), ("village", 3000, 200)],
    )
    choice = choose_stops(problem)
    assert {s.id for s in choice.stops} == {"gate-a", "square"}
    assert [s.id for s in choice.stand_ins["square"]] == ["lane"]
    plan = solved(problem)
    assert len([s for s in plan.route("b1").steps if s.kind is StepKind.STOP]) == 2
    assert all(a.covered for a in plan.coverage)


def test_fleet_descent_keeps_buses_off_the_road_when_fewer_can_serve_every_stop() -> None:
    # One bus has time for all four stops; each extra bus would drive out to the far end and back.
    problem = district_problem(
        vehicles=[bus(f"b{i}") for i in range(1, 5)],
        stops=[stop(f"s{i}", 5000 + 300 * i, people=60, required=True) for i in range(4)],
    )
    ids = [s.id for s in problem.stops]
    routes = solve_ortools(problem, ids, deadline=time.time() + 3.0, fleet_descent=True)
    evaluation = evaluate(problem, routes)
    assert evaluation.feasible and not evaluation.missing
    assert len([r for r in evaluation.routes if r.is_used]) == 1


def test_fleet_descent_stops_when_a_smaller_fleet_would_leave_stops_out() -> None:
    # Each stop takes over half of a bus's 8-hour day (1,400 people through 2 lanes at 20 s, and
    # setting up): both buses are needed.
    problem = district_problem(
        vehicles=[bus("b1", lanes=2), bus("b2", lanes=2)],
        stops=[stop("east", 3000, people=1400, required=True), stop("west", 6000, people=1400, required=True)],
    )
    routes = solve_ortools(problem, ["east", "west"], deadline=time.time() + 2.0, fleet_descent=True)
    evaluation = evaluate(problem, routes)
    assert evaluation.feasible and not evaluation.missing
    assert len([r for r in evaluation.routes if r.is_used]) == 2


def test_alternatives_group_never_uses_two_stops() -> None:
    problem = district_problem(
        vehicles=[bus("b1")],
        stops=[stop("car-park-a", 1000, group="compound"), stop("car-park-b", 1500, group="compound")],
        areas=[("west-block", 900, 200), ("east-block", 1600, 200)],
    )
    plan = solved(problem)
    used = [s.id for s in plan.route("b1").steps if s.kind is StepKind.STOP]
    assert len(used) == 1
    uncovered = [a for a in plan.coverage if not a.covered]
    assert len(uncovered) == 1 and uncovered[0].reason is Reason.STOPS_FULL


def test_listed_alternatives_are_routed_one_at_most_and_the_other_says_why() -> None:
    # No areas: the dispatcher lists the stops, two of them the gates of one compound.
    problem = district_problem(
        vehicles=[bus("b1")],
        stops=[stop("gate-east", 1000, people=200, group="compound"),
               stop("gate-west", 1200, people=200, group="compound"), stop("square", 3000, people=100)],
    )
    plan = solved(problem)
    used = [s.id for s in plan.route("b1").steps if s.kind is StepKind.STOP]
    assert "square" in used and len([s for s in used if s.startswith("gate")]) == 1
    (other,) = plan.unassigned
    assert other.reason is Reason.ALTERNATIVE_USED and other.kind == "stop"
    assert evaluate(problem, {"b1": used}).penalty == 0  # the unused gate is no loss
    # Neither gate: the compound is missed once (as the engine counts it), not once per gate.
    square_only = evaluate(problem, {"b1": ["square"]}).penalty
    gate_alone = evaluate(problem.subproblem(["b1"], ["gate-east", "square"]), {"b1": ["square"]}).penalty
    assert square_only == gate_alone > 0
    assert f'"{next(s for s in used if s.startswith("gate"))}"' in other.detail


def test_green_channel_window_is_kept() -> None:
    school = TimeWindow(12 * H, 14 * H)
    problem = district_problem(
        vehicles=[bus("b1")],
        stops=[stop("school", 2000, people=457, time_windows=(school,), required=True), stop("plaza", 500, people=80)],
    )
    step = next(s for s in solved(problem).route("b1").steps if s.id == "school")
    assert school.start_s <= step.start_s <= school.end_s


def test_tube_capacity_forces_a_lab_drop_between_stops() -> None:
    # 80 people at each stop fill 8 tubes; the rack holds 10, so the bus unloads in between.
    problem = district_problem(
        vehicles=[bus("b1", capacity={"tubes": 10})],
        stops=[stop("a", 1000, people=80, demand={"tubes": 8}), stop("b", 2000, people=80, demand={"tubes": 8})],
        labs=[lab("lab", 1500)],
    )
    plan = solved(problem)
    kinds = [k for k, _ in steps_of(plan, "b1")]
    assert kinds == [StepKind.STOP, StepKind.LAB, StepKind.STOP, StepKind.LAB]
    drops = plan.route("b1").lab_drops
    assert [d.delivered["tubes"] for d in drops] == [8, 8]


def test_sample_age_forces_an_earlier_drop() -> None:
    # Each stop takes 50 min; samples may be at most 1 h old, so each goes to the lab at once.
    problem = district_problem(
        vehicles=[bus("b1")],
        stops=[
            stop("a", 1000, people=150, demand={"tubes": 15}, required=True),
            stop("b", 1200, people=150, demand={"tubes": 15}, required=True),
        ],
        labs=[lab("lab", 5000)],
        max_sample_age_s=3600,
    )
    plan = solved(problem)
    kinds = [k for k, _ in steps_of(plan, "b1")]
    assert kinds == [StepKind.STOP, StepKind.LAB, StepKind.STOP, StepKind.LAB]
    assert all(d.oldest_sample_age_s is not None and d.oldest_sample_age_s <= 3600 for d in plan.route("b1").lab_drops)


def test_the_last_drop_is_at_the_lab_on_the_way_home() -> None:
    """The lab nearest home lies behind it; a bus ending its day by the far lab drops there."""
    problem = district_problem(
        vehicles=[bus("b1")],
        stops=[stop("village", 5000, people=100, demand={"tubes": 10}, required=True)],
        labs=[lab("central", -300), lab("far", 4900)],
    )
    plan = solved(problem)
    assert steps_of(plan, "b1") == [(StepKind.STOP, "village"), (StepKind.LAB, "far")]
    assert plan.route("b1").distance_m == 10_000


def test_everything_is_delivered_before_the_shift_ends() -> None:
    problem = district_problem(
        vehicles=[team("t1", capacity={"tubes": 20})],
        visits=[visit("q1", 800, demand={"tubes": 3}), visit("q2", 900, demand={"tubes": 2})],
        labs=[lab("transfer", 300, opening=(TimeWindow(7 * H, 22 * H),))],
    )
    plan = solved(problem)
    assert steps_of(plan, "t1")[-1] == (StepKind.LAB, "transfer")
    assert plan.route("t1").lab_drops[-1].delivered["tubes"] == 5


def test_mixed_fleet_buses_take_stops_and_teams_take_visits() -> None:
    problem = district_problem(
        vehicles=[bus("bus-1"), team("team-1", profile="walk")],
        visits=[visit("bedridden", 700, demand={"tubes": 1}), visit("elderly", 900, demand={"tubes": 1})],
        stops=[stop("plaza", 1500, people=200, demand={"tubes": 20}, required=True)],
        labs=[lab("lab", 1000)],
    )
    plan = solved(problem)
    assert plan.route("bus-1").stop_ids == ["plaza"] and plan.route("bus-1").visit_ids == []
    assert sorted(plan.route("team-1").visit_ids) == ["bedridden", "elderly"]
    assert plan.unassigned == ()


def test_no_bus_means_stops_are_unassigned_with_a_reason() -> None:
    problem = district_problem(vehicles=[team("t1")], stops=[stop("plaza", 500, people=40, required=True)])
    plan = solved(problem)
    assert [(u.visit_id, u.kind, u.reason) for u in plan.unassigned] == [("plaza", "stop", Reason.NO_SKILLED_VEHICLE)]


@pytest.mark.parametrize(
    ("routes", "kind"),
    [
        # a team cannot staff a bus stop
        ({"t1": ["plaza"]}, ViolationKind.WRONG_VEHICLE),
        # a bus does not knock on doors
        ({"b1": ["door"]}, ViolationKind.WRONG_VEHICLE),
        # two alternatives of one compound
        ({"b1": ["plaza", "plaza-2", "lab"]}, ViolationKind.ALTERNATIVE_TWICE),
        # samples carried home
        ({"b1": ["plaza"]}, ViolationKind.SAMPLES_UNDELIVERED),
    ],
)
def test_evaluator_rules_for_buses_and_labs(routes: dict[str, list[str]], kind: ViolationKind) -> None:
    problem = district_problem(
        vehicles=[bus("b1"), team("t1")],
        visits=[visit("door", 300, demand={"tubes": 1})],
        stops=[
            stop("plaza", 1000, people=50, group="square", demand={"tubes": 5}),
            stop("plaza-2", 1100, people=50, group="square", demand={"tubes": 5}),
        ],
        labs=[lab("lab", 1200)],
    )
    assert kind in [v.kind for v in evaluate(problem, routes).violations]


def test_evaluator_flags_samples_that_arrive_too_old() -> None:
    problem = district_problem(
        vehicles=[bus("b1", shift=DAY)],
        stops=[stop("plaza", 1000, people=600, demand={"tubes": 60})],
        labs=[lab("lab", 2000)],
        max_sample_age_s=3600,
    )
    evaluation = evaluate(problem, {"b1": ["plaza", "lab"]})  # 600 people take 100 min
    assert [v.kind for v in evaluation.violations] == [ViolationKind.SAMPLE_TOO_OLD]
    drop = evaluation.routes[0].steps[2]
    assert drop.oldest_sample_age_s == pytest.approx(600 + 6000 + 100)


def test_buses_and_teams_that_never_share_a_task_are_solved_as_two_parts() -> None:
    problem = district_problem(
        vehicles=[bus("bus-1"), bus("bus-2"), team("team-1", profile="walk"), team("team-2", profile="walk")],
        visits=[visit(f"door{i}", 300 + 50 * i, demand={"tubes": 1}) for i in range(8)],
        stops=[stop(f"plaza{i}", 1500 + 400 * i, people=100, demand={"tubes": 10}, required=True) for i in range(4)],
        labs=[lab("lab", 1000)],
    )
    plan = solve(problem, time_limit_s=3, seed=1)
    assert plan.stats["parts"] == 2
    assert plan.violations == () and plan.unassigned == ()
    assert {r.vehicle_id for r in plan.used_routes if r.stop_ids} <= {"bus-1", "bus-2"}
    assert {r.vehicle_id for r in plan.used_routes if r.visit_ids} <= {"team-1", "team-2"}


def test_a_van_that_can_do_both_keeps_the_problem_whole() -> None:
    problem = district_problem(
        vehicles=[bus("bus-1"), team("van-1", kind="van"), team("team-1")],
        visits=[visit("door", 300, demand={"tubes": 1})],
        stops=[stop("plaza", 1500, people=100, demand={"tubes": 10}, required=True)],
        labs=[lab("lab", 1000)],
    )
    from routing.solver.parts import independent_parts

    assert len(independent_parts(problem, ["door", "plaza"], at_most=2)) == 1


def test_a_team_with_a_lunch_break_still_ends_at_the_lab() -> None:
    lunch = Break("lunch", TimeWindow(11 * H + 1800, 13 * H), 1800)
    problem = district_problem(
        vehicles=[team("t1", breaks=(lunch,))],
        visits=[
            visit("morning", 500, demand={"tubes": 1}, time_windows=(TimeWindow(9 * H, 10 * H),)),
            visit("afternoon", 800, demand={"tubes": 1}, time_windows=(TimeWindow(14 * H, 15 * H),)),
        ],
        labs=[lab("lab", 1000)],
    )
    plan = solved(problem)
    kinds = [k for k, _ in steps_of(plan, "t1")]
    assert kinds[-1] is StepKind.LAB and StepKind.BREAK in kinds


def test_a_part_whose_answer_breaks_a_rule_holds_back_neither_the_other_part_nor_its_own_tasks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Parts are judged apart, and broken answers are repaired rather than ranked last: the teams'
    late answer must neither keep the plan at the buses' first draft nor lose its other visits."""
    from routing.solver import _Incumbents

    monkeypatch.setattr("routing.solver.REPAIR_EVERY_S", 3600.0)  # one incumbent repair in this test
    from routing.solver.parts import independent_parts

    too_soon = TimeWindow(8 * H, 8 * H + 400)  # "door1" is 2 km out: no one on foot is there by 08:06
    problem = district_problem(
        vehicles=[bus("bus-1"), team("team-1", profile="walk")],
        visits=[visit("door0", 100, demand={"tubes": 1}),
                visit("door1", 2000, demand={"tubes": 1}, time_windows=(too_soon,))],
        stops=[stop("plaza0", 1500, people=100, demand={"tubes": 10}),
               stop("plaza1", 2500, people=100, demand={"tubes": 10})],
        labs=[lab("lab", 1000)],
    )
    parts = independent_parts(problem, ["door0", "door1", "plaza0", "plaza1"], at_most=2)
    incumbents = _Incumbents(problem, time.time(), None)
    incumbents.part_problems = {k: problem.subproblem(*part) for k, part in enumerate(parts)}
    team_part = next(k for k, (vehicles, _) in enumerate(parts) if "team-1" in vehicles)
    bus_part = 1 - team_part
    incumbents.offer("buses", bus_part, {"bus-1": ["plaza0", "lab"]})
    report = incumbents.offer("teams", team_part, {"team-1": ["door0", "door1", "lab"]})  # door1 reached late
    assert report["feasible"] is False and report["repaired"] == {"removed": 1, "feasible": True}
    incumbents.offer("buses", bus_part, {"bus-1": ["plaza0", "plaza1", "lab"]})
    assert incumbents.best is not None
    best, _ = incumbents.best
    bus_steps = [s.id for s in next(r for r in best.routes if r.vehicle_id == "bus-1").steps[1:-1]]
    assert bus_steps == ["plaza0", "plaza1", "lab"]  # the buses' latest answer, not their first
    assert best.feasible and set(best.missing) == {"door1"}  # the teams' answer, repaired

    # Another broken incumbent soon after is ranked as it is (repairs are rationed);
    # an engine's final answer is always repaired.
    again = incumbents.offer("teams", team_part, {"team-1": ["door1", "door0", "lab"]})
    assert "repaired" not in again and incumbents.best[0].feasible
    final = incumbents.offer("teams", team_part, {"team-1": ["door1", "door0", "lab"]}, final=True)
    assert final["repaired"] == {"removed": 1, "feasible": True}
