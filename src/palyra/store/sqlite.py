"""The SQLite state store: versioned migrations, WAL, one writer at a time.

Write transactions start with ``BEGIN IMMEDIATE`` so two writers never deadlock on a lock
upgrade, and the journal's hash chain (read last hash, insert next) is serialised across
threads *and* processes (the daemon and a local CLI may share one database). WAL with
``synchronous=NORMAL`` survives a killed process: a committed transaction is in the WAL
before ``COMMIT`` returns.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from palyra.store.base import (
    ApprovalRecord,
    ApprovalState,
    CapabilityProfile,
    HookBinding,
    JournalEvent,
    PluginBinding,
    SkillStatus,
    SkillVersionRecord,
    StoreError,
)
from palyra.store.journal_chain import GENESIS_HASH, canonical_payload, event_hash

BUSY_TIMEOUT_MS = 15_000

# Each entry moves the schema from version i to i + 1; never edit a released entry.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE skill_versions (
        skill_id TEXT NOT NULL,
        version TEXT NOT NULL,
        publisher TEXT NOT NULL,
        name TEXT NOT NULL,
        artifact_sha256 TEXT NOT NULL,
        payload_sha256 TEXT NOT NULL,
        key_id TEXT NOT NULL,
        public_key_hex TEXT NOT NULL,
        trust_decision TEXT NOT NULL,
        source_kind TEXT NOT NULL,
        source_ref TEXT NOT NULL,
        installed_at_ms INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'quarantined', 'disabled')),
        status_reason TEXT,
        status_changed_at_ms INTEGER NOT NULL,
        status_principal TEXT NOT NULL,
        audit_json TEXT NOT NULL,
        pending_capabilities_json TEXT,
        PRIMARY KEY (skill_id, version)
    );
    CREATE TABLE skills (
        skill_id TEXT PRIMARY KEY,
        current_version TEXT NOT NULL,
        FOREIGN KEY (skill_id, current_version) REFERENCES skill_versions (skill_id, version)
    );
    CREATE TABLE plugin_bindings (
        plugin_id TEXT PRIMARY KEY,
        skill_id TEXT NOT NULL,
        skill_version TEXT,
        tool_id TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        profile_json TEXT NOT NULL,
        notes TEXT,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE hook_bindings (
        hook_id TEXT PRIMARY KEY,
        event TEXT NOT NULL,
        plugin_id TEXT NOT NULL REFERENCES plugin_bindings (plugin_id),
        enabled INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE INDEX hook_bindings_event ON hook_bindings (event);
    CREATE TABLE approvals (
        approval_id TEXT PRIMARY KEY,
        skill_id TEXT NOT NULL,
        version TEXT NOT NULL,
        tool_id TEXT NOT NULL,
        input_sha256 TEXT NOT NULL,
        input_preview TEXT NOT NULL,
        requested_by TEXT NOT NULL,
        requested_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'expired')),
        decided_at_ms INTEGER,
        decided_by TEXT,
        window_until_ms INTEGER,
        reason TEXT
    );
    CREATE INDEX approvals_state ON approvals (state, requested_at_ms);
    CREATE TABLE approval_windows (
        skill_id TEXT NOT NULL,
        version TEXT NOT NULL,
        tool_id TEXT NOT NULL,
        until_ms INTEGER NOT NULL,
        approved_by TEXT NOT NULL,
        PRIMARY KEY (skill_id, version, tool_id)
    );
    CREATE TABLE journal (
        seq INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT NOT NULL,
        payload_json TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX journal_kind ON journal (kind, seq);
    CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
        BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
    CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
        BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
    """,
]


def now_ms() -> int:
    return int(time.time() * 1000)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _skill(row: sqlite3.Row, current: str | None) -> SkillVersionRecord:
    return SkillVersionRecord(
        skill_id=row["skill_id"],
        version=row["version"],
        publisher=row["publisher"],
        name=row["name"],
        artifact_sha256=row["artifact_sha256"],
        payload_sha256=row["payload_sha256"],
        key_id=row["key_id"],
        public_key_hex=row["public_key_hex"],
        trust_decision=row["trust_decision"],
        source_kind=row["source_kind"],
        source_ref=row["source_ref"],
        installed_at_ms=row["installed_at_ms"],
        status=SkillStatus(row["status"]),
        status_reason=row["status_reason"],
        status_changed_at_ms=row["status_changed_at_ms"],
        status_principal=row["status_principal"],
        audit=_loads(row["audit_json"]),
        pending_capabilities=_loads(row["pending_capabilities_json"]),
        current=current == row["version"],
    )


