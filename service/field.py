"""Field operations over a plan's versions and ledger: progress, re-planning, carry-over, comparison.

A plan's *chain* is its versions, first to last; its ledger (:mod:`service.ledger`) spans them.
The *current* version is the newest one that has routes. Re-planning (:func:`replan_request`)
turns the current version, what the ledger says and what the dispatcher asks into the request
of the next version: the rest of the day (:func:`routing.replan.rest_of_day`) with its own travel
matrices (rows of the previous ones, or recomputed on the road network for new places), so
every version is a self-contained request the workers solve like any other.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from routing.errors import ProblemError
from routing.model import Problem, TravelMatrix, Vehicle, Visit
from routing.replan import RestOfDay, disruption, later_windows, rest_of_day
from service.ledger import Event, Outcome, StepState, SystemEntry, step_states
from service.networks import NetworkRegistry
from service.schemas import PlanRequest, VisitIn, clock, to_problem
from service.store import PlanRow, Store

TASK_KINDS = ("visit", "stop")
ROUTE_KINDS = ("visit", "stop", "break")


@dataclass(frozen=True, slots=True)
class Chain:
    """Every version of a plan (requests and documents loaded) and its ledger."""

    versions: list[PlanRow]
    events: list[Event]

    @property
    def root(self) -> PlanRow:
        return self.versions[0]

    @property
    def latest(self) -> PlanRow:
        return self.versions[-1]

    @property
    def live(self) -> list[PlanRow]:
        """The published versions (drafts and discarded ones left out: crews never see them)."""
        return [v for v in self.versions if v.publication == "published"]

    @property
    def current(self) -> PlanRow | None:
        """The newest published version with routes."""
        return next((v for v in reversed(self.live) if v.document is not None), None)

    @property
    def draft(self) -> PlanRow | None:
        """The version waiting for the dispatcher to publish it, if any (:mod:`service.drafts`)."""
        return next((v for v in reversed(self.versions) if v.publication == "draft"), None)

    @property
    def states(self) -> dict[str, StepState]:
        return step_states(self.events)

    @property
    def cancelled(self) -> set[str]:
        return {
            step for e in self.events if e.outcome == SystemEntry.REPLANNED.value
            for step in e.payload.get("cancelled") or []
        }

    def tasks(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Every visit and bus stop the plan has had (not cancelled): id -> (kind, its first request entry)."""
        cancelled = self.cancelled
        found: dict[str, tuple[str, dict[str, Any]]] = {}
        for version in self.live:
            for kind, key in (("visit", "visits"), ("stop", "stops")):
                for item in (version.request or {}).get(key) or []:
                    if item["id"] not in found and item["id"] not in cancelled:
                        found[item["id"]] = (kind, item)
        return found


def load_chain(store: Store, row: PlanRow, events: list[Event]) -> Chain:
    versions = []
    for light in store.versions(row.root):
        full = store.get(light.id, request=True, document=True)
        if full is not None:
            versions.append(full)
    return Chain(versions=versions, events=events)


def route_steps(
    document: Mapping[str, Any] | None, kinds: Sequence[str] = TASK_KINDS
) -> dict[str, list[dict[str, Any]]]:
    """vehicle id -> its steps of ``kinds``, in order."""
    return {
        r["vehicle_id"]: [s for s in r.get("steps") or [] if s.get("kind") in kinds]
        for r in (document or {}).get("routes") or []
    }


def planned_vehicle(document: Mapping[str, Any] | None) -> dict[str, str]:
    return {s["id"]: vehicle for vehicle, steps in route_steps(document).items() for s in steps}


# -- progress ----------------------------------------------------------------------------------------


