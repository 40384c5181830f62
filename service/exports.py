"""Exports of a plan document: GeoJSON, per-vehicle CSV, GPX and a printable HTML stop list.

Pure functions over the typed *plan document* (:class:`service.schemas.PlanDocument`, built by
``service.schemas.plan_document``: ``summary``, ``routes[].steps[]``, ``unassigned``, ...). They
read nothing else, so the API, the command line and the demo export the same thing.

Conventions are the document's: ``[lon, lat]`` in degrees, seconds, metres. Optional step
fields (``people``, ``address``, ``notes``, ``contact``, ...) are ``None`` on start, break and
end steps.

Map data shown in an export is attributed "© OpenStreetMap contributors" (ODbL 1.0).
"""

from __future__ import annotations

import csv
import html
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from typing import Any

from service import schemas
from service.schemas import PlanDocument, RouteOut, StepOut

ATTRIBUTION = "© OpenStreetMap contributors"
OSM_COPYRIGHT_URL = "https://www.openstreetmap.org/copyright"
ODBL_URL = "https://opendatacommons.org/licenses/odbl/1-0/"
GPX_NS = "http://www.topografix.com/GPX/1/1"

PRIORITY_LABELS = {0: "routine", 1: "vulnerable", 2: "quarantine", 3: "urgent"}

Doc = PlanDocument
Step = StepOut


class UnknownVehicleError(LookupError):
    """The plan document has no route for the vehicle asked for."""


# --------------------------------------------------------------------------- helpers


def find_route(doc: Doc, vehicle_id: str) -> RouteOut:
    """The route of ``vehicle_id`` in the document; :class:`UnknownVehicleError` if none."""
    for route in doc.routes:
        if route.vehicle_id == vehicle_id:
            return route
    known = ", ".join(r.vehicle_id for r in doc.routes) or "none"
    raise UnknownVehicleError(f'no route for vehicle "{vehicle_id}" in this plan (vehicles: {known})')


TASK_KINDS = ("visit", "stop")
"""Steps that serve someone: a home visit, a bus stop."""


def used_vehicle_ids(doc: Doc) -> list[str]:
    """Ids of the vehicles whose route makes at least one visit or bus stop, in document order."""
    return [r.vehicle_id for r in doc.routes if any(s.kind in TASK_KINDS for s in r.steps)]


def clock(seconds: float | None) -> str:
    """``HH:MM`` from seconds since midnight, hours past 24 the next day (as the document's); empty for None."""
    return "" if seconds is None else schemas.clock(seconds)


def _time(step: Step | None, name: str) -> str:
    """The step's ``HH:MM`` field ``name`` (``arrival``, ``start`` or ``departure``); empty without a step."""
    return "" if step is None else str(getattr(step, name))


def _windows(step: Step) -> str:
    return "; ".join(f"{w.start}-{w.end}" for w in step.time_windows)


def priority_label(value: Any) -> str:
    """A priority as a word, whether the document holds it as a number or a name."""
    if value is None:
        return ""
    if isinstance(value, bool):  # bool is an int; never a priority
        return str(value)
    if isinstance(value, int):
        return PRIORITY_LABELS.get(value, str(value))
    return str(value).lower()


def _coords(step: Step) -> str:
    lon, lat = step.location
    return f"{float(lat):.6f}, {float(lon):.6f}"


def _place(step: Step) -> str:
    """The address when known, else ``lat, lon`` (the order phones and people read)."""
    return step.address or _coords(step)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _label(step: Step, seq: int) -> str:
    if step.kind in TASK_KINDS:
        return f"{seq:02d} {step.id}"
    return f"{step.kind} {step.id}".strip()


def _areas_served(step: Step) -> str:
    """A bus stop's demand areas, comma-separated ids."""
    return ", ".join(a.area_id for a in step.areas or [])


def _delivered(step: Step) -> str:
    """What a lab drop hands over, e.g. ``"132 tubes"``."""
    return ", ".join(f"{n} {dim}" for dim, n in sorted((step.delivered or {}).items()))


def _age(seconds: Any) -> str:
    """A sample age as ``"2 h 05"`` (hours and minutes); empty for None."""
    if seconds is None:
        return ""
    minutes = round(float(seconds) / 60)
    return f"{minutes // 60} h {minutes % 60:02d}"


