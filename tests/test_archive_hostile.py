"""Hostile ``.palyra-skill`` containers: each one is rejected with its own typed error.

Every archive here is real ZIP bytes, written either by :mod:`zipfile` (what an attacker's
tooling most likely produces) or by the small struct-level writer below (for what no sane
writer emits: NUL in names, local headers that disagree with the central directory, Info-ZIP
extra fields, declared sizes that lie). Nothing is mocked.

Each rejection is checked twice, through :func:`verify_skill_artifact` with ``allow_tofu=True``
against a trust store that does not exist yet and against one saved to disk: the exact error
class and its stable ``kind`` must come out, and neither store may be written (verification
never pins; a hostile artifact must leave no trace). Where a case needs the reader to accept
the container and fail later, the hostile entry is added to the sample artifact's real entries
— the reader enforces names, sizes and layout before anything looks at signatures.
"""

from __future__ import annotations

import io
import os
import random
import stat
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import MINIMAL_WASM, Builder
from palyra.skills import errors
from palyra.skills.archive import read_archive
from palyra.skills.constants import (
    COMPONENT_MAGIC,
    MAX_ARTIFACT_BYTES,
    MAX_COMPONENT_ENTRY_BYTES,
    MAX_ENTRIES,
    MAX_ENTRY_BYTES,
)
from palyra.skills.inspect import inspect_skill_artifact
from palyra.skills.trust import TrustDecision, TrustStore
from palyra.skills.verify import verify_skill_artifact

MIB = 1024 * 1024
OTHER_KEY = "ab" * 32

# --- ZIP structure, written down independently of palyra.skills.archive --------------------

LFH = struct.Struct("<IHHHHHIIIHH")  # local file header (30 bytes)
CDH = struct.Struct("<IHHHHHHIIIHHHHHII")  # central directory header (46 bytes)
EOCD = struct.Struct("<IHHHHIIH")  # end of central directory record (22 bytes)
LFH_SIG, CDH_SIG, EOCD_SIG = 0x04034B50, 0x02014B50, 0x06054B50
# Field offsets inside each header.
LFH_FLAGS, LFH_METHOD, LFH_CRC, LFH_CSIZE, LFH_USIZE = 6, 8, 14, 18, 22
CDH_FLAGS, CDH_METHOD, CDH_CRC, CDH_CSIZE, CDH_USIZE = 8, 10, 16, 20, 24
EOCD_DISK_COUNT, EOCD_TOTAL = 8, 10
DOS_DATE_1980 = (0 << 9) | (1 << 5) | 1
UNIX = 3
REGULAR = (stat.S_IFREG | 0o644) << 16
FLAG_ENCRYPTED = 0x0001
FLAG_UTF8 = 0x0800
STORED, DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED


def deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


@dataclass
class RawEntry:
    """One entry for :func:`assemble`; every field an attacker controls is a parameter."""

    name: bytes
    data: bytes
    method: int = DEFLATED
    flags: int = 0
    host: int = UNIX
    external_attr: int = REGULAR
    local_name: bytes | None = None  # defaults to ``name``
    local_extra: bytes = b""
    central_extra: bytes = b""
    comment: bytes = b""
    size: int | None = None  # declared uncompressed size (both headers); default: real size
    crc: int | None = None  # declared CRC-32 (both headers); default: real CRC
    payload: bytes | None = None  # the bytes stored after the local header; default: encoded


def assemble(entries: Sequence[RawEntry]) -> bytes:
    """Local entries from byte 0, central directory, end record: the layout the reader wants."""
    out = bytearray()
    central = bytearray()
    for entry in entries:
        if entry.payload is not None:
            payload = entry.payload
        else:
            payload = deflate(entry.data) if entry.method == DEFLATED else entry.data
        crc = zlib.crc32(entry.data) if entry.crc is None else entry.crc
        size = len(entry.data) if entry.size is None else entry.size
        local_name = entry.name if entry.local_name is None else entry.local_name
        offset = len(out)
        out += LFH.pack(
            LFH_SIG,
            20,
            entry.flags,
            entry.method,
            0,
            DOS_DATE_1980,
            crc,
            len(payload),
            size,
            len(local_name),
            len(entry.local_extra),
        )
        out += local_name + entry.local_extra + payload
        central += CDH.pack(
            CDH_SIG,
            (entry.host << 8) | 20,
            20,
            entry.flags,
            entry.method,
            0,
            DOS_DATE_1980,
            crc,
            len(payload),
            size,
            len(entry.name),
            len(entry.central_extra),
            len(entry.comment),
            0,
            0,
            entry.external_attr,
            offset,
        )
        central += entry.name + entry.central_extra + entry.comment
    cd_offset = len(out)
    out += central
    out += EOCD.pack(EOCD_SIG, 0, 0, len(entries), len(entries), len(central), cd_offset, 0)
    return bytes(out)


def raw_entries(entries: dict[str, bytes]) -> list[RawEntry]:
    return [RawEntry(name.encode(), data) for name, data in sorted(entries.items())]


def zip_info(
    name: str, *, mode: int = stat.S_IFREG | 0o644, host: int = UNIX, method: int = DEFLATED
) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = method
    info.create_system = host
    info.external_attr = mode << 16
    return info


def zip_with(
    entries: dict[str, bytes],
    extra: Sequence[tuple[zipfile.ZipInfo, bytes]] = (),
    *,
    comment: bytes = b"",
    prefix: bytes = b"",
) -> bytes:
    """The entries as the reference lays them out, then ``extra`` exactly as given.

    With ``prefix``, :mod:`zipfile` writes the archive after those bytes and records absolute
    offsets — the self-extractor / polyglot layout that most readers accept.
    """
    buffer = io.BytesIO()
    buffer.write(prefix)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
        with zipfile.ZipFile(buffer, "a" if prefix else "w") as archive:
            for name in sorted(entries):
                archive.writestr(zip_info(name), entries[name])
            for info, data in extra:
                archive.writestr(info, data)
            archive.comment = comment
    return buffer.getvalue()


