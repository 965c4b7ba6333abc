"""Lazy access to the bindings componentize-py generates inside a skill component.

``wit_world`` exists only inside the component (and in tests that generate the bindings), so
it is imported here, on first use, never at module import time: the SDK must import on the
host's CPython too (``palyra skills build`` imports skill modules to describe them).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from palyra_sdk import errors

T = TypeVar("T")


def host_module(operation: str) -> Any:
    """``wit_world.imports.host``, or :class:`~palyra_sdk.errors.NotInComponent`."""
    try:
        return importlib.import_module("wit_world.imports.host")
    except ImportError:
        raise errors.NotInComponent(operation) from None


def types_module() -> Any:
    return importlib.import_module("wit_world.imports.types")


def err_class() -> type[BaseException]:
    cls: type[BaseException] = importlib.import_module("componentize_py_types").Err
    return cls


def call(operation: str, function: Callable[[Any], T]) -> T:
    """Run ``function(host_module)`` and turn a bindings ``Err(HostError)`` into the SDK's
    :class:`~palyra_sdk.errors.HostError` subclass for its code."""
    host = host_module(operation)
    err = err_class()
    try:
        return function(host)
    except err as exc:
        raise errors.from_bindings_error(exc, operation=operation) from None
