"""The crew's side of a plan: crew links (a crew key for one vehicle of one plan, until the end of
the plan's day, handed over as a URL and a QR code) and the crew's day (its current route with
each step's outcome, what a re-plan changed for it, its progress).

A crew link is ``<base>/crew/#key=<crew key>``. The key travels in the URL's *fragment*, which
browsers never send to the server (so it is in no access log) nor in a ``Referer``; the page
reads it, keeps it on the phone and sends it as ``Authorization: Bearer``.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import segno

from routing.errors import ProblemError
from service.auth import KeyInfo, Keys, Principal, Role
from service.field import Chain, compare, progress
from service.ledger import Outcome
from service.schemas import PlanDocument, RouteOut, StepOut
from service.store import PlanHead, PlanRow, Store, utcnow

DAY_S = 24 * 3600
SHOWN_KINDS = ("visit", "stop", "lab", "break")
"""Steps a crew sees in its list: the doors and stops it records, and lab drops and breaks."""
RECORDED_KINDS = ("visit", "stop")


# -- crew links ---------------------------------------------------------------------------------------


def vehicle_ids(versions: Sequence[PlanRow]) -> list[str]:
    """Every vehicle any version of the plan has had, in first-seen order."""
    seen: dict[str, None] = {}
    for version in versions:
        for vehicle in (version.request or {}).get("vehicles") or []:
            seen.setdefault(str(vehicle.get("id")), None)
    return list(seen)


def latest_shift_end_s(versions: Sequence[PlanRow]) -> int:
    """The latest end of a shift in the plan (seconds from its day's midnight; past 24 h for night shifts)."""
    ends = [int(v["shift"]["end"]) for version in versions for v in (version.request or {}).get("vehicles") or []
            if isinstance((v.get("shift") or {}).get("end"), int)]
    return max(ends, default=DAY_S)


def end_of_day(day: date, versions: Sequence[PlanRow]) -> datetime:
    """When a crew link of the plan's ``day`` expires: the day's midnight (server's local time),
    or the end of its latest night shift when that is later."""
    midnight = datetime.combine(day, time(0)).astimezone()
    return midnight + timedelta(seconds=max(DAY_S, latest_shift_end_s(versions)))


def today() -> date:
    """The server's local date: a link made without a day is for today."""
    return datetime.now().astimezone().date()


def link_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/crew/#key={token}"


def qr_svg(url: str) -> str:
    """The link as a QR code, an SVG document (segno: pure Python)."""
    return str(segno.make(url, error="m").svg_inline(scale=6, border=4, title="Doorstep crew link"))


def qr_png_data_uri(url: str) -> str:
    return str(segno.make(url, error="m").png_data_uri(scale=6, border=4))


def qr_png(url: str) -> bytes:
    data_uri = qr_png_data_uri(url)
    return base64.b64decode(data_uri.split(",", 1)[1])


def create_link(
    store: Store, plan: PlanRow, versions: Sequence[PlanRow], *, vehicle_id: str, day: date | None = None,
    label: str | None = None, now: datetime | None = None,
) -> tuple[KeyInfo, str]:
    """A crew key for ``vehicle_id`` of ``plan`` (every version), expiring with ``day`` (default:
    today); :class:`ProblemError` naming the field for a vehicle the plan lacks or a day that is over."""
    vehicles = vehicle_ids(versions)
    if vehicle_id not in vehicles:
        raise ProblemError(f'plan {plan.root} has no vehicle "{vehicle_id}" (vehicles: {", ".join(vehicles)})',
                           path=("vehicle_id",))
    day = day or today()
    expires_at = end_of_day(day, versions)
    if expires_at <= (now or utcnow()):
        raise ProblemError(f"the plan's day {day.isoformat()} is over (its links expired at "
                           f"{expires_at:%Y-%m-%d %H:%M %Z}): give today's date or a later one", path=("day",))
    return Keys(store).create(role=Role.CREW, organisation=plan.organisation, vehicle_id=vehicle_id,
                              plan_id=plan.root, expires_at=expires_at, label=label)


def bind_unplanned_key(store: Store, principal: Principal, plan: PlanRow | PlanHead) -> str | None:
    """The plan a crew key belongs to, binding a key made before keys had plans to ``plan`` (the
    first it opens) until the end of today."""
    if principal.plan_id is not None or principal.key_prefix is None:
        return principal.plan_id
    versions = store.versions(plan.root)
    full = [store.get(v.id, request=True) or v for v in versions]
    return Keys(store).bind_plan(principal.key_prefix, plan.root, end_of_day(today(), full))


# -- the crew's day -----------------------------------------------------------------------------------


def _needs(step: StepOut, previous: StepOut | None) -> dict[str, int]:
    """What a step takes from the vehicle (tubes, kits...): its load minus the previous step's."""
    before = previous.load if previous is not None else {}
    return {k: v - before.get(k, 0) for k, v in step.load.items() if v - before.get(k, 0) > 0}


def _state(chain: Chain, step_id: str) -> dict[str, Any]:
    state = chain.states.get(step_id)
    if state is None:
        return {"outcome": None}
    note = next((e.payload.get("note") for e in reversed(state.history) if e.payload.get("note")), None)
    return {
        "outcome": state.outcome.value if state.outcome else None, "at_s": state.at_s,
        "arrival_recorded_s": state.arrival_s, "departure_recorded_s": state.departure_s,
        "people_sampled": state.people_sampled, "tubes_used": state.tubes_used, "note": note,
    }


_SHOWN_FIELDS = {"kind", "id", "location", "arrival_s", "arrival", "start_s", "start", "departure_s", "departure",
                 "service_s", "wait_s", "people", "priority", "address", "notes", "contact", "time_windows",
                 "dwell_s", "areas"}


def _shown_step(step: StepOut, previous: StepOut | None, chain: Chain) -> dict[str, Any]:
    out = step.model_dump(mode="json", include=_SHOWN_FIELDS)
    out["needs"] = _needs(step, previous) if step.kind in RECORDED_KINDS else {}
    if step.kind in RECORDED_KINDS:
        out.update(_state(chain, step.id))
    return out


def _route_of(document: PlanDocument | None, vehicle_id: str) -> RouteOut | None:
    return None if document is None else document.route(vehicle_id)


def _step_ids(route: RouteOut | None) -> list[str]:
    return [s.id for s in route.steps if s.kind in RECORDED_KINDS] if route is not None else []


def _recorded_elsewhere(chain: Chain, vehicle_id: str, current_ids: set[str]) -> list[dict[str, Any]]:
    """Steps this vehicle recorded that the current version no longer routes (a re-plan keeps
    what was done out of the rest of the day), as the latest version that had them planned them."""
    out = []
    for step_id, state in chain.states.items():
        if state.vehicle_id != vehicle_id or step_id in current_ids or state.outcome is None:
            continue
        for version in reversed(chain.live):
            route = _route_of(chain.document(version), vehicle_id)
            steps = route.steps if route is not None else []
            index = next((i for i, s in enumerate(steps) if s.id == step_id), None)
            if index is not None:
                out.append(_shown_step(steps[index], steps[index - 1] if index else None, chain))
                break
        else:
            item = chain.tasks().get(step_id, ("visit", {}))
            out.append({"kind": item[0], "id": step_id, "needs": {}, **{k: item[1].get(k) for k in (
                "people", "address", "notes", "contact")}, **_state(chain, step_id)})
    return sorted(out, key=lambda s: (s.get("at_s") or 0, s["id"]))


def _changes(chain: Chain, vehicle_id: str) -> dict[str, Any] | None:
    """What the newest re-plan changed for this vehicle, against the version before it."""
    with_routes = [v for v in chain.live if v.document is not None]
    if len(with_routes) < 2:
        return None
    before, after = with_routes[-2], with_routes[-1]
    diff = compare(before, after, chain.states)
    mine = _step_ids(_route_of(chain.document(after), vehicle_id))
    was = _step_ids(_route_of(chain.document(before), vehicle_id))
    kept_before = [s for s in was if s in mine]
    kept_after = [s for s in mine if s in was]
    added = [a["id"] for a in diff["added"] if a["vehicle_id"] == vehicle_id] + [
        m["id"] for m in diff["moved"] if m["to_vehicle"] == vehicle_id]
    removed = [r["id"] for r in diff["removed"] if r["vehicle_id"] == vehicle_id and r["outcome"] is None] + [
        m["id"] for m in diff["moved"] if m["from_vehicle"] == vehicle_id]
    tasks = chain.tasks()
    return {
        "from_version": before.version, "to_version": after.version,
        "added": added,
        "removed": removed,
        "order_changed": kept_before != kept_after,
        # only the doors that stay this crew's: a new one's time against another team's means nothing to it
        "eta_changes": [{"id": e["id"], "from": e["from"], "to": e["to"]} for e in diff["eta_changes"]
                        if e["vehicle_id"] == vehicle_id and e["id"] in kept_after],
        "addresses": {i: tasks[i][1].get("address") for i in [*added, *removed, *kept_after] if i in tasks},
    }


def crew_day(chain: Chain, vehicle_id: str, *, now_s: int, expires_at: datetime | None) -> dict[str, Any]:
    """Everything the crew page shows for ``vehicle_id``: the current version's route (its steps
    with their outcomes so far), steps recorded earlier, what the last re-plan changed, progress."""
    current = chain.current
    route = _route_of(chain.document(current), vehicle_id)
    steps_in = route.steps if route is not None else []
    steps = [_shown_step(s, steps_in[i - 1] if i else None, chain)
             for i, s in enumerate(steps_in) if s.kind in SHOWN_KINDS]
    vehicle: dict[str, Any] = next((v for version in reversed(chain.versions)
                                    for v in (version.request or {}).get("vehicles") or []
                                    if v.get("id") == vehicle_id), {})
    mine = next((v for v in progress(chain, now_s)["vehicles"] if v["vehicle_id"] == vehicle_id), None)
    return {
        "plan_id": chain.root.id,
        "plan_name": chain.root.name,
        "version_id": current.id if current else None,
        "version": current.version if current else None,
        "status": (chain.live or [chain.latest])[-1].status.value,
        "vehicle_id": vehicle_id,
        "vehicle_kind": (route.kind if route else None) or vehicle.get("kind") or "team",
        "start": route.start if route else None,
        "end": route.end if route else None,
        "expires_at": expires_at,
        "steps": steps,
        "recorded": _recorded_elsewhere(chain, vehicle_id, {str(s["id"]) for s in steps}),
        "changes": _changes(chain, vehicle_id),
        "progress": {k: (mine or {}).get(k, 0) for k in ("done", "remaining", "late", "behind_s",
                                                           "people_sampled", "people_expected")},
        "now_s": now_s,
        "outcomes": [o.value for o in Outcome],
    }
