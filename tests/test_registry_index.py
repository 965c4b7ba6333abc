"""Remote registry signed index pages (§7.7): wire format, signature, trust, hostile input."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from palyra.errors import PalyraError
from palyra.skills import errors
from palyra.skills.keys import SigningKey
from palyra.skills.registry_index import (
    MAX_INDEX_ENTRIES,
    MAX_INDEX_PAGE_BYTES,
    RegistryEntry,
    RegistryEntryNotFound,
    RegistryIndex,
    RegistryIndexError,
    SignedIndexPage,
    canonical_index_bytes,
    parse_signed_index,
    public_key_problem,
    resolve_page_url,
    select_entry,
    sign_index,
)
from palyra.skills.trust import TrustDecision, TrustStore

SEED_01 = bytes([0x01]) * 32
SEED_05 = bytes([0x05]) * 32
SHA_A = "ab" * 32
SHA_B = "cd" * 32
PAGE_URL = "https://registry.example/skills/index.json"

# Everything parse_signed_index may raise: its own error or one of TrustStore.decide's.
ALLOWED_ERRORS = (
    RegistryIndexError,
    errors.UntrustedPublisherError,
    errors.TrustedPublisherKeyMismatchError,
    errors.TofuKeyMismatchError,
    errors.TrustStoreError,
)


@pytest.fixture
def key() -> SigningKey:
    return SigningKey(SEED_01)


@pytest.fixture
def other_key() -> SigningKey:
    return SigningKey(SEED_05)


def sample_index() -> RegistryIndex:
    return RegistryIndex(
        generated_at_unix_ms=1_730_000_000_000,
        entries=(
            RegistryEntry(
                skill_id="acme.echo_http",
                version="1.2.3",
                publisher="acme",
                artifact="artifacts/acme.echo_http-1.2.3.palyra-skill",
                artifact_sha256=SHA_A,
                artifact_bytes=4096,
            ),
            RegistryEntry(
                skill_id="acme.echo_http",
                version="10.0.0",
                publisher="acme",
                artifact="https://registry.example/skills/artifacts/echo-10.palyra-skill",
                artifact_sha256=SHA_B,
            ),
        ),
        next_page="page-2.json",
    )


def entry_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "skill_id": "acme.echo_http",
        "version": "1.2.3",
        "publisher": "acme",
        "artifact": "a.palyra-skill",
        "artifact_sha256": SHA_A,
    }
    doc.update(overrides)
    return doc


def index_doc(entries: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": 1,
        "generated_at_unix_ms": 1_730_000_000_000,
        "entries": [entry_doc()] if entries is None else entries,
    }
    doc.update(extra)
    return doc


def sign_raw(
    index: dict[str, Any],
    key: SigningKey,
    *,
    publisher: str = "acme",
    page_extra: dict[str, Any] | None = None,
    **signature_overrides: Any,
) -> bytes:
    """Build a page the way §7.7 describes it, independently of the module under test.

    ``index`` must already be in the reference field order: its compact JSON is the payload.
    """
    payload = json.dumps(index, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    digest = hashlib.sha256(payload).hexdigest()
    signature: dict[str, Any] = {
        "algorithm": "ed25519-sha256",
        "publisher": publisher,
        "key_id": key.key_id,
        "public_key_base64": base64.b64encode(key.public_key).decode(),
        "payload_sha256": digest,
        "signature_base64": base64.b64encode(key.sign(digest.encode("ascii"))).decode(),
        "signed_at_unix_ms": 1_730_000_000_001,
    }
    signature.update(signature_overrides)
    page: dict[str, Any] = {"schema_version": 1, "index": index, "signature": signature}
    page.update(page_extra or {})
    return json.dumps(page, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def tofu(data: bytes) -> SignedIndexPage:
    return parse_signed_index(data, TrustStore(), allow_tofu=True)


def reencode(data: bytes, edit: Any) -> bytes:
    """Edit a page document without re-signing it."""
    doc = json.loads(data)
    edit(doc)
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


# ---- wire format ----------------------------------------------------------------------------


def test_canonical_bytes_are_exact_with_non_ascii_text() -> None:
    index = RegistryIndex(
        generated_at_unix_ms=1_730_000_000_000,
        entries=(
            RegistryEntry(
                skill_id="acme.echo_http",
                version="1.2.3",
                publisher="Ácme Ünïcode ✓",
                artifact="skills/écho-1.2.3.palyra-skill",
                artifact_sha256="AB" * 32,
                artifact_bytes=4096,
            ),
            RegistryEntry(
                skill_id="acme.other",
                version="10.0.0",
                publisher='acme "quoted"\ttab\x01',
                artifact="https://registry.example/o.palyra-skill",
                artifact_sha256=SHA_B,
            ),
        ),
        next_page="pages/2-日本.json",
    )
    expected = (
        r'{"schema_version":1,"generated_at_unix_ms":1730000000000,"entries":['
        r'{"skill_id":"acme.echo_http","version":"1.2.3","publisher":"Ácme Ünïcode ✓",'
        r'"artifact":"skills/écho-1.2.3.palyra-skill","artifact_sha256":"'
        + "AB"
        * 32
        + r'","artifact_bytes":4096},'
        r'{"skill_id":"acme.other","version":"10.0.0","publisher":"acme \"quoted\"\ttab\u0001",'
        r'"artifact":"https://registry.example/o.palyra-skill","artifact_sha256":"'
        + SHA_B
        + r'"}],"next_page":"pages/2-日本.json"}'
    )
    assert canonical_index_bytes(index) == expected.encode("utf-8")


def test_canonical_bytes_leave_del_and_line_separators_raw() -> None:
    """serde_json escapes only '"', '\\' and C0 controls; DEL and U+2028 stay raw bytes."""
    index = RegistryIndex(0, (), next_page="a\x7f\u2028b")
    assert canonical_index_bytes(index) == (
        b'{"schema_version":1,"generated_at_unix_ms":0,"entries":[],"next_page":"a\x7f'
        + "\u2028".encode()
        + b'b"}'
    )


def test_sign_then_parse_round_trip(key: SigningKey) -> None:
    index = sample_index()
    data = sign_index(index, key, "acme", signed_at_unix_ms=1_730_000_000_123)
    store = TrustStore()
    page = parse_signed_index(data, store, allow_tofu=True)
    assert page.index == index
    assert page.trust_decision is TrustDecision.TOFU_NEWLY_PINNED
    assert page.publisher == "acme"
    assert page.public_key_hex == key.public_key_hex
    assert page.signature.signed_at_unix_ms == 1_730_000_000_123
    assert store == TrustStore(), "parsing never pins"
    assert page.apply_pin(store)
    again = parse_signed_index(data, store, allow_tofu=False)
    assert again.trust_decision is TrustDecision.TOFU_PINNED
    assert not again.apply_pin(store)


def test_page_document_shape(key: SigningKey) -> None:
    data = sign_index(sample_index(), key, "acme", signed_at_unix_ms=7)
    doc = json.loads(data)
    assert list(doc) == ["schema_version", "index", "signature"]
    assert doc["schema_version"] == 1
    assert list(doc["index"]) == ["schema_version", "generated_at_unix_ms", "entries", "next_page"]
    assert list(doc["index"]["entries"][0]) == [
        "skill_id",
        "version",
        "publisher",
        "artifact",
        "artifact_sha256",
        "artifact_bytes",
    ]
    assert "artifact_bytes" not in doc["index"]["entries"][1]
    signature = doc["signature"]
    assert list(signature) == [
        "algorithm",
        "publisher",
        "key_id",
        "public_key_base64",
        "payload_sha256",
        "signature_base64",
        "signed_at_unix_ms",
    ]
    # The §2.7 fixture values for seed 01.
    assert signature["algorithm"] == "ed25519-sha256"
    assert signature["key_id"] == "ed25519:34750f98bd59fcfc"
    assert signature["public_key_base64"] == "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="
    canonical = canonical_index_bytes(sample_index())
    assert signature["payload_sha256"] == hashlib.sha256(canonical).hexdigest()
    assert json.dumps(doc["index"], separators=(",", ":")).encode() == canonical


def test_independently_built_page_verifies(key: SigningKey) -> None:
    """A page built from the §7.7 text alone (uppercase hex kept in the signed bytes)."""
    entries = [
        entry_doc(
            publisher="Ácme ✓", artifact="skills/écho.palyra-skill", artifact_sha256="AB" * 32
        )
    ]
    page = tofu(sign_raw(index_doc(entries, next_page="https://registry.example/p2"), key))
    (entry,) = page.index.entries
    assert entry.publisher == "Ácme ✓"
    assert entry.artifact_sha256 == SHA_A, "normalized to lowercase after verification"
    assert entry.artifact_bytes is None
    assert page.index.next_page == "https://registry.example/p2"


def test_explicit_nulls_mean_absent(key: SigningKey) -> None:
    """serde's Option accepts null; the signed bytes then omit the field."""
    raw = sign_raw(index_doc([entry_doc()]), key)
    with_nulls = reencode(
        raw,
        lambda doc: (
            doc["index"].__setitem__("next_page", None),
            doc["index"]["entries"][0].__setitem__("artifact_bytes", None),
        ),
    )
    page = tofu(with_nulls)
    assert page.index.next_page is None
    assert page.index.entries[0].artifact_bytes is None


