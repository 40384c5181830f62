"""Carry-over: what was not sampled today, as tomorrow's request with each resident's history."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.field.chain import Chain


def carry_over(chain: Chain) -> dict[str, Any]:
    """Tomorrow's request: every visit and stop not sampled today (and not cancelled), as it was
    first requested, with its history of outcomes; the fleet and depots of the first version."""
    root = chain.root
    base = dict(chain.requests[0])
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
    for req in chain.requests:
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
