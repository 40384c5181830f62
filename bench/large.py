"""Large single days: Doorstep with the split search on and off, against PyVRP alone, in one run.

    python -m bench.large [--homberger DIR] [--names C2_10_1,RC2_10_1] [--gh-time-limit 60]
        [--pbf PBF] [--days 2000/80] [--day-limits 60,300] [--seeds 1] [--out bench/results/large.csv]

- **Gehring-Homberger** (1,000 customers, best-known in ``bks.csv``): Doorstep with ``split=True``
  and ``split=False`` (both cores), and PyVRP alone (``bench.peers.solve_pyvrp``, one process),
  each with the same wall clock: vehicles, distance, gap to the best known, feasibility by the
  evaluator (``bench.vrptw.judge``).
- **Home-visit days** from the project's generator (``bench.homevisits.make_day``: skills, lunch
  breaks, several windows, walk and van teams) on an OSM extract; a size ``V/T`` is V visits for T
  teams. For each time limit, the split search against the whole-day search (the baseline, run
  just before it on the same day): time to the first plan, households served and travel at the
  end, by the evaluator; the ratios split / whole-day are printed.

- **Lab days** (``--lab-days``): the same generated days with a lab at each depot, so every
  sample must reach a lab within the problem's sample age: OR-Tools' days (VROOM cannot model lab
  drops), split against whole the same way.

``--days 250/10,500/20,1000/40`` at ``--day-limits 60`` is how ``SPLIT_ABOVE_TASKS`` was measured.
Each figure is one solve per seed; with several seeds the summary gives medians.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.homevisits import load_day_networks, make_day, travel_s
from bench.instances import Instance, Routes, load_instances, route_distance, to_problem
from bench.peers import solve_pyvrp
from bench.vrptw import gap_pct, judge
from routing.evaluate import evaluate
from routing.model import Depot, Lab, Problem, Visit
from routing.network import RoadNetwork
from routing.solver import Progress, SolveParams, solve

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUT = RESULTS / "large.csv"
SHARED = Path(__file__).resolve().parents[2] / "shared"
COLUMNS = (
    "case", "solver", "time_limit_s", "seed", "vehicles", "distance", "gap_pct", "served", "tasks",
    "travel_s", "first_plan_s", "feasible", "seconds", "load_1m",
)  # fmt: skip


def doorstep(
    problem: Problem, time_limit_s: float, seed: int, split: bool
) -> tuple[dict[str, list[str]], float | None]:
    """Doorstep's routes (vehicle -> step ids) and when its first plan came (s), split on or off."""
    started = time.perf_counter()
    first: list[float] = []

    def on_progress(progress: Progress) -> None:
        if not first:
            first.append(time.perf_counter() - started)

    plan = solve(problem, SolveParams(time_limit_s=time_limit_s, seed=seed, split=split), on_progress=on_progress)
    routes = {r.vehicle_id: [s.id for s in r.steps[1:-1]] for r in plan.routes if r.task_ids}
    return routes, (first[0] if first else None)


def gh_row(instance: Instance, solver: str, time_limit_s: float, seed: int) -> dict[str, Any]:
    started = time.perf_counter()
    first = None
    if solver == "pyvrp":
        routes: Routes = solve_pyvrp(instance, time_limit_s, seed)
    else:
        by_vehicle, first = doorstep(to_problem(instance), time_limit_s, seed, split=solver == "split")
        routes = [[int(v) for v in steps] for steps in by_vehicle.values()]
    seconds = time.perf_counter() - started
    routes = [r for r in routes if r]
    faults = judge(instance, routes)
    distance = route_distance(instance, routes) if routes else None
    return {
        "case": instance.name,
        "solver": solver,
        "time_limit_s": time_limit_s,
        "seed": seed,
        "vehicles": len(routes),
        "distance": round(distance, 2) if distance else None,
        "gap_pct": round(gap_pct(distance, instance.bks.distance), 2) if distance and instance.bks else None,
        "served": sum(len(r) for r in routes),
        "tasks": len(instance.customers),
        "first_plan_s": round(first, 1) if first is not None else None,
        "feasible": not faults,
        "seconds": round(seconds, 1),
        "load_1m": round(os.getloadavg()[0], 2),
    }


def day_row(case: str, problem: Problem, solver: str, time_limit_s: float, seed: int) -> dict[str, Any]:
    started = time.perf_counter()
    routes, first = doorstep(problem, time_limit_s, seed, split=solver == "split")
    seconds = time.perf_counter() - started
    evaluation = evaluate(problem, routes)
    return {
        "case": case,
        "solver": solver,
        "time_limit_s": time_limit_s,
        "seed": seed,
        "vehicles": evaluation.vehicles_used,
        "served": len(problem.visits) - len(evaluation.missing),
        "tasks": len(problem.visits),
        "travel_s": round(travel_s(evaluation), 1),
        "first_plan_s": round(first, 1) if first is not None else None,
        "feasible": evaluation.feasible,
        "seconds": round(seconds, 1),
        "load_1m": round(os.getloadavg()[0], 2),
    }


