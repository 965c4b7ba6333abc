"""``palyra tools export``: installed tools as MCP, OpenAI and Anthropic tool definitions."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner, Result

import daemon_fixtures as F
from palyra.cli.output import CliState
from palyra.cli.tools_cmd import app
from palyra.daemon.service import Service
from palyra.daemon.tool_defs import (
    APPROVAL_NOTE,
    PROVIDER_NAME_PATTERN,
    ExportFormat,
    ToolDef,
    ToolNameCollision,
    UnsupportedToolSchema,
    collect_tools,
    export,
    parse_format,
    provider_name,
    provider_name_map,
    to_anthropic,
    to_mcp,
    to_openai,
    tool_id_for,
)
from palyra.errors import PalyraError
from palyra.skills.build import build_signed_skill_artifact

TOOL_IDS = ["acme.echo", "acme.guarded", "acme.needs_secret", "acme.spin"]

_OBJECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"const": "object"}},
}

# The documented shape of an OpenAI Chat Completions function tool.
OPENAI_TOOL: dict[str, Any] = {
    "type": "object",
    "required": ["type", "function"],
    "additionalProperties": False,
    "properties": {
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": PROVIDER_NAME_PATTERN},
                "description": {"type": "string"},
                "parameters": _OBJECT_SCHEMA,
                "strict": {"type": ["boolean", "null"]},
            },
        },
    },
}

# The documented shape of an Anthropic Messages API (client) tool.
ANTHROPIC_TOOL: dict[str, Any] = {
    "type": "object",
    "required": ["name", "input_schema"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"},
        "description": {"type": "string"},
        "input_schema": _OBJECT_SCHEMA,
    },
}

# The MCP Tool object (schema.ts): inputSchema/outputSchema are object schemas; _meta keys
# are an optional reverse-DNS prefix and a slash before the name.
MCP_TOOL: dict[str, Any] = {
    "type": "object",
    "required": ["name", "inputSchema"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,128}$"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "inputSchema": _OBJECT_SCHEMA,
        "outputSchema": _OBJECT_SCHEMA,
        "annotations": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "title": {"type": "string"},
                "readOnlyHint": {"type": "boolean"},
                "destructiveHint": {"type": "boolean"},
                "idempotentHint": {"type": "boolean"},
                "openWorldHint": {"type": "boolean"},
            },
        },
        "_meta": {
            "type": "object",
            "propertyNames": {
                "pattern": r"^([a-zA-Z][a-zA-Z0-9-]*[a-zA-Z0-9]\.)*[a-zA-Z][a-zA-Z0-9-]*"
                r"[a-zA-Z0-9]/[a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?$"
            },
        },
    },
}


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def svc(state: Path, tmp_path: Path) -> Iterator[Service]:
    service = Service.open(state)
    service.install_file(F.write_artifact(tmp_path), allow_tofu=True)
    try:
        yield service
    finally:
        service.close()


def check_shapes(tools: list[dict[str, Any]], shape: dict[str, Any], schema_key: str) -> None:
    jsonschema.Draft202012Validator.check_schema(shape)
    validator = jsonschema.Draft202012Validator(shape)
    for tool in tools:
        validator.validate(tool)
        body = tool.get("function", tool)
        jsonschema.Draft202012Validator.check_schema(body[schema_key])
        if "outputSchema" in body:
            jsonschema.Draft202012Validator.check_schema(body["outputSchema"])


def tool(tool_id: str, **changes: Any) -> ToolDef:
    fields: dict[str, Any] = {
        "skill_id": "acme.demo",
        "version": "1.0.0",
        "id": tool_id,
        "name": tool_id.rsplit(".", 1)[-1],
        "description": "does things",
        "input_schema": {"type": "object"},
        "output_schema": {"type": "object"},
        "requires_approval": False,
    }
    fields.update(changes)
    return ToolDef(**fields)


# ---- collecting -------------------------------------------------------------------------------
def test_collect_tools_reads_the_active_skill(svc: Service) -> None:
    defs = collect_tools(svc)
    assert [d.id for d in defs] == TOOL_IDS
    assert {d.skill_id for d in defs} == {F.SKILL_ID}
    assert {d.version for d in defs} == {"1.0.0"}
    echo = defs[0]
    assert echo.name == "echo"
    assert echo.description == "echo tool"
    assert echo.input_schema == {
        "type": "object",
        "properties": {"text": {"type": "string", "maxLength": 100}},
        "additionalProperties": False,
    }
    assert echo.output_schema == {"type": "object"}
    assert {d.id for d in defs if d.requires_approval} == {"acme.guarded"}
    assert collect_tools(svc, F.SKILL_ID) == defs


def test_collect_tools_follows_the_current_version(svc: Service, tmp_path: Path) -> None:
    svc.install_file(F.write_artifact(tmp_path, "1.1.0"), allow_tofu=True)
    assert {d.version for d in collect_tools(svc)} == {"1.1.0"}


@pytest.mark.parametrize("status", ["disabled", "quarantined"])
def test_inactive_skills_are_excluded(svc: Service, tmp_path: Path, status: str) -> None:
    svc.install_file(F.other_skill(tmp_path), allow_tofu=True)
    assert len(collect_tools(svc)) == 8
    if status == "disabled":
        svc.disable(F.SKILL_ID, reason="maintenance")
    else:
        svc.quarantine(F.SKILL_ID, reason="suspicious")
    defs = collect_tools(svc)
    assert {d.skill_id for d in defs} == {"acme.other_demo"}
    assert [d.id for d in defs] == sorted(i.replace("acme.", "acme.other_") for i in TOOL_IDS)
    with pytest.raises(PalyraError) as caught:
        collect_tools(svc, F.SKILL_ID)
    assert caught.value.kind == "skill_not_active"
    svc.enable(F.SKILL_ID)
    assert len(collect_tools(svc)) == 8


def test_unknown_skill_is_not_found(svc: Service) -> None:
    with pytest.raises(PalyraError) as caught:
        collect_tools(svc, "acme.nope")
    assert caught.value.kind == "not_found"


def test_no_skills_exports_empty_lists(state: Path) -> None:
    service = Service.open(state)
    try:
        defs = collect_tools(service)
    finally:
        service.close()
    assert defs == []
    assert [export(defs, fmt) for fmt in ExportFormat] == [[], [], []]


# ---- formats ----------------------------------------------------------------------------------
def test_openai_format(svc: Service) -> None:
    defs = collect_tools(svc)
    tools = to_openai(defs)
    check_shapes(tools, OPENAI_TOOL, "parameters")
    assert [t["function"]["name"] for t in tools] == [
        "acme_echo",
        "acme_guarded",
        "acme_needs_secret",
        "acme_spin",
    ]
    echo = tools[0]["function"]
    assert echo["parameters"] == defs[0].input_schema
    assert echo["strict"] is False
    assert echo["description"] == "echo tool"
    assert APPROVAL_NOTE in tools[1]["function"]["description"]
    assert tools[1]["function"]["description"].startswith("guarded tool")


def test_anthropic_format(svc: Service) -> None:
    defs = collect_tools(svc)
    tools = to_anthropic(defs)
    check_shapes(tools, ANTHROPIC_TOOL, "input_schema")
    assert [t["name"] for t in tools] == [provider_name(d.id) for d in defs]
    assert tools[0]["input_schema"] == defs[0].input_schema
    assert [APPROVAL_NOTE in t["description"] for t in tools] == [False, True, False, False]


def test_mcp_format(svc: Service) -> None:
    defs = collect_tools(svc)
    tools = to_mcp(defs)
    check_shapes(tools, MCP_TOOL, "inputSchema")
    assert [t["name"] for t in tools] == TOOL_IDS
    guarded = tools[1]
    assert guarded["title"] == "guarded"
    assert guarded["inputSchema"] == defs[1].input_schema
    assert guarded["outputSchema"] == {"type": "object"}
    assert guarded["_meta"] == {
        "palyra/skill_id": F.SKILL_ID,
        "palyra/version": "1.0.0",
        "palyra/tool_id": "acme.guarded",
        "palyra/requires_approval": True,
    }
    assert APPROVAL_NOTE in guarded["description"]
    assert tools[0]["_meta"]["palyra/requires_approval"] is False


def test_mcp_format_parses_as_mcp_sdk_tools(svc: Service) -> None:
    types = pytest.importorskip("mcp.types")
    for raw in to_mcp(collect_tools(svc)):
        parsed = types.Tool.model_validate(raw)
        assert parsed.name == raw["name"]
        assert parsed.model_dump(by_alias=True, exclude_none=True)["_meta"] == raw["_meta"]


def test_sensitive_tools_are_marked_as_needing_approval(tmp_path: Path) -> None:
    text = F.manifest().replace(
        "risk = { default_sensitive = false, requires_approval = false }",
        "risk = { default_sensitive = true, requires_approval = false }",
        1,
    )
    path = tmp_path / "sensitive.palyra-skill"
    path.write_bytes(build_signed_skill_artifact(text, [("module.wasm", F.MODULE)], F.KEY).artifact)
    service = Service.open(tmp_path / "state")
    try:
        service.install_file(path, allow_tofu=True)
        defs = collect_tools(service)
    finally:
        service.close()
    assert {d.id for d in defs if d.requires_approval} == {"acme.echo", "acme.guarded"}


# ---- names ------------------------------------------------------------------------------------
def test_name_mapping_round_trips(svc: Service) -> None:
    defs = collect_tools(svc)
    reverse = provider_name_map(defs)
    assert reverse == {provider_name(d.id): d.id for d in defs}
    for entry in to_openai(defs):
        name = entry["function"]["name"]
        assert tool_id_for(name, defs) == reverse[name]
    assert [reverse[t["name"]] for t in to_anthropic(defs)] == TOOL_IDS
    with pytest.raises(PalyraError) as caught:
        tool_id_for("acme_nope", defs)
    assert caught.value.kind == "not_found"


def test_names_are_deterministic_and_bounded() -> None:
    assert provider_name("acme.echo") == "acme_echo"
    assert provider_name("acme.ns:tool-x") == "acme_ns_tool-x"
    long_id = "acme." + "a" * 100
    name = provider_name(long_id)
    assert len(name) == 64
    assert name == provider_name(long_id)
    assert name != provider_name(long_id + "b")
    defs = [tool(long_id), tool(long_id + "b")]
    assert set(provider_name_map(defs).values()) == {long_id, long_id + "b"}
    check_shapes(to_openai(defs), OPENAI_TOOL, "parameters")
    check_shapes(to_anthropic(defs), ANTHROPIC_TOOL, "input_schema")


def test_colliding_names_are_refused() -> None:
    defs = [tool("acme.a.b"), tool("acme.a_b")]
    for formatter in (to_openai, to_anthropic, provider_name_map):
        with pytest.raises(ToolNameCollision) as caught:
            formatter(defs)
        assert caught.value.kind == "tool_name_collision"
        assert caught.value.details["name"] == "acme_a_b"
    # MCP names are the ids, which differ.
    assert [t["name"] for t in to_mcp(defs)] == ["acme.a.b", "acme.a_b"]


def test_two_skills_exporting_one_tool_id_are_refused(svc: Service, tmp_path: Path) -> None:
    svc.install_file(F.other_skill(tmp_path, same_tool_ids=True), allow_tofu=True)
    defs = collect_tools(svc)
    assert len(defs) == 8
    for fmt in ExportFormat:
        with pytest.raises(ToolNameCollision):
            export(defs, fmt)


# ---- schemas ----------------------------------------------------------------------------------
def test_input_schema_without_type_becomes_an_object() -> None:
    schema = {"properties": {"x": {"type": "integer"}}, "required": ["x"]}
    (entry,) = to_anthropic([tool("acme.t", input_schema=schema)])
    assert entry["input_schema"] == {"type": "object", **schema}
    check_shapes([entry], ANTHROPIC_TOOL, "input_schema")


@pytest.mark.parametrize("declared", ["string", ["object", "null"], "array"])
def test_non_object_input_schema_is_refused(declared: Any) -> None:
    defs = [tool("acme.t", input_schema={"type": declared})]
    for fmt in ExportFormat:
        with pytest.raises(UnsupportedToolSchema) as caught:
            export(defs, fmt)
        assert caught.value.kind == "unsupported_tool_schema"


def test_non_object_output_schema_is_left_out_of_mcp() -> None:
    (entry,) = to_mcp([tool("acme.t", output_schema={"type": "string"})])
    assert "outputSchema" not in entry
    check_shapes([entry], MCP_TOOL, "inputSchema")


def test_approval_note_on_an_empty_description() -> None:
    (entry,) = to_anthropic([tool("acme.t", description=" ", requires_approval=True)])
    assert entry["description"] == APPROVAL_NOTE


def test_parse_format() -> None:
    assert parse_format("OpenAI") is ExportFormat.OPENAI
    with pytest.raises(PalyraError) as caught:
        parse_format("langchain")
    assert caught.value.kind == "usage"


# ---- CLI --------------------------------------------------------------------------------------
RunCli = Callable[..., Result]


@pytest.fixture
def run_cli(svc: Service, state: Path, monkeypatch: pytest.MonkeyPatch) -> RunCli:
    """Invoke the ``tools`` sub-app in-process on the state root ``svc`` installed into."""
    monkeypatch.delenv("PALYRA_URL", raising=False)
    monkeypatch.delenv("PALYRA_TOKEN", raising=False)
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args), obj=CliState(state_root=state))

    return run


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_cli_export_prints_each_format(svc: Service, run_cli: RunCli, fmt: ExportFormat) -> None:
    result = run_cli("export", "--format", fmt.value)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == export(collect_tools(svc), fmt)


def test_cli_export_one_skill(svc: Service, run_cli: RunCli, tmp_path: Path) -> None:
    svc.install_file(F.other_skill(tmp_path), allow_tofu=True)
    result = run_cli("export", "--format", "anthropic", "--skill", "acme.other_demo")
    assert result.exit_code == 0, result.output
    names = [t["name"] for t in json.loads(result.stdout)]
    assert names == sorted(provider_name(i.replace("acme.", "acme.other_")) for i in TOOL_IDS)


def test_cli_unknown_format_is_a_usage_error(run_cli: RunCli) -> None:
    result = run_cli("export", "--format", "langchain")
    assert result.exit_code != 0
    assert isinstance(result.exception, PalyraError)
    assert result.exception.kind == "usage"
    assert result.stdout == ""


def test_cli_inactive_skill_is_refused(svc: Service, run_cli: RunCli) -> None:
    svc.disable(F.SKILL_ID, reason="maintenance")
    result = run_cli("export", "--format", "mcp", "--skill", F.SKILL_ID)
    assert isinstance(result.exception, PalyraError)
    assert result.exception.kind == "skill_not_active"
    all_tools = run_cli("export", "--format", "mcp")
    assert all_tools.exit_code == 0, all_tools.output
    assert json.loads(all_tools.stdout) == []
