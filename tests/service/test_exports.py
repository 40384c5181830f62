"""Exports of a plan document, each parsed back by a reader that knows the format."""

from __future__ import annotations

import copy
import csv
import io
import json
from html.parser import HTMLParser
from typing import Any

import geopandas as gpd
import gpxpy
import pytest
from shapely.geometry import shape

from service import exports
from service.exports import ATTRIBUTION, UnknownVehicleError
from service.schemas import clock, read_document

# The exports take the typed plan document; these fixtures are stored documents (JSON), read
# back as the API reads them.


def plan_geojson(doc: dict[str, Any]) -> dict[str, Any]:
    return exports.plan_geojson(_read(doc))


def route_csv(doc: dict[str, Any], vehicle_id: str) -> str:
    return exports.route_csv(_read(doc), vehicle_id)


def route_gpx(doc: dict[str, Any], vehicle_id: str) -> str:
    return exports.route_gpx(_read(doc), vehicle_id)


def route_html(doc: dict[str, Any], vehicle_id: str) -> str:
    return exports.route_html(_read(doc), vehicle_id)


def used_vehicle_ids(doc: dict[str, Any]) -> list[str]:
    return exports.used_vehicle_ids(_read(doc))


def _read(doc: Any) -> Any:
    typed = read_document(doc) if isinstance(doc, dict) else doc
    assert typed is not None
    return typed

EVIL_NOTES = '<script>alert("x")</script> & ring twice'


def _step(kind: str, id_: str, lon: float, t: int, **extra: Any) -> dict[str, Any]:
    step: dict[str, Any] = {
        "kind": kind, "id": id_, "location": [lon, 60.17], "arrival_s": t, "wait_s": 0,
        "start_s": t, "service_s": 0, "departure_s": t, "load": {"tubes": 0}, "distance_m": 0.0,
        "travel_s": 0.0,
    }
    step.update(extra)
    for name in ("arrival", "start", "departure"):
        step[name] = clock(step[f"{name}_s"])
    for window in step.get("time_windows") or []:
        window.update(start=clock(window["start_s"]), end=clock(window["end_s"]))
    return step


@pytest.fixture
def doc() -> dict[str, Any]:
    """Two vehicles: "team-1" makes two visits (one with hostile notes), "team-2" stays home."""
    visit = {"people": 2, "priority": "quarantine", "address": "Erottajankatu 5", "notes": EVIL_NOTES,
             "contact": "+358 40 123 4567", "time_windows": [{"start_s": 8 * 3600, "end_s": 10 * 3600}]}
    team1 = [
        _step("start", "station", 24.940, 8 * 3600),
        _step("visit", "v-2", 24.942, 8 * 3600 + 300, service_s=540, departure_s=8 * 3600 + 840,
              load={"tubes": 2}, distance_m=250.0, **visit),
        _step("break", "lunch", 24.942, 11 * 3600 + 1800, service_s=1800, departure_s=12 * 3600),
        _step("visit", "v-1", 24.945, 12 * 3600 + 300, people=1, priority="routine", address=None,
              notes="=HYPERLINK(\"http://evil\")", contact=None, service_s=420, wait_s=600,
              start_s=12 * 3600 + 900, departure_s=12 * 3600 + 1320, load={"tubes": 3}, distance_m=600.0),
        _step("end", "station", 24.940, 13 * 3600, load={"tubes": 3}, distance_m=900.0),
    ]
    team2 = [_step("start", "station", 24.940, 8 * 3600), _step("end", "station", 24.940, 8 * 3600)]
    line = {"type": "LineString", "coordinates": [[24.940, 60.17], [24.941, 60.171], [24.942, 60.17],
                                                  [24.945, 60.17], [24.940, 60.17]]}
    return {
        "summary": {"cost": 5000.0, "vehicles_used": 1, "visits_assigned": 2, "visits_unassigned": 1,
                    "distance_m": 900.0, "travel_s": 1200.0, "wait_s": 600.0, "service_s": 960.0,
                    "feasible": True, "engine": "pyvrp", "solve_s": 1.0},
        "routes": [
            {"vehicle_id": "team-1", "kind": "team", "profile": "walk", "distance_m": 900.0,
             "duration_s": 5 * 3600, "travel_s": 1200.0, "wait_s": 600.0, "service_s": 960.0,
             "cost": 5000.0, "start": "08:00", "end": "13:00", "geometry": line, "steps": team1},
            {"vehicle_id": "team-2", "kind": "team", "profile": "drive", "distance_m": 0.0,
             "duration_s": 0, "travel_s": 0, "wait_s": 0, "service_s": 0, "cost": 0, "start": "08:00",
             "end": "08:00", "geometry": None, "steps": team2},
        ],
        "unassigned": [{"visit_id": "v-3", "reason": "fleet_full", "detail": "no time left",
                        "location": [24.950, 60.175]}],
        "violations": [],
        "stats": {},
    }


