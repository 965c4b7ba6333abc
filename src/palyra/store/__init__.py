"""The daemon's single source of truth (design.md §4): SQLite by default.

Everything above this package talks to :class:`palyra.store.base.StateStore` only, so a
PostgreSQL implementation can slot in behind the same interface.
"""

from __future__ import annotations

from pathlib import Path

from palyra.store.base import StateStore


def open_store(state_root: Path) -> StateStore:
    """The state database under ``state_root`` (created and migrated on first use)."""
    from palyra.store.sqlite import SqliteStore

    return SqliteStore(state_root / "palyra.sqlite3")
