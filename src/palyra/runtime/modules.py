"""Compiling modules once, and the on-disk cache of compiled code.

Compiled code is native machine code: loading it is as dangerous as running a binary, and
wasmtime's deserializer is explicitly not safe for untrusted input. So precompiled code is only
ever loaded from the daemon's own cache directory (mode 0700), keyed by (module SHA-256,
wasmtime version, engine configuration), and each file carries an HMAC under a per-cache key
(mode 0600) that is checked before deserializing — a truncated, corrupted or swapped file is
recompiled, never loaded. Nothing from an artifact is ever deserialized.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from palyra.abi import DATA_ABI_MODULE
from palyra.fsutil import atomic_write
from palyra.runtime import ffi
from palyra.runtime.engine import EngineConfig, get_engine
from palyra.runtime.errors import (
    InvalidModule,
    LinkError,
    MemoryLimit,
    ResourceLimit,
    RuntimeFailure,
)
from palyra.skills.constants import COMPONENT_MAGIC
from palyra.skills.wasm_binary import WasmFormatError, WasmSummary, parse_wasm

CORE_MAGIC = b"\x00asm\x01\x00\x00\x00"
_MAC_BYTES = 32

# Returns the linker (holding every host function) for an engine.
LinkerSource = Callable[[wasmtime.Engine], wasmtime.Linker]


@dataclass(frozen=True)
class ModuleInfo:
    """What the sandbox needs to know about a module before running it."""

    sha256: str
    summary: WasmSummary
    entry_exports: frozenset[str]  # exports of type () -> i32
    exports_memory: bool
    data_abi: bool  # imports palyra:host@1 (JSON in/out) rather than only the compat ABI


class CompiledModule:
    """A compiled module plus its pre-linked instance template (reused by every call)."""

    def __init__(self, info: ModuleInfo, module: wasmtime.Module, pre: wasmtime.InstancePre):
        self.info = info
        self.module = module
        self.pre = pre  # keeps the native object alive for pre_address
        self.pre_address = ffi.address(pre)
        self.export_choices: dict[tuple[str | None, str | None], str] = {}
        self.native = False  # set by the ModuleCache: which call path its linker serves


def describe(data: bytes, max_bytes: int) -> ModuleInfo:
    """Check the bytes are a binary core module within limits; summarise without compiling."""
    if len(data) > max_bytes:
        raise InvalidModule(f"module is {len(data)} bytes, over the {max_bytes}-byte limit")
    if data.startswith(COMPONENT_MAGIC):
        raise InvalidModule(
            "module is a WebAssembly component; the core-module sandbox runs modules"
        )
    if not data.startswith(CORE_MAGIC):
        raise InvalidModule("not a binary WebAssembly module (WAT text is not accepted)")
    try:
        summary = parse_wasm(data, max_bytes=max_bytes)
    except WasmFormatError as exc:
        raise InvalidModule(f"invalid WebAssembly: {exc}") from None
    return ModuleInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        summary=summary,
        entry_exports=frozenset(),
        exports_memory=summary.export_counts.get("memory", 0) > 0,
        data_abi=any(item.module == DATA_ABI_MODULE for item in summary.imports),
    )


def _entry_exports(module: wasmtime.Module) -> frozenset[str]:
    names: set[str] = set()
    for item in module.exports:
        ty = item.type
        if isinstance(ty, wasmtime.FuncType):
            params = [str(p) for p in ty.params]
            results = [str(r) for r in ty.results]
            if not params and results == ["i32"]:
                names.add(item.name)
    return frozenset(names)


class DiskCodeCache:
    """Compiled code on disk: one file per (digest, engine fingerprint), each with an HMAC
    under a per-directory key that is checked before the caller deserializes anything."""

    def __init__(self, path: Path, engine_config: EngineConfig) -> None:
        self.path = path
        self.fingerprint = engine_config.fingerprint()
        self.stats: dict[str, int] = {"rejected_cache_files": 0}
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path, 0o700)
        key_file = path / "cache.key"
        try:
            key = key_file.read_bytes()
        except FileNotFoundError:
            key = b""
        if len(key) != 32:
            # Missing or damaged (e.g. a crash mid-write): a new key invalidates every cached
            # file, which is then recompiled. Written atomically so readers see all or nothing.
            key = secrets.token_bytes(32)
            atomic_write(key_file, key, mode=0o600)
            for stale in path.glob("*.cwasm"):
                stale.unlink(missing_ok=True)
        self._key = key

    def _file(self, digest: str) -> Path:
        return self.path / f"{digest}-{self.fingerprint}.cwasm"

    def _mac(self, digest: str, data: bytes) -> bytes:
        """MAC over the cache key and the code, so a file cannot stand in for another module."""
        mac = hmac.new(self._key, digest.encode() + b"\0", hashlib.sha256)
        mac.update(self.fingerprint.encode() + b"\0")
        mac.update(data)
        return mac.digest()

    def get(self, digest: str) -> bytes | None:
        """The verified compiled code for ``digest``, or None (a bad file is deleted)."""
        try:
            blob = self._file(digest).read_bytes()
        except OSError:
            return None
        body, mac = blob[:-_MAC_BYTES], blob[-_MAC_BYTES:]
        if len(blob) <= _MAC_BYTES or not hmac.compare_digest(mac, self._mac(digest, body)):
            self.reject(digest)
            return None
        return body

    def reject(self, digest: str) -> None:
        self.stats["rejected_cache_files"] += 1
        self._file(digest).unlink(missing_ok=True)

    def put(self, digest: str, body: bytes) -> None:
        try:
            atomic_write(self._file(digest), body + self._mac(digest, body), mode=0o600)
        except OSError:
            return  # a cache that cannot be written only costs a recompile next time


class ModuleCache:
    """Compiled modules in memory (LRU) and, when a directory is given, on disk."""

    def __init__(
        self,
        linker_for: LinkerSource,
        cache_dir: Path | None = None,
        engine_config: EngineConfig | None = None,
        max_in_memory: int = 64,
    ) -> None:
        self.engine_config = engine_config or EngineConfig()
        self.native = bool(getattr(linker_for, "native", False))
        self.engine = get_engine(self.engine_config)
        self._linker_for = linker_for
        self._disk = None if cache_dir is None else DiskCodeCache(cache_dir, self.engine_config)
        self._memory: OrderedDict[str, CompiledModule] = OrderedDict()
        self._failed: OrderedDict[str, RuntimeFailure] = OrderedDict()
        self._max = max_in_memory
        self._lock = threading.Lock()
        self.stats = {"memory_hits": 0, "disk_hits": 0, "compiles": 0, "rejected_cache_files": 0}
        if self._disk is not None:
            self._disk.stats = self.stats

    def _load_from_disk(self, digest: str) -> wasmtime.Module | None:
        if self._disk is None:
            return None
        body = self._disk.get(digest)
        if body is None:
            return None
        try:
            return wasmtime.Module.deserialize(self.engine, body)
        except wasmtime.WasmtimeError:
            self._disk.reject(digest)
            return None

    def _store_on_disk(self, digest: str, module: wasmtime.Module) -> None:
        if self._disk is not None:
            self._disk.put(digest, bytes(module.serialize()))

    # ---- lookup ----------------------------------------------------------------------------

    def load(self, data: bytes, max_bytes: int) -> CompiledModule:
        if len(data) > max_bytes:  # before the cache: a limit holds whatever was loaded before
            raise InvalidModule(f"module is {len(data)} bytes, over the {max_bytes}-byte limit")
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            cached = self._memory.get(digest)
            if cached is not None:
                self._memory.move_to_end(digest)
                self.stats["memory_hits"] += 1
                return cached
            failure = self._failed.get(digest)
        if failure is not None:  # a module that failed once fails the same way: no recompile
            raise type(failure)(failure.message, details=failure.details)
        try:
            return self._compile(data, digest, max_bytes)
        except (InvalidModule, LinkError, MemoryLimit, ResourceLimit) as exc:
            with self._lock:
                self._failed[digest] = exc
                while len(self._failed) > self._max:
                    self._failed.popitem(last=False)
            raise

    def _compile(self, data: bytes, digest: str, max_bytes: int) -> CompiledModule:
        info = describe(data, max_bytes)
        module = self._load_from_disk(digest)
        if module is not None:
            self.stats["disk_hits"] += 1
        else:
            try:
                module = wasmtime.Module(self.engine, data)
            except wasmtime.WasmtimeError as exc:
                raise _compile_failure(exc) from None
            self.stats["compiles"] += 1
            self._store_on_disk(digest, module)
        try:
            pre = self._linker_for(self.engine).instantiate_pre(module)
        except wasmtime.WasmtimeError as exc:
            raise LinkError(
                f"module imports what the sandbox does not provide: {_one_line(exc)}"
            ) from None
        info = ModuleInfo(
            sha256=info.sha256,
            summary=info.summary,
            entry_exports=_entry_exports(module),
            exports_memory=info.exports_memory,
            data_abi=info.data_abi,
        )
        compiled = CompiledModule(info, module, pre)
        compiled.native = self.native
        with self._lock:
            self._memory[digest] = compiled
            while len(self._memory) > self._max:
                self._memory.popitem(last=False)
        return compiled


def _compile_failure(error: wasmtime.WasmtimeError) -> InvalidModule | MemoryLimit | ResourceLimit:
    """The pooling allocator rejects oversized memories and tables when compiling."""
    text = _one_line(error)
    if "pooling allocator" in text and "memory" in text:
        return MemoryLimit(f"module needs more memory than the sandbox allows: {text}")
    if "pooling allocator" in text:
        return ResourceLimit(f"module exceeds the sandbox's table/instance limits: {text}")
    return InvalidModule(f"module failed validation: {text}")


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:500]
