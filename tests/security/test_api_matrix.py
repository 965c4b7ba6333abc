"""The API's security matrix: every route the daemon serves × every way in that must fail.

For each operation derived from the live app (``api_routes.derive_operations``: the FastAPI
routes, their OpenAPI entries, plus ``/mcp`` and the console's static assets) and each cell:

* no token / a wrong token → 401, the ``unauthorized`` envelope and ``WWW-Authenticate:
  Bearer`` — except the console's page and assets, which are public by design; exactly
  those and the sign-in route reach the app without credentials;
* a console session without ``X-CSRF-Token`` on a mutating method → 403 ``csrf`` (while
  the same session reads every GET route);
* a body over the cap (declared by Content-Length, or chunked with none) → 413
  ``too_large``;
* malformed JSON to a route that reads JSON → 422 ``invalid_request``.

Every refused request is bracketed by a state snapshot (database, trust store, artifacts),
so "refused" also means "nothing happened". The targets are real — an installed skill, a
bound plugin and hook, a stored secret, a pending approval — so a request that slipped
through would change something the snapshot sees. One daemon serves the whole module; each
test walks all operations and reports every failing cell at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_routes import Operation, derive_operations, normalized, readme_routes
from state_snapshot import Snapshot, assert_unchanged, snapshot

import daemon_fixtures as df
from daemon_server import running_daemon
from palyra.daemon import console
from palyra.daemon.api import SIGN_IN_PATH
from palyra.daemon.server import Daemon
from palyra.daemon.sessions import COOKIE, CSRF_HEADER
from palyra.skills.constants import MAX_ARTIFACT_BYTES

REPO = Path(__file__).resolve().parents[2]
API = "/api/v1"
STREAM = f"{API}/journal/stream"
INSTALL = f"{API}/skills/install"
MCP = "/mcp"
# A small configured cap keeps the oversize requests light. The fixture artifact is larger
# than it, which the install route must still accept: uploads have their own cap.
MAX_BODY = 2048
# The Guard's cap for the upload route (artifact bytes plus a little slack), not max_body.
INSTALL_LIMIT = MAX_ARTIFACT_BYTES + 4096
PLUGIN_ID = "matrix.plugin"
HOOK_ID = "matrix.hook"
SECRET_SCOPE = f"skill:{df.SKILL_ID}"
SECRET_KEY = "api_token"
MALFORMED = b'{"token": "x", '  # cut off mid-object
MCP_ACCEPT = "application/json, text/event-stream"

# The public surface, written out as the contract (not read from the code it checks): the
# console page and its assets hold no data, and signing in needs the token in its body.
PUBLIC_PAGES = frozenset({"/", "/index.html", "/favicon.ico"})
PUBLIC_PREFIX = "/assets/"


def _is_public(op: Operation) -> bool:
    """What may answer without credentials (GET only, and the sign-in POST)."""
    if op.method == "POST" and op.template == SIGN_IN_PATH:
        return True
    return op.method == "GET" and (op.path in PUBLIC_PAGES or op.path.startswith(PUBLIC_PREFIX))


# Bodies that would change something if the request got through (the default is ``{}``).
_BODIES: dict[tuple[str, str], Any] = {
    ("POST", f"{API}/skills/install-from-registry"): {
        "registry_url": "https://127.0.0.1:9/index.json",
        "skill_id": df.SKILL_ID,
    },
    ("POST", f"{API}/skills/{{skill_id}}/disable"): {"reason": "matrix"},
    ("POST", f"{API}/skills/{{skill_id}}/quarantine"): {"reason": "matrix"},
    ("POST", f"{API}/skills/{{skill_id}}/tools/{{tool}}/run"): {"input": {"text": "matrix"}},
    ("POST", f"{API}/approvals/{{approval_id}}/approve"): {"window_s": 60},
    ("POST", f"{API}/approvals/{{approval_id}}/deny"): {"reason": "matrix"},
    ("POST", f"{API}/plugin/run"): {"skill_id": df.SKILL_ID, "tool_id": "acme.echo", "input": {}},
    ("POST", f"{API}/plugins"): {
        "plugin_id": "matrix.other",
        "skill_id": df.SKILL_ID,
        "tool": "echo",
    },
    ("POST", f"{API}/hooks"): {
        "hook_id": "matrix.other",
        "event": "skill:enabled",
        "plugin_id": PLUGIN_ID,
    },
    ("POST", f"{API}/hooks/fire"): {"event": "gateway:startup", "payload": {}},
    ("PUT", f"{API}/secrets/{{scope}}/{{key}}"): {"value": "changed"},
    ("POST", MCP): {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "matrix", "version": "0"},
        },
    },
}


@dataclass
class World:
    """The running daemon, its state root, what it serves and a signed-in console session."""

    daemon: Daemon
    root: Path
    operations: list[Operation]
    skipped: dict[str, str]
    openapi: dict[str, Any]
    session_id: str
    csrf: str
    update_artifact: bytes  # a newer version of the fixture skill: installing it would change state

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.daemon.url, timeout=30.0, trust_env=False)

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.daemon.token}"}

    @property
    def wrong_bearer(self) -> dict[str, str]:
        token = self.daemon.token
        wrong = ("A" if token[0] != "A" else "B") + token[1:]  # same length, one character off
        return {"Authorization": f"Bearer {wrong}"}

    @property
    def cookie(self) -> dict[str, str]:
        return {"Cookie": f"{COOKIE}={self.session_id}"}

    def valid_body(self, op: Operation) -> tuple[bytes | None, dict[str, str]]:
        """A body the route would act on, with its content headers (nothing for GET)."""
        if op.body == "octets":
            return self.update_artifact, {"Content-Type": "application/octet-stream"}
        if op.body == "json":
            body = _BODIES.get((op.method, op.template), {})
            return json.dumps(body).encode(), _json_headers(op)
        return None, {}


def _json_headers(op: Operation) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if op.template == MCP:
        headers["Accept"] = MCP_ACCEPT  # else MCP answers 406 before looking at the body
    return headers


def _pending_approval(daemon: Daemon) -> tuple[str, threading.Thread]:
    """Start a call of the approval-gated tool in the background and return the id of the
    approval it waits for (the approve/deny routes then have a real target)."""

    def call() -> None:
        with contextlib.suppress(Exception):  # ends denied at teardown
            daemon.service.run(
                df.SKILL_ID, "guarded", {"text": "matrix"}, principal="test", approval_timeout_s=600
            )

    thread = threading.Thread(target=call, name="matrix-approval", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pending = daemon.service.list_approvals("pending")["approvals"]
        if pending:
            return str(pending[0]["approval_id"]), thread
        time.sleep(0.02)
    raise AssertionError("the guarded call never asked for an approval")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One daemon for the module (small body cap, no periodic re-audit: nothing but the
    requests under test may change its state), seeded through the API with a real target
    for every path parameter."""
    root = tmp_path_factory.mktemp("api-matrix") / "state"
    root.mkdir(mode=0o700)
    (root / "config.toml").write_text(
        f"[api]\nmax_body_bytes = {MAX_BODY}\n\n[skills]\nreaudit_interval_s = 0\n"
    )
    artifact = df.artifact()
    assert len(artifact) > MAX_BODY  # so the install below shows uploads have their own cap
    with (
        running_daemon(root) as daemon,
        httpx.Client(base_url=daemon.url, timeout=30.0, trust_env=False) as client,
    ):
        auth = {"Authorization": f"Bearer {daemon.token}"}
        seeded = [
            client.post(
                INSTALL,
                params={"allow_tofu": "true"},
                content=artifact,
                headers={**auth, "Content-Type": "application/octet-stream"},
            ),
            client.post(
                f"{API}/plugins",
                json={"plugin_id": PLUGIN_ID, "skill_id": df.SKILL_ID, "tool": "echo"},
                headers=auth,
            ),
            client.post(
                f"{API}/hooks",
                json={"hook_id": HOOK_ID, "event": "gateway:startup", "plugin_id": PLUGIN_ID},
                headers=auth,
            ),
            client.put(
                f"{API}/secrets/{SECRET_SCOPE}/{SECRET_KEY}", json={"value": "s3cret"}, headers=auth
            ),
        ]
        for response in seeded:
            assert response.status_code == 200, response.text
        signed_in = client.post(SIGN_IN_PATH, json={"token": daemon.token})
        assert signed_in.status_code == 200, signed_in.text
        session_id = signed_in.cookies[COOKIE]
        openapi = client.get(f"{API}/openapi.json", headers=auth).json()
        approval_id, waiter = _pending_approval(daemon)
        values = {
            "skill_id": df.SKILL_ID,
            "tool": "echo",
            "approval_id": approval_id,
            "plugin_id": PLUGIN_ID,
            "hook_id": HOOK_ID,
            "scope": SECRET_SCOPE,
            "key": SECRET_KEY,
        }
        operations, skipped = derive_operations(daemon.app, openapi, values)
        try:
            yield World(
                daemon=daemon,
                root=root,
                operations=operations,
                skipped=skipped,
                openapi=openapi,
                session_id=session_id,
                csrf=str(signed_in.json()["csrf_token"]),
                update_artifact=df.artifact("2.0.0"),
            )
        finally:
            with contextlib.suppress(Exception):  # already decided if a cell let it through
                daemon.service.decide_approval(approval_id, approve=False, principal="test")
            waiter.join(10)


