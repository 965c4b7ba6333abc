"""The linker: every host function of both ABIs, defined once per engine.

Host functions are engine-level (store-independent) so one linker and one ``InstancePre`` per
module serve every call. A callback finds its call through a thread-local: a call runs on one
thread from start to end and a thread runs one call at a time.

Callbacks are raw (wasmtime's "unchecked" form: arguments and result in one ``val_raw`` array),
and never let a Python exception escape — ctypes would swallow it and wasmtime would carry on
with a garbage result. An unexpected exception becomes a trap and is kept on the context so the
sandbox reports it as a host failure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import wasmtime

from palyra import abi
from palyra.runtime import ffi
from palyra.runtime.context import CallContext
from palyra.runtime.fastcall import NATIVE_HOST_FUNCTIONS

_current = threading.local()
_VAL = {"i32": wasmtime.ValType.i32(), "i64": wasmtime.ValType.i64()}


def current() -> CallContext | None:
    ctx: CallContext | None = getattr(_current, "ctx", None)
    return ctx


def set_current(ctx: CallContext | None) -> None:
    _current.ctx = ctx


def _callback(
    method: Callable[..., int], nparams: int, result_i64: bool
) -> Callable[[Any, Any, Any, int], int]:
    """A raw callback for ``method``; arities are unrolled because this is the hot path."""

    def fail(ctx: CallContext, exc: BaseException) -> int:
        ctx.host_error = exc
        return ffi.trap_pointer("palyra host function failed")

    def outside() -> int:
        return ffi.trap_pointer("palyra host function called outside a call")

    if result_i64:

        def callback_i64(_env: Any, caller: Any, values: Any, _count: int) -> int:
            ctx = getattr(_current, "ctx", None)
            if ctx is None:
                return outside()
            try:
                values[0].i64 = method(ctx, caller, *[values[i].i32 for i in range(nparams)])
            except BaseException as exc:  # never unwind through the C frames
                return fail(ctx, exc)
            return 0

        return callback_i64
    if nparams == 0:

        def callback0(_env: Any, caller: Any, values: Any, _count: int) -> int:
            ctx = getattr(_current, "ctx", None)
            if ctx is None:
                return outside()
            try:
                values[0].i32 = method(ctx, caller)
            except BaseException as exc:
                return fail(ctx, exc)
            return 0

        return callback0
    if nparams == 2:

        def callback2(_env: Any, caller: Any, values: Any, _count: int) -> int:
            ctx = getattr(_current, "ctx", None)
            if ctx is None:
                return outside()
            try:
                values[0].i32 = method(ctx, caller, values[0].i32, values[1].i32)
            except BaseException as exc:
                return fail(ctx, exc)
            return 0

        return callback2

    def callback(_env: Any, caller: Any, values: Any, _count: int) -> int:
        ctx = getattr(_current, "ctx", None)
        if ctx is None:
            return outside()
        try:
            values[0].i32 = method(ctx, caller, *[values[i].i32 for i in range(nparams)])
        except BaseException as exc:
            return fail(ctx, exc)
        return 0

    return callback


def _data_abi_methods() -> dict[str, Callable[..., int]]:
    return {
        "input_len": CallContext.input_len,
        "input_read": CallContext.input_read,
        "output_write": CallContext.output_write,
        "log": CallContext.log,
        "tool_id": CallContext.tool_id_read,
        "result_len": CallContext.result_len,
        "result_read": CallContext.result_read,
        "clock_now_ms": CallContext.clock_now_ms,
        "random_fill": CallContext.random_fill,
        "http_request": CallContext.http_request,
        "secret_get": CallContext.secret_get,
        "storage_get": CallContext.storage_get,
        "storage_list": CallContext.storage_list,
        "storage_put": CallContext.storage_put,
        "storage_delete": CallContext.storage_delete,
        "channel_send": CallContext.channel_send,
    }


def _compat_method(name: str) -> Callable[..., int]:
    family, what = name.split("-")
    if what == "count":
        return lambda ctx, _cctx: ctx.compat_count(family)
    return lambda ctx, _cctx, index: ctx.compat_handle(family, index)


class HostLinker:
    """Builds (once per engine) the linker holding every host function.

    With ``native`` the pure-I/O functions (input_len, input_read, output_write) are the C
    implementations from ``_fastcall.c``; such a linker only works with the native call path,
    which gives every store the C call state they read.
    """

    def __init__(self, native: bool = False) -> None:
        self.native = native
        self._lock = threading.Lock()
        self._linkers: dict[int, tuple[wasmtime.Linker, list[Any]]] = {}

    def __call__(self, engine: wasmtime.Engine) -> wasmtime.Linker:
        with self._lock:
            entry = self._linkers.get(id(engine))
            if entry is None:
                entry = self._build(engine)
                self._linkers[id(engine)] = entry
            return entry[0]

    def _build(self, engine: wasmtime.Engine) -> tuple[wasmtime.Linker, list[Any]]:
        linker = wasmtime.Linker(engine)
        thunks: list[Any] = []
        methods = _data_abi_methods()
        for module, specs in abi.HOST_MODULES.items():
            for name, spec in specs.items():
                method = methods[name] if module == abi.DATA_ABI_MODULE else _compat_method(name)
                ty = wasmtime.FuncType(
                    [_VAL[p] for p in spec.params], [_VAL[r] for r in spec.results]
                )
                native = NATIVE_HOST_FUNCTIONS.get(name) if self.native else None
                if native is not None and module == abi.DATA_ABI_MODULE:
                    thunks.append(ffi.define_native_host_function(linker, module, name, ty, native))
                    continue
                thunks.append(
                    ffi.define_host_function(
                        linker,
                        module,
                        name,
                        ty,
                        _callback(method, len(spec.params), spec.results == ("i64",)),
                    )
                )
        # The thunks must outlive the linker: keep them together.
        return linker, thunks
