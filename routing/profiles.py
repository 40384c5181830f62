"""Travel profiles: which OSM ways a profile may use, and how fast it moves on them.

Two profiles, ``drive`` and ``walk``. The way filters mirror OSMnx's ``drive`` and ``walk``
Overpass filters (``osmnx._overpass._get_network_filter``), applied to edge attributes so that
every reader (PBF, OSM XML, GraphML, Overpass) ends up with the same kind of graph: OSMnx's
``graph_from_xml`` keeps every way, footways and untagged ones included.

Speeds: ``drive`` uses the ``maxspeed`` tag where it parses, else a default per highway type,
else :data:`FALLBACK_DRIVE_KPH`. A vehicle's own speed factor is the solver's business, not
ours. ``walk`` moves at :data:`WALK_KPH` everywhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

PROFILES = ("drive", "walk")

WALK_KPH = 5.0
"""Walking speed, also used for the leg from a point to its nearest road (km/h)."""

FALLBACK_DRIVE_KPH = 40.0
"""Speed of a drivable edge with neither a usable ``maxspeed`` nor a known highway type (km/h)."""

MPH_TO_KPH = 1.609344

DRIVE_KPH_BY_HIGHWAY: Mapping[str, float] = {
    # Typical free-flow speeds in Europe where no maxspeed is tagged (km/h). Conservative
    # in towns: sampling buses spend their day on residential streets.
    "motorway": 100.0,
    "motorway_link": 60.0,
    "trunk": 80.0,
    "trunk_link": 50.0,
    "primary": 60.0,
    "primary_link": 45.0,
    "secondary": 50.0,
    "secondary_link": 40.0,
    "tertiary": 45.0,
    "tertiary_link": 35.0,
    "unclassified": 40.0,
    "road": 40.0,
    "residential": 30.0,
    "living_street": 10.0,
    "service": 20.0,
    "busway": 40.0,
}

# Exact-value versions of OSMnx's regex filters (``!~`` is a substring match in Overpass; the
# only substring that matters is "motor", which the walk filter uses for motorway and its links).
_DRIVE_EXCLUDED_HIGHWAY = frozenset(
    [
        "abandoned", "bridleway", "bus_guideway", "construction", "corridor", "cycleway", "elevator",
        "escalator", "footway", "no", "path", "pedestrian", "planned", "platform", "proposed", "raceway",
        "razed", "rest_area", "service", "services", "steps", "track",
    ]
)
_DRIVE_EXCLUDED_SERVICE = frozenset(
    [
        "alley", "driveway", "emergency_access", "parking", "parking_aisle", "private",
    ]
)
_WALK_EXCLUDED_HIGHWAY = frozenset(
    [
        "abandoned", "bus_guideway", "construction", "cycleway", "motorway", "motorway_link", "motor", "no",
        "planned", "platform", "proposed", "raceway", "razed", "rest_area", "services",
    ]
)
_SIDEWALK_TAGS = ("sidewalk", "sidewalk:both", "sidewalk:left", "sidewalk:right")

EXTRA_WAY_TAGS = ("motor_vehicle", "motorcar", "foot", *_SIDEWALK_TAGS)
"""Way tags the filters read besides OSMnx's default ``useful_tags_way``."""


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: use one of {', '.join(PROFILES)}")
    return profile


def _values(value: Any) -> list[str]:
    """An attribute as a list of strings: simplified edges may carry a list of values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, list | tuple | set):
        return [str(v) for v in value]
    return [str(value)]


def edge_allowed(data: Mapping[str, Any], profile: str) -> bool:
    """Whether an edge with these attributes (OSM tags) belongs to ``profile``'s network.

    An edge without a ``highway`` tag is never allowed. A simplified edge that merged ways of
    several highway types is allowed when one of them is.
    """
    highways = _values(data.get("highway"))
    if not highways:
        return False

    def has(tag: str, banned: Iterable[str]) -> bool:
        return any(v in banned for v in _values(data.get(tag)))

    if has("area", {"yes"}) or has("access", {"private"}):
        return False
    if profile == "drive":
        if all(h in _DRIVE_EXCLUDED_HIGHWAY for h in highways):
            return False
        return not (
            has("motor_vehicle", {"no"}) or has("motorcar", {"no"}) or has("service", _DRIVE_EXCLUDED_SERVICE)
        )
    if all(h in _WALK_EXCLUDED_HIGHWAY for h in highways):
        return False
    if has("foot", {"no"}) or has("service", {"private"}):
        return False
    return not any(has(tag, {"separate"}) for tag in _SIDEWALK_TAGS)


_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mph|km/h|kmh|kph)?\s*$")


def parse_maxspeed_kph(value: str) -> float | None:
    """Speed (km/h) of one ``maxspeed`` value, or None when it is not a number ("CH:urban", "none").

    "50", "50 km/h" and "30 mph" parse; "30;50" (several limits) gives the lowest, the
    cautious choice for a timetable.
    """
    speeds = []
    for part in value.split(";"):
        if part.strip() == "walk":
            speeds.append(WALK_KPH)
            continue
        match = _NUMBER.match(part)
        if match:
            speed = float(match.group(1)) * (MPH_TO_KPH if match.group(2) == "mph" else 1.0)
            if speed > 0:
                speeds.append(speed)
    return min(speeds) if speeds else None


def _highway_kph(highways: list[str]) -> float:
    speeds = [DRIVE_KPH_BY_HIGHWAY[h] for h in highways if h in DRIVE_KPH_BY_HIGHWAY]
    return float(np.mean(speeds)) if speeds else FALLBACK_DRIVE_KPH


def edge_speeds_kph(edges: Iterable[Mapping[str, Any]], profile: str) -> NDArray[np.float64]:
    """Speed (km/h) of each edge for ``profile``, from its ``maxspeed`` and ``highway`` attributes.

    Parses each distinct tag value once, so the cost grows with the variety of tags, not with
    the number of edges.
    """
    edges = list(edges)
    if profile == "walk":
        return np.full(len(edges), WALK_KPH)
    cache: dict[tuple[tuple[str, ...], tuple[str, ...]], float] = {}
    speeds = np.empty(len(edges))
    for i, data in enumerate(edges):
        key = (tuple(_values(data.get("maxspeed"))), tuple(_values(data.get("highway"))))
        speed = cache.get(key)
        if speed is None:
            parsed = [s for s in map(parse_maxspeed_kph, key[0]) if s is not None]
            # A merged edge with several limits gets their mean, as OSMnx does.
            speed = float(np.mean(parsed)) if parsed else _highway_kph(list(key[1]))
            cache[key] = speed
        speeds[i] = speed
    return speeds
