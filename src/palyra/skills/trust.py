"""The publisher trust store: allowlisted keys and TOFU pins (§4), one JSON file.

The file format is the reference's, byte for byte (pretty JSON, sorted keys, no trailing
newline), so operators and reference tools can read it. Unlike the reference, writes are
atomic (temp file, fsync, rename, fsync of the directory) and the decision logic never mutates
the store: a caller pins a new key only once its whole operation has succeeded.
"""

from __future__ import annotations

import copy
import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from palyra.errors import IoFailure
from palyra.fsutil import atomic_write
from palyra.skills.errors import (
    ManifestValidationError,
    TofuKeyMismatchError,
    TrustedPublisherKeyMismatchError,
    TrustStoreError,
    UntrustedPublisherError,
)
from palyra.skills.jsondoc import JsonDocumentError, dumps_pretty, loads_strict
from palyra.skills.values import identifier

MAX_TRUST_STORE_BYTES = 4 * 1024 * 1024
_HEX = re.compile(r"[0-9a-f]+")


class TrustDecision(enum.StrEnum):
    ALLOWLISTED = "allowlisted"
    TOFU_PINNED = "tofu_pinned"
    TOFU_NEWLY_PINNED = "tofu_newly_pinned"


def normalize_publisher(raw: str, what: str = "trust-store publisher") -> str:
    """Trimmed identifier; uppercase is rejected rather than folded (as the reference)."""
    value = raw.strip()
    try:
        return identifier("publisher", value)
    except ManifestValidationError as exc:
        raise TrustStoreError(f"invalid {what} '{raw}': {exc.message}") from None


def normalize_key(raw: str, context: str) -> str:
    """Trimmed, lowercased hex of exactly 32 bytes."""
    value = raw.strip().lower()
    if not value or not _HEX.fullmatch(value) or len(value) % 2:
        raise TrustStoreError(f"{context}: trusted publisher key must be hex")
    if len(value) != 64:
        raise TrustStoreError(f"{context}: trusted publisher key must decode to 32 bytes")
    return value


