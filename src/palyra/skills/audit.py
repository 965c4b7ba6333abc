"""Static security audit of a verified artifact (§5), extended.

Every reference check id is emitted in the reference's order with the same meaning. Added
checks (never renamed ones) close the reference's listed gaps: an import policy that binds
each import to a declared capability, export and section inventories, recognition of
component-model binaries, validation with wasmtime's validator instead of a full JIT compile,
and a real known-bad-digest blocklist behind ``vulnerability_feed_hook``.
"""

from __future__ import annotations

import enum
import functools
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from palyra import abi
from palyra.errors import IoFailure
from palyra.skills.constants import (
    COMPONENT_MAGIC,
    DEFAULT_AUDIT_MAX_COMPONENT_BYTES,
    DEFAULT_AUDIT_MAX_EXPORTED_FUNCTIONS,
    DEFAULT_AUDIT_MAX_MODULE_BYTES,
)
from palyra.skills.errors import BlocklistError
from palyra.skills.grants import CHANNEL_CAPABILITY_PREFIX
from palyra.skills.inspect import SkillInspection, inspect_skill_artifact
from palyra.skills.jsondoc import JsonDocumentError, loads_strict
from palyra.skills.manifest import SkillManifest
from palyra.skills.trust import TrustDecision, TrustStore
from palyra.skills.verify import VerificationReport, verify_inspection
from palyra.skills.wasm_binary import WasmFormatError, WasmImport, WasmSummary, parse_wasm

BLOCKLIST_ENV = "PALYRA_SKILL_AUDIT_BLOCKLIST"
MAX_BLOCKLIST_BYTES = 8 * 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")


class CheckStatus(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - a status word, not a password
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"


_SEVERITY = {
    CheckStatus.PASS: "info",
    CheckStatus.SKIPPED: "info",
    CheckStatus.WARN: "warning",
    CheckStatus.FAIL: "error",
}


@dataclass(frozen=True)
class AuditCheck:
    check_id: str
    status: CheckStatus
    message: str
    details: dict[str, Any] | None = None

    @property
    def severity(self) -> str:
        return _SEVERITY[self.status]

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "check_id": self.check_id,
            "status": self.status.value,
            "severity": self.severity,
            "message": self.message,
        }
        if self.details is not None:
            doc["details"] = self.details
        return doc


@dataclass(frozen=True)
class Blocklist:
    """Known-bad module digests: ``{"schema_version": 1, "entries": [{"sha256", "reason"}]}``."""

    source: str
    entries: dict[str, str]

    @classmethod
    def parse(cls, data: bytes, source: str) -> Blocklist:
        try:
            doc = loads_strict(data, max_bytes=MAX_BLOCKLIST_BYTES, reject_duplicates=True)
        except JsonDocumentError as exc:
            raise BlocklistError(f"blocklist {source} is not valid JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("schema_version") != 1:
            raise BlocklistError(f"blocklist {source} must be an object with schema_version 1")
        if set(doc) - {"schema_version", "entries"}:
            raise BlocklistError(f"blocklist {source} has unknown fields")
        entries: dict[str, str] = {}
        raw_entries = doc.get("entries", [])
        if not isinstance(raw_entries, list):
            raise BlocklistError(f"blocklist {source}: entries must be an array")
        for index, item in enumerate(raw_entries):
            digest = item.get("sha256") if isinstance(item, dict) else None
            reason = item.get("reason", "listed") if isinstance(item, dict) else None
            if not isinstance(digest, str) or not _SHA256.fullmatch(digest.lower()):
                raise BlocklistError(f"blocklist {source}: entries[{index}].sha256 must be hex")
            if not isinstance(reason, str):
                raise BlocklistError(f"blocklist {source}: entries[{index}].reason must be text")
            entries[digest.lower()] = reason
        return cls(source, entries)

    @classmethod
    def load(cls, path: Path) -> Blocklist:
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_BLOCKLIST_BYTES + 1)
        except OSError as exc:
            raise IoFailure(f"cannot read blocklist {path}: {exc.strerror}") from None
        return cls.parse(data, str(path))

    @classmethod
    def from_environment(cls) -> Blocklist | None:
        path = os.environ.get(BLOCKLIST_ENV, "").strip()
        return cls.load(Path(path)) if path else None


