"""The demo end to end on central Helsinki, and the sample data it shares its generator with."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.demo import load_demo_networks, request_csvs, sample_files
from service.schemas import PlanRequest

DATA = Path(__file__).resolve().parents[2] / "data"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def networks() -> dict[str, Any]:
    return load_demo_networks()


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo") / "out"
    result = CliRunner().invoke(
        app, ["demo", "--out", str(out), "--visits", "60", "--teams", "4", "--time-limit", "2"]
    )
    assert result.exit_code == 0, result.output
    return out, result.output


def test_demo_writes_plan_geojson_stop_lists_and_map(demo_dir: tuple[Path, str]) -> None:
    out, _ = demo_dir
    document = json.loads((out / "plan.json").read_text())
    used = [r["vehicle_id"] for r in document["routes"]]
    assert used and document["summary"]["visits"] == 60
    assert document["summary"]["visits_assigned"] + document["summary"]["visits_unassigned"] == 60
    assert all(r["geometry"]["type"] == "LineString" for r in document["routes"])  # along the streets
    for vehicle_id in used:
        for suffix in (".html", ".csv", ".gpx"):
            assert (out / f"{vehicle_id}{suffix}").stat().st_size > 0
    geojson = json.loads((out / "plan.geojson").read_text())
    assert {f["properties"]["feature"] for f in geojson["features"]} >= {"route", "stop"}
    with (out / f"{used[0]}.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert rows[0]["kind"] == "start" and rows[-1]["kind"] == "end"
    assert any(r["address"] for r in rows if r["kind"] == "visit")  # street addresses from the network


def test_demo_map_is_a_real_png(demo_dir: tuple[Path, str]) -> None:
    out, _ = demo_dir
    data = (out / "map.png").read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 50_000  # streets, routes and a legend drawn


def test_map_marks_unassigned_visits_even_without_routes(tmp_path: Path) -> None:
    import networkx as nx

    from service.render import render_plan_map

    streets = nx.MultiDiGraph()
    streets.add_node(1, x=24.940, y=60.170)
    streets.add_node(2, x=24.950, y=60.175)
    streets.add_edge(1, 2)
    document = {"summary": {"visits_unassigned": 1}, "routes": [], "unassigned": [{"visit_id": "v-1"}]}
    path = render_plan_map(document, [streets], tmp_path / "map.png", unassigned={"v-1": (24.945, 60.172)})
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_demo_request_is_written_and_solvable_again(demo_dir: tuple[Path, str]) -> None:
    out, _ = demo_dir
    request = PlanRequest.model_validate_json((out / "problem.json").read_text())
    assert request.network == "helsinki" and len(request.visits) == 60


def test_demo_prints_a_summary_table(demo_dir: tuple[Path, str]) -> None:
    _, output = demo_dir
    assert "team-" in output and "visits assigned" in output and "map.png" in output


def test_demo_scenario_is_deterministic(networks: dict[str, Any]) -> None:
    from service.demo import demo_request

    assert demo_request(networks, visits=30, teams=3, seed=4) == demo_request(networks, visits=30, teams=3, seed=4)


def test_sample_data_matches_the_generator(networks: dict[str, Any]) -> None:
    """data/ is generated: `python -c 'from service.demo import write_sample_files; ...'` (see data/README.md)."""
    for relative, text in sample_files(networks).items():
        assert (DATA / relative).read_text(encoding="utf-8") == text, f"data/{relative} is stale: regenerate it"


def test_sample_requests_are_valid_and_the_csvs_hold_the_same_visits() -> None:
    request = json.loads((DATA / "helsinki-home-visits.json").read_text())
    PlanRequest.model_validate(request)
    PlanRequest.model_validate_json((DATA / "small-with-matrices.json").read_text())
    with (DATA / "helsinki-home-visits" / "visits.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["id"] for r in rows] == [v["id"] for v in request["visits"]]
    assert list(rows[0]) == ["id", "lon", "lat", "people", "setup_s", "per_person_s", "window_start",
                             "window_end", "priority", "skills", "notes"]


def test_request_csvs_refuse_a_second_time_window() -> None:
    request = {"depots": [], "vehicles": [],
               "visits": [{"id": "v-1", "time_windows": [{"start": "08:00", "end": "09:00"},
                                                          {"start": "13:00", "end": "14:00"}]}]}
    with pytest.raises(ValueError, match='visit "v-1" has 2 time windows'):
        request_csvs(request)


def test_solve_a_sample_that_brings_its_own_matrices(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    result = CliRunner().invoke(
        app, ["solve", str(DATA / "small-with-matrices.json"), "-o", str(plan), "--time-limit", "1"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(plan.read_text())["summary"]["visits_assigned"] == 8


def test_solve_routes_a_request_on_the_helsinki_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.config import get_settings

    monkeypatch.setenv("DOORSTEP_DATA_DIR", str(tmp_path / "data"))  # the network cache goes there
    get_settings.cache_clear()
    request = json.loads((DATA / "helsinki-home-visits.json").read_text())
    request["vehicles"] = [v for v in request["vehicles"] if v["id"] in ("team-2", "team-3")]  # walk and van
    request["visits"] = request["visits"][:12]
    problem, plan = tmp_path / "problem.json", tmp_path / "plan.json"
    problem.write_text(json.dumps(request))
    try:
        result = CliRunner().invoke(app, ["solve", str(problem), "-o", str(plan), "--time-limit", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    document = json.loads(plan.read_text())
    assert document["summary"]["visits_assigned"] + document["summary"]["visits_unassigned"] == 12
    assert all(len(r["geometry"]["coordinates"]) > len(r["steps"]) for r in document["routes"])  # road lines
