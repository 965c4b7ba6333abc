"""Tests for the bounded WebAssembly binary reader used by the static audit.

Fixtures are compiled from WAT with ``wasmtime.wat2wasm`` so they are real toolchain output;
malformed inputs are assembled byte by byte with the small encoders below, because no toolchain
will emit them. The property tests hold the one promise the audit relies on: whatever the bytes,
``parse_wasm`` returns a summary or raises :class:`WasmFormatError`, nothing else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from functools import cache

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wasmtime import wat2wasm

from palyra.skills.wasm_binary import (
    CustomSection,
    FuncSig,
    WasmExport,
    WasmFormatError,
    WasmImport,
    WasmSummary,
    parse_wasm,
)

HEADER = b"\0asm\x01\x00\x00\x00"
COMPONENT_HEADER = b"\0asm\x0d\x00\x01\x00"
KINDS = ("func", "table", "memory", "global", "tag")


# --- byte-level encoders --------------------------------------------------------------------


def uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def padded_uleb(n: int, width: int) -> bytes:
    """A non-minimal but valid encoding, as linkers emit so they can patch values in place."""
    out = bytearray()
    for i in range(width):
        b = (n >> (7 * i)) & 0x7F
        out.append(b | (0x80 if i < width - 1 else 0))
    return bytes(out)


def name(s: str | bytes) -> bytes:
    raw = s.encode() if isinstance(s, str) else s
    return uleb(len(raw)) + raw


def vec(items: list[bytes]) -> bytes:
    return uleb(len(items)) + b"".join(items)


def section(sid: int, payload: bytes) -> bytes:
    return bytes([sid]) + uleb(len(payload)) + payload


def custom(section_name: str | bytes, payload: bytes) -> bytes:
    return section(0, name(section_name) + payload)


def module(*sections: bytes) -> bytes:
    return HEADER + b"".join(sections)


def wasm(wat: str) -> bytes:
    return bytes(wat2wasm(wat))


def frame_boundaries(binary: bytes) -> set[int]:
    """Offsets at which a section ends (including the header's end), walked independently."""
    pos = 8
    ends = {pos}
    while pos < len(binary):
        pos += 1
        size = shift = 0
        while True:
            b = binary[pos]
            pos += 1
            size |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        pos += size
        ends.add(pos)
    return ends


FULL_WAT = """
(module
  (type $unused (func (param f32 f64) (result v128)))
  (import "palyra:plugins/host-capabilities@0.1.0" "http-count" (func (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "env" "table" (table 1 funcref))
  (import "env" "memory" (memory 1 2))
  (import "env" "counter" (global (mut i64)))
  (import "env" "oops" (tag (param i32)))
  (import "env" "refs" (func (param externref funcref (ref func)) (result (ref null extern))))
  (func $main (export "main") nop)
  (func $helper (param i32) (result i32) local.get 0)
  (table $t2 (export "table2") 2 externref)
  (tag $boom (export "boom") (param i64))
  (global $g1 (export "g1") i32 (i32.const 42))
  (global $g2 f32 (f32.const 1.5))
  (global $g3 v128 (v128.const i32x4 1 2 3 4))
  (global $g4 i32 (i32.add (global.get 1) (i32.const -7)))
  (global $g5 funcref (ref.func $main))
  (global $g6 externref (ref.null extern))
  (global $g7 i64 (i64.mul (i64.const -9223372036854775808) (i64.const 3)))
  (export "memory" (memory 0))
  (export "imported-table" (table 0))
  (export "helper" (func $helper))
  (start $main)
  (elem (i32.const 0) func $main)
  (data (i32.const 16) "hello")
  (data "passive bytes")
)
"""


@cache
def full_module() -> bytes:
    return wasm(FULL_WAT)


# --- well-formed inputs ---------------------------------------------------------------------


def test_imports_of_every_kind_with_signatures() -> None:
    summary = parse_wasm(full_module())
    assert summary.kind == "core_module"
    assert summary.imports == (
        WasmImport(
            "palyra:plugins/host-capabilities@0.1.0", "http-count", "func", FuncSig((), ("i32",))
        ),
        WasmImport(
            "wasi_snapshot_preview1",
            "path_open",
            "func",
            FuncSig(("i32",) * 5 + ("i64", "i64", "i32", "i32"), ("i32",)),
        ),
        WasmImport("env", "table", "table", None),
        WasmImport("env", "memory", "memory", None),
        WasmImport("env", "counter", "global", None),
        WasmImport("env", "oops", "tag", None),
        WasmImport("env", "refs", "func", FuncSig(("externref", "funcref", "ref"), ("externref",))),
    )


def test_exports_and_export_counts() -> None:
    summary = parse_wasm(full_module())
    assert summary.exports == (
        WasmExport("main", "func"),
        WasmExport("table2", "table"),
        WasmExport("boom", "tag"),
        WasmExport("g1", "global"),
        WasmExport("memory", "memory"),
        WasmExport("imported-table", "table"),
        WasmExport("helper", "func"),
    )
    assert summary.export_counts == {"func": 2, "table": 2, "memory": 1, "global": 1, "tag": 1}


def test_defined_counts_start_and_data() -> None:
    summary = parse_wasm(full_module())
    assert summary.defined_functions == 2
    assert summary.defined_tables == 1
    assert summary.defined_memories == 0
    assert summary.defined_globals == 7
    assert summary.has_start is True
    assert summary.data_segments == 2
    assert summary.data_bytes == len("hello") + len("passive bytes")


def test_empty_module() -> None:
    summary = parse_wasm(HEADER)
    assert summary == WasmSummary(
        kind="core_module",
        imports=(),
        exports=(),
        custom_sections=(),
        defined_functions=0,
        defined_memories=0,
        defined_tables=0,
        defined_globals=0,
        data_segments=0,
        data_bytes=0,
        has_start=False,
        export_counts=dict.fromkeys(KINDS, 0),
    )


def test_defined_memories_memory64_shared_and_multi_memory_data() -> None:
    summary = parse_wasm(
        wasm(
            """(module
                 (memory 1)
                 (memory $big i64 1 100)
                 (memory $shared 1 2 shared)
                 (data (memory $big) (i64.const 8) "abc")
                 (data (memory 0) (i32.const 0) "")
               )"""
        )
    )
    assert summary.defined_memories == 3
    assert summary.data_segments == 2
    assert summary.data_bytes == 3
    assert not summary.has_start
    assert summary.export_counts == dict.fromkeys(KINDS, 0)


def test_custom_sections_appended_and_interleaved() -> None:
    base = wasm('(module (func (export "f")))')
    binary = base + custom("palyra.audit", b"\x01\x02\x03") + custom("", b"")
    summary = parse_wasm(binary)
    assert summary.custom_sections == (
        CustomSection("palyra.audit", 3),
        CustomSection("", 0),
    )
    # Custom sections may sit between (and before) known sections.
    interleaved = module(
        custom("first", b"x" * 200),
        section(1, vec([b"\x60\x00\x00"])),
        custom("producers", b""),
        section(3, vec([b"\x00"])),
        section(10, vec([b"\x02\x00\x0b"])),
    )
    summary = parse_wasm(interleaved)
    assert summary.custom_sections == (CustomSection("first", 200), CustomSection("producers", 0))
    assert summary.defined_functions == 1


def test_toolchain_name_section_is_reported() -> None:
    summary = parse_wasm(wasm("(module (func $named))"))
    assert [c.name for c in summary.custom_sections] == ["name"]


def test_padded_leb128_is_accepted_like_wasmtime() -> None:
    # Linkers leave 5-byte section sizes and indices; the spec allows them and so does wasmtime.
    types = vec([b"\x60\x00\x00"])
    binary = (
        HEADER
        + b"\x01"
        + padded_uleb(len(types), 5)
        + types
        + section(3, padded_uleb(1, 1) + padded_uleb(0, 5))
        + section(7, vec([name("f") + b"\x00" + padded_uleb(0, 5)]))
        + section(10, vec([b"\x02\x00\x0b"]))
    )
    wasmtime.Module.validate(wasmtime.Engine(), binary)
    summary = parse_wasm(binary)
    assert summary.exports == (WasmExport("f", "func"),)


def test_const_expression_forms() -> None:
    # Padded but in-range signed LEBs and every supported constant opcode.
    globals_ = vec(
        [
            b"\x7f\x00\x41" + b"\xff\xff\xff\xff\x07" + b"\x0b",  # i32.const INT32_MAX, 5 bytes
            b"\x7f\x00\x41" + b"\x80\x80\x80\x80\x78" + b"\x0b",  # i32.const INT32_MIN
            b"\x7e\x00\x42" + b"\x80" * 9 + b"\x7f" + b"\x0b",  # i64.const INT64_MIN
            b"\x7d\x00\x43" + b"\0" * 4 + b"\x0b",
            b"\x7c\x00\x44" + b"\0" * 8 + b"\x0b",
            b"\x7b\x00\xfd\x0c" + b"\0" * 16 + b"\x0b",
            b"\x70\x00\xd0\x70\x0b",
            b"\x7f\x00\x41\x01\x41\x02\x6a\x41\x03\x6c\x0b",
        ]
    )
    binary = module(section(6, globals_))
    wasmtime.Module.validate(wasmtime.Engine(), binary)
    assert parse_wasm(binary).defined_globals == 8


def test_bytearray_and_memoryview_inputs() -> None:
    binary = full_module()
    expected = parse_wasm(binary)
    assert parse_wasm(bytearray(binary)) == expected
    assert parse_wasm(memoryview(binary)) == expected


def test_summary_is_frozen_and_hashable() -> None:
    summary = parse_wasm(full_module())
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.kind = "component"  # type: ignore[misc]
    assert hash(summary) == hash(parse_wasm(full_module()))


VALID_WAT_CORPUS = [
    '(module (memory i64 1) (data (i64.const 0) "x") (func (result i64) i64.const 0 i64.load))',
    "(module (table i64 1 funcref))",
    "(module (table 1 (ref null func)) (elem declare func 0) (func))",
    "(module (table 10 (ref func) (ref.func 0)) (func))",
    '(module (memory 0) (data "a")'
    " (func (memory.init 0 (i32.const 0) (i32.const 0) (i32.const 0)) (data.drop 0)))",
    "(module (func (result i32 i64) i32.const 0 i64.const 1))",
    "(module (func (result v128) v128.const i64x2 1 2))",
    "(module (tag $e) (func (try_table (catch_all 0) (throw $e))))",
    '(module (global (import "a" "b") i32) (global i32 (i32.add (global.get 0) (i32.const 1))))',
    "(module (elem funcref (ref.null func)) (elem externref (ref.null extern)))",
    FULL_WAT,
]


@pytest.mark.parametrize("wat", VALID_WAT_CORPUS)
def test_agrees_with_wasmtime_on_valid_modules(wat: str) -> None:
    binary = wasm(wat)
    wasmtime.Module.validate(wasmtime.Engine(), binary)
    assert parse_wasm(binary).kind == "core_module"


# --- components -----------------------------------------------------------------------------


def test_minimal_component() -> None:
    summary = parse_wasm(COMPONENT_HEADER)
    assert summary.kind == "component"
    assert summary.imports == ()
    assert summary.exports == ()
    assert summary.defined_functions == 0
    assert summary.data_bytes == 0
    assert summary.export_counts == dict.fromkeys(KINDS, 0)


def test_component_from_wat() -> None:
    binary = wasm("(component (core module (func)))")
    summary = parse_wasm(binary)
    assert summary.kind == "component"
    assert parse_wasm(wasm("(component)")).kind == "component"


def test_component_custom_sections_and_framing() -> None:
    summary = parse_wasm(COMPONENT_HEADER + custom("component-meta", b"abcd"))
    assert summary.custom_sections == (CustomSection("component-meta", 4),)
    with pytest.raises(WasmFormatError, match="past the end"):
        parse_wasm(COMPONENT_HEADER + b"\x01\x10\x00")
    with pytest.raises(WasmFormatError, match="unknown component section id"):
        parse_wasm(COMPONENT_HEADER + section(0x40, b""))
    with pytest.raises(WasmFormatError, match="truncated"):
        parse_wasm(COMPONENT_HEADER + b"\x01\x80")


# --- rejected inputs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"(module)", "looks like WAT text"),
        (b"  \n(module (func))", "looks like WAT text"),
        (b";; comment\n(module)", "looks like WAT text"),
        (b"", "bad magic"),
        (b"\x7fELF\x02\x01\x01\x00", "bad magic"),
        (b"PK\x03\x04" + b"\0" * 20, "bad magic"),
        (b"\0as", "truncated WebAssembly header"),
        (b"\0asm\x01\x00", "truncated WebAssembly header"),
        (b"\0asm\x02\x00\x00\x00", "unsupported WebAssembly version 2"),
        (b"\0asm\x0c\x00\x01\x00", "unsupported component binary version 0xc"),
        (b"\0asm\x01\x00\x02\x00", "unsupported WebAssembly layer 2"),
    ],
)
def test_not_a_supported_binary(data: bytes, message: str) -> None:
    with pytest.raises(WasmFormatError, match=message):
        parse_wasm(data)


