"""The C guest SDK (sdk/c): header, build script and the examples under examples/c.

Every example is compiled with ``sdk/c/build.py`` (once per session), packaged and signed,
inspected, audited (which proves its imports fit the audit's import policy) and run through
``run_tool`` in the real sandbox. HTTP tests talk TLS to a local server whose certificate is
issued by a throwaway CA for the example host names, reached through a resolver that maps
those names to 127.0.0.1. clang is required: a missing toolchain FAILS these tests (CI
installs it), it does not skip them.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest

from c_build import (
    BUILD_SCRIPT,
    C_EXAMPLES,
    REPO,
    SDK_DIR,
    build_c,
    build_error,
    example_names,
    toolchain_problem,
)
from egress_servers import make_pki
from palyra import abi
from palyra.runtime.context import HostServices
from palyra.runtime.errors import ToolError
from palyra.runtime.sandbox import CallResult, Sandbox
from palyra.runtime.tools import RuntimePolicy, run_tool
from palyra.runtime.vault import MemoryVault
from palyra.skills.audit import CheckStatus, audit_skill_artifact
from palyra.skills.build import build_signed_skill_artifact
from palyra.skills.inspect import SkillInspection, inspect_skill_artifact
from palyra.skills.keys import SigningKey
from palyra.skills.trust import TrustStore
from palyra.skills.wasm_binary import parse_wasm

SEED = bytes([5]) * 32
EXAMPLES = ["echo_http", "kv_counter", "weather_report"]
WEATHER_SECRET = "wx-7f3a9c-test-secret"  # a test fixture, not a credential
WEATHER_SCOPE = "skill:acme.weather_report"
API_HOSTS = ("api.example.com", "api.weather.example")
FORECAST = {
    "city": "Paris",
    "days": [
        {"day": "Mon", "high": 21, "low": 12},
        {"day": "Tue", "high": 23, "low": 14, "wind": {"kmh": 10}},
        {"day": "Wed", "high": -2, "low": -9},
    ],
}
A2UI_TYPES = {"text", "markdown", "list", "table", "form", "chart"}


# ---- building ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def wasm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    problem = toolchain_problem()
    if problem is not None:
        pytest.fail(f"the C SDK tests need clang and wasm-ld: {problem}", pytrace=False)
    return tmp_path_factory.mktemp("c-wasm")


@pytest.fixture(scope="session")
def modules(wasm_dir: Path) -> dict[str, bytes]:
    """Every example compiled once per session (and the SDK's own self-test)."""
    built = {
        name: build_c([C_EXAMPLES / name / f"{name}.c"], wasm_dir / f"{name}.wasm")
        for name in EXAMPLES
    }
    built["selftest"] = build_c([SDK_DIR / "tests" / "selftest.c"], wasm_dir / "selftest.wasm")
    return built


@dataclass(frozen=True)
class Packaged:
    artifact: bytes
    inspection: SkillInspection


@pytest.fixture(scope="session")
def packaged(modules: dict[str, bytes]) -> dict[str, Packaged]:
    key = SigningKey(SEED)
    result: dict[str, Packaged] = {}
    for name in EXAMPLES:
        manifest = (C_EXAMPLES / name / "skill.toml").read_text()
        built = build_signed_skill_artifact(manifest, [(f"{name}.wasm", modules[name])], key)
        result[name] = Packaged(built.artifact, inspect_skill_artifact(built.artifact))
    return result


def call(
    sandbox: Sandbox, skill: Packaged, tool: str, value: Any, policy: RuntimePolicy | None = None
) -> CallResult:
    return run_tool(
        sandbox, skill.inspection, tool, value, policy or RuntimePolicy.allow_declared()
    )


def tool_error(excinfo: pytest.ExceptionInfo[ToolError]) -> dict[str, Any]:
    """The error JSON a tool wrote with palyra_fail."""
    doc = json.loads(excinfo.value.message)
    assert isinstance(doc, dict)
    assert excinfo.value.exit_code == 1
    return doc


def test_examples_are_all_tested() -> None:
    assert example_names() == EXAMPLES


def test_header_declares_exactly_the_data_abi(wasm_dir: Path) -> None:
    """Every palyra_host_* import links with the signature the audit and sandbox expect."""
    calls = ";\n    ".join(
        f"(void)palyra_host_{name}({', '.join('0' for _ in spec.params)})"
        for name, spec in abi.DATA_ABI_IMPORTS.items()
    )
    source = wasm_dir / "all_imports.c"
    source.write_text(
        '#define PALYRA_IMPLEMENTATION\n#include "palyra.h"\n'
        f"PALYRA_TOOL(run) {{\n    {calls};\n    return 0;\n}}\n"
    )
    summary = parse_wasm(build_c([source], wasm_dir / "all_imports.wasm"))
    imported = {
        item.name: (item.signature.params, item.signature.results)
        for item in summary.imports
        if item.signature is not None and item.module == abi.DATA_ABI_MODULE
    }
    assert len(summary.imports) == len(abi.DATA_ABI_IMPORTS)
    assert imported == {n: (s.params, s.results) for n, s in abi.DATA_ABI_IMPORTS.items()}
    assert {e.name for e in summary.exports} == {"memory", "run"}


def test_sdk_selftest(modules: dict[str, bytes]) -> None:
    """palyra.h's JSON reader/writer, string, number and allocator helpers (selftest.c)."""
    result = Sandbox().run(modules["selftest"], input_value={}, tool_name="selftest")
    assert result.output["failures"] == []
    assert result.output["checks"] > 90
    assert parse_wasm(modules["selftest"]).imports[0].name == "output_write"


# ---- the build script -------------------------------------------------------------------------


def test_build_script_command_line(tmp_path: Path) -> None:
    out = tmp_path / "echo.wasm"
    source = C_EXAMPLES / "echo_http" / "echo_http.c"
    proc = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), str(source), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "exports: memory, echo, http_get" in proc.stdout
    summary = parse_wasm(out.read_bytes())
    assert summary.custom_sections == ()  # names stripped
    assert summary.has_start is False
    assert [e.name for e in summary.exports] == ["memory", "echo", "http_get"]


