"""``palyrad``: the service, its HTTP API, the hooks and the periodic re-audit in one process."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import uvicorn

from palyra.daemon.api import Mount, create_app
from palyra.daemon.auth import clear_marker, load_or_create_token, running_daemon, write_marker
from palyra.daemon.errors import ConfigError
from palyra.daemon.service import Service

# Long-lived responses (MCP sessions' GET streams, event streams) would otherwise hold a
# stopping daemon open; after this long they are cancelled and the lifespan (the MCP session
# manager) shuts down.
GRACEFUL_SHUTDOWN_S = 5


class Daemon:
    def __init__(
        self,
        state_root: Path,
        *,
        host: str | None = None,
        port: int | None = None,
        mounts: Sequence[Mount] = (),
    ) -> None:
        """``mounts``: extra faces on the app (``palyra daemon run`` passes MCP's)."""
        existing = running_daemon(state_root)
        if existing is not None:
            raise ConfigError(
                f"a daemon (pid {existing['pid']}) already serves {state_root} at {existing['url']}"
            )
        self.state_root = state_root
        self.service = Service.open(state_root)
        config = self.service.ctx.config.api
        self.host = host or config.host
        self.port = config.port if port is None else port
        self.token = load_or_create_token(state_root)
        self.app = create_app(self.service, self.token, mounts=mounts)
        self._stop = threading.Event()
        self._server: uvicorn.Server | None = None
        self.url = ""

    def _reaudit_loop(self) -> None:
        interval = self.service.ctx.config.reaudit_interval_s
        if interval <= 0:
            return
        while not self._stop.wait(interval):
            with contextlib.suppress(Exception):  # a failing pass is retried next interval
                self.service.reaudit()

    def run(self, on_ready: Callable[[Daemon], None] | None = None) -> None:
        """Serve until SIGINT/SIGTERM (uvicorn installs the handlers)."""
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",  # runs the mounts (the MCP session manager, see create_app)
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            server_header=False,
        )
        server = uvicorn.Server(config)
        self._server = server
        threading.Thread(target=self._reaudit_loop, name="palyra-reaudit", daemon=True).start()

        def announce() -> None:
            while not server.started and not self._stop.is_set():
                self._stop.wait(0.02)
            if not server.started:
                return
            port = server.servers[0].sockets[0].getsockname()[1] if server.servers else self.port
            self.url = f"http://{_url_host(self.host)}:{port}"
            write_marker(self.state_root, self.url)
            self.service.ctx.fire("gateway:startup", {"url": self.url})
            if on_ready is not None:
                on_ready(self)

        threading.Thread(target=announce, name="palyra-announce", daemon=True).start()
        try:
            with _stop_quietly():
                server.run()
        finally:
            self._stop.set()
            clear_marker(self.state_root)
            self.service.close()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True

    def info(self) -> dict[str, Any]:
        return {"url": self.url, "state_root": str(self.state_root)}


class _Stopped(Exception):
    """SIGINT/SIGTERM, re-raised by uvicorn after its graceful shutdown."""


@contextlib.contextmanager
def _stop_quietly() -> Iterator[None]:
    """Let a stop signal end ``run`` normally. uvicorn handles SIGINT/SIGTERM while serving,
    then restores the previous handlers and raises the signal again; with the default
    handlers SIGTERM would kill the process there — before the marker is cleared and the
    service closed — and SIGINT would print a KeyboardInterrupt traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread (tests run the daemon in a thread)
        return

    def stopped(_signum: int, _frame: object) -> None:
        raise _Stopped

    previous = {sig: signal.signal(sig, stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except _Stopped:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):  # noqa: S104 (shown as a URL, not bound here)
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
