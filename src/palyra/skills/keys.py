"""Ed25519 keys: parsing signing seeds, deriving key ids, encoding public keys (§2.7)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from palyra.skills.constants import KEY_ID_PREFIX
from palyra.skills.errors import InvalidSigningKeyError

_HEX = re.compile(r"[0-9a-fA-F]+")
_WHITESPACE = b" \t\n\r\x0b\x0c"


def strict_b64decode(text: str) -> bytes | None:
    """Standard, padded, canonical base64 (like Rust's ``base64`` STANDARD); ``None`` if not.

    ``base64.b64decode(validate=True)`` tolerates non-zero trailing bits, so the result is
    re-encoded and compared: only the one canonical spelling of some bytes is accepted.
    """
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def parse_signing_seed(data: bytes) -> bytes:
    """Accept a 32-byte seed as raw bytes, hex or base64 (tried in the reference's order)."""
    if len(data) == 32:
        return data
    trimmed = data.strip(_WHITESPACE)
    if len(trimmed) == 32:
        return trimmed
    try:
        text = trimmed.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InvalidSigningKeyError(len(trimmed)) from None
    if len(text) == 64 and _HEX.fullmatch(text):
        return bytes.fromhex(text)
    decoded = strict_b64decode(text)
    if decoded is not None and len(decoded) == 32:
        return decoded
    raise InvalidSigningKeyError(len(trimmed))


def key_id_for(public_key: bytes) -> str:
    """``ed25519:`` + hex of the first 8 bytes of SHA-256(raw public key)."""
    return KEY_ID_PREFIX + hashlib.sha256(public_key).digest()[:8].hex()


def public_key_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class SigningKey:
    """A publisher's signing key, built from its 32-byte seed."""

    seed: bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> SigningKey:
        return cls(parse_signing_seed(data))

    @classmethod
    def generate(cls) -> SigningKey:
        private = Ed25519PrivateKey.generate()
        seed = private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return cls(seed)

    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def public_key(self) -> bytes:
        return public_key_bytes(self._private().public_key())

    @property
    def public_key_hex(self) -> str:
        return self.public_key.hex()

    @property
    def key_id(self) -> str:
        return key_id_for(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._private().sign(message)

    def __repr__(self) -> str:  # never show the seed
        return f"SigningKey(key_id={self.key_id!r})"
