"""WAT fixtures and helpers shared by the runtime test suites.

The centre piece is :class:`Probe`: a data-ABI guest generated from a list of host calls. It
evaluates each item in order and reports every result as one element of a JSON array in its
output, so a test sees the exact return code of every host call (and, where asked, the bytes a
call copied into guest memory) without any test-only host hook.

Memory layout of a probe (``PAGES`` pages of 64 KiB):

* ``[0, SCRATCH)`` data segments (strings the test places with :meth:`Probe.blob`);
* ``[SCRATCH, OUT)`` scratch space where host calls may copy bytes;
* ``[OUT, MEM_SIZE)`` the report being built, written with one ``output_write`` at the end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import wasmtime

from palyra.runtime.sandbox import Sandbox

PAGE = 65_536
PAGES = 4
MEM_SIZE = PAGES * PAGE
SCRATCH = PAGE
OUT = 3 * PAGE
HOST = "palyra:host@1"
COMPAT = "palyra:plugins/host-capabilities@0.1.0"

# docs/abi.md, written out here (not generated from palyra.abi) so the suite checks the code
# against the document rather than against itself.
DATA_ABI_SIGNATURES: dict[str, tuple[tuple[str, ...], str]] = {
    "input_len": ((), "i32"),
    "input_read": (("i32", "i32"), "i32"),
    "output_write": (("i32", "i32"), "i32"),
    "log": (("i32", "i32", "i32"), "i32"),
    "tool_id": (("i32", "i32"), "i32"),
    "result_len": ((), "i32"),
    "result_read": (("i32", "i32"), "i32"),
    "clock_now_ms": ((), "i64"),
    "random_fill": (("i32", "i32"), "i32"),
    "http_request": (("i32", "i32"), "i32"),
    "secret_get": (("i32", "i32"), "i32"),
    "storage_get": (("i32", "i32"), "i32"),
    "storage_put": (("i32", "i32", "i32", "i32"), "i32"),
    "storage_delete": (("i32", "i32"), "i32"),
    "storage_list": (("i32", "i32"), "i32"),
    "channel_send": (("i32", "i32", "i32", "i32"), "i32"),
}

COMPAT_FUNCTIONS = tuple(
    f"{family}-{what}"
    for family in ("http", "secret", "storage", "channel")
    for what in ("count", "handle")
)


def wat(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


def wat_string(data: bytes) -> str:
    """A WAT string literal holding exactly ``data``."""
    return '"' + "".join(f"\\{b:02x}" for b in data) + '"'


def import_line(name: str, module: str = HOST, params: tuple[str, ...] | None = None) -> str:
    """One data-ABI import (the documented signature unless ``params`` overrides it)."""
    doc_params, result = DATA_ABI_SIGNATURES[name]
    use = doc_params if params is None else params
    param_text = f" (param {' '.join(use)})" if use else ""
    return f'(import "{module}" "{name}" (func ${name}{param_text} (result {result})))'


def data_imports(*names: str) -> str:
    return "\n  ".join(import_line(n) for n in (names or tuple(DATA_ABI_SIGNATURES)))


def compat_imports() -> str:
    lines = []
    for name in COMPAT_FUNCTIONS:
        params = "" if name.endswith("-count") else " (param i32)"
        lines.append(f'(import "{COMPAT}" "{name}" (func ${name}{params} (result i32)))')
    return "\n  ".join(lines)


# ---- simple guests ---------------------------------------------------------------------------

ECHO_WAT = f"""
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
ECHO = wat(ECHO_WAT)

# The same echo, exported as `run` (what the fallback export rule finds).
ECHO_RUN = wat(ECHO_WAT.replace('(export "echo")', '(export "run")'))

ANSWER = wat('(module (func (export "answer") (result i32) i32.const 42))')
LOOP = wat('(module (func (export "run") (result i32) (loop br 0) (i32.const 0)))')
UNREACHABLE = wat('(module (func (export "run") (result i32) unreachable))')


def fixed_output(text: bytes, *, export: str = "run", exit_code: int = 0) -> bytes:
    """A data-ABI guest that writes ``text`` and returns ``exit_code``."""
    return wat(
        f"""
(module
  {data_imports("output_write")}
  (memory (export "memory") 1)
  (data (i32.const 0) {wat_string(text)})
  (func (export "{export}") (result i32)
    (drop (call $output_write (i32.const 0) (i32.const {len(text)})))
    (i32.const {exit_code})))
"""
    )


def check_echo(sandbox: Sandbox) -> None:
    """The known-good call every hostile case is followed by."""
    value = {"ok": "still alive ✓", "n": 7}
    result = sandbox.run(ECHO, input_value=value, tool_name="echo")
    assert result.output == value
    assert result.exit_code == 0


# ---- the probe ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blob:
    ptr: int
    len: int

    @property
    def args(self) -> str:
        return f"(i32.const {self.ptr}) (i32.const {self.len})"


def i32(value: int) -> str:
    """An i32 constant from any Python int (wrapped to 32 bits, printed signed)."""
    value &= 0xFFFF_FFFF
    if value >= 0x8000_0000:
        value -= 0x1_0000_0000
    return f"(i32.const {value})"


def call(name: str, *args: int | str | Blob) -> str:
    parts: list[str] = []
    for arg in args:
        if isinstance(arg, Blob):
            parts.append(arg.args)
        elif isinstance(arg, int):
            parts.append(i32(arg))
        else:
            parts.append(arg)
    return f"(call ${name} {' '.join(parts)})".replace(" )", ")")


