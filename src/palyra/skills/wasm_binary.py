"""A strict, bounded, pure-Python summary of a WebAssembly binary for the static audit.

Why a hand-written reader: the audit has to see what a skill *could* reach before it is ever
run — its imports with full signatures, its exports, its custom sections, how much initial data it
carries, whether it has a start function. wasmtime-py only exposes a compiled module's imported
and exported types; custom, data and internal sections are invisible to it, and getting even that
much means a full JIT compile of untrusted code. The alternative third-party parsers are young,
unpinned and far bigger than the slice of the format we need. The reader below is small enough to
review in one sitting and deliberately strict:

* it never executes or compiles anything and never imports wasmtime (the audit validates with
  wasmtime separately, so this module only has to be *at least* as strict about framing);
* every length, count and offset is checked against the bytes actually present before it is
  used, so a hostile count cannot make it allocate or loop beyond the input's size;
* counts are capped with the same limits wasmparser (wasmtime's front end) enforces, so the two
  agree on what is too big;
* it is iterative — no recursion depth depends on the input;
* code and element payloads are skipped by offset arithmetic, never walked byte by byte, so a
  16 MiB module parses in milliseconds;
* the only exception it lets out for malformed bytes is :class:`WasmFormatError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "CustomSection",
    "FuncSig",
    "WasmExport",
    "WasmFormatError",
    "WasmImport",
    "WasmSummary",
    "parse_wasm",
]


class WasmFormatError(ValueError):
    """Malformed or unsupported binary; message is one line, no traceback-worthy detail."""


@dataclass(frozen=True)
class FuncSig:
    params: tuple[str, ...]
    results: tuple[str, ...]


@dataclass(frozen=True)
class WasmImport:
    module: str
    name: str
    kind: str
    signature: FuncSig | None


@dataclass(frozen=True)
class WasmExport:
    name: str
    kind: str


@dataclass(frozen=True)
class CustomSection:
    name: str
    size: int


@dataclass(frozen=True)
class WasmSummary:
    kind: str
    imports: tuple[WasmImport, ...]
    exports: tuple[WasmExport, ...]
    custom_sections: tuple[CustomSection, ...]
    defined_functions: int
    defined_memories: int
    defined_tables: int
    defined_globals: int
    data_segments: int
    data_bytes: int
    has_start: bool
    # Excluded from the hash so a summary stays hashable despite carrying a dict.
    export_counts: dict[str, int] = field(hash=False)


# --- format constants -------------------------------------------------------------------------

_MAGIC: Final = b"\0asm"
_CORE_VERSION: Final = b"\x01\x00\x00\x00"
_COMPONENT_VERSION: Final = b"\x0d\x00\x01\x00"
_HEADER_LEN: Final = 8

_KIND_NAMES: Final[tuple[str, ...]] = ("func", "table", "memory", "global", "tag")

_VALTYPES: Final[dict[int, str]] = {
    0x7F: "i32",
    0x7E: "i64",
    0x7D: "f32",
    0x7C: "f64",
    0x7B: "v128",
    0x70: "funcref",
    0x6F: "externref",
    # Shorthands of the GC / exception-handling proposals (anyref, eqref, i31ref, structref,
    # arrayref, exnref, and the bottom types). wasmtime decides whether they are enabled; here
    # they only have to be framed correctly.
    0x6E: "ref",
    0x6D: "ref",
    0x6C: "ref",
    0x6B: "ref",
    0x6A: "ref",
    0x69: "ref",
    0x71: "ref",
    0x72: "ref",
    0x73: "ref",
    0x74: "ref",
}
# Byte -> name for the single-byte value types; "" marks bytes that are not one on their own.
_VALTYPE_TABLE: Final[tuple[str, ...]] = tuple(_VALTYPES.get(b, "") for b in range(256))
_SIMPLE_VALTYPES: Final = bytes(sorted(_VALTYPES))
_REF_NULL_HT: Final = 0x63
_REF_HT: Final = 0x64

_FUNC_TYPE_FORM: Final = 0x60
_GC_TYPE_FORMS: Final[dict[int, str]] = {
    0x4E: "rec",
    0x50: "sub",
    0x4F: "sub final",
    0x5E: "array",
    0x5F: "struct",
}

# Section ids and the canonical order rank of each non-custom core section. The tag section (13)
# sits between memory and global; data count (12) precedes code (10).
_SEC_CUSTOM: Final = 0
_SEC_TYPE: Final = 1
_SEC_IMPORT: Final = 2
_SEC_FUNCTION: Final = 3
_SEC_TABLE: Final = 4
_SEC_MEMORY: Final = 5
_SEC_GLOBAL: Final = 6
_SEC_EXPORT: Final = 7
_SEC_START: Final = 8
_SEC_ELEMENT: Final = 9
_SEC_CODE: Final = 10
_SEC_DATA: Final = 11
_SEC_DATA_COUNT: Final = 12
_SEC_TAG: Final = 13
_CORE_ORDER: Final[dict[int, int]] = {
    sid: rank for rank, sid in enumerate((1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11), start=1)
}
_SECTION_NAMES: Final[dict[int, str]] = {
    0: "custom",
    1: "type",
    2: "import",
    3: "function",
    4: "table",
    5: "memory",
    6: "global",
    7: "export",
    8: "start",
    9: "element",
    10: "code",
    11: "data",
    12: "data count",
    13: "tag",
}
# Component-model top-level section ids: custom .. export, plus 12 (value, still a proposal).
_MAX_COMPONENT_SECTION_ID: Final = 12

# Limits, matching wasmparser's (the validator wasmtime runs) where it has one, so that an
# oversized module is refused the same way by both; imports and exports use the audit's tighter
# cap. Tables and memories count imported plus defined, as wasmparser does.
MAX_IMPORTS: Final = 100_000
MAX_EXPORTS: Final = 100_000
MAX_TYPES: Final = 1_000_000
MAX_FUNCTIONS: Final = 1_000_000
MAX_GLOBALS: Final = 1_000_000
MAX_TAGS: Final = 1_000_000
MAX_TABLES: Final = 100
MAX_MEMORIES: Final = 100
MAX_DATA_SEGMENTS: Final = 100_000
MAX_FUNCTION_PARAMS: Final = 1000
MAX_FUNCTION_RESULTS: Final = 1000
MAX_STRING_BYTES: Final = 100_000
# Real binaries carry a dozen or so (name, producers, target_features, DWARF, component-type).
MAX_CUSTOM_SECTIONS: Final = 1000
# Real constant expressions are one to a handful of instructions (extended-const adds a few);
# the cap only stops a hostile expression from turning into a long interpreter loop.
MAX_CONST_EXPR_OPS: Final = 1024
DEFAULT_MAX_BYTES: Final = 64 * 1024 * 1024

# Extended-const arithmetic: i32.add/sub/mul, i64.add/sub/mul (operand-free opcodes).
_EXTENDED_CONST_OPS: Final = frozenset((0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E))
_OP_END: Final = 0x0B


class _Reader:
    """Cursor over ``buf[pos:end]``; every read checks ``end`` first, so nothing can overrun.

    A section gets its own reader whose ``end`` is the section's end, which is what turns "this
    section claims more than it holds" into an error rather than a read of the next section.
    """

    __slots__ = ("buf", "end", "pos")

    def __init__(self, buf: bytes, pos: int, end: int) -> None:
        self.buf = buf
        self.pos = pos
        self.end = end

    def fail(self, message: str, at: int | None = None) -> WasmFormatError:
        return WasmFormatError(f"{message} at offset {self.pos if at is None else at}")

    def byte(self) -> int:
        pos = self.pos
        if pos >= self.end:
            raise self.fail("unexpected end of data")
        self.pos = pos + 1
        return self.buf[pos]

    def skip(self, n: int) -> int:
        """Advance ``n`` bytes without looking at them; returns the start offset."""
        pos = self.pos
        if n < 0 or n > self.end - pos:
            raise self.fail(f"length {n} runs past the end of its section")
        self.pos = pos + n
        return pos

    def _uleb(self, max_bytes: int, last_mask: int, what: str) -> int:
        # The spec allows non-minimal encodings (toolchains pad LEBs so they can be patched in
        # place), up to ceil(N/7) bytes; the final byte must not carry bits beyond N.
        buf = self.buf
        pos = self.pos
        end = self.end
        result = 0
        shift = 0
        for i in range(max_bytes):
            if pos >= end:
                raise self.fail(f"truncated {what}", pos)
            b = buf[pos]
            pos += 1
            if i == max_bytes - 1:
                if b & last_mask:
                    raise self.fail(f"{what} is too long or out of range", pos - 1)
                result |= b << shift
                break
            result |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
        self.pos = pos
        return result

    def u32(self) -> int:
        pos = self.pos
        if pos < self.end:
            b = self.buf[pos]
            if b < 0x80:  # the overwhelmingly common one-byte case, without the loop
                self.pos = pos + 1
                return b
        return self._uleb(5, 0xF0, "u32 LEB128")

    def u64(self) -> int:
        return self._uleb(10, 0xFE, "u64 LEB128")

    def _sleb(self, bits: int, what: str) -> None:
        # Only validated, never evaluated: the audit does not need constant values. In the last
        # permitted byte, the value's sign bit and every unused bit above it must agree.
        max_bytes = (bits + 6) // 7
        sign_shift = bits - 7 * (max_bytes - 1) - 1
        all_sign = 0x7F >> sign_shift
        buf = self.buf
        pos = self.pos
        end = self.end
        for i in range(max_bytes):
            if pos >= end:
                raise self.fail(f"truncated {what}", pos)
            b = buf[pos]
            pos += 1
            if i == max_bytes - 1:
                if b & 0x80 or (b & 0x7F) >> sign_shift not in (0, all_sign):
                    raise self.fail(f"{what} is too long or out of range", pos - 1)
                break
            if b < 0x80:
                break
        self.pos = pos

    def s32(self) -> None:
        self._sleb(32, "s32 LEB128")

    def s33(self) -> None:
        self._sleb(33, "s33 LEB128")

    def s64(self) -> None:
        self._sleb(64, "s64 LEB128")

    def count(self, what: str, limit: int, min_size: int = 1) -> int:
        """Read a vector length and refuse it unless the bytes left could hold that many items.

        Nothing is ever preallocated from a count, but checking it up front also keeps the
        per-item loop bounded by the input size rather than by what the input claims.
        """
        at = self.pos
        n = self.u32()
        if n > limit:
            raise self.fail(f"too many {what} ({n} > {limit})", at)
        if n * min_size > self.end - self.pos:
            raise self.fail(f"{what} count {n} exceeds the bytes left", at)
        return n

    def name(self) -> str:
        at = self.pos
        n = self.u32()
        if n > MAX_STRING_BYTES:
            raise self.fail(f"name of {n} bytes is too long", at)
        start = self.skip(n)
        try:
            return self.buf[start : start + n].decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("name is not valid UTF-8", at) from None

    def expect_end(self, what: str) -> None:
        if self.pos != self.end:
            raise self.fail(f"{what} section has {self.end - self.pos} unread trailing bytes")


def _valtype(r: _Reader) -> str:
    at = r.pos
    b = r.byte()
    name = _VALTYPES.get(b)
    if name is not None:
        return name
    if b in (_REF_NULL_HT, _REF_HT):
        r.s33()  # heap type: an abstract type (negative) or a type index
        return "ref"
    raise r.fail(f"invalid value type 0x{b:02x}", at)


def _reftype(r: _Reader) -> None:
    at = r.pos
    name = _valtype(r)
    if name not in ("funcref", "externref", "ref"):
        raise r.fail(f"invalid reference type {name}", at)


def _limits(r: _Reader, *, memory: bool) -> None:
    # bit0: has max; bit1: shared (memories only); bit2: 64-bit indexes with u64 limits;
    # bit3: custom page size (memories only, followed by its log2).
    at = r.pos
    flags = r.byte()
    allowed = 0x0F if memory else 0x05
    if flags & ~allowed:
        raise r.fail(f"invalid {'memory' if memory else 'table'} limits flags 0x{flags:02x}", at)
    read = r.u64 if flags & 0x04 else r.u32
    read()
    if flags & 0x01:
        read()
    if flags & 0x08:
        r.u32()


def _globaltype(r: _Reader) -> None:
    _valtype(r)
    at = r.pos
    mut = r.byte()
    if mut > 1:
        raise r.fail(f"invalid global mutability 0x{mut:02x}", at)


def _const_expr(r: _Reader) -> None:
    """Frame a constant expression; stack typing is left to wasmtime's validator."""
    for _ in range(MAX_CONST_EXPR_OPS):
        at = r.pos
        op = r.byte()
        if op == _OP_END:
            return
        if op == 0x41:  # i32.const
            r.s32()
        elif op == 0x42:  # i64.const
            r.s64()
        elif op == 0x43:  # f32.const
            r.skip(4)
        elif op == 0x44:  # f64.const
            r.skip(8)
        elif op in (0x23, 0xD2):  # global.get, ref.func
            r.u32()
        elif op == 0xD0:  # ref.null
            r.s33()
        elif op == 0xFD:  # SIMD prefix: only v128.const is constant
            sub = r.u32()
            if sub != 0x0C:
                raise r.fail(f"unsupported instruction 0xfd 0x{sub:x} in constant expression", at)
            r.skip(16)
        elif op not in _EXTENDED_CONST_OPS:
            raise r.fail(f"unsupported instruction 0x{op:02x} in constant expression", at)
    raise r.fail(f"constant expression longer than {MAX_CONST_EXPR_OPS} instructions")


