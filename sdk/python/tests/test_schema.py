"""Deriving JSON Schema from type hints, and the SDK's light validator.

No ``from __future__ import annotations`` here on purpose: the hints are real objects, and
``_future_types`` covers string annotations.
"""

import collections.abc
import dataclasses
import enum
import json
import sys
import typing
from typing import Annotated, Any, Literal, NewType, NotRequired, Optional, TypedDict, Union

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from palyra_sdk import Field, Registry, SchemaError, a2ui
from palyra_sdk.schema import (
    JSON_SCHEMA_DIALECT,
    docstring_params,
    function_input_schema,
    function_output_schema,
    type_schema,
    validate,
)

from tests import _future_types

Validator = jsonschema.Draft202012Validator


class Color(enum.Enum):
    """A paint colour."""

    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mixed(enum.Enum):
    A = "a"
    ONE = 1


class Empty(enum.Enum):
    pass


class BadEnum(enum.Enum):
    PAIR = (1, 2)


@dataclasses.dataclass
class Point:
    """A point in the plane."""

    x: float
    y: float = 0.0
    tags: list[str] = dataclasses.field(default_factory=list)
    cache: int = dataclasses.field(default=0, init=False)


class Address(TypedDict):
    street: str
    zip: Annotated[str, Field(pattern=r"^[0-9]{5}$")]


class Partial(TypedDict, total=False):
    a: int
    b: str


class WithNotRequired(TypedDict):
    a: int
    b: NotRequired[str]


@dataclasses.dataclass
class Node:
    value: int
    children: "list[Node]"


@dataclasses.dataclass
class Ping:
    pong: "Pong | None"


@dataclasses.dataclass
class Pong:
    ping: Ping


class TreeDict(TypedDict):
    child: "TreeDict | None"


@dataclasses.dataclass
class BadDefault:
    count: int = "many"  # type: ignore[assignment]


UserId = NewType("UserId", str)


def check(schema: dict[str, Any]) -> dict[str, Any]:
    Validator.check_schema(schema)
    return schema