@dataclass(frozen=True)
class Headers:
    local: int
    central: int
    central_length: int


def locate(data: bytes) -> dict[str, Headers]:
    """Header offsets per raw name, by walking the central directory with plain struct."""
    eocd = len(data) - EOCD.size
    _sig, _d, _cd, _dc, total, _cd_size, cd_offset, _clen = EOCD.unpack_from(data, eocd)
    found: dict[str, Headers] = {}
    pos = cd_offset
    for _ in range(total):
        fields = CDH.unpack_from(data, pos)
        name_len, extra_len, comment_len, local = fields[10], fields[11], fields[12], fields[16]
        length = CDH.size + name_len + extra_len + comment_len
        name = data[pos + CDH.size : pos + CDH.size + name_len].decode("utf-8")
        found[name] = Headers(local, pos, length)
        pos += length
    return found


def patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def read_u32(data: bytes, offset: int) -> int:
    value: int = struct.unpack_from("<I", data, offset)[0]
    return value


# --- fixtures ------------------------------------------------------------------------------

Reject = Callable[[bytes, type[errors.SkillError], str], errors.SkillError]


@pytest.fixture
def artifact(build: Builder) -> bytes:
    return build().artifact


@pytest.fixture
def entries(artifact: bytes) -> dict[str, bytes]:
    return read_archive(artifact)


@pytest.fixture
def trust_root(tmp_path: Path) -> Path:
    root = tmp_path / "trust"
    root.mkdir()
    seeded = TrustStore()
    seeded.pin("other-publisher", OTHER_KEY)
    seeded.save(root / "trust-store.json")
    return root


@pytest.fixture
def reject(trust_root: Path) -> Reject:
    """Verify ``data`` with TOFU allowed; expect exactly ``expected``/``kind`` and no writes."""
    saved = trust_root / "trust-store.json"
    absent = trust_root / "absent-trust-store.json"
    saved_bytes = saved.read_bytes()
    saved_stat = saved.stat()

    def _reject(data: bytes, expected: type[errors.SkillError], kind: str) -> errors.SkillError:
        caught: errors.SkillError | None = None
        for path in (absent, saved):
            store = TrustStore.load(path)
            before = store.to_bytes()
            with pytest.raises(errors.SkillError) as info:
                verify_skill_artifact(data, store, allow_tofu=True)
            caught = info.value
            assert type(caught) is expected, (
                f"expected {expected.__name__}, got {type(caught).__name__}: {caught}"
            )
            assert caught.kind == kind
            assert store.to_bytes() == before, "verification changed the in-memory store"
        assert not absent.exists(), "verification created a trust store"
        after = saved.stat()
        assert saved.read_bytes() == saved_bytes, "verification rewrote the trust store"
        assert (after.st_ino, after.st_mtime_ns) == (saved_stat.st_ino, saved_stat.st_mtime_ns)
        assert sorted(p.name for p in trust_root.iterdir()) == ["trust-store.json"]
        assert caught is not None
        return caught

    return _reject


# --- controls: the harness tells "accepted" from "rejected" -----------------------------


def test_control_valid_artifact_verifies_without_writing(artifact: bytes, trust_root: Path) -> None:
    """The baseline passes with a new TOFU decision, and even then nothing is written."""
    saved = trust_root / "trust-store.json"
    before = saved.read_bytes()
    report = verify_skill_artifact(artifact, TrustStore.load(saved), allow_tofu=True)
    assert report.trust_decision is TrustDecision.TOFU_NEWLY_PINNED
    assert saved.read_bytes() == before
    assert sorted(p.name for p in trust_root.iterdir()) == ["trust-store.json"]


def test_control_struct_writer_output_verifies(entries: dict[str, bytes]) -> None:
    """The hand-written ZIP writer produces archives the reader accepts, so every hostile
    variant below differs from a valid artifact only in the one thing it is testing."""
    rebuilt = assemble(raw_entries(entries))
    assert read_archive(rebuilt) == entries
    assert inspect_skill_artifact(rebuilt).entries == entries


def test_control_zipfile_writer_output_verifies(entries: dict[str, bytes]) -> None:
    assert inspect_skill_artifact(zip_with(entries)).entries == entries


# --- entry names: traversal, absolute paths, ambiguity -----------------------------------


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(b"../evil", id="zip-slip-parent"),
        pytest.param(b"modules/../../evil.wasm", id="zip-slip-through-modules"),
        pytest.param(b"assets/../../../home/user/.bashrc", id="zip-slip-deep"),
        pytest.param(b"/etc/passwd", id="absolute"),
        pytest.param(b"modules\\x.wasm", id="backslash"),
        pytest.param(b"..\\..\\evil.wasm", id="backslash-traversal"),
        pytest.param(b"modules/x\x00.wasm", id="nul"),
        pytest.param(b"skill.toml\x00.txt", id="nul-truncates-to-fixed-name"),
        pytest.param(b"C:/Windows/evil.dll", id="drive-letter"),
        pytest.param(b"modules/./x.wasm", id="dot-segment"),
        pytest.param(b"modules//x.wasm", id="empty-segment"),
        pytest.param(b"", id="empty-name"),
    ],
)
def test_hostile_entry_path(entries: dict[str, bytes], reject: Reject, name: bytes) -> None:
    """Zip slip and friends: a name that could escape or alias the install directory on any
    extractor (``..``, absolute, drive letters, backslash separators, NUL truncation in C
    readers) is refused outright, never "sanitized" into something else."""
    data = assemble([*raw_entries(entries), RawEntry(name, MINIMAL_WASM)])
    reject(data, errors.InvalidArtifactPathError, "invalid_artifact_path")


