"""Palyra skill SDK: write Palyra skill tools in Python, built into WebAssembly components.

::

    from palyra_sdk import tool, http, storage, log, a2ui

    @tool
    def weather(city: str) -> dict[str, float]:
        '''Current temperature in a city.'''
        data = http.get("https://api.example.com/now", params={"q": city}).raise_for_status()
        return {"celsius": data.json()["temp"]}

Public modules: :mod:`palyra_sdk.tools` (``@tool``, dispatch), :mod:`palyra_sdk.schema`
(``Field``, schema derivation), :mod:`palyra_sdk.host` (``log``, ``http``, ``secrets``,
``storage``, ``channels``, ``call_info``), :mod:`palyra_sdk.a2ui` (UI documents) and
:mod:`palyra_sdk.errors`. The component entry is :mod:`palyra_sdk._guest`.
"""

from __future__ import annotations

from palyra_sdk import a2ui
from palyra_sdk.errors import (
    CapabilityDenied,
    HostError,
    HostTimeout,
    HttpStatusError,
    InvalidRequest,
    NotFound,
    NotInComponent,
    QuotaExceeded,
    TooLarge,
    ToolFailure,
    UpstreamError,
)
from palyra_sdk.host import (
    CallInfo,
    Response,
    SecretRef,
    call_info,
    channels,
    http,
    log,
    secret,
    secrets,
    storage,
)
from palyra_sdk.schema import Field, SchemaError
from palyra_sdk.tools import Registry, ToolDefinitionError, describe, dispatch, tool

__version__ = "0.1.0"

__all__ = [
    "CallInfo",
    "CapabilityDenied",
    "Field",
    "HostError",
    "HostTimeout",
    "HttpStatusError",
    "InvalidRequest",
    "NotFound",
    "NotInComponent",
    "QuotaExceeded",
    "Registry",
    "Response",
    "SchemaError",
    "SecretRef",
    "TooLarge",
    "ToolDefinitionError",
    "ToolFailure",
    "UpstreamError",
    "__version__",
    "a2ui",
    "call_info",
    "channels",
    "describe",
    "dispatch",
    "http",
    "log",
    "secret",
    "secrets",
    "storage",
    "tool",
]
