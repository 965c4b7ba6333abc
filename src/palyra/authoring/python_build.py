"""Building a Python skill into a WebAssembly component with componentize-py.

A Python skill directory holds ``app.py`` (the module with the ``@tool`` functions) and any
other modules it imports. The build writes a two-line entry module that imports ``app`` and
re-exports the SDK's ``WitWorld``, then runs componentize-py against the SDK's WIT
(``palyra:skill@1.0.0``, world ``skill``) in a subprocess — componentize-py pre-initialises
CPython in-process and holds a lot of memory, which must not stay in a long-lived CLI or
daemon process.

Builds are cached by a digest of everything that determines the output: the toolchain and SDK
versions, the SDK's own files and the skill's sources. A cache hit is a file copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from palyra.authoring.build_cache import (
    BuildError,
    BuildResult,
    Progress,
    cached_build,
    digest_files,
    quiet,
    source_files,
)
from palyra.skills.constants import COMPONENT_MAGIC, MAX_COMPONENT_ENTRY_BYTES

APP_MODULE = "app"
ENTRY_MODULE = "palyra_entry"
WORLD = "skill"
BUILD_TIMEOUT_SECONDS = 600
_PY = frozenset({".py"})

__all__ = ["BuildError", "BuildResult", "build_key", "build_python_skill", "sdk_dir"]


def sdk_dir() -> Path:
    """The installed palyra_sdk package directory (its parent goes on componentize-py's path)."""
    try:
        import palyra_sdk  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise BuildError(
            "the Python skill SDK is not installed: pip install palyra-sdk "
            "(from this repository: pip install -e sdk/python)"
        ) from None
    found = Path(next(iter(palyra_sdk.__path__))).resolve()
    if not (found / "wit" / "palyra-skill.wit").is_file():
        raise BuildError(f"the Python skill SDK at {found} has no wit/palyra-skill.wit")
    return found


def build_key(source: Path, sdk: Path) -> str:
    digest = hashlib.sha256()
    digest.update(f"componentize-py={metadata.version('componentize-py')}\0".encode())
    digest.update(f"world={WORLD};app={APP_MODULE}\0".encode())
    digest_files(digest, "sdk", sdk, source_files(sdk, frozenset({".py", ".wit"})))
    digest_files(digest, "src", source, source_files(source, _PY))
    return digest.hexdigest()


def build_python_skill(
    source: Path,
    output: Path,
    *,
    cache_dir: Path | None = None,
    progress: Progress = quiet,
) -> BuildResult:
    """Build ``source`` (a directory with ``app.py``) into the component ``output``."""
    source = source.resolve()
    if not (source / f"{APP_MODULE}.py").is_file():
        raise BuildError(f"{source} has no {APP_MODULE}.py (the module defining the tools)")
    sdk = sdk_dir()

    def produce() -> bytes:
        progress(f"componentize-py: building {source.name} (about 10 s)")
        return _componentize(source, sdk)

    key = build_key(source, sdk)
    return cached_build(
        key, output, cache_dir, COMPONENT_MAGIC, MAX_COMPONENT_ENTRY_BYTES, produce, progress
    )


def _componentize(source: Path, sdk: Path) -> bytes:
    exe = shutil.which("componentize-py", path=str(Path(sys.executable).parent)) or shutil.which(
        "componentize-py"
    )
    if exe is None:
        raise BuildError("componentize-py is not installed: pip install componentize-py==0.25.1")
    with tempfile.TemporaryDirectory(prefix="palyra-build-") as tmp:
        work = Path(tmp)
        # The app's own WitWorld wins (a guest written on the raw bindings); otherwise the
        # SDK's, which dispatches to the @tool functions the import registered.
        (work / f"{ENTRY_MODULE}.py").write_text(
            f"import {APP_MODULE}\n"
            f"WitWorld = getattr({APP_MODULE}, 'WitWorld', None)\n"
            "if WitWorld is None:\n"
            "    from palyra_sdk._guest import WitWorld\n"
        )
        out = work / "skill.wasm"
        command = [
            exe, "-d", str(sdk / "wit"), "-w", WORLD,
            "componentize", ENTRY_MODULE,
            "-p", str(work), "-p", str(source), "-p", str(sdk.parent),
            "-o", str(out),
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        try:
            done = subprocess.run(
                command,
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BuildError(
                f"componentize-py took longer than {BUILD_TIMEOUT_SECONDS} s"
            ) from None
        if done.returncode != 0 or not out.is_file():
            raise BuildError(f"componentize-py failed: {_reason(done.stderr or done.stdout)}")
        return out.read_bytes()


def _reason(text: str) -> str:
    """The useful line of componentize-py's output (a Python traceback's last line, or the
    first line of a Rust error chain), without the backtrace."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if line.startswith("Caused by:") and index + 1 < len(lines):
            return lines[index + 1][:500]
    for line in reversed(lines):
        if not line[:1].isdigit() and not line.startswith(("at ", "Stack backtrace")):
            return line[:500]
    return "no output"
