"""TOML parsing pinned to TOML 1.0, and conversion of TOML values into plain JSON values.

The reference parses manifests with a TOML 1.1 parser while Python's ``tomllib`` (and most
tooling) speaks TOML 1.0. We pick 1.0 — what the reference itself writes — and, when a document
fails only because it uses 1.1 syntax, say so plainly instead of showing a confusing 1.0 error.
"""

from __future__ import annotations

import datetime
import math
import tomllib
from typing import Any

import tomli

from palyra.skills.constants import MAX_JSON_DEPTH
from palyra.skills.errors import ManifestParseError

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1


def loads_toml10(text: str) -> dict[str, Any]:
    """Parse ``text`` as TOML 1.0; TOML 1.1-only syntax gets its own clear error."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        error = str(exc)
    except RecursionError:
        raise ManifestParseError("document nests too deeply") from None
    try:
        tomli.loads(text)
    except (tomli.TOMLDecodeError, RecursionError):
        raise ManifestParseError(error) from None
    raise ManifestParseError(
        f"manifest uses TOML 1.1-only syntax ({error}); skill.toml must be TOML 1.0: "
        "no newlines or trailing commas in inline tables, no \\e or \\xHH escapes, "
        "times with seconds"
    )


def to_json_value(value: Any, field: str, depth: int = 0) -> Any:
    """Convert a parsed TOML value into JSON, rejecting what JSON cannot carry.

    TOML dates/times and non-finite floats have no JSON form; the reference smuggles them
    through as private maps, which then mean something different to every consumer.
    """
    if depth > MAX_JSON_DEPTH:
        raise ManifestParseError(f"`{field}` nests deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, dict):
        return {key: to_json_value(item, field, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [to_json_value(item, field, depth + 1) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and not _I64_MIN <= value <= _I64_MAX:
        # TOML integers are 64-bit; tomllib reads any size, the reference parser refuses.
        raise ManifestParseError(f"`{field}` contains an integer outside the 64-bit range")
    if isinstance(value, float) and not math.isfinite(value):
        raise ManifestParseError(f"`{field}` contains a non-finite number, which JSON cannot hold")
    if isinstance(value, datetime.date | datetime.time):
        raise ManifestParseError(f"`{field}` contains a TOML date/time, which JSON cannot hold")
    return value


def json_depth_ok(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``value`` nests at most ``limit`` levels (iterative: safe on hostile input)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return True
