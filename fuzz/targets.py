"""The fuzz targets: each parser that takes bytes from outside, with the one contract it keeps.

A target is ``check(data: bytes) -> None``: it feeds ``data`` to a parser and returns when the
parser either accepted it or refused it with its typed error. Anything else escaping — a
``KeyError``, ``RecursionError``, ``MemoryError``, an uncaught ``struct.error`` — is a crash:
the parser broke its "typed error with a one-line message, never a traceback" promise.

The same functions serve atheris (``fuzz/run.py``, coverage-guided) and the regression test
(``tests/test_fuzz_regressions.py``, which replays every saved crash and every seed).

Targets:

* ``manifest`` — ``parse_manifest_bytes`` (TOML → validated manifest);
* ``artifact`` — ``inspect_skill_artifact`` (ZIP reader, integrity, manifest, SBOM, provenance);
* ``wasm`` — ``parse_wasm``, the audit's own WebAssembly/component binary parser;
* ``api`` — the daemon's HTTP API: the first byte picks a route that takes a body, the rest is
  the body; no answer may be a 5xx (the app runs in-process on a throwaway state root).
"""

from __future__ import annotations

import contextlib
import functools
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from starlette.testclient import TestClient

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the fixture skill builders

Check = Callable[[bytes], None]


class Crash(AssertionError):
    """A target broke its contract (raised so atheris records the input)."""


# ---- manifest --------------------------------------------------------------------------------
def check_manifest(data: bytes) -> None:
    from palyra.errors import PalyraError
    from palyra.skills.manifest import parse_manifest_bytes

    with contextlib.suppress(PalyraError):
        parse_manifest_bytes(data)


def seeds_manifest() -> list[bytes]:
    import daemon_fixtures as F

    return [F.manifest().encode(), (REPO / "examples" / "echo-http" / "skill.toml").read_bytes()]


# ---- artifact --------------------------------------------------------------------------------
def check_artifact(data: bytes) -> None:
    from palyra.errors import PalyraError
    from palyra.skills.inspect import inspect_skill_artifact

    with contextlib.suppress(PalyraError):
        inspect_skill_artifact(data)


def seeds_artifact() -> list[bytes]:
    import daemon_fixtures as F

    return [F.artifact(), F.artifact("2.0.0", hosts=("api.example.com",))]


# ---- wasm ------------------------------------------------------------------------------------
def check_wasm(data: bytes) -> None:
    from palyra.skills.wasm_binary import WasmFormatError, parse_wasm

    with contextlib.suppress(WasmFormatError):
        parse_wasm(data)


def seeds_wasm() -> list[bytes]:
    import daemon_fixtures as F

    return [F.MODULE, b"\0asm\x01\0\0\0", b"\0asm\x0d\0\x01\0"]


# ---- api -------------------------------------------------------------------------------------
@functools.cache
def _api() -> tuple[TestClient, list[tuple[str, str]], dict[str, str]]:
    """One app on a throwaway state root with the fixture skill installed, and the routes
    that take a body (path parameters filled in)."""
    from fastapi.routing import APIRoute

    import daemon_fixtures as F
    from palyra.daemon.api import create_app
    from palyra.daemon.service import Service

    root = Path(tempfile.mkdtemp(prefix="palyra-fuzz-api-"))
    service = Service.open(root / "state")
    service.install_file(F.write_artifact(root), allow_tofu=True)
    token = "fuzz-token"  # noqa: S105 (a throwaway app's token, not a credential)
    app = create_app(service, token)
    values = {"skill_id": F.SKILL_ID, "tool": "echo", "version": "1.0.0", "approval_id": "x"}
    routes: list[tuple[str, str]] = []
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        for method in sorted(route.methods or ()):
            if method in {"POST", "PUT", "PATCH"}:
                path = route.path
                for name, value in values.items():
                    path = path.replace("{" + name + "}", value)
                routes.append((method, path.replace("{", "").replace("}", "")))
    client = TestClient(app, raise_server_exceptions=False)
    return client, sorted(routes), {"Authorization": f"Bearer {token}"}


def check_api(data: bytes) -> None:
    client, routes, headers = _api()
    if not data:
        return
    method, path = routes[data[0] % len(routes)]
    response = client.request(
        method, path, content=data[1:], headers={**headers, "Content-Type": "application/json"}
    )
    if response.status_code >= 500:
        raise Crash(f"{method} {path} answered {response.status_code}: {response.text[:200]}")


def seeds_api() -> list[bytes]:
    return [b"\0{}", b'\1{"reason": "fuzz"}', b'\2{"text": "hi"}', b'\3{"window_s": 60}']


TARGETS: dict[str, tuple[Check, Callable[[], list[bytes]]]] = {
    "manifest": (check_manifest, seeds_manifest),
    "artifact": (check_artifact, seeds_artifact),
    "wasm": (check_wasm, seeds_wasm),
    "api": (check_api, seeds_api),
}