def progress(chain: Chain, at_s: int) -> dict[str, Any]:
    """Per vehicle done / remaining / late, people sampled vs expected, and who is not sampled yet.

    ``late``: steps not done whose planned start in the current version is before ``at_s``.
    """
    current = chain.current
    document = current.document if current else None
    states = chain.states
    tasks = chain.tasks()
    planned = route_steps(document)
    owner = planned_vehicle(document)
    for step_id, recorded in states.items():
        if recorded.vehicle_id and step_id in tasks:
            owner.setdefault(step_id, recorded.vehicle_id)
            if recorded.outcome is not None and recorded.outcome is not Outcome.SKIPPED:
                owner[step_id] = recorded.vehicle_id
    vehicles: dict[str, dict[str, Any]] = {}

    def entry(vehicle_id: str) -> dict[str, Any]:
        return vehicles.setdefault(vehicle_id, {
            "vehicle_id": vehicle_id, "done": 0, "remaining": 0, "late": 0, "behind_s": 0,
            "outcomes": {o.value: 0 for o in Outcome if o is not Outcome.ARRIVED},
            "in_progress": None, "people_sampled": 0, "people_expected": 0, "next_step": None,
        })

    for vehicle_id in planned:
        entry(vehicle_id)
    for step_id, vehicle_id in owner.items():
        _, item = tasks.get(step_id, ("visit", {}))
        out = entry(vehicle_id)
        out["people_expected"] += int(item.get("people") or 0)
        known = states.get(step_id)
        if known is not None and known.outcome is not None and known.outcome is not Outcome.ARRIVED:
            out["outcomes"][known.outcome.value] += 1
            if known.outcome is Outcome.DONE:
                out["done"] += 1
                out["people_sampled"] += int(known.people_sampled or 0)
    for vehicle_id, steps in planned.items():
        out = entry(vehicle_id)
        for step in steps:
            step_state = states.get(step["id"])
            if step_state is not None and step_state.outcome is not None and step_state.outcome is not Outcome.ARRIVED:
                continue
            out["remaining"] += 1
            if step_state is not None and step_state.in_progress:
                out["in_progress"] = step["id"]
                continue
            if out["next_step"] is None:
                out["next_step"] = {"id": step["id"], "planned_start_s": step.get("start_s"),
                                    "planned_start": step.get("start")}
            if float(step.get("start_s") or 0) < at_s:
                out["late"] += 1
                out["behind_s"] = max(out["behind_s"], int(at_s - float(step["start_s"])))
    not_sampled = []
    planned_start = {s["id"]: s for steps in planned.values() for s in steps}
    unassigned = {u["visit_id"]: u for u in (document or {}).get("unassigned") or []}
    for step_id, (kind, item) in tasks.items():
        state: StepState | None = states.get(step_id)
        if state is not None and state.sampled:
            continue
        planned_step = planned_start.get(step_id)
        not_sampled.append({
            "id": step_id,
            "kind": kind,
            "vehicle_id": owner.get(step_id),
            "people": item.get("people"),
            "priority": item.get("priority"),
            "address": item.get("address"),
            "notes": item.get("notes"),
            "contact": item.get("contact"),
            "last_outcome": state.outcome.value if state and state.outcome else None,
            "last_at_s": state.at_s if state else None,
            "attempts": sum(1 for e in state.history if e.outcome in ATTEMPT_OUTCOMES) if state else 0,
            "planned_start_s": planned_step.get("start_s") if planned_step else None,
            "unassigned_reason": unassigned[step_id]["reason"] if step_id in unassigned else None,
        })
    people_expected = sum(int(item.get("people") or 0) for _, item in tasks.values())
    people_sampled = sum(int(s.people_sampled or 0) for s in states.values() if s.sampled)
    return {
        "plan_id": chain.root.id,
        "current_version": current.id if current else None,
        "version": current.version if current else None,
        "at_s": at_s,
        "at": clock(at_s),
        "vehicles": sorted(vehicles.values(), key=lambda v: v["vehicle_id"]),
        "people_sampled": people_sampled,
        "people_expected": people_expected,
        "tasks": len(tasks),
        "done": sum(1 for step_id in tasks if step_id in states and states[step_id].sampled),
        "outstanding": len(not_sampled),
        "not_sampled": not_sampled,
    }


ATTEMPT_OUTCOMES = {o.value for o in (Outcome.DONE, Outcome.NOT_HOME, Outcome.REFUSED, Outcome.UNREACHABLE)}


# -- re-planning -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplanAsk:
    """What a dispatcher asks of a re-plan, already parsed (see ``service.schemas_field.ReplanIn``)."""

    now_s: int
    positions: Mapping[str, tuple[float, float]]
    new_visits: PlanRequest | None
    """The new visits as a request (its ``visits``), for their conversion and error paths."""
    cancelled: Sequence[str]
    dropped_vehicles: Sequence[str]
    joined_vehicles: PlanRequest | None
    retry_not_home: bool | Sequence[str]
    retry_after_s: int
    reassignment_cost: float
    matrices: Mapping[str, TravelMatrix] | None


