"""The hostile-egress corpus (``tests/security/egress/*.toml``) against real loopback servers.

Each case is run by one or more drivers:

* ``client`` — the egress client the runtime builds for a call (``CallContext.egress()``,
  i.e. the production mapping from effective grants and limits to ``EgressPolicy``), driven
  through its public ``request``;
* ``component`` — the component probe guest (``tests/guests/probe``) calling ``http-fetch``;
* ``core`` — a data-ABI core module calling ``http_request`` with the case's request JSON.

Effective grants come from ``effective_grants`` over a real parsed manifest (declared hosts)
and a ``RuntimePolicy`` (operator hosts, ``allow_http``, ``allow_private_network``, ports),
so the corpus also pins "declared ∩ operator". The network is real: the only substitution is
the DNS-resolution hook the egress layer offers (``HostServices.resolver``); cases without a
``[dns]`` table use the system resolver.

"Never contacted" is asserted twice: the servers' TCP accept counters (unlisted servers must
stay at 0) and, where a case says ``address = "none"``, no attempt record carries a
connected-to address.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from egress_cases import CATEGORIES, DRIVERS, SERVERS, Case, coverage, fill, load_cases

from component_guests import guest, sandbox
from egress_servers import LoopbackServer, Pki, make_pki, server_tls_context
from palyra.abi import HostCode
from palyra.runtime import errors
from palyra.runtime.context import CallContext, CallGrants, HostServices
from palyra.runtime.egress import EgressError
from palyra.runtime.limits import RuntimeLimits
from palyra.runtime.sandbox import CallResult, Sandbox
from palyra.runtime.tools import ANY, RuntimePolicy, effective_grants
from palyra.skills.manifest import parse_manifest_toml
from runtime_fixtures import SCRATCH, Probe, call

CASES = load_cases()
MIN_CASES = 20

# The egress pitfalls of shared/reference/field-notes.md (§1 item 6, §3, §9 item 2), each
# with the corpus categories that exercise it.
FIELD_NOTE_PITFALLS: dict[str, tuple[str, ...]] = {
    "redirects re-validated on every hop (Extism checks the initial URL only)": ("redirect",),
    "Host-header / relative-URL re-targeting (Spin CVE-2024-32980)": ("host-header",),
    "private IPs as a bypass route (emdash-cms/emdash#740)": ("private-address", "dns"),
    "loopback/RFC1918/link-local/metadata blocked even under '*'": ("wildcard", "metadata"),
    "DNS pinned per request (rebinding)": ("pinning",),
    "scheme + host + port + method rules, not a hostname glob": ("scheme", "port", "method"),
    "credential headers stripped cross-origin": ("credentials",),
    "per-call byte/request budgets": ("oversize", "quota"),
    "allow-all grants must not defeat the sandbox (Lapce insecure:allow-all)": ("wildcard",),
}

MANIFEST = """\
manifest_version = 2
skill_id = "acme.egress_corpus"
name = "Egress corpus"
version = "1.0.0"
publisher = "acme"

[entrypoints]
[[entrypoints.tools]]
id = "acme.egress_corpus.probe"
name = "probe"
description = "Makes the HTTP request under test"
input_schema = {{ type = "object" }}
output_schema = {{ type = "array" }}
risk = {{ default_sensitive = false, requires_approval = false }}

[capabilities]
http_egress_allowlist = {hosts}
device_capabilities = []
node_capabilities = []

[capabilities.wildcard_opt_in]
http_egress = {wildcards}

