"""A city round: one request of many districts, solved district by district in parallel, joined.

A round's request is a plan request whose depots, vehicles, visits, stops, areas and labs may
carry a ``district``. :func:`split_round` cuts it into one plan request per district: a vehicle
goes with its start depot's district when it names none, a visit, stop or area with its nearest
depot's, and a lab without a district serves every district. Each district is then an ordinary
plan (a row of ``plans``, solved by whatever :class:`~service.jobs.JobRunner` runs: local
processes or a Celery pool on many machines), so its progress, cancel and recovery are those of
any plan.

When every district is final, the visits a district could not serve are *offered* to its
nearest neighbour district (by the distance between their depots): the neighbour's request with
the offered visits added is solved again, warm-started from its first plan, for a quarter of the
time limit (at least ``MIN_OFFER_S``). The neighbour's second plan replaces its first when it
serves more visits. :func:`join` then makes one document: a route list per district, every visit
either in a route or unassigned with its reason (and the district it was offered to).

The round's state is a row of ``rounds``; :class:`RoundKeeper` (a thread of the API process)
advances every unfinished round once a second from what the database says, so an API restarted
in the middle of a round picks it up where it was.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from routing.errors import UnknownReferenceError
from service.jobs import JobRunner
from service.schemas import PlanRequest, Status
from service.store import Base, JSONType, PlanRow, Store, UTCDateTime, utcnow

log = logging.getLogger(__name__)

OFFER_SHARE = 0.25
"""The second pass of a district gets this share of the round's time limit (at least MIN_OFFER_S)."""
MIN_OFFER_S = 5.0


