"""The state store's contract, proven on both implementations: SQLite and a real PostgreSQL.

Every test here runs twice (``[sqlite]`` and ``[postgres]``) against the same expectations:
the same migrations, records that round-trip exactly, all-or-nothing writes, snapshot
reads, an append-only journal whose hash chain stays single under concurrent writers
(threads and processes), immutable content-addressed artifacts, and typed errors for text
neither database can hold.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from palyra.store import open_store
from palyra.store.base import (
    ApprovalRecord,
    ApprovalState,
    CapabilityProfile,
    HookBinding,
    PluginBinding,
    SkillStatus,
    SkillVersionRecord,
    StateStore,
    StoreError,
    UnstorableText,
)
from palyra.store.journal_chain import verify_chain
from palyra.store.schema import MIGRATIONS
from pg_server import PgServer

REPO = Path(__file__).resolve().parent.parent

Opener = Callable[[], StateStore]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(kind, where): a SQLite state root or a fresh PostgreSQL database URL."""
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "state")
    server: PgServer = request.getfixturevalue("postgres")
    return "postgres", server.fresh_database()


@pytest.fixture
def opener(backend: tuple[str, str], tmp_path: Path) -> Iterator[Opener]:
    """Opens the backend's database (again and again: each call is a new store)."""
    kind, where = backend
    opened: list[StateStore] = []

    def open_() -> StateStore:
        if kind == "sqlite":
            store = open_store(Path(where), database_url="")
        else:
            store = open_store(tmp_path / "unused", database_url=where)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(opener: Opener) -> StateStore:
    return opener()


def skill(version: str = "1.0.0", **changes: Any) -> SkillVersionRecord:
    fields: dict[str, Any] = {
        "skill_id": "acme.echo",
        "version": version,
        "publisher": "acme",
        "name": "Echo ✓",
        "artifact_sha256": "a" * 64,
        "payload_sha256": "b" * 64,
        "key_id": "ed25519:abc",
        "public_key_hex": "c" * 64,
        "trust_decision": "allowlisted",
        "source_kind": "local_artifact",
        "source_ref": "/tmp/echo.palyra-skill",
        "installed_at_ms": 1_795_000_000_000,  # past 2^31: needs 64-bit columns
        "status": SkillStatus.ACTIVE,
        "status_reason": None,
        "status_changed_at_ms": 1_795_000_000_001,
        "status_principal": "operator",
        "audit": {"passed": True, "failed_checks": [], "nested": {"ünï": [1, 2.5, None]}},
        "pending_capabilities": None,
    }
    fields.update(changes)
    return SkillVersionRecord(**fields)


def approval(approval_id: str = "ap-1", **changes: Any) -> ApprovalRecord:
    fields: dict[str, Any] = {
        "approval_id": approval_id,
        "skill_id": "acme.echo",
        "version": "1.0.0",
        "tool_id": "acme.echo",
        "input_sha256": "d" * 64,
        "input_preview": '{"text":"hi"}',
        "requested_by": "mcp",
        "requested_at_ms": 1_795_000_000_000,
        "expires_at_ms": 1_795_000_060_000,
        "state": ApprovalState.PENDING,
    }
    fields.update(changes)
    return ApprovalRecord(**fields)


# ---- schema ---------------------------------------------------------------------------------


def test_migrations_apply_once_and_reopening_changes_nothing(opener: Opener) -> None:
    first = opener()
    with first.write() as tx:
        tx.insert_skill_version(skill())
        tx.append_event("k", "a", {"n": 1})
    second = opener()  # migrates again: must be a no-op
    with second.read() as tx:
        assert [r.version for r in tx.skill_versions()] == ["1.0.0"]
        assert [e.seq for e in tx.events()] == [1]
    assert first.shared is (second.location.startswith("postgresql://"))


def test_daemons_starting_together_migrate_once(opener: Opener) -> None:
    opened: list[StateStore] = []
    failures: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(opener())
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and len(opened) == 4
    with opened[0].write() as tx:
        tx.put_artifact("a" * 64, b"migration 2 is there")
    with opened[3].read() as tx:
        assert tx.artifact("a" * 64) == b"migration 2 is there"


def test_a_newer_schema_is_refused_with_a_clear_error(
    backend: tuple[str, str], opener: Opener
) -> None:
    opener().close()
    kind, where = backend
    newer = len(MIGRATIONS) + 5
    if kind == "sqlite":
        import sqlite3

        lite = sqlite3.connect(Path(where) / "palyra.sqlite3")
        lite.execute(f"PRAGMA user_version = {newer}")
        lite.close()
    else:
        import psycopg

        with psycopg.connect(where, autocommit=True) as conn:
            conn.execute("UPDATE palyra_schema SET version = %s", (newer,))
    with pytest.raises(StoreError, match=f"schema version {newer}.*upgrade palyra"):
        opener()