def _type_index(r: _Reader, st: _State) -> FuncSig:
    at = r.pos
    idx = r.u32()
    ntypes = len(st.type_offsets)
    if idx >= ntypes:
        raise r.fail(f"type index {idx} out of range ({ntypes} types)", at)
    sig = st.signatures.get(idx)
    if sig is None:
        # Already validated by the type section pass, so this decode cannot fail.
        tr = _Reader(r.buf, st.type_offsets[idx] + 1, len(r.buf))
        params = _valtype_vec(tr, "function params", MAX_FUNCTION_PARAMS)
        sig = FuncSig(params, _valtype_vec(tr, "function results", MAX_FUNCTION_RESULTS))
        st.signatures[idx] = sig
    return sig


@dataclass
class _State:
    """Everything accumulated while walking a core module's sections."""

    # Types are validated in one pass but only turned into FuncSig when an import or tag names
    # them: a hostile module can declare a million distinct types, and few are ever referenced.
    type_offsets: list[int] = field(default_factory=list)
    signatures: dict[int, FuncSig] = field(default_factory=dict)
    imports: list[WasmImport] = field(default_factory=list)
    exports: list[WasmExport] = field(default_factory=list)
    customs: list[CustomSection] = field(default_factory=list)
    imported: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])  # by kind byte
    defined_functions: int = 0
    defined_tables: int = 0
    defined_memories: int = 0
    defined_globals: int = 0
    defined_tags: int = 0
    data_segments: int = 0
    data_bytes: int = 0
    has_start: bool = False
    data_count: int | None = None
    code_count: int | None = None

    def space(self, kind: int) -> int:
        """Size of an index space: imports of that kind come first, then definitions."""
        defined = (
            self.defined_functions,
            self.defined_tables,
            self.defined_memories,
            self.defined_globals,
            self.defined_tags,
        )[kind]
        return self.imported[kind] + defined


