"""``palyra tools``: installed tools as definitions for other agent frameworks."""

from __future__ import annotations

from typing import Annotated

import typer

from palyra.cli.backend import backend
from palyra.cli.output import print_json
from palyra.daemon.tool_defs import collect_tools, export, parse_format

app = typer.Typer(help="Export installed tools for other agent frameworks.", no_args_is_help=True)


@app.callback()
def tools() -> None:
    """Export installed tools for other agent frameworks."""


@app.command("export")
def export_tools(
    ctx: typer.Context,
    format_name: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="mcp (MCP Tool objects), openai (Chat Completions function tools) or "
            "anthropic (Messages API tools).",
        ),
    ],
    skill: Annotated[
        str | None,
        typer.Option("--skill", help="Only this skill's tools (it must be active)."),
    ] = None,
) -> None:
    """Print the tools of every active skill as a JSON list in the chosen format.

    OpenAI and Anthropic names replace characters outside [a-zA-Z0-9_-] with '_'
    (acme.echo -> acme_echo); MCP names are the tool ids.
    """
    fmt = parse_format(format_name)
    with backend(ctx) as service:
        defs = collect_tools(service, skill)
    print_json(export(defs, fmt))
