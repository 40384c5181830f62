"""What the plan routes do, outside the routes: check a request against the server's limits and
networks (so bad input is a 422 now, not a failed job later), and shape stored plans for output."""

from __future__ import annotations

from typing import Any

import numpy as np

from routing.errors import ProblemError
from routing.model import TravelMatrix
from service.config import Settings
from service.networks import NetworkRegistry
from service.pipeline import site_error
from service.schemas import (
    DepotIn,
    ErrorOut,
    LabIn,
    PlanDocument,
    PlanOut,
    PlanRequest,
    PlanSummaryOut,
    ProgressOut,
    StopIn,
    VisitIn,
    to_problem,
)
from service.store import PlanRow


def plan_url(plan_id: str) -> str:
    return f"/v1/plans/{plan_id}"


def wait_budget(time_limit_s: float, settings: Settings) -> float:
    """How long ``?wait=true`` waits for a plan: its time limit and a margin, capped by the server."""
    return min(time_limit_s + settings.wait_grace_s, settings.max_wait_s)


def time_limit(request: PlanRequest, settings: Settings) -> float:
    limit = request.options.time_limit_s
    if limit is None:
        return settings.default_time_limit_s
    if limit > settings.max_time_limit_s:
        raise ProblemError(
            f"time_limit_s is {limit:g} but this server allows at most {settings.max_time_limit_s:g} s",
            path=("options", "time_limit_s"),
        )
    return float(limit)


def check_request(request: PlanRequest, settings: Settings, networks: NetworkRegistry) -> float:
    """Everything that can be said about a request before solving it; returns its time limit.

    Raises :class:`ProblemError` (422) for sizes over the server's limits, inconsistent objects,
    an unknown network, a site outside the network or too far from its roads; NetworkError (503)
    when the network cannot be loaded.
    """
    check_sizes(request, settings)
    limit = time_limit(request, settings)
    if request.matrices is not None:
        to_problem(request)
        if request.network is not None:
            networks.resolve(request.network)  # with matrices it only draws: it must still exist
        return limit
    name = networks.resolve(request.network)
    n = len(request.sites)
    placeholder = np.broadcast_to(np.zeros(1), (n, n))  # no memory: the real ones come in the worker
    to_problem(request, {p: TravelMatrix(placeholder, placeholder) for p in request.profiles})
    check_sites(request, name, networks)
    return limit


def check_sizes(request: PlanRequest, settings: Settings) -> None:
    """Visits and vehicles within the server's limits (:class:`ProblemError` naming the list)."""
    if len(request.visits) > settings.max_visits:
        raise ProblemError(
            f"{len(request.visits)} visits is more than this server plans at once ({settings.max_visits}); "
            "split the request (e.g. by district)",
            path=("visits",),
        )
    if len(request.vehicles) > settings.max_vehicles:
        raise ProblemError(
            f"{len(request.vehicles)} vehicles is more than this server plans at once ({settings.max_vehicles})",
            path=("vehicles",),
        )


def check_sites(request: PlanRequest, name: str, networks: NetworkRegistry) -> None:
    """Every site lies in the network's area and near a road of each profile that goes there."""
    from routing.snapping import snap_points

    max_snap_m = networks.settings.max_snap_m
    for profile in request.profiles:
        network = networks.get(name, profile)
        west, south, east, north = network.bounds
        labelled: list[tuple[str, str, int, DepotIn | VisitIn | StopIn | LabIn]] = [
            *(("depots", "Depot", i, d) for i, d in enumerate(request.depots)),
            *(("visits", "Visit", i, v) for i, v in enumerate(request.visits)),
            *(("stops", "Bus stop", i, st) for i, st in enumerate(request.stops)),
            *(("labs", "Lab", i, lab) for i, lab in enumerate(request.labs)),
        ]
        for kind, label, i, site in labelled:
            if not network.contains(site.location, margin_m=max_snap_m):
                lon, lat = site.location
                raise ProblemError(
                    f'{label} "{site.id}": location [{lon}, {lat}] is outside the road network "{name}" '
                    f"({profile}), which covers [{west:.4f}, {south:.4f}] to [{east:.4f}, {north:.4f}] "
                    "(locations are [lon, lat])",
                    path=(kind, i, "location"),
                )
        points = [(s.location[0], s.location[1]) for s in request.sites]
        try:
            snap_points(network, points, ids=[s.id for s in request.sites], max_snap_m=max_snap_m)
        except ProblemError as error:
            raise site_error(error, request) from None


def plan_out(row: PlanRow, document: PlanDocument | None) -> PlanOut:
    return PlanOut(
        id=row.id,
        name=row.name,
        status=row.status,
        url=plan_url(row.id),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        attempts=row.attempts,
        cancel_requested=row.cancel_requested,
        progress=ProgressOut.model_validate(row.progress) if row.progress else None,
        plan=document,
        error=ErrorOut.model_validate(row.error) if row.error else None,
    )


def plan_summary_out(row: PlanRow) -> PlanSummaryOut:
    return PlanSummaryOut(
        id=row.id,
        name=row.name,
        status=row.status,
        url=plan_url(row.id),
        created_at=row.created_at,
        finished_at=row.finished_at,
        visits=row.visits,
        vehicles=row.vehicles,
        summary=row.summary,
    )


def stored_request(request: PlanRequest) -> dict[str, Any]:
    """The request as stored: what was given (``exclude_unset`` keeps "end_depot omitted" apart
    from "end_depot: null"), times already in seconds."""
    return request.model_dump(mode="json", exclude_unset=True)
