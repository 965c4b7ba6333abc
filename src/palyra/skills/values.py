"""Value classes for manifest fields and artifact paths (skills-format.md §1.3).

The reference validates a trimmed copy but stores the raw string, so whitespace leaks into
signatures, trust lookups and directory names. Here every checked value must already be in its
canonical form (trimmed, normalized); a value that is not is rejected with a message that says
what the canonical form would be. That makes "the string we checked" and "the string we use"
the same string everywhere.
"""

from __future__ import annotations

import re

from palyra.skills.constants import U32_MAX
from palyra.skills.errors import InvalidArtifactPathError, ManifestValidationError

_IDENTIFIER_CHARS = re.compile(r"[a-z0-9._:\-]+")
_SKILL_ID = re.compile(r"[a-z0-9_\-]+(\.[a-z0-9_\-]+)*")
_LABEL = re.compile(r"[a-z0-9._\-]+")
_ENTRYPOINT = re.compile(r"[a-z0-9_\-]+")
_RUST_U32 = re.compile(r"\+?[0-9]+")
_HOST_CHARS = re.compile(r"[a-z0-9.\-]+")
_SECRET_SCOPE_PREFIXES = ("principal:", "channel:", "skill:")

Semver = tuple[int, int, int]


def _invalid(message: str) -> ManifestValidationError:
    return ManifestValidationError(message)


def require_canonical(field: str, raw: str) -> str:
    """Reject empty or untrimmed strings; returns the value unchanged."""
    if not raw.strip():
        raise _invalid(f"{field} cannot be empty")
    if raw != raw.strip():
        raise _invalid(f"{field} must not have leading or trailing whitespace ({raw!r})")
    return raw


def require_text(field: str, raw: str) -> str:
    """Free text (names, descriptions): non-empty after trimming, stored as written."""
    if not raw.strip():
        raise _invalid(f"{field} cannot be empty")
    return raw


def identifier(field: str, raw: str) -> str:
    require_canonical(field, raw)
    if not _IDENTIFIER_CHARS.fullmatch(raw):
        raise _invalid(f"{field} must use [a-z0-9._-:]")
    return raw


def skill_id(raw: str) -> str:
    identifier("skill_id", raw)
    if not _SKILL_ID.fullmatch(raw):
        raise _invalid("skill_id must use non-empty dot-separated [a-z0-9_-] segments")
    return raw


def label(field: str, raw: str) -> str:
    require_canonical(field, raw)
    if not _LABEL.fullmatch(raw):
        raise _invalid(f"{field} must use [a-z0-9._-] ({raw!r})")
    return raw


def entrypoint_name(field: str, raw: str) -> str:
    require_canonical(field, raw)
    if not _ENTRYPOINT.fullmatch(raw):
        raise _invalid(f"{field} must use [a-z0-9_-]")
    return raw


def parse_semver(field: str, raw: str) -> Semver:
    """``major.minor.patch``, each part a Rust ``u32`` (optional ``+``, leading zeros allowed)."""
    require_canonical(field, raw)
    parts = raw.split(".")
    if len(parts) != 3:
        raise _invalid(f"{field} must use semantic version major.minor.patch")
    values: list[int] = []
    for part_name, part in zip(("major", "minor", "patch"), parts, strict=True):
        if not _RUST_U32.fullmatch(part) or int(part) > U32_MAX:
            raise _invalid(f"{field} {part_name} invalid")
        values.append(int(part))
    return (values[0], values[1], values[2])


def normalize_artifact_path(raw: str) -> str:
    """Reference path normalization: ``\\`` → ``/``, trim, no empty/``.``/``..`` segments."""
    value = raw.replace("\\", "/").strip()
    if not value:
        raise InvalidArtifactPathError(raw, "empty")
    if value.startswith("/"):
        raise InvalidArtifactPathError(raw, "absolute")
    if "\x00" in value:
        raise InvalidArtifactPathError(raw, "contains NUL")
    if ":" in value:
        raise InvalidArtifactPathError(raw, "contains ':'")
    segments = value.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise InvalidArtifactPathError(raw, "empty, '.' or '..' segment")
    return "/".join(segments)


def canonical_path(raw: str) -> str:
    """A declared path must already be in normalized form (stricter than the reference)."""
    normalized = normalize_artifact_path(raw)
    if normalized != raw:
        raise InvalidArtifactPathError(raw, f"write it as '{normalized}'")
    return normalized


def capability_path(raw: str, wildcard_opt_in: bool) -> str:
    if "*" in raw and not wildcard_opt_in:
        raise _invalid(f"capability path '{raw}' uses wildcard without explicit opt-in")
    return canonical_path(raw)


def host(raw: str, wildcard_opt_in: bool) -> str:
    """An egress host: lowercase DNS name or IPv4 literal, no port, no trailing dot.

    Stricter than the reference: a wildcard must be ``*`` or ``*.<host>`` even after opt-in,
    and labels/total length follow DNS limits (63/253).
    """
    if "*" in raw:
        if not wildcard_opt_in:
            raise _invalid(f"host '{raw}' uses wildcard without explicit opt-in")
        if raw == "*":
            return raw
        if not raw.startswith("*.") or "*" in raw[2:]:
            raise _invalid(f"invalid host '{raw}' (a wildcard must be '*' or '*.<host>')")
        host(raw[2:], wildcard_opt_in=False)
        return raw
    if raw != raw.strip() or not raw:
        raise _invalid(f"invalid host '{raw}'")
    if (
        not _HOST_CHARS.fullmatch(raw)
        or ".." in raw
        or raw[0] in ".-"
        or raw[-1] in ".-"
        or len(raw) > 253
        or any(len(part) > 63 or part[0] == "-" or part[-1] == "-" for part in raw.split("."))
    ):
        raise _invalid(
            f"invalid host '{raw}' (lowercase DNS name or IPv4 address, no port or trailing dot)"
        )
    return raw


def identifier_or_wildcard(field: str, raw: str, wildcard_opt_in: bool) -> str:
    if "*" in raw:
        if not wildcard_opt_in:
            raise _invalid(f"{field} contains wildcard without explicit opt-in")
        rest = raw.replace("*", "")
        if raw != raw.strip() or (rest and not _IDENTIFIER_CHARS.fullmatch(rest)):
            raise _invalid(f"{field} must use [a-z0-9._-:] around its wildcard")
        return raw
    return identifier(field, raw)


def secret_scope(raw: str) -> str:
    """``global`` or ``principal:|channel:|skill:`` followed by an identifier."""
    if raw == "global":
        return raw
    for prefix in _SECRET_SCOPE_PREFIXES:
        if raw.startswith(prefix):
            rest = raw[len(prefix) :]
            if rest and rest == rest.strip() and _IDENTIFIER_CHARS.fullmatch(rest):
                return raw
    raise _invalid(f"invalid secret scope '{raw}'")


def docs_url(raw: str) -> str:
    require_canonical("operator.docs_url", raw)
    if not raw.startswith("https://") or " " in raw or "#" in raw or len(raw) <= len("https://"):
        raise _invalid("operator.docs_url must be an https URL without fragments or spaces")
    return raw
