"""Hostile guests: each one is contained with the right error kind, the process survives, and
the very next call on the same :class:`Sandbox` still works.

The cases live in one table (:data:`CASES`) so the soak test at the end can replay the whole
set many times and watch for leaked threads and memory.
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from palyra.errors import PalyraError
from palyra.runtime import errors, fastcall
from palyra.runtime.channels import ChannelMessage, MemoryChannelSink
from palyra.runtime.context import (
    DENIED,
    INVALID,
    QUOTA,
    TOO_LARGE,
    CallGrants,
    HostServices,
)
from palyra.runtime.limits import KIB, MIB, RuntimeLimits
from palyra.runtime.sandbox import CallResult, Sandbox
from palyra.runtime.vault import MemoryVault
from runtime_fixtures import (
    COMPAT,
    ECHO,
    HOST,
    LOOP,
    MEM_SIZE,
    SCRATCH,
    UNREACHABLE,
    Probe,
    call,
    check_echo,
    data_imports,
    import_line,
    probe_codes,
    wat,
)

SCOPE = "skill:acme.hostile"
SECRET = (SCOPE, "token")
SECRET_REF = f"{SCOPE}/token"
SECRET_VALUE = b"hostile-secret-value-0042"
SKILL = "acme.hostile"

# Everything a hostile guest could want, granted, so the pointer checks (not the grants) are
# what stands between the guest and the host. HTTP goes to a name no resolver knows.
FULL_GRANTS = CallGrants(
    http_hosts=("api.test.local",),
    secrets=frozenset({SECRET}),
    storage_write=("skills/cache",),
    channels=("ops",),
)

Outcome = CallResult | errors.RuntimeFailure


@dataclass(frozen=True)
class Hostile:
    name: str
    module: bytes
    kind: str | None  # the failure kind, or None when the call must succeed
    limits: RuntimeLimits = field(default_factory=RuntimeLimits)
    grants: CallGrants = field(default_factory=CallGrants)
    check: Callable[[Outcome], None] | None = None
    # The soak replays a case every ``replay_every`` rounds: 1 for cheap cases, more for the
    # ones bounded by wall-clock time (25 ms each) or making 10,000 host calls.
    replay_every: int = 1
    needs_egress: bool = False


class Env:
    """One sandbox (shared by every case) with real storage, vault and channel sink."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sink = MemoryChannelSink()
        self.resolved: list[tuple[str, int]] = []
        self.sandbox = Sandbox(
            services=HostServices(
                state_root=root,
                vault=MemoryVault({SECRET: SECRET_VALUE}),
                channel_sink=self.sink,
                resolver=self._resolve,
            )
        )

    def _resolve(self, host: str, port: int) -> list[str]:
        self.resolved.append((host, port))
        return []

    def run(self, case: Hostile) -> Outcome:
        try:
            return self.sandbox.run(
                case.module, grants=case.grants, limits=case.limits, skill_id=SKILL
            )
        except errors.RuntimeFailure as exc:
            return exc

    def stored_files(self) -> list[Path]:
        return [p for p in self.root.rglob("*") if p.is_file() or p.is_symlink()]


def contain(env: Env, case: Hostile) -> Outcome:
    """Run ``case``, check its outcome, then prove the sandbox still serves a normal call."""
    started = time.monotonic()
    outcome = env.run(case)
    elapsed = time.monotonic() - started
    assert elapsed < 20, f"{case.name} took {elapsed:.1f} s"  # a hang bound only
    if case.kind is None:
        assert isinstance(outcome, CallResult), f"{case.name}: {outcome!r}"
    else:
        assert isinstance(outcome, errors.RuntimeFailure), f"{case.name}: {outcome!r}"
        assert isinstance(outcome, PalyraError)
        assert outcome.kind == case.kind, f"{case.name}: {outcome.kind}: {outcome}"
        json.dumps(outcome.to_json())  # failures are always reportable
    if case.check is not None:
        case.check(outcome)
    check_echo(env.sandbox)
    return outcome


def result_of(outcome: Outcome) -> CallResult:
    assert isinstance(outcome, CallResult), outcome
    return outcome


def failure_of(outcome: Outcome) -> errors.RuntimeFailure:
    assert isinstance(outcome, errors.RuntimeFailure), outcome
    return outcome


def trap(code: str) -> Callable[[Outcome], None]:
    def check(outcome: Outcome) -> None:
        assert failure_of(outcome).details["trap_code"] == code

    return check


def exit_code_between(low: int, high: int) -> Callable[[Outcome], None]:
    def check(outcome: Outcome) -> None:
        result = result_of(outcome)
        assert low <= result.exit_code <= high, result.exit_code

    return check


# ---- modules -----------------------------------------------------------------------------------

START_LOOP = wat(
    '(module (func $spin (loop br 0)) (start $spin) (func (export "run") (result i32) i32.const 0))'
)

