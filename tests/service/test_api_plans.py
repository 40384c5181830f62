"""Plans through the real app (lifespan, worker processes, database): submit, poll, cancel,
restart, list, read and export. Solves use the stand-ins of ``fakes`` unless they say otherwise,
so timing is deterministic; the real solver runs in ``test_a_real_solve_...``."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from routing.evaluate import evaluate
from service.config import Settings
from service.main import create_app
from service.schemas import PlanRequest, to_problem
from service.store import PlanRecord, Store, utcnow
from tests.service.conftest import FAKES, small_request, wait_for

MakeSettings = Callable[..., Settings]


def test_a_submitted_plan_is_solved_and_can_be_read(database_url: str, make_settings: MakeSettings) -> None:
    with TestClient(create_app(make_settings(database_url))) as client:
        created = client.post("/v1/plans", json=small_request())
        assert created.status_code == 202
        plan_id = created.json()["id"]
        body = wait_for(client, plan_id, {"done", "failed"})
        assert body["status"] == "done", body
        route = body["plan"]["routes"][0]
        assert [s["kind"] for s in route["steps"]] == ["start", "visit", "visit", "end"]
        visit = route["steps"][1]
        assert visit["id"] == "a" and visit["address"] == "Building 3, unit 2"
        assert visit["arrival"] == "09:00" and visit["load"] == {"tubes": 2}  # quarantine: one tube each
        assert route["steps"][2]["load"] == {"tubes": 3}  # pooled: 3 people share a tube

        one = client.get(f"/v1/plans/{plan_id}/routes/team-1")
        assert one.status_code == 200 and one.json()["steps"] == route["steps"]
        assert client.get(f"/v1/plans/{plan_id}/routes/bus-9").status_code == 404
        for suffix, media in ((".csv", "text/csv"), (".gpx", "application/gpx+xml"), (".html", "text/html")):
            export = client.get(f"/v1/plans/{plan_id}/routes/team-1{suffix}")
            assert export.status_code == 200 and export.headers["content-type"].startswith(media)
        geojson = client.get(f"/v1/plans/{plan_id}.geojson")
        assert geojson.status_code == 200 and geojson.json()["type"] == "FeatureCollection"
        assert client.delete(f"/v1/plans/{plan_id}").status_code == 409  # already done


def test_wait_true_answers_with_the_plan(sqlite_url: str, make_settings: MakeSettings) -> None:
    with TestClient(create_app(make_settings(sqlite_url))) as client:
        response = client.post("/v1/plans?wait=true", json=small_request())
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "done"


def test_a_real_solve_passes_the_evaluator(sqlite_url: str, make_settings: MakeSettings) -> None:
    # 1 s is enough: the worker started its engines' forkserver when it started.
    request = small_request(options={"time_limit_s": 1})
    settings = make_settings(sqlite_url, solve_function="routing.solver:solve")
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/plans?wait=true", json=request)
        assert response.status_code == 200, response.text
        document = response.json()["plan"]
    problem = to_problem(PlanRequest.model_validate(request))
    routes = {r["vehicle_id"]: [s["id"] for s in r["steps"] if s["kind"] in ("visit", "break")]
              for r in document["routes"]}
    evaluation = evaluate(problem, routes)
    assert evaluation.violations == ()
    served = {v for ids in routes.values() for v in ids}
    assert served == {"a", "b"} and document["unassigned"] == []


def test_cancelling_a_solve_keeps_the_best_plan_so_far(database_url: str, make_settings: MakeSettings) -> None:
    settings = make_settings(database_url, solve_function=f"{FAKES}:sleepy_solve")
    with TestClient(create_app(settings)) as client:
        plan_id = client.post("/v1/plans", json=small_request(options={"time_limit_s": 30})).json()["id"]
        wait_for(client, plan_id, {"solving"})
        # "solving" starts at the claim, before the solver has a plan: cancelled then, there is no
        # best plan to keep (a race that loaded machines lost). Wait for the first progress.
        deadline = time.monotonic() + 30
        while client.get(f"/v1/plans/{plan_id}").json()["progress"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
        asked = time.monotonic()
        response = client.delete(f"/v1/plans/{plan_id}")
        assert response.status_code == 200 and response.json()["cancel_requested"] is True
        body = wait_for(client, plan_id, {"cancelled", "done", "failed"}, timeout_s=10)
        assert time.monotonic() - asked < 2.0  # honoured within a second, plus polling
        assert body["status"] == "cancelled"
        assert body["plan"] is not None and body["plan"]["summary"]["engine"] == "fake-sleepy"


def test_cancelling_a_queued_plan_is_immediate(sqlite_url: str, make_settings: MakeSettings) -> None:
    with TestClient(create_app(make_settings(sqlite_url, workers=0))) as client:
        plan_id = client.post("/v1/plans", json=small_request()).json()["id"]
        response = client.delete(f"/v1/plans/{plan_id}")
        assert response.status_code == 200 and response.json()["status"] == "cancelled"
        assert client.get(f"/v1/plans/{plan_id}/routes/team-1").status_code == 409


def test_a_solve_interrupted_by_a_restart_is_finished_by_the_next_app(
    database_url: str, make_settings: MakeSettings
) -> None:
    sleepy = make_settings(database_url, solve_function=f"{FAKES}:sleepy_solve")
    with TestClient(create_app(sleepy)) as client:
        solving_id = client.post("/v1/plans", json=small_request(options={"time_limit_s": 30})).json()["id"]
        wait_for(client, solving_id, {"solving"})
        queued_id = client.post("/v1/plans", json=small_request()).json()["id"]
    # the app stopped: the interrupted solve went back to the queue, nothing is left "solving"
    store = Store.from_url(database_url)
    try:
        rows = {plan_id: store.get(plan_id) for plan_id in (solving_id, queued_id)}
    finally:
        store.close()
    assert {row.status.value for row in rows.values() if row} == {"queued"}
    with TestClient(create_app(make_settings(database_url))) as client:
        for plan_id in (solving_id, queued_id):
            assert wait_for(client, plan_id, {"done", "failed"})["status"] == "done"


def test_a_job_orphaned_by_a_crash_is_requeued_or_given_up(database_url: str, make_settings: MakeSettings) -> None:
    settings = make_settings(database_url, workers=0, max_attempts=2)
    with TestClient(create_app(settings)) as client:
        retry = client.post("/v1/plans", json=small_request()).json()["id"]
        give_up = client.post("/v1/plans", json=small_request()).json()["id"]
    store = Store.from_url(database_url)
    try:
        long_ago = utcnow() - timedelta(minutes=10)
        with store.engine.begin() as connection:  # as a crashed machine would have left them
            for plan_id, attempts in ((retry, 1), (give_up, 2)):
                connection.execute(
                    update(PlanRecord)
                    .where(PlanRecord.id == plan_id)
                    .values(status="solving", worker_id="elsewhere:1", heartbeat_at=long_ago, attempts=attempts)
                )
    finally:
        store.close()
    with TestClient(create_app(make_settings(database_url, max_attempts=2))) as client:
        assert wait_for(client, retry, {"done", "failed"})["status"] == "done"
        failed = client.get(f"/v1/plans/{give_up}").json()
        assert failed["status"] == "failed"
        assert failed["error"]["type"] == "interrupted" and "2 attempts" in failed["error"]["msg"]


def test_a_failing_solver_fails_the_plan_without_leaking_internals(
    sqlite_url: str, make_settings: MakeSettings
) -> None:
    settings = make_settings(sqlite_url, solve_function=f"{FAKES}:broken_solve")
    with TestClient(create_app(settings)) as client:
        plan_id = client.post("/v1/plans", json=small_request()).json()["id"]
        body = wait_for(client, plan_id, {"failed", "done"})
    assert body["status"] == "failed" and body["error"]["type"] == "internal"
    assert "exploded" not in body["error"]["msg"]


def test_plans_are_listed_newest_first_in_pages(sqlite_url: str, make_settings: MakeSettings) -> None:
    with TestClient(create_app(make_settings(sqlite_url, workers=0))) as client:
        ids = [client.post("/v1/plans", json=small_request(name=f"p{i}")).json()["id"] for i in range(5)]
        page = client.get("/v1/plans", params={"offset": 2, "limit": 2}).json()
        assert page["count"] == 5 and page["offset"] == 2 and page["limit"] == 2
        assert [p["id"] for p in page["data"]] == [ids[2], ids[1]]
        assert page["data"][0]["visits"] == 2
        client.delete(f"/v1/plans/{ids[0]}")
        cancelled = client.get("/v1/plans", params={"status": "cancelled"}).json()
        assert [p["id"] for p in cancelled["data"]] == [ids[0]]


class _BrokenRunner:
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def cancel(self, plan_id: str) -> None: ...
    def health(self) -> dict[str, str]:
        return {"workers": "test"}

    def submit(self, plan_id: str) -> None:
        raise RuntimeError("queue is on fire: secret internals")


def test_an_internal_error_is_a_500_with_a_request_id_and_no_internals(
    sqlite_url: str, make_settings: MakeSettings
) -> None:
    app = create_app(make_settings(sqlite_url), runner=_BrokenRunner())
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/v1/plans", json=small_request())
    assert response.status_code == 500
    body = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    assert "secret" not in response.text and "Traceback" not in response.text


def test_health_and_readiness(sqlite_url: str, make_settings: MakeSettings) -> None:
    with TestClient(create_app(make_settings(sqlite_url))) as client:
        assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"


def test_openapi_has_stable_operation_ids_and_examples(sqlite_url: str, make_settings: MakeSettings) -> None:
    with TestClient(create_app(make_settings(sqlite_url, workers=0))) as client:
        schema = client.get("/openapi.json").json()
    operations = {op["operationId"]: op for path in schema["paths"].values() for op in path.values()}
    assert set(operations) == {
        "create_plan", "list_plans", "get_plan", "cancel_plan", "get_route", "export_plan_geojson",
        "export_route_csv", "export_route_gpx", "export_route_html", "create_matrix", "list_networks",
        "healthz", "readyz",
        # field operations (issue 6)
        "record_event", "list_events", "get_progress", "replan", "list_versions", "compare_versions",
        "carry_over", "evaluate_routes",
        # crew links and the crew's day (issue 14)
        "create_crew_link", "list_crew_links", "revoke_crew_link", "get_crew_day",
        # the dispatcher's console (issue 15): CSV upload, streets for the map
        "request_from_csv", "get_network_streets",
        # draft versions: publish after the diff, discard, a hand edit saved as a version
        "publish_version", "discard_version", "save_hand_edit",
        # integrators (issue 16): VROOM's JSON, callbacks' delivery log and signing secret
        "vroom_solve", "vroom_solve_v1", "list_callbacks", "get_callback_secret", "rotate_callback_secret",
        # city rounds (issue 17)
        "create_round", "get_round", "cancel_round",
    }
    assert "[lon, lat]" in schema["info"]["description"]
    assert operations["create_plan"]["requestBody"]["content"]["application/json"]["examples"]
    for name in ("PlanRequest", "PlanOut", "PlanList", "RouteDetail", "MatrixRequest", "NetworkList", "CrewLinkIn"):
        assert schema["components"]["schemas"][name].get("examples"), name
