"""Test helper: Python guests built into components once per machine, and a sandbox whose
compiled-code cache is shared by every test process.

componentize-py takes ~7 s per guest and compiling the 18 MB result ~14 s, so both caches
live under ``build/test-cache`` (gitignored) and survive between runs; a fresh clone pays
once per guest. Builds go through ``palyra.authoring.python_build`` — the same code as
``palyra skills build`` — so the suite exercises the real toolchain.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from palyra.authoring.python_build import build_python_skill
from palyra.runtime.context import HostServices
from palyra.runtime.sandbox import Sandbox

REPO = Path(__file__).resolve().parent.parent
GUESTS = Path(__file__).resolve().parent / "guests"
CACHE = REPO / "build" / "test-cache"


@cache
def guest(name: str, root: Path = GUESTS) -> bytes:
    """The component built from ``root/name`` (a directory with app.py)."""
    out = CACHE / "components" / f"{name}.wasm"
    result = build_python_skill(root / name, out, cache_dir=CACHE / "builds")
    return result.output.read_bytes()


def sandbox(services: HostServices | None = None) -> Sandbox:
    return Sandbox(cache_dir=CACHE / "modules", services=services or HostServices())
