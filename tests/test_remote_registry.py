"""Remote registry installs (§7.7) against real HTTPS servers on 127.0.0.1.

Each test gets two TLS servers on loopback with certificates from a throwaway CA: ``reg`` plays
the registry and ``other`` a different origin (same host, other port), so a test can prove a
refused reference never produced a single connection there. Routes are set per test; a
route can also hang, trickle, or stream without end to exercise the limits.
"""

from __future__ import annotations

import hashlib
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from daemon_fixtures import KEY, OTHER_KEY, PUBLISHER, SKILL_ID, artifact
from egress_servers import LoopbackServer, Pki, closed_port, make_pki, server_tls_context
from palyra.daemon.context import ServiceContext
from palyra.daemon.errors import RegistryError
from palyra.daemon.lifecycle import check_artifact
from palyra.daemon.remote_registry import (
    CA_FILE_ENV,
    MAX_PAGES,
    from_remote_registry,
    index_directory,
    write_signed_index,
)
from palyra.daemon.sources import Promise, ResolvedArtifact
from palyra.errors import PalyraError, UsageError
from palyra.skills.errors import UntrustedPublisherError
from palyra.skills.keys import SigningKey
from palyra.skills.registry_index import (
    MAX_INDEX_PAGE_BYTES,
    RegistryEntry,
    RegistryEntryNotFound,
    RegistryIndex,
    RegistryIndexError,
    parse_signed_index,
    sign_index,
)
from palyra.skills.trust import TrustDecision, TrustStore

VERSIONS = ("1.0.0", "9.0.0", "10.0.0")  # "9.0.0" > "10.0.0" as strings: semver must win
FAST = 5.0  # timeout for tests that expect success or a quick refusal

# -- servers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    body: bytes = b""
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    length: bool = True  # False: no Content-Length, the body ends when the connection does
    hang: bool = False  # read the request, never answer
    trickle: float = 0.0  # seconds between single bytes of the body
    endless: bool = False  # stream filler until the client hangs up


class RegistryServer(LoopbackServer):
    """A TLS loopback server answering from ``routes``; unknown paths get 404."""

    def __init__(self, tls: ssl.SSLContext) -> None:
        super().__init__(tls)
        self.RequestHandlerClass = _RegistryHandler
        self.routes: dict[str, Route] = {}
        self.hits: list[str] = []
        self.cut_off = threading.Event()  # a write failed: the client hung up mid-body

    def url(self, path: str) -> str:
        return f"https://localhost:{self.port}{path}"


class _RegistryHandler(BaseHTTPRequestHandler):
    server: RegistryServer
    timeout = 10

    def setup(self) -> None:
        super().setup()
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self.server.hits.append(path)
        route = self.server.routes.get(path, Route(b"not here", status=404))
        if route.hang:
            self.server.stopping.wait(30)
            return
        self.send_response(route.status)
        for name, value in route.headers:
            self.send_header(name, value)
        if route.length and not route.endless:
            self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        try:
            if route.endless:
                chunk = b"x" * 65536
                for _ in range(4096):  # 256 MiB at most
                    if self.server.stopping.is_set():
                        return
                    self.wfile.write(chunk)
            elif route.trickle:
                for index in range(len(route.body)):
                    self.wfile.write(route.body[index : index + 1])
                    self.wfile.flush()
                    if self.server.stopping.wait(route.trickle):
                        return
            else:
                self.wfile.write(route.body)
        except OSError:
            self.server.cut_off.set()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("registry-pki"), ("localhost",))


@pytest.fixture
def servers(pki: Pki) -> Iterator[tuple[RegistryServer, RegistryServer]]:
    started = [RegistryServer(server_tls_context(pki)), RegistryServer(server_tls_context(pki))]
    for server in started:
        server.start()
    try:
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def reg(servers: tuple[RegistryServer, RegistryServer]) -> RegistryServer:
    return servers[0]


@pytest.fixture
def other(servers: tuple[RegistryServer, RegistryServer]) -> RegistryServer:
    return servers[1]


@pytest.fixture(scope="module")
def artifacts() -> dict[str, bytes]:
    return {version: artifact(version) for version in VERSIONS}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CA_FILE_ENV, raising=False)
    monkeypatch.delenv("PALYRA_SKILLS_TRUST_STORE", raising=False)


# -- helpers ---------------------------------------------------------------------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def trusted(*signers: tuple[str, SigningKey]) -> TrustStore:
    store = TrustStore()
    for publisher, key in signers or ((PUBLISHER, KEY),):
        store.add_trusted_key(publisher, key.public_key_hex)
    return store


