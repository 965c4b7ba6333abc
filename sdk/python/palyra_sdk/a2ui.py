"""Builders for A2UI v1 documents: UI that a tool returns for the Palyra console to render.

A document is ``{"v": 1, "surface": str, "components": [{"id", "type", "props"}, ...]}``
(runtime reference §8.1). The builders check every bound the console's normaliser applies
(counts, string lengths, identifier characters, number ranges) and raise :class:`A2uiError`
with a clear message instead of letting the console silently clamp or drop things.

>>> from palyra_sdk import a2ui
>>> doc = a2ui.document(
...     a2ui.text("3 open incidents", tone="critical"),
...     a2ui.table(["id", "title"], [["INC-1", "Disk full"], ["INC-2", "Latency"]]),
...     title="Incidents",
... )
>>> doc.to_dict()["components"][0]["type"]
'markdown'

Forms. ``form(..., submit_tool="name")`` names the tool *of the same skill* that handles the
submission. When the user submits, the console calls that tool with the input
``{"componentId": "<form id>", "values": {"<field id>": <str | number | bool>, ...}}``, so the
handler is declared as::

    @tool
    def save_settings(componentId: str, values: a2ui.FormValues) -> a2ui.Document: ...

The console validates ``values`` against nothing but the field types, so the handler must
check them like any other input.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence, Sized
from typing import Any, Final, Literal

__all__ = [
    "A2UI_DOCUMENT_SCHEMA",
    "FORM_SUBMISSION_SCHEMA",
    "A2uiError",
    "Component",
    "Document",
    "FormField",
    "FormValues",
    "bullet_list",
    "chart",
    "checkbox_field",
    "document",
    "email_field",
    "form",
    "list_",
    "markdown",
    "number_field",
    "numbered_list",
    "select_field",
    "table",
    "text",
    "text_field",
]

VERSION: Final = 1
MAX_SURFACE: Final = 128
MAX_COMPONENTS: Final = 128
MAX_COMPONENT_ID: Final = 64
MAX_STRING: Final = 512
MAX_MARKDOWN: Final = 12_000
MAX_LIST_ITEMS: Final = 256
MAX_TABLE_COLUMNS: Final = 16
MAX_COLUMN_NAME: Final = 256
MAX_TABLE_ROWS: Final = 256
MAX_FORM_FIELDS: Final = 32
MAX_FORM_TITLE: Final = 512
MAX_SUBMIT_LABEL: Final = 48
MAX_FIELD_ID: Final = 48
MAX_FIELD_LABEL: Final = 64
MAX_FIELD_HINT: Final = 128
MAX_PLACEHOLDER: Final = 96
MAX_SELECT_OPTIONS: Final = 64
MAX_OPTION_LABEL: Final = 64
MAX_OPTION_VALUE: Final = 64
MAX_CHART_POINTS: Final = 64
MAX_CHART_LABEL: Final = 64
MAX_CHART_VALUE: Final = 1_000_000.0
NUMBER_LIMIT: Final = 1_000_000.0
MIN_STEP: Final = 1e-6
MAX_STEP: Final = 100_000.0

Tone = Literal["normal", "muted", "success", "critical"]
TONES: Final = ("normal", "muted", "success", "critical")
ChartKind = Literal["bar", "line"]
CHART_KINDS: Final = ("bar", "line")
COMPONENT_TYPES: Final = ("text", "markdown", "list", "table", "form", "chart")
FIELD_TYPES: Final = ("text", "email", "number", "select", "checkbox")

#: What a form-submission handler receives as ``values``: field id -> entered value.
FormValues = dict[str, str | float | bool]
Cell = str | int | float | bool | None

# The console's identifier sanitiser maps other characters to "-" and collapses runs of "-":
# ids that already have the sanitised form survive it unchanged.
_IDENTIFIER: Final = re.compile(r"[A-Za-z0-9:_]+(?:-[A-Za-z0-9:_]+)*")
_TOOL_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")


class A2uiError(ValueError):
    """A component or document breaks an A2UI bound (the message says which and how)."""


# ---- checks ---------------------------------------------------------------------------------


def _string(value: Any, what: str, limit: int, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise A2uiError(f"{what} must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise A2uiError(f"{what} has {len(value)} characters; A2UI allows at most {limit}")
    if not empty and not value.strip():
        raise A2uiError(f"{what} cannot be empty")
    return value


def _identifier(value: Any, what: str, limit: int) -> str:
    _string(value, what, limit, empty=False)
    if not _IDENTIFIER.fullmatch(value):
        raise A2uiError(
            f"{what} {value[:80]!r} must use letters, digits, ':', '_' and single '-' between them"
        )
    return str(value)


def _count(items: Sized, what: str, limit: int, *, minimum: int = 0) -> None:
    if len(items) > limit:
        raise A2uiError(f"{what} has {len(items)} entries; A2UI allows at most {limit}")
    if len(items) < minimum:
        raise A2uiError(f"{what} needs at least {minimum} entr{'y' if minimum == 1 else 'ies'}")


def _number(value: Any, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise A2uiError(f"{what} must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise A2uiError(f"{what} must be finite")
    if not low <= value <= high:
        raise A2uiError(f"{what} is {value}; it must be between {low:g} and {high:g}")
    return value


def _scalar_text(value: Any, what: str) -> str:
    """A list item or table cell as the text the console shows."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise A2uiError(f"{what} must be finite")
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    if isinstance(value, str):
        return _string(value, what, MAX_STRING)
    raise A2uiError(f"{what} must be a string, number or bool, not {type(value).__name__}")


