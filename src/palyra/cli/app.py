"""The ``palyra`` command: one entry point for every face of the CLI."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from palyra import __version__
from palyra.cli import (
    approvals_cmd,
    bindings_cmd,
    daemon_cmd,
    journal_cmd,
    keys_cmd,
    mcp_cmd,
    plugin_cmd,
    secrets_cmd,
    skills_cmd,
    tools_cmd,
    trust_cmd,
)
from palyra.cli.output import CliState, report_error
from palyra.errors import PalyraError
from palyra.paths import resolve_state_root

app = typer.Typer(
    name="palyra",
    help="Signed, audited, sandboxed WebAssembly skills.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(trust_cmd.app, name="trust")
app.add_typer(skills_cmd.app, name="skills")
app.add_typer(plugin_cmd.app, name="plugin")
app.add_typer(approvals_cmd.app, name="approvals")
app.add_typer(journal_cmd.app, name="journal")
app.add_typer(secrets_cmd.app, name="secrets")
app.add_typer(daemon_cmd.app, name="daemon")
app.add_typer(bindings_cmd.plugins_app, name="plugins")
app.add_typer(bindings_cmd.hooks_app, name="hooks")
app.add_typer(mcp_cmd.app, name="mcp")
app.add_typer(tools_cmd.app, name="tools")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"palyra {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    state_root: Annotated[
        Path | None,
        typer.Option(
            "--state-root",
            help="State directory (default: $PALYRA_STATE_ROOT, $XDG_STATE_HOME/palyra, "
            "~/.local/state/palyra).",
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url", help="Daemon URL (default: $PALYRA_URL, or the state root's daemon)."
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    ctx.obj = CliState(state_root=resolve_state_root(state_root), url=url)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; exit 0 on success, 1 on a typed failure, 2 on a usage error."""
    args = list(sys.argv[1:] if argv is None else argv)
    json_mode = "--json" in args
    try:
        # Standalone mode: click reports usage errors (exit 2) and exits on its own; only our
        # typed errors and genuine bugs reach the handlers below.
        app(args=args, prog_name="palyra")
    except PalyraError as exc:
        report_error(exc, json_mode)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if os.environ.get("PALYRA_DEBUG"):
            raise
        report_error(_Internal(f"{type(exc).__name__}: {exc}"), json_mode)
        sys.exit(1)


class _Internal(PalyraError):
    kind = "internal"