# --------------------------------------------------------------------------- GeoJSON


def test_geojson_has_one_road_line_per_used_route_and_a_point_per_step(doc: dict[str, Any]) -> None:
    collection = plan_geojson(doc)
    json.dumps(collection)  # serialisable as is
    frame = gpd.GeoDataFrame.from_features(collection["features"], crs="EPSG:4326")
    routes = frame[frame["feature"] == "route"]
    assert list(routes["vehicle_id"]) == ["team-1"]  # team-2 makes no visit
    assert routes.geometry.iloc[0].geom_type == "LineString"
    assert routes.geometry.iloc[0].equals(shape(doc["routes"][0]["geometry"]))
    assert routes["geometry_source"].iloc[0] == "roads"
    assert routes["visits"].iloc[0] == 2 and routes["people"].iloc[0] == 3
    stops = frame[frame["feature"] == "stop"]
    assert list(stops["step"]) == ["start", "visit", "break", "visit", "end"]
    assert list(stops["sequence"]) == [0, 1, 2, 3, 4]
    assert stops.iloc[1]["priority"] == "quarantine"
    assert "contact" not in frame.columns  # personal contact data stays off map layers
    unassigned = frame[frame["feature"] == "unassigned"]
    assert list(unassigned["id"]) == ["v-3"]
    assert collection["properties"]["attribution"] == ATTRIBUTION


def test_geojson_falls_back_to_straight_lines_without_road_geometry(doc: dict[str, Any]) -> None:
    doc["routes"][0]["geometry"] = None
    line = next(f for f in plan_geojson(doc)["features"] if f["properties"]["feature"] == "route")
    assert line["properties"]["geometry_source"] == "straight"
    assert shape(line["geometry"]).coords[0] == (24.940, 60.17)
    assert len(line["geometry"]["coordinates"]) == 4  # the break at v-2's door is not a new point


# --------------------------------------------------------------------------- CSV


def test_csv_lists_every_step_in_order_with_times_and_loads(doc: dict[str, Any]) -> None:
    rows = list(csv.DictReader(io.StringIO(route_csv(doc, "team-1"))))
    assert [r["id"] for r in rows] == ["station", "v-2", "lunch", "v-1", "station"]
    assert [r["visit_no"] for r in rows] == ["", "1", "", "2", ""]
    assert rows[1]["arrival"] == "08:05" and rows[1]["departure"] == "08:14"
    assert rows[1]["time_windows"] == "08:00-10:00"
    assert rows[1]["people"] == "2" and rows[1]["priority"] == "quarantine"
    assert rows[1]["notes"] == EVIL_NOTES
    assert rows[1]["contact"] == "+358 40 123 4567"  # a phone number is left alone
    assert rows[3]["wait_min"] == "10" and rows[3]["load_tubes"] == "3"
    assert float(rows[1]["lon"]) == pytest.approx(24.942)


def test_csv_neutralises_spreadsheet_formulas(doc: dict[str, Any]) -> None:
    rows = list(csv.DictReader(io.StringIO(route_csv(doc, "team-1"))))
    assert rows[3]["notes"] == "'=HYPERLINK(\"http://evil\")"


def test_csv_of_an_unused_vehicle_has_only_its_depot_steps(doc: dict[str, Any]) -> None:
    rows = list(csv.DictReader(io.StringIO(route_csv(doc, "team-2"))))
    assert [r["kind"] for r in rows] == ["start", "end"]


# --------------------------------------------------------------------------- GPX


def test_gpx_parses_with_waypoints_route_and_road_track(doc: dict[str, Any]) -> None:
    gpx = gpxpy.parse(route_gpx(doc, "team-1"))
    assert [w.name for w in gpx.waypoints] == ["start station", "01 v-2", "break lunch", "02 v-1", "end station"]
    assert gpx.waypoints[1].latitude == pytest.approx(60.17)
    assert gpx.waypoints[1].longitude == pytest.approx(24.942)
    assert EVIL_NOTES in (gpx.waypoints[1].description or "")
    assert "2 people" in (gpx.waypoints[1].description or "")
    assert [p.name for p in gpx.routes[0].points][1] == "01 v-2"
    track = gpx.tracks[0].segments[0].points
    assert len(track) == 5 and track[1].longitude == pytest.approx(24.941)
    assert "OpenStreetMap contributors" in (gpx.copyright_author or "")


