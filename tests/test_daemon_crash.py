"""Crash consistency (design.md §4): "a crash at any instant leaves either the old or the new state".

For install, enable, update, remove, a vault write and a hook dispatch, a child process
(``daemon_crash_child.py``) runs the operation through the service and is SIGKILLed at a
random moment of it. The delay is drawn
over the operation's duration, measured once by a run that is not killed (which also yields
the "after" state). Each trial starts from a fresh copy of a prepared state root; afterwards
``Service.open`` (which runs recovery) must find exactly the "before" or the "after" state:
the same version rows, statuses, "current", journal events, TOFU pins and secret values, an
artifact file for every row and nothing else, and a journal whose hash chain verifies.

A hook dispatch is several commits by nature (the request, then each hook's call with its
receipt): a crash may stop it between them, so there the rule is "everything but the journal
as before, and the journal a prefix of the completed run's" — never a receipt without its
request, never a broken chain.

``CRASH_TRIALS`` sets the trials per operation (20 in ``make test``, more in ``make fuzz``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import select
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import daemon_fixtures as F
from palyra.daemon.artifacts import ARTIFACT_NAME, artifact_path
from palyra.daemon.service import Service
from palyra.skills.trust import TrustStore

CHILD = Path(__file__).with_name("daemon_crash_child.py")
TRIALS = int(os.environ.get("CRASH_TRIALS", "20"))
CHILD_TIMEOUT_S = 60.0
HOST = "api.example.com"
SECRET_SCOPE = f"skill:{F.SKILL_ID}"
HOOK_EVENT = "gateway:startup"
# Besides artifacts, the skills directory holds the trust store, its lock file and, after a
# crash in the middle of pinning, the trust store's own temporary file (never read).
TRUST_FILES = ("trust-store.json", "trust-store.json.lock")

Row = tuple[str, str, str, str | None, bool, str, str, str]


@dataclass(frozen=True)
class State:
    rows: tuple[Row, ...]
    journal: tuple[str, ...]
    pins: tuple[tuple[str, str], ...]
    secrets: tuple[tuple[str, str], ...]  # reference → sha256 of the value

    def but_journal(self) -> State:
        return State(self.rows, (), self.pins, self.secrets)

    @property
    def installed(self) -> bool:
        return bool(self.rows)


@dataclass(frozen=True)
class Scenario:
    operation: str
    template: Path
    args: tuple[str, ...]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PALYRA_"):
            monkeypatch.delenv(name)


def observe(state: Path) -> State:
    """Open the state as the next start would (running recovery) and describe it."""
    service = Service.open(state)
    try:
        with service.ctx.store.read() as tx:
            records = tx.skill_versions()
            kinds = tuple(e.kind for e in tx.events(limit=100_000))
        chain = service.verify_journal()
        trust = TrustStore.load(service.ctx.trust_path)
        vault = service.ctx.vault
        secrets = tuple(
            (f"{scope}/{key}", hashlib.sha256(vault.get(scope, key) or b"").hexdigest())
            for scope, key in vault.names()
        )
        assert not vault.pending_path.exists()  # recovery committed or discarded it
    finally:
        service.close()
    assert chain["ok"], chain
    rows = tuple(
        sorted(
            (
                r.skill_id,
                r.version,
                r.status.value,
                r.status_reason,
                r.current,
                json.dumps(r.pending_capabilities, sort_keys=True),
                r.trust_decision,
                r.artifact_sha256,
            )
            for r in records
        )
    )
    # Artifact files exist iff rows exist, hold the bytes their row verified, and nothing
    # else (no orphan directory, no staging file) is left in the skills directory.
    expected: set[str] = set()
    for skill_id, version, *_rest, digest in rows:
        path = artifact_path(state, skill_id, version)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, path
        expected |= {skill_id, f"{skill_id}/{version}", f"{skill_id}/{version}/{ARTIFACT_NAME}"}
    skills = state / "skills"
    found = {
        str(p.relative_to(skills))
        for p in (skills.rglob("*") if skills.is_dir() else [])
        if not (p.parent == skills and (p.name in TRUST_FILES or _trust_temp(p.name)))
    }
    assert found == expected
    return State(rows, kinds, tuple(sorted(trust.tofu_publishers.items())), secrets)


def on_disk(state: Path) -> tuple[frozenset[str], tuple[tuple[str, str], ...]]:
    """What a crash left, before recovery touches it: skills directory entries and pins."""
    skills = state / "skills"
    entries = frozenset(
        str(p.relative_to(skills)) for p in (skills.rglob("*") if skills.is_dir() else [])
    )
    vault = state / "vault"
    entries |= {f"vault/{p.name}" for p in (vault.iterdir() if vault.is_dir() else [])}
    pinned = TrustStore.load(skills / "trust-store.json").tofu_publishers
    return entries, tuple(sorted(pinned.items()))


def _trust_temp(name: str) -> bool:
    return name.startswith(".trust-store.json.") and name.endswith(".tmp")


def prepare(operation: str, base: Path) -> Scenario:
    """A template state root from which ``operation`` makes a visible change."""
    arts = base / "arts"
    arts.mkdir()
    template = base / "template"
    service = Service.open(template)
    try:
        if operation == "install":
            args: tuple[str, ...] = (str(F.write_artifact(arts, "1.0.0")),)
        elif operation == "update":
            service.install_file(F.write_artifact(arts, "1.0.0"), allow_tofu=True)
            registry = arts / "registry"
            registry.mkdir()
            F.write_artifact(registry, "1.1.0")
            args = (str(registry), F.SKILL_ID)
        elif operation == "secret":
            service.install_file(F.write_artifact(arts, "1.0.0"), allow_tofu=True)
            service.set_secret(SECRET_SCOPE, "api_token", b"old-value")
            args = (SECRET_SCOPE, "api_token", "new-value")
        elif operation == "hook":
            service.install_file(F.write_artifact(arts, "1.0.0"), allow_tofu=True)
            service.bind_plugin("echoer", F.SKILL_ID, "echo")
            service.bind_hook("on-startup", HOOK_EVENT, "echoer")
            args = (HOOK_EVENT,)
        elif operation == "enable":
            service.install_file(F.write_artifact(arts, "1.0.0"), allow_tofu=True)
            held = service.install_file(F.write_artifact(arts, "1.1.0", hosts=(HOST,)))
            assert held["pending_capabilities"] == {"http_hosts": [HOST]}
            args = (F.SKILL_ID, "1.1.0")
        else:
            assert operation == "remove"
            service.install_file(F.write_artifact(arts, "1.0.0"), allow_tofu=True)
            service.install_file(F.write_artifact(arts, "1.1.0"))
            args = (F.SKILL_ID,)
    finally:
        service.close()
    return Scenario(operation, template, args)


def child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PALYRA_")}


def run_child(scenario: Scenario, state: Path, kill_after: float | None) -> float | None:
    """Run the operation on ``state``; SIGKILL it ``kill_after`` seconds after READY.
    Returns the operation's duration when it ran to completion."""
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(state), scenario.operation, *scenario.args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], CHILD_TIMEOUT_S)
        line = proc.stdout.readline().decode().strip() if ready else ""
        if line != "READY":
            proc.kill()
            _, err = proc.communicate(timeout=CHILD_TIMEOUT_S)
            raise AssertionError(f"child did not start: {line!r} {err.decode()[-2000:]}")
        if kill_after is None:
            out, err = proc.communicate(timeout=CHILD_TIMEOUT_S)
            assert proc.returncode == 0, err.decode()[-2000:]
            word, seconds = out.decode().split()
            assert word == "DONE"
            return float(seconds)
        time.sleep(kill_after)
        proc.kill()  # SIGKILL: no handler, no cleanup, no flushing
        _, err = proc.communicate(timeout=CHILD_TIMEOUT_S)
        # Either killed mid-way or already finished cleanly (a late draw).
        assert proc.returncode in (-9, 0), err.decode()[-2000:]
        return None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _allowed(operation: str, seen: State, before: State, after: State) -> bool:
    if operation != "hook":
        return seen in (before, after)
    return (
        seen.but_journal() == before.but_journal()
        and seen.journal == after.journal[: len(seen.journal)]
        and seen.journal[: len(before.journal)] == before.journal
    )


