"""``palyra skills install|update|remove|list|info|check|verify|enable|disable|quarantine``.

Thin: parse flags, call the backend (daemon or in-process service), print. No lifecycle
logic lives here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from palyra.cli.backend import Backend, backend
from palyra.cli.output import console, print_json, working
from palyra.cli.trust_cmd import JsonOption
from palyra.errors import UsageError

VersionOption = Annotated[
    str | None, typer.Option("--version", help="A specific installed version (default: current).")
]
ReasonOption = Annotated[str | None, typer.Option("--reason", help="Why (kept in the journal).")]
AllowTofuOption = Annotated[
    bool, typer.Option("--allow-tofu", help="Pin an unknown publisher's key on first use.")
]
ForceOption = Annotated[bool, typer.Option("--force", help="Allow a downgrade.")]
RegistryDirOption = Annotated[
    Path | None, typer.Option("--registry-dir", help="A local directory of artifacts.")
]
RegistryUrlOption = Annotated[
    str | None, typer.Option("--registry-url", help="An https registry with a signed index.")
]
RegistryCaOption = Annotated[
    Path | None,
    typer.Option("--registry-ca-cert", help="Extra PEM root for --registry-url (in-process only)."),
]

_STATUS_STYLE = {"active": "green", "quarantined": "red", "disabled": "yellow"}


def _status(value: str) -> str:
    return f"[{_STATUS_STYLE.get(value, 'white')}]{value}[/]"


def _print_skill(body: dict[str, Any], verb: str) -> None:
    out = console()
    line = f"{verb} {escape(body['skill_id'])} {escape(body['version'])}: {_status(body['status'])}"
    if body.get("status_reason"):
        line += f" ({escape(str(body['status_reason']))})"
    out.print(line)
    if body.get("reason") == "already_installed":
        out.print("  already installed with identical bytes (nothing changed)")
    held = body.get("pending_capabilities")
    if held:
        out.print("  [yellow]held:[/] the update asks for more than the current version:")
        for kind, values in held.items():
            out.print(f"    {kind}: +{', '.join(values)}")
        out.print(
            f"  approve with: palyra skills enable {body['skill_id']} --version {body['version']}"
            " --approve-capabilities"
        )
    if body.get("missing_secrets"):
        out.print("  [yellow]needs secrets:[/] " + ", ".join(body["missing_secrets"]))
        scope, _, key = body["missing_secrets"][0].rpartition("/")
        out.print(f"  set with: palyra secrets set {scope} {key}")


def _install(
    service: Backend,
    artifact: Path | None,
    registry_dir: Path | None,
    registry_url: str | None,
    skill_id: str | None,
    version: str | None,
    allow_tofu: bool,
    force: bool,
    update_of: str | None,
    ca_file: Path | None,
) -> dict[str, Any]:
    sources = [s for s in (artifact, registry_dir, registry_url) if s is not None]
    if len(sources) != 1:
        raise UsageError("name exactly one source: ARTIFACT, --registry-dir or --registry-url")
    if artifact is not None:
        if skill_id is not None or version is not None:
            raise UsageError("--skill-id/--version select from a registry, not an artifact file")
        return service.install_file(
            artifact, allow_tofu=allow_tofu, force=force, update_of=update_of
        )
    skill_id = skill_id or update_of
    if skill_id is None:
        raise UsageError("a registry install needs --skill-id")
    if registry_dir is not None:
        return service.install_from_registry_dir(
            registry_dir,
            skill_id,
            version,
            allow_tofu=allow_tofu,
            force=force,
            update=update_of is not None,
        )
    assert registry_url is not None
    return service.install_from_registry_url(
        registry_url,
        skill_id,
        version,
        allow_tofu=allow_tofu,
        force=force,
        update=update_of is not None,
        ca_file=ca_file,
    )


def install(
    ctx: typer.Context,
    artifact: Annotated[
        Path | None, typer.Argument(help="A .palyra-skill file (or use a registry).")
    ] = None,
    registry_dir: RegistryDirOption = None,
    registry_url: RegistryUrlOption = None,
    skill_id: Annotated[
        str | None, typer.Option("--skill-id", help="Skill to take from the registry.")
    ] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Registry version (default: highest).")
    ] = None,
    allow_tofu: AllowTofuOption = False,
    force: ForceOption = False,
    registry_ca_cert: RegistryCaOption = None,
    json_output: JsonOption = False,
) -> None:
    """Verify, trust, audit and install a skill (it starts active unless the audit fails)."""
    with backend(ctx) as service, working("verifying, auditing and installing…"):
        body = _install(
            service,
            artifact,
            registry_dir,
            registry_url,
            skill_id,
            version,
            allow_tofu,
            force,
            None,
            registry_ca_cert,
        )
    if json_output:
        print_json(body)
    else:
        _print_skill(body, "installed")


def update(
    ctx: typer.Context,
    skill_id: Annotated[str, typer.Argument(help="The installed skill to update.")],
    artifact: Annotated[
        Path | None, typer.Option("--artifact", help="Update from this .palyra-skill file.")
    ] = None,
    registry_dir: RegistryDirOption = None,
    registry_url: RegistryUrlOption = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Registry version (default: highest).")
    ] = None,
    allow_tofu: AllowTofuOption = False,
    force: ForceOption = False,
    registry_ca_cert: RegistryCaOption = None,
    json_output: JsonOption = False,
) -> None:
    """Install a newer version; more capabilities are held for approval, downgrades refused."""
    with backend(ctx) as service, working("verifying, auditing and installing…"):
        body = _install(
            service,
            artifact,
            registry_dir,
            registry_url,
            None,
            version,
            allow_tofu,
            force,
            skill_id,
            registry_ca_cert,
        )
    if json_output:
        print_json(body)
    else:
        _print_skill(body, "updated")


def remove(
    ctx: typer.Context,
    skill_id: Annotated[str, typer.Argument(help="Installed skill.")],
    version: Annotated[
        str | None, typer.Option("--version", help="Remove only this version.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Remove a version, or the whole skill."""
    with backend(ctx) as service:
        body = service.remove(skill_id, version)
    if json_output:
        print_json(body)
    else:
        console().print(f"removed {skill_id} {', '.join(body['removed_versions'])}")


