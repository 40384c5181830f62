"""What changed from one version of a plan to another: moved, added and removed visits, new ETAs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from routing.replan import disruption
from service.field.chain import route_steps
from service.ledger import StepState
from service.schemas import clock, read_document
from service.store import PlanRow


def compare(a: PlanRow, b: PlanRow, states: Mapping[str, StepState], *, min_eta_change_s: int = 60) -> dict[str, Any]:
    """What changed from version ``a`` to version ``b``: visits moved to another vehicle, added,
    removed (with their ledger outcome: a removed visit was usually done), ETAs that moved."""
    routes_a, routes_b = route_steps(read_document(a.document)), route_steps(read_document(b.document))
    steps_a = {s.id: (v, s) for v, steps in routes_a.items() for s in steps}
    steps_b = {s.id: (v, s) for v, steps in routes_b.items() for s in steps}
    measured = disruption({v: [s.id for s in steps] for v, steps in routes_a.items()},
                          {v: [s.id for s in steps] for v, steps in routes_b.items()})
    moved = [{"id": i, "from_vehicle": steps_a[i][0], "to_vehicle": steps_b[i][0]} for i in measured.moved]
    eta = []
    for step_id in steps_a.keys() & steps_b.keys():
        before, after = steps_a[step_id][1].start_s, steps_b[step_id][1].start_s
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
