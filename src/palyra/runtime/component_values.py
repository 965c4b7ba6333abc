"""Component values: records, host errors, guest tool errors, and a fast ``list<u8>`` path.

wasmtime-py represents a ``list<u8>`` in its C API as one 32-byte value per byte and converts
it element by element in Python: a 1 MiB body costs about a second. The fast path writes and
reads the C array with two strided memory copies instead. It replaces two methods of
wasmtime-py's ``ListType`` for byte lists only, which is tied to the exact wasmtime version
pinned in pyproject.toml; :func:`install_bytes_fast_path` checks the layout it relies on and
leaves wasmtime-py untouched if anything differs.
"""

from __future__ import annotations

import ctypes
import json
import threading
from typing import Any

from wasmtime import _ffi as ffi
from wasmtime.component import Record
from wasmtime.component import _types as component_types

from palyra.abi import HostCode
from palyra.runtime import errors

_VAL_SIZE = 32  # sizeof(wasmtime_component_val_t)
_VAL_OFFSET = 8  # offsetof(wasmtime_component_val_t, of)
_install_lock = threading.Lock()
_state = {"installed": False}

# Host-error codes of the WIT ``error-code`` enum, by data-ABI code.
_ERROR_CODES = {int(code): code.name.lower().replace("_", "-") for code in HostCode}
_DEFAULT_MESSAGES = {
    HostCode.DENIED: "capability not granted",
    HostCode.INVALID: "invalid request",
    HostCode.NOT_FOUND: "not found",
    HostCode.TOO_LARGE: "too large",
    HostCode.UPSTREAM: "upstream failure",
    HostCode.TIMEOUT: "timed out",
    HostCode.QUOTA: "quota exceeded",
}


def make_record(fields: dict[str, Any]) -> Record:
    """A component record; wasmtime-py reads fields by their WIT (kebab-case) names."""
    record = Record()
    for name, value in fields.items():
        setattr(record, name, value)
    return record


def host_error(code: int, message: str = "") -> Record:
    """The WIT ``host-error`` for a data-ABI return code."""
    name = _ERROR_CODES.get(code, "invalid")
    default = _DEFAULT_MESSAGES.get(HostCode(code), "failed") if code in _ERROR_CODES else "failed"
    text = f"{default}: {message}" if message else default
    return make_record({"code": name, "message": text[:500]})


# Guest-reported kinds that map onto the runtime's own kinds; others are tool errors.
_GUEST_KINDS: dict[str, type[errors.RuntimeFailure]] = {
    "invalid-input": errors.InvalidInput,
    "capability-denied": errors.CapabilityDenied,
    "timed-out": errors.TimedOut,
    "memory-limit": errors.MemoryLimit,
}


def tool_failure(value: Any, redact: Any, details: dict[str, Any]) -> errors.RuntimeFailure:
    """The runtime error for a guest's ``tool-error`` record. The kind is the guest's claim
    about its own call (``details.reported_by = "guest"``); it can only describe the guest's
    own failure, never widen anything."""
    kind = str(getattr(value, "kind", "tool-error"))
    message = redact(str(getattr(value, "message", "")))[:1000] or "tool failed"
    extra: dict[str, Any] = {"reported_by": "guest", "guest_kind": kind.replace("-", "_")}
    raw_details = getattr(value, "details", None)
    if isinstance(raw_details, str) and len(raw_details) <= 64 * 1024:
        try:
            extra["guest_details"] = json.loads(redact(raw_details))
        except (ValueError, RecursionError):
            extra["guest_details"] = redact(raw_details)[:1000]
    cls = _GUEST_KINDS.get(kind)
    if cls is None:
        return errors.ToolError(message, exit_code=1, details={**details, **extra})
    return cls(message, details={**details, **extra})


# ---- list<u8> fast path --------------------------------------------------------------------


def _bytes_to_c(self: Any, store: Any, val: Any, ptr: Any) -> None:
    if not self._is_bytes():
        _ORIGINAL_TO_C(self, store, val, ptr)
        return
    if not isinstance(val, (bytes, bytearray)):
        raise TypeError("expected bytes value")
    count = len(val)
    raw = ffi.wasmtime_component_vallist_t()
    ffi.wasmtime_component_vallist_new_uninit(raw, count)
    if count:
        address = ctypes.cast(raw.data, ctypes.c_void_p).value
        assert address is not None
        view = memoryview((ctypes.c_ubyte * (count * _VAL_SIZE)).from_address(address)).cast("B")
        view[0::_VAL_SIZE] = bytes([ffi.WASMTIME_COMPONENT_U8.value]) * count
        view[_VAL_OFFSET::_VAL_SIZE] = bytes(val)
    ptr.contents.kind = ffi.WASMTIME_COMPONENT_LIST
    ptr.contents.of.list = raw


def _bytes_from_c(self: Any, c: Any) -> Any:
    if not self._is_bytes():
        return _ORIGINAL_FROM_C(self, c)
    assert c.kind == ffi.WASMTIME_COMPONENT_LIST.value
    try:
        count = c.of.list.size
        if not count:
            return b""
        address = ctypes.cast(c.of.list.data, ctypes.c_void_p).value
        assert address is not None
        raw = ctypes.string_at(address, count * _VAL_SIZE)
        return raw[_VAL_OFFSET::_VAL_SIZE]
    finally:
        ffi.wasmtime_component_vallist_delete(ctypes.byref(c.of.list))


_ORIGINAL_TO_C = component_types.ListType.convert_to_c
_ORIGINAL_FROM_C = component_types.ListType.convert_from_c


def _layout_matches() -> bool:
    from wasmtime import _bindings as bindings

    val = bindings.wasmtime_component_val_t
    return (
        ctypes.sizeof(val) == _VAL_SIZE
        and val.of.offset == _VAL_OFFSET
        and [field[0] for field in bindings.wasmtime_component_vallist_t._fields_]
        == ["size", "data"]
    )


def install_bytes_fast_path() -> bool:
    """Use the fast ``list<u8>`` conversion (idempotent); False if the layout differs."""
    with _install_lock:
        if not _state["installed"] and _layout_matches():
            component_types.ListType.convert_to_c = _bytes_to_c  # type: ignore[method-assign]
            component_types.ListType.convert_from_c = _bytes_from_c  # type: ignore[method-assign]
            _state["installed"] = True
        return _state["installed"]