def test_postgresql_urls_only(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="must be a postgresql:// URL"):
        open_store(tmp_path, database_url="mysql://root@localhost/palyra")


def test_an_unreachable_server_is_a_store_error_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://palyra:hunter2-secret@/palyra?host={tmp_path}/nowhere&port=1"
    with pytest.raises(StoreError) as caught:
        open_store(tmp_path, database_url=url)
    assert "hunter2" not in caught.value.message
    assert "\n" not in caught.value.message
    assert "palyra:***@" in caught.value.message


# ---- records round-trip ---------------------------------------------------------------------


def test_skill_versions_round_trip_and_change(store: StateStore) -> None:
    first, second = skill(), skill("1.1.0", pending_capabilities={"http_hosts": ["x.test"]})
    with store.write() as tx:
        tx.insert_skill_version(first)
        tx.insert_skill_version(second)
        tx.set_current("acme.echo", "1.0.0")
    with store.read() as tx:
        assert tx.skill_version("acme.echo", "1.0.0") == skill(current=True)
        assert tx.skill_version("acme.echo", "1.1.0") == second
        assert tx.current_version("acme.echo") == "1.0.0"
        assert tx.skill_version("acme.echo", "9.9.9") is None
        assert [r.version for r in tx.skill_versions("acme.echo")] == ["1.0.0", "1.1.0"]
    with store.write() as tx:
        tx.set_status("acme.echo", "1.0.0", SkillStatus.QUARANTINED, "bad", "ops", 5)
        tx.set_pending_capabilities("acme.echo", "1.1.0", None)
        tx.set_verification("acme.echo", "1.1.0", "tofu_pinned", {"passed": False})
        tx.set_current("acme.echo", "1.1.0")
    with store.read() as tx:
        old = tx.skill_version("acme.echo", "1.0.0")
        new = tx.skill_version("acme.echo", "1.1.0")
    assert old is not None and new is not None
    assert (old.status, old.status_reason, old.status_principal, old.status_changed_at_ms) == (
        SkillStatus.QUARANTINED,
        "bad",
        "ops",
        5,
    )
    assert not old.current and new.current
    assert new.pending_capabilities is None
    assert (new.trust_decision, new.audit) == ("tofu_pinned", {"passed": False})
    with store.write() as tx:
        tx.set_current("acme.echo", None)
        tx.delete_skill_version("acme.echo", "1.0.0")
        tx.delete_skill_version("acme.echo", "1.1.0")
    with store.read() as tx:
        assert tx.skill_versions() == []
        assert tx.current_version("acme.echo") is None


def test_a_duplicate_version_is_a_store_error_and_changes_nothing(store: StateStore) -> None:
    with store.write() as tx:
        tx.insert_skill_version(skill())
    with pytest.raises(StoreError), store.write() as tx:
        tx.append_event("k", "a", {})
        tx.insert_skill_version(skill())
    with store.read() as tx:
        assert tx.events() == []
        assert len(tx.skill_versions()) == 1


def test_plugin_and_hook_bindings_upsert_and_delete(store: StateStore) -> None:
    profile = CapabilityProfile(http_hosts=("api.test",), secrets=("s/k",))
    plugin = PluginBinding("p1", "acme.echo", None, "acme.echo", True, profile, "note", 1, 2)
    hook = HookBinding("h1", "skill:installed", "p1", True, 1, 2)
    generation = store.bindings_generation
    with store.write() as tx:
        tx.upsert_plugin(plugin)
        tx.upsert_hook(hook)
    assert store.bindings_generation == generation + 1
    changed = PluginBinding("p1", "acme.echo", "1.0.0", "acme.echo", False, profile, None, 1, 3)
    with store.write() as tx:
        tx.upsert_plugin(changed)  # an update, even with a hook referring to it
        tx.upsert_hook(HookBinding("h1", "skill:removed", "p1", False, 1, 3))
    with store.read() as tx:
        assert tx.plugins() == [changed]
        assert tx.plugin("p1") == changed
        assert tx.hooks() == [HookBinding("h1", "skill:removed", "p1", False, 1, 3)]
        assert tx.plugin("nope") is None and tx.hook("nope") is None
    with store.write() as tx:
        tx.delete_hook("h1")
        tx.delete_plugin("p1")
    with store.read() as tx:
        assert tx.plugins() == [] and tx.hooks() == []