@pytest.mark.parametrize(
    ("name", "flags"),
    [
        pytest.param(b"assets/\xff\xfe.txt", FLAG_UTF8, id="utf8-flag-invalid-bytes"),
        pytest.param(b"assets/\xc0\xae\xc0\xae/x", FLAG_UTF8, id="utf8-flag-overlong-dots"),
        pytest.param(b"assets/caf\xc3\xa9.txt", 0, id="non-ascii-without-utf8-flag"),
        pytest.param(b"assets/\x82.txt", 0, id="cp437-byte-without-flag"),
    ],
)
def test_undecodable_entry_name(
    entries: dict[str, bytes], reject: Reject, name: bytes, flags: int
) -> None:
    """Names must mean one string to every reader: invalid UTF-8 (including the overlong
    ``..`` encoding) is refused, and non-ASCII without the UTF-8 flag is CP437 to some readers
    and UTF-8 to others, so it is refused too."""
    data = assemble([*raw_entries(entries), RawEntry(name, b"x", flags=flags)])
    reject(data, errors.InvalidArtifactPathError, "invalid_artifact_path")


@pytest.mark.parametrize(
    "name",
    ["install-metadata.json", "artifact.palyra-skill", "Skill.toml", ".git/config", "modulesx"],
)
def test_unknown_entry_name(entries: dict[str, bytes], reject: Reject, name: str) -> None:
    """Outside the allowlist: such an entry could overwrite installer state
    (``install-metadata.json``) at extraction. It is covered by nothing the reader trusts yet,
    and the allowlist is enforced by the reader, before signatures are looked at."""
    err = reject(
        zip_with(entries, [(zip_info(name), b"{}")]),
        errors.UnknownArtifactEntryError,
        "unknown_artifact_entry",
    )
    assert err.details["path"] == name


# --- duplicates ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["modules/module.wasm", "skill.toml", "signature.json"])
def test_exact_duplicate_name(entries: dict[str, bytes], reject: Reject, name: str) -> None:
    """Janus archive: two entries with one name. ``zipfile`` returns the last, the reference
    crate collapses them; whichever copy a checker reads, an installer may read the other."""
    data = zip_with(entries, [(zip_info(name), b"\x00asm\x01\x00\x00\x00evil")])
    err = reject(data, errors.DuplicateArtifactEntryError, "duplicate_artifact_entry")
    assert err.details["path"] == name


@pytest.mark.parametrize(
    ("original", "alias"),
    [
        pytest.param("skill.toml", " skill.toml", id="leading-space"),
        pytest.param("skill.toml", "skill.toml\t", id="trailing-tab"),
        pytest.param("modules/module.wasm", "modules/module.wasm ", id="trailing-space"),
        pytest.param("signature.json", "\u00a0signature.json", id="nbsp"),
    ],
)
def test_normalized_duplicate_name(
    entries: dict[str, bytes], reject: Reject, original: str, alias: str
) -> None:
    """Two raw names that normalize to one key: the hash would cover one, the other could be
    what a whitespace-preserving extractor writes."""
    data = zip_with(entries, [(zip_info(alias), b"evil")])
    err = reject(data, errors.DuplicateArtifactEntryError, "duplicate_artifact_entry")
    assert err.details["path"] == original


# --- file types: symlinks and other non-regular entries ----------------------------------


def test_symlink_entry(entries: dict[str, bytes], reject: Reject) -> None:
    """A symlink entry makes a later write (or read) go through the link: the classic
    ``modules/module.wasm -> /etc/passwd`` or link-then-write-through escape."""
    replaced = {k: v for k, v in entries.items() if k != "modules/module.wasm"}
    link = zip_info("modules/module.wasm", mode=stat.S_IFLNK | 0o777)
    reject(zip_with(replaced, [(link, b"/etc/passwd")]), errors.SymlinkEntryError, "symlink_entry")


@pytest.mark.parametrize(
    "host",
    [
        pytest.param(2, id="vms"),
        pytest.param(5, id="atari"),
        pytest.param(16, id="beos"),
        pytest.param(30, id="atheos"),
    ],
)
def test_symlink_entry_from_other_unix_like_hosts(
    entries: dict[str, bytes], reject: Reject, host: int
) -> None:
    """Info-ZIP UnZip 6 (``SYMLINK_HOST`` in unzpriv.h) restores symlinks for entries "made
    by" UNIX, VMS, ATARI, BEOS and ATHEOS alike; a reader that only looks at host 3 lets the
    same link through under another host byte — a parser differential."""
    replaced = {k: v for k, v in entries.items() if k != "modules/module.wasm"}
    link = zip_info("modules/module.wasm", mode=stat.S_IFLNK | 0o777, host=host)
    reject(zip_with(replaced, [(link, b"/etc/passwd")]), errors.SymlinkEntryError, "symlink_entry")


@pytest.mark.parametrize("mode", [stat.S_IFIFO | 0o644, stat.S_IFCHR | 0o644, stat.S_IFBLK])
def test_special_file_entry(entries: dict[str, bytes], reject: Reject, mode: int) -> None:
    """FIFOs and device nodes: an extractor honouring the mode would block or open a device."""
    special = zip_info("assets/special", mode=mode)
    reject(zip_with(entries, [(special, b"")]), errors.SymlinkEntryError, "symlink_entry")


# --- encryption and compression -------------------------------------------------------