MEMORY_GROW_BOMB = wat(
    """
(module
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    ;; one giant step is refused, then page by page until the limit says no
    (if (i32.ne (memory.grow (i32.const 65535)) (i32.const -1)) (then unreachable))
    (block $done
      (loop $grow
        (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br $grow)))
    ;; touch the last byte of the last page: the memory is real, not just reserved
    (i32.store8 (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 1)) (i32.const 7))
    (memory.size)))
"""
)

TABLE_GROW_LOOP = wat(
    """
(module
  (table $t 1 funcref)
  (func (export "run") (result i32)
    (block $done
      (loop $grow
        (br_if $done (i32.eq (table.grow $t (ref.null func) (i32.const 1000)) (i32.const -1)))
        (br $grow)))
    (table.size $t)))
"""
)

RECURSION = wat(
    """
(module
  (func $down (param $n i64) (result i64)
    (i64.add (call $down (i64.add (local.get $n) (i64.const 1))) (local.get $n)))
  (func (export "run") (result i32) (i32.wrap_i64 (call $down (i64.const 0)))))
"""
)

DIV_ZERO = wat(
    '(module (func (export "run") (result i32) (i32.div_u (i32.const 1) (i32.const 0))))'
)
INT_OVERFLOW = wat(
    '(module (func (export "run") (result i32) (i32.div_s (i32.const -2147483648) (i32.const -1))))'
)
BAD_CONVERSION = wat(
    '(module (func (export "run") (result i32) (i32.trunc_f32_s (f32.const nan))))'
)
OOB_LOAD = wat(
    '(module (memory 1) (func (export "run") (result i32) (i32.load (i32.const 70000))))'
)
OOB_STORE = wat(
    '(module (memory 1) (func (export "run") (result i32)'
    " (i32.store (i32.const 65534) (i32.const 1)) (i32.const 0)))"
)
NULL_INDIRECT = wat(
    """
(module
  (type $t (func (result i32)))
  (table 4 funcref)
  (func (export "run") (result i32) (call_indirect (type $t) (i32.const 2))))
"""
)

OUTPUT_FLOOD = wat(
    f"""
(module
  {data_imports("output_write")}
  (memory (export "memory") 2)
  (func (export "run") (result i32)
    (block $done
      (loop $write
        (br_if $done (i32.lt_s (call $output_write (i32.const 0) (i32.const 65536)) (i32.const 0)))
        (br $write)))
    (i32.const 0)))
"""
)


FLOOD_COUNTERS = ("ok", "denied", "quota", "large", "invalid", "other")
COUNTERS = SCRATCH  # six i32 counters in the probe's scratch area


def counting_flood(name: str, times: int, args: str, setup: bytes = b"") -> bytes:
    """Calls ``name`` ``times`` times and reports how many results were OK/>0, DENIED, QUOTA,
    TOO_LARGE, INVALID and anything else."""
    probe = Probe()
    blob = probe.blob(setup or b"x")
    args = args.replace("PTR", str(blob.ptr)).replace("LEN", str(blob.len))
    probe.extra.append(
        f"""
  (func $count (param $hit i32) (param $counter i32) (result i32)
    (if (local.get $hit)
      (then (i32.store (local.get $counter) (i32.add (i32.load (local.get $counter)) (i32.const 1)))))
    (local.get $hit))
  (func $flood
    (local $i i32) (local $r i32) (local $hits i32)
    (loop $again
      (local.set $r (call ${name} {args}))
      (local.set $hits (call $count (i32.ge_s (local.get $r) (i32.const 0)) (i32.const {COUNTERS})))
      (local.set $hits (i32.add (local.get $hits)
        (call $count (i32.eq (local.get $r) (i32.const {DENIED})) (i32.const {COUNTERS + 4}))))
      (local.set $hits (i32.add (local.get $hits)
        (call $count (i32.eq (local.get $r) (i32.const {QUOTA})) (i32.const {COUNTERS + 8}))))
      (local.set $hits (i32.add (local.get $hits)
        (call $count (i32.eq (local.get $r) (i32.const {TOO_LARGE})) (i32.const {COUNTERS + 12}))))
      (local.set $hits (i32.add (local.get $hits)
        (call $count (i32.eq (local.get $r) (i32.const {INVALID})) (i32.const {COUNTERS + 16}))))
      (drop (call $count (i32.eqz (local.get $hits)) (i32.const {COUNTERS + 20})))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const {times})))))
"""
    )
    probe.do("(call $flood) (i32.const 0)")
    for index in range(len(FLOOD_COUNTERS)):
        probe.num(f"(i32.load (i32.const {COUNTERS + 4 * index}))")
    return probe.build()


def flood_counts(outcome: Outcome) -> dict[str, int]:
    values = probe_codes(result_of(outcome).output)
    return dict(zip(FLOOD_COUNTERS, values, strict=True))


