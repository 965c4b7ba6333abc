"""What every skill build shares: the error type, the result, progress reporting and the
digest-keyed cache of build outputs.

A build's key is a digest of everything that determines its output (toolchain version, SDK
files, the skill's sources), so a hit is a file copy and a changed byte anywhere is a rebuild.
The cache is an optimisation only: a corrupt or unwritable entry costs a rebuild, never a
wrong module, because a hit is checked for the expected magic before use and the artifact
is verified and audited downstream anyway.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from palyra.errors import PalyraError
from palyra.fsutil import atomic_write

Progress = Callable[[str], None]
MAX_SOURCE_FILES = 500
MAX_SOURCE_BYTES = 16 * 1024 * 1024
SKIPPED_DIRS = frozenset({"tests", "build", "__pycache__", ".venv", "venv", "node_modules"})


class BuildError(PalyraError):
    kind = "build_failed"


@dataclass(frozen=True)
class BuildResult:
    output: Path
    digest: str  # the build key
    cached: bool
    seconds: float
    size: int


def quiet(_message: str) -> None:
    pass


def default_cache_dir() -> Path:
    explicit = os.environ.get("PALYRA_BUILD_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "palyra" / "builds"


def source_files(source: Path, suffixes: frozenset[str]) -> list[Path]:
    """The skill's sources with these suffixes (tests/, build/ and hidden directories
    excluded), sorted, bounded in count and bytes; symlinks are refused so a build never
    reads outside the skill directory."""
    files: list[Path] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.startswith(".") or path.suffix not in suffixes:
                continue
            if path.is_symlink():
                raise BuildError(f"{path.relative_to(source)} is a symlink; sources must be files")
            files.append(path)
            total += path.stat().st_size
            if len(files) > MAX_SOURCE_FILES or total > MAX_SOURCE_BYTES:
                raise BuildError(
                    f"{source} has more than {MAX_SOURCE_FILES} source files or "
                    f"{MAX_SOURCE_BYTES} bytes of sources"
                )
    return files


def digest_files(digest: hashlib._Hash, label: str, root: Path, files: Iterable[Path]) -> None:
    """Fold files into ``digest`` with their relative paths and lengths (unambiguous)."""
    for path in files:
        digest.update(f"{label}:{path.relative_to(root).as_posix()}\0".encode())
        data = path.read_bytes()
        digest.update(len(data).to_bytes(8, "big") + data)


def cached_build(
    key: str,
    output: Path,
    cache_dir: Path | None,
    magic: bytes,
    max_bytes: int,
    produce: Callable[[], bytes],
    progress: Progress,
) -> BuildResult:
    """``output`` from the cache entry ``key`` when present and plausible, else ``produce()``d
    (refused over ``max_bytes``, what an artifact may hold) and stored under ``key``."""
    started = time.monotonic()
    cache = cache_dir or default_cache_dir()
    cached = cache / f"{key}.wasm"
    try:
        data = cached.read_bytes() if cached.is_file() else b""
    except OSError:
        data = b""
    if data.startswith(magic):
        progress(f"cached build {key[:12]}")
        atomic_write(output, data, mode=0o644)
        return BuildResult(output, key, True, time.monotonic() - started, len(data))
    data = produce()
    if len(data) > max_bytes:
        raise BuildError(f"the module is {len(data)} bytes, over the {max_bytes}-byte limit")
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(output, data, mode=0o644)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        atomic_write(cached, data, mode=0o644)
    except OSError:
        pass  # a cache that cannot be written only costs a rebuild
    progress(f"built {output} ({len(data) / 1e6:.1f} MB)")
    return BuildResult(output, key, False, time.monotonic() - started, len(data))