def _routes_before(document: Mapping[str, Any]) -> dict[str, list[str]]:
    return {vehicle: [s["id"] for s in steps] for vehicle, steps in route_steps(document, ROUTE_KINDS).items()}


def _converted(part: PlanRequest | None, kind: str, field_name: str) -> list[Any]:
    """Visits or vehicles of a partial request, through :func:`to_problem` (one checking place)."""
    if part is None or not getattr(part, kind):
        return []
    n = len(part.sites)
    zeros = np.broadcast_to(np.zeros(1), (n, n))
    try:
        problem = to_problem(part, {p: TravelMatrix(zeros, zeros) for p in ("drive", "walk")})
    except ProblemError as error:
        path = error.path
        if path[:1] == (kind,):
            path = (field_name, *path[1:])
        raise type(error)(str(error), path=path) from None
    return list(getattr(problem, kind))


def _extended_network_matrices(
    request: PlanRequest, extra: Sequence[tuple[str, tuple[float, float]]], profiles: Sequence[str],
    registry: NetworkRegistry,
) -> dict[str, TravelMatrix]:
    """Travel matrices on the plan's network over its sites, then the ``extra`` (id, point)s."""
    from routing.matrix import travel_matrix

    name = registry.resolve(request.network)
    points = [(s.location[0], s.location[1]) for s in request.sites] + [p for _, p in extra]
    ids = [s.id for s in request.sites] + [i for i, _ in extra]
    out: dict[str, TravelMatrix] = {}
    for profile in profiles:
        matrix = travel_matrix(registry.get(name, profile), points, ids=ids, max_snap_m=registry.settings.max_snap_m)
        out[profile] = TravelMatrix(matrix.durations_s, matrix.distances_m)
    return out


def routes_on_network(request: PlanRequest) -> bool:
    """Whether a plan's version is routed on a road network: its own request has no matrices, or,
    a re-planned version, it keeps its matrices and names the network."""
    return request.matrices is None or request.network is not None


def rest_of_day_for(
    chain: Chain, ask: ReplanAsk, registry: NetworkRegistry | None
) -> tuple[RestOfDay, PlanRequest, list[str]]:
    """The rest of the day after the current version, and the request it came from, and which
    ``not_home`` visits are retried."""
    current = chain.current
    assert current is not None and current.document is not None and current.request is not None
    request = PlanRequest.model_validate(current.request)
    states = chain.states
    task_ids = {v.id for v in request.visits} | {s.id for s in request.stops}
    # A not_home visit left out of an earlier re-plan is no longer in the current version: it is
    # brought back from the version that had it, as a visit added to this one.
    earlier = {s: entry for s, (kind, entry) in chain.tasks().items() if kind == "visit" and s not in task_ids}
    not_home = sorted(s for s, st in states.items()
                      if st.outcome is Outcome.NOT_HOME and (s in task_ids or s in earlier))
    if ask.retry_not_home is True:
        retry = not_home
    elif ask.retry_not_home is False:
        retry = []
    else:
        retry = list(ask.retry_not_home)
        for i, step_id in enumerate(retry):
            if step_id not in not_home:
                raise ProblemError(f'"{step_id}" has no not_home outcome to retry', path=("retry_not_home", i))
    back, closed = _brought_back(request, [earlier[s] for s in retry if s not in task_ids],
                                 ask.now_s + ask.retry_after_s)
    new_visits: list[Visit] = back + _converted(ask.new_visits, "visits", "new_visits")
    joined: list[Vehicle] = _converted(ask.joined_vehicles, "vehicles", "joined_vehicles")
    extra = [(v.id, v.location) for v in new_visits] + [(f"position of {k}", p) for k, p in ask.positions.items()]
    profiles = sorted({v.profile for v in request.vehicles} | {v.profile for v in joined})
    extended: Mapping[str, TravelMatrix] | None = ask.matrices
    if routes_on_network(request):
        if registry is None:
            raise ProblemError("this plan routes on a road network, which this server has not loaded")
        if extended is None:
            extended = _extended_network_matrices(request, extra, profiles, registry)
        n = len(request.sites)
        problem = to_problem(request, {p: TravelMatrix(m.durations_s[:n, :n], m.distances_m[:n, :n])
                                       for p, m in extended.items()})
    else:
        problem = to_problem(request)
        if extra and extended is None:
            raise ProblemError(
                "this plan's travel times were supplied by the caller: new visits and positions need `matrices` "
                "over the plan's sites, then the not_home visits brought back from earlier versions (in "
                "retry_not_home order), then the new visits, then the positions",
                path=("matrices",),
            )
    done = {s for s, st in states.items() if s in task_ids and st.attempted}
    in_progress = {st.vehicle_id: s for s, st in states.items() if s in task_ids and st.in_progress and st.vehicle_id}
    since = {st.vehicle_id: st.arrival_s for st in states.values()
             if st.in_progress and st.vehicle_id in in_progress and st.arrival_s is not None}
    for i, step_id in enumerate(ask.cancelled):
        if step_id not in task_ids:
            raise ProblemError(f'"{step_id}" is not a visit or stop still to do in this plan', path=("cancelled", i))
    consumed = _consumed(problem, states, done)
    rest = rest_of_day(
        problem,
        _routes_before(current.document),
        now_s=ask.now_s,
        done=done,
        in_progress=in_progress,
        in_progress_since_s={k: int(v) for k, v in since.items() if k is not None},
        retry_not_home=[s for s in retry if s in task_ids],
        retry_after_s=ask.retry_after_s,
        cancelled=ask.cancelled,
        new_visits=new_visits,
        dropped_vehicles=ask.dropped_vehicles,
        joined_vehicles=joined,
        positions=ask.positions,
        matrices=extended,
        consumed=consumed,
        reassignment_cost=ask.reassignment_cost,
    )
    if closed:
        rest = dataclasses.replace(rest, not_retried=(*rest.not_retried, *closed))
    closed_set = set(closed)
    return rest, request, [s for s in retry if s not in closed_set]


