"""Telling MCP clients that the tool list changed (``listChanged``).

Why polling the store: ``palyra mcp serve`` is its own process beside the daemon (and several
daemons may share one database), so no in-process event reaches every server; the store is the
one place every install, enable, disable, quarantine and remove lands, whoever made it. The
watch reads a fingerprint of what is exposed (:func:`palyra.mcp.tools.fingerprint`, one small
read) every :data:`POLL_S` and, when it differs, tells:

* 2026-07-28 clients, through their ``subscriptions/listen`` streams (the SDK's
  :class:`ListenHandler` over an in-memory bus);
* handshake-era clients (2025-11-25 and before), with ``notifications/tools/list_changed``
  on their connection's standalone channel (the pipe on stdio, the GET SSE stream over HTTP).
  They are remembered from their ``notifications/initialized`` until their connection closes
  (at most :data:`MAX_LEGACY_CONNECTIONS`, oldest forgotten first).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.to_thread
from mcp import types
from mcp.server.context import ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from palyra.daemon.service import Service
from palyra.mcp.tools import fingerprint

log = logging.getLogger("palyra.mcp")

POLL_S = 0.5
MAX_LEGACY_CONNECTIONS = 1024
SEND_TIMEOUT_S = 2.0  # a client that stopped reading must not stall the others


class ToolListWatch:
    """One per MCP server: serves ``subscriptions/listen`` and announces list changes."""

    def __init__(self, service: Service, poll_s: float = POLL_S) -> None:
        self.service = service
        self.poll_s = poll_s
        self.bus = InMemorySubscriptionBus()
        self.listen = ListenHandler(self.bus)
        self.announced = 0
        # connection → a session on it (its standalone channel is what notifications use)
        self._legacy: dict[object, ServerSession] = {}

    async def on_initialized(
        self, ctx: ServerRequestContext[Any], _params: types.NotificationParams
    ) -> None:
        """Remember a handshake-era connection (2026-07-28 clients listen instead)."""
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return
        session = ctx.session
        # The lowlevel context exposes the session, not its Connection; the connection's
        # exit stack is how we learn that it closed (mcp is pinned to 2.3.0).
        connection: Any = getattr(session, "_connection", session)
        if len(self._legacy) >= MAX_LEGACY_CONNECTIONS:
            self._legacy.pop(next(iter(self._legacy)))
        self._legacy[connection] = session
        exit_stack = getattr(connection, "exit_stack", None)
        if exit_stack is not None:
            exit_stack.callback(self._legacy.pop, connection, None)

    async def announce(self) -> None:
        self.announced += 1
        await self.bus.publish(ToolsListChanged())
        for session in list(self._legacy.values()):
            with anyio.move_on_after(SEND_TIMEOUT_S):
                try:
                    await session.send_tool_list_changed()
                except Exception:  # a broken connection is that client's problem only
                    log.debug("tools/list_changed not delivered", exc_info=True)

    async def run(self) -> None:
        """Poll until cancelled, announcing each change of the exposed set."""
        last = await anyio.to_thread.run_sync(fingerprint, self.service)
        while True:
            await anyio.sleep(self.poll_s)
            try:
                now = await anyio.to_thread.run_sync(fingerprint, self.service)
            except Exception:  # a busy or broken store: try again next round
                log.warning("cannot read the tool list's state", exc_info=True)
                continue
            if now != last:
                last = now
                await self.announce()

    @contextlib.asynccontextmanager
    async def running(self, _server: object) -> AsyncIterator[dict[str, Any]]:
        """The MCP server's lifespan: the watch runs while the server does."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.run)
            yield {}
            tg.cancel_scope.cancel()
