"""Typed failures of a sandboxed call; ``kind`` strings are stable (docs/abi.md)."""

from __future__ import annotations

from typing import Any

from palyra.errors import PalyraError


class RuntimeFailure(PalyraError):
    """Base of every error a sandboxed call can end with."""

    kind = "runtime_failure"


class TimedOut(RuntimeFailure):
    kind = "timed_out"


class FuelExhausted(RuntimeFailure):
    kind = "fuel_exhausted"


class MemoryLimit(RuntimeFailure):
    kind = "memory_limit"


class ResourceLimit(RuntimeFailure):
    kind = "resource_limit"


class InvalidModule(RuntimeFailure):
    kind = "invalid_module"


class MissingExport(RuntimeFailure):
    kind = "missing_export"


class LinkError(RuntimeFailure):
    kind = "link_error"


class GuestTrap(RuntimeFailure):
    """The guest trapped; ``details`` carries the trap code and up to 16 frames."""

    kind = "guest_trap"


class CapabilityDenied(RuntimeFailure):
    kind = "capability_denied"


class InvalidInput(RuntimeFailure):
    kind = "invalid_input"


class InvalidOutput(RuntimeFailure):
    kind = "invalid_output"


class ToolError(RuntimeFailure):
    """The tool's export returned non-zero; its output (if any) is the message."""

    kind = "tool_error"

    def __init__(self, message: str, *, exit_code: int, details: dict[str, Any] | None = None):
        super().__init__(message, details={"exit_code": exit_code, **(details or {})})
        self.exit_code = exit_code
