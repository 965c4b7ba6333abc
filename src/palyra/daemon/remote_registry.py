"""Installing from a remote https registry, and publishing one (skills-format.md §7.7).

Fetching: the registry URL names the first page of a signed index. Pages are followed through
``next_page`` (at most :data:`MAX_PAGES`, no loops, never off the first page's origin), every
page must verify and be signed by one and the same publisher key, and the chosen artifact is
downloaded from that origin too. What the index promised (skill, version, publisher, SHA-256)
travels with the bytes in a :class:`~palyra.daemon.sources.ResolvedArtifact`; the installer
checks it again and is the only one that pins a first-seen index signer, and only once the
install has succeeded — this module never edits or saves the trust store.

Limits are enforced while bytes arrive, not after: a page is read up to 2 MiB and an artifact
up to what its entry promised (64 MiB at most), so a hostile or broken server cannot make the
daemon buffer more than that. One deadline covers the whole operation — every page, every
redirect, the download, DNS included — because each socket operation is given only the time
that is left (see :class:`_DeadlineBackend`); a server that trickles one byte at a time cannot
stretch it. Every failure leaves as a :class:`~palyra.errors.PalyraError` with a one-line
message: the network layer's exceptions never escape.

Publishing: :func:`index_directory` and :func:`write_signed_index` turn a directory of
artifacts into a signed ``index.json`` that this module (and the reference client) accepts.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import math
import os
import socket
import ssl
import threading
import time
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import quote, urljoin, urlsplit

import httpcore
import httpx

from palyra import __version__
from palyra.daemon.errors import RegistryError
from palyra.daemon.sources import Promise, ResolvedArtifact, _registry_files, read_local_artifact
from palyra.errors import PalyraError, UsageError
from palyra.fsutil import atomic_write
from palyra.skills.constants import MAX_ARTIFACT_BYTES
from palyra.skills.inspect import inspect_skill_artifact
from palyra.skills.keys import SigningKey
from palyra.skills.registry_index import (
    MAX_INDEX_PAGE_BYTES,
    RegistryEntry,
    RegistryIndex,
    SignedIndexPage,
    parse_signed_index,
    ref_problem,
    resolve_page_url,
    select_entry,
    sign_index,
)
from palyra.skills.trust import TrustDecision, TrustStore
from palyra.skills.values import Semver

MAX_PAGES: Final = 20
MAX_REDIRECTS: Final = 5
DEFAULT_TIMEOUT_S: Final = 20.0
CA_FILE_ENV: Final = "PALYRA_REGISTRY_CA_FILE"
INDEX_FILE_NAME: Final = "index.json"

_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
_HTTPS_PORT: Final = 443


# ---- fetching -----------------------------------------------------------------------------------


def from_remote_registry(
    url: str,
    skill_id: str,
    version: str | None,
    trust_store: TrustStore,
    *,
    allow_tofu: bool,
    ca_file: Path | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> ResolvedArtifact:
    """Fetch ``skill_id`` (exactly ``version``, else its highest semver) from a registry.

    ``url`` is the https URL of the index's first page. TLS trusts the system roots plus
    ``ca_file`` (else ``$PALYRA_REGISTRY_CA_FILE``), for registries behind a private CA.
    ``timeout_s`` bounds the whole operation. ``trust_store`` decides whether the index
    signer is trusted and is not modified: a signer first seen under ``allow_tofu`` comes
    back as ``index_signer`` for the installer to pin once the install has succeeded.
    """
    _check_registry_url(url)
    if not (math.isfinite(timeout_s) and timeout_s > 0):
        raise UsageError(f"registry timeout must be a positive number of seconds, not {timeout_s}")
    context = registry_ssl_context(ca_file)
    with _Fetcher(context, timeout_s) as fetcher:
        pages = _read_pages(fetcher, url, trust_store, allow_tofu=allow_tofu)
        entry, page_url = _choose(pages, skill_id, version)
        artifact_url = resolve_page_url(page_url, entry.artifact)
        limit = MAX_ARTIFACT_BYTES
        if entry.artifact_bytes is not None:
            limit = min(entry.artifact_bytes, MAX_ARTIFACT_BYTES)
        data, _final = fetcher.get(
            artifact_url,
            what=f"artifact of {entry.skill_id} {entry.version}",
            limit=limit,
            promised=entry.artifact_bytes,
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.artifact_sha256:
        # The installer checks this too; failing here names the URL that served the bytes.
        raise RegistryError(
            f"registry hash mismatch for {entry.skill_id} {entry.version} from "
            f"{_display(artifact_url)}: index promised {entry.artifact_sha256}, got {digest}",
            details={"url": _display(artifact_url), "expected": entry.artifact_sha256},
        )
    signer = pages[0][0]
    newly_pinned = signer.trust_decision is TrustDecision.TOFU_NEWLY_PINNED
    return ResolvedArtifact(
        data,
        "remote_registry",
        artifact_url,
        Promise(entry.skill_id, entry.version, entry.publisher, entry.artifact_sha256),
        index_signer=(signer.publisher, signer.public_key_hex) if newly_pinned else None,
    )


def registry_ssl_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """Certificate-checking TLS: the system roots plus ``ca_file`` (else the env variable).

    The extra CA is added to, never substituted for, the system roots, so pointing a daemon
    at a private mirror does not stop it from reaching public registries.
    """
    if ca_file is None:
        from_env = os.environ.get(CA_FILE_ENV, "").strip()
        if from_env:
            ca_file = Path(from_env)
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except FileNotFoundError:
            raise UsageError(f"registry CA file {ca_file} does not exist") from None
        except ssl.SSLError:
            raise UsageError(f"registry CA file {ca_file} holds no valid PEM certificate") from None
        except OSError as exc:
            raise UsageError(f"cannot read registry CA file {ca_file}: {exc.strerror}") from None
    return context


def _check_registry_url(url: str) -> None:
    """The operator's URL: https, a host, no credentials or fragment (a usage error if not)."""
    problem = None
    if not url:
        problem = "is empty"
    elif any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        problem = "contains whitespace or control characters"
    else:
        try:
            parts = urlsplit(url)
            _ = parts.port
        except ValueError:
            problem = "is not a valid URL"
        else:
            if parts.scheme.lower() != "https":
                problem = "must use https (plain http is refused)"
            elif not parts.hostname:
                problem = "must name a host"
            elif "@" in parts.netloc:
                problem = "must not carry credentials"
            elif "#" in url:
                problem = "must not carry a fragment"
    if problem is not None:
        raise UsageError(f"registry URL {_display(url)} {problem}")


