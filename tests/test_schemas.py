"""Schema validation of tool input/output, including hostile patterns."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from palyra.skills.schemas import schema_violations

OBJECT: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string", "pattern": "^[a-z]+$"}, "n": {"type": "integer"}},
    "patternProperties": {"^x-": {"type": "string"}},
    "additionalProperties": False,
    "required": ["name"],
}


def test_valid_and_invalid_instances_with_paths() -> None:
    assert schema_violations(OBJECT, {"name": "abc", "x-tag": "t"}) == []
    found = schema_violations(OBJECT, {"name": "ABC", "n": "1", "x-tag": 3, "extra": 1})
    assert any(v.startswith("$.name:") and "does not match" in v for v in found)
    assert any(v.startswith("$.n:") for v in found)
    assert any(v.startswith("$.x-tag:") for v in found)
    assert any("additional properties are not allowed ('extra' unexpected)" in v for v in found)
    assert schema_violations(OBJECT, {}) == ["$: 'name' is a required property"]


def test_additional_properties_schema_applies_to_extras_only() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {}},
        "additionalProperties": {"type": "integer"},
    }
    assert schema_violations(schema, {"a": "x", "b": 1}) == []
    assert schema_violations(schema, {"b": "x"}) == ["$.b: 'x' is not of type 'integer'"]


@pytest.mark.parametrize(
    ("pattern", "value"),
    [
        (r"^(a|a)*$", "a" * 40 + "!"),
        (r"^(a+)+$", "a" * 40 + "!"),
        (r"^(\w+\s?)*$", "word " * 30 + "!"),
    ],
)
def test_catastrophic_patterns_are_cut_off(pattern: str, value: str) -> None:
    """re would backtrack for minutes while holding the GIL; the timed engine answers fast."""
    schema = {"type": "object", "properties": {"v": {"type": "string", "pattern": pattern}}}
    start = time.monotonic()
    found = schema_violations(schema, {"v": value})
    assert time.monotonic() - start < 5  # a bound on a hang, not a performance assertion
    assert found, "a value that does not match must not validate"


def test_hostile_pattern_property_fails_closed() -> None:
    schema = {"type": "object", "patternProperties": {r"^(a|a)*$": {"type": "integer"}}}
    found = schema_violations(schema, {"a" * 40 + "!": "not an integer"})
    assert found and "not of type 'integer'" in found[0]


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=8)), max_size=5)
)
def test_property_keywords_agree_with_jsonschema(instance: dict[str, Any]) -> None:
    """On ordinary patterns our keyword implementations agree with the library's own."""
    import jsonschema

    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "patternProperties": {"^b": {"type": "string"}},
        "additionalProperties": False,
    }
    ours = bool(schema_violations(schema, instance))
    theirs = not jsonschema.Draft202012Validator(schema).is_valid(instance)
    assert ours == theirs