LOG_FLOOD = counting_flood("log", 10_000, "(i32.const 2) (i32.const PTR) (i32.const LEN)", b"spam")
LOG_FLOOD_LONG = counting_flood(
    "log", 10_000, "(i32.const 4) (i32.const PTR) (i32.const 8192)", b"L" * 9000
)
HTTP_FLOOD = counting_flood(
    "http_request",
    10_000,
    "(i32.const PTR) (i32.const LEN)",
    json.dumps({"url": "https://not-granted.test/"}).encode(),
)
HTTP_FLOOD_GRANTED_NAME = counting_flood(
    "http_request",
    10_000,
    "(i32.const PTR) (i32.const LEN)",
    json.dumps({"url": "https://api.test.local/"}).encode(),
)


def check_log_flood(outcome: Outcome) -> None:
    result = result_of(outcome)
    limits = RuntimeLimits()
    counts = flood_counts(outcome)
    assert counts["ok"] == len(result.logs) == limits.max_log_lines
    assert counts["quota"] == result.dropped_logs == 10_000 - limits.max_log_lines
    assert counts["denied"] == counts["large"] == counts["invalid"] == counts["other"] == 0
    assert all(line.message == "spam" and line.level == "info" for line in result.logs)


def check_log_flood_long(outcome: Outcome) -> None:
    result = result_of(outcome)
    limits = RuntimeLimits()
    assert sum(len(line.message.encode()) for line in result.logs) <= limits.max_log_bytes
    assert all(len(line.message) <= limits.max_log_line_bytes for line in result.logs)
    assert len(result.logs) <= limits.max_log_lines
    assert result.dropped_logs == 10_000 - len(result.logs)
    assert result.dropped_logs > 0


def check_http_flood_ungranted(outcome: Outcome) -> None:
    counts = flood_counts(outcome)
    assert counts == {"ok": 0, "denied": 10_000, "quota": 0, "large": 0, "invalid": 0, "other": 0}
    assert result_of(outcome).egress == []


def check_http_flood_granted(outcome: Outcome) -> None:
    limits = RuntimeLimits()
    counts = flood_counts(outcome)
    assert counts["ok"] == counts["large"] == counts["invalid"] == counts["other"] == 0
    assert counts["denied"] == limits.max_http_requests  # refused, counted against the quota
    assert counts["quota"] == 10_000 - limits.max_http_requests
    records = result_of(outcome).egress
    assert 0 < len(records) <= limits.max_http_requests + 100  # bounded, not 10,000
    assert all(r["decision"] == "denied" and r["address"] is None for r in records)


def check_output_flood(outcome: Outcome) -> None:
    failure = failure_of(outcome)
    assert str(RuntimeLimits().max_output_bytes) in failure.message


def check_grow_bomb(outcome: Outcome) -> None:
    result = result_of(outcome)
    limit_pages = (8 * MIB) // 65_536
    assert result.output == {"exit_code": limit_pages}
    assert result.memory_bytes == 8 * MIB  # the high-water mark is the limit, never above


def check_no_memory(outcome: Outcome) -> None:
    # The guest returns 0 only when input_read answered INVALID (it has no memory to write).
    result = result_of(outcome)
    assert result.output is None
    assert result.memory_bytes == 0


NO_MEMORY_INPUT_READ = wat(
    f"""
(module
  {data_imports("input_read", "input_len", "log")}
  (func (export "run") (result i32)
    (local $r i32)
    (local.set $r (call $input_read (i32.const 0) (call $input_len)))
    (if (i32.ne (local.get $r) (i32.const {INVALID})) (then (return (i32.add (i32.const 1000) (local.get $r)))))
    (local.set $r (call $log (i32.const 2) (i32.const 0) (i32.const 4)))
    (if (i32.ne (local.get $r) (i32.const {INVALID})) (then (return (i32.add (i32.const 2000) (local.get $r)))))
    (i32.const 0)))
"""
)

# Memory exported under another name: the host must not use it.
MEMORY_NOT_NAMED_MEMORY = wat(
    f"""
(module
  {data_imports("input_read", "output_write")}
  (memory (export "mem") 1)
  (func (export "run") (result i32)
    (if (i32.ne (call $input_read (i32.const 0) (i32.const 4)) (i32.const {INVALID}))
      (then (return (i32.const 1))))
    (if (i32.ne (call $output_write (i32.const 0) (i32.const 4)) (i32.const {INVALID}))
      (then (return (i32.const 2))))
    (i32.const 0)))
"""
)


def link_case(name: str, import_text: str) -> Hostile:
    module = wat(f'(module {import_text} (func (export "run") (result i32) i32.const 0))')
    return Hostile(name, module, "link_error")


def run_module(body: str) -> bytes:
    return wat(f'(module {body} (func (export "run") (result i32) i32.const 0))')


BIG_MODULE = run_module(f'(memory 1) (data (i32.const 0) "{"x" * 8192}")')


# ---- pointer abuse ---------------------------------------------------------------------------

