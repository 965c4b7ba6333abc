"""SBOM (CycloneDX) and provenance (in-toto/SLSA-style) documents: checks and generation.

The reference only shape-checks both documents (§3.3). We keep those checks (so reference
artifacts still verify) and add one: a provenance ``subject`` that carries a real SHA-256
digest must match an entry of the artifact — otherwise the provenance describes other bytes.
Placeholder digests (the reference example ships ``placeholder-generated-at-build``) are
ignored, as before.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from palyra import __version__
from palyra.skills.constants import ASSETS_PREFIX, MAX_METADATA_JSON_BYTES, MODULES_PREFIX
from palyra.skills.errors import InvalidProvenanceError, InvalidSbomError
from palyra.skills.jsondoc import JsonDocumentError, dumps_pretty, loads_strict

_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_SBOM_NAMESPACE = uuid.UUID("6c7f3f5e-2f7b-4c53-9d1f-70616c797261")


def validate_sbom(data: bytes) -> dict[str, Any]:
    try:
        doc = loads_strict(data, max_bytes=MAX_METADATA_JSON_BYTES)
    except JsonDocumentError as exc:
        raise InvalidSbomError(str(exc)) from None
    if not isinstance(doc, dict):
        raise InvalidSbomError("SBOM must be JSON object")
    if doc.get("bomFormat") != "CycloneDX":
        raise InvalidSbomError("sbom.cdx.json must declare bomFormat='CycloneDX'")
    spec = doc.get("specVersion")
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidSbomError("sbom.cdx.json must include specVersion")
    return doc


def validate_provenance(data: bytes) -> dict[str, Any]:
    try:
        doc = loads_strict(data, max_bytes=MAX_METADATA_JSON_BYTES)
    except JsonDocumentError as exc:
        raise InvalidProvenanceError(str(exc)) from None
    if not isinstance(doc, dict):
        raise InvalidProvenanceError("provenance must be JSON object")
    if not isinstance(doc.get("builder"), dict):
        raise InvalidProvenanceError("provenance must include builder object")
    subject = doc.get("subject")
    if not isinstance(subject, list) or not subject:
        raise InvalidProvenanceError("provenance must include non-empty subject array")
    return doc


def check_provenance_subjects(doc: Mapping[str, Any], digests: Mapping[str, str]) -> None:
    """Every subject with a real ``digest.sha256`` must name an entry with that digest.

    A subject matches an entry by exact name or by basename (the reference example names its
    subject ``module.wasm`` for the entry ``modules/module.wasm``).
    """
    for index, subject in enumerate(doc.get("subject", [])):
        if not isinstance(subject, dict):
            continue
        digest = subject.get("digest")
        claimed = digest.get("sha256") if isinstance(digest, dict) else None
        if not isinstance(claimed, str) or not _SHA256.fullmatch(claimed):
            continue
        name = subject.get("name")
        candidates = [
            entry
            for entry in digests
            if isinstance(name, str) and (entry == name or entry.rsplit("/", 1)[-1] == name)
        ]
        if not any(digests[entry] == claimed.lower() for entry in candidates):
            shown = name if isinstance(name, str) else f"#{index}"
            raise InvalidProvenanceError(
                f"provenance subject '{shown}' (sha256 {claimed.lower()[:16]}…) does not match "
                "any artifact entry"
            )


def _covered(digests: Mapping[str, str]) -> list[tuple[str, str]]:
    return sorted(
        (name, digest)
        for name, digest in digests.items()
        if name.startswith((MODULES_PREFIX, ASSETS_PREFIX))
    )


def generate_sbom(skill_id: str, version: str, publisher: str, digests: Mapping[str, str]) -> bytes:
    """A CycloneDX 1.6 SBOM listing every module and asset with its SHA-256.

    Deterministic (no timestamp; serial number derived from the content) so identical inputs
    build identical artifacts.
    """
    files = _covered(digests)
    seed = "\n".join([skill_id, version, publisher, *(f"{n}={d}" for n, d in files)])
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid.uuid5(_SBOM_NAMESPACE, seed)}",
        "version": 1,
        "metadata": {
            "tools": {
                "components": [{"type": "application", "name": "palyra", "version": __version__}]
            },
            "component": {
                "type": "application",
                "bom-ref": skill_id,
                "name": skill_id,
                "version": version,
                "publisher": publisher,
            },
        },
        "components": [
            {
                "type": "file",
                "bom-ref": name,
                "name": name,
                "hashes": [{"alg": "SHA-256", "content": digest}],
            }
            for name, digest in files
        ],
    }
    return dumps_pretty(doc)


def generate_provenance(
    skill_id: str, version: str, publisher: str, digests: Mapping[str, str]
) -> bytes:
    """An in-toto Statement (SLSA provenance predicate) whose subjects are the entries.

    A top-level ``builder`` object is kept beside the standard fields because the reference
    format requires it.
    """
    builder = {"id": f"https://palyra.dev/builders/palyra-cli@{__version__}"}
    doc = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {"name": name, "digest": {"sha256": digest}} for name, digest in _covered(digests)
        ],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://palyra.dev/skill-package/v1",
                "externalParameters": {
                    "skill_id": skill_id,
                    "version": version,
                    "publisher": publisher,
                },
            },
            "runDetails": {"builder": builder},
        },
        "builder": builder,
    }
    return dumps_pretty(doc)
