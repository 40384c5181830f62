"""The ``doorstep`` command line, driven through Typer's runner."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import gpxpy
import pytest
from shapely.geometry import shape
from typer.testing import CliRunner

from service.cli import app

runner = CliRunner()


def _tiny_request() -> dict[str, Any]:
    """One depot, four households on a line 5 minutes' walk apart, two teams; matrices included."""
    xs = [0, 1, 2, 3, 4]  # depot, then v-1..v-4, each 300 s and 400 m further along the street
    durations = [[abs(a - b) * 300 for b in xs] for a in xs]
    distances = [[abs(a - b) * 400 for b in xs] for a in xs]
    return {
        "matrices": {"walk": {"durations_s": durations, "distances_m": distances}},
        "depots": [{"id": "station", "location": [24.940, 60.170]}],
        "vehicles": [
            {"id": "team-1", "start_depot": "station", "profile": "walk", "shift": {"start": "08:00", "end": "16:00"}},
            {"id": "team-2", "start_depot": "station", "profile": "walk", "shift": {"start": "08:00", "end": "16:00"},
             "capacity": {"tubes": 0}},
        ],
        "visits": [
            {"id": f"v-{i}", "location": [24.940 + 0.004 * i, 60.170], "people": i, "address": f"Katu {i}",
             "notes": "<b>ring twice</b>" if i == 2 else None,
             "time_windows": [{"start": "08:00", "end": "12:00"}] if i == 3 else []}
            for i in range(1, 5)
        ],
    }


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    request = folder / "problem.json"
    request.write_text(json.dumps(_tiny_request()))
    plan = folder / "plan.json"
    result = runner.invoke(app, ["solve", str(request), "-o", str(plan), "--time-limit", "1"])
    assert result.exit_code == 0, result.output
    return plan


def test_solve_writes_the_plan_document_and_prints_a_summary(plan_file: Path) -> None:
    document = json.loads(plan_file.read_text())
    assert document["summary"]["visits_assigned"] == 4
    assert document["summary"]["feasible"] is True
    (route,) = document["routes"]  # team-2 carries no tubes: team-1 does it all
    assert route["vehicle_id"] == "team-1" and route["geometry"] is None  # no network: no road lines
    assert sorted(s["id"] for s in route["steps"] if s["kind"] == "visit") == ["v-1", "v-2", "v-3", "v-4"]
    assert {s["address"] for s in route["steps"] if s["kind"] == "visit"} == {f"Katu {i}" for i in range(1, 5)}


def test_solve_draws_routes_on_the_network_a_request_with_matrices_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-planned version's request carries matrices and names its network: the lines follow the streets."""
    from service.config import DEFAULT_NETWORK, get_settings

    monkeypatch.setenv("DOORSTEP_DATA_DIR", str(tmp_path / "data"))  # the network cache goes there
    get_settings.cache_clear()
    request, plan = tmp_path / "problem.json", tmp_path / "plan.json"
    request.write_text(json.dumps(_tiny_request() | {"network": DEFAULT_NETWORK}))
    try:
        result = runner.invoke(app, ["solve", str(request), "-o", str(plan), "--time-limit", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    (route,) = json.loads(plan.read_text())["routes"]
    assert route["geometry"]["type"] == "LineString"
    assert len(route["geometry"]["coordinates"]) > len(route["steps"])  # along the streets, not stop to stop


def test_solve_prints_the_summary_table(tmp_path: Path) -> None:
    request = tmp_path / "problem.json"
    request.write_text(json.dumps(_tiny_request()))
    result = runner.invoke(app, ["solve", str(request), "-o", str(tmp_path / "plan.json"), "--time-limit", "0.5"])
    assert result.exit_code == 0, result.output
    assert "team-1" in result.output and "4 visits assigned" in result.output


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "is not JSON"),  # a truncated upload
        (json.dumps({"depots": []}), "depots: List should have at least 1 item"),  # shape error, field named
        (json.dumps({**_tiny_request(), "visits": [{"id": "v-1", "location": [24.94, 60.17],
                                                     "time_windows": [{"start": "11:00", "end": "09:00"}]}]}),
         'visits.0.time_windows.0: Visit "v-1": time window: time window ends (09:00) before it starts (11:00)'),
        (json.dumps({k: v for k, v in _tiny_request().items() if k != "matrices"} | {"network": "atlantis"}),
         'network: unknown network "atlantis"'),  # a network this installation does not have
    ],
)
def test_solve_names_what_is_wrong_with_a_bad_request(tmp_path: Path, body: str, message: str) -> None:
    request = tmp_path / "problem.json"
    request.write_text(body)
    result = runner.invoke(app, ["solve", str(request), "-o", str(tmp_path / "plan.json")])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "plan.json").exists()


