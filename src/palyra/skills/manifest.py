"""The ``skill.toml`` manifest, v1 and v2: model, strict decoding and validation.

Decoding mirrors the reference's serde behaviour (skills-format.md §1.1–1.2): unknown keys are
errors at every level, aliases are accepted on input (using a field and its alias together is a
duplicate), and defaults are filled in. Validation then runs in the reference's exact order
(§1.4) so the first error reported is the same one. Where the reference has a listed gap this
module is stricter (canonical identifiers, real JSON Schemas, bounded sizes) and says so in the
message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import jsonschema
import jsonschema.exceptions
import jsonschema.validators

from palyra.skills import values
from palyra.skills.constants import (
    CONFIG_PROPERTY_TYPES,
    CURRENT_MANIFEST_VERSION,
    DEFAULT_CONFIG_SCHEMA_VERSION,
    DEFAULT_FUEL_BUDGET,
    DEFAULT_MAX_MEMORY_BYTES,
    DEFAULT_WALL_CLOCK_TIMEOUT_MS,
    I64_MAX,
    LEGACY_MANIFEST_VERSION,
    MAX_MANIFEST_BYTES,
    MIN_MAX_MEMORY_BYTES,
    MODULES_PREFIX,
    PLUGIN_CONTRACT_KINDS,
    SECRET_LIKE_CONFIG_MARKERS,
    U32_MAX,
)
from palyra.skills.errors import ManifestParseError, ManifestValidationError
from palyra.skills.tomljson import loads_toml10, to_json_value

T = TypeVar("T")
JsonObject = dict[str, Any]


# --------------------------------------------------------------------------------------------
# Model


@dataclass(frozen=True)
class ToolRisk:
    default_sensitive: bool = False
    requires_approval: bool = False

    @property
    def needs_approval(self) -> bool:
        return self.default_sensitive or self.requires_approval


@dataclass(frozen=True)
class Tool:
    id: str
    name: str
    description: str
    input_schema: JsonObject
    output_schema: JsonObject
    risk: ToolRisk = ToolRisk()


@dataclass(frozen=True)
class FilesystemCapabilities:
    read_roots: tuple[str, ...] = ()
    write_roots: tuple[str, ...] = ()


@dataclass(frozen=True)
class SecretRequirement:
    scope: str
    key_names: tuple[str, ...]


@dataclass(frozen=True)
class Quotas:
    wall_clock_timeout_ms: int = DEFAULT_WALL_CLOCK_TIMEOUT_MS
    fuel_budget: int = DEFAULT_FUEL_BUDGET
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES


@dataclass(frozen=True)
class WildcardOptIn:
    filesystem: bool = False
    http_egress: bool = False
    secrets: bool = False
    device: bool = False
    node: bool = False

    def enabled(self) -> list[str]:
        """Opted-in families in the reference's order (filesystem, http_egress, ...)."""
        flags = (
            ("filesystem", self.filesystem),
            ("http_egress", self.http_egress),
            ("secrets", self.secrets),
            ("device", self.device),
            ("node", self.node),
        )
        return [name for name, on in flags if on]


@dataclass(frozen=True)
class Capabilities:
    filesystem: FilesystemCapabilities = FilesystemCapabilities()
    http_egress_allowlist: tuple[str, ...] = ()
    secrets: tuple[SecretRequirement, ...] = ()
    device_capabilities: tuple[str, ...] = ()
    node_capabilities: tuple[str, ...] = ()
    quotas: Quotas = Quotas()
    wildcard_opt_in: WildcardOptIn = WildcardOptIn()


@dataclass(frozen=True)
class Compat:
    required_protocol_major: int
    min_palyra_version: str
    max_palyra_version: str | None = None


@dataclass(frozen=True)
class IntegrityFile:
    path: str
    sha256: str


@dataclass(frozen=True)
class BuilderChecklist:
    capability_declaration_path: str
    provenance_path: str
    test_harness_path: str
    review_notes: str = ""