def test_encrypted_flag_in_both_headers(artifact: bytes, reject: Reject) -> None:
    """Traditional PKWARE encryption (flag bit 0): the bytes cannot be checked without a key
    and different readers handle the flag differently; refused outright."""
    h = locate(artifact)["modules/module.wasm"]
    flags = artifact[h.central + CDH_FLAGS]
    data = patch(artifact, h.local + LFH_FLAGS, "<H", flags | FLAG_ENCRYPTED)
    data = patch(data, h.central + CDH_FLAGS, "<H", flags | FLAG_ENCRYPTED)
    reject(data, errors.EncryptedEntryError, "encrypted_entry")


def test_encrypted_flag_in_central_header_only(artifact: bytes, reject: Reject) -> None:
    h = locate(artifact)["modules/module.wasm"]
    data = patch(artifact, h.central + CDH_FLAGS, "<H", FLAG_ENCRYPTED)
    reject(data, errors.EncryptedEntryError, "encrypted_entry")


def test_encrypted_flag_in_local_header_only(artifact: bytes, reject: Reject) -> None:
    """Readers that trust the local header decrypt, readers that trust the central one do
    not: a disagreement between the two headers is itself the error."""
    h = locate(artifact)["modules/module.wasm"]
    data = patch(artifact, h.local + LFH_FLAGS, "<H", FLAG_ENCRYPTED)
    reject(data, errors.EntrySizeMismatchError, "entry_size_mismatch")


def test_aes_extra_field(entries: dict[str, bytes], reject: Reject) -> None:
    """WinZip AES (extra field 0x9901) marks an encrypted entry even without flag bit 0."""
    aes = struct.pack("<HHH2sBH", 0x9901, 7, 2, b"AE", 3, DEFLATED)
    hostile = [
        RawEntry(e.name, e.data, central_extra=aes)
        if e.name == b"assets/templates/prompt.txt"
        else e
        for e in raw_entries(entries)
    ]
    reject(assemble(hostile), errors.EncryptedEntryError, "encrypted_entry")


@pytest.mark.parametrize(
    "method",
    [pytest.param(zipfile.ZIP_BZIP2, id="bzip2"), pytest.param(zipfile.ZIP_LZMA, id="lzma")],
)
def test_unsupported_compression_written_by_zipfile(
    entries: dict[str, bytes], reject: Reject, method: int
) -> None:
    """Only stored and DEFLATE: every extra decompressor is more attack surface and another
    place where readers disagree (the reference crate cannot read these at all)."""
    data = zip_with(
        {k: v for k, v in entries.items() if k != "modules/module.wasm"},
        [(zip_info("modules/module.wasm", method=method), entries["modules/module.wasm"])],
    )
    reject(data, errors.UnsupportedCompressionError, "unsupported_compression")


@pytest.mark.parametrize(
    "method", [pytest.param(9, id="deflate64"), pytest.param(93, id="zstd"), 1, 6]
)
def test_unsupported_compression_method_patched(
    artifact: bytes, reject: Reject, method: int
) -> None:
    h = locate(artifact)["modules/module.wasm"]
    data = patch(artifact, h.local + LFH_METHOD, "<H", method)
    data = patch(data, h.central + CDH_METHOD, "<H", method)
    reject(data, errors.UnsupportedCompressionError, "unsupported_compression")


# --- sizes, counts and bombs ------------------------------------------------------------


def test_compression_ratio_bomb(entries: dict[str, bytes], reject: Reject) -> None:
    """10 MiB of zeros deflates to ~10 KiB (~1000:1). Below the per-entry and total limits,
    so only the ratio bound, checked before inflating, stops it."""
    bomb = zip_with(entries, [(zip_info("modules/a.wasm"), bytes(10 * MIB))])
    assert len(bomb) < 64 * 1024
    reject(bomb, errors.CompressionRatioError, "compression_ratio_exceeded")


def test_too_many_entries(entries: dict[str, bytes], reject: Reject) -> None:
    """More than 256 entries: the count is bounded from the end record before any parsing."""
    extra = {f"assets/f{i:03}": b"" for i in range(MAX_ENTRIES + 1 - len(entries))}
    err = reject(
        zip_with({**entries, **extra}),
        errors.ArtifactTooManyEntriesError,
        "artifact_too_many_entries",
    )
    assert err.details == {"actual": MAX_ENTRIES + 1, "limit": MAX_ENTRIES}


def test_reference_case_25_256_modules_plus_fixed_files(
    entries: dict[str, bytes], reject: Reject
) -> None:
    """Reference case 25: 256 modules plus the four fixed documents (and the sample asset)."""
    modules = {f"modules/m{i:03}.wasm": MINIMAL_WASM for i in range(256)}
    err = reject(
        zip_with({**entries, **modules}),
        errors.ArtifactTooManyEntriesError,
        "artifact_too_many_entries",
    )
    assert err.details["limit"] == 256
    assert err.details["actual"] == len(entries) + 256


@pytest.mark.parametrize(
    ("name", "limit"),
    [("assets/big.bin", MAX_ENTRY_BYTES), ("modules/big.wasm", MAX_COMPONENT_ENTRY_BYTES)],
)
def test_entry_over_its_limit_declared(
    entries: dict[str, bytes], reject: Reject, name: str, limit: int
) -> None:
    """A header may claim any size; the claim alone is enough to refuse, before inflation.
    Module entries may declare up to the component limit (checked again after reading)."""
    big = RawEntry(name.encode(), b"\x00" * 64, size=limit + 1)
    err = reject(
        assemble([*raw_entries(entries), big]),
        errors.ArtifactEntryTooLargeError,
        "artifact_entry_too_large",
    )
    assert err.details == {"path": name, "actual": limit + 1, "limit": limit}


