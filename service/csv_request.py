"""A plan request as the three CSV files a dispatcher keeps (``visits.csv``, ``vehicles.csv``,
``depots.csv``, the format of ``data/``) and back: :func:`request_csvs` and its inverse,
:func:`request_from_csvs`, side by side.

A CSV row holds one time window and one break; ``skills`` are ``;``-separated; times ``HH:MM``;
coordinates WGS84 degrees, longitude first. A visit's ``demand`` is not a column: it is the swab
kits (one per person) and tubes (one per person for quarantined and urgent households, else one
per 10 pooled) that ``data/README.md`` describes.

Every bad cell is reported at once as a :class:`CsvError` naming the file, the line (the header is
line 1) and the column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from routing.model import swab_tubes

VISIT_COLUMNS = ("id", "lon", "lat", "people", "setup_s", "per_person_s", "window_start", "window_end",
                 "priority", "skills", "notes")
VEHICLE_COLUMNS = ("id", "kind", "profile", "start_depot", "end_depot", "shift_start", "shift_end",
                   "break_start", "break_end", "break_duration_s", "capacity_kits", "capacity_tubes", "skills")
DEPOT_COLUMNS = ("id", "lon", "lat")
FILES = {"visits": VISIT_COLUMNS, "vehicles": VEHICLE_COLUMNS, "depots": DEPOT_COLUMNS}
UNPOOLED = ("quarantine", "urgent")
"""Priorities whose households are swabbed one tube per person (data/README.md)."""


@dataclass(frozen=True)
class CsvCellError:
    """One bad cell (or row, when ``column`` is None) of ``file`` (``visits``, ``vehicles``, ``depots``)."""

    file: str
    line: int
    column: str | None
    msg: str

    def to_dict(self) -> dict[str, Any]:
        return {"loc": ["body", f"{self.file}_csv", self.line, *([self.column] if self.column else [])],
                "msg": self.msg, "type": "csv_error", "file": f"{self.file}.csv", "line": self.line,
                "column": self.column}


class CsvError(ValueError):
    """Bad CSV input: every error found, each naming its file, line and column."""

    def __init__(self, errors: Sequence[CsvCellError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(f"{e.file}.csv line {e.line} {e.column or ''}: {e.msg}" for e in self.errors))


# -- request -> CSV -------------------------------------------------------------------------------------


def _csv(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def request_csvs(request: Mapping[str, Any]) -> dict[str, str]:
    """A request as the CSV files a dispatcher uploads: ``visits.csv``, ``vehicles.csv``, ``depots.csv``.

    One time window and one break at most per row; ``skills`` are ``;``-separated.
    """
    visits = []
    for v in request["visits"]:
        if len(v["time_windows"]) > 1:
            raise ValueError(f'visit "{v["id"]}" has {len(v["time_windows"])} time windows; a CSV row holds one')
        window = v["time_windows"][0] if v["time_windows"] else {"start": "", "end": ""}
        visits.append({
            "id": v["id"], "lon": v["location"][0], "lat": v["location"][1], "people": v["people"],
            "setup_s": v["setup_s"], "per_person_s": v["per_person_s"], "window_start": window["start"],
            "window_end": window["end"], "priority": v["priority"], "skills": ";".join(v["skills"]),
            "notes": v.get("notes") or "",
        })
    vehicles = []
    for v in request["vehicles"]:
        if len(v["breaks"]) > 1:
            raise ValueError(f'vehicle "{v["id"]}" has {len(v["breaks"])} breaks; a CSV row holds one')
        brk = v["breaks"][0] if v["breaks"] else {"start": "", "end": "", "duration_s": ""}
        vehicles.append({
            "id": v["id"], "kind": v["kind"], "profile": v["profile"], "start_depot": v["start_depot"],
            "end_depot": v["end_depot"] or "", "shift_start": v["shift"]["start"], "shift_end": v["shift"]["end"],
            "break_start": brk["start"], "break_end": brk["end"], "break_duration_s": brk["duration_s"],
            "capacity_kits": v["capacity"].get("kits", ""), "capacity_tubes": v["capacity"].get("tubes", ""),
            "skills": ";".join(v["skills"]),
        })
    depots = [{"id": d["id"], "lon": d["location"][0], "lat": d["location"][1]} for d in request["depots"]]
    return {
        "visits.csv": _csv(VISIT_COLUMNS, visits),
        "vehicles.csv": _csv(VEHICLE_COLUMNS, vehicles),
        "depots.csv": _csv(DEPOT_COLUMNS, depots),
    }


# -- CSV -> request -------------------------------------------------------------------------------------


class _Rows:
    """Reads one file's rows, keeping every bad cell instead of stopping at the first."""

    def __init__(self, file: str, text: str, errors: list[CsvCellError]) -> None:
        self.file = file
        self.errors = errors
        self.rows: list[tuple[int, dict[str, str]]] = []
        # newline="": the csv module reads line ends itself (a bare \r, an old Mac's, included).
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
        try:
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in FILES[file] if c not in header]
            required = ("id", "lon", "lat") if file != "vehicles" else ("id", "start_depot", "shift_start", "shift_end")
            if not header or any(c in missing for c in required):
                self.error(1, None, f"the header must name the columns {', '.join(FILES[file])}"
                           f" (missing: {', '.join(missing)})")
                return
            for row in reader:
                cleaned = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
                if any(cleaned.values()):
                    self.rows.append((reader.line_num, cleaned))
        except csv.Error as error:  # e.g. a NUL byte, or a quote never closed
            self.error(max(reader.line_num, 1), None, f"not readable as CSV: {error}")

    def error(self, line: int, column: str | None, msg: str) -> None:
        self.errors.append(CsvCellError(self.file, line, column, msg))

    def number(self, line: int, row: Mapping[str, str], column: str, *, integer: bool = False) -> Any:
        """The cell as a number; None if empty or bad (a bad one is kept as an error)."""
        value = row.get(column, "")
        if value == "":
            return None
        try:
            number = float(value)
        except ValueError:
            self.error(line, column, f'"{value}" is not a number')
            return None
        if integer:
            if number != int(number):
                self.error(line, column, f'"{value}" is not a whole number')
                return None
            return int(number)
        return number

    def required(self, line: int, row: Mapping[str, str], column: str, *, integer: bool = False) -> Any:
        if row.get(column, "") == "":
            self.error(line, column, "is empty: a value is required")
            return None
        return self.number(line, row, column, integer=integer) if column not in ("id",) else row[column]


