"""The demo skills through MCP, over stdio and streamable HTTP: the Python examples
``acme.report`` (A2UI documents and a form) and ``acme.notes``, built with componentize-py
(cached under build/test-cache), signed, installed and called with the SDK's real client.

The operator's policy grants storage to ``report`` only, so ``acme.notes`` — which declares
``notes`` storage — is refused by the host and reports ``capability_denied``, as a model
would see it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import types

import daemon_fixtures as F
from mcp_harness import FIXTURE_TOOLS, TRANSPORTS, Harness, error_kind, harnesses, run, tool_names
from palyra.authoring.local_skill import LocalSkill

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "python"
CACHE = REPO / "build" / "test-cache"
DEMO_TOOLS = {
    "acme.report.report",
    "acme.report.add_entry",
    "acme.notes.add",
    "acme.notes.get",
    "acme.notes.list_notes",
    "acme.notes.delete",
}
POLICY = '[runtime]\nstorage = ["report"]\n'


@pytest.fixture(scope="module")
def demo_artifacts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("demo")
    paths = []
    for name in ("report", "notes"):
        with LocalSkill.open(
            EXAMPLES / name,
            key=F.KEY,  # one publisher (acme), one key: the fixture skill is acme's too
            build_cache=CACHE / "builds",
            code_cache=CACHE / "modules",
        ) as skill:
            path = out / f"acme.{name}.palyra-skill"
            path.write_bytes(skill.artifact)
            paths.append(path)
    return paths


@pytest.fixture(params=TRANSPORTS)
def h(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    demo_artifacts: list[Path],
) -> Iterator[Harness]:
    with harnesses(request.param, tmp_path, monkeypatch) as make:
        yield make(config=POLICY, artifacts=demo_artifacts)


def test_the_demo_skills_over_mcp(h: Harness) -> None:
    async def scenario() -> None:
        async with h.connect() as client:
            listed = await client.list_tools()
            assert tool_names(listed) == DEMO_TOOLS | FIXTURE_TOOLS
            by_name = {tool.name: tool for tool in listed.tools}
            assert by_name["acme.notes.add"].input_schema["required"] == ["title", "body"]

            report = await client.call_tool("acme.report.report", {"limit": 5})
            assert not report.is_error, report.content
            assert report.meta is not None
            assert report.meta["palyra/a2ui"] is True
            document = report.structured_content
            assert document is not None
            assert document["v"] == 1
            form = next(c for c in document["components"] if c.get("type") == "form")

            submitted = await client.call_tool(
                "acme.report.add_entry",
                {
                    "componentId": form["id"],
                    "values": {"category": "software", "amount": 12.5, "description": "mcp"},
                },
            )
            assert not submitted.is_error, submitted.content
            assert submitted.meta is not None
            assert submitted.meta["palyra/a2ui"] is True
            block = submitted.content[0]
            assert isinstance(block, types.TextContent)
            assert "mcp" in block.text  # the new expense is in the updated report

            bad = await client.call_tool(
                "acme.report.add_entry",
                {"componentId": form["id"], "values": {"category": "software", "amount": -1}},
            )
            assert error_kind(bad) == "invalid_input"  # the skill checks its form values

            denied = await client.call_tool("acme.notes.add", {"title": "t", "body": "b"})
            assert error_kind(denied) == "capability_denied"

        outcomes = [e["payload"]["outcome"] for e in h.operator.journal(kind="tool.call")["events"]]
        assert outcomes[:2] == ["ok", "ok"]
        assert outcomes[-1] == "capability_denied"

    run(scenario)
