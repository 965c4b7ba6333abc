"""Errors of the Palyra skill SDK.

Two families:

* :class:`HostError` and its subclasses are raised by the host helpers (``http``, ``secrets``,
  ``storage``, ``channels``) when the host refuses or fails a call. Each carries the WIT
  ``error-code`` as :attr:`HostError.code` (``"denied"``, ``"not-found"``, ...).
* :class:`ToolFailure` is what a tool raises to fail with a specific error kind. The SDK's
  dispatcher turns every other exception into a ``ToolFailure`` too, so the host always receives
  a typed ``tool-error`` and never a traceback.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Final, Literal, get_args

__all__ = [
    "HOST_ERROR_CLASSES",
    "TOOL_ERROR_KINDS",
    "CapabilityDenied",
    "HostError",
    "HostTimeout",
    "HttpStatusError",
    "InvalidRequest",
    "NotFound",
    "NotInComponent",
    "QuotaExceeded",
    "TooLarge",
    "ToolErrorKind",
    "ToolFailure",
    "UpstreamError",
    "from_bindings_error",
    "host_error_for_code",
]

#: The kinds a tool can fail with (the WIT ``error-kind`` enum, in snake_case).
ToolErrorKind = Literal[
    "invalid_input",
    "capability_denied",
    "not_found",
    "upstream",
    "timed_out",
    "memory_limit",
    "tool_error",
]
TOOL_ERROR_KINDS: Final[tuple[str, ...]] = get_args(ToolErrorKind)

MAX_MESSAGE_CHARS: Final = 1000
MAX_DETAILS_CHARS: Final = 16 * 1024


def one_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class HostError(Exception):
    """The host refused or failed a host call.

    ``code`` is the WIT ``error-code`` (kebab-case), ``message`` the host's explanation, and
    ``operation`` the SDK call that failed (``"storage.get"``), when known.
    """

    code: ClassVar[str] = "invalid"
    #: The tool-error kind a tool fails with when it lets this error escape.
    tool_kind: ClassVar[ToolErrorKind] = "tool_error"
    default_message: ClassVar[str] = "the host rejected the call"

    def __init__(self, message: str = "", *, operation: str = "") -> None:
        self.message = one_line(message) or self.default_message
        self.operation = operation
        super().__init__(f"{operation}: {self.message}" if operation else self.message)


class CapabilityDenied(HostError):
    """The skill's manifest or the operator's policy does not grant this capability."""

    code = "denied"
    tool_kind = "capability_denied"
    default_message = "capability not granted"


class InvalidRequest(HostError):
    """The host call itself was malformed (bad URL, header given twice, bad secret name...)."""

    code = "invalid"
    default_message = "invalid host request"


class NotFound(HostError):
    """The storage key, secret or channel does not exist."""

    code = "not-found"
    tool_kind = "not_found"
    default_message = "not found"


class TooLarge(HostError):
    """A request, value or response exceeded a host size limit."""

    code = "too-large"
    default_message = "too large for the host's limits"


class UpstreamError(HostError):
    """The remote side failed (connection refused, TLS failure, bad upstream response...)."""

    code = "upstream"
    tool_kind = "upstream"
    default_message = "upstream failure"


class HostTimeout(HostError):
    """The call's wall-clock budget ran out during a host call."""

    code = "timeout"
    tool_kind = "timed_out"
    default_message = "timed out"


class QuotaExceeded(HostError):
    """A per-call or per-skill quota (requests, bytes, keys...) is exhausted."""

    code = "quota"
    default_message = "quota exceeded"


class HttpStatusError(UpstreamError):
    """Raised by ``Response.raise_for_status()`` for a status outside 200-299."""

    def __init__(self, status: int, url: str) -> None:
        self.status = status
        # The query string may carry tokens: never echo it.
        shown = url.split("?", 1)[0].split("#", 1)[0]
        super().__init__(f"HTTP {status} from {shown}", operation="http")


class NotInComponent(RuntimeError):
    """A host helper was called outside a skill component (e.g. in a plain CPython test)."""

    def __init__(self, operation: str) -> None:
        super().__init__(
            f"{operation} needs the Palyra host: it is only available inside a skill component"
        )


HOST_ERROR_CLASSES: Final[dict[str, type[HostError]]] = {
    cls.code: cls
    for cls in (
        CapabilityDenied,
        InvalidRequest,
        NotFound,
        TooLarge,
        UpstreamError,
        HostTimeout,
        QuotaExceeded,
    )
}


def host_error_for_code(code: str, message: str = "", *, operation: str = "") -> HostError:
    """The SDK exception for a WIT error code (``"denied"``, ``"not-found"``, ``"NOT_FOUND"``).

    An unknown code gives a plain :class:`HostError` that keeps the code in its message.
    """
    normal = code.strip().lower().replace("_", "-")
    cls = HOST_ERROR_CLASSES.get(normal)
    if cls is None:
        return HostError(f"host error '{one_line(code, 40)}': {message}", operation=operation)
    return cls(message, operation=operation)


def from_bindings_error(error: Any, *, operation: str = "") -> HostError:
    """The SDK exception for a bindings ``Err(HostError)`` (or the ``HostError`` record inside).

    Works on anything shaped like the generated bindings: ``error.value.code.name`` and
    ``error.value.message``.
    """
    record = getattr(error, "value", error)
    code = getattr(record, "code", None)
    name = getattr(code, "name", code)
    message = getattr(record, "message", "")
    return host_error_for_code(
        name if isinstance(name, str) else "invalid",
        message if isinstance(message, str) else "",
        operation=operation,
    )


class ToolFailure(Exception):
    """Fail the current tool call with a specific kind.

    ``kind`` is one of :data:`TOOL_ERROR_KINDS`; ``message`` is shown to the caller (one line,
    at most 1000 characters); ``details`` is any JSON-encodable value with structured context::

        raise ToolFailure("not_found", "no city named 'Atlantis'", {"city": "Atlantis"})
    """

    def __init__(self, kind: ToolErrorKind, message: str, details: Any = None) -> None:
        if kind not in TOOL_ERROR_KINDS:
            raise ValueError(
                f"unknown tool error kind {kind!r}; expected one of {', '.join(TOOL_ERROR_KINDS)}"
            )
        self.kind: ToolErrorKind = kind
        self.message = one_line(str(message)) or kind.replace("_", " ")
        self.details = details
        super().__init__(self.message)

    def details_json(self) -> str | None:
        """``details`` as compact JSON text (at most 16 KiB), or None when there are none.

        Details that cannot be encoded are replaced by ``{"unencodable": "<repr>"}``; details
        too large are replaced by ``{"truncated": true}``: this never raises.
        """
        if self.details is None:
            return None
        try:
            text = json.dumps(self.details, ensure_ascii=False, allow_nan=False, default=str)
        except (TypeError, ValueError, RecursionError):
            text = json.dumps({"unencodable": one_line(repr(self.details), 200)})
        if len(text) > MAX_DETAILS_CHARS:
            text = '{"truncated":true}'
        return text

    def __repr__(self) -> str:
        return f"ToolFailure({self.kind!r}, {self.message!r})"
