"""Draft versions through the real app: a re-plan asked not to publish waits for the dispatcher,
who compares it with the crews' version, then publishes or discards it; a hand edit is saved as a
draft with its violations and goes out only when the dispatcher accepts them.

Plans are solved by the stand-in ``quick_solve`` (every visit on the first team, in request order).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.auth import Keys, Role
from service.config import Settings
from service.main import create_app
from service.store import Store
from tests.service.conftest import wait_for
from tests.service.test_crew_links import bearer, key_of
from tests.service.test_field import line_request

MakeSettings = Callable[..., Settings]


class Desk:
    """A dispatcher (and, once asked for, a crew) on a running app in ``required`` mode."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        store: Store = client.app.state.store  # type: ignore[attr-defined]
        self.headers = bearer(Keys(store).create(role=Role.DISPATCHER, organisation="north")[1])

    def post(self, path: str, body: Any = None) -> Any:
        return self.client.post(path, json=body, headers=self.headers)

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=self.headers)

    def solved(self, request: dict[str, Any]) -> str:
        response = self.post("/v1/plans", request)
        assert response.status_code == 202, response.text
        plan_id = str(response.json()["id"])
        solved = wait_for(self.client, plan_id, {"done", "failed"}, timeout_s=120, headers=self.headers)
        assert solved["status"] == "done", solved
        return plan_id

    def crew(self, plan_id: str, vehicle_id: str) -> dict[str, str]:
        made = self.post(f"/v1/plans/{plan_id}/crew-links", {"vehicle_id": vehicle_id})
        assert made.status_code == 201, made.text
        return bearer(key_of(made.json()["url"]))

    def draft_replan(self, plan_id: str, **body: Any) -> dict[str, Any]:
        response = self.post(f"/v1/plans/{plan_id}/replan", {"now": "09:00", "publish": False, **body})
        assert response.status_code == 202, response.text
        made = response.json()
        wait_for(self.client, made["id"], {"done", "failed"}, timeout_s=120, headers=self.headers)
        return dict(made)


@pytest.fixture
def desk(sqlite_url: str, make_settings: MakeSettings) -> Iterator[Desk]:
    with TestClient(create_app(make_settings(sqlite_url, auth="required"))) as client:
        yield Desk(client)


def record(client: TestClient, plan_id: str, step: str, outcome: str, at: str, headers: dict[str, str],
           **fields: Any) -> None:
    response = client.post(f"/v1/plans/{plan_id}/events", headers=headers,
                           json={"vehicle_id": "t1", "step_id": step, "outcome": outcome, "at": at, **fields})
    assert response.status_code == 201, response.text


def crew_route(desk: Desk, crew: dict[str, str]) -> tuple[int, list[str]]:
    day = desk.client.get("/v1/crew/day", headers=crew).json()
    return day["version"], [s["id"] for s in day["steps"] if s["kind"] == "visit"]


def test_a_draft_replan_reaches_the_crews_only_when_published(desk: Desk) -> None:
    first = desk.solved(line_request(visits=4))
    crew = desk.crew(first, "t1")
    record(desk.client, first, "v1", "done", "08:10", people_sampled=2, headers=crew)
    draft = desk.draft_replan(first, cancelled=["v4"])
    assert draft["publication"] == "draft" and draft["version"] == 2

    # the crews still have version 1: their day, superseded_by, progress and what counts as a task
    assert crew_route(desk, crew) == (1, ["v1", "v2", "v3", "v4"])
    assert desk.client.get(f"/v1/plans/{first}/routes/t1", headers=crew).json()["superseded_by"] is None
    assert desk.client.get(f"/v1/plans/{draft['id']}/routes/t1", headers=crew).status_code == 404
    progress = desk.get(f"/v1/plans/{first}/progress", at="09:00").json()
    assert progress["current_version"] == first and progress["tasks"] == 4  # v4 not cancelled yet
    versions = desk.get(f"/v1/plans/{first}/versions").json()["data"]
    assert [(v["version"], v["publication"]) for v in versions] == [(1, "published"), (2, "draft")]
    assert desk.get(f"/v1/plans/{draft['id']}").json()["publication"] == "draft"

    # the dispatcher sees what would change, then publishes
    compared = desk.get(f"/v1/plans/{first}/compare/{draft['id']}").json()
    assert {r["id"]: r["outcome"] for r in compared["removed"]} == {"v1": "done", "v4": None}
    published = desk.post(f"/v1/plans/{draft['id']}/publish")
    assert published.status_code == 200, published.text
    assert published.json()["publication"] == "published"
    assert crew_route(desk, crew) == (2, ["v2", "v3"])
    assert desk.client.get(f"/v1/plans/{first}/routes/t1", headers=crew).json()["superseded_by"] == draft["id"]
    assert desk.get(f"/v1/plans/{first}/progress", at="09:00").json()["tasks"] == 3  # v4 cancelled now
    ledger = [e["outcome"] for e in desk.get(f"/v1/plans/{first}/events").json()["data"]]
    assert ledger == ["done", "drafted", "replanned"]
    again = desk.post(f"/v1/plans/{draft['id']}/publish")
    assert again.status_code == 200 and again.json()["publication"] == "published"  # nothing changes


