"""The ``doorstep`` command: serve the API, solve a request file, export a plan, run the demo."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from routing.errors import DoorstepError, ProblemError
from service import exports
from service.cli_ops import keys_app, links_app, purge
from service.cli_rounds import round_app
from service.schemas import PlanDocument

if TYPE_CHECKING:
    from routing.solver import Progress as SolveProgress

app = typer.Typer(
    name="doorstep",
    help="Routes for mobile sampling buses and home-visit teams.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
errors = Console(stderr=True)


class Format(StrEnum):
    GEOJSON = "geojson"
    CSV = "csv"
    GPX = "gpx"
    HTML = "html"


PER_VEHICLE = {
    Format.CSV: exports.route_csv,
    Format.GPX: exports.route_gpx,
    Format.HTML: exports.route_html,
}


def _fail(message: str, code: int = 2) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _fail(f"{path}: no such file") from None
    except json.JSONDecodeError as error:
        raise _fail(f"{path} is not JSON: {error}") from None


def _where(loc: Any) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


# -- serve ------------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Run the HTTP API (uvicorn). Configuration: DOORSTEP_* environment variables."""
    import uvicorn

    from service.config import get_settings

    # Without a bound, uvicorn waits for every request in progress before the shutdown starts
    # (a `?wait=true` one for minutes); with it, SIGINT or SIGTERM ends the server in
    # request_grace_s + worker_stop_s.
    uvicorn.run("service.main:create_app", factory=True, host=host, port=port,
                timeout_graceful_shutdown=max(1, round(get_settings().request_grace_s)))


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(
        help="Solves at once; default: the machine's cores over DOORSTEP_SOLVE_CORES.")] = None,
    name: Annotated[str | None, typer.Option(help="Worker name (default doorstep-PID@host).")] = None,
    parts_only: Annotated[bool, typer.Option(
        "--parts-only", help="Take only the parts of split days (DOORSTEP_PART_SLOTS), no whole solves.")] = False,
) -> None:
    """Run a Celery solve worker on this machine (DOORSTEP_RUNNER=celery; DOORSTEP_BROKER_URL)."""
    from service.celery_runner import run_worker
    from service.config import get_settings

    run_worker(get_settings(), concurrency=concurrency, name=name, parts_only=parts_only)


# -- solve ------------------------------------------------------------------------------------------