@dataclass(frozen=True)
class Builder:
    experimental: bool
    source_kind: str
    source_ref: str
    rollout_flag: str
    checklist: BuilderChecklist
    review_status: str = ""


@dataclass(frozen=True)
class PluginContract:
    kind: str
    version: int = 1


@dataclass(frozen=True)
class OperatorPlugin:
    default_tool_id: str | None = None
    default_module_path: str | None = None
    default_entrypoint: str | None = None
    contracts: tuple[PluginContract, ...] = ()

    def is_empty(self) -> bool:
        return (
            self.default_tool_id is None
            and self.default_module_path is None
            and self.default_entrypoint is None
            and not self.contracts
        )


@dataclass(frozen=True)
class ConfigProperty:
    type: str
    title: str | None = None
    description: str | None = None
    default: Any = None  # TOML has no null, so None always means "absent"
    redacted: bool = False
    enum_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConfigContract:
    schema_version: int = DEFAULT_CONFIG_SCHEMA_VERSION
    required: tuple[str, ...] = ()
    properties: dict[str, ConfigProperty] = field(default_factory=dict)


@dataclass(frozen=True)
class Operator:
    display_name: str | None = None
    summary: str | None = None
    description: str | None = None
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    docs_url: str | None = None
    plugin: OperatorPlugin = OperatorPlugin()
    config: ConfigContract | None = None

    def is_empty(self) -> bool:
        return (
            self.display_name is None
            and self.summary is None
            and self.description is None
            and self.docs_url is None
            and self.config is None
            and not self.categories
            and not self.tags
            and self.plugin.is_empty()
        )


@dataclass(frozen=True)
class SkillManifest:
    skill_id: str
    name: str
    version: str
    publisher: str
    tools: tuple[Tool, ...]
    compat: Compat
    manifest_version: int = CURRENT_MANIFEST_VERSION
    capabilities: Capabilities = Capabilities()
    integrity: tuple[IntegrityFile, ...] = ()
    builder: Builder | None = None
    operator: Operator = Operator()

    def tool(self, tool_id: str) -> Tool | None:
        return next((tool for tool in self.tools if tool.id == tool_id), None)

    def to_json(self) -> JsonObject:
        """The manifest as JSON, with the reference's omission rules (§1.9)."""
        caps = self.capabilities
        doc: JsonObject = {
            "manifest_version": self.manifest_version,
            "skill_id": self.skill_id,
            "name": self.name,
            "version": self.version,
            "publisher": self.publisher,
            "entrypoints": {"tools": [_tool_json(tool) for tool in self.tools]},
            "capabilities": {
                "filesystem": {
                    "read_roots": list(caps.filesystem.read_roots),
                    "write_roots": list(caps.filesystem.write_roots),
                },
                "http_egress_allowlist": list(caps.http_egress_allowlist),
                "secrets": [
                    {"scope": s.scope, "key_names": list(s.key_names)} for s in caps.secrets
                ],
                "device_capabilities": list(caps.device_capabilities),
                "node_capabilities": list(caps.node_capabilities),
                "quotas": {
                    "wall_clock_timeout_ms": caps.quotas.wall_clock_timeout_ms,
                    "fuel_budget": caps.quotas.fuel_budget,
                    "max_memory_bytes": caps.quotas.max_memory_bytes,
                },
                "wildcard_opt_in": {
                    "filesystem": caps.wildcard_opt_in.filesystem,
                    "http_egress": caps.wildcard_opt_in.http_egress,
                    "secrets": caps.wildcard_opt_in.secrets,
                    "device": caps.wildcard_opt_in.device,
                    "node": caps.wildcard_opt_in.node,
                },
            },
            "compat": _compat_json(self.compat),
            "integrity": {"files": [{"path": f.path, "sha256": f.sha256} for f in self.integrity]},
        }
        if self.builder is not None:
            doc["builder"] = _builder_json(self.builder)
        doc["operator"] = _operator_json(self.operator)
        return doc


def _tool_json(tool: Tool) -> JsonObject:
    return {
        "id": tool.id,
        "name": tool.name,
        "description": tool.description,
        "input_schema": tool.input_schema,
        "output_schema": tool.output_schema,
        "risk": {
            "default_sensitive": tool.risk.default_sensitive,
            "requires_approval": tool.risk.requires_approval,
        },
    }


