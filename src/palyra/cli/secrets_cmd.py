"""``palyra secrets set|list|delete``: values go in, names come out, values never come out."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer
from rich.markup import escape

from palyra.cli.backend import backend
from palyra.cli.output import console, print_json
from palyra.cli.trust_cmd import JsonOption
from palyra.errors import UsageError
from palyra.runtime.vault import MAX_SECRET_BYTES

app = typer.Typer(help="Manage secrets in the vault (encrypted at rest).", no_args_is_help=True)


def _read_value() -> bytes:
    """From a hidden prompt on a terminal, else stdin (one trailing newline dropped)."""
    if sys.stdin.isatty():
        value = getpass.getpass("secret value (hidden): ").encode("utf-8")
    else:
        value = sys.stdin.buffer.read(MAX_SECRET_BYTES + 2)
        if value.endswith(b"\n"):
            value = value[:-1]
            if value.endswith(b"\r"):
                value = value[:-1]
    if not value:
        raise UsageError("the secret value is empty")
    if len(value) > MAX_SECRET_BYTES:
        raise UsageError(f"secret values are limited to {MAX_SECRET_BYTES} bytes")
    return value


@app.command("set")
def set_secret(
    ctx: typer.Context,
    scope: Annotated[str, typer.Argument(help="global, skill:<id>, principal:<id>, …")],
    key: Annotated[str, typer.Argument(help="The key name, e.g. api_token.")],
    json_output: JsonOption = False,
) -> None:
    """Store a secret; the value is read from stdin or a hidden prompt, never from argv."""
    value = _read_value()
    with backend(ctx) as service:
        body = service.set_secret(scope, key, value)
    if json_output:
        print_json(body)
    else:
        console().print(f"set {escape(body['secret'])}")


@app.command("list")
def list_secrets(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Secret names (never values)."""
    with backend(ctx) as service:
        body = service.list_secrets()
    if json_output:
        print_json(body)
        return
    out = console()
    for name in body["secrets"]:
        out.print(escape(name))
    if not body["secrets"]:
        out.print("no secrets set")


@app.command("delete")
def delete_secret(
    ctx: typer.Context,
    scope: Annotated[str, typer.Argument(help="The secret's scope.")],
    key: Annotated[str, typer.Argument(help="The key name.")],
    json_output: JsonOption = False,
) -> None:
    """Remove a secret."""
    with backend(ctx) as service:
        body = service.delete_secret(scope, key)
    if json_output:
        print_json(body)
    else:
        console().print(f"deleted {escape(body['secret'])}")
