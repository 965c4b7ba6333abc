"""The lean call path: direct calls into wasmtime's C API.

Why not the public wasmtime-py API on the hot path: ``Func.__call__``, ``Instance.exports`` and
host-function trampolines wrap every value and extern in Python objects (~8–27 µs per call,
~36 µs per fresh instance, wasmtime-py-notes.md §d, §8), and its trampoline keeps the last
host exception in a process-global, which is unsafe with several calls on several threads.

This module declares its own ctypes prototypes for the handful of C functions a call needs,
taking and returning plain integers for pointers (no per-call pointer objects), on the shared
library that wasmtime-py loads. It reaches into ``wasmtime._ffi`` and ``wasmtime._bindings``,
which are private: ``pyproject.toml`` pins ``wasmtime==50.0.1`` exactly and
:func:`check_bindings` refuses to run on any other version. Everything here works on raw
pointers; the safe surface is :mod:`palyra.runtime.sandbox`.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from ctypes import POINTER, c_bool, c_char_p, c_int64, c_size_t, c_uint64, c_void_p
from typing import Any

import wasmtime
from wasmtime import _bindings as B
from wasmtime import _ffi

from palyra.runtime.engine import wasmtime_version

PINNED_WASMTIME = "50.0.1"

EXTERN_FUNC = 0
EXTERN_MEMORY = 3

ValRaw = B.wasmtime_val_raw_t
Instance = B.wasmtime_instance_t
Extern = B.wasmtime_extern_t
Memory = B.wasmtime_memory_t
Func = B.wasmtime_func_t

# Host callbacks receive the caller as a plain integer (no pointer object per call).
HostCallback = ctypes.CFUNCTYPE(c_size_t, c_void_p, c_void_p, POINTER(ValRaw), c_size_t)
_FINALIZER = ctypes.CFUNCTYPE(None, c_void_p)
_NO_FINALIZER = _FINALIZER()  # a NULL function pointer: nothing to finalize


def _proto(name: str, restype: Any, *argtypes: Any) -> Any:
    """A private function object for ``name`` (``CDLL[name]`` is not shared with wasmtime-py)."""
    function = _ffi.dll[name]
    function.restype = restype
    function.argtypes = argtypes
    return function


_store_new = _proto("wasmtime_store_new", c_void_p, c_void_p, c_void_p, _FINALIZER)
_store_context = _proto("wasmtime_store_context", c_void_p, c_void_p)
_store_delete = _proto("wasmtime_store_delete", None, c_void_p)
_store_limiter = _proto(
    "wasmtime_store_limiter", None, c_void_p, c_int64, c_int64, c_int64, c_int64, c_int64
)
_set_fuel = _proto("wasmtime_context_set_fuel", c_void_p, c_void_p, c_uint64)
_get_fuel = _proto("wasmtime_context_get_fuel", c_void_p, c_void_p, POINTER(c_uint64))
_set_epoch_deadline = _proto("wasmtime_context_set_epoch_deadline", None, c_void_p, c_uint64)
_instantiate = _proto(
    "wasmtime_instance_pre_instantiate", c_void_p, c_void_p, c_void_p, POINTER(Instance),
    POINTER(c_void_p),
)  # fmt: skip
_export_get = _proto(
    "wasmtime_instance_export_get", c_bool, c_void_p, POINTER(Instance), c_char_p, c_size_t,
    POINTER(Extern),
)  # fmt: skip
_call_unchecked = _proto(
    "wasmtime_func_call_unchecked", c_void_p, c_void_p, POINTER(Func), POINTER(ValRaw), c_size_t,
    POINTER(c_void_p),
)  # fmt: skip
_memory_data = _proto("wasmtime_memory_data", c_void_p, c_void_p, POINTER(Memory))
_memory_size = _proto("wasmtime_memory_data_size", c_size_t, c_void_p, POINTER(Memory))
_caller_context = _proto("wasmtime_caller_context", c_void_p, c_void_p)
_caller_export_get = _proto(
    "wasmtime_caller_export_get", c_bool, c_void_p, c_char_p, c_size_t, POINTER(Extern)
)
_trap_new = _proto("wasmtime_trap_new", c_void_p, c_char_p, c_size_t)
_define_unchecked = _proto(
    "wasmtime_linker_define_func_unchecked", c_void_p, c_void_p, c_char_p, c_size_t, c_char_p,
    c_size_t, c_void_p, HostCallback, c_void_p, _FINALIZER,
)  # fmt: skip


def check_bindings() -> None:
    if wasmtime_version() != PINNED_WASMTIME:
        raise RuntimeError(
            f"palyra's call path is written for wasmtime {PINNED_WASMTIME}, "
            f"found {wasmtime_version()}"
        )


def _address(handle: Any) -> int:
    return ctypes.cast(handle, c_void_p).value or 0


class CallFailed(Exception):
    """Carries the public wasmtime exception object (Trap or WasmtimeError) for classification."""

    def __init__(self, error: wasmtime.Trap | wasmtime.WasmtimeError) -> None:
        super().__init__(str(error))
        self.error = error


def _error(pointer: int) -> wasmtime.WasmtimeError:
    return wasmtime.WasmtimeError._from_ptr(ctypes.cast(pointer, POINTER(B.wasmtime_error_t)))


def _raise(error: int | None, trap: int | None) -> None:
    if error:
        raise CallFailed(_error(error))
    if trap:
        raise CallFailed(trap_from_pointer(trap))


# ---- stores -------------------------------------------------------------------------------


def address(handle: Any) -> int:
    """The integer address behind a wasmtime-py object (engine, InstancePre, ...)."""
    return _address(handle.ptr())


def store_new(engine_address: int) -> int:
    return int(_store_new(engine_address, None, _NO_FINALIZER))


def store_context(store: int) -> int:
    return int(_store_context(store))


def store_delete(store: int) -> None:
    _store_delete(store)


def set_limits(
    store: int, memory: int, table_elements: int, instances: int, tables: int, memories: int
) -> None:
    _store_limiter(store, memory, table_elements, instances, tables, memories)


def set_fuel(context: int, fuel: int) -> None:
    error = _set_fuel(context, fuel)
    if error:
        raise _error(error)


def get_fuel(context: int) -> int:
    value = c_uint64()
    error = _get_fuel(context, ctypes.byref(value))
    if error:
        raise _error(error)
    return value.value


def set_epoch_deadline(context: int, ticks: int) -> None:
    _set_epoch_deadline(context, ticks)


# ---- instances, exports, calls -------------------------------------------------------------


class _Scratch(threading.local):
    """Per-thread buffers reused by every call on that thread (a thread runs one call)."""

    def __init__(self) -> None:
        self.trap = c_void_p()
        self.values = (ValRaw * 1)()


_scratch = _Scratch()


def instantiate(pre_address: int, context: int) -> Instance:
    instance = Instance()
    trap = _scratch.trap
    trap.value = None
    error = _instantiate(pre_address, context, ctypes.byref(instance), ctypes.byref(trap))
    _raise(error, trap.value)
    return instance


def export(context: int, instance: Instance, name: bytes, kind: int) -> Any | None:
    """The export's extern union member (func or memory struct), or None if absent/other kind."""
    item = Extern()
    if not _export_get(context, ctypes.byref(instance), name, len(name), ctypes.byref(item)):
        return None
    if int(item.kind) != kind:
        return None
    return item.of.func if kind == EXTERN_FUNC else item.of.memory


