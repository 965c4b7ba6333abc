"""The MCP face end to end, over stdio and over streamable HTTP (``mcp_harness``): listing,
calls and every error kind, approvals with progress, and live ``listChanged``
notifications — with the SDK's real client, a real state root and real wasmtime."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import types
from mcp.client.client import Client
from mcp.client.session import IncomingMessage

import daemon_fixtures as F
from mcp_harness import (
    FIXTURE_TOOLS,
    SERVE,
    TRANSPORTS,
    Harness,
    Make,
    error_kind,
    harnesses,
    pending_approvals,
    run,
    tool_names,
)
from palyra.daemon.service import Service
from palyra.daemon.tool_defs import mcp_tool_name
from palyra.mcp.tools import is_a2ui

NOTIFY_TIMEOUT_S = 15


@pytest.fixture(params=TRANSPORTS)
def make(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Make]:
    with harnesses(request.param, tmp_path, monkeypatch) as factory:
        yield factory


# ---- listing and calling ----------------------------------------------------------------------
def test_list_call_and_errors(make: Make) -> None:
    h = make()

    async def scenario() -> None:
        async with h.connect() as client:
            caps = client.server_capabilities
            assert caps.tools is not None
            listed = await client.list_tools()
            by_name = {tool.name: tool for tool in listed.tools}
            assert set(by_name) == FIXTURE_TOOLS
            echo = by_name["acme.echo"]
            assert echo.title == "echo"
            assert echo.description == "echo tool"
            assert echo.input_schema["properties"]["text"]["maxLength"] == 100
            assert echo.input_schema["additionalProperties"] is False
            assert echo.output_schema == {"type": "object"}
            assert echo.annotations is not None
            assert echo.annotations.open_world_hint is False  # no egress, no channels
            assert echo.annotations.destructive_hint is None
            assert echo.meta is not None
            assert echo.meta["palyra/skill_id"] == F.SKILL_ID
            assert echo.meta["palyra/requires_approval"] is False
            guarded = by_name["acme.guarded"]
            assert guarded.meta is not None
            assert guarded.meta["palyra/requires_approval"] is True
            assert guarded.annotations is not None
            assert guarded.annotations.destructive_hint is True
            assert guarded.description is not None
            assert "approval" in guarded.description

            ok = await client.call_tool("acme.echo", {"text": "hi"})
            assert not ok.is_error
            assert ok.structured_content == {"text": "hi"}
            block = ok.content[0]
            assert isinstance(block, types.TextContent)
            assert json.loads(block.text) == {"text": "hi"}
            assert ok.meta is not None
            seq = ok.meta["receipt_seq"]
            assert isinstance(seq, int) and seq > 0
            assert ok.meta["fuel_used"] > 0
            assert ok.meta["duration_ms"] >= 0
            assert ok.meta["tool_id"] == "acme.echo"
            assert "palyra/a2ui" not in ok.meta

            assert error_kind(await client.call_tool("acme.echo", {"text": "x" * 101})) == (
                "invalid_input"
            )
            assert error_kind(await client.call_tool("acme.echo", {"nope": 1})) == ("invalid_input")
            assert error_kind(await client.call_tool("acme.nothing", {})) == "not_found"

        events = h.operator.journal(kind="tool.call")["events"]
        receipt = next(e for e in events if e["seq"] == seq)
        assert receipt["payload"]["origin"] == "mcp"
        assert receipt["payload"]["tool_id"] == "acme.echo"
        assert receipt["actor"] == "mcp"
        rejected = h.operator.journal(kind="tool.rejected")["events"]
        # an unknown name never reaches the runner, so only the bad inputs are journaled
        assert {e["payload"]["outcome"] for e in rejected} == {"invalid_input"}

    run(scenario)


def test_timed_out(make: Make) -> None:
    h = make(config="[runtime]\ntimeout_ms = 150\n")  # acme.spin runs for 400 ms

    async def scenario() -> None:
        async with h.connect() as client:
            result = await client.call_tool("acme.spin", {})
            assert error_kind(result) == "timed_out"
        events = h.operator.journal(kind="tool.call")["events"]
        assert [e["payload"]["outcome"] for e in events] == ["timed_out"]

    run(scenario)


def test_quarantined_skill_is_refused_and_gone(make: Make) -> None:
    h = make()

    async def scenario() -> None:
        async with h.connect() as client:
            assert tool_names(await client.list_tools()) == FIXTURE_TOOLS
            await h.act(lambda s: s.quarantine(F.SKILL_ID, reason="test"))
            assert (await client.list_tools(cache_mode="refresh")).tools == []
            result = await client.call_tool("acme.echo", {"text": "hi"})
            assert error_kind(result) == "skill_not_active"
            assert result.meta is not None
            assert result.meta["details"]["status"] == "quarantined"

    run(scenario)


# ---- approvals --------------------------------------------------------------------------------
def _approval_scenario(h: Harness, approve: bool) -> tuple[types.CallToolResult, list[str]]:
    results: list[types.CallToolResult] = []
    reported: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append((progress, total, message))

    async def decide() -> None:
        with anyio.fail_after(20):
            while not (pending := await h.act(pending_approvals)):
                await anyio.sleep(0.05)
            while not reported:  # the caller hears that it waits before anyone decides
                await anyio.sleep(0.05)
        assert pending[0]["tool_id"] == "acme.guarded"
        assert pending[0]["requested_by"] == "mcp"
        approval_id = pending[0]["approval_id"]
        await h.act(lambda s: s.decide_approval(approval_id, approve=approve, reason="test"))

    async def scenario() -> None:
        async with h.connect() as client, anyio.create_task_group() as tg:

            async def call() -> None:
                result = await client.call_tool(
                    "acme.guarded", {"text": "ok?"}, progress_callback=on_progress
                )
                results.append(result)

            tg.start_soon(call)
            await decide()

    run(scenario)
    values = [value for value, _total, _message in reported]
    assert values == sorted(values)
    assert all(total and total > 0 for _value, total, _message in reported)
    return results[0], [message or "" for _value, _total, message in reported]


def test_approval_approved_with_progress(make: Make) -> None:
    h = make()
    result, messages = _approval_scenario(h, approve=True)
    assert not result.is_error
    assert result.structured_content == {"text": "ok?"}
    assert result.meta is not None
    approval_id = result.meta["approval_id"]
    assert approval_id
    assert f"palyra approvals approve {approval_id}" in messages[0]


def test_approval_denied(make: Make) -> None:
    h = make()
    result, _messages = _approval_scenario(h, approve=False)
    assert error_kind(result) == "approval_denied"


def test_approval_timeout(make: Make) -> None:
    h = make(config="[runner]\napproval_timeout_s = 0.5\n")

    async def scenario() -> None:
        async with h.connect() as client:
            result = await client.call_tool("acme.guarded", {"text": "late"})
            assert error_kind(result) == "approval_timeout"
        expired = h.operator.list_approvals("expired")["approvals"]
        assert [a["tool_id"] for a in expired] == ["acme.guarded"]

    run(scenario)


# ---- listChanged ------------------------------------------------------------------------------
def _changes(
    tmp_path: Path,
) -> list[tuple[str, Any, set[str]]]:
    """Each operator change and the tool names listed after it."""
    other = F.other_skill(tmp_path)
    others = {t.replace("acme.", "acme.other_") for t in FIXTURE_TOOLS}
    both = FIXTURE_TOOLS | others
    return [
        ("install", lambda s: s.install_file(other, allow_tofu=True), both),
        ("disable", lambda s: s.disable(F.OTHER_SKILL_ID), FIXTURE_TOOLS),
        ("enable", lambda s: s.enable(F.OTHER_SKILL_ID), both),
        ("quarantine", lambda s: s.quarantine(F.SKILL_ID, reason="test"), others),
        ("remove", lambda s: s.remove(F.OTHER_SKILL_ID), set()),
    ]


async def _expect_changes(
    h: Harness, client: Client, changes: list[tuple[str, Any, set[str]]], next_event: Any
) -> None:
    for what, action, expected in changes:
        await h.act(action)
        with anyio.fail_after(NOTIFY_TIMEOUT_S):
            await next_event()
        listed = await client.list_tools(cache_mode="refresh")
        assert tool_names(listed) == expected, what


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_list_changed_is_announced(make: Make, tmp_path: Path, mode: str) -> None:
    """2025-era clients get notifications/tools/list_changed; 2026-07-28 ones listen."""
    h = make()
    changes = _changes(tmp_path)
    received: anyio.Event = anyio.Event()
    notified = 0

    async def on_message(message: IncomingMessage) -> None:
        nonlocal received, notified
        if isinstance(message, types.ToolListChangedNotification):
            notified += 1
            received.set()

    async def next_notification() -> None:
        nonlocal received
        await received.wait()
        received = anyio.Event()

    async def scenario() -> None:
        async with h.connect(mode=mode, message_handler=on_message) as client:
            caps = client.server_capabilities
            assert caps.tools is not None
            assert tool_names(await client.list_tools()) == FIXTURE_TOOLS
            if mode == "legacy":
                assert client.protocol_version == "2025-11-25"
                assert caps.tools.list_changed is True
                await _expect_changes(h, client, changes, next_notification)
                assert notified == len(changes)
                return
            assert client.protocol_version == "2026-07-28"
            async with client.listen(tools_list_changed=True) as subscription:
                assert subscription.honored.tools_list_changed is True
                events = subscription.__aiter__()

                async def next_event() -> None:
                    await events.__anext__()

                await _expect_changes(h, client, changes, next_event)

    run(scenario)


# ---- pure helpers -----------------------------------------------------------------------------
def test_name_mapping_and_a2ui() -> None:
    assert mcp_tool_name("acme.echo") == "acme.echo"
    assert mcp_tool_name("acme:weird tool") == "acme_weird_tool"
    assert len(mcp_tool_name("a" * 200)) == 128
    doc: dict[str, Any] = {"v": 1, "surface": "main", "components": []}
    assert is_a2ui(doc)
    assert not is_a2ui({"v": 2, "surface": "main", "components": []})
    assert not is_a2ui({"text": "hi"})


def test_a_tool_of_two_skills_is_listed_twice(tmp_path: Path) -> None:
    from palyra.mcp.tools import exposed_tools

    service = Service.open(tmp_path / "state")
    try:
        service.install_file(F.write_artifact(tmp_path), allow_tofu=True)
        service.install_file(F.other_skill(tmp_path, same_tool_ids=True), allow_tofu=True)
        table = exposed_tools(service)
    finally:
        service.close()
    assert len(table) == 8
    echoes = sorted(
        (entry.tool.skill_id, name) for name, entry in table.items() if entry.tool.id == "acme.echo"
    )
    assert echoes[0] == (F.SKILL_ID, "acme.echo")
    assert echoes[1][0] == F.OTHER_SKILL_ID
    assert echoes[1][1].startswith("acme.echo-") and len(echoes[1][1]) == len("acme.echo-") + 8


def test_stdio_survives_hostile_lines(tmp_path: Path) -> None:
    """Garbage on stdin (not JSON, wrong shapes, a 100k-deep array, invalid UTF-8) gets
    JSON-RPC errors or is dropped; the server then initializes, lists and calls as usual,
    answers the call still running when stdin ends, and exits cleanly without a traceback."""
    state = tmp_path / "state"
    service = Service.open(state)
    try:
        service.install_file(F.write_artifact(tmp_path), allow_tofu=True)
    finally:
        service.close()
    hostile = [
        b"{",
        b"[]",
        b"null",
        b'{"jsonrpc": "2.0"}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}',  # before initialize
        b'{"jsonrpc": "2.0", "id": 2, "method": "no/such"}',
        b'{"jsonrpc": "2.0", "id": 3, "params": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b"\xff\xfe garbage",
    ]
    init = {
        "jsonrpc": "2.0",
        "id": 10,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "hostile", "version": "0"},
        },
    }
    valid = [
        json.dumps(init).encode(),
        b'{"jsonrpc": "2.0", "method": "notifications/initialized"}',
        b'{"jsonrpc": "2.0", "id": 11, "method": "tools/list"}',
        b'{"jsonrpc": "2.0", "id": 12, "method": "tools/call", '
        b'"params": {"name": "acme.spin", "arguments": {}}}',  # still running at EOF
    ]
    process = subprocess.run(
        [sys.executable, "-c", SERVE, str(state)],
        input=b"\n".join([*hostile, *valid]) + b"\n",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert process.returncode == 0, process.stderr.decode(errors="replace")
    assert b"Traceback" not in process.stderr
    replies = [json.loads(line) for line in process.stdout.splitlines() if line.strip()]
    by_id = {reply.get("id"): reply for reply in replies}
    assert by_id[10]["result"]["capabilities"]["tools"]["listChanged"] is True
    assert {tool["name"] for tool in by_id[11]["result"]["tools"]} == FIXTURE_TOOLS
    assert "error" in by_id[2]
    assert by_id[12]["result"]["structuredContent"] == {"spun": True}