def test_real_wat_text_rejected() -> None:
    with pytest.raises(WasmFormatError, match="WAT"):
        parse_wasm(FULL_WAT.encode())


def test_every_truncation_of_a_real_module() -> None:
    binary = full_module()
    boundaries = frame_boundaries(binary)
    for cut in range(len(binary)):
        prefix = binary[:cut]
        if cut in boundaries:
            # Ending on a section boundary can still be a well-formed (smaller) module.
            with contextlib.suppress(WasmFormatError):
                parse_wasm(prefix)
        else:
            with pytest.raises(WasmFormatError):
                parse_wasm(prefix)


@pytest.mark.parametrize(
    "size_leb",
    [
        b"\x80\x80\x80\x80\x80\x00",  # six bytes
        b"\x80\x80\x80\x80\x10",  # fifth byte sets bit 32
        b"\xff\xff\xff\xff\x7f",  # fifth byte with a continuation-free overflow
        b"\x80\x80\x80\x80\x80",  # continuation into a sixth byte
    ],
)
def test_overlong_or_over_range_leb128(size_leb: bytes) -> None:
    with pytest.raises(WasmFormatError, match="too long or out of range"):
        parse_wasm(HEADER + b"\x01" + size_leb + b"\x00" * 8)


@pytest.mark.parametrize(
    "init",
    [
        b"\x41" + b"\x80" * 5 + b"\x00",  # s32 of six bytes
        b"\x41\xff\xff\xff\xff\x0f",  # s32 whose unused high bits disagree with the sign
        b"\x41\x80\x80\x80\x80\x40",  # negative sign bit above bit 31 without sign bit 31
        b"\x42" + b"\x80" * 9 + b"\x01",  # s64 tenth byte not a sign copy
        b"\x42" + b"\x80" * 10 + b"\x00",  # s64 of eleven bytes
    ],
)
def test_overlong_signed_leb128_in_const_expr(init: bytes) -> None:
    globals_ = vec([b"\x7e\x00" + init + b"\x0b"])
    with pytest.raises(WasmFormatError, match="too long or out of range"):
        parse_wasm(module(section(6, globals_)))


