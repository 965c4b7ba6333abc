"""The hostile module corpus as data: one TOML file per case under ``modules/``.

A case is kept as data (not as a Python test) so a new hostile guest is one small reviewable
file, and so every case is held to the *same* end-to-end contract by one test: signed artifact →
``Service.install_file`` → ``Service.run``, typed outcome, untouched state, unharmed process.

Case file layout (every table but ``[guest]`` and ``[expect]`` is optional)::

    category = "traps"                 # one of CATEGORIES
    description = "why this case exists"

    [guest]
    wat = '''(module {{imports output_write}} ... )'''   # a core module as WAT, or
    component = "probe"                # a component guest of tests/guests (built once)

    [guest.repeat]                     # {{NAME}} in the WAT becomes TEXT repeated COUNT times
    NAME = { text = "(func)", count = 1000 }  # "@N" in TEXT becomes the copy's index

    [manifest]
    tool = "run"                       # the tool's name (= the export the sandbox calls)
    input_schema = { type = "object" } # TOML tables, rendered into the manifest
    output_schema = {}
    quotas = { fuel_budget = 1000000 } # over QUOTAS below
    http_hosts = ["api.example.com"]   # declared capabilities, when a case needs them
    secrets = ["token"]                # key names in scope skill:<SKILL_ID>

    [config]
    toml = '''[runtime] ...'''         # the operator's config.toml (default: DEFAULT_CONFIG)

    [call]
    input = { }                        # the call's input (default {})

    [expect]
    install = "active"                 # or "quarantined", or "refused"
    install_error = "..."              # with "refused": the error kind
    audit_failed = ["wasm_import_policy"]  # with "quarantined": these checks must fail
    outcome = "guest_trap"             # the call's error kind, or "ok" (skipped if refused)
    output = [1, 2]                    # with "ok": the exact output
    trap_code = "unreachable"          # with "guest_trap": details.trap_code
    message_contains = "..."           # a substring of the error message

WAT macros: ``{{imports a b c}}`` expands to the data-ABI imports named (documented
signatures, each bound to ``$name``); ``{{report}}`` adds ``$report (param i32)``, which
appends a number to a JSON array kept at REPORT_BASE.., and ``$report_done (result i32)``, which
writes that array with ``output_write`` and returns 0 — so a guest can report every host
return code and the case file pins them exactly.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime_fixtures import data_imports, wat

CASE_DIR = Path(__file__).resolve().parent / "modules"

CATEGORIES = (
    "resource_bombs",
    "traps",
    "import_tricks",
    "pointer_abuse",
    "output_floods",
    "start_bombs",
    "infinite_loops",
)
INSTALL_STATES = ("active", "quarantined", "refused")

SKILL_ID = "acme.hostile"
CONTROL_SKILL_ID = "acme.control"
PUBLISHER = "acme"

# Generous manifest quotas: the operator's config.toml is what each case tightens, so the
# limit that fires is the one the case names (a case narrows a quota itself when that is
# the point).
QUOTAS: dict[str, int] = {
    "wall_clock_timeout_ms": 30_000,
    "fuel_budget": 1_000_000_000_000,
    "max_memory_bytes": 64 * 1024 * 1024,
}
# Small enough that a bomb a case forgot to bound still ends quickly.
DEFAULT_CONFIG = "[runtime]\nfuel = 50000000\ntimeout_ms = 2000\n"

REPORT_BASE = 61_440  # the report array lives in [REPORT_BASE, 65536) of page 0

_REPORT_WAT = f"""
  (global $rpos (mut i32) (i32.const {REPORT_BASE + 1}))
  (global $rfirst (mut i32) (i32.const 1))
  (func $rbyte (param $b i32)
    (i32.store8 (global.get $rpos) (local.get $b))
    (global.set $rpos (i32.add (global.get $rpos) (i32.const 1))))
  (func $report (param $v i32)
    (local $u i64) (local $start i32) (local $end i32) (local $t i32)
    (if (i32.eqz (global.get $rfirst)) (then (call $rbyte (i32.const 44))))
    (global.set $rfirst (i32.const 0))
    (local.set $u (i64.extend_i32_s (local.get $v)))
    (if (i64.lt_s (local.get $u) (i64.const 0))
      (then
        (call $rbyte (i32.const 45))
        (local.set $u (i64.sub (i64.const 0) (local.get $u)))))
    (local.set $start (global.get $rpos))
    (loop $digits
      (call $rbyte (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $u) (i64.const 10)))))
      (local.set $u (i64.div_u (local.get $u) (i64.const 10)))
      (br_if $digits (i64.ne (local.get $u) (i64.const 0))))
    (local.set $end (i32.sub (global.get $rpos) (i32.const 1)))
    (block $done
      (loop $rev
        (br_if $done (i32.ge_u (local.get $start) (local.get $end)))
        (local.set $t (i32.load8_u (local.get $start)))
        (i32.store8 (local.get $start) (i32.load8_u (local.get $end)))
        (i32.store8 (local.get $end) (local.get $t))
        (local.set $start (i32.add (local.get $start) (i32.const 1)))
        (local.set $end (i32.sub (local.get $end) (i32.const 1)))
        (br $rev))))
  (func $report_done (result i32)
    (i32.store8 (i32.const {REPORT_BASE}) (i32.const 91))
    (call $rbyte (i32.const 93))
    (drop (call $output_write (i32.const {REPORT_BASE})
      (i32.sub (global.get $rpos) (i32.const {REPORT_BASE}))))
    (i32.const 0))
