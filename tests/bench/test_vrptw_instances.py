"""The VRPTW/CVRP benchmark's plumbing: readers, conversion, checks, scoring and output files.

No real solve here runs longer than a fraction of a second: quality is the benchmark's job.
"""

from __future__ import annotations

import csv
import json
import multiprocessing as mp
import time
from pathlib import Path

import pytest
import vrplib

from bench import vrptw
from bench.instances import (
    HIERARCHICAL_FIXED_COST,
    Bks,
    Instance,
    check_routes,
    family_of,
    load_instances,
    read_solomon,
    route_distance,
    time_scale,
    to_problem,
)
from bench.peers import Solver, solve_ortools, solve_pyvrp, solve_vroom
from routing.model import HORIZON_S

SHARED = Path(__file__).parents[3] / "shared"
SOLOMON = SHARED / "bench" / "solomon"
CVRPLIB = SHARED / "bench" / "cvrplib"
needs_shared = pytest.mark.skipif(
    not SOLOMON.is_dir() or not CVRPLIB.is_dir(),
    reason=f"benchmark data not found at {SHARED}/bench (the shared folder sits beside the checkout)",
)

# Just 4 customers around a depot at (10, 10), with whole-number distances: 1 and 3 are 5 away
# from the depot, 2 is 5 beyond 1 (10 from the depot), 4 is 5 from the depot and 10 from 3.
# Two vehicles are needed twice over: for the load (13 > 10) and because 1 and 3,
# 9.5 apart, close at 6 and 8.
# (Time, not only load: PyVRP's default penalty cap of 1e5 per unit of excess load is below the
# fixed cost per vehicle, so a load-only reason can leave it merging routes on 4 customers.)
TINY = """TINY

VEHICLE
NUMBER     CAPACITY
  2          10

CUSTOMER
CUST NO.  XCOORD.   YCOORD.    DEMAND   READY TIME  DUE DATE   SERVICE   TIME

    0       10         10          0          0        100          0
    1       13         14          4          0          6          2
    2       16         18          4         10         30          2
    3       10          5          3          0          8          1
    4       10         15          2         40         60          1
"""
TINY_ROUTES = [[1, 2], [3, 4]]
"""Feasible, not optimal: 0-1-2-0 (5 + 5 + 10) and 0-3-4-0 (5 + 10 + 5, waiting at 4 until 40)."""
TINY_DISTANCE = 40.0


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Path:
    (tmp_path / "TINY.txt").write_text(TINY)
    (tmp_path / "bks.csv").write_text("instance,vehicles,distance\nTINY,2,40.0\n")
    return tmp_path


@pytest.fixture
def tiny(tiny_dir: Path) -> Instance:
    return load_instances([tiny_dir])[0]


def test_reads_a_tiny_solomon_file(tiny: Instance) -> None:
    assert (tiny.name, tiny.vehicles, tiny.capacity, tiny.hierarchical) == ("TINY", 2, 10, True)
    assert tiny.coords.tolist() == [[10, 10], [13, 14], [16, 18], [10, 5], [10, 15]]
    assert tiny.demands.tolist() == [0, 4, 4, 3, 2]
    assert tiny.ready.tolist() == [0, 0, 10, 0, 40]
    assert tiny.due.tolist() == [100, 6, 30, 8, 60]
    assert tiny.service.tolist() == [0, 2, 2, 1, 1]
    assert tiny.euclid[0, 1] == pytest.approx(5.0)
    assert tiny.bks == Bks(vehicles=2, distance=40.0)
    assert list(tiny.customers) == [1, 2, 3, 4]


def test_raises_on_a_file_that_is_not_solomon(tmp_path: Path) -> None:
    path = tmp_path / "BAD.txt"
    path.write_text("BAD\n\nno vehicle block here\n")
    with pytest.raises(ValueError, match="not a Solomon-format file"):
        read_solomon(path)


def test_raises_naming_the_instances_that_do_not_exist(tiny_dir: Path) -> None:
    with pytest.raises(FileNotFoundError, match="NOPE not found; have: TINY"):
        load_instances([tiny_dir], ["NOPE"])