def _plugin(row: sqlite3.Row) -> PluginBinding:
    return PluginBinding(
        plugin_id=row["plugin_id"],
        skill_id=row["skill_id"],
        skill_version=row["skill_version"],
        tool_id=row["tool_id"],
        enabled=bool(row["enabled"]),
        profile=CapabilityProfile.from_json(_loads(row["profile_json"])),
        notes=row["notes"],
        created_at_ms=row["created_at_ms"],
        updated_at_ms=row["updated_at_ms"],
    )


def _hook(row: sqlite3.Row) -> HookBinding:
    return HookBinding(
        hook_id=row["hook_id"],
        event=row["event"],
        plugin_id=row["plugin_id"],
        enabled=bool(row["enabled"]),
        created_at_ms=row["created_at_ms"],
        updated_at_ms=row["updated_at_ms"],
    )


def _approval(row: sqlite3.Row) -> ApprovalRecord:
    return ApprovalRecord(
        approval_id=row["approval_id"],
        skill_id=row["skill_id"],
        version=row["version"],
        tool_id=row["tool_id"],
        input_sha256=row["input_sha256"],
        input_preview=row["input_preview"],
        requested_by=row["requested_by"],
        requested_at_ms=row["requested_at_ms"],
        expires_at_ms=row["expires_at_ms"],
        state=ApprovalState(row["state"]),
        decided_at_ms=row["decided_at_ms"],
        decided_by=row["decided_by"],
        window_until_ms=row["window_until_ms"],
        reason=row["reason"],
    )


