"""The sandbox's functional behaviour: reference behaviours R1-R9, both guest ABIs, storage,
secrets, channels, the tool runner, the compile cache and HTTP egress through the guest.

Every guest is real WebAssembly compiled from WAT and run by real wasmtime; storage and vaults
use real files under ``tmp_path``; HTTP goes to a real server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import pytest

from palyra.errors import PalyraError
from palyra.runtime import errors
from palyra.runtime.channels import ChannelMessage, MemoryChannelSink
from palyra.runtime.context import (
    DENIED,
    INVALID,
    NOT_FOUND,
    QUOTA,
    TOO_LARGE,
    UPSTREAM,
    CallGrants,
    HostServices,
)
from palyra.runtime.limits import RuntimeLimits
from palyra.runtime.sandbox import Sandbox
from palyra.runtime.tools import RuntimePolicy, effective_grants, run_tool
from palyra.runtime.vault import VAULT_KEY_ENV, EncryptedFileVault, MemoryVault, VaultError
from palyra.skills.build import build_signed_skill_artifact
from palyra.skills.grants import CapabilityGrants
from palyra.skills.inspect import SkillInspection, inspect_skill_artifact
from palyra.skills.keys import SigningKey
from palyra.skills.manifest import parse_manifest_toml
from runtime_fixtures import (
    ANSWER,
    COMPAT,
    ECHO,
    ECHO_RUN,
    LOOP,
    MEM_SIZE,
    SCRATCH,
    UNREACHABLE,
    Probe,
    call,
    compat_imports,
    data_imports,
    fixed_output,
    i32,
    import_line,
    report,
    wat,
    wat_string,
)

SCOPE = "skill:acme.echo_http"
SECRET_KEY = "api_token"
SECRET_REF = f"{SCOPE}/{SECRET_KEY}"
SECRET_VALUE = b"s3cr3t-t0ken-VALUE-9f2c"
SEED_05 = bytes([5]) * 32


def fail(fn: Callable[[], object], kind: str) -> errors.RuntimeFailure:
    """Run ``fn``, which must raise a RuntimeFailure of ``kind`` (and a PalyraError)."""
    with pytest.raises(errors.RuntimeFailure) as info:
        fn()
    assert isinstance(info.value, PalyraError)
    assert info.value.kind == kind, f"expected {kind}, got {info.value.kind}: {info.value}"
    return info.value


def run_probe(sandbox: Sandbox, probe: Probe, **kwargs: Any) -> list[Any]:
    return report(sandbox.run(probe.build(), **kwargs).output)


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox()


# =============================================================================================
# Reference behaviours R1-R9 (runtime.md §10), adapted to this sandbox's error kinds
# =============================================================================================

COMPAT_GUEST = wat(
    f"""
(module
  {compat_imports()}
  (func (export "run") (result i32)
    (if (result i32)
      (i32.and
        (i32.and (i32.eq (call $http-count) (i32.const 1))
                 (i32.eq (call $secret-count) (i32.const 1)))
        (i32.and (i32.eq (call $storage-count) (i32.const 1))
                 (i32.eq (call $channel-count) (i32.const 1))))
      (then (call $http-handle (i32.const 0)))
      (else (i32.const -999))))
  (func (export "counts") (result i32)
    (i32.add
      (i32.add (i32.mul (call $http-count) (i32.const 1000))
               (i32.mul (call $secret-count) (i32.const 100)))
      (i32.add (i32.mul (call $storage-count) (i32.const 10)) (call $channel-count))))
  (func (export "http0") (result i32) (call $http-handle (i32.const 0)))
  (func (export "http1") (result i32) (call $http-handle (i32.const 1)))
  (func (export "secret0") (result i32) (call $secret-handle (i32.const 0)))
  (func (export "secret1") (result i32) (call $secret-handle (i32.const 1)))
  (func (export "storage0") (result i32) (call $storage-handle (i32.const 0)))
  (func (export "storage1") (result i32) (call $storage-handle (i32.const 1)))
  (func (export "channel0") (result i32) (call $channel-handle (i32.const 0)))
  (func (export "channel1") (result i32) (call $channel-handle (i32.const 1)))
  (func (export "http42") (result i32) (call $http-handle (i32.const 42)))
  (func (export "http_negative") (result i32) (call $http-handle (i32.const -1)))
  (func (export "http_min") (result i32) (call $http-handle (i32.const -2147483648))))
"""
)

R2_GRANTS = CallGrants(
    http_hosts=("api.example.com",),
    secrets=frozenset({("skill:acme.echo_http", "db_password")}),
    storage_write=("plugins/cache",),
    channels=("cli",),
)


def compat_exit(sandbox: Sandbox, export: str, grants: CallGrants = R2_GRANTS) -> int:
    result = sandbox.run(COMPAT_GUEST, tool_name=export, grants=grants)
    assert result.abi == "compat"
    assert result.export == export
    assert result.output == {"exit_code": result.exit_code}
    return result.exit_code


def test_r1_answer_export_returns_42_through_the_compat_path(sandbox: Sandbox) -> None:
    result = sandbox.run(ANSWER, tool_name="answer")
    assert result.output == {"exit_code": 42}
    assert result.exit_code == 42
    assert result.abi == "compat"
    assert result.export == "answer"
    assert result.logs == [] and result.egress == []


def test_r2_compat_grants_numbering(sandbox: Sandbox) -> None:
    assert compat_exit(sandbox, "run") == 10_000
    assert compat_exit(sandbox, "counts") == 1111
    handles = {
        family: [compat_exit(sandbox, f"{family}0")]
        for family in ("http", "secret", "storage", "channel")
    }
    assert handles == {
        "http": [10_000],
        "secret": [20_000],
        "storage": [30_000],
        "channel": [40_000],
    }
    for family in ("http", "secret", "storage", "channel"):
        assert compat_exit(sandbox, f"{family}1") == -1


def test_r2_compat_without_grants_counts_nothing(sandbox: Sandbox) -> None:
    assert compat_exit(sandbox, "counts", CallGrants()) == 0
    assert compat_exit(sandbox, "run", CallGrants()) == -999
    assert compat_exit(sandbox, "http0", CallGrants()) == -1


def test_r2_compat_lists_are_sorted_and_deduplicated(sandbox: Sandbox) -> None:
    grants = CallGrants(http_hosts=("b.example", "a.example", "b.example"))
    assert compat_exit(sandbox, "counts", grants) == 2000
    assert compat_exit(sandbox, "http0", grants) == 10_000
    assert compat_exit(sandbox, "http1", grants) == 10_001


def test_r2_compat_lists_are_trimmed_and_drop_empty_entries(sandbox: Sandbox) -> None:
    # docs/abi.md: "Granted items are trimmed, sorted and de-duplicated per class".
    grants = CallGrants(http_hosts=(" a.example ", "a.example", ""), channels=("cli", " cli"))
    assert compat_exit(sandbox, "counts", grants) == 1001


def test_r3_out_of_range_and_negative_handles_are_minus_one(sandbox: Sandbox) -> None:
    assert compat_exit(sandbox, "http42") == -1
    assert compat_exit(sandbox, "http_negative") == -1
    assert compat_exit(sandbox, "http_min") == -1


def test_r4_loop_with_small_fuel_is_fuel_exhausted(sandbox: Sandbox) -> None:
    failure = fail(lambda: sandbox.run(LOOP, limits=RuntimeLimits(fuel=5_000)), "fuel_exhausted")
    assert "5000" in failure.message


def test_r5_large_initial_memory_is_memory_limit(sandbox: Sandbox) -> None:
    module = wat('(module (memory 2000) (func (export "run") (result i32) i32.const 0))')
    fail(lambda: sandbox.run(module), "memory_limit")


def test_r6_unreachable_is_a_guest_trap(sandbox: Sandbox) -> None:
    failure = fail(lambda: sandbox.run(UNREACHABLE), "guest_trap")
    assert failure.details["trap_code"] == "unreachable"
    assert isinstance(failure.details["frames"], list) and failure.details["frames"]


def test_r7_infinite_loop_with_huge_fuel_times_out(sandbox: Sandbox) -> None:
    limits = RuntimeLimits(fuel=10**12, timeout_ms=50)
    started = time.monotonic()
    fail(lambda: sandbox.run(LOOP, limits=limits), "timed_out")
    assert time.monotonic() - started < 10  # a hang bound, not a performance assertion


def test_r8_wrong_import_signature_is_link_error(sandbox: Sandbox) -> None:
    module = wat(
        f"""(module
  (import "{COMPAT}" "http-count" (func $c (param i32) (result i32)))
  (func (export "run") (result i32) (call $c (i32.const 0))))"""
    )
    fail(lambda: sandbox.run(module), "link_error")


def test_r9_missing_export_is_missing_export(sandbox: Sandbox) -> None:
    module = wat('(module (func (export "other") (result i32) i32.const 0))')
    fail(lambda: sandbox.run(module), "missing_export")


# =============================================================================================
# Data ABI: input, output, metadata
# =============================================================================================


def test_echo_round_trips_unicode(sandbox: Sandbox) -> None:
    value = {"text": "héllo wörld ✓ 🚀 日本語", "nested": [1, 2.5, None, True], "e": ""}
    result = sandbox.run(ECHO, input_value=value, tool_name="echo")
    assert result.output == value
    assert result.abi == "data"
    assert result.export == "echo"
    assert result.exit_code == 0
    assert result.fuel_used > 0
    assert result.memory_bytes == 65_536


def test_echo_of_raw_input_bytes(sandbox: Sandbox) -> None:
    raw = '{"k": "é"}'.encode()
    result = sandbox.run(ECHO, input_bytes=raw, tool_name="echo")
    assert result.output == {"k": "é"}


def test_input_read_with_a_short_buffer_copies_a_prefix(sandbox: Sandbox) -> None:
    probe = Probe()
    buf = probe.blob("ZZZZZZZZ")
    probe.num(call("input_len"))
    probe.num(call("input_read", buf.ptr, 4)).mem(buf.ptr, 8)
    probe.num(call("input_read", buf.ptr, 0)).mem(buf.ptr, 8)
    assert run_probe(sandbox, probe, input_value=1234567) == [7, 4, "1234ZZZZ", 0, "1234ZZZZ"]


def test_input_read_with_a_long_buffer_copies_everything(sandbox: Sandbox) -> None:
    probe = Probe()
    buf = probe.blob("ZZZZZZZZZZ")
    probe.num(call("input_read", buf.ptr, 10)).mem(buf.ptr, 10)
    assert run_probe(sandbox, probe, input_value=1234567) == [7, "1234567ZZZ"]


def test_output_write_appends_across_calls(sandbox: Sandbox) -> None:
    module = wat(
        f"""
