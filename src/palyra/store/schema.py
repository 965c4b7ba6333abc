"""The state schema: one list of migrations for SQLite and PostgreSQL.

Each migration is written once in the SQL both databases accept; ``{int}`` and ``{blob}``
become each dialect's 64-bit integer and byte-string types (PostgreSQL's ``INTEGER`` is 32
bits, too small for millisecond timestamps). Only what the two cannot say alike (triggers)
is written per dialect, and it enforces the same rules on both: the journal is append-only,
a stored artifact never changes.

Each entry moves the schema from version i to i + 1; never edit a released entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Dialect = Literal["sqlite", "postgres"]

TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {"int": "INTEGER", "blob": "BLOB"},
    "postgres": {"int": "BIGINT", "blob": "BYTEA"},
}


@dataclass(frozen=True)
class Migration:
    common: str
    sqlite: str = ""
    postgres: str = ""

    def render(self, dialect: Dialect) -> str:
        extra = self.sqlite if dialect == "sqlite" else self.postgres
        return self.common.format(**TYPES[dialect]) + extra


# PostgreSQL raises from one shared function; SQLite has no functions, so each trigger says it.
_PG_REFUSE = """
    CREATE OR REPLACE FUNCTION palyra_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '%', TG_ARGV[0];
    END
    $$;
"""

MIGRATIONS: list[Migration] = [
    Migration(
        common="""
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
        installed_at_ms {int} NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'quarantined', 'disabled')),
        status_reason TEXT,
        status_changed_at_ms {int} NOT NULL,
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
        enabled {int} NOT NULL,
        profile_json TEXT NOT NULL,
        notes TEXT,
        created_at_ms {int} NOT NULL,
        updated_at_ms {int} NOT NULL
    );
    CREATE TABLE hook_bindings (
        hook_id TEXT PRIMARY KEY,
        event TEXT NOT NULL,
        plugin_id TEXT NOT NULL REFERENCES plugin_bindings (plugin_id),
        enabled {int} NOT NULL,
        created_at_ms {int} NOT NULL,
        updated_at_ms {int} NOT NULL
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
        requested_at_ms {int} NOT NULL,
        expires_at_ms {int} NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'expired')),
        decided_at_ms {int},
        decided_by TEXT,
        window_until_ms {int},
        reason TEXT
    );
    CREATE INDEX approvals_state ON approvals (state, requested_at_ms);
    CREATE TABLE approval_windows (
        skill_id TEXT NOT NULL,
        version TEXT NOT NULL,
        tool_id TEXT NOT NULL,
        until_ms {int} NOT NULL,
        approved_by TEXT NOT NULL,
        PRIMARY KEY (skill_id, version, tool_id)
    );
    CREATE TABLE journal (
        seq {int} PRIMARY KEY,
        at_ms {int} NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT NOT NULL,
        payload_json TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX journal_kind ON journal (kind, seq);
    """,
        sqlite="""
    CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
        BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
    CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
        BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
    """,
        postgres=_PG_REFUSE
        + """
    CREATE TRIGGER journal_no_change BEFORE UPDATE OR DELETE ON journal
        FOR EACH ROW EXECUTE FUNCTION palyra_refuse_change('the journal is append-only');
    CREATE TRIGGER journal_no_truncate BEFORE TRUNCATE ON journal
        FOR EACH STATEMENT EXECUTE FUNCTION palyra_refuse_change('the journal is append-only');
    """,
    ),
    # Installed artifacts, content-addressed, for stores shared by several daemons (a daemon
    # on its own SQLite file keeps them as files), and small shared documents (the trust
    # store).
    Migration(
        common="""
    CREATE TABLE artifact_blobs (
        sha256 TEXT PRIMARY KEY,
        size {int} NOT NULL,
        data {blob} NOT NULL,
        stored_at_ms {int} NOT NULL
    );
    CREATE TABLE documents (
        name TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        updated_at_ms {int} NOT NULL
    );
    """,
        sqlite="""
    CREATE TRIGGER artifact_blobs_no_update BEFORE UPDATE ON artifact_blobs
        BEGIN SELECT RAISE(ABORT, 'a stored artifact never changes'); END;
    """,
        postgres="""
    CREATE TRIGGER artifact_blobs_no_update BEFORE UPDATE ON artifact_blobs
        FOR EACH ROW EXECUTE FUNCTION palyra_refuse_change('a stored artifact never changes');
    """,
    ),
]
