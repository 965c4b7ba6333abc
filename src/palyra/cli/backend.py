"""Which service a command talks to: a daemon over HTTP, or the state root in-process.

``--url``/``$PALYRA_URL`` name a daemon (token from ``$PALYRA_TOKEN`` or the state root);
otherwise a daemon that registered itself for this state root is used; otherwise the
command opens the state root through the very same service layer the daemon runs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import typer

from palyra.cli.output import CliState
from palyra.daemon.auth import read_token, running_daemon
from palyra.daemon.client import DaemonClient
from palyra.daemon.service import Service
from palyra.errors import UsageError

URL_ENV = "PALYRA_URL"
TOKEN_ENV = "PALYRA_TOKEN"  # noqa: S105 (the variable's name)

Backend = Service | DaemonClient


def _remote(state: CliState) -> DaemonClient | None:
    url = state.url or os.environ.get(URL_ENV, "").strip()
    token = os.environ.get(TOKEN_ENV, "").strip() or read_token(state.state_root)
    if not url:
        found = running_daemon(state.state_root)
        if found is None:
            return None
        url = found["url"]
    if not token:
        raise UsageError(f"no API token for {url}: set ${TOKEN_ENV} (see `palyra daemon token`)")
    return DaemonClient(url, token)


@contextlib.contextmanager
def backend(ctx: typer.Context) -> Iterator[Backend]:
    state: CliState = ctx.obj
    chosen: Backend = _remote(state) or Service.open(state.state_root)
    try:
        yield chosen
    finally:
        chosen.close()
