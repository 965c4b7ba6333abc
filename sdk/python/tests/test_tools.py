"""``@tool``, the registry, ``describe`` and ``dispatch``."""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Annotated, Any, Literal

import jsonschema
import palyra_sdk
import pytest
from palyra_sdk import (
    CapabilityDenied,
    Field,
    HostTimeout,
    NotFound,
    QuotaExceeded,
    Registry,
    SchemaError,
    ToolDefinitionError,
    ToolFailure,
    UpstreamError,
    a2ui,
    errors,
)
from palyra_sdk.tools import failure_from_exception


class Unit(enum.Enum):
    METRIC = "metric"
    IMPERIAL = "imperial"


@dataclasses.dataclass
class Place:
    name: str
    unit: Unit = Unit.METRIC
    coords: tuple[float, float] | None = None


@dataclasses.dataclass
class Checked:
    size: int

    def __post_init__(self) -> None:
        if self.size % 2:
            raise ValueError("size must be even")


def failure(registry: Registry, name: str, payload: Any) -> ToolFailure:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    with pytest.raises(ToolFailure) as caught:
        registry.dispatch(name, text)
    return caught.value


# ---- declaring -------------------------------------------------------------------------------


def test_bare_and_configured_decorators() -> None:
    registry = Registry()

    @registry.tool
    def greet(name: str, excited: bool = False) -> str:
        """Greet someone.

        Only the first paragraph is the description.
        """
        return f"Hello, {name}{'!' if excited else '.'}"

    @registry.tool(
        name="wipe_disk",
        description="Wipe   a\n disk.",
        requires_approval=True,
        sensitive=True,
    )
    def wipe(device: str) -> None:
        return None

    assert greet("Ann") == "Hello, Ann."  # the function is returned unchanged
    assert wipe.__name__ == "wipe"
    assert [spec.name for spec in registry] == ["greet", "wipe_disk"]
    described = json.loads(registry.describe())
    assert described[0] == {
        "name": "greet",
        "description": "Greet someone.",
        "input_schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "excited": {"type": "boolean", "default": False},
            },
            "required": ["name"],
            "additionalProperties": False,
        },
        "output_schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "string",
        },
        "risk": {"default_sensitive": False, "requires_approval": False},
    }
    assert described[1]["description"] == "Wipe a disk."
    assert described[1]["risk"] == {"default_sensitive": True, "requires_approval": True}
    for entry in described:
        jsonschema.Draft202012Validator.check_schema(entry["input_schema"])
        jsonschema.Draft202012Validator.check_schema(entry["output_schema"])


def test_module_level_registry() -> None:
    name = "sdk_test_module_level_tool"

    @palyra_sdk.tool(name=name)
    def doubled(n: int) -> int:
        """Double a number."""
        return n * 2

    assert palyra_sdk.dispatch(name, '{"n": 21}') == "42"
    assert any(entry["name"] == name for entry in json.loads(palyra_sdk.describe()))


@pytest.mark.parametrize(
    "bad_name", ["Greet", "1tool", "_x", "a-b", "a" * 65, "", "tool name", "é"]
)
def test_tool_names_are_checked(bad_name: str) -> None:
    def fn() -> int:
        """Doc."""
        return 1

    with pytest.raises(ToolDefinitionError, match="must match"):
        Registry().register(fn, name=bad_name)


def test_longest_name_is_accepted() -> None:
    def fn() -> int:
        """Doc."""
        return 1

    assert Registry().register(fn, name="a" * 64).name == "a" * 64


def test_definition_errors() -> None:
    registry = Registry()

    def undocumented() -> int:
        return 1

    async def coro() -> int:
        """Doc."""
        return 1

    def gen() -> Any:
        """Doc."""
        yield 1

    with pytest.raises(ToolDefinitionError, match="needs a description"):
        registry.register(undocumented)
    with pytest.raises(ToolDefinitionError, match="async"):
        registry.register(coro)
    with pytest.raises(ToolDefinitionError, match="generator"):
        registry.register(gen)
    with pytest.raises(ToolDefinitionError, match="a function"):
        registry.register(42)  # type: ignore[arg-type]

    def once() -> int:
        """Doc."""
        return 1

    registry.register(once)
    with pytest.raises(ToolDefinitionError, match="already registered"):
        registry.register(once)


def test_schema_errors_surface_at_declaration() -> None:
    with pytest.raises(SchemaError, match="tool 'upload' parameter 'data': bytes"):

        @Registry().tool
        def upload(data: bytes) -> None:
            """Upload."""


