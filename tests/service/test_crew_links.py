"""Crew links through the real app: a link reaches one vehicle of one plan (every version of it)
until the end of its day, is revocable, and hands the crew page its day; the `doorstep crew-links`
CLI; the pages and static files the crew page is served from."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.api.pages import STATIC
from service.auth import Keys, Role
from service.cli import app as cli
from service.config import Settings, get_settings
from service.main import create_app
from service.store import ApiKeyRecord, Store, utcnow
from tests.service.conftest import wait_for
from tests.service.test_field import CONTACT, NOTE, line_request

MakeSettings = Callable[..., Settings]


KEY_CACHE_S = 0.3


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def key_of(url: str) -> str:
    """The crew key in a link's fragment."""
    base, _, fragment = url.partition("#")
    assert base.endswith("/crew/") and fragment.startswith("key=dsk_"), url
    return fragment.removeprefix("key=")


class Post:
    """A running app in ``required`` mode: a dispatcher, and two days' plans with the same vehicles."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.store: Store = client.app.state.store  # type: ignore[attr-defined]
        self.dispatcher = bearer(Keys(self.store).create(role=Role.DISPATCHER, organisation="north")[1])
        self.today = self.plan(line_request(visits=3))
        self.yesterday = self.plan(line_request(visits=3))

    def plan(self, request: dict[str, Any]) -> str:
        response = self.client.post("/v1/plans?wait=true", json=request, headers=self.dispatcher)
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    def link(self, plan_id: str, vehicle_id: str = "t1", **fields: Any) -> Any:
        return self.client.post(f"/v1/plans/{plan_id}/crew-links", json={"vehicle_id": vehicle_id, **fields},
                                headers=self.dispatcher)


@pytest.fixture
def post(sqlite_url: str, make_settings: MakeSettings) -> Iterator[Post]:
    # A short key cache: the CLI revokes from outside the API's process (known within key_cache_s).
    with TestClient(create_app(make_settings(sqlite_url, auth="required", key_cache_s=KEY_CACHE_S))) as client:
        yield Post(client)


def test_a_crew_link_reaches_its_vehicle_of_its_plan_only(post: Post) -> None:
    client = post.client
    made = post.link(post.today, label="team 1's phone")
    assert made.status_code == 201, made.text
    link = made.json()
    assert link["qr_svg"].startswith("<svg") and link["qr_png"].startswith("data:image/png;base64,")
    assert link["vehicle_id"] == "t1" and link["plan_id"] == post.today and link["expires_at"]
    crew = bearer(key_of(link["url"]))
    day = client.get("/v1/crew/day", headers=crew)
    assert day.status_code == 200, day.text
    body = day.json()
    assert body["vehicle_id"] == "t1" and body["version"] == 1
    visits = [s for s in body["steps"] if s["kind"] == "visit"]
    assert [s["id"] for s in visits] == ["v1", "v2", "v3"]  # quick_solve: every visit on t1, in order
    assert visits[0]["notes"] == NOTE and visits[0]["contact"] == CONTACT  # its own residents' data
    assert visits[0]["needs"] == {"tubes": 2} and visits[1]["needs"] == {"tubes": 1}  # quarantine: a tube each
    assert client.get(f"/v1/plans/{post.today}/routes/t1", headers=crew).status_code == 200
    other_vehicle = client.get(f"/v1/plans/{post.today}/routes/t2", headers=crew)
    assert other_vehicle.status_code == 403 and "t1" in other_vehicle.json()["detail"]
    other_day = client.get(f"/v1/plans/{post.yesterday}/routes/t1", headers=crew)  # the same vehicle id
    assert other_day.status_code == 403 and "belongs to plan" in other_day.json()["detail"]
    outcome = {"vehicle_id": "t1", "step_id": "v1", "outcome": "refused", "at": "09:00"}
    assert client.post(f"/v1/plans/{post.yesterday}/events", json=outcome, headers=crew).status_code == 403
    assert client.post(f"/v1/plans/{post.today}/events", json=outcome, headers=crew).status_code == 201
    for path in ("/v1/plans", f"/v1/plans/{post.today}/progress", f"/v1/plans/{post.today}/crew-links"):
        assert client.get(path, headers=crew).status_code == 403, path
    assert client.get("/v1/crew/day", headers=post.dispatcher).status_code == 403  # crews only


def test_the_crew_day_follows_the_replanned_versions(post: Post) -> None:
    client = post.client
    crew = bearer(key_of(post.link(post.today).json()["url"]))
    done = {"vehicle_id": "t1", "step_id": "v1", "outcome": "done", "at": "08:10", "people_sampled": 2,
            "tubes_used": 2, "arrival": "08:01", "departure": "08:10"}
    assert client.post(f"/v1/plans/{post.today}/events", json=done, headers=crew).status_code == 201
    replanned = client.post(f"/v1/plans/{post.today}/replan", json={"now": "08:15", "cancelled": ["v3"]},
                            headers=post.dispatcher)
    assert replanned.status_code == 202, replanned.text
    second = replanned.json()["id"]
    wait_for(client, second, {"done", "failed"}, headers=post.dispatcher)
    assert client.get(f"/v1/plans/{second}/routes/t1", headers=crew).status_code == 200  # every version
    body = client.get("/v1/crew/day", headers=crew).json()
    assert body["version"] == 2 and body["version_id"] == second and body["plan_id"] == post.today
    assert [s["id"] for s in body["steps"] if s["kind"] == "visit"] == ["v2"]
    (recorded,) = body["recorded"]  # done before the re-plan, so not in version 2's route
    assert recorded["id"] == "v1" and recorded["outcome"] == "done" and recorded["people_sampled"] == 2
    assert recorded["arrival_recorded_s"] == 8 * 3600 + 60
    assert body["changes"]["removed"] == ["v3"] and body["changes"]["to_version"] == 2
    assert body["progress"]["done"] == 1 and body["progress"]["remaining"] == 1


def test_links_are_listed_without_secrets_revoked_and_expire(post: Post) -> None:
    client = post.client
    link = post.link(post.today).json()
    token = key_of(link["url"])
    listed = client.get(f"/v1/plans/{post.today}/crew-links", headers=post.dispatcher)
    assert listed.status_code == 200 and listed.json()["count"] == 1
    assert listed.json()["data"][0]["prefix"] == link["prefix"] and token.split("_")[2] not in listed.text
    assert client.delete(f"/v1/plans/{post.yesterday}/crew-links/{link['prefix']}",
                         headers=post.dispatcher).status_code == 404  # not a link of that plan
    revoked = client.delete(f"/v1/plans/{post.today}/crew-links/{link['prefix']}", headers=post.dispatcher)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    answer = client.get("/v1/crew/day", headers=bearer(token))
    assert answer.status_code == 401 and "revoked" in answer.json()["detail"]
    _, stale = Keys(post.store).create(role=Role.CREW, organisation="north", vehicle_id="t1", plan_id=post.today,
                                       expires_at=utcnow() - timedelta(minutes=1))
    answer = client.get("/v1/crew/day", headers=bearer(stale))
    assert answer.status_code == 401 and "expired" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"vehicle_id": "t9"}, ["body", "vehicle_id"]),  # not a vehicle of the plan
        ({}, ["body", "vehicle_id"]),  # no vehicle
        ({"vehicle_id": "t1", "day": "2020-01-01"}, ["body", "day"]),  # a day that is over
        ({"vehicle_id": "t1", "day": "tomorrow"}, ["body", "day"]),  # not a date
        ({"vehicle_id": "t1", "secret": "x"}, ["body", "secret"]),  # no such field
    ],
)
def test_bad_link_requests_are_422_naming_the_field(post: Post, body: dict[str, Any], loc: list[str]) -> None:
    response = post.client.post(f"/v1/plans/{post.today}/crew-links", json=body, headers=post.dispatcher)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == loc


def test_only_dispatchers_make_links(post: Post) -> None:
    integrator = bearer(Keys(post.store).create(role=Role.INTEGRATOR, organisation="north")[1])
    crew = bearer(key_of(post.link(post.today).json()["url"]))
    for headers in (integrator, crew):
        response = post.client.post(f"/v1/plans/{post.today}/crew-links", json={"vehicle_id": "t1"}, headers=headers)
        assert response.status_code == 403
    south = bearer(Keys(post.store).create(role=Role.DISPATCHER, organisation="south")[1])
    assert post.client.post(f"/v1/plans/{post.today}/crew-links", json={"vehicle_id": "t1"},
                            headers=south).status_code == 404


def test_a_crew_key_made_before_links_is_bound_to_the_first_plan_it_opens(post: Post) -> None:
    token = f"dsk_0123abcd_{uuid.uuid4().hex}"  # as `keys create --role crew` made them before plans
    from service.auth import sha256_hex

    with post.store.transaction() as session:
        session.add(ApiKeyRecord(id=uuid.uuid4().hex, prefix="0123abcd", secret_sha256=sha256_hex(token),
                                 role="crew", organisation="north", vehicle_id="t1", can_read_personal=False,
                                 created_at=utcnow()))
    client = post.client
    assert client.get(f"/v1/plans/{post.today}/routes/t1", headers=bearer(token)).status_code == 200
    assert client.get(f"/v1/plans/{post.yesterday}/routes/t1", headers=bearer(token)).status_code == 403
    assert client.get("/v1/crew/day", headers=bearer(token)).json()["plan_id"] == post.today
    info = Keys(post.store).get("0123abcd")
    assert info is not None and info.plan_id == post.today and info.expires_at is not None


def test_crew_links_with_the_cli(post: Post, sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
                                 tmp_path: Path) -> None:
    monkeypatch.setenv("DOORSTEP_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("DOORSTEP_PUBLIC_URL", "http://192.0.2.10:8000")
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        made = runner.invoke(cli, ["crew-links", "create", "--plan", post.today, "--vehicle", "t2",
                                   "--qr", str(tmp_path / "t2.svg")])
        assert made.exit_code == 0, made.output
        url = made.stdout.strip().splitlines()[-1]
        assert url.startswith("http://192.0.2.10:8000/crew/#key=dsk_")
        assert (tmp_path / "t2.svg").read_text().startswith("<svg")
        png = runner.invoke(cli, ["crew-links", "create", "--plan", post.today, "--vehicle", "t1",
                                  "--base-url", "http://10.0.0.5:8000", "--qr", str(tmp_path / "t1.png")])
        assert png.exit_code == 0 and (tmp_path / "t1.png").read_bytes().startswith(b"\x89PNG")
        crew = bearer(key_of(url))
        assert post.client.get("/v1/crew/day", headers=crew).json()["vehicle_id"] == "t2"
        prefix = url.split("_")[1]
        listed = runner.invoke(cli, ["crew-links", "list", "--plan", post.today])
        assert listed.exit_code == 0 and prefix in listed.output and key_of(url) not in listed.output
        assert runner.invoke(cli, ["crew-links", "revoke", prefix]).exit_code == 0
        time.sleep(KEY_CACHE_S)
        assert post.client.get("/v1/crew/day", headers=crew).status_code == 401
        for args, message in [
            (["--plan", post.today, "--vehicle", "t9"], 'no vehicle "t9"'),
            (["--plan", "nope", "--vehicle", "t1"], 'no plan "nope"'),
            (["--plan", post.today, "--vehicle", "t1", "--day", "2020-01-01"], "is over"),
            (["--plan", post.today, "--vehicle", "t1", "--qr", "code.gif"], ".svg or a .png"),
        ]:
            bad = runner.invoke(cli, ["crew-links", "create", *args])
            assert bad.exit_code == 2 and message in bad.output, (args, bad.output)
    finally:
        get_settings.cache_clear()


# -- the pages ---------------------------------------------------------------------------------------


def test_the_crew_page_and_its_files_are_served_with_no_referrer(post: Post) -> None:
    client = post.client
    moved = client.get("/crew", follow_redirects=False)
    assert moved.status_code == 308 and moved.headers["location"] == "/crew/"
    page = client.get("/crew/")
    assert page.status_code == 200 and '<main id="app">' in page.text
    assert page.headers["referrer-policy"] == "no-referrer" and "script-src 'self'" in page.headers[
        "content-security-policy"]
    worker = client.get("/crew/sw.js")
    assert worker.status_code == 200 and worker.headers["content-type"].startswith("text/javascript")
    assert "__" not in re.sub(r"doorstep-\w+-", "", worker.text.split("const SHELL")[0])
    shell = json.loads(re.search(r"const SHELL = (\[.*?\]);", worker.text).group(1))  # type: ignore[union-attr]
    assert "/crew/" in shell and "/static/shared/api.js" in shell and "/static/crew/crew.js" in shell
    for url in shell:  # the worker's install fetches every one of them: none may be missing
        assert client.get(url).status_code == 200, url
    assert "text/javascript" in client.get("/static/crew/crew.js").headers["content-type"]


def test_every_string_the_crew_page_uses_is_in_both_languages() -> None:
    strings = {lang: json.loads((STATIC / "shared" / "strings" / f"{lang}.json").read_text("utf-8"))
               for lang in ("en", "zh-CN")}
    assert strings["en"].keys() == strings["zh-CN"].keys()
    source = (STATIC / "crew" / "crew.js").read_text("utf-8")
    used = set(re.findall(r"""\bt\("([\w.]+)\"""", source))
    assert used and used <= strings["en"].keys(), used - strings["en"].keys()
    built = set(re.findall(r"t\(`(\w+)\.\$\{", source))  # outcome.${...}, priority.${...}, crew.need_${...}
    for prefix in ("outcome", "priority"):
        assert prefix in built or f"{prefix}." in source
    for outcome in ("arrived", "done", "not_home", "refused", "unreachable", "skipped"):
        assert f"outcome.{outcome}" in strings["en"]


