"""The guest import contracts, shared by the static audit (skills) and the runtime.

A leaf module on purpose: the audit must know exactly which imports the sandbox will satisfy
and which capability each one exercises, without importing the runtime (design.md §3).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

import wasmtime

COMPAT_MODULE: Final = "palyra:plugins/host-capabilities@0.1.0"
DATA_ABI_MODULE: Final = "palyra:host@1"

I32: Final = "i32"
I64: Final = "i64"


@dataclass(frozen=True)
class HostImport:
    """One host function a guest may import: its core signature and what it requires."""

    params: tuple[str, ...]
    results: tuple[str, ...]
    # None: always available. Otherwise a capability family that must be declared:
    # "http", "secrets", "storage_read", "storage_write" or "channels".
    capability: str | None = None


def _fn(*params: str, result: str = I32, capability: str | None = None) -> HostImport:
    return HostImport(params=params, results=(result,), capability=capability)


# Reference ABI (runtime.md §1.3): counts and opaque handles only.
COMPAT_IMPORTS: Final[dict[str, HostImport]] = {
    f"{family}-{what}": (_fn() if what == "count" else _fn(I32))
    for family in ("http", "secret", "storage", "channel")
    for what in ("count", "handle")
}

# Data ABI v1: bytes in, bytes out, real capability calls. Pointers and lengths are i32;
# negative results are error codes (see docs/abi.md).
DATA_ABI_IMPORTS: Final[dict[str, HostImport]] = {
    "input_len": _fn(),
    "input_read": _fn(I32, I32),
    "output_write": _fn(I32, I32),
    "log": _fn(I32, I32, I32),
    "tool_id": _fn(I32, I32),
    "result_len": _fn(),
    "result_read": _fn(I32, I32),
    "clock_now_ms": _fn(result=I64),
    "random_fill": _fn(I32, I32),
    "http_request": _fn(I32, I32, capability="http"),
    "secret_get": _fn(I32, I32, capability="secrets"),
    "storage_get": _fn(I32, I32, capability="storage_read"),
    "storage_list": _fn(I32, I32, capability="storage_read"),
    "storage_put": _fn(I32, I32, I32, I32, capability="storage_write"),
    "storage_delete": _fn(I32, I32, capability="storage_write"),
    "channel_send": _fn(I32, I32, I32, I32, capability="channels"),
}

HOST_MODULES: Final[dict[str, dict[str, HostImport]]] = {
    COMPAT_MODULE: COMPAT_IMPORTS,
    DATA_ABI_MODULE: DATA_ABI_IMPORTS,
}

WASI_PREVIEW1_MODULES: Final = frozenset({"wasi_snapshot_preview1", "wasi_unstable"})

# Component-model guests: interfaces a component may import, by prefix, and the capability
# family that must be declared for each (None = always available). The component runtime
# provides WASI preview 2 locked down (no preopens, environment, network or inherited stdio).
COMPONENT_HOST_PACKAGE: Final = "palyra:skill/"
COMPONENT_IMPORTS: Final[tuple[tuple[str, str | None], ...]] = (
    (COMPONENT_HOST_PACKAGE, None),
    ("wasi:io/", None),
    ("wasi:clocks/", None),
    ("wasi:random/", None),
    ("wasi:cli/", None),
    ("wasi:filesystem/", "storage_read"),
    ("wasi:http/", "http"),
)


class HostCode(enum.IntEnum):
    """The data ABI's negative return codes (docs/abi.md, "Return codes")."""

    DENIED = -1
    INVALID = -2
    NOT_FOUND = -3
    TOO_LARGE = -4
    UPSTREAM = -5
    TIMEOUT = -6
    QUOTA = -7


def apply_sandbox_features(config: wasmtime.Config) -> None:
    """The WebAssembly feature set of the sandbox, shared by the audit's validator and the
    runtime's engines so a module that passes the audit uses nothing the runtime lacks."""
    config.wasm_threads = False
    config.wasm_memory64 = False
    config.wasm_gc = False
    config.wasm_function_references = False
    config.wasm_exceptions = False
    config.wasm_multi_memory = False
    config.wasm_stack_switching = False
