"""Build → inspect → verify, trust decisions, SBOM/provenance and compatibility checks."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import struct
import zipfile

import pytest

from conftest import (
    MINIMAL_WASM,
    SAMPLE_MANIFEST,
    SEED_01,
    Builder,
    replace_manifest,
)
from palyra.skills import errors
from palyra.skills.archive import read_archive, write_archive
from palyra.skills.build import manifest_to_toml
from palyra.skills.inspect import inspect_skill_artifact
from palyra.skills.keys import SigningKey, parse_signing_seed
from palyra.skills.manifest import parse_manifest_toml
from palyra.skills.payload import payload_sha256
from palyra.skills.signature import SkillSignature
from palyra.skills.trust import TrustDecision, TrustStore
from palyra.skills.verify import verify_skill_artifact


def resign(entries: dict[str, bytes], key: SigningKey, publisher: str = "acme") -> bytes:
    """Re-sign modified entries so a test reaches the check after the signature."""
    entries = dict(entries)
    entries.pop("signature.json", None)
    digest = payload_sha256(entries)
    entries["signature.json"] = SkillSignature.create(key, publisher, digest, 1).to_bytes()
    return write_archive(entries)


def with_manifest(entries: dict[str, bytes], text: str) -> dict[str, bytes]:
    return {**entries, "skill.toml": text.encode()}


def test_tofu_then_pinned(build: Builder) -> None:
    """Reference item 18."""
    artifact = build().artifact
    store = TrustStore()
    first = verify_skill_artifact(artifact, store, allow_tofu=True)
    assert first.trust_decision is TrustDecision.TOFU_NEWLY_PINNED
    assert store.tofu_publishers == {}, "verification itself never pins"
    assert first.apply_pin(store)
    second = verify_skill_artifact(artifact, store, allow_tofu=False)
    assert second.trust_decision is TrustDecision.TOFU_PINNED
    assert not second.apply_pin(store)


def test_untrusted_publisher_without_tofu(build: Builder) -> None:
    with pytest.raises(errors.UntrustedPublisherError) as info:
        verify_skill_artifact(build().artifact, TrustStore(), allow_tofu=False)
    assert info.value.kind == "untrusted_publisher"
    assert info.value.message == "untrusted publisher 'acme'"


def test_allowlist_wins_and_never_falls_back_to_tofu(build: Builder, key01: SigningKey) -> None:
    artifact = build().artifact  # signed with seed 05
    store = TrustStore()
    store.add_trusted_key("acme", key01.public_key_hex)
    store.pin("acme", SigningKey(bytes([5]) * 32).public_key_hex)
    with pytest.raises(errors.TrustedPublisherKeyMismatchError):
        verify_skill_artifact(artifact, store, allow_tofu=True)


def test_tofu_key_mismatch(build: Builder, key01: SigningKey) -> None:
    store = TrustStore()
    store.pin("acme", key01.public_key_hex)
    with pytest.raises(errors.TofuKeyMismatchError) as info:
        verify_skill_artifact(build().artifact, store, allow_tofu=True)
    assert info.value.message == "TOFU pinned key mismatch for 'acme'"


def test_inspection_contents(build: Builder) -> None:
    """Reference item 22: payload hash, entries, no warnings for the v2 sample."""
    result = build()
    inspection = inspect_skill_artifact(result.artifact)
    assert inspection.payload_sha256 == result.payload_sha256
    assert "signature.json" in inspection.entries
    assert "modules/module.wasm" in inspection.entries
    assert inspection.manifest_warnings == []
    assert inspection.manifest == result.manifest


def test_legacy_v1_warning(build: Builder) -> None:
    """Reference item 23."""
    v1 = SAMPLE_MANIFEST.replace("manifest_version = 2", "manifest_version = 1")
    v1 = v1[: v1.index("[operator]")]
    inspection = inspect_skill_artifact(build(manifest=v1).artifact)
    codes = [w.code for w in inspection.manifest_warnings]
    assert codes == ["legacy_manifest_version", "missing_operator_metadata"]
    assert "manifest_version = 1" in inspection.entries["skill.toml"].decode()


def test_signing_key_encodings() -> None:
    """Reference item 35: raw, hex (either case) and base64 seeds; nothing else."""
    seed = bytes(range(32))
    assert parse_signing_seed(seed) == seed
    assert parse_signing_seed(seed.hex().encode()) == seed
    assert parse_signing_seed(seed.hex().upper().encode() + b"\n") == seed
    assert parse_signing_seed(base64.b64encode(seed) + b"\n") == seed
    assert parse_signing_seed(b"\n" + b"a" * 32 + b"  ") == b"a" * 32
    for bad in (b"", b"00" * 31, seed + seed, b"zz" * 32, b"\xff\xfe" * 20):
        with pytest.raises(errors.InvalidSigningKeyError) as info:
            parse_signing_seed(bad)
        assert info.value.kind == "invalid_signing_key"
    assert "seed" not in repr(SigningKey(seed)).lower().replace("signingkey", "")


def test_publisher_mismatch_between_signature_and_manifest(build: Builder) -> None:
    entries = read_archive(build().artifact)
    artifact = resign(entries, SigningKey(bytes([5]) * 32), publisher="mallory")
    with pytest.raises(errors.SignatureVerificationError):
        inspect_skill_artifact(artifact)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("algorithm", "ed25519-sha512"),
        ("key_id", "ed25519:0000000000000000"),
        ("public_key_base64", base64.b64encode(b"\x00" * 31).decode()),
        ("public_key_base64", "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1x="),
        ("signature_base64", base64.b64encode(b"\x00" * 64).decode()),
        ("signature_base64", "not base64"),
    ],
)
def test_signature_field_tampering(build: Builder, field: str, value: str) -> None:
    entries = read_archive(build().artifact)
    doc = json.loads(entries["signature.json"])
    doc[field] = value
    entries["signature.json"] = json.dumps(doc).encode()
    with pytest.raises(errors.SignatureVerificationError):
        inspect_skill_artifact(write_archive(entries))


@pytest.mark.parametrize(
    "document",
    [
        b"[]",
        b'{"algorithm": "ed25519-sha256"}',
        b"not json",
        b"\xef\xbb\xbf{}",
    ],
)
def test_malformed_signature_document(build: Builder, document: bytes) -> None:
    entries = read_archive(build().artifact)
    entries["signature.json"] = document
    with pytest.raises(errors.InvalidSignatureDocumentError) as info:
        inspect_skill_artifact(write_archive(entries))
    assert info.value.kind == "invalid_signature_document"


def test_signature_document_rejects_extra_and_duplicate_fields(build: Builder) -> None:
    entries = read_archive(build().artifact)
    good = entries["signature.json"].decode()
    for bad in (
        good[:-1] + ', "extra": 1}',
        good[:-1] + ', "publisher": "acme"}',
        good.replace('"signed_at_unix_ms": 1730000000000', '"signed_at_unix_ms": "x"'),
        good.replace('"signed_at_unix_ms": 1730000000000', '"signed_at_unix_ms": true'),
    ):
        entries["signature.json"] = bad.encode()
        with pytest.raises(errors.InvalidSignatureDocumentError):
            inspect_skill_artifact(write_archive(entries))


def test_payload_hash_case_is_exact(build: Builder) -> None:
    entries = read_archive(build().artifact)
    doc = json.loads(entries["signature.json"])
    doc["payload_sha256"] = doc["payload_sha256"].upper()
    entries["signature.json"] = json.dumps(doc).encode()
    with pytest.raises(errors.PayloadHashMismatchError):
        inspect_skill_artifact(write_archive(entries))


def test_integrity_list_must_match_exactly(build: Builder, key05: SigningKey) -> None:
    result = build()
    entries = read_archive(result.artifact)
    manifest = result.manifest
    cases = [
        manifest.integrity[:-1],  # one entry missing
        (*manifest.integrity, manifest.integrity[0]),  # listed twice
        tuple(dataclasses.replace(item, sha256=item.sha256.upper()) for item in manifest.integrity),
    ]
    for integrity in cases:
        text = manifest_to_toml(dataclasses.replace(manifest, integrity=integrity))
        artifact = resign(with_manifest(entries, text), key05)
        with pytest.raises(errors.IntegrityMismatchError) as info:
            inspect_skill_artifact(artifact)
        assert info.value.kind == "integrity_mismatch"


def test_generated_sbom_and_provenance_describe_the_entries(build: Builder) -> None:
    result = build(sbom=None, provenance=None)
    inspection = inspect_skill_artifact(result.artifact)
    sbom = inspection.sbom
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.6"
    listed = {c["name"]: c["hashes"][0]["content"] for c in sbom["components"]}
    assert listed == {
        "assets/templates/prompt.txt": hashlib.sha256(b"hello").hexdigest(),
        "modules/module.wasm": hashlib.sha256(MINIMAL_WASM).hexdigest(),
    }
    subjects = {s["name"]: s["digest"]["sha256"] for s in inspection.provenance["subject"]}
    assert subjects == listed
    assert inspection.provenance["predicateType"] == "https://slsa.dev/provenance/v1"
    # Deterministic: same inputs, same bytes (the signature timestamp is pinned by the fixture).
    assert build(sbom=None, provenance=None).artifact == result.artifact


def test_provenance_with_wrong_digest_is_rejected(build: Builder) -> None:
    wrong = json.dumps(
        {
            "builder": {"id": "ci"},
            "subject": [{"name": "module.wasm", "digest": {"sha256": "ab" * 32}}],
        }
    ).encode()
    with pytest.raises(errors.InvalidProvenanceError) as info:
        build(provenance=wrong)
    assert "module.wasm" in info.value.message
    right = json.dumps(
        {
            "builder": {"id": "ci"},
            "subject": [
                {
                    "name": "module.wasm",
                    "digest": {"sha256": hashlib.sha256(MINIMAL_WASM).hexdigest()},
                },
                {"name": "source", "digest": {"sha256": "placeholder-generated-at-build"}},
            ],
        }
    ).encode()
    inspect_skill_artifact(build(provenance=right).artifact)


def test_provenance_digest_checked_on_verify_too(build: Builder, key05: SigningKey) -> None:
    entries = read_archive(build().artifact)
    result = build()
    provenance = json.dumps(
        {
            "builder": {"id": "x"},
            "subject": [{"name": "modules/module.wasm", "digest": {"sha256": "cd" * 32}}],
        }
    ).encode()
    entries["provenance.json"] = provenance
    manifest = result.manifest
    integrity = tuple(
        dataclasses.replace(item, sha256=hashlib.sha256(provenance).hexdigest())
        if item.path == "provenance.json"
        else item
        for item in manifest.integrity
    )
    text = manifest_to_toml(dataclasses.replace(manifest, integrity=integrity))
    with pytest.raises(errors.InvalidProvenanceError):
        inspect_skill_artifact(resign(with_manifest(entries, text), key05))


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"[]", "SBOM must be JSON object"),
        (b'{"bomFormat": "SPDX", "specVersion": "1.6"}', "bomFormat='CycloneDX'"),
        (b'{"bomFormat": "CycloneDX", "specVersion": 1.6}', "must include specVersion"),
        (b'{"bomFormat": "CycloneDX", "specVersion": "1.6"} trailing', "Extra data"),
        (b'{"bomFormat": "CycloneDX", "specVersion": NaN}', "NaN"),
        (b"[" * 10_000 + b"]" * 10_000, "nests deeper"),
    ],
)
def test_sbom_validation(build: Builder, document: bytes, message: str) -> None:
    with pytest.raises(errors.InvalidSbomError) as info:
        build(sbom=document)
    assert message in info.value.message


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"1", "provenance must be JSON object"),
        (b'{"subject": [{}]}', "builder object"),
        (b'{"builder": {}, "subject": []}', "non-empty subject array"),
    ],
)
def test_provenance_validation(build: Builder, document: bytes, message: str) -> None:
    with pytest.raises(errors.InvalidProvenanceError) as info:
        build(provenance=document)
    assert message in info.value.message


@pytest.mark.parametrize(
    ("change", "error", "kind"),
    [
        (("required_protocol_major = 1", "required_protocol_major = 2"), errors.UnsupportedProtocolMajorError, "unsupported_protocol_major"),
        (('min_palyra_version = "0.1.0"', 'min_palyra_version = "9.0.0"'), errors.UnsupportedRuntimeVersionError, "unsupported_runtime_version"),
        (('min_palyra_version = "0.1.0"', 'min_palyra_version = "0.0.1"\nmax_palyra_version = "0.0.9"'), errors.RuntimeVersionAboveMaximumError, "runtime_version_above_maximum"),
    ],
)  # fmt: skip
def test_runtime_compatibility(
    build: Builder, change: tuple[str, str], error: type[errors.SkillError], kind: str
) -> None:
    with pytest.raises(error) as info:
        build(manifest=replace_manifest(*change))
    assert info.value.kind == kind


def test_build_rejects_bad_module_paths_and_limits(build: Builder) -> None:
    with pytest.raises(errors.ManifestValidationError, match=r"must end with \.wasm"):
        build(modules=[("module.WASM", MINIMAL_WASM)])
    with pytest.raises(errors.ManifestValidationError, match="at least one module"):
        build(modules=[])
    with pytest.raises(errors.InvalidArtifactPathError):
        build(modules=[("../escape.wasm", MINIMAL_WASM)])
    with pytest.raises(errors.DuplicateArtifactEntryError):
        build(modules=[("a.wasm", MINIMAL_WASM), (" a.wasm", MINIMAL_WASM)])
    with pytest.raises(errors.ArtifactEntryTooLargeError):
        build(modules=[("big.wasm", bytes(16 * 1024 * 1024 + 1))])
    # Components may be larger (up to 32 MiB), but no larger.
    component = b"\x00asm\x0d\x00\x01\x00"
    with pytest.raises(errors.ArtifactEntryTooLargeError) as info:
        build(modules=[("big.wasm", component + bytes(32 * 1024 * 1024))])
    assert info.value.details["limit"] == 32 * 1024 * 1024
    with pytest.raises(errors.ArtifactTooManyEntriesError):
        build(modules=[(f"m{i}.wasm", MINIMAL_WASM) for i in range(253)])
    with pytest.raises(errors.ArtifactTooLargeError):
        build(modules=[(f"m{i}.wasm", bytes(14 * 1024 * 1024)) for i in range(5)])


def test_seed_01_builds_the_reference_key_id(build: Builder) -> None:
    result = build(key=SigningKey(SEED_01))
    assert result.signature.key_id == "ed25519:34750f98bd59fcfc"


def test_artifact_readable_by_python_zipfile(build: Builder) -> None:
    result = build()
    with zipfile.ZipFile(io.BytesIO(result.artifact)) as archive:
        assert archive.testzip() is None
        text = archive.read("skill.toml").decode()
    assert parse_manifest_toml(text) == result.manifest


def _rezip(
    entries: dict[str, bytes], rename: dict[str, str] | None = None, extra: bytes = b""
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo((rename or {}).get(name, name), (1980, 1, 1, 0, 0, 0))
            info.extra = extra
            archive.writestr(info, entries[name])
    return buffer.getvalue()


@pytest.mark.parametrize(
    "spelling",
    [" skill.toml", "skill.toml\t", "skill.toml\x1c", "\u2028skill.toml", "skill.toml\u3000"],
)
def test_only_the_canonical_spelling_of_a_name_is_accepted(build: Builder, spelling: str) -> None:
    """Renaming an entry to a whitespace variant keeps the payload hash (names are normalised
    before hashing) but other readers would not find the file: refuse the variant."""
    entries = read_archive(build().artifact)
    with pytest.raises(errors.InvalidArtifactPathError):
        inspect_skill_artifact(_rezip(entries, rename={"skill.toml": spelling}))


def test_unknown_extra_fields_are_refused(build: Builder) -> None:
    """Extra fields are outside the signature: only well-known metadata fields may ride along."""
    entries = read_archive(build().artifact)
    with pytest.raises(errors.InvalidArchiveError, match="extra field 0xcafe"):
        inspect_skill_artifact(_rezip(entries, extra=struct.pack("<HH", 0xCAFE, 2) + b"xx"))
    timestamp = struct.pack("<HHB", 0x5455, 5, 1) + struct.pack("<I", 0)
    inspect_skill_artifact(_rezip(entries, extra=timestamp))


def test_directory_mode_without_trailing_slash_is_refused(build: Builder) -> None:
    entries = read_archive(build().artifact)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            if name == "assets/templates/prompt.txt":
                info.external_attr = 0o040755 << 16
            archive.writestr(info, entries[name])
    with pytest.raises(errors.InvalidArchiveError, match="directory without a trailing"):
        inspect_skill_artifact(buffer.getvalue())
