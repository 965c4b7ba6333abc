"""``palyra skills new|build|run``: writing a skill, from an empty directory to a signed
artifact running in the sandbox."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from palyra.authoring.build_cache import Progress
from palyra.cli.output import CliState, console, print_call_result, print_json
from palyra.cli.trust_cmd import JsonOption
from palyra.errors import UsageError
from palyra.runtime.errors import RuntimeFailure
from palyra.runtime.vault import MemoryVault, VaultError, parse_secret_ref


def _progress(json_output: bool) -> Progress:
    """Progress lines go to stderr, so ``--json`` output on stdout stays one document."""

    def show(message: str) -> None:
        if json_output:
            sys.stderr.write(f"{message}\n")
            sys.stderr.flush()
        else:
            console().print(f"[dim]…[/] {message}")

    return show


def new(
    directory: Annotated[
        Path, typer.Argument(help="Directory to create (its name names the skill).")
    ],
    lang: Annotated[str, typer.Option("--lang", help="python or c.")] = "python",
    publisher: Annotated[
        str, typer.Option("--publisher", help="Publisher name ([a-z0-9._-]).")
    ] = "local",
    json_output: JsonOption = False,
) -> None:
    """Create a working skill: manifest, source and a test that runs it in the sandbox."""
    from palyra.authoring.scaffold import LANGUAGES, new_skill

    if lang not in LANGUAGES:
        raise UsageError(f"--lang must be one of {', '.join(LANGUAGES)}")
    written = new_skill(directory, language=lang, publisher=publisher)
    if json_output:
        print_json(
            {"directory": str(directory), "language": lang, "files": [str(p) for p in written]}
        )
        return
    out = console()
    out.print(f"created {lang} skill in {directory}/")
    for path in written:
        out.print(f"  {path.relative_to(directory)}")
    build_hint = (
        "palyra skills build . --fill-tools" if lang == "python" else "palyra skills build ."
    )
    out.print(f"next: cd {directory} && {build_hint} && python -m pytest tests")


def build(
    directory: Annotated[
        Path, typer.Argument(help="The skill directory (with skill.toml).")
    ] = Path(),
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Module path (default: build/skill.wasm).")
    ] = None,
    fill: Annotated[
        bool,
        typer.Option(
            "--fill-tools", help="Python: rewrite skill.toml's tool list from the @tool functions."
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Compile a skill (componentize-py for Python, clang for C); cached by source digest."""
    from palyra.authoring.local_skill import code_cache_dir
    from palyra.authoring.skill_dir import build_skill, fill_tools, read_manifest

    show = _progress(json_output)
    read_manifest(directory)  # a broken manifest fails before a long build
    built = build_skill(directory, output, progress=show)
    summary: dict[str, Any] = {
        "language": built.language,
        "output": str(built.result.output),
        "bytes": built.result.size,
        "build_key": built.result.digest,
        "cached": built.result.cached,
        "seconds": round(built.result.seconds, 3),
    }
    if fill:
        if built.language != "python":
            raise UsageError(
                "--fill-tools needs a Python skill; a C skill declares its tools in skill.toml"
            )
        from palyra.runtime.sandbox import Sandbox

        show("asking the component for its tools (the first compile takes about 15 s)")
        sandbox = Sandbox(cache_dir=code_cache_dir())
        filled = fill_tools(directory, sandbox.describe_component(built.result.output.read_bytes()))
        summary["tools"] = {
            "added": list(filled.added),
            "updated": list(filled.updated),
            "removed": list(filled.removed),
            "manifest_changed": filled.changed,
        }
    if json_output:
        print_json(summary)
        return
    out = console()
    how = "from cache" if built.result.cached else f"in {built.result.seconds:.1f} s"
    out.print(
        f"built {built.language} skill → {built.result.output} "
        f"({built.result.size / 1e6:.1f} MB, {how})"
    )
    tools = summary.get("tools")
    if tools is not None:
        changes = [
            f"{verb} {', '.join(tools[verb])}"
            for verb in ("added", "updated", "removed")
            if tools[verb]
        ]
        if changes:
            out.print("  skill.toml: " + "; ".join(changes))
        elif tools["manifest_changed"]:
            out.print("  skill.toml: tool list rewritten (layout only)")
        else:
            out.print("  skill.toml: tools already up to date")


def _run_installed(
    ctx: typer.Context,
    skill_id: str,
    tool: str,
    input_value: Any,
    version: str | None,
    json_output: bool,
) -> None:
    from palyra.cli.backend import backend

    with backend(ctx) as service:
        body = service.run(skill_id, tool, input_value, version=version)
    if json_output:
        print_json(body)
        return
    from rich.markup import escape

    out = console()
    out.print_json(json.dumps(body["output"]))
    out.print(
        f"[dim]{escape(body['skill_id'])} {escape(body['version'])} {escape(body['tool_id'])} "
        f"fuel_used={body['fuel_used']} duration_ms={body['duration_ms']:.2f} "
        f"receipt=#{body['receipt_seq']}[/]"
    )
    for line in body["logs"]:
        out.print(f"[dim]log {line['level']}:[/] {escape(str(line['message']))}", highlight=False)


