"""A Doorstep plan document as VROOM's output (``POST /vroom``), with Doorstep's extras: each
unassigned job's ``reason`` and ``detail``, and ``summary.engine``. The input side, and the
mapping's choices, are :mod:`service.vroom_wire`'s."""

from __future__ import annotations

from typing import Any

from service.vroom_wire import Wire, amounts_of, delivery_of

CAUSES = {
    "late": "delay",
    "shift_overrun": "delay",
    "break_late": "delay",
    "over_capacity": "load",
    "missing_skill": "skills",
    "break_missing": "missing_break",
}
"""Doorstep's violation kinds as VROOM's causes; others keep Doorstep's name."""


def encode_polyline(coordinates: list[list[float]], precision: int = 5) -> str:
    """Google's encoded polyline of ``[[lon, lat], ...]`` (as VROOM and OSRM give geometry)."""
    factor = 10**precision
    out: list[str] = []
    previous = (0, 0)
    for lon, lat, *_ in coordinates:
        point = (round(lat * factor), round(lon * factor))
        for value, last in zip(point, previous, strict=True):
            delta = value - last
            delta = ~(delta << 1) if delta < 0 else delta << 1
            while delta >= 0x20:
                out.append(chr((0x20 | (delta & 0x1F)) + 63))
                delta >>= 5
            out.append(chr(delta + 63))
        previous = point
    return "".join(out)


def _delay(step: dict[str, Any], offset: int) -> int | None:
    """How late service starts after the nearest window's end (VROOM's ``delay`` duration)."""
    late = [step["start_s"] - w["end_s"] for w in step.get("time_windows") or [] if step["start_s"] > w["end_s"]]
    if late and len(late) == len(step.get("time_windows") or []):
        return round(min(late))
    return None


def _violations(found: list[dict[str, Any]], step: dict[str, Any] | None, offset: int) -> list[dict[str, Any]]:
    out = []
    for violation in found:
        cause = CAUSES.get(violation["kind"], violation["kind"])
        item: dict[str, Any] = {"cause": cause}
        if cause == "delay" and step is not None:
            delay = _delay(step, offset)
            if delay is not None:
                item["duration"] = delay
        out.append(item)
    return out


def _route(route: dict[str, Any], wire: Wire, violations: list[dict[str, Any]]) -> dict[str, Any]:
    vehicle = wire.vehicles[route["vehicle_id"]]
    jobs = [wire.jobs[s["id"]] for s in route["steps"] if s["kind"] == "visit"]
    load = [sum(d) for d in zip(*[amounts_of(delivery_of(j), wire.dims, "") for j in jobs], strict=True)] if jobs \
        else [0] * wire.dims
    delivered = list(load)
    picked = [0] * wire.dims
    steps: list[dict[str, Any]] = []
    by_step: dict[str | None, list[dict[str, Any]]] = {}
    for violation in violations:
        by_step.setdefault(violation["step_id"], []).append(violation)
    breaks = {str(b.id): b for b in vehicle.breaks}
    for step in route["steps"]:
        kind = step["kind"]
        out: dict[str, Any] = {"type": {"visit": "job"}.get(kind, kind)}
        setup, service = 0, round(step["service_s"])
        if kind == "visit":
            job = wire.jobs[step["id"]]
            out["id"] = out["job"] = job.id  # "job": VROOM's older name, still read by some clients
            if job.description is not None:
                out["description"] = job.description
            setup, service = job.setup, job.service
            pickup = amounts_of(job.pickup, wire.dims, "")
            for d, (gone, came) in enumerate(zip(amounts_of(delivery_of(job), wire.dims, ""), pickup, strict=True)):
                load[d] += came - gone
                picked[d] += came
            if job.location is not None:
                out["location"] = list(job.location)
            if job.location_index is not None:
                out["location_index"] = job.location_index
        elif kind == "break":
            brk = breaks.get(step["id"])
            out["id"] = int(step["id"])
            if brk is not None and brk.description is not None:
                out["description"] = brk.description
        else:
            place = vehicle.start if kind == "start" else vehicle.end
            index = vehicle.start_index if kind == "start" else vehicle.end_index
            if place is not None:
                out["location"] = list(place)
            elif not wire.with_matrices:
                out["location"] = list(step["location"])
            if index is not None:
                out["location_index"] = index
        out.update(setup=setup, service=service, waiting_time=round(step["wait_s"]),
                   arrival=round(step["arrival_s"]) + wire.offset, duration=round(step["travel_s"]))
        if wire.dims:
            out["load"] = list(load)
        if wire.with_distances:
            out["distance"] = round(step["distance_m"])
        out["violations"] = _violations(by_step.get(step["id"], []) if kind != "start" else [], step, wire.offset)
        steps.append(out)
    if steps and steps[-1]["type"] != "end":  # an open end: VROOM ends where the last task is
        last = dict(steps[-1])
        last_step = route["steps"][-1]
        steps.append({k: v for k, v in {
            "type": "end", "location": last.get("location"), "location_index": last.get("location_index"),
            "setup": 0, "service": 0, "waiting_time": 0, "arrival": round(last_step["departure_s"]) + wire.offset,
            "duration": last["duration"], "load": last.get("load"), "distance": last.get("distance"),
            "violations": []}.items() if v is not None})
    travel, distance = round(route["travel_s"]), round(route["distance_m"])
    out_route: dict[str, Any] = {
        "vehicle": vehicle.id,
        "cost": _cost(vehicle.costs.fixed, travel, distance, wire),
        "setup": sum(s["setup"] for s in steps),
        "service": sum(s["service"] for s in steps),
        "duration": travel,
        "waiting_time": sum(s["waiting_time"] for s in steps),
        "priority": sum(j.priority for j in jobs),
        "steps": steps,
        "violations": _violations(by_step.get(None, []), None, wire.offset),
    }
    if wire.dims:
        out_route.update(delivery=delivered, pickup=picked, amount=list(delivered))  # amount: older delivery
    if wire.with_distances:
        out_route["distance"] = distance
    if vehicle.description is not None:
        out_route["description"] = vehicle.description
    if wire.geometry and route.get("geometry"):
        out_route["geometry"] = encode_polyline(route["geometry"]["coordinates"])
    return out_route


