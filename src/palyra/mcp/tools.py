"""Which tools MCP clients see and what a call returns, over the service layer.

* The exposed tools are every tool of every ACTIVE current skill version, read from the store
  each time (so a quarantine, disable or enable shows on the very next listing).
* Each tool is described by :func:`palyra.daemon.tool_defs.to_mcp` (names, schemas,
  annotations, ``_meta``), so ``palyra tools export --format mcp`` prints what clients see;
  two tools that land on one name (also one tool id in two skills) are both listed, the later
  with a hash suffix. The original ids are in each tool's ``_meta`` (``palyra/skill_id``,
  ``palyra/tool_id``).
* A call runs ``Service.run(..., principal="mcp", origin="mcp")``, so approvals, grants,
  limits, validation and receipts are those of every other path. Failures are tool results
  with ``isError`` true, text ``<kind>: <message>`` and ``_meta.kind`` — never a protocol
  error, so a model reads why.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcp import types

from palyra.daemon.service import Service
from palyra.daemon.tool_defs import (
    ToolDef,
    UnsupportedToolSchema,
    collect_tools,
    input_parameters,
    mcp_tool_name,
    to_mcp,
)
from palyra.errors import NotFoundError, PalyraError, UsageError
from palyra.store.base import SkillStatus

log = logging.getLogger("palyra.mcp")

APPROVAL_TIMEOUT_ENV = "PALYRA_MCP_APPROVAL_TIMEOUT_S"
PRINCIPAL = "mcp"
ORIGIN = "mcp"

META_A2UI = "palyra/a2ui"


@dataclass(frozen=True)
class ExposedTool:
    name: str  # the MCP tool name
    tool: ToolDef
    described: types.Tool


def exposed_tools(service: Service) -> dict[str, ExposedTool]:
    """MCP name → tool, over every tool of every ACTIVE current skill version (fresh each
    time), described exactly as ``palyra tools export --format mcp`` prints them."""
    defs = [d for d in collect_tools(service) if _listable(d)]
    table: dict[str, ExposedTool] = {}
    for d, raw in zip(defs, to_mcp(defs, disambiguate=True), strict=True):
        table[raw["name"]] = ExposedTool(raw["name"], d, types.Tool.model_validate(raw))
    return table


Fingerprint = frozenset[tuple[str, str, str]]


def fingerprint(service: Service) -> Fingerprint:
    """What decides the tool list: every ACTIVE current version and its artifact (one small
    read, where describing the tools loads every manifest)."""
    with service.ctx.store.read() as tx:
        return frozenset(
            (r.skill_id, r.version, r.artifact_sha256)
            for r in tx.skill_versions()
            if r.current and r.status is SkillStatus.ACTIVE
        )


class ToolTable:
    """The exposed tools of one server, described again only when :func:`fingerprint`
    changes (safe from several threads: a stale entry is replaced on the next read)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._cached: tuple[Fingerprint, dict[str, ExposedTool]] | None = None

    def current(self) -> dict[str, ExposedTool]:
        seen = fingerprint(self.service)
        cached = self._cached
        if cached is not None and cached[0] == seen:
            return cached[1]
        table = exposed_tools(self.service)
        self._cached = (seen, table)
        return table


def _listable(d: ToolDef) -> bool:
    try:
        input_parameters(d)
    except UnsupportedToolSchema as exc:  # one odd tool must not hide every other one
        log.warning("not listing %s: %s", d.id, exc.message)
        return False
    return True


def _inactive_tool(service: Service, name: str) -> tuple[str, str] | None:
    """(skill_id, tool_id) of a current tool of a quarantined or disabled skill named
    ``name``, so its call is refused by the runner (``skill_not_active``, journaled) rather
    than reported as unknown."""
    for skill in service.list_skills().get("skills", []):
        for tool in skill.get("tools", []):
            if mcp_tool_name(str(tool["id"])) == name:
                return str(skill["skill_id"]), str(tool["id"])
    return None


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
        # text only (their tools declare no output schema, see tool_defs.output_schema).
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
    tools: ToolTable,
    name: str,
    arguments: dict[str, Any] | None,
    timeout_s: float,
    on_approval_pending: Callable[[dict[str, Any]], None] | None = None,
) -> types.CallToolResult:
    """One ``tools/call``, blocking (run it on a worker thread); ``on_approval_pending`` hears
    when it starts waiting for an operator (see ``Service.run``)."""
    service = tools.service
    try:
        entry = tools.current().get(name)
        target = (entry.tool.skill_id, entry.tool.id) if entry else _inactive_tool(service, name)
        if target is None:
            raise NotFoundError(f"no active tool named {name!r}")
        receipt = service.run(
            *target,
            {} if arguments is None else arguments,
            principal=PRINCIPAL,
            origin=ORIGIN,
            approval_timeout_s=timeout_s,
            on_approval_pending=on_approval_pending,
        )
    except PalyraError as exc:
        return _error_result(exc.kind, exc.message, exc.details)
    except Exception as exc:  # a bug must not take the connection down
        log.exception("tools/call %s failed", name)
        return _error_result("internal", f"{type(exc).__name__}: {exc}")
    return _success_result(receipt)
