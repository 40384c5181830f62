"""The wire/model boundary: a request survives the trip to the routing model and back whole."""

from __future__ import annotations

from typing import Any

import numpy as np

from routing.model import Problem
from service.schemas import PlanRequest, to_problem
from service.schemas.convert import to_request

SITES = 7  # 2 depots, 2 visits, 2 bus stops, 1 lab


def _matrix(scale: float) -> dict[str, list[list[float | None]]]:
    rows: list[list[float | None]] = [[abs(i - j) * scale for j in range(SITES)] for i in range(SITES)]
    rows[0][6] = None  # no path from the first depot to the lab
    return {"durations_s": rows, "distances_m": [[v if v is None else v * 10 for v in row] for row in rows]}


EVERY_FIELD: dict[str, Any] = {
    "name": "Every field",
    "network": "helsinki",
    "matrices": {"drive": _matrix(60.0), "walk": _matrix(300.0)},
    "depots": [{"id": "station", "location": [24.94, 60.17]}, {"id": "garage", "location": [24.95, 60.18]}],
    "vehicles": [
        {"id": "team-1", "kind": "team", "start_depot": "station", "end_depot": None,
         "shift": {"start": "07:30", "end": "29:00"}, "capacity": {"tubes": 40, "kits": 3},
         "skills": ["paediatric", "sign-language"], "profile": "walk",
         "breaks": [{"id": "lunch", "start": "11:30", "end": "13:00", "duration_s": 1800},
                    {"id": "tea", "start": "15:00", "end": "15:30", "duration_s": 600}],
         "max_duration_s": 30000, "fixed_cost": 500, "speed_factor": 0.8},
        {"id": "bus-1", "kind": "bus", "start_depot": "garage", "end_depot": "station",
         "shift": {"start": 25200, "end": 64800}, "profile": "drive", "lanes": 3, "seconds_per_person": 25},
    ],
    "visits": [
        {"id": "v-1", "location": [24.941, 60.171], "people": 3, "setup_s": 240, "per_person_s": 90,
         "time_windows": [{"start": "09:00", "end": "10:00"}, {"start": "14:00", "end": "15:00"}],
         "priority": "quarantine", "skills": ["paediatric"], "pooled": False, "required": True,
         "notes": "knock twice", "contact": "+358 40 000 0000", "preferred_vehicle": "team-1",
         "address": "Mannerheimintie 5 A 12"},
        {"id": "v-2", "location": [24.942, 60.172], "people": 1, "priority": "routine", "required": False,
         "penalty": 5000, "demand": {"tubes": 1, "kits": 1}, "address": "Runeberginkatu 3"},
    ],
    "stops": [
        {"id": "s-school", "location": [24.943, 60.173], "people": 120,
         "time_windows": [{"start": "12:00", "end": "14:00"}], "required": True, "group": "school",
         "max_dwell_s": 7200, "setup_s": 900, "notes": "gate B", "address": "Koulukatu 1"},
        {"id": "s-plaza", "location": [24.944, 60.174], "group": "plaza", "setup_s": 600},
    ],
    "areas": [
        {"id": "a-block", "location": [24.945, 60.175], "population": 800, "walk_limit_m": 500},
        {"id": "a-yard", "polygon": [[24.946, 60.176], [24.947, 60.176], [24.947, 60.177]],
         "population": 150},
    ],
    "labs": [{"id": "lab-1", "location": [24.948, 60.178],
              "opening": [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "20:00"}],
              "handover_s": 420}],
    "max_sample_age_s": 14400,
    "options": {"time_limit_s": 3, "seed": 7, "engine": "ortools", "full_budget": True,
                "initial_routes": {"team-1": ["v-1", "lunch"]}},
    "objective": {"duration_cost_per_s": 1.5, "distance_cost_per_m": 0.01, "unassigned_penalty": 2_000_000,
                  "priority_factor": 3.0, "reassignment_cost": 120.0, "makespan_cost_per_s": 0.2},
}


def _same_problem(a: Problem, b: Problem) -> None:
    for field in ("depots", "vehicles", "visits", "stops", "areas", "labs", "objective", "max_sample_age_s"):
        assert getattr(a, field) == getattr(b, field), field
    assert a.matrices.keys() == b.matrices.keys()
    for profile in a.matrices:
        assert np.array_equal(a.matrices[profile].durations_s, b.matrices[profile].durations_s)
        assert np.array_equal(a.matrices[profile].distances_m, b.matrices[profile].distances_m)


