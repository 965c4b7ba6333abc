"""``palyra plugin run``: run a module in the sandbox during development."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from palyra.cli.output import print_call_result, read_input_file
from palyra.errors import UsageError

app = typer.Typer(
    help="Run WebAssembly modules in the sandbox (development).", no_args_is_help=True
)


def _module_bytes(wasm: Path | None, wat: Path | None) -> bytes:
    if (wasm is None) == (wat is None):
        raise UsageError("pass exactly one of --wasm or --wat")
    if wasm is not None:
        return read_input_file(wasm, "module", 64 * 1024 * 1024)
    assert wat is not None
    import wasmtime

    text = read_input_file(wat, "WAT source", 16 * 1024 * 1024).decode("utf-8", "replace")
    try:
        return bytes(wasmtime.wat2wasm(text))
    except wasmtime.WasmtimeError as exc:
        raise UsageError(f"{wat} is not valid WAT: {' '.join(str(exc).split())[:300]}") from None


def _parse_input(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--input is not JSON: {exc}") from None


@app.command("run")
def run(
    wasm: Annotated[Path | None, typer.Option("--wasm", help="Binary module to run.")] = None,
    wat: Annotated[Path | None, typer.Option("--wat", help="WAT source, compiled first.")] = None,
    tool: Annotated[str, typer.Option("--tool", help="Tool name: the export to call.")] = "run",
    input_json: Annotated[str, typer.Option("--input", help="Tool input as JSON.")] = "{}",
    fuel: Annotated[int | None, typer.Option("--fuel", min=1, help="Fuel budget.")] = None,
    memory_bytes: Annotated[
        int | None, typer.Option("--memory-bytes", min=65536, help="Memory limit in bytes.")
    ] = None,
    timeout_ms: Annotated[
        int | None, typer.Option("--timeout-ms", min=1, help="Wall clock.")
    ] = None,
    allow_http: Annotated[
        list[str] | None,
        typer.Option("--allow-http", help="Grant HTTP egress to HOST (repeatable)."),
    ] = None,
    allow_private_network: Annotated[
        bool,
        typer.Option(
            "--allow-private-network", help="Allow loopback/private addresses (and http)."
        ),
    ] = False,
    storage_dir: Annotated[
        Path | None, typer.Option("--storage-dir", help="Grant read-write storage in DIR.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Run one call; prints the output, fuel used, duration, logs and egress records."""
    from palyra.runtime.context import CallGrants, HostServices
    from palyra.runtime.limits import RuntimeLimits
    from palyra.runtime.sandbox import Sandbox
    from palyra.skills.values import host as check_host

    module = _module_bytes(wasm, wat)
    hosts: list[str] = []
    for raw in allow_http or []:
        try:
            hosts.append(check_host(raw.strip().lower().rstrip("."), wildcard_opt_in=True))
        except Exception as exc:
            raise UsageError(f"--allow-http {raw!r}: {getattr(exc, 'message', exc)}") from None
    limits = RuntimeLimits().with_overrides(
        fuel=fuel, memory_bytes=memory_bytes, timeout_ms=timeout_ms
    )
    grants = CallGrants(
        http_hosts=tuple(hosts),
        allow_http=allow_private_network,
        allow_private_network=allow_private_network,
        allow_wildcards=True,
        allowed_ports=frozenset(range(1, 65536)) if allow_private_network else None,
        storage_write=("*",) if storage_dir is not None else (),
    )
    if storage_dir is not None:
        storage_dir.mkdir(parents=True, exist_ok=True)
    sandbox = Sandbox(services=HostServices(storage_root=storage_dir))
    result = sandbox.run(
        module,
        input_value=_parse_input(input_json),
        tool_name=tool,
        tool_id=f"dev.local.{tool}",
        grants=grants,
        limits=limits,
    )
    print_call_result(result, json_output)