def _sequence(value: Any, what: str) -> Sequence[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise A2uiError(f"{what} must be a list, not {type(value).__name__}")
    return value if isinstance(value, Sequence) else list(value)


# ---- components -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Component:
    """One A2UI component. ``id`` is assigned by :func:`document` when None."""

    type: str
    props: Mapping[str, Any]
    id: str | None = None

    def __post_init__(self) -> None:
        if self.type not in COMPONENT_TYPES:
            raise A2uiError(
                f"component type {self.type!r} is not one of {', '.join(COMPONENT_TYPES)}"
            )
        if self.id is not None:
            _identifier(self.id, "component id", MAX_COMPONENT_ID)

    def with_id(self, component_id: str) -> Component:
        return dataclasses.replace(self, id=component_id)

    def to_dict(self) -> dict[str, Any]:
        if self.id is None:
            raise A2uiError(f"{self.type} component has no id; place it in document(...)")
        return {"id": self.id, "type": self.type, "props": _plain(self.props)}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def text(value: str, *, tone: Tone = "normal", id: str | None = None) -> Component:
    """A paragraph of plain text (at most 512 characters); ``tone`` colours it."""
    _string(value, "text value", MAX_STRING)
    if tone not in TONES:
        raise A2uiError(f"text tone {tone!r} is not one of {', '.join(TONES)}")
    return Component("text", {"tone": tone, "value": value}, id)


def markdown(value: str, *, id: str | None = None) -> Component:
    """Markdown (at most 12 000 characters). The console renders a safe subset: headings
    ``#``-``####``, bullet and numbered lists, paragraphs, ``code``, **strong**, *em*, and
    http(s)/mailto/relative links; raw HTML is shown as text."""
    _string(value, "markdown value", MAX_MARKDOWN)
    return Component("markdown", {"value": value}, id)


def list_(
    items: Iterable[str | int | float | bool], *, ordered: bool = False, id: str | None = None
) -> Component:
    """A list of at most 256 items; numbers and bools are shown as text."""
    seq = _sequence(items, "list items")
    _count(seq, "list", MAX_LIST_ITEMS)
    texts = [_scalar_text(item, f"list item {index}") for index, item in enumerate(seq)]
    return Component("list", {"ordered": bool(ordered), "items": texts}, id)


def bullet_list(items: Iterable[str | int | float | bool], *, id: str | None = None) -> Component:
    """An unordered list (see :func:`list_`)."""
    return list_(items, ordered=False, id=id)


def numbered_list(items: Iterable[str | int | float | bool], *, id: str | None = None) -> Component:
    """An ordered list (see :func:`list_`)."""
    return list_(items, ordered=True, id=id)


def table(
    columns: Sequence[str], rows: Iterable[Sequence[Cell]], *, id: str | None = None
) -> Component:
    """A table of 1-16 columns and at most 256 rows. Every row must have one cell per column;
    cells are shown as text (None as an empty cell). The first column is the row header."""
    cols = _sequence(columns, "table columns")
    _count(cols, "table columns", MAX_TABLE_COLUMNS, minimum=1)
    names = [
        _string(name, f"table column {index}", MAX_COLUMN_NAME, empty=False)
        for index, name in enumerate(cols)
    ]
    body = _sequence(rows, "table rows")
    _count(body, "table rows", MAX_TABLE_ROWS)
    out: list[list[str]] = []
    for r, row in enumerate(body):
        cells = _sequence(row, f"table row {r}")
        if len(cells) != len(names):
            raise A2uiError(f"table row {r} has {len(cells)} cells; the table has {len(names)}")
        out.append([_scalar_text(cell, f"table row {r} cell {c}") for c, cell in enumerate(cells)])
    return Component("table", {"columns": names, "rows": out}, id)


def chart(
    labels: Sequence[str],
    series: Sequence[float],
    *,
    kind: ChartKind = "bar",
    title: str = "Chart",
    id: str | None = None,
) -> Component:
    """A chart of one data series: ``labels[i]`` is the label of ``series[i]``.

    At most 64 points; labels are 1-64 characters; values are finite and within
    [0, 1 000 000] (the console draws bars proportional to the largest value). ``kind`` is a
    rendering hint (``bar`` or ``line``); consoles that only draw bars ignore it.
    """
    names = _sequence(labels, "chart labels")
    values = _sequence(series, "chart series")
    if len(names) != len(values):
        raise A2uiError(f"chart has {len(names)} labels but {len(values)} values")
    _count(names, "chart", MAX_CHART_POINTS, minimum=1)
    if kind not in CHART_KINDS:
        raise A2uiError(f"chart kind {kind!r} is not one of {', '.join(CHART_KINDS)}")
    _string(title, "chart title", MAX_STRING, empty=False)
    points = [
        {
            "label": _string(label, f"chart label {i}", MAX_CHART_LABEL, empty=False),
            "value": _number(value, f"chart value {i}", 0.0, MAX_CHART_VALUE),
        }
        for i, (label, value) in enumerate(zip(names, values, strict=True))
    ]
    return Component("chart", {"title": title, "kind": kind, "series": points}, id)


# ---- forms ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FormField:
    """One form field; build it with :func:`text_field`, :func:`number_field`, ..."""

    id: str
    type: str
    props: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **_plain(self.props)}


