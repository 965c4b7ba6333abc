"""Validating tool input and output against the manifest's JSON Schemas.

The schemas were checked against their meta-schema at install (manifest.py); here they are
applied. Nothing is fetched: ``$ref`` resolves only inside the schema itself.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import jsonschema.validators

MAX_VIOLATIONS = 20


def json_path(parts: Any) -> str:
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def schema_violations(schema: dict[str, Any], instance: Any) -> list[str]:
    """Every violation as ``<json path>: <message>`` (first :data:`MAX_VIOLATIONS`)."""
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator = cls(schema)
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