def _compat_json(compat: Compat) -> JsonObject:
    doc: JsonObject = {
        "required_protocol_major": compat.required_protocol_major,
        "min_palyra_version": compat.min_palyra_version,
    }
    if compat.max_palyra_version is not None:
        doc["max_palyra_version"] = compat.max_palyra_version
    return doc


def _builder_json(builder: Builder) -> JsonObject:
    return {
        "experimental": builder.experimental,
        "source_kind": builder.source_kind,
        "source_ref": builder.source_ref,
        "rollout_flag": builder.rollout_flag,
        "review_status": builder.review_status,
        "checklist": {
            "capability_declaration_path": builder.checklist.capability_declaration_path,
            "provenance_path": builder.checklist.provenance_path,
            "test_harness_path": builder.checklist.test_harness_path,
            "review_notes": builder.checklist.review_notes,
        },
    }


def _operator_json(op: Operator) -> JsonObject:
    doc: JsonObject = {}
    for key in ("display_name", "summary", "description"):
        if getattr(op, key) is not None:
            doc[key] = getattr(op, key)
    doc["categories"] = list(op.categories)
    doc["tags"] = list(op.tags)
    if op.docs_url is not None:
        doc["docs_url"] = op.docs_url
    plugin: JsonObject = {}
    for key in ("default_tool_id", "default_module_path", "default_entrypoint"):
        if getattr(op.plugin, key) is not None:
            plugin[key] = getattr(op.plugin, key)
    if op.plugin.contracts:
        plugin["contracts"] = [{"kind": c.kind, "version": c.version} for c in op.plugin.contracts]
    doc["plugin"] = plugin
    if op.config is not None:
        properties: JsonObject = {}
        for name in sorted(op.config.properties):
            prop = op.config.properties[name]
            body: JsonObject = {"type": prop.type}
            if prop.title is not None:
                body["title"] = prop.title
            if prop.description is not None:
                body["description"] = prop.description
            if prop.default is not None:
                body["default"] = prop.default
            body["redacted"] = prop.redacted
            if prop.enum_values:
                body["enum_values"] = list(prop.enum_values)
            properties[name] = body
        doc["config"] = {
            "schema_version": op.config.schema_version,
            "required": list(op.config.required),
            "properties": properties,
        }
    return doc


# --------------------------------------------------------------------------------------------
# Decoding (the reference's serde layer: types, unknown keys, aliases, defaults)

_MISSING: Any = object()