def test_section_out_of_order() -> None:
    memory = section(5, vec([b"\x00\x01"]))
    table = section(4, vec([b"\x70\x00\x01"]))
    with pytest.raises(WasmFormatError, match="out of order"):
        parse_wasm(module(memory, table))
    # Tag (13) belongs between memory and global; data count (12) before code (10).
    tag = section(13, vec([b"\x00\x00"]))
    types = section(1, vec([b"\x60\x00\x00"]))
    globals_ = section(6, vec([b"\x7f\x00\x41\x00\x0b"]))
    assert parse_wasm(module(types, memory, tag, globals_)).defined_globals == 1
    with pytest.raises(WasmFormatError, match="out of order"):
        parse_wasm(module(types, globals_, tag))
    with pytest.raises(WasmFormatError, match="out of order"):
        parse_wasm(module(section(10, vec([])), section(12, uleb(0))))


def test_duplicate_section() -> None:
    types = section(1, vec([b"\x60\x00\x00"]))
    with pytest.raises(WasmFormatError, match="duplicated or out of order"):
        parse_wasm(module(types, types))


def test_section_size_past_end() -> None:
    with pytest.raises(WasmFormatError, match="past the end"):
        parse_wasm(HEADER + b"\x01\x05\x01\x60")
    with pytest.raises(WasmFormatError, match="past the end"):
        parse_wasm(full_module() + b"\x00\xff\xff\x03abc")


