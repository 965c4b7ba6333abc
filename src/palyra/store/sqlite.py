"""The SQLite state store: versioned migrations, WAL, one writer at a time.

Write transactions start with ``BEGIN IMMEDIATE`` so two writers never deadlock on a lock
upgrade, and the journal's hash chain (read last hash, insert next) is serialised across
threads *and* processes (the daemon and a local CLI may share one database). WAL with
``synchronous=NORMAL`` survives a killed process: a committed transaction is in the WAL
before ``COMMIT`` returns.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from palyra.store.base import JournalEvent, StoreError
from palyra.store.schema import MIGRATIONS
from palyra.store.sql import SqlTransaction, batched_events, queued_write

BUSY_TIMEOUT_MS = 15_000


class SqliteTransaction(SqlTransaction):
    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__()
        self._conn = conn

    def _execute(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        return self._conn.execute(sql, args)


class SqliteStore:
    """One database file; a connection per thread (sqlite3 connections are not shareable)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        self.shared = False  # one host: artifacts, vault and trust store stay files
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writer = threading.Lock()
        # Bumped after a commit that changed plugin or hook bindings (this process only):
        # lets the hook dispatcher cache the bindings instead of reading them on every call.
        self.bindings_generation = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StoreError(f"cannot create {path.parent}: {exc.strerror}") from None
        self._migrate()

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            fresh = not self.path.exists()
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                timeout=BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False,
            )
            if fresh:
                os.chmod(self.path, 0o600)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open state database {self.path}: {exc}") from None
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)
        return conn

    def _migrate(self) -> None:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if version > len(MIGRATIONS):
                    raise StoreError(
                        f"state database {self.path} has schema version {version}; this palyra "
                        f"knows up to {len(MIGRATIONS)} (upgrade palyra)"
                    )
                for index in range(version, len(MIGRATIONS)):
                    for statement in _statements(MIGRATIONS[index].render("sqlite")):
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {index + 1}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"cannot migrate state database {self.path}: {exc}") from None

    @contextlib.contextmanager
    def read(self) -> Iterator[SqlTransaction]:
        conn = self._connect()
        try:
            conn.execute("BEGIN")
            try:
                yield SqliteTransaction(conn)
            finally:
                conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise StoreError(f"state database read failed: {exc}") from None

    @contextlib.contextmanager
    def write(self) -> Iterator[SqlTransaction]:
        # Threads of this process queue on a lock first: SQLite's own busy handler makes a
        # waiting writer sleep in steps of up to 100 ms, which under concurrent tool calls
        # (one journal write each) turned lock waits into most of a call's latency. Other
        # processes still meet the busy handler, as they must.
        with queued_write(
            self, self._writer, BUSY_TIMEOUT_MS / 1000, self._write_transaction
        ) as tx:
            yield tx

    @contextlib.contextmanager
    def _write_transaction(self) -> Iterator[SqlTransaction]:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"state database is unavailable: {exc}") from None
        try:
            yield SqliteTransaction(conn)
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise StoreError(f"state database write failed: {exc}") from None
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise StoreError(f"state database write failed: {exc}") from None

    def iter_events(self, batch: int = 500) -> Iterator[JournalEvent]:
        return batched_events(self.read, batch)

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()
        self._local = threading.local()


def _statements(script: str) -> list[str]:
    """Split a migration into statements (triggers contain ``;`` inside BEGIN … END)."""
    statements: list[str] = []
    buffer = ""
    for line in script.strip().splitlines():
        buffer += line + "\n"
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