def test_signed_at_is_not_covered(key: SigningKey) -> None:
    """A reference format limitation, kept for compatibility: signed_at can be edited."""
    data = reencode(
        sign_raw(index_doc(), key), lambda doc: doc["signature"].__setitem__("signed_at_unix_ms", 5)
    )
    assert tofu(data).signature.signed_at_unix_ms == 5


# ---- trust ----------------------------------------------------------------------------------


def test_allowlisted_signer(key: SigningKey) -> None:
    store = TrustStore()
    store.add_trusted_key("acme", key.public_key_hex)
    page = parse_signed_index(sign_index(sample_index(), key, "acme"), store, allow_tofu=False)
    assert page.trust_decision is TrustDecision.ALLOWLISTED
    assert not page.apply_pin(store)


def test_untrusted_signer_refused(key: SigningKey) -> None:
    with pytest.raises(errors.UntrustedPublisherError) as info:
        parse_signed_index(sign_index(sample_index(), key, "acme"), TrustStore(), allow_tofu=False)
    assert info.value.kind == "untrusted_publisher"
    assert info.value.message == "remote registry signature: untrusted publisher 'acme'"


def test_allowlisted_key_mismatch(key: SigningKey, other_key: SigningKey) -> None:
    store = TrustStore()
    store.add_trusted_key("acme", other_key.public_key_hex)
    with pytest.raises(errors.TrustedPublisherKeyMismatchError, match="remote registry signature"):
        parse_signed_index(sign_index(sample_index(), key, "acme"), store, allow_tofu=True)


