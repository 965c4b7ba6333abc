"""How every command prints: stable JSON with ``--json``, readable text otherwise.

Errors are one line — ``error[<kind>]: <message>`` on stderr, or ``{"error": {...}}`` on stdout
with ``--json`` — and never a traceback (design.md §7).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from palyra.errors import PalyraError


@dataclass(frozen=True)
class CliState:
    state_root: Path


def console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


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