def test_huge_vector_counts_fail_fast() -> None:
    start = time.perf_counter()
    for sid in (1, 2, 3, 4, 5, 6, 7, 10, 11, 13):
        with pytest.raises(WasmFormatError, match=r"too many|exceeds the bytes left"):
            parse_wasm(module(section(sid, b"\xff\xff\xff\xff\x0f")))
    with pytest.raises(WasmFormatError, match="exceeds the bytes left"):
        parse_wasm(module(section(1, uleb(1000) + b"\x60\x00\x00")))
    with pytest.raises(WasmFormatError, match="too many function params"):
        parse_wasm(module(section(1, vec([b"\x60" + uleb(5000) + b"\x7f" * 5000 + b"\x00"]))))
    assert time.perf_counter() - start < 1.0


def test_unknown_section_id() -> None:
    with pytest.raises(WasmFormatError, match="unknown section id 14"):
        parse_wasm(module(section(14, b"")))


def test_section_content_must_be_consumed_exactly() -> None:
    with pytest.raises(WasmFormatError, match="trailing bytes"):
        parse_wasm(module(section(1, vec([b"\x60\x00\x00"]) + b"\x00")))
    with pytest.raises(WasmFormatError, match="trailing bytes"):
        parse_wasm(module(section(12, b"\x00\x00")))