# ---- single hints -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (None, {"type": "null"}),
        (type(None), {"type": "null"}),
        (Any, {}),
        (UserId, {"type": "string"}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (collections.abc.Sequence[str], {"type": "array", "items": {"type": "string"}}),
        (list, {"type": "array"}),
        (list[Any], {"type": "array"}),
        (set[int], {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}),
        (frozenset[str], {"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
        (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
        (
            tuple[int, str],
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "items": False,
                "minItems": 2,
                "maxItems": 2,
            },
        ),
        (tuple[()], {"type": "array", "maxItems": 0}),
        (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
        (dict[str, Any], {"type": "object"}),
        (dict, {"type": "object"}),
        (
            collections.abc.Mapping[str, list[int]],
            {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "integer"}},
            },
        ),
        (int | None, {"type": ["integer", "null"]}),
        (Optional[str], {"type": ["string", "null"]}),  # noqa: UP045 - the typing spelling
        (Union[int, str, None], {"type": ["integer", "string", "null"]}),  # noqa: UP007
        (int | Any, {}),
        (Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
        (Literal[1, 2], {"type": "integer", "enum": [1, 2]}),
        (Literal["a", 1, None], {"enum": ["a", 1, None]}),
        (Literal[Color.RED], {"type": "string", "enum": ["red"]}),
        (Color, {"type": "string", "enum": ["red", "green"], "description": "A paint colour."}),
        (Level, {"type": "integer", "enum": [1, 2]}),
        (Mixed, {"enum": ["a", 1]}),
    ],
)
def test_hint_schemas(hint: Any, expected: dict[str, Any]) -> None:
    assert check(type_schema(hint)) == expected


def test_literal_keeps_true_and_one_apart() -> None:
    assert type_schema(Literal[1, True])["enum"] == [1, True]


def test_union_of_objects_uses_any_of() -> None:
    schema = check(type_schema(Point | None))
    assert schema["anyOf"][1] == {"type": "null"}
    assert schema["anyOf"][0]["required"] == ["x"]


def test_dataclass_schema() -> None:
    schema = check(type_schema(Point))
    assert schema == {
        "type": "object",
        "description": "A point in the plane.",
        "properties": {
            "x": {"type": "number"},
            "y": {"type": "number", "default": 0.0},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["x"],
        "additionalProperties": False,
    }


def test_typeddict_totality() -> None:
    address = check(type_schema(Address))
    assert address["required"] == ["street", "zip"]
    assert address["properties"]["zip"] == {"type": "string", "pattern": "^[0-9]{5}$"}
    assert address["additionalProperties"] is False
    assert "required" not in type_schema(Partial)
    assert type_schema(WithNotRequired)["required"] == ["a"]


def test_string_annotations_and_not_required() -> None:
    """Under ``from __future__ import annotations`` Python 3.11 reports NotRequired keys as
    required; the SDK reads the wrappers itself."""
    options = type_schema(_future_types.Options)
    assert options["required"] == ["depth"]
    assert options["properties"]["tags"] == {
        "type": "array",
        "items": {"type": "string"},
        "maxItems": 3,
    }
    sparse = type_schema(_future_types.Sparse)
    assert sparse["required"] == ["key"]
    schema = check(function_input_schema(_future_types.run))
    assert schema["required"] == ["job"]
    job = schema["properties"]["job"]
    assert job["required"] == ["name", "options"]
    assert job["properties"]["retries"] == {"type": "integer", "default": 0}
    out = check(function_output_schema(_future_types.run))
    assert out["items"]["required"] == ["depth"]


def test_document_hint_gives_the_a2ui_schema() -> None:
    schema = type_schema(a2ui.Document)
    assert "$schema" not in schema
    assert schema["properties"]["v"] == {"const": 1}
    nested = check(type_schema(list[a2ui.Document]))
    assert nested["items"] == schema


# ---- Field ------------------------------------------------------------------------------------


def test_field_constraints() -> None:
    hint = Annotated[
        int, Field(description="How many", title="Count", minimum=1, maximum=10, default=3)
    ]
    assert check(type_schema(hint)) == {
        "type": "integer",
        "minimum": 1,
        "maximum": 10,
        "title": "Count",
        "description": "How many",
        "default": 3,
    }
    text = type_schema(
        Annotated[str, Field(min_length=1, max_length=5, pattern="^[a-z]+$", format="email")]
    )
    assert (text["minLength"], text["maxLength"], text["pattern"], text["format"]) == (
        1,
        5,
        "^[a-z]+$",
        "email",
    )
    items = type_schema(Annotated[list[int], Field(min_items=1, max_items=4, unique_items=True)])
    assert (items["minItems"], items["maxItems"], items["uniqueItems"]) == (1, 4, True)
    choice = check(type_schema(Annotated[str, Field(enum=["a", "b"], examples=["a"])]))
    assert choice["enum"] == ["a", "b"]
    assert choice["examples"] == ["a"]
    exclusive = type_schema(
        Annotated[float, Field(exclusive_minimum=0, exclusive_maximum=1, multiple_of=0.25)]
    )
    assert (
        exclusive["exclusiveMinimum"],
        exclusive["exclusiveMaximum"],
        exclusive["multipleOf"],
    ) == (0, 1, 0.25)
    nullable = check(type_schema(Annotated[int | None, Field(minimum=0)]))
    assert nullable == {"type": ["integer", "null"], "minimum": 0}


@pytest.mark.parametrize(
    ("hint", "fragment"),
    [
        (Annotated[str, Field(minimum=1)], "minimum"),
        (Annotated[int, Field(max_length=3)], "maxLength"),
        (Annotated[int, Field(pattern="a")], "pattern"),
        (Annotated[str, Field(min_items=1)], "minItems"),
        (Annotated[int, Field(minimum=5, maximum=1)], "exceeds"),
        (Annotated[str, Field(min_length=-1)], "non-negative"),
        (Annotated[str, Field(pattern="(")], "not a valid regex"),
        (Annotated[int, Field(enum=["x"])], "enum value"),
        (Annotated[int, Field(enum=[])], "cannot be empty"),
        (Annotated[int, Field(default="x")], "does not match its type"),
        (Annotated[float, Field(minimum=float("inf"))], "finite"),
        (Annotated[float, Field(multiple_of=0)], "greater than 0"),
        (Annotated[str, Field(default=object())], "not a JSON value"),
    ],
)
def test_field_misuse_is_refused(hint: Any, fragment: str) -> None:
    with pytest.raises(SchemaError, match=fragment):
        type_schema(hint)


def test_field_needs_a_list_for_enum() -> None:
    with pytest.raises(SchemaError, match="list of values"):
        Field(enum="abc")


# ---- refused hints ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "fragment"),
    [
        (bytes, "base64"),
        (dict[int, str], "keys must be str"),
        (object(), "unsupported type hint"),
        (complex, "unsupported type hint complex"),
        (typing.Callable[[int], int], "unsupported"),
        (Empty, "has no members"),
        (BadEnum, "strings or numbers"),
        (Literal[b"x"], "not a JSON scalar"),
        (NotRequired[int], "only apply to TypedDict"),
        (BadDefault, "does not match its type"),
        ("Point", "forward reference"),
    ],
)
def test_unsupported_hints(hint: Any, fragment: str) -> None:
    with pytest.raises(SchemaError, match=fragment):
        type_schema(hint)


def test_recursive_types_are_refused() -> None:
    with pytest.raises(SchemaError, match=r"recursive type Node \(Node -> Node\)"):
        type_schema(Node)
    with pytest.raises(SchemaError, match=r"recursive type Ping \(Ping -> Pong -> Ping\)"):
        type_schema(Ping)
    with pytest.raises(SchemaError, match="recursive type TreeDict"):
        type_schema(TreeDict)


def test_depth_is_bounded() -> None:
    hint: Any = int
    for _ in range(40):
        hint = list[hint]
    with pytest.raises(SchemaError, match="deeper than 32"):
        type_schema(hint)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="type statements need Python 3.12")