def entry(
    version: str, data: bytes, ref: str | None = None, size: int | None = -1
) -> RegistryEntry:
    return RegistryEntry(
        skill_id=SKILL_ID,
        version=version,
        publisher=PUBLISHER,
        artifact=ref if ref is not None else f"artifacts/{version}.palyra-skill",
        artifact_sha256=sha(data),
        artifact_bytes=len(data) if size == -1 else size,
    )


def page(
    entries: list[RegistryEntry],
    next_page: str | None = None,
    key: SigningKey = KEY,
    publisher: str = PUBLISHER,
) -> bytes:
    index = RegistryIndex(1_730_000_000_000, tuple(entries), next_page)
    return sign_index(index, key, publisher, signed_at_unix_ms=1_730_000_000_000)


def publish(server: RegistryServer, artifacts: dict[str, bytes]) -> str:
    """The usual registry: one page listing every version, artifacts beside it."""
    server.routes["/skills/index.json"] = Route(
        page([entry(v, data) for v, data in artifacts.items()])
    )
    for version, data in artifacts.items():
        server.routes[f"/skills/artifacts/{version}.palyra-skill"] = Route(data)
    return server.url("/skills/index.json")


def fetch(
    url: str,
    pki: Pki,
    *,
    version: str | None = None,
    store: TrustStore | None = None,
    allow_tofu: bool = False,
    timeout_s: float = FAST,
) -> ResolvedArtifact:
    return from_remote_registry(
        url,
        SKILL_ID,
        version,
        store if store is not None else trusted(),
        allow_tofu=allow_tofu,
        ca_file=pki.ca_pem,
        timeout_s=timeout_s,
    )


# -- selection ---------------------------------------------------------------------------------


def test_selects_highest_semver_and_exact_version(
    reg: RegistryServer, pki: Pki, artifacts: dict[str, bytes]
) -> None:
    url = publish(reg, artifacts)

    latest = fetch(url, pki)
    assert latest.data == artifacts["10.0.0"]
    assert latest.source_kind == "remote_registry"
    assert latest.source_ref == reg.url("/skills/artifacts/10.0.0.palyra-skill")
    assert latest.promise == Promise(SKILL_ID, "10.0.0", PUBLISHER, sha(artifacts["10.0.0"]))
    assert latest.index_signer is None  # allowlisted: nothing for the installer to pin

    exact = fetch(url, pki, version="9.0.0")
    assert exact.data == artifacts["9.0.0"]
    assert exact.promise is not None and exact.promise.version == "9.0.0"

    with pytest.raises(RegistryEntryNotFound, match=r"no entry for acme\.daemon_demo 2\.0\.0"):
        fetch(url, pki, version="2.0.0")


def test_pagination_across_two_pages(
    reg: RegistryServer, pki: Pki, artifacts: dict[str, bytes]
) -> None:
    # Page 2 names its artifact with an absolute same-origin URL; page 1 with a relative one.
    absolute = reg.url("/skills/artifacts/10.0.0.palyra-skill")
    reg.routes["/skills/index.json"] = Route(
        page([entry("1.0.0", artifacts["1.0.0"])], next_page="pages/2.json")
    )
    reg.routes["/skills/pages/2.json"] = Route(
        page([entry("10.0.0", artifacts["10.0.0"], absolute)])
    )
    for version in ("1.0.0", "10.0.0"):
        reg.routes[f"/skills/artifacts/{version}.palyra-skill"] = Route(artifacts[version])

    resolved = fetch(reg.url("/skills/index.json"), pki)
    assert resolved.data == artifacts["10.0.0"]
    assert reg.hits == [
        "/skills/index.json",
        "/skills/pages/2.json",
        "/skills/artifacts/10.0.0.palyra-skill",
    ]
    # An entry on page 1 resolves against page 1's URL.
    assert fetch(reg.url("/skills/index.json"), pki, version="1.0.0").data == artifacts["1.0.0"]


def test_same_version_on_two_pages_is_ambiguous(
    reg: RegistryServer, pki: Pki, artifacts: dict[str, bytes]
) -> None:
    listed = entry("1.0.0", artifacts["1.0.0"])
    reg.routes["/index.json"] = Route(page([listed], next_page="2.json"))
    reg.routes["/2.json"] = Route(page([listed]))
    with pytest.raises(RegistryError, match="more than once"):
        fetch(reg.url("/index.json"), pki)