def _brought_back(
    request: PlanRequest, entries: Sequence[Mapping[str, Any]], retry_from_s: int
) -> tuple[list[Visit], list[str]]:
    """Visits from earlier versions' request entries, with their windows from ``retry_from_s`` on;
    and the ids of those whose windows all close before (not retried)."""
    if not entries:
        return [], []
    part = request.model_copy(update={"visits": [VisitIn.model_validate(e) for e in entries], "stops": [],
                                      "areas": [], "labs": [], "matrices": None})
    back, closed = [], []
    for visit in _converted(part, "visits", "retry_not_home"):
        windows = later_windows(visit, retry_from_s)
        if windows:
            back.append(dataclasses.replace(visit, time_windows=windows, preferred_vehicle=None))
        else:
            closed.append(visit.id)
    return back, closed


def _consumed(problem: Problem, states: Mapping[str, StepState], done: set[str]) -> dict[str, dict[str, int]]:
    """Per vehicle, what its sampled steps used: tubes as recorded, else as planned."""
    used: dict[str, dict[str, int]] = {}
    for step_id in done:
        state = states[step_id]
        if state.vehicle_id is None or not state.sampled:
            continue
        amounts = used.setdefault(state.vehicle_id, {})
        for dim, amount in problem.task(step_id).demand.items():
            value = state.tubes_used if dim == "tubes" and state.tubes_used is not None else amount
            amounts[dim] = amounts.get(dim, 0) + int(value)
    for vehicle in problem.vehicles:
        used.setdefault(vehicle.id, {})
    return used


def _matrix_json(matrix: np.ndarray) -> list[list[float | None]]:
    return [[None if not math.isfinite(v) else float(v) for v in row] for row in matrix.tolist()]


def _window_json(window: Any) -> dict[str, int]:
    return {"start": window.start_s, "end": window.end_s}


