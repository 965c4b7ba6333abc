"""Static security audit: the reference checks (items 29–34) and this project's additions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import MINIMAL_WASM, SAMPLE_MANIFEST, Builder, replace_manifest, wat
from palyra.skills import errors
from palyra.skills.audit import (
    AuditPolicy,
    AuditReport,
    Blocklist,
    CheckStatus,
    audit_skill_artifact,
)
from palyra.skills.payload import payload_sha256
from palyra.skills.trust import TrustDecision, TrustStore

REFERENCE_ORDER = [
    "signature_validity",
    "sbom_presence",
    "provenance_presence",
    "manifest_sanity",
    "manifest_filesystem_scopes",
    "manifest_http_egress_scopes",
    "manifest_secret_scopes",
    "forbidden_device_capabilities",
    "forbidden_wildcard_capabilities",
    "wasm_module_presence",
]

HTTP_MODULE = """
(module
  (import "palyra:host@1" "input_len" (func (result i32)))
  (import "palyra:host@1" "http_request" (func (param i32 i32) (result i32)))
  (import "palyra:plugins/host-capabilities@0.1.0" "http-count" (func (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (result i32) i32.const 0))
"""


def audit(artifact: bytes, policy: AuditPolicy | None = None) -> AuditReport:
    return audit_skill_artifact(artifact, TrustStore(), allow_tofu=True, policy=policy)


def check(report: AuditReport, check_id: str) -> list[CheckStatus]:
    return [c.status for c in report.checks if c.check_id == check_id]


def test_baseline_passes(build: Builder) -> None:
    """Reference item 29: passes, no quarantine, no warnings but the unconfigured feed."""
    report = audit(build().artifact)
    assert report.passed and not report.should_quarantine
    assert report.trust_decision is TrustDecision.TOFU_NEWLY_PINNED
    ids = [c.check_id for c in report.checks]
    assert ids[: len(REFERENCE_ORDER)] == REFERENCE_ORDER
    assert ids[-1] == "vulnerability_feed_hook"
    assert [c.check_id for c in report.checks if c.status is CheckStatus.WARN] == [
        "vulnerability_feed_hook"
    ]
    doc = report.to_json()
    assert list(doc)[:6] == [
        "skill_id",
        "version",
        "publisher",
        "accepted",
        "passed",
        "should_quarantine",
    ]
    assert doc["vulnerability_scan"]["check_id"] == "vulnerability_feed_hook"
    assert doc["quarantine_reasons"] == []
    json.dumps(doc)  # serialisable


def test_module_size_limit(build: Builder) -> None:
    """Reference item 30."""
    report = audit(build().artifact, AuditPolicy(max_module_bytes=4))
    assert check(report, "wasm_module_size_limit") == [CheckStatus.FAIL]
    assert report.should_quarantine
    assert "exceeds max_module_bytes (8 > 4)" in report.quarantine_reasons[0]


def test_wasi_filesystem_import_without_roots(build: Builder) -> None:
    """Reference item 31 (the WAT module is compiled to binary first: see test below)."""
    module = wat('(module (import "wasi:filesystem" "path_open" (func)) (func (export "run")))')
    manifest = replace_manifest('read_roots = ["skills/data"]', "read_roots = []")
    manifest = replace_manifest('write_roots = ["skills/cache"]', "write_roots = []", manifest)
    report = audit(build(manifest=manifest, modules=[("module.wasm", module)]).artifact)
    assert check(report, "wasm_wasi_filesystem_imports") == [CheckStatus.FAIL]
    assert check(report, "wasm_import_policy") == [CheckStatus.FAIL]


def test_device_capabilities(build: Builder) -> None:
    """Reference item 32."""
    manifest = replace_manifest("device_capabilities = []", 'device_capabilities = ["camera"]')
    report = audit(build(manifest=manifest).artifact)
    assert check(report, "forbidden_device_capabilities") == [CheckStatus.FAIL]
    allowed = audit(build(manifest=manifest).artifact, AuditPolicy(allow_device_capabilities=True))
    assert check(allowed, "forbidden_device_capabilities") == [CheckStatus.PASS]


def test_wildcard_opt_in_flags(build: Builder) -> None:
    manifest = SAMPLE_MANIFEST.replace(
        "[compat]", "[capabilities.wildcard_opt_in]\nnode = true\n\n[compat]"
    )
    report = audit(build(manifest=manifest).artifact)
    assert check(report, "forbidden_wildcard_capabilities") == [CheckStatus.FAIL]
    failing = next(c for c in report.checks if c.check_id == "forbidden_wildcard_capabilities")
    assert failing.details == {"wildcard_opt_ins": ["node"]}


def test_exported_function_limit_and_export_counts(build: Builder) -> None:
    """Reference item 33, plus memories/tables/globals counted separately."""
    module = wat(
        """(module (func (export "a")) (func (export "b")) (func (export "c"))
           (memory (export "mem") 1) (table (export "tab") 1 funcref)
           (global (export "g") i32 (i32.const 0)))"""
    )
    report = audit(
        build(modules=[("module.wasm", module)]).artifact, AuditPolicy(max_exported_functions=1)
    )
    limit = next(c for c in report.checks if c.check_id == "wasm_exported_function_limit")
    assert limit.status is CheckStatus.FAIL
    assert limit.details is not None
    assert limit.details["exported_functions"] == 3
    assert limit.details["exported_memories"] == 1
    assert limit.details["exported_tables"] == 1
    assert limit.details["exported_globals"] == 1


def test_legacy_manifest_warning_check(build: Builder) -> None:
    """Reference item 34."""
    v1 = SAMPLE_MANIFEST.replace("manifest_version = 2", "manifest_version = 1")
    v1 = v1[: v1.index("[operator]")]
    report = audit(build(manifest=v1).artifact)
    assert check(report, "manifest_warning:legacy_manifest_version") == [CheckStatus.WARN]
    assert report.passed


def test_untrusted_artifact_yields_no_report(build: Builder) -> None:
    with pytest.raises(errors.UntrustedPublisherError):
        audit_skill_artifact(build().artifact, TrustStore(), allow_tofu=False)


def test_wat_text_is_not_accepted_as_a_module(build: Builder) -> None:
    """The reference compiled WAT text found in modules/*.wasm; the sandbox only runs binaries."""
    report = audit(build(modules=[("module.wasm", b'(module (func (export "run")))')]).artifact)
    assert check(report, "wasm_module_validation") == [CheckStatus.FAIL]
    assert (
        "not a WebAssembly binary" in report.quarantine_reasons[0]
        or "magic" in (report.quarantine_reasons[0])
    )


def test_invalid_binary_fails_validation(build: Builder) -> None:
    # Well-formed sections, but the function body does not type-check.
    module = bytearray(wat('(module (func (export "run") (result i32) i32.const 1))'))
    body = module.index(b"\x41\x01\x0b")
    module[body : body + 3] = b"\x01\x01\x0b"  # nop instead of i32.const: missing result
    report = audit(build(modules=[("module.wasm", bytes(module))]).artifact)
    assert check(report, "wasm_module_validation") == [CheckStatus.FAIL]


def test_disabled_proposals_fail_validation(build: Builder) -> None:
    module = wat("(module (memory 1 1 shared))") if False else None
    # Shared memory needs the threads proposal, which the sandbox turns off. wat2wasm accepts
    # it, the audit's validator must not.
    module = wat('(module (memory (export "m") 1 1 shared))')
    report = audit(build(modules=[("module.wasm", module)]).artifact)
    assert check(report, "wasm_module_validation") == [CheckStatus.FAIL]


def test_import_policy_binds_imports_to_capabilities(build: Builder) -> None:
    module = wat(HTTP_MODULE)
    allowed = audit(build(modules=[("module.wasm", module)]).artifact)
    assert check(allowed, "wasm_import_policy") == [CheckStatus.PASS]
    no_http = replace_manifest(
        'http_egress_allowlist = ["api.example.com"]', "http_egress_allowlist = []"
    )
    denied = audit(build(manifest=no_http, modules=[("module.wasm", module)]).artifact)
    assert check(denied, "wasm_import_policy") == [CheckStatus.FAIL]
    assert "needs the 'http' capability" in denied.quarantine_reasons[0]


@pytest.mark.parametrize(
    ("imports", "reason"),
    [
        ('(import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))', "WASI preview 1"),
        ('(import "wasi_unstable" "fd_write" (func (param i32 i32 i32 i32) (result i32)))', "WASI preview 1"),
        ('(import "env" "abort" (func (param i32 i32 i32 i32)))', "unknown import module"),
        ('(import "palyra:host@1" "exec" (func))', "is not a function of"),
        ('(import "palyra:host@1" "input_len" (func (result i64)))', "wrong signature"),
        ('(import "palyra:host@1" "memory" (memory 1))', "imports a memory"),
        ('(import "palyra:plugins/host-capabilities@0.1.0" "http-handle" (func (result i32)))', "wrong signature"),
        ('(import "palyra:host@1" "channel_send" (func (param i32 i32 i32 i32) (result i32)))', "'channels' capability"),
    ],
)  # fmt: skip
def test_import_violations(build: Builder, imports: str, reason: str) -> None:
    module = wat(f'(module {imports} (func (export "run")))')
    report = audit(build(modules=[("module.wasm", module)]).artifact)
    assert check(report, "wasm_import_policy") == [CheckStatus.FAIL], report.quarantine_reasons
    assert any(reason in r for r in report.quarantine_reasons)


def test_channels_declared_through_node_capabilities(build: Builder) -> None:
    module = wat(
        '(module (import "palyra:host@1" "channel_send" (func (param i32 i32 i32 i32) (result i32))))'
    )
    manifest = replace_manifest("node_capabilities = []", 'node_capabilities = ["channel:ops"]')
    report = audit(build(manifest=manifest, modules=[("module.wasm", module)]).artifact)
    assert check(report, "wasm_import_policy") == [CheckStatus.PASS]


def test_section_inventory_reports_custom_and_data_sections(build: Builder) -> None:
    module = wat('(module (memory 1) (data (i32.const 0) "0123456789"))')
    custom = b"\x00" + bytes([1 + 4 + 3]) + b"\x04note" + b"abc"
    report = audit(build(modules=[("module.wasm", module + custom)]).artifact)
    inventory = next(c for c in report.checks if c.check_id == "wasm_module_sections")
    assert inventory.details is not None
    assert inventory.details["data_bytes"] == 10
    assert inventory.details["custom_sections"] == [{"name": "note", "bytes": 3}]


def test_component_is_recognised_not_invalid(build: Builder) -> None:
    component = b"\x00asm\x0d\x00\x01\x00"
    report = audit(build(modules=[("module.wasm", component)]).artifact)
    assert check(report, "wasm_module_kind") == [CheckStatus.PASS]
    kind = next(c for c in report.checks if c.check_id == "wasm_module_kind")
    assert kind.details == {"module_path": "modules/module.wasm", "kind": "component"}
    assert check(report, "wasm_module_validation") == [CheckStatus.SKIPPED]


def test_blocklist(build: Builder, tmp_path: Path) -> None:
    import hashlib

    digest = hashlib.sha256(MINIMAL_WASM).hexdigest()
    path = tmp_path / "blocklist.json"
    path.write_text(
        json.dumps({"schema_version": 1, "entries": [{"sha256": digest, "reason": "CVE-2026-1"}]})
    )
    report = audit(build().artifact, AuditPolicy(blocklist=Blocklist.load(path)))
    assert check(report, "vulnerability_feed_hook") == [CheckStatus.FAIL]
    assert "CVE-2026-1" in report.quarantine_reasons[-1]
    path.write_text(json.dumps({"schema_version": 1, "entries": [{"sha256": "ab" * 32}]}))
    clean = audit(build().artifact, AuditPolicy(blocklist=Blocklist.load(path)))
    assert check(clean, "vulnerability_feed_hook") == [CheckStatus.PASS]


@pytest.mark.parametrize(
    "document",
    [b"{}", b"[]", b'{"schema_version": 1, "entries": [{"sha256": "xyz"}]}', b"nope",
     b'{"schema_version": 1, "entries": {}}', b'{"schema_version": 1, "extra": 1}'],
)  # fmt: skip
def test_bad_blocklists_are_typed_errors(document: bytes) -> None:
    with pytest.raises(errors.BlocklistError) as info:
        Blocklist.parse(document, "test")
    assert info.value.kind == "blocklist_invalid"


def test_audit_report_payload_matches_build(build: Builder) -> None:
    result = build()
    report = audit(result.artifact)
    assert report.to_json()["payload_sha256"] == result.payload_sha256
    assert payload_sha256(report.verification.inspection.entries) == result.payload_sha256


def component(*imports: str) -> bytes:
    """A component importing each name as an (empty) instance."""
    body = " ".join(f'(import "{name}" (instance))' for name in imports)
    return wat(f"(component {body})")


def test_component_imports_are_listed_and_allowed(build: Builder) -> None:
    wasm = component(
        "palyra:skill/host@1.0.0", "palyra:skill/types@1.0.0", "wasi:io/streams@0.2.9",
        "wasi:cli/stdout@0.2.0", "wasi:clocks/monotonic-clock@0.2.0", "wasi:random/random@0.2.0",
        "wasi:filesystem/types@0.2.0", "wasi:sockets/tcp@0.2.9",
    )  # fmt: skip
    manifest = replace_manifest(
        'read_roots = ["skills/data"]\nwrite_roots = ["skills/cache"]',
        "read_roots = []\nwrite_roots = []",
    )
    report = audit(build(manifest=manifest, modules=[("module.wasm", wasm)]).artifact)
    assert check(report, "wasm_component_imports") == [CheckStatus.PASS], report.quarantine_reasons
    found = next(c for c in report.checks if c.check_id == "wasm_component_imports")
    assert found.details is not None
    assert "wasi:io/streams@0.2.9 (instance)" in found.details["imports"]
    # Filesystem and sockets are linked inert, and the report says so.
    assert found.details["inert_imports"] == [
        "wasi:filesystem/types@0.2.0",
        "wasi:sockets/tcp@0.2.9",
    ]
    assert "linked inert" in found.message
    fs = next(c for c in report.checks if c.check_id == "wasm_wasi_filesystem_imports")
    assert fs.status == CheckStatus.PASS and fs.details is not None and fs.details["inert"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("evil:backdoor/api@1.0.0", "not an interface the sandbox provides"),
        ("wasi:http/outgoing-handler@0.2.0", "egress firewall"),
        ("wasi:io/streams@0.3.0", "WASI 0.2 only"),
        ("wasi:io/streams", "WASI 0.2 only"),
        ("palyra:skill/host@2.0.0", "provides 1.0.0"),
        ("palyra:skill/admin@1.0.0", "not an interface of palyra:skill"),
        ("palyra:skillz/host@1.0.0", "not an interface the sandbox provides"),
    ],
)
def test_component_imports_the_sandbox_refuses(build: Builder, name: str, reason: str) -> None:
    report = audit(build(modules=[("module.wasm", component(name))]).artifact)
    assert check(report, "wasm_component_imports") == [CheckStatus.FAIL]
    assert any(reason in r for r in report.quarantine_reasons), report.quarantine_reasons
