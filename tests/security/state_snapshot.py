"""What a refused operation must leave untouched: the state store, the trust store, the
journal and the installed artifacts of one state root.

``snapshot(root)`` reads all of it without opening a ``Service`` (which would run recovery
and could write); two snapshots compare equal exactly when nothing observable changed.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from palyra.daemon.artifacts import skills_dir
from palyra.paths import resolve_trust_store

DATABASE = "palyra.sqlite3"


@dataclass(frozen=True)
class Snapshot:
    tables: dict[str, list[tuple[Any, ...]]]
    trust_store: bytes | None
    files: dict[str, str]  # path under the skills directory → sha256

    def describe_difference(self, other: Snapshot) -> str:
        """One line naming what differs (for assertion messages)."""
        changed = [name for name in self.tables if self.tables[name] != other.tables.get(name)]
        if self.trust_store != other.trust_store:
            changed.append("trust store")
        if self.files != other.files:
            changed.append("artifact files")
        return ", ".join(changed) or "nothing"


def snapshot(root: Path) -> Snapshot:
    tables: dict[str, list[tuple[Any, ...]]] = {}
    database = root / DATABASE
    if database.exists():
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            names = [
                row[0]
                for row in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
                )
            ]
            for name in names:
                rows = connection.execute(
                    f'SELECT * FROM "{name}"'
                ).fetchall()  # names come from sqlite_master
                tables[name] = sorted(rows, key=repr)
        finally:
            connection.close()
    trust_path = resolve_trust_store(root)
    trust = trust_path.read_bytes() if trust_path.exists() else None
    files: dict[str, str] = {}
    base = skills_dir(root)
    if base.exists():
        for path in sorted(base.rglob("*")):
            if path.is_file() and path.suffix != ".lock":  # empty lock files hold no state
                files[str(path.relative_to(base))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return Snapshot(tables, trust, files)


def assert_unchanged(root: Path, before: Snapshot) -> None:
    after = snapshot(root)
    assert after == before, f"state changed: {before.describe_difference(after)}"
