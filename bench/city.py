"""City benchmark: a round of N districts through ``POST /v1/rounds``, on the embedded runner and
on a Celery pool of 1 and 2 workers, against the same districts solved one by one.

    python -m bench.city PBF [--districts 16] [--buses 13] [--teams 6] [--areas 150] [--stops 120]
        [--visits 300] [--labs 3] [--time-limit 120] [--seed 1] [--radius-km 6]
        [--runners embedded,celery-1,celery-2,one-by-one] [--out city.json]

Each district is generated as :mod:`bench.district` generates one (:func:`district_scenario`, seed
``seed + k``), on the PBF's roads, its ids prefixed ``dK-`` and its items carrying ``district``.
Districts share the extract (a small country), so they overlap on the map: the work is a city's,
the geography is not. Requests name the network (no matrices): the API checks them, the workers
compute the matrices, as a deployment would.

- **embedded**: ``doorstep serve`` with its local worker processes (2, the default; each solve on every core).
- **celery-N**: ``doorstep serve`` with ``DOORSTEP_RUNNER=celery`` and N ``doorstep worker``
  processes (Redis on loopback), each one solve at a time on ``cores / N`` cores.
- **one-by-one**: the districts' requests solved one after another in this process (matrices,
  then :func:`routing.solver.solve`), no second pass: what a single machine did before rounds.

Scored from the plans: people covered, households (home visits) served, late samples, drive
(travel of the vehicles on the road profile), wall seconds from submitting to the joined round
(and to the end of the first pass, the districts alone, comparable with one-by-one).
Each district's solve gets ``time limit`` seconds after its matrices, in every runner.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from bench.district_scenario import District, district_scenario
from routing.model import Priority, TimeWindow
from routing.network import load_network

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
NETWORK = "city"
RUNNERS = ("embedded", "celery-1", "celery-2", "one-by-one")
LATE = ("sample_too_old", "samples_undelivered")


# -- the round's request -------------------------------------------------------------------------------


def _json(value: Any) -> Any:
    """A routing-model value as the request's JSON has it (times in seconds)."""
    if isinstance(value, TimeWindow):
        return {"start": value.start_s, "end": value.end_s}
    if isinstance(value, Priority):
        return value.name.lower()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _json(v) for k, v in value.items()}
    return value


def _item(obj: Any, prefix: str, district: str, refs: Sequence[str] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"district": district}
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if field.name == "breaks":
            value = [{"id": b.id, "start": b.window.start_s, "end": b.window.end_s, "duration_s": b.duration_s}
                     for b in value]
        elif field.name == "shift":
            value = {"start": value.start_s, "end": value.end_s}
        out[field.name] = _json(value)
    out["id"] = prefix + out["id"]
    for ref in refs:
        if out.get(ref) is not None:
            out[ref] = prefix + out[ref]
    return out


def district_items(district: District, k: int) -> dict[str, list[dict[str, Any]]]:
    prefix, name = f"d{k}-", f"d{k}"
    return {
        "depots": [_item(d, prefix, name) for d in district.depots],
        "vehicles": [_item(v, prefix, name, ("start_depot", "end_depot")) for v in district.vehicles],
        "visits": [_item(v, prefix, name, ("preferred_vehicle",)) for v in district.visits],
        "stops": [_item(s, prefix, name, ("group",)) for s in district.stops],
        "areas": [_item(a, prefix, name) for a in district.areas],
        "labs": [_item(lab, prefix, name) for lab in district.labs],
    }


def round_request(districts: Sequence[District], time_limit_s: float, seed: int) -> dict[str, Any]:
    request: dict[str, Any] = {"name": f"city round of {len(districts)}", "network": NETWORK,
                               "options": {"time_limit_s": time_limit_s, "seed": seed}}
    for k, district in enumerate(districts):
        for kind, items in district_items(district, k).items():
            request.setdefault(kind, []).extend(items)
    return request


# -- scoring ------------------------------------------------------------------------------------------


def score(documents: Sequence[Mapping[str, Any]], wall_s: float, people_total: int) -> dict[str, Any]:
    """The figures of a round from its districts' plan documents."""
    routes = [r for d in documents for r in d.get("routes", [])]
    return {
        "wall_s": round(wall_s, 1),
        "people_total": people_total,
        "people_covered": sum((d.get("summary") or {}).get("people_covered") or 0 for d in documents),
        "households_served": sum(1 for r in routes for s in r["steps"] if s["kind"] == "visit"),
        "stops_served": sum(1 for r in routes for s in r["steps"] if s["kind"] == "stop"),
        "late_samples": sum(1 for d in documents for v in d.get("violations", []) if v.get("kind") in LATE),
        "drive_s": round(sum(r["travel_s"] for r in routes if r["profile"] == "drive"), 1),
        "vehicles_used": len(routes),
    }


