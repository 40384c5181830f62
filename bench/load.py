"""Reads under load with solves waiting (issue 13): plan reads and a crew's CSV against ``/healthz``.

Starts a real ``doorstep serve`` (its own port and database, the real solver), stores one solved
plan, keeps ``--waiting`` ``POST /v1/plans?wait=true`` solves outstanding in the background (each
with a ``--solve-time-limit`` budget, as a busy morning would), and then, round after round, drives
each target with ``--connections`` keep-alive clients for ``--duration`` seconds:

- ``healthz``: ``GET /healthz``, the baseline (no database, no key);
- ``plan``: ``GET /v1/plans/{id}`` with a dispatcher's key;
- ``crew_csv``: ``GET /v1/plans/{id}/routes/{vehicle}.csv`` with the same key;
- ``dispatcher``: one client reading the plan again and again (a dispatcher's screen).

Prints the medians over the rounds: throughput, its ratio to ``/healthz`` in the same round, latency,
errors, and the API process's CPU time per request (steadier than throughput on a shared machine);
writes every round and the medians to ``bench/results/load.csv``. The load generator is a
minimal HTTP/1.1 client on asyncio streams, so that the client is not the bottleneck (an httpx
client was slower than the server's health check).

    python -m bench.load [--duration 10] [--repeats 3] [--connections 50] [--waiting 40]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PROBLEM = ROOT / "data" / "small-with-matrices.json"


# -- the load generator --------------------------------------------------------------------------


@dataclass
class Round:
    target: str
    connections: int
    duration_s: float
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    server_cpu_s: float = float("nan")
    """CPU time the API process (all its threads, not the workers) spent meanwhile."""
    ratio_to_healthz: float = float("nan")
    """Throughput over /healthz's in the same round (the load on the machine drifts between rounds)."""

    @property
    def server_cpu_us_per_request(self) -> float:
        return 1e6 * self.server_cpu_s / max(1, len(self.latencies_s))

    @property
    def requests_per_s(self) -> float:
        return len(self.latencies_s) / self.duration_s

    def percentile_ms(self, q: float) -> float:
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Status and whether the server keeps the connection, after reading the whole response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection", "").lower() != "close"


async def _client(host: str, port: int, request: bytes, stop_at: float, out: Round) -> None:
    loop = asyncio.get_running_loop()
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while loop.time() < stop_at:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            assert reader is not None
            started = time.perf_counter()
            writer.write(request)
            status, keep = await _read_response(reader)
            elapsed = time.perf_counter() - started
            if status == 200:
                out.latencies_s.append(elapsed)
            else:
                out.errors += 1
            if not keep:
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, ValueError):
            out.errors += 1
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


async def drive(url: str, path: str, *, target: str, connections: int, duration_s: float,
                headers: dict[str, str] | None = None) -> Round:
    """``connections`` keep-alive clients sending ``GET path`` for ``duration_s``."""
    parsed = httpx.URL(url)
    host, port = parsed.host, parsed.port or 80
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode()
    out = Round(target, connections, duration_s)
    stop_at = asyncio.get_running_loop().time() + duration_s
    await asyncio.gather(*(_client(host, port, request, stop_at, out) for _ in range(connections)))
    return out