BAD_RANGES: dict[str, tuple[int | None, int]] = {
    # name: (pointer or None for "a valid pointer", length)
    "ptr-0xFFFFFFF0": (0xFFFF_FFF0, 16),
    "ptr-0xFFFFFFFF": (0xFFFF_FFFF, 2),
    "past-memory-end": (MEM_SIZE - 8, 64),
    "len-over-memory": (0, MEM_SIZE + 1),
    "len-negative": (None, -1),
}


@dataclass(frozen=True)
class PointerTarget:
    """One pointer/length pair of one data-ABI function."""

    function: str
    pair: str  # which pair, for functions taking two
    cap: int | None  # a documented size cap on this length (TOO_LARGE beyond it)
    build: Callable[[Probe, int, int], str]


def _fixed(probe: Probe, text: str) -> tuple[int, int]:
    blob = probe.blob(text)
    return blob.ptr, blob.len


def _result_read(probe: Probe, ptr: int, length: int) -> str:
    """Fill the result buffer first, so result_read has something it could copy."""
    ref = probe.blob(SECRET_REF)
    probe.do(call("secret_get", ref.ptr, ref.len))
    return call("result_read", ptr, length)


POINTER_TARGETS: list[PointerTarget] = [
    PointerTarget("input_read", "buf", None, lambda p, a, n: call("input_read", a, n)),
    PointerTarget("output_write", "buf", 1 * MIB, lambda p, a, n: call("output_write", a, n)),
    PointerTarget("log", "msg", None, lambda p, a, n: call("log", 2, a, n)),
    PointerTarget("tool_id", "buf", None, lambda p, a, n: call("tool_id", a, n)),
    PointerTarget("result_read", "buf", None, _result_read),
    PointerTarget("random_fill", "buf", 65_536, lambda p, a, n: call("random_fill", a, n)),
    PointerTarget("http_request", "req", 1 * MIB, lambda p, a, n: call("http_request", a, n)),
    PointerTarget("secret_get", "ref", None, lambda p, a, n: call("secret_get", a, n)),
    PointerTarget("storage_get", "key", None, lambda p, a, n: call("storage_get", a, n)),
    PointerTarget("storage_delete", "key", None, lambda p, a, n: call("storage_delete", a, n)),
    PointerTarget("storage_list", "prefix", None, lambda p, a, n: call("storage_list", a, n)),
    PointerTarget(
        "storage_put",
        "key",
        None,
        lambda p, a, n: call("storage_put", a, n, *_fixed(p, "value")),
    ),
    PointerTarget(
        "storage_put",
        "value",
        1 * MIB,
        lambda p, a, n: call("storage_put", *_fixed(p, "skills/cache/k"), a, n),
    ),
    PointerTarget(
        "channel_send",
        "channel",
        None,
        lambda p, a, n: call("channel_send", a, n, *_fixed(p, "message")),
    ),
    PointerTarget(
        "channel_send",
        "message",
        64 * KIB,
        lambda p, a, n: call("channel_send", *_fixed(p, "ops"), a, n),
    ),
]

# The valid pointer used with a bad length: it holds something that would be accepted.
VALID_PAYLOAD = {
    "http_request": json.dumps({"url": "https://api.test.local/"}),
    "secret_get": SECRET_REF,
    "storage_get": "skills/cache/k",
    "storage_delete": "skills/cache/k",
    "storage_list": "skills/cache",
    "channel_send": "ops",
    "storage_put": "skills/cache/k",
    "log": "a log line",
    "output_write": "[]",
}


def pointer_probe(target: PointerTarget, case: str) -> Probe:
    probe = Probe()
    pointer, length = BAD_RANGES[case]
    if pointer is None:
        payload = VALID_PAYLOAD.get(target.function, "payload")
        if target.pair in ("message", "value"):
            payload = "payload"
        pointer = probe.blob(payload).ptr
    probe.num(target.build(probe, pointer, length))
    return probe


def pointer_cases() -> Iterator[Any]:
    for target in POINTER_TARGETS:
        for case in BAD_RANGES:
            yield pytest.param(target, case, id=f"{target.function}-{target.pair}-{case}")


# ---- the hostile set -------------------------------------------------------------------------

SMALL_FUEL = RuntimeLimits(fuel=200_000)
SHORT_CLOCK = RuntimeLimits(fuel=10**12, timeout_ms=25)


def all_pointer_abuse() -> bytes:
    """Every pointer target with every bad range in one guest (for the soak)."""
    probe = Probe()
    for target in POINTER_TARGETS:
        if target.function == "output_write":
            continue  # a TOO_LARGE answer fails the whole call; covered on its own
        for pointer_or_none, length in BAD_RANGES.values():
            pointer = pointer_or_none
            if pointer is None:
                pointer = probe.blob(VALID_PAYLOAD.get(target.function, "payload")).ptr
            probe.num(target.build(probe, pointer, length))
    return probe.build()


def check_all_pointer_abuse(outcome: Outcome) -> None:
    codes = probe_codes(result_of(outcome).output)
    assert len(codes) == (len(POINTER_TARGETS) - 1) * len(BAD_RANGES)
    # Nothing from outside memory was ever copied or accepted: each answer is an error code
    # or, for the copy-out functions with an oversized length, a short in-bounds copy.
    assert all(code < 0 or code <= 64 for code in codes), codes
    assert result_of(outcome).egress == []