def test_func_import_type_index_out_of_range() -> None:
    imports = vec([name("env") + name("f") + b"\x00" + uleb(3)])
    with pytest.raises(WasmFormatError, match="type index 3 out of range"):
        parse_wasm(module(section(1, vec([b"\x60\x00\x00"])), section(2, imports)))


@pytest.mark.parametrize(
    ("desc", "message"),
    [
        (b"\x05\x00", "invalid import kind"),
        (b"\x01\x7f\x00\x01", "invalid reference type"),
        (b"\x01\x70\x02\x01", "invalid table limits flags"),
        (b"\x02\x10\x01", "invalid memory limits flags"),
        (b"\x03\x7f\x02", "invalid global mutability"),
        (b"\x03\x40\x00", "invalid value type"),
        (b"\x04\x01\x00", "invalid tag attribute"),
    ],
)
def test_bad_import_descriptors(desc: bytes, message: str) -> None:
    imports = vec([name("env") + name("x") + desc])
    types = section(1, vec([b"\x60\x00\x00"]))
    with pytest.raises(WasmFormatError, match=message):
        parse_wasm(module(types, section(2, imports)))


def test_memory64_limits_are_u64() -> None:
    big = uleb(1 << 40)
    summary = parse_wasm(module(section(5, vec([b"\x05" + uleb(1) + big]))))
    assert summary.defined_memories == 1
    with pytest.raises(WasmFormatError, match="too long or out of range"):
        parse_wasm(module(section(5, vec([b"\x01" + uleb(1) + big]))))


def test_gc_type_forms_rejected() -> None:
    for form in (b"\x5f\x00", b"\x5e\x7f\x00", b"\x4e\x00", b"\x50\x00\x60\x00\x00"):
        with pytest.raises(WasmFormatError, match="unsupported type section form"):
            parse_wasm(module(section(1, vec([form]))))
    with pytest.raises(WasmFormatError, match="invalid type section form"):
        parse_wasm(module(section(1, vec([b"\x61\x00\x00"]))))


