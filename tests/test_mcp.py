"""The MCP face end to end: the SDK's real client talks to ``serve_stdio`` in a subprocess
over stdio, on a real state root (SQLite, wasmtime) the test also opens in-process — to
quarantine, decide approvals and read the journal, as an operator would."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from mcp import types
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

import daemon_fixtures as F
from palyra.daemon.service import Service
from palyra.daemon.tool_defs import mcp_tool_name
from palyra.mcp.tools import is_a2ui

TOOLS = {"acme.echo", "acme.guarded", "acme.spin", "acme.needs_secret"}
SERVE = (
    "import sys; from pathlib import Path; from palyra.mcp.server import serve_stdio; "
    "serve_stdio(Path(sys.argv[1]))"
)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    root = tmp_path / "state"
    service = Service.open(root)
    try:
        service.install_file(F.write_artifact(tmp_path), allow_tofu=True)
    finally:
        service.close()
    return root


@contextlib.asynccontextmanager
async def connect(state: Path, env: dict[str, str] | None = None) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=sys.executable, args=["-c", SERVE, str(state)], env=env)
    async with Client(params, read_timeout_seconds=20) as client:
        yield client


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        with anyio.fail_after(30):
            await scenario()

    anyio.run(main)


def operator(state: Path) -> Service:
    return Service.open(state)


def error_kind(result: types.CallToolResult) -> str:
    assert result.is_error
    assert result.meta is not None
    kind = result.meta["kind"]
    assert isinstance(kind, str)
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    assert block.text.startswith(f"{kind}: ")
    return kind


def test_list_call_and_errors(state: Path) -> None:
    async def scenario() -> None:
        async with connect(state) as client:
            listed = await client.list_tools()
            by_name = {tool.name: tool for tool in listed.tools}
            assert set(by_name) == TOOLS
            echo = by_name["acme.echo"]
            assert echo.description == "echo tool"
            assert echo.input_schema["properties"]["text"]["maxLength"] == 100
            assert echo.input_schema["additionalProperties"] is False
            assert echo.output_schema == {"type": "object"}
            assert echo.meta is not None
            assert echo.meta["palyra/skill_id"] == F.SKILL_ID
            assert echo.meta["palyra/requires_approval"] is False
            guarded = by_name["acme.guarded"]
            assert guarded.meta is not None
            assert guarded.meta["palyra/requires_approval"] is True

            ok = await client.call_tool("acme.echo", {"text": "hi"})
            assert not ok.is_error
            assert ok.structured_content == {"text": "hi"}
            block = ok.content[0]
            assert isinstance(block, types.TextContent)
            assert json.loads(block.text) == {"text": "hi"}
            assert ok.meta is not None
            seq = ok.meta["receipt_seq"]
            assert isinstance(seq, int)
            assert seq > 0
            assert ok.meta["fuel_used"] > 0
            assert ok.meta["duration_ms"] >= 0
            assert "palyra/a2ui" not in ok.meta

            bad = await client.call_tool("acme.echo", {"text": "x" * 101})
            assert error_kind(bad) == "invalid_input"
            extra = await client.call_tool("acme.echo", {"nope": 1})
            assert error_kind(extra) == "invalid_input"
            unknown = await client.call_tool("acme.nothing", {})
            assert error_kind(unknown) == "not_found"

        service = operator(state)
        try:
            events = service.journal(kind="tool.call")["events"]
        finally:
            service.close()
        receipt = next(e for e in events if e["seq"] == seq)
        assert receipt["payload"]["origin"] == "mcp"
        assert receipt["payload"]["tool_id"] == "acme.echo"
        assert receipt["actor"] == "mcp"

    run(scenario)


def test_quarantine_is_reflected_at_once(state: Path) -> None:
    async def scenario() -> None:
        async with connect(state) as client:
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS
            service = operator(state)
            try:
                service.quarantine(F.SKILL_ID, reason="test")
            finally:
                service.close()
            listed = await client.list_tools(cache_mode="refresh")
            assert listed.tools == []
            result = await client.call_tool("acme.echo", {"text": "hi"})
            assert error_kind(result) == "skill_not_active"

    run(scenario)


def _approval_scenario(state: Path, approve: bool) -> types.CallToolResult:
    results: list[types.CallToolResult] = []

    def decide() -> None:
        service = operator(state)
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                pending = service.list_approvals()["approvals"]
                if pending:
                    assert pending[0]["tool_id"] == "acme.guarded"
                    assert pending[0]["requested_by"] == "mcp"
                    service.decide_approval(
                        pending[0]["approval_id"], approve=approve, reason="by the test"
                    )
                    return
                time.sleep(0.05)
            raise AssertionError("no approval request appeared")
        finally:
            service.close()

    async def scenario() -> None:
        async with connect(state) as client, anyio.create_task_group() as tg:

            async def call() -> None:
                results.append(await client.call_tool("acme.guarded", {"text": "ok?"}))

            tg.start_soon(call)
            await anyio.to_thread.run_sync(decide)

    run(scenario)
    return results[0]


def test_approval_approved(state: Path) -> None:
    result = _approval_scenario(state, approve=True)
    assert not result.is_error
    assert result.structured_content == {"text": "ok?"}
    assert result.meta is not None
    assert result.meta["approval_id"]


def test_approval_denied(state: Path) -> None:
    assert error_kind(_approval_scenario(state, approve=False)) == "approval_denied"


def test_approval_timeout(state: Path) -> None:
    async def scenario() -> None:
        env = {"PALYRA_MCP_APPROVAL_TIMEOUT_S": "0.5"}
        async with connect(state, env) as client:
            started = time.monotonic()
            result = await client.call_tool("acme.guarded", {"text": "late"})
            assert error_kind(result) == "approval_timeout"
            assert time.monotonic() - started < 10

    run(scenario)


def test_name_mapping_and_a2ui() -> None:
    assert mcp_tool_name("acme.echo") == "acme.echo"
    assert mcp_tool_name("acme:weird tool") == "acme_weird_tool"
    assert len(mcp_tool_name("a" * 200)) == 128
    doc: dict[str, Any] = {"v": 1, "surface": "main", "components": []}
    assert is_a2ui(doc)
    assert not is_a2ui({"v": 2, "surface": "main", "components": []})
    assert not is_a2ui({"text": "hi"})
