"""Trust store file format, normalization, atomic saves and the CLI-independent operations."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from palyra.skills.errors import SkillError, TofuKeyMismatchError, TrustStoreError
from palyra.skills.trust import TrustStore, parse_trusted_publisher_flag

KEY_A = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
KEY_B = "6e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf1"


def test_reference_item_27() -> None:
    with pytest.raises(TrustStoreError, match="invalid trust-store publisher"):
        TrustStore.parse(json.dumps({"trusted_publishers": {"Acme": [KEY_A]}}).encode())
    with pytest.raises(TrustStoreError, match="invalid trusted key for publisher"):
        TrustStore.parse(json.dumps({"trusted_publishers": {"acme": ["not-hex"]}}).encode())
    assert TrustStore.parse(b"  \n\t ") == TrustStore()
    assert TrustStore.parse(b"") == TrustStore()


def test_missing_file_is_empty(tmp_path: Path) -> None:
    assert TrustStore.load(tmp_path / "absent.json") == TrustStore()


def test_file_format_is_byte_compatible(tmp_path: Path) -> None:
    store = TrustStore()
    store.add_trusted_key("zeta", KEY_B)
    store.add_trusted_key("acme", KEY_B)
    store.add_trusted_key("acme", KEY_A.upper())
    store.pin("beta", KEY_A)
    path = tmp_path / "skills" / "trust-store.json"
    store.save(path)
    data = path.read_bytes()
    assert (
        data
        == (
            "{\n"
            '  "trusted_publishers": {\n'
            f'    "acme": [\n      "{KEY_B}",\n      "{KEY_A}"\n    ],\n'
            f'    "zeta": [\n      "{KEY_B}"\n    ]\n'
            "  },\n"
            '  "tofu_publishers": {\n'
            f'    "beta": "{KEY_A}"\n'
            "  }\n"
            "}"
        ).encode()
    )
    assert TrustStore.load(path) == store
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["trust-store.json"], "no temp files left"


def test_normalization_merges_and_dedupes() -> None:
    raw = {
        "trusted_publishers": {" acme ": [f" {KEY_A.upper()} "], "acme": [KEY_A, KEY_B]},
        "tofu_publishers": {"x": KEY_A, " x": KEY_A},
    }
    store = TrustStore.parse(json.dumps(raw).encode())
    assert store.trusted_publishers == {"acme": sorted([KEY_A, KEY_B])}
    assert store.tofu_publishers == {"x": KEY_A}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"trusted_publishers": {"acme": []}}, "must include at least one key"),
        ({"trusted_publishers": {"acme": ["ab" * 31]}}, "must decode to 32 bytes"),
        ({"tofu_publishers": {"x": KEY_A, " x": KEY_B}}, "conflicting TOFU keys"),
        ({"tofu_publishers": {"X": KEY_A}}, "invalid trust-store TOFU publisher"),
        ({"tofu_publishers": {"x": "zz"}}, "invalid TOFU key for publisher"),
        ({"other": {}}, "unknown field `other`"),
        ({"trusted_publishers": {"acme": KEY_A}}, "lists of hex keys"),
        ({"tofu_publishers": {"acme": [KEY_A]}}, "to hex keys"),
        ([], "expected an object"),
    ],
)
def test_invalid_documents(document: object, message: str) -> None:
    with pytest.raises(TrustStoreError) as info:
        TrustStore.parse(json.dumps(document).encode())
    assert message in info.value.message
    assert info.value.kind == "trust_store_invalid"


def test_garbage_and_duplicate_keys_rejected() -> None:
    with pytest.raises(TrustStoreError, match="failed to parse trust store"):
        TrustStore.parse(b"{not json")
    with pytest.raises(TrustStoreError, match="duplicate"):
        TrustStore.parse(b'{"tofu_publishers": {}, "tofu_publishers": {}}')


def test_remove_and_unpin() -> None:
    store = TrustStore()
    store.add_trusted_key("acme", KEY_A)
    store.add_trusted_key("acme", KEY_B)
    assert store.remove_trusted("acme", KEY_B)
    assert not store.remove_trusted("acme", KEY_B)
    assert store.trusted_publishers == {"acme": [KEY_A]}
    assert store.remove_trusted("acme")
    assert store.trusted_publishers == {}
    store.pin("acme", KEY_A)
    with pytest.raises(TofuKeyMismatchError):
        store.pin("acme", KEY_B)
    assert store.unpin("acme")
    assert not store.unpin("acme")
    store.pin("acme", KEY_B)  # rotation is an explicit unpin + re-pin


def test_extra_trust_is_a_copy() -> None:
    store = TrustStore()
    extended = store.with_extra_trust([parse_trusted_publisher_flag(f"acme={KEY_A}")])
    assert extended.trusted_publishers == {"acme": [KEY_A]}
    assert store.trusted_publishers == {}
    for bad in ("acme", "=abc", "acme=", f"Acme={KEY_A}", "acme=xyz"):
        with pytest.raises(TrustStoreError):
            parse_trusted_publisher_flag(bad)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_parser_only_raises_typed_errors(data: bytes) -> None:
    with contextlib.suppress(SkillError):
        TrustStore.parse(data)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.text(alphabet="abc.-_:", min_size=1, max_size=6),
        st.lists(st.sampled_from([KEY_A, KEY_B, KEY_A.upper()]), min_size=1, max_size=3),
        max_size=4,
    )
)
def test_save_load_round_trip(
    tmp_path_factory: pytest.TempPathFactory, trusted: dict[str, list[str]]
) -> None:
    store = TrustStore(trusted_publishers=dict(trusted))
    path = tmp_path_factory.mktemp("store") / "trust.json"
    store.save(path)
    assert TrustStore.load(path) == store