def test_build_script_explains_a_missing_clang(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALYRA_")}
    env["PATH"] = str(tmp_path)  # nothing in it
    proc = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "x.c", "-o", str(tmp_path / "x.wasm")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 1
    assert "clang not found" in proc.stderr
    assert "apt-get install clang lld" in proc.stderr


def test_build_script_treats_warnings_as_errors(wasm_dir: Path) -> None:
    source = wasm_dir / "warns.c"
    source.write_text(
        '#define PALYRA_IMPLEMENTATION\n#include "palyra.h"\n'
        "PALYRA_TOOL(run) { int unused; return 0; }\n"
    )
    with pytest.raises(build_error(), match="unused"):
        build_c([source], wasm_dir / "warns.wasm")
    assert build_c([source], wasm_dir / "warns.wasm", werror=False)[:4] == b"\0asm"


def test_build_script_explains_missing_libc(wasm_dir: Path) -> None:
    source = wasm_dir / "nolibc.c"
    source.write_text(
        '#include "palyra.h"\nint puts(const char *);\nPALYRA_TOOL(run) { puts("hi"); return 0; }\n'
    )
    with pytest.raises(build_error(), match="There is no libc"):
        build_c([source], wasm_dir / "nolibc.wasm")


# ---- packaging and audit ----------------------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_packages_and_passes_the_audit(name: str, packaged: dict[str, Packaged]) -> None:
    skill = packaged[name]
    manifest = skill.inspection.manifest
    assert manifest.manifest_version == 2
    assert manifest.publisher == "acme"
    assert manifest.operator.display_name and manifest.operator.summary
    assert skill.inspection.manifest_warnings == []

    report = audit_skill_artifact(skill.artifact, TrustStore(), allow_tofu=True)
    assert report.passed, report.quarantine_reasons
    assert report.failed_checks == []
    assert report.warning_checks == ["vulnerability_feed_hook"]  # no blocklist configured
    policy = [c for c in report.checks if c.check_id == "wasm_import_policy"]
    assert [c.status for c in policy] == [CheckStatus.PASS]

    # The module exports exactly its tools and its memory.
    (module_path,) = skill.inspection.modules
    summary = parse_wasm(skill.inspection.entries[module_path])
    exports = {e.name for e in summary.exports}
    assert exports == {"memory", *(t.name for t in manifest.tools)}
    assert {i.module for i in summary.imports} == {abi.DATA_ABI_MODULE}


def test_example_imports_follow_their_capabilities(packaged: dict[str, Packaged]) -> None:
    def imports(name: str) -> set[str]:
        skill = packaged[name]
        (path,) = skill.inspection.modules
        return {i.name for i in parse_wasm(skill.inspection.entries[path]).imports}

    assert "http_request" in imports("echo_http")
    assert not imports("echo_http") & {"storage_get", "storage_put", "secret_get"}
    assert {"storage_get", "storage_put"} <= imports("kv_counter")
    assert "http_request" not in imports("kv_counter")
    # The weather module never reads its secret: the host injects it into the request.
    assert "http_request" in imports("weather_report")
    assert "secret_get" not in imports("weather_report")


def test_cli_packages_audits_and_runs_a_c_skill(
    cli: Callable[..., Any], modules: dict[str, bytes], tmp_path: Path
) -> None:
    """The commands docs/writing-skills-in-c.md walks through."""
    wasm = tmp_path / "echo_http.wasm"
    wasm.write_bytes(modules["echo_http"])
    key = tmp_path / "acme.key"
    key.write_text(SEED.hex())
    key.chmod(0o600)
    artifact = tmp_path / "acme.echo_http_c-1.0.0.palyra-skill"
    built = cli(
        "skills",
        "package",
        "build",
        "--manifest",
        str(C_EXAMPLES / "echo_http" / "skill.toml"),
        "--module",
        str(wasm),
        "--signing-key-file",
        str(key),
        "--output",
        str(artifact),
    )
    assert built.exit_code == 0, built.stderr
    audited = cli("skills", "audit", "--artifact", str(artifact), "--allow-tofu", "--json")
    assert audited.exit_code == 0, audited.stdout + audited.stderr
    assert json.loads(audited.stdout)["passed"] is True
    ran = cli(
        "plugin", "run", "--wasm", str(wasm), "--tool", "echo", "--input", '{"text":"hi"}', "--json"
    )
    assert ran.exit_code == 0, ran.stderr
    assert json.loads(ran.stdout)["output"] == {"echo": "hi"}


# ---- echo ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("hello", id="ascii"),
        pytest.param('quote " backslash \\ slash /', id="escapes"),
        pytest.param("\n\r\t\b\f\x01\x1f\x7f", id="control"),
        pytest.param("é ü 中文 🎉", id="unicode"),
        pytest.param("x" * 100_000, id="100k"),
        pytest.param('"\\é\n' * 5_000, id="20k-escaped"),
    ],
)
def test_echo_round_trips_text(text: str, packaged: dict[str, Packaged]) -> None:
    result = call(Sandbox(), packaged["echo_http"], "echo", {"text": text})
    assert result.output == {"echo": text}
    assert result.abi == "data"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"\\u0074ext": "escaped key"}', "escaped key"),
        (b' \n{ "text" : "spaces" } \n', "spaces"),
        (b'{"o": {"text": "nested"}, "text": "top"}', "top"),
        (b'{"text": "\\ud83c\\udf89 \\u00e9 \\ud800"}', "🎉 é \ufffd"),
        (b'{"text": "\xff\xfeok"}', "\ufffd\ufffdok"),  # invalid UTF-8 is repaired on output
    ],
)
def test_echo_reads_json_like_a_json_parser(
    raw: bytes, expected: str, modules: dict[str, bytes]
) -> None:
    result = Sandbox().run(modules["echo_http"], input_bytes=raw, tool_name="echo")
    assert result.output == {"echo": expected}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"text": "a", "text": "b"}', "INVALID"),  # ambiguous: refused, not guessed
        (b'{"o": {"text": "nested"}}', "NOT_FOUND"),
        (b'{"text": 1}', "WRONG_TYPE"),
        (b'{"text": "x\\u0000y"}', "INVALID"),
        (b'{"text": "x"} trailing', "INVALID"),
        (b'{"text": "x",}', "INVALID"),
        (b'{"text": "unterminated', "INVALID"),
        (b'["text"]', "WRONG_TYPE"),
        (b'{"a": ' + b"[" * 64 + b"]" * 64 + b', "text": "x"}', "TOO_LARGE"),
    ],
)
def test_echo_reports_bad_input_as_a_tool_error(
    raw: bytes, reason: str, modules: dict[str, bytes]
) -> None:
    with pytest.raises(ToolError) as excinfo:
        Sandbox().run(modules["echo_http"], input_bytes=raw, tool_name="echo")
    assert tool_error(excinfo)["reason"] == reason


