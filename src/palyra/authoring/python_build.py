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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from palyra.errors import PalyraError
from palyra.fsutil import atomic_write
from palyra.skills.constants import COMPONENT_MAGIC, MAX_COMPONENT_ENTRY_BYTES

APP_MODULE = "app"
ENTRY_MODULE = "palyra_entry"
WORLD = "skill"
BUILD_TIMEOUT_SECONDS = 600
MAX_SOURCE_FILES = 500
MAX_SOURCE_BYTES = 16 * 1024 * 1024
_SKIPPED_DIRS = {"tests", "build", "__pycache__", ".venv", "venv", "node_modules"}

Progress = Callable[[str], None]


class BuildError(PalyraError):
    kind = "build_failed"


@dataclass(frozen=True)
class BuildResult:
    output: Path
    digest: str  # the build key (toolchain + SDK + sources)
    cached: bool
    seconds: float
    size: int


def _quiet(_message: str) -> None:
    pass


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


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in _SKIPPED_DIRS and not d.startswith(".")
        )
        for name in sorted(filenames):
            if name.endswith(".py") and not name.startswith("."):
                yield Path(dirpath) / name


def source_files(source: Path) -> list[Path]:
    """The skill's Python sources (tests/, build/ and hidden directories excluded), bounded."""
    files: list[Path] = []
    total = 0
    for path in _walk(source):
        if path.is_symlink():
            raise BuildError(f"{path.relative_to(source)} is a symlink; sources must be files")
        files.append(path)
        total += path.stat().st_size
        if len(files) > MAX_SOURCE_FILES or total > MAX_SOURCE_BYTES:
            raise BuildError(
                f"{source} has more than {MAX_SOURCE_FILES} Python files or "
                f"{MAX_SOURCE_BYTES} bytes of sources"
            )
    return files


def build_key(source: Path, sdk: Path) -> str:
    digest = hashlib.sha256()
    digest.update(f"componentize-py={metadata.version('componentize-py')}\0".encode())
    digest.update(f"world={WORLD};app={APP_MODULE}\0".encode())
    for label, root, files in (
        (
            "sdk",
            sdk,
            [p for p in sorted(sdk.rglob("*")) if p.is_file() and p.suffix in {".py", ".wit"}],
        ),
        ("src", source, source_files(source)),
    ):
        for path in files:
            if "__pycache__" in path.parts:
                continue
            digest.update(f"{label}:{path.relative_to(root).as_posix()}\0".encode())
            data = path.read_bytes()
            digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    explicit = os.environ.get("PALYRA_BUILD_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "palyra" / "builds"


def build_python_skill(
    source: Path,
    output: Path,
    *,
    cache_dir: Path | None = None,
    progress: Progress = _quiet,
) -> BuildResult:
    """Build ``source`` (a directory with ``app.py``) into the component ``output``."""
    started = time.monotonic()
    source = source.resolve()
    if not (source / f"{APP_MODULE}.py").is_file():
        raise BuildError(f"{source} has no {APP_MODULE}.py (the module defining the tools)")
    sdk = sdk_dir()
    key = build_key(source, sdk)
    cache = cache_dir or default_cache_dir()
    cached = cache / f"{key}.wasm"
    if cached.is_file():
        data = cached.read_bytes()
        if data.startswith(COMPONENT_MAGIC):
            progress(f"cached build {key[:12]}")
            atomic_write(output, data, mode=0o644)
            return BuildResult(output, key, True, time.monotonic() - started, len(data))
    progress(f"componentize-py: building {source.name} (about 10 s)")
    data = _componentize(source, sdk)
    if len(data) > MAX_COMPONENT_ENTRY_BYTES:
        raise BuildError(
            f"component is {len(data)} bytes, over the {MAX_COMPONENT_ENTRY_BYTES}-byte limit"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(output, data, mode=0o644)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        atomic_write(cached, data, mode=0o644)
    except OSError:
        pass  # a cache that cannot be written only costs a rebuild
    progress(f"built {output} ({len(data) / 1e6:.1f} MB)")
    return BuildResult(output, key, False, time.monotonic() - started, len(data))


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
