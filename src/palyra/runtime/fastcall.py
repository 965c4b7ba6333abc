"""Binding the native call path (``_fastcall.c``) to the wasmtime library, if it was built.

The extension is optional: when it is missing (no compiler at install time) or
``PALYRA_PURE_CALL_PATH=1`` is set, :data:`FAST` is None and the sandbox uses the pure-ctypes
path in :mod:`palyra.runtime.ffi`. Both paths implement the same ABI and are tested alike.
"""

from __future__ import annotations

import ctypes
import os
from types import ModuleType

from wasmtime import _ffi

from palyra.runtime import ffi

_FUNCTIONS = (
    "wasmtime_store_new",
    "wasmtime_store_context",
    "wasmtime_store_delete",
    "wasmtime_store_limiter",
    "wasmtime_context_set_fuel",
    "wasmtime_context_get_fuel",
    "wasmtime_context_set_epoch_deadline",
    "wasmtime_instance_pre_instantiate",
    "wasmtime_instance_export_get",
    "wasmtime_func_call_unchecked",
    "wasmtime_memory_data",
    "wasmtime_memory_data_size",
    "wasmtime_caller_context",
    "wasmtime_context_get_data",
    "wasmtime_caller_export_get",
)
PURE_ENV = "PALYRA_PURE_CALL_PATH"

# The native host functions, by data-ABI name (addresses, filled in by _load()).
NATIVE_HOST_FUNCTIONS: dict[str, int] = {}


def _load() -> ModuleType | None:
    if os.environ.get(PURE_ENV, "").strip() not in ("", "0"):
        return None
    try:
        from palyra.runtime import _fastcall  # type: ignore[attr-defined]
    except ImportError:
        return None
    ffi.check_bindings()
    addresses = tuple(ctypes.cast(_ffi.dll[name], ctypes.c_void_p).value for name in _FUNCTIONS)
    input_len, input_read, output_write = _fastcall.init(addresses)
    NATIVE_HOST_FUNCTIONS.update(
        {"input_len": input_len, "input_read": input_read, "output_write": output_write}
    )
    module: ModuleType = _fastcall
    return module


FAST: ModuleType | None = _load()
