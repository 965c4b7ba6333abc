"""Loads the hostile-artifact corpus (``artifacts/*.toml``) and builds each case's artifact.

Why a builder and not checked-in ``.palyra-skill`` files: every hostile artifact is the
known-good demo skill of ``daemon_fixtures`` with exactly one named defect, built from real
parts (real ZIP bytes, real Ed25519 signatures over the real payload hash). Unless a case's
mutation is *about* the signature, the hostile bytes are correctly signed by the publisher's
key, so a refusal proves the defect itself is caught — not some incidental breakage. The ZIP
writer below is independent of :mod:`palyra.skills.archive`, so it can emit what no sane
writer does (lying headers, symlink modes, descriptors, prefixes).

Case files are validated strictly (unknown keys, unknown mutations or parameters fail the
load), so a typo cannot silently turn a hostile case into a harmless one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import stat
import struct
import tomllib
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import daemon_fixtures as F
from palyra.skills.digests import entry_digests
from palyra.skills.keys import SigningKey
from palyra.skills.payload import payload_sha256
from palyra.skills.sbom import generate_provenance, generate_sbom
from palyra.skills.signature import SkillSignature

CASES_DIR = Path(__file__).resolve().parent / "artifacts"
CATEGORIES = (
    "archive",
    "signature",
    "manifest",
    "sbom_provenance",
    "trust",
    "capability_escalation",
    "downgrade",
    "reinstall",
)
OUTCOMES = ("refused", "held", "quarantined", "unchanged")
KEYS: dict[str, SigningKey] = {
    "base": F.KEY,
    "other": F.OTHER_KEY,
    "third": SigningKey(bytes([0x0B]) * 32),
}
SIGNED_AT = 1_730_000_000_000
MODULE_ENTRY = "modules/module.wasm"

Params = Mapping[str, Any]


# ---- case files -------------------------------------------------------------------------------


class CaseFileError(ValueError):
    """A case file is malformed (a corpus bug, never a product outcome)."""


def _take(table: Mapping[str, Any], allowed: set[str], where: str) -> dict[str, Any]:
    unknown = set(table) - allowed
    if unknown:
        raise CaseFileError(f"{where}: unknown key(s) {sorted(unknown)}")
    return dict(table)


def _str_tuple(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CaseFileError(f"{where} must be a list of strings")
    return tuple(value)


@dataclass(frozen=True)
class Installed:
    """A known-good version installed (with TOFU) before the hostile attempt."""

    version: str
    hosts: tuple[str, ...] = ()
    extra: str = ""


@dataclass(frozen=True)
class Setup:
    installed: tuple[Installed, ...] = ()
    trust_tofu: dict[str, str] = field(default_factory=dict)  # publisher → key name
    trust_allowlist: dict[str, tuple[str, ...]] = field(default_factory=dict)
    allow_tofu: bool = True
    update: bool = False  # pass update_of=<skill id>
    via: str = "file"  # install_file | install_artifact (bytes)


@dataclass(frozen=True)
class ArtifactSpec:
    version: str = "1.0.0"
    hosts: tuple[str, ...] = ()
    extra: str = ""  # TOML appended to the demo manifest
    replace: tuple[tuple[str, str], ...] = ()  # first occurrence
    replace_all: tuple[tuple[str, str], ...] = ()
    key: str = "base"
    mutation: str = "none"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Expect:
    outcome: str
    kind: str | None = None
    held: dict[str, list[str]] | None = None
    reason_prefix: str | None = None


@dataclass(frozen=True)
class Case:
    stem: str
    description: str
    category: str
    setup: Setup
    artifact: ArtifactSpec
    expect: Expect


def _pairs(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list):
        raise CaseFileError(f"{where} must be a list of [old, new] pairs")
    pairs = []
    for item in value:
        pair = _str_tuple(item, where)
        if len(pair) != 2:
            raise CaseFileError(f"{where} must be a list of [old, new] pairs")
        pairs.append((pair[0], pair[1]))
    return tuple(pairs)


def load_case(path: Path) -> Case:
    doc = _take(
        tomllib.loads(path.read_text("utf-8")),
        {"description", "category", "setup", "artifact", "expect"},
        path.name,
    )
    description = doc.get("description")
    category = doc.get("category")
    if not isinstance(description, str) or not description.strip():
        raise CaseFileError(f"{path.name}: description is required")
    if category not in CATEGORIES:
        raise CaseFileError(f"{path.name}: category must be one of {CATEGORIES}")

    raw_setup = _take(
        doc.get("setup", {}),
        {"installed", "trust_tofu", "trust_allowlist", "allow_tofu", "update", "via"},
        f"{path.name} [setup]",
    )
    installed = []
    for item in raw_setup.get("installed", []):
        if isinstance(item, str):
            installed.append(Installed(item))
        else:
            entry = _take(item, {"version", "hosts", "extra"}, f"{path.name} setup.installed")
            installed.append(
                Installed(
                    entry["version"],
                    _str_tuple(entry.get("hosts", []), "hosts"),
                    entry.get("extra", ""),
                )
            )
    for name in [*raw_setup.get("trust_tofu", {}).values()] + [
        key for keys in raw_setup.get("trust_allowlist", {}).values() for key in keys
    ]:
        if name not in KEYS:
            raise CaseFileError(f"{path.name}: unknown key name '{name}'")
    via = raw_setup.get("via", "file")
    if via not in ("file", "bytes"):
        raise CaseFileError(f"{path.name}: setup.via must be 'file' or 'bytes'")
    setup = Setup(
        installed=tuple(installed),
        trust_tofu=dict(raw_setup.get("trust_tofu", {})),
        trust_allowlist={
            publisher: _str_tuple(keys, "trust_allowlist")
            for publisher, keys in raw_setup.get("trust_allowlist", {}).items()
        },
        allow_tofu=bool(raw_setup.get("allow_tofu", True)),
        update=bool(raw_setup.get("update", False)),
        via=via,
    )

    raw_artifact = _take(
        doc.get("artifact", {}),
        {"version", "hosts", "extra", "replace", "replace_all", "key", "mutation", "params"},
        f"{path.name} [artifact]",
    )
    mutation = raw_artifact.get("mutation", "none")
    if mutation not in MUTATIONS:
        raise CaseFileError(f"{path.name}: unknown mutation '{mutation}'")
    params = dict(raw_artifact.get("params", {}))
    allowed_params = MUTATIONS[mutation][1]
    if set(params) - allowed_params:
        raise CaseFileError(
            f"{path.name}: mutation '{mutation}' takes {sorted(allowed_params)}, "
            f"not {sorted(set(params) - allowed_params)}"
        )
    if raw_artifact.get("key", "base") not in KEYS:
        raise CaseFileError(f"{path.name}: unknown key name")
    artifact = ArtifactSpec(
        version=raw_artifact.get("version", "1.0.0"),
        hosts=_str_tuple(raw_artifact.get("hosts", []), "hosts"),
        extra=raw_artifact.get("extra", ""),
        replace=_pairs(raw_artifact.get("replace", []), "replace"),
        replace_all=_pairs(raw_artifact.get("replace_all", []), "replace_all"),
        key=raw_artifact.get("key", "base"),
        mutation=mutation,
        params=params,
    )

    raw_expect = _take(
        doc.get("expect", {}), {"outcome", "kind", "held", "reason_prefix"}, f"{path.name}"
    )
    outcome = raw_expect.get("outcome")
    if outcome not in OUTCOMES:
        raise CaseFileError(f"{path.name}: expect.outcome must be one of {OUTCOMES}")
    kind = raw_expect.get("kind")
    if (outcome == "refused") != isinstance(kind, str):
        raise CaseFileError(f"{path.name}: expect.kind is required exactly for refusals")
    held = raw_expect.get("held")
    if (outcome == "held") != (held is not None):
        raise CaseFileError(f"{path.name}: expect.held is required exactly for held updates")
    expect = Expect(outcome, kind, held, raw_expect.get("reason_prefix"))
    return Case(path.stem, description, category, setup, artifact, expect)


def case_paths() -> list[Path]:
    return sorted(CASES_DIR.glob("*.toml"))


# ---- an independent ZIP writer ----------------------------------------------------------------

_LFH = struct.Struct("<IHHHHHIIIHH")
_CDH = struct.Struct("<IHHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<IHHHHIIH")
_DOS_DATE_1980 = (1 << 5) | 1
_UNIX = 3
_FLAG_UTF8 = 0x0800
_FLAG_DESCRIPTOR = 0x0008
STORED, DEFLATED = 0, 8
_MODES = {
    "file": stat.S_IFREG | 0o644,
    "symlink": stat.S_IFLNK | 0o777,
    "fifo": stat.S_IFIFO | 0o644,
    "block_device": stat.S_IFBLK | 0o644,
    "dir": stat.S_IFDIR | 0o755,
}


def deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


@dataclass
class RawEntry:
    """One ZIP entry; every field an attacker controls can be overridden."""

    name: bytes
    data: bytes
    method: int = DEFLATED
    flags: int = 0
    host: int = _UNIX
    mode: int = _MODES["file"]
    local_name: bytes | None = None
    local_extra: bytes = b""
    central_extra: bytes = b""
    comment: bytes = b""
    size: int | None = None  # declared uncompressed size (both headers)
    crc: int | None = None  # declared CRC-32 (both headers)
    payload: bytes | None = None  # stored bytes after the local header
    descriptor: bytes | None = None  # bytes after the payload (flag 0x08 is the caller's job)
    local_zero_sizes: bool = False  # as streaming writers do with a data descriptor


def assemble(entries: list[RawEntry]) -> bytes:
    """Local entries from byte 0, then the central directory, then a comment-less end record."""
    out = bytearray()
    central = bytearray()
    for e in entries:
        if e.payload is not None:
            payload = e.payload
        else:
            payload = deflate(e.data) if e.method == DEFLATED else e.data
        crc = zlib.crc32(e.data) if e.crc is None else e.crc
        size = len(e.data) if e.size is None else e.size
        local_name = e.name if e.local_name is None else e.local_name
        local = (0, 0, 0) if e.local_zero_sizes else (crc, len(payload), size)
        offset = len(out)
        out += _LFH.pack(
            0x04034B50, 20, e.flags, e.method, 0, _DOS_DATE_1980, *local,
            len(local_name), len(e.local_extra),
        )  # fmt: skip
        out += local_name + e.local_extra + payload + (e.descriptor or b"")
        central += _CDH.pack(
            0x02014B50, (e.host << 8) | 20, 20, e.flags, e.method, 0, _DOS_DATE_1980, crc,
            len(payload), size, len(e.name), len(e.central_extra), len(e.comment), 0, 0,
            e.mode << 16, offset,
        )  # fmt: skip
        central += e.name + e.central_extra + e.comment
    cd_offset = len(out)
    out += central
    out += _EOCD.pack(0x06054B50, 0, 0, len(entries), len(entries), len(central), cd_offset, 0)
    return bytes(out)


# ---- the known-good parts and how they are sealed ---------------------------------------------


def _toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are a subset of TOML's for what we emit)."""
    return json.dumps(value)