def test_gpx_without_road_geometry_tracks_the_stops(doc: dict[str, Any]) -> None:
    doc["routes"][0]["geometry"] = None
    gpx = gpxpy.parse(route_gpx(doc, "team-1"))
    assert len(gpx.tracks[0].segments[0].points) == 4


# --------------------------------------------------------------------------- HTML


class _Table(HTMLParser):
    """Collects the text of each table body row, and any script element met."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.scripts = 0
        self.text: list[str] = []
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts += 1
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
        elif tag == "td" and self._in_body:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tbody":
            self._in_body = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def test_html_lists_steps_in_order_and_escapes_all_text(doc: dict[str, Any]) -> None:
    page = route_html(doc, "team-1")
    parser = _Table()
    parser.feed(page)
    assert parser.scripts == 0
    assert [row[3] for row in parser.rows] == ["start · station", "v-2", "break · lunch", "v-1", "end · station"]
    visit = parser.rows[1]
    assert visit[0] == "1" and visit[1] == "08:05–08:14"
    assert visit[4] == "Erottajankatu 5" and visit[5] == "2" and visit[6] == "quarantine"
    assert visit[7] == EVIL_NOTES  # shown as text, not run
    assert parser.rows[3][4] == "60.170000, 24.945000"  # no address: coordinates, lat first
    assert "(arrive 12:05)" in parser.rows[3][1]
    assert ATTRIBUTION in "".join(parser.text)
    assert "@media print" in page and "<link" not in page  # self-contained


def test_html_escapes_the_vehicle_id_too(doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(doc)
    doc["routes"][0]["vehicle_id"] = "<b>team</b>"
    page = route_html(doc, "<b>team</b>")
    assert "<b>team</b>" not in page and "&lt;b&gt;team&lt;/b&gt;" in page


@pytest.mark.parametrize("export", [route_csv, route_gpx, route_html])
def test_per_vehicle_exports_name_the_unknown_vehicle(doc: dict[str, Any], export: Any) -> None:
    with pytest.raises(UnknownVehicleError, match=r'"bus-9".*team-1, team-2'):
        export(doc, "bus-9")


def test_steps_without_optional_fields_export(doc: dict[str, Any]) -> None:
    for step in doc["routes"][0]["steps"]:
        for name in ("people", "priority", "address", "notes", "contact", "time_windows"):
            step.pop(name, None)
    assert route_html(doc, "team-1") and route_csv(doc, "team-1") and route_gpx(doc, "team-1")
    assert plan_geojson(doc)["features"]


def test_a_stored_document_missing_a_schedule_is_refused_naming_the_field(doc: dict[str, Any]) -> None:
    from pydantic import ValidationError

    del doc["routes"][0]["steps"][1]["arrival_s"]
    with pytest.raises(ValidationError, match=r"routes\.0\.steps\.1\.arrival_s"):
        read_document(doc)


def test_used_vehicle_ids_skips_routes_without_visits(doc: dict[str, Any]) -> None:
    assert used_vehicle_ids(doc) == ["team-1"]


# --------------------------------------------------------------------------- bus stops, areas, labs


@pytest.fixture
def bus_doc() -> dict[str, Any]:
    """The bus serves two stops (the school walks to the plaza, the compound to yard-east) and
    drops at the lab; the team makes visit a and drops too; a third area is uncovered."""
    from routing.evaluate import evaluate
    from routing.model import BusStop
    from routing.plan import AreaCoverage, Plan, Reason, Unassigned
    from service.schemas import PlanRequest, plan_document, to_problem
    from tests.service.test_api_buses import bus_request

    request = bus_request()
    request["areas"].append({"id": "hamlet", "location": [113.70, 34.80], "population": 60})
    problem = to_problem(PlanRequest.model_validate(request))
    people = {"plaza": 420, "yard-east": 900}
    problem = problem.replace(stops=[
        BusStop(s.id, s.location, people=people.get(s.id, 0), time_windows=s.time_windows, group=s.group,
                demand={"tubes": -(-people.get(s.id, 0) // 10)}, notes=s.notes,
                address="Plaza gate" if s.id == "plaza" else None)
        for s in problem.stops
    ])
    evaluation = evaluate(problem, {"bus-1": ["yard-east", "plaza", "lab"], "team-1": ["a", "lab"]})
    plan = Plan(
        routes=evaluation.routes,
        unassigned=(Unassigned("yard-west", Reason.NOT_WORTH_SERVING, "its alternative is used", kind="stop"),),
        violations=evaluation.violations,
        cost=evaluation.cost,
        coverage=(
            AreaCoverage("school", 420, "plaza", 35.5),
            AreaCoverage("compound", 900, "yard-east", 140.0),
            AreaCoverage("hamlet", 60, None, None, Reason.NO_STOP_IN_WALKING_RANGE, "nearest stop 9 km"),
        ),
    )
    return plan_document(problem, plan)


def test_geojson_has_bus_stops_lab_drops_areas_and_catchments(bus_doc: dict[str, Any]) -> None:
    collection = plan_geojson(bus_doc)
    json.dumps(collection)
    frame = gpd.GeoDataFrame.from_features(collection["features"], crs="EPSG:4326")
    routes = frame[frame["feature"] == "route"]
    assert set(routes["vehicle_id"]) == {"bus-1", "team-1"}  # a bus route without visits is drawn
    bus_route = routes[routes["vehicle_id"] == "bus-1"].iloc[0]
    assert bus_route["stops"] == 2 and bus_route["people"] == 1320 and bus_route["lab_drops"] == 1
    steps = frame[(frame["feature"] == "stop") & (frame["vehicle_id"] == "bus-1")]
    plaza = steps[steps["id"] == "plaza"].iloc[0]
    assert plaza["step"] == "stop" and plaza["people"] == 420 and plaza["tubes"] == 42
    assert plaza["dwell_s"] == 600 + 420 * 10 and plaza["areas_served"] == "school"
    lab = steps[steps["step"] == "lab"].iloc[0]
    assert lab["delivered"] == {"tubes": 132} and lab["oldest_sample_age_s"] > 0
    areas = frame[frame["feature"] == "area"].set_index("id")
    assert areas.loc["compound"].geometry.geom_type == "Polygon"  # the outline when given
    assert areas.loc["school"].geometry.geom_type == "Point"
    assert not areas.loc["hamlet"]["covered"] and areas.loc["hamlet"]["reason"] == "no_stop_in_walking_range"
    catchments = frame[frame["feature"] == "catchment"].set_index("area_id")
    assert sorted(catchments.index) == ["compound", "school"]  # none for the uncovered hamlet
    line = catchments.loc["school"]
    assert line["stop_id"] == "plaza" and line["walk_m"] == 35.5
    assert line.geometry.coords[-1] == pytest.approx(tuple(bus_doc.coverage[0].stop_location or ()))
    unassigned = frame[frame["feature"] == "unassigned"]
    assert list(unassigned["id"]) == ["yard-west"]


def test_csv_of_a_bus_has_dwell_tubes_areas_and_lab_drops(bus_doc: dict[str, Any]) -> None:
    rows = list(csv.DictReader(io.StringIO(route_csv(bus_doc, "bus-1"))))
    assert [r["kind"] for r in rows] == ["start", "stop", "stop", "lab", "end"]
    assert [r["visit_no"] for r in rows] == ["", "1", "2", "", ""]
    plaza = rows[2]
    assert (plaza["people"], plaza["dwell_min"], plaza["tubes"], plaza["areas"]) == ("420", "80", "42", "school")
    assert plaza["address"] == "Plaza gate" and plaza["time_windows"] == "12:00-14:00"
    lab = rows[3]
    assert lab["delivered"] == "132 tubes" and int(lab["oldest_sample_min"]) > 80
    assert lab["dwell_min"] == "" and rows[0]["delivered"] == ""


def test_gpx_of_a_bus_describes_stops_and_drops(bus_doc: dict[str, Any]) -> None:
    gpx = gpxpy.parse(route_gpx(bus_doc, "bus-1"))
    assert [w.name for w in gpx.waypoints] == ["start station", "01 yard-east", "02 plaza", "lab lab", "end station"]
    plaza = gpx.waypoints[2].description or ""
    assert "420 people" in plaza and "stay 80 min" in plaza and "42 tubes" in plaza and "areas school" in plaza
    assert "hand over 132 tubes" in (gpx.waypoints[3].description or "")
    assert "oldest sample" in (gpx.waypoints[3].description or "")


def test_html_of_a_bus_lists_stops_and_drops(bus_doc: dict[str, Any]) -> None:
    page = route_html(bus_doc, "bus-1")
    parser = _Table()
    parser.feed(page)
    assert [row[3] for row in parser.rows] == ["start · station", "yard-east", "plaza", "lab · lab", "end · station"]
    plaza = parser.rows[2]
    assert plaza[0] == "2" and plaza[5] == "420" and plaza[4] == "Plaza gate"
    assert plaza[7].startswith("stay 80 min · 42 tubes · areas school")
    assert "cancelled" in plaza[9] and "not home" not in plaza[9]
    assert parser.rows[3][7].startswith("hand over 132 tubes · oldest sample")
    assert "Bus stops:" in page and "Lab drops:" in page and "Visits:" not in page
