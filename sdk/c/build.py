#!/usr/bin/env python3
"""Compile C sources into a WebAssembly module for the Palyra sandbox (data ABI v1).

    python sdk/c/build.py examples/c/echo_http/echo_http.c -o echo_http.wasm

The result is a core wasm32 module that exports its linear memory as ``memory`` and exactly
the functions marked with ``PALYRA_TOOL`` (nothing else: no ``--export-dynamic``), imports only
``palyra:host@1`` functions the code really calls, has its names stripped, and keeps its stack
below its static data (``--stack-first``) so a stack overflow traps instead of silently
overwriting globals. Bulk-memory instructions (``memory.copy``/``memory.fill``) are used for
copies; the sandbox accepts them (threads and shared memories it does not).

Needs clang with the WebAssembly target and ``wasm-ld`` (Debian/Ubuntu:
``apt-get install clang lld``). Only the standard library is used, so the script runs with any
Python 3.9+; it is also importable from its path (see ``tests/c_build.py``)::

    spec = importlib.util.spec_from_file_location("palyra_c_build", "sdk/c/build.py")
    ...
    module.build_c_module(["tool.c"], "tool.wasm")

Environment: ``PALYRA_CLANG`` and ``PALYRA_WASM_LD`` override where the tools are found.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SDK_DIR = Path(__file__).resolve().parent
INSTALL_HINT = "install with: apt-get install clang lld"
WASM_MAGIC = b"\x00asm\x01\x00\x00\x00"
DEFAULT_STACK_BYTES = 64 * 1024
_VERSIONS = range(21, 13, -1)  # clang-21 .. clang-14


class BuildError(Exception):
    """Building failed; the message says why (and what to install, when a tool is missing)."""


@dataclass(frozen=True)
class Toolchain:
    clang: str
    wasm_ld: str


@dataclass(frozen=True)
class BuildOptions:
    include_dirs: tuple[str, ...] = ()
    defines: tuple[str, ...] = ()
    optimize: str = "2"
    werror: bool = True
    strip: bool = True
    bulk_memory: bool = True
    stack_bytes: int = DEFAULT_STACK_BYTES
    std: str = "c11"
    extra_cflags: tuple[str, ...] = ()


def _which(explicit: str | None, names: Sequence[str]) -> str | None:
    if explicit:
        return shutil.which(explicit) or (explicit if Path(explicit).is_file() else None)
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def find_toolchain(clang: str | None = None, wasm_ld: str | None = None) -> Toolchain:
    """Locate clang and wasm-ld (plain names first, then Debian's versioned ones)."""
    clang_path = _which(
        clang or os.environ.get("PALYRA_CLANG"), ["clang", *(f"clang-{v}" for v in _VERSIONS)]
    )
    if clang_path is None:
        raise BuildError(f"clang not found on PATH (or $PALYRA_CLANG); {INSTALL_HINT}")
    ld_path = _which(
        wasm_ld or os.environ.get("PALYRA_WASM_LD"),
        ["wasm-ld", *(f"wasm-ld-{v}" for v in _VERSIONS)],
    )
    if ld_path is None:
        raise BuildError(
            f"wasm-ld (from lld) not found on PATH (or $PALYRA_WASM_LD); {INSTALL_HINT}"
        )
    return Toolchain(clang_path, ld_path)


def compile_command(
    sources: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    toolchain: Toolchain,
    options: BuildOptions | None = None,
) -> list[str]:
    """The clang command line (one compile-and-link step)."""
    options = options or BuildOptions()
    if options.optimize not in ("0", "1", "2", "3", "s", "z"):
        raise BuildError(f"invalid optimisation level '{options.optimize}'")
    if options.stack_bytes < 4096 or options.stack_bytes % 16:
        raise BuildError("stack size must be a multiple of 16 and at least 4096 bytes")
    cmd = [
        toolchain.clang,
        "--target=wasm32",
        f"-fuse-ld={toolchain.wasm_ld}",  # clang 14 ignores --ld-path for wasm32
        f"-std={options.std}",
        f"-O{options.optimize}",
        "-nostdlib",
        "-ffreestanding",
        "-fno-builtin",
        "-Wall",
        "-Wextra",
    ]
    if options.werror:
        cmd.append("-Werror")
    if options.bulk_memory:
        cmd.append("-mbulk-memory")
    cmd.append(f"-I{SDK_DIR}")
    cmd += [f"-I{d}" for d in options.include_dirs]
    cmd += [f"-D{d}" for d in options.defines]
    cmd += list(options.extra_cflags)
    cmd += [
        "-Wl,--no-entry",  # a library of tool exports, no _start
        "-Wl,--stack-first",  # stack overflow traps instead of corrupting data
        f"-Wl,-z,stack-size={options.stack_bytes}",
        "-Wl,--gc-sections",
    ]
    if options.strip:
        cmd.append("-Wl,--strip-all")
    cmd += ["-o", os.fspath(output), *(os.fspath(s) for s in sources)]
    return cmd


def build_c_module(
    sources: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    options: BuildOptions | None = None,
    toolchain: Toolchain | None = None,
    timeout: float = 300.0,
) -> Path:
    """Compile and link ``sources`` into ``output`` (written atomically); returns its path."""
    if not sources:
        raise BuildError("no C sources given")
    for source in sources:
        if not Path(source).is_file():
            raise BuildError(f"source file not found: {source}")
    tools = toolchain or find_toolchain()
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        cmd = compile_command(sources, tmp, tools, options)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except OSError as exc:
            raise BuildError(f"cannot run {tools.clang}: {exc.strerror}; {INSTALL_HINT}") from None
        except subprocess.TimeoutExpired:
            raise BuildError(f"clang did not finish within {timeout:.0f} s") from None
        if proc.returncode != 0:
            raise BuildError(_explain_failure(proc.stderr or proc.stdout))
        data = tmp.read_bytes()
        if not data.startswith(WASM_MAGIC):
            raise BuildError("clang produced something that is not a WebAssembly module")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _explain_failure(stderr: str) -> str:
    text = stderr.strip() or "clang failed without a message"
    lowered = text.lower()
    if "unable to create target" in lowered or "no available targets" in lowered:
        return f"this clang has no WebAssembly backend ({INSTALL_HINT}):\n{text}"
    if "unable to execute command" in lowered or "invalid linker name" in lowered:
        return f"clang could not run wasm-ld ({INSTALL_HINT}):\n{text}"
    if "undefined symbol" in lowered:
        return (
            "link failed: a function is used but defined nowhere. There is no libc: use the "
            "palyra_* helpers, and #define PALYRA_IMPLEMENTATION in exactly one source file "
            f"before including palyra.h.\n{text}"
        )
    return f"compilation failed:\n{text}"


# ---- a small report of what the module imports and exports ------------------------------------


def _leb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 35:
            raise ValueError("truncated LEB128")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def _name(data: bytes, pos: int) -> tuple[str, int]:
    size, pos = _leb(data, pos)
    if pos + size > len(data):
        raise ValueError("truncated name")
    return data[pos : pos + size].decode("utf-8", "replace"), pos + size


def module_interface(data: bytes) -> tuple[list[str], list[str]]:
    """``(imports as "module::name", export names)`` of a core module, for the build report."""
    imports: list[str] = []
    exports: list[str] = []
    if not data.startswith(WASM_MAGIC):
        raise ValueError("not a WebAssembly module")
    pos = len(WASM_MAGIC)
    while pos < len(data):
        section = data[pos]
        size, pos = _leb(data, pos + 1)
        end = pos + size
        if end > len(data):
            raise ValueError("truncated section")
        if section in (2, 7):
            count, cur = _leb(data, pos)
            for _ in range(count):
                if section == 2:
                    module, cur = _name(data, cur)
                    name, cur = _name(data, cur)
                    kind = data[cur]
                    cur += 1
                    if kind == 0:  # function: type index
                        _, cur = _leb(data, cur)
                    else:  # this report is only about functions; stop on anything else
                        imports.append(f"{module}::{name} (kind {kind})")
                        break
                    imports.append(f"{module}::{name}")
                else:
                    name, cur = _name(data, cur)
                    cur += 1
                    _, cur = _leb(data, cur)
                    exports.append(name)
        pos = end
    return imports, exports


# ---- command line -------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="build.py",
        description="Compile C sources (using palyra.h) into a Palyra sandbox module.",
        epilog=f"Needs clang with the wasm32 target and wasm-ld; {INSTALL_HINT}.",
    )
    parser.add_argument("sources", nargs="+", help="C source files")
    parser.add_argument("-o", "--output", required=True, help="the .wasm file to write")
    parser.add_argument("-I", dest="include_dirs", action="append", default=[], metavar="DIR")
    parser.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME[=V]")
    parser.add_argument("-O", dest="optimize", default="2", help="optimisation level (default 2)")
    parser.add_argument("--no-werror", action="store_true", help="do not turn warnings into errors")
    parser.add_argument("--keep-names", action="store_true", help="keep the name section")
    parser.add_argument(
        "--no-bulk-memory", action="store_true", help="plain loops instead of memory.copy/fill"
    )
    parser.add_argument(
        "--stack-size", type=int, default=DEFAULT_STACK_BYTES, help="stack bytes (default 65536)"
    )
    parser.add_argument("--clang", help="clang to use (default: clang on PATH, $PALYRA_CLANG)")
    parser.add_argument("--wasm-ld", help="wasm-ld to use (default: wasm-ld, $PALYRA_WASM_LD)")
    parser.add_argument("--print-command", action="store_true", help="print the clang command")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    options = BuildOptions(
        include_dirs=tuple(args.include_dirs),
        defines=tuple(args.defines),
        optimize=args.optimize,
        werror=not args.no_werror,
        strip=not args.keep_names,
        bulk_memory=not args.no_bulk_memory,
        stack_bytes=args.stack_size,
    )
    try:
        tools = find_toolchain(args.clang, args.wasm_ld)
        if args.print_command:
            print(" ".join(compile_command(args.sources, args.output, tools, options)))
        out = build_c_module(args.sources, args.output, options, tools)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        data = out.read_bytes()
        try:
            imports, exports = module_interface(data)
        except ValueError:
            imports, exports = [], []
        print(f"wrote {out} ({len(data)} bytes)")
        print(f"  exports: {', '.join(exports) or '(none)'}")
        print(f"  imports: {', '.join(i.split('::', 1)[1] for i in imports) or '(none)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
