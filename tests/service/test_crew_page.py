"""The crew's phone page in a real browser (Debian's Chromium, driven by Playwright) on a phone-sized
screen, against a real `doorstep serve` with the real solver: a crew opens its link, works its
day online and offline, sees a re-plan arrive; the ledger holds each record once; the key never
reaches the server's log. Screenshots of the list and the outcome dialog in both languages are
saved to ``out/crew-page/`` (``DOORSTEP_SCREENSHOTS`` to change).

Skipped without /usr/bin/chromium, except in CI (``CI=true``), where `.ci/run` installs it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.service.browser import Server, chromium, require_chromium

PHONE = {"width": 360, "height": 740}
TIMEZONE = "Asia/Shanghai"
SCREENSHOTS = Path(os.environ.get("DOORSTEP_SCREENSHOTS", Path(__file__).resolve().parents[2] / "out" / "crew-page"))

require_chromium("crew page")

from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("serve"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


class Phone:
    """A phone-sized browser context in ``locale``; every console error and page error is kept."""

    def __init__(self, browser: Browser, locale: str) -> None:
        self.context: BrowserContext = browser.new_context(
            viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale=locale,
            timezone_id=TIMEZONE, service_workers="allow")
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def close(self) -> None:
        self.context.close()


# -- the day ----------------------------------------------------------------------------------------


def street_day(now: datetime, started_min_ago: int = 5) -> dict[str, Any]:
    """A depot and 12 households along one street (100 s apart) needing 16 tubes, two teams of 10
    tubes each, shifts from ``started_min_ago`` minutes ago (5: the first door is a little late)."""
    start = max(0, now.hour * 3600 + now.minute * 60 - started_min_ago * 60)
    xs = list(range(13))
    households = [("Mannerheimintie 12 A 3", 2, "quarantine", "卧床老人，请敲门后稍等", "+358 40 123 4567"),
                  ("Kaisaniemenkatu 4 B 11", 1, "vulnerable", None, None),
                  ("Vuorikatu 8 C 21", 3, "routine", None, "+358 50 765 4321")]
    visits = []
    for i in range(1, 13):
        address, people, priority, notes, contact = households[i % 3]
        visits.append({"id": f"v{i:02d}", "location": [24.94 + 0.001 * i, 60.17], "people": people,
                       "priority": priority, "address": f"{address} ({i})", "notes": notes, "contact": contact,
                       "setup_s": 300, "per_person_s": 120})
    return {
        "name": "Kallio home visits",
        "matrices": {"drive": {"durations_s": [[abs(a - b) * 100 for b in xs] for a in xs],
                               "distances_m": [[abs(a - b) * 500 for b in xs] for a in xs]}},
        "depots": [{"id": "post", "location": [24.94, 60.17]}],
        "vehicles": [{"id": f"team-{k}", "start_depot": "post", "shift": {"start": start, "end": start + 8 * 3600},
                      "capacity": {"tubes": 10},
                      "breaks": [{"id": "lunch", "start": start + 900, "end": start + 1800, "duration_s": 1200}]}
                     for k in (1, 2)],
        "visits": visits,
        "options": {"time_limit_s": 2},
    }


def local_now() -> datetime:
    return datetime.now(ZoneInfo(TIMEZONE))


def route_ids(plan: dict[str, Any], vehicle_id: str) -> list[str]:
    routes = [r for r in plan["plan"]["routes"] if r["vehicle_id"] == vehicle_id]
    return [s["id"] for r in routes for s in r["steps"] if s["kind"] == "visit"]


def shown_ids(page: Page) -> list[str]:
    return [str(a) for a in page.locator("article[data-step]").evaluate_all("els => els.map(e => e.dataset.step)")]


def record(page: Page, outcome: str) -> str:
    """Record ``outcome`` for the next stop through its dialog; the stop's id."""
    card = page.locator("article.card.next")
    step = str(card.get_attribute("data-step"))
    card.locator("[data-action=record]").click()
    page.locator(f"dialog#outcome [data-outcome={outcome}]").click()
    expect(page.locator("article.card.next")).not_to_have_attribute("data-step", step)
    return step


def link(server: Server, plan_id: str, vehicle_id: str) -> str:
    made = server.http.post(f"/v1/plans/{plan_id}/crew-links", json={"vehicle_id": vehicle_id})
    assert made.status_code == 201, made.text
    return str(made.json()["url"])