def _skills(value: str) -> list[str]:
    return [s.strip() for s in value.split(";") if s.strip()]


def _depots(rows: _Rows) -> list[dict[str, Any]]:
    depots = []
    for line, row in rows.rows:
        lon, lat = rows.required(line, row, "lon"), rows.required(line, row, "lat")
        depots.append({"id": row.get("id", ""), "location": [lon, lat]})
    return depots


def _vehicles(rows: _Rows) -> list[dict[str, Any]]:
    vehicles = []
    for line, row in rows.rows:
        vehicle: dict[str, Any] = {"id": row.get("id", ""), "start_depot": row.get("start_depot", ""),
                                   "shift": {"start": row.get("shift_start", ""), "end": row.get("shift_end", "")},
                                   "skills": _skills(row.get("skills", ""))}
        for column in ("kind", "profile"):
            if row.get(column):
                vehicle[column] = row[column]
        if row.get("end_depot"):
            vehicle["end_depot"] = row["end_depot"]
        capacity = {}
        for dimension in ("kits", "tubes"):
            value = rows.number(line, row, f"capacity_{dimension}", integer=True)
            if value is not None:
                capacity[dimension] = value
        vehicle["capacity"] = capacity
        brk = [row.get("break_start", ""), row.get("break_end", ""), row.get("break_duration_s", "")]
        if any(brk):
            if not all(brk):
                empty = ("break_start", "break_end", "break_duration_s")[brk.index("")]
                rows.error(line, empty, "a break needs break_start, break_end and break_duration_s")
            else:
                vehicle["breaks"] = [{"id": "lunch", "start": brk[0], "end": brk[1],
                                      "duration_s": rows.number(line, row, "break_duration_s", integer=True)}]
        vehicles.append(vehicle)
    return vehicles


