"""Declaring tools (``@tool``), describing them, and dispatching calls to them.

>>> from palyra_sdk import tool
>>> @tool
... def add(a: int, b: int = 1) -> int:
...     '''Add two integers.'''
...     return a + b

The input schema comes from the parameters, the output schema from the return annotation, and
the description from the docstring's first paragraph (parameter descriptions from its
``Args:`` section). :func:`dispatch` is what the component's ``call`` export runs: it decodes
and checks the input, calls the function with keyword arguments, encodes the result, and turns
*every* failure into a :class:`~palyra_sdk.errors.ToolFailure` with the right kind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, TypeVar, overload

from palyra_sdk import _json, errors, schema
from palyra_sdk.a2ui import Document
from palyra_sdk.errors import ToolFailure

__all__ = [
    "NAME_PATTERN",
    "Registry",
    "ToolDefinitionError",
    "ToolSpec",
    "default_registry",
    "describe",
    "dispatch",
    "failure_from_exception",
    "tool",
]

NAME_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_INPUT_ERRORS: Final = 20

F = TypeVar("F", bound=Callable[..., Any])


class ToolDefinitionError(ValueError):
    """A ``@tool`` declaration is invalid (bad name, duplicate, missing description...)."""


class _InputError(Exception):
    """The input could not be turned into the function's argument types."""


# ---- converting input values to the annotated types ------------------------------------------

_UNION_TYPES: tuple[Any, ...] = (typing.Union, types.UnionType)
_schema_cache: dict[Any, schema.JsonSchema] = {}


def _matches(hint: Any, value: Any) -> bool:
    try:
        member = _schema_cache.get(hint)
    except TypeError:  # unhashable hint
        member = None
    if member is None:
        try:
            member = schema.type_schema(hint)
        except schema.SchemaError:
            return False
        with contextlib.suppress(TypeError):
            _schema_cache[hint] = member
    return not schema.validate(member, value, max_errors=1)


def _field_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _convert(value: Any, hint: Any, where: str) -> Any:
    """``value`` (decoded JSON that passed the schema check) as an instance of ``hint``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any or hint is object:
        return value
    if origin is typing.Annotated or origin in (typing.Required, typing.NotRequired):
        return _convert(value, args[0], where)
    supertype = getattr(hint, "__supertype__", None)
    if supertype is not None:
        return _convert(value, supertype, where)
    if type(hint).__name__ == "TypeAliasType":
        return _convert(value, hint.__value__, where)
    if hint is float:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if hint is int:
        return int(value) if isinstance(value, float) and value.is_integer() else value
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if isinstance(hint, type) and typing.is_typeddict(hint) and isinstance(value, dict):
        hints = _field_hints(hint)
        return {k: _convert(v, hints.get(k, Any), f"{where}.{k}") for k, v in value.items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict):
        hints = _field_hints(hint)
        kwargs = {k: _convert(v, hints.get(k, Any), f"{where}.{k}") for k, v in value.items()}
        return hint(**kwargs)
    if origin in _UNION_TYPES:
        if value is None and type(None) in args:
            return None
        for member in args:
            if member is not type(None) and _matches(member, value):
                return _convert(value, member, where)
        return value
    if isinstance(value, list):
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
            if args and args != ((),):
                return tuple(
                    _convert(v, args[i], f"{where}[{i}]") if i < len(args) else v
                    for i, v in enumerate(value)
                )
            return tuple(value)
        if hint is tuple:
            return tuple(value)
        item = args[0] if args else Any
        items = [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        if hint in (set, frozenset) or origin in (set, frozenset):
            return frozenset(items) if frozenset in (hint, origin) else set(items)
        return items
    if isinstance(value, dict) and len(args) == 2:
        return {k: _convert(v, args[1], f"{where}.{k}") for k, v in value.items()}
    return value


# ---- the tool specification -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ToolSpec:
    """A registered tool."""

    name: str
    description: str
    function: Callable[..., Any]
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    requires_approval: bool
    sensitive: bool
    #: Parameter name -> resolved type hint (for converting the input); empty when unknown.
    hints: Mapping[str, Any]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
            "risk": {
                "default_sensitive": self.sensitive,
                "requires_approval": self.requires_approval,
            },
        }

    def arguments(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments for ``payload`` (already checked against the schema)."""
        kwargs: dict[str, Any] = {}
        for key, value in payload.items():
            hint = self.hints.get(key, Any)
            try:
                kwargs[key] = _convert(value, hint, f"$.{key}")
            except Exception as exc:
                raise _InputError(f"parameter '{key}': {_exception_text(exc)}") from None
        return kwargs


