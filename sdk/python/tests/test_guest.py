"""The component entry (``palyra_sdk._guest.WitWorld``) over the generated bindings."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest
from palyra_sdk import ToolFailure, storage, tool, tools

from tests.conftest import Bindings, FakeHost


@pytest.fixture
def world(bindings: Bindings) -> Any:
    guest = importlib.import_module("palyra_sdk._guest")
    instance = guest.WitWorld()
    # The generated protocol is the base class componentize-py expects.
    assert importlib.import_module("wit_world").WitWorld in type(instance).__mro__
    return instance


def _register_once() -> None:
    if "guest_echo" in tools.default_registry:
        return

    @tool
    def guest_echo(text: str, times: int = 1) -> str:
        """Echo text."""
        return text * times

    @tool
    def guest_store(key: str) -> str:
        """Read storage."""
        return (storage.get(key) or b"").decode()

    @tool
    def guest_fail(kind: str) -> str:
        """Fail on purpose."""
        if kind == "details":
            raise ToolFailure("upstream", "bad gateway", {"status": 502})
        if kind == "memory":
            raise MemoryError
        raise KeyError(kind)


def tool_error(bindings: Bindings, world: Any, name: str, payload: str) -> Any:
    with pytest.raises(bindings.Err) as caught:
        world.call(name, payload)
    error = caught.value.value  # type: ignore[attr-defined]
    assert isinstance(error, bindings.types.ToolError)
    return error


def test_call_success(world: Any) -> None:
    _register_once()
    assert world.call("guest_echo", '{"text": "ab", "times": 2}') == '"abab"'


def test_call_failures_become_tool_errors(
    bindings: Bindings, world: Any, fake_host: FakeHost
) -> None:
    _register_once()
    kinds = bindings.types.ErrorKind
    error = tool_error(bindings, world, "guest_echo", '{"times": 2}')
    assert error.kind is kinds.INVALID_INPUT
    assert error.message == "invalid input: $: missing required parameter 'text'"
    assert json.loads(error.details) == {"errors": ["$: missing required parameter 'text'"]}

    error = tool_error(bindings, world, "nope", "{}")
    assert error.kind is kinds.NOT_FOUND

    error = tool_error(bindings, world, "guest_fail", '{"kind": "details"}')
    assert (error.kind, error.message, json.loads(error.details)) == (
        kinds.UPSTREAM,
        "bad gateway",
        {"status": 502},
    )
    error = tool_error(bindings, world, "guest_fail", '{"kind": "memory"}')
    assert error.kind is kinds.MEMORY_LIMIT
    error = tool_error(bindings, world, "guest_fail", '{"kind": "other"}')
    assert (error.kind, error.message) == (kinds.TOOL_ERROR, "KeyError: 'other'")
    assert json.loads(error.details) == {"exception": "KeyError"}

    fake_host.denied.add("storage")
    error = tool_error(bindings, world, "guest_store", '{"key": "k"}')
    assert error.kind is kinds.CAPABILITY_DENIED
    assert error.message == "storage.get: capability not granted: storage"
    assert json.loads(error.details) == {"host_error": "denied"}


def test_every_failure_kind_has_a_wit_kind(bindings: Bindings) -> None:
    guest = importlib.import_module("palyra_sdk._guest")
    from palyra_sdk.errors import TOOL_ERROR_KINDS

    assert set(guest._KINDS) == set(TOOL_ERROR_KINDS)
    assert {kind.name.lower() for kind in guest._KINDS.values()} == set(TOOL_ERROR_KINDS)


def test_backstop_when_dispatch_itself_breaks(
    bindings: Bindings, world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(name: str, payload: str) -> str:
        raise SystemError("internal")

    monkeypatch.setattr(tools, "dispatch", broken)
    error = tool_error(bindings, world, "guest_echo", "{}")
    assert error.kind is bindings.types.ErrorKind.TOOL_ERROR
    assert error.message == "palyra_sdk internal error: SystemError"


def test_describe(world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _register_once()
    described = json.loads(world.describe())
    names = [entry["name"] for entry in described]
    assert {"guest_echo", "guest_store", "guest_fail"} <= set(names)

    def broken() -> str:
        raise RuntimeError("registry exploded")

    monkeypatch.setattr(tools, "describe", broken)
    assert json.loads(world.describe()) == {"error": "RuntimeError: registry exploded"}
