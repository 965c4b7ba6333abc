"""Typed errors of the skills layer (manifest, artifact, signature, trust, audit).

Messages follow the reference implementation's ``SkillPackagingError`` display strings
(skills-format.md §1.8) so operators moving between implementations read the same words; the
``kind`` strings are this project's stable contract. Kinds that the reference lacks cover the
stricter checks this implementation adds (encrypted entries, symlinks, trailing bytes, ...).
"""

from __future__ import annotations

from typing import Any

from palyra.errors import PalyraError


class SkillError(PalyraError):
    """Base of every error raised while parsing, building, verifying or auditing a skill."""

    kind = "skill_error"


class ManifestParseError(SkillError):
    kind = "manifest_parse"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"manifest parse failed: {message}", details=details)


class ManifestValidationError(SkillError):
    kind = "manifest_validation"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"manifest validation failed: {message}", details=details)


class IntegrityMismatchError(ManifestValidationError):
    """The manifest's ``integrity.files`` list disagrees with the artifact's entries."""

    kind = "integrity_mismatch"


class InvalidArtifactPathError(SkillError):
    kind = "invalid_artifact_path"

    def __init__(self, path: str, reason: str | None = None) -> None:
        shown = path.encode("unicode_escape").decode("ascii")
        suffix = f" ({reason})" if reason else ""
        super().__init__(
            f"artifact entry path is invalid: {shown}{suffix}", details={"path": shown}
        )


class ArtifactTooLargeError(SkillError):
    kind = "artifact_too_large"

    def __init__(self, actual: int, limit: int) -> None:
        super().__init__(
            f"artifact size exceeds limit ({actual} > {limit})",
            details={"actual": actual, "limit": limit},
        )


class ArtifactTooManyEntriesError(SkillError):
    kind = "artifact_too_many_entries"

    def __init__(self, actual: int, limit: int) -> None:
        super().__init__(
            f"artifact contains too many entries ({actual} > {limit})",
            details={"actual": actual, "limit": limit},
        )


class ArtifactEntryTooLargeError(SkillError):
    kind = "artifact_entry_too_large"

    def __init__(self, path: str, actual: int, limit: int) -> None:
        super().__init__(
            f"artifact entry '{path}' exceeds limit ({actual} > {limit})",
            details={"path": path, "actual": actual, "limit": limit},
        )


class MissingArtifactEntryError(SkillError):
    kind = "missing_artifact_entry"

    def __init__(self, path: str) -> None:
        super().__init__(f"artifact is missing required entry '{path}'", details={"path": path})


class DuplicateArtifactEntryError(SkillError):
    kind = "duplicate_artifact_entry"

    def __init__(self, path: str) -> None:
        super().__init__(f"artifact contains duplicate entry '{path}'", details={"path": path})


class UnknownArtifactEntryError(SkillError):
    """An entry outside the allowlisted layout (stricter than the reference, §11)."""

    kind = "unknown_artifact_entry"

    def __init__(self, path: str) -> None:
        super().__init__(
            f"artifact contains entry '{path}' outside the allowed layout (skill.toml, "
            "signature.json, sbom.cdx.json, provenance.json, modules/*, assets/*)",
            details={"path": path},
        )


class InvalidArchiveError(SkillError):
    """The bytes are not a well-formed ZIP archive of the shape Palyra accepts."""

    kind = "invalid_archive"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"zip handling failed: {message}", details=details)


class UnexpectedArchiveDataError(InvalidArchiveError):
    """Bytes before the first entry, between entries or after the end record."""

    kind = "unexpected_archive_data"


class UnsupportedCompressionError(InvalidArchiveError):
    kind = "unsupported_compression"


class EncryptedEntryError(InvalidArchiveError):
    kind = "encrypted_entry"


class SymlinkEntryError(InvalidArchiveError):
    kind = "symlink_entry"


class EntrySizeMismatchError(InvalidArchiveError):
    """Declared sizes, CRC or headers disagree with the entry's actual data."""

    kind = "entry_size_mismatch"


class CompressionRatioError(InvalidArchiveError):
    kind = "compression_ratio_exceeded"


class InvalidSbomError(SkillError):
    kind = "invalid_sbom"

    def __init__(self, message: str) -> None:
        super().__init__(f"invalid SBOM payload: {message}")


class InvalidProvenanceError(SkillError):
    kind = "invalid_provenance"

    def __init__(self, message: str) -> None:
        super().__init__(f"invalid provenance payload: {message}")


class InvalidSignatureDocumentError(SkillError):
    """``signature.json`` is not the seven-field document the format requires."""

    kind = "invalid_signature_document"

    def __init__(self, message: str) -> None:
        super().__init__(f"serialization failed: invalid signature: {message}")


class PayloadHashMismatchError(SkillError):
    kind = "payload_hash_mismatch"

    def __init__(self) -> None:
        super().__init__("artifact payload hash mismatch")


class SignatureVerificationError(SkillError):
    kind = "signature_verification_failed"

    def __init__(self, reason: str | None = None) -> None:
        details = {"reason": reason} if reason else None
        super().__init__("artifact signature verification failed", details=details)


class InvalidSigningKeyError(SkillError):
    kind = "invalid_signing_key"

    def __init__(self, actual: int) -> None:
        super().__init__(
            f"signing key length is invalid: {actual} (expected raw 32-byte, hex, or base64 seed)",
            details={"actual": actual},
        )


class UntrustedPublisherError(SkillError):
    kind = "untrusted_publisher"

    def __init__(self, publisher: str) -> None:
        super().__init__(f"untrusted publisher '{publisher}'", details={"publisher": publisher})


class TrustedPublisherKeyMismatchError(SkillError):
    kind = "trusted_publisher_key_mismatch"

    def __init__(self, publisher: str) -> None:
        super().__init__(
            f"trusted publisher key mismatch for '{publisher}'", details={"publisher": publisher}
        )


class TofuKeyMismatchError(SkillError):
    kind = "tofu_key_mismatch"

    def __init__(self, publisher: str) -> None:
        super().__init__(
            f"TOFU pinned key mismatch for '{publisher}'", details={"publisher": publisher}
        )


class UnsupportedProtocolMajorError(SkillError):
    kind = "unsupported_protocol_major"

    def __init__(self, requested: int, current: int) -> None:
        super().__init__(
            f"requested min protocol major {requested} is higher than current {current}",
            details={"requested": requested, "current": current},
        )


class UnsupportedRuntimeVersionError(SkillError):
    kind = "unsupported_runtime_version"

    def __init__(self, requested: str, current: str) -> None:
        super().__init__(
            f"requested min runtime version {requested} is higher than current {current}",
            details={"requested": requested, "current": current},
        )


class RuntimeVersionAboveMaximumError(SkillError):
    kind = "runtime_version_above_maximum"

    def __init__(self, supported_max: str, current: str) -> None:
        super().__init__(
            f"current runtime version {current} is higher than supported maximum {supported_max}",
            details={"supported_max": supported_max, "current": current},
        )


class TrustStoreError(SkillError):
    """The trust-store file or a key given for it is malformed."""

    kind = "trust_store_invalid"

    def __init__(self, message: str) -> None:
        super().__init__(f"serialization failed: {message}")


class BlocklistError(SkillError):
    """The audit's known-bad digest blocklist file is malformed."""

    kind = "blocklist_invalid"
