"""``palyra skills``: package, verify, inspect and audit skill artifacts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from palyra.cli import authoring_cmd, lifecycle_cmd
from palyra.cli.output import CliState, console, print_json, read_input_file
from palyra.cli.trust_cmd import JsonOption, TrustStoreOption, trust_home
from palyra.daemon.trust_home import TrustHome
from palyra.errors import PalyraError, UsageError
from palyra.fsutil import atomic_write
from palyra.skills.audit import AuditPolicy, AuditReport, Blocklist, CheckStatus, audit_verified
from palyra.skills.build import build_signed_skill_artifact, entry_path_from_cli
from palyra.skills.constants import (
    MAX_ARTIFACT_BYTES,
    MAX_COMPONENT_ENTRY_BYTES,
    MAX_ENTRY_BYTES,
    MAX_MANIFEST_BYTES,
    MAX_METADATA_JSON_BYTES,
)
from palyra.skills.inspect import inspect_skill_artifact
from palyra.skills.keys import SigningKey
from palyra.skills.trust import parse_trusted_publisher_flag
from palyra.skills.verify import VerificationReport, verify_inspection

app = typer.Typer(help="Build, verify, inspect and audit skills.", no_args_is_help=True)
package_app = typer.Typer(
    help="Build, verify and inspect .palyra-skill artifacts.", no_args_is_help=True
)
app.add_typer(package_app, name="package")
app.command("new")(authoring_cmd.new)
app.command("build")(authoring_cmd.build)
app.command("install")(lifecycle_cmd.install)
app.command("update")(lifecycle_cmd.update)
app.command("remove")(lifecycle_cmd.remove)
app.command("list")(lifecycle_cmd.list_skills)
app.command("info")(lifecycle_cmd.info)
app.command("check")(lifecycle_cmd.check)
app.command("verify")(lifecycle_cmd.verify)
app.command("enable")(lifecycle_cmd.enable)
app.command("disable")(lifecycle_cmd.disable)
app.command("quarantine")(lifecycle_cmd.quarantine)
app.command("run")(authoring_cmd.run)


@app.command("registry-index")
def registry_index(
    directory: Annotated[Path, typer.Argument(help="A directory of .palyra-skill files.")],
    publisher: Annotated[str, typer.Option("--publisher", help="Who signs the index.")],
    signing_key_file: Annotated[
        Path | None, typer.Option("--signing-key-file", help="Ed25519 seed: raw, hex or base64.")
    ] = None,
    signing_key_stdin: Annotated[
        bool, typer.Option("--signing-key-stdin", help="Read the seed from standard input.")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", help="Where to write (default DIR/index.json).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Write a signed index for DIR, to serve it as an https registry (--registry-url)."""
    from palyra.daemon.remote_registry import index_directory, write_signed_index

    key = _read_signing_key(signing_key_file, signing_key_stdin)
    path = write_signed_index(directory, key, publisher, output)
    entries = index_directory(directory).entries
    body = {
        "index": str(path),
        "entries": [{"skill_id": e.skill_id, "version": e.version} for e in entries],
    }
    if json_output:
        print_json(body)
        return
    console().print(f"signed index of {len(entries)} artifact(s) → {path}")


TrustedPublisherOption = Annotated[
    list[str] | None,
    typer.Option(
        "--trusted-publisher",
        help="PUBLISHER=HEXKEY trusted for this command only (repeatable; never saved).",
    ),
]
AllowTofuOption = Annotated[
    bool,
    typer.Option("--allow-tofu", help="Pin an unknown publisher's key on first use."),
]
_KEY_FILE_LIMIT = 4096


def _read_signing_key(key_file: Path | None, key_stdin: bool) -> SigningKey:
    if (key_file is None) == (not key_stdin):
        raise UsageError("pass exactly one of --signing-key-file or --signing-key-stdin")
    if key_stdin:
        data = sys.stdin.buffer.read(_KEY_FILE_LIMIT + 1)
        if not data:
            raise UsageError("--signing-key-stdin read an empty key")
        if len(data) > _KEY_FILE_LIMIT:
            raise UsageError("signing key input is too large")
    else:
        assert key_file is not None
        data = read_input_file(key_file, "signing key", _KEY_FILE_LIMIT)
    return SigningKey.from_bytes(data)