def test_pagination_loop_and_page_limit(
    reg: RegistryServer, pki: Pki, artifacts: dict[str, bytes]
) -> None:
    one = entry("1.0.0", artifacts["1.0.0"])
    reg.routes["/a.json"] = Route(page([one], next_page="b.json"))
    reg.routes["/b.json"] = Route(page([], next_page="a.json"))
    with pytest.raises(RegistryError, match=r"loop back to https://localhost:\d+/a.json"):
        fetch(reg.url("/a.json"), pki)
    assert reg.hits == ["/a.json", "/b.json"]

    for number in range(MAX_PAGES + 1):
        reg.routes[f"/p{number}.json"] = Route(page([], next_page=f"p{number + 1}.json"))
    reg.hits.clear()
    with pytest.raises(RegistryError, match=f"more than {MAX_PAGES} pages"):
        fetch(reg.url("/p0.json"), pki)
    assert len(reg.hits) == MAX_PAGES


# -- origins, schemes, redirects -------------------------------------------------------------


def test_cross_origin_next_page_and_artifact_are_refused(
    reg: RegistryServer, other: RegistryServer, pki: Pki, artifacts: dict[str, bytes]
) -> None:
    data = artifacts["1.0.0"]
    other.routes["/index.json"] = Route(page([entry("1.0.0", data)]))
    other.routes["/artifacts/1.0.0.palyra-skill"] = Route(data)

    reg.routes["/index.json"] = Route(page([], next_page=other.url("/index.json")))
    with pytest.raises(RegistryIndexError, match="leaves the registry origin"):
        fetch(reg.url("/index.json"), pki)

    elsewhere = other.url("/artifacts/1.0.0.palyra-skill")
    reg.routes["/index.json"] = Route(page([entry("1.0.0", data, elsewhere)]))
    with pytest.raises(RegistryIndexError, match="leaves the registry origin"):
        fetch(reg.url("/index.json"), pki)

    assert other.connections == 0


def test_redirects_stay_on_the_registry_origin(
    reg: RegistryServer, other: RegistryServer, pki: Pki, artifacts: dict[str, bytes]
) -> None:
    data = artifacts["1.0.0"]
    reg.routes["/index.json"] = Route(page([entry("1.0.0", data)]))
    target = "/artifacts/1.0.0.palyra-skill"

    # Same origin: followed.
    reg.routes[target] = Route(status=302, headers=(("Location", "/mirror/a.palyra-skill"),))
    reg.routes["/mirror/a.palyra-skill"] = Route(data)
    assert fetch(reg.url("/index.json"), pki).data == data

    # Another origin: refused before connecting there.
    other.routes["/a.palyra-skill"] = Route(data)
    reg.routes[target] = Route(status=307, headers=(("Location", other.url("/a.palyra-skill")),))
    with pytest.raises(RegistryError, match="leaves the registry origin") as refused:
        fetch(reg.url("/index.json"), pki)
    assert refused.value.kind == "registry"
    assert other.connections == 0

    # A downgrade to http on the same host and port: refused too.
    plain = f"http://localhost:{reg.port}/mirror/a.palyra-skill"
    reg.routes[target] = Route(status=301, headers=(("Location", plain),))
    with pytest.raises(RegistryError, match="leaves the registry origin"):
        fetch(reg.url("/index.json"), pki)

    # Endless redirects: bounded.
    reg.routes[target] = Route(status=302, headers=(("Location", target),))
    with pytest.raises(RegistryError, match="redirected more than"):
        fetch(reg.url("/index.json"), pki)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:{port}/index.json",
        "ftp://localhost:{port}/index.json",
        "https://user:secret@localhost:{port}/index.json",
        "https:///index.json",
        "https://localhost:{port}/index.json#top",
        "https://localhost:{port}/index .json",
        "",
    ],
)
def test_bad_registry_urls_are_usage_errors(reg: RegistryServer, pki: Pki, url: str) -> None:
    with pytest.raises(UsageError) as refused:
        fetch(url.format(port=reg.port), pki)
    assert "\n" not in refused.value.message
    assert "secret" not in refused.value.message
    assert reg.connections == 0


# -- signatures and trust --------------------------------------------------------------------