(module
  {data_imports("output_write")}
  (memory (export "memory") 1)
  (data (i32.const 0) "[1,2,")
  (func (export "run") (result i32)
    (local $a i32) (local $b i32)
    (local.set $a (call $output_write (i32.const 0) (i32.const 3)))
    (local.set $b (call $output_write (i32.const 3) (i32.const 2)))
    (i32.store8 (i32.const 100) (i32.add (i32.const 48) (local.get $a)))
    (i32.store8 (i32.const 101) (i32.const 44))
    (i32.store8 (i32.const 102) (i32.add (i32.const 48) (local.get $b)))
    (i32.store8 (i32.const 103) (i32.const 93))
    (drop (call $output_write (i32.const 100) (i32.const 4)))
    (i32.const 0)))
"""
    )
    # "[1," then "2," then "3,5]": the return values are the running totals 3 and 5.
    assert sandbox.run(module).output == [1, 2, 3, 5]


def test_tool_id_returns_the_tool_id(sandbox: Sandbox) -> None:
    probe = Probe()
    full = probe.blob("XXXXXXXXXXXX")
    short = probe.blob("XXXXXXXXX")
    probe.num(call("tool_id", full.ptr, 64)).mem(full.ptr, 12)
    probe.num(call("tool_id", short.ptr, 4)).mem(short.ptr, 9)
    out = run_probe(sandbox, probe, tool_id="acme.echo")
    assert out == [9, "acme.echoXXX", 9, "acmeXXXXX"]


def test_log_levels_map_to_names(sandbox: Sandbox) -> None:
    probe = Probe()
    for level in range(5):
        line = probe.blob(f"line {level} é")
        probe.num(call("log", level, line.ptr, line.len))
    result = sandbox.run(probe.build())
    assert result.output == [0, 0, 0, 0, 0]
    assert [(line.level, line.message) for line in result.logs] == [
        ("trace", "line 0 é"),
        ("debug", "line 1 é"),
        ("info", "line 2 é"),
        ("warn", "line 3 é"),
        ("error", "line 4 é"),
    ]
    assert result.dropped_logs == 0
    assert all(line.at_ms >= 0 for line in result.logs)
    assert result.to_json()["logs"][2]["level"] == "info"


def test_long_log_lines_are_truncated(sandbox: Sandbox) -> None:
    limits = RuntimeLimits()
    probe = Probe()
    long = probe.blob(b"a" * (limits.max_log_line_bytes + 1000))
    probe.num(call("log", 2, long.ptr, long.len))
    result = sandbox.run(probe.build(), limits=limits)
    assert result.output == [0]
    assert len(result.logs) == 1
    assert result.logs[0].message == "a" * limits.max_log_line_bytes


def test_log_line_budget_returns_quota_and_counts_dropped_lines(sandbox: Sandbox) -> None:
    probe = Probe()
    line = probe.blob("x")
    for _ in range(5):
        probe.num(call("log", 2, line.ptr, line.len))
    result = sandbox.run(probe.build(), limits=RuntimeLimits(max_log_lines=3))
    assert result.output == [0, 0, 0, QUOTA, QUOTA]
    assert len(result.logs) == 3
    assert result.dropped_logs == 2


def test_clock_now_ms_is_close_to_now(sandbox: Sandbox) -> None:
    probe = Probe().num64(call("clock_now_ms"))
    before = time.time() * 1000
    (now,) = run_probe(sandbox, probe)
    after = time.time() * 1000
    assert before - 1000 <= now <= after + 1000


def test_random_fill_writes_bytes(sandbox: Sandbox) -> None:
    probe = Probe()
    probe.num(call("random_fill", SCRATCH, 32))
    for offset in range(0, 32, 4):
        probe.num(f"(i32.load (i32.const {SCRATCH + offset}))")
    probe.num(call("random_fill", SCRATCH, 0))
    probe.num(call("random_fill", SCRATCH, 65_536))
    probe.num(call("random_fill", SCRATCH, 65_537))
    first = run_probe(sandbox, probe)
    second = run_probe(sandbox, probe)
    assert first[0] == 32
    assert first[9:] == [0, 65_536, TOO_LARGE]
    words = first[1:9]
    assert any(word != 0 for word in words)  # 2**-256 chance of a false failure
    assert words != second[1:9]


def test_result_buffer_len_and_read() -> None:
    services = HostServices(vault=MemoryVault({(SCOPE, SECRET_KEY): b"abcdefghij"}))
    probe = Probe()
    ref = probe.blob(SECRET_REF)
    buf = probe.blob("----------")
    probe.num(call("result_len"))
    probe.num(call("result_read", buf.ptr, 10))
    probe.num(call("secret_get", ref.ptr, ref.len))
    probe.num(call("result_len"))
    probe.num(call("result_read", buf.ptr, 3)).mem(buf.ptr, 10)
    probe.num(call("result_read", buf.ptr, 0))
    grants = CallGrants(secrets=frozenset({(SCOPE, SECRET_KEY)}))
    out = run_probe(Sandbox(services=services), probe, grants=grants)
    assert out == [0, 0, 10, 10, 3, "abc-------", 0]


def test_result_over_max_result_bytes_is_too_large_and_clears_the_buffer() -> None:
    probe = Probe()
    ref = probe.blob(SECRET_REF)
    probe.num(call("secret_get", ref.ptr, ref.len)).num(call("result_len"))
    limits = RuntimeLimits(max_result_bytes=len(SECRET_VALUE) - 1)
    out = run_probe(secret_sandbox(), probe, grants=SECRET_GRANTS, limits=limits)
    assert out == [TOO_LARGE, 0]


def test_nonzero_exit_is_tool_error_with_output_as_message(sandbox: Sandbox) -> None:
    module = fixed_output(b"upstream said no", exit_code=3)
    failure = fail(lambda: sandbox.run(module), "tool_error")
    assert failure.message == "upstream said no"
    assert failure.details["exit_code"] == 3
    assert isinstance(failure, errors.ToolError) and failure.exit_code == 3


def test_nonzero_exit_without_output_still_reports_the_code(sandbox: Sandbox) -> None:
    module = fixed_output(b"", exit_code=-5)
    failure = fail(lambda: sandbox.run(module), "tool_error")
    assert failure.details["exit_code"] == -5
    assert "-5" in failure.message


def test_invalid_json_output_is_invalid_output(sandbox: Sandbox) -> None:
    for text in (b"{not json", b"NaN", b"[1, 2", b"\xff\xfe", b"1 2"):
        fail(partial(sandbox.run, fixed_output(text)), "invalid_output")


def test_empty_output_is_none(sandbox: Sandbox) -> None:
    result = sandbox.run(fixed_output(b""))
    assert result.output is None
    assert result.exit_code == 0


def test_json_scalars_are_valid_output(sandbox: Sandbox) -> None:
    assert sandbox.run(fixed_output(b"  17 ")).output == 17
    assert sandbox.run(fixed_output(b'"s"')).output == "s"


SELECTION = wat(
    f"""