@pytest.mark.parametrize(
    ("name", "family"),
    [("C101", "C1"), ("C201", "C2"), ("R112", "R1"), ("RC208", "RC2"), ("rc101", "RC1"), ("X-n101-k25", "X")],
)
def test_family_is_the_solomon_class_or_the_set_prefix(name: str, family: str) -> None:
    assert family_of(name) == family


def test_converts_a_tiny_instance_to_a_problem(tiny: Instance) -> None:
    problem = to_problem(tiny)
    assert [v.id for v in problem.visits] == ["1", "2", "3", "4"]
    assert [v.id for v in problem.vehicles] == ["v1", "v2"]
    visit = problem.visit("2")
    # Times and distances are scaled by 100: instance units become model seconds and metres.
    assert visit.service_s == 200
    assert (visit.time_windows[0].start_s, visit.time_windows[0].end_s) == (1000, 3000)
    assert dict(visit.demand) == {"load": 4}
    vehicle = problem.vehicles[0]
    assert (vehicle.shift.start_s, vehicle.shift.end_s) == (0, 10_000)
    assert dict(vehicle.capacity) == {"load": 10}
    assert vehicle.fixed_cost == HIERARCHICAL_FIXED_COST
    # Hierarchy: leaving a visit out costs more than every vehicle's fixed cost together.
    assert problem.objective.unassigned_penalty > len(problem.vehicles) * HIERARCHICAL_FIXED_COST
    assert (problem.objective.distance_cost_per_m, problem.objective.duration_cost_per_s) == (1.0, 0.0)
    matrix = problem.matrices["drive"]
    assert matrix.distances_m[0, 1] == pytest.approx(500.0)
    assert matrix.durations_s[1, 2] == pytest.approx(500.0)


def test_scales_times_down_when_the_horizon_would_not_fit(tiny_dir: Path) -> None:
    # C2 instances keep the depot open until 3390: x100 passed the model's horizon when it was 72 h.
    closes = HORIZON_S // 100 + 1
    (tiny_dir / "TINY.txt").write_text(TINY.replace("100          0\n", f"{closes}          0\n", 1))
    instance = load_instances([tiny_dir])[0]
    assert time_scale(instance) == 50
    assert to_problem(instance).vehicles[0].shift.end_s == closes * 50 <= HORIZON_S


def test_feasible_routes_pass_the_check_and_have_their_distance(tiny: Instance) -> None:
    assert check_routes(tiny, TINY_ROUTES) == []
    assert route_distance(tiny, TINY_ROUTES) == pytest.approx(TINY_DISTANCE)
    assert vrptw.judge(tiny, TINY_ROUTES) == []


@pytest.mark.parametrize(
    ("routes", "fault"),
    [
        ([[1, 2], [3]], "1 customers not served"),  # 4 is missing
        ([[1, 2], [3, 4, 1]], "customer 1 already served"),
        ([[1], [2], [3, 4]], "3 routes but the fleet has 2"),
        ([[1, 2], [3, 4, 9]], "9 is not a customer"),
        ([[1, 2, 3, 4]], "load 13 exceeds capacity 10"),
        ([[1, 2], [4, 3]], "customer 3 reached at 51.00, after 8"),  # waits at 4 until 40 first
    ],
)
def test_the_check_names_what_breaks(tiny: Instance, routes: list[list[int]], fault: str) -> None:
    assert any(fault in problem for problem in check_routes(tiny, routes))
    assert vrptw.judge(tiny, routes) != []


def test_no_answer_is_infeasible(tiny: Instance) -> None:
    assert vrptw.judge(tiny, []) == ["no solution"]


def test_gap_is_percent_above_the_best_known() -> None:
    assert vrptw.gap_pct(110.0, 100.0) == pytest.approx(10.0)
    assert vrptw.gap_pct(95.0, 100.0) == pytest.approx(-5.0)