def test_tampered_or_garbled_index_is_refused(
    reg: RegistryServer, pki: Pki, artifacts: dict[str, bytes]
) -> None:
    url = publish(reg, artifacts)
    doc = json.loads(reg.routes["/skills/index.json"].body)
    doc["index"]["entries"][0]["artifact_sha256"] = "00" * 32
    reg.routes["/skills/index.json"] = Route(json.dumps(doc).encode())
    with pytest.raises(RegistryIndexError, match="payload_sha256 does not match") as refused:
        fetch(url, pki)
    assert refused.value.message.startswith(f"registry index page {url}: ")

    reg.routes["/skills/index.json"] = Route(b"<html>maintenance</html>")
    with pytest.raises(RegistryIndexError, match="invalid registry index page"):
        fetch(url, pki)
    assert not any("artifacts" in hit for hit in reg.hits)


def test_untrusted_signer_needs_tofu_and_is_never_pinned_here(
    reg: RegistryServer, pki: Pki, artifacts: dict[str, bytes], tmp_path: Path
) -> None:
    url = publish(reg, artifacts)
    store_path = tmp_path / "trust-store.json"
    trusted(("other", OTHER_KEY)).save(store_path)
    before = store_path.read_bytes()
    store = TrustStore.load(store_path)

    with pytest.raises(UntrustedPublisherError, match="remote registry signature"):
        fetch(url, pki, store=store)
    assert not any("artifacts" in hit for hit in reg.hits)

    resolved = fetch(url, pki, store=store, allow_tofu=True)
    assert resolved.data == artifacts["10.0.0"]
    assert resolved.index_signer == (PUBLISHER, KEY.public_key_hex)
    assert store.tofu_publishers == {}
    assert store_path.read_bytes() == before


def test_every_page_must_have_the_same_signer(
    reg: RegistryServer, pki: Pki, artifacts: dict[str, bytes]
) -> None:
    data = artifacts["1.0.0"]
    reg.routes["/index.json"] = Route(page([entry("1.0.0", data)], next_page="2.json"))
    reg.routes["/artifacts/1.0.0.palyra-skill"] = Route(data)

    # Both signers are trusted, but they are not the same signer.
    reg.routes["/2.json"] = Route(page([], key=OTHER_KEY, publisher="other"))
    store = trusted((PUBLISHER, KEY), ("other", OTHER_KEY))
    with pytest.raises(RegistryError, match="every page must have the same signer"):
        fetch(reg.url("/index.json"), pki, store=store)

    # Same publisher, another key, both first seen under TOFU.
    reg.routes["/2.json"] = Route(page([], key=OTHER_KEY))
    with pytest.raises(RegistryError, match="every page must have the same signer"):
        fetch(reg.url("/index.json"), pki, store=TrustStore(), allow_tofu=True)
    assert "/artifacts/1.0.0.palyra-skill" not in reg.hits


