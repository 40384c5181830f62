"""The rest of a day as a new problem: what stays fixed, where each team starts again, what moves.

Every re-planned problem is checked with the independent evaluator: the previous order of what
remains (the warm start) must schedule from the new starts without surprises.
"""

from __future__ import annotations

import numpy as np
import pytest

from routing.errors import ProblemError, UnknownReferenceError
from routing.evaluate import evaluate
from routing.model import Depot, Objective, Problem, TimeWindow, TravelMatrix, Vehicle, Visit
from routing.plan import Plan
from routing.replan import POSITION_DEPOT_PREFIX, RestOfDay, disruption, rest_of_day
from routing.solver import solve
from tests.routing.street import DAY, H, at, line_matrix, street_problem, team, visit


def four_doors() -> Problem:
    """Two teams; t1 has a (1 km) and b (2 km), t2 has c (3 km) and d (4 km)."""
    return street_problem(
        [visit("a", 1000), visit("b", 2000), visit("c", 3000), visit("d", 4000, demand={"tubes": 2})],
        [team("t1", capacity={"tubes": 10}), team("t2", capacity={"tubes": 10})],
    )


BEFORE = {"t1": ["a", "b"], "t2": ["c", "d"]}


def routes_of(plan: Plan) -> dict[str, list[str]]:
    return {r.vehicle_id: r.visit_ids for r in plan.routes if r.visit_ids}


def checked(rest: RestOfDay) -> RestOfDay:
    """The warm start schedules from the new starts with no violation."""
    evaluation = evaluate(rest.problem, rest.initial)
    assert evaluation.feasible, evaluation.violations
    return rest


def test_completed_visits_leave_the_problem_and_the_team_starts_where_it_is() -> None:
    problem = four_doors()
    rest = checked(rest_of_day(problem, BEFORE, now_s=10 * H, done={"a"}))
    assert [v.id for v in rest.problem.visits] == ["b", "c", "d"]
    t1 = rest.problem.vehicle("t1")
    assert t1.start_depot == POSITION_DEPOT_PREFIX + "t1"
    assert rest.problem.site(t1.start_depot).location == at(1000)  # at a
    assert t1.end_depot == "depot" and t1.shift == TimeWindow(10 * H, DAY.end_s)
    assert rest.kept == {"t1": ["a"], "t2": []}
    # t2 has not left: it still starts at the depot, now rather than at 08:00
    assert rest.problem.vehicle("t2").start_depot == "depot" and rest.start_s["t2"] == 10 * H
    # travel times are the old rows: from a to b is 100 s (1 km at 10 m/s)
    drive = rest.problem.matrices["drive"]
    assert drive.durations_s[rest.problem.site_index("at:t1"), rest.problem.site_index("b")] == 100


def test_remaining_visits_prefer_their_team_and_moving_one_costs() -> None:
    rest = rest_of_day(four_doors(), BEFORE, now_s=10 * H, done={"a"}, reassignment_cost=900)
    assert {v.id: v.preferred_vehicle for v in rest.problem.visits} == {"b": "t1", "c": "t2", "d": "t2"}
    assert rest.problem.objective.reassignment_cost == 900
    assert rest.initial == {"t1": ["b"], "t2": ["c", "d"]}


def test_a_step_in_progress_is_kept_and_the_team_is_free_when_it_ends() -> None:
    # c takes 300 + 60 s; t2 started it at 10:00, so it is free at 10:06 wherever "now" is
    rest = checked(rest_of_day(four_doors(), BEFORE, now_s=10 * H + 60, in_progress={"t2": "c"},
                               in_progress_since_s={"t2": 10 * H}))
    assert "c" not in {v.id for v in rest.problem.visits}
    assert rest.kept["t2"] == ["c"] and rest.start_s["t2"] == 10 * H + 360
    assert rest.problem.site(rest.problem.vehicle("t2").start_depot).location == at(3000)


def test_tubes_used_come_off_the_capacity() -> None:
    rest = rest_of_day(four_doors(), BEFORE, now_s=10 * H, done={"c", "d"})
    assert rest.problem.vehicle("t2").capacity == {"tubes": 8}  # c needs none, d 2
    told = rest_of_day(four_doors(), BEFORE, now_s=10 * H, done={"c", "d"}, consumed={"t2": {"tubes": 9}})
    assert told.problem.vehicle("t2").capacity == {"tubes": 1}


