"""The remote registry's signed index pages (skills-format.md §7.7), byte-compatible.

A remote registry publishes pages of ``{"schema_version": 1, "index": {...}, "signature":
{...}}``. The signature is the reference's (§2.6): Ed25519 over the ASCII of the SHA-256 hex of
the *compact* JSON of the ``index`` object, re-serialized from the parsed fields in their fixed
order with absent optional fields omitted. :func:`canonical_index_bytes` reproduces those bytes
exactly, so pages signed by either implementation verify on the other.

Stricter than the reference (it only checks non-emptiness, a semver triple and 64 hex chars):
skill ids and versions use the manifest value classes, text fields must be trimmed, versions
that denote the same semver are duplicates, ``artifact_bytes`` is bounded by the artifact size
limit, and ``artifact``/``next_page`` must be a plain relative path or an https URL with no
dot segments, backslashes, control characters, credentials or fragments — so an index cannot
point a client at another origin or outside the registry's directory by spelling tricks. The
signer's publisher is trimmed but not case-folded, so it must be a lowercase identifier (the
reference lowercases it), and its public key must be a canonical, non-small-order Ed25519 point.

Like :mod:`palyra.skills.verify`, parsing never edits the trust store: a first-seen signer
yields ``tofu_newly_pinned`` and the caller pins it (:meth:`SignedIndexPage.apply_pin`) only
once its whole operation has succeeded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import SplitResult, unquote, urljoin, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from palyra.skills.constants import I64_MAX, MAX_ARTIFACT_BYTES, SIGNATURE_ALGORITHM
from palyra.skills.errors import (
    ManifestValidationError,
    SkillError,
    TofuKeyMismatchError,
    TrustedPublisherKeyMismatchError,
    TrustStoreError,
    UntrustedPublisherError,
)
from palyra.skills.jsondoc import dumps_pretty, loads_strict
from palyra.skills.keys import SigningKey, key_id_for, strict_b64decode
from palyra.skills.trust import TrustDecision, TrustStore, normalize_publisher
from palyra.skills.values import Semver, parse_semver, require_canonical
from palyra.skills.values import skill_id as check_skill_id

MAX_INDEX_PAGE_BYTES: Final = 2 * 1024 * 1024
MAX_INDEX_ENTRIES: Final = 10_000
MAX_INDEX_ARTIFACT_BYTES: Final = MAX_ARTIFACT_BYTES
INDEX_SCHEMA_VERSION: Final = 1

_PAGE_FIELDS: Final = ("schema_version", "index", "signature")
_INDEX_FIELDS: Final = ("schema_version", "generated_at_unix_ms", "entries", "next_page")
_INDEX_OPTIONAL: Final = frozenset({"next_page"})
_ENTRY_FIELDS: Final = (
    "skill_id",
    "version",
    "publisher",
    "artifact",
    "artifact_sha256",
    "artifact_bytes",
)
_ENTRY_OPTIONAL: Final = frozenset({"artifact_bytes"})
_SIGNATURE_FIELDS: Final = (
    "algorithm",
    "publisher",
    "key_id",
    "public_key_base64",
    "payload_sha256",
    "signature_base64",
    "signed_at_unix_ms",
)
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_HTTPS_PORT: Final = 443


class RegistryIndexError(SkillError):
    """A registry index page is malformed, badly signed, or names an unusable location."""

    kind = "registry_index"


class RegistryEntryNotFound(RegistryIndexError):
    """The index has no entry for the requested skill (and version)."""

    kind = "not_found"


# Errors :meth:`TrustStore.decide` raises; they keep their class and kind, and get the
# reference's "remote registry signature" context in their message.
_TRUST_ERRORS: Final = (
    UntrustedPublisherError,
    TrustedPublisherKeyMismatchError,
    TofuKeyMismatchError,
    TrustStoreError,
)


@dataclass(frozen=True)
class RegistryEntry:
    """One downloadable artifact; ``artifact`` is relative to the page URL or an https URL."""

    skill_id: str
    version: str
    publisher: str
    artifact: str
    artifact_sha256: str
    artifact_bytes: int | None = None

    @property
    def semver(self) -> Semver:
        return _semver(self.version, f"entry '{self.skill_id}'")

    def to_json(self) -> dict[str, Any]:
        """The reference field order; ``artifact_bytes`` only when present."""
        body: dict[str, Any] = {
            "skill_id": self.skill_id,
            "version": self.version,
            "publisher": self.publisher,
            "artifact": self.artifact,
            "artifact_sha256": self.artifact_sha256,
        }
        if self.artifact_bytes is not None:
            body["artifact_bytes"] = self.artifact_bytes
        return body


@dataclass(frozen=True)
class RegistryIndex:
    """The signed part of a page: entries plus an optional link to the next page."""

    generated_at_unix_ms: int
    entries: tuple[RegistryEntry, ...]
    next_page: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The reference field order; ``next_page`` only when present."""
        body: dict[str, Any] = {
            "schema_version": INDEX_SCHEMA_VERSION,
            "generated_at_unix_ms": self.generated_at_unix_ms,
            "entries": [entry.to_json() for entry in self.entries],
        }
        if self.next_page is not None:
            body["next_page"] = self.next_page
        return body


