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
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
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

    def put(self, key: str, value: bytes) -> None:
        parts = self._check(key, write=True)
        if len(value) > self.max_value_bytes:
            raise StorageError("TOO_LARGE", f"values are limited to {self.max_value_bytes} bytes")
        if self.usage() + len(value) > self.quota_bytes:
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

    def list(self, prefix: str) -> list[str]:
        parts = self._check(prefix, write=False, exact=False)
        base = self.root.joinpath(*parts)
        keys: list[str] = []
        if not base.is_dir() or base.is_symlink():
            return keys
        for directory, dirnames, filenames in os.walk(base, followlinks=False):
            dirnames[:] = sorted(
                d for d in dirnames if not os.path.islink(os.path.join(directory, d))
            )
            rel = Path(directory).relative_to(self.root)
            for name in sorted(filenames):
                full = Path(directory) / name
                if name.startswith(".tmp-") or full.is_symlink():
                    continue
                keys.append("/".join((*rel.parts, name)))
                if len(keys) >= MAX_LIST:
                    return keys
        return keys

    def usage(self) -> int:
        total = 0
        if not self.root.is_dir():
            return 0
        for directory, _dirs, files in os.walk(self.root, followlinks=False):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.stat(os.path.join(directory, name), follow_symlinks=False).st_size
        return total
