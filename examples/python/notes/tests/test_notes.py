"""Tests that run acme.notes' tools in the real sandbox, as an installed skill runs.

LocalSkill builds the component (cached by source digest), packages and signs it with a
throwaway key, verifies and audits it, and calls tools through the same code as the daemon:
input and output are checked against the schemas in skill.toml.
"""

from pathlib import Path

import pytest

from palyra.authoring.local_skill import LocalSkill
from palyra.runtime.context import HostServices
from palyra.runtime.errors import RuntimeFailure
from palyra.runtime.tools import RuntimePolicy

SKILL = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def skill(tmp_path_factory: pytest.TempPathFactory) -> LocalSkill:
    storage = HostServices(state_root=tmp_path_factory.mktemp("state"))
    return LocalSkill.open(SKILL, services=storage)


def kind(failure: RuntimeFailure) -> str:
    """The kind the tool failed with (the runtime reports a tool's own not_found as a
    tool_error whose details carry guest_kind)."""
    return str(failure.details.get("guest_kind", failure.kind))


def test_a_note_goes_round_trip(skill: LocalSkill) -> None:
    note = skill.call("add", {"title": "Buy milk", "body": "2 litres", "tags": ["shopping"]})
    assert note["id"] == f"buy-milk-{note['number']}"
    assert skill.call("get", {"id": note["id"]}) == note
    listed = skill.call("list_notes", {"tag": "shopping"})
    assert [n["id"] for n in listed["notes"]] == [note["id"]]
    assert skill.call("delete", {"id": note["id"]}) == {"id": note["id"], "deleted": True}
    assert skill.call("list_notes", {"tag": "shopping"}) == {"notes": [], "total": 0}


def test_unknown_ids_are_not_found(skill: LocalSkill) -> None:
    for tool in ("get", "delete"):
        with pytest.raises(RuntimeFailure) as caught:
            skill.call(tool, {"id": "never-stored-42"})
        assert kind(caught.value) == "not_found"


@pytest.mark.parametrize(
    "value",
    [
        {"title": "", "body": ""},
        {"title": "t", "body": "x" * 4001},
        {"title": "t", "body": "", "tags": ["No Caps"]},
    ],
)
def test_bad_input_is_refused(skill: LocalSkill, value: dict[str, object]) -> None:
    with pytest.raises(RuntimeFailure) as caught:
        skill.call("add", value)
    assert caught.value.kind == "invalid_input"


def test_a_path_as_id_never_reaches_storage(skill: LocalSkill) -> None:
    with pytest.raises(RuntimeFailure) as caught:
        skill.call("get", {"id": "../../other-skill/secret-1"})
    assert caught.value.kind == "invalid_input"


def test_without_the_storage_grant_it_is_denied(skill: LocalSkill) -> None:
    with pytest.raises(RuntimeFailure) as caught:
        skill.call("list_notes", {}, RuntimePolicy.allow_declared(storage=frozenset()))
    assert caught.value.kind == "capability_denied"