def _read_pages(
    fetcher: _Fetcher, url: str, trust_store: TrustStore, *, allow_tofu: bool
) -> list[tuple[SignedIndexPage, str]]:
    """Every page with the URL its relative references resolve against (after redirects)."""
    pages: list[tuple[SignedIndexPage, str]] = []
    visited: set[str] = set()
    next_url: str | None = url
    while next_url is not None:
        if next_url in visited:
            raise RegistryError(
                f"registry index pages loop back to {_display(next_url)}",
                details={"url": _display(next_url)},
            )
        if len(pages) == MAX_PAGES:
            raise RegistryError(
                f"registry index has more than {MAX_PAGES} pages",
                details={"limit": MAX_PAGES},
            )
        visited.add(next_url)
        data, final_url = fetcher.get(
            next_url, what="index page", limit=MAX_INDEX_PAGE_BYTES, promised=None
        )
        try:
            page = parse_signed_index(data, trust_store, allow_tofu=allow_tofu)
        except PalyraError as exc:
            # Keep the class and kind; say which page it was.
            exc.message = f"registry index page {_display(next_url)}: {exc.message}"
            exc.args = (exc.message,)
            raise
        if pages:
            first = pages[0][0]
            if (page.publisher, page.public_key_hex) != (first.publisher, first.public_key_hex):
                raise RegistryError(
                    f"registry index page {_display(next_url)} is signed by "
                    f"'{page.publisher}' key {page.signature.key_id}, but the first page by "
                    f"'{first.publisher}' key {first.signature.key_id}; every page must "
                    "have the same signer",
                    details={"url": _display(next_url)},
                )
        pages.append((page, final_url))
        ref = page.index.next_page
        next_url = resolve_page_url(final_url, ref) if ref is not None else None
    return pages


def _choose(
    pages: list[tuple[SignedIndexPage, str]], skill_id: str, version: str | None
) -> tuple[RegistryEntry, str]:
    """The selected entry and the URL of the page that listed it.

    A version listed on two pages is ambiguous (each page only rejects its own duplicates),
    so it is refused rather than resolved by page order.
    """
    located = [(entry, page_url) for page, page_url in pages for entry in page.index.entries]
    entry = select_entry((item for item, _ in located), skill_id, version)
    same = [
        (item, page_url)
        for item, page_url in located
        if item.skill_id == entry.skill_id and item.semver == entry.semver
    ]
    if len(same) > 1:
        raise RegistryError(
            f"registry index lists {entry.skill_id} {entry.version} more than once "
            "(on different pages)",
            details={"skill_id": entry.skill_id, "version": entry.version},
        )
    return same[0]