[compat]
required_protocol_major = 1
min_palyra_version = "0.1.0"
"""

# Probe timing: server accepts happen on the server's thread; give it this long to count a
# connection that raced the end of a request before asserting the counters.
ACCEPT_GRACE_S = 0.05


# -- resolver hook ----------------------------------------------------------------------------


@dataclass
class ScriptedResolver:
    """The DNS hook: each name answers its scripted answers in turn (the last repeats).

    Successive answers model rebinding: a second lookup of the same name would get a
    different (private) address, so only a single resolution per hop keeps a request safe.
    """

    table: dict[str, tuple[tuple[str, ...], ...]]
    calls: list[tuple[str, int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, host: str, port: int) -> list[str]:
        with self._lock:
            self.calls.append((host, port))
            if host not in self.table:
                raise OSError(f"unknown host {host}")
            answers = self.table[host]
            seen = sum(1 for name, _ in self.calls if name == host)
            return list(answers[min(seen, len(answers)) - 1])


@dataclass
class SwitchResolver:
    """One resolver object for a long-lived sandbox; each case installs its own script."""

    current: ScriptedResolver | None = None

    def __call__(self, host: str, port: int) -> list[str]:
        assert self.current is not None, "no resolver script installed"
        return self.current(host, port)


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("egress-corpus-pki"), ("api.test.local",))


@pytest.fixture(scope="module")
def servers(pki: Pki) -> Iterator[dict[str, LoopbackServer]]:
    started = {
        "web": LoopbackServer().start(),
        "web2": LoopbackServer().start(),
        "tls": LoopbackServer(server_tls_context(pki)).start(),
    }
    try:
        yield started
    finally:
        for server in started.values():
            server.stop()


@dataclass
class Guests:
    """Sandboxes shared by every guest-driven case (loading the component is the slow part)."""

    resolver: SwitchResolver
    component_box: Sandbox
    core_box: Sandbox
    probe: bytes
    core_module: bytes


@pytest.fixture(scope="module")
def guests(pki: Pki) -> Guests:
    resolver = SwitchResolver()
    services = HostServices(resolver=resolver, ca_bundle=str(pki.ca_pem))
    core = Probe()
    core.do(f"(call $input_read (i32.const {SCRATCH}) (call $input_len))")
    core.num(call("http_request", f"(i32.const {SCRATCH})", "(call $input_len)"))
    box = sandbox(services)
    probe = guest("probe")
    box.load(probe)  # compile once, outside any case's timing
    # The core module's bytes are the same for every case (the request is its input), and it
    # runs in a cache-less sandbox so the suite leaves no compiled artifacts behind.
    return Guests(resolver, box, Sandbox(services=services), probe, core.build())


# -- grants -----------------------------------------------------------------------------------


def call_grants(case: Case, ports: dict[str, int]) -> CallGrants:
    """Effective grants: manifest declaration ∩ operator policy, as the runtime computes them.

    ``manifest = false`` cases model grants the manifest grammar cannot express (IPv6
    literals): the same intersection is applied to the operator-level host list directly.
    """
    allowed_ports = (
        None
        if case.allowed_ports is None
        else frozenset(ports[p] if isinstance(p, str) else p for p in case.allowed_ports)
    )
    if case.manifest:
        manifest = parse_manifest_toml(
            MANIFEST.format(
                hosts=json.dumps(list(case.declared_hosts)),
                wildcards="true" if case.wildcards else "false",
            )
        )
        policy = RuntimePolicy(
            http_hosts=frozenset(case.operator_hosts),
            allow_http=case.allow_http,
            allow_private_network=case.allow_private_network,
            allowed_ports=allowed_ports,
        )
        return effective_grants(manifest, policy)
    hosts = tuple(
        h for h in case.declared_hosts if ANY in case.operator_hosts or h in case.operator_hosts
    )
    return CallGrants(
        http_hosts=hosts,
        allow_http=case.allow_http,
        allow_private_network=case.allow_private_network,
        allow_wildcards=case.wildcards,
        allowed_ports=allowed_ports,
    )


def limits_for(case: Case) -> RuntimeLimits:
    """Operator limits as the runtime gets them; small budgets keep slow cases short."""
    values: dict[str, int] = {"timeout_ms": case.timeout_ms}
    if case.max_response_bytes is not None:
        values["max_http_response_bytes"] = case.max_response_bytes
    if case.max_requests is not None:
        values["max_http_requests"] = case.max_requests
    return RuntimeLimits(**values)


# -- drivers ----------------------------------------------------------------------------------


@dataclass
class Observed:
    """One driver's view of the outcome, normalised for the shared assertions."""

    code: HostCode | None  # None: the request produced a response
    reason: str
    status: int | None
    records: list[dict[str, Any]]
    guest_message: str | None = None  # the component ABI's host-error message