def _checked_schema(value: Any, what: str, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ToolDefinitionError(f"tool '{name}': {what} must be a dict (a JSON Schema object)")
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ToolDefinitionError(f"tool '{name}': {what} is not JSON ({exc})") from None
    copy: dict[str, Any] = json.loads(text)
    return copy


def _check_custom_input(
    name: str, input_schema: dict[str, Any], signature: inspect.Signature
) -> None:
    if input_schema.get("type") != "object":
        raise ToolDefinitionError(f'tool \'{name}\': input_schema must have "type": "object"')
    params = signature.parameters
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    properties = input_schema.get("properties", {})
    if not isinstance(properties, dict):
        raise ToolDefinitionError(f"tool '{name}': input_schema properties must be an object")
    required = set(input_schema.get("required", ()))
    for param in params.values():
        if param.kind is param.POSITIONAL_ONLY or param.kind is param.VAR_POSITIONAL:
            raise ToolDefinitionError(
                f"tool '{name}': parameter '{param.name}' must be passable by keyword"
            )
        if (
            param.kind is not param.VAR_KEYWORD
            and param.default is param.empty
            and param.name not in required
        ):
            raise ToolDefinitionError(
                f"tool '{name}': parameter '{param.name}' has no default, so input_schema "
                "must list it in 'required'"
            )
    if not var_kw:
        extra = [key for key in properties if key not in params]
        if extra:
            raise ToolDefinitionError(
                f"tool '{name}': input_schema property '{extra[0]}' is not a parameter "
                "(add it, or **kwargs)"
            )
        if input_schema.get("additionalProperties", True) is not False:
            raise ToolDefinitionError(
                f"tool '{name}': input_schema must set additionalProperties to false "
                "(or the function must take **kwargs)"
            )


def _make_spec(
    fn: Callable[..., Any],
    *,
    name: str | None,
    description: str | None,
    input_schema: dict[str, Any] | None,
    output_schema: dict[str, Any] | None,
    requires_approval: bool,
    sensitive: bool,
) -> ToolSpec:
    if not callable(fn):
        raise ToolDefinitionError(f"@tool needs a function, not {type(fn).__name__}")
    tool_name = name if name is not None else getattr(fn, "__name__", "")
    if not isinstance(tool_name, str) or not NAME_PATTERN.fullmatch(tool_name):
        raise ToolDefinitionError(
            f"tool name {tool_name!r} must match ^[a-z][a-z0-9_]{{0,63}}$ "
            "(lower case, digits and '_', starting with a letter)"
        )
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise ToolDefinitionError(f"tool '{tool_name}': async functions are not supported")
    if inspect.isgeneratorfunction(fn):
        raise ToolDefinitionError(f"tool '{tool_name}': generator functions are not supported")
    if description is None:
        doc = inspect.getdoc(fn)
        description = schema.first_paragraph(doc) if doc else ""
    else:
        description = " ".join(str(description).split())
    if not description:
        raise ToolDefinitionError(
            f"tool '{tool_name}' needs a description: give it a docstring or description=..."
        )
    if not isinstance(requires_approval, bool) or not isinstance(sensitive, bool):
        raise ToolDefinitionError(f"tool '{tool_name}': requires_approval/sensitive are bools")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ToolDefinitionError(f"tool '{tool_name}': no inspectable signature ({exc})") from None
    if input_schema is None:
        derived_input = schema.function_input_schema(fn, name=tool_name)
    else:
        derived_input = _checked_schema(input_schema, "input_schema", tool_name)
        _check_custom_input(tool_name, derived_input, signature)
    if output_schema is None:
        derived_output = schema.function_output_schema(fn, name=tool_name)
    else:
        derived_output = _checked_schema(output_schema, "output_schema", tool_name)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:
        hints = {}  # only possible with explicit schemas; the input is then passed as decoded
    hints.pop("return", None)
    return ToolSpec(
        name=tool_name,
        description=description,
        function=fn,
        input_schema=derived_input,
        output_schema=derived_output,
        requires_approval=requires_approval,
        sensitive=sensitive,
        hints=types.MappingProxyType(hints),
    )


# ---- failures ---------------------------------------------------------------------------------


def _exception_text(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        text = ""
    name = type(exc).__name__
    return errors.one_line(f"{name}: {text}" if text.strip() else name)


def failure_from_exception(exc: BaseException) -> ToolFailure:
    """The :class:`ToolFailure` a tool's exception becomes (never raises)."""
    if isinstance(exc, ToolFailure):
        return exc
    if isinstance(exc, MemoryError):
        return ToolFailure("memory_limit", "the skill ran out of memory")
    if isinstance(exc, errors.HostError):
        return ToolFailure(exc.tool_kind, str(exc), {"host_error": exc.code})
    try:
        return ToolFailure(
            "tool_error", _exception_text(exc), {"exception": type(exc).__qualname__}
        )
    except MemoryError:
        return ToolFailure("memory_limit", "the skill ran out of memory")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key '{key[:64]}' appears twice")
        out[key] = value
    return out


def _decode_input(input_json: str) -> dict[str, Any]:
    if not isinstance(input_json, str):
        raise ToolFailure("invalid_input", "input must be JSON text")
    try:
        payload = json.loads(
            input_json or "{}", object_pairs_hook=_object_pairs, parse_constant=_reject_constant
        )
    except RecursionError:
        raise ToolFailure("invalid_input", "input JSON nests too deeply") from None
    except ValueError as exc:
        raise ToolFailure("invalid_input", f"input is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ToolFailure(
            "invalid_input", f"input must be a JSON object, not {_json.json_type(payload)}"
        )
    return payload


# ---- the registry -----------------------------------------------------------------------------


class Registry:
    """An ordered set of tools. Skills use the module-level :data:`default_registry` through
    :func:`tool`, :func:`describe` and :func:`dispatch`; tests may build their own."""

    def __init__(self) -> None:
        self._tools: dict[str, ToolSpec] = {}

    def __iter__(self) -> Iterator[ToolSpec]:
        return iter(tuple(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def get(self, name: str) -> ToolSpec | None:
        return self._tools.get(name)

    def register(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        input_schema: dict[str, Any] | None = None,
        output_schema: dict[str, Any] | None = None,
        requires_approval: bool = False,
        sensitive: bool = False,
    ) -> ToolSpec:
        """Register ``fn`` as a tool (what ``@tool`` does)."""
        spec = _make_spec(
            fn,
            name=name,
            description=description,
            input_schema=input_schema,
            output_schema=output_schema,
            requires_approval=requires_approval,
            sensitive=sensitive,
        )
        existing = self._tools.get(spec.name)
        if existing is not None:
            where = getattr(existing.function, "__qualname__", "?")
            raise ToolDefinitionError(f"tool '{spec.name}' is already registered (by {where})")
        self._tools[spec.name] = spec
        return spec

    @overload
    def tool(self, fn: F, /) -> F: ...
    @overload
    def tool(
        self,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        input_schema: dict[str, Any] | None = None,
        output_schema: dict[str, Any] | None = None,
        requires_approval: bool = False,
        sensitive: bool = False,
    ) -> Callable[[F], F]: ...
    def tool(
        self,
        fn: F | None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        input_schema: dict[str, Any] | None = None,
        output_schema: dict[str, Any] | None = None,
        requires_approval: bool = False,
        sensitive: bool = False,
    ) -> F | Callable[[F], F]:
        """Decorator: ``@registry.tool`` or ``@registry.tool(name=..., ...)``. The function
        is returned unchanged (callable directly, e.g. in tests).

        * ``name`` defaults to the function's name and must match ``^[a-z][a-z0-9_]{0,63}$``;
        * ``description`` defaults to the docstring's first paragraph (one is required);
        * the schemas default to ones derived from the type hints (:mod:`palyra_sdk.schema`);
        * ``requires_approval`` asks the operator to approve each call; ``sensitive`` marks
          the tool's calls as sensitive by default (the manifest's ``risk`` table).
        """

        def decorate(function: F) -> F:
            self.register(
                function,
                name=name,
                description=description,
                input_schema=input_schema,
                output_schema=output_schema,
                requires_approval=requires_approval,
                sensitive=sensitive,
            )
            return function

        return decorate if fn is None else decorate(fn)

    def describe(self) -> str:
        """The tools as JSON text: ``[{name, description, input_schema, output_schema,
        risk: {default_sensitive, requires_approval}}]``, in registration order."""
        return json.dumps([spec.describe() for spec in self._tools.values()], ensure_ascii=False)

    def dispatch(self, tool_name: str, input_json: str) -> str:
        """Run ``tool_name`` on ``input_json``; the result as JSON text.

        Raises only :class:`~palyra_sdk.errors.ToolFailure`: ``invalid_input`` for bad input,
        ``not_found`` for an unknown tool, the host error's kind for an escaping
        :class:`~palyra_sdk.errors.HostError`, ``memory_limit`` for MemoryError, and
        ``tool_error`` ("ExceptionType: message") for anything else.
        """
        try:
            return self._dispatch(tool_name, input_json)
        except ToolFailure:
            raise
        except (Exception, SystemExit) as exc:
            raise failure_from_exception(exc) from None

    def _dispatch(self, tool_name: str, input_json: str) -> str:
        spec = self._tools.get(tool_name)
        if spec is None:
            known = ", ".join(self._tools) or "none"
            raise ToolFailure(
                "not_found", f"this skill has no tool {str(tool_name)[:64]!r} (it has: {known})"
            )
        payload = _decode_input(input_json)
        problems = schema.validate(spec.input_schema, payload, max_errors=MAX_INPUT_ERRORS)
        if problems:
            shown = "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "")
            raise ToolFailure("invalid_input", f"invalid input: {shown}", {"errors": problems})
        try:
            kwargs = spec.arguments(payload)
        except _InputError as exc:
            raise ToolFailure("invalid_input", f"invalid input: {exc}") from None
        result = spec.function(**kwargs)
        return self._encode(spec, result)

    def _encode(self, spec: ToolSpec, result: Any) -> str:
        if isinstance(result, Document):
            for form_id, target in result.submit_tools().items():
                if target not in self._tools:
                    raise ToolFailure(
                        "tool_error",
                        f"form '{form_id}' submits to '{target}', which is not a tool of this "
                        "skill",
                    )
        try:
            value = _json.to_jsonable(result)
        except (TypeError, ValueError) as exc:
            raise ToolFailure(
                "tool_error", f"tool '{spec.name}' returned a value that is not JSON: {exc}"
            ) from None
        problems = schema.validate(spec.output_schema, value, max_errors=5)
        if problems:
            raise ToolFailure(
                "tool_error",
                f"tool '{spec.name}' returned output that does not match its output schema: "
                + "; ".join(problems[:3]),
                {"errors": problems},
            )
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


#: The registry ``@tool``, :func:`describe` and :func:`dispatch` use.
default_registry: Final = Registry()


#: Declare a tool in the default registry: ``@tool`` or ``@tool(name=..., ...)`` (see
#: :meth:`Registry.tool` for the options).
tool = default_registry.tool


def describe() -> str:
    """``default_registry.describe()``."""
    return default_registry.describe()


def dispatch(tool_name: str, input_json: str) -> str:
    """``default_registry.dispatch(tool_name, input_json)``."""
    return default_registry.dispatch(tool_name, input_json)
