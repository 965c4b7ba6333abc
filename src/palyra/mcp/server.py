"""The MCP server: Palyra's tools over the Model Context Protocol (official ``mcp`` SDK).

* ``tools/list`` and ``tools/call`` are :mod:`palyra.mcp.tools` (what is exposed, what a call
  returns); list changes are announced by :mod:`palyra.mcp.live`.
* ``tools/call`` runs on a worker thread, so a call waiting for an operator's approval never
  blocks the server. While it waits, a caller that sent a ``progressToken`` gets a progress
  notification every :data:`PROGRESS_EVERY_S` (seconds waited of the timeout, and the
  approval id with the command that decides it).
* Transports: :func:`serve_stdio` (``palyra mcp serve``) and :func:`http_mount`, which the
  daemon's composition root hands to its app to serve MCP streamable HTTP at ``/mcp``
  behind the daemon's bearer-token guard.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp import types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.message import SessionMessage
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from palyra import __version__
from palyra.daemon.service import Service
from palyra.mcp.live import ToolListWatch
from palyra.mcp.tools import ToolTable, approval_timeout_s, call_tool

log = logging.getLogger("palyra.mcp")

HTTP_PATH = "/mcp"
PROGRESS_EVERY_S = 1.0
DRAIN_S = 30.0
_NOT_DRAINED = frozenset({"subscriptions/listen"})  # answered only when the stream ends


class _Server(Server[Any]):
    """Advertises ``tools.listChanged`` on every transport: the streamable-HTTP manager asks
    the server for its initialization options rather than taking them from us."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True),
            experimental_capabilities,
            extensions,
        )


async def _report_approval_wait(
    ctx: ServerRequestContext[Any],
    waiting: anyio.Event,
    approval: dict[str, Any],
    timeout_s: float,
) -> None:
    """Progress while a call waits for an operator (a no-op without a progressToken)."""
    await waiting.wait()
    approval_id = approval.get("approval_id", "?")
    message = (
        f"waiting for an operator to approve {approval.get('tool_id', 'the tool')} "
        f"(palyra approvals approve {approval_id}, or the console)"
    )
    started = anyio.current_time()
    while True:
        waited = min(anyio.current_time() - started, timeout_s)
        await ctx.session.report_progress(round(waited, 3), total=timeout_s, message=message)
        await anyio.sleep(PROGRESS_EVERY_S)


def build_server(service: Service, watch: ToolListWatch | None = None) -> Server[Any]:
    """The low-level MCP server over ``service`` (which the caller opens and closes)."""
    timeout_s = approval_timeout_s(service)
    watch = watch or ToolListWatch(service)
    tools = ToolTable(service)

    async def on_list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        table = await anyio.to_thread.run_sync(tools.current)
        return types.ListToolsResult(tools=[entry.described for entry in table.values()])

    async def on_call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        waiting = anyio.Event()
        approval: dict[str, Any] = {}

        def on_pending(pending: dict[str, Any]) -> None:  # on the worker thread
            approval.update(pending)
            with contextlib.suppress(Exception):  # the request may be gone already
                anyio.from_thread.run_sync(waiting.set)

        async with anyio.create_task_group() as tg:
            tg.start_soon(_report_approval_wait, ctx, waiting, approval, timeout_s)
            # abandon_on_cancel: a cancelled request must not wait for the approval it holds.
            result = await anyio.to_thread.run_sync(
                call_tool,
                tools,
                params.name,
                params.arguments,
                timeout_s,
                on_pending,
                abandon_on_cancel=True,
            )
            tg.cancel_scope.cancel()
        return result

    server = _Server(
        "palyra",
        version=__version__,
        instructions="Palyra skills: signed, audited, sandboxed WebAssembly tools. "
        "Tools that need an operator's approval wait for `palyra approvals approve`.",
        lifespan=watch.running,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
        on_subscriptions_listen=watch.listen,
    )
    server.add_notification_handler(
        "notifications/initialized", types.NotificationParams, watch.on_initialized
    )
    return server


async def serve(service: Service) -> None:
    """Serve ``service`` over this process's stdin/stdout until stdin reaches EOF.

    Requests already read when stdin ends are answered first (for up to :data:`DRAIN_S`):
    the SDK ends the session at EOF and would drop them, so ``printf '…' | palyra mcp
    serve`` would get no answer to its last request. Listen streams are not waited for."""
    server = build_server(service)
    in_flight: set[types.RequestId] = set()
    to_server_send, to_server = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    from_server, from_server_receive = anyio.create_memory_object_stream[SessionMessage](0)

    async with stdio_server() as (stdin_messages, stdout_messages):

        async def forward_in() -> None:
            async with to_server_send:
                async for item in stdin_messages:
                    if isinstance(item, SessionMessage):
                        message = item.message
                        if isinstance(message, types.JSONRPCRequest) and (
                            message.method not in _NOT_DRAINED
                        ):
                            in_flight.add(message.id)
                    await to_server_send.send(item)
                with anyio.move_on_after(DRAIN_S):
                    while in_flight:
                        await anyio.sleep(0.02)

        async def forward_out() -> None:
            async with stdout_messages:  # closing it ends the transport's stdout writer
                async for item in from_server_receive:
                    if isinstance(item.message, types.JSONRPCResponse | types.JSONRPCError):
                        in_flight.discard(item.message.id)
                    await stdout_messages.send(item)

        async with anyio.create_task_group() as tg:
            tg.start_soon(forward_in)
            tg.start_soon(forward_out)
            async with from_server:
                await server.run(to_server, from_server, server.create_initialization_options())


def serve_stdio(state_root: Path) -> None:
    """Open the state root's service and serve MCP over stdio until EOF (logs go to stderr)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="palyra-mcp %(levelname)s %(message)s")
    service = Service.open(state_root)
    try:
        anyio.run(serve, service)
    finally:
        service.close()


class _HttpEndpoint:
    """The plain-ASGI endpoint at :data:`HTTP_PATH` (a class instance, so Starlette routes
    every method to it as ASGI rather than as a request/response function)."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.manager.handle_request(scope, receive, send)


def http_mount(app: Starlette, service: Service) -> contextlib.AbstractAsyncContextManager[None]:
    """Serve ``service``'s MCP server over streamable HTTP at :data:`HTTP_PATH` of ``app``
    (kept out of the OpenAPI document); the returned context must be entered for the app's
    lifetime (the daemon's lifespan does) — it runs the sessions and the list watch."""
    manager = StreamableHTTPSessionManager(build_server(service))
    app.router.routes.append(Route(HTTP_PATH, _HttpEndpoint(manager), include_in_schema=False))
    return manager.run()