@package_app.command("build")
def package_build(
    manifest: Annotated[Path, typer.Option("--manifest", help="skill.toml to package.")],
    output: Annotated[Path, typer.Option("--output", help="Where to write the .palyra-skill.")],
    module: Annotated[
        list[Path] | None, typer.Option("--module", help="WebAssembly module (repeatable).")
    ] = None,
    asset: Annotated[
        list[Path] | None, typer.Option("--asset", help="Asset file (repeatable).")
    ] = None,
    sbom: Annotated[
        Path | None, typer.Option("--sbom", help="CycloneDX SBOM (generated when omitted).")
    ] = None,
    provenance: Annotated[
        Path | None, typer.Option("--provenance", help="Provenance (generated when omitted).")
    ] = None,
    signing_key_file: Annotated[
        Path | None, typer.Option("--signing-key-file", help="Ed25519 seed: raw, hex or base64.")
    ] = None,
    signing_key_stdin: Annotated[
        bool, typer.Option("--signing-key-stdin", help="Read the seed from standard input.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Build and sign an artifact."""
    if not module:
        raise UsageError("skills package build requires at least one --module")
    key = _read_signing_key(signing_key_file, signing_key_stdin)
    manifest_bytes = read_input_file(manifest, "manifest", MAX_MANIFEST_BYTES)
    try:
        manifest_text = manifest_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"manifest {manifest} is not UTF-8") from None
    modules = [
        (entry_path_from_cli(str(path)), read_input_file(path, "module", MAX_COMPONENT_ENTRY_BYTES))
        for path in module
    ]
    assets = [
        (entry_path_from_cli(str(path)), read_input_file(path, "asset", MAX_ENTRY_BYTES))
        for path in asset or []
    ]
    result = build_signed_skill_artifact(
        manifest_text,
        modules,
        key,
        assets=assets,
        sbom=read_input_file(sbom, "SBOM", MAX_METADATA_JSON_BYTES) if sbom else None,
        provenance=read_input_file(provenance, "provenance", MAX_METADATA_JSON_BYTES)
        if provenance
        else None,
    )
    atomic_write(output, result.artifact, mode=0o644)
    m = result.manifest
    summary = {
        "artifact_path": str(output),
        "payload_sha256": result.payload_sha256,
        "publisher": m.publisher,
        "skill_id": m.skill_id,
        "version": m.version,
        "signature_key_id": result.signature.key_id,
        "artifact_bytes": len(result.artifact),
    }
    if json_output:
        print_json(summary)
        return
    console().print(
        f"built {m.skill_id} {m.version} → {output} ({len(result.artifact)} bytes)\n"
        f"  publisher={m.publisher} key_id={result.signature.key_id}\n"
        f"  payload_sha256={result.payload_sha256}"
    )


def _load_artifact(path: Path) -> bytes:
    return read_input_file(path, "artifact", MAX_ARTIFACT_BYTES)


def _verify(
    ctx: typer.Context,
    artifact: Path,
    trust_store: Path | None,
    trusted_publisher: list[str] | None,
    allow_tofu: bool,
) -> tuple[VerificationReport, TrustHome]:
    with trust_home(ctx, trust_store) as home:
        store = home.load()
    # Flags are trusted for this command only: a copy, so they can never be saved.
    effective = store.with_extra_trust(
        parse_trusted_publisher_flag(flag) for flag in trusted_publisher or []
    )
    inspection = inspect_skill_artifact(_load_artifact(artifact))
    report = verify_inspection(inspection, effective, allow_tofu=allow_tofu)
    return report, home


def _pin(ctx: typer.Context, trust_store: Path | None, report: VerificationReport) -> bool:
    """Save a new TOFU pin (re-decided on the live store, under its lock)."""
    with trust_home(ctx, trust_store) as home, home.edit() as live:
        return report.apply_pin(live)


def _grant_summary(report: VerificationReport) -> str:
    grants = report.capability_grants
    parts = []
    if grants.http_hosts:
        parts.append("http " + ", ".join(grants.http_hosts))
    if grants.secrets:
        parts.append("secrets " + ", ".join(grants.secret_keys))
    if grants.storage_prefixes:
        parts.append("storage rw " + ", ".join(grants.storage_prefixes))
    if grants.storage_read_prefixes:
        parts.append("storage ro " + ", ".join(grants.storage_read_prefixes))
    if grants.channels:
        parts.append("channels " + ", ".join(grants.channels))
    return "; ".join(parts) or "none"


def _print_verification(report: VerificationReport, trust_path: str, pinned: bool) -> None:
    m = report.inspection.manifest
    out = console()
    out.print(
        f"[green]✔ verified[/] {m.skill_id} {m.version} "
        f"(publisher {m.publisher}, key {report.inspection.signature.key_id})"
    )
    trust = report.trust_decision.value + (f" (pinned in {trust_path})" if pinned else "")
    out.print(f"  trust: {trust}")
    out.print(f"  payload_sha256: {report.inspection.payload_sha256}")
    out.print(f"  tools: {', '.join(tool.id for tool in m.tools)}")
    out.print(f"  grants: {_grant_summary(report)}")
    warnings = report.inspection.manifest_warnings
    if warnings:
        out.print(f"  warnings: {', '.join(w.code for w in warnings)}")


@package_app.command("verify")
def package_verify(
    ctx: typer.Context,
    artifact: Annotated[Path, typer.Option("--artifact", help="The .palyra-skill to verify.")],
    trust_store: TrustStoreOption = None,
    trusted_publisher: TrustedPublisherOption = None,
    allow_tofu: AllowTofuOption = False,
    json_output: JsonOption = False,
) -> None:
    """Verify integrity, signature and publisher trust; exit 0 only when accepted."""
    report, home = _verify(ctx, artifact, trust_store, trusted_publisher, allow_tofu)
    pinned = _pin(ctx, trust_store, report)
    if json_output:
        print_json({**report.to_json(), "trust_store": home.where})
        return
    _print_verification(report, home.where, pinned)


@package_app.command("inspect")
def package_inspect(
    artifact: Annotated[Path, typer.Argument(help="The .palyra-skill to inspect.")],
    json_output: JsonOption = False,
) -> None:
    """Show entries, manifest and signature (structure and signature checked; no trust)."""
    inspection = inspect_skill_artifact(_load_artifact(artifact))
    if json_output:
        print_json(inspection.to_json())
        return
    m = inspection.manifest
    out = console()
    out.print(f"{m.skill_id} {m.version} by {m.publisher} — {m.name}")
    out.print(
        f"  key_id: {inspection.signature.key_id}  payload_sha256: {inspection.payload_sha256}"
    )
    table = Table(title="entries")
    table.add_column("path")
    table.add_column("bytes", justify="right")
    table.add_column("sha256")
    for name, data in sorted(inspection.entries.items()):
        table.add_row(name, str(len(data)), inspection.entry_digests.get(name, "(signed)")[:16])
    out.print(table)
    for warning in inspection.manifest_warnings:
        out.print(f"  [yellow]warning[/] {warning.code}: {warning.message}")


_STATUS_STYLE = {
    CheckStatus.PASS: "[green]pass[/]",
    CheckStatus.WARN: "[yellow]warn[/]",
    CheckStatus.FAIL: "[red]FAIL[/]",
    CheckStatus.SKIPPED: "[dim]skip[/]",
}


def _print_audit(report: AuditReport) -> None:
    m = report.verification.inspection.manifest
    out = console()
    table = Table(title=f"audit of {m.skill_id} {m.version}")
    table.add_column("status")
    table.add_column("check")
    table.add_column("message")
    for check in report.checks:
        table.add_row(_STATUS_STYLE[check.status], check.check_id, check.message)
    out.print(table)
    if report.should_quarantine:
        out.print("[red]quarantine required:[/]")
        for reason in report.quarantine_reasons:
            out.print(f"  - {reason}")
    else:
        out.print(f"[green]passed[/] (trust: {report.trust_decision.value})")


def _resolve_blocklist(ctx: typer.Context, explicit: Path | None) -> Blocklist | None:
    if explicit is not None:
        return Blocklist.load(explicit)
    from_env = Blocklist.from_environment()
    if from_env is not None:
        return from_env
    state: CliState = ctx.obj
    default = state.state_root / "skills" / "blocklist.json"
    return Blocklist.load(default) if default.exists() else None


class QuarantineRequired(PalyraError):
    kind = "quarantine_required"


def _verify_and_audit(
    ctx: typer.Context,
    artifact: Path,
    trust_store: Path | None,
    trusted_publisher: list[str] | None,
    allow_tofu: bool,
    blocklist: Path | None,
) -> tuple[AuditReport, str]:
    """Verify and audit; a new TOFU pin is saved only when the audit passes."""
    policy = AuditPolicy(blocklist=_resolve_blocklist(ctx, blocklist))
    verification, home = _verify(ctx, artifact, trust_store, trusted_publisher, allow_tofu)
    report = audit_verified(verification, policy)
    if not report.should_quarantine:
        _pin(ctx, trust_store, verification)
    return report, home.where


def verify_and_audit(
    ctx: typer.Context,
    artifact: Path,
    trusted_publisher: list[str] | None,
    allow_tofu: bool,
) -> AuditReport:
    """What ``skills run`` needs first: an artifact that passed both, else a typed error."""
    report, _path = _verify_and_audit(ctx, artifact, None, trusted_publisher, allow_tofu, None)
    if report.should_quarantine:
        raise QuarantineRequired(
            "the artifact fails its audit: " + "; ".join(report.quarantine_reasons)
        )
    return report


@app.command("audit")
def audit(
    ctx: typer.Context,
    skill_id: Annotated[
        str | None, typer.Argument(help="An installed skill (or use --artifact for a file).")
    ] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Installed version (default: current).")
    ] = None,
    artifact: Annotated[
        Path | None, typer.Option("--artifact", help="A .palyra-skill file to audit.")
    ] = None,
    trust_store: TrustStoreOption = None,
    trusted_publisher: TrustedPublisherOption = None,
    allow_tofu: AllowTofuOption = False,
    blocklist: Annotated[
        Path | None,
        typer.Option(
            "--blocklist", help="Known-bad module digests (JSON; default from env/state)."
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Verify, then statically audit; exits 1 when the artifact must be quarantined.

    An installed skill that fails is quarantined; a file is only reported on.
    """
    if (artifact is None) == (skill_id is None):
        raise UsageError("name an installed SKILL_ID or an --artifact file")
    if skill_id is not None:
        lifecycle_cmd.audit_installed(ctx, skill_id, version, json_output)
        return
    assert artifact is not None
    report, path = _verify_and_audit(
        ctx, artifact, trust_store, trusted_publisher, allow_tofu, blocklist
    )
    if json_output:
        print_json({**report.to_json(), "trust_store": str(path)})
    else:
        _print_audit(report)
    if report.should_quarantine:
        raise typer.Exit(1)