def run_client(
    case: Case, url: str, grants: CallGrants, resolver: ScriptedResolver | None, pki: Pki
) -> Observed:
    """The egress client exactly as a call builds it (``CallContext.egress()``): the grant
    and limit mapping to ``EgressPolicy`` is production code, not re-implemented here."""
    limits = limits_for(case)
    services = HostServices(resolver=resolver, ca_bundle=str(pki.ca_pem))
    started = time.monotonic()
    ctx = CallContext(
        skill_id="acme.egress_corpus",
        tool_id="acme.egress_corpus.probe",
        input_bytes=b"",
        grants=grants,
        limits=limits,
        services=services,
        deadline=started + case.timeout_ms / 1000,
    )
    client = ctx.egress()
    try:
        response = client.request(case.method, url, headers=case.headers, deadline=ctx.deadline)
    except EgressError as exc:
        code: HostCode | None = HostCode(exc.code)
        reason, status = exc.reason, None
    else:
        code, reason, status = None, "", response.status
    finally:
        ctx.close()
    return Observed(code, reason, status, [r.to_json() for r in client.records])


def _last_reason(result: CallResult) -> str:
    """The firewall's reason for the call's last attempt (what the operator's log shows)."""
    return str(result.egress[-1]["reason"]) if result.egress else ""


def run_component(case: Case, url: str, grants: CallGrants, guests: Guests) -> Observed:
    """End to end through a component guest: what a real skill sees (error kind + message)."""
    op = {"op": "http_fetch", "method": case.method, "url": url, "headers": case.headers}
    result = guests.component_box.run(
        guests.probe,
        input_value={"ops": [op]},
        tool_name="probe",
        grants=grants,
        limits=limits_for(case),
    )
    (outcome,) = result.output
    if "ok" in outcome:
        return Observed(None, "", int(outcome["ok"]["status"]), result.egress)
    kind = str(outcome["err"])
    code = HostCode[kind.upper().replace("-", "_")]
    return Observed(code, _last_reason(result), None, result.egress, outcome["message"])


def run_core(case: Case, url: str, grants: CallGrants, guests: Guests) -> Observed:
    """End to end through the data ABI: the guest sees only the numeric return code."""
    request = {"method": case.method, "url": url, "headers": case.headers}
    result = guests.core_box.run(
        guests.core_module, input_value=request, grants=grants, limits=limits_for(case)
    )
    (value,) = result.output
    if value < 0:
        return Observed(HostCode(value), _last_reason(result), None, result.egress)
    return Observed(None, "", int(value), result.egress)


# -- the corpus -------------------------------------------------------------------------------


def test_corpus_size_and_category_coverage() -> None:
    """>= 20 cases, every category covered, every field-notes pitfall mapped to a category."""
    table = coverage(CASES)
    listing = "\n".join(
        f"  {name:16} {len(ids):2}  {', '.join(ids)}" for name, ids in table.items()
    )
    print(f"\negress corpus: {len(CASES)} cases\n{listing}")
    assert len(CASES) >= MIN_CASES, listing
    assert all(table[name] for name in CATEGORIES), listing
    for pitfall, categories in FIELD_NOTE_PITFALLS.items():
        assert all(table[c] for c in categories), pitfall
    assert len({case.id for case in CASES}) == len(CASES)
    # Guest drivers cover refusals and successes alike, not just one kind.
    guest_cases = [c for c in CASES if set(c.drivers) - {"client"}]
    assert {c.outcome for c in guest_cases} == {"ok", "refused"}