CASES: list[Hostile] = [
    Hostile("loop-fuel", LOOP, "fuel_exhausted", SMALL_FUEL),
    Hostile("loop-wall-clock", LOOP, "timed_out", SHORT_CLOCK, replay_every=10),
    Hostile("start-loop-fuel", START_LOOP, "fuel_exhausted", SMALL_FUEL),
    Hostile("start-loop-wall-clock", START_LOOP, "timed_out", SHORT_CLOCK, replay_every=10),
    Hostile(
        "memory-grow-bomb",
        MEMORY_GROW_BOMB,
        None,
        RuntimeLimits(memory_bytes=8 * MIB),
        check=check_grow_bomb,
    ),
    Hostile("initial-memory-over-limit", run_module("(memory 2000)"), "memory_limit"),
    Hostile(
        "initial-memory-over-small-limit",
        run_module("(memory 3)"),
        "memory_limit",
        RuntimeLimits(memory_bytes=2 * 65_536),
    ),
    Hostile("table-minimum-bomb", run_module("(table 200000 funcref)"), "resource_limit"),
    Hostile(
        "table-grow-loop",
        TABLE_GROW_LOOP,
        None,
        RuntimeLimits(table_elements=10_000),
        check=exit_code_between(9_001, 10_000),
    ),
    Hostile(
        "tables-over-count-limit",
        run_module("(table 1 funcref) (table 1 funcref)"),
        "resource_limit",
        RuntimeLimits(tables=1),
    ),
    Hostile("deep-recursion", RECURSION, "guest_trap", check=trap("stack_overflow")),
    Hostile("unreachable", UNREACHABLE, "guest_trap", check=trap("unreachable")),
    Hostile("div-by-zero", DIV_ZERO, "guest_trap", check=trap("integer_division_by_zero")),
    Hostile("int-overflow", INT_OVERFLOW, "guest_trap", check=trap("integer_overflow")),
    Hostile(
        "bad-conversion", BAD_CONVERSION, "guest_trap", check=trap("bad_conversion_to_integer")
    ),
    Hostile("oob-load", OOB_LOAD, "guest_trap", check=trap("memory_out_of_bounds")),
    Hostile("oob-store", OOB_STORE, "guest_trap", check=trap("memory_out_of_bounds")),
    Hostile("null-indirect-call", NULL_INDIRECT, "guest_trap", check=trap("indirect_call_to_null")),
    Hostile("output-flood", OUTPUT_FLOOD, "invalid_output", check=check_output_flood),
    Hostile("log-flood", LOG_FLOOD, None, check=check_log_flood, replay_every=10),
    Hostile(
        "log-flood-long-lines", LOG_FLOOD_LONG, None, check=check_log_flood_long, replay_every=10
    ),
    Hostile(
        "http-flood-ungranted",
        HTTP_FLOOD,
        None,
        check=check_http_flood_ungranted,
        replay_every=10,
    ),
    Hostile(
        "http-flood-granted",
        HTTP_FLOOD,
        None,
        grants=FULL_GRANTS,
        check=check_http_flood_granted,
        replay_every=50,
        needs_egress=True,
    ),
    Hostile(
        "pointer-abuse",
        all_pointer_abuse(),
        None,
        grants=FULL_GRANTS,
        check=check_all_pointer_abuse,
    ),
    Hostile("no-exported-memory", NO_MEMORY_INPUT_READ, None, check=check_no_memory),
    Hostile("memory-under-another-name", MEMORY_NOT_NAMED_MEMORY, None, check=check_no_memory),
    link_case(
        "wasi-preview1",
        '(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))',
    ),
    link_case("wasi-unstable", '(import "wasi_unstable" "proc_exit" (func (param i32)))'),
    link_case("unknown-module", '(import "env" "system" (func (param i32) (result i32)))'),
    link_case("unknown-host-name", f'(import "{HOST}" "exec" (func (param i32 i32) (result i32)))'),
    link_case("wrong-signature", import_line("input_read", params=("i32",))),
    link_case("wrong-result-type", f'(import "{HOST}" "input_len" (func (result i64)))'),
    link_case(
        "compat-wrong-signature",
        f'(import "{COMPAT}" "http-count" (func (param i32) (result i32)))',
    ),
    link_case("imported-memory", f'(import "{HOST}" "memory" (memory 1))'),
    link_case("imported-table", '(import "env" "table" (table 1 funcref))'),
    link_case("imported-global", f'(import "{HOST}" "g" (global i32))'),
    Hostile(
        "module-over-size-limit",
        BIG_MODULE,
        "invalid_module",
        RuntimeLimits(max_module_bytes=4 * KIB),
    ),
    Hostile("shared-memory", run_module("(memory 1 1 shared)"), "invalid_module"),
    Hostile("memory64", run_module("(memory i64 1)"), "invalid_module"),
    Hostile(
        "wat-text", b'(module (func (export "run") (result i32) i32.const 0))', "invalid_module"
    ),
    # An empty component is valid; it just lacks the `call` export of the palyra:skill world.
    Hostile("component", b"\x00asm\x0d\x00\x01\x00", "missing_export"),
]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    return Env(tmp_path_factory.mktemp("hostile"))


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_hostile_guest_is_contained(env: Env, case: Hostile) -> None:
    if case.needs_egress:
        pytest.importorskip("palyra.runtime.egress")
    contain(env, case)
    assert env.resolved == []  # no guest ever got as far as DNS