def test_tofu_pin_mismatch(key: SigningKey, other_key: SigningKey) -> None:
    store = TrustStore()
    store.pin("acme", other_key.public_key_hex)
    with pytest.raises(errors.TofuKeyMismatchError) as info:
        parse_signed_index(sign_index(sample_index(), key, "acme"), store, allow_tofu=True)
    assert info.value.kind == "tofu_key_mismatch"
    assert store.tofu_publishers == {"acme": other_key.public_key_hex}


def test_signer_publisher_is_trimmed(key: SigningKey) -> None:
    store = TrustStore()
    store.add_trusted_key("acme", key.public_key_hex)
    page = parse_signed_index(
        sign_raw(index_doc(), key, publisher=" acme "), store, allow_tofu=False
    )
    assert page.trust_decision is TrustDecision.ALLOWLISTED
    assert page.publisher == "acme"


@pytest.mark.parametrize("publisher", ["Acme", "", "  ", "ac me", "ácme"])
def test_signer_publisher_must_be_identifier(key: SigningKey, publisher: str) -> None:
    with pytest.raises(RegistryIndexError, match="remote registry signature publisher"):
        tofu(sign_raw(index_doc(), key, publisher=publisher))


# ---- signature failures ---------------------------------------------------------------------


def test_tampered_entry_is_a_payload_mismatch(key: SigningKey) -> None:
    data = sign_index(sample_index(), key, "acme")
    for edit in (
        lambda doc: doc["index"]["entries"][0].__setitem__("version", "1.2.4"),
        lambda doc: doc["index"]["entries"][0].__setitem__("artifact_sha256", SHA_B),
        lambda doc: doc["index"]["entries"][1].__setitem__("artifact_bytes", 1),
        lambda doc: doc["index"]["entries"].reverse(),
        lambda doc: doc["index"].pop("next_page"),
        lambda doc: doc["index"].__setitem__("generated_at_unix_ms", 1),
    ):
        with pytest.raises(RegistryIndexError, match="payload_sha256 does not match") as info:
            tofu(reencode(data, edit))
        assert info.value.kind == "registry_index"
        assert info.value.message.startswith("remote registry signature verification failed")


def test_hex_case_is_part_of_the_signed_bytes(key: SigningKey) -> None:
    data = sign_raw(index_doc([entry_doc(artifact_sha256="AB" * 32)]), key)
    lowered = reencode(
        data, lambda doc: doc["index"]["entries"][0].__setitem__("artifact_sha256", SHA_A)
    )
    with pytest.raises(RegistryIndexError, match="payload_sha256"):
        tofu(lowered)


