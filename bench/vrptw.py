"""VRPTW/CVRP benchmark: Doorstep against PyVRP, pyvroom and plain OR-Tools on the same budget.

    python -m bench.vrptw DIR [DIR ...] [--names C101,R101] [--time-limit 10]
        [--solvers doorstep,pyvrp,vroom,ortools] [--out results.csv] [--routes routes.json] [--seed 1]

DIR is a folder of Solomon ``.txt`` and/or VRPLIB ``.vrp`` files with a ``bks.csv``
(``instance,vehicles,distance``); give several, or a comma list. Each solver solves each
instance once with the same wall-clock limit. Peers run single-threaded in this process;
Doorstep runs as in production (worker processes), so ``cpu_s`` (this process and all its
descendants, see :func:`cpu_seconds`) is reported beside ``seconds`` (wall clock).

Every answer is scored by the benchmark, never by the solver: distance is recomputed from the
routes (Solomon: unrounded Euclidean; CVRPLIB: rounded per edge) and feasibility is checked by
Doorstep's independent evaluator (``routing.evaluate``) together with the benchmark's own
coverage check (every customer exactly once, at most the fleet); until the evaluator exists,
the benchmark's own schedule check stands in for it. An empty or infeasible answer still gets a
row, with ``feasible`` false and no gap.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from statistics import mean

from bench.instances import Instance, Routes, check_coverage, check_schedule, load_instances, route_distance, to_problem
from bench.peers import SOLVERS, doorstep_available

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUT = RESULTS / "vrptw.csv"
DEFAULT_ROUTES = RESULTS / "vrptw_routes.json"
FAMILY_ORDER = ("C1", "C2", "R1", "R2", "RC1", "RC2", "X")


@dataclass(frozen=True, slots=True)
class Row:
    """One line of ``results.csv``: a solver's answer to an instance, as the benchmark scores it."""

    instance: str
    solver: str
    vehicles: int | None
    distance: float | None
    gap_pct: float | None
    feasible: bool
    seconds: float
    cpu_s: float


COLUMNS = tuple(f.name for f in fields(Row))


