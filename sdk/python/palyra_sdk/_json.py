"""Turning tool results and schema defaults into JSON values."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections.abc import Mapping
from typing import Any, Final

MAX_DEPTH: Final = 64


def json_type(value: Any) -> str:
    """The JSON type name of a decoded JSON value (``"integer"`` for ints, not ``"number"``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    """``value`` as plain JSON data: dataclasses become dicts, Enums their values, tuples and
    sets lists, A2UI documents and components their dicts.

    Raises TypeError (naming the offending type) for anything else, ValueError for NaN or an
    infinity, and ValueError for nesting deeper than 64 levels (which includes cycles).
    """
    if _depth > MAX_DEPTH:
        raise ValueError(f"value nests deeper than {MAX_DEPTH} levels (or contains a cycle)")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, _depth + 1)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a JSON number")
        return float(value)
    to_dict = getattr(value, "__palyra_json__", None)
    if to_dict is not None and callable(to_dict):
        return to_jsonable(to_dict(), _depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name), _depth + 1)
            for f in dataclasses.fields(value)
        }
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for raw_key, item in value.items():
            key = raw_key.value if isinstance(raw_key, enum.Enum) else raw_key
            if not isinstance(key, str):
                raise TypeError(f"object keys must be strings, not {type(key).__name__}")
            out[key] = to_jsonable(item, _depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item, _depth + 1) for item in value]
    if isinstance(value, (set, frozenset)):
        items = [to_jsonable(item, _depth + 1) for item in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    raise TypeError(f"a {type(value).__name__} is not JSON-serialisable")


def dumps(value: Any) -> str:
    """Compact JSON text of ``to_jsonable(value)`` (non-ASCII kept as is)."""
    return json.dumps(
        to_jsonable(value), ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )
