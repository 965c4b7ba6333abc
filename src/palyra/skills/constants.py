"""Format constants shared with the reference implementation (skills-format.md §0).

Changing any value marked "wire" breaks compatibility with artifacts built elsewhere.
"""

from __future__ import annotations

from typing import Final

MANIFEST_ENTRY: Final = "skill.toml"
SBOM_ENTRY: Final = "sbom.cdx.json"
PROVENANCE_ENTRY: Final = "provenance.json"
SIGNATURE_ENTRY: Final = "signature.json"
FIXED_ENTRIES: Final = frozenset({MANIFEST_ENTRY, SBOM_ENTRY, PROVENANCE_ENTRY, SIGNATURE_ENTRY})
MODULES_PREFIX: Final = "modules/"
ASSETS_PREFIX: Final = "assets/"
ARTIFACT_EXTENSION: Final = ".palyra-skill"

VERIFIED_EVENT_KIND: Final = "skill.artifact.verified"
CURRENT_MANIFEST_VERSION: Final = 2
LEGACY_MANIFEST_VERSION: Final = 1
SIGNATURE_ALGORITHM: Final = "ed25519-sha256"  # wire
PAYLOAD_DOMAIN: Final = b"palyra.skill.payload.v1"  # wire
KEY_ID_PREFIX: Final = "ed25519:"  # wire

MAX_ARTIFACT_BYTES: Final = 64 * 1024 * 1024
MAX_ENTRY_BYTES: Final = 16 * 1024 * 1024
# Format extension: a module entry that is a WebAssembly *component* may be larger, because a
# componentize-py guest (CPython inside) is ~18 MB. Core modules keep the reference limit, so
# every artifact the reference can produce or run is unaffected (docs/artifact-format.md).
MAX_COMPONENT_ENTRY_BYTES: Final = 32 * 1024 * 1024
COMPONENT_MAGIC: Final = b"\x00asm\x0d\x00\x01\x00"
MAX_ENTRIES: Final = 256

# Stricter than the reference: bounds for documents that are parsed, not just hashed.
MAX_MANIFEST_BYTES: Final = 1024 * 1024
MAX_SIGNATURE_BYTES: Final = 64 * 1024
MAX_METADATA_JSON_BYTES: Final = 4 * 1024 * 1024  # sbom.cdx.json, provenance.json
MAX_JSON_DEPTH: Final = 64
# An entry that inflates more than this many times its compressed size (and is large enough
# to matter) is treated as a decompression bomb. Real WebAssembly compresses about 3:1.
MAX_COMPRESSION_RATIO: Final = 100
COMPRESSION_RATIO_FLOOR_BYTES: Final = 1024 * 1024

DEFAULT_AUDIT_MAX_MODULE_BYTES: Final = 8 * 1024 * 1024
DEFAULT_AUDIT_MAX_COMPONENT_BYTES: Final = MAX_COMPONENT_ENTRY_BYTES
DEFAULT_AUDIT_MAX_EXPORTED_FUNCTIONS: Final = 128
DEFAULT_WALL_CLOCK_TIMEOUT_MS: Final = 30_000
DEFAULT_FUEL_BUDGET: Final = 10_000_000
DEFAULT_MAX_MEMORY_BYTES: Final = 64 * 1024 * 1024
MIN_MAX_MEMORY_BYTES: Final = 65_536
DEFAULT_CONFIG_SCHEMA_VERSION: Final = 1

U32_MAX: Final = 0xFFFF_FFFF
I64_MAX: Final = 0x7FFF_FFFF_FFFF_FFFF

PLUGIN_CONTRACT_KINDS: Final = (
    "memory_provider",
    "context_engine",
    "routing_strategy",
    "run_lifecycle_hook",
    "compaction_provider",
    "diagnostics_provider",
    "policy_signal_provider",
    "channel_binding_provider",
    "delivery_adapter",
    "scheduler_task_provider",
    "model_auth_provider",
    "connector_adapter",
)
CONFIG_PROPERTY_TYPES: Final = ("string", "integer", "number", "boolean", "string_list")
SECRET_LIKE_CONFIG_MARKERS: Final = ("secret", "token", "password", "api_key", "client_key")


def entry_size_limit(name: str) -> int:
    """The most bytes an entry may declare: module entries may be components (checked after
    reading by :func:`oversized_entry`)."""
    if name.startswith(MODULES_PREFIX) and name.endswith(".wasm"):
        return MAX_COMPONENT_ENTRY_BYTES
    return MAX_ENTRY_BYTES


def oversized_entry(name: str, data: bytes) -> bool:
    """True when an entry is over the reference limit without being a component module."""
    if len(data) <= MAX_ENTRY_BYTES:
        return False
    return len(data) > entry_size_limit(name) or not data.startswith(COMPONENT_MAGIC)
