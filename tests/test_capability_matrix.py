"""One capability matrix over both guest ABIs.

Every row of :data:`CASES` is one request — storage, secrets, HTTP, channels or logs, granted or
not, inside or outside the grant, well-formed or hostile — made through the core-module data ABI
(the WAT :class:`~runtime_fixtures.Probe`) *and* through the component ABI (the raw-bindings
probe ``tests/guests/probe``), with the same grants, limits and host services. An adapter per ABI
turns the abstract :class:`Op` into that probe's input and normalises what it reports into an
:class:`Outcome` (``ok`` with a value, or the host error class: ``denied``, ``invalid``,
``not_found``, ``too_large``, ``quota``...). Each ABI must give the row's expected outcome, and
the two must agree on everything observable: the outcome and value, the egress records, the
log lines, the channel messages, the files in the skill's storage and the requests the loopback
server received. Where the ABIs legitimately differ the row says so (``per_abi`` with ``why``).

Every call is also checked for the vault's secret: it must not appear in anything a call
returns (output, logs, egress records, error messages). A second test runs every row as a
failing tool call and checks which refused capabilities the tool error reports. Rows that a
known bug makes fail name it in ``bugs``: they xfail until the bug is fixed, then fail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from component_guests import guest
from component_guests import sandbox as component_sandbox
from egress_servers import LoopbackServer, StubResolver, closed_port
from palyra.runtime import errors
from palyra.runtime.channels import MemoryChannelSink
from palyra.runtime.context import CallGrants, HostServices
from palyra.runtime.limits import RuntimeLimits
from palyra.runtime.sandbox import CallResult, Sandbox
from palyra.runtime.vault import MemoryVault
from runtime_fixtures import Probe, call

ABIS = ("core", "component")

# The data ABI's return codes (docs/abi.md), written out so the suite checks the document; the
# component ABI's host-error codes are the same names in kebab case.
CODES = {
    -1: "denied",
    -2: "invalid",
    -3: "not_found",
    -4: "too_large",
    -5: "upstream",
    -6: "timeout",
    -7: "quota",
}
LEVELS = ("trace", "debug", "info", "warn", "error")

SCOPE = "skill:acme.matrix"
SECRET = "matrix-s3cr3t-VALUE-7f1e"
SECRET_GRANTS = frozenset({(SCOPE, "token"), (SCOPE, "missing")})
VAULT = {(SCOPE, "token"): SECRET.encode(), (SCOPE, "other"): SECRET.encode()}

API = "api.matrix.test"  # granted; resolves to loopback
EVIL = "evil.matrix.test"  # never granted; resolves to loopback
META = "meta.matrix.test"  # granted; resolves to the cloud metadata address
NOWHERE = "nowhere.matrix.test"  # granted; the resolver does not know it

RW = "matrix/rw"  # write root
RO = "matrix/ro"  # read root
SEED = {f"{RO}/seed": b"seeded", f"{RW}/existing": b"existing"}


# ---- the abstract request ---------------------------------------------------------------------

FAMILY = {
    "storage_get": "storage",
    "storage_put": "storage",
    "storage_delete": "storage",
    "storage_list": "storage",
    "secret_get": "secrets",
    "http_fetch": "http",
    "channel_send": "channels",
    "log": None,
}


@dataclass(frozen=True)
class Op:
    kind: str
    args: Mapping[str, Any]

    def arg(self, name: str, ports: Mapping[str, int]) -> Any:
        """An argument, with ``{port}`` placeholders in a URL filled in (see Env.ports)."""
        value = self.args[name]
        if name == "url":
            for placeholder, port in ports.items():
                value = value.replace(f"{{{placeholder}}}", str(port))
        return value


def get(key: str) -> Op:
    return Op("storage_get", {"key": key})


def put(key: str, value: str) -> Op:
    return Op("storage_put", {"key": key, "value": value})


def delete(key: str) -> Op:
    return Op("storage_delete", {"key": key})


def listing(prefix: str) -> Op:
    return Op("storage_list", {"prefix": prefix})


def secret(scope: str, key: str) -> Op:
    return Op("secret_get", {"scope": scope, "key": key})


def fetch(
    url: str,
    *,
    method: str = "GET",
    body: str = "",
    headers: Mapping[str, str] | None = None,
    secret_headers: Mapping[str, Mapping[str, str]] | None = None,
) -> Op:
    return Op(
        "http_fetch",
        {
            "url": url,
            "method": method,
            "body": body,
            "headers": dict(headers or {}),
            "secret_headers": dict(secret_headers or {}),
        },
    )


def send(channel: str, message: str) -> Op:
    return Op("channel_send", {"channel": channel, "message": message})


def log(level: str, message: str) -> Op:
    return Op("log", {"level": level, "message": message})


@dataclass(frozen=True)
class Outcome:
    kind: str  # "ok" or a host error class
    value: Any = None  # the normalised value of an ok outcome


# ---- the case table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    grants: str  # a key of grants_table()
    op: Op
    expected: str  # the outcome class, on both ABIs unless per_abi says otherwise
    value: Any = None  # the normalised value when the outcome is ok
    before: tuple[Op, ...] = ()  # run first in the same call; each must be ok
    egress: tuple[str, ...] = ()  # decisions of the call's egress records, in order
    reason: str = ""  # in the last egress record's reason
    logs: tuple[tuple[str, str], ...] = ()
    dropped_logs: int = 0
    sent: tuple[tuple[str, str], ...] = ()  # (channel, text) the sink received
    auth: tuple[str, ...] = ()  # Authorization headers the server received
    denied_as: str | None = None  # the refused capability, if not the op's own family
    limits: RuntimeLimits | None = None
    per_abi: Mapping[str, str] = field(default_factory=dict)  # abi -> outcome, only with why
    why: str = ""
    # abi -> the known bug that makes this ABI miss ``expected`` (reported, not fixed here):
    # the row then xfails, and fails as soon as the bug is fixed so the entry gets removed.
    bugs: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert bool(self.per_abi) == bool(self.why), f"{self.name}: per_abi needs a why"
        assert set(self.per_abi) | set(self.bugs) <= set(ABIS), self.name

    def expected_for(self, abi: str) -> str:
        return self.per_abi.get(abi, self.expected)

    def denied(self, abi: str) -> list[str]:
        """The capabilities this call refuses (what a failing tool call must report)."""
        if self.expected_for(abi) != "denied":
            return []
        family = self.denied_as or FAMILY[self.op.kind]
        assert family is not None
        return [family]


def ok_http(path: str, method: str = "GET", body: str = "") -> dict[str, Any]:
    """A response of the loopback server, normalised (see _http_value)."""
    return {"status": 200, "method": method, "path": path, "body": body}


LONG_KEY = f"{RW}/" + "k" * 600  # over the 512-byte key limit
HTTP_URL = f"http://{API}:{{port}}"  # {port}: the loopback server's (see Op.arg)

CASES: list[Case] = [
    # -- storage inside the write root --------------------------------------------------------
    Case("storage_get_rw", "storage", get(f"{RW}/existing"), "ok", "existing"),
    Case("storage_get_rw_missing", "storage", get(f"{RW}/nothing"), "not_found"),
    Case("storage_put_rw_new", "storage", put(f"{RW}/new", "fresh"), "ok"),
    Case("storage_put_rw_overwrite", "storage", put(f"{RW}/existing", "changed"), "ok"),
    Case("storage_put_rw_nested", "storage", put(f"{RW}/a/b/c", "deep"), "ok"),
    Case("storage_delete_rw", "storage", delete(f"{RW}/existing"), "ok"),
    Case("storage_delete_rw_missing", "storage", delete(f"{RW}/nothing"), "not_found"),
    Case("storage_list_rw", "storage", listing(RW), "ok", [f"{RW}/existing"]),
    Case("storage_list_rw_no_such_dir", "storage", listing(f"{RW}/none"), "ok", []),
    Case(
        "storage_put_then_get",
        "storage",
        get(f"{RW}/x"),
        "ok",
        "v1",
        before=(put(f"{RW}/x", "v1"),),
    ),
    Case(
        "storage_put_then_list",
        "storage",
        listing(RW),
        "ok",
        [f"{RW}/existing", f"{RW}/sub/y"],
        before=(put(f"{RW}/sub/y", "v"),),
    ),
    Case(
        "storage_delete_then_get",
        "storage",
        get(f"{RW}/existing"),
        "not_found",
        before=(delete(f"{RW}/existing"),),
    ),
    # -- storage inside a read-only root ------------------------------------------------------
    Case("storage_get_ro", "storage", get(f"{RO}/seed"), "ok", "seeded"),
    Case("storage_get_ro_missing", "storage", get(f"{RO}/nothing"), "not_found"),
    Case("storage_list_ro", "storage", listing(RO), "ok", [f"{RO}/seed"]),
    Case("storage_put_ro_existing", "storage", put(f"{RO}/seed", "overwritten"), "denied"),
    Case("storage_put_ro_new", "storage", put(f"{RO}/new", "new"), "denied"),
    Case("storage_delete_ro", "storage", delete(f"{RO}/seed"), "denied"),
    Case("storage_get_ro_only_grant", "storage_read_only", get(f"{RO}/seed"), "ok", "seeded"),
    Case("storage_put_ro_only_grant", "storage_read_only", put(f"{RO}/x", "v"), "denied"),
    # -- storage outside every root -----------------------------------------------------------
    Case("storage_get_outside", "storage", get("other/x"), "denied"),
    Case("storage_put_outside", "storage", put("other/x", "v"), "denied"),
    Case("storage_delete_outside", "storage", delete("other/x"), "denied"),
    Case("storage_list_outside", "storage", listing("other"), "denied"),
    Case("storage_put_sibling_prefix", "storage", put("matrix/rwx/a", "v"), "denied"),
    Case("storage_put_parent_of_root", "storage", put("matrix/a", "v"), "denied"),
    Case("storage_list_parent_of_roots", "storage", listing("matrix"), "denied"),
    # -- hostile keys (granted storage: the key itself is refused) -----------------------------
    Case("storage_put_dotdot_inside", "storage", put(f"{RW}/../x", "v"), "invalid"),
    Case("storage_put_dotdot", "storage", put("../x", "v"), "invalid"),
    Case("storage_get_dotdot", "storage", get("../x"), "invalid"),
    Case("storage_delete_dotdot", "storage", delete(f"{RW}/../../x"), "invalid"),
    Case("storage_list_dotdot", "storage", listing("../x"), "invalid"),
    Case("storage_put_absolute", "storage", put("/abs", "v"), "invalid"),
    Case("storage_get_absolute_root", "storage", get(f"/{RW}/existing"), "invalid"),
    Case("storage_put_empty_key", "storage", put("", "v"), "invalid"),
    Case("storage_get_empty_key", "storage", get(""), "invalid"),
    Case("storage_list_empty_prefix", "storage", listing(""), "invalid"),
    Case("storage_list_trailing_slash", "storage", listing(f"{RW}/"), "invalid"),
    Case("storage_put_backslash", "storage", put(f"{RW}/a\\b", "v"), "invalid"),
    Case("storage_put_nul", "storage", put(f"{RW}/a\x00b", "v"), "invalid"),
    Case("storage_put_double_slash", "storage", put(f"{RW}//x", "v"), "invalid"),
    Case("storage_get_root_itself", "storage", get(RW), "invalid"),
    Case("storage_put_over_long_key", "storage", put(LONG_KEY, "v"), "invalid"),
    Case(
        "storage_put_over_the_value_cap",
        "storage",
        put(f"{RW}/big", "x" * 17),
        "too_large",
        limits=RuntimeLimits(max_storage_value_bytes=16),
    ),
    # -- storage not granted ------------------------------------------------------------------
    Case("storage_get_no_grants", "none", get(f"{RW}/existing"), "denied"),
    Case("storage_put_no_grants", "none", put(f"{RW}/x", "v"), "denied"),
    Case("storage_delete_no_grants", "none", delete(f"{RW}/existing"), "denied"),
    Case("storage_list_no_grants", "none", listing(RW), "denied"),
    Case("storage_put_everything_but_storage", "all_but_storage", put(f"{RW}/x", "v"), "denied"),
    # Without any storage grant the key is never looked at: refused, not "malformed".
    Case("storage_put_dotdot_no_grants", "none", put("../x", "v"), "denied"),
    Case("storage_get_empty_key_no_grants", "none", get(""), "denied"),
    Case(
        "storage_get_over_long_key_no_grants",
        "none",
        get(LONG_KEY),
        "denied",
    ),
    Case(
        "storage_list_over_long_prefix_no_grants",
        "none",
        listing(LONG_KEY),
        "denied",
    ),
    Case(
        "storage_put_over_the_value_cap_no_grants",
        "none",
        put(f"{RW}/big", "x" * 17),
        "denied",
        limits=RuntimeLimits(max_storage_value_bytes=16),
    ),
    # -- secrets ------------------------------------------------------------------------------
    Case("secret_granted", "secrets", secret(SCOPE, "token"), "ok", "[REDACTED]"),
    Case("secret_granted_missing_value", "secrets", secret(SCOPE, "missing"), "not_found"),
    Case("secret_ungranted_key", "secrets", secret(SCOPE, "other"), "denied"),
    Case("secret_other_scope", "secrets", secret("skill:acme.other", "token"), "denied"),
    Case("secret_empty_scope", "secrets", secret("", "token"), "denied"),
    Case("secret_no_grants", "none", secret(SCOPE, "token"), "denied"),
    Case(
        "secret_over_long_ref_no_grants",
        "none",
        secret("s" * 1100, "token"),
        "denied",
    ),
    # With secrets granted, a reference too long to be one is malformed, not just ungranted.
    Case("secret_over_long_ref_granted", "secrets", secret("s" * 1100, "token"), "invalid"),
    Case("secret_everything_but_secrets", "all_but_secrets", secret(SCOPE, "token"), "denied"),
    Case(
        "secret_logged_is_redacted",
        "secrets",
        log("warn", f"token={SECRET}"),
        "ok",
        before=(secret(SCOPE, "token"),),
        logs=(("warn", "token=[REDACTED]"),),
    ),
    Case(
        "secret_sent_to_a_channel_is_redacted",
        "channels_secrets",
        send("ops", f"leak {SECRET}"),
        "ok",
        before=(secret(SCOPE, "token"),),
        sent=(("ops", "leak [REDACTED]"),),
    ),
    # -- HTTP ---------------------------------------------------------------------------------
    Case(
        "http_granted",
        "http",
        fetch(f"{HTTP_URL}/matrix/get"),
        "ok",
        ok_http("/matrix/get"),
        egress=("allowed",),
    ),
    Case(
        "http_granted_post",
        "http",
        fetch(f"{HTTP_URL}/matrix/post?q=1", method="POST", body="hello ✓"),
        "ok",
        ok_http("/matrix/post?q=1", "POST", "hello ✓"),
        egress=("allowed",),
    ),
    Case(
        "http_secret_header_granted",
        "http_secrets",
        fetch(
            f"{HTTP_URL}/matrix/auth",
            secret_headers={"Authorization": {"secret": f"{SCOPE}/token", "prefix": "Bearer "}},
        ),
        "ok",
        ok_http("/matrix/auth"),
        egress=("allowed",),
        auth=(f"Bearer {SECRET}",),
    ),
    # The secret reference is refused before any connection attempt: no egress record.
    Case(
        "http_secret_header_ungranted",
        "http",
        fetch(
            f"{HTTP_URL}/matrix/auth",
            secret_headers={"Authorization": {"secret": f"{SCOPE}/token", "prefix": "Bearer "}},
        ),
        "denied",
        denied_as="secrets",
    ),
    Case(
        "http_dns_failure",
        "http",
        fetch(f"http://{NOWHERE}:{{port}}/"),
        "upstream",
        egress=("denied",),
        reason=f"DNS resolution failed for {NOWHERE}",
    ),
    Case(
        "http_connection_refused",
        "http",
        fetch(f"http://{API}:{{closed}}/"),
        "upstream",
        egress=("denied",),
    ),
    Case(
        "http_request_over_the_size_cap",
        "http",
        fetch(f"{HTTP_URL}/", method="POST", body="y" * 100),
        "too_large",
        limits=RuntimeLimits(max_http_request_bytes=64),
    ),
    Case(
        "http_request_quota",
        "http",
        fetch(f"{HTTP_URL}/matrix/second"),
        "quota",
        before=(fetch(f"{HTTP_URL}/matrix/first"),),
        egress=("allowed", "denied"),
        reason="request quota exhausted",
        limits=RuntimeLimits(max_http_requests=1),
    ),
    Case("http_no_grants", "none", fetch(f"{HTTP_URL}/"), "denied"),
    # Refused for the missing grant, not for the size (no egress record either way).
    Case(
        "http_request_over_the_size_cap_no_grants",
        "none",
        fetch(f"{HTTP_URL}/", method="POST", body="y" * 100),
        "denied",
        limits=RuntimeLimits(max_http_request_bytes=64),
    ),
    Case("http_everything_but_http", "all_but_http", fetch(f"{HTTP_URL}/"), "denied"),
    Case(
        "http_ungranted_host",
        "http",
        fetch(f"http://{EVIL}:{{port}}/"),
        "denied",
        egress=("denied",),
        reason=f"host not granted: {EVIL}",
    ),
    Case(
        "http_ip_literal_instead_of_the_granted_name",
        "http",
        fetch("http://127.0.0.1:{port}/"),
        "denied",
        egress=("denied",),
        reason="host not granted",
    ),
    Case(
        "http_private_address",
        "http_public_only",
        fetch(f"{HTTP_URL}/"),
        "denied",
        egress=("denied",),
        reason="private address 127.0.0.1",
    ),
    Case(
        "http_metadata_address",
        "http_public_only",
        fetch(f"http://{META}:{{port}}/"),
        "denied",
        egress=("denied",),
        reason="private address 169.254.169.254",
    ),
    Case(
        "http_disallowed_port",
        "http",
        fetch(f"http://{API}:9/"),
        "denied",
        egress=("denied",),
        reason="port 9 not granted",
    ),
    Case(
        "http_plain_http_not_allowed",
        "http_https_only",
        fetch(f"{HTTP_URL}/"),
        "denied",
        egress=("denied",),
        reason="plain http",
    ),
    Case(
        "http_method_not_allowed",
        "http",
        fetch(f"{HTTP_URL}/", method="TRACE"),
        "denied",
        egress=("denied",),
        reason="method TRACE",
    ),
    Case(
        "http_userinfo",
        "http",
        fetch(f"http://{API}@{EVIL}:{{port}}/"),
        "invalid",
        egress=("denied",),
        reason="userinfo",
    ),
    Case(
        "http_host_header",
        "http",
        fetch(f"{HTTP_URL}/", headers={"Host": EVIL}),
        "invalid",
        egress=("denied",),
        reason="cannot be set",
    ),
    Case(
        "http_relative_url",
        "http",
        fetch("/matrix/relative"),
        "invalid",
        egress=("denied",),
        reason="absolute",
    ),
    # -- channels -----------------------------------------------------------------------------
    Case(
        "channel_granted",
        "channels",
        send("ops", "deployed ✓"),
        "ok",
        sent=(("ops", "deployed ✓"),),
    ),
    Case("channel_ungranted", "channels", send("other", "hi"), "denied"),
    Case("channel_no_grants", "none", send("ops", "hi"), "denied"),
    Case(
        "channel_over_long_name_ungranted",
        "channels",
        send("c" * 300, "hi"),
        "denied",
    ),
    Case("channel_everything_but_channels", "all_but_channels", send("ops", "hi"), "denied"),
    Case(
        "channel_oversize_granted",
        "channels",
        send("ops", "x" * 9),
        "too_large",
        limits=RuntimeLimits(max_channel_message_bytes=8),
    ),
    # An ungranted channel is refused whatever the message's size.
    Case(
        "channel_oversize_ungranted",
        "channels",
        send("other", "x" * 9),
        "denied",
        limits=RuntimeLimits(max_channel_message_bytes=8),
    ),
    Case(
        "channel_message_quota",
        "channels",
        send("ops", "second"),
        "quota",
        before=(send("ops", "first"),),
        sent=(("ops", "first"),),
        limits=RuntimeLimits(max_channel_messages=1),
    ),
    # -- logs (no grant needed) ---------------------------------------------------------------
    Case("log_info", "none", log("info", "hello ✓"), "ok", logs=(("info", "hello ✓"),)),
    Case("log_trace", "none", log("trace", "t"), "ok", logs=(("trace", "t"),)),
    Case("log_error", "none", log("error", "e"), "ok", logs=(("error", "e"),)),
    Case(
        "log_line_is_truncated",
        "none",
        log("info", "x" * 20),
        "ok",
        logs=(("info", "x" * 8),),
        limits=RuntimeLimits(max_log_line_bytes=8),
    ),
    Case(
        "log_line_quota",
        "none",
        log("info", "second"),
        "quota",
        before=(log("info", "first"),),
        logs=(("info", "first"),),
        dropped_logs=1,
        limits=RuntimeLimits(max_log_lines=1),
        per_abi={"component": "ok"},
        why=(
            "WIT `log: func(level, message)` returns nothing, so a component cannot be told a "
            "line was dropped; the line is still dropped and counted exactly as for a core module"
        ),
    ),
]


def grants_table(ports: Mapping[str, int]) -> dict[str, CallGrants]:
    """Grant sets by name; ``ports`` are the loopback ports a granted URL may use."""
    allowed = frozenset(ports.values())
    http: dict[str, Any] = {
        "http_hosts": (API, META, NOWHERE),
        "allow_http": True,
        "allow_private_network": True,
        "allowed_ports": allowed,
    }
    storage: dict[str, Any] = {"storage_write": (RW,), "storage_read": (RO,)}
    families: dict[str, dict[str, Any]] = {
        "http": http,
        "secrets": {"secrets": SECRET_GRANTS},
        "storage": storage,
        "channels": {"channels": ("ops",)},
    }

    def merged(*names: str) -> CallGrants:
        values: dict[str, Any] = {}
        for name in names:
            values.update(families[name])
        return CallGrants(**values)

    table = {
        "none": CallGrants(),
        "storage": merged("storage"),
        "storage_read_only": CallGrants(storage_read=(RO,)),
        "secrets": merged("secrets"),
        "http": merged("http"),
        "http_secrets": merged("http", "secrets"),
        "http_public_only": CallGrants(
            http_hosts=(API, META), allow_http=True, allowed_ports=allowed
        ),
        "http_https_only": CallGrants(
            http_hosts=(API,), allow_private_network=True, allowed_ports=allowed
        ),
        "channels": merged("channels"),
        "channels_secrets": merged("channels", "secrets"),
    }
    for left_out in families:
        table[f"all_but_{left_out}"] = merged(*(name for name in families if name != left_out))
    return table


# ---- adapters ---------------------------------------------------------------------------------

# Core probe: each op reports two array elements, its return code and (when the code is not an
# error) what it put in the result buffer, else null.
_CORE_EXTRA = [
    "(global $rc (mut i32) (i32.const 0))",
    "(func $null " + " ".join(f"(call $byte (i32.const {ord(c)}))" for c in "null") + ")",
]
_TEXT = "(call $byte (i32.const 34)) (call $result) (call $byte (i32.const 34))"
_RAW = "(call $result)"


def core_module(ops: tuple[Op, ...], ports: Mapping[str, int], exit_code: int = 0) -> bytes:
    probe = Probe(exit_code=exit_code, extra=list(_CORE_EXTRA))
    for op in ops:
        expr, report = _core_call(probe, op, ports)
        probe.items.append(
            f"(global.set $rc {expr}) (call $num (i64.extend_i32_s (global.get $rc)))"
        )
        probe.items.append(
            f"(if (i32.ge_s (global.get $rc) (i32.const 0)) (then {report or '(call $null)'})"
            " (else (call $null)))"
        )
    return probe.build()


def _core_call(probe: Probe, op: Op, ports: Mapping[str, int]) -> tuple[str, str | None]:
    """The host call for ``op`` and how to report its result buffer (None: nothing to report;
    storage values and secrets are plain text, listings and the loopback server's bodies JSON)."""
    a = op.args
    if op.kind == "storage_get":
        return call("storage_get", probe.blob(a["key"])), _TEXT
    if op.kind == "storage_put":
        return call("storage_put", probe.blob(a["key"]), probe.blob(a["value"])), None
    if op.kind == "storage_delete":
        return call("storage_delete", probe.blob(a["key"])), None
    if op.kind == "storage_list":
        return call("storage_list", probe.blob(a["prefix"])), _RAW
    if op.kind == "secret_get":
        return call("secret_get", probe.blob(f"{a['scope']}/{a['key']}")), _TEXT
    if op.kind == "http_fetch":
        request = {
            "method": a["method"],
            "url": op.arg("url", ports),
            "headers": a["headers"],
            "body": a["body"],
            "secret_headers": a["secret_headers"],
        }
        return call("http_request", probe.blob(json.dumps(request))), _RAW
    if op.kind == "channel_send":
        return call("channel_send", probe.blob(a["channel"]), probe.blob(a["message"])), None
    if op.kind == "log":
        return call("log", LEVELS.index(a["level"]), probe.blob(a["message"])), None
    raise AssertionError(op.kind)


def core_outcomes(ops: tuple[Op, ...], output: Any) -> list[Outcome]:
    assert isinstance(output, list) and len(output) == 2 * len(ops), output
    outcomes = []
    for op, code, value in zip(ops, output[::2], output[1::2], strict=True):
        assert isinstance(code, int), output
        if code < 0:
            assert value is None, output
            outcomes.append(Outcome(CODES[code]))
        elif op.kind == "http_fetch":
            assert 100 <= code <= 599, output
            outcomes.append(Outcome("ok", _http_value(code, value)))
        elif op.kind in ("storage_get", "secret_get", "storage_list"):
            outcomes.append(Outcome("ok", value))
        else:
            assert code == 0, output  # put, delete, channel_send and log return 0 on success
            outcomes.append(Outcome("ok"))
    return outcomes


def component_op(op: Op, ports: Mapping[str, int]) -> dict[str, Any]:
    item = {"op": op.kind, **op.args}
    if "url" in item:
        item["url"] = op.arg("url", ports)
    return item


def component_outcomes(ops: tuple[Op, ...], output: Any) -> list[Outcome]:
    assert isinstance(output, list) and len(output) == len(ops), output
    outcomes = []
    for op, entry in zip(ops, output, strict=True):
        if "err" in entry:
            assert set(entry) == {"err", "message"}, entry
            outcomes.append(Outcome(entry["err"].replace("-", "_")))
            continue
        assert set(entry) == {"ok"}, entry  # anything else (an OSError...) is a probe failure
        value = entry["ok"]
        if op.kind == "http_fetch":
            outcomes.append(Outcome("ok", _http_value(value["status"], json.loads(value["body"]))))
        else:
            outcomes.append(Outcome("ok", value))
    return outcomes


def _http_value(status: int, body: Any) -> dict[str, Any]:
    """What both ABIs report of a response from the loopback server (the component ABI also
    returns the response headers, which the data ABI has no way to: not compared)."""
    assert isinstance(body, dict), body
    return {key: body[key] for key in ("method", "path", "body")} | {"status": status}


# ---- running a case ---------------------------------------------------------------------------


@dataclass
class Env:
    core: Sandbox
    component: Sandbox
    probe: bytes
    state: Path
    sink: MemoryChannelSink
    server: LoopbackServer
    ports: dict[str, int]  # URL placeholders: the server's port, a closed port
    grants: dict[str, CallGrants]


@dataclass
class Observed:
    outcomes: list[Outcome]
    egress: list[dict[str, Any]]
    logs: list[tuple[str, str]]
    dropped_logs: int
    sent: list[tuple[str, str]]
    stored: dict[str, bytes]
    paths: list[str]  # request targets the loopback server received
    auth: list[str]  # Authorization headers it received
    text: str  # everything the call returned, as JSON

    def comparable(self, *, outcomes: bool) -> dict[str, Any]:
        """All of it but timings and the text (which names the skill and the module)."""
        egress = [{k: v for k, v in r.items() if k != "duration_ms"} for r in self.egress]
        view = {**self.__dict__, "egress": egress, "text": None}
        if not outcomes:
            view["outcomes"] = None
        return view


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    started = LoopbackServer().start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, server: LoopbackServer) -> Env:
    """Both ABIs behind the same host services: one state root, vault, channel sink and
    resolver. Core modules get their own sandbox without a disk cache (the probes embed the
    server's port, so their code would pile up in the shared cache run after run)."""
    state = tmp_path_factory.mktemp("matrix-state")
    sink = MemoryChannelSink()
    services = HostServices(
        state_root=state,
        vault=MemoryVault(dict(VAULT)),
        channel_sink=sink,
        resolver=StubResolver({API: ["127.0.0.1"], EVIL: ["127.0.0.1"], META: ["169.254.169.254"]}),
    )
    ports = {"port": server.port, "closed": closed_port()}
    return Env(
        core=Sandbox(services=services),
        component=component_sandbox(services),
        probe=guest("probe"),
        state=state,
        sink=sink,
        server=server,
        ports=ports,
        grants=grants_table(ports),
    )


