"""``palyra daemon run|status|token`` (``palyrad`` = ``palyra daemon run``)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from palyra.cli.backend import backend
from palyra.cli.output import CliState, console, print_json
from palyra.cli.trust_cmd import JsonOption
from palyra.daemon.client import DaemonClient

app = typer.Typer(help="Run and inspect the daemon.", no_args_is_help=True)


@app.command("run")
def run(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Bind address (default 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=0, max=65535, help="Port (default 7142; 0 = any).")
    ] = None,
) -> None:
    """Serve the HTTP API until interrupted; prints the URL once it listens."""
    from palyra.daemon.server import Daemon
    from palyra.mcp.server import http_mount

    state: CliState = ctx.obj
    daemon = Daemon(state.state_root, host=host, port=port, mounts=(http_mount,))

    def ready(d: Daemon) -> None:
        sys.stdout.write(f"palyra daemon listening on {d.url}\n")
        sys.stdout.write(f"  console: {d.url}/  (sign in with the token)\n")
        sys.stdout.write(f"  API:   {d.url}/api/v1  (token: palyra daemon token)\n")
        sys.stdout.write(f"  MCP:   {d.url}/mcp  (streamable HTTP, same token)\n")
        sys.stdout.write(f"  state: {d.state_root}\n")
        sys.stdout.flush()

    daemon.run(on_ready=ready)


@app.command("status")
def status(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """What the daemon (or, without one, the state root) holds."""
    with backend(ctx) as service:
        body = service.status()
        body["mode"] = "daemon" if isinstance(service, DaemonClient) else "local"
        if isinstance(service, DaemonClient):
            body["url"] = service.url
    if json_output:
        print_json(body)
        return
    out = console()
    where = body.get("url") or f"in-process on {body['state_root']}"
    out.print(f"palyra {body['version']} ({body['mode']}: {where})")
    counts = body["skill_status"]
    out.print(
        f"  skills: {body['skills']} ({counts['active']} active, "
        f"{counts['quarantined']} quarantined, {counts['disabled']} disabled)"
    )
    out.print(f"  pending approvals: {body['pending_approvals']}")
    out.print(f"  journal head: #{body['journal_last_seq']}")


@app.command("token")
def token(ctx: typer.Context) -> None:
    """Print the API bearer token (created on first use, stored 0600)."""
    from palyra.daemon.auth import load_or_create_token

    state: CliState = ctx.obj
    sys.stdout.write(load_or_create_token(state.state_root) + "\n")