def with_labs(problem: Problem, walk: RoadNetwork, drive: RoadNetwork) -> Problem:
    """The day with a lab at each depot (open all day): its samples must reach one in time."""
    from routing.matrix import travel_matrix

    labs = tuple(Lab(f"lab-{d.id}", d.location) for d in problem.depots)
    sites: list[Depot | Visit | Lab] = [*problem.depots, *problem.visits, *labs]
    points, ids = [s.location for s in sites], [s.id for s in sites]
    matrices = {"walk": travel_matrix(walk, points, ids=ids), "drive": travel_matrix(drive, points, ids=ids)}
    return problem.replace(labs=labs, matrices=matrices)


def _show(row: dict[str, Any]) -> None:
    bits = [f"{row['case']:<22} {row['solver']:<8} {row['time_limit_s']:>5.0f} s  seed {row['seed']}"]
    bits.append(f"vehicles {row['vehicles']:>3}  served {row['served']:>4}/{row['tasks']}")
    if row.get("distance") is not None:
        bits.append(f"distance {row['distance']:>9.1f} gap {row['gap_pct']:+.2f} %")
    if row.get("travel_s") is not None:
        bits.append(f"travel {row['travel_s']:>9.0f} s")
    bits.append(f"first plan {row['first_plan_s'] if row['first_plan_s'] is not None else '-'} s")
    bits.append(f"{'feasible' if row['feasible'] else 'INFEASIBLE'}  {row['seconds']} s  load {row['load_1m']}")
    print("  ".join(bits), flush=True)


def ratios(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Per case and time limit: medians of split and of the whole-day search, and their ratios."""
    lines = []
    keys = dict.fromkeys((r["case"], r["time_limit_s"]) for r in rows if r["solver"] in ("split", "whole"))
    for case, limit in keys:
        mine = {s: [r for r in rows if (r["case"], r["time_limit_s"], r["solver"]) == (case, limit, s)]
                for s in ("split", "whole")}  # fmt: skip

        parts = [f"{case} at {limit:.0f} s (n={len(mine['split'])}):"]
        for column in ("served", "vehicles", "distance", "travel_s", "first_plan_s"):
            a, b = _median(mine["split"], column), _median(mine["whole"], column)
            if a is None and b is None:
                continue
            ratio = f" = {a / b:.4f}" if a is not None and b else ""
            parts.append(f"{column} split {a} / whole {b}{ratio}")
        lines.append("  ".join(parts))
    return lines


def _median(rows: Sequence[dict[str, Any]], column: str) -> float | None:
    values = [r[column] for r in rows if r.get(column) is not None]
    return statistics.median(values) if values else None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.large", description=__doc__.split("\n\n")[0])
    parser.add_argument("--homberger", type=Path, default=SHARED / "bench" / "homberger")
    parser.add_argument("--names", default="C2_10_1,RC2_10_1", help="Gehring-Homberger instances ('' for none)")
    parser.add_argument("--gh-time-limit", type=float, default=60.0)
    parser.add_argument("--pbf", type=Path, default=SHARED / "osm" / "liechtenstein-latest.osm.pbf")
    parser.add_argument("--days", default="2000/80", help="visits/teams, comma-separated ('' for none)")
    parser.add_argument("--day-limits", default="60,300", help="seconds, comma-separated")
    parser.add_argument("--lab-days", default="", help="visits/teams with a lab at each depot (OR-Tools' days)")
    parser.add_argument("--seeds", default="1", help="comma-separated seeds (solver and day generator)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows: list[dict[str, Any]] = []
    names = [n for n in args.names.split(",") if n]
    for instance in load_instances([args.homberger], names) if names else []:
        for seed in seeds:
            for solver in ("split", "whole", "pyvrp"):
                rows.append(gh_row(instance, solver, args.gh_time_limit, seed))
                _show(rows[-1])
                _write(args.out, rows)
    sizes = [(tuple(int(x) for x in s.split("/")), False) for s in args.days.split(",") if s]
    sizes += [(tuple(int(x) for x in s.split("/")), True) for s in args.lab_days.split(",") if s]
    if sizes:
        name, walk, drive = load_day_networks(args.pbf)
        for (visits, teams), labs in sizes:
            for seed in seeds:
                problem = make_day(name, walk, drive, visits, teams, seed).problem
                case = f"{name}-{visits}/{teams}"
                if labs:
                    problem, case = with_labs(problem, walk, drive), f"{case}+labs"
                for limit in (float(x) for x in args.day_limits.split(",")):
                    for solver in ("whole", "split"):
                        rows.append(day_row(case, problem, solver, limit, seed))
                        _show(rows[-1])
                        _write(args.out, rows)
    print()
    for line in ratios(rows):
        print(line)
    _write(args.out, rows)
    print(f"wrote {args.out}")


def _write(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """After each solve, so an interrupted run keeps its rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
