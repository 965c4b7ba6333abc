"""``palyra skills new``: a working skill directory to start from.

The templates live next to this module (``templates/<language>/``, ``$name`` placeholders).
A new Python skill's tool list in skill.toml is rendered from the same description the built
component reports, so building it with ``--fill-tools`` changes nothing (a test holds us to
that).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from string import Template
from typing import Any

import tomlkit

from palyra.authoring.skill_dir import Language, tool_table
from palyra.errors import UsageError
from palyra.skills.errors import ManifestValidationError
from palyra.skills.manifest import parse_manifest_toml
from palyra.skills.values import label

TEMPLATES = Path(__file__).resolve().parent / "templates"
LANGUAGES: tuple[Language, ...] = ("python", "c")
_SCHEMA = "https://json-schema.org/draft/2020-12/schema"

# What the Python template's `hello` reports through describe() (see templates/python/app.py).
PYTHON_TOOLS: list[dict[str, Any]] = [
    {
        "name": "hello",
        "description": "Greets someone by name and counts the greetings.",
        "input_schema": {
            "$schema": _SCHEMA,
            "type": "object",
            "properties": {
                "name": {
                    "description": "Who to greet",
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 100,
                }
            },
            "required": ["name"],
            "additionalProperties": False,
        },
        "output_schema": {
            "$schema": _SCHEMA,
            "type": "object",
            "properties": {"message": {"type": "string"}, "count": {"type": "integer"}},
            "required": ["message", "count"],
            "additionalProperties": False,
        },
        "risk": {"default_sensitive": False, "requires_approval": False},
    }
]


def slug(name: str) -> str:
    """A skill-id segment from a directory name: ``My Notes`` → ``my_notes``."""
    text = re.sub(r"[^a-z0-9_]+", "_", name.strip().lower()).strip("_")
    if not text or not text[0].isalpha():
        raise UsageError(f"cannot make a skill name from {name!r}: start it with a letter")
    return text[:64]


def _python_tools(skill_id: str) -> str:
    document = tomlkit.document()
    tools = tomlkit.aot()
    for item in PYTHON_TOOLS:
        tools.append(tool_table(item, f"{skill_id}.{item['name']}"))
    document.add("entrypoints", {"tools": tools})
    return tomlkit.dumps(document).strip() + "\n"


def new_skill(
    directory: Path, *, language: Language, publisher: str = "local", name: str | None = None
) -> list[Path]:
    """Write a new skill into ``directory`` (which must not exist or be empty); returns the
    files written. Nothing is left behind when it fails."""
    if language not in LANGUAGES:
        raise UsageError(f"--lang must be one of {', '.join(LANGUAGES)}")
    try:
        label("publisher", publisher)
    except ManifestValidationError as exc:
        raise UsageError(f"--publisher: {exc.message}") from None
    short = slug(name or directory.resolve().name)
    skill_id = f"{publisher}.{short}"
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise UsageError(f"{directory} already exists and is not empty")
    values = {
        "skill_id": skill_id,
        "name": short.replace("_", " ").capitalize(),
        "publisher": publisher,
        "tools": _python_tools(skill_id) if language == "python" else "",
    }
    source = TEMPLATES / language
    created = not directory.exists()
    written: list[Path] = []
    try:
        for template in sorted(source.rglob("*.tmpl")):
            relative = template.relative_to(source).with_suffix("")
            if relative.name == "gitignore":
                relative = relative.with_name(".gitignore")
            elif relative.name == "test_skill.py":  # unique, so pytest can collect many skills
                relative = relative.with_name(f"test_{short}.py")
            target = directory / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(Template(template.read_text()).substitute(values))
            written.append(target)
        parse_manifest_toml((directory / "skill.toml").read_text())  # a template bug shows here
    except BaseException:
        if created:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            for path in written:
                path.unlink(missing_ok=True)
        raise
    return written
