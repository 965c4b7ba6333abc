"""The HTTP API under ``/api/v1`` — a thin face over :class:`Service`.

Every route needs the bearer token; errors are one envelope
``{"error": {"kind", "message", "details"}}`` with a 4xx status for anything the caller can
fix (a validation error is never a 500); request bodies are size-capped before they are read.
Handlers are plain ``def`` functions: FastAPI runs them on its worker threads, and the
service's own admission control answers ``overloaded`` when those are all busy.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Annotated, Any

import anyio
from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from palyra import __version__
from palyra.daemon.auth import token_matches
from palyra.daemon.console import is_public, mount_console
from palyra.daemon.errors import Overloaded
from palyra.daemon.service import Service
from palyra.daemon.sessions import (
    CSRF_HEADER,
    Sessions,
    clear_cookie,
    cookie_value,
    set_cookie,
)
from palyra.errors import PalyraError
from palyra.skills.constants import MAX_ARTIFACT_BYTES

API_PREFIX = "/api/v1"
PRINCIPAL = "api"
SSE_POLL_SECONDS = 0.25
MAX_SEQ = 2**63 - 1  # SQLite INTEGER
MAX_SSE_STREAMS = 16
SIGN_IN_PATH = f"{API_PREFIX}/session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_STATUS_BY_KIND: dict[str, int] = {
    "unauthorized": 401,
    "csrf": 403,
    "rate_limited": 429,
    "not_found": 404,
    "already_installed": 409,
    "conflict": 409,
    "downgrade_refused": 409,
    "publisher_mismatch": 409,
    "capability_approval_required": 409,
    "skill_not_active": 409,
    "quarantine_required": 409,
    "missing_secrets": 409,
    "capability_denied": 403,
    "approval_denied": 403,
    "approval_timeout": 408,
    "overloaded": 429,
    "timed_out": 422,
    "fuel_exhausted": 422,
    "memory_limit": 422,
    "resource_limit": 422,
    "guest_trap": 422,
    "tool_error": 422,
    "invalid_output": 422,
    "invalid_module": 422,
    "missing_export": 422,
    "link_error": 422,
    "runtime_failure": 422,
    "registry": 502,
    "store": 500,
    "io": 500,
    "internal": 500,
}


def status_for(kind: str) -> int:
    """Unknown kinds are validation-type failures of the caller's input (400)."""
    return _STATUS_BY_KIND.get(kind, 400)


# Route parameter types (module level: FastAPI resolves annotations by name at import).
SkillId = Annotated[str, PathParam(max_length=128)]
ToolName = Annotated[str, PathParam(max_length=128)]
ApprovalId = Annotated[str, PathParam(max_length=64)]
SecretPart = Annotated[str, PathParam(max_length=300)]
VersionQ = Annotated[str | None, Query(max_length=128)]
BindingId = Annotated[str, PathParam(max_length=128)]


def _envelope(status: int, kind: str, message: str, details: Any = None) -> JSONResponse:
    body: dict[str, Any] = {"kind": kind, "message": message, "details": details or {}}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": body}, status_code=status, headers=headers)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StatusChange(_Strict):
    version: str | None = Field(default=None, max_length=128)
    reason: str | None = Field(default=None, max_length=1000)


class EnableRequest(StatusChange):
    approve_capabilities: bool = False


class VersionRequest(_Strict):
    version: str | None = Field(default=None, max_length=128)


class RegistryInstall(_Strict):
    registry_url: str = Field(max_length=2048)
    skill_id: str = Field(max_length=128)
    version: str | None = Field(default=None, max_length=128)
    allow_tofu: bool = False
    force: bool = False
    update: bool = False


class RunRequest(_Strict):
    input: Any = None
    version: str | None = Field(default=None, max_length=128)


class Decision(_Strict):
    window_s: float | None = Field(default=None, gt=0)
    reason: str | None = Field(default=None, max_length=1000)


class PluginBind(_Strict):
    plugin_id: str = Field(max_length=128)
    skill_id: str = Field(max_length=128)
    tool: str = Field(max_length=128)
    version: str | None = Field(default=None, max_length=128)
    profile: dict[str, list[str]] | None = None
    enabled: bool = True
    notes: str | None = Field(default=None, max_length=2000)


class HookBind(_Strict):
    hook_id: str = Field(max_length=128)
    event: str = Field(max_length=64)
    plugin_id: str = Field(max_length=128)
    enabled: bool = True


class HookFire(_Strict):
    event: str = Field(max_length=64)
    payload: dict[str, Any] | None = None


class SignIn(_Strict):
    token: str = Field(default="", max_length=256)


