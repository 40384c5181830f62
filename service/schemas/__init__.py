"""Wire models of the HTTP API, and the conversions at its edge.

Conventions (declared once, as VROOM's API document does; repeated in the OpenAPI description):

- locations are ``[lon, lat]`` in WGS84 degrees;
- durations are seconds, distances metres; time windows are inclusive ``[start, end]``;
- a time is whole seconds from midnight of the plan's day, or a ``"HH:MM"`` / ``"HH:MM:SS"``
  string; hours may pass 24 for shifts that run past midnight (``"29:00"`` is 05:00 next day;
  ``"05:00+1d"`` is read too). Output gives both: ``arrival_s`` (seconds) and ``arrival``
  (``"HH:MM"``, hours past 24 kept: the one clock format, :func:`routing.model.format_clock`);
- callers own every id; output refers back by id, never by position.

What is checked where: shape and range here (pydantic: every bad field answers 422 with its
path); consistency between objects in :class:`routing.model.Problem` (its
:class:`~routing.errors.ProblemError` carries ``path``; :func:`to_problem` prefixes it so it
names the request field). A visit nobody can serve is not an input error: it comes back in
``unassigned`` with a reason.

:func:`plan_document` builds the one JSON document a solved plan is shown as: the API's
``GET /v1/plans/{id}`` ``plan``, the exports (``service.exports``) and the CLI all read it.

The package, one concern a module: ``fields`` (ids, ``[lon, lat]``, priorities, profiles),
``times`` (``"HH:MM"`` in and out), ``problem_in`` (depots, vehicles, visits, options, objective),
``buses_in`` (bus stops, demand areas, labs), ``matrix`` (travel matrices in and out), ``request``
(:class:`PlanRequest`), ``convert`` (:func:`to_problem` and its inverse :func:`to_request`),
``document`` (:func:`plan_document` and its models), ``responses`` (plans, routes, networks,
health). Import from ``service.schemas``.
"""

from __future__ import annotations

from service.schemas.buses_in import AreaIn, LabIn, StopIn
from service.schemas.convert import error_loc, to_problem, to_request
from service.schemas.document import (
    CatchmentOut,
    CoverageOut,
    GeometryOut,
    PlanDocument,
    RouteOut,
    StepOut,
    TimeWindowOut,
    UnassignedOut,
    ViolationOut,
    dump_document,
    jsonable,
    plan_document,
    read_document,
)
from service.schemas.fields import MAX_AMOUNT, Amount, Engine, Id, LonLat, PriorityIn, Profile, _In
from service.schemas.matrix import MatrixEntry, MatrixIn, MatrixOut, MatrixRequest
from service.schemas.problem_in import BreakIn, DepotIn, ObjectiveIn, OptionsIn, ShiftIn, VehicleIn, VisitIn
from service.schemas.request import EXAMPLE_REQUEST, PlanRequest
from service.schemas.responses import (
    EXAMPLE_PLAN,
    ErrorOut,
    HealthOut,
    NetworkList,
    NetworkOut,
    PlanCreated,
    PlanList,
    PlanOut,
    PlanSummaryOut,
    ProgressOut,
    RouteDetail,
    Status,
)
from service.schemas.times import TimeOfDay, TimeWindowIn, clock, parse_time

CONVENTIONS = """\
Conventions: locations are `[lon, lat]` (WGS84 degrees); durations are seconds and distances
metres; time windows are inclusive `[start, end]`. A time is whole seconds from midnight of the
plan's day or an `"HH:MM"` / `"HH:MM:SS"` string; hours may pass 24 for shifts past midnight
(`"29:00"` is 05:00 the next day; `"05:00+1d"` is read too). Output gives every time twice: `*_s`
in seconds and an `"HH:MM"` string, always with hours past 24 (`"29:00"`), messages included.
Callers own every id; output refers back by id. Matrices are indexed by site: the depots in
request order, then the visits, then the bus stops, then the labs (each in request order).

Errors: bad input answers `422` with `{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}`
naming the field; a body over the size limit `413`; a road network that cannot answer `503`;
anything else `500` with a `request_id` to quote (details are logged, never sent).
A visit that cannot be served is not an error: it is listed in the plan's `unassigned` with a reason.
"""

__all__ = [
    "CONVENTIONS",
    "EXAMPLE_PLAN",
    "EXAMPLE_REQUEST",
    "MAX_AMOUNT",
    "Amount",
    "AreaIn",
    "BreakIn",
    "CatchmentOut",
    "CoverageOut",
    "DepotIn",
    "Engine",
    "ErrorOut",
    "GeometryOut",
    "HealthOut",
    "Id",
    "LabIn",
    "LonLat",
    "MatrixEntry",
    "MatrixIn",
    "MatrixOut",
    "MatrixRequest",
    "NetworkList",
    "NetworkOut",
    "ObjectiveIn",
    "OptionsIn",
    "PlanCreated",
    "PlanDocument",
    "PlanList",
    "PlanOut",
    "PlanRequest",
    "PlanSummaryOut",
    "PriorityIn",
    "Profile",
    "ProgressOut",
    "RouteDetail",
    "RouteOut",
    "ShiftIn",
    "Status",
    "StepOut",
    "StopIn",
    "TimeOfDay",
    "TimeWindowIn",
    "TimeWindowOut",
    "UnassignedOut",
    "VehicleIn",
    "ViolationOut",
    "VisitIn",
    "_In",
    "clock",
    "dump_document",
    "error_loc",
    "jsonable",
    "parse_time",
    "plan_document",
    "read_document",
    "to_problem",
    "to_request",
]
