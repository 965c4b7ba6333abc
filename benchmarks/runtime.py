"""Runtime benchmarks, each against a baseline measured in the same run.

1. echo of 64 B through the data ABI (fresh store, all limits) vs Extism's Python host calling
   an equivalent Extism plugin vs a minimal raw wasmtime-py path. Target: ours <= 1.0x Extism.
2. first call in a new process with the compile cache warm vs cold.
3. two threads running CPU-bound guests vs one (target >= 1.8x throughput).
4. timeout precision for 50/200/1000 ms budgets (target: fires within +15 ms).
5. fuel+epoch overhead on a compute loop vs an engine with neither.
6. per-call latency of a Python component echo (built with the SDK from
   ``benchmarks/guests/echo``) vs the core-module echo, warm, in the same sandbox.
7. first call with the compile cache cold (a fresh cache directory: the component's whole
   wasmtime compile, ~14 s) vs warm (a new Sandbox on the same directory: deserialisation),
   for the component and for the core-module echo.

Run: ``.venv/bin/python benchmarks/runtime.py [--quick] [--skip-cold-compile] [--only 6,7]
[--json PATH]`` (``--json``: the same figures, machine-readable, for ``benchmarks/report.py``).
The component is built once into ``build/bench-cache`` (componentize-py, ~10 s) and compiled
once into its compile cache; later runs reuse both.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import wasmtime

from palyra.runtime import errors
from palyra.runtime.limits import RuntimeLimits
from palyra.runtime.sandbox import Sandbox
from palyra.skills.constants import COMPONENT_MAGIC
from results import Results, spread

ECHO_WAT = """
(module
  (import "palyra:host@1" "input_len" (func $input_len (result i32)))
  (import "palyra:host@1" "input_read" (func $input_read (param i32 i32) (result i32)))
  (import "palyra:host@1" "output_write" (func $output_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "echo") (result i32)
    (local $n i32)
    (local.set $n (call $input_len))
    (drop (call $input_read (i32.const 0) (local.get $n)))
    (drop (call $output_write (i32.const 0) (local.get $n)))
    (i32.const 0)))
"""

# The same echo for Extism's kernel ABI (extism:host/env), copying 8 bytes at a time.
EXTISM_ECHO_WAT = """
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (func (export "echo") (result i32)
    (local $n i64) (local $off i64) (local $i i64)
    (local.set $n (call $input_length))
    (local.set $off (call $alloc (local.get $n)))
    (block $done (loop $wide
      (br_if $done (i64.gt_u (i64.add (local.get $i) (i64.const 8)) (local.get $n)))
      (call $store_u64 (i64.add (local.get $off) (local.get $i))
                       (call $input_load_u64 (local.get $i)))
      (local.set $i (i64.add (local.get $i) (i64.const 8)))
      (br $wide)))
    (block $done2 (loop $narrow
      (br_if $done2 (i64.ge_u (local.get $i) (local.get $n)))
      (call $store_u8 (i64.add (local.get $off) (local.get $i))
                      (call $input_load_u8 (local.get $i)))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $narrow)))
    (call $output_set (local.get $off) (local.get $n))
    (i32.const 0)))