def _valtype_vec(r: _Reader, what: str, limit: int) -> tuple[str, ...]:
    n = r.count(what, limit)
    start = r.pos
    # One C-level pass over the bytes covers every single-byte value type; only typed
    # references (0x63/0x64 + heap type) or an invalid byte need the per-item reader.
    names = tuple(map(_VALTYPE_TABLE.__getitem__, r.buf[start : start + n]))
    if "" not in names:
        r.pos = start + n
        return names
    return tuple(_valtype(r) for _ in range(n))


def _parse_type_section(r: _Reader, st: _State) -> None:
    n = r.count("types", MAX_TYPES, 2)
    buf = r.buf
    end = r.end
    offsets = st.type_offsets
    pos = r.pos
    for _ in range(n):
        offsets.append(pos)
        # Fast path for the usual shape: one-byte counts and single-byte value types, checked
        # with C-level slicing instead of a Python call per byte.
        if pos + 2 < end and buf[pos] == _FUNC_TYPE_FORM and buf[pos + 1] < 0x80:
            results_at = pos + 2 + buf[pos + 1]
            if (
                results_at < end
                and buf[results_at] < 0x80
                and not buf[pos + 2 : results_at].translate(None, _SIMPLE_VALTYPES)
            ):
                stop = results_at + 1 + buf[results_at]
                if stop <= end and not buf[results_at + 1 : stop].translate(None, _SIMPLE_VALTYPES):
                    pos = stop
                    continue
        r.pos = pos
        form = r.byte()
        if form != _FUNC_TYPE_FORM:
            gc = _GC_TYPE_FORMS.get(form)
            if gc is not None:
                raise r.fail(f"unsupported type section form 0x{form:02x} ({gc}, GC proposal)", pos)
            raise r.fail(f"invalid type section form 0x{form:02x}", pos)
        _valtype_vec(r, "function params", MAX_FUNCTION_PARAMS)
        _valtype_vec(r, "function results", MAX_FUNCTION_RESULTS)
        pos = r.pos
    r.pos = pos