def _field_base(
    field_id: str, kind: str, label: str | None, hint: str | None, required: bool
) -> dict[str, Any]:
    _identifier(field_id, "form field id", MAX_FIELD_ID)
    shown = field_id if label is None else label
    base: dict[str, Any] = {
        "label": _string(shown, f"label of field {field_id!r}", MAX_FIELD_LABEL, empty=False),
        "type": kind,
    }
    if hint is not None:
        base["hint"] = _string(hint, f"hint of field {field_id!r}", MAX_FIELD_HINT)
    base["required"] = bool(required)
    return base


def _textual(
    kind: str,
    field_id: str,
    label: str | None,
    hint: str | None,
    required: bool,
    default: str | None,
    placeholder: str | None,
) -> FormField:
    props = _field_base(field_id, kind, label, hint, required)
    if placeholder is not None:
        props["placeholder"] = _string(
            placeholder, f"placeholder of field {field_id!r}", MAX_PLACEHOLDER
        )
    if default is not None:
        props["default"] = _string(default, f"default of field {field_id!r}", MAX_STRING)
    return FormField(field_id, kind, props)


def text_field(
    id: str,
    label: str | None = None,
    *,
    hint: str | None = None,
    required: bool = False,
    default: str | None = None,
    placeholder: str | None = None,
) -> FormField:
    """A one-line text input; its value arrives as a string."""
    return _textual("text", id, label, hint, required, default, placeholder)


def email_field(
    id: str,
    label: str | None = None,
    *,
    hint: str | None = None,
    required: bool = False,
    default: str | None = None,
    placeholder: str | None = None,
) -> FormField:
    """An e-mail input; its value arrives as a string (not validated by the console)."""
    return _textual("email", id, label, hint, required, default, placeholder)


