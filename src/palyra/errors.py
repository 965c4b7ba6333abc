"""The root of every typed error Palyra raises.

Every face (CLI ``--json``, HTTP API, MCP) reports ``kind`` and ``message`` unchanged, so
``kind`` strings are a public contract: snake_case, stable, never renamed.
"""

from __future__ import annotations

from typing import Any, ClassVar


class PalyraError(Exception):
    """Base class: a stable ``kind``, a one-line ``message`` and optional JSON ``details``."""

    kind: ClassVar[str] = "internal"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        # One line, always: messages end up in terminals, logs and JSON envelopes.
        self.message = " ".join(message.split()) if "\n" in message else message
        self.details: dict[str, Any] = details or {}
        super().__init__(self.message)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": self.kind, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class UsageError(PalyraError):
    """The caller asked for something malformed (bad flag value, conflicting options)."""

    kind = "usage"


class IoFailure(PalyraError):
    """A file could not be read or written."""

    kind = "io"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"I/O failed: {message}", details=details)


class NotFoundError(PalyraError):
    """The named thing (publisher, key, skill, …) does not exist."""

    kind = "not_found"