# ---- kv_counter -----------------------------------------------------------------------------


def test_counter_persists_across_calls_and_sandboxes(
    packaged: dict[str, Packaged], tmp_path: Path
) -> None:
    skill = packaged["kv_counter"]
    sandbox = Sandbox(services=HostServices(state_root=tmp_path))
    assert call(sandbox, skill, "read", {"name": "visits"}).output == {"name": "visits", "value": 0}
    values = [call(sandbox, skill, "increment", {"name": "visits"}).output for _ in range(3)]
    assert values == [{"name": "visits", "value": n} for n in (1, 2, 3)]
    assert call(sandbox, skill, "increment", {"name": "other"}).output["value"] == 1

    again = Sandbox(services=HostServices(state_root=tmp_path))  # a new process, same state
    assert call(again, skill, "read", {"name": "visits"}).output == {"name": "visits", "value": 3}
    assert call(again, skill, "increment", {"name": "visits"}).output["value"] == 4
    stored = tmp_path / "skill-data" / "acme.kv_counter" / "skills" / "counters" / "visits"
    assert stored.read_text() == "4"


@pytest.mark.parametrize(
    "name", ["", "Upper", "a/b", "..", "-lead", "x" * 33, "sp ace", "é", "a\nb", "a.b"]
)
def test_counter_rejects_bad_names(
    name: str, packaged: dict[str, Packaged], tmp_path: Path
) -> None:
    sandbox = Sandbox(services=HostServices(state_root=tmp_path))
    for tool in ("increment", "read"):
        with pytest.raises(ToolError) as excinfo:
            call(sandbox, packaged["kv_counter"], tool, {"name": name})
        error = tool_error(excinfo)
        assert error["reason"] == "INVALID"
        assert "counter name" in error["error"]
    assert not (tmp_path / "skill-data").exists()


