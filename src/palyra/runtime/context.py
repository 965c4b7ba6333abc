"""Per-call state and the host functions of both guest ABIs.

A :class:`CallContext` exists for exactly one call. Host functions are plain methods taking
the caller's store context and the raw i32/i64 arguments; they never raise into the guest for
bad input — they return the data ABI's negative codes (docs/abi.md) — and every guest pointer
and length is masked to u32 and checked against the current memory size before memory is
touched (wasmtime-py's own ``Memory.read`` would silently read with Python slice semantics).
"""

from __future__ import annotations

import ctypes
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from palyra.abi import HostCode
from palyra.runtime import ffi
from palyra.runtime.channels import ChannelMessage, ChannelSink, LogChannelSink
from palyra.runtime.limits import RuntimeLimits
from palyra.runtime.storage import SkillStorage, StorageError
from palyra.runtime.vault import Vault

if TYPE_CHECKING:  # httpx is imported only when a guest actually makes a request
    from palyra.runtime.egress import EgressClient, HttpResponse, Resolver

T = TypeVar("T")

MASK32 = 0xFFFF_FFFF
REDACTED = b"[REDACTED]"

OK = 0
DENIED = int(HostCode.DENIED)
INVALID = int(HostCode.INVALID)
NOT_FOUND = int(HostCode.NOT_FOUND)
TOO_LARGE = int(HostCode.TOO_LARGE)
UPSTREAM = int(HostCode.UPSTREAM)
QUOTA = int(HostCode.QUOTA)
CODES = {code.name: int(code) for code in HostCode}
LOG_LEVELS = ("trace", "debug", "info", "warn", "error")
COMPAT_BASES = {"http": 10_000, "secret": 20_000, "storage": 30_000, "channel": 40_000}
MAX_RANDOM = 65_536


MAX_SECRET_REF_BYTES = 1024  # "<scope>/<key>"


@dataclass(frozen=True)
class CallGrants:
    """What this call may reach: the manifest's declaration ∩ the operator's policy."""

    http_hosts: tuple[str, ...] = ()
    allow_http: bool = False
    allow_private_network: bool = False
    allow_wildcards: bool = False
    allowed_ports: frozenset[int] | None = None
    secrets: frozenset[tuple[str, str]] = frozenset()
    storage_read: tuple[str, ...] = ()
    storage_write: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()

    def compat_lists(self) -> dict[str, list[str]]:
        """The reference ABI's canonical lists (trimmed, sorted, de-duplicated)."""

        def canonical(items: Iterable[str]) -> list[str]:
            return sorted({item.strip() for item in items if item.strip()})

        return {
            "http": canonical(self.http_hosts),
            "secret": canonical(f"{scope}/{key}" for scope, key in self.secrets),
            "storage": canonical(self.storage_write),
            "channel": canonical(self.channels),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "http_hosts": list(self.http_hosts),
            "secrets": sorted(f"{scope}/{key}" for scope, key in self.secrets),
            "storage_read": list(self.storage_read),
            "storage_write": list(self.storage_write),
            "channels": list(self.channels),
        }


@dataclass
class HostServices:
    """Long-lived services shared by calls (state root for storage, vault, channel sink)."""

    state_root: Path | None = None  # storage lives in <state_root>/skill-data/<skill_id>/
    storage_root: Path | None = None  # overrides the above with one directory (development)
    vault: Vault | None = None
    channel_sink: ChannelSink = field(default_factory=LogChannelSink)
    resolver: Resolver | None = None
    ca_bundle: str | None = None
    storage_quota_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True)
class LogLine:
    level: str
    message: str
    at_ms: float

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "message": self.message, "at_ms": round(self.at_ms, 3)}