def integrity_block(pairs: list[tuple[str, str]]) -> str:
    return "".join(
        f"\n[[integrity.files]]\npath = {_toml_string(p)}\nsha256 = {_toml_string(d)}\n"
        for p, d in pairs
    )


def good_manifest(
    version: str, hosts: tuple[str, ...] = (), extra: str = "", spec: ArtifactSpec | None = None
) -> str:
    text = F.manifest(version, hosts=hosts, extra=extra)
    for old, new in spec.replace if spec else ():
        if old not in text:
            raise CaseFileError(f"replace: {old!r} is not in the demo manifest")
        text = text.replace(old, new, 1)
    for old, new in spec.replace_all if spec else ():
        if old not in text:
            raise CaseFileError(f"replace_all: {old!r} is not in the demo manifest")
        text = text.replace(old, new)
    return text


@dataclass
class Parts:
    """The demo skill as named entries, before sealing (integrity, signature, ZIP)."""

    manifest: str
    files: dict[str, bytes]  # every entry but skill.toml and signature.json
    key: SigningKey
    publisher: str = F.PUBLISHER
    version: str = "1.0.0"
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → RawEntry fields

    @classmethod
    def of(cls, spec: ArtifactSpec) -> Parts:
        files = {MODULE_ENTRY: F.MODULE}
        digests = entry_digests(files)
        files["sbom.cdx.json"] = generate_sbom(F.SKILL_ID, spec.version, F.PUBLISHER, digests)
        files["provenance.json"] = generate_provenance(
            F.SKILL_ID, spec.version, F.PUBLISHER, digests
        )
        manifest = good_manifest(spec.version, spec.hosts, spec.extra, spec)
        found = re.search(r'^publisher = "([^"]*)"', manifest, re.MULTILINE)
        publisher = found.group(1) if found else F.PUBLISHER
        return cls(manifest, files, KEYS[spec.key], publisher, spec.version)

    def refresh_metadata(self) -> None:
        """Regenerate the SBOM and provenance for the current modules and assets."""
        digests = entry_digests(
            {n: d for n, d in self.files.items() if n not in ("sbom.cdx.json", "provenance.json")}
        )
        args = (F.SKILL_ID, self.version, self.publisher, digests)
        self.files["sbom.cdx.json"] = generate_sbom(*args)
        self.files["provenance.json"] = generate_provenance(*args)

    def integrity(self) -> list[tuple[str, str]]:
        return list(entry_digests(self.files).items())

    def manifest_bytes(self, integrity: list[tuple[str, str]] | None = None) -> bytes:
        pairs = self.integrity() if integrity is None else integrity
        return (self.manifest + integrity_block(pairs)).encode("utf-8")

    def entries(self, manifest: bytes | None = None) -> dict[str, bytes]:
        return {**self.files, "skill.toml": manifest or self.manifest_bytes()}

    def signature(self, entries: Mapping[str, bytes]) -> dict[str, Any]:
        payload = payload_sha256(entries)
        return SkillSignature.create(self.key, self.publisher, payload, SIGNED_AT).to_json()

    def signed(self, entries: dict[str, bytes] | None = None) -> dict[str, bytes]:
        body = self.entries() if entries is None else entries
        return {**body, "signature.json": _json_bytes(self.signature(body))}

    def raws(self, entries: Mapping[str, bytes]) -> list[RawEntry]:
        raws = []
        for name in sorted(entries):
            encoded = name.encode("utf-8")
            raw = RawEntry(encoded, entries[name], flags=0 if encoded.isascii() else _FLAG_UTF8)
            for attribute, value in self.overrides.get(name, {}).items():
                setattr(raw, attribute, value)
            raws.append(raw)
        return raws

    def archive(self, entries: Mapping[str, bytes] | None = None) -> bytes:
        return assemble(self.raws(self.signed() if entries is None else entries))


