"""The PostgreSQL state store: one database shared by any number of daemons.

Selected with ``PALYRA_DATABASE_URL=postgresql://…``. It runs the same SQL as the SQLite
store (:mod:`palyra.store.sql`) and the same migrations (:mod:`palyra.store.schema`), and
keeps the same contract:

* **Writers are serialised** across every daemon: a write transaction's first statement
  takes one transaction-scoped advisory lock, as SQLite's ``BEGIN IMMEDIATE`` takes the
  file's write lock. That is what keeps the journal a single hash chain (read the last hash,
  append the next) and makes every read-then-write decision (already installed? downgrade?)
  as safe as on one machine. Writes are short (no sandbox runs inside one), so one lock
  costs little; a writer that cannot get it within ``BUSY_TIMEOUT_MS`` gets a typed error.
* **Reads are snapshots** (``REPEATABLE READ READ ONLY``) and never wait for writers.
* Connections come from a bounded pool (psycopg_pool), not one per thread: a daemon's thread
  count is not bounded by PostgreSQL's ``max_connections``.
"""

from __future__ import annotations

import contextlib
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

# Imported only when a PostgreSQL URL is configured (palyra.store.open_store imports this
# module lazily), so a SQLite daemon never loads the driver.
import psycopg
import psycopg_pool
from psycopg.rows import dict_row

from palyra.store.base import JournalEvent, StoreError
from palyra.store.schema import MIGRATIONS
from palyra.store.sql import SqlTransaction, batched_events, queued_write

BUSY_TIMEOUT_MS = 15_000
CONNECT_TIMEOUT_S = 15.0
POOL_SIZE = 16
# The advisory lock every writer takes (an arbitrary constant: "palyra" in ASCII).
WRITE_LOCK_KEY = 0x70616C797261

_BEGIN_WRITE = f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})".encode()

_placeholders: dict[str, str] = {}