def test_core_module_over_16_mib_real_data(entries: dict[str, bytes], reject: Reject) -> None:
    """Only components may exceed the reference's 16 MiB: a core module (or anything that is
    not a component) of 16 MiB + 1 is refused after reading."""
    payload = b"\x00asm\x01\x00\x00\x00" + os.urandom(MAX_ENTRY_BYTES - 7)
    data = zip_with(entries, [(zip_info("modules/big.wasm"), payload)])
    err = reject(data, errors.ArtifactEntryTooLargeError, "artifact_entry_too_large")
    assert err.details["actual"] == MAX_ENTRY_BYTES + 1
    assert err.details["limit"] == MAX_ENTRY_BYTES


def test_component_over_16_mib_is_read(entries: dict[str, bytes]) -> None:
    payload = COMPONENT_MAGIC + os.urandom(MAX_ENTRY_BYTES)
    data = zip_with(entries, [(zip_info("modules/big.wasm"), payload)])
    assert read_archive(data)["modules/big.wasm"] == payload


def test_reference_case_24_65_entries_of_1_mib(reject: Reject) -> None:
    """Reference case 24: 65 x 1 MiB of zeros (each exactly at the ratio floor, so only the
    total counts) compresses to ~65 KiB yet declares 65 MiB."""
    modules = {f"modules/m{i:02}.wasm": bytes(MIB) for i in range(65)}
    data = zip_with(modules)
    assert len(data) < MAX_ARTIFACT_BYTES
    err = reject(data, errors.ArtifactTooLargeError, "artifact_too_large")
    assert err.details["limit"] == 64 * 1024 * 1024
    assert err.details["actual"] == 65 * MIB


def test_total_of_exactly_64_mib_is_within_the_limit() -> None:
    """Boundary for case 24: the limit is "more than 64 MiB", so 64 x 1 MiB still decodes."""
    modules = {f"modules/m{i:02}.wasm": bytes(MIB) for i in range(64)}
    decoded = read_archive(zip_with(modules))
    assert sorted(decoded) == sorted(modules)
    assert sum(len(v) for v in decoded.values()) == MAX_ARTIFACT_BYTES