def gap_pct(distance: float, best_known: float) -> float:
    """Distance above the best-known, in percent of it (negative: better than the best-known)."""
    return 100.0 * (distance - best_known) / best_known


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process tree, for deltas around a solve.

    ``getrusage`` counts this process and the children it has reaped, but not processes a
    forkserver starts (Doorstep's workers are its children, and it reaps them). So on Linux the
    live descendants are added from ``/proc``: their own time and what they have reaped
    (``cutime``/``cstime``). Zombies still report their time there until they are reaped.
    """
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total + _descendants_cpu_s()


def _descendants_cpu_s() -> float:
    """Own and reaped CPU seconds of every live descendant of this process (0 without /proc)."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return 0.0
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone since the listing
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # fields from the 3rd (state) on
        pid, ppid = int(entry.name), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        times[pid] = sum(int(v) for v in fields[11:15]) / tick  # utime stime cutime cstime
    total, stack = 0.0, list(children.get(os.getpid(), []))
    while stack:
        pid = stack.pop()
        total += times[pid]
        stack.extend(children.get(pid, []))
    return total


def judge(instance: Instance, routes: Routes) -> list[str]:
    """Why the routes are infeasible (empty when they are feasible).

    Coverage and fleet size are the benchmark's own check; capacity and time are the
    independent evaluator's (``routing.evaluate``) when it exists, else the benchmark's.
    """
    if not any(routes):
        return ["no solution"]
    faults = check_coverage(instance, routes)
    if faults:
        return faults
    own = check_schedule(instance, routes)
    try:
        from routing.evaluate import evaluate
    except ImportError:
        return own
    used = [route for route in routes if route]
    try:
        evaluation = evaluate(
            to_problem(instance), {f"v{i + 1}": [str(c) for c in route] for i, route in enumerate(used)}
        )
    except ValueError as error:  # ProblemError and friends: the routes do not fit the problem
        return [f"evaluator: {error}"]
    verdict = [f"evaluator: {v.message}" for v in evaluation.violations]
    if not evaluation.feasible and not verdict:
        verdict = ["evaluator: infeasible"]
    if bool(own) != bool(verdict):
        print(
            f"  warning: {instance.name}: evaluator says {'in' if verdict else ''}feasible, "
            f"the benchmark's check says {own or 'feasible'}",
            file=sys.stderr,
        )
    return verdict


def run_one(instance: Instance, solver: str, *, time_limit_s: float, seed: int) -> tuple[Row, Routes]:
    """Solve once, time it, and score the answer. A solver that raises gets an empty answer."""
    cpu, start = cpu_seconds(), time.perf_counter()
    try:
        routes = SOLVERS[solver](instance, time_limit_s, seed)
    except Exception:
        print(f"  {solver} failed on {instance.name}:\n{traceback.format_exc()}", file=sys.stderr)
        routes = []
    seconds = time.perf_counter() - start
    cpu_s = cpu_seconds() - cpu
    routes = [list(route) for route in routes if route]
    faults = judge(instance, routes)
    feasible = not faults
    distance = route_distance(instance, routes) if routes else None
    gap = gap_pct(distance, instance.bks.distance) if feasible and distance and instance.bks else None
    row = Row(
        instance=instance.name,
        solver=solver,
        vehicles=len(routes) if routes else None,
        distance=distance,
        gap_pct=gap,
        feasible=feasible,
        seconds=seconds,
        cpu_s=cpu_s,
    )
    if faults:
        print(f"  {solver} on {instance.name} infeasible: {'; '.join(faults[:3])}", file=sys.stderr)
    return row, routes


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        text = f"{value:.3f}"
        return "0.000" if text == "-0.000" else text
    return str(value)


def write_csv(path: Path, rows: Iterable[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows([_cell(v) for v in astuple(row)] for row in rows)


def routes_json(routes: dict[str, dict[str, Routes]]) -> str:
    """``{solver: {instance: [[customer numbers in visiting order], ...]}}``, one route per line."""
    solvers = []
    for solver, by_instance in routes.items():
        instances = []
        for name, answer in by_instance.items():
            body = ",\n".join(f"      {json.dumps(route)}" for route in answer)
            instances.append(f"    {json.dumps(name)}: [\n{body}\n    ]" if answer else f"    {json.dumps(name)}: []")
        inner = ",\n".join(instances)
        solvers.append(f"  {json.dumps(solver)}: {{\n{inner}\n  }}" if instances else f"  {json.dumps(solver)}: {{}}")
    return "{\n" + ",\n".join(solvers) + "\n}\n" if solvers else "{}\n"


def write_routes(path: Path, routes: dict[str, dict[str, Routes]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(routes_json(routes))


def _families(rows: Sequence[Row], family_of: dict[str, str]) -> list[str]:
    present = {family_of[row.instance] for row in rows}
    return [f for f in FAMILY_ORDER if f in present] + sorted(present - set(FAMILY_ORDER))


def summary(rows: Sequence[Row], instances: Sequence[Instance]) -> str:
    """Per solver, per family and overall: solved count, mean gap and mean extra vehicles (vs BKS).

    Means are over feasible answers only (the ``solved`` column says how many). ``common`` is
    over the instances every solver solved, the fair comparison when some fail.
    """
    by_name = {i.name: i for i in instances}
    family_of = {i.name: i.family for i in instances}
    solvers = list(dict.fromkeys(row.solver for row in rows))
    solved_by_all = {name for name in by_name if all(r.feasible for r in rows if r.instance == name)}
    groups = [*_families(rows, family_of), "all", "common"]
    header = f"{'solver':<10} {'family':<7} {'solved':>7} {'gap %':>8} {'+veh':>6} {'wall s':>7} {'cpu s':>7}"
    lines = [header, "-" * len(header)]
    for solver in solvers:
        for group in groups:
            mine = [
                r
                for r in rows
                if r.solver == solver
                and (
                    group == "all"
                    or (group == "common" and r.instance in solved_by_all)
                    or family_of[r.instance] == group
                )
            ]
            if not mine:
                continue
            good = [r for r in mine if r.feasible]
            gaps = [r.gap_pct for r in good if r.gap_pct is not None]
            extra = [
                r.vehicles - bks.vehicles
                for r in good
                if r.vehicles is not None and (bks := by_name[r.instance].bks) is not None
            ]
            lines.append(
                f"{solver:<10} {group:<7} {f'{len(good)}/{len(mine)}':>7} "
                f"{f'{mean(gaps):.2f}' if gaps else '-':>8} {f'{mean(extra):+.2f}' if extra else '-':>6} "
                f"{mean(r.seconds for r in mine):>7.2f} {mean(r.cpu_s for r in mine):>7.2f}"
            )
        lines.append("")
    return "\n".join(lines).rstrip()


def _split(values: Iterable[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.vrptw", description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="instance folder(s); comma lists allowed")
    parser.add_argument("--names", help="comma list of instance names (default: all in DIR)")
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds per solve (default 10)")
    parser.add_argument("--solvers", help=f"comma list of {', '.join(SOLVERS)} (default: all that are available)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"CSV (default {DEFAULT_OUT})")
    parser.add_argument("--routes", type=Path, default=DEFAULT_ROUTES, help=f"JSON (default {DEFAULT_ROUTES})")
    parser.add_argument("--seed", type=int, default=1, help="seed for the solvers that take one (default 1)")
    args = parser.parse_args(argv)
    if args.time_limit <= 0:
        parser.error("--time-limit must be > 0")
    if args.solvers:
        args.solvers = _split([args.solvers])
        unknown = [s for s in args.solvers if s not in SOLVERS]
        if unknown:
            parser.error(f"unknown solvers {', '.join(unknown)}; choose from {', '.join(SOLVERS)}")
        if "doorstep" in args.solvers and not doorstep_available():
            parser.error("doorstep asked for, but routing.solver has no solve() yet")
    else:
        args.solvers = [s for s in SOLVERS if s != "doorstep" or doorstep_available()]
        if "doorstep" not in args.solvers:
            print("note: routing.solver has no solve() yet; running the peers only", file=sys.stderr)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        instances = load_instances([Path(d) for d in _split(args.dirs)], _split([args.names]) if args.names else None)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rows: list[Row] = []
    routes: dict[str, dict[str, Routes]] = {solver: {} for solver in args.solvers}
    for instance in instances:
        for solver in args.solvers:
            row, answer = run_one(instance, solver, time_limit_s=args.time_limit, seed=args.seed)
            rows.append(row)
            routes[solver][instance.name] = answer
            gap = f"{row.gap_pct:+.2f} %" if row.gap_pct is not None else "-"
            print(
                f"{instance.name:<12} {solver:<9} vehicles {_cell(row.vehicles) or '-':>3}"
                f" (bks {instance.bks.vehicles if instance.bks else '?'})  gap {gap:>9}"
                f"  {'ok' if row.feasible else 'INFEASIBLE':<10}  {row.seconds:6.2f} s  cpu {row.cpu_s:6.2f} s",
                flush=True,
            )
            write_csv(args.out, rows)  # after each solve, so an interrupted run keeps its rows
            write_routes(args.routes, routes)
    print()
    print(summary(rows, instances))
    print(f"\nwrote {args.out} and {args.routes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