@dataclass(frozen=True)
class AuditPolicy:
    max_module_bytes: int = DEFAULT_AUDIT_MAX_MODULE_BYTES
    max_component_bytes: int = DEFAULT_AUDIT_MAX_COMPONENT_BYTES
    max_exported_functions: int = DEFAULT_AUDIT_MAX_EXPORTED_FUNCTIONS
    allow_device_capabilities: bool = False
    allow_wildcard_capabilities: bool = False
    blocklist: Blocklist | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "max_module_bytes": self.max_module_bytes,
            "max_component_bytes": self.max_component_bytes,
            "max_exported_functions": self.max_exported_functions,
            "allow_device_capabilities": self.allow_device_capabilities,
            "allow_wildcard_capabilities": self.allow_wildcard_capabilities,
            "blocklist": None
            if self.blocklist is None
            else {"source": self.blocklist.source, "entries": len(self.blocklist.entries)},
        }


@dataclass(frozen=True)
class AuditReport:
    verification: VerificationReport
    policy: AuditPolicy
    checks: list[AuditCheck]
    generated_at_unix_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    @property
    def passed(self) -> bool:
        return not any(check.status is CheckStatus.FAIL for check in self.checks)

    @property
    def should_quarantine(self) -> bool:
        return not self.passed

    @property
    def trust_decision(self) -> TrustDecision:
        return self.verification.trust_decision

    @property
    def quarantine_reasons(self) -> list[str]:
        return [check.message for check in self.checks if check.status is CheckStatus.FAIL]

    @property
    def failed_checks(self) -> list[str]:
        return [c.check_id for c in self.checks if c.status is CheckStatus.FAIL]

    @property
    def warning_checks(self) -> list[str]:
        return [c.check_id for c in self.checks if c.status is CheckStatus.WARN]

    def to_json(self) -> dict[str, Any]:
        inspection = self.verification.inspection
        m = inspection.manifest
        return {
            "skill_id": m.skill_id,
            "version": m.version,
            "publisher": m.publisher,
            "accepted": True,
            "passed": self.passed,
            "should_quarantine": self.should_quarantine,
            "trust_decision": self.trust_decision.value,
            "payload_sha256": inspection.payload_sha256,
            "generated_at_unix_ms": self.generated_at_unix_ms,
            "policy": self.policy.to_json(),
            "manifest_warnings": [w.to_json() for w in inspection.manifest_warnings],
            "checks": [check.to_json() for check in self.checks],
            "quarantine_reasons": self.quarantine_reasons,
            "vulnerability_scan": self.checks[-1].to_json(),
        }


# --------------------------------------------------------------------------------------------
# WebAssembly validation (wasmtime's validator: no code generation)


@functools.cache
def _validator_engine() -> Any:
    """An engine with the proposals the sandbox disables turned off, so modules that need
    them fail the audit instead of failing later at load time."""
    import wasmtime

    config = wasmtime.Config()
    abi.apply_sandbox_features(config)
    config.wasm_component_model = True
    return wasmtime.Engine(config)


def validate_core_module(data: bytes) -> str | None:
    """None when valid, else wasmtime's one-line reason."""
    import wasmtime

    try:
        wasmtime.Module.validate(_validator_engine(), data)
    except wasmtime.WasmtimeError as exc:
        return " ".join(str(exc).split())
    return None


# --------------------------------------------------------------------------------------------
# Import policy


def _declared_capabilities(manifest: SkillManifest) -> set[str]:
    caps = manifest.capabilities
    declared: set[str] = set()
    if caps.http_egress_allowlist:
        declared.add("http")
    if caps.secrets:
        declared.add("secrets")
    if caps.filesystem.write_roots:
        declared.update({"storage_read", "storage_write"})
    if caps.filesystem.read_roots:
        declared.add("storage_read")
    if any(node.startswith(CHANNEL_CAPABILITY_PREFIX) for node in caps.node_capabilities):
        declared.add("channels")
    return declared