(module
  {data_imports("output_write")}
  (memory (export "memory") 1)
  (data (i32.const 0) "\\"echo\\"\\"main\\"\\"run\\"")
  (func (export "echo") (result i32) (drop (call $output_write (i32.const 0) (i32.const 6))) (i32.const 0))
  (func (export "main") (result i32) (drop (call $output_write (i32.const 6) (i32.const 6))) (i32.const 0))
  (func (export "run") (result i32) (drop (call $output_write (i32.const 12) (i32.const 5))) (i32.const 0)))
"""
)


def test_export_selection_order(sandbox: Sandbox) -> None:
    def chosen(tool: str | None, entry: str | None) -> tuple[str, Any]:
        result = sandbox.run(SELECTION, tool_name=tool, default_entrypoint=entry)
        return result.export, result.output

    assert chosen("echo", "main") == ("echo", "echo")
    assert chosen("nope", "main") == ("main", "main")
    assert chosen(None, "main") == ("main", "main")
    assert chosen("nope", "absent") == ("run", "run")
    assert chosen(None, None) == ("run", "run")


def test_export_of_the_wrong_type_is_missing_export(sandbox: Sandbox) -> None:
    wrong = [
        '(func (export "echo") (param i32) (result i32) local.get 0)',
        '(func (export "echo"))',
        '(func (export "echo") (result i64) i64.const 0)',
        '(global (export "echo") i32 (i32.const 0))',
        '(memory (export "echo") 1)',
    ]
    for field_text in wrong:
        module = wat(f"(module {field_text})")
        failure = fail(partial(sandbox.run, module, tool_name="echo"), "missing_export")
        assert "echo" in failure.message


def test_tool_export_of_the_wrong_type_does_not_fall_back_to_run(sandbox: Sandbox) -> None:
    """docs/abi.md: the runtime calls the *first export that exists* among the tool name,
    the default entrypoint and ``run``; that export must be ``() -> i32`` and "one with
    another type is missing_export". Running ``run`` instead would execute other code than
    the tool the caller asked for."""
    module = wat(
        '(module (func (export "echo") (param i32) (result i32) local.get 0)'
        ' (func (export "run") (result i32) i32.const 7))'
    )
    fail(lambda: sandbox.run(module, tool_name="echo"), "missing_export")


def test_runtime_limits_must_be_positive_integers() -> None:
    for name in ("fuel", "memories", "tables", "instances", "timeout_ms", "max_output_bytes"):
        for bad in (0, -1, True, 1.5):
            values: dict[str, Any] = {name: bad}
            with pytest.raises(ValueError):
                RuntimeLimits(**values)


def test_input_over_max_input_bytes_is_invalid_input(sandbox: Sandbox) -> None:
    limits = RuntimeLimits(max_input_bytes=64)
    fail(lambda: sandbox.run(ECHO, input_value="x" * 100, limits=limits), "invalid_input")
    fail(lambda: sandbox.run(ECHO, input_bytes=b"1" * 65, limits=limits), "invalid_input")
    ok = sandbox.run(ECHO, input_bytes=b"1" * 64, tool_name="echo", limits=limits)
    assert ok.output == int("1" * 64)


def test_unserialisable_input_is_invalid_input(sandbox: Sandbox) -> None:
    fail(lambda: sandbox.run(ECHO, input_value=float("nan")), "invalid_input")
    fail(lambda: sandbox.run(ECHO, input_value={"a": object()}), "invalid_input")


@pytest.mark.parametrize(
    "module",
    [
        pytest.param(b'(module (func (export "run") (result i32) i32.const 0))', id="wat-text"),
        pytest.param(b"\x00asm\x0d\x00\x01\x00" + b"\x00" * 16, id="component-header"),
        pytest.param(b"MZ\x90\x00garbage-bytes-here", id="garbage"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00asm\x01\x00\x00\x00\x01\xff\xff", id="truncated-section"),
        pytest.param(b"\x00asm\x02\x00\x00\x00", id="unknown-version"),
        pytest.param(ECHO[:-3], id="truncated-echo"),
    ],
)
def test_invalid_module_bytes(sandbox: Sandbox, module: bytes) -> None:
    fail(lambda: sandbox.run(module), "invalid_module")


def test_module_over_max_module_bytes_is_invalid_module(sandbox: Sandbox) -> None:
    limits = RuntimeLimits(max_module_bytes=len(ECHO) - 1)
    failure = fail(lambda: sandbox.run(ECHO, limits=limits), "invalid_module")
    assert str(len(ECHO) - 1) in failure.message
    assert sandbox.run(ECHO, tool_name="echo", input_value=1).output == 1


def test_module_size_limit_also_applies_to_a_cached_module(sandbox: Sandbox) -> None:
    assert sandbox.run(ECHO, tool_name="echo", input_value=1).output == 1  # now cached
    limits = RuntimeLimits(max_module_bytes=len(ECHO) - 1)
    fail(lambda: sandbox.run(ECHO, tool_name="echo", limits=limits), "invalid_module")


def test_call_result_json_is_serialisable(sandbox: Sandbox) -> None:
    result = sandbox.run(ECHO, input_value={"a": 1}, tool_name="echo")
    doc = result.to_json()
    assert json.loads(json.dumps(doc))["output"] == {"a": 1}
    assert doc["module_sha256"] == result.module_sha256 and len(result.module_sha256) == 64


# =============================================================================================
# Storage
# =============================================================================================

SKILL = "acme.store"
STORE_GRANTS = CallGrants(storage_write=("skills/cache",), storage_read=("skills/data",))


def storage_dir(root: Path, skill: str = SKILL) -> Path:
    return root / "skill-data" / skill


def store_sandbox(root: Path, **services: Any) -> Sandbox:
    return Sandbox(services=HostServices(state_root=root, **services))


def run_store(box: Sandbox, probe: Probe, **kwargs: Any) -> list[Any]:
    kwargs.setdefault("grants", STORE_GRANTS)
    kwargs.setdefault("skill_id", SKILL)
    return run_probe(box, probe, **kwargs)


def put(probe: Probe, key: str | bytes, value: str | bytes) -> Probe:
    k, v = probe.blob(key), probe.blob(value)
    return probe.num(call("storage_put", k.ptr, k.len, v.ptr, v.len))


def op(probe: Probe, name: str, key: str | bytes) -> Probe:
    k = probe.blob(key)
    return probe.num(call(name, k.ptr, k.len))


def test_storage_put_get_list_delete(tmp_path: Path) -> None:
    box = store_sandbox(tmp_path)
    probe = Probe()
    put(probe, "skills/cache/a", "value-1")
    put(probe, "skills/cache/dir/b", "value-2")
    op(probe, "storage_get", "skills/cache/a").result_text()
    op(probe, "storage_list", "skills/cache").result_raw()
    op(probe, "storage_list", "skills/cache/dir").result_raw()
    op(probe, "storage_delete", "skills/cache/a")
    op(probe, "storage_get", "skills/cache/a")
    op(probe, "storage_delete", "skills/cache/a")
    put(probe, "skills/cache/a", "value-3")
    op(probe, "storage_get", "skills/cache/a").result_text()
    assert run_store(box, probe) == [
        0,
        0,
        7,
        "value-1",
        2,
        ["skills/cache/a", "skills/cache/dir/b"],
        1,
        ["skills/cache/dir/b"],
        0,
        NOT_FOUND,
        NOT_FOUND,
        0,
        7,
        "value-3",
    ]
    stored = storage_dir(tmp_path) / "skills" / "cache" / "a"
    assert stored.read_bytes() == b"value-3"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert not [p for p in stored.parent.iterdir() if p.name.startswith(".tmp-")]


def test_storage_get_of_a_missing_key_is_not_found(tmp_path: Path) -> None:
    probe = op(Probe(), "storage_get", "skills/cache/nothing")
    op(probe, "storage_list", "skills/cache").result_raw()
    assert run_store(store_sandbox(tmp_path), probe) == [NOT_FOUND, 0, []]


def test_storage_read_roots_are_read_only(tmp_path: Path) -> None:
    seeded = storage_dir(tmp_path) / "skills" / "data" / "seed"
    seeded.parent.mkdir(parents=True)
    seeded.write_bytes(b"seeded")
    probe = op(Probe(), "storage_get", "skills/data/seed").result_text()
    put(probe, "skills/data/seed", "overwritten")
    put(probe, "skills/data/new", "new")
    op(probe, "storage_delete", "skills/data/seed")
    op(probe, "storage_list", "skills/data").result_raw()
    out = run_store(store_sandbox(tmp_path), probe)
    assert out == [6, "seeded", DENIED, DENIED, DENIED, 1, ["skills/data/seed"]]
    assert seeded.read_bytes() == b"seeded"
    assert not (seeded.parent / "new").exists()


@pytest.mark.parametrize(
    "key", ["other/x", "skills/cachex/y", "skills/x", "skills/datum/x", "cache/skills/cache"]
)
def test_storage_keys_outside_the_roots_are_denied(tmp_path: Path, key: str) -> None:
    probe = put(Probe(), key, "v")
    op(probe, "storage_get", key)
    op(probe, "storage_delete", key)
    op(probe, "storage_list", key)
    assert run_store(store_sandbox(tmp_path), probe) == [DENIED] * 4
    assert not storage_dir(tmp_path).exists() or not any(
        p.is_file() for p in storage_dir(tmp_path).rglob("*")
    )


@pytest.mark.parametrize(
    "key",
    [
        b"skills/cache/../x",
        b"skills/cache/../../../etc/passwd",
        b"/abs",
        b"/skills/cache/x",
        b"skills/cache/a\\b",
        b"skills\\cache\\x",
        b"skills/cache/a\x00b",
        b"skills/cache//x",
        b"skills/cache/./x",
        b"skills/cache/x/",
        b"skills/cache/.",
        b"skills/cache/\xff",
        b"",
        b"skills/cache",  # the root itself is not a key
    ],
)
def test_storage_traversal_and_malformed_keys_are_invalid(tmp_path: Path, key: bytes) -> None:
    probe = put(Probe(), key, "v")
    op(probe, "storage_get", key)
    op(probe, "storage_delete", key)
    assert run_store(store_sandbox(tmp_path), probe) == [INVALID] * 3
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_storage_refuses_a_planted_file_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"original")
    cache = storage_dir(tmp_path) / "skills" / "cache"
    cache.mkdir(parents=True)
    (cache / "link").symlink_to(outside)
    probe = op(Probe(), "storage_get", "skills/cache/link")
    put(probe, "skills/cache/link", "pwned")
    op(probe, "storage_delete", "skills/cache/link")
    op(probe, "storage_list", "skills/cache").result_raw()
    assert run_store(store_sandbox(tmp_path), probe) == [DENIED, DENIED, DENIED, 0, []]
    assert outside.read_bytes() == b"original"
    assert (cache / "link").is_symlink()


def test_storage_refuses_a_planted_directory_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside-dir"
    outside.mkdir()
    (outside / "secret").write_bytes(b"outside data")
    cache = storage_dir(tmp_path) / "skills" / "cache"
    cache.mkdir(parents=True)
    (cache / "sub").symlink_to(outside, target_is_directory=True)
    probe = put(Probe(), "skills/cache/sub/x", "pwned")
    op(probe, "storage_get", "skills/cache/sub/secret")
    op(probe, "storage_delete", "skills/cache/sub/secret")
    op(probe, "storage_list", "skills/cache").result_raw()
    op(probe, "storage_list", "skills/cache/sub").result_raw()
    out = run_store(store_sandbox(tmp_path), probe)
    assert out[:3] == [DENIED, DENIED, DENIED]
    assert out[3:5] == [0, []]
    assert out[5] in (0, DENIED)  # listing through the link shows nothing either way
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_bytes() == b"outside data"


def test_storage_refuses_a_symlinked_intermediate_directory(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    (outside / "cache").mkdir(parents=True)
    root = storage_dir(tmp_path)
    root.mkdir(parents=True)
    (root / "skills").symlink_to(outside, target_is_directory=True)
    probe = put(Probe(), "skills/cache/x", "pwned")
    op(probe, "storage_get", "skills/cache/x")
    assert run_store(store_sandbox(tmp_path), probe) == [DENIED, DENIED]
    assert list((outside / "cache").iterdir()) == []


def test_storage_refuses_a_symlinked_skill_directory(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "skill-data").mkdir()
    storage_dir(tmp_path).symlink_to(outside, target_is_directory=True)
    probe = put(Probe(), "skills/cache/x", "pwned")
    op(probe, "storage_get", "skills/cache/x")
    out = run_store(store_sandbox(tmp_path), probe)
    assert list(outside.iterdir()) == []  # the security property holds either way
    assert out == [DENIED, DENIED]  # docs/abi.md: symlinks are refused (DENIED)


def test_storage_quota_per_skill(tmp_path: Path) -> None:
    """The quota charges whole 4 KiB blocks per file and per directory (empty files and
    directories still cost inodes and blocks), so they cannot be used to fill the disk."""
    block = 4096
    box = store_sandbox(tmp_path, storage_quota_bytes=5 * block)
    probe = put(Probe(), "skills/cache/a", "x" * 60)  # 2 new directories + 1 file = 3 blocks
    put(probe, "skills/cache/b", "y" * 60)  # 4 blocks
    put(probe, "skills/cache/c", "")  # an empty file still costs a block: 5
    put(probe, "skills/cache/d", "z")  # 6 > 5
    assert run_store(box, probe) == [0, 0, 0, QUOTA]
    # The quota spans calls; overwriting a key is charged the difference, not twice.
    assert run_store(box, put(Probe(), "skills/cache/e", "w")) == [QUOTA]
    assert run_store(box, put(Probe(), "skills/cache/a", "v" * 100)) == [0]
    # Directories are charged too: a deep key needs blocks for every new directory.
    deep = put(Probe(), "skills/cache/" + "/".join(f"d{i}" for i in range(8)) + "/f", "")
    assert run_store(box, deep) == [QUOTA]
    # Another skill has its own budget.
    assert run_store(box, put(Probe(), "skills/cache/d", "w"), skill_id="acme.other") == [0]


def test_storage_value_size_cap(tmp_path: Path) -> None:
    probe = put(Probe(), "skills/cache/a", "x" * 17)
    put(probe, "skills/cache/b", "x" * 16)
    limits = RuntimeLimits(max_storage_value_bytes=16)
    assert run_store(store_sandbox(tmp_path), probe, limits=limits) == [TOO_LARGE, 0]


def test_storage_persists_across_calls_and_sandboxes(tmp_path: Path) -> None:
    assert run_store(store_sandbox(tmp_path), put(Probe(), "skills/cache/kept", "v1")) == [0]
    assert (storage_dir(tmp_path) / "skills" / "cache" / "kept").read_bytes() == b"v1"
    probe = op(Probe(), "storage_get", "skills/cache/kept").result_text()
    assert run_store(store_sandbox(tmp_path), probe) == [2, "v1"]
    # Each skill has its own directory: another skill does not see the key.
    assert run_store(store_sandbox(tmp_path), probe, skill_id="acme.other") == [NOT_FOUND, ""]


def test_storage_root_override_uses_that_directory(tmp_path: Path) -> None:
    box = Sandbox(services=HostServices(storage_root=tmp_path / "dev-store"))
    assert run_store(box, put(Probe(), "skills/cache/a", "v")) == [0]
    assert (tmp_path / "dev-store" / "skills" / "cache" / "a").read_bytes() == b"v"


def test_storage_without_grants_or_state_is_denied(tmp_path: Path) -> None:
    probe = put(Probe(), "skills/cache/a", "v")
    op(probe, "storage_get", "skills/cache/a")
    assert run_store(store_sandbox(tmp_path), probe, grants=CallGrants()) == [DENIED, DENIED]
    assert run_store(Sandbox(), probe) == [DENIED, DENIED]
    assert not (tmp_path / "skill-data").exists()


# =============================================================================================
# Secrets
# =============================================================================================

SECRET_GRANTS = CallGrants(secrets=frozenset({(SCOPE, SECRET_KEY)}))


def secret_sandbox(value: bytes | None = SECRET_VALUE) -> Sandbox:
    values = {} if value is None else {(SCOPE, SECRET_KEY): value}
    return Sandbox(services=HostServices(vault=MemoryVault(values)))


def test_granted_secret_is_readable(tmp_path: Path) -> None:
    probe = Probe()
    ref = probe.blob(SECRET_REF)
    expected = probe.blob(SECRET_VALUE)
    buf = SCRATCH
    probe.num(call("secret_get", ref.ptr, ref.len))
    probe.num(call("result_read", buf, 1024))
    probe.eq(buf, expected.ptr, expected.len)
    out = run_probe(secret_sandbox(), probe, grants=SECRET_GRANTS)
    assert out == [len(SECRET_VALUE), len(SECRET_VALUE), 1]


@pytest.mark.parametrize(
    ("ref", "grants", "code"),
    [
        pytest.param(f"{SCOPE}/other_key", SECRET_GRANTS, DENIED, id="undeclared-key"),
        pytest.param("skill:acme.other/api_token", SECRET_GRANTS, DENIED, id="other-scope"),
        pytest.param(SECRET_REF, CallGrants(), DENIED, id="no-grants"),
        pytest.param("api_token", SECRET_GRANTS, INVALID, id="no-slash"),
        pytest.param("x" * 2000 + "/k", SECRET_GRANTS, INVALID, id="too-long"),
    ],
)
def test_secret_refusals(ref: str, grants: CallGrants, code: int) -> None:
    probe = Probe()
    blob = probe.blob(ref)
    probe.num(call("secret_get", blob.ptr, blob.len)).num(call("result_len"))
    assert run_probe(secret_sandbox(), probe, grants=grants) == [code, 0]


def test_granted_but_missing_secret_is_not_found() -> None:
    probe = Probe()
    ref = probe.blob(SECRET_REF)
    probe.num(call("secret_get", ref.ptr, ref.len))
    assert run_probe(secret_sandbox(None), probe, grants=SECRET_GRANTS) == [NOT_FOUND]
    assert run_probe(Sandbox(), probe, grants=SECRET_GRANTS) == [NOT_FOUND]  # no vault at all


def secret_leaker(exit_code: int = 0) -> bytes:
    """Reads the secret, then writes it into the output and into a log line."""
    probe = Probe(exit_code=exit_code)
    ref = probe.blob(SECRET_REF)
    probe.num(call("secret_get", ref.ptr, ref.len))
    probe.num(call("result_read", SCRATCH, 1024))
    probe.num(call("log", 2, SCRATCH, len(SECRET_VALUE)))
    probe.result_text()
    return probe.build()


def test_secret_echoed_by_the_guest_is_redacted_in_output_and_logs() -> None:
    result = secret_sandbox().run(secret_leaker(), grants=SECRET_GRANTS)
    assert result.output == [len(SECRET_VALUE), len(SECRET_VALUE), 0, "[REDACTED]"]
    assert [line.message for line in result.logs] == ["[REDACTED]"]
    assert SECRET_VALUE.decode() not in json.dumps(result.to_json())


def test_secret_echoed_into_a_tool_error_is_redacted() -> None:
    with pytest.raises(errors.ToolError) as info:
        secret_sandbox().run(secret_leaker(exit_code=1), grants=SECRET_GRANTS)
    text = json.dumps(info.value.to_json())
    assert "[REDACTED]" in info.value.message
    assert SECRET_VALUE.decode() not in text
    assert SECRET_VALUE.decode() not in str(info.value)


def test_secret_split_across_output_writes_is_still_redacted() -> None:
    half = len(SECRET_VALUE) // 2
    ref = SECRET_REF.encode()
    module = wat(
        f"""