class _Table:
    """One TOML table being decoded; every key must be consumed or it is an unknown field."""

    def __init__(self, raw: Any, path: str) -> None:
        if not isinstance(raw, dict):
            raise ManifestParseError(f"`{path}` must be a table, found {_type_name(raw)}")
        self.raw: dict[str, Any] = raw
        self.path = path
        self.used: set[str] = set()

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(
        self,
        key: str,
        convert: Callable[[Any, str], T],
        default: T = _MISSING,
        aliases: tuple[str, ...] = (),
    ) -> T:
        present = [name for name in (key, *aliases) if name in self.raw]
        if len(present) > 1:
            raise ManifestParseError(
                f"duplicate field `{self._where(key)}` (given as {', '.join(present)})"
            )
        if not present:
            if default is _MISSING:
                raise ManifestParseError(f"missing field `{self._where(key)}`")
            return default
        self.used.add(present[0])
        return convert(self.raw[present[0]], self._where(key))

    def table(self, key: str, required: bool = False) -> _Table:
        if key not in self.raw:
            if required:
                raise ManifestParseError(f"missing field `{self._where(key)}`")
            return _Table({}, self._where(key))
        self.used.add(key)
        return _Table(self.raw[key], self._where(key))

    def has(self, key: str) -> bool:
        return key in self.raw

    def finish(self) -> None:
        unknown = sorted(set(self.raw) - self.used)
        if unknown:
            raise ManifestParseError(f"unknown field `{self._where(unknown[0])}`")


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ManifestParseError(f"`{where}` must be a string, found {_type_name(value)}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ManifestParseError(f"`{where}` must be a boolean, found {_type_name(value)}")
    return value


def _uint(limit: int) -> Callable[[Any, str], int]:
    def convert(value: Any, where: str) -> int:
        if type(value) is not int:
            raise ManifestParseError(f"`{where}` must be an integer, found {_type_name(value)}")
        if value < 0 or value > limit:
            raise ManifestParseError(f"`{where}` must be between 0 and {limit}, found {value}")
        return value

    return convert


_u32 = _uint(U32_MAX)
_u64 = _uint(I64_MAX)


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ManifestParseError(f"`{where}` must be an array, found {_type_name(value)}")
    return tuple(_str(item, f"{where}[{index}]") for index, item in enumerate(value))


def _json_any(value: Any, where: str) -> Any:
    return to_json_value(value, where)


_NO_TABLES: list[_Table] = []


def _tables(value: Any, where: str) -> list[_Table]:
    if not isinstance(value, list):
        raise ManifestParseError(f"`{where}` must be an array of tables, found {_type_name(value)}")
    return [_Table(item, f"{where}[{index}]") for index, item in enumerate(value)]


def _decode_tool(t: _Table) -> Tool:
    risk_table = t.table("risk")
    risk = ToolRisk(
        default_sensitive=risk_table.get("default_sensitive", _bool, False),
        requires_approval=risk_table.get("requires_approval", _bool, False),
    )
    risk_table.finish()
    tool = Tool(
        id=t.get("id", _str),
        name=t.get("name", _str),
        description=t.get("description", _str),
        input_schema=t.get("input_schema", _json_any),
        output_schema=t.get("output_schema", _json_any),
        risk=risk,
    )
    t.finish()
    return tool


def _decode_capabilities(t: _Table) -> Capabilities:
    fs = t.table("filesystem")
    filesystem = FilesystemCapabilities(
        read_roots=fs.get("read_roots", _str_list, ()),
        write_roots=fs.get("write_roots", _str_list, ()),
    )
    fs.finish()
    secrets: list[SecretRequirement] = []
    for s in t.get("secrets", _tables, _NO_TABLES):
        secrets.append(
            SecretRequirement(
                scope=s.get("scope", _str), key_names=s.get("key_names", _str_list, ())
            )
        )
        s.finish()
    q = t.table("quotas")
    quotas = Quotas(
        wall_clock_timeout_ms=q.get("wall_clock_timeout_ms", _u64, DEFAULT_WALL_CLOCK_TIMEOUT_MS),
        fuel_budget=q.get("fuel_budget", _u64, DEFAULT_FUEL_BUDGET),
        max_memory_bytes=q.get("max_memory_bytes", _u64, DEFAULT_MAX_MEMORY_BYTES),
    )
    q.finish()
    w = t.table("wildcard_opt_in")
    wildcard = WildcardOptIn(
        **{name: w.get(name, _bool, False) for name in WildcardOptIn.__dataclass_fields__}
    )
    w.finish()
    caps = Capabilities(
        filesystem=filesystem,
        http_egress_allowlist=t.get("http_egress_allowlist", _str_list, ()),
        secrets=tuple(secrets),
        device_capabilities=t.get("device_capabilities", _str_list, ()),
        node_capabilities=t.get("node_capabilities", _str_list, ()),
        quotas=quotas,
        wildcard_opt_in=wildcard,
    )
    t.finish()
    return caps


def _decode_builder(t: _Table) -> Builder:
    c = t.table("checklist", required=True)
    checklist = BuilderChecklist(
        capability_declaration_path=c.get("capability_declaration_path", _str),
        provenance_path=c.get("provenance_path", _str),
        test_harness_path=c.get("test_harness_path", _str),
        review_notes=c.get("review_notes", _str, ""),
    )
    c.finish()
    builder = Builder(
        experimental=t.get("experimental", _bool),
        source_kind=t.get("source_kind", _str),
        source_ref=t.get("source_ref", _str),
        rollout_flag=t.get("rollout_flag", _str),
        review_status=t.get("review_status", _str, ""),
        checklist=checklist,
    )
    t.finish()
    return builder


def _variant(choices: tuple[str, ...]) -> Callable[[Any, str], str]:
    """A string that must be one of ``choices`` (serde's unit-enum variants)."""

    def convert(value: Any, where: str) -> str:
        kind = _str(value, where)
        if kind not in choices:
            raise ManifestParseError(
                f"unknown variant `{kind}` for `{where}`, expected one of " + ", ".join(choices)
            )
        return kind

    return convert


_contract_kind = _variant(PLUGIN_CONTRACT_KINDS)
_config_type = _variant(CONFIG_PROPERTY_TYPES)


def _decode_operator(t: _Table) -> Operator:
    p = t.table("plugin")
    contracts: list[PluginContract] = []
    for c in p.get("contracts", _tables, _NO_TABLES):
        contracts.append(
            PluginContract(kind=c.get("kind", _contract_kind), version=c.get("version", _u32, 1))
        )
        c.finish()
    plugin = OperatorPlugin(
        default_tool_id=p.get("default_tool_id", _str, None),
        default_module_path=p.get("default_module_path", _str, None),
        default_entrypoint=p.get("default_entrypoint", _str, None),
        contracts=tuple(contracts),
    )
    p.finish()
    config: ConfigContract | None = None
    if t.has("config"):
        c = t.table("config")
        properties: dict[str, ConfigProperty] = {}
        props = c.table("properties")
        for name in props.raw:
            pt = props.table(name)
            properties[name] = ConfigProperty(
                type=pt.get("type", _config_type),
                title=pt.get("title", _str, None),
                description=pt.get("description", _str, None),
                default=pt.get("default", _json_any, None),
                redacted=pt.get("redacted", _bool, False),
                enum_values=pt.get("enum_values", _str_list, ()),
            )
            pt.finish()
        props.finish()
        config = ConfigContract(
            schema_version=c.get("schema_version", _u32, DEFAULT_CONFIG_SCHEMA_VERSION),
            required=c.get("required", _str_list, ()),
            properties=dict(sorted(properties.items())),
        )
        c.finish()
    op = Operator(
        display_name=t.get("display_name", _str, None),
        summary=t.get("summary", _str, None),
        description=t.get("description", _str, None),
        categories=t.get("categories", _str_list, ()),
        tags=t.get("tags", _str_list, ()),
        docs_url=t.get("docs_url", _str, None),
        plugin=plugin,
        config=config,
    )
    t.finish()
    return op


def _decode(doc: dict[str, Any]) -> SkillManifest:
    top = _Table(doc, "")
    entrypoints = top.table("entrypoints", required=True)
    tools = tuple(_decode_tool(t) for t in entrypoints.get("tools", _tables))
    entrypoints.finish()
    compat_table = top.table("compat", required=True)
    compat = Compat(
        required_protocol_major=compat_table.get(
            "required_protocol_major", _u32, aliases=("min_protocol_major",)
        ),
        min_palyra_version=compat_table.get(
            "min_palyra_version", _str, aliases=("min_runtime_version",)
        ),
        max_palyra_version=compat_table.get("max_palyra_version", _str, None),
    )
    compat_table.finish()
    integrity_table = top.table("integrity")
    integrity: list[IntegrityFile] = []
    for f in integrity_table.get("files", _tables, _NO_TABLES):
        integrity.append(IntegrityFile(path=f.get("path", _str), sha256=f.get("sha256", _str)))
        f.finish()
    integrity_table.finish()
    manifest = SkillManifest(
        manifest_version=top.get("manifest_version", _u32, CURRENT_MANIFEST_VERSION),
        skill_id=top.get("skill_id", _str),
        name=top.get("name", _str),
        version=top.get("version", _str),
        publisher=top.get("publisher", _str),
        tools=tools,
        capabilities=_decode_capabilities(top.table("capabilities")),
        compat=compat,
        integrity=tuple(integrity),
        builder=_decode_builder(top.table("builder")) if top.has("builder") else None,
        operator=_decode_operator(top.table("operator")),
    )
    top.finish()
    return manifest


# --------------------------------------------------------------------------------------------
# Validation (reference order, §1.4)


def _fail(message: str) -> ManifestValidationError:
    return ManifestValidationError(message)


# A distinct class that ``validator_for`` returns only when ``$schema`` names no known dialect.
_UnknownDialect = jsonschema.validators.extend(jsonschema.Draft202012Validator)  # type: ignore[no-untyped-call]


def _check_json_schema(tool_id: str, which: str, schema: JsonObject) -> None:
    """Reject schemas that are not valid JSON Schema (the reference checks only "is an object").

    The meta-schemas ship with ``jsonschema``; nothing is fetched. ``$schema`` must name a
    dialect the library knows, so a typo cannot silently select a different one.
    """
    dialect = schema.get("$schema")
    if dialect is not None:
        if not isinstance(dialect, str):
            raise _fail(f"tool '{tool_id}' {which} has a non-string $schema")
        known = jsonschema.validators.validator_for({"$schema": dialect}, default=_UnknownDialect)
        if known is _UnknownDialect:
            raise _fail(f"tool '{tool_id}' {which} uses unknown $schema '{dialect}'")
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path) or "(root)"
        raise _fail(
            f"tool '{tool_id}' {which} is not a valid JSON Schema at {where}: {_short(exc.message)}"
        ) from None
    except RecursionError:
        raise _fail(f"tool '{tool_id}' {which} nests too deeply") from None