def test_a_hook_must_name_an_existing_plugin(store: StateStore) -> None:
    with pytest.raises(StoreError), store.write() as tx:
        tx.upsert_hook(HookBinding("h1", "skill:installed", "missing", True, 1, 2))


def test_approvals_and_windows(store: StateStore) -> None:
    with store.write() as tx:
        tx.insert_approval(approval("ap-1"))
        tx.insert_approval(approval("ap-2", requested_at_ms=1_795_000_000_500))
    with store.write() as tx:
        tx.decide_approval("ap-1", ApprovalState.APPROVED, "ops", 7, 1_795_000_100_000, "ok")
        tx.set_approval_window("acme.echo", "1.0.0", "acme.echo", 100, "ops")
        tx.set_approval_window("acme.echo", "1.0.0", "acme.echo", 200, "ops2")  # upsert
    with store.read() as tx:
        decided = tx.approval("ap-1")
        assert decided == approval(
            "ap-1",
            state=ApprovalState.APPROVED,
            decided_by="ops",
            decided_at_ms=7,
            window_until_ms=1_795_000_100_000,
            reason="ok",
        )
        assert [a.approval_id for a in tx.approvals()] == ["ap-1", "ap-2"]
        assert [a.approval_id for a in tx.approvals(ApprovalState.PENDING)] == ["ap-2"]
        assert tx.approval_window("acme.echo", "1.0.0", "acme.echo") == 200
        assert tx.approval_window("acme.echo", "1.0.0", "other") is None
        assert tx.approval("missing") is None


def test_artifacts_are_content_addressed_and_immutable(store: StateStore) -> None:
    data = bytes(range(256)) * 1000
    with store.write() as tx:
        tx.insert_skill_version(skill(artifact_sha256="e" * 64))
        tx.put_artifact("e" * 64, data)
        tx.put_artifact("e" * 64, b"other bytes")  # same name: the first bytes stay
        tx.put_artifact("f" * 64, b"orphan")
    with store.read() as tx:
        assert tx.artifact("e" * 64) == data
        assert tx.artifact("0" * 64) is None
    with pytest.raises(StoreError, match="never changes"), store.write() as tx:
        tx._run("UPDATE artifact_blobs SET data = ?", b"tampered")  # type: ignore[attr-defined]
    with store.write() as tx:
        assert tx.drop_unreferenced_artifacts() == ["f" * 64]
        assert tx.drop_unreferenced_artifacts() == []
    with store.read() as tx:
        assert tx.artifact("e" * 64) == data
        assert tx.artifact("f" * 64) is None


def test_documents(store: StateStore) -> None:
    with store.read() as tx:
        assert tx.document("trust-store") is None
    with store.write() as tx:
        tx.set_document("trust-store", '{"a": 1}')
        tx.set_document("trust-store", '{"a": 2}')
    with store.read() as tx:
        assert tx.document("trust-store") == '{"a": 2}'


# ---- transactions ---------------------------------------------------------------------------


def test_a_failed_write_leaves_nothing_behind(store: StateStore) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.write() as tx:
        tx.insert_skill_version(skill())
        tx.append_event("skill.installed", "operator", {"skill_id": "acme.echo"})
        tx.set_document("d", "x")
        raise Boom
    with store.read() as tx:
        assert tx.skill_versions() == [] and tx.events() == [] and tx.document("d") is None


def test_reads_are_snapshots(store: StateStore) -> None:
    with store.write() as tx:
        tx.append_event("k", "a", {"n": 1})
    with store.read() as tx:
        before = tx.events()

        def commit_another() -> None:
            with store.write() as other:
                other.append_event("k", "a", {"n": 2})

        writer = threading.Thread(target=commit_another)
        writer.start()
        writer.join()
        assert tx.events() == before  # the concurrent commit is not visible mid-transaction
    with store.read() as tx:
        assert len(tx.events()) == 2


# ---- the journal ----------------------------------------------------------------------------


def test_journal_chain_queries_and_batches(store: StateStore) -> None:
    with store.write() as tx:
        for n in range(7):
            tx.append_event("even" if n % 2 == 0 else "odd", "ops", {"n": n, "t": "ü\n\t"})
    with store.read() as tx:
        assert [e.seq for e in tx.events(after_seq=2, limit=3)] == [3, 4, 5]
        assert [e.payload["n"] for e in tx.events(kind="odd")] == [1, 3, 5]
        last = tx.last_event()
    assert last is not None and last.seq == 7 and last.payload == {"n": 6, "t": "ü\n\t"}
    events = list(store.iter_events(batch=3))
    assert [e.seq for e in events] == list(range(1, 8))
    assert verify_chain(events).ok