def list_skills(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Installed skills with status, trust and what they still need."""
    with backend(ctx) as service:
        body = service.list_skills()
    if json_output:
        print_json(body)
        return
    out = console()
    if not body["skills"]:
        out.print("no skills installed (palyra skills install ARTIFACT)")
        return
    table = Table(title=f"{body['count']} skill(s)")
    for column in ("skill", "version", "status", "publisher", "trust", "tools", "notes"):
        table.add_column(column)
    for skill in body["skills"]:
        notes = []
        if skill["needs_secrets"]:
            notes.append("needs secrets: " + ", ".join(skill["missing_secrets"]))
        if skill["held_versions"]:
            notes.append("held update: " + ", ".join(skill["held_versions"]))
        if skill.get("status_reason"):
            notes.append(str(skill["status_reason"]))
        table.add_row(
            escape(skill["skill_id"]),
            escape(skill["current_version"] or "-"),
            _status(skill["status"]),
            escape(skill["publisher"]),
            skill["trust_decision"],
            str(len(skill["tools"])),
            escape("; ".join(notes)),
        )
    out.print(table)


def info(
    ctx: typer.Context,
    skill_id: Annotated[str, typer.Argument(help="Installed skill.")],
    version: VersionOption = None,
    json_output: JsonOption = False,
) -> None:
    """Everything about one installed version: status, trust, audit, tools, capabilities."""
    with backend(ctx) as service:
        body = service.info(skill_id, version)
    if json_output:
        print_json(body)
        return
    out = console()
    _print_skill(body, "skill")
    out.print(f"  name: {escape(body['name'])}  publisher: {escape(body['publisher'])}")
    out.print(f"  trust: {body['trust_decision']}  key: {body['signature_key_id']}")
    out.print(f"  installed versions: {', '.join(body['installed_versions'])}")
    audit = body["audit"]
    out.print(
        f"  audit: {'passed' if audit.get('passed') else 'FAILED'} "
        f"({audit.get('check_count', 0)} checks, warnings: "
        f"{', '.join(audit.get('warning_checks', [])) or 'none'})"
    )
    for tool in body["tools"]:
        flag = " [yellow](needs approval)[/]" if tool["requires_approval"] else ""
        out.print(f"  tool {escape(tool['id'])}{flag}: {escape(tool['description'])}")
    caps = body.get("capabilities") or {}
    for kind, values in caps.items():
        if values:
            out.print(f"  {kind}: {escape(', '.join(values))}")


def check(
    ctx: typer.Context,
    skill_id: Annotated[str | None, typer.Argument(help="One skill (default: all).")] = None,
    version: VersionOption = None,
    json_output: JsonOption = False,
) -> None:
    """Re-verify and re-audit without changing anything; say what blocks each skill."""
    if version is not None and skill_id is None:
        raise UsageError("--version needs a SKILL_ID")
    with backend(ctx) as service, working("re-verifying and re-auditing…"):
        body = service.check(skill_id, version)
    if json_output:
        print_json(body)
        return
    out = console()
    for result in body["results"]:
        colour = {"ready": "green", "needs_secrets": "yellow"}.get(result["check_status"], "red")
        out.print(
            f"{escape(result['skill_id'])} {escape(result['version'])}: "
            f"[{colour}]{result['check_status']}[/]"
        )
        for reason in result["reasons"]:
            out.print(f"  - {escape(reason)}")
    if not body["results"]:
        out.print("no skills installed")


def _status_command(verb: str, past: str) -> Any:
    def command(
        ctx: typer.Context,
        skill_id: Annotated[str, typer.Argument(help="Installed skill.")],
        version: VersionOption = None,
        reason: ReasonOption = None,
        json_output: JsonOption = False,
    ) -> None:
        with backend(ctx) as service:
            body = getattr(service, verb)(skill_id, version, reason=reason)
        if json_output:
            print_json(body)
        else:
            _print_skill(body, past)

    command.__doc__ = {
        "disable": "Stop new calls of a skill (it stays installed and trusted).",
        "quarantine": "Block a skill pending investigation; enable re-verifies it.",
    }[verb]
    return command


disable = _status_command("disable", "disabled")
quarantine = _status_command("quarantine", "quarantined")


def enable(
    ctx: typer.Context,
    skill_id: Annotated[str, typer.Argument(help="Installed skill.")],
    version: VersionOption = None,
    reason: ReasonOption = None,
    approve_capabilities: Annotated[
        bool,
        typer.Option(
            "--approve-capabilities", help="Grant a held update the capabilities it added."
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Re-verify and re-audit a skill, then make it active."""
    with backend(ctx) as service:
        body = service.enable(
            skill_id, version, reason=reason, approve_capabilities=approve_capabilities
        )
    if json_output:
        print_json(body)
    else:
        _print_skill(body, "enabled")


def _recheck_command(verb: str) -> Any:
    def command(
        ctx: typer.Context,
        skill_id: Annotated[str, typer.Argument(help="Installed skill.")],
        version: VersionOption = None,
        json_output: JsonOption = False,
    ) -> None:
        with backend(ctx) as service:
            body = getattr(service, verb)(skill_id, version)
        if json_output:
            print_json(body)
        else:
            result = body["result"]
            ok = result.get("ok")
            _print_skill(body, "verified" if ok else "check FAILED for")
            error = result.get("error")
            if error:
                console().print(f"  [red]{error['kind']}[/]: {escape(error['message'])}")
        if not body["result"].get("ok"):
            raise typer.Exit(1)

    command.__doc__ = (
        "Re-verify the stored artifact (signature, trust, audit); quarantine on failure."
    )
    return command


verify = _recheck_command("verify")
audit_installed = _recheck_command("audit")
