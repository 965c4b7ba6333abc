"""Installed tools as definitions other agent frameworks understand (``palyra tools export``).

:func:`collect_tools` reads every tool of every *active* skill (its current version) through
the service interface only — ``list_skills()`` and ``info()`` — so it works the same against
an in-process :class:`~palyra.daemon.service.Service` and a running daemon's client. The
formatters are pure:

* :func:`to_mcp` — MCP ``Tool`` objects (``name``, ``title``, ``description``,
  ``inputSchema``, ``outputSchema``, ``annotations``, ``_meta``) — the very objects the MCP
  server (``palyra mcp serve``, ``/mcp``) lists, so an export and a live listing agree;
* :func:`to_openai` — Chat Completions function tools;
* :func:`to_anthropic` — Messages API tools.

MCP tool names are the tool ids when they fit MCP's name rule ``[A-Za-z0-9._-]{1,128}``; see
:func:`mcp_tool_name` for the others. Annotations come from the tool's ``risk`` and the
skill's capabilities: ``destructiveHint`` is set for a tool that needs an operator's approval
(sensitive or ``requires_approval``); ``openWorldHint`` says whether the skill may reach
anything outside this machine (http egress or chat channels declared) — a skill that only
has its own storage is a closed world.

OpenAI and Anthropic tool names must match ``^[a-zA-Z0-9_-]{1,64}$`` while Palyra tool ids
use ``[a-z0-9._-:]``, so ids map through :func:`provider_name`; :func:`provider_name_map`
is the reverse map (provider name → tool id) and refuses collisions with
:class:`ToolNameCollision`. Schemas pass through unchanged except that an input schema without
a top-level ``type`` gets ``"type": "object"``; any other top-level type is refused with
:class:`UnsupportedToolSchema` (tool arguments are always a JSON object).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from palyra.daemon.errors import SkillNotActive, SkillNotInstalled
from palyra.errors import NotFoundError, PalyraError, UsageError

JsonObject = dict[str, Any]

PROVIDER_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"
PROVIDER_NAME_RE = re.compile(PROVIDER_NAME_PATTERN)
PROVIDER_NAME_MAX = 64
MCP_NAME_MAX = 128
_MCP_NAME_OK = re.compile(r"[A-Za-z0-9._-]{1,128}")
_MCP_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9._-]")
_HASH_CHARS = 8
_NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9_-]")

APPROVAL_NOTE = (
    "Requires operator approval: each call waits until an operator approves it, "
    "and is refused if denied."
)
META_PREFIX = "palyra/"


class ToolNameCollision(PalyraError):
    """Two exported tools would get the same provider-facing name."""

    kind = "tool_name_collision"


class UnsupportedToolSchema(PalyraError):
    """A tool's input schema cannot be exported (its top level is not a JSON object)."""

    kind = "unsupported_tool_schema"


class ExportFormat(StrEnum):
    MCP = "mcp"
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


def parse_format(raw: str) -> ExportFormat:
    """The export format named by ``raw`` (case-insensitive), or a typed usage error."""
    try:
        return ExportFormat(raw.strip().lower())
    except ValueError:
        choices = "|".join(f.value for f in ExportFormat)
        raise UsageError(f"unknown tool export format '{raw}' (expected {choices})") from None


