"""OpenAPI links: what a client can do next with the plan an answer names.

They are documentation that tools act on: generated clients offer the follow-up calls, and a
stateful fuzzer (schemathesis, in ``tests/service/test_openapi.py``) chains them, so it reads,
re-plans and cancels real plans instead of guessing ids.
"""

from __future__ import annotations

from typing import Any

_PLAN_OPERATIONS = {
    "GetPlan": ("get_plan", "The plan: status, progress while solving, routes when done."),
    "CancelPlan": ("cancel_plan", "Cancel its solve."),
    "ExportPlanGeojson": ("export_plan_geojson", "Its routes and stops as GeoJSON."),
    "ListVersions": ("list_versions", "Its versions."),
    "ListEvents": ("list_events", "Its ledger."),
    "GetProgress": ("get_progress", "Progress of its day."),
    "RecordEvent": ("record_event", "Record a step's outcome."),
    "Replan": ("replan", "Re-plan the rest of its day."),
    "CarryOver": ("carry_over", "What is left for tomorrow."),
    "ListCrewLinks": ("list_crew_links", "Its crew links."),
    "CreateCrewLink": ("create_crew_link", "A crew link for one of its vehicles."),
}
_ROUTE_OPERATIONS = {
    "GetRoute": ("get_route", "The first vehicle's stop list."),
    "ExportRouteCsv": ("export_route_csv", "... as CSV."),
    "ExportRouteGpx": ("export_route_gpx", "... as GPX."),
    "ExportRouteHtml": ("export_route_html", "... printable."),
}

_PLAN_ID = "$response.body#/id"


def plan_links(*, with_routes: bool) -> dict[str, Any]:
    """Links from an answer whose body's ``id`` is a plan; ``with_routes``: the request body
    listed the vehicles (``POST /v1/plans``), so the first one's route is linked too."""
    links: dict[str, Any] = {
        name: {"operationId": operation, "parameters": {"plan_id": _PLAN_ID}, "description": description}
        for name, (operation, description) in _PLAN_OPERATIONS.items()
    }
    if with_routes:
        links |= {
            name: {"operationId": operation, "description": description,
                   "parameters": {"plan_id": _PLAN_ID, "vehicle_id": "$request.body#/vehicles/0/id"}}
            for name, (operation, description) in _ROUTE_OPERATIONS.items()
        }
    return links


REPLAN_LINKS: dict[str, Any] = {
    **plan_links(with_routes=False),
    "CompareVersions": {"operationId": "compare_versions", "description": "What changed from the version re-planned.",
                        "parameters": {"plan_id": "$response.body#/parent_id", "other_id": _PLAN_ID}},
}
"""Links from a re-plan's answer: the new version, and its comparison with the one it replaces."""

CREW_LINK_LINKS: dict[str, Any] = {
    "RevokeCrewLink": {"operationId": "revoke_crew_link", "description": "Revoke the link just made.",
                       "parameters": {"plan_id": "$request.path.plan_id", "prefix": "$response.body#/prefix"}},
}
