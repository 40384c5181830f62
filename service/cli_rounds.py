"""``doorstep round``: send a city round to a running API and follow it district by district."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

round_app = typer.Typer(name="round", help="City rounds: one request of many districts, solved in parallel.",
                        no_args_is_help=True)
console = Console()
errors = Console(stderr=True)

ServerOption = Annotated[str, typer.Option(help="The API's address.", envvar="DOORSTEP_URL")]
KeyOption = Annotated[str | None, typer.Option(help="An API key (default: $DOORSTEP_API_KEY).")]


def _call(method: str, url: str, key: str | None, body: Any = None) -> Any:
    headers = {"content-type": "application/json"}
    key = key or os.environ.get("DOORSTEP_API_KEY")
    if key:
        headers["authorization"] = f"Bearer {key}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as error:
        errors.print(f"[bold red]error:[/] {method} {url}: {error.code} {error.read().decode(errors='replace')[:2000]}")
        raise typer.Exit(2) from None
    except urllib.error.URLError as error:
        errors.print(f"[bold red]error:[/] {url}: {error.reason}")
        raise typer.Exit(2) from None


def progress_table(body: dict[str, Any]) -> Table:
    """Each district's status and its solve's progress (the second pass, once it has one)."""
    table = Table(title=f"round {body['id'][:8]}: {body['stage']}", title_justify="left")
    for column in ("district", "status", "visits", "assigned", "s", "offered in"):
        table.add_column(column, justify="left" if column in ("district", "status") else "right")
    for district, entry in body["districts"].items():
        progress = entry.get("progress") or {}
        table.add_row(district, entry["status"], str(entry["visits"]), str(progress.get("assigned", "")),
                      f"{progress['elapsed_s']:.0f}" if progress.get("elapsed_s") is not None else "",
                      str(entry["offered"] or ""))
    return table


def _follow(server: str, url: str, key: str | None, out: Path | None) -> None:
    with Live(console=console, refresh_per_second=2) as live:
        while True:
            body = _call("GET", server.rstrip("/") + url, key)
            live.update(progress_table(body))
            if body["status"] == "done":
                break
            time.sleep(1)
    summary = body["plan"]["summary"]
    console.print(f"{summary['visits_assigned']} visits served ({summary['served_by_neighbours']} by a neighbour's "
                  f"vehicles), {summary['visits_unassigned']} not, in {summary['districts']} districts")
    if out is not None:
        out.write_text(json.dumps(body, indent=1), encoding="utf-8")
        console.print(f"wrote {out}")


@round_app.command("submit")
def submit(
    request: Annotated[Path, typer.Argument(help="A plan request whose items carry `district`.")],
    server: ServerOption = "http://127.0.0.1:8000",
    key: KeyOption = None,
    out: Annotated[Path | None, typer.Option("-o", "--out", help="Write the joined round here.")] = None,
    follow: Annotated[bool, typer.Option(help="Show each district's progress until the round is done.")] = True,
) -> None:
    """Send a round to the API (POST /v1/rounds) and follow it."""
    body = json.loads(request.read_text(encoding="utf-8"))
    created = _call("POST", server.rstrip("/") + "/v1/rounds", key, body)
    console.print(f"round {created['id']}: {created['url']}")
    if follow:
        _follow(server, created["url"], key, out)


@round_app.command("watch")
def watch(
    round_id: str,
    server: ServerOption = "http://127.0.0.1:8000",
    key: KeyOption = None,
    out: Annotated[Path | None, typer.Option("-o", "--out", help="Write the joined round here.")] = None,
) -> None:
    """Follow a round's districts until it is done."""
    _follow(server, f"/v1/rounds/{round_id}", key, out)
