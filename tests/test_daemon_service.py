"""The daemon's service layer end to end (design.md §4–§5): real SQLite, real wasmtime, real files.

Every test gets its own state root; the fixture checks at teardown that the journal's hash
chain still verifies. Timing-sensitive scenarios are made deterministic without mocks, by
swapping a real file for a FIFO (:class:`StalledRead`: the next reader blocks in ``open``
until the test serves the original bytes) or by holding the database's write lock:

* ``<state>/vault/vault.key`` as a FIFO holds a ``needs_secret`` call inside the guest's
  ``secret_get`` — past the status gate, holding its worker and per-skill slots;
* an installed artifact as a FIFO pauses an update of another (process-cold) service
  instance between its read snapshot and its commit;
* a raw ``BEGIN IMMEDIATE`` holds every writer at its commit, so two installs can be lined up
  "both checked, neither committed".
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import daemon_fixtures as F
from palyra.daemon import lifecycle
from palyra.daemon.artifacts import artifact_path
from palyra.daemon.service import Service
from palyra.errors import PalyraError
from palyra.skills.build import build_signed_skill_artifact
from palyra.skills.keys import SigningKey
from palyra.skills.trust import TrustStore
from palyra.store.base import SkillVersionRecord

WAIT_S = 30.0
OTHER_SKILL = "acme.other_demo"
THIRD_SKILL = "acme.third_demo"
HOST = "api.example.com"
SECRET_SCOPE = f"skill:{F.SKILL_ID}"
SECRET_VALUE = b"s3cr3t-value-never-shown"


# ---- helpers ----------------------------------------------------------------------------------


def build(
    version: str = "1.0.0",
    *,
    skill_id: str = F.SKILL_ID,
    hosts: tuple[str, ...] = (),
    key: SigningKey = F.KEY,
    tag: str | None = None,
) -> bytes:
    """The demo skill, optionally under another id or with a different display name (so the
    same version has different bytes)."""
    text = F.manifest(version, hosts=hosts)
    if skill_id != F.SKILL_ID:
        text = text.replace(F.SKILL_ID, skill_id)
    if tag is not None:
        text = text.replace('name = "Daemon demo"', f'name = "Daemon demo {tag}"', 1)
    return build_signed_skill_artifact(text, [("module.wasm", F.MODULE)], key).artifact


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def expect_error(kind: str, call: Callable[[], object]) -> PalyraError:
    with pytest.raises(PalyraError) as info:
        call()
    assert info.value.kind == kind, info.value.to_json()
    return info.value


def expect_error_any(call: Callable[[], object]) -> PalyraError:
    with pytest.raises(PalyraError) as info:
        call()
    return info.value


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def records(svc: Service) -> dict[tuple[str, str], SkillVersionRecord]:
    with svc.ctx.store.read() as tx:
        return {(r.skill_id, r.version): r for r in tx.skill_versions()}


def record(svc: Service, version: str, skill_id: str = F.SKILL_ID) -> SkillVersionRecord:
    return records(svc)[(skill_id, version)]


def current(svc: Service, skill_id: str = F.SKILL_ID) -> str | None:
    with svc.ctx.store.read() as tx:
        return tx.current_version(skill_id)


def artifact_dirs(state: Path) -> set[tuple[str, str]]:
    root = state / "skills"
    if not root.is_dir():
        return set()
    return {
        (skill.name, version.name)
        for skill in root.iterdir()
        if skill.is_dir()
        for version in skill.iterdir()
    }


def events(svc: Service, kind: str | None = None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        page = svc.journal(after_seq=after, limit=1000, kind=kind)["events"]
        found += page
        if len(page) < 1000:
            return found
        after = page[-1]["seq"]


def pins(svc: Service) -> dict[str, str]:
    return dict(TrustStore.load(svc.ctx.trust_path).tofu_publishers)


def assert_consistent(svc: Service) -> None:
    """Rows and files agree, every file is the bytes its row verified, one current per skill."""
    state = svc.ctx.state_root
    rows = records(svc)
    assert artifact_dirs(state) == set(rows)
    for (skill_id, version), row in rows.items():
        path = artifact_path(state, skill_id, version)
        assert sha256(path.read_bytes()) == row.artifact_sha256, f"{skill_id} {version}"
    for skill_id in {s for s, _ in rows}:
        currents = [v for (s, v), r in rows.items() if s == skill_id and r.current]
        assert len(currents) == 1, (skill_id, currents)
    assert svc.verify_journal()["ok"]


def flip_middle_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def write_config(state: Path, text: str) -> None:
    state.mkdir(parents=True, exist_ok=True)
    (state / "config.toml").write_text(text)


class Env:
    """One state root, the services opened on it, and a directory for artifacts."""

    def __init__(self, tmp_path: Path) -> None:
        self.state = tmp_path / "state"
        self.arts = tmp_path / "arts"
        self.arts.mkdir()
        self.services: list[Service] = []
        self.journal_must_verify = True

    def open(self) -> Service:
        svc = Service.open(self.state)
        self.services.append(svc)
        return svc

    def file(self, data: bytes, name: str) -> Path:
        path = self.arts / name
        path.write_bytes(data)
        return path


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "PALYRA_STATE_ROOT",
        "PALYRA_SKILLS_TRUST_STORE",
        "PALYRA_SKILL_AUDIT_BLOCKLIST",
        "PALYRA_CODE_CACHE",
        "PALYRA_VAULT_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    environment = Env(tmp_path)
    yield environment
    try:
        if environment.journal_must_verify and environment.services:
            report = environment.services[0].verify_journal()
            assert report["ok"], report
    finally:
        for svc in environment.services:
            svc.close()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(max_workers=16)
    yield executor
    executor.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def svc(env: Env) -> Service:
    return env.open()


@pytest.fixture
def installed(svc: Service) -> Service:
    svc.install_artifact(build("1.0.0"), allow_tofu=True)
    return svc


def outcome(future: Future[dict[str, Any]]) -> dict[str, Any] | str:
    """A call's result, or the kind of the typed error it raised."""
    try:
        return future.result(timeout=WAIT_S)
    except PalyraError as exc:
        return exc.kind


class CallWatcher:
    """A ``tool:before_call`` listener counting the calls of one tool that got that far."""

    def __init__(self, tool_id: str) -> None:
        self.tool_id = tool_id
        self._lock = threading.Lock()
        self.entered = 0

    def __call__(self, event: str, payload: dict[str, Any]) -> None:
        if event == "tool:before_call" and payload.get("tool_id") == self.tool_id:
            with self._lock:
                self.entered += 1

    def wait_entered(self, count: int) -> None:
        wait_until(lambda: self.entered >= count, f"{count} call(s) of {self.tool_id}")


@contextlib.contextmanager
def writers_held(state: Path) -> Iterator[None]:
    """Hold the database's write lock: every writer waits at its ``BEGIN IMMEDIATE``."""
    conn = sqlite3.connect(state / "palyra.sqlite3", isolation_level=None, timeout=WAIT_S)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
    finally:
        conn.close()


