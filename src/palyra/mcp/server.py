"""An MCP server over the service layer: each ACTIVE current skill version's tools.

* ``tools/list`` is computed per request from the store, so a quarantine, disable or enable
  shows up on the very next listing.
* MCP tool name = the Palyra tool id when it fits the MCP tool-name rule
  ``[A-Za-z0-9._-]{1,128}`` (``acme.echo`` stays ``acme.echo``). Otherwise (see
  :func:`mcp_tool_name`) every other character becomes ``_`` and the name is cut to 128; two
  tools that land on one name (also the same tool id in two skills) get ``-<8 hex of
  sha256(skill_id/tool_id)>`` appended, the first in (skill_id, tool_id) order keeping the plain
  name. The original ids are in each tool's ``_meta`` (``palyra/skill_id``, ``palyra/tool_id``).
* ``tools/call`` runs ``Service.run(..., principal="mcp", origin="mcp")`` on a worker thread,
  so a call waiting for an operator's approval never blocks the server. Failures are tool
  results with ``isError`` true, text ``<kind>: <message>`` and ``_meta.kind`` — never a
  protocol error.
* :func:`mount_http` serves the same server over MCP streamable HTTP at ``/mcp`` on the
  daemon's app (behind its bearer-token guard); the returned session manager's ``run()``
  must be entered for the app's lifetime (the daemon's lifespan does).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from mcp import types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from palyra import __version__
from palyra.daemon import lifecycle
from palyra.daemon.service import Service
from palyra.errors import NotFoundError, PalyraError, UsageError
from palyra.skills.manifest import Tool
from palyra.store.base import SkillStatus

log = logging.getLogger("palyra.mcp")

APPROVAL_TIMEOUT_ENV = "PALYRA_MCP_APPROVAL_TIMEOUT_S"
PRINCIPAL = "mcp"
ORIGIN = "mcp"
MAX_NAME = 128
_NAME_OK = re.compile(r"[A-Za-z0-9._-]{1,128}")
_NAME_BAD_CHAR = re.compile(r"[^A-Za-z0-9._-]")

META_A2UI = "palyra/a2ui"
HTTP_PATH = "/mcp"


@dataclass(frozen=True)
class ExposedTool:
    name: str  # the MCP tool name
    skill_id: str
    version: str
    tool: Tool


def mcp_tool_name(tool_id: str) -> str:
    """The MCP name of a tool id before collision handling (see the module docstring)."""
    if _NAME_OK.fullmatch(tool_id):
        return tool_id
    return (_NAME_BAD_CHAR.sub("_", tool_id) or "_")[:MAX_NAME]


def _disambiguated(name: str, skill_id: str, tool_id: str) -> str:
    suffix = "-" + hashlib.sha256(f"{skill_id}/{tool_id}".encode()).hexdigest()[:8]
    return name[: MAX_NAME - len(suffix)] + suffix


def exposed_tools(service: Service, *, active_only: bool = True) -> dict[str, ExposedTool]:
    """MCP name → tool, over every tool of every ACTIVE current skill version (fresh each time;
    with ``active_only=False`` of every current version, whatever its status)."""
    with service.ctx.store.read() as tx:
        records = [
            r
            for r in tx.skill_versions()
            if r.current and (r.status is SkillStatus.ACTIVE or not active_only)
        ]
    found: list[tuple[str, str, Tool]] = []
    for record in records:
        manifest = lifecycle.manifest_of(service.ctx, record)
        if manifest is None:  # a broken artifact cannot run; it must not hide the others
            log.warning(
                "skipping %s %s: its artifact cannot be loaded", record.skill_id, record.version
            )
            continue
        found += [(record.skill_id, record.version, tool) for tool in manifest.tools]
    found.sort(key=lambda item: (item[0], item[2].id))
    table: dict[str, ExposedTool] = {}
    for skill_id, version, tool in found:
        name = mcp_tool_name(tool.id)
        if name in table:
            name = _disambiguated(name, skill_id, tool.id)
        table[name] = ExposedTool(name, skill_id, version, tool)
    return table


def _describe(entry: ExposedTool) -> types.Tool:
    tool = entry.tool
    output_schema = dict(tool.output_schema) if tool.output_schema.get("type") == "object" else None
    return types.Tool(
        name=entry.name,
        title=tool.name,
        description=tool.description,
        input_schema=dict(tool.input_schema),
        # MCP (through 2025-11-25) only allows object-rooted output schemas; others are omitted.
        output_schema=output_schema,
        annotations=types.ToolAnnotations(title=tool.name),
        _meta={
            "palyra/skill_id": entry.skill_id,
            "palyra/version": entry.version,
            "palyra/tool_id": tool.id,
            "palyra/requires_approval": tool.risk.needs_approval,
        },
    )


def is_a2ui(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("v") == 1
        and "surface" in value
        and isinstance(value.get("components"), list)
    )


def _error_result(
    kind: str, message: str, details: dict[str, Any] | None = None
) -> types.CallToolResult:
    meta: dict[str, Any] = {"kind": kind}
    if details:
        meta["details"] = details
    return types.CallToolResult(
        content=[types.TextContent(text=f"{kind}: {message}")], is_error=True, _meta=meta
    )


def _success_result(receipt: dict[str, Any]) -> types.CallToolResult:
    output = receipt.get("output")
    meta: dict[str, Any] = {
        "receipt_seq": receipt.get("receipt_seq"),
        "fuel_used": receipt.get("fuel_used"),
        "duration_ms": receipt.get("duration_ms"),
        "skill_id": receipt.get("skill_id"),
        "version": receipt.get("version"),
        "tool_id": receipt.get("tool_id"),
        "approval_id": receipt.get("approval_id"),
    }
    if is_a2ui(output):
        meta[META_A2UI] = True
    text = json.dumps(output, separators=(",", ":"), ensure_ascii=False)
    return types.CallToolResult(
        content=[types.TextContent(text=text)],
        # Structured content is a JSON object before protocol 2026-07-28: other values go as
        # text only (their tools declare no output schema, see _describe).
        structured_content=output if isinstance(output, dict) else None,
        _meta=meta,
    )


def approval_timeout_s(service: Service) -> float:
    """``$PALYRA_MCP_APPROVAL_TIMEOUT_S`` when set, else the daemon config's runner default."""
    raw = os.environ.get(APPROVAL_TIMEOUT_ENV, "").strip()
    if not raw:
        return service.ctx.config.runner.approval_timeout_s
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise UsageError(
            f"${APPROVAL_TIMEOUT_ENV} must be a positive number of seconds, not {raw!r}"
        )
    return value


