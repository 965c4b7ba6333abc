"""The hostile-artifact corpus: every case file in ``artifacts/`` goes through the real service.

Each case builds its hostile artifact (see :mod:`artifact_cases`), prepares a fresh state
root as its ``[setup]`` says (trust-store entries, known-good versions installed), then
installs through :class:`palyra.daemon.service.Service` exactly as the CLI and the API do.

Why the outcome checks are this strict: a refusal must be the typed error of the right
``kind`` (a traceback or a generic error is a bug) and must leave the state root
byte-for-byte as it was — no row, no journal event, no pin, no staged or placed file. A
held update or a quarantined install is a *designed* outcome with its own contract: the new
version is stored but cannot run, and the version that was current stays current, active and
with the same grants.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from artifact_cases import (
    CATEGORIES,
    KEYS,
    ArtifactSpec,
    Case,
    Installed,
    Setup,
    build_artifact,
    case_paths,
    good_artifact,
    load_case,
)
from state_snapshot import snapshot

import daemon_fixtures as F
from palyra.daemon.service import Service
from palyra.errors import PalyraError
from palyra.paths import resolve_trust_store
from palyra.skills.trust import TrustStore

CASES: list[Case] = [load_case(path) for path in case_paths()]
MIN_CASES = 60
MIN_PER_CATEGORY = 3


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment must not point the service at a real trust store or blocklist."""
    for name in (
        "PALYRA_STATE_ROOT",
        "PALYRA_SKILLS_TRUST_STORE",
        "PALYRA_SKILL_AUDIT_BLOCKLIST",
        "PALYRA_CODE_CACHE",
        "PALYRA_VAULT_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def state_root(tmp_path: Path) -> Path:
    return tmp_path / "state"


# ---- setup and the attempt --------------------------------------------------------------------


def prepare(root: Path, setup: Setup) -> None:
    """Write the case's trust store, then install its known-good versions (TOFU allowed)."""
    if setup.trust_tofu or setup.trust_allowlist:
        store = TrustStore()
        for publisher, keys in setup.trust_allowlist.items():
            for name in keys:
                store.add_trusted_key(publisher, KEYS[name].public_key_hex)
        for publisher, name in setup.trust_tofu.items():
            store.pin(publisher, KEYS[name].public_key_hex)
        path = resolve_trust_store(root)
        path.parent.mkdir(parents=True, exist_ok=True)
        store.save(path)
    svc = Service.open(root)
    try:
        for installed in setup.installed:
            svc.install_artifact(good_artifact(installed), allow_tofu=True)
    finally:
        svc.close()


def attempt(svc: Service, setup: Setup, data: bytes, path: Path) -> dict[str, Any]:
    """The install exactly as a face performs it: a file path, or uploaded bytes."""
    update_of = F.SKILL_ID if setup.update else None
    if setup.via == "bytes":
        return svc.install_artifact(data, allow_tofu=setup.allow_tofu, update_of=update_of)
    path.write_bytes(data)
    return svc.install_file(path, allow_tofu=setup.allow_tofu, update_of=update_of)


def current_state(svc: Service) -> tuple[str | None, dict[str, Any] | None, dict[str, Any] | None]:
    """(current version, its record, its capability grants) of the demo skill."""
    with svc.ctx.store.read() as tx:
        version = tx.current_version(F.SKILL_ID)
        record = None if version is None else tx.skill_version(F.SKILL_ID, version)
    if record is None:
        return version, None, None
    grants = svc.info(F.SKILL_ID, record.version)["capabilities"]
    return version, record.to_json(), grants


def journal_kinds(svc: Service) -> list[str]:
    return [event["kind"] for event in svc.journal(limit=1000)["events"]]


# ---- the corpus -------------------------------------------------------------------------------


def test_corpus_is_large_and_covers_every_category() -> None:
    counts = Counter(case.category for case in CASES)
    assert len(CASES) >= MIN_CASES, f"only {len(CASES)} cases"
    thin = {c: counts[c] for c in CATEGORIES if counts[c] < MIN_PER_CATEGORY}
    assert not thin, f"categories with fewer than {MIN_PER_CATEGORY} cases: {thin}"


def test_every_case_builds_bytes_unlike_the_known_good_artifact() -> None:
    """A mutation that silently did nothing would make its case meaningless."""
    for case in CASES:
        if case.artifact.mutation == "none" and not (
            case.artifact.replace or case.artifact.replace_all or case.artifact.key != "base"
        ):
            continue  # the hostility is in the setup (trust, versions), not the bytes
        good = good_artifact_for(case.artifact)
        assert build_artifact(case.artifact) != good, case.stem


def good_artifact_for(spec: ArtifactSpec) -> bytes:
    return good_artifact(Installed(spec.version, spec.hosts, spec.extra))


def _error_kinds() -> set[str]:
    """Every ``kind`` a PalyraError subclass declares (after importing the error modules)."""
    import palyra.daemon.artifacts
    import palyra.daemon.errors
    import palyra.skills.errors  # noqa: F401

    kinds: set[str] = set()
    pending: list[type[PalyraError]] = [PalyraError]
    while pending:
        cls = pending.pop()
        kinds.add(cls.kind)
        pending.extend(cls.__subclasses__())
    return kinds


def test_every_expected_kind_is_a_real_error_kind() -> None:
    """A typo in a case's ``kind`` would otherwise read as a product bug."""
    known = _error_kinds()
    unknown = {case.stem: case.expect.kind for case in CASES if case.expect.kind not in known}
    assert not {stem: kind for stem, kind in unknown.items() if kind is not None}


@pytest.mark.parametrize("version", ["1.0.0", "2.0.0"])
def test_the_unmutated_builder_output_installs(state_root: Path, version: str) -> None:
    """Control: the builder's known-good bytes install active, so every refusal in the
    corpus is caused by its one mutation."""
    svc = Service.open(state_root)
    try:
        body = svc.install_artifact(build_artifact(ArtifactSpec(version=version)), allow_tofu=True)
        assert (body["status"], body["current"], body["changed"]) == ("active", True, True)
    finally:
        svc.close()


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_hostile_artifact(case: Case, tmp_path: Path, state_root: Path) -> None:
    prepare(state_root, case.setup)
    data = build_artifact(case.artifact)
    svc = Service.open(state_root)  # recovery runs here, before the "before" snapshot
    try:
        before = snapshot(state_root)
        version_before, record_before, grants_before = current_state(svc)
        events_before = journal_kinds(svc)
        target = tmp_path / "hostile.palyra-skill"
        expect = case.expect

        if expect.outcome in ("refused", "unchanged"):
            if expect.outcome == "refused":
                try:
                    body = attempt(svc, case.setup, data, target)
                except PalyraError as exc:  # anything else propagates: a bug, with traceback
                    assert exc.kind == expect.kind, exc.to_json()
                else:
                    pytest.fail(
                        f"not refused: {body['version']} was stored with status "
                        f"{body['status']}, current={body['current']}, changed={body['changed']}"
                    )
            else:
                body = attempt(svc, case.setup, data, target)
                assert body["changed"] is False, body
            after = snapshot(state_root)
            assert after == before, f"state changed: {before.describe_difference(after)}"
            return

        body = attempt(svc, case.setup, data, target)
        new_version = case.artifact.version
        assert body["version"] == new_version
        assert body["changed"] is True
        assert body["status"] == "quarantined", body
        version_after, record_after, grants_after = current_state(svc)
        if version_before is not None:
            assert version_after == version_before, (
                f"the {expect.outcome} version {new_version} displaced the current "
                f"{version_before} (now current: {version_after})"
            )
            assert record_after == record_before
            assert record_after is not None and record_after["status"] == "active"
            assert grants_after == grants_before
            assert body["current"] is False

        # What was there before is untouched: no row modified or removed, no file changed;
        # the only new version row is the one just installed.
        after = snapshot(state_root)
        for name, rows in before.tables.items():
            kept = after.tables.get(name, [])
            assert all(row in kept for row in rows), f"a row of {name} changed or vanished"
        added = [
            row
            for row in after.tables["skill_versions"]
            if row not in before.tables.get("skill_versions", [])
        ]
        assert len(added) == 1, added
        for path, digest in before.files.items():
            assert after.files.get(path) == digest, path

        if expect.outcome == "held":
            assert body["pending_capabilities"] == expect.held
            assert body["held_capabilities"] == expect.held
            assert body["status_reason"].startswith("capability_approval_required")
            assert before.trust_store == after.trust_store  # the publisher was already known
            assert journal_kinds(svc)[len(events_before) :] == [
                "skill.update_held",
                "skill.quarantined",
            ]
            with pytest.raises(PalyraError) as info:
                svc.enable(F.SKILL_ID, new_version)
            assert info.value.kind == "capability_approval_required"
        else:
            assert body["status_reason"].startswith(expect.reason_prefix or "audit_failed")
            assert body["pending_capabilities"] is None
            with pytest.raises(PalyraError) as info:
                svc.enable(F.SKILL_ID, new_version)
            assert info.value.kind == "quarantine_required"
        assert svc.verify_journal()["ok"]
    finally:
        svc.close()