def test_explicit_schemas() -> None:
    registry = Registry()
    schema = {
        "type": "object",
        "properties": {"q": {"type": "string", "minLength": 2}},
        "required": ["q"],
        "additionalProperties": False,
    }

    @registry.tool(input_schema=schema, output_schema={"type": "array"})
    def search(q):  # type: ignore[no-untyped-def]
        """Search."""
        return [q]

    assert registry.dispatch("search", '{"q": "ab"}') == '["ab"]'
    assert failure(registry, "search", {"q": "a"}).message.endswith("at least 2 characters")
    schema["properties"] = {}  # the registry keeps its own copy
    assert registry.dispatch("search", '{"q": "ab"}') == '["ab"]'


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ({"type": "array"}, 'must have "type": "object"'),
        ({"type": "object", "additionalProperties": False}, "must list it in 'required'"),
        (
            {
                "type": "object",
                "properties": {"a": {}, "b": {}},
                "required": ["a"],
                "additionalProperties": False,
            },
            "property 'b' is not a parameter",
        ),
        ({"type": "object", "required": ["a"]}, "additionalProperties to false"),
        ({"type": "object", "x": float("nan")}, "not JSON"),
        ([], "must be a dict"),
    ],
)
def test_explicit_input_schema_must_fit_the_function(schema: Any, fragment: str) -> None:
    def fn(a: int) -> int:
        """Doc."""
        return a

    with pytest.raises(ToolDefinitionError, match=fragment):
        Registry().register(fn, input_schema=schema)


def test_explicit_schema_with_kwargs() -> None:
    registry = Registry()

    @registry.tool(input_schema={"type": "object"}, output_schema={})
    def anything(**kwargs: Any) -> Any:
        """Take anything."""
        return sorted(kwargs)

    assert registry.dispatch("anything", '{"b": 1, "a": 2}') == '["a","b"]'


# ---- dispatching ----------------------------------------------------------------------------


@pytest.fixture
def registry() -> Registry:
    registry = Registry()

    @registry.tool
    def locate(
        place: Place,
        radius: Annotated[float, Field(minimum=0, maximum=100)] = 1.0,
        tags: set[str] | None = None,
        mode: Literal["fast", "exact"] = "fast",
    ) -> dict[str, Any]:
        """Locate a place."""
        assert isinstance(place, Place)
        assert isinstance(place.unit, Unit)
        assert isinstance(radius, float)
        assert tags is None or isinstance(tags, set)
        return {
            "place": place,
            "radius": radius,
            "tags": sorted(tags or ()),
            "mode": mode,
            "coords_type": type(place.coords).__name__,
        }

    @registry.tool
    def even(value: Checked) -> int:
        """Check."""
        return value.size

    @registry.tool
    def boom(kind: str) -> str:
        """Raise things."""
        exceptions: dict[str, BaseException] = {
            "value": ValueError("bad value\nwith a second line"),
            "empty": RuntimeError(),
            "long": RuntimeError("x" * 5000),
            "denied": CapabilityDenied("http egress is not granted", operation="http.get"),
            "missing": NotFound("storage key 'k'", operation="storage.get"),
            "upstream": UpstreamError("connection refused", operation="http.get"),
            "timeout": HostTimeout("", operation="http.get"),
            "quota": QuotaExceeded("too many requests", operation="http.get"),
            "memory": MemoryError(),
            "exit": SystemExit(3),
            "failure": ToolFailure("not_found", "no such city", {"city": "Atlantis"}),
            "recursion": RecursionError("maximum recursion depth exceeded"),
        }
        raise exceptions[kind]

    @registry.tool
    def bad_output(kind: str) -> Any:
        """Return something odd."""
        return {"set": {1, 2}, "obj": object(), "nan": float("nan")}[kind]

    @registry.tool
    def liar() -> int:
        """Claims int, returns str."""
        return "three"  # type: ignore[return-value]

    @registry.tool
    def panel(target: str) -> a2ui.Document:
        """A form."""
        return a2ui.document(
            a2ui.form("f", [a2ui.text_field("name")], submit_tool=target),
        )

    return registry


