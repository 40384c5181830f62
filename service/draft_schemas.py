"""Wire format of draft versions: publish, discard, a hand edit saved as a version (``service.drafts``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.schemas.fields import Id, _In


class PublishIn(_In):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"accept_violations": False}]})

    accept_violations: bool = Field(
        default=False, description="Send a version that breaks rules (a late door...) to the crews anyway.")


class HandEditIn(_In):
    """Routes in a fixed order, as for ``POST /v1/evaluate``, saved as a draft version."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [
        {"routes": {"team-1": ["v-2", "lunch", "v-1"], "team-2": ["v-3"]}},
    ]})

    routes: dict[Id, list[Id]] = Field(description="Vehicle id -> visit, stop and break ids in order; a vehicle "
                                       "left out keeps no route, a visit in no route is left out (with its reason).")


class DraftOut(BaseModel):
    id: str
    version: int
    parent_id: str | None
    status: str
    publication: str = Field(description="`draft`, `published` or `discarded`.")
    url: str
    feasible: bool | None = Field(default=None, description="Whether it breaks no rule (when it has routes).")
    violations: list[dict[str, Any]] = Field(default_factory=list, description="Every rule it breaks.")
    missing: list[str] = Field(default_factory=list, description="Visits and stops in no route.")
