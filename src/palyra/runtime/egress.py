"""HTTP egress for sandboxed guests: a firewall, not an allowlist.

A host-name allowlist checked once on the initial URL is not a security boundary. The
known bypasses all go around such a check rather than through it: a ``Host:`` header that
re-targets the request (Spin CVE-2024-32980), a granted name that resolves to ``127.0.0.1``
or the cloud metadata address, a DNS answer that changes between the check and the connect
(rebinding), a redirect to a host nobody granted, an IP literal spelled in decimal or octal
so that a string comparison misses it, or ``https://granted@evil/`` userinfo confusion. So
every attempt here, including every redirect hop, goes through the complete policy:
scheme, exact host grant, port, method, guest headers, sizes, one DNS resolution whose
every answer must be public, and then a connection to exactly the address that was checked.
Every attempt, allowed or not, is recorded for the call result and the audit log.

DNS pinning. The policy decision is only meaningful if the socket goes to the address that
was checked, so the HTTP library must never resolve names itself. We use httpcore (the
transport under httpx) with a custom :class:`httpcore.NetworkBackend`: its ``connect_tcp``
refuses any destination other than the one host/port of the current hop and opens the
socket to the pinned IP address itself, without calling the resolver. The request URL keeps
the host name, so httpcore derives the ``Host`` header origin, the TLS SNI name and the
certificate hostname check from the name while the TCP connection goes to the checked IP.
We prefer this to rewriting the URL to the IP plus ``extensions={"sni_hostname": ...}``
because nothing has to be kept consistent by hand (Host header, SNI, verification name,
connection-pool key), and the backend fails closed if anything ever asks it for another
destination. Owning the socket also lets every read, write and TLS handshake be bounded by
the absolute deadline (a server trickling one byte at a time cannot stretch a call).

We use httpcore directly rather than ``httpx.Client`` because the client layer's extras are
exactly what egress must not have: environment proxies and ``.netrc`` (``trust_env``), a
cookie jar that persists across requests, and automatic redirects. At this layer none of
them exists, so none can be forgotten. Each hop gets a fresh one-connection pool that is
closed afterwards: no connection made for one checked address is ever reused for another
decision.

Threading: one client per tool call is the intended use. The quota counter and the records
are guarded by a lock, so concurrent ``request`` calls on one client are safe; they are not
serialized against each other.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple
from urllib.parse import quote, urljoin

import httpcore
import idna

from palyra.abi import HostCode

__all__ = [
    "EgressClient",
    "EgressCode",
    "EgressError",
    "EgressPolicy",
    "EgressRecord",
    "HttpResponse",
    "Resolver",
    "is_private_address",
]


# The data ABI's return codes; the egress client reports the same numbers to the guest.
EgressCode = HostCode


class EgressError(Exception):
    """A refused or failed attempt; ``reason`` is shown to the guest and the operator.

    Reasons name hosts, addresses, ports, methods and header *names* at most: never header
    values, query strings or userinfo, and they pass through the client's ``redact``.
    """

    def __init__(self, code: EgressCode, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"{code.name.lower()}: {reason}")


@dataclass(frozen=True)
class EgressPolicy:
    """What one tool call may reach.

    Ports: the scheme's default port (443 for https, 80 for http) is always allowed; any
    other port only if it is listed in ``allowed_ports``. ``allowed_ports=None`` therefore
    means "default ports only". Hosts: entries are exact lowercase names or IP literals; an
    entry containing ``*`` never matches unless ``allow_wildcards`` is set, and then ``*``
    matches any *name* (never an IP literal) and ``*.example.com`` matches names strictly
    below ``example.com`` at any depth, not ``example.com`` itself. No grant, wildcard or
    not, lifts the private-address rule; only ``allow_private_network`` does. CONNECT,
    TRACE and TRACK are refused even when listed in ``allowed_methods``: a tunnel cannot be
    policed, and TRACE echoes request headers (credentials) back.
    """

    allowed_hosts: tuple[str, ...]
    allow_wildcards: bool = False
    allow_http: bool = False
    allow_private_network: bool = False
    allowed_methods: frozenset[str] = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
    allowed_ports: frozenset[int] | None = None
    max_request_bytes: int = 1 << 20
    max_response_bytes: int = 4 << 20
    max_redirects: int = 5
    max_requests: int = 32
    ca_bundle: str | None = None

    def __post_init__(self) -> None:
        # A bare string would be iterated character by character into single-letter grants.
        hosts: object = self.allowed_hosts
        if isinstance(hosts, str):
            raise TypeError("allowed_hosts must be a sequence of host names, not a string")
        object.__setattr__(self, "allowed_hosts", tuple(self.allowed_hosts))
        for name in (
            "max_request_bytes",
            "max_response_bytes",
            "max_redirects",
            "max_requests",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")


@dataclass(frozen=True)
class EgressRecord:
    """One attempt (one hop) as it goes into the call result and the audit log.

    ``url`` never has a query, fragment or userinfo (they can carry secrets). ``address`` is
    the IP connected to, or the last one attempted when connecting failed; ``None`` when
    the attempt was refused before any connection. ``bytes_sent``/``bytes_received`` are
    HTTP/1.1 bytes (head and body) as written to/read from the connection, TLS excluded.
    ``decision`` is "allowed" only for a hop that produced a response that was used (the
    final response or a redirect that was followed); anything else is "denied" with a reason.
    """

    url: str
    host: str
    port: int | None
    address: str | None
    method: str
    decision: str
    reason: str
    status: int | None
    bytes_sent: int
    bytes_received: int
    duration_ms: float

    def to_json(self) -> dict[str, object]:
        return {
            "url": self.url,
            "host": self.host,
            "port": self.port,
            "address": self.address,
            "method": self.method,
            "decision": self.decision,
            "reason": self.reason,
            "status": self.status,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "duration_ms": self.duration_ms,
        }


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


Resolver = Callable[[str, int], list[str]]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# --------------------------------------------------------------------------------------------
# Private addresses
# --------------------------------------------------------------------------------------------

# Explicit lists on top of ``ipaddress.is_global``: the stdlib's notion has changed between
# Python releases and misses ranges that matter here (multicast counts as "global", NAT64
# and IPv4-compatible forms are "global" whatever IPv4 address they embed, and some cloud
# metadata endpoints sit in ranges the stdlib treats as public).
_BLOCKED_V4: Final = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches localhost on Linux
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT; also Alibaba metadata 100.100.100.200
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local; AWS/GCP/Azure metadata 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments; Oracle metadata 192.0.0.192
        "192.0.2.0/24",
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, includes broadcast
        "168.63.129.16/32",  # Azure wireserver / metadata proxy (a "public" address)
    )
)
_BLOCKED_V6: Final = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/128",
        "::1/128",
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, includes Teredo 2001::/32
        "2001:db8::/32",
        "3fff::/20",  # documentation
        "5f00::/16",  # SRv6 SIDs
        "fc00::/7",  # unique local; AWS metadata fd00:ec2::254
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local
        "ff00::/8",  # multicast
    )
)
# IPv6 forms whose low 32 bits are an IPv4 destination: the embedded address decides.
_EMBEDS_V4_LOW32: Final = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/96",  # IPv4-compatible (deprecated)
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
        "64:ff9b::/96",  # well-known NAT64 prefix
    )
)


def is_private_address(address: IPAddress) -> bool:
    """True when the address is anything but a plain public unicast destination.

    Tunnelling and translation forms (IPv4-mapped, IPv4-compatible, 6to4, NAT64, SIIT) are
    judged by the IPv4 address they carry, because that is where the packets end up.
    Teredo is refused outright: it can reach any IPv4 host behind a relay.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return True
        mapped = address.ipv4_mapped
        if mapped is not None:
            return is_private_address(mapped)
        if address in _BLOCKED_V6[0] or address in _BLOCKED_V6[1]:
            return True
        for network in _EMBEDS_V4_LOW32:
            if address in network:
                return is_private_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        sixtofour = address.sixtofour
        if sixtofour is not None and is_private_address(sixtofour):
            return True
        if address.teredo is not None:
            return True
        if any(address in network for network in _BLOCKED_V6):
            return True
    elif any(address in network for network in _BLOCKED_V4):
        return True
    return address.is_multicast or not address.is_global