def _summary_table(document: Mapping[str, Any], title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("team", "mode"):
        table.add_column(column)
    for column in ("visits", "people", "out", "back", "km", "travel", "wait"):
        table.add_column(column, justify="right")
    for route in document.get("routes") or []:
        visits = [s for s in route.get("steps") or [] if s.get("kind") == "visit"]
        if not visits:
            continue
        steps = route["steps"]
        table.add_row(
            str(route.get("vehicle_id")),
            str(route.get("profile")),
            str(len(visits)),
            str(sum(int(s.get("people") or 0) for s in visits)),
            exports.clock(steps[0].get("departure_s")),
            exports.clock(steps[-1].get("arrival_s")),
            f"{float(route.get('distance_m') or 0) / 1000:.1f}",
            f"{round(float(route.get('travel_s') or 0) / 60)} min",
            f"{round(float(route.get('wait_s') or 0) / 60)} min",
        )
    summary = document.get("summary") or {}
    table.caption = (
        f"{summary.get('visits_assigned', 0)} visits assigned, {summary.get('visits_unassigned', 0)} unassigned, "
        f"{summary.get('vehicles_used', 0)} teams used; "
        f"{'feasible' if summary.get('feasible', True) else 'NOT feasible (see violations)'}; "
        f"engine {summary.get('engine', '?')}, {float(summary.get('solve_s') or 0):.1f} s"
    )
    table.caption_justify = "left"
    return table


def _print_unassigned(document: Mapping[str, Any], limit: int = 10) -> None:
    unassigned = document.get("unassigned") or []
    for entry in unassigned[:limit]:
        console.print(f"  not assigned: {entry.get('visit_id')} ({entry.get('reason')}): {entry.get('detail')}",
                      highlight=False, markup=False)
    if len(unassigned) > limit:
        console.print(f"  ... and {len(unassigned) - limit} more (see the plan's \"unassigned\")")


@contextmanager
def _progress_bar(
    time_limit_s: float, visits: int
) -> Iterator[tuple[Callable[[SolveProgress], None], Callable[[], bool]]]:
    """A rich bar over the time limit: yields the solver's ``on_progress`` and ``should_stop``.

    ``should_stop`` never stops: the solver polls it every 0.1 s, which keeps the bar moving
    between improvements.
    """
    columns = (SpinnerColumn(), TextColumn("solving"), BarColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[status]}"))
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("solve", total=time_limit_s, status="looking for a first plan")
        started = time.monotonic()

        def on_progress(p: SolveProgress) -> None:
            bar.update(task, completed=min(p.elapsed_s, time_limit_s),
                       status=f"{p.assigned}/{visits} visits, {p.vehicles} teams, cost {p.cost:,.0f} ({p.engine})")

        def tick() -> bool:
            bar.update(task, completed=min(time.monotonic() - started, time_limit_s))
            return False

        yield on_progress, tick
        bar.update(task, completed=time_limit_s)


@app.command("solve")
def solve_command(
    problem_file: Annotated[Path, typer.Argument(help="A plan request (the JSON body of POST /v1/plans).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the plan document.")] = Path(
        "plan.json"
    ),
    time_limit: Annotated[
        float | None, typer.Option("--time-limit", min=0.1, help="Seconds; default: the request's, else 10.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed; default: the request's.")] = None,
    engine: Annotated[str | None, typer.Option(help="auto, ortools, pyvrp or vroom; default: the request's.")] = None,
) -> None:
    """Solve a request file and write the plan document (routes follow the roads when a network is used)."""
    from service.schemas import PlanRequest

    data = _read_json(problem_file)
    try:
        request = PlanRequest.model_validate(data)
    except ValidationError as error:
        lines = [f"  {_where(e['loc'])}: {e['msg']}" for e in error.errors()]
        raise _fail(f"{problem_file} is not a valid plan request:\n" + "\n".join(lines)) from None
    try:
        from service.config import get_settings
        from service.networks import NetworkRegistry
        from service.pipeline import prepare

        with console.status("preparing the problem (travel times and road geometry from the network, if any)"):
            prepared = prepare(request, NetworkRegistry(get_settings()))
        problem = prepared.problem
    except ProblemError as error:
        raise _fail(f"{problem_file}: {_where(error.path)}: {error}") from None
    except DoorstepError as error:  # a network that cannot load or answer
        raise _fail(str(error), code=3) from None
    limit = time_limit or request.options.time_limit_s or 10.0
    console.print(
        f"{len(problem.visits)} visits, {len(problem.vehicles)} vehicles; time limit {limit:g} s",
        highlight=False,
    )
    from routing.solver import solve
    from service.pipeline import document_of, solve_prepared
    from service.schemas import dump_document

    try:
        with _progress_bar(limit, len(problem.visits)) as (on_progress, tick):
            plan = solve_prepared(prepared, solve, time_limit_s=limit, seed=seed, engine=engine,
                                  on_progress=on_progress, should_stop=tick)
    except ProblemError as error:
        raise _fail(str(error)) from None
    document = dump_document(document_of(prepared, plan))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    console.print(_summary_table(document))
    _print_unassigned(document)
    console.print(f"wrote {output}", highlight=False)


# -- export -----------------------------------------------------------------------------------------


def _plan_document(data: Any, path: Path) -> PlanDocument:
    """The plan document in ``data``: the document itself, or the API's answer wrapping it."""
    if isinstance(data, dict) and "routes" not in data and isinstance(data.get("plan"), dict):
        data = data["plan"]
    if not isinstance(data, dict) or not isinstance(data.get("routes"), list):
        raise _fail(f"{path} is not a plan document (no \"routes\"): write one with `doorstep solve`")
    try:
        return PlanDocument.model_validate(data)
    except ValidationError as error:
        lines = [f"  {_where(e['loc'])}: {e['msg']}" for e in error.errors()[:10]]
        raise _fail(f"{path} is not a valid plan document:\n" + "\n".join(lines)) from None


@app.command()
def export(
    plan_file: Annotated[Path, typer.Argument(help="A plan document (from `doorstep solve` or the API).")],
    format: Annotated[Format, typer.Option("--format", "-f", help="What to write.")] = Format.GEOJSON,
    vehicle: Annotated[
        str | None, typer.Option("--vehicle", help="The vehicle's stop list (csv, gpx, html); geojson: only it.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File to write (default: standard output); a directory for "
                     "csv/gpx/html without --vehicle: one file per vehicle."),
    ] = None,
) -> None:
    """Export a plan: GeoJSON of the whole plan, or a vehicle's CSV, GPX or printable HTML stop list."""
    from service.demo import safe_filename

    document = _plan_document(_read_json(plan_file), plan_file)
    used = exports.used_vehicle_ids(document)
    if format is Format.GEOJSON:
        if vehicle is not None:
            route = document.route(vehicle)
            if route is None:
                raise _fail(f'no route for vehicle "{vehicle}" in {plan_file} (vehicles: {", ".join(used) or "none"})')
            document = document.model_copy(update={"routes": [route]})
        _write(json.dumps(exports.plan_geojson(document), ensure_ascii=False) + "\n", output)
        return
    render = PER_VEHICLE[format]
    if vehicle is None and len(used) == 1:
        vehicle = used[0]
    if vehicle is not None:
        try:
            text = render(document, vehicle)
        except exports.UnknownVehicleError as error:
            raise _fail(f"{plan_file}: {error.args[0]}") from None
        _write(text, output)
        return
    if output is None:
        raise _fail(
            f"{plan_file} has {len(used)} routes: give --vehicle (one of {', '.join(used) or 'none'}) "
            "or -o DIRECTORY for one file each"
        )
    if output.exists() and not output.is_dir():
        raise _fail(f"{output} is a file: without --vehicle, -o must be a directory")
    output.mkdir(parents=True, exist_ok=True)
    for vehicle_id in used:
        path = output / f"{safe_filename(vehicle_id)}.{format.value}"
        _write(render(document, vehicle_id), path)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8", newline="") as file:  # CSV rows end \r\n already
        file.write(text)
    errors.print(f"wrote {output}", highlight=False)


# -- demo -------------------------------------------------------------------------------------------


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write into.")] = Path("out/demo"),
    visits: Annotated[int, typer.Option(min=1, max=2000, help="Households to visit.")] = 80,
    teams: Annotated[int, typer.Option(min=1, max=50, help="Home-visit teams of three.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the scenario and the solver.")] = 1,
    time_limit: Annotated[float, typer.Option("--time-limit", min=0.1, help="Solver seconds.")] = 10.0,
) -> None:
    """Plan a realistic day of home visits in central Helsinki; write the plan, stop lists and a map."""
    from service.demo import load_demo_networks, run_demo

    with console.status("loading the central Helsinki road network (walk, drive)"):
        networks = load_demo_networks()
    with _progress_bar(time_limit, visits) as (on_progress, tick):
        result = run_demo(out, visits=visits, teams=teams, seed=seed, time_limit_s=time_limit,
                          on_progress=on_progress, should_stop=tick, networks=networks)
    console.print(_summary_table(result.document, title=result.request.get("name")))
    _print_unassigned(result.document)
    console.print(f"wrote {len(result.files)} files to {out}/ (map: {out / 'map.png'})", highlight=False)


# -- access and retention: doorstep keys ..., doorstep purge (service/cli_ops.py) --------------------

app.add_typer(keys_app, name="keys")
app.add_typer(links_app, name="crew-links")
app.add_typer(round_app, name="round")
app.command("purge")(purge)


if __name__ == "__main__":  # pragma: no cover
    app()