def test_a_crew_works_its_day_online_and_offline_and_sees_a_replan(server: Server, browser: Browser) -> None:
    request = street_day(local_now(), started_min_ago=60)
    plan = server.solved(request)
    plan_id = plan["id"]
    # the crew of the team with the longer route: four records leave it doors to re-plan
    vehicle, other_vehicle = sorted(("team-1", "team-2"), key=lambda v: -len(route_ids(plan, v)))
    mine, theirs = route_ids(plan, vehicle), route_ids(plan, other_vehicle)
    now_s = local_now().hour * 3600 + local_now().minute * 60
    late = [s["id"] for r in plan["plan"]["routes"] if r["vehicle_id"] == vehicle for s in r["steps"]
            if s["kind"] == "visit" and s["start_s"] < now_s - 120]
    # 10 tubes each: both teams go out
    assert len(mine) >= 6 and theirs, (plan["plan"]["summary"], plan["plan"]["unassigned"])
    url = link(server, plan_id, vehicle)
    token = url.split("#key=")[1]
    phone = Phone(browser, "en-GB")
    page = phone.page
    try:
        page.goto(url)
        expect(page.locator("article.card.next")).to_be_visible()
        assert "#key" not in page.url  # the fragment is taken out of the address bar
        assert shown_ids(page) == mine  # its own route, in order, the next stop first
        assert late  # the shift began an hour ago: the first doors are late, and the page says so
        expect(page.get_by_test_id("progress")).to_contain_text(re.compile(r"· [1-9]\d* late"))
        expect(page.locator(f'article[data-step="{late[0]}"] .badge.late')).to_contain_text("late")
        for step in plan["plan"]["routes"]:
            if step["vehicle_id"] == other_vehicle:
                for visit in step["steps"]:
                    if visit["kind"] == "visit":
                        assert visit["address"] not in page.content()
        crew = {"Authorization": f"Bearer {token}"}
        refused = httpx.get(f"{server.url}/v1/plans/{plan_id}/routes/{other_vehicle}", headers=crew)
        assert refused.status_code == 403  # another vehicle's route: refused

        # the service worker has the page and its files; the page is under its control
        assert page.evaluate("navigator.serviceWorker.ready.then(r => r.active !== null)")
        page.reload()
        page.wait_for_function("navigator.serviceWorker.controller !== null")

        arrived = page.locator("article.card.next")
        arrived.get_by_role("button", name="Arrived").click()  # at the door: the arrival is recorded
        expect(arrived.locator(".badge.here")).to_contain_text("here since")
        first = record(page, "done")  # online
        wait_for_ledger(server, plan_id, 2)

        phone.context.set_offline(True)
        time.sleep(0.5)  # a call already on its way may still land
        log_before = server.log.read_text()
        second = record(page, "done")
        third = record(page, "not_home")
        expect(page.get_by_test_id("waiting-count")).to_have_text("2 to send")
        expect(page.get_by_test_id("outbox")).to_contain_text("waiting to send")
        # the page opens again without signal: from the service worker's cache, the route from the phone
        page.reload()
        expect(page.get_by_test_id("waiting-count")).to_have_text("2 to send")
        expect(page.locator("article.card.next")).to_be_visible()
        expect(page.get_by_test_id("signal")).to_have_text("Offline")
        assert page.evaluate("navigator.serviceWorker.controller !== null")
        assert server.log.read_text() == log_before  # nothing reached the server while offline
        recorded = server.events(plan_id)
        assert len(recorded) == 2, [(e["step_id"], e["outcome"], e["recorded_at"]) for e in recorded]

        # the first record that goes out reaches the server but its answer is lost: sent again
        lost: list[str] = []

        def lose_first_answer(route: Any) -> None:
            if not lost:
                lost.append(route.request.headers.get("idempotency-key", ""))
                route.fetch()
                route.abort("connectionreset")
            else:
                route.continue_()

        page.route("**/v1/plans/*/events", lose_first_answer)
        phone.context.set_offline(False)
        expect(page.get_by_test_id("waiting-count")).to_have_count(0, timeout=30_000)
        page.unroute("**/v1/plans/*/events")
        fourth = record(page, "done")  # online again
        events = wait_for_ledger(server, plan_id, 5)
        assert [(e["step_id"], e["outcome"]) for e in events] == [
            (first, "arrived"), (first, "done"), (second, "done"), (third, "not_home"), (fourth, "done")]  # once each
        assert lost and lost[0] == events[2]["idempotency_key"]
        assert len({e["idempotency_key"] for e in events}) == 5
        assert events[1]["payload"]["arrival_s"] == events[0]["payload"]["at_s"]  # the door's arrival and departure
        assert events[1]["payload"]["departure_s"] == events[1]["payload"]["at_s"]
        progress = server.http.get(f"/v1/plans/{plan_id}/progress").json()
        team = next(v for v in progress["vehicles"] if v["vehicle_id"] == vehicle)
        assert team["done"] == 3 and team["outcomes"]["not_home"] == 1 and team["people_sampled"] > 0
        expect(page.get_by_test_id("progress")).to_contain_text("3 done")

        # a re-plan while the page is open: an urgent household on the way to the next door
        now_s = local_now().hour * 3600 + local_now().minute * 60
        current = route_ids(plan, vehicle)
        rest = [s for s in current if s not in (first, second, third, fourth)]
        assert rest, current
        replan = replan_with_urgent_visit(server, plan_id, request, now_s, before=rest[0], dropped=other_vehicle)
        version = server.wait_done(replan["id"])
        new_order = route_ids(version, vehicle)
        notice = page.get_by_test_id("replan-notice")
        expect(notice).to_be_visible(timeout=30_000)  # the page reads the route every 10 s
        expect(notice).to_contain_text("re-planned (version 2)")
        assert "urgent" in new_order, version["plan"]["unassigned"]
        assert shown_ids(page) == new_order
        expect(notice).to_contain_text("New for you: Hämeentie 1")
        save(page, "crew-en-replanned")
        notice.get_by_role("button").click()
        expect(notice).to_have_count(0)
    finally:
        phone.close()

    assert_only_offline_errors(phone.errors)
    log = server.log.read_text()
    assert "GET /v1/crew/day" in log and "GET /crew/" in log  # the access log is on
    assert token not in log and token.split("_")[2] not in log  # the key never reached the server's log