"""

# A pure compute loop: run() sums i*i for i < N (N from input_len to keep the guest honest).
COMPUTE_WAT = """
(module
  (func (export "run") (result i32)
    (local $i i32) (local $acc i32)
    (block $done (loop $loop
      (br_if $done (i32.ge_u (local.get $i) (i32.const %d)))
      (local.set $acc (i32.add (local.get $acc) (i32.mul (local.get $i) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $loop)))
    (i32.and (local.get $acc) (i32.const 0))))
"""

SPIN_WAT = '(module (func (export "run") (result i32) (loop br 0) i32.const 0))'
PAYLOAD = b'"' + b"x" * 62 + b'"'  # 64 bytes of JSON

REPO = Path(__file__).resolve().parent.parent
BENCH_CACHE = REPO / "build" / "bench-cache"
ECHO_GUEST = Path(__file__).resolve().parent / "guests" / "echo"
ECHO_VALUE = {"text": "x" * 48}  # what both echoes get and must return unchanged

# What ``--json`` writes: every section records the figures it prints.
RESULTS = Results("runtime")
S1 = "1. echo of 64 B"
S2 = "2. first call in a new process, compile cache cold vs warm"
S3 = "3. CPU-bound guests, two threads vs one"
S4 = "4. timeout precision"
S5 = "5. fuel + epoch overhead on a compute loop"
S6 = "6. echo per call, Python component vs core module"
S7 = "7. first call of a new Sandbox, compile cache cold vs warm"


def record_us(key: str, section: str, label: str, samples: list[float]) -> None:
    """Median and within-run spread of per-call seconds, recorded in µs."""
    low, high = spread(samples, 1e6)
    RESULTS.figure(key, section, label, statistics.median(samples) * 1e6, "µs", low=low, high=high)


def timed(fn: Callable[[], object], rounds: int, inner: int) -> list[float]:
    """Per-iteration seconds, one sample per round of ``inner`` calls."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - start) / inner)
    return samples


def fmt_us(samples: list[float]) -> str:
    return (
        f"{statistics.median(samples) * 1e6:8.2f} µs "
        f"(min {min(samples) * 1e6:.2f}, max {max(samples) * 1e6:.2f})"
    )


def bench_echo(rounds: int, inner: int) -> None:
    print("\n1. echo of 64 B")
    sandbox = Sandbox()
    compiled = sandbox.load(bytes(wasmtime.wat2wasm(ECHO_WAT)))

    def ours() -> None:
        sandbox.run_compiled(compiled, input_bytes=PAYLOAD, tool_name="echo")

    assert sandbox.run_compiled(compiled, input_bytes=PAYLOAD, tool_name="echo").output == "x" * 62

    # Minimal raw wasmtime-py: public API, fresh store, a plain host function set.
    engine = wasmtime.Engine()
    linker = wasmtime.Linker(engine)
    state: dict[str, bytes] = {}

    def input_len() -> int:
        return len(state["in"])

    def input_read(caller: wasmtime.Caller, ptr: int, length: int) -> int:
        memory = caller["memory"]
        assert isinstance(memory, wasmtime.Memory)
        memory.write(caller, state["in"][:length], ptr)
        return length

    def output_write(caller: wasmtime.Caller, ptr: int, length: int) -> int:
        memory = caller["memory"]
        assert isinstance(memory, wasmtime.Memory)
        state["out"] = bytes(memory.read(caller, ptr, ptr + length))
        return length

    i32 = wasmtime.ValType.i32()
    linker.define_func("palyra:host@1", "input_len", wasmtime.FuncType([], [i32]), input_len)
    linker.define_func(
        "palyra:host@1", "input_read", wasmtime.FuncType([i32, i32], [i32]), input_read, True
    )
    linker.define_func(
        "palyra:host@1", "output_write", wasmtime.FuncType([i32, i32], [i32]), output_write, True
    )
    raw_module = wasmtime.Module(engine, bytes(wasmtime.wat2wasm(ECHO_WAT)))
    pre = linker.instantiate_pre(raw_module)

    def raw() -> None:
        store = wasmtime.Store(engine)
        state["in"] = PAYLOAD
        instance = pre.instantiate(store)
        func = instance.exports(store)["echo"]
        assert isinstance(func, wasmtime.Func)
        func(store)

    raw()
    assert state["out"] == PAYLOAD

    import extism

    plugin = extism.Plugin(bytes(wasmtime.wat2wasm(EXTISM_ECHO_WAT)), wasi=False)

    def ext() -> None:
        plugin.call("echo", PAYLOAD)

    assert plugin.call("echo", PAYLOAD) == PAYLOAD
    # The native floor of an isolated call: store + limits + instantiate + call + delete,
    # no host calls, no Python bookkeeping — what any fresh-store design pays at minimum.
    from palyra.runtime import ffi

    bare = sandbox.modules.load(
        bytes(wasmtime.wat2wasm('(module (func (export "run") (result i32) i32.const 0))')),
        1 << 20,
    )

    def floor() -> None:
        store = ffi.store_new(sandbox.engine_address)
        context = ffi.store_context(store)
        ffi.set_limits(store, 1 << 26, 100_000, 4, 4, 1)
        ffi.set_fuel(context, 10_000_000)
        ffi.set_epoch_deadline(context, 1 << 20)
        instance = ffi.instantiate(bare.pre_address, context)
        ffi.call_i32(context, ffi.export(context, instance, b"run", ffi.EXTERN_FUNC))
        ffi.store_delete(store)

    results: dict[str, list[float]] = {"ours": [], "extism": [], "raw": [], "floor": []}
    for _ in range(rounds):  # interleave so drift on a shared machine hits all alike
        results["ours"] += timed(ours, 1, inner)
        results["extism"] += timed(ext, 1, inner)
        results["raw"] += timed(raw, 1, inner)
        results["floor"] += timed(floor, 1, inner)
    print(f"  palyra (fresh store, fuel+epoch+limits): {fmt_us(results['ours'])}")
    print(f"  Extism Python host (reused instance):     {fmt_us(results['extism'])}")
    print(f"  raw wasmtime-py public API (fresh store): {fmt_us(results['raw'])}")
    print(f"  native floor of a fresh store, no I/O:    {fmt_us(results['floor'])}")
    ratio = statistics.median(results["ours"]) / statistics.median(results["extism"])
    raw_ratio = statistics.median(results["ours"]) / statistics.median(results["raw"])
    print(f"  ratio palyra/Extism: {ratio:.2f} (target <= 1.0); palyra/raw: {raw_ratio:.2f}")
    for key, label in (
        ("ours", "palyra (fresh store, fuel+epoch+limits)"),
        ("extism", "Extism Python host (reused instance)"),
        ("raw", "raw wasmtime-py public API (fresh store)"),
        ("floor", "native floor of a fresh store, no I/O"),
    ):
        record_us(f"echo.{key}", S1, label, results[key])
    RESULTS.ratio(
        "echo.ratio_extism",
        S1,
        "palyra / Extism",
        ratio,
        baseline="Extism's Python host, same echo",
        target="<= 1.0",
    )
    RESULTS.ratio(
        "echo.ratio_raw",
        S1,
        "palyra / raw wasmtime-py",
        raw_ratio,
        baseline="raw wasmtime-py public API, fresh store",
    )


def bench_cold_warm(tmp: Path) -> None:
    print("\n2. first call in a new process: compile cache cold vs warm")
    functions = "\n".join(
        f"(func $f{i} (param i32) (result i32) (local.get 0) (i32.const {i}) (i32.add))"
        for i in range(3000)
    )
    module = tmp / "big.wasm"
    module.write_bytes(
        bytes(
            wasmtime.wat2wasm(
                f'(module {functions} (func (export "run") (result i32) (i32.const 0)))'
            )
        )
    )
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        start = time.perf_counter()
        from palyra.runtime.sandbox import Sandbox
        imported = time.perf_counter()
        sandbox = Sandbox(cache_dir=Path(sys.argv[1]))
        sandbox.run(Path({str(module)!r}).read_bytes())
        done = time.perf_counter()
        print(done - imported, done - start)
        """
    )
    cold: list[tuple[float, float]] = []
    warm: list[tuple[float, float]] = []
    for index in range(3):
        cache = tmp / f"cache-{index}"
        for bucket in (cold, warm):
            out = subprocess.check_output([sys.executable, "-c", script, str(cache)]).split()
            bucket.append((float(out[0]), float(out[1])))
    first_cold = statistics.median(c[0] for c in cold)
    first_warm = statistics.median(w[0] for w in warm)
    print(f"  module {module.stat().st_size / 1024:.0f} KiB, 3000 functions")
    print(
        f"  first call, cold cache: {first_cold * 1e3:8.1f} ms (whole process after start-up: "
        f"{statistics.median(c[1] for c in cold) * 1e3:.1f} ms)"
    )
    print(
        f"  first call, warm cache: {first_warm * 1e3:8.1f} ms (whole process after start-up: "
        f"{statistics.median(w[1] for w in warm) * 1e3:.1f} ms)"
    )
    print(f"  ratio cold/warm (first call): {first_cold / first_warm:.1f}x")
    for key, label, samples in (("cold", "cold cache", cold), ("warm", "warm cache", warm)):
        firsts = [sample[0] * 1e3 for sample in samples]
        RESULTS.figure(
            f"cold_warm.{key}",
            S2,
            f"first call, {label}",
            statistics.median(firsts),
            "ms",
            low=min(firsts),
            high=max(firsts),
        )
    RESULTS.ratio(
        "cold_warm.ratio",
        S2,
        "cold / warm (first call)",
        first_cold / first_warm,
        baseline="first call with the compile cache warm",
    )


def _scaling(work: Callable[[int], None], calls: int) -> float:
    """Throughput of two threads over one thread for the same total number of calls."""
    start = time.perf_counter()
    work(calls)
    one = calls / (time.perf_counter() - start)
    threads = [threading.Thread(target=work, args=(calls // 2,)) for _ in range(2)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return (calls / (time.perf_counter() - start)) / one


def bench_threads(calls: int, trials: int) -> None:
    print("\n3. CPU-bound guests: two threads vs one")
    wasm = bytes(wasmtime.wat2wasm(COMPUTE_WAT % 3_000_000))
    sandbox = Sandbox()
    compiled = sandbox.load(wasm)
    limits = RuntimeLimits(fuel=10**12)

    def ours(count: int) -> None:
        for _ in range(count):
            sandbox.run_compiled(compiled, limits=limits)

    # The machine's own ceiling, same run: the same guest on a bare engine, no palyra.
    plain = wasmtime.Engine()
    plain_module = wasmtime.Module(plain, wasm)

    def bare(count: int) -> None:
        for _ in range(count):
            store = wasmtime.Store(plain)
            func = wasmtime.Instance(store, plain_module, []).exports(store)["run"]
            assert isinstance(func, wasmtime.Func)
            func(store)

    ours(2)
    bare(2)
    ours_ratios, bare_ratios = [], []
    for _ in range(trials):  # interleaved: this VM's second core comes and goes
        ours_ratios.append(_scaling(ours, calls))
        bare_ratios.append(_scaling(bare, calls))
    print(
        f"  palyra two/one: median {statistics.median(ours_ratios):.2f}, "
        f"best {max(ours_ratios):.2f} (target >= 1.8)"
    )
    print(
        f"  bare wasmtime (machine ceiling): median {statistics.median(bare_ratios):.2f}, "
        f"best {max(bare_ratios):.2f}"
    )
    RESULTS.ratio(
        "threads.palyra",
        S3,
        "palyra throughput, two threads / one",
        statistics.median(ours_ratios),
        baseline="one thread, same guest",
        target=">= 1.8",
    )
    RESULTS.ratio(
        "threads.bare",
        S3,
        "bare wasmtime throughput, two threads / one (machine ceiling)",
        statistics.median(bare_ratios),
        baseline="one thread, same guest, bare engine",
    )


def bench_timeouts(repeats: int) -> None:
    print("\n4. timeout precision")
    sandbox = Sandbox()
    compiled = sandbox.load(bytes(wasmtime.wat2wasm(SPIN_WAT)))
    for budget in (50, 200, 1000):
        overshoot = []
        for _ in range(repeats):
            start = time.perf_counter()
            with contextlib.suppress(errors.TimedOut):
                sandbox.run_compiled(compiled, limits=RuntimeLimits(fuel=10**15, timeout_ms=budget))
            overshoot.append((time.perf_counter() - start) * 1000 - budget)
        print(
            f"  {budget:5d} ms budget: fired +{statistics.median(overshoot):.2f} ms "
            f"(min {min(overshoot):+.2f}, max {max(overshoot):+.2f}; target +15)"
        )
        RESULTS.figure(
            f"timeout.{budget}",
            S4,
            f"{budget} ms budget: fired after the budget by",
            statistics.median(overshoot),
            "ms",
            low=min(overshoot),
            high=max(overshoot),
        )


def bench_fuel_overhead(rounds: int) -> None:
    print("\n5. fuel + epoch overhead on a compute loop")
    wasm = bytes(wasmtime.wat2wasm(COMPUTE_WAT % 20_000_000))
    sandbox = Sandbox()
    compiled = sandbox.load(wasm)
    limits = RuntimeLimits(fuel=10**12)
    plain = wasmtime.Engine()
    plain_pre = wasmtime.Linker(plain).instantiate_pre(wasmtime.Module(plain, wasm))

    def ours() -> None:
        sandbox.run_compiled(compiled, limits=limits)

    def bare() -> None:
        store = wasmtime.Store(plain)
        func = plain_pre.instantiate(store).exports(store)["run"]
        assert isinstance(func, wasmtime.Func)
        func(store)

    ours_t, bare_t = [], []
    for _ in range(rounds):
        ours_t += timed(ours, 1, 1)
        bare_t += timed(bare, 1, 1)
    print(f"  fuel+epoch: {statistics.median(ours_t) * 1e3:8.2f} ms")
    print(f"  neither:    {statistics.median(bare_t) * 1e3:8.2f} ms")
    print(f"  overhead ratio: {statistics.median(ours_t) / statistics.median(bare_t):.2f}")
    for key, label, samples in (("ours", "fuel+epoch", ours_t), ("bare", "neither", bare_t)):
        low, high = spread(samples, 1e3)
        median = statistics.median(samples) * 1e3
        RESULTS.figure(f"fuel.{key}", S5, label, median, "ms", low=low, high=high)
    RESULTS.ratio(
        "fuel.ratio",
        S5,
        "fuel+epoch / neither",
        statistics.median(ours_t) / statistics.median(bare_t),
        baseline="the same loop on an engine with neither",
    )


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def fmt_dist(samples: list[float]) -> str:
    return (
        f"median {statistics.median(samples) * 1e6:9.1f} µs, "
        f"p95 {percentile(samples, 0.95) * 1e6:9.1f} µs"
    )


def build_echo_component() -> bytes:
    """The SDK echo skill as a component (componentize-py once, then the build cache)."""
    from palyra.authoring.python_build import build_python_skill

    result = build_python_skill(
        ECHO_GUEST, BENCH_CACHE / "components" / "echo.wasm", cache_dir=BENCH_CACHE / "builds"
    )
    how = "from the build cache" if result.cached else f"componentize-py, {result.seconds:.1f} s"
    print(f"  echo component: {result.size / 1e6:.1f} MB ({how})")
    return result.output.read_bytes()


def bench_component_calls(component: bytes, rounds: int, inner: int) -> None:
    print("\n6. echo per call: Python component vs core module (warm, same sandbox)")
    sandbox = Sandbox(cache_dir=BENCH_CACHE / "modules")
    start = time.perf_counter()
    compiled_component = sandbox.load(component)
    stats = sandbox.components.stats
    how = "compiled (first run on this machine)" if stats["compiles"] else "from the disk cache"
    print(f"  component loaded in {time.perf_counter() - start:.2f} s, {how}")
    compiled_core = sandbox.load(bytes(wasmtime.wat2wasm(ECHO_WAT)))

    def core() -> None:
        sandbox.run_compiled(compiled_core, input_value=ECHO_VALUE, tool_name="echo")

    def component_call() -> None:
        sandbox.run_compiled(compiled_component, input_value=ECHO_VALUE, tool_name="echo")

    first = sandbox.run_compiled(compiled_core, input_value=ECHO_VALUE, tool_name="echo")
    assert first.output == ECHO_VALUE, first.output
    sample = sandbox.run_compiled(compiled_component, input_value=ECHO_VALUE, tool_name="echo")
    assert sample.output == ECHO_VALUE, sample.output
    samples: dict[str, list[float]] = {"core": [], "component": []}
    calls = {"core": core, "component": component_call}
    for _ in range(rounds):  # interleaved blocks, every call timed on its own
        for name, fn in calls.items():
            for _ in range(inner if name == "core" else max(1, inner // 20)):
                begin = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - begin)
    print(f"  core-module echo ({len(samples['core'])} calls):  {fmt_dist(samples['core'])}")
    print(
        f"  component echo ({len(samples['component'])} calls):    "
        f"{fmt_dist(samples['component'])} ({sample.fuel_used / 1e6:.2f} M fuel per call)"
    )
    median = statistics.median(samples["component"]) / statistics.median(samples["core"])
    p95 = percentile(samples["component"], 0.95) / percentile(samples["core"], 0.95)
    print(f"  ratio component/core: median {median:.0f}x, p95 {p95:.0f}x")
    for key, label in (("core", "core-module echo"), ("component", "component echo")):
        record_us(f"component.{key}", S6, f"{label}, median", samples[key])
        RESULTS.figure(
            f"component.{key}_p95",
            S6,
            f"{label}, p95",
            percentile(samples[key], 0.95) * 1e6,
            "µs",
        )
    for key, label, value in (("median", "median", median), ("p95", "p95", p95)):
        RESULTS.ratio(
            f"component.ratio_{key}",
            S6,
            f"component / core, {label}",
            value,
            baseline="core-module echo, same sandbox",
        )


def _first_call(cache: Path, wasm: bytes, tool: str) -> tuple[float, dict[str, int]]:
    """Seconds from a new Sandbox on ``cache`` to the end of its first call (load, compile or
    deserialise, instantiate, call), and the cache statistics of that load."""
    sandbox = Sandbox(cache_dir=cache)
    start = time.perf_counter()
    result = sandbox.run(wasm, input_value=ECHO_VALUE, tool_name=tool)
    elapsed = time.perf_counter() - start
    assert result.output == ECHO_VALUE, result.output
    if wasm.startswith(COMPONENT_MAGIC):
        return elapsed, dict(sandbox.components.stats)
    return elapsed, dict(sandbox.modules.stats)


def bench_first_call(component: bytes, tmp: Path, *, cold_component: bool, repeats: int) -> None:
    print("\n7. first call of a new Sandbox: compile cache cold vs warm (same process)")
    core = bytes(wasmtime.wat2wasm(ECHO_WAT))
    cold_core, warm_core = [], []
    for index in range(repeats):
        cache = tmp / f"core-{index}"
        seconds, stats = _first_call(cache, core, "echo")
        assert stats["compiles"] == 1, stats
        cold_core.append(seconds)
        seconds, stats = _first_call(cache, core, "echo")
        assert stats["disk_hits"] == 1 and stats["compiles"] == 0, stats
        warm_core.append(seconds)
    print(f"  core-module echo, cold: {statistics.median(cold_core) * 1e3:9.2f} ms")
    print(f"  core-module echo, warm: {statistics.median(warm_core) * 1e3:9.2f} ms")
    ratio = statistics.median(cold_core) / statistics.median(warm_core)
    print(f"  ratio cold/warm: {ratio:.1f}x (median of {repeats})")
    for key, label, samples in (("cold", "cold", cold_core), ("warm", "warm", warm_core)):
        low, high = spread(samples, 1e3)
        median = statistics.median(samples) * 1e3
        RESULTS.figure(
            f"first_call.core_{key}",
            S7,
            f"core-module echo, {label}",
            median,
            "ms",
            low=low,
            high=high,
        )
    RESULTS.ratio(
        "first_call.core_ratio",
        S7,
        "core-module echo, cold / warm",
        ratio,
        baseline="warm compile cache",
    )

    if cold_component:
        cache = tmp / "component"
        cold, stats = _first_call(cache, component, "echo")
        assert stats["compiles"] == 1, stats
    else:
        cache = BENCH_CACHE / "modules"  # the cache section 6 uses, compiled into if empty
        Sandbox(cache_dir=cache).load(component)
        print("  component, cold: skipped (--skip-cold-compile)")
    warm: list[float] = []
    for _ in range(repeats):
        seconds, stats = _first_call(cache, component, "echo")
        assert stats["disk_hits"] == 1 and stats["compiles"] == 0, stats
        warm.append(seconds)
    if cold_component:
        print(f"  component, cold:        {cold:9.2f} s (wasmtime compile + writing the cache)")
    print(f"  component, warm:        {statistics.median(warm):9.2f} s (median of {repeats})")
    RESULTS.figure(
        "first_call.component_warm",
        S7,
        "component, warm",
        statistics.median(warm),
        "s",
        low=min(warm),
        high=max(warm),
    )
    if cold_component:
        print(f"  ratio cold/warm: {cold / statistics.median(warm):.0f}x")
        RESULTS.figure("first_call.component_cold", S7, "component, cold", cold, "s")
        RESULTS.ratio(
            "first_call.component_ratio",
            S7,
            "component, cold / warm",
            cold / statistics.median(warm),
            baseline="warm compile cache",
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument(
        "--skip-cold-compile",
        action="store_true",
        help="section 7: skip the component's cold compile (~14 s); warm is still measured",
    )
    parser.add_argument(
        "--only", default="", help="comma-separated section numbers to run (default: all)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here (report.py)")
    args = parser.parse_args()
    only = {int(item) for item in args.only.split(",") if item.strip()}

    def wanted(section: int) -> bool:
        return not only or section in only

    rounds, inner = (5, 500) if args.quick else (15, 2000)
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, wasmtime-py 50.0.1")
    if wanted(1):
        bench_echo(rounds, inner)
    if wanted(2):
        with tempfile.TemporaryDirectory() as tmp:
            bench_cold_warm(Path(tmp))
    if wanted(3):
        bench_threads(20 if args.quick else 60, 3 if args.quick else 7)
    if wanted(4):
        bench_timeouts(3 if args.quick else 10)
    if wanted(5):
        bench_fuel_overhead(3 if args.quick else 7)
    if wanted(6) or wanted(7):
        print("\n6./7. building the Python echo component")
        component = build_echo_component()
        if wanted(6):
            bench_component_calls(component, rounds, inner // 2)
        if wanted(7):
            with tempfile.TemporaryDirectory() as tmp:
                bench_first_call(
                    component,
                    Path(tmp),
                    cold_component=not args.skip_cold_compile,
                    repeats=3 if args.quick else 5,
                )
    RESULTS.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
