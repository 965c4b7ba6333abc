"""``signature.json``: the Ed25519 signature over the payload hash (§2.6).

What is signed is the ASCII of the 64-char lowercase hex payload hash, exactly as the reference
does. ``signed_at_unix_ms`` and ``key_id`` are not covered by the signature (a reference format
limitation, documented in SECURITY.md); ``key_id`` is re-derived and compared on verification.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from palyra.skills.constants import I64_MAX, MAX_SIGNATURE_BYTES, SIGNATURE_ALGORITHM
from palyra.skills.errors import InvalidSignatureDocumentError, SignatureVerificationError
from palyra.skills.jsondoc import JsonDocumentError, dumps_pretty, loads_strict
from palyra.skills.keys import SigningKey, key_id_for, strict_b64decode

_FIELDS = (
    "algorithm",
    "publisher",
    "key_id",
    "public_key_base64",
    "payload_sha256",
    "signature_base64",
    "signed_at_unix_ms",
)


@dataclass(frozen=True)
class SkillSignature:
    algorithm: str
    publisher: str
    key_id: str
    public_key_base64: str
    payload_sha256: str
    signature_base64: str
    signed_at_unix_ms: int

    @classmethod
    def create(
        cls, key: SigningKey, publisher: str, payload_sha256: str, signed_at_unix_ms: int
    ) -> SkillSignature:
        signature = key.sign(payload_sha256.encode("ascii"))
        return cls(
            algorithm=SIGNATURE_ALGORITHM,
            publisher=publisher,
            key_id=key.key_id,
            public_key_base64=base64.b64encode(key.public_key).decode("ascii"),
            payload_sha256=payload_sha256,
            signature_base64=base64.b64encode(signature).decode("ascii"),
            signed_at_unix_ms=signed_at_unix_ms,
        )

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIELDS}

    def to_bytes(self) -> bytes:
        return dumps_pretty(self.to_json())

    @classmethod
    def parse(cls, data: bytes) -> SkillSignature:
        """Exactly the seven fields, right types, no duplicates, no extras."""
        try:
            doc = loads_strict(data, max_bytes=MAX_SIGNATURE_BYTES, reject_duplicates=True)
        except JsonDocumentError as exc:
            raise InvalidSignatureDocumentError(str(exc)) from None
        if not isinstance(doc, dict):
            raise InvalidSignatureDocumentError("expected a JSON object")
        for name in doc:
            if name not in _FIELDS:
                raise InvalidSignatureDocumentError(f"unknown field `{name}`")
        for name in _FIELDS:
            if name not in doc:
                raise InvalidSignatureDocumentError(f"missing field `{name}`")
            expected_int = name == "signed_at_unix_ms"
            value = doc[name]
            if expected_int:
                if type(value) is not int or not -I64_MAX - 1 <= value <= I64_MAX:
                    raise InvalidSignatureDocumentError(f"`{name}` must be a 64-bit integer")
            elif not isinstance(value, str):
                raise InvalidSignatureDocumentError(f"`{name}` must be a string")
        return cls(**{name: doc[name] for name in _FIELDS})

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte key, or :class:`SignatureVerificationError` if malformed."""
        raw = strict_b64decode(self.public_key_base64)
        if raw is None or len(raw) != 32:
            raise SignatureVerificationError("public key is not base64 of 32 bytes")
        return raw

    def verify(self) -> bytes:
        """Check algorithm, key id and the Ed25519 signature; returns the raw public key."""
        if self.algorithm != SIGNATURE_ALGORITHM:
            raise SignatureVerificationError(f"unsupported algorithm '{self.algorithm}'")
        public = self.public_key
        if self.key_id != key_id_for(public):
            raise SignatureVerificationError("key_id does not match the public key")
        signature = strict_b64decode(self.signature_base64)
        if signature is None or len(signature) != 64:
            raise SignatureVerificationError("signature is not base64 of 64 bytes")
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(
                signature, self.payload_sha256.encode("utf-8")
            )
        except (InvalidSignature, ValueError, binascii.Error):
            raise SignatureVerificationError("Ed25519 signature does not verify") from None
        return public
