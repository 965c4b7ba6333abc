"""The full lifecycle through the CLI — in-process and against a real daemon over HTTP — and
the HTTP API's envelope, limits and streaming (reference skills-format.md §10 item 37,
adapted: a fresh install is ``active`` at once, there is no hidden "missing" status)."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import daemon_fixtures as df
from conftest import CliResult
from daemon_server import running_daemon
from palyra.daemon.client import DaemonClient, RemoteError
from palyra.daemon.server import Daemon

Cli = Callable[..., CliResult]


def _json(result: CliResult) -> Any:
    assert result.exit_code == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


@contextlib.contextmanager
def _mode(mode: str, state: Path) -> Iterator[Daemon | None]:
    if mode == "local":
        yield None
    else:
        with running_daemon(state) as daemon:
            yield daemon


@pytest.mark.parametrize("mode", ["local", "daemon"])
def test_full_lifecycle_through_the_cli(cli: Cli, tmp_path: Path, mode: str) -> None:
    state = tmp_path / "state"
    v1 = df.write_artifact(tmp_path, "1.0.0")
    v2 = df.write_artifact(tmp_path, "1.1.0", hosts=("api.example.com",))
    with _mode(mode, state):
        assert _json(cli("daemon", "status", "--json"))["mode"] == mode
        # the secret is seeded first, from stdin (never argv)
        _json(cli("secrets", "set", f"skill:{df.SKILL_ID}", "api_token", "--json", stdin=b"t0k\n"))
        assert _json(cli("secrets", "list", "--json"))["secrets"] == [
            f"skill:{df.SKILL_ID}/api_token"
        ]
        # untrusted publisher: refused, and nothing is left behind
        refused = cli("skills", "install", str(v1), "--json")
        assert refused.exit_code == 1
        assert json.loads(refused.stdout)["error"]["kind"] == "untrusted_publisher"
        assert _json(cli("skills", "list", "--json"))["count"] == 0

        installed = _json(cli("skills", "install", str(v1), "--allow-tofu", "--json"))
        assert installed["status"] == "active"
        assert installed["trust_decision"] == "tofu_newly_pinned"
        listing = _json(cli("skills", "list", "--json"))
        assert listing["count"] == 1
        entry = listing["skills"][0]
        assert entry["skill_id"] == df.SKILL_ID
        assert entry["status"] == "active"
        assert entry["needs_secrets"] is False
        info = _json(cli("skills", "info", df.SKILL_ID, "--json"))
        assert info["manifest"]["skill_id"] == df.SKILL_ID
        assert {t["id"] for t in info["tools"]} >= {"acme.echo", "acme.guarded"}
        check = _json(cli("skills", "check", df.SKILL_ID, "--json"))
        assert check["results"][0]["check_status"] == "ready"
        assert _json(cli("skills", "verify", df.SKILL_ID, "--json"))["result"]["ok"] is True

        ran = _json(cli("skills", "run", df.SKILL_ID, "echo", "--input", '{"text":"hi"}', "--json"))
        assert ran["output"] == {"text": "hi"}
        assert ran["receipt_seq"] > 0
        secret_run = _json(cli("skills", "run", df.SKILL_ID, "needs_secret", "--json"))
        assert secret_run["output"] == {"token_bytes": 0}
        bad = cli("skills", "run", df.SKILL_ID, "echo", "--input", '{"text": 5}')
        assert bad.exit_code == 1
        assert bad.stderr.startswith("error[invalid_input]") and "$.text" in bad.stderr

        # status changes take effect for the next call
        _json(cli("skills", "quarantine", df.SKILL_ID, "--reason", "investigating", "--json"))
        blocked = cli("skills", "run", df.SKILL_ID, "echo", "--input", "{}")
        assert blocked.exit_code == 1 and "error[skill_not_active]" in blocked.stderr
        assert _json(cli("skills", "enable", df.SKILL_ID, "--json"))["status"] == "active"
        _json(cli("skills", "disable", df.SKILL_ID, "--json"))
        assert _json(cli("skills", "list", "--json"))["skills"][0]["status"] == "disabled"
        _json(cli("skills", "enable", df.SKILL_ID, "--json"))

        # an update asking for a new host is held; the old version keeps running
        held = _json(cli("skills", "update", df.SKILL_ID, "--artifact", str(v2), "--json"))
        assert held["status"] == "quarantined"
        assert held["pending_capabilities"] == {"http_hosts": ["api.example.com"]}
        assert _json(cli("skills", "list", "--json"))["skills"][0]["current_version"] == "1.0.0"
        refused_enable = cli("skills", "enable", df.SKILL_ID, "--version", "1.1.0")
        assert "capability_approval_required" in refused_enable.stderr
        approved = cli(
            "skills",
            "enable",
            df.SKILL_ID,
            "--version",
            "1.1.0",
            "--approve-capabilities",
            "--json",
        )
        assert _json(approved)["current"] is True
        older = df.write_artifact(tmp_path, "0.9.0")
        downgrade = cli("skills", "update", df.SKILL_ID, "--artifact", str(older))
        assert downgrade.exit_code == 1 and "error[downgrade_refused]" in downgrade.stderr
        same = _json(cli("skills", "update", df.SKILL_ID, "--artifact", str(v1), "--json"))
        assert same["changed"] is False  # identical bytes: nothing to do

        journal = _json(cli("journal", "list", "--limit", "1000", "--json"))
        kinds = [e["kind"] for e in journal["events"]]
        for expected in (
            "skill.installed",
            "tool.call",
            "tool.rejected",
            "skill.quarantined",
            "skill.enabled",
            "skill.disabled",
            "skill.update_held",
            "skill.capabilities_approved",
            "secret.set",
        ):
            assert expected in kinds, expected
        assert _json(cli("journal", "verify", "--json"))["ok"] is True

        removed = _json(cli("skills", "remove", df.SKILL_ID, "--json"))
        assert sorted(removed["removed_versions"]) == ["1.0.0", "1.1.0"]
        assert _json(cli("skills", "list", "--json"))["count"] == 0
        assert not (state / "skills" / df.SKILL_ID).exists()


def test_tampered_artifact_is_refused_with_a_clear_message(cli: Cli, tmp_path: Path) -> None:
    path = df.write_artifact(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    result = cli("skills", "install", str(path), "--allow-tofu")
    assert result.exit_code == 1
    assert "skill artifact failed structural verification" in result.stderr
    assert "Traceback" not in result.stderr
    trust = tmp_path / "state" / "skills" / "trust-store.json"
    assert not trust.exists() or df.PUBLISHER not in trust.read_text()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with running_daemon(tmp_path / "state") as running:
        yield running


def test_the_client_reports_daemon_errors_with_their_kind(daemon: Daemon) -> None:
    client = DaemonClient(daemon.url, daemon.token)
    try:
        with pytest.raises(RemoteError) as missing:
            client.info("acme.nothing")
        assert missing.value.kind == "not_found"
        client.install_artifact(df.artifact(), allow_tofu=True)
        with pytest.raises(RemoteError) as again:
            client.install_artifact(df.artifact("1.0.0", key=df.OTHER_KEY), allow_tofu=True)
        assert again.value.kind == "tofu_key_mismatch"
        assert client.run(df.SKILL_ID, "echo", {"text": "x"})["output"] == {"text": "x"}
    finally:
        client.close()


def _raw(daemon: Daemon, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {daemon.token}", **kwargs.pop("headers", {})}
    return httpx.request(method, daemon.url + path, headers=headers, timeout=30, **kwargs)


def test_errors_use_one_envelope_with_4xx_codes(daemon: Daemon) -> None:
    cases: list[tuple[str, str, dict[str, Any], int, str]] = [
        ("GET", "/api/v1/skills/acme.none", {}, 404, "not_found"),
        ("GET", "/api/v1/no/such/route", {}, 404, "not_found"),
        ("POST", "/api/v1/skills/acme.x/enable", {"json": {"bogus": 1}}, 422, "invalid_request"),
        (
            "POST",
            "/api/v1/skills/acme.x/enable",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            422,
            "invalid_request",
        ),
        ("GET", "/api/v1/journal?limit=0", {}, 422, "invalid_request"),
        ("POST", "/api/v1/skills/install", {"content": b"not a zip"}, 400, "invalid_archive"),
        ("GET", "/api/v1/approvals?state=bogus", {}, 400, "usage"),
        ("PUT", "/api/v1/secrets/nonsense/key", {"json": {"value": "v"}}, 400, "vault_error"),
        ("DELETE", "/api/v1/skills", {}, 405, "method_not_allowed"),
    ]
    for method, path, kwargs, status, kind in cases:
        response = _raw(daemon, method, path, **kwargs)
        assert response.status_code == status, (path, response.text)
        body = response.json()
        assert set(body) == {"error"}
        assert body["error"]["kind"] == kind, (path, body)
        assert isinstance(body["error"]["message"], str) and "\n" not in body["error"]["message"]


def test_request_bodies_are_capped(daemon: Daemon) -> None:
    big = b"x" * (2 * 1024 * 1024)
    declared = _raw(
        daemon,
        "PUT",
        "/api/v1/secrets/global/k",
        content=big,
        headers={"content-type": "application/json"},
    )
    assert declared.status_code == 413
    assert declared.json()["error"]["kind"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(40):
            yield b"y" * 65536

    streamed = _raw(
        daemon,
        "PUT",
        "/api/v1/secrets/global/k",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert streamed.status_code == 413


def test_journal_streams_as_server_sent_events(daemon: Daemon) -> None:
    client = DaemonClient(daemon.url, daemon.token)
    client.install_artifact(df.artifact(), allow_tofu=True)
    client.close()
    headers = {"Authorization": f"Bearer {daemon.token}"}
    with httpx.stream(
        "GET", daemon.url + "/api/v1/journal/stream?after=0", headers=headers, timeout=30
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        data = next(line for line in lines if line.startswith("data: "))
    event = json.loads(data[len("data: ") :])
    assert event["seq"] == 1 and event["kind"] == "skill.installed"


def test_openapi_is_published_and_the_daemon_binds_loopback(daemon: Daemon) -> None:
    document = _raw(daemon, "GET", "/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/skills/{skill_id}/tools/{tool}/run" in document["paths"]
    assert daemon.url.startswith("http://127.0.0.1:")
    assert (daemon.state_root / "daemon" / "api-token").stat().st_mode & 0o077 == 0


def test_the_daemon_reaudits_periodically_and_quarantines(tmp_path: Path) -> None:
    """A publisher the operator stops trusting: the next periodic pass quarantines."""
    from palyra.skills.trust import TrustStore

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "config.toml").write_text("[skills]\nreaudit_interval_s = 0.2\n")
    with running_daemon(state) as daemon:
        client = DaemonClient(daemon.url, daemon.token)
        try:
            client.install_artifact(df.artifact(), allow_tofu=True)
            trust_path = state / "skills" / "trust-store.json"
            store = TrustStore.load(trust_path)
            assert store.unpin(df.PUBLISHER)
            store.save(trust_path)
            deadline = time.monotonic() + 20
            while client.info(df.SKILL_ID)["status"] != "quarantined":
                assert time.monotonic() < deadline, "the re-audit never quarantined the skill"
                time.sleep(0.05)
            reason = client.info(df.SKILL_ID)["status_reason"]
            assert reason.startswith("verification_failed: untrusted_publisher")
            events = client.journal(kind="skill.quarantined")["events"]
            assert events[-1]["actor"] == "system:daemon"
        finally:
            client.close()


def test_registry_index_command_publishes_a_directory_the_installer_accepts(
    cli: Cli, tmp_path: Path
) -> None:
    from palyra.skills.registry_index import parse_signed_index
    from palyra.skills.trust import TrustStore

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    df.write_artifact(mirror, "1.0.0")
    df.write_artifact(mirror, "1.2.0")
    key = tmp_path / "index.key"
    key.write_text("11" * 32)
    body = _json(
        cli(
            "skills",
            "registry-index",
            str(mirror),
            "--publisher",
            "acme",
            "--signing-key-file",
            str(key),
            "--json",
        )
    )
    assert [e["version"] for e in body["entries"]] == ["1.0.0", "1.2.0"]
    page = parse_signed_index((mirror / "index.json").read_bytes(), TrustStore(), allow_tofu=True)
    assert len(page.index.entries) == 2
    installed = _json(
        cli(
            "skills",
            "install",
            "--registry-dir",
            str(mirror),
            "--skill-id",
            df.SKILL_ID,
            "--allow-tofu",
            "--json",
        )
    )
    assert installed["version"] == "1.2.0"


def test_updating_one_skill_with_another_skills_artifact_changes_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    """The check happens in the service before anything is written (it used to be the CLI's,
    after the other skill was already installed)."""
    _json(cli("skills", "install", str(df.write_artifact(tmp_path)), "--allow-tofu", "--json"))
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    text = df.manifest("2.0.0").replace(df.SKILL_ID, "acme.other_demo")
    from palyra.skills.build import build_signed_skill_artifact

    other = other_dir / "acme.other_demo.palyra-skill"
    other.write_bytes(
        build_signed_skill_artifact(text, [("module.wasm", df.MODULE)], df.KEY).artifact
    )
    result = cli("skills", "update", df.SKILL_ID, "--artifact", str(other))
    assert result.exit_code == 1
    assert "error[usage]" in result.stderr and "acme.other_demo" in result.stderr
    listing = _json(cli("skills", "list", "--json"))
    assert [s["skill_id"] for s in listing["skills"]] == [df.SKILL_ID]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_shuts_the_daemon_down_cleanly(tmp_path: Path, stop: signal.Signals) -> None:
    """`palyra daemon run` in its own process: a stop signal ends it with status 0, no
    traceback, and its marker removed (uvicorn re-raises the signal after shutting down)."""
    state = tmp_path / "state"
    palyra = Path(sys.executable).parent / "palyra"
    process = subprocess.Popen(
        [str(palyra), "--state-root", str(state), "daemon", "run", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("palyra daemon listening on http://127.0.0.1:"), first
        url = first.split()[-1]
        token = (state / "daemon" / "api-token").read_text().strip()
        response = httpx.get(f"{url}/api/v1/status", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        assert (state / "daemon" / "daemon.json").exists()
        process.send_signal(stop)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert not (state / "daemon" / "daemon.json").exists()


@pytest.mark.parametrize(
    ("reason", "status", "kind"),
    [
        ('"a\\u0000b"', 400, "invalid_text"),  # the store refuses it (on SQLite as on PostgreSQL)
        ('"\\ud800"', 422, "invalid_request"),  # the request model already refuses it
    ],
)
def test_text_no_store_can_hold_is_refused_and_changes_nothing(
    daemon: Daemon, reason: str, status: int, kind: str
) -> None:
    """A NUL or a lone surrogate (both valid JSON escapes) in an operator's reason: a typed
    4xx, never a 500 or a half-applied change."""
    client = DaemonClient(daemon.url, daemon.token)
    try:
        client.install_artifact(df.artifact(), allow_tofu=True)
        before = client.journal(limit=1000)["events"]
        body = b'{"version": null, "reason": ' + reason.encode() + b"}"
        response = _raw(
            daemon,
            "POST",
            f"/api/v1/skills/{df.SKILL_ID}/quarantine",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == status, response.text
        assert response.json()["error"]["kind"] == kind
        assert client.info(df.SKILL_ID)["status"] == "active"
        assert client.journal(limit=1000)["events"] == before
    finally:
        client.close()
