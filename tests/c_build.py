"""Test helper: build C guest modules with ``sdk/c/build.py``.

``sdk/`` is not a Python package (the script is meant to be run as a file), so it is loaded
from its path once and exposed through a typed facade.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
SDK_DIR = REPO / "sdk" / "c"
BUILD_SCRIPT = SDK_DIR / "build.py"
C_EXAMPLES = REPO / "examples" / "c"


@cache
def build_script() -> ModuleType:
    """``sdk/c/build.py`` as a module (registered so its dataclasses resolve their types)."""
    name = "palyra_sdk_c_build"
    spec = importlib.util.spec_from_file_location(name, BUILD_SCRIPT)
    if spec is None or spec.loader is None:  # pragma: no cover - the file is in the repo
        raise ImportError(f"cannot load {BUILD_SCRIPT}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def build_error() -> type[Exception]:
    error: type[Exception] = build_script().BuildError
    return error


def toolchain_problem() -> str | None:
    """None when clang and wasm-ld are usable, else the build script's explanation."""
    try:
        build_script().find_toolchain()
    except build_error() as exc:
        return str(exc)
    return None


def build_c(
    sources: Sequence[str | os.PathLike[str]],
    output: Path,
    *,
    werror: bool = True,
    strip: bool = True,
) -> bytes:
    """Compile ``sources`` to ``output`` and return the module bytes."""
    script = build_script()
    options = script.BuildOptions(werror=werror, strip=strip)
    path: Path = script.build_c_module(list(sources), output, options)
    return path.read_bytes()


def example_names() -> list[str]:
    return sorted(p.name for p in C_EXAMPLES.iterdir() if (p / "skill.toml").is_file())
