"""The daemon's single source of truth (design.md §4): SQLite by default, PostgreSQL when
several daemons share state (``PALYRA_DATABASE_URL=postgresql://…``).

Everything above this package talks to :class:`palyra.store.base.StateStore` only.
"""

from __future__ import annotations

import os
from pathlib import Path

from palyra.store.base import StateStore, StoreError

DATABASE_URL_ENV = "PALYRA_DATABASE_URL"
_SCHEMES = ("postgresql://", "postgres://")


def open_store(state_root: Path, database_url: str | None = None) -> StateStore:
    """The state database: ``database_url`` (else ``$PALYRA_DATABASE_URL``) when set, else
    the SQLite file under ``state_root`` (created and migrated on first use)."""
    url = database_url if database_url is not None else os.environ.get(DATABASE_URL_ENV, "")
    url = url.strip()
    if url:
        if not url.lower().startswith(_SCHEMES):
            raise StoreError(
                f"{DATABASE_URL_ENV} must be a postgresql:// URL (unset it for SQLite)"
            )
        from palyra.store.postgres import PostgresStore

        return PostgresStore(url)
    from palyra.store.sqlite import SqliteStore

    return SqliteStore(state_root / "palyra.sqlite3")
