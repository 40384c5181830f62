"""The day as it happens: per vehicle done, remaining and late; people sampled against expected;
everyone not sampled yet, with their last outcome."""

from __future__ import annotations

from typing import Any

from service.field.chain import Chain, planned_vehicle, route_steps
from service.ledger import ATTEMPTED, Outcome, StepState
from service.schemas import clock

ATTEMPT_OUTCOMES = {o.value for o in ATTEMPTED}


def progress(chain: Chain, at_s: int) -> dict[str, Any]:
    """Per vehicle done / remaining / late, people sampled vs expected, and who is not sampled yet.

    ``late``: steps not done whose planned start in the current version is before ``at_s``.
    """
    current = chain.current
    document = chain.document(current)
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
            step_state = states.get(step.id)
            if step_state is not None and step_state.outcome is not None and step_state.outcome is not Outcome.ARRIVED:
                continue
            out["remaining"] += 1
            if step_state is not None and step_state.in_progress:
                out["in_progress"] = step.id
                continue
            if out["next_step"] is None:
                out["next_step"] = {"id": step.id, "planned_start_s": step.start_s, "planned_start": step.start}
            if step.start_s < at_s:
                out["late"] += 1
                out["behind_s"] = max(out["behind_s"], int(at_s - step.start_s))
    not_sampled = []
    planned_start = {s.id: s for steps in planned.values() for s in steps}
    unassigned = {u.visit_id: u.reason for u in document.unassigned} if document else {}
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
            "planned_start_s": planned_step.start_s if planned_step else None,
            "unassigned_reason": unassigned.get(step_id),
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