def test_a_not_home_visit_is_retried_an_hour_later_when_asked() -> None:
    problem = street_problem(
        [visit("a", 1000, time_windows=(TimeWindow(9 * H, 15 * H),)), visit("b", 2000)], [team("t1")]
    )
    before = {"t1": ["a", "b"]}
    dropped = rest_of_day(problem, before, now_s=10 * H, done={"a"})
    assert [v.id for v in dropped.problem.visits] == ["b"]  # not asked: a stays attempted
    rest = checked(rest_of_day(problem, before, now_s=10 * H, done={"a"}, retry_not_home={"a"}))
    retried = rest.problem.visit("a")
    assert retried.time_windows == (TimeWindow(11 * H, 15 * H),)
    plan = solve(rest.problem, time_limit_s=1, engine="ortools", in_process=True)
    assert plan.violations == () and plan.unassigned == ()
    step = next(s for s in plan.route("t1").steps if s.id == "a")
    assert step.start_s >= 11 * H


def test_a_retry_after_its_last_window_is_reported_not_hidden() -> None:
    problem = street_problem([visit("a", 1000, time_windows=(TimeWindow(9 * H, 10 * H + 1800),))], [team("t1")])
    # the window closes at 10:30, before 11:00: the retry cannot be today, and is said so
    rest = rest_of_day(problem, {"t1": ["a"]}, now_s=10 * H, done={"a"}, retry_not_home={"a"})
    assert rest.problem.visits == () and rest.not_retried == ("a",)


def test_cancelled_visits_go_and_new_ones_need_their_travel_times() -> None:
    problem = four_doors()
    urgent = Visit("urgent", at(2500), priority=3)
    with pytest.raises(ProblemError, match="need travel times"):
        rest_of_day(problem, BEFORE, now_s=10 * H, new_visits=[urgent])
    positions = [0, 1000, 2000, 3000, 4000, 2500]  # the old sites, then the new visit
    matrices = {"drive": line_matrix(positions, metres_per_s=10.0), "walk": line_matrix(positions, metres_per_s=1.0)}
    rest = checked(rest_of_day(problem, BEFORE, now_s=10 * H, done={"a"}, cancelled={"d"},
                               new_visits=[urgent], matrices=matrices))
    assert [v.id for v in rest.problem.visits] == ["b", "c", "urgent"]
    assert rest.problem.visit("urgent").preferred_vehicle is None
    plan = solve(rest.problem, time_limit_s=1, engine="ortools", in_process=True)
    assert plan.violations == () and plan.unassigned == ()


def test_a_gps_position_is_where_the_team_starts() -> None:
    problem = four_doors()
    positions = [0, 1000, 2000, 3000, 4000, 3500]  # the old sites, then t2's position
    matrices = {"drive": line_matrix(positions, metres_per_s=10.0), "walk": line_matrix(positions, metres_per_s=1.0)}
    rest = checked(rest_of_day(problem, BEFORE, now_s=10 * H, done={"c"}, positions={"t2": at(3500)},
                               matrices=matrices))
    start = rest.problem.site_index("at:t2")
    assert rest.problem.sites[start].location == at(3500)
    assert rest.problem.matrices["drive"].durations_s[start, rest.problem.site_index("d")] == 50


def test_a_dropped_team_leaves_its_visits_to_the_others_and_a_joined_team_helps() -> None:
    problem = four_doors()
    joined = team("t3", shift=TimeWindow(12 * H, 16 * H))
    rest = checked(rest_of_day(problem, BEFORE, now_s=10 * H, done={"a"}, dropped_vehicles={"t2"},
                               joined_vehicles=[joined]))
    assert [v.id for v in rest.problem.vehicles] == ["t1", "t3"]
    assert {v.id: v.preferred_vehicle for v in rest.problem.visits} == {"b": "t1", "c": None, "d": None}
    plan = solve(rest.problem, time_limit_s=1, engine="ortools", in_process=True)
    assert plan.violations == () and plan.unassigned == ()


def test_breaks_taken_or_missed_are_dropped_and_max_duration_shrinks() -> None:
    from routing.model import Break

    lunch = Break("lunch", TimeWindow(11 * H, 13 * H), 1800)
    early = Break("coffee", TimeWindow(9 * H, 9 * H + 900), 600)
    problem = street_problem(
        [visit("a", 1000), visit("b", 2000)],
        [team("t1", breaks=(early, lunch), max_duration_s=6 * H)],
    )
    rest = checked(rest_of_day(problem, {"t1": ["a", "b"]}, now_s=10 * H, done={"a"}))
    t1 = rest.problem.vehicle("t1")
    assert [b.id for b in t1.breaks] == ["lunch"]  # the coffee window closed at 09:15
    assert t1.max_duration_s is not None and t1.max_duration_s < 6 * H


@pytest.mark.parametrize(
    "changes",
    [
        {"done": {"nobody"}},  # a visit the plan does not have
        {"cancelled": {"nobody"}},
        {"in_progress": {"t1": "nobody"}},
        {"dropped_vehicles": {"t9"}},  # a vehicle the plan does not have
        {"positions": {"t9": at(0)}},
    ],
)
def test_unknown_ids_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(UnknownReferenceError):
        rest_of_day(four_doors(), BEFORE, now_s=10 * H, **changes)  # type: ignore[arg-type]