class ToolSource(Protocol):
    """What :func:`collect_tools` needs: a ``Service`` or a ``DaemonClient``."""

    def list_skills(self) -> dict[str, Any]: ...

    def info(self, skill_id: str, version: str | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ToolDef:
    """One tool of one installed, active skill version."""

    skill_id: str
    version: str
    id: str
    name: str
    description: str
    input_schema: JsonObject
    output_schema: JsonObject
    requires_approval: bool
    open_world: bool = False  # the skill declares http egress or chat channels

    def to_json(self) -> JsonObject:
        return {
            "skill_id": self.skill_id,
            "version": self.version,
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
            "requires_approval": self.requires_approval,
            "open_world": self.open_world,
        }


# ---- collecting -----------------------------------------------------------------------------
def collect_tools(service: ToolSource, skill_id: str | None = None) -> list[ToolDef]:
    """Every tool of every active skill (current version), sorted by tool id.

    With ``skill_id``, only that skill's tools; a skill that is not installed raises
    ``not_found`` and one that is quarantined or disabled raises ``skill_not_active``.
    An active skill whose stored artifact cannot be loaded contributes no tools (as in
    ``list_skills``; ``palyra skills verify`` reports it).
    """
    skills: list[JsonObject] = list(service.list_skills().get("skills", []))
    if skill_id is not None:
        skills = [s for s in skills if s.get("skill_id") == skill_id]
        if not skills:
            raise SkillNotInstalled(f"skill '{skill_id}' is not installed")
        if not _is_active(skills[0]):
            status = skills[0].get("status")
            raise SkillNotActive(f"skill '{skill_id}' is {status}: its tools are not exported")
    found: list[ToolDef] = []
    for skill in skills:
        if _is_active(skill):
            found.extend(_skill_tools(service, skill))
    return sorted(found, key=lambda d: (d.id, d.skill_id))


def _is_active(skill: JsonObject) -> bool:
    return skill.get("status") == "active" and skill.get("current_version") is not None


def _skill_tools(service: ToolSource, skill: JsonObject) -> list[ToolDef]:
    skill_id = str(skill["skill_id"])
    version = str(skill["current_version"])
    body = service.info(skill_id, version)
    manifest = body.get("manifest")
    if not isinstance(manifest, dict):
        return []
    # The daemon's own approval rule (sensitive tools are gated too) as list_skills reports it.
    gated = {str(t["id"]): bool(t.get("requires_approval")) for t in skill.get("tools", [])}
    grants = body.get("capabilities") or {}
    open_world = bool(grants.get("http_hosts") or grants.get("channels"))
    tools: list[JsonObject] = manifest.get("entrypoints", {}).get("tools", [])
    defs = []
    for tool in tools:
        risk = tool.get("risk", {})
        fallback = bool(risk.get("requires_approval")) or bool(risk.get("default_sensitive"))
        defs.append(
            ToolDef(
                skill_id=skill_id,
                version=version,
                id=str(tool["id"]),
                name=str(tool["name"]),
                description=str(tool["description"]),
                input_schema=dict(tool.get("input_schema") or {}),
                output_schema=dict(tool.get("output_schema") or {}),
                requires_approval=gated.get(str(tool["id"]), fallback),
                open_world=open_world,
            )
        )
    return defs


# ---- names ----------------------------------------------------------------------------------
def provider_name(tool_id: str) -> str:
    """The deterministic OpenAI/Anthropic name of a tool id: characters outside
    ``[a-zA-Z0-9_-]`` become ``_`` (``acme.echo`` → ``acme_echo``); a name longer than 64
    keeps its first 55 characters plus ``_`` and 8 hex digits of the id's SHA-256."""
    name = _NOT_ALLOWED.sub("_", tool_id) or "_"
    if len(name) > PROVIDER_NAME_MAX:
        digest = hashlib.sha256(tool_id.encode()).hexdigest()[:_HASH_CHARS]
        name = f"{name[: PROVIDER_NAME_MAX - _HASH_CHARS - 1]}_{digest}"
    return name


def mcp_tool_name(tool_id: str) -> str:
    """The MCP name of a tool id before collision handling: the id itself when it fits
    ``[A-Za-z0-9._-]{1,128}``, else every other character becomes ``_``, cut to 128."""
    if _MCP_NAME_OK.fullmatch(tool_id):
        return tool_id
    return (_MCP_NOT_ALLOWED.sub("_", tool_id) or "_")[:MCP_NAME_MAX]


def mcp_names(defs: Sequence[ToolDef], *, disambiguate: bool = False) -> list[str]:
    """The MCP name of each of ``defs`` (in order). Two tools landing on one name (also one
    tool id in two skills) raise :class:`ToolNameCollision`, or with ``disambiguate`` (the
    live server, which must list every tool) the later one in (skill_id, tool_id) order gets
    ``-<8 hex of sha256(skill_id/tool_id)>`` appended."""
    taken: dict[str, ToolDef] = {}
    names: dict[int, str] = {}
    order = sorted(range(len(defs)), key=lambda i: (defs[i].skill_id, defs[i].id))
    for i in order:
        d = defs[i]
        name = mcp_tool_name(d.id)
        other = taken.get(name)
        if other is not None:
            if not disambiguate:
                raise ToolNameCollision(
                    f"tools '{other.id}' ({other.skill_id}) and '{d.id}' ({d.skill_id}) would "
                    f"both be exported as '{name}'",
                    details={"name": name, "tools": [other.to_json(), d.to_json()]},
                )
            suffix = "-" + hashlib.sha256(f"{d.skill_id}/{d.id}".encode()).hexdigest()[:8]
            name = name[: MCP_NAME_MAX - len(suffix)] + suffix
        taken[name] = d
        names[i] = name
    return [names[i] for i in range(len(defs))]


def provider_name_map(defs: Iterable[ToolDef]) -> dict[str, str]:
    """Provider name → tool id for ``defs``; raises :class:`ToolNameCollision` when two
    tools (two ids, or one id exported by two skills) would share a name."""
    reverse: dict[str, str] = {}
    owners: dict[str, ToolDef] = {}
    for d in defs:
        name = provider_name(d.id)
        other = owners.get(name)
        if other is not None:
            raise ToolNameCollision(
                f"tools '{other.id}' ({other.skill_id}) and '{d.id}' ({d.skill_id}) would "
                f"both be exported as '{name}'",
                details={"name": name, "tools": [other.to_json(), d.to_json()]},
            )
        owners[name] = d
        reverse[name] = d.id
    return reverse


def tool_id_for(name: str, defs: Iterable[ToolDef]) -> str:
    """The tool id a provider-facing ``name`` stands for (``not_found`` if none)."""
    reverse = provider_name_map(defs)
    if name not in reverse:
        raise NotFoundError(f"no exported tool is named '{name}'")
    return reverse[name]


# ---- schemas and descriptions -----------------------------------------------------------------
def input_parameters(d: ToolDef) -> JsonObject:
    """The tool's input schema with a top-level ``type: object`` (added when absent);
    raises :class:`UnsupportedToolSchema` for any other top-level type."""
    schema = d.input_schema
    declared = schema.get("type")
    if declared == "object":
        return dict(schema)
    if declared is None:
        return {"type": "object", **schema}
    raise UnsupportedToolSchema(
        f"tool '{d.id}' ({d.skill_id}) input_schema has top-level type {declared!r}; "
        "exported tools need an object",
        details={"tool_id": d.id, "skill_id": d.skill_id, "type": declared},
    )


def output_schema(d: ToolDef) -> JsonObject | None:
    """The output schema when it declares a top-level object (MCP's ``outputSchema`` must),
    else ``None`` — an output without that promise is exported without a schema."""
    return dict(d.output_schema) if d.output_schema.get("type") == "object" else None


def description(d: ToolDef) -> str:
    text = d.description.strip()
    if not d.requires_approval:
        return text
    return f"{text} ({APPROVAL_NOTE})" if text else APPROVAL_NOTE


# ---- formats --------------------------------------------------------------------------------
def mcp_annotations(d: ToolDef) -> JsonObject:
    annotations: JsonObject = {"title": d.name, "openWorldHint": d.open_world}
    if d.requires_approval:
        annotations["destructiveHint"] = True
    return annotations


def to_mcp(defs: Sequence[ToolDef], *, disambiguate: bool = False) -> list[JsonObject]:
    """MCP ``Tool`` objects named by :func:`mcp_names`; approval and provenance are in
    ``_meta`` under ``palyra/``."""
    tools = []
    for d, name in zip(defs, mcp_names(defs, disambiguate=disambiguate), strict=True):
        tool: JsonObject = {
            "name": name,
            "title": d.name,
            "description": description(d),
            "inputSchema": input_parameters(d),
        }
        out = output_schema(d)
        if out is not None:
            tool["outputSchema"] = out
        tool["annotations"] = mcp_annotations(d)
        tool["_meta"] = {
            f"{META_PREFIX}skill_id": d.skill_id,
            f"{META_PREFIX}version": d.version,
            f"{META_PREFIX}tool_id": d.id,
            f"{META_PREFIX}requires_approval": d.requires_approval,
        }
        tools.append(tool)
    return tools


def to_openai(defs: Sequence[ToolDef]) -> list[JsonObject]:
    """Chat Completions function tools (``strict: false``: schemas pass through)."""
    provider_name_map(defs)
    return [
        {
            "type": "function",
            "function": {
                "name": provider_name(d.id),
                "description": description(d),
                "parameters": input_parameters(d),
                "strict": False,
            },
        }
        for d in defs
    ]


def to_anthropic(defs: Sequence[ToolDef]) -> list[JsonObject]:
    """Anthropic Messages API tools."""
    provider_name_map(defs)
    return [
        {
            "name": provider_name(d.id),
            "description": description(d),
            "input_schema": input_parameters(d),
        }
        for d in defs
    ]


def export(defs: Sequence[ToolDef], fmt: ExportFormat) -> list[JsonObject]:
    """``defs`` in ``fmt``."""
    if fmt is ExportFormat.MCP:
        return to_mcp(defs)
    if fmt is ExportFormat.OPENAI:
        return to_openai(defs)
    return to_anthropic(defs)
