"""A2UI v1 builders: exact document shapes, the console's bounds, and the document schema."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from palyra_sdk import a2ui
from palyra_sdk.a2ui import A2uiError
from palyra_sdk.schema import validate

DOC_VALIDATOR = jsonschema.Draft202012Validator(a2ui.A2UI_DOCUMENT_SCHEMA)


def assert_valid(doc: dict[str, Any]) -> None:
    DOC_VALIDATOR.validate(doc)
    assert validate(a2ui.A2UI_DOCUMENT_SCHEMA, doc) == []


def test_schema_is_a_valid_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(a2ui.A2UI_DOCUMENT_SCHEMA)
    jsonschema.Draft202012Validator.check_schema(a2ui.FORM_SUBMISSION_SCHEMA)


def test_known_good_fixture() -> None:
    """The reference's known-good document, byte for byte."""
    doc = a2ui.document(a2ui.text("Palyra bootstrap", id="welcome"), surface="bootstrap")
    fixture = (
        '{"v":1,"surface":"bootstrap","components":[{"id":"welcome","type":"text",'
        '"props":{"value":"Palyra bootstrap"}}]}'
    )
    # The builder always states the tone; otherwise the document is the fixture.
    expected = json.loads(fixture)
    expected["components"][0]["props"] = {"tone": "normal", "value": "Palyra bootstrap"}
    assert doc.to_dict() == expected
    assert json.loads(doc.to_json()) == expected
    assert ", " not in doc.to_json()
    assert_valid(json.loads(fixture))


def test_every_component_shape() -> None:
    doc = a2ui.document(
        a2ui.text("Heads up", tone="critical"),
        a2ui.markdown("**bold** and [link](https://example.com)"),
        a2ui.bullet_list(["a", 2, 2.5, 3.0, True]),
        a2ui.numbered_list(["first"], id="steps"),
        a2ui.table(["Host", "Up", "Load"], [["a", True, 0.5], ["b", False, None]]),
        a2ui.chart(["Mon", "Tue"], [3, 4.5], kind="line", title="Calls"),
        surface="ops",
        title="Status",
    )
    assert doc.to_dict() == {
        "v": 1,
        "surface": "ops",
        "components": [
            {"id": "title", "type": "markdown", "props": {"value": "# Status"}},
            {
                "id": "component-2",
                "type": "text",
                "props": {"tone": "critical", "value": "Heads up"},
            },
            {
                "id": "component-3",
                "type": "markdown",
                "props": {"value": "**bold** and [link](https://example.com)"},
            },
            {
                "id": "component-4",
                "type": "list",
                "props": {"ordered": False, "items": ["a", "2", "2.5", "3", "true"]},
            },
            {"id": "steps", "type": "list", "props": {"ordered": True, "items": ["first"]}},
            {
                "id": "component-6",
                "type": "table",
                "props": {
                    "columns": ["Host", "Up", "Load"],
                    "rows": [["a", "true", "0.5"], ["b", "false", ""]],
                },
            },
            {
                "id": "component-7",
                "type": "chart",
                "props": {
                    "title": "Calls",
                    "kind": "line",
                    "series": [{"label": "Mon", "value": 3}, {"label": "Tue", "value": 4.5}],
                },
            },
        ],
    }
    assert_valid(doc.to_dict())


def test_form_shape() -> None:
    form = a2ui.form(
        "deploy",
        [
            a2ui.text_field("service", "Service", required=True, placeholder="api"),
            a2ui.email_field("notify", hint="Who to tell", default="ops@example.com"),
            a2ui.number_field("replicas", "Replicas", minimum=1, maximum=10, step=1, default=3),
            a2ui.select_field(
                "region", "Region", options=[("eu-west", "EU West"), "us-east"], default="us-east"
            ),
            a2ui.checkbox_field("dry_run", "Dry run", default=True),
        ],
        "Deploy",
        submit_tool="deploy_service",
        title="Deploy a service",
    )
    doc = a2ui.document(form, surface="deploy").to_dict()
    assert doc["components"][0] == {
        "id": "deploy",
        "type": "form",
        "props": {
            "title": "Deploy a service",
            "submit_label": "Deploy",
            "submit_tool": "deploy_service",
            "fields": [
                {
                    "id": "service",
                    "label": "Service",
                    "type": "text",
                    "required": True,
                    "placeholder": "api",
                },
                {
                    "id": "notify",
                    "label": "notify",
                    "type": "email",
                    "hint": "Who to tell",
                    "required": False,
                    "default": "ops@example.com",
                },
                {
                    "id": "replicas",
                    "label": "Replicas",
                    "type": "number",
                    "required": False,
                    "min": 1,
                    "max": 10,
                    "step": 1,
                    "default": 3,
                },
                {
                    "id": "region",
                    "label": "Region",
                    "type": "select",
                    "required": False,
                    "options": [
                        {"label": "EU West", "value": "eu-west"},
                        {"label": "us-east", "value": "us-east"},
                    ],
                    "default": "us-east",
                },
                {
                    "id": "dry_run",
                    "label": "Dry run",
                    "type": "checkbox",
                    "required": False,
                    "default": True,
                },
            ],
        },
    }
    assert_valid(doc)
    assert a2ui.document(form).submit_tools() == {"deploy": "deploy_service"}