def test_invalid_utf8_names() -> None:
    with pytest.raises(WasmFormatError, match="UTF-8"):
        parse_wasm(module(custom(b"\xff\xfe", b"")))
    imports = vec([name(b"env\xc3") + name("f") + b"\x00\x00"])
    with pytest.raises(WasmFormatError, match="UTF-8"):
        parse_wasm(module(section(1, vec([b"\x60\x00\x00"])), section(2, imports)))


def test_unsupported_const_expr_instruction() -> None:
    for init in (b"\x01", b"\x10\x00", b"\xfd\x0d" + b"\0" * 16):
        with pytest.raises(WasmFormatError, match="unsupported instruction"):
            parse_wasm(module(section(6, vec([b"\x7f\x00" + init + b"\x0b"]))))
    endless = b"\x7f\x00" + b"\x6a" * 5000 + b"\x0b"
    with pytest.raises(WasmFormatError, match="constant expression longer"):
        parse_wasm(module(section(6, vec([endless]))))


def test_export_checks() -> None:
    func = (
        section(1, vec([b"\x60\x00\x00"])),
        section(3, vec([b"\x00"])),
    )
    code = section(10, vec([b"\x02\x00\x0b"]))
    dup = section(7, vec([name("f") + b"\x00\x00", name("f") + b"\x00\x00"]))
    with pytest.raises(WasmFormatError, match="duplicate export name"):
        parse_wasm(module(*func, dup, code))
    out_of_range = section(7, vec([name("m") + b"\x02\x00"]))
    with pytest.raises(WasmFormatError, match="exported memory index 0 out of range"):
        parse_wasm(module(*func, out_of_range, code))
    bad_kind = section(7, vec([name("x") + b"\x05\x00"]))
    with pytest.raises(WasmFormatError, match="invalid export kind"):
        parse_wasm(module(*func, bad_kind, code))


def test_start_index_out_of_range() -> None:
    with pytest.raises(WasmFormatError, match="start function index"):
        parse_wasm(module(section(8, uleb(0))))


def test_function_and_code_counts_must_agree() -> None:
    types = section(1, vec([b"\x60\x00\x00"]))
    with pytest.raises(WasmFormatError, match="code section has 0 bodies"):
        parse_wasm(module(types, section(3, vec([b"\x00"]))))
    with pytest.raises(WasmFormatError, match="code section has 1 bodies"):
        parse_wasm(module(types, section(10, vec([b"\x02\x00\x0b"]))))
    with pytest.raises(WasmFormatError, match="type index 1 out of range"):
        parse_wasm(module(types, section(3, vec([b"\x01"]))))


def test_data_segments_checks() -> None:
    memory = section(5, vec([b"\x00\x01"]))
    with pytest.raises(WasmFormatError, match="data count section says 2"):
        parse_wasm(module(memory, section(12, uleb(2)), section(11, vec([b"\x01\x00"]))))
    with pytest.raises(WasmFormatError, match="invalid data segment flags 3"):
        parse_wasm(module(memory, section(11, vec([b"\x03\x00"]))))
    with pytest.raises(WasmFormatError, match="runs past the end of its section"):
        parse_wasm(module(memory, section(11, vec([b"\x01\x10abc"]))))
    ok = module(memory, section(12, uleb(1)), section(11, vec([b"\x01\x03abc"])))
    assert parse_wasm(ok).data_bytes == 3


def test_max_bytes_limit() -> None:
    binary = full_module()
    with pytest.raises(WasmFormatError, match="exceeds the"):
        parse_wasm(binary, max_bytes=len(binary) - 1)
    with pytest.raises(WasmFormatError, match="exceeds the"):
        parse_wasm(bytearray(binary), max_bytes=10)
    assert parse_wasm(binary, max_bytes=len(binary)).kind == "core_module"


def test_error_messages_are_one_line() -> None:
    for bad in (b"garbage", HEADER + b"\x01\x05\x01\x60", module(custom(b"\xff", b""))):
        with pytest.raises(WasmFormatError) as info:
            parse_wasm(bad)
        assert "\n" not in str(info.value)
        assert isinstance(info.value, ValueError)


