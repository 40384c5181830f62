"""Field operations through the real app: the ledger, progress, re-planning into versions,
comparison, carry-over, plan mode, purging, and personal data kept out of the logs.

Plans here are solved by the stand-in ``quick_solve`` (every visit on the first team, in request
order), except the re-planning ones, which need the real solver's minimal-disruption objective.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from routing.evaluate import evaluate
from service.cli import app as cli
from service.config import Settings, get_settings
from service.main import create_app
from service.schemas import PlanRequest, to_problem
from tests.service.conftest import wait_for

MakeSettings = Callable[..., Settings]
H = 3600
NOTE = "Frau Zyxwv bedridden, diabetic"  # distinctive personal data: must never reach a log
CONTACT = "+358-40-7777-1234"
CREW_NOTE = "daughter Qwertz answers the door"


def line_request(visits: int = 6, teams: int = 2, **overrides: Any) -> dict[str, Any]:
    """A depot and ``visits`` households 1 km apart on one street (100 s each way), ``teams`` teams."""
    xs = list(range(visits + 1))
    request: dict[str, Any] = {
        "name": "street",
        "matrices": {"drive": {"durations_s": [[abs(a - b) * 100 for b in xs] for a in xs],
                               "distances_m": [[abs(a - b) * 1000 for b in xs] for a in xs]}},
        "depots": [{"id": "depot", "location": [24.94, 60.17]}],
        "vehicles": [{"id": f"t{i + 1}", "start_depot": "depot", "shift": {"start": "08:00", "end": "16:00"},
                      "capacity": {"tubes": 20}} for i in range(teams)],
        "visits": [{"id": f"v{i}", "location": [24.94 + 0.01 * i, 60.17], "people": 2, "address": f"Katu {i}"}
                   for i in range(1, visits + 1)],
        "options": {"time_limit_s": 1},
    }
    request["visits"][0].update(notes=NOTE, contact=CONTACT, priority="quarantine")
    request.update(overrides)
    return request


@pytest.fixture
def client(sqlite_url: str, make_settings: MakeSettings) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(sqlite_url))) as client:
        yield client


def solved(client: TestClient, request: dict[str, Any]) -> str:
    plan_id = client.post("/v1/plans", json=request).json()["id"]
    assert wait_for(client, plan_id, {"done", "failed"})["status"] == "done"
    return plan_id


def record(client: TestClient, plan_id: str, step: str, outcome: str, at: str, vehicle: str = "t1",
           **fields: Any) -> Any:
    return client.post(f"/v1/plans/{plan_id}/events",
                       json={"vehicle_id": vehicle, "step_id": step, "outcome": outcome, "at": at, **fields})


# -- the ledger --------------------------------------------------------------------------------------


def test_each_outcome_is_recorded_and_progress_follows(client: TestClient) -> None:
    plan_id = solved(client, line_request())  # quick_solve: t1 has v1..v6 in order
    assert record(client, plan_id, "v1", "arrived", "08:02").status_code == 201
    assert record(client, plan_id, "v1", "done", "08:09", people_sampled=2, tubes_used=2,
                  arrival="08:02", departure="08:09").status_code == 201
    assert record(client, plan_id, "v2", "not_home", "08:15", note=CREW_NOTE).status_code == 201
    assert record(client, plan_id, "v3", "refused", "08:25").status_code == 201
    assert record(client, plan_id, "v4", "unreachable", "08:40").status_code == 201
    assert record(client, plan_id, "v5", "skipped", "08:41").status_code == 201
    assert record(client, plan_id, "v6", "arrived", "08:50").status_code == 201

    progress = client.get(f"/v1/plans/{plan_id}/progress", params={"at": "10:00"})
    assert progress.status_code == 200, progress.text
    body = progress.json()
    (t1,) = body["vehicles"]
    assert t1["done"] == 1 and t1["people_sampled"] == 2 and t1["people_expected"] == 12
    assert t1["outcomes"] == {"done": 1, "not_home": 1, "refused": 1, "unreachable": 1, "skipped": 1}
    assert t1["in_progress"] == "v6" and t1["remaining"] == 1
    assert body["people_sampled"] == 2 and body["people_expected"] == 12 and body["outstanding"] == 5
    last = {item["id"]: item["last_outcome"] for item in body["not_sampled"]}
    assert last == {"v2": "not_home", "v3": "refused", "v4": "unreachable", "v5": "skipped", "v6": "arrived"}

    events = client.get(f"/v1/plans/{plan_id}/events").json()
    assert events["count"] == 7 and [e["outcome"] for e in events["data"]][:2] == ["arrived", "done"]
    assert events["data"][2]["payload"]["note"] == CREW_NOTE  # a dispatcher sees the crew's note
    assert events["data"][1]["actor"] == "anonymous" and events["data"][1]["payload"]["arrival_s"] == 8 * H + 120


def test_a_later_outcome_supersedes_and_nothing_is_lost(client: TestClient) -> None:
    plan_id = solved(client, line_request())
    record(client, plan_id, "v2", "not_home", "08:15")
    record(client, plan_id, "v2", "done", "14:05", people_sampled=1)
    body = client.get(f"/v1/plans/{plan_id}/progress", params={"at": "15:00"}).json()
    assert "v2" not in {item["id"] for item in body["not_sampled"]}
    assert [e["outcome"] for e in client.get(f"/v1/plans/{plan_id}/events").json()["data"]] == ["not_home", "done"]


def test_a_resubmission_with_the_same_key_is_applied_once(client: TestClient) -> None:
    plan_id = solved(client, line_request())
    first = record(client, plan_id, "v1", "done", "08:09", people_sampled=2, idempotency_key="phone-7:v1")
    again = record(client, plan_id, "v1", "done", "08:09", people_sampled=2, idempotency_key="phone-7:v1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    by_header = [client.post(f"/v1/plans/{plan_id}/events", headers={"Idempotency-Key": "phone-7:v2"},
                             json={"vehicle_id": "t1", "step_id": "v2", "outcome": "refused", "at": "08:20"})
                 for _ in range(3)]
    assert [r.status_code for r in by_header] == [201, 200, 200]
    other = record(client, plan_id, "v3", "refused", "08:30", idempotency_key="phone-7:v1")
    assert other.status_code == 409 and "already used" in other.json()["detail"]
    assert client.get(f"/v1/plans/{plan_id}/events").json()["count"] == 2
    progress = client.get(f"/v1/plans/{plan_id}/progress", params={"at": "09:00"}).json()
    assert progress["people_sampled"] == 2


@pytest.mark.parametrize(
    ("event", "loc"),
    [
        ({"step_id": "nobody"}, ["body", "step_id"]),  # not a visit of the plan
        ({"vehicle_id": "t9"}, ["body", "vehicle_id"]),  # not a vehicle of the plan
        ({"outcome": "done"}, ["body"]),  # done without people_sampled
        ({"outcome": "lost"}, ["body", "outcome"]),  # no such outcome
        ({"at": "25:99"}, ["body", "at"]),  # not a time
    ],
)
def test_bad_entries_are_422_naming_the_field(client: TestClient, event: dict[str, Any], loc: list[Any]) -> None:
    plan_id = solved(client, line_request())
    body = {"vehicle_id": "t1", "step_id": "v1", "outcome": "refused", "at": "08:00", **event}
    response = client.post(f"/v1/plans/{plan_id}/events", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == loc


# -- re-planning -------------------------------------------------------------------------------------


@pytest.fixture
def real_client(sqlite_url: str, make_settings: MakeSettings) -> Iterator[TestClient]:
    settings = make_settings(sqlite_url, solve_function="routing.solver:solve")
    with TestClient(create_app(settings)) as client:
        yield client


def routes(document: dict[str, Any]) -> dict[str, list[str]]:
    return {r["vehicle_id"]: [s["id"] for s in r["steps"] if s["kind"] == "visit"] for r in document["routes"]}


def test_replan_keeps_completed_steps_and_moves_only_what_it_must(real_client: TestClient) -> None:
    client = real_client
    request = line_request(visits=8)
    for vehicle in request["vehicles"]:
        vehicle["capacity"] = {"tubes": 5}  # 9 tubes in all: both teams go out
    first = solved(client, request)
    before = routes(client.get(f"/v1/plans/{first}").json()["plan"])
    t1, t2 = sorted(before)
    record(client, first, before[t1][0], "done", "09:00", vehicle=t1, people_sampled=2)
    record(client, first, before[t2][0], "arrived", "09:05", vehicle=t2)
    cancelled = before[t2][-1]
    # a new urgent visit between the 3rd and 4th households: its travel times are given
    xs = [*range(9), 3.5]
    matrices = {"drive": {"durations_s": [[abs(a - b) * 100 for b in xs] for a in xs],
                          "distances_m": [[abs(a - b) * 1000 for b in xs] for a in xs]}}
    body = {"now": "09:10", "cancelled": [cancelled], "matrices": matrices,
            "new_visits": [{"id": "urgent", "location": [24.975, 60.17], "people": 1, "priority": "urgent"}]}
    response = client.post(f"/v1/plans/{first}/replan", json=body)
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["version"] == 2 and created["parent_id"] == first
    assert created["kept"] == {t1: [before[t1][0]], t2: [before[t2][0]]}
    second = created["id"]
    document = wait_for(client, second, {"done", "failed"})["plan"]
    after = routes(document)
    served = {v for ids in after.values() for v in ids}
    assert before[t1][0] not in served and before[t2][0] not in served  # done and in progress: fixed
    assert cancelled not in served and "urgent" in served
    assert served == {v for ids in before.values() for v in ids} - {before[t1][0], before[t2][0], cancelled} | {
        "urgent"}
    for route in document["routes"]:  # each team starts where it is, from 09:10 on
        assert route["steps"][0]["id"] == f"at:{route['vehicle_id']}"
        assert route["steps"][1]["arrival_s"] >= 9 * H + 600
    # the version is a self-contained problem the evaluator accepts
    stored = client.get(f"/v1/plans/{second}").json()
    assert stored["status"] == "done" and document["violations"] == []

    compared = client.get(f"/v1/plans/{first}/compare/{second}").json()
    assert compared["from_version"] == 1 and compared["to_version"] == 2
    assert {r["id"]: r["outcome"] for r in compared["removed"]} == {
        before[t1][0]: "done", before[t2][0]: "arrived", cancelled: None}
    assert [a["id"] for a in compared["added"]] == ["urgent"]
    print(f"\nAPI replan: {len(compared['moved'])}/{compared['compared']} remaining visits changed team "
          f"({compared['moved_fraction']:.0%})")
    assert compared["moved_fraction"] <= 0.25
    versions = client.get(f"/v1/plans/{second}/versions").json()
    assert [v["version"] for v in versions["data"]] == [1, 2]
    # a crew still holding the first version's route is told which version replaced it
    assert client.get(f"/v1/plans/{first}/routes/{t1}").json()["superseded_by"] == second
    assert client.get(f"/v1/plans/{second}/routes/{t1}").json()["superseded_by"] is None
    again = client.post(f"/v1/plans/{first}/replan", json={"now": "10:00"})
    assert again.status_code == 409 and second in again.json()["detail"]  # re-plan the newest
    progress = client.get(f"/v1/plans/{second}/progress", params={"at": "09:10"}).json()
    assert progress["current_version"] == second and progress["plan_id"] == first
    assert progress["tasks"] == 8  # 8 - cancelled + urgent


def test_not_home_visits_are_retried_later_only_when_asked(real_client: TestClient) -> None:
    client = real_client
    for retry in (False, True):
        first = solved(client, line_request(visits=3, teams=1))
        record(client, first, "v1", "not_home", "08:10")
        replanned = client.post(f"/v1/plans/{first}/replan", json={
            "now": "08:20", "retry_not_home": retry, "options": {"time_limit_s": 1}})
        assert replanned.status_code == 202, replanned.text
        assert replanned.json()["retried"] == (["v1"] if retry else [])
        document = wait_for(client, replanned.json()["id"], {"done", "failed"})["plan"]
        steps = {s["id"]: s for r in document["routes"] for s in r["steps"]}
        if retry:
            assert steps["v1"]["start_s"] >= 9 * H + 20 * 60  # an hour after 08:20
        else:
            assert "v1" not in steps


def test_a_not_home_visit_left_out_of_one_replan_can_be_retried_in_a_later_one(real_client: TestClient) -> None:
    client = real_client
    first = solved(client, line_request(visits=3, teams=1))
    record(client, first, "v1", "not_home", "08:10")
    second = client.post(f"/v1/plans/{first}/replan", json={"now": "08:20", "options": {"time_limit_s": 1}}).json()
    wait_for(client, second["id"], {"done", "failed"})
    # Version 2 no longer has v1. Its sites: the depot, t1 where it is (at v1), v2, v3; then v1 comes back.
    body = {"now": "09:00", "retry_not_home": ["v1"], "options": {"time_limit_s": 1}}
    missing = client.post(f"/v1/plans/{second['id']}/replan", json=body)
    assert missing.status_code == 422 and "brought back" in missing.json()["detail"][0]["msg"]
    xs = [0, 1, 2, 3, 1]
    body["matrices"] = {"drive": {"durations_s": [[abs(a - b) * 100 for b in xs] for a in xs],
                                  "distances_m": [[abs(a - b) * 1000 for b in xs] for a in xs]}}
    third = client.post(f"/v1/plans/{second['id']}/replan", json=body)
    assert third.status_code == 202, third.text
    assert third.json()["retried"] == ["v1"] and third.json()["version"] == 3
    document = wait_for(client, third.json()["id"], {"done", "failed"})["plan"]
    steps = {s["id"]: s for r in document["routes"] for s in r["steps"]}
    assert steps["v1"]["start_s"] >= 10 * H  # an hour after 09:00
    assert steps["v1"]["address"] == "Katu 1"  # its details come back with it


def test_bad_replans_are_refused(client: TestClient) -> None:
    plan_id = solved(client, line_request())
    cases = [
        ({"now": "09:00", "cancelled": ["nobody"]}, ["body", "cancelled", 0]),
        ({"now": "09:00", "retry_not_home": ["v1"]}, ["body", "retry_not_home", 0]),  # no not_home outcome
        ({"now": "09:00", "new_visits": [{"id": "x", "location": [24.9, 60.1]}]}, ["body", "matrices"]),
        ({"now": "09:00", "dropped_vehicles": ["t9"]}, ["body", "dropped_vehicles", "t9"]),
    ]
    for body, loc in cases:
        response = client.post(f"/v1/plans/{plan_id}/replan", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"][0]["loc"] == loc, body


def test_carry_over_lists_what_was_not_sampled_with_its_history(client: TestClient) -> None:
    plan_id = solved(client, line_request(visits=3, teams=1))
    record(client, plan_id, "v1", "not_home", "08:10", note=CREW_NOTE)
    record(client, plan_id, "v2", "done", "08:30", people_sampled=2)
    out = client.get(f"/v1/plans/{plan_id}/carry-over")
    assert out.status_code == 200, out.text
    body = out.json()
    assert [v["id"] for v in body["request"]["visits"]] == ["v1", "v3"]
    assert body["history"]["v1"][0]["outcome"] == "not_home" and body["history"]["v1"][0]["note"] == CREW_NOTE
    assert body["history"]["v3"] == []
    tomorrow = PlanRequest.model_validate(body["request"])  # a request as POST /v1/plans takes it
    assert tomorrow.matrices is not None and len(tomorrow.matrices["drive"].durations_s) == 3
    assert tomorrow.visits[0].notes == NOTE
    assert solved(client, body["request"])


# -- plan mode ---------------------------------------------------------------------------------------


def test_plan_mode_reports_each_violation(client: TestClient) -> None:
    request = line_request(visits=4, teams=1)
    request["vehicles"][0].update(capacity={"tubes": 1}, shift={"start": "08:00", "end": "08:30"})
    request["visits"][1]["time_windows"] = [{"start": "08:00", "end": "08:05"}]
    request["visits"][2]["skills"] = ["ladder"]
    body = {"problem": request, "routes": {"t1": ["v1", "v3", "v2"]}}
    response = client.post("/v1/evaluate", json=body)
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["feasible"] is False and out["missing"] == ["v4"]
    kinds = {v["kind"] for v in out["plan"]["violations"]}
    assert {"late", "over_capacity", "missing_skill", "shift_overrun"} <= kinds
    steps = out["plan"]["routes"][0]["steps"]
    assert [s["id"] for s in steps[1:-1]] == ["v1", "v3", "v2"] and steps[1]["arrival"] == "08:01"
    assert steps[1]["load"] == {"tubes": 2}  # quarantine: a tube per person
    # the same answer as the evaluator's own
    problem = to_problem(PlanRequest.model_validate(request))
    assert len(evaluate(problem, body["routes"]).violations) == len(out["plan"]["violations"])


def test_plan_mode_on_a_stored_plan_and_its_bad_ids(client: TestClient) -> None:
    plan_id = solved(client, line_request(visits=2, teams=1))
    good = client.post("/v1/evaluate", json={"plan_id": plan_id, "routes": {"t1": ["v2", "v1"]}})
    assert good.status_code == 200 and good.json()["feasible"] is True
    for routes_in, loc in (({"t1": ["v1", "nobody"]}, ["body", "routes", "t1", 1]),
                           ({"t9": ["v1"]}, ["body", "routes", "t9"])):
        bad = client.post("/v1/evaluate", json={"plan_id": plan_id, "routes": routes_in})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == loc
    neither = client.post("/v1/evaluate", json={"routes": {}})
    assert neither.status_code == 422


# -- personal data -----------------------------------------------------------------------------------


def test_purge_removes_personal_data_and_says_so(
    client: TestClient, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_id = solved(client, line_request(visits=2, teams=1))
    record(client, plan_id, "v1", "not_home", "08:10", note=CREW_NOTE)
    # Read before the purge, so the API keeps the plan (service.plan_reads): the purge, made by
    # another process, must still be seen at once.
    assert NOTE in client.get(f"/v1/plans/{plan_id}").text
    assert NOTE in client.get(f"/v1/plans/{plan_id}/routes/t1.csv").text
    monkeypatch.setenv("DOORSTEP_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        assert runner.invoke(cli, ["purge", "--older-than", "30d"]).output.startswith("purged personal data from 0")
        result = runner.invoke(cli, ["purge", "--plan", plan_id])
        assert result.exit_code == 0, result.output
        assert plan_id in result.output
        assert runner.invoke(cli, ["purge"]).exit_code == 2
    finally:
        get_settings.cache_clear()
    text = "".join(client.get(f"/v1/plans/{plan_id}{path}").text for path in ("", "/events", "/routes/t1.csv"))
    assert NOTE not in text and CONTACT not in text and CREW_NOTE not in text and "Katu 1" not in text
    assert client.get(f"/v1/plans/{plan_id}/events").json()["data"][-1]["outcome"] == "purged"


def test_no_personal_data_reaches_the_logs(
    real_client: TestClient, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    client = real_client
    caplog.set_level(logging.DEBUG)
    request = line_request(visits=3)
    plan_id = solved(client, request)
    record(client, plan_id, "v1", "done", "09:00", people_sampled=2, note=CREW_NOTE)
    record(client, plan_id, "v2", "not_home", "09:10", note=CREW_NOTE)
    bad = dict(request, visits=[*request["visits"], {"id": "v1", "location": [24.9, 60.1], "notes": NOTE}])
    assert client.post("/v1/plans", json=bad).status_code == 422  # a duplicate id, with personal data
    replanned = client.post(f"/v1/plans/{plan_id}/replan", json={"now": "09:30", "retry_not_home": True})
    wait_for(client, replanned.json()["id"], {"done", "failed"})
    client.get(f"/v1/plans/{plan_id}/progress")
    client.get(f"/v1/plans/{plan_id}/carry-over")
    client.post("/v1/evaluate", json={"plan_id": plan_id, "routes": {"t1": ["v3", "v1"]}})
    captured = capsys.readouterr()
    logged = caplog.text + captured.out + captured.err
    assert logged  # something was logged (workers started, plans solved)
    for secret in (NOTE, CONTACT, CREW_NOTE):
        assert secret not in logged
