"""A scripted day replayed end to end in the dispatcher's console (Debian's Chromium, Playwright)
against a real `doorstep serve` on the Helsinki network with the real solver.

The street office's 80 home visits (``data/helsinki-home-visits.json``) go out with six teams.
Through the morning each crew records its doors through the API with its own crew key (a crew
link): most are done, some not at home, a few refuse. At noon the dispatcher re-plans in the
console: a team goes home, a van joins, the not-at-home doors are tried again. The re-plan is a
draft until the diff has been seen and it is published; only then do the crews get it. The
afternoon is recorded the same way, and at the end every household is accounted for: done,
refused, not at home, or unserved with its reason. Screenshots go to ``out/console/day-*.png``;
no JavaScript error on the way.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.service.browser import ROOT, Server, chromium, require_chromium

require_chromium("console")

from playwright.sync_api import expect  # noqa: E402

from tests.service.test_console_page import SOLVE_S, Desk, save, used, visit_ids  # noqa: E402

pytestmark = pytest.mark.slow

NOON = 12 * 3600
FINAL = {"done", "not_home", "refused"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("serve-day"), DOORSTEP_NETWORKS=json.dumps({"helsinki": "default"}))
    try:
        running.warm_up()
        yield running
    finally:
        running.stop()


def six_teams() -> dict[str, Any]:
    request = json.loads((ROOT / "data" / "helsinki-home-visits.json").read_text())
    sixth = copy.deepcopy(next(v for v in request["vehicles"] if v["id"] == "team-2"))
    sixth["id"] = "team-6"
    request["vehicles"].append(sixth)
    request["name"] = "Street office: 80 home visits, six teams"
    return request


def outcome_of(step: dict[str, Any], index: int) -> dict[str, Any]:
    """A door's outcome, the same every run: one in seven not at home, one in eleven refuses."""
    at = step["departure"]
    if index % 7 == 3:
        return {"outcome": "not_home", "at": at, "note": "no answer, left a card"}
    if index % 11 == 5:
        return {"outcome": "refused", "at": at}
    return {"outcome": "done", "at": at, "people_sampled": step.get("people") or 1, "arrival": step["arrival"],
            "departure": step["departure"]}


class Crews:
    """Each vehicle's crew, recording through the API with its own crew key."""

    def __init__(self, server: Server, plan_id: str) -> None:
        self.server = server
        self.plan_id = plan_id
        self.keys: dict[str, httpx.Client] = {}
        self.recorded = 0

    def crew(self, vehicle_id: str) -> httpx.Client:
        if vehicle_id not in self.keys:
            made = self.server.http.post(f"/v1/plans/{self.plan_id}/crew-links", json={"vehicle_id": vehicle_id})
            assert made.status_code == 201, made.text
            key = made.json()["url"].split("#key=", 1)[1]
            self.keys[vehicle_id] = httpx.Client(base_url=self.server.url, timeout=30,
                                                 headers={"Authorization": f"Bearer {key}"})
        return self.keys[vehicle_id]

    def work(self, until_s: float) -> None:
        """Every crew records the doors of its current route that start before ``until_s``."""
        for vehicle_id in sorted(self.keys):
            day = self.crew(vehicle_id).get("/v1/crew/day").json()
            for step in day["steps"]:
                if step["kind"] != "visit" or step["outcome"] in FINAL or step["start_s"] >= until_s:
                    continue
                body = {"vehicle_id": vehicle_id, "step_id": step["id"], **outcome_of(step, self.recorded)}
                if step["outcome"] == "not_home":  # the second knock of a retried door: someone is in
                    body = {"vehicle_id": vehicle_id, "step_id": step["id"], "outcome": "done", "at": step["departure"],
                            "people_sampled": step.get("people") or 1}
                response = self.crew(vehicle_id).post(f"/v1/plans/{self.plan_id}/events", json=body)
                assert response.status_code == 201, response.text
                self.recorded += 1

    def close(self) -> None:
        for client in self.keys.values():
            client.close()


