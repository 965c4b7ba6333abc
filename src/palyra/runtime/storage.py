"""Per-skill key-value storage on disk, confined to declared roots.

Keys are ``/``-separated relative paths such as ``skills/cache/counter``. A key is usable only
inside a granted prefix: ``write_roots`` read-write, ``read_roots`` read-only. Files live under
``<state>/skill-data/<skill_id>/``. Every path component is opened relative to its parent
directory with ``O_NOFOLLOW`` (``openat``), so a symlink planted anywhere in the tree is refused
instead of followed, and there is no check-then-use race on the path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
MAX_KEY_BYTES = 512
MAX_LIST = 1000


class StorageError(Exception):
    """``code`` is a data-ABI return code name: DENIED, INVALID, NOT_FOUND, TOO_LARGE, QUOTA."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def split_key(key: str) -> list[str]:
    if not key or len(key.encode()) > MAX_KEY_BYTES:
        raise StorageError("INVALID", "storage key must be 1-512 bytes")
    parts = key.split("/")
    for part in parts:
        if not _SEGMENT.fullmatch(part) or part in (".", ".."):
            raise StorageError("INVALID", f"storage key segment '{part[:40]}' is not allowed")
    return parts


def _within(parts: list[str], prefix: str) -> bool:
    if prefix == "*":  # everything (development runs with an explicit storage directory)
        return True
    head = prefix.split("/")
    return len(parts) >= len(head) and parts[: len(head)] == head