def test_ids_are_assigned_around_explicit_ones() -> None:
    doc = a2ui.document(a2ui.text("a", id="component-2"), a2ui.text("b"), a2ui.text("c"))
    assert [c["id"] for c in doc.to_dict()["components"]] == [
        "component-2",
        "component-2-2",
        "component-3",
    ]


def test_component_without_document_has_no_id() -> None:
    with pytest.raises(A2uiError, match="place it in document"):
        a2ui.text("x").to_dict()


S = "x"


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: a2ui.text(S * 513), "text value has 513 characters; A2UI allows at most 512"),
        (lambda: a2ui.text("x", tone="loud"), "tone 'loud' is not one of"),  # type: ignore[arg-type]
        (lambda: a2ui.text(3), "text value must be a string, not int"),  # type: ignore[arg-type]
        (lambda: a2ui.markdown(S * 12_001), "at most 12000"),
        (lambda: a2ui.list_([S] * 257), "list has 257 entries; A2UI allows at most 256"),
        (lambda: a2ui.list_("abc"), "list items must be a list, not str"),
        (lambda: a2ui.list_([S * 513]), "list item 0 has 513 characters"),
        (lambda: a2ui.list_([float("inf")]), "list item 0 must be finite"),
        (lambda: a2ui.list_([1, {"a": 1}]), "list item 1 must be a string, number or bool"),  # type: ignore[list-item]
        (lambda: a2ui.table([], []), "table columns needs at least 1 entry"),
        (lambda: a2ui.table([S] * 17, []), "table columns has 17 entries"),
        (lambda: a2ui.table([S * 257], []), "table column 0 has 257 characters"),
        (lambda: a2ui.table([" "], []), "table column 0 cannot be empty"),
        (lambda: a2ui.table(["a"], [["1"]] * 257), "table rows has 257 entries"),
        (lambda: a2ui.table(["a", "b"], [["1"]]), "table row 0 has 1 cells; the table has 2"),
        (lambda: a2ui.table(["a"], ["x"]), "table row 0 must be a list"),
        (lambda: a2ui.chart([], []), "chart needs at least 1 entry"),
        (lambda: a2ui.chart(["a"] * 65, [1] * 65), "chart has 65 entries"),
        (lambda: a2ui.chart(["a"], [1, 2]), "chart has 1 labels but 2 values"),
        (lambda: a2ui.chart(["a"], [-1]), "chart value 0 is -1; it must be between 0 and 1e+06"),
        (lambda: a2ui.chart(["a"], [1e6 + 1]), "chart value 0 is"),
        (lambda: a2ui.chart(["a"], [float("nan")]), "chart value 0 must be finite"),
        (lambda: a2ui.chart(["a"], [True]), "chart value 0 must be a number"),
        (lambda: a2ui.chart([S * 65], [1]), "chart label 0 has 65 characters"),
        (lambda: a2ui.chart(["a"], [1], kind="pie"), "chart kind 'pie'"),  # type: ignore[arg-type]
        (lambda: a2ui.text("x", id="has space"), "component id 'has space' must use"),
        (lambda: a2ui.text("x", id="a--b"), "single '-'"),
        (lambda: a2ui.text("x", id="-a"), "single '-'"),
        (lambda: a2ui.text("x", id="é"), "must use"),
        (lambda: a2ui.text("x", id=S * 65), "component id has 65 characters"),
        (lambda: a2ui.text("x", id=""), "component id cannot be empty"),
        (lambda: a2ui.Component("video", {}), "component type 'video'"),
        (a2ui.document, "document needs at least 1 entry"),
        (lambda: a2ui.document(*[a2ui.text("x")] * 129), "document has 129 entries"),
        (
            lambda: a2ui.document(*[a2ui.text("x")] * 128, title="T"),
            "document has 129 entries",
        ),
        (lambda: a2ui.document(a2ui.text("x"), surface=""), "surface cannot be empty"),
        (lambda: a2ui.document(a2ui.text("x"), surface=S * 129), "surface has 129"),
        (lambda: a2ui.document(a2ui.text("x"), title="a\nb"), "title must be one line"),
        (
            lambda: a2ui.document(a2ui.text("x", id="a"), a2ui.text("y", id="a")),
            "two components have the id 'a'",
        ),
        (
            lambda: a2ui.document(a2ui.text("x", id="title"), title="T"),
            "'title' is taken by the document title",
        ),
        (lambda: a2ui.document({"id": "x"}), "must be built with text()"),  # type: ignore[arg-type]
    ],
)
def test_bounds(build: Any, fragment: str) -> None:
    with pytest.raises(A2uiError) as caught:
        build()
    assert fragment in str(caught.value)


