"""Strict reading and deterministic writing of the ``.palyra-skill`` ZIP container.

Why a hand-written reader instead of :mod:`zipfile`: ``zipfile`` is built to be forgiving — it
accepts bytes prepended to the archive, appended comments, duplicate names, overlapping entries,
local headers that disagree with the central directory, and it ignores symlink modes. Each of
those leniencies is a parser differential that lets one archive mean two things (the Janus and
concatenated-ZIP attacks in field-notes.md §4.2). The reader below accepts exactly one layout:
local entries packed back to back from byte 0, then the central directory, then an end record
with no comment and nothing after it; names, flags, method, CRC and sizes cross-checked
between local and central headers (timestamps and attributes carry no signed meaning);
stored or DEFLATE only; sizes, counts and ratios bounded before a byte is inflated. Writing
is simple and uses :mod:`zipfile` with pinned metadata (sorted, DEFLATE, DOS epoch, 0644),
like the reference.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass

from palyra.skills.constants import (
    ASSETS_PREFIX,
    COMPRESSION_RATIO_FLOOR_BYTES,
    FIXED_ENTRIES,
    MAX_ARTIFACT_BYTES,
    MAX_COMPRESSION_RATIO,
    MAX_ENTRIES,
    MAX_ENTRY_BYTES,
    MODULES_PREFIX,
    entry_size_limit,
    oversized_entry,
)
from palyra.skills.errors import (
    ArtifactEntryTooLargeError,
    ArtifactTooLargeError,
    ArtifactTooManyEntriesError,
    CompressionRatioError,
    DuplicateArtifactEntryError,
    EncryptedEntryError,
    EntrySizeMismatchError,
    InvalidArchiveError,
    InvalidArtifactPathError,
    SymlinkEntryError,
    UnexpectedArchiveDataError,
    UnknownArtifactEntryError,
    UnsupportedCompressionError,
)
from palyra.skills.values import normalize_artifact_path

_EOCD = struct.Struct("<IHHHHIIH")
_EOCD_SIG = 0x06054B50
_ZIP64_LOCATOR_SIG = 0x07064B50
_CDH = struct.Struct("<IHHHHHHIIIHHHHHII")
_CDH_SIG = 0x02014B50
_LFH = struct.Struct("<IHHHHHIIIHH")
_LFH_SIG = 0x04034B50
_DD_SIG = 0x08074B50
_STORED = 0
_DEFLATED = 8
_FLAG_ENCRYPTED = 0x0001
_FLAG_DATA_DESCRIPTOR = 0x0008
_FLAG_STRONG_ENCRYPTION = 0x0040
_FLAG_UTF8 = 0x0800
_FLAG_MASKED_HEADERS = 0x2000
_EXTRA_ZIP64 = 0x0001
_EXTRA_UNICODE_PATH = 0x7075
_EXTRA_UNICODE_COMMENT = 0x6375
_EXTRA_AES = 0x9901
# Timestamps and owners (Info-ZIP 0x5455/0x7875, NTFS 0x000a, PKWARE Unix 0x000d): harmless.
_KNOWN_EXTRA_FIELDS = frozenset({0x5455, 0x7875, 0x000A, 0x000D})
_UNIX = 3
_DOS_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class _CentralEntry:
    raw_name: bytes
    name: str
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    extra: bytes
    offset: int
    is_dir: bool


def is_allowed_entry_name(name: str) -> bool:
    """The layout allowlist: the four fixed documents, ``modules/…`` and ``assets/…``."""
    return name in FIXED_ENTRIES or (
        name.startswith((MODULES_PREFIX, ASSETS_PREFIX)) and "/" in name
    )


def _u16(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 2], "little")


def _find_eocd(data: bytes) -> int:
    """Offset of the end record, which must be the archive's last 22 bytes (no comment)."""
    if len(data) < _EOCD.size:
        raise InvalidArchiveError("file is too short to be a ZIP archive")
    offset = len(data) - _EOCD.size
    if (
        int.from_bytes(data[offset : offset + 4], "little") == _EOCD_SIG
        and _u16(data, offset + 20) == 0
    ):
        return offset
    # A complete end record (22 bytes) must fit after the signature for it to count.
    found = data.rfind(struct.pack("<I", _EOCD_SIG), max(0, len(data) - 65_557), len(data) - 18)
    if found < 0:
        raise InvalidArchiveError("no end of central directory record (truncated or not a ZIP)")
    trailing = len(data) - found - _EOCD.size
    raise UnexpectedArchiveDataError(
        f"{trailing} byte(s) follow the central directory (archive comments and appended data "
        "are not allowed)",
        details={"trailing_bytes": trailing},
    )


