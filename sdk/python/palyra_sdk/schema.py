"""JSON Schema (draft 2020-12) from Python type hints, and a small validator for it.

Supported hints: ``str``, ``int``, ``float``, ``bool``, ``None``, ``typing.Any``, ``list[T]``,
``Sequence[T]``, ``set[T]``, ``frozenset[T]``, ``tuple[T, ...]``, ``tuple[A, B]``,
``dict[str, T]``, ``Mapping[str, T]``, ``X | Y`` / ``Optional[X]`` / ``Union[...]``,
``Literal[...]``, ``Enum`` subclasses, ``TypedDict`` (``total``, ``Required``, ``NotRequired``),
dataclasses, ``NewType``, type aliases, :class:`palyra_sdk.a2ui.Document`, and
``Annotated[T, Field(...)]`` for descriptions and constraints. Anything else raises
:class:`SchemaError` naming the parameter and the offending hint. Recursive types are refused.

The validator (:func:`validate`) understands the keywords this module emits (plus ``const``,
``allOf``, ``oneOf``, ``not`` and ``if``/``then``/``else``) and ignores all others: it is a fast
first check inside the skill; the host validates every call fully against the manifest.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import inspect
import json
import math
import re
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, Final

from palyra_sdk import _json
from palyra_sdk.a2ui import A2UI_DOCUMENT_SCHEMA, Document

__all__ = [
    "JSON_SCHEMA_DIALECT",
    "Field",
    "SchemaError",
    "function_input_schema",
    "function_output_schema",
    "type_schema",
    "validate",
]

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
MAX_DEPTH: Final = 32


class _Unset:
    """The default of ``Field.default``: no default."""

    def __repr__(self) -> str:
        return "<unset>"


_MISSING: Final[Any] = _Unset()
JsonSchema = dict[str, Any]


class SchemaError(TypeError):
    """A type hint cannot be expressed as JSON Schema (the message names where)."""


@dataclasses.dataclass(frozen=True)
class Field:
    """Schema details for ``Annotated[T, Field(...)]``::

        def forecast(
            city: Annotated[str, Field(description="City name", max_length=80)],
            days: Annotated[int, Field(minimum=1, maximum=14)] = 3,
        ) -> str: ...

    Constraints must suit the type: ``minimum``/``maximum``/``exclusive_*``/``multiple_of`` on
    numbers, ``min_length``/``max_length``/``pattern``/``format`` on strings,
    ``min_items``/``max_items``/``unique_items`` on arrays; otherwise :class:`SchemaError`.
    """

    description: str | None = None
    title: str | None = None
    default: Any = _MISSING
    examples: Sequence[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    multiple_of: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    format: str | None = None
    min_items: int | None = None
    max_items: int | None = None
    unique_items: bool | None = None
    enum: Sequence[Any] | None = None

    def __post_init__(self) -> None:
        # Hashable, so ``Annotated`` can cache the hint.
        for name in ("examples", "enum"):
            value = getattr(self, name)
            if value is not None:
                if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                    raise SchemaError(f"Field({name}=...) must be a list of values")
                object.__setattr__(self, name, tuple(value))


# ---- deriving schemas -----------------------------------------------------------------------

_NUMERIC: Final = frozenset({"integer", "number"})
_UNION_TYPES: tuple[Any, ...] = (typing.Union, types.UnionType)
_SEQUENCE_ORIGINS: Final = frozenset({list, collections.abc.Sequence, collections.abc.Iterable})
_SET_ORIGINS: Final = frozenset({set, frozenset, collections.abc.Set, collections.abc.MutableSet})
_MAPPING_ORIGINS: Final = frozenset({dict, collections.abc.Mapping, collections.abc.MutableMapping})


def _hint_name(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__qualname__
    if type(hint).__name__ == "TypeAliasType":
        return str(hint.__name__)
    text = repr(hint)
    return text.replace("typing.", "").replace("collections.abc.", "")


def _json_default(value: Any, where: str) -> Any:
    try:
        return _json.to_jsonable(value)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"{where}: default {value!r} is not a JSON value ({exc})") from None


def _is_typeddict(hint: Any) -> bool:
    return isinstance(hint, type) and typing.is_typeddict(hint)


def _own_docstring(cls: type) -> str | None:
    doc = cls.__dict__.get("__doc__")
    if not isinstance(doc, str) or not doc.strip():
        return None
    if doc.startswith(f"{cls.__name__}("):  # the docstring dataclasses generate
        return None
    if doc.strip() in ("An enumeration.", "Create a collection of name/value pairs."):
        return None
    return first_paragraph(doc)


def first_paragraph(doc: str) -> str:
    """The first paragraph of a docstring, on one line."""
    text = inspect.cleandoc(doc)
    para = text.split("\n\n", 1)[0]
    return " ".join(para.split())


def _schema_types(schema: JsonSchema) -> set[str] | None:
    """The JSON types a schema can match, or None when it cannot be told simply."""
    if "type" in schema:
        kind = schema["type"]
        return {kind} if isinstance(kind, str) else set(kind)
    if "enum" in schema:
        return {_json.json_type(v) for v in schema["enum"]}
    if "anyOf" in schema:
        found: set[str] = set()
        for member in schema["anyOf"]:
            sub = _schema_types(member)
            if sub is None:
                return None
            found |= sub
        return found
    return None


class _Builder:
    def __init__(self) -> None:
        self._expanding: list[Any] = []

    def schema(self, hint: Any, where: str, depth: int = 0) -> JsonSchema:
        if depth > MAX_DEPTH:
            raise SchemaError(f"{where}: type nests deeper than {MAX_DEPTH} levels")
        if hint is Any or hint is object:
            return {}
        if hint is None or hint is type(None):
            return {"type": "null"}
        if isinstance(hint, (str, typing.ForwardRef)):
            raise SchemaError(f"{where}: unresolved forward reference {_hint_name(hint)}")
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if origin is typing.Annotated:
            return self._annotated(hint, where, depth)
        if origin in (typing.Required, typing.NotRequired):
            raise SchemaError(f"{where}: Required/NotRequired only apply to TypedDict keys")
        if hint is bool:
            return {"type": "boolean"}
        if hint is int:
            return {"type": "integer"}
        if hint is float:
            return {"type": "number"}
        if hint is str:
            return {"type": "string"}
        if hint is Document:
            return {k: v for k, v in A2UI_DOCUMENT_SCHEMA.items() if k != "$schema"}
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return self._enum(hint, where)
        if _is_typeddict(hint):
            return self._expand(hint, where, depth, self._typeddict)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            return self._expand(hint, where, depth, self._dataclass)
        if origin is typing.Literal:
            return self._literal(args, where)
        if origin in _UNION_TYPES:
            return self._union(args, where, depth)
        if origin is not None and hasattr(origin, "__value__") and not isinstance(origin, type):
            # A generic ``type X[T] = ...`` alias applied to arguments (Python 3.12+).
            raise SchemaError(f"{where}: generic type aliases are not supported")
        supertype = getattr(hint, "__supertype__", None)
        if supertype is not None:  # typing.NewType
            return self.schema(supertype, where, depth + 1)
        if type(hint).__name__ == "TypeAliasType":  # ``type X = ...`` (Python 3.12+)
            return self._expand(hint, where, depth, self._alias)
        if hint in (list, tuple, set, frozenset) or origin in _SEQUENCE_ORIGINS | _SET_ORIGINS:
            return self._array(hint, origin, args, where, depth)
        if origin is tuple:
            return self._tuple(args, where, depth)
        if hint is dict or origin in _MAPPING_ORIGINS:
            return self._mapping(args, where, depth)
        if hint is bytes or hint is bytearray:
            raise SchemaError(
                f"{where}: bytes have no JSON form; use str (for example base64 text)"
            )
        raise SchemaError(f"{where}: unsupported type hint {_hint_name(hint)}")

    def _annotated(self, hint: Any, where: str, depth: int) -> JsonSchema:
        base, *metadata = typing.get_args(hint)
        schema = self.schema(base, where, depth + 1)
        for item in metadata:
            if isinstance(item, Field):
                schema = apply_field(schema, item, where)
        return schema

    def _expand(
        self,
        cls: Any,
        where: str,
        depth: int,
        build: Callable[[Any, str, int], JsonSchema],
    ) -> JsonSchema:
        if cls in self._expanding:
            chain = " -> ".join(_hint_name(c) for c in [*self._expanding, cls])
            raise SchemaError(f"{where}: recursive type {_hint_name(cls)} ({chain})")
        self._expanding.append(cls)
        try:
            return build(cls, where, depth)
        finally:
            self._expanding.pop()

    def _alias(self, alias: Any, where: str, depth: int) -> JsonSchema:
        return self.schema(alias.__value__, where, depth + 1)

    def _hints_of(self, cls: type, where: str) -> dict[str, Any]:
        try:
            return typing.get_type_hints(cls, include_extras=True)
        except Exception as exc:
            raise SchemaError(
                f"{where}: cannot resolve the annotations of {cls.__qualname__}: {exc}"
            ) from None

    def _typeddict(self, cls: type, where: str, depth: int) -> JsonSchema:
        hints = self._hints_of(cls, where)
        required_keys: frozenset[str] = getattr(cls, "__required_keys__", frozenset())
        properties: dict[str, JsonSchema] = {}
        required: list[str] = []
        for key, hint in hints.items():
            inner, is_required = hint, key in required_keys
            # Unwrap Required/NotRequired ourselves: with ``from __future__ import
            # annotations`` Python 3.11 does not see them in ``__required_keys__``.
            while True:
                origin = typing.get_origin(inner)
                if origin is typing.NotRequired:
                    is_required = False
                elif origin is typing.Required:
                    is_required = True
                elif origin is typing.Annotated:
                    base, *meta = typing.get_args(inner)
                    if typing.get_origin(base) in (typing.Required, typing.NotRequired):
                        inner = typing.Annotated[(typing.get_args(base)[0], *meta)]
                        is_required = typing.get_origin(base) is typing.Required
                    break
                else:
                    break
                inner = typing.get_args(inner)[0]
            properties[key] = self.schema(
                inner, f"{where} -> key '{key}' of {cls.__qualname__}", depth + 1
            )
            if is_required:
                required.append(key)
        return _object_schema(properties, required, _own_docstring(cls))

    def _dataclass(self, cls: type, where: str, depth: int) -> JsonSchema:
        hints = self._hints_of(cls, where)
        properties: dict[str, JsonSchema] = {}
        required: list[str] = []
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            field_where = f"{where} -> field '{f.name}' of {cls.__qualname__}"
            schema = self.schema(hints.get(f.name, Any), field_where, depth + 1)
            if f.default is not dataclasses.MISSING:
                schema = _with_default(schema, f.default, field_where)
            elif f.default_factory is dataclasses.MISSING:
                required.append(f.name)
            properties[f.name] = schema
        return _object_schema(properties, required, _own_docstring(cls))

    def _enum(self, cls: type[enum.Enum], where: str) -> JsonSchema:
        values = [member.value for member in cls]
        if not values:
            raise SchemaError(f"{where}: enum {cls.__qualname__} has no members")
        for value in values:
            if value is None or not isinstance(value, (str, int, float)):
                raise SchemaError(
                    f"{where}: enum {cls.__qualname__} values must be strings or numbers, "
                    f"not {type(value).__name__}"
                )
        schema: JsonSchema = {"enum": values}
        kinds = {_json.json_type(v) for v in values}
        if len(kinds) == 1:
            schema = {"type": kinds.pop(), **schema}
        doc = _own_docstring(cls)
        if doc:
            schema["description"] = doc
        return schema

    def _literal(self, args: tuple[Any, ...], where: str) -> JsonSchema:
        values: list[Any] = []
        for arg in args:
            value = arg.value if isinstance(arg, enum.Enum) else arg
            if value is not None and not isinstance(value, (str, int, float, bool)):
                raise SchemaError(f"{where}: Literal value {arg!r} is not a JSON scalar")
            if not any(_json_equal(v, value) for v in values):
                values.append(value)
        schema: JsonSchema = {"enum": values}
        kinds = {_json.json_type(v) for v in values}
        if len(kinds) == 1:
            schema = {"type": kinds.pop(), **schema}
        return schema

    def _union(self, args: tuple[Any, ...], where: str, depth: int) -> JsonSchema:
        members = [self.schema(arg, where, depth + 1) for arg in args]
        if any(member == {} for member in members):
            return {}
        if all(set(member) == {"type"} for member in members):
            merged: list[str] = []
            for member in members:
                kinds = member["type"] if isinstance(member["type"], list) else [member["type"]]
                merged.extend(kind for kind in kinds if kind not in merged)
            return {"type": merged[0] if len(merged) == 1 else merged}
        return {"anyOf": members}

    def _array(
        self, hint: Any, origin: Any, args: tuple[Any, ...], where: str, depth: int
    ) -> JsonSchema:
        if hint is tuple:
            return {"type": "array"}
        schema: JsonSchema = {"type": "array"}
        if args:
            items = self.schema(args[0], f"{where} -> items", depth + 1)
            if items:
                schema["items"] = items
        if hint in (set, frozenset) or origin in _SET_ORIGINS:
            schema["uniqueItems"] = True
        return schema

    def _tuple(self, args: tuple[Any, ...], where: str, depth: int) -> JsonSchema:
        if len(args) == 2 and args[1] is Ellipsis:
            return self._array(list, list, args[:1], where, depth)
        if not args or args == ((),):
            return {"type": "array", "maxItems": 0}
        items = [
            self.schema(arg, f"{where} -> item {index}", depth + 1)
            for index, arg in enumerate(args)
        ]
        return {
            "type": "array",
            "prefixItems": items,
            "items": False,
            "minItems": len(items),
            "maxItems": len(items),
        }

    def _mapping(self, args: tuple[Any, ...], where: str, depth: int) -> JsonSchema:
        schema: JsonSchema = {"type": "object"}
        if not args:
            return schema
        key, value = args
        if key is not str:
            raise SchemaError(f"{where}: object keys must be str, not {_hint_name(key)}")
        values = self.schema(value, f"{where} -> values", depth + 1)
        if values:
            schema["additionalProperties"] = values
        return schema


def _object_schema(
    properties: dict[str, JsonSchema], required: list[str], description: str | None
) -> JsonSchema:
    schema: JsonSchema = {"type": "object"}
    if description:
        schema["description"] = description
    schema["properties"] = properties
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema


def _with_default(schema: JsonSchema, default: Any, where: str) -> JsonSchema:
    value = _json_default(default, where)
    problems = validate(schema, value, max_errors=1)
    if problems:
        raise SchemaError(f"{where}: default {default!r} does not match its type: {problems[0]}")
    return {**schema, "default": value}


def _check_applicable(schema: JsonSchema, where: str, name: str, wanted: set[str]) -> None:
    kinds = _schema_types(schema)
    if kinds is not None and not kinds & wanted:
        raise SchemaError(
            f"{where}: Field({name}=...) needs a {' or '.join(sorted(wanted))} type, "
            f"not {' or '.join(sorted(kinds)) or 'nothing'}"
        )


def apply_field(schema: JsonSchema, field: Field, where: str) -> JsonSchema:
    """``schema`` with the details and constraints of ``field`` (checked for sense)."""
    out = dict(schema)
    numeric = {
        "minimum": field.minimum,
        "maximum": field.maximum,
        "exclusiveMinimum": field.exclusive_minimum,
        "exclusiveMaximum": field.exclusive_maximum,
        "multipleOf": field.multiple_of,
    }
    for key, value in numeric.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError(f"{where}: Field {key} must be a number")
        if not math.isfinite(value):
            raise SchemaError(f"{where}: Field {key} must be finite")
        _check_applicable(schema, where, key, set(_NUMERIC))
        out[key] = value
    if field.multiple_of is not None and field.multiple_of <= 0:
        raise SchemaError(f"{where}: Field multiple_of must be greater than 0")
    sized = {
        "minLength": (field.min_length, {"string"}),
        "maxLength": (field.max_length, {"string"}),
        "minItems": (field.min_items, {"array"}),
        "maxItems": (field.max_items, {"array"}),
    }
    for key, (size, wanted) in sized.items():
        if size is None:
            continue
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise SchemaError(f"{where}: Field {key} must be a non-negative integer")
        _check_applicable(schema, where, key, wanted)
        out[key] = size
    for low, high in (
        ("minimum", "maximum"),
        ("minLength", "maxLength"),
        ("minItems", "maxItems"),
    ):
        if low in out and high in out and out[low] > out[high]:
            raise SchemaError(f"{where}: Field {low} ({out[low]}) exceeds {high} ({out[high]})")
    if field.pattern is not None:
        _check_applicable(schema, where, "pattern", {"string"})
        try:
            re.compile(field.pattern)
        except re.error as exc:
            raise SchemaError(f"{where}: Field pattern is not a valid regex: {exc}") from None
        out["pattern"] = field.pattern
    if field.format is not None:
        _check_applicable(schema, where, "format", {"string"})
        out["format"] = field.format
    if field.unique_items is not None:
        _check_applicable(schema, where, "unique_items", {"array"})
        out["uniqueItems"] = bool(field.unique_items)
    if field.enum is not None:
        values = [_json_default(v, f"{where} (Field enum)") for v in field.enum]
        if not values:
            raise SchemaError(f"{where}: Field enum cannot be empty")
        for value in values:
            problems = validate(schema, value, max_errors=1)
            if problems:
                raise SchemaError(f"{where}: Field enum value {value!r} does not match its type")
        out["enum"] = values
    if field.title is not None:
        out["title"] = field.title
    if field.description is not None:
        out["description"] = " ".join(field.description.split())
    if field.examples is not None:
        out["examples"] = [_json_default(v, f"{where} (Field examples)") for v in field.examples]
    if field.default is not _MISSING:
        out = _with_default(out, field.default, where)
    # Title and description first: the schema reads better that way in manifests.
    head: JsonSchema = {key: out[key] for key in ("title", "description") if key in out}
    return {**head, **{key: value for key, value in out.items() if key not in head}}


def type_schema(hint: Any, *, where: str = "value") -> JsonSchema:
    """The JSON Schema of one type hint (no ``$schema`` key)."""
    return _Builder().schema(hint, where)


def _resolved_hints(fn: Callable[..., Any], name: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise SchemaError(f"tool '{name}': cannot resolve its type hints: {exc}") from None


_ARGS_HEADINGS: Final = ("args:", "arguments:", "parameters:", "params:")
_ARG_LINE: Final = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def docstring_params(doc: str | None) -> dict[str, str]:
    """Parameter descriptions from a Google-style ``Args:`` section of a docstring."""
    if not doc:
        return {}
    lines = inspect.cleandoc(doc).splitlines()
    found: dict[str, str] = {}
    in_args = False
    current: str | None = None
    base_indent = 0
    for line in lines:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if not in_args:
            if stripped.lower() in _ARGS_HEADINGS:
                in_args, base_indent, current = True, -1, None
            continue
        if not stripped:
            current = None
            continue
        if base_indent < 0:
            base_indent = indent
        if indent < base_indent or (indent == 0 and stripped.endswith(":")):
            in_args = stripped.lower() in _ARGS_HEADINGS
            base_indent, current = -1, None
            continue
        match = _ARG_LINE.match(stripped)
        if indent == base_indent and match:
            current = match.group(1)
            found[current] = match.group(2).strip()
        elif current is not None:
            found[current] = f"{found[current]} {stripped}".strip()
    return {name: text for name, text in found.items() if text}


def function_input_schema(fn: Callable[..., Any], *, name: str | None = None) -> JsonSchema:
    """The input schema of a tool function: one property per parameter.

    Parameters with a default are optional (the default is recorded when it is JSON);
    ``additionalProperties`` is false. ``*args``, ``**kwargs``, positional-only and
    unannotated parameters raise :class:`SchemaError`.
    """
    label = name or str(getattr(fn, "__name__", "tool"))
    hints = _resolved_hints(fn, label)
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"tool '{label}': no inspectable signature ({exc})") from None
    descriptions = docstring_params(inspect.getdoc(fn))
    builder = _Builder()
    properties: dict[str, JsonSchema] = {}
    required: list[str] = []
    for param in signature.parameters.values():
        where = f"tool '{label}' parameter '{param.name}'"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise SchemaError(f"{where}: *args and **kwargs cannot be tool parameters")
        if param.kind is param.POSITIONAL_ONLY:
            raise SchemaError(f"{where}: positional-only parameters cannot be tool parameters")
        if param.name not in hints:
            raise SchemaError(f"{where}: needs a type annotation")
        schema = builder.schema(hints[param.name], where)
        text = descriptions.get(param.name)
        if text and "description" not in schema:
            schema = {"description": text, **schema}
        if param.default is param.empty:
            required.append(param.name)
        elif "default" not in schema:
            schema = _with_default(schema, param.default, where)
        properties[param.name] = schema
    out: JsonSchema = {"$schema": JSON_SCHEMA_DIALECT, "type": "object", "properties": properties}
    if required:
        out["required"] = required
    out["additionalProperties"] = False
    return out


def function_output_schema(fn: Callable[..., Any], *, name: str | None = None) -> JsonSchema:
    """The output schema of a tool function, from its return annotation (which is required;
    use ``-> Any`` for "any JSON value")."""
    label = name or str(getattr(fn, "__name__", "tool"))
    hints = _resolved_hints(fn, label)
    if "return" not in hints:
        raise SchemaError(
            f"tool '{label}': needs a return annotation (use '-> Any' for any JSON value)"
        )
    schema = _Builder().schema(hints["return"], f"tool '{label}' return value")
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}


# ---- validating -----------------------------------------------------------------------------


def _path(parts: Sequence[str | int]) -> str:
    text = "$"
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _type_matches(kind: str, value: Any) -> bool:
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return _json.json_type(value) == kind


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _normal(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_normal(item) for item in value]
    if isinstance(value, dict):
        return {key: _normal(item) for key, item in value.items()}
    return value


def _canonical(value: Any) -> str:
    """One text per JSON value, equal for equal values (1 and 1.0 alike; true and 1 not)."""
    return json.dumps(_normal(value), sort_keys=True, allow_nan=True)


class _Validator:
    def __init__(self, max_errors: int) -> None:
        self.errors: list[str] = []
        self.max_errors = max_errors

    def full(self) -> bool:
        return len(self.errors) >= self.max_errors

    def fail(self, path: list[str | int], message: str) -> None:
        if not self.full():
            self.errors.append(f"{_path(path)}: {message}")

    def ok(self, schema: Any, value: Any) -> bool:
        probe = _Validator(1)
        probe.check(schema, value, [])
        return not probe.errors

    def check(self, schema: Any, value: Any, path: list[str | int]) -> None:
        if self.full():
            return
        if schema is True or schema == {}:
            return
        if schema is False:
            self.fail(path, "no value is allowed here")
            return
        if not isinstance(schema, dict):
            return
        kind = schema.get("type")
        if kind is not None:
            kinds = [kind] if isinstance(kind, str) else list(kind)
            if not any(_type_matches(k, value) for k in kinds):
                self.fail(path, f"expected {' or '.join(kinds)}, got {_json.json_type(value)}")
                return
        if "const" in schema and not _json_equal(schema["const"], value):
            self.fail(path, f"must be {schema['const']!r}")
        if "enum" in schema and not any(_json_equal(v, value) for v in schema["enum"]):
            shown = ", ".join(repr(v) for v in schema["enum"][:10])
            self.fail(path, f"must be one of {shown}")
        self._combinators(schema, value, path)
        if isinstance(value, str):
            self._string(schema, value, path)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            self._number(schema, value, path)
        elif isinstance(value, list):
            self._array(schema, value, path)
        elif isinstance(value, dict):
            self._object(schema, value, path)

    def _combinators(self, schema: JsonSchema, value: Any, path: list[str | int]) -> None:
        if "anyOf" in schema and not any(self.ok(s, value) for s in schema["anyOf"]):
            self._best_branch(schema["anyOf"], value, path, "anyOf")
        if "oneOf" in schema:
            matches = sum(1 for s in schema["oneOf"] if self.ok(s, value))
            if matches != 1:
                self.fail(path, f"must match exactly one alternative, matches {matches}")
        for sub in schema.get("allOf", ()):
            self.check(sub, value, path)
        if "not" in schema and self.ok(schema["not"], value):
            self.fail(path, "matches a schema it must not match")
        if "if" in schema:
            branch = schema.get("then") if self.ok(schema["if"], value) else schema.get("else")
            if branch is not None:
                self.check(branch, value, path)

    def _best_branch(
        self, branches: list[Any], value: Any, path: list[str | int], keyword: str
    ) -> None:
        # Report the errors of a branch whose type fits, so the message is specific.
        for branch in branches:
            types_ = _schema_types(branch) if isinstance(branch, dict) else None
            if types_ and any(_type_matches(k, value) for k in types_):
                self.check(branch, value, path)
                return
        self.fail(path, f"matches none of the allowed alternatives ({keyword})")

    def _string(self, schema: JsonSchema, value: str, path: list[str | int]) -> None:
        if "minLength" in schema and len(value) < schema["minLength"]:
            self.fail(path, f"must have at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            self.fail(path, f"must have at most {schema['maxLength']} characters")
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            try:
                matched = re.search(pattern, value) is not None
            except re.error:
                matched = False
            if not matched:
                self.fail(path, f"does not match the pattern {pattern!r}")

    def _number(self, schema: JsonSchema, value: float, path: list[str | int]) -> None:
        if "minimum" in schema and value < schema["minimum"]:
            self.fail(path, f"must be >= {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            self.fail(path, f"must be <= {schema['maximum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            self.fail(path, f"must be > {schema['exclusiveMinimum']}")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            self.fail(path, f"must be < {schema['exclusiveMaximum']}")
        step = schema.get("multipleOf")
        if isinstance(step, (int, float)) and step > 0:
            quotient = value / step
            if not math.isfinite(quotient) or abs(quotient - round(quotient)) > 1e-9:
                self.fail(path, f"must be a multiple of {step}")

    def _array(self, schema: JsonSchema, value: list[Any], path: list[str | int]) -> None:
        if "minItems" in schema and len(value) < schema["minItems"]:
            self.fail(path, f"must have at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            self.fail(path, f"must have at most {schema['maxItems']} items")
        prefix = schema.get("prefixItems", [])
        for index, item in enumerate(value):
            if self.full():
                return
            if index < len(prefix):
                self.check(prefix[index], item, [*path, index])
            elif "items" in schema:
                self.check(schema["items"], item, [*path, index])
        if schema.get("uniqueItems"):
            seen: set[str] = set()
            for index, item in enumerate(value):
                key = _canonical(item)
                if key in seen:
                    self.fail([*path, index], "duplicates an earlier item")
                    break
                seen.add(key)

    def _object(self, schema: JsonSchema, value: dict[str, Any], path: list[str | int]) -> None:
        properties = schema.get("properties", {})
        top = not path
        for key in schema.get("required", ()):
            if key not in value:
                what = "parameter" if top else "key"
                self.fail(path, f"missing required {what} '{key}'")
        additional = schema.get("additionalProperties", True)
        for key, item in value.items():
            if self.full():
                return
            if key in properties:
                self.check(properties[key], item, [*path, key])
            elif additional is False:
                what = "parameter" if top else "key"
                allowed = ", ".join(properties) or "none"
                self.fail(path, f"unknown {what} '{key[:64]}' (allowed: {allowed})")
            else:
                self.check(additional, item, [*path, key])
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            self.fail(path, f"must have at least {schema['minProperties']} keys")
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            self.fail(path, f"must have at most {schema['maxProperties']} keys")


def validate(schema: JsonSchema | bool, instance: Any, *, max_errors: int = 20) -> list[str]:
    """Errors of ``instance`` against ``schema`` (``"$.path: message"``), at most
    ``max_errors``; an empty list means valid. Unknown keywords are ignored."""
    validator = _Validator(max(1, max_errors))
    try:
        validator.check(schema, instance, [])
    except RecursionError:
        return ["$: value nests too deeply to check"]
    return validator.errors