def seed(env: Env, skill: str) -> None:
    for key, value in SEED.items():
        path = env.state / "skill-data" / skill / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(value)


def stored(env: Env, skill: str) -> dict[str, bytes]:
    root = env.state / "skill-data" / skill
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def run(env: Env, case: Case, abi: str, skill: str, *, fail: bool = False) -> CallResult:
    """One call of ``case`` through ``abi``; with ``fail`` the tool fails after its ops."""
    ops = (*case.before, case.op)
    common: dict[str, Any] = {
        "skill_id": skill,
        "tool_id": f"{skill}.probe",
        "grants": env.grants[case.grants],
        "limits": case.limits,
    }
    if abi == "core":
        return env.core.run(core_module(ops, env.ports, exit_code=1 if fail else 0), **common)
    items = [component_op(op, env.ports) for op in ops]
    if fail:
        items.append({"kind": "TOOL_ERROR", "message": "the tool failed after its ops"})
    tool = "fail" if fail else "probe"
    return env.component.run(env.probe, input_value={"ops": items}, tool_name=tool, **common)


def observe(env: Env, case: Case, abi: str) -> Observed:
    skill = f"matrix.{case.name}.{abi}"
    seed(env, skill)
    env.server.reset()
    result = run(env, case, abi, skill)
    ops = (*case.before, case.op)
    outcomes = (core_outcomes if abi == "core" else component_outcomes)(ops, result.output)
    seen = list(env.server.seen)
    return Observed(
        outcomes=outcomes,
        egress=result.egress,
        logs=[(line.level, line.message) for line in result.logs],
        dropped_logs=result.dropped_logs,
        sent=[(m.channel, m.text) for m in env.sink.messages if m.skill_id == skill],
        stored=stored(env, skill),
        paths=[request.path for request in seen],
        auth=[r.headers["authorization"] for r in seen if "authorization" in r.headers],
        text=json.dumps(result.to_json(), ensure_ascii=False),
    )