def test_a_joined_vehicle_must_be_new() -> None:
    with pytest.raises(ProblemError, match="already a vehicle"):
        rest_of_day(four_doors(), BEFORE, now_s=10 * H, joined_vehicles=[team("t1")])


def test_disruption_counts_visits_that_changed_vehicle() -> None:
    measured = disruption({"t1": ["a", "b"], "t2": ["c"]}, {"t1": ["a"], "t2": ["c", "b"], "t3": ["new"]})
    assert measured.compared == 3 and measured.moved == ("b",)
    assert measured.fraction == pytest.approx(1 / 3)


# -- minimal disruption, measured --------------------------------------------------------------------


def district(seed: int = 7, visits: int = 30, teams: int = 3, extra: int = 4) -> tuple[Problem, dict, list[Visit]]:
    """Households scattered over 4 x 4 km around a central depot; teams drive at 8 m/s.

    Also ``extra`` urgent requests that arrive during the day, and the matrices over the
    problem's sites then those requests (what re-planning needs).
    """
    rng = np.random.default_rng(seed)
    xy = np.vstack([[2000.0, 2000.0], rng.uniform(0, 4000, size=(visits + extra, 2))])
    distances = np.abs(xy[:, None, :] - xy[None, :, :]).sum(axis=2)  # city blocks
    extended = TravelMatrix(np.ceil(distances / 8.0), distances)
    n = visits + 1
    matrix = TravelMatrix(extended.durations_s[:n, :n], extended.distances_m[:n, :n])
    lonlat = [(24.90 + x / 55_000, 60.15 + y / 111_000) for x, y in xy]
    problem = Problem(
        depots=[Depot("depot", lonlat[0])],
        vehicles=[Vehicle(f"t{i + 1}", "depot", "depot", TimeWindow(8 * H, 16 * H)) for i in range(teams)],
        visits=[Visit(f"v{i:02d}", lonlat[i + 1], people=2, setup_s=600) for i in range(visits)],
        matrices={"drive": matrix},
        objective=Objective(),
    )
    urgent = [Visit(f"new{i}", lonlat[n + i], people=1, priority=3) for i in range(extra)]
    return problem, {"drive": extended}, urgent


def test_replanning_moves_few_visits_to_other_teams() -> None:
    problem, extended, urgent = district()
    day = solve(problem, time_limit_s=2, engine="ortools", in_process=True)
    before = routes_of(day)
    # 11:00: t1 fell behind (one visit done), the others did a third; two households cancelled,
    # four urgent requests arrived.
    teams = sorted(before)
    done = {before[teams[0]][0]} | {vid for t in teams[1:] for vid in before[t][: len(before[t]) // 3]}
    cancelled = {before[t][-1] for t in teams[1:]}
    measured = {}
    for cost in (0.0, 900.0, 100_000.0):  # free moves, the default, moves only when forced
        # (t1's old order no longer fits its shift: that is why the day is re-planned)
        rest = rest_of_day(problem, before, now_s=11 * H, done=done, cancelled=cancelled,
                           new_visits=urgent, matrices=extended, reassignment_cost=cost)
        plan = solve(rest.problem, time_limit_s=2, engine="ortools", in_process=True, initial=rest.initial)
        assert plan.violations == () and plan.unassigned == ()
        assert evaluate(rest.problem, routes_of(plan)).feasible
        measured[cost] = disruption(rest.initial, routes_of(plan))
    free, default, forced = measured[0.0], measured[900.0], measured[100_000.0]
    print("\nremaining visits that changed team: " + ", ".join(
        f"{len(m.moved)}/{m.compared} ({m.fraction:.1%}) {label}"
        for m, label in ((default, "with reassignment cost 900"), (free, "with none"), (forced, "with 100000"))))
    assert forced.fraction <= default.fraction < free.fraction


def test_a_second_replan_moves_the_team_on_from_its_last_position() -> None:
    first = rest_of_day(four_doors(), BEFORE, now_s=10 * H, done={"a"})
    second = checked(rest_of_day(first.problem, first.initial, now_s=11 * H, done={"b"}))
    t1 = second.problem.vehicle("t1")
    assert t1.start_depot == "at:t1" and second.problem.site(t1.start_depot).location == at(2000)
    assert [d.id for d in second.problem.depots] == ["depot", "at:t1"]
    # not moved since: t1 keeps its position, t2 still starts from the depot, later
    third = checked(rest_of_day(second.problem, second.initial, now_s=12 * H))
    assert third.problem.site("at:t1").location == at(2000) and third.start_s == {"t1": 12 * H, "t2": 12 * H}
