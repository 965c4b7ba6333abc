"""Authoring a skill: ``palyra skills new`` → ``skills build [--fill-tools]`` → ``skills
package build`` → ``skills run``, with the real toolchains (componentize-py, clang), the real
sandbox and the generated skill's own tests; plus hostile input for each step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from c_build import toolchain_problem
from component_guests import CACHE
from conftest import CliResult
from palyra.authoring.build_cache import BuildError
from palyra.authoring.scaffold import PYTHON_TOOLS, new_skill
from palyra.authoring.skill_dir import detect_language, fill_tools
from palyra.errors import UsageError

Cli = Callable[..., CliResult]


@pytest.fixture
def caches(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Builds and compiled code shared with the rest of the suite (a fresh clone pays once)."""
    env = {
        "PALYRA_BUILD_CACHE": str(CACHE / "builds"),
        "PALYRA_CODE_CACHE": str(CACHE / "modules"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def ok(result: CliResult) -> CliResult:
    assert result.exit_code == 0, result.stderr + result.stdout
    return result


def package(cli: Cli, skill: Path, tmp_path: Path) -> Path:
    key = tmp_path / "publisher.key"
    if not key.exists():
        ok(cli("keys", "generate", "--out", str(key)))
    artifact = tmp_path / f"{skill.name}.palyra-skill"
    ok(
        cli(
            "skills", "package", "build",
            "--manifest", str(skill / "skill.toml"),
            "--module", str(skill / "build" / "skill.wasm"),
            "--signing-key-file", str(key),
            "--output", str(artifact),
        )
    )  # fmt: skip
    return artifact


def run_own_tests(skill: Path, env: dict[str, str]) -> None:
    """The generated tests/ directory, run as its author would run it."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(skill / "tests")],
        cwd=skill,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 passed" in done.stdout


def test_python_skill_from_new_to_signed_running(
    cli: Cli, tmp_path: Path, caches: dict[str, str]
) -> None:
    skill = tmp_path / "greeter"
    created = ok(cli("skills", "new", str(skill), "--publisher", "acme", "--json"))
    files = {Path(p).relative_to(skill).as_posix() for p in json.loads(created.stdout)["files"]}
    assert files == {"skill.toml", "app.py", "tests/test_greeter.py", ".gitignore"}
    before = (skill / "skill.toml").read_text()

    built = json.loads(ok(cli("skills", "build", str(skill), "--fill-tools", "--json")).stdout)
    assert built["language"] == "python"
    assert (skill / "build" / "skill.wasm").read_bytes()[:8] == b"\x00asm\x0d\x00\x01\x00"
    # The scaffold's tool list is exactly what the component describes: nothing to fill.
    assert built["tools"] == {
        "added": [], "updated": [], "removed": [], "manifest_changed": False
    }  # fmt: skip
    assert (skill / "skill.toml").read_text() == before
    again = json.loads(ok(cli("skills", "build", str(skill), "--json")).stdout)
    assert again["cached"] and again["build_key"] == built["build_key"]

    artifact = package(cli, skill, tmp_path)
    denied = cli("skills", "run", str(artifact), "hello", "--input", '{"name": "Ada"}',
                 "--allow-tofu")  # fmt: skip
    assert denied.exit_code == 1
    assert "error[capability_denied]" in denied.stderr and "--allow-declared" in denied.stderr
    for expected in (1, 2):
        result = cli("skills", "run", str(artifact), "acme.greeter.hello", "--input",
                     '{"name": "Ada"}', "--allow-declared", "--json")  # fmt: skip
        call = json.loads(ok(result).stdout)
        assert call["output"] == {"message": "Hello, Ada!", "count": expected}
        assert call["abi"] == "component"
        assert call["logs"][0]["message"] == f"greeting number {expected}"
    bad = cli("skills", "run", str(artifact), "hello", "--input", '{"name": ""}',
              "--allow-declared")  # fmt: skip
    assert bad.exit_code == 1 and "error[invalid_input]" in bad.stderr
    run_own_tests(skill, caches)


@pytest.mark.skipif(toolchain_problem() is not None, reason="clang/wasm-ld not installed")
def test_c_skill_from_new_to_signed_running(
    cli: Cli, tmp_path: Path, caches: dict[str, str]
) -> None:
    skill = tmp_path / "hello_c"
    ok(cli("skills", "new", str(skill), "--lang", "c", "--publisher", "acme"))
    assert detect_language(skill) == "c"
    built = json.loads(ok(cli("skills", "build", str(skill), "--json")).stdout)
    assert built["language"] == "c"
    assert json.loads(ok(cli("skills", "build", str(skill), "--json")).stdout)["cached"]
    refused = cli("skills", "build", str(skill), "--fill-tools")
    assert refused.exit_code == 1 and "error[usage]" in refused.stderr

    artifact = package(cli, skill, tmp_path)
    result = cli("skills", "run", str(artifact), "hello", "--input", '{"name": "Ada \\"A\\""}',
                 "--allow-tofu", "--json")  # fmt: skip
    call = json.loads(ok(result).stdout)
    assert call["output"] == {"message": 'Hello, Ada "A"!'} and call["abi"] == "data"
    run_own_tests(skill, caches)


def test_run_refuses_an_untrusted_publisher(
    cli: Cli, tmp_path: Path, caches: dict[str, str]
) -> None:
    skill = tmp_path / "quiet"
    new_skill(skill, language="python", publisher="acme")
    ok(cli("skills", "build", str(skill)))
    artifact = package(cli, skill, tmp_path)
    result = cli("skills", "run", str(artifact), "hello", "--input", '{"name": "x"}')
    assert result.exit_code == 1 and "error[" in result.stderr
    assert "Traceback" not in result.stderr


# ---- hostile input ---------------------------------------------------------------------


def test_new_refuses_bad_requests_and_leaves_nothing(cli: Cli, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    result = cli("skills", "new", str(taken))
    assert result.exit_code == 1 and "not empty" in result.stderr
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]
    for args in (
        ["--lang", "rust"],
        ["--publisher", "Bad Publisher"],
        ["--publisher", "a/b"],
    ):
        result = cli("skills", "new", str(tmp_path / "fresh"), *args)
        assert result.exit_code == 1 and "error[usage]" in result.stderr, args
        assert not (tmp_path / "fresh").exists()
    for name in ("123", "---", "日本"):
        with pytest.raises(UsageError):
            new_skill(tmp_path / name, language="python")
        assert not (tmp_path / name).exists()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert cli("skills", "new", str(a_file)).exit_code == 1


def test_build_refuses_what_it_cannot_build(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no skill.toml" in cli("skills", "build", str(empty)).stderr
    skill = tmp_path / "nosrc"
    new_skill(skill, language="python", publisher="acme")
    (skill / "app.py").unlink()
    result = cli("skills", "build", str(skill))
    assert result.exit_code == 1 and "error[build_failed]" in result.stderr
    assert "neither app.py" in result.stderr
    (skill / "skill.toml").write_text("manifest_version = [")
    result = cli("skills", "build", str(skill))
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    missing = cli("skills", "build", str(tmp_path / "absent"))
    assert missing.exit_code == 1


def test_build_reports_a_python_error_in_one_line(
    cli: Cli, tmp_path: Path, caches: dict[str, str]
) -> None:
    skill = tmp_path / "broken"
    new_skill(skill, language="python", publisher="acme")
    with (skill / "app.py").open("a") as handle:
        handle.write("\nraise RuntimeError('the skill refuses to load')\n")
    result = cli("skills", "build", str(skill))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1  # one line, no traceback
    assert "error[build_failed]" in result.stderr and "refuses to load" in result.stderr
    assert not (skill / "build" / "skill.wasm").exists()


def test_build_refuses_symlinked_sources(tmp_path: Path, caches: dict[str, str]) -> None:
    skill = tmp_path / "linked"
    new_skill(skill, language="python", publisher="acme")
    (skill / "secret.py").symlink_to("/etc/passwd")
    from palyra.authoring.skill_dir import build_skill

    with pytest.raises(BuildError, match="symlink"):
        build_skill(skill)


def test_secret_flags_are_checked(cli: Cli, tmp_path: Path) -> None:
    artifact = tmp_path / "none.palyra-skill"
    for flag in ("nope", "skill:acme.x/k=", "bad scope/k=HOME", "skill:acme.x/k=PALYRA_UNSET_VAR"):
        result = cli("skills", "run", str(artifact), "t", "--secret", flag)
        assert result.exit_code == 1 and "error[usage]" in result.stderr, flag


# ---- filling the tool list -------------------------------------------------------------


def _tool(name: str, description: str = "A tool.") -> dict[str, object]:
    return {**PYTHON_TOOLS[0], "name": name, "description": description}


def test_fill_tools_adds_updates_removes_and_keeps_the_rest(tmp_path: Path) -> None:
    skill = tmp_path / "filled"
    new_skill(skill, language="python", publisher="acme")
    manifest = skill / "skill.toml"
    manifest.write_text(manifest.read_text().replace('id = "acme.filled.hello"', 'id = "acme.hi"'))

    unchanged = fill_tools(skill, [dict(PYTHON_TOOLS[0])])
    assert (unchanged.added, unchanged.updated, unchanged.changed) == ((), (), False)

    result = fill_tools(skill, [_tool("hello", "Says hello."), _tool("bye")])
    assert result.added == ("bye",) and result.updated == ("hello",) and result.changed
    text = manifest.read_text()
    doc = tomllib.loads(text)
    tools = doc["entrypoints"]["tools"]
    assert [(t["id"], t["name"]) for t in tools] == [
        ("acme.hi", "hello"),
        ("acme.filled.bye", "bye"),
    ]
    assert tools[0]["description"] == "Says hello."
    # comments and other sections survive
    assert "# What the skill may reach" in text and doc["capabilities"]["filesystem"]
    result = fill_tools(skill, [_tool("bye")])
    assert result.removed == ("hello",)
    assert [t["name"] for t in tomllib.loads(manifest.read_text())["entrypoints"]["tools"]] == [
        "bye"
    ]


def test_fill_tools_drops_null_defaults_only(tmp_path: Path) -> None:
    skill = tmp_path / "nulls"
    new_skill(skill, language="python", publisher="acme")
    tool = _tool("opt")
    tool["input_schema"] = {
        "type": "object",
        "properties": {"x": {"type": ["integer", "null"], "default": None}},
        "additionalProperties": False,
    }
    fill_tools(skill, [tool])
    schema = tomllib.loads((skill / "skill.toml").read_text())["entrypoints"]["tools"][0]
    assert schema["input_schema"]["properties"]["x"] == {"type": ["integer", "null"]}


@pytest.mark.parametrize(
    "described",
    [
        None,
        [],
        {"name": "x"},
        ["hello"],
        [{"name": "x"}],
        [{**PYTHON_TOOLS[0], "name": 7}],
        [{**PYTHON_TOOLS[0], "input_schema": {"const": None}}],
        [{**PYTHON_TOOLS[0], "input_schema": {"type": "no-such-type"}}],
        [{**PYTHON_TOOLS[0], "name": "Bad Name!"}],
        [PYTHON_TOOLS[0], PYTHON_TOOLS[0]],
    ],
)
def test_fill_tools_refuses_bad_descriptions_without_touching_the_manifest(
    tmp_path: Path, described: object
) -> None:
    skill = tmp_path / "guarded"
    new_skill(skill, language="python", publisher="acme")
    before = (skill / "skill.toml").read_bytes()
    with pytest.raises(BuildError):
        fill_tools(skill, described)
    assert (skill / "skill.toml").read_bytes() == before