def _json_bytes(doc: Any) -> bytes:
    return json.dumps(doc, indent=2).encode("utf-8")


# ---- mutations --------------------------------------------------------------------------------


def _data(p: Params, default: bytes = b"hostile") -> bytes:
    """``data`` (text), ``data_hex``, or ``fill_size`` bytes of ``fill`` (a one-char string)."""
    if "data" in p:
        return str(p["data"]).encode("utf-8")
    if "data_hex" in p:
        return bytes.fromhex(p["data_hex"])
    if "fill_size" in p:
        return str(p.get("fill", "\0")).encode("latin-1") * int(p["fill_size"])
    return default


_RAW_FIELDS = {
    "method",
    "flags",
    "host",
    "mode",
    "declared_size",
    "crc",
    "comment",
    "local_name",
    "raw_name_hex",
    "local_extra_hex",
    "central_extra_hex",
    "descriptor",
}
_DATA_FIELDS = {"data", "data_hex", "fill_size", "fill"}


def _raw_overrides(p: Params, data: bytes) -> dict[str, Any]:
    """Translate case parameters into :class:`RawEntry` field overrides."""
    out: dict[str, Any] = {}
    if "method" in p:
        method = p["method"]
        out["method"] = {"stored": STORED, "deflate": DEFLATED}.get(method, method)
        if out["method"] not in (STORED, DEFLATED):
            out["payload"] = data  # bytes "compressed" with a method nobody should inflate
    for name in ("flags", "host", "crc"):
        if name in p:
            out[name] = int(p[name])
    if "mode" in p:
        out["mode"] = _MODES[p["mode"]] if isinstance(p["mode"], str) else int(p["mode"])
    if "declared_size" in p:
        out["size"] = int(p["declared_size"])
    if "comment" in p:
        out["comment"] = str(p["comment"]).encode()
    if "local_name" in p:
        out["local_name"] = str(p["local_name"]).encode()
    if "raw_name_hex" in p:
        out["name"] = bytes.fromhex(p["raw_name_hex"])
    if "local_extra_hex" in p:
        out["local_extra"] = bytes.fromhex(p["local_extra_hex"])
    if "central_extra_hex" in p:
        out["central_extra"] = bytes.fromhex(p["central_extra_hex"])
    if "descriptor" in p:  # "truthful" | "lying_crc" | "lying_size"
        crc, size = zlib.crc32(data), len(data)
        compressed = len(deflate(data)) if out.get("method", DEFLATED) == DEFLATED else size
        if p["descriptor"] == "lying_crc":
            crc ^= 0x5A5A5A5A
        elif p["descriptor"] == "lying_size":
            size += 1
        out["flags"] = out.get("flags", 0) | _FLAG_DESCRIPTOR
        out["local_zero_sizes"] = True
        out["descriptor"] = struct.pack("<IIII", 0x08074B50, crc, compressed, size)
    return out