def test_sixteen_mib_module_parses_quickly() -> None:
    bodies = [uleb(150) + b"\x00" + b"\x01" * 148 + b"\x0b"] * 50_000
    data = b"\x00\x41\x00\x0b" + uleb(8 * 1024 * 1024) + bytes(8 * 1024 * 1024)
    binary = module(
        section(1, vec([b"\x60\x00\x00"])),
        section(3, vec([b"\x00"] * 50_000)),
        section(5, vec([b"\x00\x81\x01"])),
        section(10, vec(bodies)),
        section(11, vec([data])),
        custom("debug", bytes(1024 * 1024)),
    )
    assert len(binary) > 16 * 1024 * 1024
    start = time.perf_counter()
    summary = parse_wasm(binary)
    elapsed = time.perf_counter() - start
    assert summary.defined_functions == 50_000
    assert summary.data_bytes == 8 * 1024 * 1024
    assert summary.custom_sections == (CustomSection("debug", 1024 * 1024),)
    assert elapsed < 0.5


# --- properties -----------------------------------------------------------------------------


def _parse_or_reject(data: bytes) -> WasmSummary | None:
    try:
        summary = parse_wasm(data)
    except WasmFormatError as exc:
        assert "\n" not in str(exc)
        return None
    assert isinstance(summary, WasmSummary)
    assert set(summary.export_counts) == set(KINDS)
    return summary


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_only_raise_wasm_format_error(data: bytes) -> None:
    _parse_or_reject(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([HEADER, COMPONENT_HEADER]), st.binary(max_size=256))
def test_arbitrary_bodies_only_raise_wasm_format_error(header: bytes, body: bytes) -> None:
    _parse_or_reject(header + body)


_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 20), st.integers(1, 255)),
    st.tuples(st.just("set"), st.integers(0, 1 << 20), st.integers(0, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 20), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 20), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 20), st.just(0)),
)


def _mutate(binary: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(binary)
    for op, where, value in ops:
        if not out:
            break
        i = where % (len(out) + (op == "insert"))
        if op == "flip":
            out[i % len(out)] ^= value
        elif op == "set":
            out[i % len(out)] = value
        elif op == "truncate":
            del out[i:]
        elif op == "insert":
            out.insert(i, value)
        else:
            del out[i % len(out)]
    return bytes(out)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_mutation, min_size=1, max_size=4))
def test_mutated_module_only_raises_wasm_format_error(ops: list[tuple[str, int, int]]) -> None:
    mutated = _mutate(full_module(), ops)
    summary = _parse_or_reject(mutated)
    if summary is None:
        return
    # Whatever we accept must at least frame like the original: same kind of binary.
    assert summary.kind == "core_module"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_mutation, min_size=1, max_size=2))
def test_mutants_wasmtime_accepts_are_parsed(ops: list[tuple[str, int, int]]) -> None:
    """Differential check: a binary wasmtime validates must not be refused as malformed here.

    (GC type forms are the one deliberate exception: the sandbox disables GC.)
    """
    mutated = _mutate(full_module(), ops)
    try:
        wasmtime.Module.validate(wasmtime.Engine(), mutated)
    except wasmtime.WasmtimeError:
        return
    try:
        parse_wasm(mutated)
    except WasmFormatError as exc:
        assert "unsupported type section form" in str(exc)


def test_component_top_level_imports_are_read() -> None:
    wasm = bytes(
        wat2wasm(
            """(component
                 (import "wasi:cli/environment@0.2.0" (instance))
                 (import "palyra:skill/host@1.0.0"
                   (instance (export "log" (func (param "m" string)))))
                 (import "f" (func))
                 (import "r" (type (sub resource)))
                 (import "c" (component)))"""
        )
    )
    summary = parse_wasm(wasm)
    assert summary.kind == "component"
    assert [(i.module, i.kind) for i in summary.imports] == [
        ("wasi:cli/environment@0.2.0", "instance"),
        ("palyra:skill/host@1.0.0", "instance"),
        ("f", "func"),
        ("r", "type"),
        ("c", "component"),
    ]