def test_type_statement_aliases() -> None:
    namespace: dict[str, Any] = {}
    exec(  # noqa: S102 - constant source: the 3.12 syntax cannot appear in this 3.11 module
        "type Celsius = float\n"
        "type Pair = tuple[Celsius, Celsius]\n"
        "type Box[T] = list[T]\n"
        "type Json = list[Json] | int\n",
        namespace,
    )
    assert type_schema(namespace["Pair"])["prefixItems"] == [{"type": "number"}] * 2
    with pytest.raises(SchemaError, match="generic type aliases"):
        type_schema(namespace["Box"][int])
    with pytest.raises(SchemaError, match=r"recursive type Json \(Json -> Json\)"):
        type_schema(namespace["Json"])


def test_same_type_twice_is_not_recursion() -> None:
    @dataclasses.dataclass
    class Line:
        start: Point
        end: Point

    schema = type_schema(Line)
    assert schema["properties"]["start"] == schema["properties"]["end"]


# ---- function schemas ---------------------------------------------------------------------


def forecast(
    city: Annotated[str, Field(max_length=80)],
    days: int = 3,
    units: Literal["metric", "imperial"] = "metric",
    color: Color = Color.GREEN,
    at: tuple[float, float] | None = None,
) -> dict[str, float]:
    """Weather forecast for a city.

    Longer explanation that is not part of the description.

    Args:
        city: The city's name,
            as people write it.
        days (int): How many days.
    """
    return {}


