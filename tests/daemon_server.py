"""A real daemon on a loopback port for tests and benchmarks: ``with running_daemon(root) as d``.

The daemon serves uvicorn in a background thread (uvicorn skips its signal handlers off the
main thread); the context manager waits for ``on_ready`` (the socket is bound, ``d.url`` is
set and the "daemon runs here" marker is written), yields the :class:`Daemon`, and on exit
asks the server to stop and joins the thread, so the database is closed when it returns.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from palyra.daemon.auth import running_daemon as marker_of
from palyra.daemon.server import Daemon
from palyra.mcp.server import http_mount

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


class DaemonStartError(RuntimeError):
    """The daemon thread died or did not report ready in time."""


@contextmanager
def running_daemon(state_root: Path, *, host: str = "127.0.0.1") -> Iterator[Daemon]:
    """Start ``Daemon(state_root, port=0)`` with MCP mounted, as ``palyra daemon run`` does,
    in a thread and yield it once it serves."""
    daemon = Daemon(state_root, host=host, port=0, mounts=(http_mount,))
    ready = threading.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            daemon.run(on_ready=lambda _daemon: ready.set())
        except BaseException as exc:  # reported to the test thread, not lost in this one
            failure.append(exc)
        finally:
            ready.set()  # wake the waiter if the server ends before it was ever ready

    thread = threading.Thread(target=serve, name="palyra-test-daemon", daemon=True)
    thread.start()
    try:
        if not ready.wait(READY_TIMEOUT_S):
            raise DaemonStartError(
                f"the daemon on {state_root} did not report ready within {READY_TIMEOUT_S:g} s"
            )
        if failure:
            raise DaemonStartError(f"the daemon failed to start: {failure[0]!r}") from failure[0]
        if not thread.is_alive() or not daemon.url:
            raise DaemonStartError("the daemon stopped before it served a request")
        yield daemon
    finally:
        _stop(daemon, thread)


def _stop(daemon: Daemon, thread: threading.Thread) -> None:
    # ``stop`` needs the uvicorn server that ``run`` creates, so it is repeated until the
    # thread ends (it may not have got that far on the start-failure path).
    for _ in range(int(STOP_TIMEOUT_S / 0.05)):
        daemon.stop()
        thread.join(0.05)
        if not thread.is_alive():
            return
    raise DaemonStartError(f"the daemon thread did not stop within {STOP_TIMEOUT_S:g} s")


# The daemon's own process: what ``palyra daemon run`` starts, with port 0.
CHILD = """
import sys
from pathlib import Path
from palyra.daemon.server import Daemon
from palyra.mcp.server import http_mount
Daemon(Path(sys.argv[1]), host="127.0.0.1", port=0, mounts=(http_mount,)).run()
"""


@contextmanager
def daemon_process(
    state_root: Path, *, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Start the daemon in a child process (``env``: extra environment, such as
    ``PALYRA_DATABASE_URL``) and yield it with its URL once it listens; SIGTERM on exit."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed below, after the child is gone)
    state_root.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(state_root)],
        cwd=state_root.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
        env={**os.environ, **(env or {})},
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        marker = marker_of(state_root)
        while marker is None or int(marker["pid"]) != proc.pid:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                detail = log.read().decode(errors="replace").strip()[-2000:]
                raise DaemonStartError(f"the daemon did not start: {detail or 'no output'}")
            time.sleep(0.05)
            marker = marker_of(state_root)
        yield proc, str(marker["url"])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
