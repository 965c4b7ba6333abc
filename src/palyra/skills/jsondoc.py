"""Strict JSON decoding for documents inside artifacts.

Python's :mod:`json` accepts ``NaN``/``Infinity``, a UTF-8 BOM (via ``str``), and recurses
without bound. The reference (serde_json) rejects the first two; nesting is bounded here too so
a hostile document costs neither a traceback nor unbounded stack.
"""

from __future__ import annotations

import json
from typing import Any

from palyra.skills.constants import MAX_JSON_DEPTH
from palyra.skills.tomljson import json_depth_ok


class JsonDocumentError(ValueError):
    """Raised with a one-line reason; callers wrap it in their own typed error."""


class DuplicateKeyError(JsonDocumentError):
    pass


def _reject_constant(name: str) -> Any:
    raise JsonDocumentError(f"non-standard JSON constant {name}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKeyError(f"duplicate field `{key}`")
        result[key] = value
    return result


def loads_strict(data: bytes, *, max_bytes: int, reject_duplicates: bool = False) -> Any:
    """Decode ``data`` as one JSON value (UTF-8, no BOM, no trailing data, bounded depth)."""
    if len(data) > max_bytes:
        raise JsonDocumentError(f"document exceeds {max_bytes} bytes")
    if data.startswith(b"\xef\xbb\xbf"):
        raise JsonDocumentError("document starts with a byte order mark")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonDocumentError(f"invalid UTF-8 at byte {exc.start}") from None
    hook = _no_duplicates if reject_duplicates else None
    try:
        value = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=hook)
    except JsonDocumentError:
        raise
    except json.JSONDecodeError as exc:
        raise JsonDocumentError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise JsonDocumentError(f"document nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise JsonDocumentError(" ".join(str(exc).split())[:200]) from None
    if not json_depth_ok(value):
        raise JsonDocumentError(f"document nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def dumps_pretty(value: Any) -> bytes:
    """serde_json ``to_vec_pretty``: 2-space indent, ``": "``, no trailing newline, raw UTF-8."""
    return json.dumps(value, indent=2, ensure_ascii=False).encode("utf-8")
