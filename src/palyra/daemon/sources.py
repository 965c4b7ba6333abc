"""Where an install or update gets its bytes: a file, a local registry directory, or a remote
https registry that serves a signed index (reference skills-format.md §7.7).

Every source yields the artifact bytes plus what the source promised about them; the caller
verifies the bytes and checks the promise. A local registry directory is only read — the
reference wrote an ``index.json`` into it, which an operator's read-only mirror should not see.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from palyra.daemon.errors import RegistryError, SkillNotInstalled
from palyra.errors import PalyraError, UsageError
from palyra.skills.constants import MAX_ARTIFACT_BYTES
from palyra.skills.inspect import inspect_skill_artifact
from palyra.skills.values import parse_semver

MAX_REGISTRY_FILES = 10_000
ARTIFACT_SUFFIX = ".palyra-skill"


@dataclass(frozen=True)
class Promise:
    """What a registry said about an artifact; the bytes must match all of it."""

    skill_id: str
    version: str | None
    publisher: str | None
    artifact_sha256: str | None


@dataclass(frozen=True)
class ResolvedArtifact:
    data: bytes
    source_kind: str  # local_artifact | local_registry | remote_registry
    source_ref: str
    promise: Promise | None = None
    # A remote index's signer, pinned (TOFU) only if the install then succeeds.
    index_signer: tuple[str, str] | None = None


def read_local_artifact(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_ARTIFACT_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"no such artifact: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory (use --registry-dir for a registry)") from None
    except OSError as exc:
        raise UsageError(f"cannot read artifact {path}: {exc.strerror}") from None
    if len(data) > MAX_ARTIFACT_BYTES:
        raise UsageError(f"artifact {path} is larger than {MAX_ARTIFACT_BYTES} bytes")
    return data


def from_file(path: Path) -> ResolvedArtifact:
    return ResolvedArtifact(read_local_artifact(path), "local_artifact", str(path))


def _registry_files(root: Path) -> list[Path]:
    """Every ``*.palyra-skill`` under ``root``; symlinks are skipped (no escapes, no loops)."""
    found: list[Path] = []
    for directory, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not (Path(directory) / d).is_symlink())
        for name in sorted(files):
            path = Path(directory) / name
            if name.lower().endswith(ARTIFACT_SUFFIX) and not path.is_symlink():
                found.append(path)
                if len(found) > MAX_REGISTRY_FILES:
                    raise RegistryError(
                        f"registry {root} holds more than {MAX_REGISTRY_FILES} artifacts"
                    )
    return found


def from_registry_dir(root: Path, skill_id: str, version: str | None) -> ResolvedArtifact:
    """The requested version (else the highest) of ``skill_id`` among valid artifacts.

    Invalid artifacts are skipped rather than failing the whole registry: one bad upload
    must not block every other skill. Only the chosen artifact's bytes go on to install.
    """
    if not root.is_dir():
        raise UsageError(f"registry directory {root} does not exist")
    candidates: list[tuple[tuple[int, int, int], str, Path]] = []
    problems: list[str] = []
    for path in _registry_files(root):
        try:
            manifest = inspect_skill_artifact(read_local_artifact(path)).manifest
        except PalyraError as exc:
            problems.append(f"{path.relative_to(root)}: {exc.message}")
            continue
        if manifest.skill_id != skill_id or (version is not None and manifest.version != version):
            continue
        candidates.append((parse_semver("version", manifest.version), manifest.version, path))
    if not candidates:
        wanted = skill_id if version is None else f"{skill_id} {version}"
        hint = f" ({len(problems)} invalid artifact(s) skipped)" if problems else ""
        raise SkillNotInstalled(f"registry {root} has no valid artifact of {wanted}{hint}")
    candidates.sort()
    _semver, chosen_version, path = candidates[-1]
    data = read_local_artifact(path)
    return ResolvedArtifact(
        data,
        "local_registry",
        str(path),
        Promise(skill_id, chosen_version, None, hashlib.sha256(data).hexdigest()),
    )
