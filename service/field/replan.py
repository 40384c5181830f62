"""Re-planning: the current version, what the ledger says and what the dispatcher asks, made into
the request of the next version.

The next version is the rest of the day (:func:`routing.replan.rest_of_day`) with its own travel
matrices (rows of the previous ones, or recomputed on the road network for new places), written
out by :func:`service.schemas.to_request`; so every version is a self-contained request the
workers solve like any other, already checked here (it was built from a validated problem).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from routing.errors import ProblemError
from routing.model import Problem, TravelMatrix, Vehicle, Visit
from routing.replan import RestOfDay, later_windows, rest_of_day
from service.auth import Principal
from service.config import Settings
from service.field.chain import ROUTE_KINDS, Chain, load_chain, route_steps
from service.field.schemas import ReplanIn, ReplanOut
from service.ledger import Ledger, Outcome, StepState, SystemEntry
from service.networks import NetworkRegistry
from service.pipeline import network_matrices
from service.planning import check_sizes, plan_url, stored_request, time_limit
from service.schemas import PlanDocument, PlanRequest, VisitIn, to_problem, to_request
from service.store import PlanRow, Store


class VersionConflict(Exception):
    """The plan cannot be re-planned now: not its newest version, or no routes yet (HTTP 409)."""


def replan(
    store: Store, row: PlanRow, body: ReplanIn, settings: Settings, registry: NetworkRegistry, principal: Principal
) -> tuple[ReplanOut, float]:
    """Store the next version of ``row``'s plan, queued, and its entry in the ledger; returns it
    and its time limit. The caller submits it to the runner."""
    chain = load_chain(store, row, Ledger(store).events(row.root))
    if chain.latest.id != row.id:
        raise VersionConflict(f"plan {row.id} is version {row.version}; re-plan the newest, {chain.latest.id} "
                              f"(version {chain.latest.version})")
    current = chain.current
    if current is None or current.id != row.id or not row.status.is_final:
        raise VersionConflict(f"plan {row.id} is {row.status.value}: re-plan it when it has routes")
    ask = replan_ask(PlanRequest.model_validate(current.request), body)
    rest, base, retried = rest_of_day_for(chain, ask, registry)
    options = body.options.model_dump(mode="json", exclude_unset=True)
    options.setdefault("time_limit_s", row.time_limit_s)
    options["initial_routes"] = rest.initial
    # Drawn on the same streets, and re-planned there, as the version before.
    network = registry.resolve(base.network) if routes_on_network(base) else None
    request = to_request(rest.problem, name=f"{(chain.root.name or 'plan')} (v{row.version + 1})",
                         network=network, options=options)
    check_sizes(request, settings)
    limit = time_limit(request, settings)
    new = store.create(stored_request(request), name=request.name, time_limit_s=limit,
                       visits=len(request.visits), vehicles=len(request.vehicles), parent=row)
    Ledger(store).record(
        row.root, new.id, outcome=SystemEntry.REPLANNED.value, actor=principal.actor,
        payload={"from_version": row.id, "to_version": new.id, "now_s": body.now,
                 "cancelled": list(body.cancelled), "added": [v.id for v in body.new_visits],
                 "dropped_vehicles": list(body.dropped_vehicles),
                 "joined_vehicles": [v.id for v in body.joined_vehicles],
                 "positions": sorted(body.positions), "retried": retried, "not_retried": list(rest.not_retried),
                 "reassignment_cost": body.reassignment_cost},
    )
    out = ReplanOut(id=new.id, status=new.status.value, url=plan_url(new.id), version=new.version, parent_id=row.id,
                    kept=rest.kept, retried=retried, not_retried=list(rest.not_retried))
    return out, limit


def replan_ask(current: PlanRequest, body: ReplanIn) -> ReplanAsk:
    """The dispatcher's ask; new visits and joined vehicles as partial requests of the current
    version's kind (for their conversion and error paths)."""
    empty: dict[str, Any] = {"stops": [], "areas": [], "labs": [], "matrices": None}
    return ReplanAsk(
        now_s=body.now,
        positions={k: (v[0], v[1]) for k, v in body.positions.items()},
        new_visits=current.model_copy(update={**empty, "visits": body.new_visits}) if body.new_visits else None,
        cancelled=body.cancelled,
        dropped_vehicles=body.dropped_vehicles,
        joined_vehicles=(current.model_copy(update={**empty, "visits": [], "vehicles": body.joined_vehicles})
                         if body.joined_vehicles else None),
        retry_not_home=body.retry_not_home,
        retry_after_s=body.retry_after_s,
        reassignment_cost=body.reassignment_cost,
        matrices={p: m.to_travel_matrix() for p, m in body.matrices.items()} if body.matrices else None,
    )


@dataclass(frozen=True, slots=True)
class ReplanAsk:
    """What a dispatcher asks of a re-plan, already parsed (see :class:`service.field.schemas.ReplanIn`)."""

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


def _routes_before(document: PlanDocument | None) -> dict[str, list[str]]:
    return {vehicle: [s.id for s in steps] for vehicle, steps in route_steps(document, ROUTE_KINDS).items()}


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
            extended = network_matrices(request, registry, extra, profiles)
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
        _routes_before(chain.document(current)),
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