def _decode_name(raw: bytes, flags: int) -> str:
    if b"\x00" in raw:
        raise InvalidArtifactPathError(raw.decode("latin-1"), "contains NUL")
    try:
        # Without the UTF-8 flag, ZIP says CP437 but many writers mean UTF-8: only ASCII is
        # unambiguous, so anything else must carry the flag.
        return raw.decode("utf-8") if flags & _FLAG_UTF8 else raw.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidArtifactPathError(
            raw.decode("latin-1"), "name is not UTF-8 (or lacks the UTF-8 flag)"
        ) from None


def _check_extra(extra: bytes, name: str) -> None:
    pos = 0
    while pos < len(extra):
        if pos + 4 > len(extra):
            raise InvalidArchiveError(f"malformed extra field on '{name}'")
        header_id, size = struct.unpack_from("<HH", extra, pos)
        pos += 4 + size
        if pos > len(extra):
            raise InvalidArchiveError(f"malformed extra field on '{name}'")
        if header_id == _EXTRA_ZIP64:
            raise InvalidArchiveError(f"entry '{name}' uses ZIP64, which this format never needs")
        if header_id in (_EXTRA_UNICODE_PATH, _EXTRA_UNICODE_COMMENT):
            raise InvalidArchiveError(
                f"entry '{name}' carries an Info-ZIP Unicode path/comment field, which readers "
                "disagree on"
            )
        if header_id == _EXTRA_AES:
            raise EncryptedEntryError(f"entry '{name}' is encrypted")
        if header_id not in _KNOWN_EXTRA_FIELDS:
            # Extra fields are not covered by the signature: only well-known metadata may ride.
            raise InvalidArchiveError(
                f"entry '{name}' carries unknown extra field 0x{header_id:04x}"
            )


def _parse_central(data: bytes, cd_offset: int, cd_size: int, count: int) -> list[_CentralEntry]:
    entries: list[_CentralEntry] = []
    pos = cd_offset
    end = cd_offset + cd_size
    for _ in range(count):
        if pos + _CDH.size > end:
            raise InvalidArchiveError("central directory is truncated")
        (
            sig,
            _made_by,
            _needed,
            flags,
            method,
            _time,
            _date,
            crc,
            csize,
            usize,
            name_len,
            extra_len,
            comment_len,
            disk,
            _internal,
            external,
            offset,
        ) = _CDH.unpack_from(data, pos)
        if sig != _CDH_SIG:
            raise InvalidArchiveError("bad central directory header signature")
        name_start = pos + _CDH.size
        pos = name_start + name_len + extra_len + comment_len
        if pos > end:
            raise InvalidArchiveError("central directory is truncated")
        raw_name = data[name_start : name_start + name_len]
        extra = data[name_start + name_len : name_start + name_len + extra_len]
        name = _decode_name(raw_name, flags)
        if disk != 0:
            raise InvalidArchiveError("multi-disk archives are not supported")
        if comment_len:
            raise UnexpectedArchiveDataError(f"entry '{name}' carries a file comment")
        if flags & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION | _FLAG_MASKED_HEADERS):
            raise EncryptedEntryError(f"entry '{name}' is encrypted")
        if method not in (_STORED, _DEFLATED):
            raise UnsupportedCompressionError(
                f"entry '{name}' uses compression method {method} (only stored and DEFLATE)"
            )
        _check_extra(extra, name)
        # The high 16 bits are a Unix mode for every host that sets them (Info-ZIP restores
        # symlinks for several "made by" systems, not just Unix), so read them whatever the host.
        mode = external >> 16
        if stat.S_ISLNK(mode):
            raise SymlinkEntryError(f"entry '{name}' is a symbolic link")
        is_dir = name.endswith("/")
        if stat.S_ISDIR(mode) and not is_dir:
            raise InvalidArchiveError(f"entry '{name}' is a directory without a trailing '/'")
        # No type bits (plain permissions, as Python's zipfile writes) means a regular file.
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise SymlinkEntryError(f"entry '{name}' is not a regular file")
        if "\\" in name:
            raise InvalidArtifactPathError(name, "contains a backslash")
        if is_dir and usize != 0:
            raise InvalidArchiveError(f"directory entry '{name}' has content")
        entries.append(
            _CentralEntry(raw_name, name, flags, method, crc, csize, usize, extra, offset, is_dir)
        )
    if pos != end:
        raise UnexpectedArchiveDataError("central directory has unaccounted bytes")
    return entries