def process_cpu_s(pid: int) -> float:
    """User and system CPU seconds of process ``pid`` so far (Linux; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the server and its background ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    data_dir: Path, database_url: str, workers: int, log: Path, **settings: str
) -> tuple[subprocess.Popen[bytes], str]:
    """``doorstep serve`` on a free port, once every worker is alive; ``settings`` override the
    ``DOORSTEP_*`` variables (``DOORSTEP_AUTH="open"``)."""
    port = _free_port()
    env = {**os.environ, "DOORSTEP_DATA_DIR": str(data_dir), "DOORSTEP_DATABASE_URL": database_url,
           "DOORSTEP_NETWORKS": "{}", "DOORSTEP_WORKERS": str(workers), "DOORSTEP_AUTH": "required",
           "DOORSTEP_LOG_LEVEL": "WARNING", "DOORSTEP_MAX_TIME_LIMIT_S": "300", **settings}
    doorstep = Path(sys.executable).with_name("doorstep")
    command = [str(doorstep)] if doorstep.exists() else [sys.executable, "-m", "service.cli"]
    process = subprocess.Popen([*command, "serve", "--port", str(port)], env=env, cwd=ROOT,
                               stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            ready = httpx.get(f"{url}/readyz", timeout=2)
            if ready.status_code == 200 and ready.json()["checks"].get("workers") == f"{workers}/{workers} alive":
                return process, url
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"doorstep serve exited ({process.returncode}); see {log}")
        time.sleep(0.3)
    raise SystemExit(f"doorstep serve did not become ready; see {log}")


def dispatcher_key(database_url: str) -> str:
    from service.auth import Keys, Role
    from service.store import Store

    store = Store.from_url(database_url)
    try:
        return Keys(store).create(role=Role.DISPATCHER, organisation="bench", label="bench.load")[1]
    finally:
        store.close()


def solved_plan(url: str, headers: dict[str, str]) -> tuple[str, str, int]:
    """A solved plan to read: its id, a vehicle with visits, and the size of its JSON (bytes)."""
    problem = json.loads(PROBLEM.read_text())
    problem["options"] = {"time_limit_s": 3}
    answer = httpx.post(f"{url}/v1/plans?wait=true", json=problem, headers=headers, timeout=120)
    answer.raise_for_status()
    body = answer.json()
    if body.get("status") != "done":
        raise SystemExit(f"the plan to read did not solve: {body}")
    vehicle = next(r["vehicle_id"] for r in body["plan"]["routes"] if len(r["steps"]) > 2)
    size = len(httpx.get(f"{url}/v1/plans/{body['id']}", headers=headers).content)
    return body["id"], vehicle, size


async def keep_waiting(url: str, headers: dict[str, str], waiting: int, time_limit_s: float,
                       stop: asyncio.Event) -> list[int]:
    """``waiting`` ``?wait=true`` solves outstanding until ``stop``; each one that answers is replaced."""
    problem = json.loads(PROBLEM.read_text())
    problem["options"] = {"time_limit_s": time_limit_s}
    statuses: list[int] = []
    limits = httpx.Limits(max_connections=waiting + 5)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=400, limits=limits) as client:

        async def one() -> None:
            while not stop.is_set():
                try:
                    response = await client.post("/v1/plans?wait=true", json=problem)
                    statuses.append(response.status_code)
                except httpx.HTTPError:
                    statuses.append(0)

        tasks = [asyncio.create_task(one()) for _ in range(waiting)]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return statuses


# -- the run --------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, url: str, server_pid: int, headers: dict[str, str], plan_id: str,
              vehicle: str) -> list[Round]:
    stop = asyncio.Event()
    background = asyncio.create_task(keep_waiting(url, headers, args.waiting, args.solve_time_limit, stop))
    await asyncio.sleep(args.settle)  # the waits are posted and the workers busy before measuring
    targets = [
        ("healthz", "/healthz", {}, args.connections),
        ("plan", f"/v1/plans/{plan_id}", headers, args.connections),
        ("crew_csv", f"/v1/plans/{plan_id}/routes/{vehicle}.csv", headers, args.connections),
        ("dispatcher", f"/v1/plans/{plan_id}", headers, 1),
    ]
    rounds: list[Round] = []
    for repeat in range(args.repeats):
        baseline = float("nan")
        for target, path, extra, connections in targets:
            cpu_before = process_cpu_s(server_pid)
            result = await drive(url, path, target=target, connections=connections, duration_s=args.duration,
                                 headers=extra)
            result.server_cpu_s = process_cpu_s(server_pid) - cpu_before
            if target == "healthz":
                baseline = result.requests_per_s
            result.ratio_to_healthz = result.requests_per_s / baseline
            rounds.append(result)
            print(f"round {repeat + 1} {target:<10} {result.requests_per_s:8.0f} req/s  "
                  f"{result.ratio_to_healthz:5.2f} of /healthz  p50 {result.percentile_ms(0.5):7.1f} ms  "
                  f"p99 {result.percentile_ms(0.99):7.1f} ms  errors {result.errors}  "
                  f"server CPU {result.server_cpu_us_per_request:5.0f} us/request", flush=True)
    stop.set()
    statuses = await background
    answered = {code: statuses.count(code) for code in sorted(set(statuses))}
    print(f"background waits answered meanwhile: {answered} (200 solved, 202 still queued at the cap)")
    return rounds


def summarise(rounds: list[Round]) -> dict[str, dict[str, float]]:
    """Medians over the rounds, per target; the ratio is the median of each round's own ratio."""
    out: dict[str, dict[str, float]] = {}
    for target in dict.fromkeys(r.target for r in rounds):
        mine = [r for r in rounds if r.target == target]
        out[target] = {
            "requests_per_s": statistics.median(r.requests_per_s for r in mine),
            "ratio_to_healthz": statistics.median(r.ratio_to_healthz for r in mine),
            "p50_ms": statistics.median(r.percentile_ms(0.5) for r in mine),
            "p99_ms": statistics.median(r.percentile_ms(0.99) for r in mine),
            "errors": float(sum(r.errors for r in mine)),
            "server_cpu_us_per_request": statistics.median(r.server_cpu_us_per_request for r in mine),
        }
    return out