def test_payload_hash_recomputed_but_signature_from_another_key(
    key: SigningKey, other_key: SigningKey
) -> None:
    forged = sign_raw(index_doc(), other_key)
    doc = json.loads(forged)
    honest = json.loads(sign_raw(index_doc(), key))["signature"]
    doc["signature"]["signature_base64"] = honest["signature_base64"]
    with pytest.raises(RegistryIndexError, match="Ed25519 signature does not verify"):
        tofu(json.dumps(doc).encode())


def test_wrong_key_id(key: SigningKey, other_key: SigningKey) -> None:
    with pytest.raises(RegistryIndexError, match="key_id does not match"):
        tofu(sign_raw(index_doc(), key, key_id=other_key.key_id))
    with pytest.raises(RegistryIndexError, match="key_id does not match"):
        tofu(sign_raw(index_doc(), key, key_id=key.key_id.upper()))


def test_wrong_algorithm(key: SigningKey) -> None:
    with pytest.raises(RegistryIndexError, match="unsupported algorithm 'ed25519'"):
        tofu(sign_raw(index_doc(), key, algorithm="ed25519"))


@pytest.mark.parametrize(
    "value",
    [
        "not base64!",
        "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w",  # padding missing
        "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1x=",  # non-zero trailing bits
        base64.b64encode(bytes(31)).decode(),
        base64.b64encode(bytes(33)).decode(),
        "",
    ],
)
def test_bad_public_key_base64(key: SigningKey, value: str) -> None:
    with pytest.raises(RegistryIndexError, match="public key is not canonical base64"):
        tofu(sign_raw(index_doc(), key, public_key_base64=value))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ((2).to_bytes(32, "little"), "not a valid Ed25519 point"),
        ((1).to_bytes(32, "little"), "small-order"),  # the identity
        (bytes(32), "small-order"),  # order 4
        ((2**255 - 19 + 3).to_bytes(32, "little"), "canonical"),  # y = 3, non-reduced
        ((1 | 1 << 255).to_bytes(32, "little"), "canonical"),  # x = 0 with the sign bit set
    ],
)
def test_public_key_must_be_a_sound_point(key: SigningKey, raw: bytes, reason: str) -> None:
    from palyra.skills.keys import key_id_for

    assert reason in (public_key_problem(raw) or "")
    data = sign_raw(
        index_doc(),
        key,
        public_key_base64=base64.b64encode(raw).decode(),
        key_id=key_id_for(raw),
    )
    with pytest.raises(RegistryIndexError, match=reason):
        tofu(data)


def test_real_keys_are_sound_points() -> None:
    for _ in range(50):
        assert public_key_problem(SigningKey.generate().public_key) is None
    assert public_key_problem(SigningKey(SEED_01).public_key) is None


@pytest.mark.parametrize(
    "value",
    ["%%%", base64.b64encode(bytes(63)).decode(), base64.b64encode(bytes(64))[:-2].decode()],
)
def test_bad_signature_base64(key: SigningKey, value: str) -> None:
    with pytest.raises(RegistryIndexError, match="signature is not canonical base64 of 64 bytes"):
        tofu(sign_raw(index_doc(), key, signature_base64=value))


# ---- document shape ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (lambda doc: doc.__setitem__("extra", 1), "in page"),
        (lambda doc: doc["index"].__setitem__("extra", 1), "in index"),
        (lambda doc: doc["index"]["entries"][0].__setitem__("extra", 1), r"in index.entries\[0\]"),
        (lambda doc: doc["signature"].__setitem__("extra", 1), "in signature"),
    ],
)
def test_unknown_fields_rejected_at_each_level(key: SigningKey, edit: Any, where: str) -> None:
    with pytest.raises(RegistryIndexError, match=f"unknown field `extra` {where}"):
        tofu(reencode(sign_raw(index_doc(), key), edit))