def number_field(
    id: str,
    label: str | None = None,
    *,
    minimum: float = 0,
    maximum: float = 100,
    step: float = 1,
    default: float | None = None,
    hint: str | None = None,
    required: bool = False,
) -> FormField:
    """A number input within [minimum, maximum] (both within ±1 000 000). Its value arrives
    as a number; the console does not enforce the range, so the handler must."""
    props = _field_base(id, "number", label, hint, required)
    low = _number(minimum, f"minimum of field {id!r}", -NUMBER_LIMIT, NUMBER_LIMIT)
    high = _number(maximum, f"maximum of field {id!r}", low, NUMBER_LIMIT)
    props["min"] = low
    props["max"] = high
    props["step"] = _number(step, f"step of field {id!r}", MIN_STEP, MAX_STEP)
    if default is not None:
        props["default"] = _number(default, f"default of field {id!r}", low, high)
    return FormField(id, "number", props)


def select_field(
    id: str,
    label: str | None = None,
    *,
    options: Iterable[str | tuple[str, str]],
    default: str | None = None,
    hint: str | None = None,
    required: bool = False,
) -> FormField:
    """A drop-down of 1-64 options. An option is ``"value"`` (shown as is) or
    ``("value", "Label")``; values are identifiers (letters, digits, ``:_-``) and arrive as
    the submitted string. ``default`` must be one of the values (else the first is used)."""
    props = _field_base(id, "select", label, hint, required)
    opts = _sequence(options, f"options of field {id!r}")
    _count(opts, f"options of field {id!r}", MAX_SELECT_OPTIONS, minimum=1)
    out: list[dict[str, str]] = []
    for index, option in enumerate(opts):
        if isinstance(option, tuple) and len(option) == 2:
            value, shown = option
        else:
            value = shown = option
        what = f"option {index} of field {id!r}"
        value = _identifier(value, f"value of {what}", MAX_OPTION_VALUE)
        if any(o["value"] == value for o in out):
            raise A2uiError(f"field {id!r} has the option value {value!r} twice")
        out.append(
            {
                "label": _string(shown, f"label of {what}", MAX_OPTION_LABEL, empty=False),
                "value": value,
            }
        )
    props["options"] = out
    if default is not None:
        if not any(o["value"] == default for o in out):
            raise A2uiError(f"default {default!r} of field {id!r} is not one of its options")
        props["default"] = default
    return FormField(id, "select", props)


def checkbox_field(
    id: str,
    label: str | None = None,
    *,
    default: bool = False,
    hint: str | None = None,
    required: bool = False,
) -> FormField:
    """A checkbox; its value arrives as a bool."""
    props = _field_base(id, "checkbox", label, hint, required)
    if not isinstance(default, bool):
        raise A2uiError(f"default of field {id!r} must be a bool")
    props["default"] = default
    return FormField(id, "checkbox", props)


def form(
    id: str,
    fields: Iterable[FormField],
    submit_label: str = "Submit",
    *,
    submit_tool: str,
    title: str = "Form",
) -> Component:
    """A form of 1-32 fields whose submission calls ``submit_tool``, a tool of this skill,
    with ``{"componentId": id, "values": {field id: value}}`` (see the module docs)."""
    _identifier(id, "form id", MAX_COMPONENT_ID)
    items = _sequence(fields, f"fields of form {id!r}")
    _count(items, f"fields of form {id!r}", MAX_FORM_FIELDS, minimum=1)
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, FormField):
            raise A2uiError(
                f"fields of form {id!r} must be built with text_field(), number_field(), ...; "
                f"got {type(item).__name__}"
            )
        if item.id in seen:
            raise A2uiError(f"form {id!r} has two fields with the id {item.id!r}")
        seen.add(item.id)
    if not isinstance(submit_tool, str) or not _TOOL_NAME.fullmatch(submit_tool):
        raise A2uiError(
            f"submit_tool {submit_tool!r} of form {id!r} must be a tool name of this skill "
            "([a-z][a-z0-9_]{0,63})"
        )
    props = {
        "title": _string(title, f"title of form {id!r}", MAX_FORM_TITLE, empty=False),
        "submit_label": _string(
            submit_label, f"submit_label of form {id!r}", MAX_SUBMIT_LABEL, empty=False
        ),
        "submit_tool": submit_tool,
        "fields": [item.to_dict() for item in items],
    }
    return Component("form", props, id)


