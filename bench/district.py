"""District benchmark: mobile sampling buses and home-visit teams on a real road network,
Doorstep's stop selection against a simple baseline, in the same run.

    python -m bench.district PBF [--buses 13] [--teams 6] [--areas 150] [--stops 120]
        [--visits 300] [--labs 3] [--time-limit 120] [--seed 1] [--radius-km 6]
        [--clusters N] [--bound] [--out district.json]

A seeded district (:mod:`bench.district_scenario`) is generated on the PBF's drive and walk
networks. Travel matrices are computed with :mod:`routing.matrix` (drive for buses and vans,
walk for teams on foot) and walks from areas to stops with :mod:`routing.walking`; that time
counts against the budget, so each solve gets ``time limit - matrix time``.

- **doorstep**: the problem as generated; the solver chooses stops and assigns areas to them.
- **baseline**: each area goes to its nearest candidate stop within its walking limit (by walk
  distance); every such stop is made required with the people of its areas, the other
  candidates and the areas are dropped (so nothing is chosen), and the result is routed with the
  same solver, budget and seed. An area is covered when its stop is in a route.
- **cluster_bound** (``--bound``): what a perfect stop choice could at best save. Each cluster
  (village, compound, school, factory) is served from one place, its first candidate stop, with
  all its people that have any stop in walking reach (walking limits ignored there, so it covers
  at least as many as any real choice; split into co-located stops where one stay could not
  take them all), routed with the same solver and budget. No choice visits fewer places; its
  driving is what stop choice cannot remove (between clusters, to the labs, out and home).

Both are scored the same way from the plan (never from the solver's own figures): people
covered, visits assigned, everything left out by reason, late samples (lab drops whose oldest
sample is over ``max_sample_age_s``, samples never delivered), vehicles used, total travel time
of the routes, wall-clock seconds including the matrices. The JSON has ``scenario``,
``doorstep``, ``baseline`` and ``ratios`` (doorstep / baseline); a table is printed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.district_scenario import District, district_scenario
from routing.coverage import stop_capacity
from routing.model import BusStop, Lab, Problem, TravelMatrix, swab_tubes
from routing.network import RoadNetwork, load_network
from routing.plan import Plan, ViolationKind

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUT = RESULTS / "district.json"

FIELDS = (
    "people_total",
    "people_covered",
    "visits_total",
    "visits_assigned",
    "unassigned_by_reason",
    "late_samples",
    "max_sample_age_s",
    "vehicles_used",
    "total_drive_s",
    "solve_s",
)
"""What each side of the JSON has, at least."""

Solve = Callable[..., Plan]


def build_matrices(
    district: District, drive: RoadNetwork, walk: RoadNetwork
) -> tuple[dict[str, TravelMatrix], np.ndarray]:
    """Drive and walk matrices over the district's sites, and the areas' walks to the stops."""
    from routing.matrix import travel_matrix
    from routing.walking import area_walk_m

    points = [site.location for site in district.sites]
    ids = [site.id for site in district.sites]
    matrices = {
        "drive": travel_matrix(drive, points, ids=ids),
        "walk": travel_matrix(walk, points, ids=ids),
    }
    return matrices, area_walk_m(walk, district.areas, district.stops)


def nearest_stops(district: District, walk_m: np.ndarray) -> dict[str, str | None]:
    """Area id -> its nearest candidate stop within its walking limit (None: no stop in reach).

    The baseline keeps the problem's one hard rule on stops: of an alternatives group only one
    car park is used. Areas are served in order; an area whose nearest stop is the alternative
    of one already used takes its next nearest stop in reach, if any.
    """
    out: dict[str, str | None] = {}
    used_in_group: dict[str, str] = {}
    for i, area in enumerate(district.areas):
        out[area.id] = None
        for j in np.argsort(walk_m[i], kind="stable"):
            stop = district.stops[int(j)]
            if walk_m[i, j] > area.walk_limit_m:
                break
            if stop.group is not None and used_in_group.setdefault(stop.group, stop.id) != stop.id:
                continue
            out[area.id] = stop.id
            break
    return out


def baseline_problem(
    district: District, matrices: Mapping[str, TravelMatrix], walk_m: np.ndarray
) -> tuple[Problem, dict[str, str | None]]:
    """The baseline's problem (nearest stops, required, no areas) and each area's stop."""
    assignment = nearest_stops(district, walk_m)
    people: dict[str, int] = {}
    for area in district.areas:
        stop_id = assignment[area.id]
        if stop_id is not None:
            people[stop_id] = people.get(stop_id, 0) + area.population
    stops = [
        BusStop(
            id=s.id,
            location=s.location,
            people=people[s.id],
            time_windows=s.time_windows,
            required=True,
            group=s.group,
            max_dwell_s=s.max_dwell_s,
            setup_s=s.setup_s,
            demand={"tubes": swab_tubes(people[s.id])},
            notes=s.notes,
        )
        for s in district.stops
        if s.id in people
    ]
    kept = {s.id for s in stops}
    index = [i for i, site in enumerate(district.sites) if not isinstance(site, BusStop) or site.id in kept]
    sub = np.ix_(index, index)
    sub_matrices = {
        profile: TravelMatrix(m.durations_s[sub], m.distances_m[sub]) for profile, m in matrices.items()
    }
    problem = Problem(
        depots=district.depots,
        vehicles=district.vehicles,
        visits=district.visits,
        stops=stops,
        labs=district.labs,
        matrices=sub_matrices,
    )
    return problem, assignment


def cluster_bound_problem(
    district: District, matrices: Mapping[str, TravelMatrix], walk_m: np.ndarray
) -> Problem:
    """The cluster bound's problem: one place per cluster (see the module docstring)."""
    limits = np.array([a.walk_limit_m for a in district.areas])
    people: dict[str, int] = {}
    for i, area in enumerate(district.areas):
        if bool((walk_m[i] <= limits[i]).any()):
            cluster = district.cluster_of[area.id]
            people[cluster] = people.get(cluster, 0) + area.population
    place: dict[str, BusStop] = {}
    for stop in district.stops:
        place.setdefault(district.cluster_of[stop.id], stop)
    probe = district.problem(dict(matrices))
    stops: list[BusStop] = []
    site_of: list[int] = []
    for cluster, count in people.items():
        where = place[cluster]
        room = max(1, stop_capacity(probe, where))
        for k in range(math.ceil(count / room)):
            share = min(room, count - k * room)
            stops.append(replace(where, id=f"{where.id}-{k + 1}", people=share, required=True, group=None,
                                 demand={"tubes": swab_tubes(share)}))
            site_of.append(district.sites.index(where))
    before = [i for i, site in enumerate(district.sites) if not isinstance(site, BusStop | Lab)]
    labs = [i for i, site in enumerate(district.sites) if isinstance(site, Lab)]
    index = before + site_of + labs
    sub = np.ix_(index, index)
    return Problem(
        depots=district.depots,
        vehicles=district.vehicles,
        visits=district.visits,
        stops=stops,
        labs=district.labs,
        matrices={profile: TravelMatrix(m.durations_s[sub], m.distances_m[sub]) for profile, m in matrices.items()},
    )


