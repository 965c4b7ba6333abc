"""``palyra trust``: the publisher trust store (allowlist and TOFU pins)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from palyra.cli.output import CliState, console, print_json
from palyra.daemon.trust_home import TrustHome, open_trust_home
from palyra.errors import NotFoundError
from palyra.skills.keys import key_id_for
from palyra.skills.trust import TrustStore

app = typer.Typer(help="Manage trusted publisher keys and TOFU pins.", no_args_is_help=True)

TrustStoreOption = Annotated[
    Path | None,
    typer.Option(
        "--trust-store",
        help="Trust-store file (default: the shared database's when PALYRA_DATABASE_URL is "
        "set, else <state>/skills/trust-store.json).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def trust_home(ctx: typer.Context, explicit: Path | None) -> AbstractContextManager[TrustHome]:
    state: CliState = ctx.obj
    return open_trust_home(state.state_root, explicit)


def _row(publisher: str, kind: str, key: str) -> dict[str, Any]:
    return {
        "publisher": publisher,
        "kind": kind,
        "public_key_hex": key,
        "key_id": key_id_for(bytes.fromhex(key)),
    }


def _rows(store: TrustStore) -> list[dict[str, Any]]:
    rows = [
        _row(publisher, "allowlisted", key)
        for publisher, keys in store.trusted_publishers.items()
        for key in keys
    ]
    rows.extend(_row(p, "tofu_pinned", key) for p, key in store.tofu_publishers.items())
    return rows


@app.command("list")
def list_keys(
    ctx: typer.Context, trust_store: TrustStoreOption = None, json_output: JsonOption = False
) -> None:
    """Show allowlisted keys and TOFU pins."""
    with trust_home(ctx, trust_store) as home:
        store = home.load()
    path = home.where
    rows = _rows(store)
    if json_output:
        print_json({"trust_store": path, **store.to_json(), "keys": rows})
        return
    out = console()
    if not rows:
        out.print(f"trust store {path} is empty")
        return
    table = Table(title=f"trust store {path}")
    for column in ("publisher", "kind", "key_id", "public_key_hex"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["publisher"], row["kind"], row["key_id"], row["public_key_hex"])
    out.print(table)


def _report(path: str, action: str, json_output: bool, **fields: Any) -> None:
    if json_output:
        print_json({"action": action, "trust_store": path, **fields})
    else:
        details = " ".join(f"{key}={value}" for key, value in fields.items())
        console().print(f"trust.{action} {details} trust_store={path}")


@app.command("add")
def add(
    ctx: typer.Context,
    publisher: Annotated[str, typer.Argument(help="Publisher id, e.g. acme.")],
    hexkey: Annotated[str, typer.Argument(help="Ed25519 public key, 64 hex chars.")],
    trust_store: TrustStoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Allowlist a publisher key (allowlisted keys win over TOFU pins)."""
    with trust_home(ctx, trust_store) as home, home.edit() as store:
        store.add_trusted_key(publisher, hexkey)
    key = hexkey.strip().lower()
    _report(
        home.where,
        "added",
        json_output,
        publisher=publisher.strip(),
        key_id=key_id_for(bytes.fromhex(key)),
    )


@app.command("remove")
def remove(
    ctx: typer.Context,
    publisher: Annotated[str, typer.Argument(help="Publisher id.")],
    hexkey: Annotated[str | None, typer.Argument(help="Key to remove (default: all keys).")] = None,
    trust_store: TrustStoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Remove an allowlisted key, or every key of a publisher."""
    with trust_home(ctx, trust_store) as home, home.edit() as store:
        if not store.remove_trusted(publisher, hexkey):
            raise NotFoundError(f"publisher '{publisher.strip()}' has no such allowlisted key")
    _report(home.where, "removed", json_output, publisher=publisher.strip())


@app.command("unpin")
def unpin(
    ctx: typer.Context,
    publisher: Annotated[str, typer.Argument(help="Publisher id.")],
    trust_store: TrustStoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Forget a publisher's TOFU pin (the next verification may pin a new key)."""
    with trust_home(ctx, trust_store) as home, home.edit() as store:
        if not store.unpin(publisher):
            raise NotFoundError(f"publisher '{publisher.strip()}' has no TOFU pin")
    _report(home.where, "unpinned", json_output, publisher=publisher.strip())
