"""The lean call path: direct calls into wasmtime's C API through wasmtime-py's ctypes bindings.

Why not the public wasmtime-py API on the hot path: ``Func.__call__``, ``Instance.exports`` and
host-function trampolines wrap every value and extern in Python objects (~8–27 µs per call,
~36 µs per fresh instance, wasmtime-py-notes.md §d, §8), and its trampoline keeps the last
host exception in a process-global, which is unsafe with several calls on several threads.
This module uses the same C functions the public API uses, through ``wasmtime._bindings``,
which is private: ``pyproject.toml`` pins ``wasmtime==50.0.1`` exactly and
:func:`check_bindings` refuses to start on any other version.

Everything here works on raw pointers; the safe surface is :mod:`palyra.runtime.sandbox`.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime import _bindings as B

from palyra.runtime.engine import wasmtime_version

PINNED_WASMTIME = "50.0.1"

EXTERN_FUNC = 0
EXTERN_MEMORY = 3

ValRaw = B.wasmtime_val_raw_t
ValRawArray1 = ValRaw * 1
HostCallback = B.wasmtime_func_unchecked_callback_t
_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def check_bindings() -> None:
    if wasmtime_version() != PINNED_WASMTIME:
        raise RuntimeError(
            f"palyra's call path is written for wasmtime {PINNED_WASMTIME}, "
            f"found {wasmtime_version()}"
        )


def engine_ptr(engine: wasmtime.Engine) -> Any:
    return engine.ptr()


# ---- stores -------------------------------------------------------------------------------


def store_new(engine: wasmtime.Engine) -> Any:
    return B.wasmtime_store_new(engine.ptr(), None, _NO_FINALIZER)


_NO_FINALIZER = _FINALIZER()  # a NULL function pointer: nothing to finalize


def store_context(store: Any) -> Any:
    return B.wasmtime_store_context(store)


def store_delete(store: Any) -> None:
    B.wasmtime_store_delete(store)


def set_limits(
    store: Any, memory: int, table_elements: int, instances: int, tables: int, memories: int
) -> None:
    B.wasmtime_store_limiter(store, memory, table_elements, instances, tables, memories)


def set_fuel(context: Any, fuel: int) -> None:
    error = B.wasmtime_context_set_fuel(context, fuel)
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)


def get_fuel(context: Any) -> int:
    value = ctypes.c_uint64()
    error = B.wasmtime_context_get_fuel(context, ctypes.byref(value))
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)
    return value.value


def set_epoch_deadline(context: Any, ticks: int) -> None:
    B.wasmtime_context_set_epoch_deadline(context, ticks)


# ---- instances, exports, calls -------------------------------------------------------------


class CallFailed(Exception):
    """Carries the public wasmtime exception object (Trap or WasmtimeError) for classification."""

    def __init__(self, error: wasmtime.Trap | wasmtime.WasmtimeError) -> None:
        super().__init__(str(error))
        self.error = error


def _raise(error: Any, trap: Any) -> None:
    if error:
        raise CallFailed(wasmtime.WasmtimeError._from_ptr(error))
    if trap:
        raise CallFailed(wasmtime.Trap._from_ptr(trap))


def instantiate(pre: wasmtime.InstancePre, context: Any) -> Any:
    instance = B.wasmtime_instance_t()
    trap = ctypes.POINTER(B.wasm_trap_t)()
    error = B.wasmtime_instance_pre_instantiate(
        pre.ptr(), context, ctypes.byref(instance), ctypes.byref(trap)
    )
    _raise(error, trap)
    return instance


def export(context: Any, instance: Any, name: bytes, kind: int) -> Any | None:
    """The export's extern union member (func or memory struct), or None if absent/other kind."""
    item = B.wasmtime_extern_t()
    if not B.wasmtime_instance_export_get(
        context, ctypes.byref(instance), name, len(name), ctypes.byref(item)
    ):
        return None
    if int(item.kind) != kind:
        return None
    return item.of.func if kind == EXTERN_FUNC else item.of.memory


def call_i32(context: Any, func: Any) -> int:
    """Call a ``() -> i32`` function (its type was checked when the module was loaded)."""
    values = ValRawArray1()
    trap = ctypes.POINTER(B.wasm_trap_t)()
    error = B.wasmtime_func_call_unchecked(
        context, ctypes.byref(func), values, 1, ctypes.byref(trap)
    )
    _raise(error, trap)
    return int(values[0].i32)


# ---- memory -------------------------------------------------------------------------------


def memory_span(context: Any, memory: Any) -> tuple[int, int]:
    """(base address, size in bytes) of a linear memory right now (it may move on growth)."""
    base = B.wasmtime_memory_data(context, ctypes.byref(memory))
    size = B.wasmtime_memory_data_size(context, ctypes.byref(memory))
    return ctypes.cast(base, ctypes.c_void_p).value or 0, int(size)


def caller_context(caller: Any) -> Any:
    return B.wasmtime_caller_context(caller)


# ---- host functions ----------------------------------------------------------------------


def trap_pointer(message: str) -> int:
    """A new trap object, as the integer a host callback returns to raise it in the guest."""
    raw = message.encode("utf-8", "replace")
    trap = B.wasmtime_trap_new(raw, len(raw))
    return ctypes.cast(trap, ctypes.c_void_p).value or 0


def define_host_function(
    linker: wasmtime.Linker,
    module: str,
    name: str,
    ty: wasmtime.FuncType,
    callback: Callable[[Any, Any, Any, int], int],
) -> Any:
    """Define ``module.name`` with a raw (unchecked) callback; returns the ctypes thunk, which
    the caller must keep alive as long as the linker."""
    thunk = HostCallback(callback)
    module_raw = module.encode()
    name_raw = name.encode()
    error = B.wasmtime_linker_define_func_unchecked(
        linker.ptr(),
        module_raw,
        len(module_raw),
        name_raw,
        len(name_raw),
        ty.ptr(),
        thunk,
        None,
        _NO_FINALIZER,
    )
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)
    return thunk
