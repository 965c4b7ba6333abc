"""A skill's source directory: which language it is written in, building its module, and
filling ``skill.toml``'s tool list from what a Python component says it exports.

Layout (what ``palyra skills new`` writes)::

    skill.toml          the manifest
    app.py  | *.c       the tools (Python: a component; C: a core module)
    tests/              the skill's own tests (never part of a build)
    build/skill.wasm    the build output (default)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import tomlkit
from tomlkit.items import AoT, Comment, InlineTable, Table, Whitespace

from palyra.authoring.build_cache import BuildError, BuildResult, Progress, quiet
from palyra.authoring.c_build import build_c_skill
from palyra.authoring.python_build import APP_MODULE, build_python_skill
from palyra.errors import PalyraError
from palyra.fsutil import atomic_write
from palyra.skills.constants import MAX_MANIFEST_BYTES
from palyra.skills.manifest import SkillManifest, parse_manifest_toml

Language = Literal["python", "c"]
MANIFEST = "skill.toml"
DEFAULT_OUTPUT = Path("build") / "skill.wasm"
_DESCRIBED_KEYS = ("name", "description", "input_schema", "output_schema", "risk")


def detect_language(directory: Path) -> Language:
    """``python`` when the directory has ``app.py``, ``c`` when it has ``.c`` files."""
    if not directory.is_dir():
        raise BuildError(f"{directory} is not a directory")
    if (directory / f"{APP_MODULE}.py").is_file():
        return "python"
    if any(directory.glob("*.c")):
        return "c"
    raise BuildError(
        f"{directory} has neither {APP_MODULE}.py (a Python skill) nor .c files (a C skill)"
    )


def read_manifest(directory: Path) -> tuple[str, SkillManifest]:
    """The directory's ``skill.toml`` text and its validated manifest."""
    path = directory / MANIFEST
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BuildError(f"{directory} has no {MANIFEST}") from None
    except OSError as exc:
        raise BuildError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise BuildError(f"{path} is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BuildError(f"{path} is not UTF-8") from None
    return text, parse_manifest_toml(text)


@dataclass(frozen=True)
class BuiltSkill:
    language: Language
    result: BuildResult


def build_skill(
    directory: Path,
    output: Path | None = None,
    *,
    cache_dir: Path | None = None,
    progress: Progress = quiet,
) -> BuiltSkill:
    """Build the directory's module (componentize-py for Python, clang for C) into
    ``output`` (default ``build/skill.wasm`` inside the directory)."""
    language = detect_language(directory)
    target = output or directory / DEFAULT_OUTPUT
    build = build_python_skill if language == "python" else build_c_skill
    return BuiltSkill(language, build(directory, target, cache_dir=cache_dir, progress=progress))


@dataclass(frozen=True)
class FilledTools:
    added: tuple[str, ...]
    updated: tuple[str, ...]
    removed: tuple[str, ...]
    changed: bool


def _tool_descriptions(described: Any) -> list[dict[str, Any]]:
    """The component's ``describe`` output, checked for the shape the SDK promises."""
    if not isinstance(described, list) or not described:
        raise BuildError("the component describes no tools (decorate functions with @tool)")
    tools: list[dict[str, Any]] = []
    for index, item in enumerate(described):
        if not isinstance(item, dict) or any(key not in item for key in _DESCRIBED_KEYS):
            raise BuildError(f"describe() entry {index} lacks one of {', '.join(_DESCRIBED_KEYS)}")
        if not isinstance(item["name"], str) or not isinstance(item["description"], str):
            raise BuildError(f"describe() entry {index} has a non-string name or description")
        tools.append(item)
    return tools


def _toml_value(value: Any, where: str) -> Any:
    """JSON → TOML value with every table inline (TOML 1.0: one line each). ``"default":
    null`` is dropped — a null default only says "optional", which ``required`` already
    says — and any other null is refused, since TOML cannot express it."""
    if isinstance(value, dict):
        table: InlineTable = tomlkit.inline_table()
        for key, item in value.items():
            if item is None and key == "default":
                continue
            table.append(key, _toml_value(item, f"{where}.{key}"))
        return table
    if isinstance(value, list):
        array = tomlkit.array()
        array.extend(_toml_value(item, f"{where}[]") for item in value)
        return array
    if value is None:
        raise BuildError(f"{where} is null, which TOML cannot express; give an explicit schema")
    return value


def tool_table(item: dict[str, Any], tool_id: str) -> Table:
    table = tomlkit.table()
    table.add("id", tool_id)
    table.add("name", item["name"])
    table.add("description", item["description"])
    for key in ("input_schema", "output_schema", "risk"):
        table.add(key, _toml_value(item[key], f"tool '{item['name']}' {key}"))
    return table


def fill_tools(directory: Path, described: Any) -> FilledTools:
    """Rewrite ``entrypoints.tools`` in the directory's ``skill.toml`` from a component's
    ``describe()``: one entry per tool, in the component's order. An existing entry with the
    same name keeps its id; a new one gets ``<skill_id>.<name>``. Comments and everything else
    in the file are kept. The new file is validated as a manifest before it replaces the old
    one, so a failure changes nothing."""
    text, manifest = read_manifest(directory)
    tools = _tool_descriptions(described)
    existing = {tool.name: tool for tool in manifest.tools}
    prefix = (
        manifest.skill_id if manifest.skill_id.startswith(f"{manifest.publisher}.") else None
    ) or manifest.publisher
    document = tomlkit.parse(text)
    entrypoints = document.get("entrypoints")
    if entrypoints is None:
        entrypoints = tomlkit.table()
        document.add("entrypoints", entrypoints)
    aot = AoT([])
    for item in tools:
        old = existing.get(item["name"])
        aot.append(tool_table(item, old.id if old is not None else f"{prefix}.{item['name']}"))
    old_tools = entrypoints.get("tools")
    if isinstance(old_tools, AoT) and len(old_tools) and len(aot):
        # tomlkit hangs the comments and blank lines after the tool list on its last table:
        # carry them over, or they would vanish with the old list.
        for key, item in _trailing_trivia(old_tools[-1]):
            aot[-1].value.body.append((key, item))
    entrypoints["tools"] = aot
    new_text = tomlkit.dumps(document)
    try:
        new_tools = {tool.name: tool for tool in parse_manifest_toml(new_text).tools}
    except PalyraError as exc:
        raise BuildError(f"the described tools do not make a valid manifest: {exc}") from None
    # Compared as parsed manifests, so what counts as a change is what the manifest means.
    added = tuple(name for name in new_tools if name not in existing)
    updated = tuple(
        name for name, tool in new_tools.items() if name in existing and existing[name] != tool
    )
    removed = tuple(name for name in existing if name not in new_tools)
    changed = new_text != text  # also true when only the layout changed (e.g. hand edits)
    if changed:
        atomic_write(directory / MANIFEST, new_text.encode("utf-8"), mode=0o644)
    return FilledTools(added, updated, removed, changed)


def _trailing_trivia(table: Table) -> list[tuple[Any, Any]]:
    body = table.value.body
    index = len(body)
    while (
        index
        and body[index - 1][0] is None
        and isinstance(body[index - 1][1], Whitespace | Comment)
    ):
        index -= 1
    return list(body[index:])