# ---- state: the snapshot plus the secrets vault ----------------------------------------------


@dataclass(frozen=True)
class _State:
    """``state_snapshot`` covers the database, trust store and artifacts; the vault (an
    encrypted file tree of its own) is added here, so a secret written or deleted without
    a journal entry would be seen too."""

    store: Snapshot
    vault: dict[str, str]


def _capture(root: Path) -> _State:
    vault = root / "vault"
    files = sorted(p for p in vault.rglob("*") if p.is_file()) if vault.exists() else []
    digests = {str(p.relative_to(vault)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    return _State(snapshot(root), digests)


def _changes(root: Path, before: _State) -> str | None:
    """What changed since ``before`` (one line), or None."""
    problems = []
    try:
        assert_unchanged(root, before.store)
    except AssertionError as exc:
        problems.append(str(exc))
    if _capture(root).vault != before.vault:
        problems.append("the vault changed")
    return "; ".join(problems) or None


# ---- checking one answer -------------------------------------------------------------------


def _envelope_problem(response: httpx.Response, status: int, kind: str) -> str | None:
    """Why ``response`` is not ``status`` with the daemon's ``kind`` envelope, or None."""
    if response.status_code != status:
        return f"status {response.status_code} (want {status}): {response.text[:200]}"
    if "set-cookie" in response.headers:  # a refusal never hands out (or ends) a session
        return f"a refusal set a cookie: {response.headers['set-cookie']!r}"
    if status == 401 and response.headers.get("www-authenticate") != "Bearer":
        return f"WWW-Authenticate is {response.headers.get('www-authenticate')!r}"
    try:
        body = response.json()
    except ValueError:
        return f"not JSON: {response.text[:200]}"
    if not isinstance(body, dict) or set(body) != {"error"}:
        return f"not the error envelope: {body!r}"[:300]
    error = body["error"]
    if not isinstance(error, dict) or set(error) != {"kind", "message", "details"}:
        return f"error is not {{kind, message, details}}: {error!r}"[:300]
    if error["kind"] != kind:
        return f"kind {error['kind']!r} (want {kind!r}): {error['message']!r}"
    if not isinstance(error["message"], str) or not isinstance(error["details"], dict):
        return f"malformed message or details: {error!r}"[:300]
    return None


def _refused(
    world: World,
    client: httpx.Client,
    op: Operation,
    *,
    status: int,
    kind: str,
    headers: dict[str, str],
    content: Any = None,
) -> str | None:
    """Send one request that must be refused; the problem with its answer or with the
    state afterwards, or None."""
    before = _capture(world.root)
    response = client.request(op.method, op.path, headers=headers, content=content)
    problem = _envelope_problem(response, status, kind)
    changed = _changes(world.root, before)
    if changed is not None:
        problem = f"{problem or f'answered {status}'}, yet {changed}"
    return None if problem is None else f"{op}: {problem}"


def _report(problems: list[str | None], cells: int) -> None:
    found = [p for p in problems if p is not None]
    assert cells > 0
    assert not found, f"{len(found)} of {cells} cells failed:\n" + "\n".join(found)


# ---- the route list ------------------------------------------------------------------------


def test_the_route_list_comes_from_the_app_and_covers_the_documented_api(world: World) -> None:
    """Derived, not typed in: everything the README's table and the OpenAPI document list
    is walked, plus the routes neither lists (MCP, the console), and nothing else is left
    out but what ``api_routes.SKIPPED_METHODS`` explains."""
    ops = world.operations
    walked = {(op.method, normalized(op.template)) for op in ops}
    documented = readme_routes((REPO / "README.md").read_text(encoding="utf-8"))
    assert len(documented) >= 40, sorted(documented)  # the table was parsed, not skipped
    assert documented <= walked, sorted(documented - walked)
    assert len(ops) >= len(documented)
    in_openapi = {
        (method.upper(), path)
        for path, item in world.openapi["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert in_openapi <= {(op.method, op.template) for op in ops if op.documented}
    for must in (("POST", MCP), ("GET", MCP), ("DELETE", MCP), ("GET", f"{API}/openapi.json")):
        assert must in {(op.method, op.template) for op in ops}, must
    assert len(set(ops)) == len(ops)
    assert all(reason.strip() for reason in world.skipped.values())
    assert {key.split(" ", 1)[0] for key in world.skipped} <= {"HEAD", "GET"}, world.skipped


# ---- 1. no credentials -----------------------------------------------------------------------


def test_only_the_console_and_sign_in_are_reachable_without_credentials(world: World) -> None:
    """Exactly the public set gets past the Guard: every other operation, sent with no
    credentials (and a malformed body, so reaching the app could change nothing), is the
    Guard's 401. The console's own constants agree with the contract written here."""
    assert console.PUBLIC_PATHS == PUBLIC_PAGES
    assert console.ASSETS_PREFIX == PUBLIC_PREFIX
    reached: set[str] = set()
    before = _capture(world.root)
    with world.client() as client:
        for op in world.operations:
            content = MALFORMED if op.mutating else None
            headers = {"Content-Type": "application/json"} if op.mutating else {}
            response = client.request(op.method, op.path, headers=headers, content=content)
            if response.status_code == 401 and _envelope_problem(response, 401, "unauthorized"):
                raise AssertionError(f"{op}: a 401 without the proper envelope: {response.text}")
            if response.status_code != 401:
                reached.add(str(op))
        # Traversal out of the public prefix reaches nothing either.
        for probe in ("/assets/%2e%2e/api/v1/secrets", "/assets/..%2fapi%2fv1%2fsecrets"):
            assert client.get(probe).status_code == 404, probe
    assert _changes(world.root, before) is None
    public = {str(op) for op in world.operations if _is_public(op)}
    assert f"POST {SIGN_IN_PATH}" in public and "GET /" in public
    assert reached == public


@pytest.mark.parametrize("credentials", ["no token", "wrong token"])
def test_missing_or_wrong_token_is_refused_everywhere(world: World, credentials: str) -> None:
    """401 + envelope + ``WWW-Authenticate: Bearer`` on every non-public operation (sign-in
    too: there the token in the body is the credential, and it is missing or wrong); the
    public pages answer as usual whatever the Authorization header says."""
    wrong = credentials == "wrong token"
    auth = world.wrong_bearer if wrong else {}
    problems: list[str | None] = []
    with world.client() as client:
        for op in world.operations:
            if _is_public(op) and op.method == "GET":
                response = client.get(op.path, headers=auth)
                if not 200 <= response.status_code < 300:
                    problems.append(f"{op}: public page answered {response.status_code}")
                continue
            content, headers = world.valid_body(op)
            if op.template == SIGN_IN_PATH:
                token = world.wrong_bearer["Authorization"].split()[1] if wrong else ""
                content = json.dumps({"token": token}).encode()
            problem = _refused(
                world,
                client,
                op,
                status=401,
                kind="unauthorized",
                headers={**auth, **headers},
                content=content,
            )
            problems.append(problem)
    _report(problems, len(world.operations))


# ---- 2. console sessions -------------------------------------------------------------------


def test_a_session_reads_every_get_route(world: World) -> None:
    """The control for the CSRF cells: the cookie alone opens every read."""
    problems: list[str] = []
    gets = [op for op in world.operations if op.method == "GET" and not _is_public(op)]
    with world.client() as client:
        for op in gets:
            if op.template == STREAM:  # never ends: the status line is the answer
                with client.stream("GET", op.path, headers=world.cookie) as streamed:
                    if streamed.status_code != 200:
                        problems.append(f"{op}: {streamed.status_code}")
                continue
            if op.template == MCP:
                # MCP's GET stream needs an MCP session id first: MCP's own JSON-RPC 400
                # shows the Guard let the cookie through (it refuses with 401/403).
                response = client.get(op.path, headers={**world.cookie, "Accept": MCP_ACCEPT})
                if response.status_code != 400 or "jsonrpc" not in response.text:
                    problems.append(f"{op}: {response.status_code} {response.text[:200]}")
                continue
            response = client.get(op.path, headers=world.cookie)
            if response.status_code != 200:
                problems.append(f"{op}: {response.status_code} {response.text[:200]}")
        info = client.get(SIGN_IN_PATH, headers=world.cookie).json()
    assert info["via"] == "session"
    assert len(gets) >= 15
    assert not problems, "\n".join(problems)


def test_a_session_without_the_csrf_header_changes_nothing(world: World) -> None:
    """403 ``csrf`` on every mutating operation sent with the cookie alone — including
    sign-out, so the session is still alive afterwards. Sign-in is the exception: it is
    public (the token in its body is what authorises it), so it has no CSRF cell."""
    mutating = [op for op in world.operations if op.mutating and op.template != SIGN_IN_PATH]
    problems: list[str | None] = []
    with world.client() as client:
        for op in mutating:
            content, headers = world.valid_body(op)
            problems.append(
                _refused(
                    world,
                    client,
                    op,
                    status=403,
                    kind="csrf",
                    headers={**world.cookie, **headers},
                    content=content,
                )
            )
        still = client.get(SIGN_IN_PATH, headers=world.cookie)
    _report(problems, len(mutating))
    assert still.json()["via"] == "session", "a refused sign-out ended the session"


def test_a_session_with_the_csrf_header_may_change_things(world: World) -> None:
    """The control: the same cookie plus the CSRF token is let through."""
    with world.client() as client:
        response = client.post(
            f"{API}/skills/{df.SKILL_ID}/verify",
            headers={**world.cookie, CSRF_HEADER: world.csrf},
            json={},
        )
    assert response.status_code == 200, response.text


# ---- 3. malformed JSON ---------------------------------------------------------------------


def test_malformed_json_is_a_client_error_that_changes_nothing(world: World) -> None:
    """Every route that reads JSON answers a cut-off document with 422 ``invalid_request``
    (never 5xx). ``/mcp`` speaks JSON-RPC, whose spec prescribes its own answer to a parse
    error (HTTP 400, ``{"jsonrpc": "2.0", "error": {"code": -32700}}``), so that is what it
    must give there, not the REST envelope."""
    json_ops = [op for op in world.operations if op.body == "json"]
    assert len(json_ops) >= 10, json_ops
    problems: list[str | None] = []
    with world.client() as client:
        for op in json_ops:
            headers = {**world.bearer, **_json_headers(op)}
            if op.template != MCP:
                problems.append(
                    _refused(
                        world,
                        client,
                        op,
                        status=422,
                        kind="invalid_request",
                        headers=headers,
                        content=MALFORMED,
                    )
                )
                continue
            before = _capture(world.root)
            response = client.request(op.method, op.path, headers=headers, content=MALFORMED)
            try:
                code = response.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = None
            if response.status_code != 400 or code != -32700:
                problems.append(f"{op}: {response.status_code} {response.text[:200]}")
            problems.append(_changes(world.root, before))
    _report(problems, len(json_ops))


# ---- 4. oversize bodies (last: a body the cap misses may have changed the state) -----------


def _oversize(op: Operation) -> bytes:
    """One byte over the route's cap, as valid JSON where the route reads JSON (so only the
    size can be the reason for a refusal)."""
    size = (INSTALL_LIMIT if op.template == INSTALL else MAX_BODY) + 1
    if op.body == "octets":
        return b"\0" * size
    return b'{"pad": "' + b"x" * (size - 11) + b'"}'


def _chunked(data: bytes) -> Iterator[bytes]:
    """The same bytes with no Content-Length (httpx sends a generator chunked)."""
    step = 64 * 1024 if len(data) > 64 * 1024 else 1024
    for start in range(0, len(data), step):
        yield data[start : start + step]


@pytest.mark.parametrize("framing", ["declared", "chunked"])
def test_an_oversize_body_is_refused_and_changes_nothing(world: World, framing: str) -> None:
    """413 ``too_large`` on every method that carries a body, whether the size is announced
    or only seen while reading; removals go last so the other cells keep their targets."""
    mutating = sorted(
        (op for op in world.operations if op.mutating), key=lambda op: op.method == "DELETE"
    )
    problems: list[str | None] = []
    with world.client() as client:
        for op in mutating:
            data = _oversize(op)
            assert len(data) == (INSTALL_LIMIT if op.template == INSTALL else MAX_BODY) + 1
            _, headers = world.valid_body(op)
            headers = headers or {"Content-Type": "application/json"}
            problems.append(
                _refused(
                    world,
                    client,
                    op,
                    status=413,
                    kind="too_large",
                    headers={**world.bearer, **headers},
                    content=data if framing == "declared" else _chunked(data),
                )
            )
    _report(problems, len(mutating))
