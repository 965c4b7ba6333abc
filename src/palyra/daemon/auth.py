"""The API bearer token and the "a daemon runs here" marker, both under ``<state>/daemon/``.

The token is generated on first start from :mod:`secrets` (256 bits), stored 0600 in a 0700
directory, and compared in constant time. The marker lets a CLI on the same state root find
the running daemon instead of opening the database behind its back.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from palyra.errors import IoFailure
from palyra.fsutil import atomic_write

TOKEN_FILE = "api-token"  # noqa: S105 (a file name, not a password)
MARKER_FILE = "daemon.json"


def daemon_dir(state_root: Path) -> Path:
    path = state_root / "daemon"
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise IoFailure(f"cannot create {path}: {exc.strerror}") from None
    return path


def read_token(state_root: Path) -> str | None:
    try:
        text = (state_root / "daemon" / TOKEN_FILE).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def load_or_create_token(state_root: Path) -> str:
    existing = read_token(state_root)
    if existing is not None:
        return existing
    token = secrets.token_urlsafe(32)
    path = daemon_dir(state_root) / TOKEN_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its token
        raced = read_token(state_root)
        if raced is None:
            raise IoFailure(f"{path} exists but holds no token") from None
        return raced
    except OSError as exc:
        raise IoFailure(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token + "\n")
    return token


def token_matches(expected: str, presented: str) -> bool:
    return hmac.compare_digest(expected.encode(), presented.encode())


def write_marker(state_root: Path, url: str) -> None:
    body = {"url": url, "pid": os.getpid()}
    atomic_write(daemon_dir(state_root) / MARKER_FILE, json.dumps(body).encode(), mode=0o600)


def clear_marker(state_root: Path) -> None:
    with contextlib.suppress(OSError):
        (state_root / "daemon" / MARKER_FILE).unlink()


def running_daemon(state_root: Path) -> dict[str, Any] | None:
    """The marker of a daemon whose process is still alive, else None."""
    try:
        body = json.loads((state_root / "daemon" / MARKER_FILE).read_text(encoding="utf-8"))
        pid, url = int(body["pid"]), str(body["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by someone else
    return {"url": url, "pid": pid}
