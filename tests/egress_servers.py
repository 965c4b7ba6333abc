"""Loopback HTTP/HTTPS servers and a throwaway PKI for the egress tests.

Each server counts TCP connections and requests so a test can prove a refused attempt never
reached it, and records what it saw (Host header, path, headers, TLS SNI name) so a test
can prove what the client actually sent.
"""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

BIG_BODY_BYTES = 10 * 1000 * 1000


@dataclass(frozen=True)
class Pki:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path


def make_pki(directory: Path, names: tuple[str, ...]) -> Pki:
    """A test CA and one leaf certificate for ``names`` (DNS SANs), written as PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "palyra egress test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(directory / "ca.pem", directory / "leaf.pem", directory / "leaf.key")
    pki.ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert_pem.write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM))
    pki.key_pem.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pki


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    host: str | None
    headers: dict[str, str]
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    server: LoopbackServer
    timeout = 10  # a stuck client cannot pin a handler thread (and shutdown) forever

    def setup(self) -> None:
        super().setup()
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.note(
            Seen(
                method=self.command,
                path=self.path,
                host=self.headers.get("Host"),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
        )
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        route = url.path
        if route.startswith("/redirect"):
            code = int(query.get("code", ["302"])[0])
            self._send(code, b"moved", [("Location", query["to"][0])])
        elif route.startswith("/chain/"):
            left = int(route.rsplit("/", 1)[1])
            if left > 0:
                self._send(302, b"", [("Location", f"/chain/{left - 1}")])
            else:
                self._send(200, b"done")
        elif route == "/big":
            self._big()
        elif route == "/slow":
            self.server.stopping.wait(3.0)
            self._send(200, b"late")
        elif route == "/trickle":
            self._trickle_body()
        elif route == "/trickle-headers":
            self._trickle(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
        else:
            payload = {
                "method": self.command,
                "path": self.path,
                "host": self.headers.get("Host"),
                "body": body.decode("utf-8", "replace"),
            }
            self._send(200, json.dumps(payload).encode(), [("X-Test", "yes")])

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]] = []) -> None:  # noqa: B006
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _big(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(BIG_BODY_BYTES))
        self.end_headers()
        chunk = b"x" * 65536
        sent = 0
        try:
            while sent < BIG_BODY_BYTES and not self.server.stopping.is_set():
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the client hung up: expected

    def _trickle_body(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        self.wfile.flush()
        self._trickle(b"y" * 100)

    def _trickle(self, data: bytes) -> None:
        try:
            for index in range(len(data)):
                self.wfile.write(data[index : index + 1])
                self.wfile.flush()
                if self.server.stopping.wait(0.1):
                    return
        except OSError:
            pass


class LoopbackServer(ThreadingHTTPServer):
    """A loopback server run in a thread; ``stop`` joins every thread it started."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, 0), _Handler)
        self.tls = tls
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.connections = 0
        self.seen: list[Seen] = []
        self.sni: list[str | None] = []
        if tls is not None:
            tls.sni_callback = self._on_sni
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=False
        )

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=10)

    def reset(self) -> None:
        with self._lock:
            self.connections = 0
            self.seen.clear()
            self.sni.clear()

    def note(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def _on_sni(self, obj: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        with self._lock:
            self.sni.append(name)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        with self._lock:
            self.connections += 1
        if self.tls is not None:
            # Handshake in the handler thread (setup), not in the accept loop.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # aborted clients and failed handshakes are part of the tests


def server_tls_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert_pem, pki.key_pem)
    return context


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class StubResolver:
    """Maps names to address lists and remembers every lookup."""

    table: dict[str, list[str]]
    calls: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host not in self.table:
            raise OSError(f"unknown host {host}")
        return list(self.table[host])
