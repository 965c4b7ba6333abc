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

# Component ABI (docs/abi.md, "Component ABI"; WIT in sdk/python/palyra_sdk/wit/).
COMPONENT_PACKAGE: Final = "palyra:skill"
COMPONENT_VERSION: Final = "1.0.0"
COMPONENT_HOST_INTERFACE: Final = f"{COMPONENT_PACKAGE}/host@{COMPONENT_VERSION}"
COMPONENT_TYPES_INTERFACE: Final = f"{COMPONENT_PACKAGE}/types@{COMPONENT_VERSION}"
COMPONENT_CALL_EXPORT: Final = "call"
COMPONENT_DESCRIBE_EXPORT: Final = "describe"
# Host functions of the component ABI and the capability family each needs (None: always).
COMPONENT_HOST_FUNCTIONS: Final[dict[str, str | None]] = {
    "log": None,
    "info": None,
    "http-fetch": "http",
    "secret-get": "secrets",
    "storage-get": "storage_read",
    "storage-list": "storage_read",
    "storage-put": "storage_write",
    "storage-delete": "storage_write",
    "channel-send": "channels",
}


class ImportClass(enum.StrEnum):
    """How the sandbox treats an interface a component imports."""

    PROVIDED = "provided"  # linked to a working implementation
    INERT = "inert"  # linked, but nothing in it can reach a resource (see below)
    REFUSED = "refused"  # not linked: the component cannot be instantiated


# WASI preview 2 is linked locked down: no environment, arguments or stdin, stdout/stderr
# captured into the call's log. wasi:filesystem and wasi:sockets are *inert*: their handles
# (descriptors, sockets) can only come from preopened directories and socket creation, and the
# sandbox preopens nothing and grants no network, so no function in them can touch a file or
# the network. componentize-py's libc imports both unconditionally, so refusing them would
# refuse every Python skill. wasi:http is refused: egress goes through the host's firewall.
COMPONENT_IMPORT_RULES: Final[tuple[tuple[str, ImportClass], ...]] = (
    (f"{COMPONENT_PACKAGE}/", ImportClass.PROVIDED),
    ("wasi:io/", ImportClass.PROVIDED),
    ("wasi:clocks/", ImportClass.PROVIDED),
    ("wasi:random/", ImportClass.PROVIDED),
    ("wasi:cli/", ImportClass.PROVIDED),
    ("wasi:filesystem/", ImportClass.INERT),
    ("wasi:sockets/", ImportClass.INERT),
)
WASI_VERSION_PREFIX: Final = "0.2."


def classify_component_import(name: str, kind: str = "instance") -> tuple[ImportClass, str]:
    """The class of one top-level component import and why. Interfaces are instance imports
    named ``ns:pkg/iface@version``; a type import only names a type (from a ``use`` in the
    world) and carries no authority; any other kind is not provided."""
    if kind == "type":
        return ImportClass.PROVIDED, f"{name} is a type"
    if kind != "instance":
        return ImportClass.REFUSED, f"{name} is a top-level {kind} import; only interfaces are"
    base, _, version = name.partition("@")
    for prefix, klass in COMPONENT_IMPORT_RULES:
        if not base.startswith(prefix):
            continue
        if prefix.startswith(COMPONENT_PACKAGE):
            if base not in (
                COMPONENT_HOST_INTERFACE.partition("@")[0],
                COMPONENT_TYPES_INTERFACE.partition("@")[0],
            ):
                return ImportClass.REFUSED, f"{name} is not an interface of {COMPONENT_PACKAGE}"
            if version.split(".")[0] != COMPONENT_VERSION.split(".")[0]:
                return ImportClass.REFUSED, f"{name}: the sandbox provides {COMPONENT_VERSION}"
            return klass, f"{name} is the Palyra host ABI"
        if not version.startswith(WASI_VERSION_PREFIX):
            return ImportClass.REFUSED, f"{name}: the sandbox provides WASI 0.2 only"
        if klass is ImportClass.INERT:
            return klass, (
                f"{name} is linked inert: no preopened directories and no network, so it "
                "cannot reach any file or socket"
            )
        return klass, f"{name} is provided locked down"
    if base.startswith("wasi:http/"):
        return ImportClass.REFUSED, (
            f"{name} is not provided: HTTP goes through the host's egress firewall "
            "(palyra:skill/host http-fetch)"
        )
    return ImportClass.REFUSED, f"{name} is not an interface the sandbox provides"


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