def request_of(
    problem: Problem, *, base: PlanRequest, extra_items: Mapping[str, Mapping[str, Any]], options: dict[str, Any],
    name: str | None,
) -> dict[str, Any]:
    """The plan request (JSON) of ``problem``, with explicit matrices; addresses and other fields
    the model does not keep come from ``base``'s items and ``extra_items`` (id -> request item)."""
    items: dict[str, dict[str, Any]] = {}
    for kind in ("visits", "stops", "areas", "labs"):
        for item in getattr(base, kind):
            items[item.id] = item.model_dump(mode="json", exclude_unset=True)
    items.update({k: dict(v) for k, v in extra_items.items()})
    vehicles = []
    for v in problem.vehicles:
        vehicles.append({
            "id": v.id, "kind": v.kind.value, "start_depot": v.start_depot, "end_depot": v.end_depot,
            "shift": _window_json(v.shift), "capacity": dict(v.capacity), "skills": sorted(v.skills),
            "profile": v.profile,
            "breaks": [{"id": b.id, "start": b.window.start_s, "end": b.window.end_s, "duration_s": b.duration_s}
                       for b in v.breaks],
            "max_duration_s": v.max_duration_s, "fixed_cost": v.fixed_cost, "speed_factor": v.speed_factor,
            "lanes": v.lanes, "seconds_per_person": v.seconds_per_person,
        })
    visits = []
    for visit in problem.visits:
        original = items.get(visit.id, {})
        visits.append({
            "id": visit.id, "location": list(visit.location), "people": visit.people, "setup_s": visit.setup_s,
            "per_person_s": visit.per_person_s, "time_windows": [_window_json(w) for w in visit.time_windows],
            "priority": int(visit.priority), "skills": sorted(visit.skills), "demand": dict(visit.demand),
            "required": visit.required, "penalty": visit.penalty, "notes": visit.notes, "contact": visit.contact,
            "address": original.get("address"), "preferred_vehicle": visit.preferred_vehicle,
        })
    stops = []
    for stop in problem.stops:
        original = items.get(stop.id, {})
        stops.append({
            "id": stop.id, "location": list(stop.location), "people": stop.people,
            "time_windows": [_window_json(w) for w in stop.time_windows], "required": stop.required,
            "group": stop.group, "max_dwell_s": stop.max_dwell_s, "setup_s": stop.setup_s,
            "demand": dict(stop.demand), "notes": stop.notes, "address": original.get("address"),
        })
        if original.get("people") is None and problem.areas:
            del stops[-1]["people"], stops[-1]["demand"]  # derived from the areas again
    areas = [items[a.id] for a in problem.areas if a.id in items]
    labs = [items[lab.id] for lab in problem.labs if lab.id in items]
    return {
        "name": name,
        "matrices": {p: {"durations_s": _matrix_json(m.durations_s), "distances_m": _matrix_json(m.distances_m)}
                     for p, m in problem.matrices.items()},
        "depots": [{"id": d.id, "location": list(d.location)} for d in problem.depots],
        "vehicles": vehicles,
        "visits": visits,
        "stops": stops,
        "areas": areas,
        "labs": labs,
        "max_sample_age_s": problem.max_sample_age_s,
        "options": options,
        "objective": {
            "duration_cost_per_s": problem.objective.duration_cost_per_s,
            "distance_cost_per_m": problem.objective.distance_cost_per_m,
            "unassigned_penalty": problem.objective.unassigned_penalty,
            "priority_factor": problem.objective.priority_factor,
            "reassignment_cost": problem.objective.reassignment_cost,
        },
    }


# -- versions ----------------------------------------------------------------------------------------