# --------------------------------------------------------------------------------------------
# URL parsing
# --------------------------------------------------------------------------------------------

# Control characters, any Unicode whitespace and backslashes: parsers disagree about all of
# them (WHATWG strips tabs/newlines and reads "\" as "/"; urllib strips some; servers vary),
# and a firewall must not parse a URL differently from whatever might see it next.
_BAD_URL_CHARS: Final = re.compile(r"[\x00-\x20\x7f-\x9f\\\s]")
_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_PORT: Final = re.compile(r"[0-9]{1,5}")
_LABEL: Final = re.compile(r"[a-z0-9_-]{1,63}")
# WHATWG treats a host whose last label is a number as IPv4 ("127.1", "0x7f.1", "2130706433").
_NUMERIC_LABEL: Final = re.compile(r"[0-9]+|0x[0-9a-f]*")
# Already-ASCII characters that may stay as they are in a request target; non-ASCII is
# percent-encoded as UTF-8 (what browsers send).
_TARGET_SAFE: Final = "".join(chr(c) for c in range(0x21, 0x7F))
_MAX_URL_CHARS: Final = 16384
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # lowercase ASCII name or canonical IP text, no brackets, no trailing dot
    ip: IPAddress | None  # set when the host is an IP literal
    port: int
    path: str  # percent-encoded, starts with "/"
    query: str | None  # without "?"; None when the URL had no "?"

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if isinstance(self.ip, ipaddress.IPv6Address) else self.host
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return host
        return f"{host}:{self.port}"

    @property
    def request_target(self) -> str:
        return self.path if self.query is None else f"{self.path}?{self.query}"

    @property
    def display_url(self) -> str:
        return f"{self.scheme}://{self.authority}{self.path}"

    @property
    def full_url(self) -> str:
        return f"{self.scheme}://{self.authority}{self.request_target}"


