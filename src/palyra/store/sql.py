"""The state store's SQL, shared by the SQLite and PostgreSQL stores.

Everything here is plain SQL both databases run alike (portable upserts, ``?`` placeholders
translated per driver), so the two stores differ only in how they connect, lock and
migrate — and the same tests prove both.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

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
    UnstorableText,
)
from palyra.store.journal_chain import GENESIS_HASH, canonical_payload, event_hash

# A result row: sqlite3.Row and psycopg's dict rows are both read by column name.
Row = Any


def now_ms() -> int:
    return int(time.time() * 1000)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


# Stored JSON is the journal's canonical text: one spelling of every value.
_dumps = canonical_payload


def _skill(row: Row, current: str | None) -> SkillVersionRecord:
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


def _plugin(row: Row) -> PluginBinding:
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


def _hook(row: Row) -> HookBinding:
    return HookBinding(
        hook_id=row["hook_id"],
        event=row["event"],
        plugin_id=row["plugin_id"],
        enabled=bool(row["enabled"]),
        created_at_ms=row["created_at_ms"],
        updated_at_ms=row["updated_at_ms"],
    )


def _approval(row: Row) -> ApprovalRecord:
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


def _event(row: Row) -> JournalEvent:
    return JournalEvent(
        seq=row["seq"],
        at_ms=row["at_ms"],
        kind=row["kind"],
        actor=row["actor"],
        payload=json.loads(row["payload_json"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def storable(text: str) -> str:
    """``text``, or :class:`UnstorableText`. PostgreSQL cannot store NUL in TEXT, and
    neither driver (nor the journal's hash) can encode a lone surrogate, which a JSON body's
    ``"\\ud800"`` decodes to. Refusing both on both stores, before anything is written,
    keeps the backends interchangeable and the error typed."""
    if "\x00" in text:
        raise UnstorableText("text values cannot contain NUL characters")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise UnstorableText("text values must be valid Unicode (no lone surrogates)") from None
    return text


class SqlTransaction:
    """:class:`palyra.store.base.Transaction` in SQL both databases run alike.

    Statements use ``?`` placeholders; a dialect's subclass says how to execute one
    (:meth:`_execute`), nothing else.
    """

    def __init__(self) -> None:
        self.bindings_touched = False  # plugin or hook bindings written in this transaction

    def _execute(self, sql: str, args: tuple[Any, ...]) -> Any:
        """Run one statement; returns a DB-API cursor (fetchone, fetchall, rowcount)."""
        raise NotImplementedError

    def _checked(self, sql: str, args: tuple[Any, ...]) -> Any:
        for arg in args:
            if isinstance(arg, str):
                storable(arg)
        return self._execute(sql, args)

    def _one(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = self._checked(sql, args).fetchone()
        return row

    def _all(self, sql: str, *args: Any) -> list[Row]:
        return list(self._checked(sql, args).fetchall())

    def _run(self, sql: str, *args: Any) -> int:
        rowcount: int = self._checked(sql, args).rowcount
        return rowcount

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
            "INSERT INTO plugin_bindings VALUES (?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (plugin_id) DO UPDATE "
            "SET skill_id = excluded.skill_id, skill_version = excluded.skill_version, "
            "tool_id = excluded.tool_id, enabled = excluded.enabled, "
            "profile_json = excluded.profile_json, notes = excluded.notes, "
            "created_at_ms = excluded.created_at_ms, updated_at_ms = excluded.updated_at_ms",
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
            "INSERT INTO hook_bindings VALUES (?,?,?,?,?,?) ON CONFLICT (hook_id) DO UPDATE "
            "SET event = excluded.event, plugin_id = excluded.plugin_id, "
            "enabled = excluded.enabled, created_at_ms = excluded.created_at_ms, "
            "updated_at_ms = excluded.updated_at_ms",
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
            "INSERT INTO approval_windows VALUES (?,?,?,?,?) "
            "ON CONFLICT (skill_id, version, tool_id) DO UPDATE "
            "SET until_ms = excluded.until_ms, approved_by = excluded.approved_by",
            skill_id,
            version,
            tool_id,
            until_ms,
            by,
        )

    # ---- artifacts and documents (shared stores) ------------------------------------------
    def put_artifact(self, sha256: str, data: bytes) -> None:
        self._run(
            "INSERT INTO artifact_blobs VALUES (?,?,?,?) ON CONFLICT (sha256) DO NOTHING",
            sha256,
            len(data),
            data,
            now_ms(),
        )

    def artifact(self, sha256: str) -> bytes | None:
        row = self._one("SELECT data FROM artifact_blobs WHERE sha256 = ?", sha256)
        return None if row is None else bytes(row["data"])

    def drop_unreferenced_artifacts(self) -> list[str]:
        rows = self._all(
            "DELETE FROM artifact_blobs WHERE sha256 NOT IN "
            "(SELECT artifact_sha256 FROM skill_versions) RETURNING sha256"
        )
        return sorted(str(r["sha256"]) for r in rows)

    def document(self, name: str) -> str | None:
        row = self._one("SELECT body FROM documents WHERE name = ?", name)
        return None if row is None else str(row["body"])

    def set_document(self, name: str, body: str) -> None:
        self._run(
            "INSERT INTO documents VALUES (?,?,?) ON CONFLICT (name) DO UPDATE "
            "SET body = excluded.body, updated_at_ms = excluded.updated_at_ms",
            name,
            body,
            now_ms(),
        )

    # ---- journal ------------------------------------------------------------------------
    def append_event(self, kind: str, actor: str, payload: dict[str, Any]) -> JournalEvent:
        last = self._one("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1")
        prev = GENESIS_HASH if last is None else str(last["hash"])
        seq = 1 if last is None else int(last["seq"]) + 1
        at = now_ms()
        # Checked before they are hashed (the INSERT below would check them too late).
        storable(kind)
        storable(actor)
        text = storable(canonical_payload(payload))
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


def batched_events(
    read: Callable[[], AbstractContextManager[SqlTransaction]], batch: int
) -> Iterator[JournalEvent]:
    """Every journal event in order, one short read transaction per batch."""
    after = 0
    while True:
        with read() as tx:
            chunk = tx.events(after_seq=after, limit=batch)
        yield from chunk
        if len(chunk) < batch:
            return
        after = chunk[-1].seq


class _Writable(Protocol):
    bindings_generation: int


@contextlib.contextmanager
def queued_write(
    store: _Writable,
    writer: threading.Lock,
    timeout_s: float,
    transaction: Callable[[], AbstractContextManager[SqlTransaction]],
) -> Iterator[SqlTransaction]:
    """A write transaction for a store's thread: queue on the process's writer lock first
    (so waiting threads neither poll the database's own lock nor each hold a connection),
    then the database's lock inside ``transaction``; count binding changes once committed."""
    if not writer.acquire(timeout=timeout_s):
        raise StoreError("state database is busy (another writer holds it)")
    try:
        with transaction() as tx:
            yield tx
        if tx.bindings_touched:
            store.bindings_generation += 1
    finally:
        writer.release()
