"""``palyra.plugin.run`` through the service layer: real wasmtime, real SQLite, a real
installed skill (daemon_fixtures: one module, four tools, no default tool)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import daemon_fixtures
from palyra.daemon.plugin_run import (
    CAPABILITY_FIELDS,
    ROOT_FIELDS,
    InlineModulesDisabled,
    parse_plugin_run_request,
    run_plugin,
)
from palyra.daemon.service import Service
from palyra.errors import PalyraError
from palyra.skills.build import build_signed_skill_artifact
from palyra.store.base import JournalEvent
from runtime_fixtures import ECHO, ECHO_RUN, ECHO_WAT, compat_imports, fixed_output

SKILL = daemon_fixtures.SKILL_ID
INLINE_CONFIG = '[runtime]\nallow_inline_modules = true\nhttp_hosts = ["api.example.com"]\n'


def _open(root: Path, config: str | None = None) -> Service:
    state = root / "state"
    if config is not None:
        state.mkdir(parents=True, exist_ok=True)
        (state / "config.toml").write_text(config)
    return Service.open(state)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    svc = _open(tmp_path)
    svc.install_file(daemon_fixtures.write_artifact(tmp_path), allow_tofu=True)
    yield svc
    svc.close()


@pytest.fixture
def inline_service(tmp_path: Path) -> Iterator[Service]:
    svc = _open(tmp_path, INLINE_CONFIG)
    svc.install_file(daemon_fixtures.write_artifact(tmp_path), allow_tofu=True)
    yield svc
    svc.close()


def run(svc: Service, request: Any, **kwargs: Any) -> dict[str, Any]:
    return run_plugin(svc.ctx, svc.runner, request, **kwargs)


def event(svc: Service, seq: int) -> JournalEvent:
    with svc.ctx.store.read() as tx:
        (found,) = tx.events(after_seq=seq - 1, limit=1)
    assert found.seq == seq
    return found


def last_event(svc: Service) -> JournalEvent:
    with svc.ctx.store.read() as tx:
        found = tx.last_event()
    assert found is not None
    return found


def refused(svc: Service, request: Any, kind: str = "invalid_input") -> PalyraError:
    with pytest.raises(PalyraError) as info:
        run(svc, request)
    assert info.value.kind == kind, info.value.to_json()
    return info.value


# ---- installed skills ----------------------------------------------------------------------------


def test_installed_echo_runs_through_the_runner_and_is_journaled(service: Service) -> None:
    result = run(
        service,
        {"skill_id": SKILL, "tool_id": "acme.echo", "input": {"text": "hello"}},
        principal="alice",
        origin="mcp",
    )
    assert result["resolved_from"] == "installed_skill_artifact"
    assert result["output"] == {"text": "hello"}
    assert result["exit_code"] == 0
    assert result["entrypoint"] == "echo"
    assert result["skill"] == {
        "skill_id": SKILL,
        "version": "1.0.0",
        "module_path": "modules/module.wasm",
        "tool_id": "acme.echo",
    }
    assert result["fuel_used"] > 0
    assert result["duration_ms"] >= 0
    # Without a capabilities object the call gets the skill's effective grants: its one
    # declared secret, reported as a count, never by name.
    assert result["capabilities"] == {
        "granted_http_hosts": [],
        "granted_storage_prefixes": [],
        "granted_storage_read_prefixes": [],
        "granted_channels": [],
        "secret_count": 1,
    }
    assert "api_token" not in json.dumps(result)

    receipt = event(service, result["receipt_seq"])
    assert receipt.kind == "tool.call"
    assert receipt.actor == "alice"
    assert receipt.payload["skill_id"] == SKILL
    assert receipt.payload["tool_id"] == "acme.echo"
    assert receipt.payload["origin"] == "mcp"
    assert receipt.payload["outcome"] == "ok"
    assert receipt.payload["fuel_used"] == result["fuel_used"]


def test_installed_accepts_json_text_and_matching_module_path_and_entrypoint(
    service: Service,
) -> None:
    request = {
        "skill_id": SKILL,
        "skill_version": "1.0.0",
        "tool_id": "echo",  # a tool's name works as for every call
        "module_path": "modules/module.wasm",
        "entrypoint": "echo",
        "input": {"text": "x"},
    }
    result = run(service, json.dumps(request))
    assert result["output"] == {"text": "x"}
    assert result["skill"]["tool_id"] == "acme.echo"


def test_installed_capabilities_narrow_the_grants(service: Service) -> None:
    result = run(service, {"skill_id": SKILL, "tool_id": "acme.echo", "capabilities": {}})
    assert result["capabilities"]["secret_count"] == 0
    kept = run(
        service,
        {
            "skill_id": SKILL,
            "tool_id": "acme.echo",
            "capabilities": {"secrets": [f"skill:{SKILL}/api_token"]},
        },
    )
    assert kept["capabilities"]["secret_count"] == 1
    assert "api_token" not in json.dumps(kept)


def test_installed_capabilities_beyond_the_skill_are_denied(service: Service) -> None:
    error = refused(
        service,
        {
            "skill_id": SKILL,
            "tool_id": "acme.echo",
            "capabilities": {"http_hosts": ["api.example.com"]},
        },
        "capability_denied",
    )
    assert "api.example.com" in error.message
    assert last_event(service).payload["outcome"] == "capability_denied"


def test_installed_without_tool_id_needs_a_default_tool(service: Service) -> None:
    error = refused(service, {"skill_id": SKILL, "input": {"text": "x"}})
    assert "tool_id" in error.message
    assert "default_tool_id" in error.message
    assert error.details["field"] == "tool_id"
    rejected = last_event(service)
    assert rejected.kind == "tool.rejected"
    assert rejected.payload["outcome"] == "invalid_input"


def test_installed_default_tool_id_is_used(tmp_path: Path) -> None:
    manifest = daemon_fixtures.manifest(
        extra='\n[operator.plugin]\ndefault_tool_id = "acme.echo"\n'
    )
    built = build_signed_skill_artifact(
        manifest, [("module.wasm", daemon_fixtures.MODULE)], daemon_fixtures.KEY
    )
    path = tmp_path / "with-default.palyra-skill"
    path.write_bytes(built.artifact)
    svc = _open(tmp_path)
    try:
        svc.install_file(path, allow_tofu=True)
        result = run(svc, {"skill_id": SKILL, "input": {"text": "dflt"}})
        assert result["skill"]["tool_id"] == "acme.echo"
        assert result["output"] == {"text": "dflt"}
    finally:
        svc.close()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"tool_id": "acme.nope"}, "declares no tool"),
        ({"module_path": "modules/other.wasm"}, "does not contain module_path"),
        ({"module_path": "assets/module.wasm"}, "modules/*.wasm"),
        ({"module_path": "modules/../module.wasm"}, "module_path is invalid"),
        ({"entrypoint": "run"}, "is not the export"),
        ({"skill_version": "2.0.0"}, "not installed"),
        ({"skill_version": "v1"}, "skill_version is invalid"),
    ],
)
def test_installed_resolution_refusals(
    service: Service, extra: dict[str, Any], needle: str
) -> None:
    request = {"skill_id": SKILL, "tool_id": "acme.echo", **extra}
    with pytest.raises(PalyraError) as info:
        run(service, request)
    assert needle in info.value.message


def test_unknown_skill_is_not_found(service: Service) -> None:
    refused(service, {"skill_id": "acme.missing", "tool_id": "acme.echo"}, "not_found")


def test_quarantined_skill_is_not_active_through_this_path(service: Service) -> None:
    service.quarantine(SKILL, reason="suspicious")
    for request in (
        {"skill_id": SKILL, "tool_id": "acme.echo", "input": {"text": "x"}},
        {"skill_id": SKILL},  # the gate speaks before the missing tool_id
        {"skill_id": SKILL, "tool_id": "acme.echo", "module_path": "modules/nope.wasm"},
    ):
        error = refused(service, request, "skill_not_active")
        assert "quarantined" in error.message
        assert last_event(service).kind == "tool.rejected"


def test_approval_gated_tool_still_needs_approval(service: Service) -> None:
    with pytest.raises(PalyraError) as info:
        run(
            service,
            {"skill_id": SKILL, "tool_id": "acme.guarded", "input": {"text": "x"}},
            approval_timeout_s=0.2,
        )
    assert info.value.kind == "approval_timeout"
    assert service.list_approvals("all")["count"] == 1


def test_tool_input_is_validated_by_the_runner(service: Service) -> None:
    error = refused(service, {"skill_id": SKILL, "tool_id": "acme.echo", "input": {"text": 5}})
    assert "input_schema" in error.message


# ---- the request shape ---------------------------------------------------------------------------


def test_unknown_root_field_is_rejected(service: Service) -> None:
    error = refused(service, {"dev": True, "skill_id": SKILL, "tool_id": "acme.echo"})
    assert "unknown field `dev`" in error.message
    assert error.details["field"] == "dev"


def test_unknown_capabilities_field_is_rejected(service: Service) -> None:
    error = refused(
        service,
        {"skill_id": SKILL, "tool_id": "acme.echo", "capabilities": {"node": ["x"]}},
    )
    assert "unknown field `node`" in error.message
    assert "capabilities" in error.message


@pytest.mark.parametrize(
    "name",
    [
        "skill_id",
        "skill_version",
        "module_path",
        "tool_id",
        "module_wat",
        "module_base64",
        "entrypoint",
    ],
)
@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_blank_fields_are_rejected(service: Service, name: str, blank: str) -> None:
    error = refused(service, {"skill_id": SKILL, name: blank})
    assert f"{name} cannot be empty when provided" in error.message


@pytest.mark.parametrize(
    ("request_json", "needle"),
    [
        ({"skill_id": 5}, "skill_id must be a string"),
        ({"skill_id": SKILL, "capabilities": []}, "capabilities must be an object"),
        ({"skill_id": SKILL, "capabilities": {"http_hosts": "a.com"}}, "must be an array"),
        ({"skill_id": SKILL, "capabilities": {"secrets": [1]}}, "entries must be strings"),
        ({"skill_id": SKILL, "capabilities": {"channels": [""]}}, "cannot be empty"),
        ({"skill_id": SKILL, "capabilities": {"http_hosts": ["..."]}}, "invalid host"),
        ({"skill_id": SKILL, "capabilities": {"http_hosts": ["API.example.com"]}}, "invalid host"),
        ({"skill_id": SKILL, "capabilities": {"secrets": ["db_password"]}}, "<scope>/<key>"),
        ({"skill_id": SKILL, "capabilities": {"storage_prefixes": ["/etc"]}}, "storage prefix"),
        ({"skill_id": " acme.x"}, "skill_id is invalid"),
        ({"skill_id": SKILL, "entrypoint": "Run!"}, "contains invalid characters"),
        ({"skill_id": SKILL, "input": float("nan")}, "finite"),
        ({"skill_id": SKILL, "input": {1: "x"}}, "non-string key"),
        ({"skill_id": SKILL, "input": {"a": {1, 2}}}, "not a JSON value"),
        ({"skill_id": SKILL, "input": "\ud800"}, "lone surrogate"),
        ({}, "requires skill_id"),
        ([], "must be a JSON object"),
        ("not json", "valid JSON object"),
        ('{"skill_id": "a", "skill_id": "b"}', "duplicate field"),
        ('{"skill_id": "acme.x", "input": NaN}', "valid JSON object"),
        (b"\xff", "UTF-8"),
        ("[" * 5000, "valid JSON object"),
    ],
)
def test_malformed_requests_get_typed_errors(
    service: Service, request_json: Any, needle: str
) -> None:
    error = refused(service, request_json)
    assert needle in error.message, error.message


def test_deep_input_is_refused() -> None:
    deep: Any = {}
    for _ in range(200):
        deep = {"a": deep}
    with pytest.raises(PalyraError, match="deeper"):
        parse_plugin_run_request({"skill_id": SKILL, "input": deep})


def test_wat_and_base64_together_are_refused(inline_service: Service) -> None:
    error = refused(
        inline_service,
        {"module_wat": ECHO_WAT, "module_base64": base64.b64encode(ECHO).decode()},
    )
    assert "not both" in error.message


@pytest.mark.parametrize("name", ["module_path", "tool_id"])
def test_inline_with_module_path_or_tool_id_is_refused(inline_service: Service, name: str) -> None:
    value = "modules/module.wasm" if name == "module_path" else "acme.echo"
    error = refused(inline_service, {"module_wat": ECHO_WAT, name: value})
    assert "installed skill artifacts" in error.message


# ---- inline modules ------------------------------------------------------------------------------


def test_inline_is_refused_by_default(service: Service) -> None:
    for request in (
        {"module_wat": ECHO_WAT, "entrypoint": "echo"},
        {"module_base64": base64.b64encode(ECHO_RUN).decode()},
    ):
        with pytest.raises(InlineModulesDisabled) as info:
            run(service, request)
        assert info.value.kind == "invalid_input"
        assert "[runtime] allow_inline_modules = true" in info.value.message
        assert "config.toml" in info.value.message


def test_inline_wat_echo_runs_when_enabled(inline_service: Service) -> None:
    result = run(
        inline_service,
        {
            "module_wat": ECHO_WAT,
            "entrypoint": "echo",
            "input": {"a": [1, 2, "ü"]},
            "skill_id": "acme.metadata_only",  # accepted, but never an identity
        },
        origin="http",
    )
    assert result["resolved_from"] == "inline_module"
    assert result["skill"] is None
    assert result["output"] == {"a": [1, 2, "ü"]}
    assert result["entrypoint"] == "echo"
    assert result["exit_code"] == 0
    assert result["capabilities"]["secret_count"] == 0
    receipt = event(inline_service, result["receipt_seq"])
    assert receipt.kind == "tool.call"
    payload = receipt.payload
    assert payload["inline_module_sha256"] == hashlib.sha256(ECHO).hexdigest()
    assert payload["entrypoint"] == "echo"
    assert payload["origin"] == "http"
    assert payload["outcome"] == "ok"
    assert payload["fuel_used"] == result["fuel_used"]
    assert payload["grants"]["http_hosts"] == []
    assert "duration_ms" in payload


def test_inline_base64_echo_runs_with_default_entrypoint(inline_service: Service) -> None:
    result = run(
        inline_service,
        {
            "module_base64": base64.b64encode(ECHO_RUN).decode(),
            "input": {"n": 7},
            "capabilities": {"http_hosts": ["api.example.com"]},
        },
    )
    assert result["output"] == {"n": 7}
    assert result["entrypoint"] == "run"
    assert result["capabilities"]["granted_http_hosts"] == ["api.example.com"]
    receipt = event(inline_service, result["receipt_seq"])
    assert receipt.payload["inline_module_sha256"] == hashlib.sha256(ECHO_RUN).hexdigest()
    assert receipt.payload["grants"]["http_hosts"] == ["api.example.com"]


def test_inline_compat_guest_sees_only_requested_grants(inline_service: Service) -> None:
    module = f"""