def test_good_input_is_converted_and_encoded(registry: Registry) -> None:
    out = registry.dispatch(
        "locate",
        json.dumps(
            {
                "place": {"name": "Oslo", "unit": "imperial", "coords": [59, 10.75]},
                "radius": 5,
                "tags": ["b", "a"],
            }
        ),
    )
    assert json.loads(out) == {
        "place": {"name": "Oslo", "unit": "imperial", "coords": [59.0, 10.75]},
        "radius": 5.0,
        "tags": ["a", "b"],
        "mode": "fast",
        "coords_type": "tuple",
    }
    minimal = json.loads(registry.dispatch("locate", '{"place": {"name": "Rome"}}'))
    assert minimal["place"] == {"name": "Rome", "unit": "metric", "coords": None}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{}", "invalid input: $: missing required parameter 'place'"),
        (
            {"place": {"name": "x"}, "radius": 1, "extra": 1},
            "invalid input: $: unknown parameter 'extra' (allowed: place, radius, tags, mode)",
        ),
        ({"place": {"name": 3}}, "invalid input: $.place.name: expected string, got integer"),
        ({"place": {"name": "x", "zip": 1}}, "invalid input: $.place: unknown key 'zip'"),
        ({"place": {"name": "x", "unit": "si"}}, "$.place.unit: must be one of 'metric'"),
        ({"place": {"name": "x"}, "radius": 101}, "$.radius: must be <= 100"),
        ({"place": {"name": "x"}, "radius": "1"}, "$.radius: expected number, got string"),
        ({"place": {"name": "x"}, "tags": ["a", "a"]}, "$.tags[1]: duplicates an earlier item"),
        ({"place": {"name": "x"}, "mode": "slow"}, "$.mode: must be one of 'fast', 'exact'"),
        ("[]", "input must be a JSON object, not array"),
        ("null", "input must be a JSON object, not null"),
        ("{", "input is not valid JSON"),
        ('{"place": {"name": "x"}, "radius": NaN}', "input is not valid JSON: NaN"),
        ('{"place": {"name": "a"}, "place": {"name": "b"}}', "key 'place' appears twice"),
        ("[" * 100_000 + "]" * 100_000, "input JSON nests too deeply"),
    ],
)
def test_invalid_input(registry: Registry, payload: Any, message: str) -> None:
    fail = failure(registry, "locate", payload)
    assert fail.kind == "invalid_input"
    assert message in fail.message


def test_input_errors_are_listed_in_details(registry: Registry) -> None:
    fail = failure(registry, "locate", {"place": {"name": 1, "unit": 2}, "radius": "x", "q": 1})
    assert fail.details is not None
    details = json.loads(fail.details_json() or "")
    assert len(details["errors"]) == 4
    assert fail.message.endswith("; ...")


def test_conversion_errors_are_invalid_input(registry: Registry) -> None:
    fail = failure(registry, "even", {"value": {"size": 3}})
    assert fail.kind == "invalid_input"
    assert fail.message == "invalid input: parameter 'value': ValueError: size must be even"
    assert registry.dispatch("even", '{"value": {"size": 4}}') == "4"


def test_unknown_tool(registry: Registry) -> None:
    fail = failure(registry, "nope", {})
    assert fail.kind == "not_found"
    assert "no tool 'nope'" in fail.message
    assert "locate" in fail.message


@pytest.mark.parametrize(
    ("kind", "expected_kind", "message", "details"),
    [
        (
            "value",
            "tool_error",
            "ValueError: bad value with a second line",
            {"exception": "ValueError"},
        ),
        ("empty", "tool_error", "RuntimeError", {"exception": "RuntimeError"}),
        (
            "denied",
            "capability_denied",
            "http.get: http egress is not granted",
            {"host_error": "denied"},
        ),
        ("missing", "not_found", "storage.get: storage key 'k'", {"host_error": "not-found"}),
        (
            "upstream",
            "upstream",
            "http.get: connection refused",
            {"host_error": "upstream"},
        ),
        ("timeout", "timed_out", "http.get: timed out", {"host_error": "timeout"}),
        ("quota", "tool_error", "http.get: too many requests", {"host_error": "quota"}),
        ("memory", "memory_limit", "the skill ran out of memory", None),
        ("exit", "tool_error", "SystemExit: 3", {"exception": "SystemExit"}),
        ("failure", "not_found", "no such city", {"city": "Atlantis"}),
        (
            "recursion",
            "tool_error",
            "RecursionError: maximum recursion depth exceeded",
            {"exception": "RecursionError"},
        ),
    ],
)
def test_exceptions_become_typed_failures(
    registry: Registry, kind: str, expected_kind: str, message: str, details: Any
) -> None:
    fail = failure(registry, "boom", {"kind": kind})
    assert (fail.kind, fail.message, fail.details) == (expected_kind, message, details)
    assert fail.__cause__ is None or isinstance(fail.__cause__, ToolFailure)
    assert "Traceback" not in fail.message


