"""Tampering with a signed artifact: every change to what it means is detected, and typed.

Three layers, from the outside in:

* the container bytes — every offset of the whole file XORed with 0x01, 0x80 and 0xFF;
* the entries — one byte of each entry's *uncompressed* data flipped at every position, then
  re-encoded with :func:`write_archive`, so the container is pristine and only the signature,
  payload hash and document validation stand between the edit and acceptance;
* random combinations of flips, truncations, insertions and deletions (Hypothesis).

The sample artifact is ~2 KiB and each entry a few hundred bytes (skill.toml ~2.7 KiB), so
every position is covered exhaustively; nothing is sampled. The whole file runs in ~10 s.

Things the format deliberately leaves unauthenticated are carved out explicitly (and nowhere
else): ZIP header metadata that no reader decision depends on (timestamps, "version made
by/needed", internal/external attributes of a regular file) and the padding bits at the end of
a DEFLATE stream — skills-format.md §2.5: "the zip container itself ... is not hashed" — and
``signed_at_unix_ms`` in ``signature.json`` (§2.6: "not covered by the signature, not
checked"). A mutation there may be accepted, but only if the artifact still means exactly the
same thing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SEED_01, Builder
from palyra.skills import errors
from palyra.skills.archive import read_archive, write_archive
from palyra.skills.inspect import SkillInspection, inspect_skill_artifact
from palyra.skills.keys import SigningKey
from palyra.skills.payload import payload_sha256
from palyra.skills.signature import SkillSignature
from palyra.skills.trust import TrustStore
from palyra.skills.verify import verify_skill_artifact

MASKS = (0x01, 0x80, 0xFF)
SIGNED_AT_KEY = b'"signed_at_unix_ms": '

# Header fields that no accept/reject decision reads (offsets within each header).
LOCAL_METADATA = (4, 5, 10, 11, 12, 13)  # version needed, mod time, mod date
CENTRAL_METADATA = (4, 5, 6, 7, 12, 13, 14, 15, 36, 37, 38, 39, 40, 41)  # made by, needed,
# time, date, internal attributes, external attributes


@pytest.fixture
def artifact(build: Builder) -> bytes:
    return build().artifact


@pytest.fixture
def entries(artifact: bytes) -> dict[str, bytes]:
    return read_archive(artifact)


def unauthenticated_offsets(data: bytes) -> set[int]:
    """Absolute offsets of the metadata fields above, plus the last byte of each DEFLATE
    stream (its high bits can be padding after the end-of-block code, which inflaters
    ignore), found by walking the directory."""
    eocd = len(data) - 22
    (total,) = struct.unpack_from("<H", data, eocd + 10)
    (cd_offset,) = struct.unpack_from("<I", data, eocd + 16)
    offsets: set[int] = set()
    pos = cd_offset
    for _ in range(total):
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        (compressed_size,) = struct.unpack_from("<I", data, pos + 20)
        (local,) = struct.unpack_from("<I", data, pos + 42)
        offsets.update(pos + field for field in CENTRAL_METADATA)
        offsets.update(local + field for field in LOCAL_METADATA)
        local_name_len, local_extra_len = struct.unpack_from("<HH", data, local + 26)
        offsets.add(local + 30 + local_name_len + local_extra_len + compressed_size - 1)
        pos += 46 + name_len + extra_len + comment_len
    return offsets


def signed_at_span(signature_json: bytes) -> range:
    """Byte positions of the ``signed_at_unix_ms`` number inside signature.json."""
    start = signature_json.index(SIGNED_AT_KEY) + len(SIGNED_AT_KEY)
    end = start
    while end < len(signature_json) and signature_json[end : end + 1].isdigit():
        end += 1
    return range(start, end)


def assert_same_meaning(accepted: SkillInspection, entries: dict[str, bytes]) -> None:
    """An accepted mutation must decode to the same signed content as the original."""
    unsigned = {k: v for k, v in accepted.entries.items() if k != "signature.json"}
    assert unsigned == {k: v for k, v in entries.items() if k != "signature.json"}
    assert accepted.payload_sha256 == payload_sha256(entries)
    original = SkillSignature.parse(entries["signature.json"])
    assert accepted.signature.signature_base64 == original.signature_base64
    assert accepted.signature.public_key_base64 == original.public_key_base64


# --- the whole file, bit by bit ------------------------------------------------------------


@pytest.mark.parametrize("mask", MASKS, ids=[f"xor{m:#04x}" for m in MASKS])
def test_flip_every_byte_of_the_file(artifact: bytes, entries: dict[str, bytes], mask: int) -> None:
    """Reference case 38 generalised: a flip anywhere in the file is a SkillError (nothing
    else escapes), except in header metadata the format does not authenticate — and there it
    may only be accepted if the decoded artifact is unchanged."""
    metadata = unauthenticated_offsets(artifact)
    accepted: list[int] = []
    for offset in range(len(artifact)):
        mutated = bytearray(artifact)
        mutated[offset] ^= mask
        try:
            inspection = inspect_skill_artifact(bytes(mutated))
        except errors.SkillError:
            continue
        except Exception as exc:  # the property under test: nothing else escapes
            pytest.fail(f"flip at {offset} raised {type(exc).__name__}: {exc}")
        accepted.append(offset)
        assert inspection.entries == entries, f"flip at {offset} changed the content"
        assert_same_meaning(inspection, entries)
    outside = sorted(set(accepted) - metadata)
    assert not outside, f"flips accepted outside unauthenticated bytes: {outside}"
    # Sanity: the carve-out is small — header metadata and stream padding, not data or names.
    assert len(metadata) < len(artifact) // 8


# --- each entry's content, byte by byte ----------------------------------------------------

Expected = tuple[type[errors.SkillError], ...]

# What may legitimately come first (inspect order, skills-format.md §3.1): SBOM and provenance
# are validated (steps 5-6) before the payload hash (step 9), so a flip that breaks their JSON
# is reported as such; the module and asset are only hashed.
EXPECTED: dict[str, Expected] = {
    "modules/module.wasm": (errors.PayloadHashMismatchError,),
    "assets/templates/prompt.txt": (errors.PayloadHashMismatchError,),
    "sbom.cdx.json": (errors.InvalidSbomError, errors.PayloadHashMismatchError),
    "provenance.json": (errors.InvalidProvenanceError, errors.PayloadHashMismatchError),
    "signature.json": (
        errors.InvalidSignatureDocumentError,
        errors.SignatureVerificationError,
        errors.PayloadHashMismatchError,
    ),
}


@pytest.mark.parametrize("mask", [0x01, 0x80], ids=["xor0x01", "xor0x80"])
@pytest.mark.parametrize(
    "name",
    [
        "skill.toml",
        "signature.json",
        "sbom.cdx.json",
        "provenance.json",
        "modules/module.wasm",
        "assets/templates/prompt.txt",
    ],
)
def test_flip_every_byte_of_every_entry(entries: dict[str, bytes], name: str, mask: int) -> None:
    """Edits to uncompressed content in a well-formed container: the payload hash, the
    signature and the document parsers must catch every one, with the expected type
    (``skill.toml``: any SkillError — a flip there can fail parsing, validation, integrity or
    the hash, whichever comes first)."""
    original = entries[name]
    allowed_to_pass = (
        signed_at_span(original) if name == "signature.json" else range(0)
    )  # §2.6: signed_at is outside the signature
    wrong: list[str] = []
    for position in range(len(original)):
        content = bytearray(original)
        content[position] ^= mask
        data = write_archive({**entries, name: bytes(content)})
        try:
            inspection = inspect_skill_artifact(data)
        except errors.SkillError as exc:
            expected = EXPECTED.get(name)
            if expected is not None and type(exc) not in expected:
                wrong.append(f"{position}: {type(exc).__name__}: {exc}")
            continue
        except Exception as exc:  # the property under test: nothing else escapes
            pytest.fail(f"{name}[{position}] ^ {mask:#x} raised {type(exc).__name__}: {exc}")
        assert position in allowed_to_pass, f"{name}[{position}] ^ {mask:#x} was accepted"
        assert_same_meaning(inspection, entries)
        assert (
            inspection.signature.signed_at_unix_ms
            != SkillSignature.parse(original).signed_at_unix_ms
        )
    assert not wrong, f"{name} ^ {mask:#x}: unexpected error types: {wrong[:10]}"


def test_signed_at_is_the_only_unsigned_signature_field(entries: dict[str, bytes]) -> None:
    """Pins the documented format limitation (§2.6, §11) so a change to it is deliberate:
    rewriting ``signed_at_unix_ms`` keeps the signature valid; every other field is bound."""
    signature = SkillSignature.parse(entries["signature.json"])
    for value in (0, 1, 2**62):
        forged = {**signature.to_json(), "signed_at_unix_ms": value}
        rebuilt = SkillSignature(**forged).to_bytes()
        inspection = inspect_skill_artifact(write_archive({**entries, "signature.json": rebuilt}))
        assert inspection.signature.signed_at_unix_ms == value
        assert_same_meaning(inspection, entries)


# --- reference cases 19-21 and other removals ----------------------------------------------


def test_reference_case_19_missing_sbom(entries: dict[str, bytes]) -> None:
    """Reference case 19: removing sbom.cdx.json and re-zipping."""
    data = write_archive({k: v for k, v in entries.items() if k != "sbom.cdx.json"})
    with pytest.raises(errors.MissingArtifactEntryError) as info:
        inspect_skill_artifact(data)
    assert info.value.kind == "missing_artifact_entry"
    assert info.value.details == {"path": "sbom.cdx.json"}


def test_reference_case_20_missing_manifest(entries: dict[str, bytes]) -> None:
    """Reference case 20: removing skill.toml → MissingArtifactEntry("skill.toml")."""
    data = write_archive({k: v for k, v in entries.items() if k != "skill.toml"})
    with pytest.raises(errors.MissingArtifactEntryError) as info:
        inspect_skill_artifact(data)
    assert info.value.kind == "missing_artifact_entry"
    assert info.value.details == {"path": "skill.toml"}
    assert "'skill.toml'" in str(info.value)


def test_reference_case_21_byte_appended_to_module(entries: dict[str, bytes]) -> None:
    """Reference case 21: one byte appended to modules/module.wasm."""
    module = entries["modules/module.wasm"] + b"\x00"
    data = write_archive({**entries, "modules/module.wasm": module})
    with pytest.raises(errors.PayloadHashMismatchError) as info:
        inspect_skill_artifact(data)
    assert type(info.value) is errors.PayloadHashMismatchError
    assert info.value.kind == "payload_hash_mismatch"


@pytest.mark.parametrize(
    ("removed", "error", "path"),
    [
        ("provenance.json", errors.MissingArtifactEntryError, "provenance.json"),
        ("signature.json", errors.MissingArtifactEntryError, "signature.json"),
        ("modules/module.wasm", errors.MissingArtifactEntryError, "modules/*.wasm"),
        ("assets/templates/prompt.txt", errors.PayloadHashMismatchError, None),
    ],
)
def test_removed_entry(
    entries: dict[str, bytes], removed: str, error: type[errors.SkillError], path: str | None
) -> None:
    """Dropping an entry: required documents are named as missing; an optional asset is
    still part of the signed payload, so removing it breaks the hash."""
    data = write_archive({k: v for k, v in entries.items() if k != removed})
    with pytest.raises(errors.SkillError) as info:
        inspect_skill_artifact(data)
    assert type(info.value) is error
    if path is not None:
        assert info.value.details == {"path": path}


def test_added_asset_breaks_the_payload_hash(entries: dict[str, bytes]) -> None:
    """Smuggling an extra (allowlisted) file in: it is hashed like every other entry."""
    data = write_archive({**entries, "assets/extra.txt": b"smuggled"})
    with pytest.raises(errors.SkillError) as info:
        inspect_skill_artifact(data)
    assert type(info.value) is errors.PayloadHashMismatchError


def test_tampered_and_resigned_by_another_key(entries: dict[str, bytes]) -> None:
    """An attacker who edits the module and re-signs with their own key as "acme" gets a
    valid signature, but the manifest's integrity list still names the old digest."""
    attacker = SigningKey(SEED_01)
    tampered = {**entries, "modules/module.wasm": entries["modules/module.wasm"] + b"\x01"}
    tampered.pop("signature.json")
    signature = SkillSignature.create(attacker, "acme", payload_sha256(tampered), 1)
    data = write_archive({**tampered, "signature.json": signature.to_bytes()})
    with pytest.raises(errors.SkillError) as info:
        inspect_skill_artifact(data)
    assert type(info.value) is errors.IntegrityMismatchError
    assert info.value.kind == "integrity_mismatch"


