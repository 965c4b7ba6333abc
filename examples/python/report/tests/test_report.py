"""Tests that run acme.report's tools in the real sandbox, as an installed skill runs.

Both tools answer with an A2UI document, which the SDK checks against the A2UI schema inside
the component: a call takes 15-26 M fuel. The calls here use a policy whose fuel limit is the
manifest's own fuel_budget, so they do not depend on the operator's default limit.
"""

from pathlib import Path
from typing import Any

import pytest

from palyra.authoring.local_skill import LocalSkill
from palyra.runtime.context import HostServices
from palyra.runtime.errors import RuntimeFailure
from palyra.runtime.limits import RuntimeLimits
from palyra.runtime.tools import RuntimePolicy

SKILL = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def skill(tmp_path_factory: pytest.TempPathFactory) -> LocalSkill:
    storage = HostServices(state_root=tmp_path_factory.mktemp("state"))
    return LocalSkill.open(SKILL, services=storage)


@pytest.fixture(scope="module")
def policy(skill: LocalSkill) -> RuntimePolicy:
    fuel = skill.manifest.capabilities.quotas.fuel_budget
    return RuntimePolicy.allow_declared(limits=RuntimeLimits(fuel=fuel))


def parts(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {component["id"]: component["props"] for component in document["components"]}


def test_report_has_a_chart_a_table_and_a_form(skill: LocalSkill, policy: RuntimePolicy) -> None:
    shown = parts(skill.call("report", {}, policy))
    assert [point["label"] for point in shown["totals"]["series"]] == [
        "Travel",
        "Meals",
        "Software",
        "Office",
    ]
    assert shown["latest"]["columns"][0] == "#"
    assert shown["add-expense"]["submit_tool"] == "add_entry"


def test_a_submitted_expense_shows_in_the_next_report(
    skill: LocalSkill, policy: RuntimePolicy
) -> None:
    values = {"category": "travel", "amount": 42, "description": "Train to Lyon"}
    answer = parts(
        skill.call("add_entry", {"componentId": "add-expense", "values": values}, policy)
    )
    assert answer["notice"]["value"].endswith("42.00 EUR for Travel.")
    latest = parts(skill.call("report", {}, policy))["latest"]["rows"][0]
    assert latest[2:] == ["Travel", "42.00", "Train to Lyon"]


@pytest.mark.parametrize(
    "values", [{"category": "travel", "amount": -1}, {"category": "fun", "amount": 1}]
)
def test_bad_submissions_are_refused(
    skill: LocalSkill, policy: RuntimePolicy, values: dict[str, Any]
) -> None:
    with pytest.raises(RuntimeFailure) as caught:
        skill.call("add_entry", {"componentId": "add-expense", "values": values}, policy)
    assert caught.value.kind == "invalid_input"