def _details(step: Step) -> str:
    """What a bus crew needs beyond the address: the stay, tubes and areas; at a lab, the drop."""
    if step.kind == "stop":
        parts = [f"stay {_minutes(step.service_s if step.dwell_s is None else step.dwell_s)}"]
        if step.tubes is not None:
            parts.append(f"{step.tubes} tubes")
        if _areas_served(step):
            parts.append(f"areas {_areas_served(step)}")
        return " · ".join(parts)
    if step.kind == "lab":
        parts = [f"hand over {_delivered(step) or 'nothing'}"]
        if step.oldest_sample_age_s is not None:
            parts.append(f"oldest sample {_age(step.oldest_sample_age_s)}")
        return " · ".join(parts)
    return ""


def _visit_numbers(steps: Sequence[Step]) -> list[int]:
    """1-based position of each visit or bus stop among the route's; 0 for other steps."""
    numbers, n = [], 0
    for step in steps:
        if step.kind in TASK_KINDS:
            n += 1
            numbers.append(n)
        else:
            numbers.append(0)
    return numbers


def _line_coordinates(route: RouteOut) -> tuple[list[list[float]], str]:
    """The route's road geometry, or straight segments between its steps when it has none."""
    if route.geometry is not None and route.geometry.coordinates:
        return [list(map(float, c)) for c in route.geometry.coordinates], "roads"
    points = [list(map(float, s.location)) for s in route.steps]
    deduped = [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]
    return deduped, "straight"


# --------------------------------------------------------------------------- GeoJSON

_ROUTE_PROPERTIES = ("vehicle_id", "kind", "profile", "distance_m", "duration_s", "travel_s",
                     "wait_s", "service_s", "cost")
_STOP_PROPERTIES = ("id", "arrival", "arrival_s", "wait_s", "start", "start_s", "service_s",
                    "departure", "departure_s", "load", "distance_m", "travel_s", "people",
                    "priority", "address", "notes", "dwell_s", "tubes", "delivered", "oldest_sample_age_s")


def plan_geojson(doc: Doc) -> dict[str, Any]:
    """The plan as a GeoJSON FeatureCollection (RFC 7946, ``[lon, lat]``).

    One LineString per used route, along the roads (``properties.geometry_source`` is ``"roads"``,
    or ``"straight"`` when the document had no road geometry for it); then per demand area an
    ``"area"`` feature (its polygon, else its point: population, ``covered``, ``stop_id``,
    ``walk_m``, or the ``reason`` it is uncovered) and, when covered, a ``"catchment"``
    LineString from the area to its bus stop (with ``walk_m``); then one Point per step of the
    routes (``feature`` ``"stop"``, with ``sequence``, the step's kind as ``step`` and schedule;
    a bus stop adds ``people``, ``dwell_s``, ``tubes`` and ``areas_served``, a lab drop
    ``delivered`` and ``oldest_sample_age_s``); then a Point per unassigned visit or bus stop
    whose entry carries a ``location``. Contact details are left out: a map layer travels
    further than a team's stop list.
    """
    features: list[dict[str, Any]] = []
    stops: list[dict[str, Any]] = []
    used = set(used_vehicle_ids(doc))
    for route in doc.routes:
        if route.vehicle_id not in used:
            continue
        steps = route.steps
        coordinates, source = _line_coordinates(route)
        props = {name: getattr(route, name) for name in _ROUTE_PROPERTIES}
        props |= {
            "feature": "route",
            "geometry_source": source,
            "visits": sum(1 for s in steps if s.kind == "visit"),
            "stops": sum(1 for s in steps if s.kind == "stop"),
            "lab_drops": sum(1 for s in steps if s.kind == "lab"),
            "people": sum(s.people or 0 for s in steps if s.kind in TASK_KINDS),
            "start": _time(steps[0], "departure") if steps else "",
            "end": _time(steps[-1], "arrival") if steps else "",
        }
        if len(coordinates) >= 2:
            features.append(
                {"type": "Feature", "geometry": {"type": "LineString", "coordinates": coordinates},
                 "properties": props}
            )
        for sequence, (step, number) in enumerate(zip(steps, _visit_numbers(steps), strict=True)):
            stop = step.model_dump(mode="json", include=set(_STOP_PROPERTIES))
            stop |= {
                "feature": "stop",
                "vehicle_id": route.vehicle_id,
                "sequence": sequence,
                "visit_number": number or None,
                "step": step.kind,
                "priority": priority_label(step.priority) or None,
                "time_windows": _windows(step) or None,
            }
            if step.kind == "stop":
                stop["areas_served"] = _areas_served(step)
            elif step.kind != "lab":
                for name in ("dwell_s", "tubes", "delivered", "oldest_sample_age_s"):
                    stop.pop(name)
            stops.append(
                {"type": "Feature",
                 "geometry": {"type": "Point", "coordinates": [float(v) for v in step.location]},
                 "properties": stop}
            )
    for entry in doc.unassigned:
        if entry.location is None:
            continue
        props = {"feature": "unassigned", "id": entry.visit_id, "reason": entry.reason, "detail": entry.detail}
        stops.append(
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(v) for v in entry.location]},
             "properties": props}
        )
    return {
        "type": "FeatureCollection",
        "features": features + _area_features(doc) + stops,
        "properties": {"summary": dict(doc.summary), "attribution": ATTRIBUTION},
    }