def m_none(parts: Parts, p: Params) -> bytes:
    """The known-good artifact (hostility, if any, lives in the spec's manifest edits)."""
    return parts.archive()


def m_add_entry(parts: Parts, p: Params) -> bytes:
    """A signed extra entry: listed in integrity and covered by the signature, so only the
    archive or layout rules can refuse it."""
    data = _data(p)
    parts.files[p["name"]] = data
    parts.overrides[p["name"]] = _raw_overrides(p, data)
    return parts.archive()


def m_modify_entry(parts: Parts, p: Params) -> bytes:
    """Change how one existing, correctly signed entry is stored in the ZIP."""
    entries = parts.signed()
    target = p["target"]
    if target not in entries:
        raise CaseFileError(f"modify_entry: no entry {target}")
    parts.overrides[target] = _raw_overrides(p, entries[target])
    return parts.archive(entries)


def m_duplicate_entry(parts: Parts, p: Params) -> bytes:
    """A second entry under an existing name (Janus: two readers, two contents)."""
    entries = parts.signed()
    raws = parts.raws(entries)
    raws.append(RawEntry(p["name"].encode(), _data(p)))
    return assemble(raws)


def m_surround(parts: Parts, p: Params) -> bytes:
    """Bytes before (``prefix``), after (``suffix``), or an archive comment, or a second
    complete archive appended (``concatenate``)."""
    archive = parts.archive()
    if "comment" in p:
        comment = str(p["comment"]).encode()
        archive = archive[:-2] + struct.pack("<H", len(comment)) + comment
    if p.get("concatenate"):
        archive += F.artifact("9.9.9")
    return (
        _data({"data": p.get("prefix", "")}, b"") + archive + _data({"data": p.get("suffix", "")})
    )


