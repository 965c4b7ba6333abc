"""Building a C skill with the C SDK's build script (``sdk/c/build.py``).

The C SDK is a header and a standard-library-only script meant to be copied or run from its
path, so it is not an installed package: it is found through ``PALYRA_C_SDK`` (a directory
holding ``build.py`` and ``palyra.h``) or next to this source tree (an editable install of
this repository), and loaded from its path.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path
from types import ModuleType

from palyra.authoring.build_cache import (
    BuildError,
    BuildResult,
    Progress,
    cached_build,
    digest_files,
    quiet,
    source_files,
)
from palyra.skills.constants import MAX_ENTRY_BYTES

WASM_MAGIC = b"\x00asm\x01\x00\x00\x00"
_C = frozenset({".c", ".h"})


def c_sdk_dir() -> Path:
    """Where ``build.py`` and ``palyra.h`` live."""
    explicit = os.environ.get("PALYRA_C_SDK")
    candidates = [Path(explicit)] if explicit else []
    candidates.append(Path(__file__).resolve().parents[3] / "sdk" / "c")
    for candidate in candidates:
        if (candidate / "build.py").is_file() and (candidate / "palyra.h").is_file():
            return candidate.resolve()
    raise BuildError(
        "the C SDK was not found: set PALYRA_C_SDK to the directory holding build.py and "
        "palyra.h (sdk/c in the Palyra repository)"
    )


@cache
def _script(sdk: Path) -> ModuleType:
    name = "palyra_c_sdk_build"
    spec = importlib.util.spec_from_file_location(name, sdk / "build.py")
    if spec is None or spec.loader is None:
        raise BuildError(f"cannot load {sdk / 'build.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


def _toolchain_version(script: ModuleType) -> str:
    try:
        tools = script.find_toolchain()
    except script.BuildError as exc:
        raise BuildError(str(exc)) from None
    try:
        done = subprocess.run(
            [tools.clang, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(f"cannot run {tools.clang}: {exc}") from None
    return f"{tools.clang}|{tools.wasm_ld}|{done.stdout.strip()}"


def build_c_skill(
    source: Path,
    output: Path,
    *,
    cache_dir: Path | None = None,
    progress: Progress = quiet,
) -> BuildResult:
    """Compile the ``*.c`` files of ``source`` (tests/ and build/ excluded) into ``output``."""
    source = source.resolve()
    files = source_files(source, _C)
    sources = [path for path in files if path.suffix == ".c"]
    if not sources:
        raise BuildError(f"{source} has no .c files")
    sdk = c_sdk_dir()
    script = _script(sdk)
    digest = hashlib.sha256()
    digest.update(_toolchain_version(script).encode() + b"\0")
    digest_files(digest, "sdk", sdk, [sdk / "build.py", sdk / "palyra.h"])
    digest_files(digest, "src", source, files)

    def produce() -> bytes:
        progress(f"clang: compiling {len(sources)} file(s) of {source.name}")
        with tempfile.TemporaryDirectory(prefix="palyra-c-build-") as tmp:
            out = Path(tmp) / "skill.wasm"
            try:
                script.build_c_module([str(path) for path in sources], out)
            except script.BuildError as exc:
                raise BuildError(f"C build failed: {exc}") from None
            return out.read_bytes()

    key = digest.hexdigest()
    return cached_build(key, output, cache_dir, WASM_MAGIC, MAX_ENTRY_BYTES, produce, progress)
