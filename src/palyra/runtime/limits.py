"""Per-call limits, and how manifest quotas and operator policy combine into them."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

from palyra.skills.manifest import Quotas

KIB = 1024
MIB = 1024 * 1024


@dataclass(frozen=True)
class RuntimeLimits:
    """Everything a single call may consume. Defaults are the operator policy's defaults."""

    # The operator's ceiling; a skill's manifest declares its own budget (default 10 M), and
    # the smaller wins. High enough for a Python component, whose calls start an interpreter
    # in a fresh store (1–20 M per call), and still a fraction of a second of CPU.
    fuel: int = 200_000_000
    memory_bytes: int = 64 * MIB
    table_elements: int = 100_000
    instances: int = 4
    tables: int = 4
    memories: int = 1
    # Components are made of many core instances (a componentize-py guest has about 15, with
    # several tables and memories); these bound a component's store instead of the above.
    component_instances: int = 32
    component_tables: int = 16
    component_memories: int = 4
    timeout_ms: int = 30_000
    max_wasm_stack: int = 512 * KIB
    max_module_bytes: int = 8 * MIB
    max_component_bytes: int = 32 * MIB
    max_input_bytes: int = 1 * MIB
    max_output_bytes: int = 1 * MIB
    max_result_bytes: int = 4 * MIB
    max_log_lines: int = 100
    max_log_line_bytes: int = 4 * KIB
    max_log_bytes: int = 64 * KIB
    max_http_requests: int = 32
    max_http_request_bytes: int = 1 * MIB
    max_http_response_bytes: int = 4 * MIB
    max_storage_value_bytes: int = 1 * MIB
    max_channel_message_bytes: int = 64 * KIB
    max_channel_messages: int = 16

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"runtime limit {item.name} must be a positive integer")

    def narrowed_by(self, quotas: Quotas) -> RuntimeLimits:
        """Effective limits = min(manifest quota, policy) for fuel, memory and time."""
        return _narrowed(self, quotas)

    def with_overrides(self, **values: Any) -> RuntimeLimits:
        return dataclasses.replace(self, **{k: v for k, v in values.items() if v is not None})


@functools.lru_cache(maxsize=256)
def _narrowed(limits: RuntimeLimits, quotas: Quotas) -> RuntimeLimits:
    """Cached: both are frozen, and building (and validating) limits shows on every call."""
    return dataclasses.replace(
        limits,
        fuel=min(limits.fuel, quotas.fuel_budget),
        memory_bytes=min(limits.memory_bytes, quotas.max_memory_bytes),
        timeout_ms=min(limits.timeout_ms, quotas.wall_clock_timeout_ms),
    )