# ---- documents ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Document:
    """A complete A2UI v1 document. Tools may return it directly: the SDK encodes it."""

    surface: str
    components: tuple[Component, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "surface": self.surface,
            "components": [component.to_dict() for component in self.components],
        }

    def __palyra_json__(self) -> dict[str, Any]:
        return self.to_dict()

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    def submit_tools(self) -> dict[str, str]:
        """Form id -> the tool that handles its submission."""
        return {str(c.id): str(c.props["submit_tool"]) for c in self.components if c.type == "form"}


def document(*components: Component, surface: str = "main", title: str | None = None) -> Document:
    """A document of 1-128 components on ``surface`` (1-128 characters).

    ``title`` adds a leading markdown heading (component id ``title``). Components without an
    id get ``component-<position>``; ids must be unique.
    """
    _string(surface, "surface", MAX_SURFACE, empty=False)
    items: list[Component] = []
    if title is not None:
        _string(title, "document title", MAX_STRING, empty=False)
        if "\n" in title or "\r" in title:
            raise A2uiError("document title must be one line")
        items.append(markdown(f"# {title.strip()}", id="title"))
    for component in components:
        if not isinstance(component, Component):
            raise A2uiError(
                f"document components must be built with text(), table(), ...; "
                f"got {type(component).__name__}"
            )
        items.append(component)
    _count(items, "document", MAX_COMPONENTS, minimum=1)
    used: set[str] = set()
    for component in items:
        if component.id is not None:
            if title is not None and component is not items[0] and component.id == "title":
                raise A2uiError("the component id 'title' is taken by the document title")
            if component.id in used:
                raise A2uiError(f"two components have the id {component.id!r}")
            used.add(component.id)
    placed: list[Component] = []
    for index, component in enumerate(items):
        if component.id is not None:
            placed.append(component)
            continue
        candidate, n = f"component-{index + 1}", 2
        while candidate in used:
            candidate, n = f"component-{index + 1}-{n}", n + 1
        used.add(candidate)
        placed.append(component.with_id(candidate))
    return Document(surface, tuple(placed))


# ---- schemas --------------------------------------------------------------------------------

_ID_SCHEMA: Final[dict[str, Any]] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_COMPONENT_ID,
    "pattern": "^[A-Za-z0-9:_-]+$",
}


def _str(limit: int, minimum: int = 0) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "maxLength": limit}
    if minimum:
        schema["minLength"] = minimum
    return schema


def _props(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


_FIELD_COMMON: Final[dict[str, Any]] = {
    "id": {**_ID_SCHEMA, "maxLength": MAX_FIELD_ID},
    "label": _str(MAX_FIELD_LABEL),
    "type": {"enum": list(FIELD_TYPES)},
    "hint": _str(MAX_FIELD_HINT),
    "required": {"type": "boolean"},
}
_NUMBER_RANGE: Final = {"type": "number", "minimum": -NUMBER_LIMIT, "maximum": NUMBER_LIMIT}

_FIELD_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["id", "type"],
    "properties": {
        **_FIELD_COMMON,
        "placeholder": _str(MAX_PLACEHOLDER),
        "default": {"type": ["string", "number", "boolean"]},
        "min": _NUMBER_RANGE,
        "max": _NUMBER_RANGE,
        "step": {"type": "number", "minimum": MIN_STEP, "maximum": MAX_STEP},
        "options": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_SELECT_OPTIONS,
            "items": _props(
                {
                    "label": _str(MAX_OPTION_LABEL),
                    "value": {**_ID_SCHEMA, "maxLength": MAX_OPTION_VALUE},
                },
                ["value"],
            ),
        },
    },
    "additionalProperties": False,
    "allOf": [
        {
            "if": {"properties": {"type": {"enum": ["text", "email"]}}},
            "then": {"properties": {"default": _str(MAX_STRING)}},
        },
        {
            "if": {"properties": {"type": {"const": "number"}}},
            "then": {"properties": {"default": _NUMBER_RANGE}},
        },
        {
            "if": {"properties": {"type": {"const": "checkbox"}}},
            "then": {"properties": {"default": {"type": "boolean"}}},
        },
        {
            "if": {"properties": {"type": {"const": "select"}}},
            "then": {"required": ["options"], "properties": {"default": {"type": "string"}}},
        },
    ],
}