@dataclass
class SkillStorage:
    root: Path
    read_prefixes: tuple[str, ...]
    write_prefixes: tuple[str, ...]
    quota_bytes: int = 16 * 1024 * 1024
    max_value_bytes: int = 1024 * 1024

    def _check(self, key: str, write: bool, exact: bool = True) -> list[str]:
        parts = split_key(key)
        writable = any(_within(parts, p) for p in self.write_prefixes)
        readable = writable or any(_within(parts, p) for p in self.read_prefixes)
        if not (writable if write else readable):
            raise StorageError("DENIED", f"storage key '{key}' is outside the granted roots")
        if exact and any(
            parts == p.split("/") for p in (*self.write_prefixes, *self.read_prefixes)
        ):
            raise StorageError("INVALID", "a storage root itself is not a key")
        return parts

    def _open_dir(self, parts: list[str], create: bool) -> int:
        """fd of the directory holding ``parts[-1]``, walking with O_NOFOLLOW from the root."""
        if create:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise StorageError("NOT_FOUND", "no such storage key") from None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise StorageError("DENIED", "the skill's storage directory is a symlink") from None
            raise
        try:
            for part in parts[:-1]:
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o700, dir_fd=fd)
                try:
                    child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                except FileNotFoundError:
                    raise StorageError("NOT_FOUND", "no such storage key") from None
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise StorageError(
                            "DENIED", "storage path crosses a symlink or file"
                        ) from None
                    raise
                os.close(fd)
                fd = child
            return fd
        except BaseException:
            os.close(fd)
            raise

    def get(self, key: str) -> bytes:
        parts = self._check(key, write=False)
        dir_fd = self._open_dir(parts, create=False)
        try:
            # O_NONBLOCK: a planted FIFO must not block the open; fstat below refuses it.
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
        except FileNotFoundError:
            raise StorageError("NOT_FOUND", "no such storage key") from None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EISDIR):
                raise StorageError("DENIED", "storage key names a symlink or directory") from None
            raise
        finally:
            os.close(dir_fd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StorageError("DENIED", "storage key is not a regular file")
            with os.fdopen(fd, "rb", closefd=False) as handle:
                data = handle.read(self.max_value_bytes + 1)
        finally:
            os.close(fd)
        if len(data) > self.max_value_bytes:
            raise StorageError("TOO_LARGE", "stored value exceeds the value limit")
        return data

    def check_writable(self, key: str) -> None:
        """Raise as ``put`` would for this key (the value aside)."""
        self._check(key, write=True)

    def put(self, key: str, value: bytes) -> None:
        parts = self._check(key, write=True)
        if len(value) > self.max_value_bytes:
            raise StorageError("TOO_LARGE", f"values are limited to {self.max_value_bytes} bytes")
        with _skill_lock(self.root):  # usage check and write are one step per skill
            self._put_locked(parts, value)

    def _put_locked(self, parts: list[str], value: bytes) -> None:
        used, entries = self.usage_and_entries()
        previous = self._existing_size(parts)
        if previous is None and entries >= MAX_ENTRIES:
            raise StorageError("QUOTA", f"skill storage holds at most {MAX_ENTRIES} entries")
        charged = used - (_charge(previous) if previous is not None else 0) + _charge(len(value))
        # Every directory the put will create costs a block too.
        missing = sum(
            1 for depth in range(1, len(parts)) if not self.root.joinpath(*parts[:depth]).exists()
        )
        charged += BLOCK * missing
        if charged > self.quota_bytes:
            raise StorageError("QUOTA", f"skill storage quota of {self.quota_bytes} bytes reached")
        dir_fd = self._open_dir(parts, create=True)
        temp = f".tmp-{secrets.token_hex(8)}"
        try:
            fd = os.open(
                temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd
            )
            try:
                os.write(fd, value)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                existing = os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)
                if not stat.S_ISREG(existing.st_mode):
                    raise StorageError("DENIED", "storage key names a symlink or directory")
            except FileNotFoundError:
                pass
            os.rename(temp, parts[-1], src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=dir_fd)
            os.close(dir_fd)

    def delete(self, key: str) -> None:
        parts = self._check(key, write=True)
        dir_fd = self._open_dir(parts, create=False)
        try:
            info = os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):
                raise StorageError("DENIED", "storage key names a symlink or directory")
            os.unlink(parts[-1], dir_fd=dir_fd)
        except FileNotFoundError:
            raise StorageError("NOT_FOUND", "no such storage key") from None
        finally:
            os.close(dir_fd)

    def _existing_size(self, parts: list[str]) -> int | None:
        try:
            dir_fd = self._open_dir(parts, create=False)
        except StorageError:
            return None
        try:
            info = os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        finally:
            os.close(dir_fd)
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    def list(self, prefix: str) -> list[str]:
        parts = self._check(prefix, write=False, exact=False)
        try:
            dir_fd = self._open_dir([*parts, "x"], create=False)  # the prefix directory itself
        except StorageError:
            return []
        keys: list[str] = []
        try:
            # fwalk relative to a descriptor opened without following links: a symlink planted
            # anywhere below is neither followed nor listed.
            for directory, dirnames, filenames, _fd in os.fwalk(
                ".", dir_fd=dir_fd, follow_symlinks=False
            ):
                dirnames.sort()
                rel = [] if directory == "." else directory[2:].split("/")
                for name in sorted(filenames):
                    info = os.stat(name, dir_fd=_fd, follow_symlinks=False)
                    if name.startswith(".tmp-") or not stat.S_ISREG(info.st_mode):
                        continue
                    keys.append("/".join((*parts, *rel, name)))
                    if len(keys) >= MAX_LIST:
                        return keys
        finally:
            os.close(dir_fd)
        return keys

    def usage_and_entries(self) -> tuple[int, int]:
        """Bytes charged (each file and directory at least one block) and entries stored."""
        total = entries = 0
        if not self.root.is_dir() or self.root.is_symlink():
            return 0, 0
        for _directory, dirnames, files, dir_fd in os.fwalk(self.root, follow_symlinks=False):
            total += BLOCK * len(dirnames)
            for name in files:
                with contextlib.suppress(OSError):
                    total += _charge(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_size)
                    entries += 1
        return total, entries


BLOCK = 4096
MAX_ENTRIES = 10_000
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _charge(size: int) -> int:
    """What a value costs against the quota: its size rounded up to whole blocks, at least one
    (empty files and directories still take inodes and blocks)."""
    return max(BLOCK, -(-size // BLOCK) * BLOCK)


def _skill_lock(root: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(str(root), threading.Lock())
