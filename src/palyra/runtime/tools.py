"""Running a tool of a signed skill artifact: resolution, grants, limits and schema checks.

Effective grants are the manifest's declaration ∩ the operator's policy (∩ what the caller
requests, if it narrows them): a skill never gets what it did not declare, and the operator
decides which declared capabilities are honoured. Requests beyond that are refused with
``capability_denied`` rather than silently trimmed, so a caller learns it asked for too much.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from palyra.runtime import errors
from palyra.runtime.context import CallGrants
from palyra.runtime.limits import RuntimeLimits
from palyra.runtime.modules import CompiledModule
from palyra.runtime.sandbox import CallResult, Sandbox
from palyra.skills.grants import CapabilityGrants, capability_grants_from_manifest
from palyra.skills.inspect import SkillInspection
from palyra.skills.manifest import SkillManifest, Tool
from palyra.skills.schemas import schema_violations

ANY = "*"


@dataclass(frozen=True)
class RuntimePolicy:
    """The operator's side of every grant. ``"*"`` in a set means "whatever is declared"."""

    http_hosts: frozenset[str] = frozenset()
    secrets: frozenset[str] = frozenset()  # "<scope>/<key>"
    storage: frozenset[str] = frozenset()  # storage prefixes
    channels: frozenset[str] = frozenset()
    allow_http: bool = False
    allow_private_network: bool = False
    allowed_ports: frozenset[int] | None = None
    limits: RuntimeLimits = field(default_factory=RuntimeLimits)

    @classmethod
    def allow_declared(cls, **overrides: Any) -> RuntimePolicy:
        """Honour everything the manifest declares (development and tests)."""
        everything = frozenset({ANY})
        values: dict[str, Any] = {
            "http_hosts": everything,
            "secrets": everything,
            "storage": everything,
            "channels": everything,
        }
        values.update(overrides)
        return cls(**values)


def _allowed(values: tuple[str, ...], policy: frozenset[str]) -> tuple[str, ...]:
    return tuple(v for v in values if ANY in policy or v in policy)


def effective_grants(
    manifest: SkillManifest,
    policy: RuntimePolicy,
    requested: CapabilityGrants | None = None,
) -> CallGrants:
    declared = capability_grants_from_manifest(manifest)
    hosts = _allowed(declared.http_hosts, policy.http_hosts)
    secret_refs = {str(g): (g.scope, g.key) for g in declared.secrets}
    secrets = {secret_refs[r] for r in _allowed(tuple(secret_refs), policy.secrets)}
    write = _allowed(declared.storage_prefixes, policy.storage)
    read = _allowed(declared.storage_read_prefixes, policy.storage)
    channels = _allowed(declared.channels, policy.channels)
    if requested is not None:
        beyond = (
            [h for h in requested.http_hosts if h not in hosts]
            + [s for s in requested.secret_keys if s not in {f"{a}/{b}" for a, b in secrets}]
            + [p for p in requested.storage_prefixes if p not in write]
            + [p for p in requested.storage_read_prefixes if p not in read + write]
            + [c for c in requested.channels if c not in channels]
        )
        if beyond:
            raise errors.CapabilityDenied(
                "requested capabilities beyond the skill's grants: " + ", ".join(beyond)
            )
        hosts = tuple(h for h in hosts if h in requested.http_hosts)
        secrets = {s for s in secrets if f"{s[0]}/{s[1]}" in requested.secret_keys}
        write = tuple(p for p in write if p in requested.storage_prefixes)
        read = tuple(p for p in read if p in requested.storage_read_prefixes)
        channels = tuple(c for c in channels if c in requested.channels)
    return CallGrants(
        http_hosts=hosts,
        allow_http=policy.allow_http,
        allow_private_network=policy.allow_private_network,
        allow_wildcards=manifest.capabilities.wildcard_opt_in.http_egress,
        allowed_ports=policy.allowed_ports,
        secrets=frozenset(secrets),
        storage_read=read,
        storage_write=write,
        channels=channels,
    )


def find_tool(manifest: SkillManifest, tool: str) -> Tool:
    """A tool by id (``acme.echo``) or by name (``echo``)."""
    for candidate in manifest.tools:
        if tool in (candidate.id, candidate.name):
            return candidate
    known = ", ".join(t.id for t in manifest.tools)
    raise errors.InvalidInput(
        f"skill {manifest.skill_id} declares no tool '{tool}' (tools: {known})"
    )


def _exports_tool(sandbox: Sandbox, inspection: SkillInspection, path: str, tool: Tool) -> bool:
    compiled = sandbox.load(inspection.entries[path])
    if isinstance(compiled, CompiledModule):
        return tool.name in compiled.info.entry_exports
    return False  # a component's tools are behind one ``call`` export: name it explicitly


def select_module(inspection: SkillInspection, sandbox: Sandbox, tool: Tool) -> str:
    """The manifest's default module, else the only module, else the one exporting the tool."""
    modules = inspection.modules
    default = inspection.manifest.operator.plugin.default_module_path
    if default is not None:
        if default not in inspection.entries:
            raise errors.InvalidModule(f"default_module_path '{default}' is not in the artifact")
        return default
    if len(modules) == 1:
        return modules[0]
    exporting = [path for path in modules if _exports_tool(sandbox, inspection, path, tool)]
    if len(exporting) != 1:
        raise errors.InvalidModule(
            f"cannot tell which of {len(modules)} modules implements '{tool.id}'; "
            "set operator.plugin.default_module_path"
        )
    return exporting[0]


def run_tool(
    sandbox: Sandbox,
    inspection: SkillInspection,
    tool: str,
    input_value: Any,
    policy: RuntimePolicy,
    *,
    requested: CapabilityGrants | None = None,
    input_checked: bool = False,
    grants: CallGrants | None = None,
) -> CallResult:
    """Validate input (unless the caller just did), run the tool in a fresh sandbox,
    validate output."""
    manifest = inspection.manifest
    spec = find_tool(manifest, tool)
    violations = [] if input_checked else schema_violations(spec.input_schema, input_value)
    if violations:
        raise errors.InvalidInput(
            f"input does not match {spec.id} input_schema: " + "; ".join(violations),
            details={"violations": violations},
        )
    module_path = select_module(inspection, sandbox, spec)
    if grants is None:
        grants = effective_grants(manifest, policy, requested)
    limits = policy.limits.narrowed_by(manifest.capabilities.quotas)
    result = sandbox.run(
        inspection.entries[module_path],
        input_value=input_value,
        skill_id=manifest.skill_id,
        tool_id=spec.id,
        tool_name=spec.name,
        default_entrypoint=manifest.operator.plugin.default_entrypoint,
        grants=grants,
        limits=limits,
    )
    if result.abi != "compat":  # the compat ABI has no JSON output to check
        violations = schema_violations(spec.output_schema, result.output)
        if violations:
            raise errors.InvalidOutput(
                f"output does not match {spec.id} output_schema: " + "; ".join(violations),
                details={"violations": violations, "fuel_used": result.fuel_used},
            )
    return result