def test_counter_accepts_the_longest_name(packaged: dict[str, Packaged], tmp_path: Path) -> None:
    sandbox = Sandbox(services=HostServices(state_root=tmp_path))
    name = "a_-9" * 8
    assert call(sandbox, packaged["kv_counter"], "increment", {"name": name}).output == {
        "name": name,
        "value": 1,
    }


def test_counter_without_storage_grant_is_denied(
    packaged: dict[str, Packaged], tmp_path: Path
) -> None:
    sandbox = Sandbox(services=HostServices(state_root=tmp_path))
    with pytest.raises(ToolError) as excinfo:
        call(sandbox, packaged["kv_counter"], "increment", {"name": "visits"}, RuntimePolicy())
    error = tool_error(excinfo)
    assert error == {"error": "storage_get failed", "code": -1, "reason": "DENIED"}


def test_counter_reports_a_corrupt_value(packaged: dict[str, Packaged], tmp_path: Path) -> None:
    stored = tmp_path / "skill-data" / "acme.kv_counter" / "skills" / "counters" / "bad"
    stored.parent.mkdir(parents=True)
    stored.write_text("12abc")
    sandbox = Sandbox(services=HostServices(state_root=tmp_path))
    with pytest.raises(ToolError) as excinfo:
        call(sandbox, packaged["kv_counter"], "increment", {"name": "bad"})
    assert "not a number" in tool_error(excinfo)["error"]
    assert stored.read_text() == "12abc"


# ---- HTTP: a local TLS server posing as the example APIs --------------------------------------


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]


Responder = Callable[[Seen], tuple[int, str, bytes]]


@dataclass
class FakeApi:
    port: int
    ca_bundle: Path
    requests: list[Seen] = field(default_factory=list)
    respond: Responder | None = None


def default_response(seen: Seen) -> tuple[int, str, bytes]:
    url = urlsplit(seen.path)
    if url.path == "/v1/forecast":
        if seen.headers.get("authorization") != f"Bearer {WEATHER_SECRET}":
            return 401, "application/json", b'{"error": "bad api key"}'
        city = parse_qs(url.query).get("city", [""])[0]
        return 200, "application/json", json.dumps({**FORECAST, "city": city}).encode()
    if url.path == "/hello":
        return 200, "text/plain; charset=utf-8", "hello from the fake API ✓".encode()
    if url.path == "/big":
        return 200, "text/plain", "é".encode() * 10_000  # 20000 bytes
    if url.path == "/binary":
        return 200, "application/octet-stream", b"\xff\xfe\x00ok"
    return 404, "text/plain", b"no such page"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        api = cast(Any, self.server).api
        assert isinstance(api, FakeApi)
        seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
        api.requests.append(seen)
        status, content_type, body = (api.respond or default_response)(seen)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="session")