def test_function_input_schema() -> None:
    schema = check(function_input_schema(forecast))
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    assert schema["type"] == "object"
    assert schema["required"] == ["city"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["city"] == {
        "description": "The city's name, as people write it.",
        "type": "string",
        "maxLength": 80,
    }
    assert props["days"] == {"description": "How many days.", "type": "integer", "default": 3}
    assert props["units"]["default"] == "metric"
    assert props["color"]["default"] == "green"
    assert props["at"]["default"] is None
    assert list(props) == ["city", "days", "units", "color", "at"]


def test_function_output_schema() -> None:
    assert check(function_output_schema(forecast)) == {
        "$schema": JSON_SCHEMA_DIALECT,
        "type": "object",
        "additionalProperties": {"type": "number"},
    }

    def bare() -> str:
        return ""

    def nothing() -> None:
        return None

    assert function_output_schema(bare)["type"] == "string"
    assert function_output_schema(nothing)["type"] == "null"


def test_no_parameters_gives_an_empty_object() -> None:
    def ping() -> str:
        return "pong"

    schema = check(function_input_schema(ping))
    assert schema["properties"] == {}
    assert "required" not in schema
    assert validate(schema, {}) == []
    assert validate(schema, {"x": 1}) == ["$: unknown parameter 'x' (allowed: none)"]


def _star_args(*names: str) -> str:
    return ""


def _star_kwargs(**extra: str) -> str:
    return ""


def _positional(a: int, /) -> str:
    return ""


def _unannotated(a) -> str:  # type: ignore[no-untyped-def]
    return ""


def _bad_param(payload: bytes) -> str:
    return ""


def _no_return(a: int):  # type: ignore[no-untyped-def]
    return a


def _unresolvable(a: "Missing") -> str:  # type: ignore[name-defined]  # noqa: F821
    return ""


def _bad_default(count: int = "3") -> str:  # type: ignore[assignment]
    return ""


@pytest.mark.parametrize(
    ("fn", "fragment"),
    [
        (_star_args, "parameter 'names': \\*args and \\*\\*kwargs"),
        (_star_kwargs, "parameter 'extra': \\*args and \\*\\*kwargs"),
        (_positional, "parameter 'a': positional-only"),
        (_unannotated, "parameter 'a': needs a type annotation"),
        (_bad_param, "tool '_bad_param' parameter 'payload': bytes have no JSON form"),
        (_unresolvable, "cannot resolve its type hints"),
        (_bad_default, "parameter 'count': default '3' does not match its type"),
    ],
)
def test_function_input_errors_name_the_parameter(fn: Any, fragment: str) -> None:
    with pytest.raises(SchemaError, match=fragment):
        function_input_schema(fn)


def test_output_needs_a_return_annotation() -> None:
    with pytest.raises(SchemaError, match="needs a return annotation"):
        function_output_schema(_no_return)


def test_docstring_params_sections() -> None:
    doc = """Summary.

    Args:
        a: First
            continued.
        *rest: Ignored stars.
        b (list[int]): Second.

    Returns:
        c: not a parameter.
    """
    assert docstring_params(doc) == {
        "a": "First continued.",
        "rest": "Ignored stars.",
        "b": "Second.",
    }
    assert docstring_params("No sections") == {}
    assert docstring_params(None) == {}


# ---- the validator ------------------------------------------------------------------------


def test_validator_messages() -> None:
    schema = function_input_schema(forecast)
    assert validate(schema, {"city": 1}) == ["$.city: expected string, got integer"]
    assert validate(schema, {}) == ["$: missing required parameter 'city'"]
    assert validate(schema, {"city": "x" * 81}) == ["$.city: must have at most 80 characters"]
    assert validate(schema, {"city": "x", "units": "kelvin"}) == [
        "$.units: must be one of 'metric', 'imperial'"
    ]
    assert validate(schema, {"city": "x", "at": [1, "2"]}) == [
        "$.at[1]: expected number, got string"
    ]
    assert validate(schema, {"city": "x", "at": [1, 2, 3]}) == [
        "$.at: must have at most 2 items",
        "$.at[2]: no value is allowed here",
    ]
    assert validate(schema, {"city": "x", "days": 2.0}) == []
    assert validate(schema, {"city": "x", "days": True}) == [
        "$.days: expected integer, got boolean"
    ]


def test_validator_caps_errors() -> None:
    schema = type_schema(list[int])
    assert len(validate(schema, ["x"] * 100)) == 20
    assert len(validate(schema, ["x"] * 100, max_errors=3)) == 3


def test_validator_unique_items_is_linear_and_exact() -> None:
    schema = type_schema(set[Any])
    assert validate(schema, list(range(50_000))) == []
    assert validate(schema, [1, True]) == []
    assert validate(schema, [1, 1.0]) == ["$[1]: duplicates an earlier item"]
    assert validate(schema, [{"a": [1]}, {"a": [1.0]}]) == ["$[1]: duplicates an earlier item"]


def test_validator_survives_deep_values() -> None:
    value: Any = 1
    for _ in range(5000):
        value = [value]
    assert validate(type_schema(list[Any]), value) == []
    deep_schema: dict[str, Any] = {"type": "array"}
    inner = deep_schema
    for _ in range(3000):
        inner["items"] = {"type": "array"}
        inner = inner["items"]
    assert validate(deep_schema, value) == ["$: value nests too deeply to check"]


# ---- generated types (hypothesis) ---------------------------------------------------------

JsonStrategy = st.SearchStrategy[Any]
Pair = tuple[Any, JsonStrategy]

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=4),
)
any_json = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)

_base: list[Pair] = [
    (str, st.text(max_size=5)),
    (int, st.integers(-(2**53), 2**53)),
    (float, st.floats(allow_nan=False, allow_infinity=False)),
    (bool, st.booleans()),
    (type(None), st.none()),
    (Literal["a", "b"], st.sampled_from(["a", "b"])),
    (Color, st.sampled_from(["red", "green"])),
    (Level, st.sampled_from([1, 2])),
]