def _low_ratio_data(size: int, seed: int) -> bytes:
    """About 21:1 under DEFLATE: 4 KiB random, 80 KiB zeros, repeated (random blocks are
    further apart than the 32 KiB window, so they cannot be back-referenced)."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        out += rng.randbytes(4096) + bytes(81920)
    return bytes(out[:size])


def test_reference_case_26_5_modules_of_14_mib(reject: Reject) -> None:
    """Reference case 26: five 14 MiB modules, each within the per-entry limit and under
    the ratio bound, together 70 MiB > 64 MiB; the archive itself is only a few MiB."""
    modules = {f"modules/m{i}.wasm": _low_ratio_data(14 * MIB, i) for i in range(5)}
    data = zip_with(modules)
    assert len(data) < 8 * MIB
    err = reject(data, errors.ArtifactTooLargeError, "artifact_too_large")
    assert err.details == {"actual": 70 * MIB, "limit": MAX_ARTIFACT_BYTES}


def test_5_modules_of_14_mib_zeros_hit_the_ratio_bound_first(reject: Reject) -> None:
    """With all-zero modules (the reference test's literal data) each entry is a ~1000:1
    bomb, so this reader refuses the first one for its ratio, before the running total."""
    modules = {f"modules/m{i}.wasm": bytes(14 * MIB) for i in range(5)}
    reject(zip_with(modules), errors.CompressionRatioError, "compression_ratio_exceeded")


def test_5_modules_of_14_mib_declared_only(reject: Reject) -> None:
    """Declared sizes alone, with ~150 KB of (never inflated) data each: the total bound is
    enforced from the central directory, before a single byte is decompressed."""
    payload = random.Random(7).randbytes(150_000)
    hostile = [
        RawEntry(f"modules/m{i}.wasm".encode(), b"", size=14 * MIB, payload=payload)
        for i in range(5)
    ]
    err = reject(assemble(hostile), errors.ArtifactTooLargeError, "artifact_too_large")
    assert err.details == {"actual": 70 * MIB, "limit": MAX_ARTIFACT_BYTES}


def test_raw_file_over_64_mib_structurally_valid(reject: Reject) -> None:
    """A well-formed archive of stored (1:1) entries whose file is over 64 MiB is refused
    on its length alone, before the end record is even looked for."""
    stored = [
        RawEntry(f"modules/m{i}.wasm".encode(), bytes(13 * MIB), method=STORED) for i in range(5)
    ]
    data = assemble(stored)
    assert len(data) > MAX_ARTIFACT_BYTES
    err = reject(data, errors.ArtifactTooLargeError, "artifact_too_large")
    assert err.details == {"actual": len(data), "limit": MAX_ARTIFACT_BYTES}


def test_raw_file_over_64_mib_padded(artifact: bytes, reject: Reject) -> None:
    data = artifact + bytes(MAX_ARTIFACT_BYTES + 1 - len(artifact))
    err = reject(data, errors.ArtifactTooLargeError, "artifact_too_large")
    assert err.details == {"actual": MAX_ARTIFACT_BYTES + 1, "limit": MAX_ARTIFACT_BYTES}


# --- layout: prepended, appended, comments, overlaps -----------------------------------


@pytest.mark.parametrize(
    "garbage",
    [b"\x00", b"garbage" * 3, bytes(100), b"PK\x05\x06"],
    ids=["one-byte", "text", "zeros", "end-record-signature"],
)
def test_garbage_appended(artifact: bytes, reject: Reject, garbage: bytes) -> None:
    """Bytes after the end record carry data no signature covers (and can hold a second end
    record for readers that scan differently)."""
    err = reject(artifact + garbage, errors.UnexpectedArchiveDataError, "unexpected_archive_data")
    # With an end-record signature among the garbage the reader cannot tell which record is
    # the real one, but the count it reports can never be negative.
    assert err.details["trailing_bytes"] > 0
    if not garbage.startswith(b"PK"):
        assert err.details == {"trailing_bytes": len(garbage)}


def test_concatenated_zip(artifact: bytes, reject: Reject) -> None:
    """Concatenated-ZIP attack: a second archive appended; back-to-front readers see it,
    front-to-back readers see the first."""
    second = zip_with({"skill.toml": b"evil = true"})
    reject(artifact + second, errors.UnexpectedArchiveDataError, "unexpected_archive_data")


@pytest.mark.parametrize(
    "garbage",
    [b"\x00", b"\x89PNG\r\n\x1a\n" + bytes(25), bytes(1000)],
    ids=["one-byte", "png-header", "zeros"],
)
def test_garbage_prepended(artifact: bytes, reject: Reject, garbage: bytes) -> None:
    """Raw bytes before the archive (offsets not adjusted): the central directory no longer
    ends where the end record is."""
    reject(garbage + artifact, errors.UnexpectedArchiveDataError, "unexpected_archive_data")


def test_prepended_with_adjusted_offsets(entries: dict[str, bytes], reject: Reject) -> None:
    """Polyglot / self-extractor layout: a PNG in front and every offset pointing past it.
    Most readers accept this; the strict one must not (one file, two meanings)."""
    prefix = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
    data = zip_with(entries, prefix=prefix)
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None  # zipfile itself is happy
    err = reject(data, errors.UnexpectedArchiveDataError, "unexpected_archive_data")
    assert err.details == {"leading_bytes": len(prefix)}


def test_archive_comment(entries: dict[str, bytes], reject: Reject) -> None:
    """The archive comment is unsigned free space (and can hide an end record)."""
    data = zip_with(entries, comment=b"signed by acme, trust me")
    err = reject(data, errors.UnexpectedArchiveDataError, "unexpected_archive_data")
    assert err.details["trailing_bytes"] == len(b"signed by acme, trust me")


def test_entry_comment(entries: dict[str, bytes], reject: Reject) -> None:
    hostile = raw_entries(entries)
    hostile[0].comment = b"unsigned"
    reject(assemble(hostile), errors.UnexpectedArchiveDataError, "unexpected_archive_data")


def test_overlapping_entries(artifact: bytes, reject: Reject) -> None:
    """Two central records pointing at one local entry (the overlapping-file technique of
    non-recursive zip bombs, and a way to give one payload two names)."""
    h = locate(artifact)["modules/module.wasm"]
    record = bytearray(artifact[h.central : h.central + h.central_length])
    name_len = struct.unpack_from("<H", record, 28)[0]
    alias = b"modules/alias.wasm"
    struct.pack_into("<H", record, 28, len(alias))
    record = record[: CDH.size] + alias + record[CDH.size + name_len :]
    eocd = len(artifact) - EOCD.size
    sig, disk, cd_disk, _dc, total, cd_size, cd_offset, _clen = EOCD.unpack_from(artifact, eocd)
    end = EOCD.pack(sig, disk, cd_disk, total + 1, total + 1, cd_size + len(record), cd_offset, 0)
    data = artifact[:eocd] + bytes(record) + end
    reject(data, errors.UnexpectedArchiveDataError, "unexpected_archive_data")


def test_end_record_undercounts_entries(artifact: bytes, reject: Reject) -> None:
    """An end record that counts one entry fewer than the directory holds hides an entry
    from readers that trust the count."""
    eocd = len(artifact) - EOCD.size
    total = struct.unpack_from("<H", artifact, eocd + EOCD_TOTAL)[0]
    data = patch(artifact, eocd + EOCD_TOTAL, "<H", total - 1)
    data = patch(data, eocd + EOCD_DISK_COUNT, "<H", total - 1)
    reject(data, errors.UnexpectedArchiveDataError, "unexpected_archive_data")


# --- header disagreements --------------------------------------------------------------


def test_local_name_differs_from_central(entries: dict[str, bytes], reject: Reject) -> None:
    """Streaming extractors read local headers, indexers read the central directory: a
    different name in each gives the same bytes two identities."""
    hostile = [
        RawEntry(e.name, e.data, local_name=b"modules/evil.wasm")
        if e.name == b"modules/module.wasm"
        else e
        for e in raw_entries(entries)
    ]
    reject(assemble(hostile), errors.EntrySizeMismatchError, "entry_size_mismatch")


def test_declared_size_mismatch_central_only(artifact: bytes, reject: Reject) -> None:
    h = locate(artifact)["modules/module.wasm"]
    size = read_u32(artifact, h.central + CDH_USIZE)
    data = patch(artifact, h.central + CDH_USIZE, "<I", size + 1)
    reject(data, errors.EntrySizeMismatchError, "entry_size_mismatch")


@pytest.mark.parametrize("delta", [-1, 1, 1000])
def test_declared_size_lies_in_both_headers(artifact: bytes, reject: Reject, delta: int) -> None:
    """Both headers agree on a size the DEFLATE stream does not produce: inflation is capped
    at the declared size + 1 and the difference is an error, never a truncation."""
    h = locate(artifact)["modules/module.wasm"]
    size = read_u32(artifact, h.central + CDH_USIZE)
    data = patch(artifact, h.central + CDH_USIZE, "<I", size + delta)
    data = patch(data, h.local + LFH_USIZE, "<I", size + delta)
    reject(data, errors.EntrySizeMismatchError, "entry_size_mismatch")


def test_crc_mismatch_in_both_headers(artifact: bytes, reject: Reject) -> None:
    """A CRC that does not match the data means the data is not what was written."""
    h = locate(artifact)["modules/module.wasm"]
    crc = read_u32(artifact, h.central + CDH_CRC) ^ 0x1
    data = patch(artifact, h.central + CDH_CRC, "<I", crc)
    data = patch(data, h.local + LFH_CRC, "<I", crc)
    reject(data, errors.EntrySizeMismatchError, "entry_size_mismatch")


def test_crc_mismatch_central_only(artifact: bytes, reject: Reject) -> None:
    h = locate(artifact)["modules/module.wasm"]
    crc = read_u32(artifact, h.central + CDH_CRC) ^ 0x80000000
    reject(
        patch(artifact, h.central + CDH_CRC, "<I", crc),
        errors.EntrySizeMismatchError,
        "entry_size_mismatch",
    )


def test_stored_entry_with_unequal_sizes(entries: dict[str, bytes], reject: Reject) -> None:
    """A stored entry whose compressed and uncompressed sizes differ cannot be honest."""
    hostile = [
        RawEntry(e.name, e.data, method=STORED, payload=e.data + b"!")
        if e.name == b"assets/templates/prompt.txt"
        else e
        for e in raw_entries(entries)
    ]
    reject(assemble(hostile), errors.EntrySizeMismatchError, "entry_size_mismatch")


# --- extra fields ------------------------------------------------------------------------


def _unicode_path_extra(header_name: bytes, unicode_name: str) -> bytes:
    body = b"\x01" + struct.pack("<I", zlib.crc32(header_name)) + unicode_name.encode()
    return struct.pack("<HH", 0x7075, len(body)) + body


@pytest.mark.parametrize("where", ["central", "local"])
def test_info_zip_unicode_path_extra(entries: dict[str, bytes], reject: Reject, where: str) -> None:
    """Info-ZIP Unicode Path (0x7075) with a matching CRC: the reference crate replaces the
    header name with this one, Python's zipfile ignores it — so ``assets/notes.txt`` would
    be ``skill.toml`` to one reader. Refused wherever it appears."""
    header_name = b"assets/notes.txt"
    extra = _unicode_path_extra(header_name, "skill.toml")
    hostile = RawEntry(
        header_name,
        b'evil = "yes"',
        central_extra=extra if where == "central" else b"",
        local_extra=extra if where == "local" else b"",
    )
    reject(
        assemble([*raw_entries(entries), hostile]), errors.InvalidArchiveError, "invalid_archive"
    )


def test_zip64_extra_written_by_zipfile(entries: dict[str, bytes], reject: Reject) -> None:
    """ZIP64 fields (0x0001) replace the 32-bit sizes with 0xFFFFFFFF and a second copy:
    two places for one size is one too many, and the format never needs ZIP64."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            with archive.open(zip_info(name), "w", force_zip64=True) as handle:
                handle.write(entries[name])
    reject(buffer.getvalue(), errors.InvalidArchiveError, "invalid_archive")


def test_zip64_extra_in_central_directory(entries: dict[str, bytes], reject: Reject) -> None:
    hostile = raw_entries(entries)
    size = len(hostile[0].data)
    hostile[0].central_extra = struct.pack("<HHQQ", 0x0001, 16, size, size)
    reject(assemble(hostile), errors.InvalidArchiveError, "invalid_archive")


def test_zip64_end_record_and_locator(artifact: bytes, reject: Reject) -> None:
    """A ZIP64 end record + locator in front of the classic one: ZIP64-aware readers take
    their (possibly different) directory offset from it."""
    eocd = len(artifact) - EOCD.size
    _sig, _d, _cd, _dc, total, cd_size, cd_offset, _clen = EOCD.unpack_from(artifact, eocd)
    record = struct.pack(
        "<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, total, total, cd_size, cd_offset
    )
    locator = struct.pack("<IIQI", 0x07064B50, 0, eocd, 1)
    data = artifact[:eocd] + record + locator + artifact[eocd:]
    reject(data, errors.InvalidArchiveError, "invalid_archive")


def test_zip64_sentinel_in_end_record(artifact: bytes, reject: Reject) -> None:
    eocd = len(artifact) - EOCD.size
    data = patch(artifact, eocd + EOCD_TOTAL, "<H", 0xFFFF)
    data = patch(data, eocd + EOCD_DISK_COUNT, "<H", 0xFFFF)
    reject(data, errors.InvalidArchiveError, "invalid_archive")


def test_malformed_extra_field(entries: dict[str, bytes], reject: Reject) -> None:
    hostile = raw_entries(entries)
    hostile[0].central_extra = struct.pack("<HH", 0xCAFE, 100) + b"short"
    reject(assemble(hostile), errors.InvalidArchiveError, "invalid_archive")


# --- not a ZIP at all, and truncations ---------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"PK", id="two-bytes"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(17), id="png"),
        pytest.param(b"\x1f\x8b\x08\x00" + bytes(40), id="gzip"),
        pytest.param(b"[manifest]\n" * 10, id="text"),
        pytest.param(bytes(4096), id="zeros"),
    ],
)
def test_not_a_zip(reject: Reject, data: bytes) -> None:
    reject(data, errors.InvalidArchiveError, "invalid_archive")