def _local_data_span(data: bytes, entry: _CentralEntry) -> tuple[int, int, int]:
    """Validate the local header against the central one; returns (data start, end, next)."""
    pos = entry.offset
    if pos + _LFH.size > len(data):
        raise InvalidArchiveError(f"local header of '{entry.name}' is out of range")
    (sig, _needed, flags, method, _time, _date, crc, csize, usize, name_len, extra_len) = (
        _LFH.unpack_from(data, pos)
    )
    if sig != _LFH_SIG:
        raise InvalidArchiveError(f"bad local header signature for '{entry.name}'")
    name_start = pos + _LFH.size
    if data[name_start : name_start + name_len] != entry.raw_name:
        raise EntrySizeMismatchError(f"local and central names differ for '{entry.name}'")
    if flags != entry.flags or method != entry.method:
        raise EntrySizeMismatchError(f"local and central headers differ for '{entry.name}'")
    _check_extra(data[name_start + name_len : name_start + name_len + extra_len], entry.name)
    start = name_start + name_len + extra_len
    end = start + entry.compressed_size
    if end > len(data):
        raise InvalidArchiveError(f"data of '{entry.name}' runs past the archive")
    following = end
    if flags & _FLAG_DATA_DESCRIPTOR:
        if (crc, csize, usize) not in ((0, 0, 0), (entry.crc, entry.compressed_size, entry.size)):
            raise EntrySizeMismatchError(f"local and central sizes differ for '{entry.name}'")
        expected = struct.pack("<III", entry.crc, entry.compressed_size, entry.size)
        if data[end : end + 4] == struct.pack("<I", _DD_SIG):
            following = end + 4
        if data[following : following + 12] != expected:
            raise EntrySizeMismatchError(f"data descriptor of '{entry.name}' does not match")
        following += 12
    elif (crc, csize, usize) != (entry.crc, entry.compressed_size, entry.size):
        raise EntrySizeMismatchError(f"local and central sizes differ for '{entry.name}'")
    return start, end, following


def _stored_deflate_size(payload: bytes | memoryview) -> int | None:
    """Output size of a DEFLATE stream made only of stored blocks, else None.

    Each stored block is a header byte (BFINAL, BTYPE=00, padding), LEN and its complement
    NLEN, then LEN literal bytes; the next header starts on the following byte. Anything else
    (a Huffman block, a bad NLEN, bytes after the final block) returns None and the caller
    takes the general, bounded path.
    """
    view = memoryview(payload)
    pos = total = 0
    end = len(view)
    while pos + 5 <= end:
        header = view[pos]
        if header & 0b110:  # BTYPE != 00
            return None
        length = view[pos + 1] | view[pos + 2] << 8
        if length ^ (view[pos + 3] | view[pos + 4] << 8) != 0xFFFF:
            return None
        pos += 5 + length
        total += length
        if header & 1:  # BFINAL
            return total if pos == end else None
    return None


