"""How every command prints: stable JSON with ``--json``, readable text otherwise.

Errors are one line — ``error[<kind>]: <message>`` on stderr, or ``{"error": {...}}`` on stdout
with ``--json`` — and never a traceback (design.md §7).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from palyra.errors import PalyraError

if TYPE_CHECKING:
    from palyra.runtime.sandbox import CallResult


@dataclass(frozen=True)
class CliState:
    state_root: Path
    url: str | None = None  # a daemon to talk to (else discovered, else in-process)


def console() -> Console:
    return Console(highlight=False, soft_wrap=True)


@contextlib.contextmanager
def working(message: str) -> Iterator[None]:
    """A spinner on stderr while something slow runs — only on a terminal, so scripts and
    ``--json`` output stay clean."""
    if not sys.stderr.isatty():
        yield
        return
    with Console(stderr=True).status(message):
        yield


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def print_call_result(result: CallResult, json_output: bool) -> None:
    """One sandbox call (a ``CallResult``): its JSON, or the output, cost, logs and egress."""
    if json_output:
        print_json(result.to_json())
        return
    from rich.markup import escape

    out = console()
    out.print_json(json.dumps(result.output))
    out.print(
        f"[dim]export={result.export} abi={result.abi} fuel_used={result.fuel_used} "
        f"duration_ms={result.duration_ms:.2f}[/]"
    )
    for line in result.logs:
        # A guest's log line is data, never rich markup.
        out.print(f"[dim]log {line.level}:[/] {escape(line.message)}", highlight=False)
    for record in result.egress:
        decision, url, reason = record.get("decision"), record.get("url"), record.get("reason")
        out.print(f"[dim]egress {decision}:[/] {escape(str(url))} {escape(str(reason or ''))}")


def report_error(error: PalyraError, json_mode: bool) -> None:
    if json_mode:
        print_json({"error": {"kind": error.kind, "message": error.message}})
    else:
        sys.stderr.write(f"error[{error.kind}]: {error.message}\n")
        sys.stderr.flush()


def read_input_file(path: Path, what: str, limit: int) -> bytes:
    """Read a user-supplied file with a size bound and a typed error."""
    from palyra.errors import IoFailure, UsageError

    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise IoFailure(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise UsageError(f"{what} {path} is larger than {limit} bytes")
    return data