COLUMNS = ("requests_per_s", "ratio_to_healthz", "p50_ms", "p99_ms", "errors", "server_cpu_us_per_request")


def write_csv(path: Path, rounds: list[Round], summary: dict[str, dict[str, float]], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["kind", "target", "connections", *COLUMNS, *meta])
        for r in rounds:
            values = (r.requests_per_s, r.ratio_to_healthz, r.percentile_ms(0.5), r.percentile_ms(0.99), r.errors,
                      r.server_cpu_us_per_request)
            writer.writerow(["round", r.target, r.connections, *(f"{v:.3f}" for v in values), *meta.values()])
        for target, medians in summary.items():
            connections = next(r.connections for r in rounds if r.target == target)
            writer.writerow(["median", target, connections, *(f"{medians[c]:.3f}" for c in COLUMNS),
                             *meta.values()])


def _run(main: Coroutine[Any, Any, list[Round]]) -> list[Round]:
    """On uvloop when it is there (uvicorn's standard extra brings it): a cheaper client."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per target and round")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (medians are reported)")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--waiting", type=int, default=40, help="?wait=true solves kept outstanding")
    parser.add_argument("--solve-time-limit", type=float, default=15.0)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds between posting the waits and measuring")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", help="default: a new SQLite file in a temporary folder")
    parser.add_argument("--out", type=Path, default=RESULTS / "load.csv")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="doorstep-load-") as tmp:
        data_dir = Path(tmp)
        database_url = args.database_url or f"sqlite:///{data_dir / 'doorstep.db'}"
        process, url = start_server(data_dir, database_url, args.workers, data_dir / "serve.log")
        try:
            headers = {"Authorization": f"Bearer {dispatcher_key(database_url)}"}
            plan_id, vehicle, size = solved_plan(url, headers)
            print(f"{url}: reading plan {plan_id} ({size} bytes of JSON) and {vehicle}'s CSV; "
                  f"{args.waiting} waiting solves of {args.solve_time_limit:g} s in the background")
            rounds = _run(run(args, url, process.pid, headers, plan_id, vehicle))
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
    summary = summarise(rounds)
    print(f"\nmedians of {args.repeats} rounds of {args.duration:g} s, {args.connections} connections "
          f"(dispatcher: 1):")
    for target, values in summary.items():
        print(f"  {target:<10} {values['requests_per_s']:8.0f} req/s  {values['ratio_to_healthz']:.2f} of /healthz  "
              f"p50 {values['p50_ms']:.1f} ms  p99 {values['p99_ms']:.1f} ms  errors {int(values['errors'])}  "
              f"server CPU {values['server_cpu_us_per_request']:.0f} us/request")
    meta = {"database": database_url.split(":", 1)[0] if args.database_url else "sqlite", "plan_bytes": size,
            "waiting": args.waiting, "date": time.strftime("%Y-%m-%d %H:%M")}
    write_csv(args.out, rounds, summary, meta)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
