"""A real PostgreSQL server for tests and benchmarks: ``with postgres_server(tmp) as pg``.

Debian's ``postgresql`` package (installed by ``.ci/run``) provides the binaries; this starts
a throwaway cluster in a temporary directory, listening only on a Unix socket in that
directory (no TCP port to collide with), trusting local connections. PostgreSQL refuses to
run as root, so under root the cluster belongs to the package's ``postgres`` user.

Each test gets its own database (:meth:`PgServer.fresh_database`), created from the empty
``template0`` so nothing leaks between tests.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 60


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries on this machine (``apt-get install postgresql``)."""


def pg_bindir() -> Path:
    """The newest installed server's bin directory (Debian: /usr/lib/postgresql/<n>/bin)."""
    root = Path("/usr/lib/postgresql")
    candidates = sorted(
        (p / "bin" for p in root.glob("*") if (p / "bin" / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1]
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise PostgresUnavailable("PostgreSQL is not installed (apt-get install postgresql)")


@dataclass
class PgServer:
    socket_dir: Path
    port: int
    owner: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.owner}@/{database}?host={self.socket_dir}&port={self.port}"

    def admin(self, sql: str) -> None:
        """One statement on the maintenance database (autocommit: CREATE DATABASE needs it)."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.encode())

    def fresh_database(self) -> str:
        """A new empty database; returns its URL."""
        name = "t_" + uuid.uuid4().hex[:16]
        self.admin(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.url(name)


def _runner(owner: str) -> list[str]:
    return [] if owner == pwd.getpwuid(os.geteuid()).pw_name else ["runuser", "-u", owner, "--"]


@contextlib.contextmanager
def postgres_server(*, durable: bool = False) -> Iterator[PgServer]:
    """Initialise and start a cluster in a new temporary directory; on exit, stop it (fast)
    and delete the directory. Tests skip fsync (``durable=False``); benchmarks keep the
    server's defaults, so a commit costs what it costs in production."""
    bindir = pg_bindir()
    owner = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    # Directly under the system temporary directory, which every user can traverse.
    workdir = Path(tempfile.mkdtemp(prefix="palyra-pg-"))
    data, sock = workdir / "data", workdir / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        entry = pwd.getpwnam(owner)
        for path in (workdir, sock):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    run = _runner(owner)
    subprocess.run(
        [*run, str(bindir / "initdb"), "-D", str(data), "-U", owner, "-A", "trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
        timeout=START_TIMEOUT_S,
    )
    port = 5432  # only names the socket file: the server listens on no TCP port
    options = f"-c listen_addresses='' -k {sock} -p {port} -c max_connections=200"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    log = workdir / "server.log"
    pg_ctl = [*run, str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [*pg_ctl, "-l", str(log), "-o", options, "-w", "-t", "60", "start"],
        check=True,
        capture_output=True,
        timeout=START_TIMEOUT_S + 10,
        stdin=subprocess.DEVNULL,
    )
    try:
        yield PgServer(sock, port, owner)
    finally:
        subprocess.run(
            [*pg_ctl, "-m", "immediate", "stop"],
            capture_output=True,
            timeout=START_TIMEOUT_S,
            check=False,
        )
        shutil.rmtree(workdir, ignore_errors=True)