def _area_features(doc: Doc) -> list[dict[str, Any]]:
    """Per demand area: its outline (or point) with its fate, and a catchment line to its stop."""
    out: list[dict[str, Any]] = []
    for entry in doc.coverage:
        location, polygon, stop_location = entry.location, entry.polygon, entry.stop_location
        props = {"feature": "area", "id": entry.area_id, "population": entry.population,
                 "covered": entry.covered, "stop_id": entry.stop_id,
                 "walk_m": entry.walk_m, "reason": entry.reason, "detail": entry.detail or None}
        geometry: dict[str, Any] | None = None
        if polygon and len(polygon) >= 3:
            ring = [[float(v) for v in p] for p in polygon]
            if ring[0] != ring[-1]:
                ring.append(ring[0])
            geometry = {"type": "Polygon", "coordinates": [ring]}
        elif location:
            geometry = {"type": "Point", "coordinates": [float(v) for v in location]}
        if geometry is not None:
            out.append({"type": "Feature", "geometry": geometry, "properties": props})
        if entry.covered and location and stop_location:
            line = [[float(v) for v in location], [float(v) for v in stop_location]]
            out.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": line},
                        "properties": {"feature": "catchment", "area_id": entry.area_id,
                                       "stop_id": entry.stop_id, "population": entry.population,
                                       "walk_m": entry.walk_m}})
    return out


# --------------------------------------------------------------------------- CSV

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PHONE_LIKE = re.compile(r"[+-]?[0-9 ()./-]*")


