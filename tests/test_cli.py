"""The ``palyra`` CLI: keys, trust, package build/verify/inspect and audit, end to end."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import EXAMPLE_DIR, SEED_01, CliResult, wat
from palyra.skills.keys import SigningKey

Cli = Callable[..., CliResult]


@pytest.fixture
def example(tmp_path: Path) -> dict[str, Path]:
    module = tmp_path / "module.wasm"
    module.write_bytes(wat((EXAMPLE_DIR / "module.wat").read_text()))
    key = tmp_path / "publisher.key"
    key.write_text(SEED_01.hex() + "\n")
    return {
        "manifest": EXAMPLE_DIR / "skill.toml",
        "module": module,
        "prompt": EXAMPLE_DIR / "prompt.txt",
        "sbom": EXAMPLE_DIR / "sbom.cdx.json",
        "provenance": EXAMPLE_DIR / "provenance.json",
        "key": key,
        "out": tmp_path / "echo.palyra-skill",
    }


def build_args(example: dict[str, Path], *extra: str) -> list[str]:
    return [
        "skills", "package", "build",
        "--manifest", str(example["manifest"]),
        "--module", str(example["module"]),
        "--asset", str(example["prompt"]),
        "--sbom", str(example["sbom"]),
        "--provenance", str(example["provenance"]),
        "--output", str(example["out"]),
        *extra,
    ]  # fmt: skip


def built(cli: Cli, example: dict[str, Path]) -> Path:
    result = cli(*build_args(example, "--signing-key-file", str(example["key"]), "--json"))
    assert result.exit_code == 0, result.stderr
    return example["out"]


def trust_store(tmp_path: Path) -> Path:
    return tmp_path / "state" / "skills" / "trust-store.json"


def test_keys_generate(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "keys" / "publisher.key"
    result = cli("keys", "generate", "--out", str(out), "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    key = SigningKey.from_bytes(out.read_bytes())
    assert doc == {"path": str(out), "public_key_hex": key.public_key_hex, "key_id": key.key_id}
    again = cli("keys", "generate", "--out", str(out))
    assert again.exit_code == 1
    assert again.stderr.startswith("error[usage]: ") and "--force" in again.stderr
    assert cli("keys", "generate", "--out", str(out), "--force").exit_code == 0
    assert SigningKey.from_bytes(out.read_bytes()) != key


def test_build_verify_inspect_audit(cli: Cli, example: dict[str, Path], tmp_path: Path) -> None:
    result = cli(*build_args(example, "--signing-key-file", str(example["key"]), "--json"))
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["skill_id"] == "acme.echo_http"
    assert summary["signature_key_id"] == "ed25519:34750f98bd59fcfc"
    assert summary["artifact_bytes"] == example["out"].stat().st_size

    inspected = json.loads(
        cli("skills", "package", "inspect", str(example["out"]), "--json").stdout
    )
    assert [e["path"] for e in inspected["entries"]] == [
        "assets/prompt.txt",
        "modules/module.wasm",
        "provenance.json",
        "sbom.cdx.json",
        "signature.json",
        "skill.toml",
    ]
    assert inspected["signature"]["key_id"] == "ed25519:34750f98bd59fcfc"
    assert not trust_store(tmp_path).exists(), "inspect makes no trust decision"

    refused = cli("skills", "package", "verify", "--artifact", str(example["out"]))
    assert refused.exit_code == 1
    assert refused.stderr == "error[untrusted_publisher]: untrusted publisher 'acme'\n"

    verified = cli(
        "skills", "package", "verify", "--artifact", str(example["out"]), "--allow-tofu", "--json"
    )
    assert verified.exit_code == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["accepted"] is True
    assert report["trust_decision"] == "tofu_newly_pinned"
    assert report["audit_event"]["event_kind"] == "skill.artifact.verified"
    pinned = json.loads(trust_store(tmp_path).read_text())
    assert pinned["tofu_publishers"] == {"acme": SigningKey(SEED_01).public_key_hex}

    again = cli("skills", "package", "verify", "--artifact", str(example["out"]))
    assert again.exit_code == 0
    assert "tofu_pinned" in again.stdout

    audited = cli("skills", "audit", "--artifact", str(example["out"]), "--json")
    assert audited.exit_code == 0, audited.stdout
    assert json.loads(audited.stdout)["passed"] is True
    text = cli("skills", "audit", "--artifact", str(example["out"]))
    assert text.exit_code == 0 and "wasm_import_policy" in text.stdout


@pytest.mark.parametrize("encoding", ["raw", "hex", "base64"])
def test_signing_key_from_stdin(cli: Cli, example: dict[str, Path], encoding: str) -> None:
    data = {
        "raw": SEED_01,
        "hex": SEED_01.hex().encode() + b"\n",
        "base64": base64.b64encode(SEED_01),
    }[encoding]
    result = cli(*build_args(example, "--signing-key-stdin", "--json"), stdin=data)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["signature_key_id"] == "ed25519:34750f98bd59fcfc"


def test_signing_key_errors(cli: Cli, example: dict[str, Path], tmp_path: Path) -> None:
    both = cli(
        *build_args(example, "--signing-key-stdin", "--signing-key-file", str(example["key"]))
    )
    assert both.exit_code == 1 and "exactly one" in both.stderr
    empty = cli(*build_args(example, "--signing-key-stdin"), stdin=b"")
    assert empty.exit_code == 1 and "empty" in empty.stderr
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    result = cli(*build_args(example, "--signing-key-file", str(bad), "--json"))
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["kind"] == "invalid_signing_key"
    assert not example["out"].exists()


def test_build_errors_are_one_line(cli: Cli, example: dict[str, Path], tmp_path: Path) -> None:
    manifest = tmp_path / "skill.toml"
    manifest.write_text(
        example["manifest"].read_text().replace('publisher = "acme"', 'publisher = " acme"')
    )
    args = build_args(example, "--signing-key-file", str(example["key"]))
    args[args.index(str(example["manifest"]))] = str(manifest)
    result = cli(*args)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error[manifest_validation]: manifest validation failed: publisher"
    )
    assert result.stderr.count("\n") == 1
    missing = cli("skills", "package", "build", "--manifest", str(tmp_path / "nope.toml"), "--output", "x",
                  "--module", "m.wasm", "--signing-key-file", str(example["key"]))  # fmt: skip
    assert missing.exit_code == 1 and missing.stderr.startswith("error[io]: ")
    no_module = cli("skills", "package", "build", "--manifest", str(manifest), "--output", "x",
                    "--signing-key-file", str(example["key"]))  # fmt: skip
    assert no_module.exit_code == 1 and "at least one --module" in no_module.stderr


def test_corrupted_artifact_fails_and_pins_nothing(
    cli: Cli, example: dict[str, Path], tmp_path: Path
) -> None:
    """Reference item 38, adapted: one flipped byte in the middle fails with a typed error."""
    artifact = built(cli, example)
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    result = cli("skills", "package", "verify", "--artifact", str(artifact), "--allow-tofu")
    assert result.exit_code == 1
    assert result.stderr.startswith("error[")
    assert "Traceback" not in result.stderr
    assert not trust_store(tmp_path).exists()
    as_json = cli(
        "skills", "package", "verify", "--artifact", str(artifact), "--allow-tofu", "--json"
    )
    error = json.loads(as_json.stdout)["error"]
    assert set(error) == {"kind", "message"} and error["kind"] != "internal"


def test_trusted_publisher_flags_are_not_persisted(
    cli: Cli, example: dict[str, Path], tmp_path: Path
) -> None:
    artifact = built(cli, example)
    flag = f"acme={SigningKey(SEED_01).public_key_hex}"
    result = cli(
        "skills",
        "package",
        "verify",
        "--artifact",
        str(artifact),
        "--trusted-publisher",
        flag,
        "--json",
    )
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["trust_decision"] == "allowlisted"
    assert not trust_store(tmp_path).exists()
    wrong = cli(
        "skills",
        "package",
        "verify",
        "--artifact",
        str(artifact),
        "--trusted-publisher",
        "acme=" + "00" * 32,
    )
    assert wrong.exit_code == 1 and "trusted_publisher_key_mismatch" in wrong.stderr


def test_failed_audit_exits_1_and_pins_nothing(
    cli: Cli, example: dict[str, Path], tmp_path: Path
) -> None:
    example["module"].write_bytes(
        wat('(module (import "env" "system" (func)) (func (export "run")))')
    )
    artifact = built(cli, example)
    result = cli("skills", "audit", "--artifact", str(artifact), "--allow-tofu", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["should_quarantine"] is True
    assert any("unknown import module" in r for r in report["quarantine_reasons"])
    assert not trust_store(tmp_path).exists(), "a rejected artifact must not pin its key"
    text = cli("skills", "audit", "--artifact", str(artifact), "--allow-tofu")
    assert text.exit_code == 1 and "quarantine required" in text.stdout


def test_audit_blocklist_from_state_root(
    cli: Cli, example: dict[str, Path], tmp_path: Path
) -> None:
    import hashlib

    artifact = built(cli, example)
    blocklist = tmp_path / "state" / "skills" / "blocklist.json"
    blocklist.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(example["module"].read_bytes()).hexdigest()
    blocklist.write_text(
        json.dumps({"schema_version": 1, "entries": [{"sha256": digest, "reason": "bad"}]})
    )
    result = cli("skills", "audit", "--artifact", str(artifact), "--allow-tofu", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["vulnerability_scan"]["status"] == "fail"
    blocklist.write_text("{broken")
    broken = cli("skills", "audit", "--artifact", str(artifact), "--allow-tofu")
    assert broken.exit_code == 1 and broken.stderr.startswith("error[blocklist_invalid]")


def test_trust_commands(cli: Cli, tmp_path: Path) -> None:
    key = SigningKey(SEED_01).public_key_hex
    assert cli("trust", "list", "--json").exit_code == 0
    added = cli("trust", "add", "acme", key.upper(), "--json")
    assert added.exit_code == 0, added.stderr
    assert json.loads(added.stdout)["key_id"] == "ed25519:34750f98bd59fcfc"
    listing = json.loads(cli("trust", "list", "--json").stdout)
    assert listing["trusted_publishers"] == {"acme": [key]}
    assert listing["keys"][0]["kind"] == "allowlisted"
    text = cli("trust", "list")
    assert "acme" in text.stdout and "allowlisted" in text.stdout
    assert cli("trust", "remove", "acme", "00" * 32).exit_code == 1
    assert cli("trust", "remove", "acme", key).exit_code == 0
    assert json.loads(cli("trust", "list", "--json").stdout)["trusted_publishers"] == {}
    missing = cli("trust", "unpin", "acme", "--json")
    assert missing.exit_code == 1 and json.loads(missing.stdout)["error"]["kind"] == "not_found"
    bad = cli("trust", "add", "Acme", key)
    assert bad.exit_code == 1 and bad.stderr.startswith("error[trust_store_invalid]")
    corrupt = trust_store(tmp_path)
    corrupt.write_text("{")
    assert cli("trust", "list").stderr.startswith("error[trust_store_invalid]")


def test_trust_unpin(cli: Cli, example: dict[str, Path], tmp_path: Path) -> None:
    artifact = built(cli, example)
    assert (
        cli("skills", "package", "verify", "--artifact", str(artifact), "--allow-tofu").exit_code
        == 0
    )
    assert cli("trust", "unpin", "acme").exit_code == 0
    assert json.loads(trust_store(tmp_path).read_text())["tofu_publishers"] == {}


def test_state_root_option_and_trust_store_env(
    cli: Cli, example: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = built(cli, example)
    other = tmp_path / "other"
    result = cli(
        "--state-root",
        str(other),
        "skills",
        "package",
        "verify",
        "--artifact",
        str(artifact),
        "--allow-tofu",
    )
    assert result.exit_code == 0
    assert (other / "skills" / "trust-store.json").exists()
    custom = tmp_path / "custom-trust.json"
    monkeypatch.setenv("PALYRA_SKILLS_TRUST_STORE", str(custom))
    assert (
        cli("skills", "package", "verify", "--artifact", str(artifact), "--allow-tofu").exit_code
        == 0
    )
    assert custom.exists()


def test_console_script_exit_codes(tmp_path: Path) -> None:
    """The installed entry point: usage errors exit 2, typed failures 1, help 0."""
    palyra = Path(sys.executable).parent / "palyra"
    env = {**os.environ, "PALYRA_STATE_ROOT": str(tmp_path)}
    assert subprocess.run([palyra, "--help"], capture_output=True, env=env).returncode == 0
    usage = subprocess.run([palyra, "skills", "package", "verify"], capture_output=True, env=env)
    assert usage.returncode == 2
    missing = subprocess.run(
        [palyra, "skills", "package", "inspect", str(tmp_path / "missing.palyra-skill")],
        capture_output=True, env=env, text=True,
    )  # fmt: skip
    assert missing.returncode == 1
    assert missing.stderr.startswith("error[io]: ") and "Traceback" not in missing.stderr
    version = subprocess.run([palyra, "--version"], capture_output=True, env=env, text=True)
    assert version.stdout.strip() == "palyra 0.1.0"