def call_i32(context: int, func: Any) -> int:
    """Call a ``() -> i32`` function (its type was checked when the module was loaded)."""
    values = _scratch.values
    trap = _scratch.trap
    trap.value = None
    error = _call_unchecked(context, ctypes.byref(func), values, 1, ctypes.byref(trap))
    _raise(error, trap.value)
    return int(values[0].i32)


# ---- memory -------------------------------------------------------------------------------


def memory_span(context: int, memory: Any) -> tuple[int, int]:
    """(base address, size in bytes) of a linear memory right now (it may move on growth)."""
    ref = ctypes.byref(memory)
    return _memory_data(context, ref) or 0, int(_memory_size(context, ref))


def caller_context(caller: int) -> int:
    return int(_caller_context(caller))


def caller_memory(caller: int) -> Any | None:
    """The calling instance's exported ``memory``, or None."""
    item = Extern()
    if not _caller_export_get(caller, b"memory", 6, ctypes.byref(item)):
        return None
    return item.of.memory if int(item.kind) == EXTERN_MEMORY else None


def error_from_pointer(pointer: int) -> wasmtime.WasmtimeError:
    return _error(pointer)


def trap_from_pointer(pointer: int) -> wasmtime.Trap:
    return wasmtime.Trap._from_ptr(ctypes.cast(pointer, POINTER(B.wasm_trap_t)))


# ---- host functions ----------------------------------------------------------------------


def trap_pointer(message: str) -> int:
    """A new trap object, as the integer a host callback returns to raise it in the guest."""
    raw = message.encode("utf-8", "replace")
    return int(_trap_new(raw, len(raw)) or 0)


def define_native_host_function(
    linker: wasmtime.Linker, module: str, name: str, ty: wasmtime.FuncType, address: int
) -> Any:
    """Define ``module.name`` as a native (C) function at ``address``."""
    return define_host_function(linker, module, name, ty, HostCallback(address))


def define_host_function(
    linker: wasmtime.Linker,
    module: str,
    name: str,
    ty: wasmtime.FuncType,
    callback: Callable[[Any, int, Any, int], int] | Any,
) -> Any:
    """Define ``module.name`` with a raw (unchecked) callback; returns the ctypes thunk, which
    the caller must keep alive as long as the linker."""
    thunk = callback if isinstance(callback, HostCallback) else HostCallback(callback)
    module_raw = module.encode()
    name_raw = name.encode()
    error = _define_unchecked(
        _address(linker.ptr()),
        module_raw,
        len(module_raw),
        name_raw,
        len(name_raw),
        _address(ty.ptr()),
        thunk,
        None,
        _NO_FINALIZER,
    )
    if error:
        raise _error(error)
    return thunk
