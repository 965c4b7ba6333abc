"""MCP over streamable HTTP at the daemon's ``/mcp``: the SDK's real client against a real
daemon (``running_daemon``), behind the daemon's bearer-token guard."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx2
import pytest
from mcp import types
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

import daemon_fixtures as F
from daemon_server import running_daemon
from palyra.daemon.server import Daemon
from palyra.daemon.service import Service
from test_mcp import TOOLS, error_kind, run


@pytest.fixture
def state(tmp_path: Path) -> Path:
    root = tmp_path / "state"
    service = Service.open(root)
    try:
        service.install_file(F.write_artifact(tmp_path), allow_tofu=True)
    finally:
        service.close()
    return root


@pytest.fixture
def daemon(state: Path) -> Iterator[Daemon]:
    with running_daemon(state) as running:
        yield running


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _headers(daemon: Daemon) -> dict[str, str]:
    return {"Authorization": f"Bearer {daemon.token}"}


@contextlib.asynccontextmanager
async def connect(daemon: Daemon) -> AsyncIterator[tuple[Client, httpx2.AsyncClient]]:
    async with create_mcp_http_client(headers=_headers(daemon)) as http:
        transport = streamable_http_client(daemon.url + "/mcp", http_client=http)
        async with Client(transport, read_timeout_seconds=20) as client:
            yield client, http


def test_refused_without_token(daemon: Daemon) -> None:
    async def scenario() -> None:
        async with create_mcp_http_client() as http:
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
            response = await http.post(daemon.url + "/mcp", json=body)
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["error"]["kind"] == "unauthorized"
            wrong = await http.post(
                daemon.url + "/mcp", json=body, headers={"Authorization": "Bearer nope"}
            )
            assert wrong.status_code == 401

            # The SDK's client gets no session either: its initialize fails.
            transport = streamable_http_client(daemon.url + "/mcp", http_client=http)
            with pytest.raises(BaseException) as refused:
                async with Client(transport, read_timeout_seconds=10) as client:
                    await client.list_tools()
            assert any(isinstance(e, MCPError) for e in _leaves(refused.value))

    run(scenario)


def test_not_in_openapi(daemon: Daemon) -> None:
    async def scenario() -> None:
        async with create_mcp_http_client(headers=_headers(daemon)) as http:
            response = await http.get(daemon.url + "/api/v1/openapi.json")
            assert response.status_code == 200
            assert not any(path.startswith("/mcp") for path in response.json()["paths"])

    run(scenario)


def test_list_call_and_errors(daemon: Daemon) -> None:
    async def scenario() -> None:
        async with connect(daemon) as (client, _http):
            listed = await client.list_tools()
            by_name = {tool.name: tool for tool in listed.tools}
            assert set(by_name) == TOOLS
            echo = by_name["acme.echo"]
            assert echo.meta is not None
            assert echo.meta["palyra/skill_id"] == F.SKILL_ID

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
            assert ok.meta["tool_id"] == "acme.echo"
            assert ok.meta["skill_id"] == F.SKILL_ID

            bad = await client.call_tool("acme.echo", {"text": "x" * 101})
            assert error_kind(bad) == "invalid_input"

        events = daemon.service.journal(kind="tool.call")["events"]
        receipt = next(e for e in events if e["seq"] == seq)
        assert receipt["payload"]["origin"] == "mcp"
        assert receipt["actor"] == "mcp"

    run(scenario)


def test_quarantine_over_http_is_reflected_at_once(daemon: Daemon) -> None:
    async def scenario() -> None:
        async with connect(daemon) as (client, http):
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS
            response = await http.post(
                f"{daemon.url}/api/v1/skills/{F.SKILL_ID}/quarantine", json={"reason": "test"}
            )
            assert response.status_code == 200, response.text
            listed = await client.list_tools(cache_mode="refresh")
            assert listed.tools == []
            result = await client.call_tool("acme.echo", {"text": "hi"})
            assert error_kind(result) == "skill_not_active"

    run(scenario)


def test_quarantine_via_service_is_reflected_at_once(daemon: Daemon) -> None:
    async def scenario() -> None:
        async with connect(daemon) as (client, _http):
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS
            daemon.service.quarantine(F.SKILL_ID, reason="test")
            listed = await client.list_tools(cache_mode="refresh")
            assert listed.tools == []
            result = await client.call_tool("acme.echo", {"text": "hi"})
            assert error_kind(result) == "skill_not_active"

    run(scenario)
