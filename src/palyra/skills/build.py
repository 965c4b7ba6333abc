"""Building and signing a ``.palyra-skill`` artifact (§2.4).

The steps follow the reference in order. When no SBOM or provenance is supplied, both are
generated from the entries' digests, so every artifact this tool builds carries an inventory
and a provenance statement that verification can check against the bytes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

import tomli_w

from palyra.skills.archive import read_archive, write_archive
from palyra.skills.compat import assert_runtime_compatibility
from palyra.skills.constants import (
    ASSETS_PREFIX,
    COMPONENT_MAGIC,
    MANIFEST_ENTRY,
    MAX_ARTIFACT_BYTES,
    MAX_ENTRIES,
    MAX_ENTRY_BYTES,
    MODULES_PREFIX,
    PROVENANCE_ENTRY,
    SBOM_ENTRY,
    SIGNATURE_ENTRY,
    entry_size_limit,
    oversized_entry,
)
from palyra.skills.digests import entry_digests
from palyra.skills.errors import (
    ArtifactEntryTooLargeError,
    ArtifactTooLargeError,
    ArtifactTooManyEntriesError,
    DuplicateArtifactEntryError,
    ManifestValidationError,
)
from palyra.skills.keys import SigningKey
from palyra.skills.manifest import IntegrityFile, SkillManifest, parse_manifest_toml
from palyra.skills.payload import payload_sha256
from palyra.skills.sbom import (
    check_provenance_subjects,
    generate_provenance,
    generate_sbom,
    validate_provenance,
    validate_sbom,
)
from palyra.skills.signature import SkillSignature
from palyra.skills.values import normalize_artifact_path


@dataclass(frozen=True)
class BuildResult:
    artifact: bytes
    manifest: SkillManifest
    payload_sha256: str
    signature: SkillSignature


def manifest_to_toml(manifest: SkillManifest) -> str:
    """Serialize with TOML 1.0 syntax only, so any TOML 1.0 reader can parse the artifact."""
    return tomli_w.dumps(manifest.to_json())


def entry_path_from_cli(raw: str) -> str:
    """Map a ``--module``/``--asset`` argument to its in-artifact path (reference rule).

    Absolute paths contribute only their file name; relative paths are used as typed.
    """
    value = raw.strip()
    if not value:
        raise ManifestValidationError("artifact file path cannot be empty")
    path = PurePath(value)
    return path.name if path.is_absolute() else value.replace("\\", "/")


def _insert(entries: dict[str, bytes], name: str, data: bytes) -> None:
    if oversized_entry(name, data):
        raise ArtifactEntryTooLargeError(
            name,
            len(data),
            entry_size_limit(name) if data.startswith(COMPONENT_MAGIC) else MAX_ENTRY_BYTES,
        )
    if name in entries:
        raise DuplicateArtifactEntryError(name)
    entries[name] = data


def build_signed_skill_artifact(
    manifest_text: str,
    modules: Sequence[tuple[str, bytes]],
    key: SigningKey,
    *,
    assets: Sequence[tuple[str, bytes]] = (),
    sbom: bytes | None = None,
    provenance: bytes | None = None,
    signed_at_unix_ms: int | None = None,
) -> BuildResult:
    manifest = parse_manifest_toml(manifest_text)
    assert_runtime_compatibility(manifest)
    if sbom is not None:
        validate_sbom(sbom)
    provenance_doc = validate_provenance(provenance) if provenance is not None else None

    entries: dict[str, bytes] = {}
    for path, data in modules:
        if not path.endswith(".wasm"):
            raise ManifestValidationError(f"module path '{path}' must end with .wasm")
        _insert(entries, MODULES_PREFIX + normalize_artifact_path(path), data)
    if not entries:
        raise ManifestValidationError("artifact must include at least one module")
    for path, data in assets:
        _insert(entries, ASSETS_PREFIX + normalize_artifact_path(path), data)
    if len(entries) + 4 > MAX_ENTRIES:  # the four fixed documents come next
        raise ArtifactTooManyEntriesError(len(entries) + 4, MAX_ENTRIES)

    content_digests = entry_digests(entries)
    m = manifest
    if sbom is None:
        sbom = generate_sbom(m.skill_id, m.version, m.publisher, content_digests)
    if provenance is None:
        provenance = generate_provenance(m.skill_id, m.version, m.publisher, content_digests)
    elif provenance_doc is not None:
        check_provenance_subjects(provenance_doc, content_digests)
    _insert(entries, SBOM_ENTRY, sbom)
    _insert(entries, PROVENANCE_ENTRY, provenance)

    integrity = tuple(
        IntegrityFile(name, digest) for name, digest in entry_digests(entries).items()
    )
    manifest = dataclasses.replace(manifest, integrity=integrity)
    manifest_bytes = manifest_to_toml(manifest).encode("utf-8")
    if parse_manifest_toml(manifest_bytes.decode("utf-8")) != manifest:
        # A serializer bug must never produce an artifact that means something else.
        raise ManifestValidationError("manifest does not survive TOML serialization unchanged")
    _insert(entries, MANIFEST_ENTRY, manifest_bytes)

    payload = payload_sha256(entries)
    signed_at = int(time.time() * 1000) if signed_at_unix_ms is None else signed_at_unix_ms
    signature = SkillSignature.create(key, manifest.publisher, payload, signed_at)
    _insert(entries, SIGNATURE_ENTRY, signature.to_bytes())

    if len(entries) > MAX_ENTRIES:
        raise ArtifactTooManyEntriesError(len(entries), MAX_ENTRIES)
    total = sum(len(data) for data in entries.values())
    if total > MAX_ARTIFACT_BYTES:
        raise ArtifactTooLargeError(total, MAX_ARTIFACT_BYTES)
    artifact = write_archive(entries)
    if len(artifact) > MAX_ARTIFACT_BYTES:
        raise ArtifactTooLargeError(len(artifact), MAX_ARTIFACT_BYTES)
    # Never hand out an artifact our own strict reader would refuse (e.g. a ratio bomb).
    read_archive(artifact)
    return BuildResult(artifact, manifest, payload, signature)