def m_truncate(parts: Parts, p: Params) -> bytes:
    return parts.archive()[: -int(p["drop"])]


def m_many_entries(parts: Parts, p: Params) -> bytes:
    """Many tiny signed assets (each listed in integrity)."""
    for index in range(int(p["count"])):
        parts.files[f"assets/f{index:04d}.txt"] = b"x"
    return parts.archive()


def m_nested_archive(parts: Parts, p: Params) -> bytes:
    """A complete, valid skill artifact stored inside this one under ``name``."""
    parts.files[p["name"]] = F.artifact("1.0.0")
    parts.refresh_metadata()  # the SBOM and provenance describe the nested bytes honestly
    return parts.archive()


def m_remove_entry(parts: Parts, p: Params) -> bytes:
    """Drop an entry; with ``stale_integrity`` the manifest still lists it."""
    name = p["name"]
    if name == "skill.toml":
        entries = parts.entries()
        del entries["skill.toml"]
        return parts.archive(parts.signed(entries))
    if name == "signature.json":
        return parts.archive(parts.entries())
    integrity = parts.integrity()
    del parts.files[name]
    manifest = parts.manifest_bytes(integrity if p.get("stale_integrity") else None)
    return parts.archive(parts.signed(parts.entries(manifest)))


def m_set_entry(parts: Parts, p: Params) -> bytes:
    """Replace (or add) an entry's bytes, re-sign; ``stale_integrity`` keeps the old digests."""
    integrity = parts.integrity()
    data = _data(p)
    if "json" in p:
        data = str(p["json"]).encode("utf-8")
    if "padded_json" in p:  # a valid JSON object followed by enough spaces to be oversize
        data = str(p["padded_json"]).encode() + b" " * int(p["pad"])
    parts.files[p["name"]] = data
    if p["name"] not in ("sbom.cdx.json", "provenance.json") and not p.get("stale_provenance"):
        parts.refresh_metadata()
    if "method" in p:
        parts.overrides[p["name"]] = _raw_overrides({"method": p["method"]}, data)
    manifest = parts.manifest_bytes(integrity if p.get("stale_integrity") else None)
    return parts.archive(parts.signed(parts.entries(manifest)))