def _visits(rows: _Rows) -> list[dict[str, Any]]:
    visits = []
    for line, row in rows.rows:
        visit: dict[str, Any] = {"id": row.get("id", ""),
                                 "location": [rows.required(line, row, "lon"), rows.required(line, row, "lat")]}
        for column in ("people", "setup_s", "per_person_s"):
            value = rows.number(line, row, column, integer=True)
            if value is not None:
                visit[column] = value
        start, end = row.get("window_start", ""), row.get("window_end", "")
        if (start or end) and not (start and end):
            rows.error(line, "window_end" if start else "window_start",
                       "a time window needs both window_start and window_end")
        visit["time_windows"] = [{"start": start, "end": end}] if start or end else []
        priority = row.get("priority") or "routine"
        visit["priority"] = priority
        visit["skills"] = _skills(row.get("skills", ""))
        visit["notes"] = row.get("notes") or None
        people = visit.get("people", 1)
        if isinstance(people, int) and people >= 0:
            visit["demand"] = {"kits": people, "tubes": swab_tubes(people, pooled=priority not in UNPOOLED)}
        visits.append(visit)
    return visits


# Where a field of the request comes from in the files: the column to name in an error.
_COLUMNS = {
    "visits": {"location": "lon", "time_windows": "window_start", "demand": "people"},
    "vehicles": {"shift": "shift_start", "breaks": "break_start", "capacity": "capacity_kits"},
    "depots": {"location": "lon"},
}
_WINDOW_ENDS = {"visits": ("time_windows", "window_"), "vehicles": ("shift", "shift_")}


def csv_cell(loc: Sequence[str | int], msg: str, lines: Mapping[str, list[int]]) -> CsvCellError | None:
    """The file, line and column of a request field's ``loc`` (``["visits", 3, "location", 0]``);
    None if the field is not one the files hold (a name, options, the network)."""
    parts = [p for p in loc if p != "body"]
    if len(parts) < 2 or parts[0] not in FILES or not isinstance(parts[1], int):
        return None
    file, index = str(parts[0]), parts[1]
    if index >= len(lines[file]):
        return None
    line = lines[file][index]
    field = parts[2] if len(parts) > 2 else None
    column: str | None = None
    if isinstance(field, str):
        column = _COLUMNS[file].get(field, field if field in FILES[file] else None)
        if field == "location" and len(parts) > 3 and parts[3] == 1:
            column = "lat"
        ends = _WINDOW_ENDS.get(file)
        if ends and field == ends[0]:
            column = ends[1] + ("end" if "end" in [p for p in parts if isinstance(p, str)] else "start")
        if field == "breaks" and "duration_s" in parts:
            column = "break_duration_s"
        elif field == "breaks" and "end" in parts:
            column = "break_end"
    return CsvCellError(file, line, column, msg)


def request_from_csvs(visits: str, vehicles: str, depots: str, **extra: Any) -> dict[str, Any]:
    """A plan request (the JSON body of ``POST /v1/plans``) from the three files' texts; ``extra``
    keys (``name``, ``network``, ``options``, ``objective``) are added as they are.

    Checked as :class:`service.schemas.PlanRequest` checks a request; raises :class:`CsvError`
    with every bad cell of the three files.
    """
    return read_csvs(visits, vehicles, depots, **extra)[0]


def read_csvs(visits: str, vehicles: str, depots: str, **extra: Any) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """:func:`request_from_csvs`, and the line of each depot, vehicle and visit in its file (for
    errors found later, e.g. by :func:`service.planning.check_request`: see :func:`csv_cell`)."""
    from service.schemas import PlanRequest

    errors: list[CsvCellError] = []
    read = {name: _Rows(name, text, errors) for name, text in
            (("visits", visits), ("vehicles", vehicles), ("depots", depots))}
    request: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    request["depots"] = _depots(read["depots"])
    request["vehicles"] = _vehicles(read["vehicles"])
    request["visits"] = _visits(read["visits"])
    lines = {name: [line for line, _ in rows.rows] for name, rows in read.items()}
    for name, rows in read.items():
        if not rows.rows and not any(e.file == name for e in errors):
            rows.error(1, None, "has no rows")
    if errors:
        raise CsvError(sorted(errors, key=lambda e: (list(FILES).index(e.file), e.line)))
    try:
        PlanRequest.model_validate(request)
    except ValidationError as error:
        cells = []
        for e in error.errors():
            cell = csv_cell(list(e["loc"]), e["msg"], lines)
            if cell is None:
                raise
            cells.append(cell)
        raise CsvError(cells) from None
    return request, lines