def test_the_list_and_the_outcome_dialog_in_both_languages(server: Server, browser: Browser) -> None:
    plan = server.solved(street_day(local_now()))
    url = link(server, plan["id"], "team-2")
    for locale, first, other in (("zh-CN", "zh", "en"), ("en-US", "en", "zh")):
        phone = Phone(browser, locale)
        page = phone.page
        try:
            page.goto(url)
            expect(page.locator("article.card.next")).to_be_visible()
            expected = {"zh": "下一站", "en": "Next"}
            expect(page.locator("h2.section").first).to_have_text(expected[first])
            expect(page.locator("article.card.quiet").first).to_contain_text({"zh": "休息", "en": "Break"}[first])
            shoot(page, first)
            page.locator("header button.lang").click()  # the other language, kept on the phone
            expect(page.locator("h2.section").first).to_have_text(expected[other])
            shoot(page, other)
            page.reload()
            expect(page.locator("h2.section").first).to_have_text(expected[other])
        finally:
            phone.close()
        assert_only_offline_errors(phone.errors)
    # a revoked link: the page says so (and keeps what it has not sent)
    prefix = url.split("#key=dsk_")[1].split("_")[0]
    assert server.http.delete(f"/v1/plans/{plan['id']}/crew-links/{prefix}").status_code == 200
    phone = Phone(browser, "en-US")
    try:
        phone.page.goto(url)
        expect(phone.page.get_by_role("alert")).to_contain_text("This link no longer works")
    finally:
        phone.close()
    assert phone.errors and all("401" in e for e in phone.errors), phone.errors
    for name in ("crew-zh-list", "crew-zh-dialog", "crew-en-list", "crew-en-dialog"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000


# -- helpers ----------------------------------------------------------------------------------------


def wait_for_ledger(server: Server, plan_id: str, count: int, timeout_s: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        events = [e for e in server.events(plan_id) if e["step_id"]]
        if len(events) >= count or time.monotonic() > deadline:
            assert len(events) == count, events
            return events
        time.sleep(0.2)


def replan_with_urgent_visit(server: Server, plan_id: str, request: dict[str, Any], now_s: int, *,
                             before: str, dropped: str) -> dict[str, Any]:
    """Re-plan at ``now_s`` with an urgent household half-way to the door ``before``, the team
    ``dropped`` gone home (so the household is the other's); its travel times are given over the
    plan's sites (the depot, then the visits), then the new visit."""
    sites = [request["depots"][0], *request["visits"]]
    x = {s["id"]: i for i, s in enumerate(sites)}
    xs = [*range(len(sites)), x[before] - 0.5]
    body = {
        "now": now_s,
        "dropped_vehicles": [dropped],
        "new_visits": [{"id": "urgent", "location": [24.9405, 60.171], "people": 1, "priority": "urgent",
                        "address": "Hämeentie 1", "setup_s": 300}],
        "matrices": {"drive": {"durations_s": [[abs(a - b) * 100 for b in xs] for a in xs],
                               "distances_m": [[abs(a - b) * 500 for b in xs] for a in xs]}},
        "options": {"time_limit_s": 1},
    }
    response = server.http.post(f"/v1/plans/{plan_id}/replan", json=body)
    assert response.status_code == 202, response.text
    created: dict[str, Any] = response.json()
    return created


def shoot(page: Page, lang: str) -> None:
    save(page, f"crew-{lang}-list", full_page=True)
    page.locator("article.card.next [data-action=record]").click()
    expect(page.locator("dialog#outcome [data-outcome=done]")).to_be_visible()
    save(page, f"crew-{lang}-dialog")
    page.locator("dialog#outcome button.cancel").click()
    expect(page.locator("dialog#outcome")).not_to_be_visible()


def save(page: Page, name: str, *, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


OFFLINE_ERRORS = re.compile(r"^Failed to load resource: net::ERR_(INTERNET_DISCONNECTED|CONNECTION_RESET|FAILED)$")


def assert_only_offline_errors(errors: list[str]) -> None:
    """No JavaScript error; the only console errors are the browser's own for calls made without signal."""
    unexpected = [e for e in errors if not OFFLINE_ERRORS.match(e)]
    assert not unexpected, unexpected