class _Refusal(Exception):
    """Internal: carries a refusal up to the one place that records it."""

    def __init__(
        self,
        code: EgressCode,
        reason: str,
        *,
        status: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.status = status


def _invalid(reason: str) -> _Refusal:
    return _Refusal(EgressCode.INVALID, reason)


def _parse_url(raw: object) -> _Target:
    """Parse strictly and build the request target ourselves.

    The request is later built from these parsed parts (host, port, target), never from the
    original string, so there is no second parser whose reading could differ from ours.
    """
    if not isinstance(raw, str):
        raise _invalid("URL must be a string")
    if len(raw) > _MAX_URL_CHARS:
        raise _Refusal(EgressCode.TOO_LARGE, "URL too long")
    if _BAD_URL_CHARS.search(raw):
        raise _invalid("URL contains whitespace, control characters or backslashes")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates survive JSON decoding
        raise _invalid("URL is not valid Unicode") from None
    match = _SCHEME.match(raw)
    if match is None:
        raise _invalid("URL must be absolute (scheme://host/...)")
    scheme = match.group(1).lower()
    if scheme not in _DEFAULT_PORTS:
        raise _invalid("unsupported URL scheme (only http and https)")
    rest = raw[match.end() :]
    if not rest.startswith("//"):
        raise _invalid("URL must be absolute (scheme://host/...)")
    rest = rest[2:]
    end = len(rest)
    for delimiter in "/?#":
        index = rest.find(delimiter)
        if index != -1:
            end = min(end, index)
    authority, remainder = rest[:end], rest[end:]
    if "@" in authority:
        raise _invalid("userinfo in URL is not allowed")

    port_text: str | None = None
    ip: IPAddress | None
    if authority.startswith("["):
        close = authority.find("]")
        if close == -1:
            raise _invalid("invalid IPv6 literal")
        literal, after = authority[1:close], authority[close + 1 :]
        if after:
            if not after.startswith(":"):
                raise _invalid("invalid host")
            port_text = after[1:]
        if "%" in literal:
            raise _invalid("IPv6 zone identifiers are not allowed")
        try:
            ip = ipaddress.IPv6Address(literal)
        except ValueError:
            raise _invalid("invalid IPv6 literal") from None
        host = str(ip)
    else:
        host_text, colon, port_part = authority.partition(":")
        if colon:
            port_text = port_part
        host, ip = _normalize_host(host_text)

    scheme_port = _DEFAULT_PORTS[scheme]
    if port_text is None:
        port = scheme_port
    else:
        if not _PORT.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
            raise _invalid("invalid port")
        port = int(port_text)

    remainder = remainder.partition("#")[0]
    path, question, query = remainder.partition("?")
    path = quote(path or "/", safe=_TARGET_SAFE)
    return _Target(
        scheme=scheme,
        host=host,
        ip=ip,
        port=port,
        path=path,
        query=quote(query, safe=_TARGET_SAFE) if question else None,
    )


def _normalize_host(text: str) -> tuple[str, IPAddress | None]:
    """Lowercase ASCII (punycode) name without trailing dot, or a canonical IPv4 literal.

    Non-canonical IPv4 spellings (decimal, octal, hex, short forms) are refused rather than
    interpreted: legitimate URLs never use them, and each interpretation is a chance to
    disagree with some other component about which machine is meant.
    """
    if not text:
        raise _invalid("empty host")
    if text.isascii():
        host = text.lower()
    else:
        try:
            host = idna.encode(text, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            raise _invalid("host is not a valid internationalized domain name") from None
    if host.endswith("."):
        host = host[:-1]
    if not host or len(host) > 253:
        raise _invalid("invalid host")
    labels = host.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise _invalid("invalid host")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        try:
            ip = ipaddress.IPv4Address(host)
        except ValueError:
            raise _invalid("non-canonical IPv4 address") from None
        if str(ip) != host:
            raise _invalid("non-canonical IPv4 address")
        return host, ip
    return host, None


def _normalize_grant(entry: str) -> str | None:
    """A policy entry in the same canonical form as parsed hosts (None: never matches)."""
    text = entry.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    try:
        host, _ = _normalize_host(text)
    except _Refusal:
        return None
    return host


# --------------------------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------------------------

_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CRLF_NUL: Final = re.compile(r"[\r\n\x00]")
_CTL: Final = re.compile(r"[\x01-\x08\x0a-\x1f\x7f]")
# Framing, routing and hop-by-hop headers belong to the host: a guest-chosen Host is the
# Spin CVE-2024-32980 bypass, and framing headers enable request smuggling. We refuse them
# (INVALID) instead of silently dropping them so a guest learns its request is not what it
# asked for.
_RESERVED_HEADERS: Final = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "http2-settings",
    }
)
# Dropped for the rest of a redirect chain once it leaves the original origin.
_CREDENTIAL_HEADERS: Final = frozenset({"authorization", "cookie", "proxy-authorization"})
_NEVER_METHODS: Final = frozenset({"CONNECT", "TRACE", "TRACK"})
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_USER_AGENT: Final = "palyra-egress/1"