def _pg_sql(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (the shared SQL has no literal ``?`` or ``%``)."""
    converted = _placeholders.get(sql)
    if converted is None:
        converted = _placeholders[sql] = sql.replace("?", "%s")
    return converted


def redact(url: str) -> str:
    """The URL without its password, for messages and ``location``."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "postgresql://(unparseable URL)"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = urllib.parse.urlencode(
        [
            (k, "***" if k.lower() == "password" else v)
            for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="/",
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class PgTransaction(SqlTransaction):
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        super().__init__()
        self._conn = conn

    def _execute(self, sql: str, args: tuple[Any, ...]) -> psycopg.Cursor[Any]:
        return self._conn.execute(_pg_sql(sql), args)


class PostgresStore:
    """A connection pool on one PostgreSQL database; created and migrated on first use."""

    def __init__(
        self, url: str, *, pool_size: int = POOL_SIZE, busy_timeout_ms: int = BUSY_TIMEOUT_MS
    ) -> None:
        self.location = redact(url)
        self.shared = True
        self.bindings_generation = 0
        self._writer = threading.Lock()
        self.busy_timeout_ms = busy_timeout_ms
        try:
            self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = (
                psycopg_pool.ConnectionPool(
                    url,
                    min_size=1,
                    max_size=pool_size,
                    kwargs={
                        "autocommit": True,  # transactions are explicit BEGIN … COMMIT
                        "row_factory": dict_row,
                        "connect_timeout": int(CONNECT_TIMEOUT_S),
                        "application_name": "palyra",
                        # Bounds the wait for another daemon's write lock (below).
                        "options": _options(url, busy_timeout_ms),
                    },
                    timeout=busy_timeout_ms / 1000,
                    open=False,
                    name="palyra-store",
                )
            )
        except (psycopg.Error, psycopg_pool.PoolTimeout, ValueError) as exc:
            raise StoreError(f"cannot use state database {self.location}: {_line(exc)}") from None
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            self._pool.close()
            raise StoreError(
                f"cannot connect to state database {self.location}: {_line(exc)}"
            ) from None
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg_pool.PoolTimeout:
            raise StoreError(
                f"state database {self.location} is busy (no free connection within "
                f"{self.busy_timeout_ms / 1000:g} s)"
            ) from None
        except psycopg_pool.PoolClosed:
            raise StoreError(f"state database {self.location} is closed") from None

    def _migrate(self) -> None:
        try:
            with self._connection() as conn:
                conn.execute("BEGIN")
                try:
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS palyra_schema (version INTEGER NOT NULL)"
                    )
                    row = conn.execute("SELECT version FROM palyra_schema").fetchone()
                    if row is None:
                        conn.execute("INSERT INTO palyra_schema VALUES (0)")
                    version = 0 if row is None else int(row["version"])
                    if version > len(MIGRATIONS):
                        raise StoreError(
                            f"state database {self.location} has schema version {version}; "
                            f"this palyra knows up to {len(MIGRATIONS)} (upgrade palyra)"
                        )
                    for index in range(version, len(MIGRATIONS)):
                        # No parameters: psycopg sends the script as one simple query.
                        conn.execute(MIGRATIONS[index].render("postgres").encode())
                        conn.execute("UPDATE palyra_schema SET version = %s", (index + 1,))
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn)
                    raise
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot migrate state database {self.location}: {_line(exc)}"
            ) from None

    @contextlib.contextmanager
    def read(self) -> Iterator[SqlTransaction]:
        with self._connection() as conn:
            try:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            except psycopg.Error as exc:
                raise StoreError(f"state database read failed: {_line(exc)}") from None
            try:
                yield PgTransaction(conn)
            except psycopg.Error as exc:
                raise StoreError(f"state database read failed: {_line(exc)}") from None
            finally:
                _rollback(conn)

    @contextlib.contextmanager
    def write(self) -> Iterator[SqlTransaction]:
        # Other daemons queue on the advisory lock, in ``_write_transaction``.
        with queued_write(
            self, self._writer, self.busy_timeout_ms / 1000, self._write_transaction
        ) as tx:
            yield tx

    @contextlib.contextmanager
    def _write_transaction(self) -> Iterator[PgTransaction]:
        with self._connection() as conn:
            try:
                # One round trip: a simple query may hold several statements (no parameters;
                # the key is a constant), and the transaction stays open after it.
                conn.execute(_BEGIN_WRITE)
            except psycopg.errors.LockNotAvailable:
                _rollback(conn)
                raise StoreError(
                    "state database is busy (another daemon holds the write lock)"
                ) from None
            except psycopg.Error as exc:
                _rollback(conn)
                raise StoreError(f"state database is unavailable: {_line(exc)}") from None
            try:
                yield PgTransaction(conn)
            except psycopg.Error as exc:
                _rollback(conn)
                raise StoreError(f"state database write failed: {_line(exc)}") from None
            except BaseException:
                _rollback(conn)
                raise
            try:
                conn.execute("COMMIT")
            except psycopg.Error as exc:
                _rollback(conn)
                raise StoreError(f"state database write failed: {_line(exc)}") from None

    def iter_events(self, batch: int = 500) -> Iterator[JournalEvent]:
        return batched_events(self.read, batch)

    def close(self) -> None:
        self._pool.close()


def _options(url: str, busy_timeout_ms: int) -> str:
    """The URL's own ``options`` (if any) plus palyra's lock timeout."""
    try:
        given = psycopg.conninfo.conninfo_to_dict(url).get("options") or ""
    except psycopg.Error:
        given = ""  # the pool's connect reports the malformed URL
    return f"{given} -c lock_timeout={int(busy_timeout_ms)}".strip()


def _rollback(conn: psycopg.Connection[Any]) -> None:
    with contextlib.suppress(psycopg.Error):
        conn.execute("ROLLBACK")


def _line(exc: BaseException) -> str:
    """psycopg messages span lines (DETAIL, HINT, CONTEXT); errors here are one line."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = " ".join(str(primary or exc).split())
    return text[:300] or type(exc).__name__