def _short(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _validate_tools(m: SkillManifest) -> None:
    if not m.tools:
        raise _fail("entrypoints.tools cannot be empty")
    seen: set[str] = set()
    for tool in m.tools:
        values.identifier("entrypoints.tools.id", tool.id)
        if not tool.id.startswith(f"{m.publisher}."):
            raise _fail(f"tool id '{tool.id}' must be namespaced with '{m.publisher}.'")
        if tool.id == f"{m.publisher}.":
            raise _fail(f"tool id '{tool.id}' must name the tool after '{m.publisher}.'")
        if tool.id in seen:
            raise _fail(f"duplicate tool id '{tool.id}'")
        seen.add(tool.id)
        if not tool.name.strip() or not tool.description.strip():
            raise _fail(f"tool '{tool.id}' must include non-empty name and description")
        if not isinstance(tool.input_schema, dict) or not isinstance(tool.output_schema, dict):
            raise _fail(f"tool '{tool.id}' schemas must be JSON objects")
        _check_json_schema(tool.id, "input_schema", tool.input_schema)
        _check_json_schema(tool.id, "output_schema", tool.output_schema)


def _validate_capabilities(m: SkillManifest) -> None:
    caps = m.capabilities
    opt = caps.wildcard_opt_in
    for root in (*caps.filesystem.read_roots, *caps.filesystem.write_roots):
        values.capability_path(root, opt.filesystem)
    for host in caps.http_egress_allowlist:
        values.host(host, opt.http_egress)
    for secret in caps.secrets:
        values.secret_scope(secret.scope)
        if not secret.key_names:
            raise _fail(f"secret scope '{secret.scope}' must list key_names")
        for key in secret.key_names:
            values.identifier_or_wildcard("capabilities.secrets.key_names", key, opt.secrets)
    for device in caps.device_capabilities:
        values.identifier_or_wildcard("capabilities.device_capabilities", device, opt.device)
    for node in caps.node_capabilities:
        values.identifier_or_wildcard("capabilities.node_capabilities", node, opt.node)
    q = caps.quotas
    if (
        q.wall_clock_timeout_ms == 0
        or q.fuel_budget == 0
        or q.max_memory_bytes < MIN_MAX_MEMORY_BYTES
    ):
        raise _fail("capabilities.quotas values must be non-zero and memory >= 65536")


def _validate_builder(builder: Builder) -> None:
    if not builder.experimental:
        raise _fail("builder.experimental must stay true for generated builder outputs")
    for key in ("source_kind", "source_ref", "rollout_flag"):
        if not getattr(builder, key).strip():
            raise _fail(f"builder.{key} cannot be empty")
    for key in ("capability_declaration_path", "provenance_path", "test_harness_path"):
        raw = getattr(builder.checklist, key)
        if not raw.strip():
            raise _fail(f"builder.checklist.{key} cannot be empty")
        values.canonical_path(raw)


def _validate_operator(m: SkillManifest) -> None:
    op = m.operator
    if m.manifest_version == LEGACY_MANIFEST_VERSION and not op.is_empty():
        raise _fail("operator metadata requires manifest_version 2")
    for key in ("display_name", "summary", "description"):
        text = getattr(op, key)
        if text is not None:
            values.require_text(f"operator.{key}", text)
    for item in op.categories:
        values.label("operator.categories", item)
    for item in op.tags:
        values.label("operator.tags", item)
    if op.docs_url is not None:
        values.docs_url(op.docs_url)
    plugin = op.plugin
    if plugin.default_tool_id is not None:
        tool_id = values.identifier("operator.plugin.default_tool_id", plugin.default_tool_id)
        if m.tool(tool_id) is None:
            raise _fail("operator.plugin.default_tool_id must reference an entrypoints.tools id")
        if not tool_id.startswith(f"{m.publisher}."):
            raise _fail(f"operator.plugin.default_tool_id must be namespaced with '{m.publisher}.'")
    if plugin.default_module_path is not None:
        path = plugin.default_module_path
        if (
            "\x00" in path
            or ".." in path
            or not path.startswith(MODULES_PREFIX)
            or not path.endswith(".wasm")
        ):
            raise _fail("operator.plugin.default_module_path must reference a modules/*.wasm entry")
        values.canonical_path(path)
    if plugin.default_entrypoint is not None:
        values.entrypoint_name("operator.plugin.default_entrypoint", plugin.default_entrypoint)
    kinds: set[str] = set()
    for contract in plugin.contracts:
        if contract.version == 0:
            raise _fail(f"operator.plugin.contracts '{contract.kind}' must use a non-zero version")
        if contract.version != 1:
            raise _fail(
                f"operator.plugin.contracts '{contract.kind}' version {contract.version} "
                "is not supported by this SDK ABI"
            )
        if contract.kind in kinds:
            raise _fail(f"operator.plugin.contracts contains duplicate kind '{contract.kind}'")
        kinds.add(contract.kind)
    if op.config is not None:
        _validate_config(op.config)


def _validate_config(config: ConfigContract) -> None:
    if config.schema_version == 0:
        raise _fail("operator.config.schema_version must be non-zero")
    for name in config.required:
        values.label("operator.config.required", name)
        if name not in config.properties:
            raise _fail(f"operator.config.required references unknown property '{name}'")
    for name, prop in config.properties.items():
        values.label("operator.config.properties", name)
        where = f"operator.config.properties.{name}"
        for key in ("title", "description"):
            text = getattr(prop, key)
            if text is not None:
                values.require_text(f"{where}.{key}", text)
        if prop.enum_values:
            if prop.type != "string":
                raise _fail(f'{where}.enum_values requires type = "string"')
            seen: set[str] = set()
            for value in prop.enum_values:
                trimmed = value.strip()
                if not trimmed:
                    raise _fail(f"{where}.enum_values cannot contain empty values")
                if trimmed in seen:
                    raise _fail(f"{where}.enum_values contains duplicate value '{trimmed}'")
                seen.add(trimmed)
        if prop.default is not None:
            _validate_config_default(where, prop)


def _validate_config_default(where: str, prop: ConfigProperty) -> None:
    default = prop.default
    ok = {
        "string": isinstance(default, str),
        "integer": type(default) is int or (isinstance(default, float) and default.is_integer()),
        "number": isinstance(default, int | float) and not isinstance(default, bool),
        "boolean": isinstance(default, bool),
        "string_list": isinstance(default, list) and all(isinstance(v, str) for v in default),
    }[prop.type]
    if not ok:
        raise _fail(f"{where}.default must match type '{prop.type}'")
    if prop.enum_values and default not in prop.enum_values:
        raise _fail(f"{where}.default must be one of enum_values")


def validate_manifest(m: SkillManifest) -> None:
    """Run the reference's validation steps in order; the first failure is raised."""
    if m.manifest_version not in (LEGACY_MANIFEST_VERSION, CURRENT_MANIFEST_VERSION):
        raise _fail("manifest_version must equal 1 or 2")
    values.identifier("publisher", m.publisher)
    values.skill_id(m.skill_id)
    values.parse_semver("version", m.version)
    minimum = values.parse_semver("compat.min_palyra_version", m.compat.min_palyra_version)
    if m.compat.max_palyra_version is not None:
        maximum = values.parse_semver("compat.max_palyra_version", m.compat.max_palyra_version)
        if maximum < minimum:
            raise _fail(
                "compat.max_palyra_version must be greater than or equal to "
                "compat.min_palyra_version"
            )
    values.require_text("name", m.name)
    _validate_tools(m)
    _validate_capabilities(m)
    if m.builder is not None:
        _validate_builder(m.builder)
    _validate_operator(m)


def parse_manifest_toml(text: str) -> SkillManifest:
    """Parse and validate ``skill.toml`` text (TOML 1.0)."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:  # lone surrogates: no UTF-8 skill.toml can hold them
        raise ManifestParseError(
            f"manifest utf8 error: {exc.reason} at character {exc.start}"
        ) from None
    if size > MAX_MANIFEST_BYTES:
        raise ManifestParseError(f"manifest exceeds {MAX_MANIFEST_BYTES} bytes")
    manifest = _decode(loads_toml10(text))
    validate_manifest(manifest)
    return manifest


def parse_manifest_bytes(data: bytes) -> SkillManifest:
    """Parse manifest bytes from an artifact: strict UTF-8, then :func:`parse_manifest_toml`."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestParseError(f"manifest exceeds {MAX_MANIFEST_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestParseError(f"manifest utf8 error: {exc.reason} at byte {exc.start}") from None
    return parse_manifest_toml(text)


def manifest_requires_review(m: SkillManifest) -> bool:
    """``builder_manifest_requires_review``: experimental builder output not yet approved."""
    return (
        m.builder is not None
        and m.builder.experimental
        and m.builder.review_status.strip().lower() not in ("approved", "signed")
    )


# --------------------------------------------------------------------------------------------
# Warnings (§1.6)


@dataclass(frozen=True)
class ManifestWarning:
    code: str
    message: str
    severity: str = "warning"

    def to_json(self) -> JsonObject:
        return {"code": self.code, "severity": self.severity, "message": self.message}


def collect_manifest_warnings(m: SkillManifest) -> list[ManifestWarning]:
    found: list[ManifestWarning] = []
    if m.manifest_version == LEGACY_MANIFEST_VERSION:
        found.append(
            ManifestWarning(
                "legacy_manifest_version",
                "manifest_version 1 is still supported for compatibility, but 2 is now recommended",
            )
        )
    if m.operator.is_empty():
        found.append(
            ManifestWarning(
                "missing_operator_metadata",
                "operator-facing metadata is missing; inventory and doctor output will be degraded",
            )
        )
        return found
    if m.operator.display_name is None:
        found.append(
            ManifestWarning("missing_operator_display_name", "operator.display_name is missing")
        )
    config = m.operator.config
    if config is not None:
        if not config.properties:
            found.append(
                ManifestWarning(
                    "empty_operator_config_contract",
                    "operator.config declares no properties",
                )
            )
        for name in sorted(config.properties):
            lowered = name.lower()
            if not config.properties[name].redacted and any(
                marker in lowered for marker in SECRET_LIKE_CONFIG_MARKERS
            ):
                found.append(
                    ManifestWarning(
                        "operator_config_redaction_recommended",
                        f"operator.config property '{name}' looks secret-like but is not "
                        "marked redacted",
                    )
                )
    return found