def late_samples(problem: Problem, plan: Plan) -> int:
    """Lab drops whose oldest sample is over the limit, plus samples never delivered.

    A late drop is also a ``sample_too_old`` violation: it is counted once.
    """
    limit = problem.max_sample_age_s
    late_drops = sum(
        1
        for route in plan.used_routes
        for step in route.lab_drops
        if step.oldest_sample_age_s is not None and step.oldest_sample_age_s > limit
    )
    too_old = sum(1 for v in plan.violations if v.kind is ViolationKind.SAMPLE_TOO_OLD)
    undelivered = sum(1 for v in plan.violations if v.kind is ViolationKind.SAMPLES_UNDELIVERED)
    return max(late_drops, too_old) + undelivered


def measure(
    problem: Problem,
    plan: Plan,
    solve_s: float,
    *,
    people_total: int,
    covered: Mapping[str, tuple[int, bool]] | None = None,
    area_reasons: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The benchmark's figures of one plan. ``covered`` (area id -> population, covered?) and
    ``area_reasons`` stand in for the plan's coverage when the problem had no areas (the baseline)."""
    summary = plan.summary()
    used = plan.used_routes
    bus_ids = {v.id for v in problem.vehicles if v.kind == "bus"}
    by_reason = dict(summary["unassigned_by_reason"])
    for reason, count in (area_reasons or {}).items():
        by_reason[reason] = by_reason.get(reason, 0) + count
    if covered is None:
        people_covered = summary["people_covered"]
    else:
        people_covered = sum(population for population, ok in covered.values() if ok)
    ages = [s.oldest_sample_age_s for r in used for s in r.lab_drops if s.oldest_sample_age_s is not None]
    drivers = {v.id for v in problem.vehicles if v.profile == "drive"}
    return {
        "people_total": people_total,
        "people_covered": int(people_covered),
        "visits_total": len(problem.visits),
        "visits_assigned": summary["visits_assigned"],
        "unassigned_by_reason": dict(sorted(by_reason.items())),
        "late_samples": late_samples(problem, plan),
        "max_sample_age_s": None if not ages else round(max(ages), 1),
        "vehicles_used": len(used),
        "buses_used": sum(1 for r in used if r.vehicle_id in bus_ids),
        # Driving is what vehicles on the road do (buses, vans); teams on foot walk (walk_s).
        "total_drive_s": round(sum(r.travel_s for r in used if r.vehicle_id in drivers), 1),
        "bus_drive_s": round(sum(r.travel_s for r in used if r.vehicle_id in bus_ids), 1),
        "walk_s": round(sum(r.travel_s for r in used if r.vehicle_id not in drivers), 1),
        "total_distance_m": round(sum(r.distance_m for r in used), 1),
        "stops_served": summary["stops_served"],
        "lab_drops": summary["lab_drops"],
        "violations": len(plan.violations),
        "feasible": plan.is_feasible,
        "engine": plan.engine,
        "solve_s": round(solve_s, 2),
    }


def run(
    drive: RoadNetwork,
    walk: RoadNetwork,
    *,
    buses: int = 13,
    teams: int = 6,
    areas: int = 150,
    stops: int = 120,
    visits: int = 300,
    labs: int = 3,
    time_limit_s: float = 120.0,
    seed: int = 1,
    radius_km: float | None = 6.0,
    clusters: int | None = None,
    bound: bool = False,
    solve: Solve | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Generate the district, solve it both ways, and return the JSON document."""
    if solve is None:
        from routing.solver import solve as solve_
        solve = solve_
    district = district_scenario(
        drive, walk, buses=buses, teams=teams, areas=areas, stops=stops, visits=visits, labs=labs, seed=seed,
        radius_km=radius_km, clusters=clusters,
    )
    started = time.monotonic()
    matrices, walk_m = build_matrices(district, drive, walk)
    matrix_s = time.monotonic() - started
    remaining = max(time_limit_s - matrix_s, 0.1 * time_limit_s)
    log(f"{len(district.sites)} sites, {len(district.areas)} areas; matrices in {matrix_s:.1f} s, "
        f"{remaining:.1f} s left for each solve")

    problem = district.problem(matrices, walk_m)
    t = time.monotonic()
    plan = solve(problem, time_limit_s=remaining, seed=seed)
    doorstep = measure(problem, plan, matrix_s + time.monotonic() - t, people_total=district.people_total)
    log(f"doorstep: {doorstep['people_covered']} of {doorstep['people_total']} people, "
        f"{doorstep['visits_assigned']} visits, {doorstep['solve_s']} s")

    base, assignment = baseline_problem(district, matrices, walk_m)
    t = time.monotonic()
    base_plan = solve(base, time_limit_s=remaining, seed=seed)
    base_s = matrix_s + time.monotonic() - t
    served = {stop_id for route in base_plan.used_routes for stop_id in route.stop_ids}
    covered = {a.id: (a.population, assignment[a.id] in served) for a in district.areas}
    area_reasons: dict[str, int] = {}
    for area in district.areas:
        stop_id = assignment[area.id]
        if stop_id is None:
            key = "area:no_stop_in_walking_range"
        elif stop_id not in served:
            key = "area:stop_not_served"
        else:
            continue
        area_reasons[key] = area_reasons.get(key, 0) + 1
    baseline = measure(
        base, base_plan, base_s, people_total=district.people_total, covered=covered, area_reasons=area_reasons
    )
    log(f"baseline: {baseline['people_covered']} people, {baseline['visits_assigned']} visits, "
        f"{baseline['solve_s']} s")
    sides = {"doorstep": doorstep, "baseline": baseline}
    if bound:
        ideal = cluster_bound_problem(district, matrices, walk_m)
        t = time.monotonic()
        ideal_plan = solve(ideal, time_limit_s=remaining, seed=seed)
        sides["cluster_bound"] = measure(ideal, ideal_plan, matrix_s + time.monotonic() - t,
                                         people_total=district.people_total)
        served = {stop_id for route in ideal_plan.used_routes for stop_id in route.stop_ids}
        sides["cluster_bound"]["people_covered"] = sum(s.people for s in ideal.stops if s.id in served)
        log(f"cluster bound: {len(ideal.stops)} stops, {sides['cluster_bound']['total_drive_s']} s driving")
    return {
        "scenario": {
            "network": drive.name,
            "seed": seed,
            "time_limit_s": time_limit_s,
            "matrix_s": round(matrix_s, 2),
            "radius_km": radius_km,
            "clusters": len({district.cluster_of[s.id] for s in district.stops}),
            "buses": buses,
            "teams": teams,
            "areas": len(district.areas),
            "stops": len(district.stops),
            "visits": len(district.visits),
            "labs": len(district.labs),
            "people_total": district.people_total,
            "max_sample_age_s": problem.max_sample_age_s,
            "baseline_stops": len(base.stops),
        },
        **sides,
        "ratios": ratios(doorstep, baseline),
        **({"bound_ratios": ratios(sides["cluster_bound"], baseline)} if bound else {}),
    }


RATIO_FIELDS = ("people_covered", "visits_assigned", "vehicles_used", "total_drive_s", "bus_drive_s",
                "stops_served", "lab_drops", "solve_s")


def ratios(doorstep: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, float | None]:
    """doorstep / baseline for the numeric fields (None when the baseline's is 0)."""
    out: dict[str, float | None] = {}
    for name in RATIO_FIELDS:
        a, b = doorstep.get(name), baseline.get(name)
        out[name] = None if not isinstance(a, int | float) or not b else round(a / b, 3)
    return out


def table(document: Mapping[str, Any]) -> str:
    """The comparison as a fixed-width text table (with the cluster bound's columns when it ran)."""
    sides = [side for side in ("doorstep", "baseline", "cluster_bound") if side in document]
    ratio_columns = [("ratio", document["ratios"])]
    if "bound_ratios" in document:
        ratio_columns.append(("bound/base", document["bound_ratios"]))
    rows = [("", *sides, *(title for title, _ in ratio_columns))]
    for name in (*FIELDS, "buses_used", "bus_drive_s", "stops_served", "lab_drops", "violations", "feasible"):
        if name == "unassigned_by_reason":
            continue
        cells = [_fmt(document[side].get(name)) for side in sides]
        cells += ["" if r.get(name) is None else f"{r[name]:.3f}" for _, r in ratio_columns]
        rows.append((name, *cells))
    width = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width[0]) if i == 0 else cell.rjust(width[i]) for i, cell in enumerate(row))
             for row in rows]
    for side in sides:
        reasons = document[side]["unassigned_by_reason"]
        lines.append(f"{side} left out: " + (", ".join(f"{k} {v}" for k, v in reasons.items()) or "nothing"))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.district", description=__doc__.split("\n\n")[0])
    parser.add_argument("pbf", type=Path, help="OSM extract (.osm.pbf) to build the district on")
    parser.add_argument("--buses", type=int, default=13)
    parser.add_argument("--teams", type=int, default=6)
    parser.add_argument("--areas", type=int, default=150)
    parser.add_argument("--stops", type=int, default=120)
    parser.add_argument("--visits", type=int, default=300)
    parser.add_argument("--labs", type=int, default=3)
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per solve, matrices included")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--radius-km", type=float, default=6.0, help="district around the centre; 0: everything")
    parser.add_argument("--clusters", type=int, default=None,
                        help="villages, compounds, schools and factories (default: 2-3 candidate stops each)")
    parser.add_argument("--bound", action="store_true",
                        help="also route the cluster bound: one place per cluster (stop choice's best case)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.pbf.is_file():
        print(f"error: {args.pbf} is not a file", file=sys.stderr)
        return 2
    drive = load_network(args.pbf, profile="drive")
    walk = load_network(args.pbf, profile="walk")
    document = run(
        drive, walk, buses=args.buses, teams=args.teams, areas=args.areas, stops=args.stops, visits=args.visits,
        labs=args.labs, time_limit_s=args.time_limit, seed=args.seed, radius_km=args.radius_km or None,
        clusters=args.clusters, bound=args.bound, log=lambda line: print(line, file=sys.stderr),
    )
    print(table(document))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