def test_export_geojson_to_stdout(plan_file: Path) -> None:
    result = runner.invoke(app, ["export", str(plan_file), "--format", "geojson"])
    assert result.exit_code == 0, result.output
    collection = json.loads(result.stdout)
    stops = [f for f in collection["features"] if f["properties"]["feature"] == "stop"]
    assert len(stops) == 6  # start, 4 visits, end
    assert all(shape(f["geometry"]).geom_type == "Point" for f in stops)


def test_export_csv_of_the_only_route_needs_no_vehicle(plan_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "team-1.csv"
    result = runner.invoke(app, ["export", str(plan_file), "--format", "csv", "-o", str(out)])
    assert result.exit_code == 0, result.output
    with out.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["kind"] for r in rows] == ["start", "visit", "visit", "visit", "visit", "end"]


def test_export_gpx_and_html_for_a_vehicle(plan_file: Path, tmp_path: Path) -> None:
    gpx_out, html_out = tmp_path / "t.gpx", tmp_path / "t.html"
    for fmt, out in (("gpx", gpx_out), ("html", html_out)):
        result = runner.invoke(app, ["export", str(plan_file), "-f", fmt, "--vehicle", "team-1", "-o", str(out)])
        assert result.exit_code == 0, result.output
    gpx = gpxpy.parse(gpx_out.read_text())
    assert len(gpx.waypoints) == 6 and len(gpx.routes[0].points) == 6
    page = html_out.read_text()
    assert "&lt;b&gt;ring twice&lt;/b&gt;" in page and "<b>ring twice</b>" not in page


def test_export_writes_one_file_per_vehicle_into_a_directory(tmp_path: Path) -> None:
    document = {"summary": {}, "routes": [_route("team-1"), _route("team-2")], "unassigned": [], "violations": [],
                "stats": {}}
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"id": "p-1", "plan": document}))  # the API's answer wraps the document
    result = runner.invoke(app, ["export", str(plan), "-f", "html", "-o", str(tmp_path / "lists")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "lists").iterdir()) == ["team-1.html", "team-2.html"]


def test_export_asks_which_vehicle_when_there_are_several(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"summary": {}, "routes": [_route("team-1"), _route("team-2")], "unassigned": [],
                                "violations": [], "stats": {}}))
    result = runner.invoke(app, ["export", str(plan), "-f", "gpx"])
    assert result.exit_code == 2
    assert "give --vehicle (one of team-1, team-2)" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--vehicle", "bus-9", "-f", "csv"], 'no route for vehicle "bus-9"'),  # a typo in the id
        (["--vehicle", "bus-9", "-f", "geojson"], 'no route for vehicle "bus-9"'),
    ],
)
def test_export_names_an_unknown_vehicle(plan_file: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["export", str(plan_file), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_export_refuses_a_document_missing_a_field_naming_it(tmp_path: Path) -> None:
    route = _route("team-1")
    del route["steps"][1]["arrival_s"]
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"summary": {}, "routes": [route], "unassigned": [], "violations": [], "stats": {}}))
    result = runner.invoke(app, ["export", str(plan), "-f", "csv"])
    assert result.exit_code == 2
    assert "routes.0.steps.1.arrival_s: Field required" in result.output


def test_export_refuses_a_file_that_is_not_a_plan(tmp_path: Path) -> None:
    request = tmp_path / "problem.json"
    request.write_text(json.dumps(_tiny_request()))
    result = runner.invoke(app, ["export", str(request), "-f", "geojson"])
    assert result.exit_code == 2 and "is not a plan document" in result.output


def test_serve_runs_the_app_factory_with_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: calls.append((args, kwargs)))
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--port", "9000"])
    assert result.exit_code == 0, result.output
    # timeout_graceful_shutdown: requests in progress must not hold up a stop (issue 13).
    assert calls == [(("service.main:create_app",), {"factory": True, "host": "0.0.0.0", "port": 9000,
                                                     "timeout_graceful_shutdown": 3})]


def _route(vehicle_id: str) -> dict[str, Any]:
    """A route as a plan document holds it (the export reads documents validated)."""

    def step(kind: str, id_: str, t: int) -> dict[str, Any]:
        hhmm = f"{t // 3600:02d}:{t % 3600 // 60:02d}"
        return {"kind": kind, "id": id_, "location": [24.94, 60.17], "arrival_s": t, "arrival": hhmm, "wait_s": 0,
                "start_s": t, "start": hhmm, "service_s": 0, "departure_s": t, "departure": hhmm, "load": {},
                "distance_m": 0, "travel_s": 0}

    return {"vehicle_id": vehicle_id, "kind": "team", "profile": "walk", "distance_m": 0, "duration_s": 1200,
            "travel_s": 0, "wait_s": 0, "service_s": 0, "cost": 0, "start": "08:00", "end": "08:20",
            "geometry": None,
            "steps": [step("start", "station", 28800), step("visit", f"{vehicle_id}-v", 29000),
                      step("end", "station", 30000)]}
