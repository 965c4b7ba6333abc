"""``palyra plugins …`` and ``palyra hooks …``: bindings of installed tools, and the system
events that run them."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from palyra.cli.backend import backend
from palyra.cli.output import console, print_json
from palyra.cli.trust_cmd import JsonOption
from palyra.errors import UsageError

plugins_app = typer.Typer(
    help="Bind installed tools with capability profiles.", no_args_is_help=True
)
hooks_app = typer.Typer(help="Run bound plugins on system events.", no_args_is_help=True)

PluginId = Annotated[str, typer.Argument(help="Plugin binding id.")]
HookId = Annotated[str, typer.Argument(help="Hook id.")]


def _print_check(body: dict[str, Any]) -> None:
    out = console()
    ready = "[green]ready[/]" if body.get("ready") else "[red]not ready[/]"
    name = body.get("plugin_id") or body.get("hook_id")
    out.print(f"{escape(str(name))}: {ready}")
    for reason in body.get("reasons", []):
        out.print(f"  - {escape(str(reason))}")
    for warning in body.get("warnings", []):
        out.print(f"  [yellow]warning[/] {escape(str(warning))}")


def _show(body: dict[str, Any], json_output: bool, text: str | None = None) -> None:
    if json_output:
        print_json(body)
    elif text is not None:
        console().print(text)
    else:
        _print_check(body)


@plugins_app.command("list")
def plugins_list(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Plugin bindings."""
    with backend(ctx) as service:
        body = service.list_plugins()
    if json_output:
        print_json(body)
        return
    table = Table(title=f"{body['count']} plugin binding(s)")
    for column in ("plugin", "skill", "version", "tool", "enabled", "profile"):
        table.add_column(column)
    for item in body["plugins"]:
        profile = "; ".join(
            f"{k}: {', '.join(v)}" for k, v in item["capability_profile"].items() if v
        )
        table.add_row(
            escape(item["plugin_id"]),
            escape(item["skill_id"]),
            escape(item["skill_version"] or "current"),
            escape(item["tool_id"]),
            "yes" if item["enabled"] else "no",
            escape(profile or "none"),
        )
    console().print(table)


@plugins_app.command("bind")
def plugins_bind(
    ctx: typer.Context,
    plugin_id: PluginId,
    skill_id: Annotated[str, typer.Option("--skill", help="Installed skill id.")],
    tool: Annotated[str, typer.Option("--tool", help="Tool id or name.")],
    version: Annotated[
        str | None, typer.Option("--version", help="Pin a version (default: follow current).")
    ] = None,
    http_host: Annotated[list[str] | None, typer.Option("--http-host")] = None,
    secret: Annotated[list[str] | None, typer.Option("--secret", help="SCOPE/KEY")] = None,
    storage: Annotated[list[str] | None, typer.Option("--storage-prefix")] = None,
    channel: Annotated[list[str] | None, typer.Option("--channel")] = None,
    all_declared: Annotated[
        bool, typer.Option("--all-declared", help="Grant everything the skill declares.")
    ] = False,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled.")] = False,
    notes: Annotated[str | None, typer.Option("--notes")] = None,
    json_output: JsonOption = False,
) -> None:
    """Bind one tool; the profile narrows what the skill declares (never widens it)."""
    listed = any((http_host, secret, storage, channel))
    if all_declared and listed:
        raise UsageError("--all-declared and explicit capabilities are exclusive")
    profile = None
    if not all_declared:
        profile = {
            "http_hosts": http_host or [],
            "secrets": secret or [],
            "storage_prefixes": storage or [],
            "channels": channel or [],
        }
    with backend(ctx) as service:
        body = service.bind_plugin(
            plugin_id,
            skill_id,
            tool,
            version=version,
            profile=profile,
            enabled=not disabled,
            notes=notes,
        )
    _show(body, json_output)


@plugins_app.command("unbind")
def plugins_unbind(
    ctx: typer.Context, plugin_id: PluginId, json_output: JsonOption = False
) -> None:
    """Remove a binding (refused while a hook uses it)."""
    with backend(ctx) as service:
        body = service.unbind_plugin(plugin_id)
    _show(body, json_output, f"unbound {escape(plugin_id)}")


@plugins_app.command("enable")
def plugins_enable(
    ctx: typer.Context, plugin_id: PluginId, json_output: JsonOption = False
) -> None:
    """Enable a binding."""
    with backend(ctx) as service:
        _show(service.set_plugin_enabled(plugin_id, True), json_output)