@pytest.mark.parametrize(
    ("level", "field"),
    [
        ((), "index"),
        ((), "signature"),
        ((), "schema_version"),
        (("index",), "entries"),
        (("index",), "generated_at_unix_ms"),
        (("index", "entries", 0), "artifact_sha256"),
        (("index", "entries", 0), "skill_id"),
        (("signature",), "signed_at_unix_ms"),
        (("signature",), "key_id"),
    ],
)
def test_missing_fields_rejected(key: SigningKey, level: tuple[Any, ...], field: str) -> None:
    def edit(doc: Any) -> None:
        for step in level:
            doc = doc[step]
        del doc[field]

    with pytest.raises(RegistryIndexError, match=f"missing field `{field}`"):
        tofu(reencode(sign_raw(index_doc(), key), edit))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda doc: doc.__setitem__("schema_version", 2), "schema version in page"),
        (lambda doc: doc.__setitem__("schema_version", True), "schema version in page"),
        (lambda doc: doc["index"].__setitem__("schema_version", 2), "schema version in index"),
        (lambda doc: doc["index"].__setitem__("schema_version", 1.0), "schema version in index"),
        (lambda doc: doc["index"].__setitem__("entries", {}), "must be a JSON array"),
        (lambda doc: doc["index"].__setitem__("generated_at_unix_ms", 2**63), "integer"),
        (lambda doc: doc["index"].__setitem__("generated_at_unix_ms", "1"), "integer"),
        (lambda doc: doc["index"].__setitem__("next_page", 3), "must be a string"),
        (lambda doc: doc["index"]["entries"].__setitem__(0, []), "must be a JSON object"),
        (lambda doc: doc["index"]["entries"][0].__setitem__("version", 1), "must be a string"),
        (lambda doc: doc["signature"].__setitem__("signed_at_unix_ms", 1.5), "integer"),
        (lambda doc: doc["signature"].__setitem__("publisher", None), "must be a string"),
        (lambda doc: doc.__setitem__("signature", "x"), "must be a JSON object"),
    ],
)
def test_wrong_types_rejected(key: SigningKey, edit: Any, message: str) -> None:
    with pytest.raises(RegistryIndexError, match=message):
        tofu(reencode(sign_raw(index_doc(), key), edit))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "Expecting value"),
        (b"[]", "page must be a JSON object"),
        (b"\xef\xbb\xbf{}", "byte order mark"),
        (b'{"schema_version":1,"schema_version":1}', "duplicate field"),
        (b'{"a":NaN}', "non-standard JSON constant"),
        (b"\xff\xfe", "invalid UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nests deeper"),
        (b'{"schema_version":' + b"1" * 5000 + b"}", "invalid registry index page"),
        (b'{"index": 1} trailing', "invalid registry index page"),
    ],
)
def test_hostile_json_is_a_typed_error(data: bytes, message: str) -> None:
    with pytest.raises(RegistryIndexError, match=message):
        tofu(data)


def test_lone_surrogate_rejected(key: SigningKey) -> None:
    data = sign_raw(index_doc([entry_doc(publisher="PLACEHOLDER")]), key)
    data = data.replace(b"PLACEHOLDER", b"\\ud800")
    with pytest.raises(RegistryIndexError, match="not valid Unicode"):
        tofu(data)


def test_oversize_page(key: SigningKey) -> None:
    data = sign_raw(index_doc(), key)
    padded = data + b" " * (MAX_INDEX_PAGE_BYTES - len(data))
    assert len(padded) == MAX_INDEX_PAGE_BYTES
    assert tofu(padded).index.entries
    with pytest.raises(RegistryIndexError, match="exceeds 2097152 bytes") as info:
        tofu(padded + b" ")
    assert info.value.details == {"actual": MAX_INDEX_PAGE_BYTES + 1, "limit": MAX_INDEX_PAGE_BYTES}


def many_entries(count: int) -> list[dict[str, Any]]:
    return [
        {
            "skill_id": f"s{i}",
            "version": "1.0.0",
            "publisher": "p",
            "artifact": "a",
            "artifact_sha256": SHA_A,
        }
        for i in range(count)
    ]


def test_entry_count_limit(key: SigningKey) -> None:
    page = tofu(sign_raw(index_doc(many_entries(MAX_INDEX_ENTRIES)), key))
    assert len(page.index.entries) == MAX_INDEX_ENTRIES
    data = sign_raw(index_doc(many_entries(MAX_INDEX_ENTRIES + 1)), key)
    assert len(data) < MAX_INDEX_PAGE_BYTES
    with pytest.raises(RegistryIndexError, match="too many entries") as info:
        tofu(data)
    assert info.value.details == {"actual": MAX_INDEX_ENTRIES + 1, "limit": MAX_INDEX_ENTRIES}


# ---- entry rules ------------------------------------------------------------------------------


def test_duplicate_skill_version(key: SigningKey) -> None:
    entries = [entry_doc(), entry_doc(artifact="b.palyra-skill", artifact_sha256=SHA_B)]
    with pytest.raises(RegistryIndexError, match=r"duplicate entry for acme.echo_http 1.2.3"):
        tofu(sign_raw(index_doc(entries), key))
    # Same semver spelled differently is the same version (stricter than the reference).
    entries = [entry_doc(version="1.2.3"), entry_doc(version="01.2.3")]
    with pytest.raises(RegistryIndexError, match="duplicate entry"):
        tofu(sign_raw(index_doc(entries), key))
    # Same version of different skills is fine.
    entries = [entry_doc(), entry_doc(skill_id="acme.other")]
    assert len(tofu(sign_raw(index_doc(entries), key)).index.entries) == 2