def expected_store(case: Case, outcome: str) -> dict[str, bytes]:
    tree = dict(SEED)
    for op, done in [*((o, True) for o in case.before), (case.op, outcome == "ok")]:
        if done and op.kind == "storage_put":
            tree[op.args["key"]] = op.args["value"].encode()
        elif done and op.kind == "storage_delete":
            del tree[op.args["key"]]
    return dict(sorted(tree.items()))


def expected_paths(case: Case, outcome: str) -> list[str]:
    """The request targets the server must have received: the ``before`` fetches (all ok) and
    the case's own when it succeeded; nothing refused ever reaches it."""
    paths = ["/" + op.args["url"].split("/", 3)[3] for op in case.before if op.kind == "http_fetch"]
    if case.op.kind == "http_fetch" and outcome == "ok":
        paths.append(case.value["path"])
    return paths


def check(case: Case, abi: str, seen: Observed) -> None:
    expected = case.expected_for(abi)
    where = f"[{abi}] {case.name}"
    assert [o.kind for o in seen.outcomes[:-1]] == ["ok"] * len(case.before), where
    last = seen.outcomes[-1]
    assert last.kind == expected, f"{where}: got {last.kind}, expected {expected}"
    assert last.value == (case.value if expected == "ok" else None), where
    assert [record["decision"] for record in seen.egress] == list(case.egress), where
    if case.reason:
        assert case.reason in seen.egress[-1]["reason"], (where, seen.egress)
    assert seen.logs == list(case.logs), where
    assert seen.dropped_logs == case.dropped_logs, where
    assert seen.sent == list(case.sent), where
    assert seen.stored == expected_store(case, expected), where
    assert seen.paths == expected_paths(case, expected), where
    assert seen.auth == list(case.auth), where
    assert SECRET not in seen.text, where


