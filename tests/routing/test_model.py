"""Bad input raises one clear error naming the object and the field; good input is accepted."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from routing.errors import ProblemError, UnknownReferenceError
from routing.model import (
    Break,
    Depot,
    Priority,
    Problem,
    TimeWindow,
    TravelMatrix,
    Vehicle,
    Visit,
    swab_tubes,
)
from tests.routing.street import DAY, at, street_problem, team, visit


def test_a_valid_problem_is_accepted_and_indexes_sites_depots_first() -> None:
    problem = street_problem([visit("a", 100), visit("b", 200)], [team("t1")])
    assert [s.id for s in problem.sites] == ["depot", "a", "b"]
    assert problem.site_index("b") == 2
    assert problem.visit("a").service_s == 300 + 60


def test_swab_tubes_pool_ten_people_but_quarantine_takes_one_each() -> None:
    assert swab_tubes(12) == 2
    assert swab_tubes(12, pooled=False) == 12
    assert swab_tubes(0) == 0


def test_problem_survives_pickling_for_worker_processes() -> None:
    problem = street_problem([visit("a", 100, demand={"tubes": 1})], [team("t1", capacity={"tubes": 5})])
    again = pickle.loads(pickle.dumps(problem))
    assert again.visit("a").demand == {"tubes": 1}
    assert np.array_equal(again.matrices["drive"].durations_s, problem.matrices["drive"].durations_s)


def test_personal_data_is_not_in_repr() -> None:
    v = Visit("a", at(0), notes="bedridden, diabetic", contact="+358 40 123")
    assert "bedridden" not in repr(v) and "+358" not in repr(v)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        # a window must not end before it starts
        (lambda: TimeWindow(11 * 3600, 9 * 3600), r"ends \(09:00\) before it starts \(11:00\)"),
        # lon/lat swapped or out of range
        (lambda: Visit("v-17", (24.9, 160.2)), r'Visit "v-17": location .* not a \(lon, lat\)'),
        # negative counts
        (lambda: Visit("v-3", at(0), people=-2), r'Visit "v-3": people must be a whole number >= 0'),
        (lambda: Visit("v-4", at(0), demand={"tubes": -1}), r'Visit "v-4": "tubes" must be a whole number >= 0'),
        # two windows that overlap are one window
        (
            lambda: Visit("v-5", at(0), time_windows=(TimeWindow(0, 100), TimeWindow(50, 200))),
            r'Visit "v-5": time windows .* overlap',
        ),
        # an optional visit must say what skipping it costs
        (lambda: Visit("v-6", at(0), required=False), r'Visit "v-6": an optional visit needs a penalty'),
        (lambda: Vehicle("bus-1", "d", "d", DAY, speed_factor=0), r'Vehicle "bus-1": speed_factor must be > 0'),
        (lambda: Vehicle("bus-2", "d", "d", DAY, max_duration_s=0), r'Vehicle "bus-2": max_duration_s must be > 0'),
        (lambda: Break("lunch", DAY, 0), r'Break "lunch": duration_s must be > 0'),
        (lambda: Depot("", at(0)), r"depot id must be a non-empty string"),
        # matrices must be square and clean
        (lambda: TravelMatrix(np.zeros((2, 3)), np.zeros((2, 3))), r"must be square"),
        (lambda: TravelMatrix(np.array([[0, np.nan], [1, 0]]), np.zeros((2, 2))), r"negative or NaN"),
    ],
)
def test_bad_objects_raise_a_message_naming_them(build: object, message: str) -> None:
    with pytest.raises(ProblemError, match=message):
        build()  # type: ignore[operator]


def _problem(**changes: object) -> Problem:
    fields: dict[str, object] = {
        "depots": [Depot("depot", at(0))],
        "vehicles": [team("t1")],
        "visits": [Visit("a", at(10))],
        "matrices": {"drive": TravelMatrix(np.zeros((2, 2)), np.zeros((2, 2)))},
    }
    fields.update(changes)
    return Problem(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "error", "message", "path"),
    [
        # a visit id used twice
        (
            {
                "visits": [Visit("a", at(1)), Visit("a", at(2))],
                "matrices": {"drive": TravelMatrix(np.zeros((3, 3)), np.zeros((3, 3)))},
            },
            ProblemError,
            r'id "a" is used twice',
            ("visits", 1, "id"),
        ),
        # a vehicle starting at a depot that does not exist
        ({"vehicles": [team("t1", start_depot="nowhere")]}, UnknownReferenceError, r'start_depot "nowhere"', None),
        # a vehicle on a profile with no matrix
        (
            {"vehicles": [team("t1", profile="walk")]},
            UnknownReferenceError,
            r'no travel matrix for profile "walk"',
            None,
        ),
        # matrix that does not match the sites
        (
            {"matrices": {"drive": TravelMatrix(np.zeros((3, 3)), np.zeros((3, 3)))}},
            ProblemError,
            r"is 3x3 but the problem has 2 sites",
            ("matrices", "drive"),
        ),
        ({"vehicles": []}, ProblemError, r"at least one vehicle", ("vehicles",)),
        ({"depots": []}, ProblemError, r"at least one depot", ("depots",)),
    ],
)
def test_inconsistent_problems_raise_naming_the_object(
    changes: dict[str, object], error: type[Exception], message: str, path: tuple[object, ...] | None
) -> None:
    with pytest.raises(error, match=message) as caught:
        _problem(**changes)
    if path is not None:
        assert caught.value.path == path  # type: ignore[attr-defined]


def test_priority_accepts_numbers() -> None:
    assert Visit("a", at(0), priority=2).priority is Priority.QUARANTINE  # type: ignore[arg-type]


def test_a_vehicle_may_not_cost_more_than_leaving_a_visit_out() -> None:
    with pytest.raises(ProblemError, match=r'Vehicle "t1": fixed_cost \(20000000\) must be below') as caught:
        _problem(vehicles=[team("t1", fixed_cost=20_000_000)])
    assert caught.value.path == ("vehicles", 0, "fixed_cost")