def m_integrity_edit(parts: Parts, p: Params) -> bytes:
    """Edit the manifest's integrity list, then sign honestly over what is shipped."""
    pairs = parts.integrity()
    path, op = p["path"], p["op"]
    if op == "drop":
        pairs = [(n, d) for n, d in pairs if n != path]
    elif op == "add":
        pairs.append((path, hashlib.sha256(b"absent").hexdigest()))
    elif op == "wrong_digest":
        pairs = [(n, hashlib.sha256(b"other").hexdigest() if n == path else d) for n, d in pairs]
    elif op == "duplicate":
        pairs += [(n, d) for n, d in pairs if n == path]
    elif op == "uppercase":
        pairs = [(n, d.upper() if n == path else d) for n, d in pairs]
    elif op == "alias":  # the same entry spelled another way
        pairs = [(p["alias"] if n == path else n, d) for n, d in pairs]
    else:
        raise CaseFileError(f"integrity_edit: unknown op {op}")
    return parts.archive(parts.signed(parts.entries(parts.manifest_bytes(pairs))))


def m_manifest_bytes(parts: Parts, p: Params) -> bytes:
    """Byte-level edits of skill.toml (encodings, BOMs), integrity intact, signed."""
    data = parts.manifest_bytes()
    if "old" in p:
        old = str(p["old"]).encode()
        if old not in data:
            raise CaseFileError(f"manifest_bytes: {old!r} not in manifest")
        data = data.replace(old, bytes.fromhex(p["new_hex"]), 1)
    data = bytes.fromhex(p.get("prefix_hex", "")) + data
    return parts.archive(parts.signed(parts.entries(data)))


def m_huge_string(parts: Parts, p: Params) -> bytes:
    """Replace ``old`` with ``template`` whose ``{}`` becomes ``count`` copies of ``unit``."""
    old = str(p["old"])
    if old not in parts.manifest:
        raise CaseFileError(f"huge_string: {old!r} not in manifest")
    big = str(p["template"]).replace("{}", str(p["unit"]) * int(p["count"]))
    parts.manifest = parts.manifest.replace(old, big, 1)
    if "method" in p:  # stored: so the size limit, not the ratio guard, is what is tested
        parts.overrides["skill.toml"] = _raw_overrides({"method": p["method"]}, b"")
    return parts.archive()


def m_sign_with(parts: Parts, p: Params) -> bytes:
    """A signature made differently from what the document claims.

    ``signer`` signs; the document carries ``claimed_key``'s public key and ``key_id``'s id;
    ``message`` is what is signed: the payload hash's hex ASCII (correct), its raw digest
    bytes, the hash of other bytes, or the SHA-256 of the whole archive.
    """
    entries = parts.entries()
    doc = parts.signature(entries)
    signer = KEYS[p.get("signer", "base")]
    claimed = KEYS[p.get("claimed_key", "base")]
    key_id = KEYS[p.get("key_id", p.get("claimed_key", "base"))].key_id
    payload = doc["payload_sha256"]
    message = {
        "payload_hex": payload.encode("ascii"),
        "payload_digest_bytes": bytes.fromhex(payload),
        "other_payload": hashlib.sha256(b"other bytes").hexdigest().encode("ascii"),
        "archive_sha256": hashlib.sha256(parts.archive(entries)).hexdigest().encode("ascii"),
    }[p.get("message", "payload_hex")]
    doc["public_key_base64"] = base64.b64encode(claimed.public_key).decode()
    doc["key_id"] = key_id
    doc["signature_base64"] = base64.b64encode(signer.sign(message)).decode()
    if "publisher" in p:
        doc["publisher"] = p["publisher"]
    return parts.archive({**entries, "signature.json": _json_bytes(doc)})