def test_wall_clock_bound_covers_a_start_function(env: Env) -> None:
    limits = RuntimeLimits(fuel=10**12, timeout_ms=50)
    started = time.monotonic()
    failure = failure_of(env.run(Hostile("start", START_LOOP, "timed_out", limits)))
    assert failure.kind == "timed_out"
    assert time.monotonic() - started < 10
    check_echo(env.sandbox)


def test_memory_growth_to_exactly_the_limit_works(env: Env) -> None:
    module = wat(
        """
(module
  (memory (export "memory") 1)
  (func (export "run") (result i32) (memory.grow (i32.const 3))))
"""
    )
    limits = RuntimeLimits(memory_bytes=4 * 65_536)
    assert env.sandbox.run(module, limits=limits).output == {"exit_code": 1}
    limits = RuntimeLimits(memory_bytes=3 * 65_536)
    assert env.sandbox.run(module, limits=limits).output == {"exit_code": -1}


def test_fuel_is_refilled_for_every_call(env: Env) -> None:
    for _ in range(3):
        failure_of(env.run(Hostile("loop", LOOP, "fuel_exhausted", SMALL_FUEL)))
        check_echo(env.sandbox)
    assert env.sandbox.run(ECHO, tool_name="echo", limits=SMALL_FUEL).exit_code == 0


def test_state_does_not_leak_between_calls(env: Env) -> None:
    """A fresh store per call: memory written by one call is zero in the next."""
    module = wat(
        """
(module
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (func (export "run") (result i32)
    (local $old i32)
    (local.set $old (i32.add (i32.load (i32.const 100)) (global.get $g)))
    (i32.store (i32.const 100) (i32.const 12345))
    (global.set $g (i32.const 1))
    (local.get $old)))
"""
    )
    assert env.sandbox.run(module).exit_code == 0
    assert env.sandbox.run(module).exit_code == 0


@pytest.mark.parametrize(("target", "case"), list(pointer_cases()))
def test_bad_pointer_is_invalid_and_reads_nothing(
    env: Env, target: PointerTarget, case: str
) -> None:
    """docs/abi.md: a (pointer, length) range outside memory is INVALID, never a read of
    other memory. The security checks come first; the exact code is checked last."""
    probe = pointer_probe(target, case)
    before = len(env.sink.messages)
    files_before = env.stored_files()
    outcome = env.run(Hostile("pointer", probe.build(), None, grants=FULL_GRANTS))
    check_echo(env.sandbox)
    # -- containment: nothing outside the guest's memory was read or acted upon ------------
    assert len(env.sink.messages) == before
    assert env.stored_files() == files_before
    assert env.resolved == []
    if isinstance(outcome, errors.RuntimeFailure):
        # Only one documented way to fail the call: output_write answering TOO_LARGE.
        assert target.function == "output_write", outcome
        assert outcome.kind == "invalid_output"
        code = TOO_LARGE
    else:
        assert outcome.egress == []
        assert all(len(line.message) <= RuntimeLimits().max_log_line_bytes for line in outcome.logs)
        (code,) = probe_codes(outcome.output)  # the output is exactly the report
    # -- the documented return code ---------------------------------------------------------
    length = BAD_RANGES[case][1]
    allowed = {INVALID}
    if target.cap is not None and (length & 0xFFFF_FFFF) > target.cap:
        allowed.add(TOO_LARGE)  # over the function's own size cap: also a documented answer
    assert code in allowed, f"{target.function}({target.pair}) {case}: got {code}"


def test_a_failing_host_service_is_a_typed_failure_and_redacted(env: Env) -> None:
    """A vault that raises (say, an I/O error) must not crash the process or leak the value."""

    class ExplodingVault(MemoryVault):
        def get(self, scope: str, key: str) -> bytes | None:
            if key == "boom":
                raise RuntimeError(f"backend failed while holding {SECRET_VALUE.decode()}")
            return super().get(scope, key)

    box = Sandbox(services=HostServices(vault=ExplodingVault({SECRET: SECRET_VALUE})))
    probe = Probe()
    good, bad = probe.blob(SECRET_REF), probe.blob(f"{SCOPE}/boom")
    probe.num(call("secret_get", good.ptr, good.len))
    probe.num(call("secret_get", bad.ptr, bad.len))
    grants = CallGrants(secrets=frozenset({SECRET, (SCOPE, "boom")}))
    with pytest.raises(errors.RuntimeFailure) as info:
        box.run(probe.build(), grants=grants)
    assert isinstance(info.value, PalyraError)
    assert "RuntimeError" in info.value.message
    assert SECRET_VALUE.decode() not in json.dumps(info.value.to_json())
    check_echo(box)
    check_echo(env.sandbox)