def _parse_import_section(r: _Reader, st: _State) -> None:
    n = r.count("imports", MAX_IMPORTS, 4)
    for _ in range(n):
        module = r.name()
        name = r.name()
        at = r.pos
        kind = r.byte()
        sig: FuncSig | None = None
        if kind == 0:
            sig = _type_index(r, st)
        elif kind == 1:
            _reftype(r)
            _limits(r, memory=False)
        elif kind == 2:
            _limits(r, memory=True)
        elif kind == 3:
            _globaltype(r)
        elif kind == 4:
            _tagtype(r, st)
        else:
            raise r.fail(f"invalid import kind 0x{kind:02x}", at)
        st.imported[kind] += 1
        st.imports.append(WasmImport(module, name, _KIND_NAMES[kind], sig))
    if st.imported[1] > MAX_TABLES:
        raise r.fail(f"too many tables (> {MAX_TABLES})")
    if st.imported[2] > MAX_MEMORIES:
        raise r.fail(f"too many memories (> {MAX_MEMORIES})")


def _tagtype(r: _Reader, st: _State) -> None:
    at = r.pos
    attribute = r.byte()
    if attribute != 0:
        raise r.fail(f"invalid tag attribute 0x{attribute:02x}", at)
    _type_index(r, st)


def _parse_function_section(r: _Reader, st: _State) -> None:
    n = r.count("functions", MAX_FUNCTIONS - st.imported[0])
    ntypes = len(st.type_offsets)
    payload = r.buf[r.pos : r.end]
    if len(payload) == n and (n == 0 or max(payload) < min(0x80, ntypes)):
        # Fast path: every type index is a one-byte LEB and in range (checked at C speed).
        r.pos = r.end
    else:
        for _ in range(n):
            at = r.pos
            idx = r.u32()
            if idx >= ntypes:
                raise r.fail(f"type index {idx} out of range ({ntypes} types)", at)
    st.defined_functions = n


