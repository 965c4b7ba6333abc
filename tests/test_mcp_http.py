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