def test_long_messages_are_cut(registry: Registry) -> None:
    fail = failure(registry, "boom", {"kind": "long"})
    assert len(fail.message) == 1000
    assert fail.message.startswith("RuntimeError: xxx")
    assert fail.message.endswith("…")


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ("obj", "a object is not JSON-serialisable"),
        ("nan", "nan is not a JSON number"),
    ],
)
def test_unencodable_results(registry: Registry, kind: str, fragment: str) -> None:
    fail = failure(registry, "bad_output", {"kind": kind})
    assert fail.kind == "tool_error"
    assert fragment in fail.message


def test_sets_encode_sorted(registry: Registry) -> None:
    assert registry.dispatch("bad_output", '{"kind": "set"}') == "[1,2]"


def test_output_is_checked_against_the_output_schema(registry: Registry) -> None:
    fail = failure(registry, "liar", {})
    assert fail.kind == "tool_error"
    assert fail.message == (
        "tool 'liar' returned output that does not match its output schema: "
        "$: expected integer, got string"
    )


def test_forms_must_submit_to_a_tool_of_the_skill(registry: Registry) -> None:
    out = json.loads(registry.dispatch("panel", '{"target": "locate"}'))
    assert out["components"][0]["props"]["submit_tool"] == "locate"
    fail = failure(registry, "panel", {"target": "missing_tool"})
    assert fail.kind == "tool_error"
    assert "form 'f' submits to 'missing_tool', which is not a tool of this skill" in fail.message


def test_form_submission_round_trip() -> None:
    """The handler of a form is an ordinary tool taking ``{componentId, values}``."""
    registry = Registry()

    @registry.tool
    def settings_form() -> a2ui.Document:
        """Show the settings form."""
        return a2ui.document(
            a2ui.form(
                "settings",
                [a2ui.number_field("limit", maximum=10), a2ui.checkbox_field("verbose")],
                submit_tool="save_settings",
            )
        )

    @registry.tool
    def save_settings(componentId: str, values: a2ui.FormValues) -> a2ui.Document:
        """Save the settings."""
        limit = values["limit"]
        return a2ui.document(a2ui.text(f"{componentId}: limit={limit!r}", tone="success"))

    spec = registry.get("save_settings")
    assert spec is not None
    jsonschema.validate({"componentId": "settings", "values": {"limit": 3}}, spec.input_schema)
    assert spec.input_schema["properties"]["values"] == {
        "type": "object",
        "additionalProperties": {"type": ["string", "number", "boolean"]},
    }
    out = json.loads(
        registry.dispatch("save_settings", '{"componentId": "settings", "values": {"limit": 3}}')
    )
    assert out["components"][0]["props"] == {"tone": "success", "value": "settings: limit=3.0"}
    doc = json.loads(registry.dispatch("settings_form", ""))  # empty input is {}
    jsonschema.validate(doc, a2ui.A2UI_DOCUMENT_SCHEMA)


def test_failure_from_exception_never_raises() -> None:
    class Nasty(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str for you")

    fail = failure_from_exception(Nasty())
    assert (fail.kind, fail.message) == ("tool_error", "Nasty")


def test_tool_failure_kinds_and_details() -> None:
    with pytest.raises(ValueError, match="unknown tool error kind 'oops'"):
        ToolFailure("oops", "x")  # type: ignore[arg-type]
    assert ToolFailure("upstream", "").message == "upstream"
    assert ToolFailure("tool_error", "x").details_json() is None
    circular: list[Any] = []
    circular.append(circular)
    text = ToolFailure("tool_error", "x", circular).details_json()
    assert text is not None
    assert "unencodable" in json.loads(text)
    huge = ToolFailure("tool_error", "x", {"blob": "y" * 100_000}).details_json()
    assert huge == '{"truncated":true}'
    assert json.loads(ToolFailure("tool_error", "x", {"when": dataclasses}).details_json() or "")


def test_host_error_codes_map_to_classes() -> None:
    for code, cls in errors.HOST_ERROR_CLASSES.items():
        made = errors.host_error_for_code(code, "msg", operation="op")
        assert type(made) is cls
        assert made.code == code
        assert str(made) == "op: msg"
    assert type(errors.host_error_for_code("NOT_FOUND")) is NotFound
    assert str(errors.host_error_for_code("not_found")) == "not found"
    odd = errors.host_error_for_code("weird", "x")
    assert type(odd) is errors.HostError
    assert "weird" in str(odd)