(module
  {compat_imports()}
  (memory (export "memory") 1)
  (func (export "run") (result i32) (call $http-count)))
"""
    granted = run(
        inline_service,
        {"module_wat": module, "capabilities": {"http_hosts": ["api.example.com"]}},
    )
    assert granted["exit_code"] == 1
    assert granted["output"] == {"exit_code": 1}
    bare = run(inline_service, {"module_wat": module})
    assert bare["exit_code"] == 0


@pytest.mark.parametrize(
    "caps",
    [
        {"http_hosts": ["blocked.example"]},
        {"http_hosts": ["*.example.com"]},
        {"secrets": ["global/db_password"]},  # policy "*" means "as declared": nothing here
        {"storage_prefixes": ["plugins/cache"]},
        {"channels": ["cli"]},
    ],
)
def test_inline_capabilities_must_be_listed_by_name(
    inline_service: Service, caps: dict[str, list[str]]
) -> None:
    error = refused(
        inline_service,
        {"module_base64": base64.b64encode(ECHO_RUN).decode(), "capabilities": caps},
        "capability_denied",
    )
    (value,) = next(iter(caps.values()))
    assert value in error.message
    rejected = last_event(inline_service)
    assert rejected.kind == "tool.rejected"
    assert rejected.payload["outcome"] == "capability_denied"
    assert rejected.payload["inline_module_sha256"] == hashlib.sha256(ECHO_RUN).hexdigest()


def test_inline_policy_lists_grant_secrets_storage_and_channels(tmp_path: Path) -> None:
    config = (
        "[runtime]\nallow_inline_modules = true\n"
        'secrets = ["global/db_password"]\nstorage = ["plugins/cache"]\nchannels = ["cli"]\n'
    )
    svc = _open(tmp_path, config)
    try:
        result = run(
            svc,
            {
                "module_base64": base64.b64encode(ECHO_RUN).decode(),
                "capabilities": {
                    "secrets": ["global/db_password"],
                    "storage_prefixes": ["plugins/cache"],
                    "channels": ["cli"],
                },
            },
        )
        assert result["capabilities"] == {
            "granted_http_hosts": [],
            "granted_storage_prefixes": ["plugins/cache"],
            "granted_storage_read_prefixes": [],
            "granted_channels": ["cli"],
            "secret_count": 1,
        }
        assert "db_password" not in json.dumps(result)
    finally:
        svc.close()


@pytest.mark.parametrize(
    ("request_json", "kind", "needle"),
    [
        ({"module_base64": "AGFzbQ"}, "invalid_input", "module_base64 is invalid"),
        ({"module_base64": "AGFzbQ==\n"}, "invalid_input", "module_base64 is invalid"),
        ({"module_base64": "AGFzbR=="}, "invalid_input", "not canonical"),
        ({"module_base64": "é"}, "invalid_input", "module_base64 is invalid"),
        ({"module_wat": "(module"}, "invalid_input", "not valid WAT"),
        ({"module_wat": ECHO_WAT}, "missing_export", "missing exported entrypoint 'run'"),
        ({"module_wat": ECHO_WAT, "entrypoint": "nope"}, "missing_export", "'nope'"),
        ({"module_base64": base64.b64encode(b"\0asm junk").decode()}, "invalid_module", ""),
    ],
)
def test_inline_payload_errors(
    inline_service: Service, request_json: dict[str, Any], kind: str, needle: str
) -> None:
    error = refused(inline_service, request_json, kind)
    assert needle in error.message


def test_inline_module_size_is_capped(inline_service: Service) -> None:
    limit = inline_service.ctx.config.policy.limits.max_module_bytes
    huge = base64.b64encode(b"\0" * (limit + 3)).decode()
    refused(inline_service, {"module_base64": huge}, "invalid_module")
    refused(inline_service, {"module_wat": "(module)" + " " * limit}, "invalid_module")


def test_inline_tool_failure_is_journaled(inline_service: Service) -> None:
    failing = fixed_output(b"boom", exit_code=3)
    error = refused(
        inline_service, {"module_base64": base64.b64encode(failing).decode()}, "tool_error"
    )
    assert "boom" in error.message
    receipt = last_event(inline_service)
    assert receipt.kind == "tool.call"
    assert receipt.payload["outcome"] == "tool_error"
    assert receipt.payload["inline_module_sha256"] == hashlib.sha256(failing).hexdigest()


# ---- never anything but a typed error ------------------------------------------------------------

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from([SKILL, "acme.echo", "echo", "1.0.0", "modules/module.wasm", "run", ""])
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_CAPS = st.dictionaries(
    st.sampled_from(CAPABILITY_FIELDS) | st.text(max_size=6),
    st.lists(
        st.sampled_from(["api.example.com", f"skill:{SKILL}/api_token", "global/x", "cli", "a/b"])
        | st.text(max_size=8)
    )
    | _JSON,
    max_size=4,
)


def _mostly(*good: Any) -> st.SearchStrategy[Any]:
    """One of ``good`` nine times out of ten, else any JSON value."""
    return _rarely_junk(st.sampled_from(good))


def _rarely_junk(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.integers(0, 9).flatmap(lambda i: _JSON if i == 0 else good)


# Mostly well-formed field values, so examples get past the shape checks and into the
# installed and inline paths (runs, schema refusals, denials, compile errors…).
_FIELDS = {
    "skill_id": _mostly(SKILL, "acme.missing"),
    "skill_version": _mostly("1.0.0", "2.0.0"),
    "module_path": _mostly("modules/module.wasm", "modules/x.wasm"),
    "tool_id": _mostly("acme.echo", "echo", "acme.needs_secret", "acme.nope"),
    "module_wat": _mostly(ECHO_WAT, "(module)", "(module"),
    "module_base64": _mostly(base64.b64encode(ECHO_RUN).decode(), "AAAA"),
    "entrypoint": _mostly("run", "echo", "nope"),
    "capabilities": _rarely_junk(_CAPS),
    "input": _rarely_junk(st.fixed_dictionaries({}, optional={"text": st.text(max_size=10)})),
}


def _shape(required: tuple[str, ...], optional: tuple[str, ...]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {k: _FIELDS[k] for k in required}, optional={k: _FIELDS[k] for k in optional}
    )


_COMMON = ("entrypoint", "capabilities", "input")
_REQUESTS = st.one_of(
    _shape(("skill_id",), ("skill_version", "module_path", "tool_id", *_COMMON)),
    _shape(("module_wat",), ("skill_id", *_COMMON)),
    _shape(("module_base64",), ("skill_id", *_COMMON)),
    _shape((), tuple(ROOT_FIELDS)),
    st.dictionaries(st.sampled_from(ROOT_FIELDS) | st.text(max_size=8), _JSON | _CAPS, max_size=6),
    _JSON,
    st.text(max_size=40),
)


@pytest.fixture(scope="module")
def shared_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("plugin-run-prop")
    svc = _open(root, INLINE_CONFIG)
    svc.install_file(daemon_fixtures.write_artifact(root), allow_tofu=True)
    yield svc
    svc.close()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(request_json=_REQUESTS)
def test_arbitrary_requests_only_raise_typed_errors(
    shared_service: Service, request_json: Any
) -> None:
    try:
        result = run_plugin(
            shared_service.ctx, shared_service.runner, request_json, approval_timeout_s=0.05
        )
    except PalyraError as exc:
        assert exc.kind and exc.message
        assert "\n" not in exc.message
    else:
        assert set(result) >= {"exit_code", "resolved_from", "receipt_seq", "capabilities"}
        json.dumps(result, allow_nan=False)
