"""Hosting component-model guests (the ``palyra:skill@1.0.0`` world; docs/abi.md).

Same contract as core modules: a fresh store and instance per call, fuel, memory/table/
instance limits and an epoch deadline covering the whole call, every capability through the
same :class:`CallContext` (grants, egress firewall, vault, storage, channels, byte caps,
redaction). WASI preview 2 is linked locked down: no environment, arguments, stdin or
preopened directories, no network; stdout/stderr go to the call's log through capped sinks.

wasmtime-py lifts and lowers component values in Python; its generic ``list<u8>`` conversion
goes element by element, so bodies and storage values take a byte fast path (see
``_bytes_fast_path``) — a 4 MiB HTTP body would otherwise cost seconds.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime import component as wc

from palyra import abi
from palyra.runtime import errors
from palyra.runtime.component_values import host_error, install_bytes_fast_path, make_record
from palyra.runtime.context import LOG_LEVELS, CallContext
from palyra.runtime.engine import TICKER, EngineConfig, get_engine
from palyra.runtime.hostfuncs import current, set_current
from palyra.runtime.limits import RuntimeLimits
from palyra.runtime.modules import DiskCodeCache
from palyra.skills.constants import COMPONENT_MAGIC
from palyra.skills.wasm_binary import WasmFormatError, parse_wasm

COMPONENT_ENGINE = EngineConfig(
    component_model=True,
    # Components instantiate a dozen core instances with several tables and memories; the
    # pooling allocator's per-module slots do not fit them, so they use on-demand allocation.
    pool_slots=0,
    memory_reservation=256 * 1024 * 1024,
)
_FRAME = re.compile(r"^\s*(\d+):\s+0x([0-9a-f]+) - (.*)$")
_MAX_FRAMES = 16


@dataclass(frozen=True)
class ComponentInfo:
    sha256: str
    imports: tuple[str, ...]


class CompiledComponent:
    """A compiled component (shared by every call; each call instantiates it afresh)."""

    def __init__(self, info: ComponentInfo, component: wc.Component) -> None:
        self.info = info
        self.component = component


def describe_component(data: bytes, max_bytes: int) -> ComponentInfo:
    """Check the bytes are a component the sandbox can link, without compiling."""
    if len(data) > max_bytes:
        raise errors.InvalidModule(
            f"component is {len(data)} bytes, over the {max_bytes}-byte limit"
        )
    if not data.startswith(COMPONENT_MAGIC):
        raise errors.InvalidModule("not a binary WebAssembly component")
    try:
        summary = parse_wasm(data, max_bytes=max_bytes)
    except WasmFormatError as exc:
        raise errors.InvalidModule(f"invalid WebAssembly component: {exc}") from None
    names = tuple(item.module for item in summary.imports)
    refused = [
        reason
        for klass, reason in (
            abi.classify_component_import(item.module, item.kind) for item in summary.imports
        )
        if klass is abi.ImportClass.REFUSED
    ]
    if refused:
        raise errors.LinkError(f"component imports what the sandbox does not provide: {refused[0]}")
    return ComponentInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        imports=names,
    )


# ---- host functions -------------------------------------------------------------------------


def _log(ctx: CallContext, level: str, message: str) -> None:
    name = level if level in LOG_LEVELS else "info"
    ctx.append_log(name, message.encode("utf-8", "surrogatepass"))


def _info(ctx: CallContext) -> Any:
    remaining = max(0, int((ctx.deadline - time.monotonic()) * 1000))
    return make_record(
        {
            "skill-id": ctx.skill_id,
            "tool-id": ctx.tool_id.decode(),
            "tool": ctx.tool_name,
            "remaining-ms": remaining,
        }
    )


def _http_fetch(ctx: CallContext, request: Any) -> Any:
    if not ctx.grants.http_hosts:
        return wc.Variant("err", host_error(ctx.deny("http"), "http egress is not granted"))
    body: bytes = request.body
    headers: dict[str, str] = {}
    size = len(body)
    for item in request.headers:
        name, value = item.name, item.value
        size += len(name) + len(value)
        if name.lower() in (known.lower() for known in headers):
            return wc.Variant("err", host_error(-2, f"header '{name[:64]}' given twice"))
        headers[name] = value
    injections: dict[str, tuple[str, str, str]] = {}
    for item in getattr(request, "secret-headers"):
        ref = item.secret
        if "/" not in ref:
            return wc.Variant("err", host_error(-2, "secret-header.secret must be 'scope/key'"))
        injections[item.name] = (ref, item.prefix, item.suffix)
    if size > ctx.limits.max_http_request_bytes:
        return wc.Variant("err", host_error(-4, "request exceeds the request size limit"))
    method, url = request.method, request.url
    response = ctx.http_exchange(method.upper(), url, headers, body, injections)
    if isinstance(response, int):
        return wc.Variant("err", host_error(response, ctx.last_egress_reason()))
    return wc.Variant(
        "ok",
        make_record(
            {
                "status": response.status,
                "headers": [make_record({"name": n, "value": v}) for n, v in response.headers],
                "body": response.body,
            }
        ),
    )


def _secret_get(ctx: CallContext, scope: str, key: str) -> Any:
    value = ctx.secret_value(scope, key)
    if isinstance(value, int):
        return host_error(value, f"secret '{scope}/{key}'"[:200])
    return value


def _storage_result(result: Any, what: str) -> Any:
    if isinstance(result, int) and not isinstance(result, bool) and result < 0:
        return host_error(result, what)
    return result


def _storage_get(ctx: CallContext, key: str) -> Any:
    def get(storage: Any) -> bytes:
        data: bytes = storage.get(key)
        return data

    result = ctx.storage_op(get)
    if isinstance(result, bytes) and len(result) > ctx.limits.max_result_bytes:
        return host_error(-4, "value exceeds the result size limit")
    return _storage_result(result, f"storage key '{key[:100]}'")


def _storage_put(ctx: CallContext, key: str, value: bytes) -> Any:
    # The size is checked by SkillStorage.put, after the grant: deny by default comes first.
    def put(storage: Any) -> None:
        storage.put(key, value)

    return _storage_result(ctx.storage_op(put), f"storage key '{key[:100]}'")


def _storage_delete(ctx: CallContext, key: str) -> Any:
    def delete(storage: Any) -> None:
        storage.delete(key)

    return _storage_result(ctx.storage_op(delete), f"storage key '{key[:100]}'")


def _storage_list(ctx: CallContext, prefix: str) -> Any:
    def listing(storage: Any) -> list[str]:
        keys: list[str] = storage.list(prefix)
        return keys

    result = ctx.storage_op(listing)
    if isinstance(result, list) and sum(len(k) + 8 for k in result) > ctx.limits.max_result_bytes:
        return host_error(-4, "listing exceeds the result size limit")
    return _storage_result(result, f"storage prefix '{prefix[:100]}'")


def _channel_send(ctx: CallContext, channel: str, message: str) -> Any:
    code = ctx.send_to_channel(channel, message)
    return None if code >= 0 else host_error(code, f"channel '{channel[:100]}'")


_HOST_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "log": _log,
    "info": _info,
    "http-fetch": _http_fetch,
    "secret-get": _secret_get,
    "storage-get": _storage_get,
    "storage-put": _storage_put,
    "storage-delete": _storage_delete,
    "storage-list": _storage_list,
    "channel-send": _channel_send,
}
assert set(_HOST_FUNCTIONS) == set(abi.COMPONENT_HOST_FUNCTIONS)


def _bind(function: Callable[..., Any]) -> Callable[..., Any]:
    """A linker callback for ``function``: finds the call through the thread-local context
    (as core host functions do) and keeps any unexpected exception on the context so the
    call fails as a host failure rather than a guest trap."""

    def callback(_store: Any, *args: Any) -> Any:
        ctx = current()
        if ctx is None:
            raise RuntimeError("palyra host function called outside a call")
        try:
            return function(ctx, *args)
        except BaseException as exc:
            ctx.host_error = exc
            raise

    return callback


def _build_linker(engine: wasmtime.Engine) -> wc.Linker:
    linker = wc.Linker(engine)
    linker.add_wasip2()
    with linker.root() as root, root.add_instance(abi.COMPONENT_HOST_INTERFACE) as host:
        for name, function in _HOST_FUNCTIONS.items():
            host.add_func(name, _bind(function))
    return linker


# ---- the runtime -----------------------------------------------------------------------------


class ComponentRuntime:
    """Compiles (once, with the MAC'd disk cache) and runs components; thread-safe."""

    def __init__(self, cache_dir: Path | None = None, max_in_memory: int = 8) -> None:
        install_bytes_fast_path()
        self.engine_config = COMPONENT_ENGINE
        self.engine = get_engine(self.engine_config)
        self.linker = _build_linker(self.engine)
        self._disk = None if cache_dir is None else DiskCodeCache(cache_dir, self.engine_config)
        self._memory: OrderedDict[str, CompiledComponent] = OrderedDict()
        self._failed: OrderedDict[str, errors.RuntimeFailure] = OrderedDict()
        self._max = max_in_memory
        self._lock = threading.Lock()
        self._compile_locks: dict[str, threading.Lock] = {}
        self.stats = {"memory_hits": 0, "disk_hits": 0, "compiles": 0, "rejected_cache_files": 0}
        if self._disk is not None:
            self._disk.stats = self.stats

    def load(self, data: bytes, max_bytes: int) -> CompiledComponent:
        if len(data) > max_bytes:
            raise errors.InvalidModule(
                f"component is {len(data)} bytes, over the {max_bytes}-byte limit"
            )
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            cached = self._memory.get(digest)
            if cached is not None:
                self._memory.move_to_end(digest)
                self.stats["memory_hits"] += 1
                return cached
            failure = self._failed.get(digest)
            compile_lock = self._compile_locks.setdefault(digest, threading.Lock())
        if failure is not None:
            raise type(failure)(failure.message, details=failure.details)
        # One compile per component even when several calls arrive at once (6 s each).
        with compile_lock:
            with self._lock:
                cached = self._memory.get(digest)
            if cached is not None:
                return cached
            try:
                compiled = self._compile(data, digest, max_bytes)
            except (errors.InvalidModule, errors.LinkError) as exc:
                with self._lock:
                    self._failed[digest] = exc
                    while len(self._failed) > 64:
                        self._failed.popitem(last=False)
                raise
            finally:
                with self._lock:
                    self._compile_locks.pop(digest, None)
        return compiled

    def _compile(self, data: bytes, digest: str, max_bytes: int) -> CompiledComponent:
        info = describe_component(data, max_bytes)
        component = None
        if self._disk is not None:
            body = self._disk.get(digest)
            if body is not None:
                try:
                    component = wc.Component.deserialize(self.engine, body)
                    self.stats["disk_hits"] += 1
                except wasmtime.WasmtimeError:
                    self._disk.reject(digest)
        if component is None:
            try:
                component = wc.Component(self.engine, data)
            except wasmtime.WasmtimeError as exc:
                raise errors.InvalidModule(
                    f"component failed validation: {_one_line(exc)}"
                ) from None
            self.stats["compiles"] += 1
            if self._disk is not None:
                self._disk.put(digest, bytes(component.serialize()))
        compiled = CompiledComponent(info, component)
        with self._lock:
            self._memory[digest] = compiled
            while len(self._memory) > self._max:
                self._memory.popitem(last=False)
        return compiled

    # ---- calls ------------------------------------------------------------------------------

    def new_store(self, ctx: CallContext, limits: RuntimeLimits) -> wasmtime.Store:
        store = wasmtime.Store(self.engine)
        wasi = wasmtime.WasiConfig()  # no argv, env, stdin or preopens
        wasi.stdout_custom = ctx.stdio_sink("info")
        wasi.stderr_custom = ctx.stdio_sink("warn")
        store.set_wasi(wasi)  # required: a component linked with WASI aborts without it
        store.set_limits(
            memory_size=min(limits.memory_bytes, self.engine_config.memory_reservation),
            table_elements=limits.table_elements,
            instances=limits.component_instances,
            tables=limits.component_tables,
            memories=limits.component_memories,
        )
        store.set_fuel(limits.fuel)
        return store

    def call(
        self,
        compiled: CompiledComponent,
        export: str,
        args: tuple[Any, ...],
        ctx: CallContext,
        limits: RuntimeLimits,
    ) -> tuple[Any, int]:
        """Instantiate and call ``export`` with ``ctx`` as the thread's call; returns (result,
        fuel used). ``ctx`` is closed afterwards."""
        if current() is not None:
            # A host service running another tool on this thread would share the thread's
            # call context and wall-clock registration with the outer call.
            raise errors.RuntimeFailure("a sandbox call cannot start inside another call")
        store = self.new_store(ctx, limits)
        with TICKER:
            store.set_epoch_deadline(TICKER.ticks_for(max(0.0, ctx.deadline - time.monotonic())))
            set_current(ctx)
            try:
                return self._instantiate_and_call(compiled, export, args, ctx, store, limits)
            finally:
                set_current(None)
                ctx.flush_stdio()
                ctx.close()
                del store

    def _instantiate_and_call(
        self,
        compiled: CompiledComponent,
        export: str,
        args: tuple[Any, ...],
        ctx: CallContext,
        store: wasmtime.Store,
        limits: RuntimeLimits,
    ) -> tuple[Any, int]:
        try:
            instance = self.linker.instantiate(store, compiled.component)
        except wasmtime.WasmtimeError as exc:
            raise _classify(exc, ctx, limits, instantiating=True) from None
        func = instance.get_func(store, export)
        if func is None:
            raise errors.MissingExport(f"component exports no function named '{export}'")
        try:
            result = func(store, *args)
        except wasmtime.WasmtimeError as exc:
            raise _classify(exc, ctx, limits, instantiating=False) from None
        return result, limits.fuel - store.get_fuel()


def _classify(
    exc: wasmtime.WasmtimeError,
    ctx: CallContext,
    limits: RuntimeLimits,
    *,
    instantiating: bool,
) -> errors.RuntimeFailure:
    if ctx.host_error is not None:
        return errors.RuntimeFailure(
            f"host function failed: {type(ctx.host_error).__name__}: "
            f"{ctx.redact_text(str(ctx.host_error))[:300]}"
        )
    text = str(exc)
    cause = text.rsplit("Caused by:", 1)[-1].strip().splitlines()
    reason = " ".join(cause[-1].split())[:300] if cause else ""
    if "all fuel consumed" in text:
        return errors.FuelExhausted(f"call used its whole fuel budget of {limits.fuel}")
    if "wasm trap: interrupt" in text:
        return errors.TimedOut(f"call exceeded its {limits.timeout_ms} ms wall-clock budget")
    if "too much data is being copied" in text:
        # wasmtime bounds the bytes a call may copy across the component boundary (about
        # 100 MB of lowered values; a list<u8> costs 32 bytes per byte in the C API).
        return errors.ResourceLimit(
            f"call copied more data between host and guest than wasmtime allows: {reason}"
        )
    if instantiating:
        if "memory" in text and ("limit" in text or "minimum size" in text):
            return errors.MemoryLimit(f"component needs more memory than allowed: {reason}")
        if "limit" in text or "count too high" in text:
            return errors.ResourceLimit(f"component exceeds instance/table limits: {reason}")
        return errors.LinkError(f"instantiation failed: {reason}")
    frames: list[dict[str, Any]] = []
    for line in text.splitlines():
        match = _FRAME.match(line)
        if match and len(frames) < _MAX_FRAMES:
            frames.append({"index": int(match[1]), "offset": int(match[2], 16), "name": match[3]})
    trap = reason.removeprefix("wasm trap: ")
    return errors.GuestTrap(f"guest trapped: {trap}", details={"trap": trap, "frames": frames})


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:500]