def _cell(value: Any) -> Any:
    """Neutralise text a spreadsheet would run as a formula (CSV injection), keep phone numbers."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    if value[0] in "+-" and _PHONE_LIKE.fullmatch(value):
        return value
    return "'" + value


def _dimensions(steps: Iterable[Step]) -> list[str]:
    return sorted({dim for step in steps for dim in step.load})


def route_csv(doc: Doc, vehicle_id: str) -> str:
    """One vehicle's stop list as CSV (RFC 4180, header row, one row per step in order).

    Times are ``HH:MM``; ``wait_min`` and ``service_min`` minutes; ``distance_m`` cumulative;
    ``load_<dim>`` what the vehicle has used after the step. ``visit_no`` numbers the visits and
    bus stops. A bus stop fills ``dwell_min``, ``tubes`` and ``areas`` (the demand areas walking
    to it); a lab drop ``delivered`` and ``oldest_sample_min``. Text that a spreadsheet would
    read as a formula is prefixed with ``'``.
    """
    steps = find_route(doc, vehicle_id).steps
    dims = _dimensions(steps)
    header = ["seq", "visit_no", "kind", "id", "arrival", "start", "departure", "wait_min",
              "service_min", "time_windows", "people", "priority", "address", "lon", "lat",
              "distance_m", *(f"load_{d}" for d in dims), "dwell_min", "tubes", "areas", "delivered",
              "oldest_sample_min", "notes", "contact"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for seq, (step, number) in enumerate(zip(steps, _visit_numbers(steps), strict=True)):
        lon, lat = step.location
        row = [
            seq, number or "", step.kind, step.id,
            _time(step, "arrival"), _time(step, "start"), _time(step, "departure"),
            round(step.wait_s / 60), round(step.service_s / 60),
            _windows(step), _text(step.people), priority_label(step.priority),
            _text(step.address), f"{lon:.6f}", f"{lat:.6f}",
            round(step.distance_m),
            *(step.load.get(d, "") for d in dims),
            "" if step.dwell_s is None else round(step.dwell_s / 60),
            _text(step.tubes), _areas_served(step), _delivered(step),
            "" if step.oldest_sample_age_s is None else round(step.oldest_sample_age_s / 60),
            _text(step.notes), _text(step.contact),
        ]
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


# --------------------------------------------------------------------------- GPX


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{GPX_NS}}}{tag}", attrs)
    if text is not None:
        element.text = text
    return element


def _describe(step: Step) -> str:
    parts = [_time(step, "arrival")]
    if step.kind == "visit":
        if step.people is not None:
            parts.append(f"{step.people} people")
        if step.priority is not None:
            parts.append(priority_label(step.priority))
        if _windows(step):
            parts.append(f"window {_windows(step)}")
    elif step.kind == "stop":
        if step.people is not None:
            parts.append(f"{step.people} people")
        parts.append(_details(step))
        if _windows(step):
            parts.append(f"window {_windows(step)}")
    elif step.kind == "lab":
        parts.append(_details(step))
    if step.address:
        parts.append(step.address)
    if step.notes:
        parts.append(step.notes)
    return " · ".join(p for p in parts if p)


def route_gpx(doc: Doc, vehicle_id: str) -> str:
    """One vehicle's day as GPX 1.1, for phone navigation apps.

    Holds a waypoint per step (name ``"03 v-17"``: visit or bus stop number and id; description
    with time, people, priority, address, notes; at a bus stop the stay, tubes and areas, at a
    lab what is handed over and the oldest sample's age), a ``<rte>`` through the steps in order (what navigation
    apps follow) and a ``<trk>`` along the roads. The plan has no calendar date, so times are
    written into the descriptions, not as GPX timestamps.
    """
    route = find_route(doc, vehicle_id)
    steps = route.steps
    ET.register_namespace("", GPX_NS)
    root = ET.Element(f"{{{GPX_NS}}}gpx", {"version": "1.1", "creator": "Doorstep"})
    metadata = _sub(root, "metadata")
    _sub(metadata, "name", f"Doorstep route {vehicle_id}")
    _sub(metadata, "desc", f"{ATTRIBUTION}; map data under the Open Database Licence ({OSM_COPYRIGHT_URL})")
    copyright_ = _sub(metadata, "copyright", author="OpenStreetMap contributors")
    _sub(copyright_, "license", ODBL_URL)
    numbers = _visit_numbers(steps)
    for step, number in zip(steps, numbers, strict=True):
        lon, lat = step.location
        wpt = _sub(root, "wpt", lat=f"{float(lat):.7f}", lon=f"{float(lon):.7f}")
        _sub(wpt, "name", _label(step, number))
        if step.notes:
            _sub(wpt, "cmt", step.notes)
        _sub(wpt, "desc", _describe(step))
        _sub(wpt, "type", step.kind)
    rte = _sub(root, "rte")
    _sub(rte, "name", str(vehicle_id))
    for step, number in zip(steps, numbers, strict=True):
        lon, lat = step.location
        point = _sub(rte, "rtept", lat=f"{float(lat):.7f}", lon=f"{float(lon):.7f}")
        _sub(point, "name", _label(step, number))
    coordinates, _ = _line_coordinates(route)
    if len(coordinates) >= 2:
        trk = _sub(root, "trk")
        _sub(trk, "name", f"{vehicle_id} (roads)")
        segment = _sub(trk, "trkseg")
        for lon, lat in coordinates:
            _sub(segment, "trkpt", lat=f"{lat:.7f}", lon=f"{lon:.7f}")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# --------------------------------------------------------------------------- HTML

_CSS = """
:root { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #111; }
body { margin: 1.5rem; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
.meta { margin: 0 0 1rem; color: #333; }
.meta span { margin-right: 1.2rem; white-space: nowrap; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
th, td { border: 1px solid #999; padding: .3rem .4rem; text-align: left; vertical-align: top; }
th { background: #eee; }
td.num { text-align: right; white-space: nowrap; }
td.time { white-space: nowrap; }
tr.depot td, tr.break td { background: #f6f6f6; color: #444; }
tr.lab td { background: #eef4fb; }
tr.p-quarantine td.prio { font-weight: bold; }
tr.p-urgent td.prio { font-weight: bold; text-decoration: underline; }
.box { display: inline-block; width: .9em; height: .9em; border: 1px solid #333; margin-right: .25em; }
.done { white-space: nowrap; font-size: .8rem; }
footer { margin-top: 1rem; font-size: .8rem; color: #555; }
@media print {
  body { margin: 0; }
  @page { size: A4 landscape; margin: 12mm; }
  a { color: inherit; text-decoration: none; }
  thead { display: table-header-group; }
  tr { page-break-inside: avoid; break-inside: avoid; }
}
"""


def _minutes(seconds: Any) -> str:
    return f"{round(float(seconds or 0) / 60)} min"


def route_html(doc: Doc, vehicle_id: str) -> str:
    """One vehicle's printable stop list: a self-contained HTML page (inline CSS, print layout).

    A row per step in order: number, arrival and service times, the visit's window, address (or
    coordinates), people, priority, notes and contact, and boxes to tick (done / not home /
    refused; at a bus stop done / cancelled). A bus stop's notes start with the stay, tubes and
    areas served; a lab drop's with what is handed over and the oldest sample's age. Every piece
    of text from the document is HTML-escaped.
    """
    route = find_route(doc, vehicle_id)
    steps = route.steps
    esc = html.escape
    visits = [s for s in steps if s.kind == "visit"]
    bus_stops = [s for s in steps if s.kind == "stop"]
    drops = [s for s in steps if s.kind == "lab"]
    people = sum(s.people or 0 for s in [*visits, *bus_stops])
    first, last = (steps[0], steps[-1]) if steps else (None, None)
    meta = [
        ("Kind", route.kind),
        ("Travel", route.profile),
        ("Shift", f"{_time(first, 'departure')}–{_time(last, 'arrival')}"),
        *([("Visits", str(len(visits)))] if visits or not bus_stops else []),
        *([("Bus stops", str(len(bus_stops)))] if bus_stops else []),
        *([("Lab drops", str(len(drops)))] if drops else []),
        ("People", str(people)),
        ("Distance", f"{route.distance_m / 1000:.1f} km"),
    ]
    rows = []
    for step, number in zip(steps, _visit_numbers(steps), strict=True):
        kind = step.kind
        label = priority_label(step.priority)
        css = {"start": "depot", "end": "depot", "break": "break", "stop": "bus-stop", "lab": "lab"}.get(
            kind, f"visit p-{label}"
        )
        if kind in TASK_KINDS:
            when = f"{_time(step, 'start')}–{_time(step, 'departure')}"
            if step.wait_s >= 60:
                when += f" (arrive {_time(step, 'arrival')})"
            outcomes = ("done", "not home", "refused") if kind == "visit" else ("done", "cancelled")
            ticks = "".join(f'<span class="box"></span>{w}<br>' for w in outcomes)
        elif kind == "lab":
            when = f"{_time(step, 'arrival')}–{_time(step, 'departure')}"
            ticks = '<span class="box"></span>handed over'
        elif kind == "start":
            when, ticks = _time(step, "departure"), ""
        elif kind == "break":
            when, ticks = f"{_time(step, 'start')}–{_time(step, 'departure')}", ""
        else:
            when, ticks = _time(step, "arrival"), ""
        what = esc(step.id) if kind in TASK_KINDS else esc(f"{kind} · {step.id}")
        notes = " — ".join(t for t in (_details(step), _text(step.notes)) if t)
        cells = [
            f'<td class="num">{number or ""}</td>',
            f'<td class="time">{esc(when)}</td>',
            f'<td class="time">{esc(_windows(step))}</td>',
            f"<td>{what}</td>",
            f"<td>{esc(_place(step))}</td>",
            f'<td class="num">{esc(_text(step.people))}</td>',
            f'<td class="prio">{esc(label)}</td>',
            f"<td>{esc(notes)}</td>",
            f"<td>{esc(_text(step.contact))}</td>",
            f'<td class="done">{ticks}</td>',
        ]
        rows.append(f'<tr class="{esc(css)}">{"".join(cells)}</tr>')
    title = f"Stop list · {vehicle_id}"
    header = "".join(
        f"<th>{h}</th>"
        for h in ("#", "Time", "Window", "Visit / stop", "Address / position", "People", "Priority",
                  "Notes", "Contact", "Outcome")
    )
    meta_html = "".join(f"<span><b>{esc(k)}:</b> {esc(v)}</span>" for k, v in meta)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{esc(title)}</h1>\n"
        f'<p class="meta">{meta_html}</p>\n'
        f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>\n"
        f'<footer>Planned by Doorstep. Map data <a href="{OSM_COPYRIGHT_URL}">{esc(ATTRIBUTION)}</a>, '
        "Open Database Licence.</footer>\n</body>\n</html>\n"
    )