class RoundRecord(Base):
    __tablename__ = "rounds"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    organisation: Mapped[str] = mapped_column(String(100))
    stage: Mapped[str] = mapped_column(String(16))
    """districts (first pass solving), offers (second pass solving), done."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    request: Mapped[dict[str, Any]] = mapped_column(JSONType)
    districts: Mapped[dict[str, Any]] = mapped_column(JSONType)
    """District -> {"plan_id", "offer_plan_id", "offered": {visit id: home district}, "unplanned": [...]}."""
    document: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


# -- splitting ---------------------------------------------------------------------------------------


def _metres(a: Sequence[float], b: Sequence[float]) -> float:
    """Straight-line metres between two [lon, lat] points (equirectangular: districts are km apart)."""
    lat = math.radians((a[1] + b[1]) / 2)
    dx = math.radians(b[0] - a[0]) * math.cos(lat)
    dy = math.radians(b[1] - a[1])
    return 6_371_000 * math.hypot(dx, dy)


def depot_districts(request: PlanRequest) -> dict[str, str]:
    """Depot id -> its district (a depot without one is a district of its own, named by its id)."""
    return {d.id: d.district or d.id for d in request.depots}


def _nearest_district(location: Sequence[float], request: PlanRequest, districts: Mapping[str, str]) -> str:
    depot = min(request.depots, key=lambda d: _metres(location, d.location))
    return districts[depot.id]


def assign_districts(request: PlanRequest) -> dict[str, dict[str, str]]:
    """Kind ("vehicles", "visits", "stops", "areas", "labs") -> item id -> district.

    Labs without a district are left out: they serve every district.
    """
    depots = depot_districts(request)
    out: dict[str, dict[str, str]] = {"vehicles": {}, "visits": {}, "stops": {}, "areas": {}, "labs": {}}
    for i, vehicle in enumerate(request.vehicles):
        if vehicle.district is None and vehicle.start_depot not in depots:
            raise UnknownReferenceError(
                f'Vehicle "{vehicle.id}": start_depot "{vehicle.start_depot}" is not a depot of this round',
                path=("vehicles", i, "start_depot"),
            )
        out["vehicles"][vehicle.id] = vehicle.district or depots[vehicle.start_depot]
    for kind in ("visits", "stops"):
        for item in getattr(request, kind):
            out[kind][item.id] = item.district or _nearest_district(item.location, request, depots)
    for area in request.areas:
        out["areas"][area.id] = area.district or _nearest_district(area.resolved_location, request, depots)
    for lab in request.labs:
        if lab.district:
            out["labs"][lab.id] = lab.district
    return out


def sub_request(
    request: PlanRequest,
    keep: Mapping[str, set[str]],
    *,
    name: str,
    time_limit_s: float | None = None,
    initial_routes: Mapping[str, list[str]] | None = None,
) -> PlanRequest:
    """The request cut down to the ids in ``keep`` (per kind; every depot stays), its matrices
    to the kept sites."""
    # exclude_unset, as the API stores requests: "end_depot omitted" is not "end_depot: null".
    data = request.model_dump(mode="json", exclude={"matrices"}, exclude_unset=True)
    for kind in ("vehicles", "visits", "stops", "areas", "labs"):
        data[kind] = [item for item in data.get(kind, []) if item["id"] in keep.get(kind, set())]
    data["name"] = name
    options = dict(data.get("options") or {})
    if time_limit_s is not None:
        options["time_limit_s"] = time_limit_s
    options["initial_routes"] = dict(initial_routes) if initial_routes else None
    data["options"] = options
    if request.matrices is not None:
        kept = {d["id"] for d in data["depots"]} | {i["id"] for k in ("visits", "stops", "labs") for i in data[k]}
        index = [i for i, site in enumerate(request.sites) if site.id in kept]
        data["matrices"] = {
            profile: {
                "durations_s": [[matrix.durations_s[i][j] for j in index] for i in index],
                "distances_m": [[matrix.distances_m[i][j] for j in index] for i in index],
            }
            for profile, matrix in request.matrices.items()
        }
    return PlanRequest.model_validate(data)


def split_round(request: PlanRequest) -> dict[str, PlanRequest | None]:
    """District -> its plan request (None: a district with tasks and no vehicle, or nothing at all)."""
    owner = assign_districts(request)
    names = sorted({d for ids in owner.values() for d in ids.values()})
    out: dict[str, PlanRequest | None] = {}
    for district in names:
        keep = {kind: {i for i, d in ids.items() if d == district} for kind, ids in owner.items()}
        keep["labs"] |= {lab.id for lab in request.labs if not lab.district}
        has_tasks = keep["visits"] or keep["stops"]
        out[district] = (
            sub_request(request, keep, name=f"{request.name or 'round'} / {district}")
            if keep["vehicles"] and has_tasks else None
        )
    return out


def neighbours(request: PlanRequest) -> dict[str, list[str]]:
    """District -> the other districts with vehicles, nearest first (by their depots' distance)."""
    owner = assign_districts(request)
    depots = {d.id: d for d in request.depots}
    points: dict[str, list[Sequence[float]]] = {}
    for vehicle in request.vehicles:
        points.setdefault(owner["vehicles"][vehicle.id], []).append(depots[vehicle.start_depot].location)
    centres = {d: (sum(p[0] for p in ps) / len(ps), sum(p[1] for p in ps) / len(ps)) for d, ps in points.items()}
    everyone = sorted({*owner["visits"].values(), *owner["stops"].values(), *centres})
    out: dict[str, list[str]] = {}
    for district in everyone:
        here = centres.get(district) or _centre_of_tasks(request, owner, district)
        out[district] = sorted((d for d in centres if d != district), key=lambda d: _metres(here, centres[d]))
    return out


def _centre_of_tasks(
    request: PlanRequest, owner: Mapping[str, Mapping[str, str]], district: str
) -> tuple[float, float]:
    points = [v.location for v in request.visits if owner["visits"][v.id] == district]
    points += [s.location for s in request.stops if owner["stops"][s.id] == district]
    return sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)


# -- joining ---------------------------------------------------------------------------------------


def _served(document: Mapping[str, Any] | None) -> set[str]:
    if not document:
        return set()
    return {s["id"] for r in document["routes"] for s in r["steps"] if s["kind"] in ("visit", "stop")}


def _orders(document: Mapping[str, Any]) -> dict[str, list[str]]:
    return {
        r["vehicle_id"]: [s["id"] for s in r["steps"] if s["kind"] in ("visit", "stop", "break")]
        for r in document["routes"]
    }


def offers(request: PlanRequest, plans: Mapping[str, PlanRow | None]) -> dict[str, dict[str, str]]:
    """Receiving district -> {visit id: its home district}: each visit a district left out (or
    that has no vehicle) goes to its nearest neighbour that has vehicles and a plan."""
    owner = assign_districts(request)
    near = neighbours(request)
    out: dict[str, dict[str, str]] = {}
    for visit in request.visits:
        home = owner["visits"][visit.id]
        row = plans.get(home)
        if row is not None and row.status is Status.DONE and visit.id in _served(row.document):
            continue
        if row is not None and row.status is not Status.DONE:
            continue  # failed or cancelled: its visits stay with it, reported as such
        takers = [d for d in near.get(home, []) if (r := plans.get(d)) is not None and r.status is Status.DONE]
        if takers:
            out.setdefault(takers[0], {})[visit.id] = home
    return out