def _field(**kw: Any) -> a2ui.FormField:
    return a2ui.text_field("f", **kw)


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: a2ui.text_field("f", S * 65), "label of field 'f' has 65 characters"),
        (lambda: a2ui.text_field("f" * 49), "form field id has 49 characters"),
        (lambda: a2ui.text_field("a b"), "form field id 'a b' must use"),
        (lambda: _field(hint=S * 129), "hint of field 'f' has 129"),
        (lambda: _field(placeholder=S * 97), "placeholder of field 'f' has 97"),
        (lambda: _field(default=S * 513), "default of field 'f' has 513"),
        (lambda: a2ui.number_field("n", minimum=-1e6 - 1), "minimum of field 'n' is"),
        (lambda: a2ui.number_field("n", minimum=5, maximum=4), "maximum of field 'n' is 4"),
        (lambda: a2ui.number_field("n", step=0), "step of field 'n' is 0"),
        (lambda: a2ui.number_field("n", step=1e5 + 1), "step of field 'n'"),
        (lambda: a2ui.number_field("n", default=101), "default of field 'n' is 101"),
        (lambda: a2ui.number_field("n", maximum=float("inf")), "must be finite"),
        (lambda: a2ui.select_field("s", options=[]), "options of field 's' needs at least 1"),
        (lambda: a2ui.select_field("s", options=["a"] * 65), "has 65 entries"),
        (lambda: a2ui.select_field("s", options=["a", "a"]), "option value 'a' twice"),
        (lambda: a2ui.select_field("s", options=["a b"]), "value of option 0 of field 's'"),
        (lambda: a2ui.select_field("s", options=[("a", S * 65)]), "label of option 0"),
        (lambda: a2ui.select_field("s", options=["a"], default="b"), "is not one of its options"),
        (lambda: a2ui.checkbox_field("c", default="yes"), "must be a bool"),  # type: ignore[arg-type]
        (
            lambda: a2ui.form("f", [], submit_tool="t"),
            "fields of form 'f' needs at least 1 entry",
        ),
        (
            lambda: a2ui.form("f", [_field()] * 2, submit_tool="t"),
            "two fields with the id 'f'",
        ),
        (
            lambda: a2ui.form("f", [a2ui.text_field(f"x{i}") for i in range(33)], submit_tool="t"),
            "has 33 entries; A2UI allows at most 32",
        ),
        (lambda: a2ui.form("f", [_field()], submit_tool="Bad-Name"), "submit_tool 'Bad-Name'"),
        (lambda: a2ui.form("f", [_field()], S * 49, submit_tool="t"), "submit_label of form"),
        (lambda: a2ui.form("f", [_field()], submit_tool="t", title=""), "title of form"),
        (lambda: a2ui.form("f", [{"id": "x"}], submit_tool="t"), "must be built with"),  # type: ignore[list-item]
    ],
)
def test_form_bounds(build: Any, fragment: str) -> None:
    with pytest.raises(A2uiError) as caught:
        build()
    assert fragment in str(caught.value)


def test_limits_are_inclusive() -> None:
    fields = [a2ui.select_field(f"f{i}", options=[f"o{j}" for j in range(64)]) for i in range(32)]
    doc = a2ui.document(
        a2ui.text(S * 512),
        a2ui.markdown(S * 12_000),
        a2ui.list_([S * 512] * 256),
        a2ui.table([S * 256] * 16, [[S * 512] * 16] * 256),
        a2ui.chart([S * 64] * 64, [1_000_000] * 64),
        a2ui.form("f" * 64, fields, S * 48, submit_tool="t" * 64, title=S * 512),
        *[a2ui.text("x") for _ in range(121)],
        title=S * 510,
        surface=S * 128,
    )
    d = doc.to_dict()
    assert len(d["components"]) == 128
    assert_valid(d)


