"""Shared fixtures: the reference's sample skill (skills-format.md §10), keys, builders."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import wasmtime

from palyra.skills.build import BuildResult, build_signed_skill_artifact
from palyra.skills.keys import SigningKey
from pg_server import PgServer, postgres_server

REPO = Path(__file__).resolve().parent.parent

# Tests choose their database explicitly: an operator's shared PostgreSQL must never be used.
os.environ.pop("PALYRA_DATABASE_URL", None)
EXAMPLE_DIR = REPO / "examples" / "echo-http"

SEED_01 = bytes([0x01]) * 32
SEED_05 = bytes([0x05]) * 32

# The reference crate tests' sample: v2, publisher acme, two tools (the second sensitive and
# approval-gated), read/write roots, one host, one secret, custom quotas, full operator block.
SAMPLE_MANIFEST = """\
manifest_version = 2
skill_id = "acme.echo_http"
name = "Echo HTTP"
version = "1.2.3"
publisher = "acme"

[entrypoints]
[[entrypoints.tools]]
id = "acme.echo"
name = "echo"
description = "Echo input payload"
input_schema = { type = "object", properties = { text = { type = "string" } }, required = ["text"] }
output_schema = { type = "object", properties = { echo = { type = "string" } }, required = ["echo"] }
risk = { default_sensitive = false, requires_approval = false }

[[entrypoints.tools]]
id = "acme.http_get"
name = "http_get"
description = "Fetch one allowlisted URL"
input_schema = { type = "object", properties = { url = { type = "string" } }, required = ["url"] }
output_schema = { type = "object", properties = { status = { type = "number" } } }
risk = { default_sensitive = true, requires_approval = true }

[capabilities.filesystem]
read_roots = ["skills/data"]
write_roots = ["skills/cache"]

[capabilities]
http_egress_allowlist = ["api.example.com"]
device_capabilities = []
node_capabilities = []

[[capabilities.secrets]]
scope = "skill:acme.echo_http"
key_names = ["api_token"]

[capabilities.quotas]
wall_clock_timeout_ms = 2000
fuel_budget = 5000000
max_memory_bytes = 33554432

[compat]
required_protocol_major = 1
min_palyra_version = "0.1.0"

[operator]
display_name = "Echo HTTP"
summary = "Echo and fetch"
description = "Echoes text and fetches one allowlisted URL."
categories = ["utility"]
tags = ["echo", "http"]
docs_url = "https://example.com/docs/echo-http"

[operator.plugin]
default_tool_id = "acme.echo"
default_module_path = "modules/module.wasm"
default_entrypoint = "run"

[operator.config]
schema_version = 1
required = ["api_base_url"]

[operator.config.properties.api_base_url]
type = "string"
title = "API base URL"
default = "https://api.example.com"

[operator.config.properties.api_token]
type = "string"
redacted = true
"""

SAMPLE_SBOM = b'{"bomFormat":"CycloneDX","specVersion":"1.6"}'
SAMPLE_PROVENANCE = b'{"builder":{"id":"palyra-ci"},"subject":[{"name":"module.wasm"}]}'
MINIMAL_WASM = b"\x00asm\x01\x00\x00\x00"


def wat(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


def replace_manifest(old: str, new: str, text: str = SAMPLE_MANIFEST) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


@pytest.fixture
def key05() -> SigningKey:
    return SigningKey(SEED_05)


@pytest.fixture
def key01() -> SigningKey:
    return SigningKey(SEED_01)


Builder = Callable[..., BuildResult]


@pytest.fixture
def build(key05: SigningKey) -> Builder:
    """Build the sample (or a variant) with the reference test inputs unless overridden."""

    def _build(
        manifest: str = SAMPLE_MANIFEST,
        modules: list[tuple[str, bytes]] | None = None,
        assets: list[tuple[str, bytes]] | None = None,
        key: SigningKey | None = None,
        sbom: bytes | None = SAMPLE_SBOM,
        provenance: bytes | None = SAMPLE_PROVENANCE,
    ) -> BuildResult:
        return build_signed_skill_artifact(
            manifest,
            modules if modules is not None else [("module.wasm", MINIMAL_WASM)],
            key or key05,
            assets=assets if assets is not None else [("templates/prompt.txt", b"hello")],
            sbom=sbom,
            provenance=provenance,
            signed_at_unix_ms=1_730_000_000_000,
        )

    return _build


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., CliResult]]:
    """Run ``palyra`` in-process against an isolated state root."""
    from palyra.cli.app import main

    state = tmp_path / "state"
    monkeypatch.delenv("PALYRA_SKILLS_TRUST_STORE", raising=False)
    monkeypatch.delenv("PALYRA_SKILL_AUDIT_BLOCKLIST", raising=False)
    monkeypatch.setenv("PALYRA_STATE_ROOT", str(state))
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str, stdin: bytes = b"") -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        stdin_stream = io.TextIOWrapper(io.BytesIO(stdin))
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(sys, "stderr", err)
        monkeypatch.setattr(sys, "stdin", stdin_stream)
        code = 0
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            monkeypatch.setattr(sys, "stdout", sys.__stdout__)
            monkeypatch.setattr(sys, "stderr", sys.__stderr__)
        return CliResult(code, out.getvalue(), err.getvalue())

    yield run


# ---- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[PgServer]:
    """A real PostgreSQL server for this test process (one per xdist worker)."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def pg_url(postgres: PgServer) -> str:
    """A fresh, empty database on that server."""
    return postgres.fresh_database()