def test_resigned_by_another_key_fails_the_pin(
    entries: dict[str, bytes], key05: SigningKey
) -> None:
    """Same content re-signed by another key passes inspection (signatures are not trust),
    and the trust store refuses it: the publisher is pinned to the original key."""
    attacker = SigningKey(SEED_01)
    unsigned = {k: v for k, v in entries.items() if k != "signature.json"}
    signature = SkillSignature.create(attacker, "acme", payload_sha256(unsigned), 1)
    data = write_archive({**unsigned, "signature.json": signature.to_bytes()})
    store = TrustStore()
    store.pin("acme", key05.public_key_hex)
    with pytest.raises(errors.SkillError) as info:
        verify_skill_artifact(data, store, allow_tofu=True)
    assert type(info.value) is errors.TofuKeyMismatchError
    assert info.value.kind == "tofu_key_mismatch"


# --- property: random mutations of a real artifact ----------------------------------------


@dataclass(frozen=True)
class Mutation:
    kind: str
    position: int
    mask: int
    inserted: bytes
    length: int

    def apply(self, data: bytes) -> bytes:
        if not data:
            return self.inserted if self.kind == "insert" else data
        at = self.position % len(data)
        if self.kind == "flip":
            return data[:at] + bytes([data[at] ^ self.mask]) + data[at + 1 :]
        if self.kind == "truncate":
            return data[:at]
        if self.kind == "insert":
            return data[:at] + self.inserted + data[at:]
        return data[:at] + data[at + self.length :]


mutations = st.builds(
    Mutation,
    kind=st.sampled_from(["flip", "truncate", "insert", "delete"]),
    position=st.integers(min_value=0, max_value=1 << 20),
    mask=st.integers(min_value=1, max_value=255),
    inserted=st.binary(min_size=1, max_size=16),
    length=st.integers(min_value=1, max_value=64),
)


def test_random_mutations_raise_only_skill_errors(build: Builder) -> None:
    """Any combination of up to four edits either fails with a SkillError or leaves an
    artifact that means exactly what was signed."""
    artifact = build().artifact
    entries = read_archive(artifact)

    @settings(deadline=None, max_examples=600)
    @given(st.lists(mutations, min_size=1, max_size=4))
    def check(edits: list[Mutation]) -> None:
        data = artifact
        for edit in edits:
            data = edit.apply(data)
        try:
            inspection = inspect_skill_artifact(data)
        except errors.SkillError:
            return
        assert_same_meaning(inspection, entries)

    check()