# -- running a round through the API ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(method: str, url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as answer:
        return json.loads(answer.read())


class Deployment:
    """``doorstep serve`` (and ``doorstep worker`` processes for Celery) on a fresh database."""

    def __init__(self, pbf: Path, runner: str, data: Path, work: Path, time_limit_s: float) -> None:
        self.work = work
        cores = os.cpu_count() or 1
        celery_workers = int(runner.split("-")[1]) if runner.startswith("celery") else 0
        self.env = {
            **os.environ,
            "DOORSTEP_DATA_DIR": str(data),  # shared: the road networks are cached there once
            "DOORSTEP_DATABASE_URL": f"sqlite:///{work / 'doorstep.db'}",
            "DOORSTEP_NETWORKS": json.dumps({NETWORK: str(pbf.resolve())}),
            "DOORSTEP_DEFAULT_NETWORK": NETWORK,
            "DOORSTEP_AUTH": "open",
            "DOORSTEP_LOG_LEVEL": "WARNING",
            "DOORSTEP_MAX_TIME_LIMIT_S": str(max(300.0, time_limit_s)),
            "DOORSTEP_MAX_VISITS": "100000",
            "DOORSTEP_MAX_VEHICLES": "10000",
            "DOORSTEP_WORKERS": "0" if celery_workers else "2",  # the embedded runner as shipped
            "DOORSTEP_RUNNER": "celery" if celery_workers else "local",
            "DOORSTEP_CELERY_QUEUE": f"bench-city-{os.getpid()}",
            "DOORSTEP_SOLVE_CORES": str(max(1, cores // max(1, celery_workers))),
            # The hard limit counts from the claim, matrices included: a district's 400-odd sites on
            # a loaded machine took over the default 60 s grace, and its plan was failed.
            "DOORSTEP_HARD_LIMIT_GRACE_S": "600",
            "DOORSTEP_VISIBILITY_TIMEOUT_S": str(max(300.0, time_limit_s) + 1200),
            "PYTHONUNBUFFERED": "1",
        }
        doorstep = Path(sys.executable).with_name("doorstep")
        self.command = [str(doorstep)] if doorstep.exists() else [sys.executable, "-m", "service.cli"]
        self.processes: list[subprocess.Popen[bytes]] = []
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._start(["serve", "--port", str(self.port)], "serve.log")
        for i in range(celery_workers):
            self._start(["worker", "--concurrency", "1", "--name", f"bench{i}-{os.getpid()}@%h"], f"worker-{i}.log")
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                if _call("GET", f"{self.url}/readyz")["status"] == "ok":
                    return
            except OSError:
                pass
            time.sleep(1)
        raise SystemExit(f"the API did not become ready; see {work}/serve.log")

    def _start(self, args: list[str], log: str) -> None:
        with (self.work / log).open("wb") as out:
            self.processes.append(subprocess.Popen([*self.command, *args], env=self.env, cwd=ROOT, stdout=out,
                                                   stderr=subprocess.STDOUT, start_new_session=True))

    def round(self, request: Mapping[str, Any], log: Any) -> tuple[dict[str, Any], float]:
        started = time.monotonic()
        created = _call("POST", f"{self.url}/v1/rounds", request)
        last = ""
        self.districts_s: float | None = None
        while True:
            body = _call("GET", self.url + created["url"])
            if self.districts_s is None and body["stage"] != "districts":
                self.districts_s = time.monotonic() - started
            line = " ".join(f"{d}:{e['status']}" for d, e in body["districts"].items())
            if line != last:
                log(f"  {time.monotonic() - started:6.0f} s  {body['stage']}  {line}")
                last = line
            if body["status"] == "done":
                return body, time.monotonic() - started
            time.sleep(1)

    def close(self) -> None:
        for process in self.processes:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def _registry(pbf: Path, data: Path) -> Any:
    from service.config import Settings
    from service.networks import NetworkRegistry

    return NetworkRegistry(Settings(data_dir=data, networks={NETWORK: str(pbf.resolve())}, default_network=NETWORK))


def one_by_one(pbf: Path, request: Mapping[str, Any], work: Path, log: Any) -> tuple[list[dict[str, Any]], float]:
    """The districts' requests solved one after another in this process, as the workers would."""
    from routing.solver import solve
    from service.pipeline import document_of, prepare
    from service.rounds import split_round
    from service.schemas import PlanRequest, dump_document

    registry = _registry(pbf, work)
    registry.load_all()  # loading the extract is start-up, not the districts' work
    settings = registry.settings
    documents = []
    started = time.monotonic()
    for district, part in split_round(PlanRequest.model_validate(request)).items():
        if part is None:
            continue
        prepared = prepare(part, registry)
        # As a worker does: the matrices first, then the whole time limit for the solve.
        limit = part.options.time_limit_s or settings.default_time_limit_s
        plan = solve(prepared.problem, time_limit_s=limit, seed=part.options.seed)
        documents.append(dump_document(document_of(prepared, plan)))
        log(f"  {time.monotonic() - started:6.0f} s  {district} done")
    return documents, time.monotonic() - started


def run(pbf: Path, args: argparse.Namespace, log: Any) -> dict[str, Any]:
    drive = load_network(pbf, profile="drive")
    walk = load_network(pbf, profile="walk")
    districts = [
        district_scenario(drive, walk, buses=args.buses, teams=args.teams, areas=args.areas, stops=args.stops,
                          visits=args.visits, labs=args.labs, seed=args.seed + k,
                          radius_km=args.radius_km or None)
        for k in range(args.districts)
    ]
    people_total = sum(d.people_total for d in districts)
    request = round_request(districts, args.time_limit, args.seed)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-city-") as tmp:
        # Each runner starts from the road networks' cache built here (the first must not pay for
        # it inside its time limits), and without the travel matrices another runner computed
        # (the registry keeps them on disk: a later runner would compute none).
        base = Path(tmp) / "base"
        _registry(pbf, base).load_all()
        for runner in args.runners:
            log(f"{runner}:")
            data = work = Path(tmp) / runner
            shutil.copytree(base / "cache", data / "cache", ignore=shutil.ignore_patterns("matrices"))
            if runner == "one-by-one":
                documents, wall = one_by_one(pbf, request, data, log)
                results[runner] = score(documents, wall, people_total)
                continue
            deployment = Deployment(pbf, runner, data, work, args.time_limit)
            try:
                body, wall = deployment.round(request, log)
            finally:
                deployment.close()
            plan = body["plan"]
            results[runner] = score(plan["districts"], wall, people_total) | {
                "first_pass_s": None if deployment.districts_s is None else round(deployment.districts_s, 1),
                "served_by_neighbours": plan["summary"]["served_by_neighbours"],
                "per_district_s": _per_district_s(body),
            }
    return {
        "scenario": {"districts": args.districts, "buses": args.buses, "teams": args.teams, "areas": args.areas,
                     "stops": args.stops, "visits": args.visits, "labs": args.labs, "time_limit_s": args.time_limit,
                     "seed": args.seed, "cores": os.cpu_count(), "load": os.getloadavg()[0]},
        "results": results,
    }


def _per_district_s(body: Mapping[str, Any]) -> dict[str, float | None]:
    return {d: (e.get("progress") or {}).get("elapsed_s") for d, e in body["districts"].items()}


def table(document: Mapping[str, Any]) -> str:
    results = document["results"]
    keys = ("wall_s", "first_pass_s", "people_covered", "households_served", "stops_served", "late_samples", "drive_s",
            "vehicles_used", "served_by_neighbours")
    lines = [f"{'':22}" + "".join(f"{r:>14}" for r in results)]
    for key in keys:
        lines.append(f"{key:22}" + "".join(f"{results[r].get(key, '-')!s:>14}" for r in results))
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.city", description=__doc__.split("\n\n")[0])
    parser.add_argument("pbf", type=Path)
    parser.add_argument("--districts", type=int, default=16)
    parser.add_argument("--buses", type=int, default=13)
    parser.add_argument("--teams", type=int, default=6)
    parser.add_argument("--areas", type=int, default=150)
    parser.add_argument("--stops", type=int, default=120)
    parser.add_argument("--visits", type=int, default=300)
    parser.add_argument("--labs", type=int, default=3)
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per district, matrices included")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--radius-km", type=float, default=6.0)
    parser.add_argument("--runners", type=lambda s: s.split(","), default=list(RUNNERS))
    parser.add_argument("--out", type=Path, default=RESULTS / "city.json")
    args = parser.parse_args(argv)
    unknown = set(args.runners) - set(RUNNERS)
    if unknown:
        parser.error(f"unknown runners {sorted(unknown)}; choose among {', '.join(RUNNERS)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (timeout, Ctrl-C from make) as an exception, so the servers and workers are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not args.pbf.is_file():
        print(f"error: {args.pbf} is not a file", file=sys.stderr)
        return 2
    document = run(args.pbf, args, lambda line: print(line, file=sys.stderr, flush=True))
    print(table(document))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
