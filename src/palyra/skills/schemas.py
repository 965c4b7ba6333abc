"""Validating tool input and output against the manifest's JSON Schemas.

The schemas were checked against their meta-schema at install (manifest.py); here they are
applied. Nothing is fetched: ``$ref`` resolves only inside the schema itself.

``pattern`` and ``patternProperties`` run on the ``regex`` module with a time limit instead of
:mod:`re`: a skill author controls the pattern and a model (possibly prompt-injected) controls
the input, and :mod:`re` backtracks exponentially while holding the GIL — one crafted input
would freeze the whole daemon.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from typing import Any

import jsonschema
import jsonschema.validators
import regex
from jsonschema.exceptions import ValidationError

MAX_VIOLATIONS = 20
PATTERN_TIMEOUT_SECONDS = 0.05


def json_path(parts: Any) -> str:
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


class PatternTimeout(Exception):
    pass


def _search(pattern: str, text: str) -> bool:
    try:
        return (
            regex.search(pattern, text, timeout=PATTERN_TIMEOUT_SECONDS, concurrent=True)
            is not None
        )
    except TimeoutError:
        raise PatternTimeout(pattern) from None


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    try:
        if not _search(pattern, instance):
            yield ValidationError(f"{instance[:80]!r} does not match {pattern!r}")
    except PatternTimeout:
        yield ValidationError(f"pattern {pattern!r} took too long to evaluate on this value")
    except regex.error:
        yield ValidationError(f"pattern {pattern!r} is not a supported regular expression")


def _matching(patterns: dict[str, Any], key: str) -> Iterator[str]:
    for pattern in patterns:
        try:
            if _search(pattern, key):
                yield pattern
        except (PatternTimeout, regex.error):
            yield pattern  # fail closed: the subschema applies, and must then hold


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for key, value in instance.items():
        for pattern in _matching(patterns, key):
            yield from validator.descend(value, patterns[pattern], path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    declared = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    extras = [k for k in instance if k not in declared and not any(_matching(patterns, k))]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        shown = ", ".join(repr(extra) for extra in sorted(extras)[:10])
        yield ValidationError(f"additional properties are not allowed ({shown} unexpected)")


def _validator_class(schema: dict[str, Any]) -> Any:
    base = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return _extended(base)


@functools.cache
def _extended(base: Any) -> Any:
    """One extended class per draft: building it costs far more than a validation."""
    return jsonschema.validators.extend(  # type: ignore[no-untyped-call]
        base,
        {
            "pattern": _pattern,
            "patternProperties": _pattern_properties,
            "additionalProperties": _additional_properties,
        },
    )


_VALIDATORS: dict[int, tuple[dict[str, Any], Any]] = {}
_VALIDATORS_LIMIT = 512
_validators_lock = threading.Lock()


def _validator(schema: dict[str, Any]) -> Any:
    """A validator per schema object, reused: a tool's schemas are checked on every call.

    Keyed by identity and holding the schema itself (so the id cannot be reused while
    cached); a manifest's schemas are never mutated after parsing.
    """
    key = id(schema)
    with _validators_lock:
        hit = _VALIDATORS.get(key)
    if hit is not None and hit[0] is schema:
        return hit[1]
    validator = _validator_class(schema)(schema)
    with _validators_lock:
        if len(_VALIDATORS) >= _VALIDATORS_LIMIT:
            _VALIDATORS.pop(next(iter(_VALIDATORS)))
        _VALIDATORS[key] = (schema, validator)
    return validator


def schema_violations(schema: dict[str, Any], instance: Any) -> list[str]:
    """Every violation as ``<json path>: <message>`` (first :data:`MAX_VIOLATIONS`)."""
    validator = _validator(schema)
    found: list[str] = []
    try:
        errors = sorted(
            validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))
        )
        for error in errors[:MAX_VIOLATIONS]:
            message = " ".join(error.message.split())
            if len(message) > 200:
                message = message[:197] + "..."
            found.append(f"{json_path(error.absolute_path)}: {message}")
    except RecursionError:
        found.append("$: value nests too deeply to validate")
    return found