def _inflate(entry: _CentralEntry, payload: bytes | memoryview, check_crc: bool) -> bytes:
    if entry.method == _STORED:
        if entry.compressed_size != entry.size:
            raise EntrySizeMismatchError(f"stored entry '{entry.name}' has mismatched sizes")
        out = bytes(payload)
    elif (stored := _stored_deflate_size(payload)) is not None:
        # Incompressible data deflates to stored blocks: with the exact output size known in
        # advance, one bounded allocation replaces the growing-buffer path (about 15x faster).
        if stored != entry.size:
            raise EntrySizeMismatchError(
                f"entry '{entry.name}' inflates to a size other than the declared {entry.size}"
            )
        try:
            out = zlib.decompress(payload, -15, stored)
        except zlib.error as exc:
            raise InvalidArchiveError(f"corrupt DEFLATE data in '{entry.name}': {exc}") from None
        if len(out) != stored:
            raise EntrySizeMismatchError(f"entry '{entry.name}' has an inconsistent stream")
    else:
        inflater = zlib.decompressobj(-15)
        try:
            # Never produce more than declared + 1 bytes, whatever the stream says.
            out = inflater.decompress(payload, entry.size + 1)
        except zlib.error as exc:
            raise InvalidArchiveError(f"corrupt DEFLATE data in '{entry.name}': {exc}") from None
        if len(out) != entry.size or not inflater.eof:
            raise EntrySizeMismatchError(
                f"entry '{entry.name}' inflates to a size other than the declared {entry.size}"
            )
        if inflater.unconsumed_tail or inflater.unused_data:
            raise UnexpectedArchiveDataError(f"entry '{entry.name}' has bytes after its stream")
    if check_crc and zlib.crc32(out) != entry.crc:
        raise EntrySizeMismatchError(f"CRC-32 mismatch in '{entry.name}'")
    return out


@dataclass(frozen=True)
class ArchiveContents:
    """Decoded entries; CRCs of large entries may still be pending (see :func:`decode_archive`)."""

    entries: dict[str, bytes]
    pending_crcs: dict[str, int]

    def check_pending_crcs(self) -> None:
        for name, expected in self.pending_crcs.items():
            if zlib.crc32(self.entries[name]) != expected:
                raise EntrySizeMismatchError(f"CRC-32 mismatch in '{name}'")


def read_archive(data: bytes) -> dict[str, bytes]:
    """Decode an artifact into ``{normalized name: bytes}`` in archive order, all CRCs checked.

    Bounds are checked from the central directory before anything is inflated: raw size,
    entry count, per-entry and total declared sizes, and compression ratio.
    """
    contents = decode_archive(data)
    contents.check_pending_crcs()
    return contents.entries


