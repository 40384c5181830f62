"""CSV files to a plan request and back (`service.csv_request`), and `POST /v1/requests/from-csv`
on the Helsinki network: every bad cell named by file, line and column, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.csv_request import CsvError, request_csvs, request_from_csvs
from service.main import create_app

DATA = Path(__file__).resolve().parents[2] / "data"
FILES = ("visits", "vehicles", "depots")


def texts() -> dict[str, str]:
    return {name: (DATA / "helsinki-home-visits" / f"{name}.csv").read_text(encoding="utf-8") for name in FILES}


def test_the_sample_csvs_read_back_as_the_sample_request() -> None:
    request = json.loads((DATA / "helsinki-home-visits.json").read_text(encoding="utf-8"))
    read = request_from_csvs(**texts(), name=request["name"], network=request["network"])
    assert read["depots"] == request["depots"]
    assert read["vehicles"] == request["vehicles"]
    # the CSVs keep no addresses; everything else of every visit round-trips, demand included
    assert read["visits"] == [{k: v for k, v in visit.items() if k != "address"} for visit in request["visits"]]
    assert request_csvs(read) == {f"{name}.csv": text for name, text in texts().items()}


@pytest.mark.parametrize(
    ("file", "old", "new", "line", "column"),
    [
        ("visits", "60.1697413", "sixty", 2, "lat"),  # not a number
        ("visits", "v-002,24.9530522,60.1746724,2,", "v-002,24.9530522,60.1746724,2.5,", 3, "people"),  # not whole
        ("visits", ",13:30,16:00,vulnerable", ",13:30,,vulnerable", 5, "window_end"),  # half a window
        ("visits", ",13:30,16:00,vulnerable", ",13:30,16:00,important", 5, "priority"),  # unknown priority
        ("vehicles", "11:30,13:30,1800,60,30,paediatric", "11:30,13:30,,60,30,paediatric", 2, "break_duration_s"),
        ("depots", "24.9443378", "", 2, "lon"),  # empty
    ],
)
def test_every_bad_cell_names_its_file_line_and_column(file: str, old: str, new: str, line: int, column: str) -> None:
    files = texts()
    assert old in files[file]
    files[file] = files[file].replace(old, new, 1)
    with pytest.raises(CsvError) as raised:
        request_from_csvs(**files)
    cells = [(e.file, e.line, e.column) for e in raised.value.errors]
    assert (file, line, column) in cells, raised.value.errors


def test_a_file_without_its_header_is_refused_at_line_1() -> None:
    files = texts()
    files["depots"] = "name,x,y\nstation,24.94,60.17\n"
    with pytest.raises(CsvError) as raised:
        request_from_csvs(**files)
    assert [(e.file, e.line) for e in raised.value.errors] == [("depots", 1)]
    assert "id, lon, lat" in raised.value.errors[0].msg


# -- the endpoint, on the Helsinki network -------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("csv")
    settings = Settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'doorstep.db'}", workers=0,
                        profiles=["walk", "drive"])
    with TestClient(create_app(settings)) as client:
        yield client


def body(**files: str) -> dict[str, str]:
    return {f"{name}_csv": text for name, text in {**texts(), **files}.items()}


@pytest.mark.slow
def test_the_endpoint_answers_the_request_checked_against_the_network(client: TestClient) -> None:
    response = client.post("/v1/requests/from-csv", json={**body(), "name": "Kallio", "options": {"time_limit_s": 3},
                                                          "objective": {"makespan_cost_per_s": 0.5}})
    assert response.status_code == 200, response.text
    request = response.json()
    assert len(request["visits"]) == 80 and request["name"] == "Kallio"
    assert request["options"] == {"time_limit_s": 3} and request["objective"] == {"makespan_cost_per_s": 0.5}
    assert client.post("/v1/plans", json=request).status_code == 202  # what it answers is what POST /v1/plans takes


@pytest.mark.slow
@pytest.mark.parametrize(
    ("old", "new", "line", "column", "message"),
    [
        ("60.1697413", "sixty", 2, "lat", '"sixty" is not a number'),
        ("60.1697413", "61.5", 2, "lon", "outside the road network"),  # found by the network check
        (",13:30,16:00,vulnerable", ",16:00,13:30,vulnerable", 5, "window_start", "ends (13:30) before it starts"),
    ],
)
def test_the_endpoint_names_the_bad_cell(client: TestClient, old: str, new: str, line: int, column: str,
                                         message: str) -> None:
    response = client.post("/v1/requests/from-csv", json=body(visits=texts()["visits"].replace(old, new, 1)))
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert (error["file"], error["line"], error["column"]) == ("visits.csv", line, column)
    assert error["loc"] == ["body", "visits_csv", line, column]
    assert message in error["msg"]


@pytest.mark.slow
def test_the_network_streets_are_geojson_within_the_box(client: TestClient) -> None:
    everything = client.get("/v1/networks/helsinki/streets?profile=walk")
    box = client.get("/v1/networks/helsinki/streets", params={"profile": "walk", "bbox": "24.94,60.165,24.945,60.17"})
    assert everything.status_code == box.status_code == 200
    assert box.headers["content-type"].startswith("application/geo+json")
    [feature] = box.json()["features"]
    lines = feature["geometry"]["coordinates"]
    assert 0 < len(lines) < everything.json()["features"][0]["properties"]["segments"]
    for line in lines:  # every street kept touches the box
        assert min(x for x, _ in line) <= 24.945 + 0.01 and max(x for x, _ in line) >= 24.94 - 0.01
    assert client.get("/v1/networks/helsinki/streets?bbox=1,2").json()["detail"][0]["loc"] == ["query", "bbox"]
    assert client.get("/v1/networks/helsinki/streets?bbox=1,2").status_code == 422
    assert client.get("/v1/networks/nowhere/streets").status_code == 404
    assert client.get("/v1/networks/helsinki/streets?profile=bike").status_code == 404


@pytest.mark.parametrize("text", ["!\u00ee\r|\u00a1", 'id,lon\n"never closed', "id\x00,lon\n"])
def test_a_file_that_is_not_csv_is_an_error_naming_the_file_not_a_crash(text: str) -> None:
    # Found by fuzzing the API: a bare carriage return inside a field answered 500.
    with pytest.raises(CsvError) as raised:
        request_from_csvs("", "M", text)
    assert any(e.file == "depots" for e in raised.value.errors)