def compare(a: PlanRow, b: PlanRow, states: Mapping[str, StepState], *, min_eta_change_s: int = 60) -> dict[str, Any]:
    """What changed from version ``a`` to version ``b``: visits moved to another vehicle, added,
    removed (with their ledger outcome: a removed visit was usually done), ETAs that moved."""
    steps_a = {s["id"]: (v, s) for v, steps in route_steps(a.document).items() for s in steps}
    steps_b = {s["id"]: (v, s) for v, steps in route_steps(b.document).items() for s in steps}
    measured = disruption({v: [s["id"] for s in steps] for v, steps in route_steps(a.document).items()},
                          {v: [s["id"] for s in steps] for v, steps in route_steps(b.document).items()})
    moved = [{"id": i, "from_vehicle": steps_a[i][0], "to_vehicle": steps_b[i][0]} for i in measured.moved]
    eta = []
    for step_id in steps_a.keys() & steps_b.keys():
        before, after = float(steps_a[step_id][1]["start_s"]), float(steps_b[step_id][1]["start_s"])
        if abs(after - before) >= min_eta_change_s:
            eta.append({"id": step_id, "vehicle_id": steps_b[step_id][0], "from_s": before, "to_s": after,
                        "from": clock(before), "to": clock(after), "delta_s": after - before})
    removed = []
    for step_id in sorted(steps_a.keys() - steps_b.keys()):
        state = states.get(step_id)
        removed.append({"id": step_id, "vehicle_id": steps_a[step_id][0],
                        "outcome": state.outcome.value if state and state.outcome else None})
    return {
        "from_id": a.id, "to_id": b.id, "from_version": a.version, "to_version": b.version,
        "compared": measured.compared, "moved_fraction": round(measured.fraction, 4),
        "moved": moved,
        "added": [{"id": i, "vehicle_id": steps_b[i][0]} for i in sorted(steps_b.keys() - steps_a.keys())],
        "removed": removed,
        "eta_changes": sorted(eta, key=lambda e: e["id"]),
    }


# -- carry-over --------------------------------------------------------------------------------------


def carry_over(chain: Chain) -> dict[str, Any]:
    """Tomorrow's request: every visit and stop not sampled today (and not cancelled), as it was
    first requested, with its history of outcomes; the fleet and depots of the first version."""
    root = chain.root
    base = dict(root.request or {})
    states = chain.states
    tasks = chain.tasks()
    carried = {step_id: (kind, item) for step_id, (kind, item) in tasks.items()
               if not (step_id in states and states[step_id].sampled)}
    visits = [{k: v for k, v in item.items() if k != "preferred_vehicle"}
              for kind, item in carried.values() if kind == "visit"]
    stops = [dict(item) for kind, item in carried.values() if kind == "stop"]
    request: dict[str, Any] = {k: v for k, v in base.items() if k not in ("matrices", "visits", "stops")}
    request["name"] = f"{root.name or 'plan'} (carried over)"
    request["visits"] = visits
    request["stops"] = stops
    options = dict(request.get("options") or {})
    options.pop("initial_routes", None)
    request["options"] = options
    warnings: list[str] = []
    if base.get("matrices") is not None:
        matrices = _carried_matrices(chain, request)
        if matrices is None:
            warnings.append("travel matrices could not be assembled from the plan's versions: add `matrices` "
                            "over the depots, visits, stops and labs of this request before submitting it")
        else:
            request["matrices"] = matrices
    history = {
        step_id: [
            {"outcome": e.outcome, "at_s": e.payload.get("at_s"), "vehicle_id": e.vehicle_id,
             "version_id": e.version_id, "recorded_at": e.recorded_at.isoformat(), "note": e.payload.get("note")}
            for e in states[step_id].history
        ] if step_id in states else []
        for step_id in carried
    }
    return {"plan_id": root.id, "request": request, "history": history, "warnings": warnings}


def _carried_matrices(chain: Chain, request: Mapping[str, Any]) -> dict[str, Any] | None:
    """The carry-over's matrices from the versions' own: each pair of sites from a version that has both."""
    site_ids = [item["id"] for key in ("depots", "visits", "stops", "labs") for item in request.get(key) or []]
    tables = []
    for version in chain.versions:
        req = version.request or {}
        if not req.get("matrices"):
            continue
        ids = [item["id"] for key in ("depots", "visits", "stops", "labs") for item in req.get(key) or []]
        tables.append(({site: i for i, site in enumerate(ids)}, req["matrices"]))
    profiles = sorted({p for _, matrices in tables for p in matrices})
    out: dict[str, Any] = {}
    for profile in profiles:
        durations: list[list[float | None]] = []
        distances: list[list[float | None]] = []
        for a in site_ids:
            row_t: list[float | None] = []
            row_d: list[float | None] = []
            for b in site_ids:
                source = next(((index, m[profile]) for index, m in tables
                               if profile in m and a in index and b in index), None)
                if source is None:
                    return None
                index, matrix = source
                row_t.append(matrix["durations_s"][index[a]][index[b]])
                row_d.append(matrix["distances_m"][index[a]][index[b]])
            durations.append(row_t)
            distances.append(row_d)
        out[profile] = {"durations_s": durations, "distances_m": distances}
    return out