def test_concurrent_calls_on_one_sandbox_are_isolated(env: Env) -> None:
    """Calls on several threads at once, one of them repeatedly timing out."""
    failures: list[BaseException] = []

    def echo_worker(worker: int) -> None:
        try:
            for i in range(40):
                value = {"worker": worker, "i": i, "s": "✓" * (i % 5)}
                result = env.sandbox.run(ECHO, input_value=value, tool_name="echo")
                assert result.output == value
        except BaseException as exc:
            failures.append(exc)

    def spin_worker() -> None:
        try:
            for _ in range(5):
                outcome = env.run(Hostile("spin", LOOP, "timed_out", SHORT_CLOCK))
                assert failure_of(outcome).kind == "timed_out"
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=echo_worker, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=spin_worker))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert failures == []
    check_echo(env.sandbox)


def test_log_with_a_bad_pointer_records_nothing(env: Env) -> None:
    probe = Probe().num(call("log", 2, 0xFFFF_FFF0, 16)).num(call("log", 2, MEM_SIZE - 2, 4))
    result = env.sandbox.run(probe.build())
    assert result.output == [INVALID, INVALID]
    assert result.logs == []


def test_output_write_with_a_bad_pointer_leaves_output_untouched(env: Env) -> None:
    module = wat(
        f"""
(module
  {data_imports("output_write")}
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (if (i32.ne (call $output_write (i32.const -16) (i32.const 16)) (i32.const {INVALID}))
      (then (return (i32.const 1))))
    (if (i32.ne (call $output_write (i32.const 65530) (i32.const 8)) (i32.const {INVALID}))
      (then (return (i32.const 2))))
    (i32.const 0)))
"""
    )
    result = env.sandbox.run(module)
    assert result.output is None  # nothing was appended


def test_host_calls_with_valid_edges_of_memory_work(env: Env) -> None:
    """The last byte of memory is usable; one past it is not."""
    probe = Probe()
    probe.num(call("random_fill", MEM_SIZE - 16, 16))
    probe.num(call("random_fill", MEM_SIZE - 15, 16))
    probe.num(call("random_fill", MEM_SIZE, 0))
    probe.num(call("random_fill", MEM_SIZE + 1, 0))
    out = env.sandbox.run(probe.build()).output
    assert out[:2] == [16, INVALID]
    assert out[2] == 0
    assert out[3] == INVALID


def test_http_flood_to_a_granted_name_that_does_not_resolve(env: Env) -> None:
    pytest.importorskip("palyra.runtime.egress")
    limits = RuntimeLimits()
    env.resolved.clear()
    outcome = env.run(Hostile("http", HTTP_FLOOD_GRANTED_NAME, None, grants=FULL_GRANTS))
    counts = flood_counts(outcome)
    assert counts["ok"] == 0
    assert counts["quota"] == 10_000 - limits.max_http_requests
    # At most one resolution per admitted attempt; never a connection.
    assert len(env.resolved) <= limits.max_http_requests
    assert all(r["address"] is None for r in result_of(outcome).egress)
    env.resolved.clear()
    check_echo(env.sandbox)


# ---- soak ------------------------------------------------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        resident = int(handle.read().split()[1])
    return resident * os.sysconf("SC_PAGE_SIZE")


SOAK_ROUNDS = 1_000


def soak_cases() -> list[Hostile]:
    try:
        import palyra.runtime.egress  # noqa: F401
    except ImportError:
        return [c for c in CASES if not c.needs_egress]
    return list(CASES)


@pytest.mark.slow
def test_soak_hostile_set_does_not_leak(tmp_path: Path) -> None:
    """Replays the hostile set 1,000 times on one sandbox.

    Cheap cases run in every round. Cases bounded by wall-clock time (25 ms each) or making
    10,000 host calls run every 10th round (100 times), and the HTTP flood through the egress
    client every 50th (20 times): the whole set every round would take ~110 s.
    """
    env = Env(tmp_path)
    cases = soak_cases()
    replays = {c.name: 0 for c in cases}

    def one_round(index: int) -> None:
        for case in cases:
            if index % case.replay_every == 0:
                contain(env, case)
                replays[case.name] += 1

    one_round(0)  # warm-up: compiles every module, starts the ticker and reaper threads
    gc.collect()
    threads = threading.active_count()
    rss = rss_bytes()
    for index in range(1, SOAK_ROUNDS):
        one_round(index)
        assert threading.active_count() <= threads, (index, threading.enumerate())
    gc.collect()
    growth = rss_bytes() - rss
    # Threads of earlier tests (an HTTP handler finishing late) may end meanwhile: no *growth*.
    assert threading.active_count() <= threads, threading.enumerate()
    assert growth < 64 * MIB, f"RSS grew by {growth / MIB:.1f} MiB"
    assert min(replays.values()) >= SOAK_ROUNDS // 50
    assert sum(1 for n in replays.values() if n == SOAK_ROUNDS) >= len(cases) - 8
    assert env.resolved == []
    assert env.sink.messages == []
    assert env.stored_files() == []