class _Header(NamedTuple):
    name: str
    value: str
    credential: bool  # host-injected secret: dropped cross-origin like Authorization


def _validate_headers(headers: object, *, credential: bool) -> list[_Header]:
    if headers is None:
        return []
    if not isinstance(headers, Mapping):
        raise _invalid("headers must be a mapping of strings")
    result: list[_Header] = []
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise _invalid("header names and values must be strings")
        if _CRLF_NUL.search(name) or _CRLF_NUL.search(value):
            raise _invalid("header name or value contains CR, LF or NUL")
        if len(name) > 256 or not _TOKEN.fullmatch(name):
            raise _invalid("invalid header name")
        lower = name.lower()
        if lower in _RESERVED_HEADERS or lower.startswith("proxy-"):
            raise _invalid(f"header {name} cannot be set by the guest")
        if _CTL.search(value):
            raise _invalid(f"header {name} has control characters in its value")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _invalid(f"header {name} value is not valid Unicode") from None
        result.append(_Header(name, value.strip(" \t"), credential))
    return result


# --------------------------------------------------------------------------------------------
# Network backend: the pin
# --------------------------------------------------------------------------------------------


@dataclass
class _Meter:
    address: str | None = None
    sent: int = 0
    received: int = 0


def _remaining(deadline: float, timeout: float | None) -> float | None:
    left = deadline - time.monotonic()
    if left <= 0:
        return None
    return left if timeout is None else min(left, timeout)