def test_tls_needs_the_registry_ca(
    reg: RegistryServer,
    pki: Pki,
    artifacts: dict[str, bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = publish(reg, artifacts)
    with pytest.raises(RegistryError, match="TLS certificate verification failed") as refused:
        from_remote_registry(url, SKILL_ID, None, trusted(), allow_tofu=False, timeout_s=FAST)
    assert refused.value.details["reason"] == "tls_verify"

    monkeypatch.setenv(CA_FILE_ENV, str(pki.ca_pem))
    resolved = from_remote_registry(url, SKILL_ID, None, trusted(), allow_tofu=False)
    assert resolved.data == artifacts["10.0.0"]

    garbage = tmp_path / "not-a-ca.pem"
    garbage.write_text("hello\n")
    for ca_file in (tmp_path / "missing.pem", garbage):
        with pytest.raises(UsageError, match="registry CA file"):
            from_remote_registry(url, SKILL_ID, None, trusted(), allow_tofu=False, ca_file=ca_file)


# -- sizes, statuses, time ---------------------------------------------------------------------


def test_artifact_must_match_its_promised_size_and_hash(
    reg: RegistryServer, pki: Pki, artifacts: dict[str, bytes]
) -> None:
    data = artifacts["1.0.0"]
    path = "/artifacts/1.0.0.palyra-skill"
    url = reg.url("/index.json")

    # More bytes than promised, with no Content-Length: cut off while streaming.
    reg.routes["/index.json"] = Route(page([entry("1.0.0", data, size=len(data) - 100)]))
    reg.routes[path] = Route(data, length=False)
    with pytest.raises(RegistryError, match=f"larger than the {len(data) - 100} bytes") as cut:
        fetch(url, pki)
    assert cut.value.details["limit"] == len(data) - 100

    # ... and with an honest Content-Length: refused before reading the body.
    reg.routes[path] = Route(data)
    with pytest.raises(RegistryError, match=rf"Content-Length {len(data)}\)"):
        fetch(url, pki)

    # Fewer bytes than promised.
    reg.routes["/index.json"] = Route(page([entry("1.0.0", data, size=len(data) + 1)]))
    with pytest.raises(RegistryError, match=f"but the index promised {len(data) + 1}"):
        fetch(url, pki)

    # Right size, wrong bytes.
    reg.routes["/index.json"] = Route(page([entry("1.0.0", data)]))
    reg.routes[path] = Route(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(RegistryError, match="registry hash mismatch"):
        fetch(url, pki)


def test_oversize_page_is_refused_without_reading_it_all(reg: RegistryServer, pki: Pki) -> None:
    reg.routes["/index.json"] = Route(endless=True)
    with pytest.raises(RegistryError, match=f"larger than the {MAX_INDEX_PAGE_BYTES}-byte limit"):
        fetch(reg.url("/index.json"), pki)
    # The server was still writing when the client hung up.
    assert reg.cut_off.wait(10)

    declared = (("Content-Length", str(3 * 1024 * 1024)),)
    reg.routes["/index.json"] = Route(headers=declared, length=False)
    with pytest.raises(RegistryError, match=r"limit \(Content-Length 3145728\)"):
        fetch(reg.url("/index.json"), pki)


@pytest.mark.parametrize(
    ("where", "status", "expected"),
    [
        ("index", 404, "HTTP 404 Not Found for index page"),
        ("index", 500, "HTTP 500 Internal Server Error for index page"),
        ("artifact", 404, "HTTP 404 Not Found for artifact of acme.daemon_demo 10.0.0"),
    ],
)
def test_http_error_statuses(
    reg: RegistryServer,
    pki: Pki,
    artifacts: dict[str, bytes],
    where: str,
    status: int,
    expected: str,
) -> None:
    url = publish(reg, artifacts)
    path = "/skills/index.json" if where == "index" else "/skills/artifacts/10.0.0.palyra-skill"
    reg.routes[path] = Route(b"nope", status=status)
    with pytest.raises(RegistryError, match=expected) as refused:
        fetch(url, pki)
    assert refused.value.details["status"] == status


def test_connection_refused_is_a_registry_error(pki: Pki) -> None:
    url = f"https://localhost:{closed_port()}/index.json"
    with pytest.raises(RegistryError, match="refused the connection") as refused:
        fetch(url, pki)
    assert refused.value.to_json()["kind"] == "registry"


@pytest.mark.parametrize("where", ["index", "artifact", "trickle"])
def test_one_deadline_covers_the_whole_fetch(
    reg: RegistryServer, pki: Pki, artifacts: dict[str, bytes], where: str
) -> None:
    url = publish(reg, artifacts)
    if where == "index":
        reg.routes["/skills/index.json"] = Route(hang=True)
    elif where == "artifact":
        reg.routes["/skills/artifacts/10.0.0.palyra-skill"] = Route(hang=True)
    else:
        # Always making progress, never finishing: per-read timeouts would never fire.
        body = reg.routes["/skills/index.json"].body
        reg.routes["/skills/index.json"] = Route(body, trickle=0.05)
    started = time.monotonic()
    with pytest.raises(RegistryError, match="within the 1 s limit") as refused:
        fetch(url, pki, timeout_s=1.0)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.5, elapsed
    assert refused.value.details["reason"] == "timeout"


def test_timeout_must_be_positive(reg: RegistryServer, pki: Pki) -> None:
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(UsageError, match="timeout"):
            fetch(reg.url("/index.json"), pki, timeout_s=bad)
    assert reg.connections == 0


# -- publishing --------------------------------------------------------------------------------


def test_index_directory_round_trip_and_serving_it(
    reg: RegistryServer, pki: Pki, artifacts: dict[str, bytes], tmp_path: Path
) -> None:
    root = tmp_path / "registry"
    files = {
        "1.0.0": "a/acme-1.0.0.palyra-skill",
        "9.0.0": "acme 9.palyra-skill",  # a space: published percent-encoded
        "10.0.0": "b/c/acme-10.0.0.PALYRA-SKILL",
    }
    for version, relative in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(artifacts[version])
    (root / "README.txt").write_text("not an artifact\n")

    index = index_directory(root)
    assert [e.version for e in index.entries] == ["1.0.0", "9.0.0", "10.0.0"]
    assert index.next_page is None
    assert abs(index.generated_at_unix_ms - time.time() * 1000) < 60_000

    written = write_signed_index(root, KEY, PUBLISHER)
    assert written == root / "index.json"
    assert sorted(p.name for p in root.iterdir()) == [
        "README.txt",
        "a",
        "acme 9.palyra-skill",
        "b",
        "index.json",
    ]
    parsed = parse_signed_index(written.read_bytes(), trusted(), allow_tofu=False)
    assert parsed.trust_decision is TrustDecision.ALLOWLISTED
    assert parsed.publisher == PUBLISHER
    assert [e.to_json() for e in parsed.index.entries] == [
        {
            "skill_id": SKILL_ID,
            "version": version,
            "publisher": PUBLISHER,
            "artifact": quote(files[version]),
            "artifact_sha256": sha(artifacts[version]),
            "artifact_bytes": len(artifacts[version]),
        }
        for version in VERSIONS
    ]
    assert parsed.index.entries[1].artifact == "acme%209.palyra-skill"

    # Serve the directory as it is on disk, and install from it.
    for path in root.rglob("*"):
        if path.is_file():
            reg.routes["/r/" + quote(path.relative_to(root).as_posix())] = Route(path.read_bytes())
    resolved = fetch(reg.url("/r/index.json"), pki, version="9.0.0")
    assert resolved.data == artifacts["9.0.0"]
    assert resolved.source_ref == reg.url("/r/acme%209.palyra-skill")

    elsewhere = tmp_path / "out" / "signed.json"
    assert write_signed_index(root, KEY, PUBLISHER, output=elsewhere) == elsewhere
    assert parse_signed_index(elsewhere.read_bytes(), trusted(), allow_tofu=False).index.entries


def test_index_directory_names_the_bad_file(tmp_path: Path, artifacts: dict[str, bytes]) -> None:
    root = tmp_path / "registry"
    (root / "sub").mkdir(parents=True)
    (root / "good.palyra-skill").write_bytes(artifacts["1.0.0"])
    (root / "sub" / "broken.palyra-skill").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(RegistryError, match=r"cannot index sub/broken\.palyra-skill: ") as bad:
        write_signed_index(root, KEY, PUBLISHER)
    assert bad.value.details["file"] == "sub/broken.palyra-skill"
    assert not (root / "index.json").exists()

    (root / "sub" / "broken.palyra-skill").write_bytes(artifacts["1.0.0"])
    with pytest.raises(RegistryError, match=r"good\.palyra-skill and sub/broken\.palyra-skill"):
        index_directory(root)

    with pytest.raises(UsageError, match="does not exist"):
        index_directory(tmp_path / "missing")
    assert sorted(p.name for p in root.iterdir()) == ["good.palyra-skill", "sub"]


# -- the installer checks the promise ------------------------------------------------------------


def test_check_artifact_enforces_the_registry_promise(
    tmp_path: Path, artifacts: dict[str, bytes]
) -> None:
    data = artifacts["1.0.0"]
    ctx = ServiceContext(tmp_path / "state")
    try:

        def resolved(promise: Promise) -> ResolvedArtifact:
            return ResolvedArtifact(data, "remote_registry", "https://r.test/a", promise)

        wrong_sha = Promise(SKILL_ID, "1.0.0", PUBLISHER, "00" * 32)
        with pytest.raises(RegistryError, match="registry hash mismatch"):
            check_artifact(ctx, resolved(wrong_sha), allow_tofu=True)

        wrong_version = Promise(SKILL_ID, "1.0.1", PUBLISHER, sha(data))
        with pytest.raises(RegistryError, match=r"metadata mismatch \(version\)"):
            check_artifact(ctx, resolved(wrong_version), allow_tofu=True)

        honest = Promise(SKILL_ID, "1.0.0", PUBLISHER, sha(data))
        checked = check_artifact(ctx, resolved(honest), allow_tofu=True)
        assert checked.artifact_sha256 == sha(data)
    finally:
        ctx.close()
    assert not ctx.trust_path.exists()  # checking pins nothing


def test_errors_are_one_line_palyra_errors(reg: RegistryServer, pki: Pki) -> None:
    reg.routes["/index.json"] = Route(b"\x00" * 10, status=503)
    with pytest.raises(PalyraError) as failed:
        fetch(reg.url("/index.json?token=hunter2"), pki)
    assert "\n" not in failed.value.message
    assert "hunter2" not in failed.value.message
