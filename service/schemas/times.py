"""Times on the wire: seconds from midnight or ``"HH:MM[:SS]"`` in, both out (hours may pass 24)."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from routing.model import HORIZON_S
from service.schemas.fields import _In

_CLOCK_RE = re.compile(r"^\s*(\d{1,2}):([0-5]\d)(?::([0-5]\d))?\s*$")


def parse_time(value: Any) -> int:
    """Seconds from midnight from an integer or an ``"HH:MM[:SS]"`` string (hours may pass 24)."""
    if isinstance(value, bool):
        raise ValueError(f"a time must be seconds or an HH:MM string, got {value!r}")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, float) and value.is_integer():
        seconds = int(value)
    elif isinstance(value, str):
        match = _CLOCK_RE.match(value)
        if match is None:
            raise ValueError(
                f'a time must be whole seconds from midnight or "HH:MM" / "HH:MM:SS", got "{value}"'
            )
        hours, minutes, secs = match.groups()
        seconds = int(hours) * 3600 + int(minutes) * 60 + int(secs or 0)
    else:
        raise ValueError(
            f'a time must be whole seconds from midnight or "HH:MM" / "HH:MM:SS", got {value!r}'
        )
    if not 0 <= seconds <= HORIZON_S:
        raise ValueError(
            f"a time must lie between 00:00 and {clock(HORIZON_S)} (0 and {HORIZON_S} s), got {seconds} s"
        )
    return seconds


def clock(seconds: float) -> str:
    """``"HH:MM"`` for seconds from midnight; hours pass 24 the next day (``"29:00"``)."""
    total = math.floor(seconds)
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}"


TimeOfDay = Annotated[
    int,
    BeforeValidator(parse_time),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": HORIZON_S},
                {"type": "string", "pattern": r"^\d{1,2}:[0-5]\d(:[0-5]\d)?$"},
            ],
            "description": 'Seconds from midnight, or "HH:MM" / "HH:MM:SS" (hours may pass 24).',
            "examples": ["08:00", 28800, "29:00"],
        }
    ),
]


class TimeWindowIn(_In):
    """An inclusive window ``[start, end]``."""

    start: TimeOfDay
    end: TimeOfDay
