"""Field types shared by the request models: ids, ``[lon, lat]`` locations, priorities, profiles."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from routing.model import Priority

Profile = Literal["drive", "walk"]

# -- bounds the engines can take --------------------------------------------------------------------
# Both engines work in int64: costs are scaled by 100 (routing.solver.scaling.COST_SCALE) and
# summed over every arc and every visit left out, priority factor cubed for the urgent ones. These
# bounds keep a day of a few thousand visits far below 2**63 (about 9.2e18), so a number that
# would overflow an engine is a 422 naming its field, not a job that fails later. They sit far
# above any real day: a crew's hour costs 3,600 at the default 1 per second.
MAX_AMOUNT = 1_000_000_000
"""Demands, capacities, penalties and fixed costs (whole units)."""
MAX_COST_PER_UNIT = 10_000.0
"""Costs per second or per metre."""
MAX_PRIORITY_FACTOR = 10.0
"""An urgent visit left out costs unassigned_penalty times this cubed."""
MAX_MATRIX_DURATION_S = 10_000_000
"""About 116 days: longer than any shift; no path is ``null``. Below the engines' no-path time."""
MAX_MATRIX_DISTANCE_M = 100_000_000
"""Twice round the Earth."""

Amount = Annotated[int, Field(ge=0, le=MAX_AMOUNT)]
"""A demand, capacity, penalty or fixed cost the engines can add up (see ``MAX_AMOUNT``)."""
Engine = Literal["auto", "ortools", "pyvrp", "vroom"]

Id = Annotated[
    str,
    # The pattern documents what stripping implies: blanks alone are no id.
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=r"\S"),
    Field(description="Caller-owned id, unique among objects of its kind."),
]


class _In(BaseModel):
    # The base of every request model: unknown fields are refused, strings are stripped.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# -- locations ---------------------------------------------------------------------------------------


def _check_lon_lat(value: tuple[float, float]) -> tuple[float, float]:
    lon, lat = value
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ValueError(f"location must be finite [lon, lat], got [{lon}, {lat}]")
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude must be within [-180, 180], got {lon} (locations are [lon, lat])")
    if not -90.0 <= lat <= 90.0:
        raise ValueError(
            f"latitude must be within [-90, 90], got {lat} (locations are [lon, lat]: are they swapped?)"
        )
    return (lon, lat)


LonLat = Annotated[
    tuple[float, float],
    AfterValidator(_check_lon_lat),
    # The bounds are documented as the check applies them (its messages say more than a bare range).
    WithJsonSchema({
        "type": "array", "minItems": 2, "maxItems": 2,
        "prefixItems": [{"type": "number", "minimum": -180, "maximum": 180},
                        {"type": "number", "minimum": -90, "maximum": 90}],
    }),
    Field(description="[lon, lat] in WGS84 degrees.", examples=[[24.9384, 60.1699]]),
]


# -- priorities --------------------------------------------------------------------------------------


def _parse_priority(value: Any) -> Priority:
    if isinstance(value, Priority):
        return value
    if isinstance(value, str) and value.strip().upper() in Priority.__members__:
        return Priority[value.strip().upper()]
    if isinstance(value, float) and value.is_integer():  # 2.0 is the integer 2 to JSON Schema
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value in {p.value for p in Priority}:
        return Priority(value)
    names = ", ".join(p.name.lower() for p in Priority)
    raise ValueError(f"priority must be one of {names} (or 0-3), got {value!r}")


PriorityIn = Annotated[
    Priority,
    BeforeValidator(_parse_priority),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "enum": [p.name.lower() for p in Priority]},
                {"type": "integer", "minimum": 0, "maximum": 3},
            ],
            "description": "routine (0), vulnerable (1), quarantine (2), urgent (3); higher is served first.",
            "default": "routine",
        }
    ),
]


District = Annotated[
    str | None,
    Field(
        min_length=1, max_length=100,
        description="A city round (`POST /v1/rounds`) solves each district apart; none: the district of the "
        "nearest depot (vehicles: of their start depot). `POST /v1/plans` ignores it.",
    ),
]