@pytest.mark.parametrize("solve", [solve_pyvrp, solve_vroom, solve_ortools])
def test_each_peer_solves_the_tiny_instance(tiny: Instance, solve: Solver) -> None:
    routes = solve(tiny, 0.2, 1)
    assert check_routes(tiny, routes) == []
    assert len(routes) == 2  # demand 13 needs two vehicles of 10
    assert route_distance(tiny, routes) <= TINY_DISTANCE  # 0-1-2-4-0 and 0-3-0 are shorter: 31.7


def test_writes_the_csv_and_routes_files(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Stand-in solvers: one returns the known answer, one returns nothing.
    monkeypatch.setattr(vrptw, "SOLVERS", {"known": lambda i, t, s: TINY_ROUTES, "empty": lambda i, t, s: []})
    out, routes = tmp_path / "out" / "r.csv", tmp_path / "out" / "r.json"
    argv = [str(tiny_dir), "--solvers", "known,empty", "--time-limit", "0.1", "--out", str(out)]
    assert vrptw.main([*argv, "--routes", str(routes)]) == 0

    lines = out.read_text().splitlines()
    assert lines[0] == "instance,solver,vehicles,distance,gap_pct,feasible,seconds,cpu_s"
    rows = list(csv.DictReader(lines))
    assert [(r["solver"], r["vehicles"], r["feasible"]) for r in rows] == [
        ("known", "2", "True"),
        ("empty", "", "False"),
    ]
    assert float(rows[0]["distance"]) == pytest.approx(TINY_DISTANCE)
    assert float(rows[0]["gap_pct"]) == pytest.approx(0.0)
    assert rows[1]["gap_pct"] == ""
    assert json.loads(routes.read_text()) == {"known": {"TINY": TINY_ROUTES}, "empty": {"TINY": []}}
    printed = capsys.readouterr().out
    assert "known      all" in printed and "empty      all" in printed


def test_unknown_solver_is_a_usage_error(tiny_dir: Path) -> None:
    with pytest.raises(SystemExit):
        vrptw.parse_args([str(tiny_dir), "--solvers", "gurobi"])


@needs_shared
def test_reads_every_shared_instance_with_its_best_known() -> None:
    instances = load_instances([SOLOMON, CVRPLIB])
    assert [i.name for i in instances] == [
        "C101", "C201", "R101", "R112", "R201", "RC101", "RC201", "RC208",
        "X-n101-k25", "X-n153-k22", "X-n200-k36", "X-n284-k15",
    ]  # fmt: skip
    assert all(i.bks is not None for i in instances)
    c101 = instances[0]
    assert (c101.vehicles, c101.capacity, len(c101.coords), c101.family) == (25, 200, 101, "C1")
    for instance in instances:
        problem = to_problem(instance)  # every instance fits the model, C2 included
        assert len(problem.visits) == len(instance.coords) - 1


@needs_shared
@pytest.mark.parametrize("name", ["X-n101-k25", "X-n153-k22", "X-n200-k36", "X-n284-k15"])
def test_the_cvrplib_best_known_solution_scores_its_published_value(name: str) -> None:
    # Customer numbers are CVRPLIB's (.sol files: depot 0) and edges are rounded as CVRPLIB does.
    (instance,) = load_instances([CVRPLIB], [name])
    solution = vrplib.read_solution(str(CVRPLIB / f"{name}.sol"))
    assert instance.hierarchical is False and instance.family == "X"
    assert check_routes(instance, solution["routes"]) == []
    assert instance.bks is not None
    assert route_distance(instance, solution["routes"]) == instance.bks.distance == solution["cost"]
    assert len(solution["routes"]) == instance.bks.vehicles <= instance.vehicles


def _burn_cpu(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cpu_time_counts_workers_that_a_forkserver_starts() -> None:
    # Doorstep's workers are the forkserver's children, never reaped by this process: getrusage
    # alone would miss them. (Linux only: elsewhere only reaped children are counted.)
    if "forkserver" not in mp.get_all_start_methods() or not Path("/proc/self/stat").exists():
        pytest.skip("needs the forkserver start method and /proc")
    before = vrptw.cpu_seconds()
    worker = mp.get_context("forkserver").Process(target=_burn_cpu, args=(0.3,))
    worker.start()
    worker.join()
    assert vrptw.cpu_seconds() - before >= 0.3