"""

_MACRO = re.compile(r"\{\{([^{}]*)\}\}")


class CaseError(ValueError):
    """A case file that does not follow the layout above (a corpus bug, not a product bug)."""


@dataclass(frozen=True)
class Expect:
    install: str
    install_error: str | None
    audit_failed: tuple[str, ...]
    outcome: str | None
    output: Any
    has_output: bool
    trap_code: str | None
    message_contains: str | None

    @property
    def journal_kind(self) -> str:
        """The journal event the call must leave: calls refused before the sandbox ran are
        ``tool.rejected``; everything that reached the sandbox is a ``tool.call`` receipt."""
        return "tool.rejected" if self.outcome == "skill_not_active" else "tool.call"


@dataclass(frozen=True)
class Case:
    name: str
    category: str
    description: str
    wat_text: str | None
    component: str | None
    tool: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    quotas: dict[str, int]
    http_hosts: tuple[str, ...]
    secrets: tuple[str, ...]
    config: str
    input: Any
    expect: Expect
    path: Path = field(compare=False)

    def module_bytes(self) -> bytes:
        """The core module this case installs (components come from ``component_guests``)."""
        if self.wat_text is None:
            raise CaseError(f"{self.name}: not a core-module case")
        return wat(self.wat_text)


def expand_wat(text: str, repeats: dict[str, str]) -> str:
    """Apply the ``{{imports …}}``, ``{{report}}`` and ``{{NAME}}`` macros."""

    def one(match: re.Match[str]) -> str:
        words = match.group(1).split()
        if not words:
            raise CaseError("empty {{}} macro")
        if words[0] == "imports":
            if len(words) < 2:
                raise CaseError("{{imports}} needs at least one name")
            return data_imports(*words[1:])
        if words == ["report"]:
            return _REPORT_WAT
        if len(words) == 1 and words[0] in repeats:
            return repeats[words[0]]
        raise CaseError(f"unknown macro {{{{{match.group(1)}}}}}")

    return _MACRO.sub(one, text)


def _table(doc: dict[str, Any], name: str, known: set[str]) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise CaseError(f"[{name}] must be a table")
    unknown = set(value) - known
    if unknown:
        raise CaseError(f"unknown key(s) in [{name}]: {sorted(unknown)}")
    return value


def _expect(raw: dict[str, Any], name: str) -> Expect:
    install = raw.get("install", "active")
    if install not in INSTALL_STATES:
        raise CaseError(f"{name}: expect.install must be one of {INSTALL_STATES}")
    outcome = raw.get("outcome")
    if install == "refused":
        if not raw.get("install_error") or outcome is not None:
            raise CaseError(f"{name}: a refused install names install_error and no outcome")
    elif install == "quarantined":
        if not raw.get("audit_failed"):
            raise CaseError(f"{name}: a quarantined install names the failing audit checks")
        outcome = outcome or "skill_not_active"
    elif not isinstance(outcome, str):
        raise CaseError(f"{name}: an active install needs expect.outcome")
    if ("output" in raw) != (outcome == "ok"):
        raise CaseError(f"{name}: expect.output goes with (and only with) outcome 'ok'")
    return Expect(
        install=install,
        install_error=raw.get("install_error"),
        audit_failed=tuple(raw.get("audit_failed", ())),
        outcome=outcome,
        output=raw.get("output"),
        has_output="output" in raw,
        trap_code=raw.get("trap_code"),
        message_contains=raw.get("message_contains"),
    )


def load_case(path: Path) -> Case:
    with path.open("rb") as handle:
        doc = tomllib.load(handle)
    name = path.stem
    unknown = set(doc) - {
        "category",
        "description",
        "guest",
        "manifest",
        "config",
        "call",
        "expect",
    }
    if unknown:
        raise CaseError(f"{name}: unknown top-level key(s) {sorted(unknown)}")
    category = doc.get("category")
    if category not in CATEGORIES:
        raise CaseError(f"{name}: category must be one of {CATEGORIES}")
    description = doc.get("description", "")
    if not isinstance(description, str) or not description.strip():
        raise CaseError(f"{name}: a case says why it exists (description)")
    guest = _table(doc, "guest", {"wat", "component", "repeat"})
    if ("wat" in guest) == ("component" in guest):
        raise CaseError(f"{name}: [guest] has exactly one of wat and component")
    repeats: dict[str, str] = {}
    for key, spec in guest.get("repeat", {}).items():
        if not isinstance(spec, dict) or set(spec) != {"text", "count"}:
            raise CaseError(f"{name}: guest.repeat.{key} needs text and count")
        text, count = str(spec["text"]), int(spec["count"])
        if "@N" in text:  # numbered copies (export names must be unique)
            repeats[key] = "".join(text.replace("@N", str(i)) for i in range(count))
        else:
            repeats[key] = text * count
    wat_text = None if "wat" not in guest else expand_wat(str(guest["wat"]), repeats)
    manifest = _table(
        doc,
        "manifest",
        {"tool", "input_schema", "output_schema", "quotas", "http_hosts", "secrets"},
    )
    config = _table(doc, "config", {"toml"})
    call = _table(doc, "call", {"input"})
    expect = _expect(_table(doc, "expect", set(Expect.__dataclass_fields__) - {"has_output"}), name)
    quotas = dict(QUOTAS)
    for key, value in manifest.get("quotas", {}).items():
        if key not in QUOTAS:
            raise CaseError(f"{name}: unknown quota {key}")
        quotas[key] = int(value)
    config_text = config.get("toml", DEFAULT_CONFIG)
    tomllib.loads(config_text)  # a typo in a case must not pass as "config refused"
    return Case(
        name=name,
        category=category,
        description=description,
        wat_text=wat_text,
        component=guest.get("component"),
        tool=str(manifest.get("tool", "run")),
        input_schema=manifest.get("input_schema", {"type": "object"}),
        output_schema=manifest.get("output_schema", {}),
        quotas=quotas,
        http_hosts=tuple(manifest.get("http_hosts", ())),
        secrets=tuple(manifest.get("secrets", ())),
        config=config_text,
        input=call.get("input", {}),
        expect=expect,
        path=path,
    )


def load_cases(directory: Path = CASE_DIR) -> list[Case]:
    return [load_case(path) for path in sorted(directory.glob("*.toml"))]


# ---- manifests ---------------------------------------------------------------------------------


def toml_inline(value: Any) -> str:
    """A TOML inline value (tables become ``{ k = v }``): schemas are written into manifests."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_inline(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(k)} = {toml_inline(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise CaseError(f"cannot write {value!r} into a manifest")


