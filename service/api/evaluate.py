"""``/v1/evaluate``: plan mode. A dispatcher's hand-made order (or the order a crew actually
drove) is scheduled and checked by the independent evaluator: ETAs, waits, loads and every
broken rule (late, over capacity, missing skill, shift overrun, sample too old)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status

from routing.errors import ProblemError, UnknownReferenceError
from routing.evaluate import evaluate
from routing.model import Problem
from routing.plan import Plan
from service.api.deps import NetworksDep, ReaderDep, SettingsDep, StoreDep, plan_of
from service.field.schemas import EvaluateIn, EvaluateOut
from service.pipeline import prepare
from service.planning import check_sizes
from service.privacy import redact_document
from service.schemas import PlanRequest, plan_document

router = APIRouter(prefix="/v1", tags=["plan mode"])


@router.post(
    "/evaluate",
    operation_id="evaluate_routes",
    summary="Check a fixed order of steps per vehicle (plan mode)",
    response_model=EvaluateOut,
    responses={
        401: {"description": "No key, or an unknown or revoked one."},
        403: {"description": "Crews may not evaluate plans."},
        404: {"description": "No plan with this id (in your organisation)."},
        409: {"description": "The plan has been purged of the data it needs."},
        422: {"description": "Bad input, e.g. an id the problem does not have (the field is named).",
              "content": {"application/json": {"example": {"detail": [
                  {"loc": ["body", "routes", "team-1", 2], "msg": '"v-99" is not a visit, stop or break of '
                   'vehicle "team-1"', "type": "UnknownReferenceError"}]}}}},
    },
)
def evaluate_routes(body: EvaluateIn, settings: SettingsDep, store: StoreDep, networks: NetworksDep,
                    principal: ReaderDep) -> Any:
    """Schedule `routes` (vehicle id -> ids in order) on the problem of `plan_id` or `problem`.
    A route that breaks rules is not an error: `feasible` is false and `plan.violations` says
    which rule, where and by how much. At most `DOORSTEP_MAX_EVALUATE_STEPS` steps in all
    routes, and a `problem` within the server's limits on visits and vehicles."""
    # Evaluation runs in the API process (a thread of its pool) and holds the GIL while it
    # schedules: 100,000 steps took 27 s and slowed every other request. Bounded work only.
    steps = sum(len(route) for route in body.routes.values())
    if steps > settings.max_evaluate_steps:
        raise ProblemError(
            f"{steps} steps is more than this server evaluates at once ({settings.max_evaluate_steps}); "
            "evaluate fewer routes per call",
            path=("routes",),
        )
    if body.problem is not None:
        try:
            check_sizes(body.problem, settings)
        except ProblemError as error:
            raise ProblemError(str(error), path=("problem", *error.path)) from None
    if body.plan_id is not None:
        row = plan_of(store, body.plan_id, principal, request=True)
        if row.purged_at is not None:
            raise HTTPException(status.HTTP_409_CONFLICT, f"plan {row.id} was purged of personal data and addresses")
        assert row.request is not None
        request = PlanRequest.model_validate(row.request)
    else:
        assert body.problem is not None
        request = body.problem
    problem = prepare(request, networks).problem
    _check_ids(problem, body.routes)
    evaluation = evaluate(problem, body.routes)
    plan = Plan(routes=evaluation.routes, unassigned=(), violations=evaluation.violations,
                cost=evaluation.cost, engine="evaluate")
    document = plan_document(problem, plan)
    if body.plan_id is not None:
        document = redact_document(document, principal) or document
    return EvaluateOut(feasible=evaluation.feasible, cost=evaluation.cost, missing=list(evaluation.missing),
                       plan=document)


def _check_ids(problem: Problem, routes: dict[str, list[str]]) -> None:
    """Unknown ids are bad input (422 naming the place), not violations."""
    vehicles = {v.id: v for v in problem.vehicles}
    sites = {s.id for s in problem.sites} - {d.id for d in problem.depots}
    for vehicle_id, steps in routes.items():
        if vehicle_id not in vehicles:
            raise UnknownReferenceError(
                f'"{vehicle_id}" is not a vehicle of the problem (vehicles: {", ".join(vehicles)})',
                path=("routes", vehicle_id),
            )
        breaks = {b.id for b in vehicles[vehicle_id].breaks}
        for i, step_id in enumerate(steps):
            if step_id not in sites and step_id not in breaks:
                    raise UnknownReferenceError(
                    f'"{step_id}" is not a visit, stop or break of vehicle "{vehicle_id}"',
                    path=("routes", vehicle_id, i),
                )