def _round_trip(request: PlanRequest) -> PlanRequest:
    return to_request(to_problem(request), name=request.name, network=request.network, options=request.options)


def test_a_request_with_every_field_comes_back_from_the_model_unchanged() -> None:
    request = PlanRequest.model_validate(EVERY_FIELD)
    again = _round_trip(request)
    _same_problem(to_problem(request), to_problem(again))
    assert _round_trip(again).model_dump() == again.model_dump()  # a fixed point from the first trip on
    # What the model derives is written out as derived, so nothing depends on defaults any more.
    assert again.visits[0].demand == {"tubes": 3}  # unpooled: one tube a person
    assert again.areas[1].location is not None and again.areas[1].polygon == request.areas[1].polygon


def test_the_fields_the_solver_never_reads_survive_the_round_trip() -> None:
    again = _round_trip(PlanRequest.model_validate(EVERY_FIELD))
    assert again.objective.makespan_cost_per_s == 0.2
    assert again.objective.model_dump() == EVERY_FIELD["objective"]
    assert [v.address for v in again.visits] == ["Mannerheimintie 5 A 12", "Runeberginkatu 3"]
    assert again.visits[0].notes == "knock twice" and again.visits[0].contact == "+358 40 000 0000"
    assert again.stops[0].address == "Koulukatu 1" and again.stops[0].notes == "gate B"
    assert again.vehicles[1].lanes == 3 and again.vehicles[1].seconds_per_person == 25
    assert [b.id for b in again.vehicles[0].breaks] == ["lunch", "tea"]
    assert again.vehicles[0].end_depot is None and "end_depot" in again.vehicles[0].model_fields_set
    assert again.labs[0].handover_s == 420 and len(again.labs[0].opening) == 2
    assert again.options.model_dump() == PlanRequest.model_validate(EVERY_FIELD).options.model_dump()
    assert again.matrices is not None and again.matrices["drive"].durations_s[0][6] is None
    assert again.name == "Every field" and again.network == "helsinki"


# -- through the API: a re-plan's version is the same day, minus what is done -------------------------


def test_a_replan_keeps_the_objective_and_what_the_solver_never_reads(
    sqlite_url: str, make_settings: Any
) -> None:
    from fastapi.testclient import TestClient

    from service.main import create_app
    from tests.service.test_field import line_request, record, solved

    request = line_request(visits=4, objective={"makespan_cost_per_s": 0.2, "distance_cost_per_m": 0.05})
    request["vehicles"][0].update(breaks=[{"id": "lunch", "start": "11:00", "end": "12:30", "duration_s": 1800}],
                                  skills=["paediatric"], fixed_cost=300)
    request["visits"][1].update(notes="ring the bell twice", contact="+358 1", skills=["paediatric"])
    with TestClient(create_app(make_settings(sqlite_url))) as client:
        first = solved(client, request)
        step = next(s["id"] for r in client.get(f"/v1/plans/{first}").json()["plan"]["routes"]
                    for s in r["steps"] if s["kind"] == "visit")
        owner = next(r["vehicle_id"] for r in client.get(f"/v1/plans/{first}").json()["plan"]["routes"]
                     if any(s["id"] == step for s in r["steps"]))
        assert record(client, first, step, "done", "09:00", vehicle=owner, people_sampled=2).status_code == 201
        response = client.post(f"/v1/plans/{first}/replan", json={"now": "09:30"})
        assert response.status_code == 202, response.text
        second = response.json()["id"]
    from service.store import Store

    row = Store.from_url(sqlite_url).get(second, request=True)
    assert row is not None and row.request is not None
    stored = row.request
    assert stored["objective"]["makespan_cost_per_s"] == 0.2  # was 0.0 (issue 12)
    assert stored["objective"]["distance_cost_per_m"] == 0.05
    t1 = next(v for v in stored["vehicles"] if v["id"] == "t1")
    assert [b["id"] for b in t1["breaks"]] == ["lunch"] and t1["skills"] == ["paediatric"] and t1["fixed_cost"] == 300
    remaining = {v["id"]: v for v in stored["visits"]}
    assert step not in remaining  # done: not in the rest of the day
    assert {v["address"] for v in remaining.values()} == {f"Katu {i}" for i in range(1, 5)} - {
        f"Katu {step[1:]}"}
    if "v2" in remaining:
        assert remaining["v2"]["notes"] == "ring the bell twice" and remaining["v2"]["skills"] == ["paediatric"]
