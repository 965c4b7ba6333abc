"""Running one tool call in a fresh sandbox.

Order of a call: compile (or fetch from the cache) → new store → fuel, limits and epoch
deadline → instantiate (start functions run under the same budget) → find the export → call →
collect output, logs, fuel, memory high-water mark and egress records → drop the store. The
wall-clock budget starts before instantiation and covers every host call; the process survives
every failure and the sandbox stays usable.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import wasmtime

from palyra.runtime import errors, ffi
from palyra.runtime.context import CallContext, CallGrants, HostServices, LogLine
from palyra.runtime.engine import TICKER, EngineConfig
from palyra.runtime.fastcall import FAST
from palyra.runtime.hostfuncs import HostLinker, current, set_current
from palyra.runtime.limits import RuntimeLimits
from palyra.runtime.modules import CompiledModule, ModuleCache
from palyra.skills.constants import COMPONENT_MAGIC

if TYPE_CHECKING:
    from palyra.runtime.components import CompiledComponent, ComponentRuntime

_MEMORY = b"memory"
_FRAMES = 16


@dataclass
class CallResult:
    output: Any
    exit_code: int
    export: str
    abi: str  # "data", "compat" or "component"
    fuel_used: int
    duration_ms: float
    memory_bytes: int
    logs: list[LogLine] = field(default_factory=list)
    dropped_logs: int = 0
    egress: list[dict[str, Any]] = field(default_factory=list)
    module_sha256: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "exit_code": self.exit_code,
            "export": self.export,
            "abi": self.abi,
            "fuel_used": self.fuel_used,
            "duration_ms": round(self.duration_ms, 3),
            "memory_bytes": self.memory_bytes,
            "logs": [line.to_json() for line in self.logs],
            "dropped_logs": self.dropped_logs,
            "egress": self.egress,
            "module_sha256": self.module_sha256,
        }


def choose_export(
    compiled: CompiledModule, tool_name: str | None, default_entrypoint: str | None
) -> str:
    """The first *existing* export among the tool name, the manifest's default entrypoint and
    ``run`` (docs/abi.md); it must have type ``() -> i32`` — a wrong type never falls through
    to the next candidate, which would run other code than the tool asked for."""
    key = (tool_name, default_entrypoint)
    chosen = compiled.export_choices.get(key)
    if chosen is not None:
        return chosen
    exported = {item.name for item in compiled.info.summary.exports if item.kind == "func"}
    wanted = [c for c in (tool_name, default_entrypoint, "run") if c]
    for candidate in wanted:
        if candidate in exported:
            if candidate not in compiled.info.entry_exports:
                raise errors.MissingExport(f"export '{candidate}' does not have type () -> i32")
            if len(compiled.export_choices) < 64:
                compiled.export_choices[key] = candidate
            return candidate
    raise errors.MissingExport(
        f"module exports no function named {' or '.join(repr(w) for w in wanted)}"
    )


DEFAULT_LIMITS = RuntimeLimits()
DEFAULT_GRANTS = CallGrants()


def _classify_instantiation(error: wasmtime.WasmtimeError) -> errors.RuntimeFailure:
    text = " ".join(str(error).split())
    if "memory minimum size" in text or "exceeds memory limits" in text:
        return errors.MemoryLimit(f"module needs more memory than allowed: {text[:300]}")
    if (
        "resource limit exceeded" in text
        or "exceeds table limits" in text
        or "concurrent" in text  # pooling allocator: every slot in use
    ):
        return errors.ResourceLimit(f"module exceeds table/instance/memory limits: {text[:300]}")
    return errors.LinkError(f"instantiation failed: {text[:300]}")


def _classify_trap(trap: wasmtime.Trap, limits: RuntimeLimits) -> errors.RuntimeFailure:
    code = trap.trap_code
    if code == wasmtime.TrapCode.INTERRUPT:
        return errors.TimedOut(f"call exceeded its {limits.timeout_ms} ms wall-clock budget")
    if code == wasmtime.TrapCode.OUT_OF_FUEL:
        return errors.FuelExhausted(f"call used its whole fuel budget of {limits.fuel}")
    frames = []
    try:
        for frame in trap.frames[:_FRAMES]:
            frames.append(
                {
                    "func_index": frame.func_index,
                    "func_name": frame.func_name,
                    "module_offset": frame.module_offset if frame.module_offset < 1 << 32 else None,
                }
            )
    except wasmtime.WasmtimeError:  # pragma: no cover - frames are best effort
        pass
    name = code.name.lower() if code is not None else "trap"
    message = " ".join(trap.message.split())[:300]
    return errors.GuestTrap(
        f"guest trapped: {name}: {message}", details={"trap_code": name, "frames": frames}
    )


class Sandbox:
    """Compiles and runs guest modules; safe to share between threads."""

    def __init__(
        self,
        *,
        cache_dir: Path | None = None,
        services: HostServices | None = None,
        engine_config: EngineConfig | None = None,
        native: bool | None = None,
    ) -> None:
        """``native`` selects the C call path (default: when the extension was built)."""
        ffi.check_bindings()
        self.native = FAST is not None if native is None else native
        if self.native and FAST is None:
            raise RuntimeError("the native call path (_fastcall) is not available")
        self.services = services or HostServices()
        self.linker = HostLinker(native=self.native)
        self.modules = ModuleCache(self.linker, cache_dir, engine_config)
        self.engine = self.modules.engine
        self.engine_address = ffi.address(self.engine)
        self.memory_ceiling = self.modules.engine_config.memory_reservation
        self._cache_dir = cache_dir
        self._components: ComponentRuntime | None = None
        self._components_lock = threading.Lock()

    @property
    def components(self) -> ComponentRuntime:
        """The component host, created on first use (its engine and WASI linker cost a few
        milliseconds that core-module-only sandboxes never pay)."""
        with self._components_lock:
            if self._components is None:
                from palyra.runtime.components import ComponentRuntime

                self._components = ComponentRuntime(self._cache_dir)
            return self._components

    def load(
        self, module_bytes: bytes, limits: RuntimeLimits | None = None
    ) -> CompiledModule | CompiledComponent:
        """Compile (or fetch) a core module or a component, by its header."""
        limits = limits or DEFAULT_LIMITS
        if module_bytes.startswith(COMPONENT_MAGIC):
            return self.components.load(module_bytes, limits.max_component_bytes)
        return self.modules.load(module_bytes, limits.max_module_bytes)

    def run(
        self,
        module_bytes: bytes,
        *,
        input_value: Any = None,
        input_bytes: bytes | None = None,
        skill_id: str = "dev.local",
        tool_id: str = "dev.local.run",
        tool_name: str | None = None,
        default_entrypoint: str | None = None,
        grants: CallGrants | None = None,
        limits: RuntimeLimits | None = None,
    ) -> CallResult:
        """Run one call. Raises :class:`palyra.runtime.errors.RuntimeFailure` on any failure."""
        limits = limits or DEFAULT_LIMITS
        compiled = self.load(module_bytes, limits)
        return self.run_compiled(
            compiled,
            input_value=input_value,
            input_bytes=input_bytes,
            skill_id=skill_id,
            tool_id=tool_id,
            tool_name=tool_name,
            default_entrypoint=default_entrypoint,
            grants=grants,
            limits=limits,
        )

    def run_compiled(
        self,
        compiled: CompiledModule | CompiledComponent,
        *,
        input_value: Any = None,
        input_bytes: bytes | None = None,
        skill_id: str = "dev.local",
        tool_id: str = "dev.local.run",
        tool_name: str | None = None,
        default_entrypoint: str | None = None,
        grants: CallGrants | None = None,
        limits: RuntimeLimits | None = None,
    ) -> CallResult:
        """Like :meth:`run` for a module already loaded with :meth:`load` (no re-hashing)."""
        limits = limits or DEFAULT_LIMITS
        raw_input = _encode_input(input_value, input_bytes, limits)
        if not isinstance(compiled, CompiledModule):
            return self._call_component(
                compiled, raw_input, skill_id, tool_id, tool_name, grants or DEFAULT_GRANTS, limits
            )
        export = choose_export(compiled, tool_name, default_entrypoint)
        return self._call(
            compiled, export, raw_input, skill_id, tool_id, grants or DEFAULT_GRANTS, limits
        )

    def _call_component(
        self,
        compiled: CompiledComponent,
        raw_input: bytes,
        skill_id: str,
        tool_id: str,
        tool_name: str | None,
        grants: CallGrants,
        limits: RuntimeLimits,
    ) -> CallResult:
        """``call(tool, input)`` of the palyra:skill world: ok is the output's JSON text, err
        a ``tool-error`` record."""
        from palyra.runtime.component_values import tool_failure

        try:
            input_text = raw_input.decode("utf-8")
        except UnicodeDecodeError:
            raise errors.InvalidInput("component input must be UTF-8 JSON text") from None
        started = time.monotonic()
        ctx = CallContext(
            skill_id=skill_id,
            tool_id=tool_id,
            tool_name=tool_name,
            input_bytes=raw_input,
            grants=grants,
            limits=limits,
            services=self.services,
            deadline=started + limits.timeout_ms / 1000,
        )
        value, fuel_used = self.components.call(
            compiled, "call", (ctx.tool_name, input_text), ctx, limits
        )
        result = CallResult(
            output=None,
            exit_code=0,
            export="call",
            abi="component",
            fuel_used=fuel_used,
            duration_ms=(time.monotonic() - started) * 1000,
            memory_bytes=0,
            logs=ctx.logs,
            dropped_logs=ctx.dropped_logs,
            egress=ctx.egress_records(),
            module_sha256=compiled.info.sha256,
        )
        if not isinstance(value, str):
            result.exit_code = 1
            raise tool_failure(value, ctx.redact_text, _call_details(result, ctx))
        output = value.encode("utf-8", "surrogatepass")
        if len(output) > limits.max_output_bytes:
            raise errors.InvalidOutput(
                f"output exceeds {limits.max_output_bytes} bytes", details=_call_details(result)
            )
        result.output = _decode_output(ctx.redact(output), result)
        return result

    def describe_component(self, module_bytes: bytes, limits: RuntimeLimits | None = None) -> Any:
        """The tool list a component reports through its ``describe`` export (decoded JSON),
        run in the sandbox like any call: no grants, the usual limits."""
        limits = limits or DEFAULT_LIMITS
        compiled = self.load(module_bytes, limits)
        if isinstance(compiled, CompiledModule):
            raise errors.InvalidModule("describe needs a component; this is a core module")
        ctx = CallContext(
            skill_id="dev.local",
            tool_id="dev.local.describe",
            input_bytes=b"",
            grants=DEFAULT_GRANTS,
            limits=limits,
            services=self.services,
            deadline=time.monotonic() + limits.timeout_ms / 1000,
        )
        value, _fuel = self.components.call(compiled, "describe", (), ctx, limits)
        if not isinstance(value, str) or len(value) > limits.max_output_bytes:
            raise errors.InvalidOutput("describe returned no text or too much of it")
        try:
            return _DECODER.decode(value)
        except (ValueError, RecursionError):
            raise errors.InvalidOutput("describe did not return valid JSON") from None

    def _call(
        self,
        compiled: CompiledModule,
        export: str,
        raw_input: bytes,
        skill_id: str,
        tool_id: str,
        grants: CallGrants,
        limits: RuntimeLimits,
    ) -> CallResult:
        if current() is not None:
            # A host service (a channel sink, say) running another tool on this thread would
            # share the thread's call context and wall-clock registration with the outer call.
            raise errors.RuntimeFailure("a sandbox call cannot start inside another call")
        if compiled.native != self.native:
            raise errors.InvalidModule("module was loaded by a sandbox with another call path")
        started = time.monotonic()
        deadline = started + limits.timeout_ms / 1000
        ctx = CallContext(
            skill_id=skill_id,
            tool_id=tool_id,
            input_bytes=raw_input,
            grants=grants,
            limits=limits,
            services=self.services,
            deadline=deadline,
        )
        if self.native:
            exit_code, fuel_used, memory_bytes = self._call_native(compiled, export, ctx, limits)
        else:
            exit_code, fuel_used, memory_bytes = self._call_ctypes(compiled, export, ctx, limits)
        duration_ms = (time.monotonic() - started) * 1000
        data_abi = compiled.info.data_abi
        result = CallResult(
            output=None,
            exit_code=exit_code,
            export=export,
            abi="data" if data_abi else "compat",
            fuel_used=fuel_used,
            duration_ms=duration_ms,
            memory_bytes=memory_bytes,
            logs=ctx.logs,
            dropped_logs=ctx.dropped_logs,
            egress=ctx.egress_records(),
            module_sha256=compiled.info.sha256,
        )
        if not data_abi:
            result.output = {"exit_code": exit_code}
            return result
        output = ctx.redact(bytes(ctx.output))
        if ctx.output_overflow:
            raise errors.InvalidOutput(
                f"output exceeds {limits.max_output_bytes} bytes", details=_call_details(result)
            )
        if exit_code != 0:
            message = output.decode("utf-8", "replace")[:1000] or f"tool returned {exit_code}"
            raise errors.ToolError(message, exit_code=exit_code, details=_call_details(result, ctx))
        result.output = _decode_output(output, result)
        return result

    def _store_limits(self, limits: RuntimeLimits) -> tuple[int, int, int, int, int]:
        return (
            min(limits.memory_bytes, self.memory_ceiling),
            limits.table_elements,
            limits.instances,
            limits.tables,
            limits.memories,
        )

    def _call_native(
        self, compiled: CompiledModule, export: str, ctx: CallContext, limits: RuntimeLimits
    ) -> tuple[int, int, int]:
        assert FAST is not None
        with TICKER:
            set_current(ctx)
            try:
                stage, exit_code, output, overflow, fuel_left, memory_bytes, error, trap, store = (
                    FAST.call(
                        self.engine_address,
                        compiled.pre_address,
                        export.encode(),
                        ctx.input,
                        limits.max_output_bytes,
                        *self._store_limits(limits),
                        limits.fuel,
                        TICKER.ticks_for(limits.timeout_ms / 1000),
                    )
                )
            finally:
                set_current(None)
                ctx.close()
        ctx.output = bytearray(output)
        ctx.output_overflow = bool(overflow)
        if stage == 0:
            return exit_code, limits.fuel - fuel_left, memory_bytes
        try:  # classify before the store (which the trap's frames refer to) goes away
            if stage == 3:  # pragma: no cover - export types were checked at load
                raise errors.MissingExport(f"export '{export}' disappeared")
            failure = ffi.CallFailed(
                ffi.error_from_pointer(error) if error else ffi.trap_from_pointer(trap)
            )
            raise self._failure(failure, ctx, limits, instantiating=stage == 1)
        finally:
            FAST.delete_store(store)

    def _call_ctypes(
        self, compiled: CompiledModule, export: str, ctx: CallContext, limits: RuntimeLimits
    ) -> tuple[int, int, int]:
        store = ffi.store_new(self.engine_address)
        try:
            context = ffi.store_context(store)
            ffi.set_limits(store, *self._store_limits(limits))
            ffi.set_fuel(context, limits.fuel)
            with TICKER:
                ffi.set_epoch_deadline(context, TICKER.ticks_for(limits.timeout_ms / 1000))
                set_current(ctx)
                try:
                    exit_code = self._instantiate_and_call(compiled, export, ctx, context, limits)
                finally:
                    set_current(None)
            fuel_used = limits.fuel - ffi.get_fuel(context)
            memory_bytes = ffi.memory_span(context, ctx.memory)[1] if ctx.memory is not None else 0
        finally:
            ctx.close()
            ffi.store_delete(store)
        return exit_code, fuel_used, memory_bytes

    def _instantiate_and_call(
        self,
        compiled: CompiledModule,
        export: str,
        ctx: CallContext,
        context: Any,
        limits: RuntimeLimits,
    ) -> int:
        try:
            instance = ffi.instantiate(compiled.pre_address, context)
        except ffi.CallFailed as exc:
            raise self._failure(exc, ctx, limits, instantiating=True) from None
        ctx.memory = ffi.export(context, instance, _MEMORY, ffi.EXTERN_MEMORY)
        func = ffi.export(context, instance, export.encode(), ffi.EXTERN_FUNC)
        if func is None:  # pragma: no cover - export types were checked at load
            raise errors.MissingExport(f"export '{export}' disappeared")
        try:
            return ffi.call_i32(context, func)
        except ffi.CallFailed as exc:
            raise self._failure(exc, ctx, limits, instantiating=False) from None

    @staticmethod
    def _failure(
        exc: ffi.CallFailed, ctx: CallContext, limits: RuntimeLimits, *, instantiating: bool
    ) -> errors.RuntimeFailure:
        if ctx.host_error is not None:
            return errors.RuntimeFailure(
                f"host function failed: {type(ctx.host_error).__name__}: "
                f"{ctx.redact_text(str(ctx.host_error))[:300]}"
            )
        error = exc.error
        if isinstance(error, wasmtime.Trap):
            return _classify_trap(error, limits)
        if instantiating:
            return _classify_instantiation(error)
        return errors.GuestTrap(f"call failed: {' '.join(str(error).split())[:300]}")


def _call_details(result: CallResult, ctx: CallContext | None = None) -> dict[str, Any]:
    """What a failed call reports: its cost, logs, egress and — so an author can tell a
    missing grant from a bug — the capabilities refused along the way."""
    details: dict[str, Any] = {
        "fuel_used": result.fuel_used,
        "duration_ms": round(result.duration_ms, 3),
        "logs": [line.to_json() for line in result.logs],
        "egress": result.egress,
    }
    if ctx is not None and ctx.denied:
        details["denied_capabilities"] = sorted(set(ctx.denied))
    if ctx is not None and ctx.missing_secrets:
        details["missing_secrets"] = sorted(ctx.missing_secrets)
    return details


def _encode_input(value: Any, raw: bytes | None, limits: RuntimeLimits) -> bytes:
    if raw is None:
        try:
            raw = json.dumps(value, ensure_ascii=False, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise errors.InvalidInput(f"input is not JSON-serialisable: {exc}") from None
    if len(raw) > limits.max_input_bytes:
        raise errors.InvalidInput(f"input exceeds {limits.max_input_bytes} bytes")
    return raw


def _no_constants(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def _decode_output(output: bytes, result: CallResult) -> Any:
    if not output:
        return None
    try:
        value = _DECODER.decode(output.decode("utf-8"))
    except (ValueError, RecursionError):
        raise errors.InvalidOutput(
            "tool output is not valid JSON", details=_call_details(result)
        ) from None
    if isinstance(value, float) and not math.isfinite(value):  # pragma: no cover
        raise errors.InvalidOutput("tool output is not valid JSON")
    return value