def stray_files(env: Env) -> list[str]:
    """Files under the state root outside every skill's own storage tree."""
    found = []
    for path in env.state.rglob("*"):
        parts = path.relative_to(env.state).parts
        if path.is_file() and not (parts[0] == "skill-data" and parts[2] == "matrix"):
            found.append("/".join(parts))
    return found


# ---- the tests --------------------------------------------------------------------------------


def test_the_table_covers_every_capability_granted_and_not() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))
    for family in ("storage", "secrets", "http", "channels"):
        rows = [c for c in CASES if FAMILY[c.op.kind] == family]
        assert any(c.expected == "ok" for c in rows), family
        assert any(c.grants == "none" and c.expected == "denied" for c in rows), family
        assert any(c.grants == f"all_but_{family}" for c in rows), family
    for kind in FAMILY:
        assert any(c.op.kind == kind for c in CASES), kind


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_same_request_same_outcome_on_both_abis(env: Env, case: Case) -> None:
    observed = {abi: observe(env, case, abi) for abi in ABIS}
    missed: list[str] = []
    for abi in ABIS:
        if abi not in case.bugs:
            check(case, abi, observed[abi])
            continue
        try:
            check(case, abi, observed[abi])
        except AssertionError as exc:
            missed.append(f"{str(exc).splitlines()[0]} ({case.bugs[abi]})")
        else:
            pytest.fail(f"[{abi}] {case.name} passes now: remove its bugs entry")
    # The ABIs agree on everything observable; on the outcome too unless the row says why not
    # (per_abi) or a known bug hits one ABI only.
    same_outcome = not case.per_abi and len(case.bugs) in (0, len(ABIS))
    core, component = (observed[abi].comparable(outcomes=same_outcome) for abi in ABIS)
    assert core == component
    assert stray_files(env) == []
    if missed:
        pytest.xfail("; ".join(missed))


def _failure_params() -> list[Any]:
    params = []
    for case in CASES:
        for abi in ABIS:
            marks = (
                [pytest.mark.xfail(strict=True, reason=case.bugs[abi])] if abi in case.bugs else []
            )
            params.append(pytest.param(case, abi, id=f"{case.name}-{abi}", marks=marks))
    return params


def failure_details(env: Env, case: Case, abi: str) -> dict[str, Any]:
    skill = f"matrix.{case.name}.{abi}.fail"
    seed(env, skill)
    with pytest.raises(errors.ToolError) as info:
        run(env, case, abi, skill, fail=True)
    text = json.dumps(info.value.to_json(), ensure_ascii=False)
    assert SECRET not in text
    assert SECRET not in str(info.value)
    return info.value.details


@pytest.mark.parametrize(("case", "abi"), _failure_params())
def test_failing_tool_reports_the_refused_capabilities(env: Env, case: Case, abi: str) -> None:
    details = failure_details(env, case, abi)
    assert details.get("denied_capabilities", []) == case.denied(abi)