def test_a_bus_crew_sees_each_stop_with_its_people_and_dwell(sqlite_url: str, make_settings: MakeSettings) -> None:
    from tests.service.test_api_buses import bus_request

    settings = make_settings(sqlite_url, auth="required", solve_function="routing.solver:solve")
    with TestClient(create_app(settings)) as client:
        store: Store = client.app.state.store  # type: ignore[attr-defined]
        dispatcher = bearer(Keys(store).create(role=Role.DISPATCHER, organisation="north")[1])
        plan = client.post("/v1/plans?wait=true", json=bus_request(), headers=dispatcher)
        assert plan.status_code == 200, plan.text
        made = client.post(f"/v1/plans/{plan.json()['id']}/crew-links", json={"vehicle_id": "bus-1"},
                           headers=dispatcher)
        day = client.get("/v1/crew/day", headers=bearer(key_of(made.json()["url"]))).json()
    assert day["vehicle_kind"] == "bus"
    stops = [s for s in day["steps"] if s["kind"] == "stop"]
    assert stops and all(s["people"] and s["dwell_s"] and s["needs"].get("tubes") for s in stops)
    plaza = next(s for s in stops if s["id"] == "plaza")
    assert plaza["address"] == "Plaza gate" and plaza["notes"] == "park by the fountain"
    assert [s["kind"] for s in day["steps"]][-1] == "lab"  # the last drop on the way home


def test_a_crew_key_made_with_keys_create_names_its_plan(post: Post, sqlite_url: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOORSTEP_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    try:
        made = CliRunner().invoke(cli, ["keys", "create", "--role", "crew", "--org", "north", "--vehicle", "t2",
                                        "--plan", post.today])
        assert made.exit_code == 0, made.output
        elsewhere = CliRunner().invoke(cli, ["keys", "create", "--role", "crew", "--org", "south", "--vehicle", "t2",
                                             "--plan", post.today])
        assert elsewhere.exit_code == 2 and "belongs to north" in elsewhere.output
    finally:
        get_settings.cache_clear()
    token = made.stdout.strip().splitlines()[-1]
    day = post.client.get("/v1/crew/day", headers=bearer(token)).json()
    assert day["plan_id"] == post.today and day["vehicle_id"] == "t2" and day["expires_at"]