class CallContext:
    def __init__(
        self,
        *,
        skill_id: str,
        tool_id: str,
        input_bytes: bytes,
        grants: CallGrants,
        tool_name: str | None = None,
        limits: RuntimeLimits,
        services: HostServices,
        deadline: float,
    ) -> None:
        self.skill_id = skill_id
        self.tool_id = tool_id.encode()
        self.tool_name = tool_name or tool_id.rpartition(".")[2]
        self.input = input_bytes
        self.grants = grants
        self.limits = limits
        self.services = services
        self.deadline = deadline
        self.started = time.monotonic()
        self.memory: Any = None
        self.mem_base = 0
        self._memory_looked_up = False
        self.mem_size = 0  # a lower bound of the memory's size; 0 until first needed
        self.output = bytearray()
        self.output_overflow = False
        self.result = b""
        self.logs: list[LogLine] = []
        self.log_bytes = 0
        self.dropped_logs = 0
        self.channel_messages = 0
        self.host_error: BaseException | None = None
        self._secrets: set[bytes] = set()
        self._egress: EgressClient | None = None
        self._storage: SkillStorage | None = None
        self._compat: dict[str, list[str]] | None = None
        self.denied: list[str] = []  # capabilities refused during this call
        # Granted secrets the vault did not have: the daemon turns a failure after one of
        # these into "missing_secrets", so only the tools that need a secret are blocked.
        self.missing_secrets: set[str] = set()
        self.http_failure = ""  # set when http_exchange fails before reaching the firewall
        self._stdio: dict[str, bytearray] = {}

    # ---- guest memory -----------------------------------------------------------------------

    def _base(self, caller: Any, end: int) -> int | None:
        """Address of guest memory if [0, end) is inside it, else None.

        Memories never move (the engine disables it), and never shrink, so a size that was
        once large enough stays large enough: only a miss asks wasmtime for the current size.
        """
        if end <= self.mem_size:
            return self.mem_base
        if self.memory is None:
            # The native call path keeps the memory handle in C; look it up once per call.
            if self._memory_looked_up:
                return None
            self._memory_looked_up = True
            self.memory = ffi.caller_memory(caller)
            if self.memory is None:
                return None
        self.mem_base, self.mem_size = ffi.memory_span(ffi.caller_context(caller), self.memory)
        return self.mem_base if end <= self.mem_size else None

    def read(self, caller: Any, ptr: int, length: int, limit: int | None = None) -> bytes | None:
        """Bytes [ptr, ptr+length) of guest memory (only the first ``limit`` if given), or None
        when the whole range is not inside memory."""
        ptr &= MASK32
        length &= MASK32
        base = self._base(caller, ptr + length)
        if base is None:
            return None
        if limit is not None:
            length = min(length, limit)
        return ctypes.string_at(base + ptr, length) if length else b""

    def write(self, caller: Any, ptr: int, data: bytes, span: int | None = None) -> bool:
        """Write ``data`` at ``ptr``; the whole guest buffer [ptr, ptr+span) must be in memory."""
        ptr &= MASK32
        span = len(data) if span is None else span & MASK32
        base = self._base(caller, ptr + max(span, len(data)))
        if base is None:
            return False
        if data:
            ctypes.memmove(base + ptr, data, len(data))
        return True

    def _copy_out(self, caller: Any, ptr: int, length: int, data: bytes) -> int:
        chunk = data[: length & MASK32]
        return len(chunk) if self.write(caller, ptr, chunk, length) else INVALID

    def _text(self, caller: Any, ptr: int, length: int, limit: int = 4096) -> str | None:
        if (length & MASK32) > limit:
            return None
        raw = self.read(caller, ptr, length)
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return None

    # ---- redaction --------------------------------------------------------------------------

    def remember_secret(self, value: bytes) -> None:
        if len(value) >= 4:  # shorter values would redact ordinary text
            self._secrets.add(value)

    def redact(self, data: bytes) -> bytes:
        if not self._secrets:
            return data
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in data:
                data = data.replace(secret, REDACTED)
        return data

    def _trim_secret_tail(self, data: bytes) -> bytes:
        for secret in self._secrets:
            for size in range(min(len(secret) - 1, len(data)), 3, -1):
                if data.endswith(secret[:size]):
                    return data[:-size] + REDACTED
        return data

    def redact_text(self, text: str) -> str:
        if not self._secrets:
            return text
        return self.redact(text.encode("utf-8", "surrogatepass")).decode("utf-8", "replace")

    # ---- data ABI: input, output, logs, metadata --------------------------------------------

    def input_len(self, caller: Any) -> int:
        return len(self.input)

    def input_read(self, caller: Any, ptr: int, length: int) -> int:
        return self._copy_out(caller, ptr, length, self.input)

    def output_write(self, caller: Any, ptr: int, length: int) -> int:
        length &= MASK32
        if len(self.output) + length > self.limits.max_output_bytes:
            self.output_overflow = True
            return TOO_LARGE
        data = self.read(caller, ptr, length)
        if data is None:
            return INVALID
        self.output += data
        return len(self.output)

    def log(self, caller: Any, level: int, ptr: int, length: int) -> int:
        if self.logs_full():
            self.dropped_logs += 1
            return QUOTA
        longest = max((len(secret) for secret in self._secrets), default=0)
        data = self.read(caller, ptr, length & MASK32, self.limits.max_log_line_bytes + longest)
        if data is None:
            return INVALID
        name = LOG_LEVELS[level] if 0 <= level < len(LOG_LEVELS) else "info"
        return self.append_log(name, data)

    def logs_full(self) -> bool:
        return (
            len(self.logs) >= self.limits.max_log_lines
            or self.log_bytes >= self.limits.max_log_bytes
        )

    def append_log(self, level: str, data: bytes) -> int:
        """Add one log line: redacted first, then cut to the per-line and total caps (a trailing
        fragment of a secret that the cut exposed is dropped too)."""
        if self.logs_full():
            self.dropped_logs += 1
            return QUOTA
        cap = min(self.limits.max_log_line_bytes, self.limits.max_log_bytes - self.log_bytes)
        data = self._trim_secret_tail(self.redact(data)[:cap])
        self.log_bytes += len(data)
        message = data.decode("utf-8", "replace")
        self.logs.append(LogLine(level, message, (time.monotonic() - self.started) * 1000))
        return OK

    def stdio_sink(self, level: str) -> Callable[[bytes], int]:
        """A WASI stdout/stderr callback: complete lines become log lines under the usual
        caps; everything over the caps is dropped (and counted) but reported as written, so
        a chatty guest is neither stalled nor failed by its own output."""
        pending = self._stdio.setdefault(level, bytearray())
        limit = self.limits.max_log_line_bytes

        def write(data: bytes) -> int:
            if self.logs_full():
                if data:
                    self.dropped_logs += 1
                return len(data)
            if len(data) > limit * 4:
                self.dropped_logs += 1
            pending.extend(data[: limit * 4])
            while pending:
                cut = pending.find(b"\n")
                if cut >= 0:  # a whole line: log it, drop the newline
                    self.append_log(level, bytes(pending[:cut]))
                    del pending[: cut + 1]
                elif len(pending) >= limit:  # an endless line: log it in line-sized pieces
                    self.append_log(level, bytes(pending[:limit]))
                    del pending[:limit]
                else:
                    break
            return len(data)

        return write

    def flush_stdio(self) -> None:
        for level, pending in self._stdio.items():
            if pending:
                self.append_log(level, bytes(pending))
                pending.clear()

    def last_egress_reason(self) -> str:
        """Why the last ``http_exchange`` failed: a secret it could not inject, else the
        firewall's reason for the request it refused."""
        if self.http_failure:
            return self.http_failure
        if self._egress is None or not self._egress.records:
            return ""
        return self._egress.records[-1].reason[:300]

    def tool_id_read(self, caller: Any, ptr: int, length: int) -> int:
        copied = self._copy_out(caller, ptr, length, self.tool_id)
        return len(self.tool_id) if copied >= 0 else copied

    def result_len(self, caller: Any) -> int:
        return len(self.result)

    def result_read(self, caller: Any, ptr: int, length: int) -> int:
        return self._copy_out(caller, ptr, length, self.result)

    def clock_now_ms(self, caller: Any) -> int:
        return time.time_ns() // 1_000_000

    def random_fill(self, caller: Any, ptr: int, length: int) -> int:
        length &= MASK32
        if length > MAX_RANDOM:
            return TOO_LARGE
        return length if self.write(caller, ptr, os.urandom(length)) else INVALID

    def _set_result(self, data: bytes) -> int:
        if len(data) > self.limits.max_result_bytes:
            self.result = b""
            return TOO_LARGE
        self.result = data
        return len(data)

    # ---- HTTP --------------------------------------------------------------------------------

    def egress(self) -> EgressClient:
        from palyra.runtime.egress import EgressClient, EgressPolicy

        if self._egress is None:
            g = self.grants
            policy = EgressPolicy(
                allowed_hosts=g.http_hosts,
                allow_wildcards=g.allow_wildcards,
                allow_http=g.allow_http,
                allow_private_network=g.allow_private_network,
                allowed_ports=g.allowed_ports,
                max_request_bytes=self.limits.max_http_request_bytes,
                max_response_bytes=self.limits.max_http_response_bytes,
                max_requests=self.limits.max_http_requests,
                ca_bundle=self.services.ca_bundle,
            )
            self._egress = EgressClient(
                policy, resolver=self.services.resolver, redact=self.redact_text
            )
        return self._egress

    def egress_records(self) -> list[dict[str, Any]]:
        return [] if self._egress is None else [r.to_json() for r in self._egress.records]

    def close(self) -> None:
        if self._egress is not None:
            self._egress.close()

    def http_request(self, caller: Any, ptr: int, length: int) -> int:
        if not self.grants.http_hosts:
            return self.deny("http")
        if (length & MASK32) > self.limits.max_http_request_bytes:
            return TOO_LARGE
        raw = self.read(caller, ptr, length)
        if raw is None:
            return INVALID
        request = _parse_http_request(raw)
        if request is None:
            return INVALID
        response = self.http_exchange(*request)
        if isinstance(response, int):
            return response
        code = self._set_result(response.body)
        return code if code < 0 else response.status

    def http_exchange(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        injections: dict[str, tuple[str, str, str]],
    ) -> HttpResponse | int:
        """One exchange through the egress firewall, with secrets injected as credential
        headers (dropped on any cross-origin redirect); a negative code on failure."""
        self.http_failure = ""
        if not self.grants.http_hosts:
            return self.deny("http")
        credentials: dict[str, str] = {}
        for header, (ref, prefix, suffix) in injections.items():
            scope, _, key = ref.rpartition("/")
            value = self.secret_value(scope, key)
            if isinstance(value, int):
                what = {DENIED: "is not granted", NOT_FOUND: "has no value in the vault"}
                self.http_failure = (
                    f"secret '{ref[:200]}' for header '{header[:64]}' "
                    f"{what.get(value, 'is not a valid reference')}"
                )
                return value
            credentials[header] = prefix + value.decode("utf-8", "replace") + suffix
        from palyra.runtime.egress import EgressError

        try:
            return self.egress().request(
                method,
                url,
                headers=headers,
                credential_headers=credentials,
                body=body,
                deadline=self.deadline,
            )
        except EgressError as exc:
            if int(exc.code) == DENIED:
                return self.deny("http")
            return int(exc.code)

    # ---- secrets -----------------------------------------------------------------------------

    def secret_value(self, scope: str, key: str) -> bytes | int:
        """A granted secret's value. No secret grant at all is DENIED whatever is asked; a
        reference too long to be one is INVALID; any other ungranted one is DENIED."""
        if not self.grants.secrets:
            return self.deny("secrets")
        ref_bytes = len(f"{scope}/{key}".encode("utf-8", "surrogatepass"))
        if ref_bytes > MAX_SECRET_REF_BYTES:
            return INVALID
        if (scope, key) not in self.grants.secrets:
            return self.deny("secrets")
        vault = self.services.vault
        value = None if vault is None else vault.get(scope, key)
        if value is None:
            if len(self.missing_secrets) < 64:
                self.missing_secrets.add(f"{scope}/{key}")
            return NOT_FOUND
        self.remember_secret(value)
        return value

    def secret_get(self, caller: Any, ptr: int, length: int) -> int:
        if not self.grants.secrets:
            return self.deny("secrets")
        ref = self._text(caller, ptr, length, MAX_SECRET_REF_BYTES)
        if ref is None or "/" not in ref:
            return INVALID
        scope, _, key = ref.rpartition("/")
        value = self.secret_value(scope, key)
        if isinstance(value, int):
            return value
        return self._set_result(value)

    # ---- storage -----------------------------------------------------------------------------

    def storage(self) -> SkillStorage | None:
        if self._storage is None:
            services = self.services
            if services.storage_root is not None:
                root = services.storage_root
            elif services.state_root is not None:
                root = services.state_root / "skill-data" / self.skill_id
            else:
                return None
            self._storage = SkillStorage(
                root=root,
                read_prefixes=self.grants.storage_read,
                write_prefixes=self.grants.storage_write,
                quota_bytes=self.services.storage_quota_bytes,
                max_value_bytes=self.limits.max_storage_value_bytes,
            )
        return self._storage

    def storage_op(self, op: Callable[[SkillStorage], T]) -> T | int:
        """Run ``op`` on the skill's storage; a negative code when denied or failed."""
        if not (self.grants.storage_read or self.grants.storage_write):
            return self.deny("storage")
        storage = self.storage()
        if storage is None:
            return self.deny("storage")
        try:
            return op(storage)
        except StorageError as exc:
            if exc.code == "DENIED":
                return self.deny("storage")
            return CODES[exc.code]
        except OSError:
            return INVALID

    def _storage_call(self, op: Callable[[SkillStorage], int]) -> int:
        return self.storage_op(op)

    def _storage_key(self, caller: Any, ptr: int, length: int) -> str | int:
        """The key argument of a storage call, or a code: the grant is checked first, so a
        skill without storage is told ``DENIED`` whatever it passes (as on the component
        ABI)."""
        if not (self.grants.storage_read or self.grants.storage_write):
            return self.deny("storage")
        key = self._text(caller, ptr, length, 512)
        return INVALID if key is None else key

    def storage_get(self, caller: Any, ptr: int, length: int) -> int:
        key = self._storage_key(caller, ptr, length)
        if isinstance(key, int):
            return key
        return self._storage_call(lambda s: self._set_result(s.get(key)))

    def storage_put(self, caller: Any, kptr: int, klen: int, vptr: int, vlen: int) -> int:
        key = self._storage_key(caller, kptr, klen)
        if isinstance(key, int):
            return key
        if (vlen & MASK32) > self.limits.max_storage_value_bytes:
            # Refused before the value is copied out of the guest; the key's own grant decides
            # between DENIED and TOO_LARGE, as SkillStorage.put does on the component ABI.
            def too_large(storage: SkillStorage) -> int:
                storage.check_writable(key)
                return TOO_LARGE

            return self._storage_call(too_large)
        value = self.read(caller, vptr, vlen)
        if value is None:
            return INVALID

        def put(storage: SkillStorage) -> int:
            storage.put(key, value)
            return OK

        return self._storage_call(put)

    def storage_delete(self, caller: Any, ptr: int, length: int) -> int:
        key = self._storage_key(caller, ptr, length)
        if isinstance(key, int):
            return key

        def delete(storage: SkillStorage) -> int:
            storage.delete(key)
            return OK

        return self._storage_call(delete)

    def storage_list(self, caller: Any, ptr: int, length: int) -> int:
        prefix = self._storage_key(caller, ptr, length)
        if isinstance(prefix, int):
            return prefix

        def listing(storage: SkillStorage) -> int:
            keys = storage.list(prefix)
            code = self._set_result(json.dumps(keys).encode())
            return code if code < 0 else len(keys)

        return self._storage_call(listing)

    # ---- channels ----------------------------------------------------------------------------

    def channel_send(self, caller: Any, cptr: int, clen: int, mptr: int, mlen: int) -> int:
        if not self.grants.channels:
            return self.deny("channels")
        if (clen & MASK32) > 256:
            # Longer than any name that can be granted: DENIED (recorded, as on the component
            # ABI) when the range lies in guest memory, INVALID when it does not.
            in_memory = self.read(caller, cptr, clen, limit=0) is not None
            return self.deny("channels") if in_memory else INVALID
        channel = self._text(caller, cptr, clen, 256)
        if channel is None:
            return INVALID
        if (mlen & MASK32) > self.limits.max_channel_message_bytes:
            return TOO_LARGE if channel in self.grants.channels else self.deny("channels")
        raw = self.read(caller, mptr, mlen)
        if raw is None:
            return INVALID
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return INVALID
        return self.send_to_channel(channel, text)

    def send_to_channel(self, channel: str, text: str) -> int:
        if channel not in self.grants.channels:
            return self.deny("channels")
        if len(text.encode("utf-8", "surrogatepass")) > self.limits.max_channel_message_bytes:
            return TOO_LARGE
        if self.channel_messages >= self.limits.max_channel_messages:
            return QUOTA
        self.channel_messages += 1
        try:
            self.services.channel_sink.send(
                ChannelMessage(self.skill_id, channel, self.redact_text(text))
            )
        except Exception:  # a failing sink is the upstream's problem, reported as such
            return UPSTREAM
        return OK

    def deny(self, capability: str) -> int:
        """Record a refused capability (reported with the call's outcome) and return DENIED."""
        if len(self.denied) < 64:
            self.denied.append(capability)
        return DENIED

    # ---- compat ABI --------------------------------------------------------------------------

    def _compat_lists(self) -> dict[str, list[str]]:
        if self._compat is None:
            self._compat = self.grants.compat_lists()
        return self._compat

    def compat_count(self, family: str) -> int:
        return len(self._compat_lists()[family])

    def compat_handle(self, family: str, index: int) -> int:
        if 0 <= index < len(self._compat_lists()[family]):
            return COMPAT_BASES[family] + index
        return -1


def _parse_http_request(
    raw: bytes,
) -> tuple[str, str, dict[str, str], bytes, dict[str, tuple[str, str, str]]] | None:
    """Decode the guest's request JSON (docs/abi.md); None when malformed."""
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("url"), str):
        return None
    method = doc.get("method", "GET")
    headers = doc.get("headers", {})
    body = doc.get("body", "")
    injections_raw = doc.get("secret_headers", {})
    if not isinstance(method, str) or not isinstance(body, str):
        return None
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        return None
    if not isinstance(injections_raw, dict):
        return None
    injections: dict[str, tuple[str, str, str]] = {}
    for header, spec in injections_raw.items():
        if not isinstance(header, str) or not isinstance(spec, dict):
            return None
        ref, prefix, suffix = spec.get("secret"), spec.get("prefix", ""), spec.get("suffix", "")
        if not all(isinstance(v, str) for v in (ref, prefix, suffix)) or "/" not in str(ref):
            return None
        injections[header] = (str(ref), str(prefix), str(suffix))
    return method.upper(), doc["url"], dict(headers), body.encode("utf-8"), injections