def test_a_scripted_day_with_six_teams_ends_with_everyone_accounted_for(server: Server) -> None:
    request = six_teams()
    with chromium() as browser:
        desk = Desk(browser, "en-GB")
        page = desk.page
        crews: Crews | None = None
        try:
            # 07:45: the day is planned
            page.goto(f"{server.url}/console/#key={server.dispatcher}")
            page.set_input_files("#json-file", {"name": "day.json", "mimeType": "application/json",
                                                "buffer": json.dumps(request).encode()})
            page.fill("#time-limit", SOLVE_S)
            page.fill("#makespan-weight", "1")  # the day spread over the teams, not the fewest doing it all
            page.locator("[data-action=solve]").click()
            expect(page.get_by_test_id("summary")).to_be_visible(timeout=90_000)
            plan = server.http.get(f"/v1/plans/{server.http.get('/v1/plans').json()['data'][0]['id']}").json()
            teams = [r["vehicle_id"] for r in used(plan)]
            assert len(teams) >= 3, teams
            save(page, "day-1-planned")

            # the morning: every crew records its doors up to noon with its own key
            crews = Crews(server, plan["id"])
            for team in teams:
                crews.crew(team)
            crews.work(until_s=NOON)
            morning = server.http.get(f"/v1/plans/{plan['id']}/progress", params={"at": "12:00"}).json()
            assert morning["done"] > 10
            expect(page.locator(".stop-marker.o-done")).to_have_count(morning["done"], timeout=15_000)
            not_home = [e["step_id"] for e in server.events(plan["id"]) if e["outcome"] == "not_home"]
            assert not_home
            expect(page.locator(".stop-marker.o-not_home")).to_have_count(len(not_home))
            save(page, "day-2-morning")

            # noon: the team with the fewest doors left goes home, a van joins, not-at-home doors again
            left = {v["vehicle_id"]: v["remaining"] for v in morning["vehicles"]}
            going = min((t for t in teams if left.get(t)), key=lambda t: (left[t], t))
            replan = page.get_by_test_id("replan")
            replan.locator("input[name=now]").fill("12:00")
            replan.locator(f'input[name=dropped][value="{going}"]').check()
            replan.locator("input[name=retry]").check()
            replan.locator("input[name=new_vehicle_id]").fill("van-7")
            replan.locator("select[name=new_vehicle_profile]").select_option("drive")
            replan.locator("select[name=new_vehicle_depot]").select_option("street-office")
            replan.locator("input[name=new_vehicle_until]").fill("16:00")
            replan.locator("[data-action=replan]").click()
            diff = page.get_by_test_id("diff")
            expect(diff).to_contain_text("version 1 → 2", timeout=90_000)
            expect(diff.get_by_test_id("draft-actions")).to_contain_text("the crews still have version 1")
            versions = server.http.get(f"/v1/plans/{plan['id']}/versions").json()["data"]
            draft = versions[-1]
            assert draft["publication"] == "draft" and draft["status"] == "done"
            # the draft is the dispatcher's: the crews' day is still version 1
            assert crews.crew(teams[0]).get("/v1/crew/day").json()["version"] == 1
            compared = server.http.get(f"/v1/plans/{plan['id']}/compare/{draft['id']}").json()
            assert compared["moved"] or compared["added"]
            for moved in compared["moved"]:
                expect(diff.locator("li.moved", has_text=moved["id"])).to_contain_text(moved["to_vehicle"])
            save(page, "day-3-noon-draft")
            diff.locator("[data-action=publish]").click()
            expect(page.get_by_test_id("message")).to_contain_text("Version 2 is published")
            assert crews.crew(teams[0]).get("/v1/crew/day").json()["version"] == 2
            second = server.http.get(f"/v1/plans/{draft['id']}").json()
            assert going not in {r["vehicle_id"] for r in used(second)}
            afternoon_teams = [r["vehicle_id"] for r in used(second)]
            # the van that joined is a vehicle of the plan now: it gets a crew link and version 2
            assert crews.crew("van-7").get("/v1/crew/day").json()["version"] == 2

            # the afternoon, on the published version (the joining van with its own crew link)
            for team in afternoon_teams:
                crews.crew(team)
            crews.work(until_s=24 * 3600)
            crews.work(until_s=24 * 3600)  # retried doors whose first knock was this afternoon

            # the evening: everyone accounted for
            evening = server.http.get(f"/v1/plans/{plan['id']}/progress", params={"at": "17:00"}).json()
            assert evening["tasks"] == len(request["visits"])
            unaccounted = [x for x in evening["not_sampled"]
                           if x["last_outcome"] not in FINAL and not x["unassigned_reason"]]
            assert not unaccounted, unaccounted
            for item in evening["not_sampled"]:
                if item["last_outcome"] is None:
                    expect(page.get_by_test_id("unserved").locator(f'li[data-visit="{item["id"]}"]')).to_be_visible()
            expect(page.get_by_test_id("people")).to_have_text(
                f"People sampled: {evening['people_sampled']} of {evening['people_expected']}", timeout=15_000)
            done_now = [s for r in used(second) for s in visit_ids(r)
                        if any(e["step_id"] == s and e["outcome"] == "done" for e in server.events(plan["id"]))]
            expect(page.locator(".stop-marker.o-done")).to_have_count(len(done_now), timeout=15_000)
            why = sorted({str(x["last_outcome"] or x["unassigned_reason"]) for x in evening["not_sampled"]})
            print(f"\nscripted day: {evening['done']} of {evening['tasks']} households sampled, "
                  f"{len(evening['not_sampled'])} not ({', '.join(why)}); "
                  f"{crews.recorded} outcomes recorded by {len(crews.keys)} crews")
            save(page, "day-4-evening")
            page.locator("#lang").click()
            expect(page.get_by_test_id("replan").locator("h2")).to_have_text("重新安排今天剩余的任务")
            save(page, "day-4-evening-zh")
        finally:
            if crews is not None:
                crews.close()
            desk.close()
    assert not desk.errors, desk.errors
