"""The solver's API: engines behind one small protocol, one parameters object, an immutable problem."""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pytest

from routing.errors import ProblemError
from routing.model import Break, Objective, Problem, TimeWindow
from routing.solver import EngineRun, SolveParams, engine_names, register, solve, unregister
from routing.solver.engine import Engine, OnIncumbent, Routes
from routing.solver.registry import engines
from tests.routing.street import H, bus, district_problem, lab, stop, street_problem, team, visit


class StayHome:
    """A whole engine in a dozen lines: it sends nobody out (the empty plan, which breaks no rule)
    and declines crew breaks."""

    name = "stay-home"

    def unsupported(self, problem: Problem, task_ids: Sequence[str]) -> str | None:
        return "crew breaks" if any(v.breaks for v in problem.vehicles) else None

    def alone(self, problem: Problem, seed: int, cores: int) -> EngineRun:
        return EngineRun(self, seed)

    def portfolio(self, problem: Problem, seed: int, cores: int) -> list[EngineRun]:
        return [self.alone(problem, seed, cores)]

    def run(
        self,
        problem: Problem,
        task_ids: Sequence[str],
        settings: EngineRun,
        *,
        deadline: float,
        initial: Mapping[str, Sequence[str]] | None,
        on_incumbent: OnIncumbent | None,
    ) -> Routes | None:
        return {}


@pytest.fixture
def stay_home() -> Iterator[Engine]:
    engine = StayHome()
    register(engine)
    yield engine
    unregister(engine.name)


def two_doors(**team_fields: object) -> Problem:
    return street_problem([visit("a", 1000), visit("b", 2000)], [team("t1", **team_fields)])


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "in-a-worker-process"])
def test_a_registered_engine_is_chosen_by_name_and_its_answer_is_the_plan(stay_home: Engine, in_process: bool) -> None:
    plan = solve(two_doors(), time_limit_s=2.0, engine="stay-home", in_process=in_process)
    assert plan.engine == "stay-home#0"
    assert plan.is_feasible
    assert sorted(u.visit_id for u in plan.unassigned) == ["a", "b"]


def test_a_registered_engine_is_accepted_by_name_and_listed_after_the_built_in_ones(stay_home: Engine) -> None:
    assert engine_names() == ("auto", "ortools", "pyvrp", "stay-home", "vroom")
    assert engines()[-1] is stay_home


def test_auto_never_gives_a_problem_to_an_engine_ranked_after_ortools(stay_home: Engine) -> None:
    plan = solve(two_doors(), time_limit_s=1.0, in_process=True)
    assert not plan.engine.startswith("stay-home")
    assert plan.unassigned == ()


def test_what_a_registered_engine_cannot_model_is_an_error_on_the_engine_field(stay_home: Engine) -> None:
    with_lunch = two_doors(breaks=(Break("lunch", TimeWindow(12 * H, 13 * H), 1800),))
    with pytest.raises(ProblemError, match="engine stay-home cannot model crew breaks; use auto or ortools") as error:
        solve(with_lunch, time_limit_s=1.0, engine="stay-home")
    assert error.value.path == ("engine",)


def test_an_engine_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(engines()[0])


def test_an_unregistered_engine_is_no_longer_accepted() -> None:
    register(StayHome())
    unregister("stay-home")
    with pytest.raises(ProblemError, match='engine must be one of auto, ortools, pyvrp, vroom, got "stay-home"'):
        solve(two_doors(), time_limit_s=1.0, engine="stay-home")


