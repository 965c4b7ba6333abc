"""Loader for the hostile-egress corpus in ``tests/security/egress/*.toml``.

Why data files: every egress bypass known from comparable systems (redirects to hosts nobody
granted, ``Host:`` re-targeting as in Spin CVE-2024-32980, names resolving to loopback or
the metadata address, IP literals spelled so that a string comparison misses them,
userinfo confusion) is one request + one policy + one server behaviour + one expected
refusal. Keeping each as a small reviewable file makes the corpus easy to extend and keeps
the harness from drifting into per-case special-casing.

The schema is strict (unknown keys are errors) so a typo cannot silently switch off an
assertion. Strings may use the placeholders ``{web}``, ``{web2}`` and ``{tls}`` (ports of
the loopback servers) and, in ``request.url``, ``{route}`` (the server path that makes the
server behave as ``[server]`` says).

Case file layout::

    id = "<file stem>"
    title = "one line"
    why = "the threat, in a sentence or two"
    categories = ["redirect", ...]          # coverage labels, see CATEGORIES
    drivers = ["client", "component", "core"]  # default ["client"]

    [request]            method (GET), url, headers (table of strings)
    [grants]             declared_hosts, operator_hosts (["*"] = as declared), wildcards,
                         allow_http, allow_private_network, allowed_ports (server names or
                         numbers; absent = default ports only), manifest (default true:
                         declared hosts go through the real manifest parser)
    [limits]             timeout_ms, max_response_bytes, max_requests
    [dns]                host = ["addr", ...] or host = [["first answer"], ["later"]];
                         no table = the system resolver; an empty table = a hook that
                         knows no name (proves the resolver was never consulted)
    [server]             name (web), behaviour (echo|redirect|chain|big|slow|trickle|
                         trickle-headers), location + status (redirect), hops (chain), path
    [expect]             outcome (refused|ok), code, reason | reason_prefix, status,
                         connections (server -> exact TCP accepts; unlisted servers: 0),
                         decisions, resolver_calls, address ("none" = never connected),
                         record_port, max_bytes_received, seen
                         (server -> {host, path, headers, headers_absent})
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from palyra.abi import HostCode

CASE_DIR = Path(__file__).resolve().parent / "egress"

SERVERS = ("web", "web2", "tls")
DRIVERS = ("client", "component", "core")
BEHAVIOURS = ("echo", "redirect", "chain", "big", "slow", "trickle", "trickle-headers")

# Every category the corpus must cover, with what it stands for (the brief's checklist and
# the egress pitfalls of shared/reference/field-notes.md §3 and §9 item 2).
CATEGORIES: dict[str, str] = {
    "baseline": "a granted request succeeds, so refusals elsewhere are not vacuous",
    "redirect": "every redirect hop is re-validated (host, scheme, port, address)",
    "downgrade": "https -> http on a redirect",
    "metadata": "cloud metadata 169.254.169.254 by literal, name or redirect",
    "private-address": "loopback/RFC1918/link-local destinations need allow_private_network",
    "dns": "names resolving to private addresses (resolver hook or system resolver)",
    "pinning": "one resolution per hop; the socket goes to the checked address",
    "ipv6": "IPv6 literals and IPv4-mapped/expanded forms",
    "ip-literal": "decimal/octal/hex/short IPv4 spellings",
    "userinfo": "user@host confusion and look-alikes",
    "host-header": "guest-chosen Host header (Spin CVE-2024-32980)",
    "port": "explicit, default and out-of-range ports",
    "scheme": "non-http schemes, casing, missing scheme",
    "oversize": "response bigger than the cap",
    "slow": "server slower than the call's deadline",
    "credentials": "credential headers stripped when a redirect leaves the origin",
    "wildcard": "'*' grants never reach private addresses or IP literals",
    "grants": "effective hosts = manifest declaration ∩ operator policy",
    "method": "methods that cannot be policed (TRACE/CONNECT)",
    "quota": "per-call request budget counts redirect hops",
    "idna": "Unicode host spellings of private literals",
}

_TOP = {"id", "title", "why", "categories", "drivers"} | {
    "request",
    "grants",
    "limits",
    "dns",
    "server",
    "expect",
}
_REQUEST = {"method", "url", "headers"}
_GRANTS = {
    "declared_hosts",
    "operator_hosts",
    "wildcards",
    "allow_http",
    "allow_private_network",
    "allowed_ports",
    "manifest",
}
_LIMITS = {"timeout_ms", "max_response_bytes", "max_requests"}
_SERVER = {"name", "behaviour", "location", "status", "hops", "path"}
_EXPECT = {
    "outcome",
    "code",
    "reason",
    "reason_prefix",
    "status",
    "connections",
    "decisions",
    "resolver_calls",
    "address",
    "record_port",
    "max_bytes_received",
    "seen",
}
_SEEN = {"host", "path", "headers", "headers_absent"}


class CaseError(ValueError):
    """A malformed case file (the corpus itself is wrong, not the product)."""


@dataclass(frozen=True)
class Seen:
    """What the last request a server received must look like."""

    host: str | None = None
    path: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    headers_absent: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    """One hostile request, its policy, the server's behaviour and the expected outcome."""

    id: str
    title: str
    why: str
    categories: tuple[str, ...]
    drivers: tuple[str, ...]
    # request
    method: str
    url: str
    headers: dict[str, str]
    # grants
    declared_hosts: tuple[str, ...]
    operator_hosts: tuple[str, ...]
    wildcards: bool
    allow_http: bool
    allow_private_network: bool
    allowed_ports: tuple[str | int, ...] | None
    manifest: bool
    # limits
    timeout_ms: int
    max_response_bytes: int | None
    max_requests: int | None
    # dns: None = system resolver; else host -> successive answers (last one repeats)
    dns: dict[str, tuple[tuple[str, ...], ...]] | None
    # server
    server: str
    behaviour: str
    location: str
    status: int
    hops: int
    path: str
    # expectations
    outcome: str
    code: HostCode | None
    reason: str | None
    reason_prefix: str | None
    expect_status: int | None
    connections: dict[str, int]
    decisions: tuple[str, ...] | None
    resolver_calls: int | None
    address: str | None
    record_port: str | int | None
    max_bytes_received: int | None
    seen: dict[str, Seen]
    source: Path

    def route(self, ports: dict[str, int]) -> str:
        """The server path that makes ``self.server`` behave as the case says."""
        if self.behaviour == "echo":
            return self.path or "/echo"
        if self.behaviour == "redirect":
            target = fill(self.location, ports)
            return f"/redirect?code={self.status}&to={quote(target, safe='')}"
        if self.behaviour == "chain":
            return f"/chain/{self.hops}"
        return "/" + self.behaviour


