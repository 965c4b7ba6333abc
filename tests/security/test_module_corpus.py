"""The hostile module corpus (``tests/security/modules/*.toml``) run end to end.

Each case is signed into a real artifact, installed through :class:`Service` with TOFU, and —
unless the install is refused — its tool is called through ``Service.run``, the path every
face (CLI, HTTP, MCP) takes. The runtime suites already prove the sandbox contains these guests
in isolation; this one proves the *service* keeps the promise on top of it:

* the outcome is the typed error kind the case names (or the exact output for ``ok``), and a
  failure is always a :class:`PalyraError`, never a bare exception or a dead process;
* state is untouched: a refused install changes nothing at all, and a call changes exactly one
  thing — one new journal event (``tool.call`` or ``tool.rejected``) whose ``outcome`` is the
  expected kind;
* the process is unharmed: a well-behaved tool of another skill, installed in the same state
  root and run by the same ``Service``, still answers correctly right after.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
from module_cases import (
    CATEGORIES,
    CONTROL_SKILL_ID,
    CONTROL_WAT,
    SKILL_ID,
    Case,
    case_manifest,
    control_manifest,
    load_cases,
)
from state_snapshot import Snapshot, assert_unchanged, snapshot

from palyra.daemon.service import Service
from palyra.errors import PalyraError
from palyra.skills.build import build_signed_skill_artifact
from palyra.skills.keys import SigningKey
from runtime_fixtures import wat

KEY = SigningKey(bytes([0x0C]) * 32)
REPO = Path(__file__).resolve().parents[2]
# Components take seconds to compile; their compiled code is shared with the other component
# suites (tests/component_guests.py). Core modules compile in milliseconds: a per-test cache.
SHARED_CODE_CACHE = REPO / "build" / "test-cache" / "modules"
# A bound on any single step, far above every case's own limits: a step that takes longer
# is a hang, reported as such instead of stalling the whole suite.
HANG_SECONDS = 60.0
MIN_CASES = 30
MIN_PER_CATEGORY = 3

CASES = load_cases()
T = TypeVar("T")


def test_corpus_is_large_and_covers_every_category() -> None:
    assert len(CASES) >= MIN_CASES, f"only {len(CASES)} cases"
    counts = Counter(case.category for case in CASES)
    thin = {c: counts.get(c, 0) for c in CATEGORIES if counts.get(c, 0) < MIN_PER_CATEGORY}
    assert not thin, f"categories with fewer than {MIN_PER_CATEGORY} cases: {thin}"


def bounded(what: str, step: Callable[[], T]) -> T:
    """Run ``step`` on a worker thread and fail (not hang) if it does not finish in time.

    Sandbox calls may run on any thread (wall-clock bounds come from the shared epoch
    ticker), so this changes nothing about how the call is made."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = step()
        except BaseException as exc:  # handed to the test thread below
            box["error"] = exc

    worker = threading.Thread(target=target, name=f"corpus-{what}", daemon=True)
    worker.start()
    worker.join(HANG_SECONDS)
    if worker.is_alive():
        pytest.fail(f"{what} did not finish within {HANG_SECONDS:g} s (hang)")
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def guest_bytes(case: Case) -> bytes:
    if case.component is None:
        return case.module_bytes()
    from component_guests import guest

    return guest(case.component)


def write_artifact(directory: Path, name: str, manifest: str, module: bytes) -> Path:
    built = build_signed_skill_artifact(manifest, [("module.wasm", module)], KEY)
    path = directory / f"{name}.palyra-skill"
    path.write_bytes(built.artifact)
    return path


def journal_rows(shot: Snapshot) -> list[tuple[Any, ...]]:
    return shot.tables.get("journal", [])


def assert_only_one_event(root: Path, before: Snapshot, kind: str, outcome: str) -> None:
    """Everything equals ``before`` except exactly one new journal row of ``kind`` whose
    payload's ``outcome`` is ``outcome``."""
    after = snapshot(root)
    old = set(journal_rows(before))
    new = [row for row in journal_rows(after) if row not in old]
    assert len(new) == 1, f"expected one new journal event, got {len(new)}: {new}"
    _seq, _at, event_kind, _actor, payload_json, *_chain = new[0]
    payload = json.loads(payload_json)
    assert (event_kind, payload.get("outcome")) == (kind, outcome), payload
    remaining = [row for row in journal_rows(after) if row != new[0]]
    trimmed = replace(after, tables={**after.tables, "journal": remaining})
    assert trimmed == before, f"state changed: {before.describe_difference(trimmed)}"


def check_control(service: Service) -> None:
    """The process is unharmed: another skill's well-behaved tool still works."""
    value = {"still": "alive ✓", "n": 7}
    receipt = bounded("control call", lambda: service.run(CONTROL_SKILL_ID, "echo", value))
    assert receipt["output"] == value
    assert receipt["exit_code"] == 0


def check_failure(case: Case, exc: PalyraError) -> None:
    expect = case.expect
    assert exc.kind == expect.outcome, f"{case.name}: {exc.kind}: {exc.message}"
    json.dumps(exc.to_json())  # every failure is reportable as JSON
    if expect.trap_code is not None:
        assert exc.details.get("trap_code") == expect.trap_code, exc.details
    if expect.message_contains is not None:
        assert expect.message_contains in exc.message, exc.message


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_hostile_case(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = SHARED_CODE_CACHE if case.component else tmp_path / "code-cache"
    monkeypatch.setenv("PALYRA_CODE_CACHE", str(cache))
    root = tmp_path / "state"
    root.mkdir(mode=0o700)
    (root / "config.toml").write_text(case.config)
    module = guest_bytes(case)
    hostile = write_artifact(tmp_path, "hostile", case_manifest(case), module)
    control = write_artifact(tmp_path, "control", control_manifest(), wat(CONTROL_WAT))

    service = Service.open(root)
    try:
        service.install_file(control, allow_tofu=True)
        check_control(service)  # warm: the control works before the hostile case, too
        expect = case.expect

        before = snapshot(root)
        if expect.install == "refused":
            with pytest.raises(PalyraError) as refused:
                bounded("install", lambda: service.install_file(hostile, allow_tofu=True))
            assert refused.value.kind == expect.install_error, refused.value.to_json()
            assert_unchanged(root, before)
            check_control(service)
            return

        body = bounded("install", lambda: service.install_file(hostile, allow_tofu=True))
        assert body["skill_id"] == SKILL_ID
        assert body["status"] == expect.install, body["status_reason"]
        failed = body["audit"]["failed_checks"]
        if expect.install == "quarantined":
            missing = set(expect.audit_failed) - set(failed)
            assert not missing, f"audit checks that did not fail: {missing} (failed: {failed})"
        else:
            assert failed == [], body["audit"]

        before = snapshot(root)
        try:
            receipt = bounded("call", lambda: service.run(SKILL_ID, case.tool, case.input))
        except PalyraError as exc:
            check_failure(case, exc)
        else:
            assert expect.outcome == "ok", (
                f"{case.name}: expected {expect.outcome}, the call succeeded with "
                f"{json.dumps(receipt['output'])[:300]}"
            )
            assert receipt["output"] == expect.output
        assert expect.outcome is not None
        assert_only_one_event(root, before, expect.journal_kind, expect.outcome)
        check_control(service)
    finally:
        service.close()
