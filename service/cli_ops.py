"""``doorstep keys`` and ``doorstep purge``: access and retention, run by an operator on the server.

Both act on the database of the configured ``Settings`` (``DOORSTEP_DATABASE_URL`` or
``DOORSTEP_DATA_DIR``), migrating it first.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from service.auth import Keys, Role
from service.store import Store

keys_app = typer.Typer(name="keys", help="Create, list and revoke API keys.", no_args_is_help=True)
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
    personal_data: Annotated[
        bool, typer.Option("--personal-data", help="Integrators: may read residents' notes and contacts.")
    ] = False,
    label: Annotated[str | None, typer.Option(help="Who holds it, for `keys list`.")] = None,
) -> None:
    """Create a key and print its secret: it is shown once, only its hash is kept."""
    store = _store()
    try:
        info, token = Keys(store).create(role=role, organisation=org, vehicle_id=vehicle,
                                         can_read_personal=personal_data, label=label)
    except ValueError as error:
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
    for column in ("prefix", "role", "organisation", "vehicle", "personal data", "label", "created", "revoked"):
        table.add_column(column)
    for key in keys:
        table.add_row(key.prefix, key.role.value, key.organisation, key.vehicle_id or "",
                      "yes" if key.can_read_personal else "no", key.label or "",
                      key.created_at.strftime("%Y-%m-%d %H:%M"),
                      key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else "")
    console.print(table)


@keys_app.command("revoke")
def revoke_key(prefix: Annotated[str, typer.Argument(help="The key's prefix (from `keys list`).")]) -> None:
    """Revoke a key: calls with it answer 401 from now on."""
    store = _store()
    try:
        info = Keys(store).revoke(prefix)
    finally:
        store.close()
    if info is None:
        raise _fail(f'no key with prefix "{prefix}" (see `doorstep keys list`)')
    console.print(f"revoked key {info.prefix} ({info.role.value}, {info.organisation})", highlight=False)


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