@dataclass
class Probe:
    """A data-ABI guest reporting each item's value as one element of a JSON array."""

    pages: int = PAGES
    export: str = "run"
    exit_code: int = 0
    items: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # more module fields (funcs, globals)
    _segments: list[tuple[int, bytes]] = field(default_factory=list)
    _next: int = 16

    def blob(self, data: bytes | str, at: int | None = None) -> Blob:
        raw = data.encode() if isinstance(data, str) else data
        ptr = self._next if at is None else at
        if at is None:
            self._next += len(raw) + 1
            assert self._next < SCRATCH, "probe data area is full"
        self._segments.append((ptr, raw))
        return Blob(ptr, len(raw))

    def num(self, expr: str) -> Probe:
        """Report an i32 expression as a JSON number."""
        self.items.append(f"(call $num (i64.extend_i32_s {expr}))")
        return self

    def num64(self, expr: str) -> Probe:
        self.items.append(f"(call $num {expr})")
        return self

    def mem(self, ptr: int, length: int) -> Probe:
        """Report guest memory [ptr, ptr+length) verbatim as a JSON string (no escaping)."""
        self.items.append(
            f"(call $byte (i32.const 34)) (call $copy (i32.const {ptr}) (i32.const {length}))"
            " (call $byte (i32.const 34))"
        )
        return self

    def raw_mem(self, ptr: int, length: int) -> Probe:
        """Report guest memory verbatim as a JSON value (it must be JSON already)."""
        self.items.append(f"(call $copy (i32.const {ptr}) (i32.const {length}))")
        return self

    def result_text(self) -> Probe:
        """Report the whole result buffer as a JSON string (no escaping)."""
        self.items.append("(call $byte (i32.const 34)) (call $result) (call $byte (i32.const 34))")
        return self

    def result_raw(self) -> Probe:
        """Report the whole result buffer verbatim (it must be JSON already)."""
        self.items.append("(call $result)")
        return self

    def eq(self, a: int, b: int, length: int) -> Probe:
        """Report 1 when memory [a, a+length) equals [b, b+length), else 0."""
        return self.num(f"(call $memeq (i32.const {a}) (i32.const {b}) (i32.const {length}))")

    def do(self, statement: str) -> Probe:
        """A statement whose value is dropped and not reported."""
        self.items.append(f"(drop {statement})")
        return self

    def wat(self) -> str:
        mem_size = self.pages * PAGE
        out = mem_size - PAGE
        body: list[str] = ["(call $byte (i32.const 91))"]
        first = True
        for item in self.items:
            if item.startswith("(drop "):
                body.append(item)
                continue
            if not first:
                body.append("(call $byte (i32.const 44))")
            body.append(item)
            first = False
        body.append("(call $byte (i32.const 93))")
        body.append(
            f"(drop (call $output_write (i32.const {out})"
            f" (i32.sub (global.get $pos) (i32.const {out}))))"
        )
        segments = "\n  ".join(
            f"(data (i32.const {ptr}) {wat_string(raw)})" for ptr, raw in self._segments
        )
        statements = "\n    ".join(body)
        extra = "\n  ".join(self.extra)
        return f"""
(module
  {data_imports()}
  (memory (export "memory") {self.pages})
  {segments}
  (global $pos (mut i32) (i32.const {out}))
  {extra}
  (func $byte (param $b i32)
    (i32.store8 (global.get $pos) (local.get $b))
    (global.set $pos (i32.add (global.get $pos) (i32.const 1))))
  (func $copy (param $ptr i32) (param $len i32)
    (memory.copy (global.get $pos) (local.get $ptr) (local.get $len))
    (global.set $pos (i32.add (global.get $pos) (local.get $len))))
  (func $result
    (local $n i32)
    (local.set $n (call $result_read (global.get $pos) (call $result_len)))
    (if (i32.gt_s (local.get $n) (i32.const 0))
      (then (global.set $pos (i32.add (global.get $pos) (local.get $n))))))
  (func $memeq (param $a i32) (param $b i32) (param $n i32) (result i32)
    (block $differ
      (loop $next
        (if (i32.eqz (local.get $n)) (then (return (i32.const 1))))
        (br_if $differ (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (i32.const 0))
  (func $num (param $v i64)
    (local $start i32) (local $end i32) (local $t i32)
    (if (i64.lt_s (local.get $v) (i64.const 0))
      (then
        (call $byte (i32.const 45))
        (local.set $v (i64.sub (i64.const 0) (local.get $v)))))
    (local.set $start (global.get $pos))
    (loop $digits
      (call $byte (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $v) (i64.const 10)))))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $digits (i64.ne (local.get $v) (i64.const 0))))
    (local.set $end (i32.sub (global.get $pos) (i32.const 1)))
    (block $done
      (loop $rev
        (br_if $done (i32.ge_u (local.get $start) (local.get $end)))
        (local.set $t (i32.load8_u (local.get $start)))
        (i32.store8 (local.get $start) (i32.load8_u (local.get $end)))
        (i32.store8 (local.get $end) (local.get $t))
        (local.set $start (i32.add (local.get $start) (i32.const 1)))
        (local.set $end (i32.sub (local.get $end) (i32.const 1)))
        (br $rev))))
  (func (export "{self.export}") (result i32)
    {statements}
    (i32.const {self.exit_code})))
"""

    def build(self) -> bytes:
        return wat(self.wat())


def report(output: Any) -> list[Any]:
    """A probe's output (already decoded by the sandbox) as a list."""
    assert isinstance(output, list), output
    return output


def probe_codes(output: Any) -> list[int]:
    values = report(output)
    assert all(isinstance(v, int) for v in values), values
    return [int(v) for v in values]


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
