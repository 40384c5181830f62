"""``doorstep keys``, ``doorstep crew-links`` and ``doorstep purge``: access and retention, run by an
operator on the server.

Both act on the database of the configured ``Settings`` (``DOORSTEP_DATABASE_URL`` or
``DOORSTEP_DATA_DIR``), migrating it first.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from routing.errors import ProblemError
from service import crew
from service.auth import Keys, Role
from service.store import PlanRow, Store

keys_app = typer.Typer(name="keys", help="Create, list and revoke API keys.", no_args_is_help=True)
links_app = typer.Typer(name="crew-links", help="Crew links: a phone signed in for one vehicle of one plan, today.",
                        no_args_is_help=True)
console = Console()
errors = Console(stderr=True)


def _store() -> Store:
    from service.config import get_settings
    from service.store import migrate

    store = Store.from_url(get_settings().resolved_database_url)
    migrate(store.engine)
    return store


def _fail(message: str) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


@keys_app.command("create")
def create_key(
    role: Annotated[Role, typer.Option(help="dispatcher, crew or integrator.")],
    org: Annotated[str, typer.Option(help="The organisation (e.g. a district) whose plans the key reaches.")],
    vehicle: Annotated[str | None, typer.Option(help="Crew keys: the vehicle whose route it reads.")] = None,
    plan: Annotated[
        str | None, typer.Option(help="Crew keys: the plan (any version) whose route it reads, until its day ends.")
    ] = None,
    day: Annotated[str | None, typer.Option(help="Crew keys: the plan's day, YYYY-MM-DD (default: today).")] = None,
    personal_data: Annotated[
        bool, typer.Option("--personal-data", help="Integrators: may read residents' notes and contacts.")
    ] = False,
    label: Annotated[str | None, typer.Option(help="Who holds it, for `keys list`.")] = None,
) -> None:
    """Create a key and print its secret: it is shown once, only its hash is kept."""
    store = _store()
    try:
        if role is Role.CREW and plan is not None:
            row, versions = _plan(store, plan)
            if row.organisation != org:
                raise ValueError(f"plan {plan} belongs to {row.organisation}, not {org}")
            info, token = crew.create_link(store, row, versions, vehicle_id=vehicle or "", day=_day(day), label=label)
        else:
            info, token = Keys(store).create(role=role, organisation=org, vehicle_id=vehicle,
                                             can_read_personal=personal_data, label=label, plan_id=plan)
    except (ValueError, ProblemError) as error:
        raise _fail(str(error)) from None
    finally:
        store.close()
    errors.print(f"created {info.role.value} key {info.prefix} for {info.organisation}"
                 + (f", vehicle {info.vehicle_id}" if info.vehicle_id else "")
                 + ". Store the secret now: it is not shown again.", highlight=False)
    typer.echo(token)


@keys_app.command("list")
def list_keys() -> None:
    """Every key (prefix, role, organisation, vehicle, created, revoked); never the secrets."""
    store = _store()
    try:
        keys = Keys(store).list()
    finally:
        store.close()
    table = Table()
    table.add_column("prefix", no_wrap=True, min_width=8)
    for column in ("role", "organisation", "vehicle", "plan", "personal data", "label", "created", "expires",
                   "revoked"):
        table.add_column(column)
    for key in keys:  # a plan's first 8 digits tell it apart; `crew-links list --plan` takes any version's id
        table.add_row(key.prefix, key.role.value, key.organisation, key.vehicle_id or "", (key.plan_id or "")[:8],
                      "yes" if key.can_read_personal else "no", key.label or "", _when(key.created_at),
                      _when(key.expires_at), _when(key.revoked_at))
    console.print(table)


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else ""


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f'"{text}" is not a day: write YYYY-MM-DD', param_hint="--day") from None


def _plan(store: Store, plan_id: str) -> tuple[PlanRow, list[PlanRow]]:
    row = store.get(plan_id)
    if row is None:
        raise ValueError(f'no plan "{plan_id}" (see GET /v1/plans)')
    versions = [store.get(v.id, request=True) or v for v in store.versions(row.root)]
    return row, versions


# -- crew links ---------------------------------------------------------------------------------------


@links_app.command("create")
def create_link(
    plan: Annotated[str, typer.Option(help="The plan (any version): the link reaches every version of it.")],
    vehicle: Annotated[str, typer.Option(help="The vehicle whose route the phone shows and records.")],
    day: Annotated[str | None, typer.Option(help="The plan's day, YYYY-MM-DD (default: today): the link "
                                            "expires at its end, or at the end of the latest night shift.")] = None,
    label: Annotated[str | None, typer.Option(help="Who holds it, for `crew-links list`.")] = None,
    base_url: Annotated[str | None, typer.Option(help="The address phones reach this server at, e.g. "
                                                 "http://192.168.1.10:8000 (default: DOORSTEP_PUBLIC_URL).")] = None,
    qr: Annotated[Path | None, typer.Option(help="Also write the link as a QR code: FILE.svg or FILE.png.")] = None,
) -> None:
    """Make a crew link and print its URL (shown once: only the key's hash is kept)."""
    from service.config import get_settings

    if qr is not None and qr.suffix.lower() not in (".svg", ".png"):
        raise _fail(f"--qr {qr}: write a .svg or a .png file")
    base = base_url or get_settings().public_url
    if base is None:
        base = "http://127.0.0.1:8000"
        errors.print("no --base-url nor DOORSTEP_PUBLIC_URL: the link points at this machine (127.0.0.1), "
                     "which a phone does not reach; give the address phones use", highlight=False)
    store = _store()
    try:
        row, versions = _plan(store, plan)
        info, token = crew.create_link(store, row, versions, vehicle_id=vehicle, day=_day(day), label=label)
    except (ValueError, ProblemError) as error:
        raise _fail(str(error)) from None
    finally:
        store.close()
    url = crew.link_url(base, token)
    if qr is not None:
        qr.parent.mkdir(parents=True, exist_ok=True)
        if qr.suffix.lower() == ".svg":
            qr.write_text(crew.qr_svg(url), encoding="utf-8")
        else:
            qr.write_bytes(crew.qr_png(url))
    assert info.expires_at is not None
    errors.print(f"crew link {info.prefix} for vehicle {info.vehicle_id} of plan {info.plan_id}, until "
                 f"{_when(info.expires_at)}" + (f"; QR code in {qr}" if qr else "")
                 + ". Hand it over now: it is not shown again.", highlight=False)
    typer.echo(url)


@links_app.command("list")
def list_links(plan: Annotated[str, typer.Option(help="The plan (any version).")]) -> None:
    """The plan's crew links (never their secrets)."""
    store = _store()
    try:
        row, _ = _plan(store, plan)
        links = Keys(store).list(plan_id=row.root)
    except ValueError as error:
        raise _fail(str(error)) from None
    finally:
        store.close()
    table = Table()
    for column in ("prefix", "vehicle", "label", "created", "expires", "revoked"):
        table.add_column(column)
    for link in links:
        table.add_row(link.prefix, link.vehicle_id or "", link.label or "", _when(link.created_at),
                      _when(link.expires_at), _when(link.revoked_at))
    console.print(table)


@links_app.command("revoke")
def revoke_link(prefix: Annotated[str, typer.Argument(help="The link's prefix (from `crew-links list`).")]) -> None:
    """Revoke a crew link: the phone's calls answer 401 from now on."""
    revoke_key(prefix)


@keys_app.command("revoke")
def revoke_key(prefix: Annotated[str, typer.Argument(help="The key's prefix (from `keys list`).")]) -> None:
    """Revoke a key: calls with it answer 401 from now on (running API processes know a key they
    checked for DOORSTEP_KEY_CACHE_S seconds more)."""
    from service.config import get_settings

    store = _store()
    try:
        info = Keys(store).revoke(prefix)
    finally:
        store.close()
    if info is None:
        raise _fail(f'no key with prefix "{prefix}" (see `doorstep keys list`)')
    cache_s = get_settings().key_cache_s
    console.print(f"revoked key {info.prefix} ({info.role.value}, {info.organisation})"
                  + (f"; running API processes refuse it within {cache_s:g} s" if cache_s else ""), highlight=False)


_AGE = re.compile(r"^\s*(\d+)\s*([dhw])\s*$")


def parse_age(text: str) -> timedelta:
    """``"30d"``, ``"12h"`` or ``"2w"`` as a duration."""
    match = _AGE.match(text)
    if match is None:
        raise typer.BadParameter(f'"{text}" is not an age: write e.g. 30d, 12h or 2w')
    amount, unit = int(match.group(1)), match.group(2)
    return {"d": timedelta(days=amount), "h": timedelta(hours=amount), "w": timedelta(weeks=amount)}[unit]


def purge(
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="Plans created longer ago than this: 30d, 12h, 2w.")
    ] = None,
    plan: Annotated[str | None, typer.Option("--plan", help="One plan (every version of it).")] = None,
) -> None:
    """Remove residents' personal data (notes, contacts, names, addresses) from stored requests,
    plan documents and ledger entries; each plan's ledger records the purge."""
    from service.privacy import purge as purge_plans
    from service.store import utcnow

    if (older_than is None) == (plan is None):
        raise _fail("give --older-than AGE or --plan ID")
    store = _store()
    try:
        cutoff = None if older_than is None else utcnow() - parse_age(older_than)
        purged = purge_plans(store, plan_id=plan, older_than=cutoff, actor="cli")
    except LookupError as error:
        raise _fail(str(error.args[0])) from None
    finally:
        store.close()
    console.print(f"purged personal data from {len(purged)} plan version(s)", highlight=False)
    for plan_id in purged:
        console.print(f"  {plan_id}", highlight=False)
