"""``palyra mcp serve``: the MCP face over stdio (stdout is the protocol; logs go to stderr)."""

from __future__ import annotations

import typer

from palyra.cli.output import CliState

app = typer.Typer(help="Serve skills' tools over the Model Context Protocol.", no_args_is_help=True)


@app.command("serve")
def serve(ctx: typer.Context) -> None:
    """Serve every active skill's tools over stdio until EOF.

    Calls run in-process on the state root with principal and origin "mcp"; tools that need
    approval wait for `palyra approvals approve` (timeout: the runner's approval_timeout_s,
    or $PALYRA_MCP_APPROVAL_TIMEOUT_S).
    """
    from palyra.mcp.server import serve_stdio

    state: CliState = ctx.obj
    serve_stdio(state.state_root)
