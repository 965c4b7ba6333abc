"""Engines (one per configuration) and the single epoch ticker that bounds wall-clock time.

Fuel makes CPU work deterministic but is not a clock (10M fuel burns in ~3 ms, 1e9 in ~0.3 s),
so every store also gets an epoch deadline. One daemon thread advances the epoch of every
engine every ``TICK_SECONDS`` while at least one call is running, and sleeps otherwise.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass

import wasmtime

from palyra.abi import apply_sandbox_features

TICK_SECONDS = 0.002


@dataclass(frozen=True)
class EngineConfig:
    """What changes generated code; part of the compile-cache key."""

    max_wasm_stack: int = 512 * 1024
    component_model: bool = False
    # Address space reserved per linear memory, and the hard ceiling of any memory: smaller
    # than wasmtime's default (4 GiB) so a store per call is cheaper to create and tear down.
    # Memories never move (memory_may_move off), which lets host functions cache a memory's
    # base address for the whole call.
    memory_reservation: int = 64 * 1024 * 1024
    # Wasmtime's pooling allocator: memories, tables and instances come from slots reserved
    # once per engine and are reset (not unmapped) after each call. A fresh instance per call
    # then costs a few microseconds instead of an mmap/munmap round trip. ``pool_slots`` is the
    # number of calls that can be in flight at once; beyond it instantiation fails with
    # ``resource_limit`` (the daemon's worker pool is sized below it). 0 disables pooling.
    pool_slots: int = 128
    pool_max_tables_per_module: int = 4
    pool_max_instance_bytes: int = 4 * 1024 * 1024
    pool_table_elements: int = 100_000

    def fingerprint(self) -> str:
        text = (
            f"wasmtime={wasmtime_version()};fuel=1;epoch=1;threads=0;memory64=0;gc=0;"
            f"exceptions=0;multi_memory=0;stack={self.max_wasm_stack};"
            f"component={int(self.component_model)};reservation={self.memory_reservation};fixed=1;"
            f"pool={self.pool_slots},{self.pool_max_tables_per_module},"
            f"{self.pool_max_instance_bytes},{self.pool_table_elements}"
        )
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def wasmtime_version() -> str:
    from importlib.metadata import version

    return version("wasmtime")


def _build_engine(config: EngineConfig) -> wasmtime.Engine:
    cfg = wasmtime.Config()
    cfg.consume_fuel = True
    cfg.epoch_interruption = True
    apply_sandbox_features(cfg)
    cfg.wasm_component_model = config.component_model
    cfg.max_wasm_stack = config.max_wasm_stack
    cfg.memory_reservation = config.memory_reservation
    cfg.memory_may_move = False
    # Compile on the calling thread: wasmtime's parallel compiler keeps a thread pool that does
    # not survive fork(), so a forked child would hang compiling. (No gain on 2 cores anyway.)
    cfg.parallel_compilation = False
    if config.pool_slots:
        _use_pooling_allocator(cfg, config)
    # Never let wasmtime keep its own on-disk cache: precompiled code is only ever loaded from
    # our own 0700 cache directory (runtime/modules.py).
    return wasmtime.Engine(cfg)


def _use_pooling_allocator(cfg: wasmtime.Config, config: EngineConfig) -> None:
    """wasmtime-py has no Python API for the pooling allocator; its C API is bound through
    the pinned private bindings (see runtime/ffi.py on why that is acceptable here)."""
    from wasmtime import _bindings as bindings

    pool = bindings.wasmtime_pooling_allocation_config_new()
    try:
        slots = config.pool_slots
        bindings.wasmtime_pooling_allocation_config_total_memories_set(pool, slots)
        bindings.wasmtime_pooling_allocation_config_total_tables_set(
            pool, slots * config.pool_max_tables_per_module
        )
        bindings.wasmtime_pooling_allocation_config_total_core_instances_set(pool, slots)
        bindings.wasmtime_pooling_allocation_config_max_memory_size_set(
            pool, config.memory_reservation
        )
        bindings.wasmtime_pooling_allocation_config_max_tables_per_module_set(
            pool, config.pool_max_tables_per_module
        )
        bindings.wasmtime_pooling_allocation_config_max_memories_per_module_set(pool, 1)
        bindings.wasmtime_pooling_allocation_config_table_elements_set(
            pool, config.pool_table_elements
        )
        bindings.wasmtime_pooling_allocation_config_max_core_instance_size_set(
            pool, config.pool_max_instance_bytes
        )
        bindings.wasmtime_pooling_allocation_config_max_unused_warm_slots_set(pool, min(slots, 16))
        bindings.wasmtime_pooling_allocation_strategy_set(cfg.ptr(), pool)
    finally:
        bindings.wasmtime_pooling_allocation_config_delete(pool)


class EpochTicker:
    """Advances every registered engine's epoch while calls are in flight.

    Entering and leaving a call takes no lock (this is on every call's path): calls in flight
    are the set of threads running one (a thread runs one call at a time), and ``set.add`` /
    ``set.discard`` are atomic. The ticker parks when the set is empty; a call that enters
    wakes it. The park protocol is race-free under the interpreter's sequential consistency:
    the ticker announces ``parked`` *before* re-checking the set, and a call joins the set
    *before* reading ``parked``, so one of them always sees the other.
    """

    def __init__(self, tick_seconds: float = TICK_SECONDS) -> None:
        self.tick_seconds = tick_seconds
        self._engines: list[wasmtime.Engine] = []
        self._calls: set[int] = set()
        self._parked = False
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def register(self, engine: wasmtime.Engine) -> None:
        with self._lock:
            self._engines = [*self._engines, engine]

    def ticks_for(self, seconds: float) -> int:
        """Epoch ticks that cover ``seconds`` (at least one, plus one for the partial tick)."""
        return max(1, int(seconds / self.tick_seconds) + 1)

    def _in_flight(self) -> int:
        return len(self._calls)

    def __enter__(self) -> EpochTicker:
        thread = self._thread
        if thread is None or not thread.is_alive():
            self._start()
        self._calls.add(threading.get_ident())
        if self._parked:
            self._wake.set()
        return self

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            thread = threading.Thread(target=self._run, name="palyra-epoch-ticker", daemon=True)
            thread.start()  # raises before anything is registered: no call runs unticked
            self._thread = thread

    def _after_fork(self) -> None:
        """A forked child has no ticker thread: forget the parent's so the next call starts one."""
        self._thread = None
        self._calls = set()
        self._parked = False
        self._wake = threading.Event()
        self._lock = threading.Lock()

    def __exit__(self, *_: object) -> None:
        self._calls.discard(threading.get_ident())

    def _run(self) -> None:
        # Ticks follow the real clock: sleeping oversleeps (load, GIL), so each wake-up advances
        # the epoch by however many ticks have actually elapsed since the baseline. The baseline
        # restarts whenever the ticker resumes from idle, so idle time never counts.
        baseline = time.monotonic()
        issued = 0
        while True:
            if self._in_flight() <= 0:
                self._wake.clear()
                self._parked = True
                if self._in_flight() <= 0:
                    self._wake.wait()
                self._parked = False
                baseline = time.monotonic()
                issued = 0
            time.sleep(self.tick_seconds)
            due = int((time.monotonic() - baseline) / self.tick_seconds)
            engines = self._engines
            for _ in range(due - issued):  # every elapsed tick: a stall must not stretch deadlines
                for engine in engines:
                    engine.increment_epoch()
            issued = max(issued, due)


_lock = threading.Lock()
_engines: dict[EngineConfig, wasmtime.Engine] = {}
TICKER = EpochTicker()
os.register_at_fork(after_in_child=TICKER._after_fork)


def get_engine(config: EngineConfig) -> wasmtime.Engine:
    with _lock:
        engine = _engines.get(config)
        if engine is None:
            engine = _build_engine(config)
            _engines[config] = engine
            TICKER.register(engine)
        return engine
