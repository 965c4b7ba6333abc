"""``palyra approvals list|approve|deny``: operator decisions on sensitive tool calls."""

from __future__ import annotations

import re
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from palyra.cli.backend import backend
from palyra.cli.output import console, print_json
from palyra.cli.trust_cmd import JsonOption
from palyra.errors import UsageError

app = typer.Typer(help="Approve or deny sensitive tool calls.", no_args_is_help=True)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``2h``, ``1d`` → seconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise UsageError(f"not a duration: {text!r} (use e.g. 90s, 10m, 2h)")
    return float(match.group(1)) * _UNIT[match.group(2)]


@app.command("list")
def list_approvals(
    ctx: typer.Context,
    state: Annotated[
        str, typer.Option("--state", help="pending, approved, denied, expired or all.")
    ] = "pending",
    json_output: JsonOption = False,
) -> None:
    """Approval requests (pending ones by default)."""
    with backend(ctx) as service:
        body = service.list_approvals(state)
    if json_output:
        print_json(body)
        return
    out = console()
    if not body["approvals"]:
        out.print(f"no {state} approval requests")
        return
    table = Table(title=f"{body['count']} approval request(s)")
    for column in ("id", "state", "skill", "tool", "requested by", "input"):
        table.add_column(column)
    for item in body["approvals"]:
        table.add_row(
            item["approval_id"],
            item["state"],
            escape(f"{item['skill_id']} {item['version']}"),
            escape(item["tool_id"]),
            escape(item["requested_by"]),
            escape(item["input_preview"]),
        )
    out.print(table)


@app.command("approve")
def approve(
    ctx: typer.Context,
    approval_id: Annotated[str, typer.Argument(help="The request's id.")],
    window: Annotated[
        str | None,
        typer.Option("--window", help="Also approve later calls of this tool for e.g. 10m."),
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Kept in the journal.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Let one waiting call run (or, with --window, every call of that tool for a while)."""
    window_s = None if window is None else parse_duration(window)
    with backend(ctx) as service:
        body = service.decide_approval(approval_id, approve=True, window_s=window_s, reason=reason)
    if json_output:
        print_json(body)
    else:
        until = " (window open)" if body.get("window_until_ms") else ""
        console().print(f"approved {approval_id}{until}")


@app.command("deny")
def deny(
    ctx: typer.Context,
    approval_id: Annotated[str, typer.Argument(help="The request's id.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Told to the caller.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Refuse a waiting call."""
    with backend(ctx) as service:
        body = service.decide_approval(approval_id, approve=False, reason=reason)
    if json_output:
        print_json(body)
    else:
        console().print(f"denied {approval_id}")