def join(request: PlanRequest, state: Mapping[str, Any], rows: Mapping[str, PlanRow]) -> dict[str, Any]:
    """One document for the round: a route list per district, each visit served or explained."""
    owner = assign_districts(request)
    districts: list[dict[str, Any]] = []
    served_by: dict[str, str] = {}
    reasons: dict[str, dict[str, Any]] = {}
    totals = {"vehicles_used": 0, "visits_assigned": 0, "stops_served": 0, "people_covered": 0, "people_total": 0,
              "travel_s": 0.0, "distance_m": 0.0, "lab_drops": 0}
    feasible = True
    for district, entry in sorted(state.items()):
        first = rows.get(entry.get("plan_id") or "")
        second = rows.get(entry.get("offer_plan_id") or "")
        chosen = first
        if (second is not None and second.status is Status.DONE and second.document is not None
                and first is not None and first.document is not None
                and len(_served(second.document)) > len(_served(first.document))):
            chosen = second
        document = chosen.document if chosen is not None else None
        for step_id in _served(document):
            served_by[step_id] = district
        for u in (document or {}).get("unassigned", []):
            reasons.setdefault(u["visit_id"], u)
        summary = (document or {}).get("summary") or {}
        for key in totals:
            totals[key] += summary.get(key) or 0
        feasible = feasible and bool(summary.get("feasible", chosen is None))
        districts.append({
            "district": district,
            "plan_id": chosen.id if chosen else None,
            "first_plan_id": entry.get("plan_id"),
            "status": chosen.status.value if chosen else "no vehicles",
            "summary": summary or None,
            "routes": (document or {}).get("routes", []),
            "violations": (document or {}).get("violations", []),
            "took_offers": sorted(v for v in entry.get("offered", {}) if served_by.get(v) == district),
        })
    offered_to = {v: d for d, entry in state.items() for v in entry.get("offered", {})}
    unassigned = []
    for kind in ("visits", "stops"):
        for item in getattr(request, kind):
            if item.id in served_by:
                continue
            home = owner[kind][item.id]
            reason = reasons.get(item.id) or _no_plan_reason(home, state, rows)
            unassigned.append({**reason, "visit_id": item.id, "kind": kind[:-1], "district": home,
                               "offered_to": offered_to.get(item.id), "location": list(item.location)})
    totals["visits_unassigned"] = sum(1 for u in unassigned if u["kind"] == "visit")
    totals["districts"] = len(state)
    totals["feasible"] = feasible
    totals["served_by_neighbours"] = sum(1 for v, d in served_by.items() if owner["visits"].get(v, d) != d)
    return {"summary": totals, "districts": districts, "unassigned": unassigned}


def _no_plan_reason(home: str, state: Mapping[str, Any], rows: Mapping[str, PlanRow]) -> dict[str, Any]:
    row = rows.get(state.get(home, {}).get("plan_id") or "")
    if row is None:
        return {"reason": "no_vehicle", "detail": f"district {home} has no vehicle, and no neighbour could take it"}
    return {"reason": f"district_{row.status.value}",
            "detail": f"district {home}'s plan {row.id} is {row.status.value}"}


# -- the rounds in the database, and the keeper that advances them ---------------------------------