def _parse_table_section(r: _Reader, st: _State) -> None:
    n = r.count("tables", MAX_TABLES - st.imported[1], 2)
    for _ in range(n):
        if r.pos < r.end and r.buf[r.pos] == 0x40:
            # Function-references form: 0x40 0x00 tabletype initializer-expression.
            r.pos += 1
            at = r.pos
            if r.byte() != 0:
                raise r.fail("invalid table initializer prefix", at)
            _reftype(r)
            _limits(r, memory=False)
            _const_expr(r)
        else:
            _reftype(r)
            _limits(r, memory=False)
    st.defined_tables = n


def _parse_memory_section(r: _Reader, st: _State) -> None:
    n = r.count("memories", MAX_MEMORIES - st.imported[2], 2)
    for _ in range(n):
        _limits(r, memory=True)
    st.defined_memories = n


def _parse_tag_section(r: _Reader, st: _State) -> None:
    n = r.count("tags", MAX_TAGS - st.imported[4], 2)
    for _ in range(n):
        _tagtype(r, st)
    st.defined_tags = n


def _parse_global_section(r: _Reader, st: _State) -> None:
    n = r.count("globals", MAX_GLOBALS - st.imported[3], 3)
    for _ in range(n):
        _globaltype(r)
        _const_expr(r)
    st.defined_globals = n


