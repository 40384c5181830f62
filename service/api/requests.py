"""``/v1/requests``: build a plan request from the CSV files a dispatcher keeps (the format of
``data/``), checked as ``POST /v1/plans`` checks it, every bad cell named by file, line and column,
before anything is solved."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field

from routing.errors import ProblemError
from service.api.deps import AUTH, NetworksDep, ReaderDep, SettingsDep
from service.csv_request import CsvError, csv_cell, read_csvs
from service.planning import check_request
from service.schemas import PlanRequest
from service.schemas.fields import _In
from service.schemas.problem_in import ObjectiveIn, OptionsIn

router = APIRouter(prefix="/v1/requests", tags=["plans"])

MAX_CSV_CHARS = 5_000_000


class CsvRequestIn(_In):
    """The three files' texts, and what a request holds beyond them."""

    visits_csv: str = Field(max_length=MAX_CSV_CHARS, description="`id,lon,lat,people,setup_s,...` (data/README.md)")
    vehicles_csv: str = Field(max_length=MAX_CSV_CHARS, description="`id,kind,profile,start_depot,...`")
    depots_csv: str = Field(max_length=MAX_CSV_CHARS, description="`id,lon,lat`")
    name: str | None = Field(default=None, max_length=200)
    network: str | None = Field(default=None, max_length=200, description="Default: the server's default network.")
    options: OptionsIn | None = None
    objective: ObjectiveIn | None = None


@router.post(
    "/from-csv",
    operation_id="request_from_csv",
    summary="A plan request from visits, vehicles and depots CSV files",
    responses={
        200: {"description": "The request (the body of `POST /v1/plans`), checked."},
        422: {"description": "Every bad cell: `loc` is `[body, <file>_csv, <line>, <column>]`, the header "
              "being line 1.", "content": {"application/json": {"example": {"detail": [
                  {"loc": ["body", "visits_csv", 5, "lon"], "msg": '"24,94" is not a number', "type": "csv_error",
                   "file": "visits.csv", "line": 5, "column": "lon"}]}}}},
        **AUTH,
        503: {"description": "The road network cannot be loaded."},
    },
)
def request_from_csv(body: CsvRequestIn, settings: SettingsDep, networks: NetworksDep,
                     principal: ReaderDep) -> Any:
    """Read the files into a request and check it as `POST /v1/plans` would (references, windows,
    locations inside the network and near a road); nothing is stored or solved."""
    extra: dict[str, Any] = {"name": body.name, "network": body.network}
    for key in ("options", "objective"):
        value = getattr(body, key)
        if value is not None:
            extra[key] = value.model_dump(mode="json", exclude_unset=True)
    try:
        request, lines = read_csvs(body.visits_csv, body.vehicles_csv, body.depots_csv, **extra)
        try:
            check_request(PlanRequest.model_validate(request), settings, networks)
        except ProblemError as error:
            cell = csv_cell(list(error.path), str(error), lines)
            if cell is None:
                raise
            raise CsvError([cell]) from None
    except CsvError as error:
        return JSONResponse(status_code=422, content={"detail": [e.to_dict() for e in error.errors]})
    return request