class Rounds:
    """Creates rounds, reads them with their districts' plans, and advances them."""

    def __init__(self, store: Store, runner: JobRunner) -> None:
        self.store = store
        self.runner = runner

    def create(self, request: PlanRequest, *, organisation: str, time_limit_s: float) -> str:
        parts = split_round(request)
        round_id = uuid.uuid4().hex
        state: dict[str, Any] = {}
        created: list[str] = []
        for district, part in parts.items():
            plan_id = self._queue(part, organisation, time_limit_s) if part is not None else None
            if plan_id:
                created.append(plan_id)
            state[district] = {"plan_id": plan_id, "offer_plan_id": None, "offered": {}}
        now = utcnow()
        with self.store.transaction() as session:
            session.add(RoundRecord(
                id=round_id, name=request.name, organisation=organisation, stage="districts", created_at=now,
                updated_at=now, finished_at=None, request=request.model_dump(mode="json", exclude_unset=True),
                districts=state,
                document=None,
            ))
        for plan_id in created:
            self.runner.submit(plan_id)
        return round_id

    def _queue(self, part: PlanRequest, organisation: str, time_limit_s: float) -> str:
        row = self.store.create(
            part.model_dump(mode="json", exclude_unset=True), name=part.name, time_limit_s=time_limit_s,
            visits=len(part.visits) + len(part.stops), vehicles=len(part.vehicles), organisation=organisation,
        )
        return row.id

    def get(self, round_id: str) -> RoundRecord | None:
        with self.store.transaction() as session:
            record = session.get(RoundRecord, round_id)
            if record is not None:
                session.expunge(record)
            return record

    def plan_rows(self, record: RoundRecord, *, documents: bool) -> dict[str, PlanRow]:
        ids = [i for e in record.districts.values() for i in (e.get("plan_id"), e.get("offer_plan_id")) if i]
        rows = {}
        for plan_id in ids:
            row = self.store.get(plan_id, document=documents)
            if row is not None:
                rows[plan_id] = row
        return rows

    def unfinished(self) -> list[str]:
        with self.store.transaction() as session:
            return list(session.execute(select(RoundRecord.id).where(RoundRecord.stage != "done")).scalars())

    def advance(self, round_id: str) -> str | None:
        """One step of a round, when its plans allow it; the stage it is at after."""
        record = self.get(round_id)
        if record is None or record.stage == "done":
            return None if record is None else record.stage
        rows = self.plan_rows(record, documents=False)
        stage_key = "plan_id" if record.stage == "districts" else "offer_plan_id"
        pending = [e[stage_key] for e in record.districts.values() if e.get(stage_key)]
        if any(plan_id not in rows or not rows[plan_id].status.is_final for plan_id in pending):
            return record.stage
        request = PlanRequest.model_validate(record.request)
        rows = self.plan_rows(record, documents=True)
        if record.stage == "districts":
            state = self._offer(record, request, rows)
            if any(e.get("offer_plan_id") for e in state.values()):
                if self._move(round_id, "districts", "offers", districts=state):
                    for e in state.values():
                        if e.get("offer_plan_id"):
                            self.runner.submit(e["offer_plan_id"])
                return "offers"
            record.districts = state
        document = join(request, record.districts, rows)
        self._move(round_id, record.stage, "done", districts=record.districts, document=document, finished_at=utcnow())
        return "done"

    def _offer(self, record: RoundRecord, request: PlanRequest, rows: Mapping[str, PlanRow]) -> dict[str, Any]:
        """The second pass: the neighbours' requests with the visits offered to them, queued."""
        firsts = {d: rows.get(e.get("plan_id") or "") for d, e in record.districts.items()}
        state = {d: dict(e) for d, e in record.districts.items()}
        owner = assign_districts(request)
        for district, offered in offers(request, firsts).items():
            first = firsts[district]
            assert first is not None and first.document is not None
            limit = max(MIN_OFFER_S, OFFER_SHARE * first.time_limit_s)
            keep = {kind: {i for i, d in ids.items() if d == district} for kind, ids in owner.items()}
            keep["labs"] |= {lab.id for lab in request.labs if not lab.district}
            keep["visits"] |= set(offered)
            part = sub_request(request, keep, name=f"{request.name or 'round'} / {district} (offers)",
                               time_limit_s=limit, initial_routes=_orders(first.document))
            state[district]["offer_plan_id"] = self._queue(part, record.organisation, limit)
            state[district]["offered"] = offered
        return state

    def _move(self, round_id: str, stage: str, to: str, **values: Any) -> bool:
        """Move a round from ``stage`` to ``to``, atomically: False when another process did first."""
        with self.store.transaction() as session:
            result = session.execute(
                update(RoundRecord).where(RoundRecord.id == round_id, RoundRecord.stage == stage)
                .values(stage=to, updated_at=utcnow(), **values)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]


class RoundKeeper:
    """A thread of the API process that advances every unfinished round once a second."""

    def __init__(self, rounds: Rounds, interval_s: float = 1.0) -> None:
        self.rounds = rounds
        self.interval_s = interval_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="round-keeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_s):
            try:
                for round_id in self.rounds.unfinished():
                    self.rounds.advance(round_id)
            except Exception:
                log.exception("advancing the rounds failed")