def m_signature_edit(parts: Parts, p: Params) -> bytes:
    """Edit fields of an otherwise valid signature document."""
    entries = parts.entries()
    doc: dict[str, Any] = parts.signature(entries)
    signature = base64.b64decode(doc["signature_base64"])
    if "signature_bytes" in p:  # truncate or extend the real signature
        size = int(p["signature_bytes"])
        signature = (signature + bytes(size))[:size]
        doc["signature_base64"] = base64.b64encode(signature).decode()
    if p.get("signature_encoding") == "hex":
        doc["signature_base64"] = signature.hex()
    if p.get("signature_encoding") == "noncanonical":  # non-zero trailing bits
        text = doc["signature_base64"]
        doc["signature_base64"] = text[:-3] + chr(ord(text[-3]) + 1) + text[-2:]
    if p.get("public_key_encoding") == "hex":
        doc["public_key_base64"] = KEYS["base"].public_key_hex
    if p.get("payload_case") == "upper":
        doc["payload_sha256"] = doc["payload_sha256"].upper()
        doc["signature_base64"] = base64.b64encode(
            parts.key.sign(doc["payload_sha256"].encode())
        ).decode()
    for name in p.get("drop", []):
        del doc[name]
    doc.update(p.get("set", {}))
    return parts.archive({**entries, "signature.json": _json_bytes(doc)})


def m_signature_raw(parts: Parts, p: Params) -> bytes:
    """signature.json replaced by arbitrary bytes."""
    entries = parts.entries()
    if p.get("raw_signature"):
        doc = parts.signature(entries)
        data = base64.b64decode(doc["signature_base64"])
    elif p.get("duplicate_field"):
        text = _json_bytes(parts.signature(entries)).decode()
        data = text.replace("{", '{\n  "publisher": "evil",', 1).encode()
    else:
        data = _data(p, b"")
    return parts.archive({**entries, "signature.json": data})


Mutation = Callable[[Parts, Params], bytes]
MUTATIONS: dict[str, tuple[Mutation, set[str]]] = {
    "none": (m_none, set()),
    "add_entry": (m_add_entry, {"name"} | _DATA_FIELDS | _RAW_FIELDS),
    "modify_entry": (m_modify_entry, {"target"} | _RAW_FIELDS),
    "duplicate_entry": (m_duplicate_entry, {"name"} | _DATA_FIELDS),
    "surround": (m_surround, {"prefix", "suffix", "comment", "concatenate"}),
    "truncate": (m_truncate, {"drop"}),
    "many_entries": (m_many_entries, {"count"}),
    "nested_archive": (m_nested_archive, {"name"}),
    "remove_entry": (m_remove_entry, {"name", "stale_integrity"}),
    "set_entry": (
        m_set_entry,
        {"name", "json", "padded_json", "pad", "method", "stale_integrity", "stale_provenance"}
        | _DATA_FIELDS,
    ),
    "integrity_edit": (m_integrity_edit, {"path", "op", "alias"}),
    "manifest_bytes": (m_manifest_bytes, {"old", "new_hex", "prefix_hex"}),
    "huge_string": (m_huge_string, {"old", "template", "unit", "count", "method"}),
    "sign_with": (m_sign_with, {"signer", "claimed_key", "key_id", "message", "publisher"}),
    "signature_edit": (
        m_signature_edit,
        {"signature_bytes", "signature_encoding", "public_key_encoding", "payload_case"}
        | {"drop", "set"},
    ),
    "signature_raw": (m_signature_raw, {"raw_signature", "duplicate_field"} | _DATA_FIELDS),
}


def build_artifact(spec: ArtifactSpec) -> bytes:
    """The hostile bytes of one case."""
    mutation, _allowed = MUTATIONS[spec.mutation]
    return mutation(Parts.of(spec), spec.params)


def good_artifact(installed: Installed) -> bytes:
    """A known-good version of the demo skill, sealed by the same builder."""
    spec = ArtifactSpec(version=installed.version, hosts=installed.hosts, extra=installed.extra)
    return build_artifact(replace(spec, mutation="none"))