class SecretValue(_Strict):
    value: str = Field(min_length=1, max_length=65536)


Mount = Callable[[FastAPI, Service], contextlib.AbstractAsyncContextManager[None]]
"""An extra face served by the app (MCP at ``/mcp``): it adds its routes and returns what
must run for the app's lifetime. Passed in by the composition root, so the daemon layer
never imports a face built on top of it."""


def create_app(service: Service, token: str, *, mounts: Sequence[Mount] = ()) -> FastAPI:
    """The daemon's app. Each of ``mounts`` is served behind the same guard and runs in the
    app's lifespan, so serve with lifespan on."""
    config = service.ctx.config.api

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for running in mounted:
                await stack.enter_async_context(running)
            yield

    app = FastAPI(
        title="Palyra daemon",
        version=__version__,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    mounted = [mount(app, service) for mount in mounts]
    streams = anyio.Semaphore(MAX_SSE_STREAMS)

    sessions = Sessions(token)
    app.add_middleware(Guard, token=token, max_body=config.max_body_bytes, sessions=sessions)

    @app.exception_handler(PalyraError)
    async def palyra_error(_request: Request, exc: PalyraError) -> JSONResponse:
        return _envelope(status_for(exc.kind), exc.kind, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": [str(p) for p in e.get("loc", ())], "message": str(e.get("msg", ""))}
            for e in exc.errors()[:20]
        ]
        first = problems[0] if problems else {"loc": [], "message": "invalid request"}
        message = f"{'.'.join(first['loc'])}: {first['message']}"
        return _envelope(422, "invalid_request", message, {"problems": problems})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kinds = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        kind = kinds.get(exc.status_code, "http_error")
        return _envelope(exc.status_code, kind, str(exc.detail))

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, exc: Exception) -> JSONResponse:
        return _envelope(500, "internal", f"{type(exc).__name__}: {exc}"[:300])

    p = API_PREFIX

    # ---- console sessions ---------------------------------------------------------------------
    @app.post(f"{p}/session", tags=["session"])
    def sign_in(body: SignIn, request: Request) -> JSONResponse:
        """Exchange the API token for a session cookie (HttpOnly, SameSite=Strict) and the
        CSRF token every mutating cookie request must send as ``X-CSRF-Token``."""
        session = sessions.sign_in(body.token)
        response = JSONResponse(
            {"csrf_token": session.csrf_token, "expires_at_ms": session.expires_at_ms}
        )
        secure = request.url.scheme == "https"
        response.headers["set-cookie"] = set_cookie(session, secure=secure)
        response.headers["cache-control"] = "no-store"
        return response

    @app.get(f"{p}/session", tags=["session"])
    def session_info(request: Request) -> JSONResponse:
        session_id = request.scope.get("palyra_session")
        session = None if session_id is None else sessions.lookup(session_id)
        body: dict[str, Any] = {"authenticated": True, "via": "bearer"}
        if session is not None:
            body = {
                "authenticated": True,
                "via": "session",
                "csrf_token": session.csrf_token,
                "expires_at_ms": session.expires_at_ms,
            }
        return JSONResponse(body, headers={"cache-control": "no-store"})

    @app.delete(f"{p}/session", tags=["session"])
    def sign_out(request: Request) -> JSONResponse:
        session_id = request.scope.get("palyra_session")
        ended = session_id is not None and sessions.end(session_id)
        response = JSONResponse({"signed_out": ended})
        response.headers["set-cookie"] = clear_cookie()
        return response

    # ---- daemon -------------------------------------------------------------------------------
    @app.get(f"{p}/ping", tags=["daemon"])
    def ping() -> dict[str, Any]:
        """An authenticated no-op (the benchmark's baseline)."""
        return {"ok": True}

    @app.get(f"{p}/status", tags=["daemon"])
    def status() -> dict[str, Any]:
        return service.status()

    # ---- skills -------------------------------------------------------------------------------
    @app.get(f"{p}/skills", tags=["skills"])
    def list_skills() -> dict[str, Any]:
        return service.list_skills()

    @app.post(
        f"{p}/skills/install",
        tags=["skills"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            }
        },
    )
    async def install(
        request: Request,
        allow_tofu: bool = False,
        force: bool = False,
        update_of: Annotated[str | None, Query(max_length=128)] = None,
        source_ref: Annotated[str, Query(max_length=2048)] = "upload",
    ) -> dict[str, Any]:
        """Install the ``.palyra-skill`` bytes in the request body (``update_of``: they must
        be a new version of that installed skill)."""
        data = await request.body()
        return await anyio.to_thread.run_sync(
            lambda: service.install_artifact(
                data,
                source_ref=source_ref,
                allow_tofu=allow_tofu,
                force=force,
                update_of=update_of,
                principal=PRINCIPAL,
            )
        )

    @app.post(f"{p}/skills/install-from-registry", tags=["skills"])
    def install_from_registry(body: RegistryInstall) -> dict[str, Any]:
        return service.install_from_registry_url(
            body.registry_url,
            body.skill_id,
            body.version,
            allow_tofu=body.allow_tofu,
            force=body.force,
            update=body.update,
            principal=PRINCIPAL,
        )

    @app.post(f"{p}/skills/reaudit", tags=["skills"])
    def reaudit() -> dict[str, Any]:
        return service.reaudit()

    @app.get(f"{p}/skills-check", tags=["skills"])
    def check_all() -> dict[str, Any]:
        return service.check()

    @app.get(f"{p}/skills/{{skill_id}}", tags=["skills"])
    def info(skill_id: SkillId, version: VersionQ = None) -> dict[str, Any]:
        return service.info(skill_id, version)

    @app.delete(f"{p}/skills/{{skill_id}}", tags=["skills"])
    def remove(skill_id: SkillId, version: VersionQ = None) -> dict[str, Any]:
        return service.remove(skill_id, version, principal=PRINCIPAL)

    @app.get(f"{p}/skills/{{skill_id}}/check", tags=["skills"])
    def check(skill_id: SkillId, version: VersionQ = None) -> dict[str, Any]:
        return service.check(skill_id, version)

    @app.post(f"{p}/skills/{{skill_id}}/verify", tags=["skills"])
    def verify(skill_id: SkillId, body: VersionRequest | None = None) -> dict[str, Any]:
        return service.verify(skill_id, body.version if body else None, principal=PRINCIPAL)

    @app.post(f"{p}/skills/{{skill_id}}/audit", tags=["skills"])
    def audit(skill_id: SkillId, body: VersionRequest | None = None) -> dict[str, Any]:
        return service.audit(skill_id, body.version if body else None, principal=PRINCIPAL)

    @app.post(f"{p}/skills/{{skill_id}}/enable", tags=["skills"])
    def enable(skill_id: SkillId, body: EnableRequest | None = None) -> dict[str, Any]:
        body = body or EnableRequest()
        return service.enable(
            skill_id,
            body.version,
            reason=body.reason,
            approve_capabilities=body.approve_capabilities,
            principal=PRINCIPAL,
        )

    @app.post(f"{p}/skills/{{skill_id}}/disable", tags=["skills"])
    def disable(skill_id: SkillId, body: StatusChange | None = None) -> dict[str, Any]:
        body = body or StatusChange()
        return service.disable(skill_id, body.version, reason=body.reason, principal=PRINCIPAL)

    @app.post(f"{p}/skills/{{skill_id}}/quarantine", tags=["skills"])
    def quarantine(skill_id: SkillId, body: StatusChange | None = None) -> dict[str, Any]:
        body = body or StatusChange()
        return service.quarantine(skill_id, body.version, reason=body.reason, principal=PRINCIPAL)

    # ---- tools --------------------------------------------------------------------------------
    @app.post(f"{p}/skills/{{skill_id}}/tools/{{tool}}/run", tags=["tools"])
    async def run(
        skill_id: SkillId,
        tool: ToolName,
        body: RunRequest | None = None,
    ) -> Response:
        """Run one tool; the response is its output plus the receipt's sequence number."""
        request = body or RunRequest()

        def call() -> bytes:
            # Serialised on the worker thread: the event loop (which every request shares)
            # only copies bytes. The hottest route skips FastAPI's response re-validation.
            result = service.run(
                skill_id,
                tool,
                request.input,
                version=request.version,
                principal=PRINCIPAL,
                origin="http",
            )
            return json.dumps(result, ensure_ascii=False).encode("utf-8")

        return Response(await anyio.to_thread.run_sync(call), media_type="application/json")

    # ---- approvals ----------------------------------------------------------------------------
    @app.get(f"{p}/approvals", tags=["approvals"])
    def approvals(state: Annotated[str, Query(max_length=16)] = "pending") -> dict[str, Any]:
        return service.list_approvals(state)

    @app.post(f"{p}/approvals/{{approval_id}}/approve", tags=["approvals"])
    def approve(approval_id: ApprovalId, body: Decision | None = None) -> dict[str, Any]:
        body = body or Decision()
        return service.decide_approval(
            approval_id,
            approve=True,
            window_s=body.window_s,
            reason=body.reason,
            principal=PRINCIPAL,
        )

    @app.post(f"{p}/approvals/{{approval_id}}/deny", tags=["approvals"])
    def deny(approval_id: ApprovalId, body: Decision | None = None) -> dict[str, Any]:
        body = body or Decision()
        return service.decide_approval(
            approval_id,
            approve=False,
            window_s=body.window_s,
            reason=body.reason,
            principal=PRINCIPAL,
        )

    # ---- journal ------------------------------------------------------------------------------
    @app.get(f"{p}/journal", tags=["journal"])
    def journal(
        after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        kind: Annotated[str | None, Query(max_length=64)] = None,
    ) -> dict[str, Any]:
        return service.journal(after, limit, kind)

    @app.get(f"{p}/journal/verify", tags=["journal"])
    def journal_verify() -> dict[str, Any]:
        return service.verify_journal()

    @app.get(
        f"{p}/journal/stream",
        tags=["journal"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def journal_stream(
        request: Request, after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0
    ) -> StreamingResponse:
        """Server-sent events: every journal event after ``after``, then live ones."""
        if streams.value == 0:
            raise Overloaded("too many journal streams are open")

        async def events() -> AsyncIterator[bytes]:
            cursor = after
            async with streams:
                yield b": palyra journal\n\n"
                while not await request.is_disconnected():
                    page = await anyio.to_thread.run_sync(service.journal, cursor, 200)
                    for event in page["events"]:
                        cursor = event["seq"]
                        data = json.dumps(event, ensure_ascii=False)
                        yield f"id: {cursor}\nevent: journal\ndata: {data}\n\n".encode()
                    if not page["events"]:
                        await anyio.sleep(SSE_POLL_SECONDS)

        return StreamingResponse(events(), media_type="text/event-stream")

    # ---- the reference's generic palyra.plugin.run input ----------------------------------------
    @app.post(f"{p}/plugin/run", tags=["tools"])
    def plugin_run(body: dict[str, Any]) -> dict[str, Any]:
        """``{skill_id, skill_version, tool_id, module_path, module_wat, module_base64,
        entrypoint, capabilities, input}``; inline modules only when the policy allows."""
        return service.plugin_run(body, principal=PRINCIPAL, origin="http")

    # ---- plugin bindings ----------------------------------------------------------------------
    @app.get(f"{p}/plugins", tags=["plugins"])
    def list_plugins() -> dict[str, Any]:
        return service.list_plugins()

    @app.post(f"{p}/plugins", tags=["plugins"])
    def bind_plugin(body: PluginBind) -> dict[str, Any]:
        return service.bind_plugin(
            body.plugin_id,
            body.skill_id,
            body.tool,
            version=body.version,
            profile=body.profile,
            enabled=body.enabled,
            notes=body.notes,
            principal=PRINCIPAL,
        )

    @app.delete(f"{p}/plugins/{{plugin_id}}", tags=["plugins"])
    def unbind_plugin(plugin_id: BindingId) -> dict[str, Any]:
        return service.unbind_plugin(plugin_id, principal=PRINCIPAL)

    @app.post(f"{p}/plugins/{{plugin_id}}/enable", tags=["plugins"])
    def enable_plugin(plugin_id: BindingId) -> dict[str, Any]:
        return service.set_plugin_enabled(plugin_id, True, principal=PRINCIPAL)

    @app.post(f"{p}/plugins/{{plugin_id}}/disable", tags=["plugins"])
    def disable_plugin(plugin_id: BindingId) -> dict[str, Any]:
        return service.set_plugin_enabled(plugin_id, False, principal=PRINCIPAL)

    @app.get(f"{p}/plugins/{{plugin_id}}/check", tags=["plugins"])
    def check_plugin(plugin_id: BindingId) -> dict[str, Any]:
        return service.check_plugin(plugin_id)

    # ---- hooks --------------------------------------------------------------------------------
    @app.get(f"{p}/hooks", tags=["hooks"])
    def list_hooks(event: Annotated[str | None, Query(max_length=64)] = None) -> dict[str, Any]:
        return service.list_hooks(event)

    @app.post(f"{p}/hooks", tags=["hooks"])
    def bind_hook(body: HookBind) -> dict[str, Any]:
        return service.bind_hook(
            body.hook_id, body.event, body.plugin_id, enabled=body.enabled, principal=PRINCIPAL
        )

    @app.post(f"{p}/hooks/fire", tags=["hooks"])
    def fire_hook(body: HookFire) -> dict[str, Any]:
        return service.fire_hook(body.event, body.payload, principal=PRINCIPAL)

    @app.delete(f"{p}/hooks/{{hook_id}}", tags=["hooks"])
    def unbind_hook(hook_id: BindingId) -> dict[str, Any]:
        return service.unbind_hook(hook_id, principal=PRINCIPAL)

    @app.post(f"{p}/hooks/{{hook_id}}/enable", tags=["hooks"])
    def enable_hook(hook_id: BindingId) -> dict[str, Any]:
        return service.set_hook_enabled(hook_id, True, principal=PRINCIPAL)

    @app.post(f"{p}/hooks/{{hook_id}}/disable", tags=["hooks"])
    def disable_hook(hook_id: BindingId) -> dict[str, Any]:
        return service.set_hook_enabled(hook_id, False, principal=PRINCIPAL)

    @app.get(f"{p}/hooks/{{hook_id}}/check", tags=["hooks"])
    def check_hook(hook_id: BindingId) -> dict[str, Any]:
        return service.check_hook(hook_id)

    # ---- secrets ------------------------------------------------------------------------------
    @app.get(f"{p}/secrets", tags=["secrets"])
    def secrets() -> dict[str, Any]:
        return service.list_secrets()

    @app.put(f"{p}/secrets/{{scope}}/{{key}}", tags=["secrets"])
    def set_secret(
        scope: SecretPart,
        key: SecretPart,
        body: SecretValue,
    ) -> dict[str, Any]:
        return service.set_secret(scope, key, body.value.encode(), principal=PRINCIPAL)

    @app.delete(f"{p}/secrets/{{scope}}/{{key}}", tags=["secrets"])
    def delete_secret(
        scope: SecretPart,
        key: SecretPart,
    ) -> dict[str, Any]:
        return service.delete_secret(scope, key, principal=PRINCIPAL)

    mount_console(app)
    return app


class _TooLarge(StarletteHTTPException):
    """Raised from ``receive``; FastAPI lets HTTP exceptions through body parsing."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds {limit} bytes")


Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def _read_capped(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None once it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)  # the client left; the route will see the disconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app ``body`` first, then whatever the client sends next."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


class Guard:
    """Bearer-token check and body cap as plain ASGI (no per-request middleware objects:
    this runs on every call, so it stays cheap)."""

    def __init__(
        self,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
        token: str,
        max_body: int,
        sessions: Sessions,
    ) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body
        self.sessions = sessions

    async def _authenticate(self, scope: Scope, headers: dict[bytes, bytes], send: Send) -> bool:
        """Bearer token, or a session cookie (plus the CSRF header on anything that is not
        a read). Signing in is the one route that needs neither."""
        method = scope.get("method", "GET")
        path = scope.get("path", "")
        if method == "POST" and path == SIGN_IN_PATH:
            return True
        if method in ("GET", "HEAD") and is_public(path):
            return True  # the console's page and assets: no data in them
        authorization = headers.get(b"authorization")
        if authorization is not None:
            scheme, _, presented = authorization.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token_matches(self.token, presented.strip()):
                return True
            await self._reply(send, 401, "unauthorized", "missing or wrong bearer token")
            return False
        session_id = cookie_value(headers.get(b"cookie", b"").decode("latin-1"))
        session = None if session_id is None else self.sessions.lookup(session_id)
        if session is None:
            await self._reply(send, 401, "unauthorized", "missing or wrong bearer token")
            return False
        if method not in SAFE_METHODS:
            presented = headers.get(CSRF_HEADER.encode(), b"").decode("latin-1")
            if not Sessions.csrf_ok(session, presented):
                await self._reply(send, 403, "csrf", "missing or wrong X-CSRF-Token header")
                return False
        scope["palyra_session"] = session.session_id
        return True

    async def _reply(self, send: Send, status: int, kind: str, message: str) -> None:
        response = _envelope(status, kind, message)
        await send(
            {"type": "http.response.start", "status": status, "headers": response.raw_headers}
        )
        await send({"type": "http.response.body", "body": response.body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if not await self._authenticate(scope, headers, send):
            return
        path = scope.get("path", "")
        limit = (
            MAX_ARTIFACT_BYTES + 4096 if path == f"{API_PREFIX}/skills/install" else (self.max_body)
        )
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                await self._reply(send, 400, "invalid_request", "Content-Length is not a number")
                return
            if too_big:
                await self._reply(send, 413, "too_large", f"request body exceeds {limit} bytes")
                return
        elif b"transfer-encoding" in headers:
            # A chunked body declares no size, and a route that never reads its body would
            # run despite an oversize one: read it (capped) before the route runs.
            body = await _read_capped(receive, limit)
            if body is None:
                await self._reply(send, 413, "too_large", f"request body exceeds {limit} bytes")
                return
            receive = _replay(body, receive)
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await self._reply(send, 413, "too_large", f"request body exceeds {limit} bytes")