def _parse_export_section(r: _Reader, st: _State) -> None:
    n = r.count("exports", MAX_EXPORTS, 3)
    seen: set[str] = set()
    for _ in range(n):
        at = r.pos
        name = r.name()
        if name in seen:
            # Two exports with one name would let the audit and the runtime disagree about
            # which one a caller reaches.
            raise r.fail(f"duplicate export name {name!r}", at)
        seen.add(name)
        kat = r.pos
        kind = r.byte()
        if kind >= len(_KIND_NAMES):
            raise r.fail(f"invalid export kind 0x{kind:02x}", kat)
        iat = r.pos
        idx = r.u32()
        if idx >= st.space(kind):
            raise r.fail(f"exported {_KIND_NAMES[kind]} index {idx} out of range", iat)
        st.exports.append(WasmExport(name, _KIND_NAMES[kind]))


def _parse_start_section(r: _Reader, st: _State) -> None:
    at = r.pos
    idx = r.u32()
    if idx >= st.space(0):
        raise r.fail(f"start function index {idx} out of range", at)
    st.has_start = True


def _parse_data_count_section(r: _Reader, st: _State) -> None:
    at = r.pos
    n = r.u32()
    if n > MAX_DATA_SEGMENTS:
        raise r.fail(f"too many data segments ({n} > {MAX_DATA_SEGMENTS})", at)
    st.data_count = n


def _parse_code_section(r: _Reader, st: _State) -> None:
    # Bodies are only framed (size + skip), never decoded: the count must match the function
    # section, and every body must lie inside the section.
    n = r.count("function bodies", MAX_FUNCTIONS)
    for _ in range(n):
        r.skip(r.u32())
    st.code_count = n


def _parse_data_section(r: _Reader, st: _State) -> None:
    n = r.count("data segments", MAX_DATA_SEGMENTS, 2)
    total = 0
    for _ in range(n):
        at = r.pos
        flag = r.u32()
        if flag == 0:
            _const_expr(r)
        elif flag == 2:
            r.u32()  # memory index
            _const_expr(r)
        elif flag != 1:
            raise r.fail(f"invalid data segment flags {flag}", at)
        size = r.u32()
        r.skip(size)
        total += size
    st.data_segments = n
    st.data_bytes = total


def _parse_element_section(r: _Reader, st: _State) -> None:
    del st
    r.pos = r.end  # skipped by size; wasmtime's validator owns its contents


_SECTION_PARSERS: Final = {
    _SEC_TYPE: _parse_type_section,
    _SEC_IMPORT: _parse_import_section,
    _SEC_FUNCTION: _parse_function_section,
    _SEC_TABLE: _parse_table_section,
    _SEC_MEMORY: _parse_memory_section,
    _SEC_TAG: _parse_tag_section,
    _SEC_GLOBAL: _parse_global_section,
    _SEC_EXPORT: _parse_export_section,
    _SEC_START: _parse_start_section,
    _SEC_ELEMENT: _parse_element_section,
    _SEC_DATA_COUNT: _parse_data_count_section,
    _SEC_CODE: _parse_code_section,
    _SEC_DATA: _parse_data_section,
}