def test_every_truncation_is_a_skill_error(artifact: bytes) -> None:
    """A download cut short at any byte is a typed error, never an IndexError/struct.error/
    zlib.error leaking from the parser."""
    for length in range(len(artifact)):
        try:
            inspect_skill_artifact(artifact[:length])
        except errors.SkillError:
            continue
        except Exception as exc:  # the property under test: nothing else escapes
            pytest.fail(f"truncation to {length} bytes raised {type(exc).__name__}: {exc}")
        pytest.fail(f"truncation to {length} bytes was accepted")


def test_truncation_writes_nothing(artifact: bytes, reject: Reject) -> None:
    """A truncation that keeps every local entry but cuts the central directory."""
    cd_offset = read_u32(artifact, len(artifact) - EOCD.size + 16)
    reject(artifact[: cd_offset + 10], errors.InvalidArchiveError, "invalid_archive")


def test_truncation_inside_end_record_is_invalid_archive(artifact: bytes) -> None:
    """Cutting 1..21 bytes off the end leaves a partial end record. That is a truncated
    archive (``invalid_archive``), not "bytes after the end record" — and certainly not a
    negative count of trailing bytes."""
    wrong: list[str] = []
    for cut in range(1, EOCD.size):
        try:
            read_archive(artifact[:-cut])
        except errors.SkillError as exc:
            if type(exc) is not errors.InvalidArchiveError or exc.kind != "invalid_archive":
                wrong.append(f"cut {cut}: {type(exc).__name__} {exc.details}")
        else:
            wrong.append(f"cut {cut}: accepted")
    assert not wrong, "; ".join(wrong)


