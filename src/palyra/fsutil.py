"""Small filesystem helpers shared by every layer."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from palyra.errors import IoFailure


def atomic_write(path: Path, data: bytes, *, mode: int) -> None:
    """Replace ``path`` with ``data`` so a crash leaves the old file or the new one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp, mode)
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise IoFailure(f"cannot write {path}: {exc.strerror}") from None