def test_more_concurrent_calls_than_pool_slots_is_resource_limit() -> None:
    """The pooling allocator has a fixed number of slots: calls beyond it fail cleanly with
    resource_limit (never a crash or a hang), and the slots come back afterwards."""
    from palyra.runtime.engine import EngineConfig

    sandbox = Sandbox(engine_config=EngineConfig(pool_slots=2))
    spin = wat('(module (func (export "run") (result i32) (loop br 0) i32.const 0))')
    limits = RuntimeLimits(fuel=10**15, timeout_ms=400)
    kinds: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        try:
            sandbox.run(spin, limits=limits)
            kind = "ok"
        except PalyraError as exc:
            kind = exc.kind
        with lock:
            kinds.append(kind)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(set(kinds)) == ["resource_limit", "timed_out"], kinds
    assert kinds.count("timed_out") <= 2
    echo = wat(
        '(module (import "palyra:host@1" "output_write" (func $w (param i32 i32) (result i32)))'
        ' (memory (export "memory") 1) (data (i32.const 0) "7")'
        ' (func (export "run") (result i32) (drop (call $w (i32.const 0) (i32.const 1))) i32.const 0))'
    )
    assert sandbox.run(echo).output == 7


def test_grown_memory_is_clean_in_the_next_call(env: Env) -> None:
    """Pool slots are reused: pages a call grew and dirtied must read as zero next time."""
    module = wat(
        """
(module
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (local $old i32)
    (drop (memory.grow (i32.const 3)))
    (local.set $old (i32.load (i32.const 200000)))
    (i32.store (i32.const 200000) (i32.const 777))
    (local.get $old)))
"""
    )
    for _ in range(5):
        assert env.sandbox.run(module).exit_code == 0


def test_start_function_io_behaves_the_same_on_both_call_paths() -> None:
    """Host I/O from a start function: the native path looks the memory up lazily too."""
    module = wat(
        """
(module
  (import "palyra:host@1" "input_read" (func $read (param i32 i32) (result i32)))
  (import "palyra:host@1" "output_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $copied (mut i32) (i32.const 0))
  (func $start (global.set $copied (call $read (i32.const 0) (i32.const 16))))
  (start $start)
  (func (export "run") (result i32)
    (drop (call $write (i32.const 0) (global.get $copied)))
    i32.const 0))
"""
    )
    outputs = [
        Sandbox(native=native).run(module, input_value=[1, 2]).output
        for native in ({False, True} if fastcall.FAST is not None else {False})
    ]
    assert outputs and all(output == [1, 2] for output in outputs)


def test_a_call_inside_a_call_is_refused(tmp_path: Path) -> None:
    """A host service that runs another tool on the same thread would share the outer call's
    context and wall-clock registration: it gets a typed error, the outer call carries on."""
    inner = Sandbox()
    seen: list[str] = []

    class ReentrantSink:
        def send(self, message: ChannelMessage) -> None:
            try:
                inner.run(ECHO, input_value="x", tool_name="echo")
            except PalyraError as exc:
                seen.append(exc.message)
                raise

    outer = Sandbox(services=HostServices(channel_sink=ReentrantSink()))
    probe = Probe()
    probe.num(call("channel_send", probe.blob("ops"), probe.blob("hi")))
    result = outer.run(probe.build(), grants=CallGrants(channels=("ops",)))
    assert probe_codes(result.output) == [-5]  # UPSTREAM: the guest was told, the call completed
    assert seen == ["a sandbox call cannot start inside another call"]


def test_a_module_loaded_for_one_call_path_is_refused_by_the_other() -> None:
    if fastcall.FAST is None:
        pytest.skip("the native call path is not built")
    compiled = Sandbox(native=True).load(ECHO)
    with pytest.raises(errors.InvalidModule):
        Sandbox(native=False).run_compiled(compiled, input_value="x", tool_name="echo")


def test_timeouts_fire_in_a_forked_child() -> None:
    """After fork() the child has no ticker thread; the next call must start one."""
    sandbox = Sandbox()
    check_echo(sandbox)
    pid = os.fork()
    if pid == 0:  # child: exit 0 only if the wall clock fired
        code = 1
        try:
            sandbox.run(LOOP, limits=RuntimeLimits(fuel=10**15, timeout_ms=100))
        except errors.TimedOut:
            code = 0
        except BaseException:
            code = 2
        os._exit(code)
    deadline = time.monotonic() + 20
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child's call never timed out")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0