def call_tool(
    service: Service, name: str, arguments: dict[str, Any] | None, timeout_s: float
) -> types.CallToolResult:
    """One ``tools/call``, blocking (run it on a worker thread)."""
    try:
        entry = exposed_tools(service).get(name)
        if entry is None:
            # A tool of a quarantined/disabled skill: let the runner refuse it, so the caller
            # learns why (skill_not_active) and the attempt is journaled.
            entry = exposed_tools(service, active_only=False).get(name)
        if entry is None:
            raise NotFoundError(f"no active tool named {name!r}")
        receipt = service.run(
            entry.skill_id,
            entry.tool.id,
            {} if arguments is None else arguments,
            principal=PRINCIPAL,
            origin=ORIGIN,
            approval_timeout_s=timeout_s,
        )
    except PalyraError as exc:
        return _error_result(exc.kind, exc.message, exc.details)
    except Exception as exc:  # a bug must not take the connection down
        log.exception("tools/call %s failed", name)
        return _error_result("internal", f"{type(exc).__name__}: {exc}")
    return _success_result(receipt)


def build_server(service: Service) -> Server[Any]:
    """The low-level MCP server over ``service`` (which the caller opens and closes)."""
    timeout_s = approval_timeout_s(service)

    async def on_list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        table = await anyio.to_thread.run_sync(exposed_tools, service)
        return types.ListToolsResult(tools=[_describe(entry) for entry in table.values()])

    async def on_call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        # abandon_on_cancel: a cancelled request must not wait for the approval it holds.
        return await anyio.to_thread.run_sync(
            call_tool, service, params.name, params.arguments, timeout_s, abandon_on_cancel=True
        )

    return Server(
        "palyra",
        version=__version__,
        instructions="Palyra skills: signed, audited, sandboxed WebAssembly tools. "
        "Tools that need an operator's approval wait for `palyra approvals approve`.",
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )


async def serve(service: Service) -> None:
    """Serve ``service`` over this process's stdin/stdout until stdin reaches EOF."""
    server = build_server(service)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


class _HttpEndpoint:
    """The plain-ASGI endpoint at :data:`HTTP_PATH` (a class instance, so Starlette routes
    every method to it as ASGI rather than as a request/response function)."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.manager.handle_request(scope, receive, send)


def mount_http(
    app: Starlette, service: Service, path: str = HTTP_PATH
) -> StreamableHTTPSessionManager:
    """Serve ``service``'s MCP server over streamable HTTP at ``path`` of ``app`` (kept out of
    the OpenAPI document). Enter the returned manager's ``run()`` for the app's lifetime."""
    manager = StreamableHTTPSessionManager(build_server(service))
    app.router.routes.append(Route(path, _HttpEndpoint(manager), include_in_schema=False))
    return manager


def serve_stdio(state_root: Path) -> None:
    """Open the state root's service and serve MCP over stdio until EOF (logs go to stderr)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="palyra-mcp %(levelname)s %(message)s")
    service = Service.open(state_root)
    try:
        anyio.run(serve, service)
    finally:
        service.close()