def _custom_section(r: _Reader) -> CustomSection:
    name = r.name()
    return CustomSection(name, r.end - r.pos)


def _sections(buf: bytes) -> Iterator[tuple[int, int, int]]:
    """Yield the ``(id, start, end)`` frames after the header, each checked to lie in ``buf``."""
    r = _Reader(buf, _HEADER_LEN, len(buf))
    customs = 0
    while r.pos < r.end:
        at = r.pos
        sid = r.byte()
        size = r.u32()
        start = r.pos
        if size > r.end - start:
            raise r.fail(f"section {sid} of {size} bytes runs past the end of the binary", start)
        if sid == _SEC_CUSTOM:
            # Nothing else bounds them: each one is a few bytes and becomes a summary entry.
            customs += 1
            if customs > MAX_CUSTOM_SECTIONS:
                raise r.fail(f"more than {MAX_CUSTOM_SECTIONS} custom sections", at)
        r.pos = start + size
        yield sid, start, start + size


def _parse_core(buf: bytes) -> WasmSummary:
    st = _State()
    last_rank = 0
    for sid, start, end in _sections(buf):
        r = _Reader(buf, start, end)
        if sid == _SEC_CUSTOM:
            st.customs.append(_custom_section(r))
            continue
        rank = _CORE_ORDER.get(sid)
        if rank is None:
            raise WasmFormatError(f"unknown section id {sid} at offset {start}")
        if rank <= last_rank:
            raise WasmFormatError(
                f"{_SECTION_NAMES[sid]} section duplicated or out of order at offset {start}"
            )
        last_rank = rank
        _SECTION_PARSERS[sid](r, st)
        r.expect_end(_SECTION_NAMES[sid])

    code_count = st.code_count or 0
    if code_count != st.defined_functions:
        raise WasmFormatError(
            f"function section declares {st.defined_functions} functions "
            f"but the code section has {code_count} bodies"
        )
    if st.data_count is not None and st.data_count != st.data_segments:
        raise WasmFormatError(
            f"data count section says {st.data_count} segments "
            f"but the data section has {st.data_segments}"
        )

    export_counts = dict.fromkeys(_KIND_NAMES, 0)
    for e in st.exports:
        export_counts[e.kind] += 1
    return WasmSummary(
        kind="core_module",
        imports=tuple(st.imports),
        exports=tuple(st.exports),
        custom_sections=tuple(st.customs),
        defined_functions=st.defined_functions,
        defined_memories=st.defined_memories,
        defined_tables=st.defined_tables,
        defined_globals=st.defined_globals,
        data_segments=st.data_segments,
        data_bytes=st.data_bytes,
        has_start=st.has_start,
        export_counts=export_counts,
    )


_COMPONENT_IMPORT_SECTION = 10
_COMPONENT_IMPORT_KINDS = {0x01: "func", 0x03: "type", 0x04: "component", 0x05: "instance"}


