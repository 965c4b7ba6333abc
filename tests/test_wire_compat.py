"""Byte-level compatibility with the reference format (design.md §2).

Each expectation is computed independently of the library (a few lines of spec code, or
``cryptography`` and ``zipfile`` used directly) so a shared bug cannot hide.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import zipfile

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conftest import (
    MINIMAL_WASM,
    SAMPLE_MANIFEST,
    SAMPLE_PROVENANCE,
    SAMPLE_SBOM,
    SEED_01,
    SEED_05,
    Builder,
)
from palyra.skills.build import manifest_to_toml
from palyra.skills.inspect import inspect_skill_artifact
from palyra.skills.keys import SigningKey, key_id_for
from palyra.skills.manifest import IntegrityFile, parse_manifest_toml
from palyra.skills.payload import payload_sha256
from palyra.skills.trust import TrustDecision, TrustStore
from palyra.skills.verify import verify_skill_artifact


def spec_payload_hash(entries: dict[str, bytes]) -> str:
    """skills-format.md §2.5, written out again from the spec."""
    h = hashlib.sha256(b"palyra.skill.payload.v1")
    for name in sorted(entries):
        if name == "signature.json":
            continue
        raw = name.encode()
        h.update(struct.pack(">Q", len(raw)) + raw + struct.pack(">Q", len(entries[name])))
        h.update(entries[name])
    return h.hexdigest()


def test_key_ids_match_reference_fixtures() -> None:
    assert SigningKey(SEED_01).key_id == "ed25519:34750f98bd59fcfc"
    assert SigningKey(SEED_05).key_id == "ed25519:7599776c3085e3f9"
    assert (
        SigningKey(SEED_01).public_key_hex
        == "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
    )
    assert (
        SigningKey(SEED_05).public_key_hex
        == "6e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf1"
    )
    assert base64.b64encode(SigningKey(SEED_01).public_key).decode() == (
        "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="
    )


def test_payload_hash_matches_independent_implementation(build: Builder) -> None:
    result = build()
    with zipfile.ZipFile(io.BytesIO(result.artifact)) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    assert spec_payload_hash(entries) == result.payload_sha256 == payload_sha256(entries)
    signature = json.loads(entries["signature.json"])
    assert signature["payload_sha256"] == result.payload_sha256


def test_built_archive_layout_is_the_reference_one(build: Builder) -> None:
    result = build()
    with zipfile.ZipFile(io.BytesIO(result.artifact)) as archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        assert names == sorted(names)
        assert names == [
            "assets/templates/prompt.txt",
            "modules/module.wasm",
            "provenance.json",
            "sbom.cdx.json",
            "signature.json",
            "skill.toml",
        ]
        for info in infos:
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert (info.external_attr >> 16) & 0o777 == 0o644
        assert archive.comment == b""
        raw_signature = archive.read("signature.json")
    fields = list(json.loads(raw_signature))
    assert fields == [
        "algorithm",
        "publisher",
        "key_id",
        "public_key_base64",
        "payload_sha256",
        "signature_base64",
        "signed_at_unix_ms",
    ]
    assert raw_signature.startswith(b'{\n  "algorithm": "ed25519-sha256",\n')
    assert not raw_signature.endswith(b"\n")


def test_signature_is_over_the_hex_digest_string(build: Builder) -> None:
    result = build()
    public = Ed25519PrivateKey.from_private_bytes(SEED_05).public_key()
    signature = base64.b64decode(result.signature.signature_base64)
    public.verify(signature, result.payload_sha256.encode("ascii"))  # raises if wrong


def test_hand_assembled_reference_artifact_verifies() -> None:
    """An artifact put together with zipfile + cryptography, as the reference would."""
    manifest = parse_manifest_toml(SAMPLE_MANIFEST)
    prompt = b"hello"
    payload_entries = {
        "assets/templates/prompt.txt": prompt,
        "modules/module.wasm": MINIMAL_WASM,
        "provenance.json": SAMPLE_PROVENANCE,
        "sbom.cdx.json": SAMPLE_SBOM,
    }
    integrity = tuple(
        IntegrityFile(name, hashlib.sha256(data).hexdigest())
        for name, data in sorted(payload_entries.items())
    )
    import dataclasses

    text = manifest_to_toml(dataclasses.replace(manifest, integrity=integrity))
    entries = {**payload_entries, "skill.toml": text.encode()}
    digest = spec_payload_hash(entries)
    private = Ed25519PrivateKey.from_private_bytes(SEED_01)
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    signature_doc = {
        "algorithm": "ed25519-sha256",
        "publisher": "acme",
        "key_id": "ed25519:" + hashlib.sha256(public).hexdigest()[:16],
        "public_key_base64": base64.b64encode(public).decode(),
        "payload_sha256": digest,
        "signature_base64": base64.b64encode(private.sign(digest.encode())).decode(),
        "signed_at_unix_ms": 1_730_000_000_000,
    }
    entries["signature.json"] = json.dumps(signature_doc, indent=2).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            archive.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), entries[name])
    store = TrustStore()
    store.add_trusted_key("acme", public.hex())
    report = verify_skill_artifact(buffer.getvalue(), store, allow_tofu=False)
    assert report.trust_decision is TrustDecision.ALLOWLISTED
    assert report.inspection.payload_sha256 == digest
    assert key_id_for(public) == "ed25519:34750f98bd59fcfc"


def test_reference_style_stored_entries_and_data_descriptors_are_read(build: Builder) -> None:
    """Other writers use STORED or streaming data descriptors; both are valid layouts."""
    result = build()
    with zipfile.ZipFile(io.BytesIO(result.artifact)) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name in sorted(entries):
            archive.writestr(name, entries[name])
    assert inspect_skill_artifact(buffer.getvalue()).payload_sha256 == result.payload_sha256

    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: object) -> int:
            chunk = bytes(b)  # type: ignore[call-overload]
            self.data += chunk
            return len(chunk)

    stream = Unseekable()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            with archive.open(name, "w") as handle:
                handle.write(entries[name])
    assert inspect_skill_artifact(bytes(stream.data)).payload_sha256 == result.payload_sha256