# --- directory entries ---------------------------------------------------------------------


def test_directory_entries_are_skipped(
    entries: dict[str, bytes], trust_root: Path, build: Builder
) -> None:
    """Zero-size directory entries (``zip -r`` adds them) carry nothing: they are skipped,
    are not part of the payload, and an otherwise valid artifact still verifies."""
    dirs = [
        (zip_info(name, mode=stat.S_IFDIR | 0o755, method=STORED), b"")
        for name in ("assets/", "assets/templates/", "modules/")
    ]
    data = zip_with(entries, dirs)
    assert read_archive(data) == entries
    saved = trust_root / "trust-store.json"
    before = saved.read_bytes()
    report = verify_skill_artifact(data, TrustStore.load(saved), allow_tofu=True)
    assert report.trust_decision is TrustDecision.TOFU_NEWLY_PINNED
    assert report.inspection.payload_sha256 == build().payload_sha256
    assert "modules/" not in report.inspection.entries
    assert saved.read_bytes() == before


def test_directory_entry_with_declared_content(entries: dict[str, bytes], reject: Reject) -> None:
    """Directories are skipped, so any content in one would be bytes nobody verifies."""
    dirs = [(zip_info("modules/", mode=stat.S_IFDIR | 0o755), b"hidden")]
    reject(zip_with(entries, dirs), errors.InvalidArchiveError, "invalid_archive")


def test_directory_entry_hiding_compressed_bytes(entries: dict[str, bytes], reject: Reject) -> None:
    """A directory entry that declares size 0 but stores bytes anyway: unsigned data riding
    inside the container (a second archive, a payload for a different reader)."""
    hidden = RawEntry(
        b"modules/",
        b"",
        method=STORED,
        external_attr=(stat.S_IFDIR | 0o755) << 16,
        payload=b"PK\x03\x04 hidden payload",
    )
    reject(
        assemble([hidden, *raw_entries(entries)]),
        errors.EntrySizeMismatchError,
        "entry_size_mismatch",
    )


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("../", id="parent"),
        pytest.param("modules/../../", id="traversal-through-modules"),
        pytest.param("/etc/cron.d/", id="absolute"),
        pytest.param("C:/", id="drive-letter"),
    ],
)
def test_directory_entry_with_hostile_path(
    entries: dict[str, bytes], reject: Reject, name: str
) -> None:
    """The archive module promises to reject ``..`` and absolute names; a trailing slash
    must not exempt a name from that (an extractor creates the directory wherever it says)."""
    dirs = [(zip_info(name, mode=stat.S_IFDIR | 0o755, method=STORED), b"")]
    reject(zip_with(entries, dirs), errors.InvalidArtifactPathError, "invalid_artifact_path")


def test_directory_entry_outside_allowlist(entries: dict[str, bytes], reject: Reject) -> None:
    """The allowlist covers every name, directories included: an artifact has no business
    creating ``evil/`` next to the install's own files."""
    dirs = [(zip_info("evil/", mode=stat.S_IFDIR | 0o755, method=STORED), b"")]
    reject(zip_with(entries, dirs), errors.UnknownArtifactEntryError, "unknown_artifact_entry")


# --- property: arbitrary bytes -------------------------------------------------------------


@settings(deadline=None, max_examples=400)
@given(st.binary(max_size=4096))
def test_read_archive_arbitrary_bytes(data: bytes) -> None:
    """Whatever the bytes, the reader returns entries or raises a SkillError."""
    try:
        result = read_archive(data)
    except errors.SkillError:
        return
    assert isinstance(result, dict)


@settings(deadline=None, max_examples=300)
@given(
    names=st.lists(
        st.binary(min_size=0, max_size=24) | st.sampled_from([b"skill.toml", b"modules/a.wasm"]),
        min_size=1,
        max_size=6,
    ),
    flags=st.sampled_from([0, FLAG_UTF8, FLAG_ENCRYPTED, 0x0008]),
    method=st.sampled_from([STORED, DEFLATED, 12, 99]),
    host=st.sampled_from([0, UNIX, 16]),
    mode=st.sampled_from([stat.S_IFREG | 0o644, stat.S_IFLNK | 0o777, stat.S_IFDIR, 0]),
    size_delta=st.integers(-2, 2),
)
def test_read_archive_structured_garbage(
    names: list[bytes], flags: int, method: int, host: int, mode: int, size_delta: int
) -> None:
    """Structurally plausible archives with hostile field values reach deep into the
    reader (unlike random bytes, which mostly stop at the end record)."""
    hostile = [
        RawEntry(
            name,
            name * 3,
            method=method if method in (STORED, DEFLATED) else DEFLATED,
            flags=flags,
            host=host,
            external_attr=mode << 16,
            size=max(0, len(name) * 3 + size_delta),
        )
        for name in names
    ]
    data = assemble(hostile)
    if method not in (STORED, DEFLATED):
        first = read_u32(data, len(data) - EOCD.size + 16)  # central directory offset
        data = patch(data, first + CDH_METHOD, "<H", method)
    try:
        result = read_archive(data)
    except errors.SkillError:
        return
    assert all(isinstance(value, bytes) for value in result.values())