def decode_archive(data: bytes, *, defer_crc_from: int = 1 << 62) -> ArchiveContents:
    """Like :func:`read_archive`, but CRCs of entries of ``defer_crc_from`` bytes or more are
    left to the caller (:meth:`ArchiveContents.check_pending_crcs`), so verification can run
    them on another core while it hashes."""
    if len(data) > MAX_ARTIFACT_BYTES:
        raise ArtifactTooLargeError(len(data), MAX_ARTIFACT_BYTES)
    eocd = _find_eocd(data)
    (_sig, disk, cd_disk, disk_count, total, cd_size, cd_offset, _clen) = _EOCD.unpack_from(
        data, eocd
    )
    if disk != 0 or cd_disk != 0 or disk_count != total:
        raise InvalidArchiveError("multi-disk archives are not supported")
    if total == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
        raise InvalidArchiveError("ZIP64 archives are not supported")
    if eocd >= 20 and int.from_bytes(data[eocd - 20 : eocd - 16], "little") == _ZIP64_LOCATOR_SIG:
        raise InvalidArchiveError("ZIP64 archives are not supported")
    if total > MAX_ENTRIES:
        raise ArtifactTooManyEntriesError(total, MAX_ENTRIES)
    if cd_offset + cd_size != eocd:
        if cd_offset + cd_size > eocd:
            raise InvalidArchiveError("central directory overlaps the end record")
        raise UnexpectedArchiveDataError("bytes between the central directory and the end record")
    central = _parse_central(data, cd_offset, cd_size, total)

    seen_raw: set[bytes] = set()
    names: dict[str, _CentralEntry] = {}
    declared_total = 0
    for entry in central:
        if entry.raw_name in seen_raw:
            raise DuplicateArtifactEntryError(entry.name)
        seen_raw.add(entry.raw_name)
        if entry.is_dir:
            # Directories carry nothing, but their names must be as safe as file names.
            directory = normalize_artifact_path(entry.name.rstrip("/"))
            if directory != entry.name[:-1]:
                raise InvalidArtifactPathError(entry.name, f"not in canonical form '{directory}/'")
            if directory not in ("modules", "assets") and not is_allowed_entry_name(directory):
                raise UnknownArtifactEntryError(entry.name)
            continue
        name = normalize_artifact_path(entry.name)
        if name in names:
            raise DuplicateArtifactEntryError(name)
        if name != entry.name:
            # Other readers (zipfile, unzip) use the raw name: only one spelling is accepted.
            raise InvalidArtifactPathError(entry.name, f"not in canonical form '{name}'")
        if not is_allowed_entry_name(name):
            raise UnknownArtifactEntryError(name)
        if entry.size > entry_size_limit(name):
            raise ArtifactEntryTooLargeError(name, entry.size, entry_size_limit(name))
        declared_total += entry.size
        if declared_total > MAX_ARTIFACT_BYTES:
            raise ArtifactTooLargeError(declared_total, MAX_ARTIFACT_BYTES)
        if (
            entry.size > COMPRESSION_RATIO_FLOOR_BYTES
            and entry.size > entry.compressed_size * MAX_COMPRESSION_RATIO
        ):
            raise CompressionRatioError(
                f"entry '{name}' would inflate {entry.compressed_size} bytes to {entry.size} "
                f"(ratio above {MAX_COMPRESSION_RATIO}:1)"
            )
        names[name] = entry

    # The local entries must tile [0, cd_offset) exactly, in order, with no gaps or overlap.
    contents: dict[str, bytes] = {}
    pending: dict[str, int] = {}
    by_entry: dict[int, str] = {id(entry): name for name, entry in names.items()}
    expected_offset = 0
    for entry in sorted(central, key=lambda e: e.offset):
        if entry.offset != expected_offset:
            if expected_offset == 0:
                raise UnexpectedArchiveDataError(
                    f"{entry.offset} byte(s) precede the first entry",
                    details={"leading_bytes": entry.offset},
                )
            raise UnexpectedArchiveDataError(f"entries overlap or leave gaps at '{entry.name}'")
        start, end, expected_offset = _local_data_span(data, entry)
        kept = by_entry.get(id(entry))
        if entry.is_dir:
            _inflate(entry, memoryview(data)[start:end], True)  # must really be empty
        elif kept is not None:
            deferred = entry.size >= defer_crc_from
            contents[kept] = _inflate(entry, memoryview(data)[start:end], not deferred)
            if deferred:
                pending[kept] = entry.crc
    if expected_offset != cd_offset:
        raise UnexpectedArchiveDataError("bytes between the last entry and the central directory")
    for name, content in contents.items():
        if oversized_entry(name, content):  # only components may exceed the reference limit
            raise ArtifactEntryTooLargeError(name, len(content), MAX_ENTRY_BYTES)
    # Archive (central directory) order, which is what callers and error messages expect.
    return ArchiveContents({name: contents[name] for name in names}, pending)


def write_archive(entries: dict[str, bytes]) -> bytes:
    """Encode entries as the reference writes them: sorted, DEFLATE, DOS epoch, mode 0644."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_DOS_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = _UNIX
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(info, entries[name])
    return buffer.getvalue()
