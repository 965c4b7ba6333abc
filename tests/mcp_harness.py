"""Test helper: the SDK's real MCP client against Palyra over either transport.

* ``stdio``: ``serve_stdio`` in a subprocess (what ``palyra mcp serve`` runs); the operator is
  a :class:`Service` the test opens on the same state root, as a local ``palyra`` would.
* ``http``: a real daemon (``running_daemon``, MCP mounted at ``/mcp``) with its bearer
  token; the operator is the daemon's own service.

Either way the state root is real (SQLite, wasmtime, the journal) and the client is
``mcp.client.client.Client``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import types
from mcp.client.client import Client
from mcp.client.session import MessageHandlerFnT
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

import daemon_fixtures as F
from daemon_server import running_daemon
from palyra.daemon.server import Daemon
from palyra.daemon.service import Service

TRANSPORTS = ("stdio", "http")
FIXTURE_TOOLS = {"acme.echo", "acme.guarded", "acme.spin", "acme.needs_secret"}
SERVE = (
    "import sys; from pathlib import Path; from palyra.mcp.server import serve_stdio; "
    "serve_stdio(Path(sys.argv[1]))"
)
CODE_CACHE = Path(__file__).resolve().parent.parent / "build" / "test-cache" / "modules"
SCENARIO_TIMEOUT_S = 60


@dataclass
class Harness:
    transport: str
    state: Path
    operator: Service
    daemon: Daemon | None

    @contextlib.asynccontextmanager
    async def connect(
        self, *, mode: str = "auto", message_handler: MessageHandlerFnT | None = None
    ) -> AsyncIterator[Client]:
        options: dict[str, Any] = {"read_timeout_seconds": 30, "mode": mode}
        if message_handler is not None:
            options["message_handler"] = message_handler
        if self.daemon is None:
            env = {"PALYRA_CODE_CACHE": str(CODE_CACHE)}
            params = StdioServerParameters(
                command=sys.executable, args=["-c", SERVE, str(self.state)], env=env
            )
            async with Client(params, **options) as client:
                yield client
            return
        headers = {"Authorization": f"Bearer {self.daemon.token}"}
        async with create_mcp_http_client(headers=headers) as http:
            transport = streamable_http_client(self.daemon.url + "/mcp", http_client=http)
            async with Client(transport, **options) as client:
                yield client

    async def act(self, action: Callable[[Service], Any]) -> Any:
        """An operator's action (blocking service calls run off the event loop)."""
        return await anyio.to_thread.run_sync(action, self.operator)


Make = Callable[..., Harness]


@contextlib.contextmanager
def harnesses(transport: str, root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Make]:
    """A factory of harnesses: ``make(config="", artifacts=())`` writes ``config.toml``,
    installs the daemon fixture skill and ``artifacts`` (trusted on first use), and starts
    the transport's server side."""
    monkeypatch.setenv("PALYRA_CODE_CACHE", str(CODE_CACHE))
    with contextlib.ExitStack() as stack:

        def make(config: str = "", artifacts: Sequence[Path] = ()) -> Harness:
            state = root / "state"
            state.mkdir(parents=True)
            (state / "config.toml").write_text(config)
            service = Service.open(state)
            try:
                for artifact in [F.write_artifact(root), *artifacts]:
                    service.install_file(artifact, allow_tofu=True)
            except BaseException:
                service.close()
                raise
            if transport == "stdio":
                stack.callback(service.close)
                return Harness(transport, state, service, None)
            service.close()
            daemon = stack.enter_context(running_daemon(state))
            return Harness(transport, state, daemon.service, daemon)

        yield make


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        with anyio.fail_after(SCENARIO_TIMEOUT_S):
            await scenario()

    anyio.run(main)


def error_kind(result: types.CallToolResult) -> str:
    """The kind of a failed call, checking the result's shape on the way."""
    assert result.is_error
    assert result.meta is not None
    kind = result.meta["kind"]
    assert isinstance(kind, str)
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    assert block.text.startswith(f"{kind}: ")
    return kind


def tool_names(listed: types.ListToolsResult) -> set[str]:
    return {tool.name for tool in listed.tools}


def pending_approvals(service: Service) -> list[dict[str, Any]]:
    approvals: list[dict[str, Any]] = service.list_approvals()["approvals"]
    return approvals
