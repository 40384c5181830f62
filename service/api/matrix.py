"""``POST /v1/matrix``: travel durations and distances between points, for integrators."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from routing.errors import ProblemError
from service.api.deps import AUTH, NetworksDep, require
from service.auth import Role
from service.schemas import MatrixOut, MatrixRequest, jsonable

router = APIRouter(prefix="/v1", tags=["matrix"], responses=AUTH,
                   dependencies=[Depends(require(Role.DISPATCHER, Role.INTEGRATOR))])


@router.post(
    "/matrix",
    operation_id="create_matrix",
    summary="Travel matrix between points on a road network",
    response_model=MatrixOut,
    responses={
        422: {"description": "Bad input, an unknown network, or a point too far from any road.", "content": {
            "application/json": {"example": {"detail": [{"loc": ["body", "points", 1], "msg":
                'point "v-1" is 2400 m from the nearest road (limit 500 m)', "type": "SnapError"}]}}}},
        503: {"description": "The road network cannot be loaded."},
    },
)
def create_matrix(request: MatrixRequest, networks: NetworksDep) -> MatrixOut:
    """Directed `[from][to]` durations (s) and distances (m); `null` where there is no path.

    A plain `def`: the Dijkstra runs in the thread pool, never in the event loop.
    """
    name = networks.resolve(request.network)
    ids = request.ids or [str(i) for i in range(len(request.points))]
    try:
        matrix = networks.travel_matrix(name, request.profile, list(request.points), ids)
    except ProblemError as error:
        if len(error.path) == 1 and error.path[0] in ids:
            raise ProblemError(str(error), path=("points", ids.index(str(error.path[0])))) from None
        raise
    return MatrixOut(
        network=name,
        profile=request.profile,
        ids=request.ids,
        durations_s=jsonable(matrix.durations_s),
        distances_m=jsonable(matrix.distances_m),
    )