@pytest.mark.parametrize(
    "sha",
    ["ab" * 31 + "a", "ab" * 32 + "a", "zz" * 32, "", " " + "ab" * 31 + "a", "ab" * 31 + "٣٣"],
)
def test_bad_artifact_sha(key: SigningKey, sha: str) -> None:
    with pytest.raises(RegistryIndexError, match="must be 64 hexadecimal characters"):
        tofu(sign_raw(index_doc([entry_doc(artifact_sha256=sha)]), key))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"skill_id": ""}, "skill_id cannot be empty"),
        ({"skill_id": "Acme.Echo"}, "skill_id"),
        ({"skill_id": " acme.echo"}, "whitespace"),
        ({"version": "1.2"}, "semantic version"),
        ({"version": "1.2.x"}, "patch invalid"),
        ({"version": "1.2.3-beta"}, "patch invalid"),
        ({"publisher": ""}, "publisher cannot be empty"),
        ({"publisher": "acme "}, "whitespace"),
        ({"artifact_bytes": -1}, "artifact_bytes"),
        ({"artifact_bytes": 64 * 1024 * 1024 + 1}, "artifact_bytes"),
        ({"artifact_bytes": True}, "artifact_bytes"),
        ({"artifact_bytes": 2**64}, "artifact_bytes"),
    ],
)
def test_entry_values_validated(key: SigningKey, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(RegistryIndexError, match=message):
        tofu(sign_raw(index_doc([entry_doc(**overrides)]), key))


def test_artifact_bytes_bounds_inclusive(key: SigningKey) -> None:
    for size in (0, 64 * 1024 * 1024):
        page = tofu(sign_raw(index_doc([entry_doc(artifact_bytes=size)]), key))
        assert page.index.entries[0].artifact_bytes == size


GOOD_REFS = [
    "a.palyra-skill",
    "artifacts/acme/echo-1.2.3.palyra-skill",
    "artifacts/écho.palyra-skill",
    "a.palyra-skill?token=abc",
    "https://registry.example/a.palyra-skill",
    "https://registry.example:8443/dir/a.palyra-skill",
    "https://registry.example/dir/",
]
BAD_REFS = [
    "",
    "../a.palyra-skill",
    "dir/../a.palyra-skill",
    "./a.palyra-skill",
    "dir//a.palyra-skill",
    "dir/%2e%2e/a.palyra-skill",
    "dir/%2E./a.palyra-skill",
    "dir%2fx/a.palyra-skill",
    "dir\\a.palyra-skill",
    "dir%5ca.palyra-skill",
    "a\x00.palyra-skill",
    "a .palyra-skill",
    ".\t./a.palyra-skill",
    "a.palyra-skill\n",
    "a.palyra-skill#frag",
    "/abs/a.palyra-skill",
    "//evil.example/a.palyra-skill",
    "http://registry.example/a.palyra-skill",
    "HTTPS://registry.example/a.palyra-skill",
    "https:a.palyra-skill",
    "https:///a.palyra-skill",
    "https://user:pass@registry.example/a.palyra-skill",
    "https://registry.example/../a.palyra-skill",
    "https://registry.example:99999/a.palyra-skill",
    "https://[::1/a",
    "javascript:alert(1)",
    "c:/windows/a.palyra-skill",
    "file:///etc/passwd",
]


@pytest.mark.parametrize("ref", GOOD_REFS)
def test_good_artifact_and_next_page_refs(key: SigningKey, ref: str) -> None:
    page = tofu(sign_raw(index_doc([entry_doc(artifact=ref)], next_page=ref), key))
    assert page.index.entries[0].artifact == ref
    assert page.index.next_page == ref


@pytest.mark.parametrize("ref", BAD_REFS)
def test_bad_artifact_refs(key: SigningKey, ref: str) -> None:
    with pytest.raises(RegistryIndexError, match=r"entries\[0\].artifact"):
        tofu(sign_raw(index_doc([entry_doc(artifact=ref)]), key))


@pytest.mark.parametrize("ref", BAD_REFS)
def test_bad_next_page_refs(key: SigningKey, ref: str) -> None:
    with pytest.raises(RegistryIndexError, match="next_page"):
        tofu(sign_raw(index_doc(next_page=ref), key))


# ---- signing --------------------------------------------------------------------------------


def test_sign_index_refuses_what_parse_would_refuse(key: SigningKey) -> None:
    bad = RegistryIndex(0, (RegistryEntry("acme.x", "1.0.0", "acme", "../x", SHA_A),))
    with pytest.raises(RegistryIndexError, match="artifact"):
        sign_index(bad, key, "acme")
    dup_entry = RegistryEntry("acme.x", "1.0.0", "acme", "x", SHA_A)
    with pytest.raises(RegistryIndexError, match="duplicate"):
        sign_index(RegistryIndex(0, (dup_entry, dup_entry)), key, "acme")
    with pytest.raises(RegistryIndexError, match="publisher"):
        sign_index(sample_index(), key, "Acme")
    with pytest.raises(RegistryIndexError, match="no surrounding whitespace"):
        sign_index(sample_index(), key, " acme")
    with pytest.raises(RegistryIndexError, match="i64"):
        sign_index(sample_index(), key, "acme", signed_at_unix_ms=2**63)


def test_sign_index_refuses_oversize_page(key: SigningKey) -> None:
    entries = tuple(
        RegistryEntry(
            f"acme.skill_{i:05d}", "1.0.0", ("acme publisher " * 4).strip(), f"a/{i}", SHA_A
        )
        for i in range(MAX_INDEX_ENTRIES)
    )
    with pytest.raises(RegistryIndexError, match="split the entries across pages"):
        sign_index(RegistryIndex(0, entries), key, "acme")


def test_signed_at_defaults_to_now(key: SigningKey) -> None:
    page = tofu(sign_index(sample_index(), key, "acme"))
    assert page.signature.signed_at_unix_ms > 1_700_000_000_000


# ---- resolving locations ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("page-2.json", "https://registry.example/skills/page-2.json"),
        (
            "artifacts/a.palyra-skill?sig=1",
            "https://registry.example/skills/artifacts/a.palyra-skill?sig=1",
        ),
        ("https://registry.example/other/a", "https://registry.example/other/a"),
        ("https://registry.example:443/other/a", "https://registry.example:443/other/a"),
        ("https://REGISTRY.example/x", "https://REGISTRY.example/x"),
    ],
)
def test_resolve_same_origin(ref: str, expected: str) -> None:
    assert resolve_page_url(PAGE_URL, ref) == expected