@dataclass
class _Fetcher:
    """One https client for one registry operation, all of it under one deadline."""

    ssl_context: ssl.SSLContext
    timeout_s: float

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.timeout_s
        self._client = httpx.Client(
            transport=_Transport(self.ssl_context, _DeadlineBackend(self.deadline)),
            timeout=self.timeout_s,
            # Redirects are followed by hand so each hop's origin can be checked; the
            # environment (proxies, .netrc credentials) has no say in where bytes come from.
            follow_redirects=False,
            trust_env=False,
            headers={
                "User-Agent": f"palyra/{__version__}",
                # No compression: the caps must count the bytes that are buffered, and a
                # decoder could turn one small chunk into a huge one before they are counted.
                "Accept-Encoding": "identity",
            },
        )

    def __enter__(self) -> _Fetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Closing sockets must not mask the real outcome of the operation.
        with contextlib.suppress(Exception):
            self._client.close()

    def get(self, url: str, *, what: str, limit: int, promised: int | None) -> tuple[bytes, str]:
        """GET ``url`` (same-origin redirects only); the body, at most ``limit`` bytes."""
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                with self._client.stream("GET", current) as response:
                    if response.status_code in _REDIRECT_STATUSES:
                        current = _redirect_target(url, current, response, what)
                        continue
                    return self._body(response, current, what, limit, promised), current
            except PalyraError:
                raise
            except Exception as exc:  # the contract: nothing from the network layer escapes
                raise _network_failure(exc, what, current, self.timeout_s) from None
        raise RegistryError(
            f"registry {what} at {_display(url)} redirected more than {MAX_REDIRECTS} times",
            details={"url": _display(url)},
        )

    def _body(
        self, response: httpx.Response, url: str, what: str, limit: int, promised: int | None
    ) -> bytes:
        shown = _display(url)
        if response.status_code != 200:
            raise RegistryError(
                f"registry answered HTTP {response.status_code} "
                f"{_one_line(response.reason_phrase)} for {what} {shown}",
                details={"url": shown, "status": response.status_code},
            )
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise RegistryError(
                f"registry sent {what} {shown} with content-encoding '{_one_line(encoding)}' "
                "although only identity was accepted",
                details={"url": shown},
            )
        declared = response.headers.get("content-length")
        if declared is not None:
            text = declared.strip()
            size = int(text) if text.isascii() and text.isdigit() else None
            if size is None:
                raise RegistryError(f"registry sent an invalid Content-Length for {what} {shown}")
            if size > limit:
                raise _too_large(what, shown, limit, promised, size)
        body = bytearray()
        for chunk in response.iter_raw():
            if len(body) + len(chunk) > limit:
                raise _too_large(what, shown, limit, promised, None)
            body += chunk
        if promised is not None and len(body) != promised:
            raise RegistryError(
                f"registry sent {len(body)} bytes for {what} {shown}, "
                f"but the index promised {promised}",
                details={"url": shown, "actual": len(body), "promised": promised},
            )
        return bytes(body)


def _too_large(
    what: str, shown: str, limit: int, promised: int | None, declared: int | None
) -> RegistryError:
    bound = (
        f"the {promised} bytes the index promised"
        if promised is not None and promised <= limit
        else f"the {limit}-byte limit"
    )
    sent = f" (Content-Length {declared})" if declared is not None else ""
    return RegistryError(
        f"registry {what} {shown} is larger than {bound}{sent}; download aborted",
        details={"url": shown, "limit": limit},
    )


def _redirect_target(origin_url: str, current: str, response: httpx.Response, what: str) -> str:
    """The next hop of a redirect, which must stay https on the registry's origin."""
    location: str | None = response.headers.get("location")
    if not location:
        raise RegistryError(f"registry redirect for {what} {_display(current)} has no Location")
    target = urljoin(current, location.strip())
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in target) or _origin(target) != _origin(
        origin_url
    ):
        raise RegistryError(
            f"registry redirected {what} {_display(current)} to {_display(target)}, "
            f"which leaves the registry origin {_origin_text(origin_url)}",
            details={"url": _display(current), "location": _display(target)},
        )
    return target


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() != "https" or not parts.hostname or "@" in parts.netloc:
        return None
    return ("https", parts.hostname.lower(), port or _HTTPS_PORT)