def fake_api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeApi]:
    pki = make_pki(tmp_path_factory.mktemp("pki"), API_HOSTS)
    ca_path, cert_path, key_path = pki.ca_pem, pki.cert_pem, pki.key_pem
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    api = FakeApi(port=server.server_address[1], ca_bundle=ca_path)
    cast(Any, server).api = api
    thread = threading.Thread(target=server.serve_forever, name="fake-api", daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def api(fake_api_server: FakeApi) -> Iterator[FakeApi]:
    fake_api_server.requests.clear()
    fake_api_server.respond = None
    yield fake_api_server
    fake_api_server.respond = None


class StaticResolver:
    """Test DNS (``palyra.runtime.egress.Resolver``): the example API hosts are 127.0.0.1."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        try:
            return [self.names[host]]
        except KeyError:
            raise OSError(f"test resolver: unknown host {host}") from None


@pytest.fixture
def https_sandbox(api: FakeApi) -> Sandbox:
    services = HostServices(
        vault=MemoryVault({(WEATHER_SCOPE, "api_key"): WEATHER_SECRET.encode()}),
        resolver=StaticResolver(dict.fromkeys(API_HOSTS, "127.0.0.1")),
        ca_bundle=str(api.ca_bundle),
    )
    return Sandbox(services=services)


def https_policy(api: FakeApi, **overrides: Any) -> RuntimePolicy:
    return RuntimePolicy.allow_declared(
        allow_private_network=True, allowed_ports=frozenset({api.port}), **overrides
    )


# ---- http_get -----------------------------------------------------------------------------------


def test_http_get_fetches_an_allowlisted_url(
    https_sandbox: Sandbox, api: FakeApi, packaged: dict[str, Packaged]
) -> None:
    url = f"https://api.example.com:{api.port}/hello?x=1"
    result = call(https_sandbox, packaged["echo_http"], "http_get", {"url": url}, https_policy(api))
    assert result.output == {"status": 200, "body": "hello from the fake API ✓", "truncated": False}
    assert [r.path for r in api.requests] == ["/hello?x=1"]
    assert api.requests[0].headers["user-agent"] == "palyra-c-sdk-example/1.0"
    assert api.requests[0].headers["host"] == f"api.example.com:{api.port}"
    (record,) = result.egress
    assert (record["decision"], record["address"], record["status"]) == (
        "allowed",
        "127.0.0.1",
        200,
    )
    assert [line.message for line in result.logs] == ["http_get status=200 bytes=27"]


def test_http_get_truncates_on_a_character_boundary(
    https_sandbox: Sandbox, api: FakeApi, packaged: dict[str, Packaged]
) -> None:
    url = f"https://api.example.com:{api.port}/big"
    result = call(https_sandbox, packaged["echo_http"], "http_get", {"url": url}, https_policy(api))
    assert result.output["truncated"] is True
    assert result.output["body"] == "é" * 8192  # 16 KiB of two-byte characters


def test_http_get_returns_other_statuses_and_repairs_binary(
    https_sandbox: Sandbox, api: FakeApi, packaged: dict[str, Packaged]
) -> None:
    base = f"https://api.example.com:{api.port}"
    policy = https_policy(api)
    skill = packaged["echo_http"]
    missing = call(https_sandbox, skill, "http_get", {"url": f"{base}/nope"}, policy)
    assert missing.output == {"status": 404, "body": "no such page", "truncated": False}
    binary = call(https_sandbox, skill, "http_get", {"url": f"{base}/binary"}, policy)
    assert binary.output["body"] == "\ufffd\ufffd\x00ok"


def test_http_get_outside_the_allowlist_is_refused(
    https_sandbox: Sandbox, api: FakeApi, packaged: dict[str, Packaged]
) -> None:
    url = f"https://api.weather.example:{api.port}/hello"  # served, but not this skill's host
    with pytest.raises(ToolError) as excinfo:
        call(https_sandbox, packaged["echo_http"], "http_get", {"url": url}, https_policy(api))
    assert tool_error(excinfo) == {"error": "http_request failed", "code": -1, "reason": "DENIED"}
    (record,) = excinfo.value.details["egress"]
    assert (record["host"], record["decision"]) == ("api.weather.example", "denied")
    assert api.requests == []


def test_http_get_without_grant_is_denied(packaged: dict[str, Packaged]) -> None:
    """The policy grants no host: the host refuses before resolving anything."""
    with pytest.raises(ToolError) as excinfo:
        call(
            Sandbox(),
            packaged["echo_http"],
            "http_get",
            {"url": "https://api.example.com/"},
            RuntimePolicy(),
        )
    assert tool_error(excinfo) == {"error": "http_request failed", "code": -1, "reason": "DENIED"}


# ---- weather_report -------------------------------------------------------------------------


def assert_a2ui_document(doc: Any) -> None:
    """The A2UI v1 rules (reference runtime.md §8.1): the Rust validator's checks plus the
    shapes the renderer expects for the component types used here."""
    assert isinstance(doc, dict)
    assert doc["v"] == 1 and type(doc["v"]) is int
    assert isinstance(doc["surface"], str) and doc["surface"].strip()
    assert len(doc["surface"]) <= 128
    components = doc["components"]
    assert isinstance(components, list) and 0 < len(components) <= 128
    ids = [c["id"] for c in components]
    assert len(set(ids)) == len(ids)
    for component in components:
        assert set(component) == {"id", "type", "props"}
        assert isinstance(component["id"], str) and 0 < len(component["id"]) <= 64
        assert component["type"] in A2UI_TYPES
        props = component["props"]
        assert isinstance(props, dict)
        if component["type"] == "text":
            assert isinstance(props["value"], str) and len(props["value"]) <= 512
        if component["type"] == "table":
            columns = props["columns"]
            assert 0 < len(columns) <= 16 and all(isinstance(c, str) for c in columns)
            assert len(props["rows"]) <= 256
            for row in props["rows"]:
                assert len(row) == len(columns) and all(isinstance(c, str) for c in row)
        if component["type"] == "chart":
            assert isinstance(props["title"], str)
            assert len(props["series"]) <= 64
            for point in props["series"]:
                assert isinstance(point["label"], str) and len(point["label"]) <= 64
                assert isinstance(point["value"], int | float)


def test_weather_report_renders_the_forecast_as_a2ui(
    https_sandbox: Sandbox, api: FakeApi, packaged: dict[str, Packaged]
) -> None:
    result = call(
        https_sandbox,
        packaged["weather_report"],
        "report",
        {"city": "São Paulo", "port": api.port},
        https_policy(api),
    )
    doc = result.output
    assert_a2ui_document(doc)
    assert doc["surface"] == "weather-report"
    by_id = {c["id"]: c for c in doc["components"]}
    assert by_id["summary"]["props"]["value"] == "Forecast for São Paulo: 3 days"
    table = by_id["forecast-table"]["props"]
    assert table["columns"] == ["Day", "High (°C)", "Low (°C)"]
    assert table["rows"] == [["Mon", "21", "12"], ["Tue", "23", "14"], ["Wed", "-2", "-9"]]
    chart = by_id["highs-chart"]["props"]
    assert chart["series"] == [
        {"label": "Mon", "value": 21},
        {"label": "Tue", "value": 23},
        {"label": "Wed", "value": -2},
    ]

    # The host injected the key; the module never saw it, and it is nowhere in the result.
    (seen,) = api.requests
    assert seen.headers["authorization"] == f"Bearer {WEATHER_SECRET}"
    assert seen.path == "/v1/forecast?city=S%C3%A3o%20Paulo"
    assert WEATHER_SECRET not in json.dumps(result.to_json())
    assert [line.message for line in result.logs] == ["forecast days=3"]


def test_weather_report_caps_the_number_of_days(
    https_sandbox: Sandbox, api: FakeApi, packaged: dict[str, Packaged]
) -> None:
    days = [{"day": f"D{i}", "high": i, "low": 0} for i in range(30)]
    api.respond = lambda _seen: (200, "application/json", json.dumps({"days": days}).encode())
    result = call(
        https_sandbox,
        packaged["weather_report"],
        "report",
        {"city": "Oslo", "port": api.port},
        https_policy(api),
    )
    assert_a2ui_document(result.output)
    table = next(c for c in result.output["components"] if c["type"] == "table")
    assert len(table["props"]["rows"]) == 14


def test_weather_report_redacts_a_reflected_secret(
    https_sandbox: Sandbox, api: FakeApi, packaged: dict[str, Packaged]
) -> None:
    """Even an upstream that echoes the key back cannot make the tool output it."""
    doc = {"days": [{"day": WEATHER_SECRET, "high": 1, "low": 0}]}
    api.respond = lambda _seen: (200, "application/json", json.dumps(doc).encode())
    result = call(
        https_sandbox,
        packaged["weather_report"],
        "report",
        {"city": "Oslo", "port": api.port},
        https_policy(api),
    )
    assert WEATHER_SECRET not in json.dumps(result.to_json())
    assert "[REDACTED]" in json.dumps(result.output)


@pytest.mark.parametrize(
    ("status", "body", "message", "reason"),
    [
        (500, b"{}", "weather API answered HTTP 500", "UPSTREAM"),
        (200, b'{"days": [{"day": "Mon", "high": 1}]}', "malformed", "NOT_FOUND"),
        (200, b'{"days": [{"day": "Mon", "high": 1.5, "low": 0}]}', "malformed", "WRONG_TYPE"),
        (200, b'{"days": {"day": "Mon"}}', "malformed", "WRONG_TYPE"),
        (200, b'{"days": [{"day": "Mon", "high": 9999, "low": 0}]}', "malformed", "INVALID"),
        (200, b'{"days": [', "malformed", "INVALID"),
        (200, b"<html>oops</html>", "malformed", "INVALID"),
        (200, b'{"days": [], "pad": "' + b"x" * 70_000 + b'"}', "too large", "TOO_LARGE"),
    ],
)
def test_weather_report_reports_upstream_problems(
    status: int,
    body: bytes,
    message: str,
    reason: str,
    https_sandbox: Sandbox,
    api: FakeApi,
    packaged: dict[str, Packaged],
) -> None:
    api.respond = lambda _seen: (status, "application/json", body)
    with pytest.raises(ToolError) as excinfo:
        call(
            https_sandbox,
            packaged["weather_report"],
            "report",
            {"city": "Oslo", "port": api.port},
            https_policy(api),
        )
    error = tool_error(excinfo)
    assert message in error["error"]
    assert error["reason"] == reason


def test_weather_report_without_secret_grant_is_denied(
    https_sandbox: Sandbox, api: FakeApi, packaged: dict[str, Packaged]
) -> None:
    """HTTP granted but not the secret: the host refuses the injection, nothing is sent."""
    with pytest.raises(ToolError) as excinfo:
        call(
            https_sandbox,
            packaged["weather_report"],
            "report",
            {"city": "Oslo", "port": api.port},
            https_policy(api, secrets=frozenset()),
        )
    assert tool_error(excinfo) == {
        "error": "weather API request failed",
        "code": -1,
        "reason": "DENIED",
    }
    assert api.requests == []


def test_weather_report_with_missing_secret_value(
    api: FakeApi, packaged: dict[str, Packaged]
) -> None:
    sandbox = Sandbox(
        services=HostServices(
            vault=MemoryVault(),
            resolver=StaticResolver(dict.fromkeys(API_HOSTS, "127.0.0.1")),
            ca_bundle=str(api.ca_bundle),
        )
    )
    with pytest.raises(ToolError) as excinfo:
        call(
            sandbox,
            packaged["weather_report"],
            "report",
            {"city": "Oslo", "port": api.port},
            https_policy(api),
        )
    assert tool_error(excinfo)["reason"] == "NOT_FOUND"
    assert api.requests == []


def test_weather_report_without_any_grant_is_denied(packaged: dict[str, Packaged]) -> None:
    with pytest.raises(ToolError) as excinfo:
        call(Sandbox(), packaged["weather_report"], "report", {"city": "Oslo"}, RuntimePolicy())
    assert tool_error(excinfo) == {
        "error": "weather API request failed",
        "code": -1,
        "reason": "DENIED",
    }


@pytest.mark.parametrize("city", ["a\nb", "x" * 81, "tab\there"])
def test_weather_report_rejects_bad_cities(city: str, modules: dict[str, bytes]) -> None:
    """Checked in C too (the manifest's maxLength only guards run_tool callers)."""
    with pytest.raises(ToolError) as excinfo:
        Sandbox().run(modules["weather_report"], input_value={"city": city}, tool_name="report")
    assert "city" in tool_error(excinfo)["error"]


def test_repository_layout() -> None:
    """The SDK ships where the docs say."""
    assert (SDK_DIR / "palyra.h").is_file()
    assert (REPO / "docs" / "writing-skills-in-c.md").is_file()