def import_violation(item: WasmImport, declared: set[str]) -> str | None:
    """Why the sandbox would refuse ``item`` for this manifest, or None if it is allowed."""
    label = f"{item.module}::{item.name}"
    if item.module in abi.WASI_PREVIEW1_MODULES:
        return f"{label} is WASI preview 1, which the sandbox does not provide"
    host = abi.HOST_MODULES.get(item.module)
    if host is None:
        return f"{label} comes from an unknown import module"
    if item.kind != "func":
        return f"{label} imports a {item.kind}; only host functions can be imported"
    spec = host.get(item.name)
    if spec is None:
        return f"{label} is not a function of {item.module}"
    if item.signature is None or (item.signature.params, item.signature.results) != (
        spec.params,
        spec.results,
    ):
        return f"{label} has the wrong signature"
    if spec.capability is not None and spec.capability not in declared:
        return (
            f"{label} needs the '{spec.capability}' capability, which the manifest does not declare"
        )
    return None


def component_import_violation(name: str, kind: str = "instance") -> str | None:
    """Why the sandbox would not link a component import, or None. Capabilities are checked
    per host function at call time, so the manifest does not change the answer."""
    klass, reason = abi.classify_component_import(name, kind)
    return reason if klass is abi.ImportClass.REFUSED else None


def _import_check(path: str, summary: WasmSummary, manifest: SkillManifest) -> AuditCheck:
    """``wasm_import_policy`` for core modules, ``wasm_component_imports`` for components."""
    declared = _declared_capabilities(manifest)
    if summary.kind == "component":
        check_id, what = "wasm_component_imports", "component"
        labels = [f"{imp.module} ({imp.kind})" for imp in summary.imports]
        found = [component_import_violation(imp.module, imp.kind) for imp in summary.imports]
        inert = [
            imp.module
            for imp in summary.imports
            if abi.classify_component_import(imp.module, imp.kind)[0] is abi.ImportClass.INERT
        ]
    else:
        check_id, what = "wasm_import_policy", "module"
        labels = [f"{imp.module}::{imp.name}" for imp in summary.imports]
        found = [import_violation(imp, declared) for imp in summary.imports]
    violations = [v for v in found if v is not None]
    details: dict[str, Any] = {
        "module_path": path,
        "imports": labels,
        "declared_capabilities": sorted(declared),
        "violations": violations,
    }
    if summary.kind == "component":
        details["inert_imports"] = inert
    if violations:
        shown = "; ".join(violations[:5]) + ("; ..." if len(violations) > 5 else "")
        return _fail(
            check_id,
            f"{what} '{path}' has imports the sandbox will not grant: {shown}",
            details,
        )
    message = f"{what} '{path}' imports only what its declared capabilities cover"
    if details.get("inert_imports"):
        message += (
            f" ({len(details['inert_imports'])} WASI filesystem/socket interface(s) linked "
            "inert: no preopened directories, no network)"
        )
    return _pass(check_id, message, details)


# --------------------------------------------------------------------------------------------
# The audit


def _pass(check_id: str, message: str, details: dict[str, Any] | None = None) -> AuditCheck:
    return AuditCheck(check_id, CheckStatus.PASS, message, details)


def _fail(check_id: str, message: str, details: dict[str, Any] | None = None) -> AuditCheck:
    return AuditCheck(check_id, CheckStatus.FAIL, message, details)


def _manifest_checks(m: SkillManifest, policy: AuditPolicy) -> list[AuditCheck]:
    caps = m.capabilities
    checks = [
        _pass(
            "manifest_filesystem_scopes",
            "filesystem scopes declared",
            {
                "read_roots": list(caps.filesystem.read_roots),
                "write_roots": list(caps.filesystem.write_roots),
            },
        ),
        _pass(
            "manifest_http_egress_scopes",
            "http egress scopes declared",
            {"hosts": list(caps.http_egress_allowlist)},
        ),
        _pass(
            "manifest_secret_scopes",
            "secret scopes declared",
            {"scopes": [secret.scope for secret in caps.secrets]},
        ),
    ]
    devices = list(caps.device_capabilities)
    if devices and not policy.allow_device_capabilities:
        checks.append(
            _fail(
                "forbidden_device_capabilities",
                "manifest declares device capabilities, which are not grantable by the "
                "sandboxed plugin runtime",
                {"device_capabilities": devices},
            )
        )
    else:
        checks.append(
            _pass(
                "forbidden_device_capabilities",
                "no forbidden device capabilities",
                {
                    "device_capabilities": devices,
                    "allow_device_capabilities": policy.allow_device_capabilities,
                },
            )
        )
    opted = caps.wildcard_opt_in.enabled()
    if opted and not policy.allow_wildcard_capabilities:
        checks.append(
            _fail(
                "forbidden_wildcard_capabilities",
                "manifest enables wildcard capabilities, which require an explicit audit "
                "policy override",
                {"wildcard_opt_ins": opted},
            )
        )
    else:
        checks.append(
            _pass(
                "forbidden_wildcard_capabilities",
                "no forbidden wildcard capabilities",
                {
                    "wildcard_opt_ins": opted,
                    "allow_wildcard_capabilities": policy.allow_wildcard_capabilities,
                },
            )
        )
    return checks