def _component_imports(r: _Reader) -> list[WasmImport]:
    """Top-level component imports: ``importname'`` then ``externdesc`` (typeidx forms only).

    Interfaces such as ``wasi:sockets/tcp@0.2.0`` are instance imports; the name is what the
    audit judges, so it is recorded in ``module`` with the kind in ``kind``.
    """
    imports: list[WasmImport] = []
    for _ in range(r.count("component imports", MAX_IMPORTS, 3)):
        discriminator = r.byte()
        if discriminator not in (0x00, 0x01):
            raise r.fail(f"unsupported component import name form 0x{discriminator:02x}")
        name = r.name()
        tag = r.byte()
        if tag == 0x00:  # core module: 0x11 typeidx
            if r.byte() != 0x11:
                raise r.fail("malformed core module import")
            r.u32()
            kind = "module"
        elif tag in _COMPONENT_IMPORT_KINDS:
            if tag == 0x03:  # type bound: eq typeidx | sub resource
                bound = r.byte()
                if bound == 0x00:
                    r.u32()
                elif bound != 0x01:
                    raise r.fail(f"unknown type bound 0x{bound:02x}")
            else:
                r.u32()
            kind = _COMPONENT_IMPORT_KINDS[tag]
        elif tag == 0x02:
            raise r.fail("component value imports are not supported")
        else:
            raise r.fail(f"unknown component import kind 0x{tag:02x}")
        imports.append(WasmImport(module=name, name="", kind=kind, signature=None))
    r.expect_end("component import section")
    return imports


def _parse_component(buf: bytes) -> WasmSummary:
    # The top-level framing is checked, top-level custom sections listed and top-level imports
    # read (what the component asks its host for); nested modules are not walked.
    customs: list[CustomSection] = []
    imports: list[WasmImport] = []
    for sid, start, end in _sections(buf):
        if sid > _MAX_COMPONENT_SECTION_ID:
            raise WasmFormatError(f"unknown component section id {sid} at offset {start}")
        if sid == _SEC_CUSTOM:
            customs.append(_custom_section(_Reader(buf, start, end)))
        elif sid == _COMPONENT_IMPORT_SECTION:
            imports.extend(_component_imports(_Reader(buf, start, end)))
            if len(imports) > MAX_IMPORTS:
                raise WasmFormatError("too many component imports")
    return WasmSummary(
        kind="component",
        imports=tuple(imports),
        exports=(),
        custom_sections=tuple(customs),
        defined_functions=0,
        defined_memories=0,
        defined_tables=0,
        defined_globals=0,
        data_segments=0,
        data_bytes=0,
        has_start=False,
        export_counts=dict.fromkeys(_KIND_NAMES, 0),
    )


def _check_header(buf: bytes) -> str:
    if not buf.startswith(_MAGIC):
        if len(buf) < len(_MAGIC) and buf and _MAGIC.startswith(buf):
            raise WasmFormatError(f"truncated WebAssembly header ({len(buf)} of 8 bytes)")
        if buf[:64].lstrip().startswith((b"(", b";;")):
            raise WasmFormatError("not a WebAssembly binary (looks like WAT text)")
        raise WasmFormatError("not a WebAssembly binary (bad magic)")
    if len(buf) < _HEADER_LEN:
        raise WasmFormatError(f"truncated WebAssembly header ({len(buf)} of 8 bytes)")
    version = buf[4:_HEADER_LEN]
    if version == _CORE_VERSION:
        return "core_module"
    if version == _COMPONENT_VERSION:
        return "component"
    number = int.from_bytes(version[:2], "little")
    layer = int.from_bytes(version[2:], "little")
    if layer == 0:
        raise WasmFormatError(f"unsupported WebAssembly version {number}")
    if layer == 1:
        raise WasmFormatError(f"unsupported component binary version 0x{number:x}")
    raise WasmFormatError(f"unsupported WebAssembly layer {layer}")


def parse_wasm(
    data: bytes | bytearray | memoryview, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> WasmSummary:
    """Summarise a core module or component without compiling or running it.

    Raises :class:`WasmFormatError` for anything that is not a well-formed binary within the
    limits above. A ``bytearray`` or ``memoryview`` is copied to ``bytes`` first so a caller
    mutating it concurrently cannot change what is being parsed mid-way.
    """
    size = len(data) if isinstance(data, bytes) else memoryview(data).nbytes
    if size > max_bytes:  # checked before copying a possibly huge buffer
        raise WasmFormatError(f"binary of {size} bytes exceeds the {max_bytes}-byte limit")
    buf = data if isinstance(data, bytes) else memoryview(data).tobytes()
    if _check_header(buf) == "component":
        return _parse_component(buf)
    return _parse_core(buf)
