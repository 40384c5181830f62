"""Times on the wire: seconds from midnight or ``"HH:MM[:SS]"`` in, both out.

One clock format out: ``"HH:MM"`` with hours past 24 on the next days (``"29:00"``), from
:func:`routing.model.format_clock`. In, ``"05:00+1d"`` (the day count that error messages used
to print) is accepted too, so text copied from an older message still reads back.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from routing.model import HORIZON_S, format_clock
from service.schemas.fields import _In

# The documented pattern is the check (ECMA-262 syntax, as JSON Schema has it; ASCII here so
# nothing passes that the pattern refuses): up to the 7-day horizon, 168:00, with hours past 24
# ("29:00"), or hours 0-23 and a day count ("05:00+1d"); blanks around are allowed.
_MM_SS = r":[0-5]\d(:[0-5]\d)?"
CLOCK_PATTERN = (
    rf"^\s*((0?\d{{1,2}}|1[0-5]\d|16[0-7]){_MM_SS}|168:00(:00)?"
    rf"|([01]?\d|2[0-3]){_MM_SS}\+[1-6]d|0?0:00(:00)?\+7d)\s*$"
)
_CLOCK_RE = re.compile(CLOCK_PATTERN, re.ASCII)
_PARTS_RE = re.compile(r"(\d+):(\d\d)(?::(\d\d))?(?:\+(\d)d)?", re.ASCII)


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
        parts = _PARTS_RE.search(value)
        assert parts is not None  # the pattern matched
        hours, minutes, secs, days = parts.groups()
        seconds = (int(days or 0) * 24 + int(hours)) * 3600 + int(minutes) * 60 + int(secs or 0)
    else:
        raise ValueError(
            f'a time must be whole seconds from midnight or "HH:MM" / "HH:MM:SS", got {value!r}'
        )
    if not 0 <= seconds <= HORIZON_S:
        raise ValueError(
            f"a time must lie between 00:00 and {clock(HORIZON_S)} (0 and {HORIZON_S} s), got {seconds} s"
        )
    return seconds


clock = format_clock
"""``"HH:MM"`` for seconds from midnight; hours pass 24 the next day (``"29:00"``)."""


TimeOfDay = Annotated[
    int,
    BeforeValidator(parse_time),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": HORIZON_S},
                {"type": "string", "pattern": CLOCK_PATTERN},
            ],
            "description": 'Seconds from midnight, or "HH:MM" / "HH:MM:SS": hours pass 24 on the next days '
            '("29:00" is 05:00 the next day), as every time in the output is written. "05:00+1d" is read too. '
            'At most 168:00 (7 days).',
            "examples": ["08:00", 28800, "29:00"],
        }
    ),
]


class TimeWindowIn(_In):
    """An inclusive window ``[start, end]``."""

    start: TimeOfDay
    end: TimeOfDay