@dataclass(frozen=True)
class IndexSignature:
    """The page's ``signature`` object: the same seven fields as ``signature.json`` (§2.6).

    As there, only ``payload_sha256`` is covered by the Ed25519 signature; ``key_id`` is
    re-derived and compared, ``publisher`` is checked through the trust store, and
    ``signed_at_unix_ms`` is informational (a reference format limitation).
    """

    algorithm: str
    publisher: str
    key_id: str
    public_key_base64: str
    payload_sha256: str
    signature_base64: str
    signed_at_unix_ms: int

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _SIGNATURE_FIELDS}


@dataclass(frozen=True)
class SignedIndexPage:
    """A verified page: its index, the signature that covered it, and the signer's trust."""

    index: RegistryIndex
    signature: IndexSignature
    trust_decision: TrustDecision

    @property
    def publisher(self) -> str:
        """The signer, normalized as the trust store keys it."""
        return normalize_publisher(self.signature.publisher, "remote registry signature publisher")

    @property
    def public_key_hex(self) -> str:
        raw = strict_b64decode(self.signature.public_key_base64)
        return raw.hex() if raw is not None else ""

    def apply_pin(self, store: TrustStore) -> bool:
        """Record the signer's TOFU pin in ``store`` if this page created one."""
        if self.trust_decision is TrustDecision.TOFU_NEWLY_PINNED:
            store.pin(self.publisher, self.public_key_hex)
            return True
        return False


# ---- canonical bytes and signing ------------------------------------------------------------


