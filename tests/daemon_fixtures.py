"""A small, fast skill for the daemon suites: one data-ABI core module with four tools.

``echo`` returns its input; ``guarded`` is the same but ``requires_approval``; ``spin`` runs
for 400 ms (for calls that are still running when something changes);
``needs_secret`` reads ``skill:<id>/api_token`` and fails when it is missing.
"""

from __future__ import annotations

from pathlib import Path

from palyra.skills.build import build_signed_skill_artifact
from palyra.skills.keys import SigningKey
from runtime_fixtures import data_imports, wat

SKILL_ID = "acme.daemon_demo"
PUBLISHER = "acme"
KEY = SigningKey(bytes([0x07]) * 32)
OTHER_KEY = SigningKey(bytes([0x09]) * 32)

MODULE = wat(
    f"""
(module
  {data_imports("input_len", "input_read", "output_write", "secret_get", "clock_now_ms")}
  (memory (export "memory") 2)
  (data (i32.const 60000) "skill:{SKILL_ID}/api_token")
  (data (i32.const 61000) "{{\\"spun\\":true}}")
  (data (i32.const 62000) "{{\\"token_bytes\\":0}}")
  (func $echo (result i32)
    (local $n i32)
    (local.set $n (call $input_len))
    (drop (call $input_read (i32.const 0) (local.get $n)))
    (drop (call $output_write (i32.const 0) (local.get $n)))
    (i32.const 0))
  (func (export "echo") (result i32) (call $echo))
  (func (export "guarded") (result i32) (call $echo))
  (func (export "spin") (result i32)
    (local $until i64)
    (local.set $until (i64.add (call $clock_now_ms) (i64.const 400)))
    (loop $again
      (br_if $again (i64.lt_s (call $clock_now_ms) (local.get $until))))
    (drop (call $output_write (i32.const 61000) (i32.const 13)))
    (i32.const 0))
  (func (export "needs_secret") (result i32)
    (if (i32.lt_s (call $secret_get (i32.const 60000) (i32.const {len(f"skill:{SKILL_ID}/api_token")}))
                  (i32.const 0))
      (then (return (i32.const 1))))
    (drop (call $output_write (i32.const 62000) (i32.const 17)))
    (i32.const 0)))
"""
)

_OBJECT = '{ type = "object" }'


def manifest(version: str = "1.0.0", *, hosts: tuple[str, ...] = (), extra: str = "") -> str:
    host_list = ", ".join(f'"{h}"' for h in hosts)
    tools = []
    for name, approval in (
        ("echo", False),
        ("guarded", True),
        ("spin", False),
        ("needs_secret", False),
    ):
        tools.append(
            f"""
[[entrypoints.tools]]
id = "acme.{name}"
name = "{name}"
description = "{name} tool"
input_schema = {{ type = "object", properties = {{ text = {{ type = "string", maxLength = 100 }} }}, additionalProperties = false }}
output_schema = {_OBJECT}
risk = {{ default_sensitive = false, requires_approval = {str(approval).lower()} }}
"""
        )
    return f"""\
manifest_version = 2
skill_id = "{SKILL_ID}"
name = "Daemon demo"
version = "{version}"
publisher = "{PUBLISHER}"

[entrypoints]
{"".join(tools)}
[capabilities]
http_egress_allowlist = [{host_list}]

[[capabilities.secrets]]
scope = "skill:{SKILL_ID}"
key_names = ["api_token"]

[capabilities.quotas]
wall_clock_timeout_ms = 10000
fuel_budget = 150000000
max_memory_bytes = 33554432

[compat]
required_protocol_major = 1
min_palyra_version = "0.1.0"
{extra}"""


def artifact(
    version: str = "1.0.0",
    *,
    hosts: tuple[str, ...] = (),
    key: SigningKey = KEY,
    module: bytes = MODULE,
) -> bytes:
    return build_signed_skill_artifact(
        manifest(version, hosts=hosts), [("module.wasm", module)], key
    ).artifact


def write_artifact(directory: Path, version: str = "1.0.0", **kwargs: object) -> Path:
    path = directory / f"{SKILL_ID}-{version}.palyra-skill"
    path.write_bytes(artifact(version, **kwargs))  # type: ignore[arg-type]
    return path


OTHER_SKILL_ID = "acme.other_demo"


def other_skill(directory: Path, *, same_tool_ids: bool = False) -> Path:
    """A second skill of the same publisher: its tools are acme.other_* (or the fixture's)."""
    text = manifest()
    if not same_tool_ids:
        text = text.replace('\nid = "acme.', '\nid = "acme.other_')
    text = text.replace(SKILL_ID, OTHER_SKILL_ID)
    path = directory / f"{OTHER_SKILL_ID}.palyra-skill"
    path.write_bytes(build_signed_skill_artifact(text, [("module.wasm", MODULE)], KEY).artifact)
    return path