def _origin_text(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _display(url: str) -> str:
    """A URL for messages: no credentials or query (either may carry a secret), one line."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        shown = f"{parts.scheme}://{host}{parts.path}" if parts.scheme else url
    except ValueError:
        shown = url
    return _one_line(shown.encode("unicode_escape").decode("ascii"))


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: httpcore re-raises socket and TLS errors ``from`` them."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _network_failure(exc: Exception, what: str, url: str, timeout_s: float) -> RegistryError:
    """One clear line for whatever went wrong below HTTP."""
    parts = urlsplit(url)
    host = parts.netloc
    shown = _display(url)
    chain = list(_causes(exc))

    def fail(reason: str, message: str) -> RegistryError:
        return RegistryError(message, details={"url": shown, "reason": reason})

    for item in chain:
        if isinstance(item, ssl.SSLCertVerificationError):
            detail = _one_line(item.verify_message or "certificate verification failed")
            return fail(
                "tls_verify",
                f"TLS certificate verification failed for registry {host}: {detail} "
                f"(a registry with a private CA needs its CA file, e.g. via {CA_FILE_ENV})",
            )
    for item in chain:
        if isinstance(item, ssl.SSLError):
            detail = _one_line(str(item.reason or item))
            return fail("tls", f"TLS handshake with registry {host} failed: {detail}")
    if any(isinstance(item, httpcore.TimeoutException | TimeoutError) for item in chain):
        return fail(
            "timeout",
            f"registry {host} did not deliver the {what} {shown} within the {timeout_s:g} s limit",
        )
    for item in chain:
        if isinstance(item, socket.gaierror):
            return fail("dns", f"cannot resolve registry host {parts.hostname}")
        if isinstance(item, ConnectionRefusedError):
            return fail("refused", f"registry {host} refused the connection")
    if any(isinstance(item, httpcore.ProtocolError) for item in chain):
        return fail("protocol", f"registry {host} broke the HTTP protocol while sending the {what}")
    for item in chain:
        if isinstance(item, OSError) and item.strerror:
            return fail(
                "network",
                f"network failure talking to registry {host}: {_one_line(item.strerror)}",
            )
    if any(isinstance(item, httpcore.NetworkError) for item in chain):
        return fail("network", f"connection to registry {host} lost while fetching the {what}")
    return fail("network", f"fetching the {what} {shown} failed ({type(exc).__name__})")


# ---- transport: httpx on an httpcore pool whose sockets share one deadline -------------------


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, but no operation may outlive ``deadline``.

    httpx's timeouts are per socket operation, so a server that sends a byte just before each
    one expires would hold a download open indefinitely. Here every connect, TLS handshake,
    read and write gets at most the time remaining. Name resolution, which sockets cannot
    time out, runs in a helper thread that is abandoned (and cleans up after itself) when
    time runs out.
    """

    def __init__(self, deadline: float) -> None:
        self._inner = httpcore.SyncBackend()
        self._deadline = deadline

    def budget(self, timeout: float | None, error: type[Exception]) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise error("registry deadline exceeded")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        budget = self.budget(timeout, httpcore.ConnectTimeout)
        attempt = _ConnectAttempt(
            lambda: self._inner.connect_tcp(host, port, budget, local_address, socket_options)
        )
        return _DeadlineStream(attempt.result(budget), self)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not used for registries")

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, min(seconds, self._deadline - time.monotonic())))


class _ConnectAttempt:
    """Runs a blocking connect in a daemon thread so that waiting for it can time out."""

    def __init__(self, connect: typing.Callable[[], httpcore.NetworkStream]) -> None:
        self._connect = connect
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._abandoned = False
        self._stream: httpcore.NetworkStream | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._run, name="palyra-registry-connect", daemon=True).start()

    def _run(self) -> None:
        stream: httpcore.NetworkStream | None = None
        error: BaseException | None = None
        try:
            stream = self._connect()
        except BaseException as exc:
            error = exc
        with self._lock:
            if self._abandoned:
                if stream is not None:
                    stream.close()
                return
            self._stream, self._error = stream, error
            self._done.set()

    def result(self, budget: float) -> httpcore.NetworkStream:
        finished = self._done.wait(budget)
        with self._lock:
            if not finished and not self._done.is_set():
                self._abandoned = True
                raise httpcore.ConnectTimeout("registry deadline exceeded while connecting")
        if self._error is not None:
            raise self._error
        assert self._stream is not None
        return self._stream


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, backend: _DeadlineBackend) -> None:
        self._inner = inner
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        budget = self._backend.budget(timeout, httpcore.ReadTimeout)
        return self._inner.read(max_bytes, budget)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        budget = self._backend.budget(timeout, httpcore.WriteTimeout)
        self._inner.write(buffer, budget)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        budget = self._backend.budget(timeout, httpcore.ConnectTimeout)
        upgraded = self._inner.start_tls(ssl_context, server_hostname, budget)
        return _DeadlineStream(upgraded, self._backend)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, inner: Iterable[bytes]) -> None:
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        yield from self._inner

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()


