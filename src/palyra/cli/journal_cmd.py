"""``palyra journal list|verify``: the append-only, hash-chained record of everything."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from palyra.cli.backend import backend
from palyra.cli.output import console, print_json
from palyra.cli.trust_cmd import JsonOption

app = typer.Typer(help="Read and verify the journal.", no_args_is_help=True)

# The fields worth a glance, in order; --json has everything.
_SUMMARY_KEYS = (
    "skill_id", "version", "tool_id", "outcome", "status", "reason", "error", "approval_id",
    "hook_id", "plugin_id", "event", "secret", "fuel_used", "duration_ms", "removed_versions",
)  # fmt: skip


def summarize(payload: dict[str, object]) -> str:
    parts = []
    for key in _SUMMARY_KEYS:
        value = payload.get(key)
        if value not in (None, "", []):
            text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            parts.append(f"{key}={text}")
    text = " ".join(parts) or json.dumps(payload, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 160 else text[:159] + "…"


@app.command("list")
def list_events(
    ctx: typer.Context,
    after: Annotated[int, typer.Option("--after", min=0, help="Events after this seq.")] = 0,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    kind: Annotated[str | None, typer.Option("--kind", help="e.g. tool.call")] = None,
    json_output: JsonOption = False,
) -> None:
    """Journal events in order."""
    with backend(ctx) as service:
        body = service.journal(after, limit, kind)
    if json_output:
        print_json(body)
        return
    table = Table(title=f"{body['count']} event(s)")
    for column in ("seq", "time (UTC)", "kind", "actor", "summary"):
        table.add_column(column)
    for event in body["events"]:
        when = datetime.fromtimestamp(event["at_ms"] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            str(event["seq"]),
            when,
            escape(event["kind"]),
            escape(event["actor"]),
            escape(summarize(event["payload"])),
        )
    console().print(table)


@app.command("verify")
def verify(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Recompute the hash chain; exit 1 if any event was altered, removed or reordered."""
    with backend(ctx) as service:
        body = service.verify_journal()
    if json_output:
        print_json(body)
    elif body["ok"]:
        console().print(
            f"[green]journal intact[/]: {body['events']} events, head {body['last_hash'][:16]}"
        )
    else:
        console().print(
            f"[red]journal broken[/] at seq {body['first_bad_seq']}: {escape(str(body['problem']))}"
        )
    if not body["ok"]:
        raise typer.Exit(1)
