"""Structural and cryptographic inspection of an artifact — everything except trust (§3.1).

Steps run in the reference's order so the first failure reported is the same; the stricter
checks of this implementation (archive shape, provenance digests, duplicate integrity paths)
slot in where the data they need first exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from palyra.skills.archive import decode_archive
from palyra.skills.compat import assert_runtime_compatibility
from palyra.skills.constants import (
    MANIFEST_ENTRY,
    MODULES_PREFIX,
    PROVENANCE_ENTRY,
    SBOM_ENTRY,
    SIGNATURE_ENTRY,
)
from palyra.skills.digests import PARALLEL_THRESHOLD, hash_entries
from palyra.skills.errors import (
    IntegrityMismatchError,
    MissingArtifactEntryError,
    PayloadHashMismatchError,
    SignatureVerificationError,
)
from palyra.skills.manifest import (
    ManifestWarning,
    SkillManifest,
    collect_manifest_warnings,
    parse_manifest_bytes,
)
from palyra.skills.sbom import check_provenance_subjects, validate_provenance, validate_sbom
from palyra.skills.signature import SkillSignature
from palyra.skills.values import normalize_artifact_path


@dataclass(frozen=True)
class SkillInspection:
    """A structurally valid, correctly signed artifact (publisher not yet trusted)."""

    manifest: SkillManifest
    signature: SkillSignature
    payload_sha256: str
    public_key: bytes
    manifest_warnings: list[ManifestWarning]
    entries: dict[str, bytes] = field(repr=False)
    entry_digests: dict[str, str]
    sbom: dict[str, Any] = field(repr=False)
    provenance: dict[str, Any] = field(repr=False)

    @property
    def public_key_hex(self) -> str:
        return self.public_key.hex()

    @property
    def modules(self) -> list[str]:
        return sorted(name for name in self.entries if _is_module(name))

    def to_json(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest.to_json(),
            "signature": self.signature.to_json(),
            "payload_sha256": self.payload_sha256,
            "manifest_warnings": [w.to_json() for w in self.manifest_warnings],
            "entries": [
                {
                    "path": name,
                    "bytes": len(data),
                    "sha256": self.entry_digests.get(name),
                }
                for name, data in sorted(self.entries.items())
            ],
        }


def _is_module(name: str) -> bool:
    return name.startswith(MODULES_PREFIX) and name.endswith(".wasm")


def _require(entries: Mapping[str, bytes], name: str) -> bytes:
    data = entries.get(name)
    if data is None:
        raise MissingArtifactEntryError(name)
    return data


def check_integrity(manifest: SkillManifest, digests: Mapping[str, str]) -> None:
    """The manifest's ``integrity.files`` must list exactly the entries, with exact digests."""
    declared: dict[str, str] = {}
    for item in manifest.integrity:
        path = normalize_artifact_path(item.path)
        if path in declared:
            raise IntegrityMismatchError(f"manifest integrity lists '{path}' more than once")
        declared[path] = item.sha256
    if declared != dict(digests):
        raise IntegrityMismatchError("manifest integrity does not match artifact payload")


def inspect_skill_artifact(data: bytes) -> SkillInspection:
    # CRCs of big entries are checked while hashing, on the second core; small ones at once.
    contents = decode_archive(data, defer_crc_from=PARALLEL_THRESHOLD)
    entries = contents.entries
    manifest = parse_manifest_bytes(_require(entries, MANIFEST_ENTRY))
    sbom = validate_sbom(_require(entries, SBOM_ENTRY))
    provenance = validate_provenance(_require(entries, PROVENANCE_ENTRY))
    if not any(_is_module(name) for name in entries):
        raise MissingArtifactEntryError("modules/*.wasm")
    signature = SkillSignature.parse(_require(entries, SIGNATURE_ENTRY))
    payload, digests = hash_entries(entries, also=contents.check_pending_crcs)
    if payload != signature.payload_sha256:
        raise PayloadHashMismatchError()
    public_key = signature.verify()
    if signature.publisher != manifest.publisher:
        raise SignatureVerificationError("signature publisher differs from manifest publisher")
    check_integrity(manifest, digests)
    check_provenance_subjects(provenance, digests)
    assert_runtime_compatibility(manifest)
    return SkillInspection(
        manifest=manifest,
        signature=signature,
        payload_sha256=payload,
        public_key=public_key,
        manifest_warnings=collect_manifest_warnings(manifest),
        entries=entries,
        entry_digests=digests,
        sbom=sbom,
        provenance=provenance,
    )