def test_a_discarded_draft_changes_nothing_and_the_next_replan_is_numbered_after_it(desk: Desk) -> None:
    first = desk.solved(line_request(visits=3))
    draft = desk.draft_replan(first, cancelled=["v3"])
    while_waiting = desk.post(f"/v1/plans/{first}/replan", {"now": "09:00"})
    assert while_waiting.status_code == 409 and draft["id"] in while_waiting.json()["detail"]
    discarded = desk.post(f"/v1/plans/{draft['id']}/discard")
    assert discarded.status_code == 200 and discarded.json()["publication"] == "discarded"
    assert desk.post(f"/v1/plans/{draft['id']}/publish").status_code == 409
    assert desk.get(f"/v1/plans/{first}/progress", at="09:00").json()["tasks"] == 3  # v3 still wanted
    # default publish: live at once, as before drafts existed; numbered after the discarded one
    live = desk.post(f"/v1/plans/{first}/replan", {"now": "09:30"})
    assert live.status_code == 202 and live.json()["publication"] == "published" and live.json()["version"] == 3
    assert desk.post(f"/v1/plans/{first}/discard").status_code == 409  # the crews have it


def test_a_hand_edit_is_saved_as_a_draft_and_a_late_one_is_published_only_when_accepted(desk: Desk) -> None:
    request = line_request(visits=4)
    request["visits"][3]["time_windows"] = [{"start": "08:00", "end": "08:10"}]  # v4: early, 400 s from the depot
    first = desk.solved(request)  # quick_solve: t1 has v1..v4 in that order: v4 is late already
    document = desk.get(f"/v1/plans/{first}").json()["plan"]
    assert [v["step_id"] for v in document["violations"]] == ["v4"]

    # v4 first on t2: on time; v1 left out
    edited = desk.post(f"/v1/plans/{first}/versions", {"routes": {"t1": ["v2", "v3"], "t2": ["v4"]}})
    assert edited.status_code == 201, edited.text
    good = edited.json()
    assert good["publication"] == "draft" and good["feasible"] is True and good["missing"] == ["v1"]
    shown = desk.get(f"/v1/plans/{good['id']}").json()
    assert {u["visit_id"]: u["reason"] for u in shown["plan"]["unassigned"]} == {"v1": "left_out_by_hand"}
    assert shown["status"] == "done" and shown["version"] == 2

    # an edit of the draft replaces it; this one makes v4 late again
    late = desk.post(f"/v1/plans/{good['id']}/versions", {"routes": {"t1": ["v1", "v2", "v3", "v4"]}}).json()
    assert late["feasible"] is False and [v["kind"] for v in late["violations"]] == ["late"]
    versions = desk.get(f"/v1/plans/{first}/versions").json()["data"]
    assert [v["publication"] for v in versions] == ["published", "discarded", "draft"]
    refused = desk.post(f"/v1/plans/{late['id']}/publish")
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "accept_violations"]
    assert "late at v4" in refused.json()["detail"][0]["msg"]
    accepted = desk.post(f"/v1/plans/{late['id']}/publish", {"accept_violations": True})
    assert accepted.status_code == 200 and accepted.json()["publication"] == "published"
    [entry] = [e for e in desk.get(f"/v1/plans/{first}/events").json()["data"] if e["outcome"] == "replanned"]
    assert entry["payload"]["hand_edit"] is True and entry["payload"]["violations_accepted"] == 1


def test_bad_hand_edits_are_refused_naming_the_place(desk: Desk) -> None:
    first = desk.solved(line_request(visits=3))
    crew = desk.crew(first, "t1")
    record(desk.client, first, "v1", "done", "08:10", people_sampled=2, headers=crew)
    cases = [
        ({"routes": {"t9": ["v1"]}}, ["body", "routes", "t9"]),
        ({"routes": {"t1": ["v2", "nobody"]}}, ["body", "routes", "t1", 1]),
        ({"routes": {"t2": ["v1", "v2"]}}, ["body", "routes", "t2", 0]),  # v1 was done by t1
    ]
    for body, loc in cases:
        response = desk.post(f"/v1/plans/{first}/versions", body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"][0]["loc"] == loc, body
    draft = desk.post(f"/v1/plans/{first}/versions", {"routes": {"t1": ["v1", "v2", "v3"]}}).json()
    other = desk.post(f"/v1/plans/{first}/versions", {"routes": {"t1": ["v1", "v3", "v2"]}})
    assert other.status_code == 409 and draft["id"] in other.json()["detail"]  # edit the draft, or discard it