def _connect_socket(address: str, port: int, timeout: float) -> socket.socket:
    """Open a TCP socket to a numeric address; no name resolution can happen here."""
    ip = ipaddress.ip_address(address)
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((address, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    return sock


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every blocking step ends by the call's absolute deadline.

    Socket timeouts apply per operation, so a server sending one byte per second would keep
    a per-read timeout happy forever; re-arming each operation with the time left until the
    deadline bounds the whole exchange. CPython applies an SSL socket's timeout to a
    handshake or record as a whole, so TLS is bounded the same way.
    """

    def __init__(self, sock: socket.socket, host: str, deadline: float, meter: _Meter) -> None:
        self._sock = sock
        self._host = host
        self._deadline = deadline
        self._meter = meter

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        left = _remaining(self._deadline, timeout)
        if left is None:
            raise httpcore.ReadTimeout("deadline exceeded")
        try:
            self._sock.settimeout(left)
            data = self._sock.recv(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout("read timed out") from exc
        except OSError as exc:
            raise httpcore.ReadError("read failed") from exc
        self._meter.received += len(data)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        while view:
            left = _remaining(self._deadline, timeout)
            if left is None:
                raise httpcore.WriteTimeout("deadline exceeded")
            try:
                self._sock.settimeout(left)
                sent = self._sock.send(view[:65536])
            except TimeoutError as exc:
                raise httpcore.WriteTimeout("write timed out") from exc
            except OSError as exc:
                raise httpcore.WriteError("write failed") from exc
            self._meter.sent += sent
            view = view[sent:]

    def close(self) -> None:
        self._sock.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        # The certificate must be checked against the granted name, nothing else.
        if server_hostname != self._host:
            self._sock.close()
            raise httpcore.ConnectError("TLS server name does not match the pinned host")
        left = _remaining(self._deadline, timeout)
        if left is None:
            self._sock.close()
            raise httpcore.ConnectTimeout("deadline exceeded")
        try:
            self._sock.settimeout(left)
            tls = ssl_context.wrap_socket(self._sock, server_hostname=server_hostname)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout("TLS handshake timed out") from exc
        except (OSError, ValueError) as exc:
            raise httpcore.ConnectError(_failure_reason(exc)) from exc
        return _DeadlineStream(tls, self._host, self._deadline, self._meter)

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._sock if isinstance(self._sock, ssl.SSLSocket) else None
        if info == "server_addr":
            return self._sock.getpeername()
        if info == "client_addr":
            return self._sock.getsockname()
        if info == "socket":
            return self._sock
        if info == "is_readable":
            # Used by the pool to notice idle connections the server closed.
            try:
                readable, _, _ = select.select([self._sock], [], [], 0)
            except (OSError, ValueError):
                return True
            return bool(readable)
        return None


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects only to the checked addresses of one hop's host and port."""

    def __init__(
        self, host: str, port: int, addresses: list[str], deadline: float, meter: _Meter
    ) -> None:
        self._host = host
        self._port = port
        self._addresses = addresses
        self._deadline = deadline
        self._meter = meter

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        if host != self._host or port != self._port:
            raise httpcore.ConnectError("destination is not the pinned host")
        failure: BaseException = httpcore.ConnectError("no address to connect to")
        for address in self._addresses:
            left = _remaining(self._deadline, timeout)
            if left is None:
                raise httpcore.ConnectTimeout("deadline exceeded")
            self._meter.address = address
            try:
                sock = _connect_socket(address, port, left)
            except TimeoutError:
                failure = httpcore.ConnectTimeout("connect timed out")
                continue
            except OSError as exc:
                failure = httpcore.ConnectError(_failure_reason(exc))
                continue
            return _DeadlineStream(sock, self._host, self._deadline, self._meter)
        raise failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not reachable from guests")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def _system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _failure_reason(exc: BaseException) -> str:
    """One safe line for the record, decided where the failure happened (in the backend).

    httpcore re-raises errors ``from None``, so the cause would be lost by the time the
    client sees them; the backend puts the explanation into the exception's message.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or "certificate verification failed"
        return _one_line(f"TLS certificate verification failed: {detail}")
    if isinstance(exc, ssl.SSLError):
        return _one_line(f"TLS handshake failed: {exc.reason or 'error'}")
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return _one_line(f"connection failed: {exc.strerror}")
    return f"connection failed ({type(exc).__name__})"


def _network_reason(exc: Exception) -> str:
    if isinstance(exc, httpcore.ConnectError):
        return _one_line(str(exc))  # written by _PinnedBackend / _DeadlineStream
    if isinstance(exc, httpcore.RemoteProtocolError):
        return "protocol error from upstream"
    if isinstance(exc, httpcore.ReadError | httpcore.WriteError):
        return "connection lost"
    return f"network failure ({type(exc).__name__})"


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------


@dataclass
class _Hop:
    """One attempt; a followed redirect produces the next hop from the previous one."""

    method: object
    url: object
    headers: list[_Header]
    body: bytes
    index: int = 0
    base: str | None = None  # for a redirect: the URL the Location is relative to
    previous: _Target | None = None
    # Filled in while the hop runs, so that a refusal is recorded with what was known.
    target: _Target | None = None
    method_name: str = ""
    meter: _Meter = field(default_factory=_Meter)


class EgressClient:
    """Performs guest HTTP requests under one :class:`EgressPolicy`; one per tool call.

    ``records`` holds every attempt in order (each redirect hop and each refusal is one),
    bounded at ``max_requests + 100`` entries so a guest hammering the quota cannot grow
    memory; further records are only counted in ``dropped_records``.
    """

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        resolver: Resolver | None = None,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.policy = policy
        self.records: list[EgressRecord] = []
        self.dropped_records = 0
        self._resolver = resolver
        self._redact: Callable[[str], str] = redact if redact is not None else str
        self._lock = threading.Lock()
        self._attempts = 0
        self._closed = False
        self._record_cap = policy.max_requests + 100
        self._tls: ssl.SSLContext | None = None
        self._exact: set[str] = set()
        self._suffixes: list[str] = []
        self._any_name = False
        for entry in policy.allowed_hosts:
            self._add_grant(entry)
        self._methods = frozenset(m.upper() for m in policy.allowed_methods)
        self._ports = frozenset(policy.allowed_ports or ())

    def _add_grant(self, entry: object) -> None:
        if not isinstance(entry, str):
            return
        text = entry.strip().lower()
        if "*" in text:
            if not self.policy.allow_wildcards:
                return
            if text == "*":
                self._any_name = True
            elif text.startswith("*.") and "*" not in text[2:]:
                suffix = _normalize_grant(text[2:])
                if suffix is not None:
                    self._suffixes.append("." + suffix)
            return
        host = _normalize_grant(text)
        if host is not None:
            self._exact.add(host)

    @property
    def attempts(self) -> int:
        """Attempts counted against ``max_requests`` so far (each redirect hop counts)."""
        return self._attempts

    def close(self) -> None:
        """Refuse further requests; no connection outlives a request, so nothing else to do."""
        with self._lock:
            self._closed = True

    def __enter__(self) -> EgressClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        deadline: float,
        credential_headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """Perform one guest request, following permitted redirects.

        ``deadline`` is an absolute ``time.monotonic()`` value covering DNS, connect, TLS,
        sending, receiving and every hop. ``credential_headers`` (an addition to the brief's
        API) are host-injected secret headers: validated and sent like ``headers``, but
        dropped like ``Authorization`` and ``Cookie`` as soon as a redirect leaves the
        original origin. Raises only :class:`EgressError`.
        """
        hop = _Hop(method=method, url=url, headers=[], body=b"")
        limit = 0.0
        while True:
            started = time.monotonic()
            try:
                self._begin_hop(hop)
                if hop.index == 0:
                    limit = self._take_inputs(hop, headers, body, deadline, credential_headers)
                response, location = self._run_hop(hop, limit)
            except _Refusal as refusal:
                raise self._refuse(hop, refusal, started) from None
            except Exception as exc:  # the contract: nothing but EgressError escapes
                failure = _Refusal(
                    EgressCode.UPSTREAM, f"unexpected failure ({type(exc).__name__})"
                )
                raise self._refuse(hop, failure, started) from None
            self._record(hop, "allowed", "", response.status, started)
            if location is None:
                return response
            hop = self._next_hop(hop, response.status, location)

    # -- one hop ------------------------------------------------------------------------------

    def _begin_hop(self, hop: _Hop) -> None:
        """Count the attempt before anything else, so a spent quota costs no parsing."""
        if isinstance(hop.method, str) and len(hop.method) <= 32 and _TOKEN.fullmatch(hop.method):
            hop.method_name = hop.method.upper()
        with self._lock:
            if self._closed:
                raise _Refusal(EgressCode.DENIED, "client is closed")
            if self._attempts >= self.policy.max_requests:
                raise _Refusal(
                    EgressCode.QUOTA,
                    f"request quota exhausted ({self.policy.max_requests} per call)",
                )
            self._attempts += 1
        if hop.base is not None:
            # urljoin silently drops tabs and newlines: check the Location as sent first,
            # by the same rule as a guest's URL.
            if _BAD_URL_CHARS.search(str(hop.url)):
                raise _invalid("Location contains whitespace, control characters or backslashes")
            try:
                raw_url: object = urljoin(hop.base, str(hop.url))
            except ValueError:
                raise _invalid("invalid redirect location") from None
        else:
            raw_url = hop.url
        hop.target = _parse_url(raw_url)
        if not hop.method_name:
            raise _invalid("invalid method")

    @staticmethod
    def _take_inputs(
        hop: _Hop, headers: object, body: object, deadline: object, credential_headers: object
    ) -> float:
        """Type-check the rest of the guest's request (it arrives from decoded JSON)."""
        if isinstance(deadline, bool) or not isinstance(deadline, int | float):
            raise _invalid("deadline must be a monotonic time")
        if not math.isfinite(deadline):
            raise _invalid("deadline must be finite")
        if not isinstance(body, bytes | bytearray):
            raise _invalid("body must be bytes")
        hop.body = bytes(body)
        hop.headers = _validate_headers(headers, credential=False)
        hop.headers += _validate_headers(credential_headers, credential=True)
        return float(deadline)

    def _run_hop(self, hop: _Hop, deadline: float) -> tuple[HttpResponse, str | None]:
        policy = self.policy
        target = hop.target
        assert target is not None
        method = hop.method_name
        previous = hop.previous

        if hop.index > policy.max_redirects:
            raise _Refusal(EgressCode.DENIED, "too many redirects")
        if previous is not None and previous.scheme == "https" and target.scheme == "http":
            raise _Refusal(EgressCode.DENIED, "redirect downgrades https to http")
        if target.scheme == "http" and not policy.allow_http:
            raise _Refusal(EgressCode.DENIED, "plain http is not allowed")
        if not self._host_granted(target):
            if previous is not None:
                raise _Refusal(EgressCode.DENIED, f"redirect to non-granted host {target.host}")
            raise _Refusal(EgressCode.DENIED, f"host not granted: {target.host}")
        if target.port != _DEFAULT_PORTS[target.scheme] and target.port not in self._ports:
            raise _Refusal(EgressCode.DENIED, f"port {target.port} not granted")
        if method in _NEVER_METHODS or method not in self._methods:
            raise _Refusal(EgressCode.DENIED, f"method {method} not allowed")
        if previous is not None and previous.origin != target.origin:
            # Once a chain leaves the origin the credentials were meant for, they stay off.
            hop.headers = [
                h
                for h in hop.headers
                if not h.credential and h.name.lower() not in _CREDENTIAL_HEADERS
            ]

        wire_headers = self._wire_headers(target, method, hop)
        size = len(method) + len(target.request_target) + 12 + len(hop.body) + 2
        size += sum(len(name) + len(value) + 4 for name, value in wire_headers)
        if size > policy.max_request_bytes:
            raise _Refusal(EgressCode.TOO_LARGE, "request too large")

        if time.monotonic() >= deadline:
            raise _Refusal(EgressCode.TIMEOUT, "deadline exceeded before connecting")
        addresses = self._resolve(target, deadline)
        if time.monotonic() >= deadline:
            raise _Refusal(EgressCode.TIMEOUT, "deadline exceeded during DNS resolution")
        return self._exchange(target, method, wire_headers, hop, addresses, deadline)

    def _host_granted(self, target: _Target) -> bool:
        if target.host in self._exact:
            return True
        if target.ip is not None:  # IP literals are reachable only when listed exactly
            return False
        return self._any_name or any(target.host.endswith(s) for s in self._suffixes)

    @staticmethod
    def _wire_headers(target: _Target, method: str, hop: _Hop) -> list[tuple[bytes, bytes]]:
        """Host first, taken from the checked URL and never from the guest."""
        names = {h.name.lower() for h in hop.headers}
        result = [(b"Host", target.authority.encode("ascii"))]
        if "user-agent" not in names:
            result.append((b"User-Agent", _USER_AGENT.encode("ascii")))
        if "accept-encoding" not in names:
            # Otherwise a server may compress; bodies are passed through undecoded and capped.
            result.append((b"Accept-Encoding", b"identity"))
        result.extend((h.name.encode("ascii"), h.value.encode("utf-8")) for h in hop.headers)
        if hop.body or method in {"POST", "PUT", "PATCH"}:
            result.append((b"Content-Length", str(len(hop.body)).encode("ascii")))
        return result

    def _resolve(self, target: _Target, deadline: float) -> list[str]:
        """Resolve once and check every answer; the answers become the only destinations."""
        answers: object
        if target.ip is not None:
            answers = [target.host]
        elif self._resolver is not None:
            try:
                answers = self._resolver(target.host, target.port)
            except Exception:
                raise _Refusal(
                    EgressCode.UPSTREAM, f"DNS resolution failed for {target.host}"
                ) from None
        else:
            answers = self._system_resolve(target, deadline)
        if not isinstance(answers, list | tuple) or not answers:
            raise _Refusal(EgressCode.UPSTREAM, f"no address for {target.host}")
        addresses: list[str] = []
        for answer in answers[:32]:
            try:
                ip = ipaddress.ip_address(answer)
            except (TypeError, ValueError):
                raise _Refusal(
                    EgressCode.UPSTREAM, "resolver returned an invalid address"
                ) from None
            if not self.policy.allow_private_network and is_private_address(ip):
                # One private answer taints the name: never "pick a public one" instead.
                raise _Refusal(EgressCode.DENIED, f"private address {ip}")
            text = str(ip)
            if text not in addresses:
                addresses.append(text)
        return addresses

    @staticmethod
    def _system_resolve(target: _Target, deadline: float) -> list[str]:
        # getaddrinfo has no timeout of its own: run it aside and stop waiting at the
        # deadline (an abandoned lookup finishes harmlessly in its daemon thread).
        box: list[list[str] | BaseException] = []
        done = threading.Event()

        def work() -> None:
            try:
                box.append(_system_resolve(target.host, target.port))
            except BaseException as exc:
                box.append(exc)
            finally:
                done.set()

        threading.Thread(target=work, name="egress-dns", daemon=True).start()
        if not done.wait(max(deadline - time.monotonic(), 0.0)):
            raise _Refusal(EgressCode.TIMEOUT, "DNS resolution timed out")
        result = box[0]
        if isinstance(result, BaseException):
            raise _Refusal(EgressCode.UPSTREAM, f"DNS resolution failed for {target.host}")
        return result

    def _tls_context(self) -> ssl.SSLContext:
        # Built on first https use: most calls never need one, and loading CAs costs time.
        if self._tls is None:
            try:
                import certifi

                context = ssl.create_default_context(cafile=certifi.where())
            except ImportError:  # pragma: no cover - certifi ships with httpx
                context = ssl.create_default_context()
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            if self.policy.ca_bundle is not None:
                context.load_verify_locations(cafile=self.policy.ca_bundle)
            self._tls = context
        return self._tls

    def _exchange(
        self,
        target: _Target,
        method: str,
        headers: list[tuple[bytes, bytes]],
        hop: _Hop,
        addresses: list[str],
        deadline: float,
    ) -> tuple[HttpResponse, str | None]:
        try:
            tls = self._tls_context() if target.scheme == "https" else None
        except (OSError, ValueError):
            raise _Refusal(EgressCode.UPSTREAM, "TLS configuration error") from None
        backend = _PinnedBackend(target.host, target.port, addresses, deadline, hop.meter)
        left = max(deadline - time.monotonic(), 0.001)
        url = httpcore.URL(
            scheme=target.scheme.encode("ascii"),
            host=target.host.encode("ascii"),
            port=target.port,
            target=target.request_target.encode("ascii"),
        )
        timeouts = {"connect": left, "read": left, "write": left, "pool": left}
        cap = self.policy.max_response_bytes
        try:
            with (
                # A fresh one-connection pool per hop: a connection opened for one checked
                # address is never reused for another decision.
                httpcore.ConnectionPool(
                    ssl_context=tls,
                    network_backend=backend,
                    max_connections=1,
                    max_keepalive_connections=0,
                    http1=True,
                    http2=False,
                    retries=0,
                ) as pool,
                pool.stream(
                    method.encode("ascii"),
                    url,
                    headers=headers,
                    content=hop.body,
                    extensions={"timeout": timeouts},
                ) as response,
            ):
                status = response.status
                response_headers = tuple(
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in response.headers
                )
                location = None
                if status in _REDIRECTS:
                    location = next(
                        (v for n, v in response_headers if n.lower() == "location"), None
                    )
                if location:
                    # A redirect's own body is of no use; closing the pool discards it.
                    return HttpResponse(status, response_headers, b""), location
                chunks: list[bytes] = []
                total = 0
                for chunk in response.iter_stream():
                    total += len(chunk)
                    if total > cap:
                        raise _Refusal(EgressCode.TOO_LARGE, "response too large", status=status)
                    if time.monotonic() >= deadline:
                        raise _Refusal(
                            EgressCode.TIMEOUT, "deadline exceeded reading response", status=status
                        )
                    chunks.append(chunk)
                return HttpResponse(status, response_headers, b"".join(chunks)), None
        except _Refusal:
            raise
        except httpcore.TimeoutException:
            raise _Refusal(EgressCode.TIMEOUT, "deadline exceeded") from None
        except httpcore.LocalProtocolError:
            raise _invalid("request rejected by the HTTP layer") from None
        except httpcore.UnsupportedProtocol:
            raise _invalid("unsupported protocol") from None
        except Exception as exc:
            if time.monotonic() >= deadline:
                raise _Refusal(EgressCode.TIMEOUT, "deadline exceeded") from None
            raise _Refusal(EgressCode.UPSTREAM, _network_reason(exc)) from None

    # -- redirects and records ----------------------------------------------------------------

    @staticmethod
    def _next_hop(hop: _Hop, status: int, location: str) -> _Hop:
        assert hop.target is not None
        method = hop.method_name
        body = hop.body
        headers = hop.headers
        if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
            # What browsers do; the body was meant for the original resource only.
            method, body = "GET", b""
            headers = [h for h in headers if not h.name.lower().startswith("content-")]
        with contextlib.suppress(UnicodeError):  # servers send raw UTF-8 more often than not
            location = location.encode("latin-1").decode("utf-8")
        return _Hop(
            method=method,
            url=location,
            headers=headers,
            body=body,
            index=hop.index + 1,
            base=hop.target.full_url,
            previous=hop.target,
        )

    def _refuse(self, hop: _Hop, refusal: _Refusal, started: float) -> EgressError:
        reason = refusal.reason
        if (
            hop.index > 0
            and refusal.code in (EgressCode.DENIED, EgressCode.INVALID)
            and "redirect" not in reason
        ):
            reason = f"redirect: {reason}"
        reason = self._redact(reason)
        self._record(hop, "denied", reason, refusal.status, started)
        return EgressError(refusal.code, reason)

    def _record(
        self, hop: _Hop, decision: str, reason: str, status: int | None, started: float
    ) -> None:
        with self._lock:
            if len(self.records) >= self._record_cap:
                self.dropped_records += 1
                return
        target = hop.target
        record = EgressRecord(
            url=self._redact(target.display_url) if target else "",
            host=self._redact(target.host) if target else "",
            port=target.port if target else None,
            address=hop.meter.address,
            method=hop.method_name,
            decision=decision,
            reason=reason,
            status=status,
            bytes_sent=hop.meter.sent,
            bytes_received=hop.meter.received,
            duration_ms=round((time.monotonic() - started) * 1000, 3),
        )
        with self._lock:
            if len(self.records) >= self._record_cap:
                self.dropped_records += 1
            else:
                self.records.append(record)