def fill(text: str, ports: dict[str, int], route: str = "") -> str:
    """Substitute the placeholders; plain ``replace`` so braces elsewhere stay literal."""
    for name, port in ports.items():
        text = text.replace("{" + name + "}", str(port))
    return text.replace("{route}", route)


def _table(doc: dict[str, Any], name: str, allowed: set[str], where: Path) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise CaseError(f"{where.name}: [{name}] must be a table")
    unknown = set(value) - allowed
    if unknown:
        raise CaseError(f"{where.name}: unknown keys in [{name}]: {sorted(unknown)}")
    return value


def _strings(value: Any, what: str, where: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CaseError(f"{where.name}: {what} must be a list of strings")
    return tuple(value)


def _dns(raw: Any, where: Path) -> dict[str, tuple[tuple[str, ...], ...]] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise CaseError(f"{where.name}: [dns] must be a table")
    table: dict[str, tuple[tuple[str, ...], ...]] = {}
    for host, answers in raw.items():
        if isinstance(answers, list) and answers and all(isinstance(a, list) for a in answers):
            table[host] = tuple(_strings(a, f"dns.{host}", where) for a in answers)
        else:
            table[host] = (_strings(answers, f"dns.{host}", where),)
    return table


def load_case(path: Path) -> Case:
    """Parse and validate one case file."""
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    unknown = set(doc) - _TOP
    if unknown:
        raise CaseError(f"{path.name}: unknown top-level keys {sorted(unknown)}")
    if doc.get("id") != path.stem:
        raise CaseError(f"{path.name}: id must equal the file stem")
    categories = _strings(doc.get("categories"), "categories", path)
    if not categories or set(categories) - set(CATEGORIES):
        raise CaseError(f"{path.name}: unknown or missing categories {categories}")
    drivers = _strings(doc.get("drivers", ["client"]), "drivers", path)
    if not drivers or set(drivers) - set(DRIVERS):
        raise CaseError(f"{path.name}: unknown drivers {drivers}")

    request = _table(doc, "request", _REQUEST, path)
    grants = _table(doc, "grants", _GRANTS, path)
    limits = _table(doc, "limits", _LIMITS, path)
    server = _table(doc, "server", _SERVER, path)
    expect = _table(doc, "expect", _EXPECT, path)
    dns = _dns(doc.get("dns"), path)
    if dns is None and set(drivers) != {"client"}:
        raise CaseError(f"{path.name}: guest drivers need a [dns] table (resolver hook)")

    outcome = expect.get("outcome")
    if outcome not in ("refused", "ok"):
        raise CaseError(f"{path.name}: expect.outcome must be 'refused' or 'ok'")
    code = None
    if outcome == "refused":
        if expect.get("code") not in HostCode.__members__:
            raise CaseError(f"{path.name}: a refusal needs expect.code (a HostCode name)")
        code = HostCode[expect["code"]]
        if ("reason" in expect) == ("reason_prefix" in expect):
            raise CaseError(f"{path.name}: a refusal needs exactly one of reason/reason_prefix")
    elif "status" not in expect:
        raise CaseError(f"{path.name}: an allowed request needs expect.status")

    connections = expect.get("connections")
    if not isinstance(connections, dict) or set(connections) - set(SERVERS):
        raise CaseError(f"{path.name}: expect.connections must map server names to counts")

    behaviour = server.get("behaviour", "echo")
    if behaviour not in BEHAVIOURS:
        raise CaseError(f"{path.name}: unknown server behaviour {behaviour}")
    if behaviour == "redirect" and "location" not in server:
        raise CaseError(f"{path.name}: a redirecting server needs a location")

    ports = grants.get("allowed_ports")
    if ports is not None and not all(
        (isinstance(p, str) and p in SERVERS) or isinstance(p, int) for p in ports
    ):
        raise CaseError(f"{path.name}: allowed_ports entries are server names or numbers")

    seen: dict[str, Seen] = {}
    for name, spec in expect.get("seen", {}).items():
        if name not in SERVERS or not isinstance(spec, dict) or set(spec) - _SEEN:
            raise CaseError(f"{path.name}: bad expect.seen.{name}")
        seen[name] = Seen(
            host=spec.get("host"),
            path=spec.get("path"),
            headers=dict(spec.get("headers", {})),
            headers_absent=_strings(spec.get("headers_absent", []), "headers_absent", path),
        )

    decisions = expect.get("decisions")
    return Case(
        id=path.stem,
        title=str(doc.get("title", "")),
        why=str(doc.get("why", "")),
        categories=categories,
        drivers=drivers,
        method=str(request.get("method", "GET")),
        url=str(request["url"]),
        headers={str(k): str(v) for k, v in request.get("headers", {}).items()},
        declared_hosts=_strings(grants.get("declared_hosts", []), "declared_hosts", path),
        operator_hosts=_strings(grants.get("operator_hosts", ["*"]), "operator_hosts", path),
        wildcards=bool(grants.get("wildcards", False)),
        allow_http=bool(grants.get("allow_http", False)),
        allow_private_network=bool(grants.get("allow_private_network", False)),
        allowed_ports=None if ports is None else tuple(ports),
        manifest=bool(grants.get("manifest", True)),
        timeout_ms=int(limits.get("timeout_ms", 5000)),
        max_response_bytes=limits.get("max_response_bytes"),
        max_requests=limits.get("max_requests"),
        dns=dns,
        server=str(server.get("name", "web")),
        behaviour=behaviour,
        location=str(server.get("location", "")),
        status=int(server.get("status", 302)),
        hops=int(server.get("hops", 0)),
        path=str(server.get("path", "")),
        outcome=outcome,
        code=code,
        reason=expect.get("reason"),
        reason_prefix=expect.get("reason_prefix"),
        expect_status=expect.get("status"),
        connections={str(k): int(v) for k, v in connections.items()},
        decisions=None if decisions is None else _strings(decisions, "decisions", path),
        resolver_calls=expect.get("resolver_calls"),
        address=expect.get("address"),
        record_port=expect.get("record_port"),
        max_bytes_received=expect.get("max_bytes_received"),
        seen=seen,
        source=path,
    )


def load_cases(directory: Path = CASE_DIR) -> list[Case]:
    """Every case of the corpus, sorted by id."""
    return [load_case(path) for path in sorted(directory.glob("*.toml"))]


def coverage(cases: list[Case]) -> dict[str, list[str]]:
    """Category -> ids of the cases that cover it (every category present, maybe empty)."""
    table: dict[str, list[str]] = {name: [] for name in CATEGORIES}
    for case in cases:
        for category in case.categories:
            table[category].append(case.id)
    return table