_counter = iter(range(10**9))
# Built at run time from drawn hints; typed Any so mypy does not read them as type expressions.
_LIST: Any = list
_DICT: Any = dict
_TUPLE: Any = tuple
_OPTIONAL: Any = Optional
_TYPED_DICT: Any = TypedDict


def _typeddict(children: list[Pair]) -> Pair:
    fields = {f"k{i}": hint for i, (hint, _) in enumerate(children)}
    cls = _TYPED_DICT(f"TD{next(_counter)}", fields)
    values = st.fixed_dictionaries({f"k{i}": s for i, (_, s) in enumerate(children)})
    return cls, values


def _dataclass(children: list[Pair]) -> Pair:
    cls = dataclasses.make_dataclass(
        f"DC{next(_counter)}", [(f"f{i}", hint) for i, (hint, _) in enumerate(children)]
    )
    values = st.fixed_dictionaries({f"f{i}": s for i, (_, s) in enumerate(children)})
    return cls, values


def _extend(children: st.SearchStrategy[Pair]) -> st.SearchStrategy[Pair]:
    return st.one_of(
        children.map(lambda p: (_LIST[p[0]], st.lists(p[1], max_size=3))),
        children.map(
            lambda p: (
                _DICT[str, p[0]],
                st.dictionaries(st.text(max_size=3), p[1], max_size=3),
            )
        ),
        children.map(lambda p: (_OPTIONAL[p[0]], st.one_of(st.none(), p[1]))),
        st.tuples(children, children).map(
            lambda ps: (
                _TUPLE[ps[0][0], ps[1][0]],
                st.tuples(ps[0][1], ps[1][1]).map(list),
            )
        ),
        st.lists(children, min_size=1, max_size=3).map(_typeddict),
        st.lists(children, min_size=1, max_size=3).map(_dataclass),
    )


typed_values: st.SearchStrategy[Pair] = st.recursive(st.sampled_from(_base), _extend, max_leaves=6)


def conforms(obj: Any, hint: Any) -> bool:
    """Whether a converted argument has the Python types its hint promises."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is type(None):
        return obj is None
    if hint is float:
        return type(obj) is float
    if hint in (int, str, bool):
        return type(obj) is hint
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return isinstance(obj, hint)
    if dataclasses.is_dataclass(hint):
        return isinstance(obj, hint) and all(  # type: ignore[arg-type]
            conforms(getattr(obj, f.name), f.type) for f in dataclasses.fields(hint)
        )
    if typing.is_typeddict(hint):
        hints = typing.get_type_hints(hint)
        return isinstance(obj, dict) and all(conforms(v, hints[k]) for k, v in obj.items())
    if origin is Literal:
        return obj in args
    if origin is Union or origin is typing.Union:
        return obj is None or conforms(obj, args[0])
    if origin is list:
        return isinstance(obj, list) and all(conforms(o, args[0]) for o in obj)
    if origin is dict:
        return isinstance(obj, dict) and all(conforms(o, args[1]) for o in obj.values())
    if origin is tuple:
        return isinstance(obj, tuple) and all(
            conforms(o, a) for o, a in zip(obj, args, strict=True)
        )
    raise AssertionError(f"unexpected hint {hint!r}")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=typed_values, data=st.data())
def test_generated_types_round_trip(pair: Pair, data: st.DataObject) -> None:
    hint, values = pair
    schema = type_schema(hint)
    Validator.check_schema(schema)
    value = data.draw(values)
    # Both validators accept a value generated from the type ...
    assert validate(schema, value) == []
    assert Validator(schema).is_valid(value)
    # ... and a tool taking and returning it receives the promised types and echoes it.
    received: list[Any] = []

    def echo(value: Any) -> Any:
        received.append(value)
        return value

    echo.__annotations__ = {"value": hint, "return": hint}
    registry = Registry()
    registry.register(echo, description="Echo.")
    out = json.loads(registry.dispatch("echo", json.dumps({"value": value})))
    assert out == value
    assert conforms(received[0], hint), (received[0], hint)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=typed_values, value=any_json)
def test_validator_agrees_with_jsonschema(pair: Pair, value: Any) -> None:
    schema = type_schema(pair[0])
    assert (validate(schema, value) == []) == Validator(schema).is_valid(value)
