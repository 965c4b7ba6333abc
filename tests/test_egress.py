"""The HTTP egress firewall against real loopback servers (no external network).

Successful requests need ``allow_private_network=True`` (loopback is private) and the
server's ephemeral port in ``allowed_ports``; private-address tests keep the default and
prove the refusal happened before any connection by counting the servers' accepts.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpcore
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from egress_servers import (
    BIG_BODY_BYTES,
    LoopbackServer,
    Pki,
    StubResolver,
    closed_port,
    make_pki,
    server_tls_context,
)
from palyra.runtime import egress
from palyra.runtime.egress import (
    EgressClient,
    EgressCode,
    EgressError,
    EgressPolicy,
    EgressRecord,
    HttpResponse,
)

HOST = "api.test.local"
OTHER = "other.test.local"


def _table() -> dict[str, list[str]]:
    return {
        HOST: ["127.0.0.1"],
        OTHER: ["127.0.0.1"],
        "evil.test.local": ["127.0.0.1"],
        "wrong.test.local": ["127.0.0.1"],
        "test.local": ["127.0.0.1"],
        "localhost": ["127.0.0.1"],
        "metadata.test.local": ["169.254.169.254"],
        "mixed.test.local": ["93.184.216.34", "10.0.0.1"],
        "v6.test.local": ["::1"],
        "public.test.local": ["93.184.216.34"],
        f"deep.{HOST}": ["127.0.0.1"],
    }


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("egress-pki"), (HOST, OTHER))


@pytest.fixture(scope="module")
def _servers(pki: Pki) -> Iterator[tuple[LoopbackServer, LoopbackServer, LoopbackServer]]:
    before = set(threading.enumerate())
    started = [
        LoopbackServer().start(),
        LoopbackServer().start(),
        LoopbackServer(server_tls_context(pki)).start(),
    ]
    try:
        yield started[0], started[1], started[2]
    finally:
        for server in started:
            server.stop()
    leaked = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert leaked == [], leaked


@pytest.fixture
def web(_servers: tuple[LoopbackServer, LoopbackServer, LoopbackServer]) -> LoopbackServer:
    """Plain HTTP server; counters reset per test."""
    _servers[0].reset()
    return _servers[0]


@pytest.fixture
def web2(_servers: tuple[LoopbackServer, LoopbackServer, LoopbackServer]) -> LoopbackServer:
    """A second plain HTTP server, the target of cross-host redirects."""
    _servers[1].reset()
    return _servers[1]


@pytest.fixture
def tls(_servers: tuple[LoopbackServer, LoopbackServer, LoopbackServer]) -> LoopbackServer:
    _servers[2].reset()
    return _servers[2]


@pytest.fixture
def resolver() -> StubResolver:
    return StubResolver(_table())


def loopback_policy(*ports: int, **overrides: Any) -> EgressPolicy:
    """A policy under which the loopback test servers are reachable."""
    base = EgressPolicy(
        allowed_hosts=(HOST,),
        allow_http=True,
        allow_private_network=True,
        allowed_ports=frozenset(ports),
    )
    return replace(base, **overrides)


def soon(seconds: float = 5.0) -> float:
    return time.monotonic() + seconds


def refused(
    client: EgressClient, code: EgressCode, method: str = "GET", url: str = "", **kwargs: Any
) -> tuple[EgressError, EgressRecord]:
    """Run a request that must fail with ``code``; return the error and its record."""
    kwargs.setdefault("deadline", soon())
    with pytest.raises(EgressError) as caught:
        client.request(method, url, **kwargs)
    assert caught.value.code == code, caught.value
    record = client.records[-1]
    assert record.decision == "denied"
    assert record.reason == caught.value.reason
    return caught.value, record


# -- allowed requests and DNS pinning ---------------------------------------------------------


def test_allowed_get(
    web: LoopbackServer, resolver: StubResolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Any name resolution outside the resolver would break pinning: fail loudly on one.
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[object] = []

    def watching_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        lookups.append(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", watching_getaddrinfo)
    client = EgressClient(loopback_policy(web.port), resolver=resolver)
    url = f"http://{HOST}:{web.port}/echo/item?token=s3cret&x=1"
    response = client.request("GET", url, headers={"Accept": "application/json"}, deadline=soon())

    assert isinstance(response, HttpResponse)
    assert response.status == 200
    assert ("X-Test", "yes") in response.headers
    payload = json.loads(response.body)
    assert payload["path"] == "/echo/item?token=s3cret&x=1"
    assert payload["host"] == f"{HOST}:{web.port}"
    assert web.seen[0].headers["accept"] == "application/json"
    assert resolver.calls == [(HOST, web.port)]
    assert HOST not in lookups

    (record,) = client.records
    assert record.decision == "allowed"
    assert record.reason == ""
    assert record.url == f"http://{HOST}:{web.port}/echo/item"
    assert "s3cret" not in json.dumps(record.to_json())
    assert (record.host, record.port, record.address) == (HOST, web.port, "127.0.0.1")
    assert record.status == 200
    assert record.method == "GET"
    assert record.bytes_sent > 0
    assert record.bytes_received > len(response.body)
    assert set(record.to_json()) == {
        "url",
        "host",
        "port",
        "address",
        "method",
        "decision",
        "reason",
        "status",
        "bytes_sent",
        "bytes_received",
        "duration_ms",
    }


def test_post_with_body(web: LoopbackServer, resolver: StubResolver) -> None:
    client = EgressClient(loopback_policy(web.port), resolver=resolver)
    response = client.request(
        "post",
        f"http://{HOST}:{web.port}/echo",
        headers={"Content-Type": "application/json"},
        body=b'{"a": 1}',
        deadline=soon(),
    )
    assert response.status == 200
    assert json.loads(response.body)["method"] == "POST"
    assert web.seen[0].body == b'{"a": 1}'
    assert web.seen[0].headers["content-length"] == "8"
    assert client.records[0].method == "POST"


def test_https_pinned_to_loopback_verifies_hostname(
    tls: LoopbackServer, resolver: StubResolver, pki: Pki
) -> None:
    """Connection goes to 127.0.0.1; SNI, Host and certificate check use the name."""
    policy = loopback_policy(tls.port, allow_http=False, ca_bundle=str(pki.ca_pem))
    client = EgressClient(policy, resolver=resolver)
    response = client.request("GET", f"https://{HOST}:{tls.port}/echo", deadline=soon())
    assert response.status == 200
    assert json.loads(response.body)["host"] == f"{HOST}:{tls.port}"
    assert tls.sni == [HOST]
    assert client.records[0].address == "127.0.0.1"
    assert client.records[0].url == f"https://{HOST}:{tls.port}/echo"


def test_https_certificate_for_another_name_fails(
    tls: LoopbackServer, resolver: StubResolver, pki: Pki
) -> None:
    policy = loopback_policy(
        tls.port, allowed_hosts=("wrong.test.local",), ca_bundle=str(pki.ca_pem)
    )
    client = EgressClient(policy, resolver=resolver)
    _, record = refused(
        client, EgressCode.UPSTREAM, url=f"https://wrong.test.local:{tls.port}/echo"
    )
    assert "certificate" in record.reason
    assert record.address == "127.0.0.1"
    assert tls.seen == []


def test_https_without_the_test_ca_fails(tls: LoopbackServer, resolver: StubResolver) -> None:
    client = EgressClient(loopback_policy(tls.port), resolver=resolver)
    refused(client, EgressCode.UPSTREAM, url=f"https://{HOST}:{tls.port}/echo")
    assert tls.seen == []


def test_pinned_backend_refuses_other_destinations() -> None:
    backend = egress._PinnedBackend(HOST, 443, ["127.0.0.1"], soon(), egress._Meter())
    with pytest.raises(httpcore.ConnectError):
        backend.connect_tcp("evil.test.local", 443)
    with pytest.raises(httpcore.ConnectError):
        backend.connect_tcp(HOST, 8443)
    with pytest.raises(httpcore.ConnectError):
        backend.connect_unix_socket("/var/run/docker.sock")


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
def test_ipv6_literal_and_name(resolver: StubResolver) -> None:
    server = LoopbackServer(host="::1").start()
    try:
        policy = loopback_policy(server.port, allowed_hosts=("[::1]", "v6.test.local"))
        client = EgressClient(policy, resolver=resolver)
        response = client.request("GET", f"http://[::1]:{server.port}/echo", deadline=soon())
        assert json.loads(response.body)["host"] == f"[::1]:{server.port}"
        assert client.records[0].url == f"http://[::1]:{server.port}/echo"
        assert client.records[0].address == "::1"
        response = client.request("GET", f"http://v6.test.local:{server.port}/", deadline=soon())
        assert json.loads(response.body)["host"] == f"v6.test.local:{server.port}"
        assert resolver.calls == [("v6.test.local", server.port)]
    finally:
        server.stop()


# -- host, port, scheme, method ---------------------------------------------------------------


def test_other_host_denied(web: LoopbackServer, resolver: StubResolver) -> None:
    client = EgressClient(loopback_policy(web.port), resolver=resolver)
    _, record = refused(client, EgressCode.DENIED, url=f"http://{OTHER}:{web.port}/echo")
    assert record.reason == f"host not granted: {OTHER}"
    assert record.address is None
    assert resolver.calls == []
    assert web.connections == 0


def test_other_port_denied(web: LoopbackServer, resolver: StubResolver) -> None:
    client = EgressClient(loopback_policy(), resolver=resolver)
    _, record = refused(client, EgressCode.DENIED, url=f"http://{HOST}:{web.port}/echo")
    assert record.reason == f"port {web.port} not granted"
    assert web.connections == 0


def test_http_refused_unless_allowed(web: LoopbackServer, resolver: StubResolver) -> None:
    client = EgressClient(loopback_policy(web.port, allow_http=False), resolver=resolver)
    _, record = refused(client, EgressCode.DENIED, url=f"http://{HOST}:{web.port}/echo")
    assert record.reason == "plain http is not allowed"
    assert web.connections == 0


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "TRACK", "OPTIONS"])
def test_method_not_allowed(method: str, web: LoopbackServer, resolver: StubResolver) -> None:
    client = EgressClient(loopback_policy(web.port), resolver=resolver)
    _, record = refused(client, EgressCode.DENIED, method, f"http://{HOST}:{web.port}/echo")
    assert record.reason == f"method {method} not allowed"
    assert web.connections == 0


def test_connect_and_trace_refused_even_if_listed(web: LoopbackServer) -> None:
    policy = loopback_policy(web.port, allowed_methods=frozenset({"GET", "CONNECT", "TRACE"}))
    client = EgressClient(policy, resolver=StubResolver(_table()))
    refused(client, EgressCode.DENIED, "CONNECT", f"http://{HOST}:{web.port}/")
    refused(client, EgressCode.DENIED, "TRACE", f"http://{HOST}:{web.port}/")
    assert web.connections == 0


@pytest.mark.parametrize("method", ["GE T", "", "G\r\nX", "GET\x00"])
def test_malformed_method_invalid(method: str, resolver: StubResolver) -> None:
    client = EgressClient(loopback_policy(80), resolver=resolver)
    refused(client, EgressCode.INVALID, method, f"http://{HOST}/")


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://api.test.local/",
        "gopher://api.test.local:70/_GET",
        "ws://api.test.local/",
        "javascript:alert(1)",
        "//api.test.local/echo",
        "/echo",
        "api.test.local/echo",
        "https:api.test.local/",
        "https:/api.test.local/",
        "https:///api.test.local/",
        "",
    ],
)
def test_non_http_or_relative_urls_invalid(url: str, resolver: StubResolver) -> None:
    client = EgressClient(loopback_policy(80), resolver=resolver)
    _, record = refused(client, EgressCode.INVALID, url=url)
    assert record.url == ""
    assert resolver.calls == []


def test_wildcards_need_opt_in(web: LoopbackServer, resolver: StubResolver) -> None:
    url = f"http://{HOST}:{web.port}/echo"
    off = EgressClient(
        loopback_policy(web.port, allowed_hosts=("*.test.local",)), resolver=resolver
    )
    refused(off, EgressCode.DENIED, url=url)
    assert web.connections == 0

    policy = loopback_policy(web.port, allowed_hosts=("*.test.local",), allow_wildcards=True)
    on = EgressClient(policy, resolver=resolver)
    assert on.request("GET", url, deadline=soon()).status == 200
    assert on.request("GET", f"http://deep.{HOST}:{web.port}/", deadline=soon()).status == 200
    refused(on, EgressCode.DENIED, url=f"http://test.local:{web.port}/echo")
    refused(on, EgressCode.DENIED, url=f"http://eviltest.local:{web.port}/echo")
    assert web.connections == 2


def test_star_grants_names_but_never_private_addresses_or_ip_literals(
    resolver: StubResolver,
) -> None:
    policy = EgressPolicy(allowed_hosts=("*",), allow_wildcards=True)
    client = EgressClient(policy, resolver=resolver)
    _, record = refused(client, EgressCode.DENIED, url="https://metadata.test.local/")
    assert record.reason == "private address 169.254.169.254"
    _, record = refused(client, EgressCode.DENIED, url="https://93.184.216.34/")
    assert record.reason == "host not granted: 93.184.216.34"


def test_host_normalization(web: LoopbackServer, resolver: StubResolver) -> None:
    client = EgressClient(loopback_policy(web.port), resolver=resolver)
    response = client.request("GET", f"HTTP://API.Test.LOCAL.:{web.port}/echo", deadline=soon())
    assert json.loads(response.body)["host"] == f"{HOST}:{web.port}"
    assert client.records[0].host == HOST


def test_idna_hosts_compare_in_punycode(resolver: StubResolver) -> None:
    policy = EgressPolicy(allowed_hosts=("xn--bcher-kva.example",))
    resolver.table["xn--bcher-kva.example"] = ["10.1.1.1"]
    client = EgressClient(policy, resolver=resolver)
    _, record = refused(client, EgressCode.DENIED, url="https://bücher.example/x")
    assert record.host == "xn--bcher-kva.example"
    assert record.reason == "private address 10.1.1.1"  # granted, then the address check
    refused(client, EgressCode.INVALID, url="https://\u2025bad..example/")


# -- private addresses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grant", "host", "address"),
    [
        ("127.0.0.1", "127.0.0.1", "127.0.0.1"),
        ("localhost", "localhost", "127.0.0.1"),
        ("metadata.test.local", "metadata.test.local", "169.254.169.254"),
        ("169.254.169.254", "169.254.169.254", "169.254.169.254"),
        ("v6.test.local", "v6.test.local", "::1"),
        ("::1", "[::1]", "::1"),
        ("::ffff:127.0.0.1", "[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("::ffff:127.0.0.1", "[::ffff:7f00:1]", "::ffff:7f00:1"),
        ("2002:7f00:1::", "[2002:7f00:1::]", "2002:7f00:1::"),
        ("64:ff9b::a00:1", "[64:ff9b::10.0.0.1]", "64:ff9b::a00:1"),
        ("::7f00:1", "[::127.0.0.1]", "::7f00:1"),
        ("fd00:ec2::254", "[fd00:ec2::254]", "fd00:ec2::254"),
        ("0.0.0.0", "0.0.0.0", "0.0.0.0"),
        ("100.100.100.200", "100.100.100.200", "100.100.100.200"),
        ("224.0.0.1", "224.0.0.1", "224.0.0.1"),
        ("mixed.test.local", "mixed.test.local", "10.0.0.1"),
    ],
)
def test_private_addresses_denied(
    grant: str, host: str, address: str, web: LoopbackServer, resolver: StubResolver
) -> None:
    policy = EgressPolicy(
        allowed_hosts=(grant,), allow_http=True, allowed_ports=frozenset({web.port})
    )
    client = EgressClient(policy, resolver=resolver)
    _, record = refused(client, EgressCode.DENIED, url=f"http://{host}:{web.port}/echo")
    assert record.reason == f"private address {address}"
    assert record.address is None
    assert web.connections == 0


@pytest.mark.parametrize(
    "host",
    [
        "2130706433",
        "0177.0.0.1",
        "0x7f.0.0.1",
        "0x7f000001",
        "127.1",
        "127.0.1",
        "127.000.000.001",
        "1.2.3.4.5",
        "%31%32%37.0.0.1",
        "[::1%25lo]",
        "[fe80::1%eth0]",
        "[v1.fe80::1]",
    ],
)
def test_non_canonical_ip_literals_invalid(
    host: str, web: LoopbackServer, resolver: StubResolver
) -> None:
    policy = EgressPolicy(
        allowed_hosts=("*",), allow_wildcards=True, allowed_ports=frozenset({web.port})
    )
    client = EgressClient(policy, resolver=resolver)
    refused(client, EgressCode.INVALID, url=f"https://{host}:{web.port}/")
    assert resolver.calls == []
    assert web.connections == 0


def test_fullwidth_digits_become_a_private_literal(resolver: StubResolver) -> None:
    # IDNA maps "１２７．０．０．１" to 127.0.0.1: the address rule must still apply.
    client = EgressClient(EgressPolicy(allowed_hosts=("127.0.0.1",)), resolver=resolver)
    _, record = refused(client, EgressCode.DENIED, url="https://１２７．０．０．１/")
    assert record.reason == "private address 127.0.0.1"


def test_is_private_address_table() -> None:
    import ipaddress

    private = [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "169.254.169.254",
        "192.0.0.192",
        "168.63.129.16",
        "255.255.255.255",
        "240.0.0.1",
        "198.18.0.1",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::",
        "2001::1",
        "64:ff9b:1::1",
        "::ffff:0:a00:1",
    ]
    public = ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "2002:5db8:d822::", "64:ff9b::808:808"]
    for text in private:
        assert egress.is_private_address(ipaddress.ip_address(text)), text
    for text in public:
        assert not egress.is_private_address(ipaddress.ip_address(text)), text


def test_resolver_failures_are_upstream(resolver: StubResolver) -> None:
    client = EgressClient(EgressPolicy(allowed_hosts=("nowhere.test.local",)), resolver=resolver)
    _, record = refused(client, EgressCode.UPSTREAM, url="https://nowhere.test.local/")
    assert record.reason == "DNS resolution failed for nowhere.test.local"

    def junk(host: str, port: int) -> list[str]:
        return ["not-an-ip"]

    client = EgressClient(EgressPolicy(allowed_hosts=(HOST,)), resolver=junk)
    refused(client, EgressCode.UPSTREAM, url=f"https://{HOST}/")


# -- userinfo, headers, sizes -----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://api.test.local@evil.test/",
        "https://user:pw@api.test.local/",
        "https://@api.test.local/",
        "https://api.test.local:443@evil.test/",
    ],
)
def test_userinfo_refused(url: str, resolver: StubResolver) -> None:
    client = EgressClient(EgressPolicy(allowed_hosts=(HOST, "evil.test")), resolver=resolver)
    error, record = refused(client, EgressCode.INVALID, url=url)
    assert error.reason == "userinfo in URL is not allowed"
    assert "pw" not in record.url
    assert resolver.calls == []


@pytest.mark.parametrize(
    "url",
    [
        "https://api.test.local/a b",
        "https://api.test.local/a\tb",
        "https://api.test.local/a\nb",
        "https://api.test.local\\@evil.test/",
        "https://api.test.local/\x00",
        "https://api.test.local/\u2028",
        " https://api.test.local/",
    ],
)
def test_whitespace_control_and_backslash_refused(url: str, resolver: StubResolver) -> None:
    client = EgressClient(EgressPolicy(allowed_hosts=(HOST,)), resolver=resolver)
    refused(client, EgressCode.INVALID, url=url)
    assert resolver.calls == []


@pytest.mark.parametrize(
    "name",
    [
        "Host",
        "host",
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Upgrade",
        "Expect",
    ],
)
def test_reserved_headers_refused(name: str, web: LoopbackServer, resolver: StubResolver) -> None:
    client = EgressClient(loopback_policy(web.port), resolver=resolver)
    error, _ = refused(
        client,
        EgressCode.INVALID,
        url=f"http://{HOST}:{web.port}/echo",
        headers={name: "evil.test.local"},
    )
    assert error.reason == f"header {name} cannot be set by the guest"
    assert web.connections == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"X-A": "v\r\nHost: evil"},
        {"X-A": "v\nX-B: 1"},
        {"X-A\r\nHost": "evil"},
        {"X-A": "nul\x00"},
        {"Bad Name": "v"},
        {"X-A": "bell\x07"},
    ],
)
def test_header_injection_refused(
    headers: dict[str, str], web: LoopbackServer, resolver: StubResolver
) -> None:
    client = EgressClient(loopback_policy(web.port), resolver=resolver)
    error, _ = refused(
        client, EgressCode.INVALID, url=f"http://{HOST}:{web.port}/echo", headers=headers
    )
    assert "evil" not in error.reason
    assert web.connections == 0


def test_secret_header_values_never_in_reasons(web: LoopbackServer, resolver: StubResolver) -> None:
    client = EgressClient(loopback_policy(web.port), resolver=resolver)
    error, record = refused(
        client,
        EgressCode.INVALID,
        url=f"http://{HOST}:{web.port}/echo",
        headers={"Authorization": "Bearer hunter2\x01"},
    )
    assert "hunter2" not in str(error)
    assert "hunter2" not in json.dumps(record.to_json())


def test_bad_input_types_invalid(resolver: StubResolver) -> None:
    client = EgressClient(loopback_policy(80), resolver=resolver)
    url = f"http://{HOST}/"
    bad: list[dict[str, Any]] = [
        {"headers": {"X-A": 1}},
        {"headers": ["X-A", "1"]},
        {"body": "text"},
        {"deadline": float("nan")},
        {"deadline": "soon"},
    ]
    for kwargs in bad:
        kwargs.setdefault("deadline", soon())
        with pytest.raises(EgressError) as caught:
            client.request("GET", url, **kwargs)
        assert caught.value.code == EgressCode.INVALID
    with pytest.raises(EgressError) as caught:
        client.request("GET", 42, deadline=soon())  # type: ignore[arg-type]
    assert caught.value.code == EgressCode.INVALID


def test_lone_surrogates_invalid(resolver: StubResolver) -> None:
    client = EgressClient(EgressPolicy(allowed_hosts=(HOST,)), resolver=resolver)
    refused(client, EgressCode.INVALID, url=f"https://{HOST}/\ud800")
    refused(client, EgressCode.INVALID, url="https://\ud800.test/")
    refused(client, EgressCode.INVALID, url=f"https://{HOST}/", headers={"X-A": "\udc80"})
    assert resolver.calls == []


def test_system_resolver_is_checked_too(web: LoopbackServer) -> None:
    """Without a stub the system resolver answers; its answers get the same checks."""
    strict = EgressClient(EgressPolicy(allowed_hosts=("localhost",)))
    _, record = refused(strict, EgressCode.DENIED, url="https://localhost/")
    assert record.reason.startswith("private address ")
    lenient = EgressClient(loopback_policy(web.port, allowed_hosts=("localhost",)))
    response = lenient.request("GET", f"http://localhost:{web.port}/echo", deadline=soon())
    assert json.loads(response.body)["host"] == f"localhost:{web.port}"
    assert lenient.records[-1].address == "127.0.0.1"


def test_oversize_request(web: LoopbackServer, resolver: StubResolver) -> None:
    client = EgressClient(loopback_policy(web.port, max_request_bytes=1000), resolver=resolver)
    url = f"http://{HOST}:{web.port}/echo"
    _, record = refused(client, EgressCode.TOO_LARGE, "POST", url, body=b"x" * 1000)
    assert record.reason == "request too large"
    refused(client, EgressCode.TOO_LARGE, url=url, headers={"X-Pad": "p" * 1000})
    assert web.connections == 0
    assert client.request("POST", url, body=b"x" * 500, deadline=soon()).status == 200


def test_oversize_response_stops_early(web: LoopbackServer, resolver: StubResolver) -> None:
    cap = 1 << 20
    client = EgressClient(loopback_policy(web.port, max_response_bytes=cap), resolver=resolver)
    started = time.monotonic()
    _, record = refused(client, EgressCode.TOO_LARGE, url=f"http://{HOST}:{web.port}/big")
    assert record.reason == "response too large"
    assert record.status == 200
    # Head (< 1 KiB) plus at most one 64 KiB read past the cap: the 10 MB were not read.
    assert cap < record.bytes_received <= cap + 64 * 1024 + 1024
    assert record.bytes_received < BIG_BODY_BYTES // 5
    assert time.monotonic() - started < 5


# -- redirects --------------------------------------------------------------------------------


def _redirect(server: LoopbackServer, to: str, code: int = 302) -> str:
    from urllib.parse import quote

    return f"http://{HOST}:{server.port}/redirect?code={code}&to={quote(to, safe='')}"


def test_redirect_to_non_granted_host(
    web: LoopbackServer, web2: LoopbackServer, resolver: StubResolver
) -> None:
    client = EgressClient(loopback_policy(web.port, web2.port), resolver=resolver)
    start = _redirect(web, f"http://evil.test.local:{web2.port}/echo")
    _, record = refused(client, EgressCode.DENIED, url=start)
    assert record.reason == "redirect to non-granted host evil.test.local"
    assert record.url == f"http://evil.test.local:{web2.port}/echo"
    assert [r.decision for r in client.records] == ["allowed", "denied"]
    assert client.records[0].status == 302
    assert web2.connections == 0
    assert resolver.calls == [(HOST, web.port)]


def test_redirect_chain_within_granted_host(web: LoopbackServer, resolver: StubResolver) -> None:
    client = EgressClient(loopback_policy(web.port), resolver=resolver)
    response = client.request("GET", f"http://{HOST}:{web.port}/chain/5", deadline=soon())
    assert (response.status, response.body) == (200, b"done")
    assert [r.url.rsplit("/", 1)[1] for r in client.records] == ["5", "4", "3", "2", "1", "0"]
    assert all(r.decision == "allowed" for r in client.records)
    # DNS is resolved again for every hop: each hop is checked on its own.
    assert len(resolver.calls) == 6
    assert client.attempts == 6


def test_too_many_redirects(web: LoopbackServer, resolver: StubResolver) -> None:
    client = EgressClient(loopback_policy(web.port), resolver=resolver)
    _, record = refused(client, EgressCode.DENIED, url=f"http://{HOST}:{web.port}/chain/6")
    assert record.reason == "too many redirects"
    assert len(web.seen) == 6  # the 7th request was never sent
    assert len(client.records) == 7


def test_redirect_https_to_http_denied(
    tls: LoopbackServer, web: LoopbackServer, resolver: StubResolver, pki: Pki
) -> None:
    policy = loopback_policy(tls.port, web.port, ca_bundle=str(pki.ca_pem))
    client = EgressClient(policy, resolver=resolver)
    from urllib.parse import quote

    target = quote(f"http://{HOST}:{web.port}/echo", safe="")
    url = f"https://{HOST}:{tls.port}/redirect?to={target}"
    _, record = refused(client, EgressCode.DENIED, url=url)
    assert record.reason == "redirect downgrades https to http"
    assert web.connections == 0


def test_cross_origin_redirect_drops_credentials(
    web: LoopbackServer, web2: LoopbackServer, resolver: StubResolver
) -> None:
    policy = loopback_policy(web.port, web2.port, allowed_hosts=(HOST, OTHER))
    client = EgressClient(policy, resolver=resolver)
    headers = {"Authorization": "Bearer guest", "Cookie": "a=b", "X-Keep": "1"}
    secret = {"X-Api-Key": "injected-secret"}

    same = _redirect(web, f"http://{HOST}:{web.port}/echo", 307)
    client.request("GET", same, headers=headers, credential_headers=secret, deadline=soon())
    final = web.seen[-1].headers
    assert final["authorization"] == "Bearer guest"
    assert final["x-api-key"] == "injected-secret"

    cross = _redirect(web, f"http://{OTHER}:{web2.port}/echo", 307)
    client.request("GET", cross, headers=headers, credential_headers=secret, deadline=soon())
    (seen,) = web2.seen
    assert seen.host == f"{OTHER}:{web2.port}"
    assert "authorization" not in seen.headers
    assert "cookie" not in seen.headers
    assert "x-api-key" not in seen.headers
    assert seen.headers["x-keep"] == "1"


def test_redirect_method_rewrites(web: LoopbackServer, resolver: StubResolver) -> None:
    target = f"http://{HOST}:{web.port}/echo"
    for code, method, expect_method, expect_body in [
        (303, "POST", "GET", b""),
        (302, "POST", "GET", b""),
        (301, "POST", "GET", b""),
        (307, "POST", "POST", b"payload"),
        (308, "PUT", "PUT", b"payload"),
        (303, "HEAD", "HEAD", b""),
    ]:
        web.reset()
        client = EgressClient(loopback_policy(web.port), resolver=resolver)
        client.request(
            method,
            _redirect(web, target, code),
            headers={"Content-Type": "text/plain"},
            body=b"payload" if method != "HEAD" else b"",
            deadline=soon(),
        )
        final = web.seen[-1]
        assert (final.method, final.body) == (expect_method, expect_body), code
        if expect_method == "GET":
            assert "content-type" not in final.headers


@pytest.mark.parametrize(
    "location",
    ["ftp://api.test.local/", "http://api.test.local\\@evil/", "http://u:p@api.test.local/"],
)
def test_redirect_to_invalid_location(
    location: str, web: LoopbackServer, resolver: StubResolver
) -> None:
    client = EgressClient(loopback_policy(web.port), resolver=resolver)
    error, _ = refused(client, EgressCode.INVALID, url=_redirect(web, location))
    assert error.reason.startswith("redirect: ")
    assert len(web.seen) == 1


def test_redirect_to_non_granted_port(
    web: LoopbackServer, web2: LoopbackServer, resolver: StubResolver
) -> None:
    client = EgressClient(loopback_policy(web.port), resolver=resolver)
    _, record = refused(
        client, EgressCode.DENIED, url=_redirect(web, f"http://{HOST}:{web2.port}/echo")
    )
    assert record.reason == f"redirect: port {web2.port} not granted"
    assert web2.connections == 0


# -- time -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/slow", "/trickle", "/trickle-headers"])
def test_slow_servers_time_out(path: str, web: LoopbackServer, resolver: StubResolver) -> None:
    client = EgressClient(loopback_policy(web.port), resolver=resolver)
    budget = 0.8
    started = time.monotonic()
    _, record = refused(
        client,
        EgressCode.TIMEOUT,
        url=f"http://{HOST}:{web.port}{path}",
        deadline=started + budget,
    )
    elapsed = time.monotonic() - started
    assert elapsed < budget + 0.5
    assert record.address == "127.0.0.1"
    assert web.connections == 1


def test_deadline_already_passed(web: LoopbackServer, resolver: StubResolver) -> None:
    client = EgressClient(loopback_policy(web.port), resolver=resolver)
    _, record = refused(
        client,
        EgressCode.TIMEOUT,
        url=f"http://{HOST}:{web.port}/echo",
        deadline=time.monotonic() - 1,
    )
    assert record.address is None
    assert resolver.calls == []
    assert web.connections == 0


def test_connection_refused(resolver: StubResolver) -> None:
    port = closed_port()
    client = EgressClient(loopback_policy(port), resolver=resolver)
    _, record = refused(client, EgressCode.UPSTREAM, url=f"http://{HOST}:{port}/")
    assert record.reason == "connection refused"
    assert record.address == "127.0.0.1"


# -- quota, records, redaction ----------------------------------------------------------------


def test_quota_is_cheap_and_records_bounded(web: LoopbackServer, resolver: StubResolver) -> None:
    client = EgressClient(loopback_policy(web.port, max_requests=32), resolver=resolver)
    url = f"http://{HOST}:{web.port}/echo"
    started = time.monotonic()
    codes: list[EgressCode | int] = []
    for _ in range(10_000):
        try:
            codes.append(client.request("GET", url, deadline=soon()).status)
        except EgressError as exc:
            codes.append(exc.code)
    elapsed = time.monotonic() - started
    assert codes[:32] == [200] * 32
    assert set(codes[32:]) == {EgressCode.QUOTA}
    assert web.connections == 32
    assert len(resolver.calls) == 32
    assert len(client.records) == 32 + 100
    assert client.dropped_records == 10_000 - len(client.records)
    assert client.records[-1].reason == "request quota exhausted (32 per call)"
    assert elapsed < 10


def test_redirect_hops_count_against_quota(web: LoopbackServer, resolver: StubResolver) -> None:
    client = EgressClient(loopback_policy(web.port, max_requests=3), resolver=resolver)
    _, record = refused(client, EgressCode.QUOTA, url=f"http://{HOST}:{web.port}/chain/5")
    assert len(web.seen) == 3
    assert record.url == ""


def test_refusals_count_against_quota(resolver: StubResolver) -> None:
    client = EgressClient(EgressPolicy(allowed_hosts=(), max_requests=2), resolver=resolver)
    refused(client, EgressCode.DENIED, url="https://a.test/")
    refused(client, EgressCode.INVALID, url="nonsense")
    refused(client, EgressCode.QUOTA, url="https://a.test/")


def test_redact(web: LoopbackServer, resolver: StubResolver) -> None:
    def redact(text: str) -> str:
        return text.replace("sekrit", "[REDACTED]")

    client = EgressClient(loopback_policy(web.port), resolver=resolver, redact=redact)
    client.request("GET", f"http://{HOST}:{web.port}/echo/sekrit?q=1", deadline=soon())
    assert client.records[-1].url == f"http://{HOST}:{web.port}/echo/[REDACTED]"

    error, record = refused(client, EgressCode.DENIED, url="http://sekrit.evil.test/sekrit")
    assert "sekrit" not in str(error)
    assert error.reason == "host not granted: [REDACTED].evil.test"
    assert record.url == "http://[REDACTED].evil.test/[REDACTED]"
    assert "sekrit" not in json.dumps([r.to_json() for r in client.records])


def test_closed_client_refuses(resolver: StubResolver) -> None:
    with EgressClient(EgressPolicy(allowed_hosts=(HOST,)), resolver=resolver) as client:
        pass
    refused(client, EgressCode.DENIED, url=f"https://{HOST}/")
    assert resolver.calls == []


def test_policy_rejects_a_bare_string() -> None:
    with pytest.raises(TypeError):
        EgressPolicy(allowed_hosts="api.test.local")  # type: ignore[arg-type]


# -- fuzz -------------------------------------------------------------------------------------

_PREFIXES = st.sampled_from(
    [
        "",
        "https://",
        "https://api.test.local",
        "https://api.test.local/",
        "https://api.test.local:",
        "https://API.test.local.",
        "http://api.test.local/",
        "https://[",
        "https://api.test.local@",
        "https://xn--",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=_PREFIXES, rest=st.text(max_size=60), method=st.sampled_from(["GET", "get", "X"]))
def test_arbitrary_urls_only_raise_egress_error(prefix: str, rest: str, method: str) -> None:
    calls: list[tuple[str, int]] = []
    connects: list[tuple[str, int]] = []

    def recording_resolver(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return ["93.184.216.34"]

    def no_network(address: str, port: int, timeout: float) -> socket.socket:
        connects.append((address, port))
        raise ConnectionRefusedError(111, "Connection refused")

    original = egress._connect_socket
    egress._connect_socket = no_network
    try:
        client = EgressClient(EgressPolicy(allowed_hosts=(HOST,)), resolver=recording_resolver)
        try:
            client.request(method, prefix + rest, deadline=soon())
        except EgressError as exc:
            assert isinstance(exc.code, EgressCode)
            assert "\n" not in exc.reason
        else:
            pytest.fail("no network here: nothing can succeed")
    finally:
        egress._connect_socket = original
    assert all(host == HOST for host, _ in calls)
    assert all(address == "93.184.216.34" for address, _ in connects)
    assert len(client.records) == 1


def test_module_imports_nothing_else_from_palyra() -> None:
    """The firewall depends only on leaf modules (error types, the ABI's return codes)."""
    source = Path(egress.__file__).read_text(encoding="utf-8")
    imports = [line for line in source.splitlines() if "palyra" in line and "import" in line]
    assert all("palyra.errors" in line or "palyra.abi" in line for line in imports), imports
