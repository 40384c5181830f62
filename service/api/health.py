"""``/healthz`` (the process answers) and ``/readyz`` (database, networks and workers are up)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.api.deps import NetworksDep, RunnerDep, StoreDep
from service.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz", summary="Liveness", response_model=HealthOut)
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="Readiness: database, road networks, workers",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "Not ready; `checks` says what is not."}},
)
def readyz(store: StoreDep, networks: NetworksDep, runner: RunnerDep) -> JSONResponse:
    checks: dict[str, str] = {}
    ready = True
    try:
        store.ping()
        checks["database"] = "ok"
    except Exception as error:
        checks["database"] = f"unavailable: {type(error).__name__}"
        ready = False
    for key, message in networks.errors.items():
        checks[f"network {key}"] = f"failed: {message}"
        ready = False
    checks.update(runner.health())
    out = HealthOut(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(out.model_dump(), status_code=200 if ready else 503)