def test_resolve_keeps_explicit_port() -> None:
    page = "https://registry.example:8443/index.json"
    assert resolve_page_url(page, "p2.json") == "https://registry.example:8443/p2.json"
    assert resolve_page_url(page, "https://registry.example:8443/x") == (
        "https://registry.example:8443/x"
    )
    with pytest.raises(RegistryIndexError, match="leaves the registry origin"):
        resolve_page_url(page, "https://registry.example/x")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("https://evil.example/a", "leaves the registry origin"),
        ("https://registry.example.evil.example/a", "leaves the registry origin"),
        ("https://registry.example:8443/a", "leaves the registry origin"),
        ("http://registry.example/a", "https"),
        ("//evil.example/a", "https"),
        ("../a", "'..' segment"),
        ("/a", "no leading '/'"),
        ("https://user@registry.example/a", "credentials"),
        ("a\\b", "backslash"),
    ],
)
def test_resolve_refuses(ref: str, message: str) -> None:
    with pytest.raises(RegistryIndexError, match=message) as info:
        resolve_page_url(PAGE_URL, ref)
    assert info.value.kind == "registry_index"


@pytest.mark.parametrize(
    "page_url",
    [
        "http://registry.example/index.json",
        "registry.example/index.json",
        "https:///index.json",
        "https://u:p@registry.example/index.json",
        "https://registry.example:99999/index.json",
        " https://registry.example/index.json",
    ],
)
def test_resolve_refuses_bad_page_url(page_url: str) -> None:
    with pytest.raises(RegistryIndexError, match="page URL"):
        resolve_page_url(page_url, "a.json")


# ---- selection ------------------------------------------------------------------------------


def entry(skill_id: str, version: str) -> RegistryEntry:
    return RegistryEntry(skill_id, version, "acme", f"{skill_id}-{version}.palyra-skill", SHA_A)


def test_select_highest_semver_not_lexicographic() -> None:
    entries = [entry("acme.a", "9.0.0"), entry("acme.a", "10.0.0"), entry("acme.a", "9.10.0")]
    entries.append(entry("acme.b", "99.0.0"))
    assert select_entry(entries, "acme.a").version == "10.0.0"
    assert select_entry(entries, "acme.a", "9.0.0").version == "9.0.0"
    assert select_entry(reversed(entries), "acme.a").version == "10.0.0"