class _Transport(httpx.BaseTransport):
    """``httpx.HTTPTransport`` minus proxies, on a pool that uses :class:`_DeadlineBackend`.

    httpx does not let a caller choose the network backend, so this adapter builds the
    httpcore pool itself. httpcore's exceptions pass through unmapped; the fetcher turns
    every one of them into a :class:`RegistryError`.
    """

    def __init__(self, ssl_context: ssl.SSLContext, backend: httpcore.NetworkBackend) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            network_backend=backend,
            http1=True,
            http2=False,
            retries=0,
            max_connections=4,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.SyncByteStream):  # pragma: no cover
            raise TypeError("the registry client only sends synchronous requests")
        response = self._pool.handle_request(
            httpcore.Request(
                method=request.method,
                url=httpcore.URL(
                    scheme=request.url.raw_scheme,
                    host=request.url.raw_host,
                    port=request.url.port,
                    target=request.url.raw_path,
                ),
                headers=request.headers.raw,
                content=request.stream,
                extensions=request.extensions,
            )
        )
        if not isinstance(response.stream, Iterable):  # pragma: no cover
            raise TypeError("httpcore returned an asynchronous stream")
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


# ---- publishing ----------------------------------------------------------------------------------


def index_directory(root: Path) -> RegistryIndex:
    """The index of every ``*.palyra-skill`` under ``root``, for an operator to publish.

    Unlike installing from a local registry (which skips bad files so one upload cannot
    block the rest), publishing fails on the first invalid artifact: a registry must never
    advertise bytes its clients will refuse. Entries are sorted by skill id, then semver;
    ``artifact`` is the file's path relative to ``root`` as a URL path (``/``-separated,
    percent-encoded where a file name needs it), since clients resolve it against the URL
    the index is served from.
    """
    if not root.is_dir():
        raise UsageError(f"registry directory {root} does not exist")
    located: list[tuple[Semver, RegistryEntry, str]] = []
    for path in _registry_files(root):
        relative = path.relative_to(root).as_posix()
        shown = relative.encode("utf-8", "backslashreplace").decode("utf-8")
        try:
            data = read_local_artifact(path)
            manifest = inspect_skill_artifact(data).manifest
        except PalyraError as exc:
            raise RegistryError(
                f"cannot index {shown}: {exc.message}",
                details={"file": shown, "kind": exc.kind},
            ) from None
        try:
            artifact = quote(relative, safe="/")
        except UnicodeEncodeError:
            artifact = ""
        problem = ref_problem(artifact) if artifact else "is not valid UTF-8"
        if problem is not None:
            raise RegistryError(
                f"cannot index {shown}: its path {problem} when used as a URL",
                details={"file": shown},
            )
        entry = RegistryEntry(
            skill_id=manifest.skill_id,
            version=manifest.version,
            publisher=manifest.publisher,
            artifact=artifact,
            artifact_sha256=hashlib.sha256(data).hexdigest(),
            artifact_bytes=len(data),
        )
        located.append((entry.semver, entry, shown))
    located.sort(key=lambda item: (item[1].skill_id, item[0]))
    for (semver_a, a, file_a), (semver_b, b, file_b) in itertools.pairwise(located):
        if a.skill_id == b.skill_id and semver_a == semver_b:
            raise RegistryError(
                f"cannot index {root}: {file_a} and {file_b} are both {a.skill_id} {b.version}",
                details={"files": [file_a, file_b]},
            )
    return RegistryIndex(
        generated_at_unix_ms=int(time.time() * 1000),
        entries=tuple(entry for _, entry, _ in located),
    )


def write_signed_index(
    root: Path, signing_key: SigningKey, publisher: str, output: Path | None = None
) -> Path:
    """Index ``root``, sign it as ``publisher`` and write it (default ``root/index.json``).

    The write is atomic so a web server publishing ``root`` never serves half a page; the
    index is signed before anything is written, so a failure leaves the old file in place.
    """
    page = sign_index(index_directory(root), signing_key, publisher)
    target = output if output is not None else root / INDEX_FILE_NAME
    atomic_write(target, page, mode=0o644)
    return target
