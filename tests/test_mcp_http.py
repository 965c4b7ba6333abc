"""What only the HTTP transport has: the daemon's guard in front of ``/mcp``, its absence
from the OpenAPI document, and a quarantine through the HTTP API reaching MCP clients.
Everything both transports share is in ``test_mcp.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

import daemon_fixtures as F
from mcp_harness import FIXTURE_TOOLS, Harness, error_kind, harnesses, run, tool_names


@pytest.fixture
def h(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    with harnesses("http", tmp_path, monkeypatch) as make:
        yield make()


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def test_refused_without_token(h: Harness) -> None:
    assert h.daemon is not None
    url = h.daemon.url + "/mcp"

    async def scenario() -> None:
        async with create_mcp_http_client() as http:
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
            response = await http.post(url, json=body)
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["error"]["kind"] == "unauthorized"
            wrong = await http.post(url, json=body, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401

            # The SDK's client gets no session either: its first request fails.
            transport = streamable_http_client(url, http_client=http)
            with pytest.raises(BaseException) as refused:
                async with Client(transport, read_timeout_seconds=10) as client:
                    await client.list_tools()
            assert any(isinstance(e, MCPError) for e in _leaves(refused.value))

    run(scenario)


def test_not_in_openapi(h: Harness) -> None:
    assert h.daemon is not None
    url = h.daemon.url + "/api/v1/openapi.json"
    headers = {"Authorization": f"Bearer {h.daemon.token}"}

    async def scenario() -> None:
        async with create_mcp_http_client(headers=headers) as http:
            response = await http.get(url)
            assert response.status_code == 200
            assert not any(path.startswith("/mcp") for path in response.json()["paths"])

    run(scenario)


def test_quarantine_through_the_api_reaches_mcp(h: Harness) -> None:
    assert h.daemon is not None
    daemon = h.daemon

    async def scenario() -> None:
        async with h.connect() as client:
            assert tool_names(await client.list_tools()) == FIXTURE_TOOLS
            headers = {"Authorization": f"Bearer {daemon.token}"}
            async with create_mcp_http_client(headers=headers) as http:
                response = await http.post(
                    f"{daemon.url}/api/v1/skills/{F.SKILL_ID}/quarantine", json={"reason": "t"}
                )
            assert response.status_code == 200, response.text
            assert (await client.list_tools(cache_mode="refresh")).tools == []
            result = await client.call_tool("acme.echo", {"text": "hi"})
            assert error_kind(result) == "skill_not_active"

    run(scenario)


HOSTILE_BODIES: list[bytes] = [
    b"{",
    b"",
    b"[]",
    b"null",
    b'"tools/list"',
    b'{"jsonrpc": "2.0"}',
    b'{"jsonrpc": "1.0", "id": 1, "method": "tools/list"}',
    b'{"jsonrpc": "2.0", "id": {"x": 1}, "method": "tools/list"}',
    b'{"jsonrpc": "2.0", "id": 2, "method": "no/such/method"}',
    b'{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": 5}}',
    b'{"jsonrpc": "2.0", "id": 4, "method": "tools/call", '
    b'"params": {"name": "acme.echo", "arguments": [1, 2]}}',
    b'{"jsonrpc": "2.0", "id": 5, "method": "tools/call", '
    b'"params": {"name": "acme.echo", "arguments": {"text": 1e999}}}',
    b'{"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "acme.echo", '
    b'"arguments": {"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}}",
    b"\xff\xfe\x00garbage",
]


def test_hostile_json_rpc_gets_client_errors_and_the_server_keeps_serving(h: Harness) -> None:
    """Raw bodies on an initialized session: each is answered without a 5xx (or refused by
    the body cap), and the session still lists and calls afterwards."""
    assert h.daemon is not None
    url = h.daemon.url + "/mcp"
    base = {
        "Authorization": f"Bearer {h.daemon.token}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }

    async def scenario() -> None:
        async with create_mcp_http_client(headers=base) as http:
            init = {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "hostile", "version": "0"},
                },
            }
            response = await http.post(url, json=init)
            assert response.status_code == 200, response.text
            session = {
                "mcp-session-id": response.headers["mcp-session-id"],
                "mcp-protocol-version": "2025-11-25",
            }
            done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert (await http.post(url, json=done, headers=session)).status_code == 202
            for body in [*HOSTILE_BODIES, b"x" * (2 << 20)]:
                answer = await http.post(url, content=body, headers=session)
                assert answer.status_code < 500, (body[:60], answer.status_code, answer.text)
            listed = {"jsonrpc": "2.0", "id": 99, "method": "tools/list"}
            answer = await http.post(url, json=listed, headers=session)
            assert answer.status_code == 200
            assert "acme.echo" in answer.text

        async with h.connect() as client:  # and a fresh client is served as ever
            assert tool_names(await client.list_tools()) == FIXTURE_TOOLS
            assert not (await client.call_tool("acme.echo", {"text": "still"})).is_error

    run(scenario)