def test_select_not_found() -> None:
    entries = [entry("acme.a", "1.0.0")]
    with pytest.raises(RegistryEntryNotFound) as info:
        select_entry(entries, "acme.missing")
    assert info.value.kind == "not_found"
    assert isinstance(info.value, RegistryIndexError)
    with pytest.raises(RegistryEntryNotFound, match=r"no entry for acme.a 2.0.0") as info:
        select_entry(entries, "acme.a", "2.0.0")
    assert info.value.details == {"skill_id": "acme.a", "version": "2.0.0"}
    with pytest.raises(RegistryEntryNotFound):
        select_entry([], "acme.a")


def test_select_from_parsed_page(key: SigningKey) -> None:
    page = tofu(sign_index(sample_index(), key, "acme"))
    chosen = select_entry(page.index.entries, "acme.echo_http")
    assert chosen.version == "10.0.0"
    assert resolve_page_url(PAGE_URL, chosen.artifact) == chosen.artifact


# ---- properties -------------------------------------------------------------------------------

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["1.0.0", "acme", "ed25519-sha256", SHA_A, "a.palyra-skill", "../x"])
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "schema_version",
                    "index",
                    "signature",
                    "entries",
                    "generated_at_unix_ms",
                    "next_page",
                    "skill_id",
                    "version",
                    "publisher",
                    "artifact",
                    "artifact_sha256",
                    "artifact_bytes",
                    "algorithm",
                    "key_id",
                    "public_key_base64",
                    "payload_sha256",
                    "signature_base64",
                    "signed_at_unix_ms",
                ]
            )
            | st.text(max_size=6),
            children,
            max_size=7,
        )
    ),
    max_leaves=30,
)


def parse_or_typed_error(data: bytes) -> None:
    store = TrustStore()
    store.add_trusted_key("acme", SigningKey(SEED_05).public_key_hex)
    for allow_tofu in (True, False):
        try:
            parse_signed_index(data, store, allow_tofu=allow_tofu)
        except PalyraError as exc:
            assert isinstance(exc, ALLOWED_ERRORS), repr(exc)
            assert "\n" not in exc.message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_raise_only_typed_errors(data: bytes) -> None:
    parse_or_typed_error(data)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_raises_only_typed_errors(value: Any) -> None:
    parse_or_typed_error(json.dumps(value).encode())


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for name, child in value.items():
            found += _paths(child, (*prefix, name))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += _paths(child, (*prefix, i))
    return found


_VALID_PAGE = json.loads(sign_index(sample_index(), SigningKey(SEED_01), "acme"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_valid_page_raises_only_typed_errors(data: st.DataObject) -> None:
    doc = copy.deepcopy(_VALID_PAGE)
    path = data.draw(st.sampled_from(_paths(doc)[1:]))
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(json_values)
    parse_or_typed_error(json.dumps(doc, ensure_ascii=False).encode())


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[a-z0-9_\-]{1,8}(\.[a-z0-9_\-]{1,8}){0,2}", fullmatch=True),
            st.tuples(*[st.integers(0, 2**32 - 1)] * 3),
            st.text(min_size=1, max_size=12).filter(lambda s: s == s.strip()),
            st.one_of(st.none(), st.integers(0, 64 * 1024 * 1024)),
        ),
        max_size=8,
        unique_by=lambda item: (item[0], item[1]),
    ),
    st.integers(-(2**63), 2**63 - 1),
)
def test_any_valid_index_round_trips(
    items: list[tuple[str, tuple[int, int, int], str, int | None]], generated: int
) -> None:
    entries = tuple(
        RegistryEntry(
            skill_id=skill_id,
            version=".".join(map(str, version)),
            publisher=publisher,
            artifact=f"artifacts/{skill_id}.palyra-skill",
            artifact_sha256=hashlib.sha256(skill_id.encode()).hexdigest(),
            artifact_bytes=size,
        )
        for skill_id, version, publisher, size in items
    )
    index = RegistryIndex(generated, entries)
    try:
        data = sign_index(index, SigningKey(SEED_01), "acme", signed_at_unix_ms=0)
    except RegistryIndexError as exc:
        # Only text the value classes refuse (e.g. lone surrogates) may stop signing.
        assert "publisher" in exc.message or "Unicode" in exc.message
        return
    assert tofu(data).index == index
