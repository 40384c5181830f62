"""Travel matrices on the wire: caller-supplied ones in a plan request, and ``POST /v1/matrix``."""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from routing.model import TravelMatrix
from service.schemas.fields import MAX_MATRIX_DISTANCE_M, MAX_MATRIX_DURATION_S, Id, LonLat, Profile, _In


def _finite_or_none(value: float | None) -> float | None:
    if value is not None and (math.isnan(value) or value < 0):
        raise ValueError(f"matrix entries must be >= 0 (null: no path), got {value}")
    return value


def _bounded(limit: float, unit: str) -> AfterValidator:
    # A sentinel such as 1e9 or Infinity for "no road" would overflow the engines' int64 costs.
    def check(value: float | None) -> float | None:
        if value is not None and value > limit:
            raise ValueError(f"matrix entries must be at most {limit:.0f} {unit}, got {value:g} (null: no path)")
        return value

    return AfterValidator(check)


def _documented(limit: float) -> WithJsonSchema:
    # The bounds as the checks above apply them (their messages say more than a bare range).
    return WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0, "maximum": limit}, {"type": "null"}]})


MatrixEntry = Annotated[float | None, AfterValidator(_finite_or_none)]
DurationEntry = Annotated[MatrixEntry, _bounded(MAX_MATRIX_DURATION_S, "s"), _documented(MAX_MATRIX_DURATION_S)]
DistanceEntry = Annotated[MatrixEntry, _bounded(MAX_MATRIX_DISTANCE_M, "m"), _documented(MAX_MATRIX_DISTANCE_M)]


class MatrixIn(_In):
    """A square matrix per quantity, ``[from][to]``, over the sites: depots, visits, stops, labs."""

    durations_s: list[list[DurationEntry]]
    distances_m: list[list[DistanceEntry]]

    @model_validator(mode="after")
    def _square(self) -> MatrixIn:
        for name in ("durations_s", "distances_m"):
            rows: list[list[float | None]] = getattr(self, name)
            for i, row in enumerate(rows):
                if len(row) != len(rows):
                    raise ValueError(
                        f"{name} must be square: row {i} has {len(row)} entries, there are {len(rows)} rows"
                    )
        if len(self.durations_s) != len(self.distances_m):
            raise ValueError(
                f"durations_s ({len(self.durations_s)} rows) and distances_m "
                f"({len(self.distances_m)} rows) differ in size"
            )
        return self

    def to_travel_matrix(self) -> TravelMatrix:
        def array(rows: list[list[float | None]]) -> np.ndarray:
            return np.array([[math.inf if v is None else v for v in row] for row in rows], dtype=np.float64)

        n = len(self.durations_s)
        if n == 0:
            empty = np.zeros((0, 0))
            return TravelMatrix(empty, empty)
        return TravelMatrix(array(self.durations_s), array(self.distances_m))


class MatrixRequest(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "network": "helsinki",
                    "profile": "walk",
                    "points": [[24.9414, 60.1710], [24.9355, 60.1699]],
                    "ids": ["station", "v-1"],
                }
            ]
        }
    )

    network: str | None = Field(default=None, description="Default: the server's default network.")
    profile: Profile = "drive"
    points: list[LonLat] = Field(min_length=1)
    ids: list[Id] | None = Field(default=None, description="Names of the points, for error messages.")

    @model_validator(mode="after")
    def _ids_match(self) -> MatrixRequest:
        if self.ids is not None and len(self.ids) != len(self.points):
            raise ValueError(f"ids has {len(self.ids)} entries but there are {len(self.points)} points")
        return self


class MatrixOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "network": "helsinki",
                    "profile": "walk",
                    "ids": ["station", "v-1"],
                    "durations_s": [[0, 420], [431, 0]],
                    "distances_m": [[0, 583], [599, 0]],
                }
            ]
        }
    )

    network: str
    profile: str
    ids: list[str] | None = None
    durations_s: list[list[float | None]] = Field(description="[from][to]; null: no path.")
    distances_m: list[list[float | None]]