def _event(row: sqlite3.Row) -> JournalEvent:
    return JournalEvent(
        seq=row["seq"],
        at_ms=row["at_ms"],
        kind=row["kind"],
        actor=row["actor"],
        payload=json.loads(row["payload_json"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


class SqliteTransaction:
    """:class:`palyra.store.base.Transaction` on one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.bindings_touched = False  # plugin or hook bindings written in this transaction

    def _one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._conn.execute(sql, args).fetchone()
        return row

    def _all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return list(self._conn.execute(sql, args).fetchall())

    def _run(self, sql: str, *args: Any) -> int:
        return self._conn.execute(sql, args).rowcount

    # ---- skills -------------------------------------------------------------------------
    def skill_versions(self, skill_id: str | None = None) -> list[SkillVersionRecord]:
        sql = (
            "SELECT v.*, s.current_version FROM skill_versions v "
            "LEFT JOIN skills s ON s.skill_id = v.skill_id"
        )
        rows = (
            self._all(sql + " WHERE v.skill_id = ? ORDER BY v.installed_at_ms", skill_id)
            if skill_id is not None
            else self._all(sql + " ORDER BY v.skill_id, v.installed_at_ms")
        )
        return [_skill(row, row["current_version"]) for row in rows]

    def skill_version(self, skill_id: str, version: str) -> SkillVersionRecord | None:
        row = self._one(
            "SELECT v.*, s.current_version FROM skill_versions v "
            "LEFT JOIN skills s ON s.skill_id = v.skill_id "
            "WHERE v.skill_id = ? AND v.version = ?",
            skill_id,
            version,
        )
        return None if row is None else _skill(row, row["current_version"])

    def current_version(self, skill_id: str) -> str | None:
        row = self._one("SELECT current_version FROM skills WHERE skill_id = ?", skill_id)
        return None if row is None else str(row["current_version"])

    def insert_skill_version(self, record: SkillVersionRecord) -> None:
        self._run(
            "INSERT INTO skill_versions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            record.skill_id,
            record.version,
            record.publisher,
            record.name,
            record.artifact_sha256,
            record.payload_sha256,
            record.key_id,
            record.public_key_hex,
            record.trust_decision,
            record.source_kind,
            record.source_ref,
            record.installed_at_ms,
            record.status.value,
            record.status_reason,
            record.status_changed_at_ms,
            record.status_principal,
            _dumps(record.audit),
            None if record.pending_capabilities is None else _dumps(record.pending_capabilities),
        )

    def delete_skill_version(self, skill_id: str, version: str) -> None:
        self._run(
            "DELETE FROM skill_versions WHERE skill_id = ? AND version = ?", skill_id, version
        )

    def set_current(self, skill_id: str, version: str | None) -> None:
        if version is None:
            self._run("DELETE FROM skills WHERE skill_id = ?", skill_id)
        else:
            self._run(
                "INSERT INTO skills VALUES (?, ?) "
                "ON CONFLICT (skill_id) DO UPDATE SET current_version = excluded.current_version",
                skill_id,
                version,
            )

    def set_status(
        self,
        skill_id: str,
        version: str,
        status: SkillStatus,
        reason: str | None,
        principal: str,
        at_ms: int,
    ) -> None:
        self._run(
            "UPDATE skill_versions SET status = ?, status_reason = ?, status_principal = ?, "
            "status_changed_at_ms = ? WHERE skill_id = ? AND version = ?",
            status.value,
            reason,
            principal,
            at_ms,
            skill_id,
            version,
        )

    def set_pending_capabilities(
        self, skill_id: str, version: str, pending: dict[str, Any] | None
    ) -> None:
        self._run(
            "UPDATE skill_versions SET pending_capabilities_json = ? "
            "WHERE skill_id = ? AND version = ?",
            None if pending is None else _dumps(pending),
            skill_id,
            version,
        )

    def set_verification(
        self, skill_id: str, version: str, trust_decision: str, audit: dict[str, Any]
    ) -> None:
        self._run(
            "UPDATE skill_versions SET trust_decision = ?, audit_json = ? "
            "WHERE skill_id = ? AND version = ?",
            trust_decision,
            _dumps(audit),
            skill_id,
            version,
        )

    # ---- plugin and hook bindings -------------------------------------------------------
    def plugins(self) -> list[PluginBinding]:
        return [_plugin(r) for r in self._all("SELECT * FROM plugin_bindings ORDER BY plugin_id")]

    def plugin(self, plugin_id: str) -> PluginBinding | None:
        row = self._one("SELECT * FROM plugin_bindings WHERE plugin_id = ?", plugin_id)
        return None if row is None else _plugin(row)

    def upsert_plugin(self, binding: PluginBinding) -> None:
        self.bindings_touched = True
        self._run(
            "INSERT OR REPLACE INTO plugin_bindings VALUES (?,?,?,?,?,?,?,?,?)",
            binding.plugin_id,
            binding.skill_id,
            binding.skill_version,
            binding.tool_id,
            int(binding.enabled),
            _dumps(binding.profile.to_json()),
            binding.notes,
            binding.created_at_ms,
            binding.updated_at_ms,
        )

    def delete_plugin(self, plugin_id: str) -> None:
        self.bindings_touched = True
        self._run("DELETE FROM plugin_bindings WHERE plugin_id = ?", plugin_id)

    def hooks(self) -> list[HookBinding]:
        return [_hook(r) for r in self._all("SELECT * FROM hook_bindings ORDER BY hook_id")]

    def hook(self, hook_id: str) -> HookBinding | None:
        row = self._one("SELECT * FROM hook_bindings WHERE hook_id = ?", hook_id)
        return None if row is None else _hook(row)

    def upsert_hook(self, binding: HookBinding) -> None:
        self.bindings_touched = True
        self._run(
            "INSERT OR REPLACE INTO hook_bindings VALUES (?,?,?,?,?,?)",
            binding.hook_id,
            binding.event,
            binding.plugin_id,
            int(binding.enabled),
            binding.created_at_ms,
            binding.updated_at_ms,
        )

    def delete_hook(self, hook_id: str) -> None:
        self.bindings_touched = True
        self._run("DELETE FROM hook_bindings WHERE hook_id = ?", hook_id)

    # ---- approvals ----------------------------------------------------------------------
    def insert_approval(self, record: ApprovalRecord) -> None:
        self._run(
            "INSERT INTO approvals VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            record.approval_id,
            record.skill_id,
            record.version,
            record.tool_id,
            record.input_sha256,
            record.input_preview,
            record.requested_by,
            record.requested_at_ms,
            record.expires_at_ms,
            record.state.value,
            record.decided_at_ms,
            record.decided_by,
            record.window_until_ms,
            record.reason,
        )

    def approval(self, approval_id: str) -> ApprovalRecord | None:
        row = self._one("SELECT * FROM approvals WHERE approval_id = ?", approval_id)
        return None if row is None else _approval(row)

    def approvals(self, state: ApprovalState | None = None) -> list[ApprovalRecord]:
        if state is None:
            rows = self._all("SELECT * FROM approvals ORDER BY requested_at_ms, approval_id")
        else:
            rows = self._all(
                "SELECT * FROM approvals WHERE state = ? ORDER BY requested_at_ms, approval_id",
                state.value,
            )
        return [_approval(r) for r in rows]

    def decide_approval(
        self,
        approval_id: str,
        state: ApprovalState,
        by: str,
        at_ms: int,
        window_until_ms: int | None,
        reason: str | None,
    ) -> None:
        self._run(
            "UPDATE approvals SET state = ?, decided_by = ?, decided_at_ms = ?, "
            "window_until_ms = ?, reason = ? WHERE approval_id = ?",
            state.value,
            by,
            at_ms,
            window_until_ms,
            reason,
            approval_id,
        )

    def approval_window(self, skill_id: str, version: str, tool_id: str) -> int | None:
        row = self._one(
            "SELECT until_ms FROM approval_windows "
            "WHERE skill_id = ? AND version = ? AND tool_id = ?",
            skill_id,
            version,
            tool_id,
        )
        return None if row is None else int(row["until_ms"])

    def set_approval_window(
        self, skill_id: str, version: str, tool_id: str, until_ms: int, by: str
    ) -> None:
        self._run(
            "INSERT OR REPLACE INTO approval_windows VALUES (?,?,?,?,?)",
            skill_id,
            version,
            tool_id,
            until_ms,
            by,
        )

    # ---- journal ------------------------------------------------------------------------
    def append_event(self, kind: str, actor: str, payload: dict[str, Any]) -> JournalEvent:
        last = self._one("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1")
        prev = GENESIS_HASH if last is None else str(last["hash"])
        seq = 1 if last is None else int(last["seq"]) + 1
        at = now_ms()
        text = canonical_payload(payload)
        digest = event_hash(prev, seq, at, kind, actor, text)
        self._run(
            "INSERT INTO journal VALUES (?,?,?,?,?,?,?)", seq, at, kind, actor, text, prev, digest
        )
        return JournalEvent(seq, at, kind, actor, json.loads(text), prev, digest)

    def events(
        self, after_seq: int = 0, limit: int = 100, kind: str | None = None
    ) -> list[JournalEvent]:
        if kind is None:
            rows = self._all(
                "SELECT * FROM journal WHERE seq > ? ORDER BY seq LIMIT ?", after_seq, limit
            )
        else:
            rows = self._all(
                "SELECT * FROM journal WHERE seq > ? AND kind = ? ORDER BY seq LIMIT ?",
                after_seq,
                kind,
                limit,
            )
        return [_event(r) for r in rows]

    def last_event(self) -> JournalEvent | None:
        row = self._one("SELECT * FROM journal ORDER BY seq DESC LIMIT 1")
        return None if row is None else _event(row)


class SqliteStore:
    """One database file; a connection per thread (sqlite3 connections are not shareable)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
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
                    for statement in _statements(MIGRATIONS[index]):
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {index + 1}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"cannot migrate state database {self.path}: {exc}") from None

    @contextlib.contextmanager
    def read(self) -> Iterator[SqliteTransaction]:
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
    def write(self) -> Iterator[SqliteTransaction]:
        # Threads of this process queue on a lock first: SQLite's own busy handler makes a
        # waiting writer sleep in steps of up to 100 ms, which under concurrent tool calls
        # (one journal write each) turned lock waits into most of a call's latency. Other
        # processes still meet the busy handler, as they must.
        if not self._writer.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
            raise StoreError("state database is busy (another writer holds it)")
        try:
            with self._write_transaction() as tx:
                yield tx
            if tx.bindings_touched:
                self.bindings_generation += 1
        finally:
            self._writer.release()

    @contextlib.contextmanager
    def _write_transaction(self) -> Iterator[SqliteTransaction]:
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
        after = 0
        while True:
            with self.read() as tx:
                chunk = tx.events(after_seq=after, limit=batch)
            yield from chunk
            if len(chunk) < batch:
                return
            after = chunk[-1].seq

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