def test_solve_params_default_to_auto_seed_zero_every_core_and_early_stopping() -> None:
    params = SolveParams(time_limit_s=10)
    assert (params.engine, params.seed, params.cores, params.full_budget, params.in_process) == (
        "auto", 0, None, False, False
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.seed = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("settings", "field", "message"),
    [
        # No time at all: even a converged search needs its first answer.
        ({"time_limit_s": 0}, "time_limit_s", "time_limit_s must be > 0, got 0"),
        # An engine nobody registered: the message lists those that are.
        ({"time_limit_s": 1, "engine": "gurobi"}, "engine", 'one of auto, ortools, pyvrp, vroom, got "gurobi"'),
        # No core to run on (None means every core of the machine).
        ({"time_limit_s": 1, "cores": 0}, "cores", "cores must be >= 1, got 0"),
    ],
)
def test_bad_solve_params_name_their_field(settings: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(ProblemError, match=message) as error:
        SolveParams(**settings)  # type: ignore[arg-type]
    assert error.value.path == (field,)


def test_solve_takes_its_params_as_one_object_and_a_keyword_overrides_it(stay_home: Engine) -> None:
    params = SolveParams(time_limit_s=1.0, engine="stay-home", seed=3, in_process=True)
    assert solve(two_doors(), params).engine == "stay-home#3"
    assert solve(two_doors(), params, seed=4).engine == "stay-home#4"


def test_solve_without_a_time_limit_is_refused() -> None:
    with pytest.raises(TypeError, match="time_limit_s"):
        solve(two_doors())


def test_a_validated_problem_cannot_be_changed() -> None:
    problem = two_doors()
    with pytest.raises(dataclasses.FrozenInstanceError):
        problem.visits = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        problem.matrices["drive"] = problem.matrices["walk"]  # type: ignore[index]
    with pytest.raises(ValueError, match="read-only"):
        problem.matrices["drive"].durations_s[0, 1] = 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        problem.visits[0].people = 5  # type: ignore[misc]


def test_a_problem_given_lists_keeps_tuples_and_a_later_change_to_the_list_does_not_reach_it() -> None:
    given = two_doors()
    visits = list(given.visits)
    problem = Problem(depots=list(given.depots), vehicles=list(given.vehicles), visits=visits, matrices=given.matrices)
    visits.clear()
    assert isinstance(problem.visits, tuple)
    assert [v.id for v in problem.visits] == ["a", "b"]


def test_a_changed_problem_is_a_new_one_validated_again() -> None:
    problem = two_doors()
    fewer = problem.replace(vehicles=(team("t2"),))
    assert [v.id for v in problem.vehicles] == ["t1"]
    assert [v.id for v in fewer.vehicles] == ["t2"]
    with pytest.raises(ProblemError, match="used twice"):
        dataclasses.replace(problem, visits=(problem.visits[0], problem.visits[0]))


def every_field_set() -> Problem:
    """A problem whose every field differs from its default."""
    problem = district_problem(
        vehicles=[bus("bus-1"), team("t1")],
        visits=[visit("v1", 500)],
        stops=[stop("s1", 1000)],
        labs=[lab("lab", 1500)],
        areas=[("area", 1100, 40)],
    )
    unset = [f.name for f in dataclasses.fields(problem) if f.name not in ("objective", "max_sample_age_s")
             and not len(getattr(problem, f.name))]
    assert unset == []
    return problem.replace(objective=Objective(makespan_cost_per_s=0.2), max_sample_age_s=3 * H)


def test_every_field_of_a_problem_survives_the_trip_to_an_engine_process_and_a_replace() -> None:
    problem = every_field_set()
    for copy in (pickle.loads(pickle.dumps(problem)), problem.replace()):
        for f in dataclasses.fields(problem):
            mine, theirs = getattr(problem, f.name), getattr(copy, f.name)
            if f.name == "matrices":
                assert all(np.array_equal(mine[p].durations_s, theirs[p].durations_s) for p in mine)
                assert mine.keys() == theirs.keys()
            elif f.name == "area_walk_m":
                assert np.array_equal(mine, theirs)
                assert not theirs.flags.writeable
            else:
                assert theirs == mine, f.name


def test_a_problem_is_its_own_only_equal() -> None:
    # Matrices make value equality meaningless (and costly); a problem is compared by identity.
    problem = two_doors()
    assert problem == problem
    assert problem != problem.replace()
    assert {problem: 1}[problem] == 1