def _vault_from_env(pairs: list[str]) -> MemoryVault:
    """``scope/key=ENVVAR``: the secret's value comes from the environment, never argv."""
    vault = MemoryVault()
    for pair in pairs:
        ref, sep, variable = pair.rpartition("=")
        if not sep or not ref or not variable:
            raise UsageError(f"--secret expects SCOPE/KEY=ENVVAR, got {pair!r}")
        try:
            scope, key = parse_secret_ref(ref)
        except VaultError as exc:
            raise UsageError(f"--secret {ref}: {exc.message}") from None
        value = os.environ.get(variable)
        if value is None:
            raise UsageError(f"--secret {ref}: environment variable {variable} is not set")
        vault.set(scope, key, value.encode("utf-8"))
    return vault


def _looks_like_path(text: str) -> bool:
    # Skill ids never contain a separator or end in the artifact suffix.
    return "/" in text or os.sep in text or text.endswith(".palyra-skill")


def run(
    ctx: typer.Context,
    skill: Annotated[
        str, typer.Argument(help="An installed skill id, or a .palyra-skill file (development).")
    ],
    tool: Annotated[str, typer.Argument(help="Tool id or name.")],
    input_json: Annotated[str, typer.Option("--input", help="Tool input as JSON.")] = "{}",
    version: Annotated[
        str | None, typer.Option("--version", help="Installed version (default: current).")
    ] = None,
    allow_declared: Annotated[
        bool,
        typer.Option(
            "--allow-declared",
            help="Grant everything the manifest declares (default: grant nothing).",
        ),
    ] = False,
    secret: Annotated[
        list[str] | None,
        typer.Option("--secret", help="SCOPE/KEY=ENVVAR: a secret's value from the environment."),
    ] = None,
    allow_private_network: Annotated[
        bool,
        typer.Option("--allow-private-network", help="Allow loopback/private hosts and http."),
    ] = False,
    trusted_publisher: Annotated[
        list[str] | None,
        typer.Option("--trusted-publisher", help="PUBLISHER=HEXKEY trusted for this run only."),
    ] = None,
    allow_tofu: Annotated[
        bool, typer.Option("--allow-tofu", help="Pin an unknown publisher's key on first use.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Run one tool of an installed skill — or, given a file, of an uninstalled artifact.

    An installed skill runs through the daemon's runner (status gate, approvals, receipt in
    the journal). A file is verified and audited and run in development mode: nothing is
    installed, grants need --allow-declared, storage lives in <state>/skill-data/<skill_id>/.
    """
    from palyra.authoring.local_skill import code_cache_dir
    from palyra.cli.skills_cmd import verify_and_audit
    from palyra.runtime.context import HostServices
    from palyra.runtime.sandbox import Sandbox
    from palyra.runtime.tools import RuntimePolicy, run_tool

    try:
        input_value = json.loads(input_json)
    except ValueError as exc:
        raise UsageError(f"--input is not JSON: {exc}") from None
    if not _looks_like_path(skill):
        dev_flags = [
            name
            for name, used in (
                ("--allow-declared", allow_declared),
                ("--secret", bool(secret)),
                ("--allow-private-network", allow_private_network),
                ("--trusted-publisher", bool(trusted_publisher)),
                ("--allow-tofu", allow_tofu),
            )
            if used
        ]
        if dev_flags:
            raise UsageError(
                f"{', '.join(dev_flags)} only apply to an artifact file; an installed skill "
                "runs under the operator's policy"
            )
        _run_installed(ctx, skill, tool, input_value, version, json_output)
        return
    if version is not None:
        raise UsageError("--version selects an installed version, not an artifact file")
    artifact = Path(skill)
    vault = _vault_from_env(secret or [])  # flags are checked before any work
    report = verify_and_audit(ctx, artifact, trusted_publisher, allow_tofu)
    inspection = report.verification.inspection
    state: CliState = ctx.obj
    services = HostServices(state_root=state.state_root, vault=vault)
    base = RuntimePolicy.allow_declared() if allow_declared else RuntimePolicy()
    policy = dataclasses.replace(
        base,
        allow_http=allow_private_network,
        allow_private_network=allow_private_network,
        # a development server on loopback listens anywhere; public hosts keep 80/443
        allowed_ports=frozenset(range(1, 65536)) if allow_private_network else None,
    )
    sandbox = Sandbox(cache_dir=code_cache_dir(), services=services)
    try:
        result = run_tool(sandbox, inspection, tool, input_value, policy)
    except RuntimeFailure as exc:
        if exc.kind == "capability_denied" and not allow_declared:
            raise type(exc)(
                f"{exc.message} (pass --allow-declared to grant what the manifest declares)",
                details=exc.details,
            ) from None
        raise
    print_call_result(result, json_output)