def _module_checks(
    path: str, data: bytes, manifest: SkillManifest, policy: AuditPolicy
) -> list[AuditCheck]:
    size = len(data)
    is_component = data.startswith(COMPONENT_MAGIC)
    limit = policy.max_component_bytes if is_component else policy.max_module_bytes
    limit_name = "max_component_bytes" if is_component else "max_module_bytes"
    if size > limit:
        return [
            _fail(
                "wasm_module_size_limit",
                f"module '{path}' exceeds {limit_name} ({size} > {limit})",
                {"module_path": path, "module_bytes": size, limit_name: limit},
            )
        ]
    try:
        summary = parse_wasm(data)
    except WasmFormatError as exc:
        return [
            _fail(
                "wasm_module_validation",
                f"module '{path}' failed validation: {exc}",
                {"module_path": path},
            )
        ]
    checks = [
        _pass(
            "wasm_module_kind",
            f"module '{path}' is a "
            + (
                "WebAssembly component"
                if summary.kind == "component"
                else "core WebAssembly module"
            ),
            {"module_path": path, "kind": summary.kind},
        )
    ]
    if summary.kind == "component":
        checks.append(
            AuditCheck(
                "wasm_module_validation",
                CheckStatus.SKIPPED,
                f"component '{path}' is validated when the runtime compiles it",
                {"module_path": path},
            )
        )
    else:
        reason = validate_core_module(data)
        if reason is not None:
            checks.append(
                _fail(
                    "wasm_module_validation",
                    f"module '{path}' failed validation: {reason}",
                    {"module_path": path},
                )
            )
            return checks
        checks.append(
            _pass("wasm_module_validation", f"module '{path}' is valid", {"module_path": path})
        )
    checks.append(
        _pass(
            "wasm_module_size_limit",
            f"module '{path}' is within {limit_name} ({size} <= {limit})",
            {"module_path": path, "module_bytes": size, limit_name: limit},
        )
    )
    checks.extend(_export_and_import_checks(path, summary, manifest, policy))
    return checks