class StalledRead:
    """Swap a file for a FIFO: the next reader blocks in ``open`` (then ``read``) until
    :meth:`serve` writes the original bytes. As soon as that reader holds the FIFO, the real
    file goes back in place, so every later reader sees the ordinary file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.original = path.read_bytes()
        self._aside = path.with_name("aside.tmp")
        os.replace(path, self._aside)
        os.mkfifo(path)
        self._fd: int | None = None

    def wait_for_reader(self) -> None:
        deadline = time.monotonic() + WAIT_S
        while self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
        os.replace(self._aside, self.path)  # the reader already holds the FIFO open

    def serve(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.write(fd, self.original)
        finally:
            os.close(fd)

    def __enter__(self) -> StalledRead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.serve()  # never leave a reader blocked, whatever the test did
        if self._aside.exists():
            os.replace(self._aside, self.path)


# ---- install --------------------------------------------------------------------------------


def test_untrusted_publisher_refused_and_nothing_persisted(env: Env, svc: Service) -> None:
    path = env.file(build("1.0.0"), "a.palyra-skill")
    expect_error("untrusted_publisher", lambda: svc.install_file(path))
    assert records(svc) == {}
    assert artifact_dirs(env.state) == set()
    assert not svc.ctx.trust_path.exists()
    assert svc.list_skills() == {"count": 0, "skills": []}
    assert events(svc) == []


def test_tampered_artifact_refused_and_nothing_persisted(env: Env, svc: Service) -> None:
    path = env.file(build("1.0.0"), "a.palyra-skill")
    flip_middle_byte(path)
    error = expect_error_any(lambda: svc.install_file(path, allow_tofu=True))
    assert "structural verification" in error.message
    assert records(svc) == {}
    assert artifact_dirs(env.state) == set()
    assert not svc.ctx.trust_path.exists()
    assert events(svc) == []


def test_install_is_active_and_pins_publisher_after_success(env: Env, svc: Service) -> None:
    data = build("1.0.0")
    body = svc.install_file(env.file(data, "a.palyra-skill"), allow_tofu=True)
    assert body["status"] == "active"
    assert body["current"] is True
    assert body["changed"] is True
    assert body["trust_decision"] == "tofu_newly_pinned"
    assert body["artifact_sha256"] == sha256(data)
    assert {t["name"] for t in body["tools"]} == {"echo", "guarded", "spin", "needs_secret"}
    assert pins(svc) == {F.PUBLISHER: F.KEY.public_key_hex}
    assert artifact_path(env.state, F.SKILL_ID, "1.0.0").read_bytes() == data
    [installed_event] = events(svc, "skill.installed")
    assert installed_event["payload"]["artifact_sha256"] == sha256(data)
    assert installed_event["payload"]["trust_decision"] == "tofu_newly_pinned"
    assert svc.run(F.SKILL_ID, "echo", {"text": "hi"})["output"] == {"text": "hi"}
    # The pin now decides: the same publisher under another key is refused.
    other = env.file(build("1.0.0", skill_id=OTHER_SKILL, key=F.OTHER_KEY), "o.palyra-skill")
    expect_error("tofu_key_mismatch", lambda: svc.install_file(other, allow_tofu=True))
    assert set(records(svc)) == {(F.SKILL_ID, "1.0.0")}
    assert_consistent(svc)


def test_install_failing_after_the_trust_decision_writes_no_pin(env: Env, svc: Service) -> None:
    registry = env.arts / "registry"
    registry.mkdir()
    F.write_artifact(registry, "1.0.0")
    # An update of a skill that is not installed fails after TOFU was decided.
    expect_error(
        "not_found",
        lambda: svc.install_from_registry_dir(registry, F.SKILL_ID, allow_tofu=True, update=True),
    )
    assert not svc.ctx.trust_path.exists()
    assert records(svc) == {}
    assert artifact_dirs(env.state) == set()


def test_reinstall_identical_bytes_is_idempotent_and_versions_are_immutable(
    env: Env, svc: Service
) -> None:
    path = env.file(build("1.0.0"), "a.palyra-skill")
    first = svc.install_file(path, allow_tofu=True)
    again = svc.install_file(path, allow_tofu=True)
    assert again["changed"] is False
    assert again["reason"] == "already_installed"
    assert again["artifact_sha256"] == first["artifact_sha256"]
    different = env.file(build("1.0.0", tag="rebuilt"), "b.palyra-skill")
    expect_error("already_installed", lambda: svc.install_file(different))
    assert len(events(svc, "skill.installed")) == 1
    assert record(svc, "1.0.0").artifact_sha256 == first["artifact_sha256"]
    assert_consistent(svc)


def test_update_to_a_higher_version_becomes_current(env: Env, installed: Service) -> None:
    svc = installed
    registry = env.arts / "registry"
    registry.mkdir()
    F.write_artifact(registry, "1.0.0")
    F.write_artifact(registry, "1.1.0")
    body = svc.install_from_registry_dir(registry, F.SKILL_ID, update=True)
    assert (body["version"], body["current"], body["status"]) == ("1.1.0", True, "active")
    assert body["source"]["kind"] == "local_registry"
    assert current(svc) == "1.1.0"
    assert record(svc, "1.0.0").current is False
    [updated] = events(svc, "skill.updated")
    assert updated["payload"]["previous_version"] == "1.0.0"
    assert updated["payload"]["version"] == "1.1.0"
    assert svc.run(F.SKILL_ID, "echo", {"text": "x"})["version"] == "1.1.0"
    # The older version stays installed and can still be named explicitly.
    assert svc.run(F.SKILL_ID, "echo", {"text": "x"}, version="1.0.0")["version"] == "1.0.0"
    listing = svc.list_skills()["skills"][0]
    assert listing["current_version"] == "1.1.0"
    assert [v["version"] for v in listing["versions"]] == ["1.0.0", "1.1.0"]
    assert_consistent(svc)


def test_update_asking_for_more_capabilities_is_held_until_approved(
    env: Env, installed: Service
) -> None:
    svc = installed
    held = svc.install_artifact(build("1.1.0", hosts=(HOST,)))
    assert held["status"] == "quarantined"
    assert held["current"] is False
    assert held["pending_capabilities"] == {"http_hosts": [HOST]}
    assert held["held_capabilities"] == {"http_hosts": [HOST]}
    assert held["status_reason"].startswith("capability_approval_required")
    assert current(svc) == "1.0.0"
    assert [e["payload"]["version"] for e in events(svc, "skill.update_held")] == ["1.1.0"]
    assert events(svc, "skill.updated") == []
    # The old version stays current and runnable; the held one is not runnable.
    assert svc.run(F.SKILL_ID, "echo", {"text": "a"})["version"] == "1.0.0"
    expect_error("skill_not_active", lambda: svc.run(F.SKILL_ID, "echo", {}, version="1.1.0"))
    listing = svc.list_skills()["skills"][0]
    assert listing["current_version"] == "1.0.0"
    assert listing["held_versions"] == ["1.1.0"]

    error = expect_error("capability_approval_required", lambda: svc.enable(F.SKILL_ID, "1.1.0"))
    assert error.details["pending_capabilities"] == {"http_hosts": [HOST]}
    assert record(svc, "1.1.0").status.value == "quarantined"
    assert current(svc) == "1.0.0"

    body = svc.enable(F.SKILL_ID, "1.1.0", approve_capabilities=True)
    assert (body["status"], body["current"], body["pending_capabilities"]) == (
        "active",
        True,
        None,
    )
    [approved] = events(svc, "skill.capabilities_approved")
    assert approved["payload"] == {
        "skill_id": F.SKILL_ID,
        "version": "1.1.0",
        "capabilities": {"http_hosts": [HOST]},
    }
    assert svc.list_skills()["skills"][0]["held_versions"] == []
    receipt = svc.run(F.SKILL_ID, "echo", {"text": "b"})
    assert receipt["version"] == "1.1.0"
    [last_call] = events(svc, "tool.call")[-1:]
    assert last_call["payload"]["grants"]["http_hosts"] == [HOST]
    assert_consistent(svc)


def test_downgrade_refused_unless_forced(env: Env, svc: Service) -> None:
    svc.install_artifact(build("1.0.0"), allow_tofu=True)
    svc.install_artifact(build("1.2.0"))
    older = build("1.1.0")
    error = expect_error("downgrade_refused", lambda: svc.install_artifact(older))
    assert "1.2.0" in error.message
    assert (F.SKILL_ID, "1.1.0") not in records(svc)
    assert artifact_dirs(env.state) == {(F.SKILL_ID, "1.0.0"), (F.SKILL_ID, "1.2.0")}
    assert current(svc) == "1.2.0"
    body = svc.install_artifact(older, force=True)
    assert (body["version"], body["current"], body["status"]) == ("1.1.0", True, "active")
    assert current(svc) == "1.1.0"
    assert_consistent(svc)


def test_remove_one_version_then_the_whole_skill(env: Env, svc: Service) -> None:
    svc.install_artifact(build("1.0.0"), allow_tofu=True)
    svc.install_artifact(build("1.1.0"))
    svc.install_artifact(build("1.2.0"))
    expect_error("conflict", lambda: svc.remove(F.SKILL_ID, "1.2.0"))  # current, others remain
    body = svc.remove(F.SKILL_ID, "1.0.0")
    assert body["removed_versions"] == ["1.0.0"]
    assert artifact_dirs(env.state) == {(F.SKILL_ID, "1.1.0"), (F.SKILL_ID, "1.2.0")}
    assert current(svc) == "1.2.0"
    assert_consistent(svc)
    expect_error("not_found", lambda: svc.remove(F.SKILL_ID, "1.0.0"))

    body = svc.remove(F.SKILL_ID)
    assert sorted(body["removed_versions"]) == ["1.1.0", "1.2.0"]
    assert records(svc) == {}
    assert artifact_dirs(env.state) == set()
    assert not (env.state / "skills" / F.SKILL_ID).exists()
    assert current(svc) is None
    assert svc.list_skills()["count"] == 0
    expect_error("not_found", lambda: svc.run(F.SKILL_ID, "echo", {}))
    expect_error("not_found", lambda: svc.remove(F.SKILL_ID))
    assert [e["payload"]["removed_versions"] for e in events(svc, "skill.removed")] == [
        ["1.0.0"],
        ["1.1.0", "1.2.0"],
    ]
    # Removed means gone: the same version installs again from scratch.
    assert svc.install_artifact(build("1.0.0"))["changed"] is True
    assert_consistent(svc)


@pytest.mark.parametrize("status", ["disabled", "quarantined"])
def test_enable_reverifies_the_stored_artifact(env: Env, installed: Service, status: str) -> None:
    svc = installed
    if status == "disabled":
        svc.disable(F.SKILL_ID, reason="maintenance")
    else:
        svc.quarantine(F.SKILL_ID, reason="suspicious")
    flip_middle_byte(artifact_path(env.state, F.SKILL_ID, "1.0.0"))
    expect_error("artifact_tampered", lambda: svc.enable(F.SKILL_ID))
    assert record(svc, "1.0.0").status.value in (status, "quarantined")
    assert events(svc, "skill.enabled") == []
    expect_error("skill_not_active", lambda: svc.run(F.SKILL_ID, "echo", {}))
    # A missing file is refused the same way.
    artifact_path(env.state, F.SKILL_ID, "1.0.0").unlink()
    expect_error("artifact_tampered", lambda: svc.enable(F.SKILL_ID))
    assert record(svc, "1.0.0").status.value in (status, "quarantined")


def test_enable_after_disable_and_quarantine(installed: Service) -> None:
    svc = installed
    assert svc.disable(F.SKILL_ID, reason="later")["status"] == "disabled"
    expect_error("skill_not_active", lambda: svc.run(F.SKILL_ID, "echo", {}))
    assert svc.enable(F.SKILL_ID)["status"] == "active"
    assert svc.quarantine(F.SKILL_ID, reason="look")["status"] == "quarantined"
    rejected = expect_error("skill_not_active", lambda: svc.run(F.SKILL_ID, "echo", {}))
    assert rejected.details == {"status": "quarantined", "reason": "look"}
    assert svc.enable(F.SKILL_ID)["status"] == "active"
    assert svc.run(F.SKILL_ID, "echo", {"text": "ok"})["output"] == {"text": "ok"}
    kinds = [e["kind"] for e in events(svc) if e["kind"].startswith("skill.")]
    assert kinds == [
        "skill.installed",
        "skill.disabled",
        "skill.enabled",
        "skill.quarantined",
        "skill.enabled",
    ]


@pytest.mark.parametrize("method", ["verify", "audit"])
def test_verify_and_audit_quarantine_a_corrupted_artifact(
    env: Env, installed: Service, method: str
) -> None:
    svc = installed
    check: Callable[..., dict[str, Any]] = getattr(svc, method)
    healthy = check(F.SKILL_ID)
    assert healthy["status"] == "active"
    assert healthy["result"]["ok"] is True
    flip_middle_byte(artifact_path(env.state, F.SKILL_ID, "1.0.0"))
    body = check(F.SKILL_ID)
    assert body["status"] == "quarantined"
    assert body["result"]["ok"] is False
    assert body["result"]["error"]["kind"] == "artifact_tampered"
    assert body["status_reason"].startswith("verification_failed: artifact_tampered")
    [quarantined] = events(svc, "skill.quarantined")
    assert quarantined["payload"]["version"] == "1.0.0"
    expect_error("skill_not_active", lambda: svc.run(F.SKILL_ID, "echo", {}))
    # Checking again changes nothing (no second quarantine event).
    assert check(F.SKILL_ID)["result"]["ok"] is False
    assert len(events(svc, "skill.quarantined")) == 1
    listing = svc.list_skills()["skills"][0]
    assert listing["status"] == "quarantined"
    assert "artifact_error" in listing["versions"][0]
    assert svc.check(F.SKILL_ID)["results"][0]["check_status"] == "blocked"


def test_reaudit_quarantines_skills_whose_publisher_left_the_trust_store(
    env: Env, svc: Service
) -> None:
    store = TrustStore()
    store.add_trusted_key(F.PUBLISHER, F.KEY.public_key_hex)
    store.save(svc.ctx.trust_path)
    body = svc.install_artifact(build("1.0.0"))
    assert body["trust_decision"] == "allowlisted"
    svc.install_artifact(build("1.0.0", skill_id=OTHER_SKILL))
    assert svc.reaudit() == {"audited": 2, "quarantined": []}

    store = TrustStore.load(svc.ctx.trust_path)
    assert store.remove_trusted(F.PUBLISHER)
    store.save(svc.ctx.trust_path)
    report = svc.reaudit()
    assert report["audited"] == 2
    assert sorted(report["quarantined"]) == [f"{F.SKILL_ID} 1.0.0", f"{OTHER_SKILL} 1.0.0"]
    for row in records(svc).values():
        assert row.status.value == "quarantined"
        assert row.status_reason is not None
        assert "untrusted_publisher" in row.status_reason
    expect_error("skill_not_active", lambda: svc.run(F.SKILL_ID, "echo", {}))
    expect_error("untrusted_publisher", lambda: svc.enable(F.SKILL_ID))
    # Re-auditing never re-activates anything and does not repeat the quarantine.
    assert svc.reaudit()["quarantined"] == []
    assert all(r.status.value == "quarantined" for r in records(svc).values())


def test_reaudit_quarantines_after_a_tofu_pin_is_removed(installed: Service) -> None:
    svc = installed
    with svc.ctx.trust_edit() as store:
        assert store.unpin(F.PUBLISHER)
    assert svc.reaudit()["quarantined"] == [f"{F.SKILL_ID} 1.0.0"]
    assert record(svc, "1.0.0").status.value == "quarantined"
    expect_error("untrusted_publisher", lambda: svc.enable(F.SKILL_ID))


def test_an_operator_removed_tofu_pin_stays_removed_after_restart(env: Env) -> None:
    svc = env.open()
    svc.install_artifact(build("1.0.0"), allow_tofu=True)
    with svc.ctx.trust_edit() as store:
        assert store.unpin(F.PUBLISHER)
    assert svc.reaudit()["quarantined"] == [f"{F.SKILL_ID} 1.0.0"]
    restarted = env.open()  # another process, or the daemon after a restart
    assert F.PUBLISHER not in pins(restarted)
    expect_error("untrusted_publisher", lambda: restarted.enable(F.SKILL_ID))


def test_policy_new_skills_start_disabled(env: Env) -> None:
    write_config(env.state, '[skills]\nnew_skills_start = "disabled"\n')
    svc = env.open()
    body = svc.install_artifact(build("1.0.0"), allow_tofu=True)
    assert (body["status"], body["current"]) == ("disabled", True)
    assert body["status_reason"] == "policy: new skills start disabled"
    expect_error("skill_not_active", lambda: svc.run(F.SKILL_ID, "echo", {}))
    assert svc.enable(F.SKILL_ID)["status"] == "active"
    assert svc.run(F.SKILL_ID, "echo", {"text": "on"})["output"] == {"text": "on"}


def test_an_install_that_fails_its_audit_is_stored_quarantined(env: Env) -> None:
    env.state.joinpath("skills").mkdir(parents=True)
    blocklist = {"schema_version": 1, "entries": [{"sha256": sha256(F.MODULE), "reason": "bad"}]}
    (env.state / "skills" / "blocklist.json").write_text(json.dumps(blocklist))
    svc = env.open()
    body = svc.install_artifact(build("1.0.0"), allow_tofu=True)
    assert body["status"] == "quarantined"
    assert body["status_reason"].startswith("audit_failed: ")
    assert body["audit"]["should_quarantine"] is True
    assert [e["kind"] for e in events(svc)] == ["skill.installed", "skill.quarantined"]
    expect_error("skill_not_active", lambda: svc.run(F.SKILL_ID, "echo", {}))
    expect_error("quarantine_required", lambda: svc.enable(F.SKILL_ID))
    assert record(svc, "1.0.0").status.value == "quarantined"
    assert_consistent(svc)


# ---- running --------------------------------------------------------------------------------


def test_missing_secret_fails_only_the_tool_that_needs_it(installed: Service) -> None:
    svc = installed
    listing = svc.list_skills()["skills"][0]
    assert listing["needs_secrets"] is True
    assert listing["missing_secrets"] == [f"{SECRET_SCOPE}/api_token"]
    assert svc.check(F.SKILL_ID)["results"][0]["check_status"] == "needs_secrets"
    error = expect_error("missing_secrets", lambda: svc.run(F.SKILL_ID, "needs_secret", {}))
    assert error.details["missing_secrets"] == [f"{SECRET_SCOPE}/api_token"]
    assert svc.run(F.SKILL_ID, "echo", {"text": "fine"})["output"] == {"text": "fine"}
    assert svc.run(F.SKILL_ID, "spin", {})["output"] == {"spun": True}
    failed = [e for e in events(svc, "tool.call") if e["payload"]["outcome"] != "ok"]
    assert [e["payload"]["outcome"] for e in failed] == ["missing_secrets"]

    value = SECRET_VALUE
    assert svc.set_secret(SECRET_SCOPE, "api_token", value) == {
        "secret": f"{SECRET_SCOPE}/api_token",
        "set": True,
    }
    assert svc.list_secrets() == {"count": 1, "secrets": [f"{SECRET_SCOPE}/api_token"]}
    assert svc.list_skills()["skills"][0]["needs_secrets"] is False
    assert svc.run(F.SKILL_ID, "needs_secret", {})["output"] == {"token_bytes": 0}
    everything = json.dumps([svc.list_skills(), svc.list_secrets(), events(svc)])
    assert value.decode() not in everything
    assert svc.delete_secret(SECRET_SCOPE, "api_token")["deleted"] is True
    expect_error("not_found", lambda: svc.delete_secret(SECRET_SCOPE, "api_token"))
    expect_error("missing_secrets", lambda: svc.run(F.SKILL_ID, "needs_secret", {}))


def test_input_validation_names_the_json_path(installed: Service) -> None:
    svc = installed
    error = expect_error("invalid_input", lambda: svc.run(F.SKILL_ID, "echo", {"text": 5}))
    assert "$.text" in error.message
    assert any(v.startswith("$.text: ") for v in error.details["violations"])
    too_long = expect_error(
        "invalid_input", lambda: svc.run(F.SKILL_ID, "echo", {"text": "x" * 101})
    )
    assert "$.text" in too_long.message
    extra = expect_error("invalid_input", lambda: svc.run(F.SKILL_ID, "echo", {"nope": 1}))
    assert any(v.startswith("$: ") for v in extra.details["violations"])
    rejected = events(svc, "tool.rejected")
    assert [e["payload"]["outcome"] for e in rejected] == ["invalid_input"] * 3
    assert events(svc, "tool.call") == []


def test_every_call_leaves_a_receipt(installed: Service) -> None:
    svc = installed
    row = record(svc, "1.0.0")
    inputs: list[dict[str, Any]] = [{"text": "one"}, {}, {"text": "three"}]
    receipts = [svc.run(F.SKILL_ID, "echo", value) for value in inputs]
    receipts.append(svc.run(F.SKILL_ID, "spin"))
    calls = events(svc, "tool.call")
    assert [e["seq"] for e in calls] == [r["receipt_seq"] for r in receipts]
    for event, value, tool in zip(
        calls, [*inputs, {}], ["acme.echo"] * 3 + ["acme.spin"], strict=True
    ):
        payload = event["payload"]
        canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert payload["skill_id"] == F.SKILL_ID
        assert payload["version"] == "1.0.0"
        assert payload["artifact_sha256"] == row.artifact_sha256
        assert payload["payload_sha256"] == row.payload_sha256
        assert payload["tool_id"] == tool
        assert payload["input_sha256"] == sha256(canonical.encode())
        assert payload["grants"] == {
            "channels": [],
            "http_hosts": [],
            "secrets": [f"{SECRET_SCOPE}/api_token"],
            "storage_read": [],
            "storage_write": [],
        }
        assert isinstance(payload["fuel_used"], int)
        assert payload["fuel_used"] > 0
        assert isinstance(payload["duration_ms"], int | float)
        assert payload["duration_ms"] >= 0
        assert payload["outcome"] == "ok"
        assert payload["egress"] == []
        assert payload["origin"] == "cli"
        assert "text" not in payload  # the input itself is never journaled
    assert calls[-1]["payload"]["fuel_used"] > calls[0]["payload"]["fuel_used"]

    # Calls refused before they run are journaled as tool.rejected with their error kind.
    expect_error("invalid_input", lambda: svc.run(F.SKILL_ID, "no_such_tool", {}))
    expect_error("not_found", lambda: svc.run("acme.absent", "echo", {}))
    svc.disable(F.SKILL_ID)
    expect_error("skill_not_active", lambda: svc.run(F.SKILL_ID, "echo", {"text": "z"}))
    rejected = events(svc, "tool.rejected")
    assert [(e["payload"]["skill_id"], e["payload"]["outcome"]) for e in rejected] == [
        (F.SKILL_ID, "invalid_input"),
        ("acme.absent", "not_found"),
        (F.SKILL_ID, "skill_not_active"),
    ]
    assert rejected[-1]["payload"]["input_sha256"] == sha256(b'{"text":"z"}')
    assert len(events(svc, "tool.call")) == 4


# ---- approvals ------------------------------------------------------------------------------


def pending(svc: Service, count: int = 1) -> list[dict[str, Any]]:
    wait_until(lambda: svc.list_approvals()["count"] == count, f"{count} pending approval(s)")
    rows: list[dict[str, Any]] = svc.list_approvals()["approvals"]
    return rows


def test_approve_once_then_the_next_call_asks_again(
    installed: Service, pool: ThreadPoolExecutor
) -> None:
    svc = installed
    call = pool.submit(svc.run, F.SKILL_ID, "guarded", {"text": "please"})
    [request] = pending(svc)
    assert request["tool_id"] == "acme.guarded"
    assert request["state"] == "pending"
    assert request["input_sha256"] == sha256(b'{"text":"please"}')
    assert not call.done()
    decided = svc.decide_approval(request["approval_id"], approve=True, reason="ok")
    assert (decided["state"], decided["decided_by"]) == ("approved", "operator")
    receipt = call.result(timeout=WAIT_S)
    assert receipt["output"] == {"text": "please"}
    assert receipt["approval_id"] == request["approval_id"]
    assert events(svc, "tool.call")[-1]["payload"]["approval_id"] == request["approval_id"]

    second = pool.submit(svc.run, F.SKILL_ID, "guarded", {"text": "again"})
    [again] = pending(svc)
    assert again["approval_id"] != request["approval_id"]
    svc.decide_approval(again["approval_id"], approve=False, reason="no")
    assert outcome(second) == "approval_denied"
    states = {a["approval_id"]: a["state"] for a in svc.list_approvals("all")["approvals"]}
    assert states == {request["approval_id"]: "approved", again["approval_id"]: "denied"}
    kinds = [e["kind"] for e in events(svc) if e["kind"].startswith("approval.")]
    assert kinds == ["approval.requested", "approval.decided"] * 2


def test_approve_with_a_window_skips_later_approvals(
    installed: Service, pool: ThreadPoolExecutor
) -> None:
    svc = installed
    call = pool.submit(svc.run, F.SKILL_ID, "guarded", {"text": "w"})
    [request] = pending(svc)
    decided = svc.decide_approval(request["approval_id"], approve=True, window_s=3600)
    assert decided["window_until_ms"] is not None
    assert call.result(timeout=WAIT_S)["approval_id"] == request["approval_id"]
    for text in ("a", "b", "c"):
        receipt = svc.run(F.SKILL_ID, "guarded", {"text": text})
        assert receipt["output"] == {"text": text}
        assert receipt["approval_id"] is None
    assert svc.list_approvals("all")["count"] == 1


def test_deny_rejects_the_call(installed: Service, pool: ThreadPoolExecutor) -> None:
    svc = installed
    call = pool.submit(svc.run, F.SKILL_ID, "guarded", {"text": "d"})
    [request] = pending(svc)
    svc.decide_approval(request["approval_id"], approve=False, reason="not today")
    assert outcome(call) == "approval_denied"
    [rejected] = events(svc, "tool.rejected")
    assert rejected["payload"]["outcome"] == "approval_denied"
    assert events(svc, "tool.call") == []
    assert svc.list_approvals("denied")["approvals"][0]["reason"] == "not today"


def test_an_undecided_approval_times_out_and_expires(installed: Service) -> None:
    svc = installed
    error = expect_error(
        "approval_timeout",
        lambda: svc.run(F.SKILL_ID, "guarded", {"text": "t"}, approval_timeout_s=0.5),
    )
    [expired] = svc.list_approvals("expired")["approvals"]
    assert expired["approval_id"] == error.details["approval_id"]
    assert svc.list_approvals()["count"] == 0
    assert events(svc, "approval.expired")[0]["payload"]["approval_id"] == expired["approval_id"]
    assert events(svc, "tool.rejected")[0]["payload"]["outcome"] == "approval_timeout"
    expect_error("conflict", lambda: svc.decide_approval(expired["approval_id"], approve=True))


def test_deciding_twice_is_a_conflict(installed: Service, pool: ThreadPoolExecutor) -> None:
    svc = installed
    call = pool.submit(svc.run, F.SKILL_ID, "guarded", {"text": "c"})
    [request] = pending(svc)
    expect_error(
        "usage", lambda: svc.decide_approval(request["approval_id"], approve=False, window_s=5)
    )
    expect_error(
        "usage", lambda: svc.decide_approval(request["approval_id"], approve=True, window_s=0)
    )
    svc.decide_approval(request["approval_id"], approve=True)
    expect_error("conflict", lambda: svc.decide_approval(request["approval_id"], approve=True))
    expect_error("conflict", lambda: svc.decide_approval(request["approval_id"], approve=False))
    expect_error("not_found", lambda: svc.decide_approval("0" * 32, approve=True))
    expect_error("usage", lambda: svc.list_approvals("bogus"))
    assert isinstance(call.result(timeout=WAIT_S), dict)
    assert len(events(svc, "approval.decided")) == 1


def test_a_decision_from_another_service_instance_reaches_the_waiter(
    env: Env, installed: Service, pool: ThreadPoolExecutor
) -> None:
    svc = installed
    other = env.open()  # another process sharing the database
    approve_call = pool.submit(svc.run, F.SKILL_ID, "guarded", {"text": "x"})
    wait_until(lambda: other.list_approvals()["count"] == 1, "the request in the other instance")
    [request] = other.list_approvals()["approvals"]
    other.decide_approval(request["approval_id"], approve=True, principal="operator:cli")
    receipt = approve_call.result(timeout=WAIT_S)
    assert receipt["approval_id"] == request["approval_id"]

    deny_call = pool.submit(svc.run, F.SKILL_ID, "guarded", {"text": "y"})
    wait_until(lambda: other.list_approvals()["count"] == 1, "the second request")
    [second] = other.list_approvals()["approvals"]
    other.decide_approval(second["approval_id"], approve=False)
    assert outcome(deny_call) == "approval_denied"


def test_a_quarantine_while_waiting_for_approval_stops_the_call(
    installed: Service, pool: ThreadPoolExecutor
) -> None:
    svc = installed
    call = pool.submit(svc.run, F.SKILL_ID, "guarded", {"text": "q"})
    [request] = pending(svc)
    svc.quarantine(F.SKILL_ID, reason="incident")
    svc.decide_approval(request["approval_id"], approve=True)
    assert outcome(call) == "skill_not_active"
    assert events(svc, "tool.call") == []


# ---- concurrency ----------------------------------------------------------------------------


def test_parallel_installs_from_threads_land_consistently(
    env: Env, svc: Service, pool: ThreadPoolExecutor
) -> None:
    # The publisher is pinned first so the threads race only on state, not on trust.
    svc.install_artifact(build("0.1.0"), allow_tofu=True)
    jobs = [build(f"1.{minor}.0") for minor in range(4)]
    jobs += [build(f"1.0.{patch}", skill_id=OTHER_SKILL) for patch in range(3)]
    jobs += [build("2.0.0", skill_id=THIRD_SKILL)]
    start = threading.Barrier(len(jobs))

    def install(data: bytes) -> dict[str, Any]:
        start.wait(WAIT_S)
        return svc.install_artifact(data)

    futures = [pool.submit(install, data) for data in jobs]
    results = [outcome(f) for f in futures]
    # A lower version that reads "current" after a higher one committed is a downgrade.
    assert all(isinstance(r, dict) or r == "downgrade_refused" for r in results), results
    landed = {(r["skill_id"], r["version"]) for r in results if isinstance(r, dict)}
    assert set(records(svc)) == landed | {(F.SKILL_ID, "0.1.0")}
    assert (THIRD_SKILL, "2.0.0") in landed
    assert (F.SKILL_ID, "1.3.0") in landed
    assert (OTHER_SKILL, "1.0.2") in landed
    assert_consistent(svc)
    for skill_id in (F.SKILL_ID, OTHER_SKILL, THIRD_SKILL):
        assert svc.run(skill_id, "echo", {"text": skill_id})["output"] == {"text": skill_id}


def test_parallel_installs_from_separate_service_instances(
    env: Env, svc: Service, pool: ThreadPoolExecutor
) -> None:
    svc.install_artifact(build("0.1.0", skill_id=THIRD_SKILL), allow_tofu=True)
    services = [svc, env.open(), env.open()]
    plan: list[tuple[Service, bytes]] = []
    for minor in range(6):
        plan.append((services[minor % 3], build(f"0.{minor}.5")))
    for index, skill in enumerate([OTHER_SKILL, THIRD_SKILL]):
        plan.append((services[(index + 1) % 3], build("3.0.0", skill_id=skill)))
    start = threading.Barrier(len(plan))

    def install(service: Service, data: bytes) -> dict[str, Any]:
        start.wait(WAIT_S)
        return service.install_artifact(data)

    futures = [pool.submit(install, service, data) for service, data in plan]
    results = [outcome(f) for f in futures]
    assert all(isinstance(r, dict) or r == "downgrade_refused" for r in results), results
    landed = {(r["skill_id"], r["version"]) for r in results if isinstance(r, dict)}
    assert set(records(svc)) == landed | {(THIRD_SKILL, "0.1.0")}
    assert {(OTHER_SKILL, "3.0.0"), (THIRD_SKILL, "3.0.0"), (F.SKILL_ID, "0.5.5")} <= landed
    for service in services:
        assert_consistent(service)
        assert records(service) == records(svc)
    # Every instance can run what any instance installed.
    for service in services:
        assert service.run(OTHER_SKILL, "echo", {"text": "x"})["version"] == "3.0.0"
    # Re-installing what another instance installed is idempotent.
    again = services[2].install_artifact(plan[-1][1])
    assert again["changed"] is False


def test_parallel_status_changes_serialise(
    env: Env, installed: Service, pool: ThreadPoolExecutor
) -> None:
    services = [installed, env.open()]
    actions = ["disable", "quarantine", "enable"] * 4
    start = threading.Barrier(len(actions))

    def change(index: int, action: str) -> dict[str, Any]:
        service = services[index % 2]
        start.wait(WAIT_S)
        method: Callable[..., dict[str, Any]] = getattr(service, action)
        return method(F.SKILL_ID, reason=f"{action} #{index}")

    futures = [pool.submit(change, i, a) for i, a in enumerate(actions)]
    results = [outcome(f) for f in futures]
    assert all(isinstance(r, dict) for r in results), results
    status_events = [
        e
        for e in events(installed)
        if e["kind"] in ("skill.disabled", "skill.quarantined", "skill.enabled")
    ]
    assert len(status_events) == len(actions)
    final = record(installed, "1.0.0")
    assert status_events[-1]["payload"]["status"] == final.status.value
    assert status_events[-1]["payload"]["reason"] == final.status_reason
    assert_consistent(installed)


def hold_in_guest(state: Path) -> StalledRead:
    """The next ``needs_secret`` call blocks inside the guest (see the module docstring)."""
    return StalledRead(state / "vault" / "vault.key")


def receipt_seq(svc: Service, kind: str, **match: Any) -> list[int]:
    return [
        e["seq"]
        for e in events(svc, kind)
        if all(e["payload"].get(k) == v for k, v in match.items())
    ]


def test_a_quarantine_stops_new_calls_while_running_ones_finish(
    env: Env, installed: Service, pool: ThreadPoolExecutor
) -> None:
    svc = installed
    svc.set_secret(SECRET_SCOPE, "api_token", SECRET_VALUE)
    operator = env.open()  # the quarantine comes from another instance (a local CLI)
    watcher = CallWatcher("acme.spin")
    svc.ctx.listeners.append(watcher)
    with hold_in_guest(env.state) as stall:
        in_guest = pool.submit(svc.run, F.SKILL_ID, "needs_secret")
        stall.wait_for_reader()  # gated, in its slots, running guest code
        spinning = [pool.submit(svc.run, F.SKILL_ID, "spin") for _ in range(2)]
        watcher.wait_entered(2)
        operator.quarantine(F.SKILL_ID, reason="incident")
        # Calls that start after the quarantine committed are refused at once …
        expect_error("skill_not_active", lambda: svc.run(F.SKILL_ID, "spin"))
        expect_error("skill_not_active", lambda: svc.run(F.SKILL_ID, "echo", {"text": "late"}))
        assert not in_guest.done()
    # … while the call already running finishes normally, with its receipt.
    assert in_guest.result(timeout=WAIT_S)["output"] == {"token_bytes": 0}
    quarantined_at = events(svc, "skill.quarantined")[0]["seq"]
    [held_receipt] = receipt_seq(svc, "tool.call", tool_id="acme.needs_secret", outcome="ok")
    assert held_receipt > quarantined_at
    # The spins were in flight too: each either passed the gate before the quarantine
    # (and finished) or met it at the gate; nothing else.
    spun = [outcome(f) for f in spinning]
    assert all(
        r["output"] == {"spun": True} if isinstance(r, dict) else r == "skill_not_active"
        for r in spun
    ), spun
    ok_spins = sum(isinstance(r, dict) for r in spun)
    assert len(receipt_seq(svc, "tool.call", tool_id="acme.spin", outcome="ok")) == ok_spins
    rejected = events(svc, "tool.rejected")
    assert len(rejected) == 2 + (2 - ok_spins)
    assert {e["payload"]["outcome"] for e in rejected} == {"skill_not_active"}
    assert all(e["seq"] > quarantined_at for e in rejected)
    assert record(svc, "1.0.0").status.value == "quarantined"


def test_a_full_runner_answers_overloaded(env: Env, pool: ThreadPoolExecutor) -> None:
    write_config(env.state, "[runner]\nworkers = 1\nqueue = 1\n")
    svc = env.open()
    svc.install_artifact(build("1.0.0"), allow_tofu=True)
    svc.set_secret(SECRET_SCOPE, "api_token", SECRET_VALUE)
    with hold_in_guest(env.state) as stall:
        holder = pool.submit(svc.run, F.SKILL_ID, "needs_secret")
        stall.wait_for_reader()  # holds the only worker
        spins = [pool.submit(svc.run, F.SKILL_ID, "spin") for _ in range(2)]
        # One spin takes the single queue place and waits for the worker; the other finds
        # the runner full and is answered at once.
        done = _first_completed(spins)
        assert len(done) == 1
        assert outcome(next(iter(done))) == "overloaded"
    assert holder.result(timeout=WAIT_S)["output"] == {"token_bytes": 0}
    results = [outcome(f) for f in spins]
    assert sorted(r if isinstance(r, str) else "ok" for r in results) == ["ok", "overloaded"]
    # The runner recovers once calls finish.
    assert svc.run(F.SKILL_ID, "echo", {"text": "after"})["output"] == {"text": "after"}


def _first_completed(futures: list[Future[dict[str, Any]]]) -> set[Future[dict[str, Any]]]:
    from concurrent.futures import FIRST_COMPLETED, wait

    done, _ = wait(futures, timeout=WAIT_S, return_when=FIRST_COMPLETED)
    assert done, "no call finished"
    return done


def test_three_concurrent_spins_on_a_tiny_runner_overload(
    env: Env, pool: ThreadPoolExecutor
) -> None:
    """The plain version: no hook holding anything, just three 400 ms calls at once."""
    write_config(env.state, "[runner]\nworkers = 1\nqueue = 1\n")
    svc = env.open()
    svc.install_artifact(build("1.0.0"), allow_tofu=True)
    svc.run(F.SKILL_ID, "echo", {})  # compile once, so the calls below start together

    def spin(start: threading.Barrier) -> dict[str, Any]:
        start.wait(WAIT_S)
        return svc.run(F.SKILL_ID, "spin")

    for _attempt in range(10):  # a round only misses if a thread starts 400 ms late
        barrier = threading.Barrier(3)
        results = [outcome(f) for f in [pool.submit(spin, barrier) for _ in range(3)]]
        assert all(isinstance(r, dict) or r == "overloaded" for r in results), results
        if "overloaded" in results:
            break
    else:
        pytest.fail("three concurrent spins never overloaded a 1-worker, 1-queue runner")


def test_the_per_skill_limit_holds_calls_of_one_skill(env: Env, pool: ThreadPoolExecutor) -> None:
    write_config(env.state, "[runner]\nworkers = 4\nqueue = 8\nper_skill = 1\n")
    svc = env.open()
    svc.install_artifact(build("1.0.0"), allow_tofu=True)
    svc.install_artifact(build("1.0.0", skill_id=OTHER_SKILL))
    svc.set_secret(SECRET_SCOPE, "api_token", SECRET_VALUE)
    with hold_in_guest(env.state) as stall:
        holder = pool.submit(svc.run, F.SKILL_ID, "needs_secret")
        stall.wait_for_reader()  # holds the skill's only slot
        queued = pool.submit(svc.run, F.SKILL_ID, "echo", {"text": "queued"})
        # Other skills still run: workers are free, only this skill's slot is taken.
        for n in range(3):
            assert svc.run(OTHER_SKILL, "echo", {"text": f"{n}"})["output"] == {"text": f"{n}"}
        assert not queued.done()
        assert not holder.done()
    assert holder.result(timeout=WAIT_S)["output"] == {"token_bytes": 0}
    assert queued.result(timeout=WAIT_S)["output"] == {"text": "queued"}
    [held] = receipt_seq(svc, "tool.call", tool_id="acme.needs_secret")
    [after] = receipt_seq(svc, "tool.call", skill_id=F.SKILL_ID, tool_id="acme.echo")
    others = receipt_seq(svc, "tool.call", skill_id=OTHER_SKILL)
    assert len(others) == 3
    assert max(others) < held < after


# ---- races the service must survive (found while writing these tests) -----------------------


def staged(state: Path, skill_id: str) -> int:
    """Installs of ``skill_id`` that verified, audited and staged their bytes, and now wait
    for the write lock (the service stages beside the final path, then moves the file in
    inside its write transaction)."""
    directory = state / "skills" / skill_id
    if not directory.is_dir():
        return 0
    return sum(1 for entry in directory.iterdir() if entry.name.startswith(".staged-"))


def test_a_losing_concurrent_install_does_not_overwrite_the_winners_artifact(
    env: Env, pool: ThreadPoolExecutor
) -> None:
    first = env.open()
    first.install_artifact(build("1.0.0"), allow_tofu=True)
    second = env.open()  # another process: its artifact cache is cold
    winner, loser = build("1.1.0", tag="winner"), build("1.1.0", tag="loser")
    with writers_held(env.state):  # both pass every check outside the lock, then queue
        a = pool.submit(first.install_artifact, winner)
        b = pool.submit(second.install_artifact, loser)
        wait_until(lambda: staged(env.state, F.SKILL_ID) == 2, "both installs staged")
    results = {"winner": outcome(a), "loser": outcome(b)}
    won = [name for name, r in results.items() if isinstance(r, dict)]
    assert len(won) == 1, results
    assert "already_installed" in results.values()
    data = winner if won == ["winner"] else loser
    assert record(first, "1.1.0").artifact_sha256 == sha256(data)
    assert artifact_path(env.state, F.SKILL_ID, "1.1.0").read_bytes() == data
    assert first.run(F.SKILL_ID, "echo", {"text": "w"})["version"] == "1.1.0"
    assert staged(env.state, F.SKILL_ID) == 0


def test_a_concurrent_lower_version_never_becomes_current(
    env: Env, pool: ThreadPoolExecutor
) -> None:
    first = env.open()
    first.install_artifact(build("1.0.0"), allow_tofu=True)
    second = env.open()
    with writers_held(env.state):
        higher = pool.submit(first.install_artifact, build("1.2.0"))
        lower = pool.submit(second.install_artifact, build("1.1.0"))
        wait_until(lambda: staged(env.state, F.SKILL_ID) == 2, "both updates staged")
    assert isinstance(outcome(higher), dict)
    result = outcome(lower)
    assert result == "downgrade_refused" or isinstance(result, dict), result
    assert current(first) == "1.2.0"


def test_concurrent_tofu_installs_never_accept_two_keys_for_one_publisher(
    env: Env, pool: ThreadPoolExecutor
) -> None:
    one, two = env.open(), env.open()
    with writers_held(env.state):
        a = pool.submit(one.install_artifact, build(skill_id=OTHER_SKILL), allow_tofu=True)
        b = pool.submit(
            two.install_artifact, build(skill_id=THIRD_SKILL, key=F.OTHER_KEY), allow_tofu=True
        )
        wait_until(
            lambda: staged(env.state, OTHER_SKILL) == staged(env.state, THIRD_SKILL) == 1,
            "both installs staged",
        )
    results = [outcome(a), outcome(b)]
    assert sum(isinstance(r, dict) for r in results) == 1, results
    assert "tofu_key_mismatch" in results
    assert one.reaudit()["quarantined"] == []


def test_opening_a_second_instance_never_deletes_an_in_flight_install(
    env: Env, pool: ThreadPoolExecutor
) -> None:
    daemon = env.open()
    cli = env.open()  # opened (and migrated) before; its recovery runs below
    path = artifact_path(env.state, F.SKILL_ID, "1.0.0")
    with writers_held(env.state):
        installing = pool.submit(daemon.install_artifact, build("1.0.0"), allow_tofu=True)
        wait_until(lambda: staged(env.state, F.SKILL_ID) == 1, "the artifact staged")
        # What Service.open does after opening the store: it queues for the same lock.
        recovering = pool.submit(lifecycle.recover, cli.ctx)
    result = outcome(installing)
    assert isinstance(result, dict) and result["status"] == "active"
    assert isinstance(recovering.result(timeout=WAIT_S), dict)
    assert path.exists()
    assert daemon.run(F.SKILL_ID, "echo", {"text": "x"})["output"] == {"text": "x"}


def test_concurrent_installs_of_identical_bytes_are_idempotent(
    env: Env, pool: ThreadPoolExecutor
) -> None:
    one = env.open()
    one.install_artifact(build("0.1.0"), allow_tofu=True)
    two = env.open()
    data = build("1.0.0")
    with writers_held(env.state):
        a = pool.submit(one.install_artifact, data)
        b = pool.submit(two.install_artifact, data)
        wait_until(lambda: staged(env.state, F.SKILL_ID) == 2, "both installs staged")
    results = [outcome(a), outcome(b)]
    assert all(isinstance(r, dict) for r in results), results
    assert sorted(bool(r["changed"]) for r in results if isinstance(r, dict)) == [False, True]
    assert_consistent(one)


# ---- journal --------------------------------------------------------------------------------


def test_journal_paging_and_filters(installed: Service) -> None:
    svc = installed
    for text in "abc":
        svc.run(F.SKILL_ID, "echo", {"text": text})
    page = svc.journal(limit=2)
    assert [e["seq"] for e in page["events"]] == [1, 2]
    assert [e["seq"] for e in svc.journal(after_seq=2, limit=10)["events"]] == [3, 4]
    assert svc.journal(kind="tool.call")["count"] == 3
    expect_error("usage", lambda: svc.journal(limit=0))
    expect_error("usage", lambda: svc.journal(limit=1001))
    expect_error("usage", lambda: svc.journal(after_seq=-1))
    chain = svc.journal()["events"]
    for before, after in itertools.pairwise(chain):
        assert after["prev_hash"] == before["hash"]


def test_the_journal_detects_tampering(env: Env, installed: Service) -> None:
    svc = installed
    svc.install_artifact(build("1.1.0"))
    svc.run(F.SKILL_ID, "echo", {"text": "hello"})
    svc.disable(F.SKILL_ID)
    report = svc.verify_journal()
    assert report["ok"] is True
    assert report["events"] == report["last_seq"] == 4
    assert report["first_bad_seq"] is None
    [call] = events(svc, "tool.call")

    env.journal_must_verify = False
    conn = sqlite3.connect(env.state / "palyra.sqlite3", isolation_level=None)
    try:
        conn.execute("DROP TRIGGER journal_no_update")
        payload = dict(call["payload"], outcome="ok", tool_id="acme.guarded")
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        conn.execute("UPDATE journal SET payload_json = ? WHERE seq = ?", (text, call["seq"]))
    finally:
        conn.close()
    tampered = svc.verify_journal()
    assert tampered["ok"] is False
    assert tampered["first_bad_seq"] == call["seq"]
    assert tampered["problem"] == "event content does not match its hash"


def test_deleting_a_journal_event_breaks_the_chain(env: Env, installed: Service) -> None:
    svc = installed
    for text in "ab":
        svc.run(F.SKILL_ID, "echo", {"text": text})
    env.journal_must_verify = False
    conn = sqlite3.connect(env.state / "palyra.sqlite3", isolation_level=None)
    try:
        conn.execute("DROP TRIGGER journal_no_delete")
        conn.execute("DELETE FROM journal WHERE seq = 2")
    finally:
        conn.close()
    report = svc.verify_journal()
    assert (report["ok"], report["first_bad_seq"]) == (False, 3)
    assert report["problem"] == "previous-hash link is broken"


def test_the_journal_is_append_only(env: Env, installed: Service) -> None:
    svc = installed
    conn = sqlite3.connect(env.state / "palyra.sqlite3", isolation_level=None)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE journal SET kind = 'forged' WHERE seq = 1")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM journal")
    finally:
        conn.close()
    assert svc.verify_journal()["ok"] is True
    assert [e["kind"] for e in events(svc)] == ["skill.installed"]


def test_reinstalling_the_same_content_re_signed_later_is_a_no_op(env: Env) -> None:
    """A rebuild signs again (a new signed_at, so new bytes) but the payload is the same:
    idempotent, and the stored artifact is the first one."""
    from palyra.skills.build import build_signed_skill_artifact

    svc = env.open()
    text = F.manifest("1.0.0")
    first = build_signed_skill_artifact(
        text, [("module.wasm", F.MODULE)], F.KEY, signed_at_unix_ms=1_700_000_000_000
    ).artifact
    again = build_signed_skill_artifact(
        text, [("module.wasm", F.MODULE)], F.KEY, signed_at_unix_ms=1_800_000_000_000
    ).artifact
    assert first != again
    assert svc.install_artifact(first, allow_tofu=True)["changed"] is True
    assert svc.install_artifact(again)["changed"] is False
    assert artifact_path(env.state, F.SKILL_ID, "1.0.0").read_bytes() == first
    other_key = build_signed_skill_artifact(text, [("module.wasm", F.MODULE)], F.OTHER_KEY)
    expect_error_any(lambda: svc.install_artifact(other_key.artifact, allow_tofu=True))
