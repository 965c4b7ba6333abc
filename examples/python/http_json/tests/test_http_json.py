"""Tests that run acme.http_json's tool in the real sandbox against a local mock of the API.

The mock is a real HTTPS server on 127.0.0.1 with a certificate for api.weather.example from
a throwaway CA; the host is told to resolve the name to 127.0.0.1, to trust that CA, and
(by the policy) to allow a loopback address and the mock's port. The token lives in a vault
the host reads; the skill only names it.
"""

import datetime
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from palyra.authoring.local_skill import LocalSkill
from palyra.runtime.context import HostServices
from palyra.runtime.errors import RuntimeFailure
from palyra.runtime.tools import RuntimePolicy
from palyra.runtime.vault import MemoryVault

SKILL = Path(__file__).resolve().parent.parent
HOST = "api.weather.example"
FAKE_API_KEY = "test-key-3c9a"  # a test fixture, not a credential


# ---- a mock API over HTTPS ----------------------------------------------------------------


def _certificate(name: x509.Name, issuer: x509.Name, key: Any) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )


def make_tls(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A throwaway CA (its PEM file) and a server context with a leaf for HOST."""
    ca_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        _certificate(ca_name, ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        _certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]), ca_name, leaf_key)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, cert_pem, key_pem = directory / "ca.pem", directory / "leaf.pem", directory / "leaf.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_pem, key_pem)
    return ca_pem, context


class Api(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        Api.seen.append({"path": self.path, "authorization": self.headers.get("Authorization", "")})
        query = parse_qs(urlsplit(self.path).query)
        city = query["city"][0]
        body: dict[str, Any]
        if self.headers.get("Authorization") != f"Bearer {FAKE_API_KEY}":
            status, body = 401, {"error": "bad token"}
        elif city == "Atlantis":
            status, body = 404, {"error": "unknown city"}
        elif city == "Crashville":
            status, body = 500, {"error": "oops"}
        else:
            status, body = (
                200,
                {
                    "city": city,
                    "temperature": 18.0,
                    "conditions": "sunny",
                    "humidity": 40,
                    "observed_at": "2026-01-31T12:00:00Z",
                },
            )
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    ca_pem, context = make_tls(tmp_path_factory.mktemp("tls"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server.server_address[1], ca_pem
    server.shutdown()
    server.server_close()
    thread.join()


def open_skill(ca_pem: Path, vault: MemoryVault) -> LocalSkill:
    services = HostServices(
        vault=vault, ca_bundle=str(ca_pem), resolver=lambda host, port: ["127.0.0.1"]
    )
    return LocalSkill.open(SKILL, services=services)


@pytest.fixture(scope="module")
def skill(api: tuple[int, Path]) -> LocalSkill:
    return open_skill(
        api[1], MemoryVault({("skill:acme.http_json", "api_token"): FAKE_API_KEY.encode()})
    )


def local(port: int) -> RuntimePolicy:
    """What the manifest declares, plus a loopback address and the mock's port."""
    return RuntimePolicy.allow_declared(allow_private_network=True, allowed_ports=frozenset({port}))


def kind(failure: RuntimeFailure) -> str:
    """The kind the tool failed with (the runtime reports a tool's own not_found and upstream
    as a tool_error whose details carry guest_kind)."""
    return str(failure.details.get("guest_kind", failure.kind))


# ---- the tests ----------------------------------------------------------------------------


def test_weather_with_the_token_injected_by_the_host(
    skill: LocalSkill, api: tuple[int, Path]
) -> None:
    port = api[0]
    Api.seen.clear()
    result = skill.run("weather", {"city": "Lyon", "port": port}, local(port))
    assert result.output == {
        "city": "Lyon",
        "temperature": 18.0,
        "units": "metric",
        "conditions": "sunny",
        "humidity": 40,
        "observed_at": "2026-01-31T12:00:00Z",
    }
    assert Api.seen == [
        {"path": "/v1/current?city=Lyon&units=metric", "authorization": f"Bearer {FAKE_API_KEY}"}
    ]
    assert FAKE_API_KEY not in json.dumps(result.to_json())


@pytest.mark.parametrize(
    ("city", "expected"), [("Atlantis", "not_found"), ("Crashville", "upstream")]
)
def test_api_errors_are_typed(
    skill: LocalSkill, api: tuple[int, Path], city: str, expected: str
) -> None:
    with pytest.raises(RuntimeFailure) as caught:
        skill.call("weather", {"city": city, "port": api[0]}, local(api[0]))
    assert kind(caught.value) == expected


def test_without_the_host_grant_it_is_denied(skill: LocalSkill, api: tuple[int, Path]) -> None:
    policy = RuntimePolicy.allow_declared(http_hosts=frozenset())
    with pytest.raises(RuntimeFailure) as caught:
        skill.call("weather", {"city": "Lyon", "port": api[0]}, policy)
    assert caught.value.kind == "capability_denied"


def test_without_the_token_it_says_what_is_missing(api: tuple[int, Path]) -> None:
    skill = open_skill(api[1], MemoryVault())
    with pytest.raises(RuntimeFailure) as caught:
        skill.call("weather", {"city": "Lyon", "port": api[0]}, local(api[0]))
    assert kind(caught.value) == "not_found"
    assert "skill:acme.http_json/api_token" in caught.value.message


def test_bad_input_is_refused(skill: LocalSkill) -> None:
    with pytest.raises(RuntimeFailure) as caught:
        skill.call("weather", {"city": "Lyon", "units": "kelvin"})
    assert caught.value.kind == "invalid_input"