def test_schema_rejects_what_the_builders_refuse() -> None:
    good = a2ui.document(a2ui.text("x")).to_dict()
    bad_docs = [
        {**good, "v": 2},
        {**good, "surface": ""},
        {**good, "components": []},
        {**good, "extra": 1},
        {**good, "components": [{"id": "a", "type": "video", "props": {}}]},
        {**good, "components": [{"id": "a b", "type": "text", "props": {"value": "x"}}]},
        {**good, "components": [{"id": "a", "type": "text", "props": {"value": S * 513}}]},
        {**good, "components": [{"id": "a", "type": "text", "props": {"value": "x", "on": 1}}]},
        {**good, "components": [{"id": "a", "type": "chart", "props": {"series": []}}]},
        {
            **good,
            "components": [
                {"id": "a", "type": "chart", "props": {"series": [{"label": "a", "value": -1}]}}
            ],
        },
        {
            **good,
            "components": [
                {
                    "id": "a",
                    "type": "form",
                    "props": {"fields": [{"id": "s", "type": "select"}]},
                }
            ],
        },
        {**good, "components": [a2ui.text("x").with_id("a").to_dict()] * 129},
        {
            **good,
            "experimental": {
                "track_id": "t",
                "feature_flag": "f",
                "support_summary": "s",
                "security_review": ["r"],
                "exit_criteria": ["e"],
                "ambient_mode": "push_to_talk",
            },
        },
    ]
    for doc in bad_docs:
        assert not DOC_VALIDATOR.is_valid(doc), doc
        assert validate(a2ui.A2UI_DOCUMENT_SCHEMA, doc) != [], doc
    experimental = {
        **good,
        "experimental": {**bad_docs[-1]["experimental"], "consent_required": True},
    }
    assert_valid(experimental)


# ---- properties ---------------------------------------------------------------------------


def sanitize_identifier(raw: str, limit: int) -> str:
    """The console's sanitiser (runtime reference §8.7 rule 2)."""
    return re.sub(r"-+", "-", re.sub(r"[^a-zA-Z0-9:_-]", "-", raw))[:limit]


@given(st.text(max_size=70))
def test_accepted_ids_survive_the_console_sanitiser(raw: str) -> None:
    try:
        component = a2ui.text("x", id=raw)
    except A2uiError:
        assert (
            sanitize_identifier(raw, 64) != raw
            or not raw
            or len(raw) > 64
            or raw.startswith("-")
            or raw.endswith("-")
        )
    else:
        assert component.id == raw
        assert sanitize_identifier(raw, 64) == raw


texts = st.text(max_size=20)
small = st.floats(min_value=0, max_value=1e6, allow_nan=False)
component_strategy = st.one_of(
    st.builds(a2ui.text, texts, tone=st.sampled_from(a2ui.TONES)),
    st.builds(a2ui.markdown, texts),
    st.builds(a2ui.list_, st.lists(st.one_of(texts, st.integers(), st.booleans()), max_size=5)),
    st.integers(1, 4).flatmap(
        lambda n: st.builds(
            a2ui.table,
            st.lists(st.text(min_size=1, max_size=5).filter(str.strip), min_size=n, max_size=n),
            st.lists(st.lists(texts, min_size=n, max_size=n), max_size=4),
        )
    ),
    st.integers(1, 5).flatmap(
        lambda n: st.builds(
            a2ui.chart,
            st.lists(st.text(min_size=1, max_size=8).filter(str.strip), min_size=n, max_size=n),
            st.lists(small, min_size=n, max_size=n),
            kind=st.sampled_from(a2ui.CHART_KINDS),
        )
    ),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(component_strategy, min_size=1, max_size=6), st.text(min_size=1, max_size=10))
def test_built_documents_match_the_schema(components: list[a2ui.Component], surface: str) -> None:
    if not surface.strip():
        with pytest.raises(A2uiError):
            a2ui.document(*components, surface=surface)
        return
    doc = a2ui.document(*components, surface=surface)
    assert_valid(doc.to_dict())
    assert json.loads(doc.to_json()) == doc.to_dict()


@given(st.integers(0, 300), st.integers(0, 600))
def test_list_bounds_are_exact(count: int, length: int) -> None:
    allowed = count <= 256 and (count == 0 or length <= 512)
    try:
        a2ui.list_(["x" * length] * count)
    except A2uiError:
        accepted = False
    else:
        accepted = True
    assert accepted == allowed