(module
  {data_imports("secret_get", "result_read", "output_write")}
  (memory (export "memory") 1)
  (data (i32.const 0) "\\"")
  (data (i32.const 16) {wat_string(ref)})
  (func (export "run") (result i32)
    (drop (call $secret_get (i32.const 16) (i32.const {len(ref)})))
    (drop (call $result_read (i32.const 1024) (i32.const 1024)))
    (drop (call $output_write (i32.const 0) (i32.const 1)))
    (drop (call $output_write (i32.const 1024) (i32.const {half})))
    (drop (call $output_write (i32.const {1024 + half}) (i32.const {len(SECRET_VALUE) - half})))
    (drop (call $output_write (i32.const 0) (i32.const 1)))
    (i32.const 0)))
"""
    )
    result = secret_sandbox().run(module, grants=SECRET_GRANTS)
    assert result.output == "[REDACTED]"


def test_encrypted_file_vault_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VAULT_KEY_ENV, raising=False)
    vault = EncryptedFileVault(tmp_path / "vault")
    assert vault.get(SCOPE, SECRET_KEY) is None
    vault.set(SCOPE, SECRET_KEY, SECRET_VALUE)
    vault.set("global", "other", b"\x00\xffbinary")
    assert vault.get(SCOPE, SECRET_KEY) == SECRET_VALUE
    reopened = EncryptedFileVault(tmp_path / "vault")
    assert reopened.get("global", "other") == b"\x00\xffbinary"
    assert reopened.names() == [("global", "other"), (SCOPE, SECRET_KEY)]
    assert SECRET_VALUE not in vault.path.read_bytes()
    assert SECRET_VALUE.decode() not in repr(vault)
    assert stat.S_IMODE(vault.path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "vault" / "vault.key").stat().st_mode) == 0o600
    assert reopened.delete("global", "other") is True
    assert reopened.delete("global", "other") is False
    assert vault.get("global", "other") is None


def test_encrypted_file_vault_serves_the_guest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(VAULT_KEY_ENV, raising=False)
    vault = EncryptedFileVault(tmp_path / "vault")
    vault.set(SCOPE, SECRET_KEY, SECRET_VALUE)
    box = Sandbox(services=HostServices(vault=EncryptedFileVault(tmp_path / "vault")))
    result = box.run(secret_leaker(), grants=SECRET_GRANTS)
    assert result.output == [len(SECRET_VALUE), len(SECRET_VALUE), 0, "[REDACTED]"]


def test_encrypted_file_vault_wrong_key_is_a_typed_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(VAULT_KEY_ENV, raising=False)
    vault = EncryptedFileVault(tmp_path / "vault")
    vault.set(SCOPE, SECRET_KEY, SECRET_VALUE)
    monkeypatch.setenv(VAULT_KEY_ENV, (b"\x07" * 32).hex())
    with pytest.raises(VaultError) as info:
        vault.get(SCOPE, SECRET_KEY)
    assert info.value.kind == "vault_error"
    assert SECRET_VALUE.decode() not in str(info.value)
    monkeypatch.delenv(VAULT_KEY_ENV)
    (tmp_path / "vault" / "vault.key").write_bytes(b"\x09" * 32)
    with pytest.raises(VaultError):
        EncryptedFileVault(tmp_path / "vault").get(SCOPE, SECRET_KEY)


def test_encrypted_file_vault_tampered_file_is_a_typed_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(VAULT_KEY_ENV, raising=False)
    vault = EncryptedFileVault(tmp_path / "vault")
    vault.set(SCOPE, SECRET_KEY, SECRET_VALUE)
    blob = bytearray(vault.path.read_bytes())
    blob[UPSTREAM] ^= 0x01
    vault.path.write_bytes(bytes(blob))
    with pytest.raises(VaultError):
        vault.get(SCOPE, SECRET_KEY)
    vault.path.write_bytes(bytes(blob[:20]))
    with pytest.raises(VaultError):
        vault.get(SCOPE, SECRET_KEY)
    vault.path.write_bytes(b"not a vault at all, just text")
    with pytest.raises(VaultError):
        vault.get(SCOPE, SECRET_KEY)


def test_encrypted_file_vault_missing_key_file_is_a_typed_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(VAULT_KEY_ENV, raising=False)
    vault = EncryptedFileVault(tmp_path / "vault")
    vault.set(SCOPE, SECRET_KEY, SECRET_VALUE)
    (tmp_path / "vault" / "vault.key").unlink()
    with pytest.raises(VaultError):
        vault.get(SCOPE, SECRET_KEY)


def test_encrypted_file_vault_env_key_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = bytes(range(32))
    monkeypatch.setenv(VAULT_KEY_ENV, key.hex())
    vault = EncryptedFileVault(tmp_path / "vault")
    vault.set(SCOPE, SECRET_KEY, SECRET_VALUE)
    assert not (tmp_path / "vault" / "vault.key").exists()
    assert vault.get(SCOPE, SECRET_KEY) == SECRET_VALUE
    # The same key in base64 opens the same vault.
    monkeypatch.setenv(VAULT_KEY_ENV, base64.b64encode(key).decode())
    assert EncryptedFileVault(tmp_path / "vault").get(SCOPE, SECRET_KEY) == SECRET_VALUE
    # Without the key the vault cannot be read, and that is a typed error.
    monkeypatch.delenv(VAULT_KEY_ENV)
    with pytest.raises(VaultError):
        EncryptedFileVault(tmp_path / "vault").get(SCOPE, SECRET_KEY)
    for bad in ("00" * 16, "not-a-key", base64.b64encode(b"short").decode()):
        monkeypatch.setenv(VAULT_KEY_ENV, bad)
        with pytest.raises(VaultError):
            EncryptedFileVault(tmp_path / "vault").get(SCOPE, SECRET_KEY)


def test_vault_rejects_malformed_references(tmp_path: Path) -> None:
    with pytest.raises(VaultError):
        MemoryVault().set("bad scope!", "k", b"v")
    with pytest.raises(VaultError):
        EncryptedFileVault(tmp_path / "v").set(SCOPE, "bad key/x", b"v")
    assert SECRET_VALUE.decode() not in repr(MemoryVault({(SCOPE, SECRET_KEY): SECRET_VALUE}))


# =============================================================================================
# Channels
# =============================================================================================


def channel_sandbox() -> tuple[Sandbox, MemoryChannelSink]:
    sink = MemoryChannelSink()
    return Sandbox(services=HostServices(channel_sink=sink)), sink


def send(probe: Probe, channel: str | bytes, message: str | bytes) -> Probe:
    c, m = probe.blob(channel), probe.blob(message)
    return probe.num(call("channel_send", c.ptr, c.len, m.ptr, m.len))


def test_granted_channel_receives_the_message() -> None:
    box, sink = channel_sandbox()
    out = run_probe(
        box,
        send(Probe(), "ops", "deploy finished ✓"),
        skill_id="acme.notify",
        grants=CallGrants(channels=("ops",)),
    )
    assert out == [0]
    assert sink.messages == [ChannelMessage("acme.notify", "ops", "deploy finished ✓")]


def test_ungranted_channel_is_denied() -> None:
    box, sink = channel_sandbox()
    probe = send(Probe(), "other", "hi")
    assert run_probe(box, probe, grants=CallGrants(channels=("ops",))) == [DENIED]
    assert run_probe(box, probe) == [DENIED]
    assert sink.messages == []


def test_channel_message_count_quota_per_call() -> None:
    box, sink = channel_sandbox()
    probe = Probe()
    for i in range(4):
        send(probe, "ops", f"m{i}")
    limits = RuntimeLimits(max_channel_messages=2)
    grants = CallGrants(channels=("ops",))
    assert run_probe(box, probe, grants=grants, limits=limits) == [0, 0, QUOTA, QUOTA]
    assert [m.text for m in sink.messages] == ["m0", "m1"]
    # The budget is per call: the next call may send again.
    assert run_probe(box, probe, grants=grants, limits=limits) == [0, 0, QUOTA, QUOTA]


def test_oversize_channel_message_is_too_large() -> None:
    box, sink = channel_sandbox()
    probe = send(Probe(), "ops", "x" * 9)
    send(probe, "ops", "y" * 8)
    limits = RuntimeLimits(max_channel_message_bytes=8)
    out = run_probe(box, probe, grants=CallGrants(channels=("ops",)), limits=limits)
    assert out == [TOO_LARGE, 0]
    assert [m.text for m in sink.messages] == ["y" * 8]


def test_channel_message_must_be_utf8() -> None:
    box, sink = channel_sandbox()
    probe = send(Probe(), "ops", b"\xff\xfe")
    assert run_probe(box, probe, grants=CallGrants(channels=("ops",))) == [INVALID]
    assert sink.messages == []


def test_channel_message_with_a_secret_is_redacted() -> None:
    sink = MemoryChannelSink()
    box = Sandbox(
        services=HostServices(
            channel_sink=sink, vault=MemoryVault({(SCOPE, SECRET_KEY): SECRET_VALUE})
        )
    )
    probe = Probe()
    ref, channel = probe.blob(SECRET_REF), probe.blob("ops")
    probe.num(call("secret_get", ref.ptr, ref.len))
    probe.num(call("result_read", SCRATCH, 1024))
    probe.num(call("channel_send", channel.ptr, channel.len, SCRATCH, len(SECRET_VALUE)))
    grants = CallGrants(channels=("ops",), secrets=frozenset({(SCOPE, SECRET_KEY)}))
    assert run_probe(box, probe, grants=grants)[2] == 0
    assert [m.text for m in sink.messages] == ["[REDACTED]"]


def test_failing_channel_sink_is_upstream() -> None:
    class Broken:
        def send(self, message: ChannelMessage) -> None:
            raise ConnectionError("sink down")

    box = Sandbox(services=HostServices(channel_sink=Broken()))
    probe = send(Probe(), "ops", "hi")
    assert run_probe(box, probe, grants=CallGrants(channels=("ops",))) == [UPSTREAM]


# =============================================================================================
# The tool runner: effective grants, schemas, artifacts
# =============================================================================================

RUNNER_MANIFEST = """\
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
input_schema = { type = "object", properties = { text = { type = "string" }, items = { type = "array", items = { type = "integer" } } }, required = ["text"] }
output_schema = { type = "object", properties = { echo = { type = "string" } }, required = ["echo"] }
risk = { default_sensitive = false, requires_approval = false }

[capabilities.filesystem]
read_roots = ["skills/data"]
write_roots = ["skills/cache"]

[capabilities]
http_egress_allowlist = ["api.example.com"]
device_capabilities = []
node_capabilities = ["channel:ops"]

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

[operator.plugin]
default_module_path = "modules/module.wasm"
default_entrypoint = "run"
"""

COMPAT_COUNTS = wat(
    f"""
(module
  {compat_imports()}
  (func (export "run") (result i32)
    (i32.add
      (i32.add (i32.mul (call $http-count) (i32.const 1000))
               (i32.mul (call $secret-count) (i32.const 100)))
      (i32.add (i32.mul (call $storage-count) (i32.const 10)) (call $channel-count)))))
"""
)


def artifact(module: bytes) -> SkillInspection:
    built = build_signed_skill_artifact(
        RUNNER_MANIFEST,
        [("module.wasm", module)],
        SigningKey(SEED_05),
        signed_at_unix_ms=1_730_000_000_000,
    )
    return inspect_skill_artifact(built.artifact)


def test_default_policy_grants_nothing() -> None:
    manifest = parse_manifest_toml(RUNNER_MANIFEST)
    grants = effective_grants(manifest, RuntimePolicy())
    assert grants == CallGrants()


def test_allow_declared_grants_what_is_declared() -> None:
    manifest = parse_manifest_toml(RUNNER_MANIFEST)
    grants = effective_grants(manifest, RuntimePolicy.allow_declared())
    assert grants.http_hosts == ("api.example.com",)
    assert grants.secrets == frozenset({(SCOPE, SECRET_KEY)})
    assert grants.storage_write == ("skills/cache",)
    assert grants.storage_read == ("skills/data",)
    assert grants.channels == ("ops",)
    assert grants.allow_http is False and grants.allow_private_network is False


def test_policy_intersects_with_the_manifest() -> None:
    manifest = parse_manifest_toml(RUNNER_MANIFEST)
    policy = RuntimePolicy(
        http_hosts=frozenset({"api.example.com", "undeclared.example"}),
        secrets=frozenset({"skill:acme.echo_http/other"}),
        storage=frozenset({"skills/data"}),
        channels=frozenset({"ops", "cli"}),
    )
    grants = effective_grants(manifest, policy)
    assert grants.http_hosts == ("api.example.com",)
    assert grants.secrets == frozenset()
    assert grants.storage_write == ()
    assert grants.storage_read == ("skills/data",)
    assert grants.channels == ("ops",)


def test_requested_grants_narrow_and_beyond_is_capability_denied() -> None:
    manifest = parse_manifest_toml(RUNNER_MANIFEST)
    policy = RuntimePolicy.allow_declared()
    narrowed = effective_grants(manifest, policy, CapabilityGrants(channels=("ops",)))
    assert narrowed == CallGrants(channels=("ops",))
    for requested in (
        CapabilityGrants(http_hosts=("evil.example",)),
        CapabilityGrants(channels=("cli",)),
        CapabilityGrants(storage_prefixes=("skills/data",)),  # read-only root asked writable
    ):
        failure = fail(partial(effective_grants, manifest, policy, requested), "capability_denied")
        assert "beyond" in failure.message
    # Declared, but not honoured by the policy, is also beyond.
    fail(
        lambda: effective_grants(
            manifest, RuntimePolicy(), CapabilityGrants(http_hosts=("api.example.com",))
        ),
        "capability_denied",
    )


def test_run_tool_honours_the_policy(sandbox: Sandbox) -> None:
    inspection = artifact(COMPAT_COUNTS)
    nothing = run_tool(sandbox, inspection, "acme.echo", {"text": "x"}, RuntimePolicy())
    assert nothing.output == {"exit_code": 0}
    declared = run_tool(sandbox, inspection, "echo", {"text": "x"}, RuntimePolicy.allow_declared())
    assert declared.output == {"exit_code": 1111}
    fail(
        lambda: run_tool(
            sandbox,
            inspection,
            "acme.echo",
            {"text": "x"},
            RuntimePolicy.allow_declared(),
            requested=CapabilityGrants(http_hosts=("evil.example",)),
        ),
        "capability_denied",
    )


def test_run_tool_echo_and_output_schema(sandbox: Sandbox) -> None:
    inspection = artifact(ECHO)
    value = {"text": "hi ✓", "echo": "hi ✓"}
    result = run_tool(sandbox, inspection, "acme.echo", value, RuntimePolicy())
    assert result.output == value
    assert result.export == "echo"
    failure = fail(
        lambda: run_tool(sandbox, inspection, "acme.echo", {"text": "hi"}, RuntimePolicy()),
        "invalid_output",
    )
    assert "echo" in failure.message
    assert any("$" in v for v in failure.details["violations"])


def test_run_tool_validates_input_with_json_paths(sandbox: Sandbox) -> None:
    inspection = artifact(ECHO)
    failure = fail(
        lambda: run_tool(
            sandbox, inspection, "acme.echo", {"text": 5, "items": [1, "x"]}, RuntimePolicy()
        ),
        "invalid_input",
    )
    violations = failure.details["violations"]
    assert any(v.startswith("$.text:") for v in violations), violations
    assert any(v.startswith("$.items[1]:") for v in violations), violations
    assert "$.text" in failure.message
    missing = fail(
        lambda: run_tool(sandbox, inspection, "acme.echo", {}, RuntimePolicy()), "invalid_input"
    )
    assert any(v.startswith("$:") and "text" in v for v in missing.details["violations"])


def test_run_tool_unknown_tool_is_invalid_input(sandbox: Sandbox) -> None:
    inspection = artifact(ECHO)
    fail(
        lambda: run_tool(sandbox, inspection, "acme.nope", {"text": "x"}, RuntimePolicy()),
        "invalid_input",
    )


def test_run_tool_narrows_limits_by_the_manifest_quotas(sandbox: Sandbox) -> None:
    inspection = artifact(LOOP)
    policy = RuntimePolicy(limits=RuntimeLimits(fuel=10**9))
    failure = fail(
        lambda: run_tool(sandbox, inspection, "acme.echo", {"text": "x"}, policy),
        "fuel_exhausted",
    )
    assert "5000000" in failure.message


def test_run_tool_falls_back_to_the_default_entrypoint(sandbox: Sandbox) -> None:
    inspection = artifact(ECHO_RUN)
    value = {"text": "a", "echo": "b"}
    result = run_tool(sandbox, inspection, "acme.echo", value, RuntimePolicy())
    assert result.export == "run"
    assert result.output == value


# =============================================================================================
# Compile cache
# =============================================================================================


def cache_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.cwasm"))


def test_compile_cache_is_loaded_from_disk_by_a_second_sandbox(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = Sandbox(cache_dir=cache)
    assert first.run(ECHO, input_value=1, tool_name="echo").output == 1
    assert first.modules.stats["compiles"] == 1
    assert first.run(ECHO, input_value=2, tool_name="echo").output == 2
    assert first.modules.stats["memory_hits"] >= 1
    second = Sandbox(cache_dir=cache)
    assert second.run(ECHO, input_value=3, tool_name="echo").output == 3
    assert second.modules.stats["disk_hits"] == 1
    assert second.modules.stats["compiles"] == 0
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert stat.S_IMODE((cache / "cache.key").stat().st_mode) == 0o600
    (entry,) = cache_files(cache)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600


def test_compile_cache_directory_is_tightened_to_0700(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o755)
    os.chmod(cache, 0o755)
    Sandbox(cache_dir=cache)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[:-1] + bytes([b[-1] ^ 1]), id="mac-bit"),
        pytest.param(lambda b: b[:100] + bytes([b[100] ^ 1]) + b[101:], id="code-bit"),
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b[:10], id="truncated-short"),
        pytest.param(lambda b: b"", id="empty"),
        pytest.param(lambda b: ECHO, id="raw-wasm"),
    ],
)
def test_tampered_cache_file_is_rejected_and_recompiled(
    tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    cache = tmp_path / "cache"
    Sandbox(cache_dir=cache).run(ECHO, input_value=1, tool_name="echo")
    (entry,) = cache_files(cache)
    entry.write_bytes(damage(entry.read_bytes()))
    again = Sandbox(cache_dir=cache)
    value = {"still": "works ✓"}
    assert again.run(ECHO, input_value=value, tool_name="echo").output == value
    assert again.modules.stats["rejected_cache_files"] == 1
    assert again.modules.stats["disk_hits"] == 0
    assert again.modules.stats["compiles"] == 1
    # The recompiled module was written back and is good for the next process.
    third = Sandbox(cache_dir=cache)
    assert third.run(ECHO, input_value=4, tool_name="echo").output == 4
    assert third.modules.stats["disk_hits"] == 1


def test_swapped_cache_file_is_not_loaded_for_another_module(tmp_path: Path) -> None:
    """The module docstring promises a *swapped* file is recompiled, never loaded."""
    cache = tmp_path / "cache"
    other = fixed_output(b'"the other module"', export="echo")
    box = Sandbox(cache_dir=cache)
    box.run(ECHO, input_value=1, tool_name="echo")
    box.run(other, tool_name="echo")
    files = cache_files(cache)
    assert len(files) == 2
    echo_file = next(p for p in files if p.name.startswith(box.load(ECHO).info.sha256))
    other_file = next(p for p in files if p != echo_file)
    echo_file.write_bytes(other_file.read_bytes())
    fresh = Sandbox(cache_dir=cache)
    assert fresh.run(ECHO, input_value="echo me", tool_name="echo").output == "echo me"


# =============================================================================================
# HTTP through the guest (palyra.runtime.egress)
# =============================================================================================


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalServer:
    port: int
    seen: list[Seen] = field(default_factory=list)
    redirects: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    def _state(self) -> LocalServer:
        state: LocalServer = cast(Any, self.server).state
        return state

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        state = self._state()
        if self.path.startswith("/redirect"):
            with state.lock:
                state.redirects += 1
            self.send_response(302)
            self.send_header("Location", f"http://evil.test:{state.port}/stolen")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/slow"):
            time.sleep(2)
        with state.lock:
            state.seen.append(
                Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
        payload = json.dumps({"ok": True, "method": self.command, "path": self.path}).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _handle
    do_POST = _handle

    def log_message(self, format: str, *args: Any) -> None:
        return


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients the sandbox cut off (timeouts, caps) are expected; no tracebacks."""


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    pytest.importorskip("palyra.runtime.egress")
    server = _QuietServer(("127.0.0.1", 0), _Handler)
    state = LocalServer(port=server.server_address[1])
    cast(Any, server).state = state
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class CountingResolver:
    def __init__(self, mapping: dict[str, list[str]]) -> None:
        self.mapping = mapping
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return list(self.mapping.get(host, []))


def http_grants(port: int, **extra: Any) -> CallGrants:
    return CallGrants(
        http_hosts=("api.test.local",),
        allow_http=True,
        allow_private_network=True,
        allowed_ports=frozenset({port}),
        **extra,
    )


def http_probe(request: dict[str, Any], *, body: bool = False) -> Probe:
    """Reports the status (or error code) and, with ``body``, the response body."""
    probe = Probe()
    req = probe.blob(json.dumps(request))
    probe.num(call("http_request", req.ptr, req.len))
    if body:
        probe.result_raw()
    return probe


def test_http_request_reaches_a_granted_local_server(http_server: LocalServer) -> None:
    resolver = CountingResolver({"api.test.local": ["127.0.0.1"]})
    box = Sandbox(services=HostServices(resolver=resolver))
    url = f"http://api.test.local:{http_server.port}/v1/items?limit=5"
    result = box.run(
        http_probe(
            {"method": "POST", "url": url, "headers": {"X-Test": "1"}, "body": "hello"}, body=True
        ).build(),
        grants=http_grants(http_server.port),
    )
    assert result.output == [201, {"ok": True, "method": "POST", "path": "/v1/items?limit=5"}]
    (seen,) = http_server.seen
    assert seen.body == b"hello"
    assert seen.headers["x-test"] == "1"
    assert seen.headers["host"] == f"api.test.local:{http_server.port}"
    (record,) = result.egress
    assert record["host"] == "api.test.local"
    assert record["port"] == http_server.port
    assert record["address"] == "127.0.0.1"
    assert record["method"] == "POST"
    assert record["decision"] == "allowed"
    assert record["status"] == 201
    assert "limit=5" not in str(record["url"])  # the query never reaches the record
    assert resolver.calls == [("api.test.local", http_server.port)]


def test_http_request_to_a_non_granted_host_is_denied(http_server: LocalServer) -> None:
    resolver = CountingResolver({"api.test.local": ["127.0.0.1"], "evil.test": ["127.0.0.1"]})
    box = Sandbox(services=HostServices(resolver=resolver))
    probe = http_probe({"url": f"http://evil.test:{http_server.port}/"})
    result = box.run(probe.build(), grants=http_grants(http_server.port))
    assert result.output == [DENIED]
    (record,) = result.egress
    assert record["decision"] == "denied"
    assert record["host"] == "evil.test"
    assert http_server.seen == []
    assert resolver.calls == []


def test_http_request_without_http_grants_is_denied_without_a_record(
    http_server: LocalServer,
) -> None:
    box = Sandbox()
    probe = http_probe({"url": f"http://api.test.local:{http_server.port}/"})
    result = box.run(probe.build())
    assert result.output == [DENIED]
    assert result.egress == []
    assert http_server.seen == []


def test_http_request_to_loopback_needs_the_private_network_policy(
    http_server: LocalServer,
) -> None:
    resolver = CountingResolver({"api.test.local": ["127.0.0.1"]})
    box = Sandbox(services=HostServices(resolver=resolver))
    probe = http_probe({"url": f"http://api.test.local:{http_server.port}/"})
    grants = CallGrants(
        http_hosts=("api.test.local",),
        allow_http=True,
        allowed_ports=frozenset({http_server.port}),
    )
    result = box.run(probe.build(), grants=grants)
    assert result.output == [DENIED]
    assert result.egress[0]["decision"] == "denied"
    assert http_server.seen == []


def test_malformed_http_request_is_invalid(http_server: LocalServer) -> None:
    box = Sandbox()
    probe = Probe()
    for text in ("not json", "[]", '{"url": 5}', '{"url": "x", "headers": {"a": 1}}'):
        blob = probe.blob(text)
        probe.num(call("http_request", blob.ptr, blob.len))
    assert run_probe(box, probe, grants=http_grants(http_server.port)) == [INVALID] * 4
    assert http_server.seen == []


def test_secret_headers_are_injected_by_the_host(http_server: LocalServer) -> None:
    resolver = CountingResolver({"api.test.local": ["127.0.0.1"]})
    services = HostServices(
        resolver=resolver, vault=MemoryVault({(SCOPE, SECRET_KEY): SECRET_VALUE})
    )
    request = {
        "url": f"http://api.test.local:{http_server.port}/private",
        "secret_headers": {"Authorization": {"secret": SECRET_REF, "prefix": "Bearer "}},
    }
    probe = http_probe(request)
    probe.num(call("result_read", SCRATCH, 4096))
    probe.num(call("log", 2, SCRATCH, 200))
    grants = http_grants(http_server.port, secrets=frozenset({(SCOPE, SECRET_KEY)}))
    result = Sandbox(services=services).run(probe.build(), grants=grants)
    assert result.output[0] == 200
    (seen,) = http_server.seen
    assert seen.headers["authorization"] == "Bearer " + SECRET_VALUE.decode()
    everything = json.dumps(result.to_json())
    assert SECRET_VALUE.decode() not in everything
    assert SECRET_VALUE.decode() not in json.dumps(result.egress)
    assert all(SECRET_VALUE.decode() not in line.message for line in result.logs)


def test_secret_headers_for_an_ungranted_secret_are_denied(http_server: LocalServer) -> None:
    resolver = CountingResolver({"api.test.local": ["127.0.0.1"]})
    services = HostServices(
        resolver=resolver, vault=MemoryVault({(SCOPE, SECRET_KEY): SECRET_VALUE})
    )
    request = {
        "url": f"http://api.test.local:{http_server.port}/private",
        "secret_headers": {"Authorization": {"secret": SECRET_REF, "prefix": "Bearer "}},
    }
    result = Sandbox(services=services).run(
        http_probe(request).build(), grants=http_grants(http_server.port)
    )
    assert result.output == [DENIED]
    assert http_server.seen == []


def test_http_response_body_over_the_result_cap_is_too_large(http_server: LocalServer) -> None:
    resolver = CountingResolver({"api.test.local": ["127.0.0.1"]})
    box = Sandbox(services=HostServices(resolver=resolver))
    probe = http_probe({"url": f"http://api.test.local:{http_server.port}/"})
    limits = RuntimeLimits(max_http_response_bytes=8)
    result = box.run(probe.build(), grants=http_grants(http_server.port), limits=limits)
    assert result.output[0] == TOO_LARGE


def test_guest_cannot_set_the_host_header(http_server: LocalServer) -> None:
    resolver = CountingResolver({"api.test.local": ["127.0.0.1"]})
    box = Sandbox(services=HostServices(resolver=resolver))
    url = f"http://api.test.local:{http_server.port}/"
    probe = Probe()
    for headers in ({"Host": "evil.test"}, {"Transfer-Encoding": "chunked"}, {"Connection": "x"}):
        blob = probe.blob(json.dumps({"url": url, "headers": headers}))
        probe.num(call("http_request", blob.ptr, blob.len))
    bad_injection = {"url": url, "secret_headers": {"Host": {"secret": SECRET_REF}}}
    blob = probe.blob(json.dumps(bad_injection))
    probe.num(call("http_request", blob.ptr, blob.len))
    out = run_probe(box, probe, grants=http_grants(http_server.port))
    assert all(code < 0 for code in out), out
    assert all(seen.headers["host"] != "evil.test" for seen in http_server.seen)
    assert http_server.seen == []


def test_redirect_to_a_non_granted_host_is_not_followed(http_server: LocalServer) -> None:
    resolver = CountingResolver({"api.test.local": ["127.0.0.1"], "evil.test": ["127.0.0.1"]})
    box = Sandbox(services=HostServices(resolver=resolver))
    probe = http_probe({"url": f"http://api.test.local:{http_server.port}/redirect"})
    result = box.run(probe.build(), grants=http_grants(http_server.port))
    assert result.output == [DENIED]
    assert http_server.redirects == 1
    assert http_server.seen == []  # /stolen was never requested
    assert [r["decision"] for r in result.egress] == ["allowed", "denied"]
    assert result.egress[1]["host"] == "evil.test"
    assert ("evil.test", http_server.port) not in resolver.calls


def test_http_request_is_bounded_by_the_call_budget(http_server: LocalServer) -> None:
    resolver = CountingResolver({"api.test.local": ["127.0.0.1"]})
    box = Sandbox(services=HostServices(resolver=resolver))
    probe = http_probe({"url": f"http://api.test.local:{http_server.port}/slow"})
    started = time.monotonic()
    try:
        outcome: Any = box.run(
            probe.build(),
            grants=http_grants(http_server.port),
            limits=RuntimeLimits(timeout_ms=300),
        ).output
    except errors.RuntimeFailure as exc:
        outcome = exc.kind
    assert time.monotonic() - started < 1.8  # the server answers after 2 s
    assert outcome in ([-6], "timed_out"), outcome


def test_probe_fixture_helpers() -> None:
    """The probe helpers themselves (a wrong fixture would make every probe test vacuous)."""
    probe = Probe().num(i32(-5)).num(i32(0x7FFF_FFFF)).num(i32(0x8000_0000)).num(i32(0))
    probe.num64("(i64.const 1234567890123)")
    text = probe.blob("abc")
    probe.mem(text.ptr, text.len).eq(text.ptr, text.ptr, 3).eq(text.ptr, text.ptr + 1, 2)
    out = run_probe(Sandbox(), probe)
    assert out == [-5, 2_147_483_647, -2_147_483_648, 0, 1_234_567_890_123, "abc", 1, 0]
    assert MEM_SIZE == 4 * 65_536
    assert wat_string(b'a"\x00') == '"\\61\\22\\00"'
    assert import_line("input_read").startswith('(import "palyra:host@1" "input_read"')


def test_native_call_path_is_built_and_used() -> None:
    """CI builds the C call path; a silent build failure would hide behind the fallback."""
    from palyra.runtime.fastcall import FAST, PURE_ENV

    if os.environ.get(PURE_ENV, "").strip() not in ("", "0"):
        assert FAST is None
        assert Sandbox().native is False
        return
    assert FAST is not None, "palyra.runtime._fastcall was not built (gcc, Python headers)"
    assert Sandbox().native is True
    assert Sandbox(native=False).run(ECHO, input_value="x", tool_name="echo").output == "x"


def test_storage_list_does_not_follow_a_planted_symlink(tmp_path: Path) -> None:
    from palyra.runtime.storage import SkillStorage

    outside = tmp_path / "outside" / "sub"
    outside.mkdir(parents=True)
    (outside / "secret-name.txt").write_text("x")
    root = tmp_path / "root"
    (root / "data").mkdir(parents=True)
    (root / "data" / "link").symlink_to(tmp_path / "outside", target_is_directory=True)
    (root / "data" / "real.txt").write_text("y")
    storage = SkillStorage(root=root, read_prefixes=("data",), write_prefixes=())
    assert storage.list("data/link/sub") == []
    assert storage.list("data") == ["data/real.txt"]


def test_storage_get_of_a_planted_fifo_does_not_block(tmp_path: Path) -> None:
    from palyra.runtime.storage import SkillStorage, StorageError

    root = tmp_path / "root"
    (root / "data").mkdir(parents=True)
    os.mkfifo(root / "data" / "pipe")
    storage = SkillStorage(root=root, read_prefixes=("data",), write_prefixes=())
    with pytest.raises(StorageError) as info:
        storage.get("data/pipe")
    assert info.value.code == "DENIED"


def test_a_log_line_cut_through_a_secret_does_not_leak_its_start() -> None:
    secret = b"sk-live-0123456789abcdef"
    vault = MemoryVault({("skill:acme.echo_http", "api_token"): secret})
    sandbox = Sandbox(services=HostServices(vault=vault))
    probe = Probe()
    probe.num(call("secret_get", probe.blob("skill:acme.echo_http/api_token")))
    line = b"." * 4086 + secret + b" tail"  # the 4 KiB cut falls inside the secret
    probe.num(call("log", 2, probe.blob(line)))
    grants = CallGrants(secrets=frozenset({("skill:acme.echo_http", "api_token")}))
    result = sandbox.run(probe.build(), grants=grants)
    logged = result.logs[0].message
    assert "sk-live" not in logged and "[REDACTED]" in logged