PARAMS = [
    pytest.param(case, driver, id=f"{case.id}[{driver}]")
    for case in CASES
    for driver in DRIVERS
    if driver in case.drivers
]


@pytest.mark.parametrize(("case", "driver"), PARAMS)
def test_egress_case(
    case: Case,
    driver: str,
    servers: dict[str, LoopbackServer],
    pki: Pki,
    request: pytest.FixtureRequest,
) -> None:
    """One case through one driver; guests are loaded only if a guest-driven case runs."""
    ports = {name: server.port for name, server in servers.items()}
    for server in servers.values():
        server.reset()
    url = fill(case.url, ports, case.route(ports))
    grants = call_grants(case, ports)
    resolver = None if case.dns is None else ScriptedResolver(dict(case.dns))

    if driver == "client":
        observed = run_client(case, url, grants, resolver, pki)
    else:
        guests: Guests = request.getfixturevalue("guests")
        assert resolver is not None
        guests.resolver.current = resolver
        try:
            runner = run_component if driver == "component" else run_core
            observed = runner(case, url, grants, guests)
        except errors.RuntimeFailure as failure:  # the guest call itself must not fail
            pytest.fail(f"{case.id}: guest call failed: {failure}")
        finally:
            guests.resolver.current = None

    check(case, driver, observed, servers, ports, resolver)


def check(
    case: Case,
    driver: str,
    observed: Observed,
    servers: dict[str, LoopbackServer],
    ports: dict[str, int],
    resolver: ScriptedResolver | None,
) -> None:
    """The shared assertions; each names the case file so a failure points at the data."""
    where = f"{case.source.name} via {driver}: {observed}"
    if case.outcome == "refused":
        assert observed.code == case.code, where
        if case.reason is not None:
            assert observed.reason == fill(case.reason, ports), where
        else:
            assert case.reason_prefix is not None
            assert observed.reason.startswith(fill(case.reason_prefix, ports)), where
        assert observed.records and observed.records[-1]["decision"] == "denied", where
        if observed.guest_message is not None:
            # The guest sees the firewall's reason, not just a code.
            assert observed.guest_message.endswith(observed.reason), where
    else:
        assert observed.code is None, where
        assert observed.status == case.expect_status, where
        assert observed.records[-1]["decision"] == "allowed", where

    if case.decisions is not None:
        assert [r["decision"] for r in observed.records] == list(case.decisions), where
    if case.address is not None:
        if case.address == "none":
            assert all(r["address"] is None for r in observed.records), where
        else:
            assert observed.records[-1]["address"] == case.address, where
    if case.record_port is not None:
        expected = case.record_port
        port = int(fill(expected, ports)) if isinstance(expected, str) else expected
        assert observed.records[-1]["port"] == port, where
    if case.max_bytes_received is not None:
        assert observed.records[-1]["bytes_received"] <= case.max_bytes_received, where
    if case.resolver_calls is not None:
        assert resolver is not None, where
        assert len(resolver.calls) == case.resolver_calls, (where, resolver.calls)

    time.sleep(ACCEPT_GRACE_S)
    for name in SERVERS:
        expected_connections = case.connections.get(name, 0)
        assert servers[name].connections == expected_connections, (name, where)
    for name, seen in case.seen.items():
        assert servers[name].seen, (name, where)
        last = servers[name].seen[-1]
        if seen.host is not None:
            assert last.host == fill(seen.host, ports), (name, last, where)
        if seen.path is not None:
            assert last.path == fill(seen.path, ports), (name, last, where)
        for header, value in seen.headers.items():
            assert last.headers.get(header.lower()) == value, (name, last, where)
        for header in seen.headers_absent:
            assert header.lower() not in last.headers, (name, last, where)


def test_case_files_are_all_toml() -> None:
    """A stray non-TOML file in the corpus directory would be silently skipped."""
    directory = Path(__file__).resolve().parent / "egress"
    assert sorted(p.suffix for p in directory.iterdir()) == [".toml"] * len(CASES)
