"""Small requests answered synchronously: ``POST /v1/plans?wait=true`` end to end, on a real server.

    python -m bench.latency [--sizes 2,10] [--repeats 5] [--time-limit 10] [--out bench/results/latency.csv]

Starts ``doorstep serve`` on a free loopback port with a fresh data directory (SQLite, the
embedded workers), then posts requests of 2 and 10 visits cut from
``data/helsinki-home-visits.json`` (five teams, lunch breaks, skills; routed on the server's
road network, as an integrator's request is) with the server's default time limit, ``repeats``
times each, and reports the median wall time of the whole HTTP exchange. ``LATENCY_LOG=FILE``
keeps the server's log.
The baseline in the same run is ``GET /healthz``: what the server's own round trip costs.
A search stops when it has converged (``routing.solver.converged``), so a small request should
answer in well under a second whatever its time limit.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.load import start_server

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "helsinki-home-visits.json"
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUT = RESULTS / "latency.csv"


def request_with(visits: int) -> dict[str, Any]:
    """The sample request cut to its first ``visits`` visits."""
    sample = json.loads(SAMPLE.read_text())
    if not 1 <= visits <= len(sample["visits"]):
        raise SystemExit(f"--sizes: between 1 and {len(sample['visits'])} visits")
    return {**sample, "visits": sample["visits"][:visits]}


def median_s(call: Any, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2,10", help="visits per request, comma-separated")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as data_dir:
        log = Path(os.environ.get("LATENCY_LOG") or Path(data_dir) / "serve.log")
        server, base = start_server(Path(data_dir), f"sqlite:///{Path(data_dir) / 'doorstep.db'}", 2, log,
                                    DOORSTEP_AUTH="open", DOORSTEP_NETWORKS=json.dumps({"helsinki": "default"}),
                                    DOORSTEP_LOG_LEVEL="INFO")
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                health, _ = median_s(lambda: client.get("/healthz").raise_for_status(), max(5, args.repeats))
                for size in (int(s) for s in args.sizes.split(",")):
                    body = request_with(size)

                    def post(body: dict[str, Any] = body) -> None:
                        answer = client.post("/v1/plans", params={"wait": "true"}, json=body)
                        answer.raise_for_status()
                        plan = answer.json()
                        if plan.get("status") != "done":
                            raise SystemExit(f"a {len(body['visits'])}-visit plan ended {plan.get('status')}")

                    post()  # the first solve of a worker warms its engines' imports
                    median, times = median_s(post, args.repeats)
                    rows.append({"visits": size, "median_s": round(median, 3),
                                 "times_s": " ".join(f"{t:.3f}" for t in times),
                                 "healthz_median_s": round(health, 4), "ratio_to_healthz": round(median / health, 1)})
                    print(f"{size:3d} visits: median {median:.3f} s over {args.repeats} "
                          f"({', '.join(f'{t:.2f}' for t in times)}); /healthz {health * 1000:.1f} ms", flush=True)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