def manifest_text(
    skill_id: str,
    tool: str,
    *,
    input_schema: dict[str, Any] | None = None,
    output_schema: dict[str, Any] | None = None,
    quotas: dict[str, int] | None = None,
    http_hosts: tuple[str, ...] = (),
    secrets: tuple[str, ...] = (),
) -> str:
    """A one-tool manifest; the tool's name is the export the sandbox will call."""
    quota = quotas or QUOTAS
    secret_block = ""
    if secrets:
        secret_block = (
            f'\n[[capabilities.secrets]]\nscope = "skill:{skill_id}"\n'
            f"key_names = {toml_inline(list(secrets))}\n"
        )
    return f"""\
manifest_version = 2
skill_id = "{skill_id}"
name = "Hostile corpus case"
version = "1.0.0"
publisher = "{PUBLISHER}"

[entrypoints]
[[entrypoints.tools]]
id = "{skill_id}_{tool}"
name = "{tool}"
description = "the tool under test"
input_schema = {toml_inline({"type": "object"} if input_schema is None else input_schema)}
output_schema = {toml_inline({} if output_schema is None else output_schema)}
risk = {{ default_sensitive = false, requires_approval = false }}

[capabilities]
http_egress_allowlist = {toml_inline(list(http_hosts))}
{secret_block}
[capabilities.quotas]
wall_clock_timeout_ms = {quota["wall_clock_timeout_ms"]}
fuel_budget = {quota["fuel_budget"]}
max_memory_bytes = {quota["max_memory_bytes"]}

[compat]
required_protocol_major = 1
min_palyra_version = "0.1.0"
"""


def case_manifest(case: Case) -> str:
    return manifest_text(
        SKILL_ID,
        case.tool,
        input_schema=case.input_schema,
        output_schema=case.output_schema,
        quotas=case.quotas,
        http_hosts=case.http_hosts,
        secrets=case.secrets,
    )


# The well-behaved tool every case is followed by, in the same process and state root.
CONTROL_WAT = f"""
(module
  {data_imports("input_len", "input_read", "output_write")}
  (memory (export "memory") 1)
  (func (export "echo") (result i32)
    (local $n i32)
    (local.set $n (call $input_len))
    (drop (call $input_read (i32.const 0) (local.get $n)))
    (drop (call $output_write (i32.const 0) (local.get $n)))
    (i32.const 0)))
"""


def control_manifest() -> str:
    return manifest_text(CONTROL_SKILL_ID, "echo")