def canonical_index_bytes(index: RegistryIndex) -> bytes:
    """serde_json compact output of the ``index`` object: the bytes whose hash is signed."""
    # serde_json::to_vec: no whitespace, non-ASCII as raw UTF-8, control characters as
    # \n-style or lowercase \u00xx escapes -- which is exactly what json.dumps writes here.
    text = json.dumps(index.to_json(), separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def index_payload_sha256(index: RegistryIndex) -> str:
    """Lowercase SHA-256 hex of :func:`canonical_index_bytes` (the signed message, as ASCII)."""
    return hashlib.sha256(canonical_index_bytes(index)).hexdigest()


def sign_index(
    index: RegistryIndex,
    signing_key: SigningKey,
    publisher: str,
    *,
    signed_at_unix_ms: int | None = None,
) -> bytes:
    """A complete page document (pretty JSON) signing ``index`` as ``publisher``.

    The index and publisher are validated with the same rules :func:`parse_signed_index`
    applies, so a registry can never publish a page its own clients would refuse.
    """
    try:
        if normalize_publisher(publisher, "remote registry signature publisher") != publisher:
            raise RegistryIndexError(
                f"remote registry signature publisher must be written as "
                f"'{publisher.strip()}' (no surrounding whitespace)"
            )
    except TrustStoreError as exc:
        raise RegistryIndexError(exc.message.removeprefix("serialization failed: ")) from None
    _validate_index(index)
    if signed_at_unix_ms is None:
        signed_at_unix_ms = int(time.time() * 1000)
    if not -I64_MAX - 1 <= signed_at_unix_ms <= I64_MAX:
        raise RegistryIndexError("remote registry signature signed_at_unix_ms must fit in i64")
    payload = index_payload_sha256(index)
    signature = IndexSignature(
        algorithm=SIGNATURE_ALGORITHM,
        publisher=publisher,
        key_id=signing_key.key_id,
        public_key_base64=base64.b64encode(signing_key.public_key).decode("ascii"),
        payload_sha256=payload,
        signature_base64=base64.b64encode(signing_key.sign(payload.encode("ascii"))).decode(
            "ascii"
        ),
        signed_at_unix_ms=signed_at_unix_ms,
    )
    page = dumps_pretty(
        {
            "schema_version": INDEX_SCHEMA_VERSION,
            "index": index.to_json(),
            "signature": signature.to_json(),
        }
    )
    if len(page) > MAX_INDEX_PAGE_BYTES:
        raise RegistryIndexError(
            f"registry index page would exceed {MAX_INDEX_PAGE_BYTES} bytes ({len(page)}); "
            "split the entries across pages linked by next_page",
            details={"actual": len(page), "limit": MAX_INDEX_PAGE_BYTES},
        )
    return page


# ---- parsing ----------------------------------------------------------------------------------


def parse_signed_index(
    data: bytes, trust_store: TrustStore, *, allow_tofu: bool
) -> SignedIndexPage:
    """Parse and verify one page: shape, signature, signer trust, then index contents.

    Order: strict JSON shape (unknown/missing fields, types) → schema versions → algorithm →
    public key → key id → payload hash → Ed25519 signature → trust decision → entry rules.
    Authenticity and trust are settled before the content is judged, so an operator learns
    first who signed a page and whether that signer is trusted. ``trust_store`` is not edited.
    """
    if len(data) > MAX_INDEX_PAGE_BYTES:
        raise RegistryIndexError(
            f"registry index page exceeds {MAX_INDEX_PAGE_BYTES} bytes ({len(data)})",
            details={"actual": len(data), "limit": MAX_INDEX_PAGE_BYTES},
        )
    try:
        doc = loads_strict(data, max_bytes=MAX_INDEX_PAGE_BYTES, reject_duplicates=True)
    except (ValueError, RecursionError) as exc:
        # JsonDocumentError is a ValueError; a plain ValueError also escapes json for integers
        # longer than Python's int-conversion digit limit.
        raise RegistryIndexError(f"invalid registry index page: {exc}") from None
    page = _object(doc, "page")
    _fields(page, "page", _PAGE_FIELDS, frozenset())
    _schema_version(page["schema_version"], "page.schema_version")
    raw_index = _parse_index(page["index"])
    signature = _parse_signature(page["signature"])

    public_key = _verify(signature, raw_index)
    publisher = _signer(signature.publisher)
    try:
        decision = trust_store.decide(publisher, public_key.hex(), allow_tofu=allow_tofu)
    except _TRUST_ERRORS as exc:
        exc.message = f"remote registry signature: {exc.message}"
        exc.args = (exc.message,)
        raise
    _validate_index(raw_index)
    index = RegistryIndex(
        generated_at_unix_ms=raw_index.generated_at_unix_ms,
        entries=tuple(
            RegistryEntry(
                skill_id=entry.skill_id,
                version=entry.version,
                publisher=entry.publisher,
                artifact=entry.artifact,
                artifact_sha256=entry.artifact_sha256.lower(),
                artifact_bytes=entry.artifact_bytes,
            )
            for entry in raw_index.entries
        ),
        next_page=raw_index.next_page,
    )
    return SignedIndexPage(index=index, signature=signature, trust_decision=decision)


def _verify(signature: IndexSignature, index: RegistryIndex) -> bytes:
    """Every cryptographic check of §7.7; returns the raw 32-byte public key."""

    def fail(reason: str) -> RegistryIndexError:
        return RegistryIndexError(
            f"remote registry signature verification failed: {reason}",
            details={"reason": reason},
        )

    if signature.algorithm != SIGNATURE_ALGORITHM:
        raise fail(f"unsupported algorithm '{signature.algorithm}'")
    public = strict_b64decode(signature.public_key_base64)
    if public is None or len(public) != 32:
        raise fail("public key is not canonical base64 of 32 bytes")
    point_problem = public_key_problem(public)
    if point_problem is not None:
        raise fail(f"public key {point_problem}")
    verifier = Ed25519PublicKey.from_public_bytes(public)
    if signature.key_id != key_id_for(public):
        raise fail("key_id does not match the public key")
    # The reference hashes the index as parsed (any hex case kept), so this must too.
    if signature.payload_sha256 != index_payload_sha256(index):
        raise fail("payload_sha256 does not match the index")
    raw_signature = strict_b64decode(signature.signature_base64)
    if raw_signature is None or len(raw_signature) != 64:
        raise fail("signature is not canonical base64 of 64 bytes")
    try:
        verifier.verify(raw_signature, signature.payload_sha256.encode("ascii"))
    except (InvalidSignature, ValueError):
        raise fail("Ed25519 signature does not verify") from None
    return public


# Curve25519 field prime and the twisted Edwards constant d of Ed25519 (RFC 8032 §5.1).
_P: Final = 2**255 - 19
_D: Final = (-121665 * pow(121666, -1, 2**255 - 19)) % (2**255 - 19)
_SQRT_M1: Final = pow(2, (2**255 - 20) // 4, 2**255 - 19)


def _edwards_add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    """Affine addition on -x²+y² = 1+dx²y²; complete (d is not a square), so no exceptions."""
    (x1, y1), (x2, y2) = a, b
    t = _D * x1 * x2 * y1 * y2 % _P
    x3 = (x1 * y2 + y1 * x2) * pow(1 + t, -1, _P) % _P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, -1, _P) % _P
    return (x3, y3)


def public_key_problem(public: bytes) -> str | None:
    """Why 32 bytes are not an acceptable Ed25519 public key, or ``None``.

    ``cryptography`` accepts any 32 bytes and only fails later at verification, so the point
    is decompressed here as dalek's ``VerifyingKey::from_bytes`` does (y on the curve). This is
    stricter than dalek in two ways no honestly generated key can trip: the encoding must be
    canonical (y < p, no "negative zero" x), so one point has one key id; and small-order
    points are refused, since anyone can forge signatures that verify under them.
    """
    if len(public) != 32:
        return "must be 32 bytes"
    encoded = int.from_bytes(public, "little")
    sign, y = encoded >> 255, encoded & ((1 << 255) - 1)
    if y >= _P:
        return "is not a canonical point encoding"
    x2 = (y * y - 1) * pow(_D * y * y + 1, -1, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return "is not a valid Ed25519 point"
    if x == 0 and sign:
        return "is not a canonical point encoding"
    if x & 1 != sign:
        x = _P - x
    point = (x, y)
    for _ in range(3):
        point = _edwards_add(point, point)
    if point == (0, 1):
        return "is a small-order Ed25519 point"
    return None


def _signer(raw: str) -> str:
    """The trust-store form of the signer's name (trimmed identifier, lowercase only)."""
    try:
        return normalize_publisher(raw, "remote registry signature publisher")
    except TrustStoreError as exc:
        raise RegistryIndexError(exc.message.removeprefix("serialization failed: ")) from None


# ---- shape ----------------------------------------------------------------------------------


def _shape_error(message: str) -> RegistryIndexError:
    return RegistryIndexError(f"invalid registry index page: {message}")


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _shape_error(f"{where} must be a JSON object")
    return value


def _fields(
    doc: dict[str, Any], where: str, names: tuple[str, ...], optional: frozenset[str]
) -> None:
    for name in doc:
        if name not in names:
            raise _shape_error(f"unknown field `{name}` in {where}")
    for name in names:
        if name not in doc and name not in optional:
            raise _shape_error(f"missing field `{name}` in {where}")


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _shape_error(f"{where} must be a string")
    if not _encodable(value):
        # A lone surrogate escape (``"\\ud800"``): serde_json refuses it, and it has no UTF-8.
        raise _shape_error(f"{where} is not valid Unicode")
    return value


def _integer(value: Any, where: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _shape_error(f"{where} must be an integer in [{low}, {high}]")
    return value


def _schema_version(value: Any, where: str) -> None:
    if type(value) is not int or value != INDEX_SCHEMA_VERSION:
        raise RegistryIndexError(
            f"unsupported registry index schema version in {where} "
            f"(expected {INDEX_SCHEMA_VERSION})"
        )


def _optional(doc: dict[str, Any], name: str) -> Any:
    """serde's ``Option``: an absent field and an explicit ``null`` both mean "none"."""
    return doc.get(name)


def _parse_index(value: Any) -> RegistryIndex:
    doc = _object(value, "index")
    _fields(doc, "index", _INDEX_FIELDS, _INDEX_OPTIONAL)
    _schema_version(doc["schema_version"], "index.schema_version")
    generated = _integer(
        doc["generated_at_unix_ms"], "index.generated_at_unix_ms", -I64_MAX - 1, I64_MAX
    )
    raw_entries = doc["entries"]
    if not isinstance(raw_entries, list):
        raise _shape_error("index.entries must be a JSON array")
    if len(raw_entries) > MAX_INDEX_ENTRIES:
        raise RegistryIndexError(
            f"registry index has too many entries ({len(raw_entries)} > {MAX_INDEX_ENTRIES})",
            details={"actual": len(raw_entries), "limit": MAX_INDEX_ENTRIES},
        )
    entries = tuple(_parse_entry(item, f"index.entries[{i}]") for i, item in enumerate(raw_entries))
    next_page = _optional(doc, "next_page")
    if next_page is not None:
        next_page = _string(next_page, "index.next_page")
    return RegistryIndex(generated_at_unix_ms=generated, entries=entries, next_page=next_page)


def _parse_entry(value: Any, where: str) -> RegistryEntry:
    doc = _object(value, where)
    _fields(doc, where, _ENTRY_FIELDS, _ENTRY_OPTIONAL)
    size = _optional(doc, "artifact_bytes")
    if size is not None:
        # Shape only (a u64, as the reference); the tighter bound is an entry rule.
        size = _integer(size, f"{where}.artifact_bytes", 0, 2**64 - 1)
    return RegistryEntry(
        skill_id=_string(doc["skill_id"], f"{where}.skill_id"),
        version=_string(doc["version"], f"{where}.version"),
        publisher=_string(doc["publisher"], f"{where}.publisher"),
        artifact=_string(doc["artifact"], f"{where}.artifact"),
        artifact_sha256=_string(doc["artifact_sha256"], f"{where}.artifact_sha256"),
        artifact_bytes=size,
    )


def _parse_signature(value: Any) -> IndexSignature:
    doc = _object(value, "signature")
    _fields(doc, "signature", _SIGNATURE_FIELDS, frozenset())
    strings = {
        name: _string(doc[name], f"signature.{name}")
        for name in _SIGNATURE_FIELDS
        if name != "signed_at_unix_ms"
    }
    signed_at = _integer(
        doc["signed_at_unix_ms"], "signature.signed_at_unix_ms", -I64_MAX - 1, I64_MAX
    )
    return IndexSignature(**strings, signed_at_unix_ms=signed_at)


# ---- entry rules ----------------------------------------------------------------------------


def _semver(version: str, where: str) -> Semver:
    try:
        return parse_semver("version", version)
    except ManifestValidationError as exc:
        raise RegistryIndexError(
            f"invalid registry index: {where}: {_reason(exc)}", details={"version": version}
        ) from None


def _reason(exc: ManifestValidationError) -> str:
    return exc.message.removeprefix("manifest validation failed: ")


def _validate_index(index: RegistryIndex) -> None:
    """The content rules of an index; shared by signing and parsing."""

    def fail(where: str, reason: str) -> RegistryIndexError:
        return RegistryIndexError(f"invalid registry index: {where}: {reason}")

    if type(index.generated_at_unix_ms) is not int or not (
        -I64_MAX - 1 <= index.generated_at_unix_ms <= I64_MAX
    ):
        raise fail("generated_at_unix_ms", "must be a 64-bit integer")
    if len(index.entries) > MAX_INDEX_ENTRIES:
        raise RegistryIndexError(
            f"registry index has too many entries ({len(index.entries)} > {MAX_INDEX_ENTRIES})",
            details={"actual": len(index.entries), "limit": MAX_INDEX_ENTRIES},
        )
    seen: dict[tuple[str, Semver], str] = {}
    for i, entry in enumerate(index.entries):
        where = f"entries[{i}]"
        try:
            check_skill_id(entry.skill_id)
            require_canonical("publisher", entry.publisher)
        except ManifestValidationError as exc:
            raise fail(where, _reason(exc)) from None
        version = _semver(entry.version, f"{where}.version")
        if not _encodable(entry.publisher):
            raise fail(f"{where}.publisher", "is not valid Unicode")
        problem = ref_problem(entry.artifact)
        if problem is not None:
            raise fail(f"{where}.artifact", problem)
        if not _SHA256_HEX.fullmatch(entry.artifact_sha256):
            raise fail(f"{where}.artifact_sha256", "must be 64 hexadecimal characters")
        size = entry.artifact_bytes
        if size is not None and (
            type(size) is not int or not 0 <= size <= MAX_INDEX_ARTIFACT_BYTES
        ):
            raise fail(
                f"{where}.artifact_bytes",
                f"must be an integer in [0, {MAX_INDEX_ARTIFACT_BYTES}]",
            )
        key = (entry.skill_id, version)
        if key in seen:
            raise RegistryIndexError(
                f"invalid registry index: duplicate entry for {entry.skill_id} "
                f"{entry.version} (also listed as version {seen[key]})",
                details={"skill_id": entry.skill_id, "version": entry.version},
            )
        seen[key] = entry.version
    if index.next_page is not None:
        problem = ref_problem(index.next_page)
        if problem is not None:
            raise fail("next_page", problem)


# ---- locations --------------------------------------------------------------------------------


def _encodable(text: str) -> bool:
    """False for lone surrogates: they have no UTF-8 form, so they cannot be signed."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _bad_char(text: str) -> str | None:
    """Characters that URL parsers silently drop or that servers reinterpret."""
    if not _encodable(text):
        return "is not valid Unicode"
    for ch in text:
        if ch == "\x00":
            return "contains NUL"
        if ch == "\\":
            return "contains a backslash"
        if ord(ch) < 0x20 or ord(ch) == 0x7F or ch.isspace():
            return "contains whitespace or a control character"
    if "#" in text:
        return "contains a fragment ('#')"
    return None


def _segment_problem(segment: str) -> str | None:
    decoded = unquote(segment)
    if decoded in (".", ".."):
        return "contains a '.' or '..' segment"
    if "\\" in decoded or "\x00" in decoded or "/" in decoded:
        return "contains an encoded '/', '\\' or NUL"
    return None


def _split(url: str) -> SplitResult | str:
    """``urlsplit`` plus the port check it defers; a reason string when unusable."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return "is not a valid URL"
    return parts


def ref_problem(ref: str) -> str | None:
    """Why ``ref`` is not an acceptable ``artifact``/``next_page`` value, or ``None``.

    Accepted: a relative path (``a/b.palyra-skill``, optional ``?query``; no leading ``/``, no
    empty, ``.`` or ``..`` segments, no ``:`` in the first segment so it cannot read as a
    scheme) or an absolute ``https://host[:port]/…`` URL without credentials.
    """
    if not ref:
        return "cannot be empty"
    bad = _bad_char(ref)
    if bad is not None:
        return bad
    parts = _split(ref)
    if isinstance(parts, str):
        return parts
    if parts.scheme or ref.startswith("//"):
        if parts.scheme != "https" or not ref.startswith("https://"):
            return "must be a relative path or an https:// URL"
        if not parts.hostname or "@" in parts.netloc:
            return "must name a host and carry no credentials"
        segments = parts.path.split("/")[1:]
    else:
        if ref.startswith("/"):
            return "must be a relative path (no leading '/')"
        segments = parts.path.split("/")
        if any(segment == "" for segment in segments):
            return "must not contain empty path segments"
        if ":" in segments[0]:
            return "must not contain ':' in its first segment"
    for segment in segments:
        problem = _segment_problem(segment)
        if problem is not None:
            return problem
    return None


def _origin(parts: SplitResult) -> tuple[str, str, int]:
    return (parts.scheme, (parts.hostname or "").lower(), parts.port or _HTTPS_PORT)


def resolve_page_url(page_url: str, ref: str) -> str:
    """Resolve ``ref`` (a ``next_page`` or ``artifact``) against the URL of its page.

    The result must be https and share the page's origin (scheme, host, effective port): a
    registry may not send its clients to another server, even one it names with an absolute
    URL, nor downgrade them to plain http.
    """
    if _bad_char(page_url) is not None:
        raise RegistryIndexError(f"registry index page URL is invalid: {page_url!r}")
    page = _split(page_url)
    if isinstance(page, str) or page.scheme != "https" or not page.hostname:
        raise RegistryIndexError(f"registry index page URL must be https: {page_url!r}")
    if "@" in page.netloc:
        raise RegistryIndexError("registry index page URL must not carry credentials")
    problem = ref_problem(ref)
    if problem is not None:
        raise RegistryIndexError(
            f"registry index reference {ref!r} {problem}", details={"reference": ref}
        )
    resolved = urljoin(page_url, ref)
    parts = _split(resolved)
    if isinstance(parts, str) or parts.scheme != "https":
        raise RegistryIndexError(
            f"registry index reference {ref!r} does not resolve to an https URL",
            details={"reference": ref},
        )
    if _origin(parts) != _origin(page):
        raise RegistryIndexError(
            f"registry index reference {ref!r} leaves the registry origin "
            f"{page.scheme}://{page.netloc}",
            details={"reference": ref, "resolved": resolved},
        )
    return resolved


# ---- selection --------------------------------------------------------------------------------


def select_entry(
    entries: Iterable[RegistryEntry], skill_id: str, version: str | None = None
) -> RegistryEntry:
    """The entry for ``skill_id``: exactly ``version`` if given, else the highest semver.

    Versions compare as integer triples, so ``10.0.0`` beats ``9.0.0`` (the reference daemon
    compared strings and got this wrong).
    """
    candidates = [entry for entry in entries if entry.skill_id == skill_id]
    if version is not None:
        candidates = [entry for entry in candidates if entry.version == version]
    if not candidates:
        wanted = f"{skill_id} {version}" if version is not None else skill_id
        raise RegistryEntryNotFound(
            f"registry index has no entry for {wanted}",
            details={"skill_id": skill_id, "version": version},
        )
    return max(candidates, key=lambda entry: entry.semver)
