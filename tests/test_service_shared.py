"""The service layer on a shared PostgreSQL store: artifacts and the trust store in the
database, verified on read, cleaned up in the same transactions as the rows naming them.

(``tests/test_daemon_service.py`` covers the same lifecycle on SQLite with artifact files;
``tests/test_multi_daemon.py`` covers two daemon processes on one database.)
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

import daemon_fixtures as F
from conftest import CliResult
from palyra.daemon.service import Service
from palyra.errors import PalyraError

ECHO = {"text": "shared"}


@pytest.fixture
def url(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PALYRA_DATABASE_URL", pg_url)
    return pg_url


@pytest.fixture
def svc(url: str, tmp_path: Path) -> Iterator[Service]:
    service = Service.open(tmp_path / "state")
    yield service
    assert service.verify_journal()["ok"]
    service.close()


def blobs(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT sha256, size FROM artifact_blobs").fetchall()
    return {str(sha): int(size) for sha, size in rows}


def test_artifacts_live_in_the_database_and_follow_their_rows(svc: Service, url: str) -> None:
    first, second = F.artifact("1.0.0"), F.artifact("1.1.0")
    svc.install_artifact(first, allow_tofu=True)
    svc.install_artifact(second)
    assert blobs(url) == {
        hashlib.sha256(first).hexdigest(): len(first),
        hashlib.sha256(second).hexdigest(): len(second),
    }
    assert not (svc.ctx.state_root / "skills" / F.SKILL_ID).exists()
    assert svc.run(F.SKILL_ID, "echo", ECHO)["output"] == ECHO
    svc.install_artifact(second)  # the same bytes again: a no-op, still one blob
    assert len(blobs(url)) == 2
    svc.remove(F.SKILL_ID, "1.0.0")
    assert blobs(url) == {hashlib.sha256(second).hexdigest(): len(second)}
    svc.remove(F.SKILL_ID)
    assert blobs(url) == {}


def test_tofu_pins_go_to_the_shared_trust_store(svc: Service, url: str) -> None:
    svc.install_artifact(F.artifact(), allow_tofu=True)
    assert svc.ctx.trust_store().tofu_publishers == {F.PUBLISHER: F.KEY.public_key_hex}
    assert not svc.ctx.trust_path.exists()  # the state root's file is not used
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT body FROM documents WHERE name = 'trust-store'").fetchone()
    assert row is not None and F.KEY.public_key_hex in row[0]


def test_a_blob_changed_behind_the_schema_is_caught_on_read(
    svc: Service, url: str, tmp_path: Path
) -> None:
    """An administrator who drops the immutability trigger can change bytes; a daemon that
    reads them notices before compiling anything, and verification quarantines the skill."""
    data = F.artifact()
    svc.install_artifact(data, allow_tofu=True)
    tampered = bytearray(data)
    tampered[len(tampered) // 2] ^= 0xFF
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE artifact_blobs DISABLE TRIGGER artifact_blobs_no_update")
        conn.execute("UPDATE artifact_blobs SET data = %s", (bytes(tampered),))
    fresh = Service.open(tmp_path / "another-daemon")  # nothing cached
    try:
        with pytest.raises(PalyraError) as caught:
            fresh.run(F.SKILL_ID, "echo", ECHO)
        assert caught.value.kind == "artifact_tampered"
        fresh.verify(F.SKILL_ID)
        assert fresh.info(F.SKILL_ID)["status"] == "quarantined"
    finally:
        fresh.close()


def test_recovery_drops_blobs_no_row_names(svc: Service, url: str, tmp_path: Path) -> None:
    svc.install_artifact(F.artifact(), allow_tofu=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO artifact_blobs VALUES (%s, 3, %s, 0)", ("f" * 64, b"\x00\x01\x02")
        )
    other = Service.open(tmp_path / "restarted")  # recovery runs on open
    try:
        assert len(blobs(url)) == 1
        assert other.run(F.SKILL_ID, "echo", ECHO)["output"] == ECHO
    finally:
        other.close()


def test_parallel_installs_from_separate_services_land_consistently(
    url: str, tmp_path: Path
) -> None:
    services = [Service.open(tmp_path / f"daemon-{n}") for n in range(3)]
    versions = ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0"]
    artifacts = {v: F.artifact(v) for v in versions}
    errors: list[PalyraError] = []

    def install(service: Service, version: str) -> None:
        try:
            service.install_artifact(artifacts[version], allow_tofu=True)
        except PalyraError as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=install, args=(services[n % 3], v)) for n, v in enumerate(versions)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # An install that lost the race to a higher version is a refused downgrade, cleanly.
        assert {e.kind for e in errors} <= {"downgrade_refused"}
        with services[2].ctx.store.read() as tx:
            installed = {r.version: r for r in tx.skill_versions(F.SKILL_ID)}
            assert tx.current_version(F.SKILL_ID) == "1.5.0"
        assert len(installed) == len(versions) - len(errors)
        assert blobs(url) == {
            hashlib.sha256(artifacts[v]).hexdigest(): len(artifacts[v]) for v in installed
        }
        for service in services:
            assert service.run(F.SKILL_ID, "echo", ECHO)["output"] == ECHO
        assert services[1].verify_journal()["ok"]
    finally:
        for service in services:
            service.close()


def test_palyra_trust_edits_the_shared_trust_store(
    svc: Service, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    svc.install_artifact(F.artifact(), allow_tofu=True)
    listed = json.loads(cli("trust", "list", "--json").stdout)
    assert listed["tofu_publishers"] == {F.PUBLISHER: F.KEY.public_key_hex}
    assert "***" not in listed["trust_store"] and "(trust-store)" in listed["trust_store"]
    assert cli("trust", "unpin", F.PUBLISHER).exit_code == 0
    assert svc.ctx.trust_store().tofu_publishers == {}  # what every daemon now enforces
    # An explicit file is still a file, and leaves the shared store alone.
    own = tmp_path / "own-trust.json"
    added = cli("trust", "add", "other", F.OTHER_KEY.public_key_hex, "--trust-store", str(own))
    assert added.exit_code == 0
    assert "other" in json.loads(own.read_text())["trusted_publishers"]
    assert svc.ctx.trust_store().trusted_publishers == {}