def _cost(fixed: int, travel_s: int, distance_m: int, wire: Wire) -> int:
    """VROOM's cost of a route: fixed, plus travel time and distance at the vehicle's rates."""
    return fixed + round(travel_s * wire.per_hour / 3600 + distance_m * wire.per_km / 1000)


def to_output(document: dict[str, Any], wire: Wire, computing_times: dict[str, int]) -> dict[str, Any]:
    """VROOM's output for a Doorstep plan document, with Doorstep's extras (unassigned ``reason``)."""
    violations = document.get("violations") or []
    routes = [_route(route, wire, [v for v in violations if v["vehicle_id"] == route["vehicle_id"]])
              for route in document.get("routes") or []]
    unassigned = []
    for left in document.get("unassigned") or []:
        job = wire.jobs.get(left["visit_id"])
        if job is None:
            continue
        entry: dict[str, Any] = {"id": job.id, "type": "job"}
        if job.location is not None:
            entry["location"] = list(job.location)
        if job.location_index is not None:
            entry["location_index"] = job.location_index
        if job.description is not None:
            entry["description"] = job.description
        entry.update(reason=left["reason"], detail=left.get("detail", ""))
        unassigned.append(entry)
    summary: dict[str, Any] = {
        "cost": sum(r["cost"] for r in routes),
        "routes": len(routes),
        "unassigned": len(unassigned),
        "setup": sum(r["setup"] for r in routes),
        "service": sum(r["service"] for r in routes),
        "duration": sum(r["duration"] for r in routes),
        "waiting_time": sum(r["waiting_time"] for r in routes),
        "priority": sum(r["priority"] for r in routes),
        "violations": [v for r in routes for v in r["violations"]] + [v for r in routes for s in r["steps"]
                                                                       for v in s["violations"]],
        "computing_times": computing_times,
    }
    if wire.dims:
        for key in ("delivery", "pickup", "amount"):
            summary[key] = [sum(values) for values in zip(*[r[key] for r in routes], strict=True)] if routes \
                else [0] * wire.dims
    if wire.with_distances:
        summary["distance"] = sum(r["distance"] for r in routes)
    summary["engine"] = document.get("summary", {}).get("engine")  # Doorstep's extra: which engine won
    return {"code": 0, "summary": summary, "unassigned": unassigned, "routes": routes}


def plan_mode_unassigned(wire: Wire) -> list[str]:
    """Plan mode: jobs in no vehicle's steps."""
    placed = {ident for route in wire.routes.values() for ident in route}
    return [ident for ident in wire.jobs if ident not in placed]

