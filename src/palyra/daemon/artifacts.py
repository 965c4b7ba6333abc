"""Installed artifacts on disk: ``<state>/skills/<skill_id>/<version>/artifact.palyra-skill``.

The database decides what is installed; a file without a row is an orphan left by a crash
between writing the file and committing the row, and :func:`remove_orphans` deletes it.
Artifacts are re-verified when loaded (hash against the installed record, then the full
structural and signature check); the parsed result is cached per (path, size, mtime, inode)
so a call does not pay for re-hashing a 30 MiB component that has not changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import threading
from pathlib import Path

from palyra.errors import IoFailure
from palyra.skills.constants import MAX_ARTIFACT_BYTES
from palyra.skills.errors import SkillError
from palyra.skills.inspect import SkillInspection, inspect_skill_artifact
from palyra.store.base import SkillVersionRecord

ARTIFACT_NAME = "artifact.palyra-skill"
_CACHE_LIMIT = 64


class ArtifactTampered(SkillError):
    """The stored artifact no longer matches what was verified at install."""

    kind = "artifact_tampered"


def skills_dir(state_root: Path) -> Path:
    return state_root / "skills"


def artifact_path(state_root: Path, skill_id: str, version: str) -> Path:
    # skill_id and version were validated by the manifest parser: no separators, no dots-only.
    return skills_dir(state_root) / skill_id / version / ARTIFACT_NAME


STAGED_PREFIX = ".staged-"


# Staged files are locked (flock) by the process installing them for as long as it does:
# recovery deletes a staged file only when it can take that lock, i.e. its owner is gone.
_held: dict[Path, int] = {}
_held_lock = threading.Lock()


def stage_artifact(state_root: Path, skill_id: str, version: str, data: bytes) -> Path:
    """Write the bytes beside their final place under a unique, locked name (fsynced)."""
    import uuid

    final = artifact_path(state_root, skill_id, version)
    staged = final.parent.parent / f"{STAGED_PREFIX}{version}-{uuid.uuid4().hex}"
    try:
        staged.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise IoFailure(f"cannot create {staged}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        with contextlib.suppress(OSError):
            staged.unlink()
        raise IoFailure(f"cannot write {staged}: {exc.strerror}") from None
    with _held_lock:
        _held[staged] = fd
    return staged


def place_staged(staged: Path, skill_id: str, version: str, state_root: Path) -> None:
    final = artifact_path(state_root, skill_id, version)
    try:
        if final.parent.exists():  # a crash's leftover for a version with no row
            shutil.rmtree(final.parent)
        final.parent.mkdir(mode=0o700)
        os.replace(staged, final)
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise IoFailure(f"cannot place {final}: {exc.strerror}") from None


def discard_staged(staged: Path) -> None:
    """Unlock and remove (if it was not placed)."""
    with _held_lock:
        fd = _held.pop(staged, None)
    with contextlib.suppress(FileNotFoundError):
        staged.unlink()
    if fd is not None:
        os.close(fd)
    with contextlib.suppress(OSError):
        staged.parent.rmdir()  # only if the skill has nothing else


def _abandoned(path: Path) -> bool:
    """True when no live process holds the staged file's lock."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def delete_artifact(state_root: Path, skill_id: str, version: str) -> None:
    version_dir = artifact_path(state_root, skill_id, version).parent
    shutil.rmtree(version_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        version_dir.parent.rmdir()  # the skill's directory, once its last version is gone


def read_artifact(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_ARTIFACT_BYTES + 1)
    except OSError as exc:
        raise IoFailure(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_ARTIFACT_BYTES:
        raise ArtifactTampered(f"{path} is larger than any artifact could be")
    return data


def remove_orphans(state_root: Path, installed: set[tuple[str, str]]) -> list[str]:
    """Delete artifact directories with no database row; returns what was removed."""
    removed: list[str] = []
    root = skills_dir(state_root)
    if not root.is_dir():
        return removed
    for skill_dir in root.iterdir():
        if not skill_dir.is_dir() or skill_dir.is_symlink():
            continue
        for entry in skill_dir.iterdir():
            if entry.name.startswith(STAGED_PREFIX):
                # Another process may be installing right now; only abandoned files go.
                if _abandoned(entry):
                    with contextlib.suppress(OSError):
                        entry.unlink()
                        removed.append(f"{skill_dir.name}/{entry.name}")
                continue
            if (skill_dir.name, entry.name) not in installed and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(f"{skill_dir.name}/{entry.name}")
        with contextlib.suppress(OSError):
            skill_dir.rmdir()
    return removed


class ArtifactCache:
    """Verified inspections of installed artifacts, keyed by the file's identity."""

    def __init__(self, state_root: Path) -> None:
        self.state_root = state_root
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[tuple[int, int, int, str], SkillInspection]] = {}
        self._paths: dict[tuple[str, str], str] = {}

    def load(self, record: SkillVersionRecord) -> SkillInspection:
        key = (record.skill_id, record.version)
        path = self._paths.get(key)
        if path is None:  # pathlib is slow enough to show in a call's profile
            path = str(artifact_path(self.state_root, record.skill_id, record.version))
            self._paths[key] = path
        try:
            st = os.stat(path)
        except OSError as exc:
            raise ArtifactTampered(
                f"installed artifact of {record.skill_id} {record.version} is missing "
                f"({exc.strerror})"
            ) from None
        identity = (st.st_size, st.st_mtime_ns, st.st_ino, record.artifact_sha256)
        with self._lock:
            cached = self._entries.get(key)
        if cached is not None and cached[0] == identity:
            return cached[1]
        data = read_artifact(Path(path))
        if hashlib.sha256(data).hexdigest() != record.artifact_sha256:
            raise ArtifactTampered(
                f"installed artifact of {record.skill_id} {record.version} changed on disk "
                "since it was verified"
            )
        inspection = inspect_skill_artifact(data)
        if inspection.public_key_hex != record.public_key_hex:
            raise ArtifactTampered(
                f"installed artifact of {record.skill_id} {record.version} is signed by "
                "another key than at install"
            )
        with self._lock:
            if len(self._entries) >= _CACHE_LIMIT:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = (identity, inspection)
        return inspection

    def forget(self, skill_id: str, version: str) -> None:
        with self._lock:
            self._entries.pop((skill_id, version), None)
