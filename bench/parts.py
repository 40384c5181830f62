"""Large days with their parts on another Celery worker, against the same split on one machine.

    python -m bench.parts [--pbf PBF] [--days 1000/40] [--time-limit 60] [--seeds 1]
        [--modes local-2,celery-1+1,local-1] [--out bench/results/parts.csv]

Each home-visit day (``bench.homevisits.make_day``, as ``bench.large``) is solved split
(``split=True``) the same budget three ways:

- **local-2**: the parts as engine processes of this machine on both cores (one worker's split);
- **celery-1+1**: one core here and one part slot on a ``doorstep worker --parts-only`` process
  (concurrency 1) over the Redis of loopback: every batch sends a part there as a Celery task,
  signed and pickled, and waits for its answer (:mod:`service.celery_parts`);
- **local-1**: one core alone, what the slot elsewhere adds to.

On this 2-core machine celery-1+1 uses the same two cores as local-2, so their ratio is what
moving parts through the broker costs (or not); with N machines the batches are N slots wide.
Printed: households served, travel and their ratios to local-2, parts sent and answered in time.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.homevisits import load_day_networks, make_day, travel_s
from routing.evaluate import evaluate
from routing.model import Problem
from routing.solver import SolveParams, solve
from routing.solver.split import LOCAL_PARTS, PartRunner

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUT = RESULTS / "parts.csv"
SHARED = ROOT.parent / "shared"
MODES = ("local-2", "celery-1+1", "local-1")
COLUMNS = (
    "case", "mode", "time_limit_s", "seed", "served", "tasks", "travel_s", "feasible", "parts_sent",
    "parts_answered", "seconds", "load_1m",
)  # fmt: skip


@contextmanager
def part_worker(broker_url: str) -> Iterator[tuple[Any, Any]]:
    """A ``doorstep worker --parts-only`` process on a queue of its own; yields (settings, app)."""
    from service.celery_runner import make_celery
    from service.config import Settings

    data = Path(tempfile.mkdtemp(prefix="bench-parts-"))
    values = {
        "runner": "celery", "broker_url": broker_url, "celery_queue": f"bench-parts-{uuid.uuid4().hex[:8]}",
        "data_dir": str(data), "networks": "{}", "workers": "0", "solve_cores": "1", "part_slots": "1",
        "part_key": secrets.token_hex(16),
    }  # fmt: skip
    env = {f"DOORSTEP_{k.upper()}": v for k, v in values.items()}
    settings = Settings(**(values | {"networks": {}}))  # type: ignore[arg-type]
    log = data / "worker.log"
    doorstep = Path(sys.executable).with_name("doorstep")
    command = [str(doorstep)] if doorstep.exists() else [sys.executable, "-m", "service.cli"]
    with log.open("w") as out:
        worker = subprocess.Popen(
            [*command, "worker", "--parts-only", "--concurrency", "1"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        ends = time.monotonic() + 120
        while not re.search(r"worker \S+ ready", log.read_text()):
            if worker.poll() is not None or time.monotonic() > ends:
                raise RuntimeError(f"the part worker did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield settings, make_celery(settings)
    finally:
        os.killpg(worker.pid, 9)
        worker.wait(10)


def row(case: str, problem: Problem, mode: str, limit: float, seed: int, runner: PartRunner) -> dict[str, Any]:
    cores = 2 if mode == "local-2" else 1
    started = time.perf_counter()
    plan = solve(problem, SolveParams(time_limit_s=limit, seed=seed, split=True, cores=cores), part_runner=runner)
    seconds = time.perf_counter() - started
    evaluation = evaluate(problem, {r.vehicle_id: [s.id for s in r.steps[1:-1]] for r in plan.routes if r.task_ids})
    return {
        "case": case, "mode": mode, "time_limit_s": limit, "seed": seed,
        "served": len(problem.visits) - len(evaluation.missing), "tasks": len(problem.visits),
        "travel_s": round(travel_s(evaluation), 1), "feasible": evaluation.feasible,
        "parts_sent": getattr(runner, "sent", None), "parts_answered": getattr(runner, "returned", None),
        "seconds": round(seconds, 1), "load_1m": round(os.getloadavg()[0], 2),
    }  # fmt: skip


def summary(rows: Sequence[dict[str, Any]]) -> list[str]:
    lines = []
    for case in dict.fromkeys(r["case"] for r in rows):
        base = [r for r in rows if r["case"] == case and r["mode"] == "local-2"]
        for mode in MODES[1:]:
            mine = [r for r in rows if r["case"] == case and r["mode"] == mode]
            pairs = [(m, b) for m in mine for b in base if b["seed"] == m["seed"]]
            if not pairs:
                continue
            travel = statistics.median(m["travel_s"] / b["travel_s"] for m, b in pairs)
            served = statistics.median(m["served"] - b["served"] for m, b in pairs)
            lines.append(f"{case} {mode} against local-2 (n={len(pairs)}): households served {served:+g}, "
                         f"travel ratio {travel:.4f}")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.parts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pbf", type=Path, default=SHARED / "osm" / "liechtenstein-latest.osm.pbf")
    parser.add_argument("--days", default="1000/40", help="visits/teams, comma-separated")
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--broker-url", default=os.environ.get("DOORSTEP_BROKER_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"--modes: unknown {sorted(unknown)}; choose from {', '.join(MODES)}")
    from service.celery_parts import CeleryParts

    rows: list[dict[str, Any]] = []
    name, walk, drive = load_day_networks(args.pbf)
    with part_worker(args.broker_url) as (settings, app):
        for visits, teams in (tuple(int(x) for x in s.split("/")) for s in args.days.split(",") if s):
            for seed in (int(s) for s in args.seeds.split(",")):
                day = make_day(name, walk, drive, visits, teams, seed)
                for mode in modes:
                    runner = CeleryParts(app, settings) if mode.startswith("celery") else LOCAL_PARTS
                    rows.append(row(f"{name}-{visits}/{teams}", day.problem, mode, args.time_limit, seed, runner))
                    print("  ".join(f"{k} {v}" for k, v in rows[-1].items()), flush=True)
                    _write(args.out, rows)
    print()
    for line in summary(rows):
        print(line)
    print(f"wrote {args.out}")


def _write(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