_PROPS_BY_TYPE: Final[dict[str, dict[str, Any]]] = {
    "text": _props(
        {"value": _str(MAX_STRING), "tone": {"enum": list(TONES)}},
        ["value"],
    ),
    "markdown": {
        **_props({"value": _str(MAX_MARKDOWN), "markdown": _str(MAX_MARKDOWN)}, []),
        "minProperties": 1,
    },
    "list": _props(
        {
            "ordered": {"type": "boolean"},
            "items": {"type": "array", "maxItems": MAX_LIST_ITEMS, "items": _str(MAX_STRING)},
        },
        ["items"],
    ),
    "table": _props(
        {
            "columns": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_TABLE_COLUMNS,
                "items": _str(MAX_COLUMN_NAME),
            },
            "rows": {
                "type": "array",
                "maxItems": MAX_TABLE_ROWS,
                "items": {
                    "type": "array",
                    "maxItems": MAX_TABLE_COLUMNS,
                    "items": {"type": ["string", "number", "boolean", "null"]},
                },
            },
        },
        ["columns", "rows"],
    ),
    "form": _props(
        {
            "title": _str(MAX_FORM_TITLE),
            "submit_label": _str(MAX_SUBMIT_LABEL),
            "submitLabel": _str(MAX_SUBMIT_LABEL),
            "submit_tool": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"},
            "fields": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_FORM_FIELDS,
                "items": _FIELD_SCHEMA,
            },
        },
        ["fields"],
    ),
    "chart": _props(
        {
            "title": _str(MAX_STRING),
            "kind": {"enum": list(CHART_KINDS)},
            "series": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_CHART_POINTS,
                "items": _props(
                    {
                        "label": _str(MAX_CHART_LABEL),
                        "value": {"type": "number", "minimum": 0, "maximum": MAX_CHART_VALUE},
                    },
                    ["value"],
                ),
            },
        },
        ["series"],
    ),
}

_GOVERNANCE_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "track_id": _str(64, 1),
        "feature_flag": {"type": "string", "minLength": 1, "maxLength": 96},
        "support_summary": _str(240, 1),
        "rollout_stage": {
            "enum": ["disabled", "dark_launch", "operator_preview", "limited_preview"]
        },
        "ambient_mode": {"enum": ["disabled", "push_to_talk"]},
        "consent_required": {"type": "boolean"},
        "security_review": {"type": "array", "minItems": 1, "items": _str(160, 1)},
        "exit_criteria": {"type": "array", "minItems": 1, "items": _str(160, 1)},
    },
    "required": ["track_id", "feature_flag", "support_summary", "security_review", "exit_criteria"],
    "if": {"properties": {"ambient_mode": {"const": "push_to_talk"}}, "required": ["ambient_mode"]},
    "then": {"properties": {"consent_required": {"const": True}}, "required": ["consent_required"]},
}

#: JSON Schema (2020-12) of an A2UI v1 document as the builders produce it (also accepting
#: the console's camelCase aliases ``submitLabel`` and markdown ``markdown``). Use it as the
#: ``output_schema`` of a tool that returns a document (tools annotated ``-> Document`` get it
#: automatically).
A2UI_DOCUMENT_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "A2UI v1 document",
    "type": "object",
    "properties": {
        "v": {"const": VERSION},
        "surface": _str(MAX_SURFACE, 1),
        "components": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_COMPONENTS,
            "items": {
                "type": "object",
                "properties": {
                    "id": _ID_SCHEMA,
                    "type": {"enum": list(COMPONENT_TYPES)},
                    "props": {"type": "object"},
                },
                "required": ["id", "type", "props"],
                "additionalProperties": False,
                "allOf": [
                    {
                        "if": {"properties": {"type": {"const": kind}}},
                        "then": {"properties": {"props": props}},
                    }
                    for kind, props in _PROPS_BY_TYPE.items()
                ],
            },
        },
        "experimental": _GOVERNANCE_SCHEMA,
    },
    "required": ["v", "surface", "components"],
    "additionalProperties": False,
}

#: JSON Schema of the input a form's ``submit_tool`` receives.
FORM_SUBMISSION_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "componentId": {**_ID_SCHEMA},
        "values": {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        },
    },
    "required": ["componentId", "values"],
    "additionalProperties": False,
}