@pytest.mark.parametrize("operation", ["install", "enable", "update", "remove", "secret", "hook"])
def test_a_killed_operation_leaves_the_state_before_or_after(
    operation: str, tmp_path: Path
) -> None:
    scenario = prepare(operation, tmp_path)
    fresh = tmp_path / "fresh"
    shutil.copytree(scenario.template, fresh)
    before = observe(fresh)
    finished = tmp_path / "finished"
    shutil.copytree(scenario.template, finished)
    duration = run_child(scenario, finished, kill_after=None)
    assert duration is not None
    after = observe(finished)
    assert before != after

    rng = random.Random(f"crash-{operation}")  # reproducible draws; outcomes may still vary
    outcomes = {"before": 0, "after": 0, "between": 0, "recovered": 0}
    for trial in range(TRIALS):
        state = tmp_path / f"trial-{trial}"
        shutil.copytree(scenario.template, state)
        delay = rng.uniform(0.0, duration * 1.25)
        run_child(scenario, state, kill_after=delay)
        left = on_disk(state)
        seen = observe(state)
        assert _allowed(operation, seen, before, after), (
            f"trial {trial} (killed {delay * 1000:.1f} ms into a {duration * 1000:.1f} ms "
            f"{operation}) left a third state:\n{seen}\nbefore: {before}\nafter: {after}"
        )
        outcomes["before" if seen == before else "after" if seen == after else "between"] += 1
        outcomes["recovered"] += left != on_disk(state)  # an orphan removed or a pin restored
        if operation == "install":
            # The TOFU pin exists iff the skill is installed (never for a failed install).
            assert seen.installed == bool(seen.pins)
            assert seen.pins in ((), ((F.PUBLISHER, F.KEY.public_key_hex),))
        shutil.rmtree(state)
    print(f"{operation}: {duration * 1000:.1f} ms, {outcomes}")


@pytest.mark.parametrize("journaled", [True, False], ids=["journaled", "not-journaled"])
def test_a_staged_vault_is_committed_iff_its_entry_is_journaled(
    tmp_path: Path, journaled: bool
) -> None:
    """The two instants a random kill rarely hits, made exact: after staging a vault write
    (before or after its journal entry commits), recovery leaves the old vault or the new."""
    state = tmp_path / "state"
    service = Service.open(state)
    try:
        service.set_secret(SECRET_SCOPE, "api_token", b"old-value")
        vault = service.ctx.vault
        assert vault.stage(SECRET_SCOPE, "api_token", b"new-value")
        if journaled:  # what _commit_vault does, minus the commit a crash prevented
            digest = vault.staged_digest()
            with service.ctx.store.write() as tx:
                tx.append_event("secret.set", "operator", {"secret": "x", "vault_sha256": digest})
        assert vault.get(SECRET_SCOPE, "api_token") == b"old-value"
    finally:
        service.close()
    reopened = Service.open(state)  # recovery
    try:
        value = reopened.ctx.vault.get(SECRET_SCOPE, "api_token")
        assert not reopened.ctx.vault.pending_path.exists()
    finally:
        reopened.close()
    assert value == (b"new-value" if journaled else b"old-value")