@plugins_app.command("disable")
def plugins_disable(
    ctx: typer.Context, plugin_id: PluginId, json_output: JsonOption = False
) -> None:
    """Disable a binding (its hooks then fail, journaled)."""
    with backend(ctx) as service:
        _show(service.set_plugin_enabled(plugin_id, False), json_output)


@plugins_app.command("check")
def plugins_check(ctx: typer.Context, plugin_id: PluginId, json_output: JsonOption = False) -> None:
    """Is the binding ready? Reasons, and its capability diff."""
    with backend(ctx) as service:
        body = service.check_plugin(plugin_id)
    _show(body, json_output)
    if not json_output:
        for entry in (body.get("capability_diff") or {}).get("entries", []):
            console().print(
                f"  {entry['category']}: {entry['capability_kind']} {escape(entry['value'])}"
            )


@hooks_app.command("list")
def hooks_list(
    ctx: typer.Context,
    event: Annotated[str | None, typer.Option("--event", help="Only this event.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Hook bindings."""
    with backend(ctx) as service:
        body = service.list_hooks(event)
    if json_output:
        print_json(body)
        return
    table = Table(title=f"{body['count']} hook(s)")
    for column in ("hook", "event", "plugin", "enabled"):
        table.add_column(column)
    for item in body["hooks"]:
        table.add_row(
            escape(item["hook_id"]),
            item["event"],
            escape(item["plugin_id"]),
            "yes" if item["enabled"] else "no",
        )
    out = console()
    out.print(table)
    out.print("events: " + ", ".join(body["events"]))


@hooks_app.command("bind")
def hooks_bind(
    ctx: typer.Context,
    hook_id: HookId,
    event: Annotated[str, typer.Option("--event", help="e.g. skill:quarantined")],
    plugin_id: Annotated[str, typer.Option("--plugin", help="Plugin binding to run.")],
    disabled: Annotated[bool, typer.Option("--disabled")] = False,
    json_output: JsonOption = False,
) -> None:
    """Run a plugin on an event (its input: {"event", "payload"})."""
    with backend(ctx) as service:
        body = service.bind_hook(hook_id, event, plugin_id, enabled=not disabled)
    _show(body, json_output)


@hooks_app.command("unbind")
def hooks_unbind(ctx: typer.Context, hook_id: HookId, json_output: JsonOption = False) -> None:
    """Remove a hook."""
    with backend(ctx) as service:
        body = service.unbind_hook(hook_id)
    _show(body, json_output, f"unbound {escape(hook_id)}")


@hooks_app.command("enable")
def hooks_enable(ctx: typer.Context, hook_id: HookId, json_output: JsonOption = False) -> None:
    """Enable a hook."""
    with backend(ctx) as service:
        _show(service.set_hook_enabled(hook_id, True), json_output)


@hooks_app.command("disable")
def hooks_disable(ctx: typer.Context, hook_id: HookId, json_output: JsonOption = False) -> None:
    """Disable a hook."""
    with backend(ctx) as service:
        _show(service.set_hook_enabled(hook_id, False), json_output)


@hooks_app.command("check")
def hooks_check(ctx: typer.Context, hook_id: HookId, json_output: JsonOption = False) -> None:
    """Is the hook ready to run?"""
    with backend(ctx) as service:
        _show(service.check_hook(hook_id), json_output)


@hooks_app.command("fire")
def hooks_fire(
    ctx: typer.Context,
    event: Annotated[str, typer.Argument(help="The event to dispatch.")],
    payload: Annotated[str, typer.Option("--payload", help="JSON object.")] = "{}",
    json_output: JsonOption = False,
) -> None:
    """Dispatch an event now (for testing hooks); prints each hook's outcome."""
    try:
        value = json.loads(payload)
    except ValueError as exc:
        raise UsageError(f"--payload is not JSON: {exc}") from None
    with backend(ctx) as service:
        body = service.fire_hook(event, value)
    if json_output:
        print_json(body)
        return
    out = console()
    out.print(f"{body['event']}: {len(body['dispatched'])} hook(s)")
    for item in body["dispatched"]:
        if item["ok"]:
            out.print(f"  [green]ok[/] {escape(item['hook_id'])} receipt=#{item['receipt_seq']}")
        else:
            out.print(
                f"  [red]{item['kind']}[/] {escape(item['hook_id'])}: {escape(item['message'])}"
            )