@dataclass
class TrustStore:
    trusted_publishers: dict[str, list[str]] = field(default_factory=dict)
    tofu_publishers: dict[str, str] = field(default_factory=dict)

    # ---- loading and saving ---------------------------------------------------------------

    @classmethod
    def parse(cls, data: bytes, source: str = "<memory>") -> TrustStore:
        if not data.strip(b" \t\r\n"):
            return cls()
        try:
            doc = loads_strict(data, max_bytes=MAX_TRUST_STORE_BYTES, reject_duplicates=True)
        except JsonDocumentError as exc:
            raise TrustStoreError(f"failed to parse trust store {source}: {exc}") from None
        if not isinstance(doc, dict):
            raise TrustStoreError(f"failed to parse trust store {source}: expected an object")
        unknown = set(doc) - {"trusted_publishers", "tofu_publishers"}
        if unknown:
            raise TrustStoreError(
                f"failed to parse trust store {source}: unknown field `{sorted(unknown)[0]}`"
            )
        trusted = doc.get("trusted_publishers", {})
        tofu = doc.get("tofu_publishers", {})
        if not isinstance(trusted, dict) or not all(
            isinstance(keys, list) and all(isinstance(k, str) for k in keys)
            for keys in trusted.values()
        ):
            raise TrustStoreError(
                f"failed to parse trust store {source}: trusted_publishers must map "
                "publishers to lists of hex keys"
            )
        if not isinstance(tofu, dict) or not all(isinstance(k, str) for k in tofu.values()):
            raise TrustStoreError(
                f"failed to parse trust store {source}: tofu_publishers must map publishers "
                "to hex keys"
            )
        store = cls(trusted_publishers=trusted, tofu_publishers=tofu)
        store.normalize()
        return store

    @classmethod
    def load(cls, path: Path) -> TrustStore:
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_TRUST_STORE_BYTES + 1)
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            raise IoFailure(f"cannot read trust store {path}: {exc.strerror}") from None
        return cls.parse(data, str(path))

    def normalize(self) -> None:
        trusted: dict[str, list[str]] = {}
        for raw, keys in self.trusted_publishers.items():
            publisher = normalize_publisher(raw)
            if not keys:
                raise TrustStoreError(
                    f"trusted publisher '{publisher}' must include at least one key"
                )
            normalized = [
                normalize_key(key, f"invalid trusted key for publisher '{publisher}'")
                for key in keys
            ]
            trusted[publisher] = sorted(set(trusted.get(publisher, [])) | set(normalized))
        tofu: dict[str, str] = {}
        for raw, key in self.tofu_publishers.items():
            publisher = normalize_publisher(raw, "trust-store TOFU publisher")
            value = normalize_key(key, f"invalid TOFU key for publisher '{publisher}'")
            if tofu.get(publisher, value) != value:
                raise TrustStoreError(f"conflicting TOFU keys for publisher '{publisher}'")
            tofu[publisher] = value
        self.trusted_publishers = dict(sorted(trusted.items()))
        self.tofu_publishers = dict(sorted(tofu.items()))

    def to_json(self) -> dict[str, Any]:
        self.normalize()
        return {
            "trusted_publishers": self.trusted_publishers,
            "tofu_publishers": self.tofu_publishers,
        }

    def to_bytes(self) -> bytes:
        return dumps_pretty(self.to_json())

    def save(self, path: Path) -> None:
        atomic_write(path, self.to_bytes(), mode=0o644)

    # ---- decisions ------------------------------------------------------------------------

    def decide(self, publisher: str, key_hex: str, *, allow_tofu: bool) -> TrustDecision:
        """Allowlist first (no fallback to TOFU), then an existing pin, then TOFU if allowed."""
        self.normalize()
        key = key_hex.lower()
        if publisher in self.trusted_publishers:
            if key in self.trusted_publishers[publisher]:
                return TrustDecision.ALLOWLISTED
            raise TrustedPublisherKeyMismatchError(publisher)
        if publisher in self.tofu_publishers:
            if self.tofu_publishers[publisher] == key:
                return TrustDecision.TOFU_PINNED
            raise TofuKeyMismatchError(publisher)
        if allow_tofu:
            return TrustDecision.TOFU_NEWLY_PINNED
        raise UntrustedPublisherError(publisher)

    # ---- edits ----------------------------------------------------------------------------

    def pin(self, publisher: str, key_hex: str) -> None:
        publisher = normalize_publisher(publisher)
        key = normalize_key(key_hex, f"invalid TOFU key for publisher '{publisher}'")
        existing = self.tofu_publishers.get(publisher)
        if existing is not None and existing != key:
            raise TofuKeyMismatchError(publisher)
        self.tofu_publishers[publisher] = key
        self.normalize()

    def add_trusted_key(self, publisher: str, key_hex: str) -> None:
        publisher = normalize_publisher(publisher)
        key = normalize_key(key_hex, f"invalid trusted key for publisher '{publisher}'")
        self.trusted_publishers.setdefault(publisher, [])
        if key not in self.trusted_publishers[publisher]:
            self.trusted_publishers[publisher].append(key)
        self.normalize()

    def remove_trusted(self, publisher: str, key_hex: str | None = None) -> bool:
        """Remove one key (or the whole publisher); True when something was removed."""
        publisher = normalize_publisher(publisher)
        keys = self.trusted_publishers.get(publisher)
        if keys is None:
            return False
        if key_hex is None:
            del self.trusted_publishers[publisher]
            return True
        key = normalize_key(key_hex, f"invalid trusted key for publisher '{publisher}'")
        if key not in keys:
            return False
        keys.remove(key)
        if not keys:
            del self.trusted_publishers[publisher]
        return True

    def with_extra_trust(self, pairs: Iterable[tuple[str, str]]) -> TrustStore:
        """A copy that also allowlists ``pairs``; the original (and its file) is untouched."""
        extended = copy.deepcopy(self)
        for publisher, key in pairs:
            extended.add_trusted_key(publisher, key)
        return extended

    def unpin(self, publisher: str) -> bool:
        publisher = normalize_publisher(publisher)
        return self.tofu_publishers.pop(publisher, None) is not None


def parse_trusted_publisher_flag(text: str) -> tuple[str, str]:
    """``PUBLISHER=HEXKEY`` (split at the first ``=``; both sides trimmed, non-empty)."""
    publisher, sep, key = text.partition("=")
    if not sep or not publisher.strip() or not key.strip():
        raise TrustStoreError(f"--trusted-publisher expects PUBLISHER=HEXKEY, got '{text}'")
    publisher = normalize_publisher(publisher)
    return publisher, normalize_key(key, f"invalid trusted key for publisher '{publisher}'")