@pytest.mark.parametrize(
    "statement", ["UPDATE journal SET kind = 'forged'", "DELETE FROM journal WHERE seq = 1"]
)
def test_the_journal_is_append_only(store: StateStore, statement: str) -> None:
    with store.write() as tx:
        tx.append_event("k", "a", {})
    with pytest.raises(StoreError, match="append-only"), store.write() as tx:
        tx._run(statement)  # type: ignore[attr-defined]
    assert verify_chain(store.iter_events()).ok


def test_concurrent_writer_threads_keep_one_chain(store: StateStore) -> None:
    def append(worker: int) -> None:
        for n in range(25):
            with store.write() as tx:
                tx.append_event("tool.called", f"w{worker}", {"n": n})

    threads = [threading.Thread(target=append, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = list(store.iter_events())
    assert [e.seq for e in events] == list(range(1, 151))
    report = verify_chain(events)
    assert report.ok, report.problem


WRITER = """
import sys
from pathlib import Path
from palyra.store import open_store

kind, where, worker = sys.argv[1], sys.argv[2], sys.argv[3]
store = open_store(Path(where), database_url=where if kind == "postgres" else "")
for n in range(40):
    with store.write() as tx:
        tx.append_event("tool.called", "proc" + worker, {"n": n})
store.close()
"""


def test_concurrent_writer_processes_keep_one_chain(
    backend: tuple[str, str], store: StateStore
) -> None:
    kind, where = backend
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, kind, where, str(w)], cwd=REPO)
        for w in range(3)
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    events = list(store.iter_events())
    assert len(events) == 120
    assert {e.actor for e in events} == {"proc0", "proc1", "proc2"}
    report = verify_chain(events)
    assert report.ok, report.problem


# ---- hostile text ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "problem"), [("a\x00b", "NUL"), ("\ud800", "lone surrogates")])
def test_text_neither_database_can_hold_is_refused_before_writing(
    store: StateStore, text: str, problem: str
) -> None:
    with pytest.raises(UnstorableText, match=problem), store.write() as tx:
        tx.append_event("k", "a", {})
        tx.set_status("acme.echo", "1.0.0", SkillStatus.DISABLED, text, "ops", 1)
    with store.read() as tx:
        assert tx.events() == []


def test_journal_payloads_escape_nul_but_refuse_lone_surrogates(store: StateStore) -> None:
    with store.write() as tx:
        event = tx.append_event("k", "a", {"reason": "a\x00b"})  # JSON text: "a\u0000b"
    with pytest.raises(UnstorableText, match="lone surrogates"), store.write() as tx:
        tx.append_event("k", "a", {"reason": "\ud800"})
    with pytest.raises(UnstorableText, match="lone surrogates"), store.write() as tx:
        tx.append_event("k", "\udfff", {})
    assert [e.payload for e in store.iter_events()] == [{"reason": "a\x00b"}]
    assert verify_chain([event]).ok


storable = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | storable,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(storable, inner, max_size=4),
    max_leaves=12,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(notes=storable, payload=st.dictionaries(storable, json_values, max_size=5))
def test_any_storable_text_round_trips(
    store: StateStore, notes: str, payload: dict[str, Any]
) -> None:
    plugin = PluginBinding("p", "s", None, "t", True, CapabilityProfile(), notes, 1, 2)
    with store.write() as tx:
        tx.upsert_plugin(plugin)
        event = tx.append_event("k", notes, payload)
    with store.read() as tx:
        assert tx.plugin("p") == plugin
        assert tx.last_event() == event
    assert event.payload == payload


# ---- PostgreSQL only: waiting for another daemon --------------------------------------------


def test_a_writer_blocked_by_another_daemon_gets_a_typed_error_then_proceeds(
    pg_url: str,
) -> None:
    import psycopg

    from palyra.store.postgres import WRITE_LOCK_KEY, PostgresStore

    store = PostgresStore(pg_url, busy_timeout_ms=300)
    try:
        with psycopg.connect(pg_url, autocommit=True) as other:
            other.execute("SELECT pg_advisory_lock(%s)", (WRITE_LOCK_KEY,))
            with pytest.raises(StoreError, match="busy"), store.write() as tx:
                tx.append_event("k", "a", {})
            with store.read() as tx:  # readers never wait for writers
                assert tx.events() == []
            other.execute("SELECT pg_advisory_unlock(%s)", (WRITE_LOCK_KEY,))
        with store.write() as tx:
            tx.append_event("k", "a", {})
        assert [e.seq for e in store.iter_events()] == [1]
    finally:
        store.close()
