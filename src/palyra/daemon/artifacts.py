"""Where installed artifacts live, and their verified, cached inspections.

Two homes, one interface (:class:`ArtifactStore`), chosen by the state store:

* :class:`FileArtifacts` — a daemon on its own SQLite file keeps each artifact at
  ``<state>/skills/<skill_id>/<version>/artifact.palyra-skill``. The database decides what
  is installed; a file without a row is an orphan left by a crash between writing the file
  and committing the row, and :meth:`FileArtifacts.remove_orphans` deletes it. The parsed
  result is cached per (path, size, mtime, inode) so a call does not pay for re-hashing a
  30 MiB component that has not changed, yet a file changed on disk is caught on the next
  call.
* :class:`DatabaseArtifacts` — daemons sharing one PostgreSQL keep artifacts in it,
  content-addressed by SHA-256 and written in the same transaction as the installed row, so
  every daemon can load what any daemon installed and a crash leaves no orphan to clean.

Either way an artifact is verified whenever its bytes are read (hash against the installed
record, then the full structural and signature check); only verified inspections are
cached, in memory, per daemon — as is the compiled code built from them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from palyra.errors import IoFailure
from palyra.skills.constants import MAX_ARTIFACT_BYTES
from palyra.skills.errors import SkillError
from palyra.skills.inspect import SkillInspection, inspect_skill_artifact
from palyra.store.base import SkillVersionRecord, StateStore, Transaction

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


@dataclass(frozen=True)
class StagedArtifact:
    skill_id: str
    version: str
    sha256: str
    data: bytes
    path: Path | None = None  # the locked staging file (file artifacts only)


class ArtifactStore(Protocol):
    """Install: ``stage`` (outside any transaction), ``place`` (last step inside the
    installing write transaction), ``discard`` (always, afterwards). Remove: ``unlink``
    inside the removing transaction, ``unlinked`` after it commits."""

    def stage(self, skill_id: str, version: str, data: bytes) -> StagedArtifact: ...
    def place(self, staged: StagedArtifact, tx: Transaction) -> None: ...
    def discard(self, staged: StagedArtifact) -> None: ...
    def unlink(self, tx: Transaction, skill_id: str, versions: Iterable[str]) -> None: ...
    def unlinked(self, skill_id: str, versions: Iterable[str]) -> None: ...
    def remove_orphans(self, tx: Transaction, installed: set[tuple[str, str]]) -> list[str]:
        """Recovery, under the write lock: drop what no installed row names."""
        ...

    def load(self, record: SkillVersionRecord) -> SkillInspection:
        """The verified inspection of an installed version (cached while unchanged)."""
        ...

    def forget(self, skill_id: str, version: str) -> None: ...


def _verified(record: SkillVersionRecord, data: bytes, where: str) -> SkillInspection:
    if hashlib.sha256(data).hexdigest() != record.artifact_sha256:
        raise ArtifactTampered(
            f"installed artifact of {record.skill_id} {record.version} changed {where} "
            "since it was verified"
        )
    inspection = inspect_skill_artifact(data)
    if inspection.public_key_hex != record.public_key_hex:
        raise ArtifactTampered(
            f"installed artifact of {record.skill_id} {record.version} is signed by "
            "another key than at install"
        )
    return inspection


class _InspectionCache:
    """Verified inspections by (skill, version), each with the identity it was verified at."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[object, SkillInspection]] = {}

    def get(self, key: tuple[str, str], identity: object) -> SkillInspection | None:
        with self._lock:
            cached = self._entries.get(key)
        return cached[1] if cached is not None and cached[0] == identity else None

    def put(self, key: tuple[str, str], identity: object, inspection: SkillInspection) -> None:
        with self._lock:
            if len(self._entries) >= _CACHE_LIMIT:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = (identity, inspection)

    def forget(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._entries.pop(key, None)


class FileArtifacts:
    """Artifacts as files under the state root (one daemon, SQLite)."""

    def __init__(self, state_root: Path) -> None:
        self.state_root = state_root
        self._cache = _InspectionCache()
        self._paths: dict[tuple[str, str], str] = {}

    def stage(self, skill_id: str, version: str, data: bytes) -> StagedArtifact:
        path = stage_artifact(self.state_root, skill_id, version, data)
        return StagedArtifact(skill_id, version, hashlib.sha256(data).hexdigest(), b"", path)

    def place(self, staged: StagedArtifact, tx: Transaction) -> None:
        assert staged.path is not None
        place_staged(staged.path, staged.skill_id, staged.version, self.state_root)

    def discard(self, staged: StagedArtifact) -> None:
        assert staged.path is not None
        discard_staged(staged.path)

    def unlink(self, tx: Transaction, skill_id: str, versions: Iterable[str]) -> None:
        """Files go after the commit (:meth:`unlinked`); a crash in between leaves orphans."""

    def unlinked(self, skill_id: str, versions: Iterable[str]) -> None:
        for version in versions:
            self.forget(skill_id, version)
            delete_artifact(self.state_root, skill_id, version)

    def remove_orphans(self, tx: Transaction, installed: set[tuple[str, str]]) -> list[str]:
        return remove_orphans(self.state_root, installed)

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
        cached = self._cache.get(key, identity)
        if cached is not None:
            return cached
        inspection = _verified(record, read_artifact(Path(path)), "on disk")
        self._cache.put(key, identity, inspection)
        return inspection

    def forget(self, skill_id: str, version: str) -> None:
        self._cache.forget((skill_id, version))


class DatabaseArtifacts:
    """Artifacts in the shared state store, content-addressed by SHA-256 (several daemons).

    A stored artifact cannot be changed (the schema refuses updates) and is named by its
    digest, so a cached inspection stays valid for as long as the installed row names the
    same digest — which every call reads afresh.
    """

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._cache = _InspectionCache()

    def stage(self, skill_id: str, version: str, data: bytes) -> StagedArtifact:
        return StagedArtifact(skill_id, version, hashlib.sha256(data).hexdigest(), data)

    def place(self, staged: StagedArtifact, tx: Transaction) -> None:
        tx.put_artifact(staged.sha256, staged.data)

    def discard(self, staged: StagedArtifact) -> None:
        """Nothing was written outside the transaction."""

    def unlink(self, tx: Transaction, skill_id: str, versions: Iterable[str]) -> None:
        tx.drop_unreferenced_artifacts()

    def unlinked(self, skill_id: str, versions: Iterable[str]) -> None:
        for version in versions:
            self.forget(skill_id, version)

    def remove_orphans(self, tx: Transaction, installed: set[tuple[str, str]]) -> list[str]:
        return [f"sha256:{digest}" for digest in tx.drop_unreferenced_artifacts()]

    def load(self, record: SkillVersionRecord) -> SkillInspection:
        key = (record.skill_id, record.version)
        identity = (record.artifact_sha256, record.public_key_hex)
        cached = self._cache.get(key, identity)
        if cached is not None:
            return cached
        with self.store.read() as tx:
            data = tx.artifact(record.artifact_sha256)
        if data is None:
            raise ArtifactTampered(
                f"installed artifact of {record.skill_id} {record.version} is missing from "
                "the state database"
            )
        inspection = _verified(record, data, "in the state database")
        self._cache.put(key, identity, inspection)
        return inspection

    def forget(self, skill_id: str, version: str) -> None:
        self._cache.forget((skill_id, version))


def artifact_store(state_root: Path, store: StateStore) -> ArtifactStore:
    """Shared stores hold artifacts themselves; a lone daemon keeps files."""
    return DatabaseArtifacts(store) if store.shared else FileArtifacts(state_root)