def _export_and_import_checks(
    path: str, summary: WasmSummary, manifest: SkillManifest, policy: AuditPolicy
) -> list[AuditCheck]:
    checks: list[AuditCheck] = []
    functions = summary.export_counts.get("func", 0)
    limit = policy.max_exported_functions
    export_details = {
        "module_path": path,
        "exported_functions": functions,
        "max_exported_functions": limit,
        "exported_memories": summary.export_counts.get("memory", 0),
        "exported_tables": summary.export_counts.get("table", 0),
        "exported_globals": summary.export_counts.get("global", 0),
        "exported_tags": summary.export_counts.get("tag", 0),
    }
    if functions > limit:
        checks.append(
            _fail(
                "wasm_exported_function_limit",
                f"module '{path}' exports too many functions ({functions} > {limit})",
                export_details,
            )
        )
    else:
        checks.append(
            _pass(
                "wasm_exported_function_limit",
                f"module '{path}' exports {functions} function(s) (<= {limit})",
                export_details,
            )
        )
    fs = manifest.capabilities.filesystem
    filesystem_declared = bool(fs.read_roots or fs.write_roots)
    wasi_fs = [
        imp for imp in summary.imports if imp.module.strip().lower().startswith("wasi:filesystem")
    ]
    if wasi_fs and summary.kind == "component":
        # Linked inert for components (abi.COMPONENT_IMPORT_RULES): no directory is ever
        # preopened, so declaring filesystem roots would not make them reach anything either.
        checks.append(
            _pass(
                "wasm_wasi_filesystem_imports",
                f"component '{path}' imports wasi:filesystem, linked inert "
                "(the sandbox preopens no directories)",
                {"module_path": path, "filesystem_declared": filesystem_declared, "inert": True},
            )
        )
    elif wasi_fs and not filesystem_declared:
        checks.append(
            _fail(
                "wasm_wasi_filesystem_imports",
                f"module '{path}' imports wasi:filesystem without declared filesystem capability",
                {"module_path": path, "filesystem_declared": filesystem_declared},
            )
        )
    else:
        checks.append(
            _pass(
                "wasm_wasi_filesystem_imports",
                f"module '{path}' has no undeclared wasi:filesystem imports",
                {"module_path": path, "filesystem_declared": filesystem_declared},
            )
        )
    checks.append(_import_check(path, summary, manifest))
    checks.append(
        _pass(
            "wasm_module_sections",
            f"module '{path}' section inventory",
            {
                "module_path": path,
                "custom_sections": [
                    {"name": section.name, "bytes": section.size}
                    for section in summary.custom_sections
                ],
                "data_segments": summary.data_segments,
                "data_bytes": summary.data_bytes,
                "defined_functions": summary.defined_functions,
                "defined_memories": summary.defined_memories,
                "defined_tables": summary.defined_tables,
                "defined_globals": summary.defined_globals,
                "has_start_function": summary.has_start,
            },
        )
    )
    return checks


def _vulnerability_check(inspection: SkillInspection, policy: AuditPolicy) -> AuditCheck:
    blocklist = policy.blocklist
    if blocklist is None:
        return AuditCheck(
            "vulnerability_feed_hook",
            CheckStatus.WARN,
            f"vulnerability blocklist is not configured (set {BLOCKLIST_ENV} or pass --blocklist)",
        )
    hits = [
        {"module_path": name, "sha256": inspection.entry_digests[name], "reason": reason}
        for name in inspection.modules
        if (reason := blocklist.entries.get(inspection.entry_digests[name])) is not None
    ]
    details = {"hook": blocklist.source, "entries": len(blocklist.entries), "matches": hits}
    if hits:
        listed = ", ".join(f"'{hit['module_path']}' ({hit['reason']})" for hit in hits)
        return _fail(
            "vulnerability_feed_hook",
            f"known-bad module digest(s) on the blocklist: {listed}",
            details,
        )
    return _pass("vulnerability_feed_hook", "vulnerability feed hook is configured", details)


def audit_verified(verification: VerificationReport, policy: AuditPolicy) -> AuditReport:
    """Audit an artifact that already passed :func:`verify_inspection`."""
    inspection = verification.inspection
    manifest = inspection.manifest
    checks = [
        _pass("signature_validity", "signature chain and payload hash verified"),
        _pass("sbom_presence", "sbom.cdx.json is present and valid"),
        _pass("provenance_presence", "provenance.json is present and valid"),
        _pass("manifest_sanity", "manifest passed strict schema and wildcard validation"),
    ]
    checks.extend(
        AuditCheck(
            f"manifest_warning:{warning.code}",
            CheckStatus.WARN,
            warning.message,
            {"code": warning.code, "severity": warning.severity},
        )
        for warning in inspection.manifest_warnings
    )
    checks.extend(_manifest_checks(manifest, policy))
    modules = inspection.modules
    checks.append(
        _pass(
            "wasm_module_presence",
            f"artifact includes {len(modules)} wasm module(s)",
            {"modules": modules},
        )
    )
    for path in modules:
        checks.extend(_module_checks(path, inspection.entries[path], manifest, policy))
    checks.append(_vulnerability_check(inspection, policy))
    return AuditReport(verification=verification, policy=policy, checks=checks)


def audit_skill_artifact(
    data: bytes, store: TrustStore, *, allow_tofu: bool, policy: AuditPolicy | None = None
) -> AuditReport:
    """Verify (trust included) then audit; errors from verification abort, as the reference."""
    verification = verify_inspection(inspect_skill_artifact(data), store, allow_tofu=allow_tofu)
    return audit_verified(verification, policy or AuditPolicy())
