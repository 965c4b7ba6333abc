"""HTTP API throughput: a tool call through the daemon vs the authenticated no-op.

A real daemon (its own process, a temporary state root, port 0) gets the fast fixture skill
installed over the API; then closed-loop clients — each with its own keep-alive connection —
call, for 1, 8 and 32 concurrent clients,

  (a) ``POST /api/v1/skills/acme.daemon_demo/tools/echo/run`` (``{"input": {"text": 48 B}}``:
      auth, admission, input-schema check, a fresh sandbox, the receipt in the journal), and
  (b) ``GET /api/v1/ping`` (auth and routing only, the baseline),

interleaved in alternating slices so both see the same machine. Printed per route: calls/s,
p50 and p99 latency of the 2xx answers, every non-2xx answer by status and error kind
(``overloaded`` included), and the CPU each side spent per call; then echo/ping calls/s at
each concurrency. Target: echo/ping >= 0.5 at 8 clients (printed, not asserted).

The load generator is one asyncio loop with ``httpx.AsyncClient``s in this process; the
daemon runs in a child process. Both share this machine's CPUs, so on a 2-core box the ping
baseline is partly bounded by the generator: the CPU-per-call columns say how much.

Then, unless ``--no-shared``, shared state (docs/deployment.md): the same echo call on one
daemon with SQLite, one daemon with PostgreSQL (a throwaway local server with fsync on) and
two daemons sharing that database — one client (the per-call cost of PostgreSQL) and 8
clients (calls/s; the two-daemon/one-daemon ratio). On 2 shared cores a ratio near 1 is
expected: the daemons, the database and the load generator compete for the same CPUs.

Run: ``.venv/bin/python benchmarks/http.py [--seconds N] [--json PATH] [--no-shared]`` (N per
measurement, default 3; ``--json``: the same figures, machine-readable, for
``benchmarks/report.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file shares its name with the standard library's ``http`` package and ``python
# benchmarks/http.py`` puts this directory first on sys.path: take it off before anything
# (httpx, uvicorn) imports ``http``. The fixture skill comes from the test helpers.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]
sys.path.append(str(Path(__file__).resolve().parent.parent / "tests"))
# Appended, not first: ``results`` is found here while ``http`` stays the standard library's.
sys.path.append(str(Path(__file__).resolve().parent))

import argparse
import asyncio
import collections
import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

import daemon_fixtures as df
from daemon_server import daemon_process
from palyra.daemon.auth import TOKEN_FILE, load_or_create_token
from pg_server import PostgresUnavailable, postgres_server
from results import Results

API = "/api/v1"
CONCURRENCY = (1, 8, 32)
SLICES = 3  # each measurement is split into this many slices, alternating echo and ping
TARGET_CLIENTS = 8
TARGET_RATIO = 0.5
ECHO_INPUT = {"text": "x" * 48}
ECHO_PATH = f"{API}/skills/{df.SKILL_ID}/tools/echo/run"

Request = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]

RESULTS = Results("http")  # what ``--json`` writes


@dataclass
class Tally:
    """What one route saw at one concurrency, summed over its slices."""

    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    answers: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    @property
    def calls(self) -> int:
        return sum(self.answers.values()) + self.ok

    def percentile(self, fraction: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) from ``/proc``; 0 where absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return 0.0
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_clients(url: str, token: str, count: int) -> list[httpx.AsyncClient]:
    """One client per simulated caller, each with exactly one keep-alive connection."""
    return [
        httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {token}"},
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=60.0,
            trust_env=False,
        )
        for _ in range(count)
    ]


def echo(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
    return client.post(ECHO_PATH, json={"input": ECHO_INPUT})


def ping(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
    return client.get(f"{API}/ping")


def describe(response: httpx.Response) -> str:
    """``"429 overloaded"`` for an error envelope, else the status and a hint."""
    try:
        kind = response.json()["error"]["kind"]
    except (ValueError, KeyError, TypeError):
        kind = response.text[:40] or "(empty body)"
    return f"{response.status_code} {kind}"


async def run_slice(
    clients: list[httpx.AsyncClient], request: Request, seconds: float, tally: Tally, pid: int
) -> None:
    """Every client calls back to back until the slice ends."""
    deadline = time.perf_counter() + seconds

    async def caller(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                response = await request(client)
            except httpx.HTTPError as exc:
                tally.answers[f"transport error: {type(exc).__name__}"] += 1
                continue
            if response.is_success:
                tally.latencies.append(time.perf_counter() - start)
            else:
                tally.answers[describe(response)] += 1

    server_before, client_before = process_cpu_seconds(pid), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(caller(client) for client in clients))
    tally.elapsed += time.perf_counter() - started
    tally.server_cpu += process_cpu_seconds(pid) - server_before
    tally.client_cpu += time.process_time() - client_before


async def measure(
    url: str, token: str, clients_count: int, seconds: float, pid: int
) -> dict[str, Tally]:
    clients = make_clients(url, token, clients_count)
    tallies = {"echo": Tally(), "ping": Tally()}
    routes: dict[str, Request] = {"echo": echo, "ping": ping}
    try:
        # Warm-up: every connection opened, the module compiled and its instance cached.
        for request in (ping, echo):
            for response in await asyncio.gather(*(request(c) for c in clients)):
                response.raise_for_status()
        for index in range(SLICES):
            order = ("echo", "ping") if index % 2 == 0 else ("ping", "echo")
            for name in order:
                await run_slice(clients, routes[name], seconds / SLICES, tallies[name], pid)
    finally:
        for client in clients:
            await client.aclose()
    return tallies


def report(clients_count: int, tallies: dict[str, Tally]) -> float:
    print(f"\n{clients_count} concurrent client{'s' if clients_count > 1 else ''}")
    for name, tally in tallies.items():
        calls = max(tally.calls, 1)
        print(
            f"  {name:4}  {tally.rate:8.1f} calls/s   p50 {tally.percentile(0.5) * 1e3:7.2f} ms"
            f"   p99 {tally.percentile(0.99) * 1e3:7.2f} ms   ({tally.ok} ok)"
            f"   CPU/call: daemon {tally.server_cpu / calls * 1e6:6.0f} µs,"
            f" load generator {tally.client_cpu / calls * 1e6:6.0f} µs"
        )
        for answer, count in sorted(tally.answers.items()):
            print(f"        not 2xx: {count} x {answer}")
    ratio = tallies["echo"].rate / tallies["ping"].rate if tallies["ping"].rate else 0.0
    print(f"  ratio echo/ping calls/s: {ratio:.2f}")
    record(clients_count, tallies, ratio)
    return ratio


def record(clients_count: int, tallies: dict[str, Tally], ratio: float) -> None:
    """The figures ``report`` printed, for ``--json``."""
    section = f"{clients_count} concurrent client{'s' if clients_count > 1 else ''}"
    for name, tally in tallies.items():
        calls = max(tally.calls, 1)
        key = f"c{clients_count}.{name}"
        RESULTS.figure(f"{key}.rate", section, f"{name} throughput", tally.rate, "calls/s")
        for q in (50, 99):
            value = tally.percentile(q / 100) * 1e3
            RESULTS.figure(f"{key}.p{q}", section, f"{name} p{q} latency", value, "ms")
        RESULTS.figure(
            f"{key}.not_2xx", section, f"{name} answers other than 2xx", tally.calls - tally.ok, ""
        )
        for side, cpu in (("daemon", tally.server_cpu), ("load generator", tally.client_cpu)):
            RESULTS.figure(
                f"{key}.cpu_{side.split()[0]}",
                section,
                f"{name} CPU per call, {side}",
                cpu / calls * 1e6,
                "µs",
            )
    RESULTS.ratio(
        f"c{clients_count}.ratio",
        section,
        "echo / ping calls/s",
        ratio,
        baseline="GET /api/v1/ping (authenticated no-op), same clients, alternating slices",
        target=f">= {TARGET_RATIO}" if clients_count == TARGET_CLIENTS else None,
    )
    ping_p50 = tallies["ping"].percentile(0.5)
    if ping_p50 > 0:
        RESULTS.ratio(
            f"c{clients_count}.p50_ratio",
            section,
            "echo / ping p50 latency",
            tallies["echo"].percentile(0.5) / ping_p50,
            baseline="GET /api/v1/ping p50, same clients, alternating slices",
        )


def install_fixture(url: str, token: str) -> None:
    """The fast fixture skill, installed over the API."""
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, trust_env=False
    ) as client:
        client.post(
            f"{API}/skills/install",
            params={"allow_tofu": "true"},
            content=df.artifact(),
            headers={"Content-Type": "application/octet-stream"},
        ).raise_for_status()


def check_echo(url: str, token: str) -> None:
    """One call, checked: the benchmark measures a tool that really runs."""
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, trust_env=False
    ) as client:
        body = client.post(ECHO_PATH, json={"input": ECHO_INPUT}).raise_for_status().json()
    if body.get("output") != ECHO_INPUT:
        raise RuntimeError(f"echo did not echo: {body}")


# ---- shared state: SQLite vs PostgreSQL, one daemon vs two ----------------------------------

SHARED_CLIENTS = 8


def shared_token(*roots: Path) -> str:
    """One token in every state root, as behind a load balancer (docs/deployment.md)."""
    token = load_or_create_token(roots[0])
    for root in roots[1:]:
        (root / "daemon").mkdir(parents=True, exist_ok=True, mode=0o700)
        path = root / "daemon" / TOKEN_FILE
        path.write_text(token + "\n", encoding="ascii")
        path.chmod(0o600)
    return token


async def measure_setups(
    setups: dict[str, list[str]], token: str, seconds: float, pid: int, count: int
) -> dict[str, Tally]:
    """Echo calls for each setup (its clients spread evenly over its daemons), in
    alternating slices so every setup sees the same machine."""
    clients = {
        name: [c for url in urls for c in make_clients(url, token, max(1, count // len(urls)))]
        for name, urls in setups.items()
    }
    tallies = {name: Tally() for name in setups}
    try:
        for group in clients.values():
            for response in await asyncio.gather(*(echo(c) for c in group)):
                response.raise_for_status()
        names = list(setups)
        for index in range(SLICES):
            for name in names[index % len(names) :] + names[: index % len(names)]:
                await run_slice(clients[name], echo, seconds / SLICES, tallies[name], pid)
    finally:
        for group in clients.values():
            for client in group:
                await client.aclose()
    return tallies


def shared_state(seconds: float) -> None:
    """Echo calls: one daemon on SQLite vs one on PostgreSQL (one client: the per-call
    overhead), then also two daemons sharing PostgreSQL (8 clients: throughput)."""
    print("\nshared state: echo calls, SQLite vs PostgreSQL (fsync on), one daemon vs two")
    with contextlib.ExitStack() as stack:
        try:
            pg = stack.enter_context(postgres_server(durable=True))
        except (PostgresUnavailable, OSError, subprocess.SubprocessError) as exc:
            print(f"  skipped: PostgreSQL unavailable ({exc})")
            RESULTS.note(f"shared state skipped: PostgreSQL unavailable ({exc})")
            return
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="palyra-bench-pg-")))
        roots = [tmp / name for name in ("sqlite", "pg-a", "pg-b")]
        token = shared_token(*roots)
        env = {"PALYRA_DATABASE_URL": pg.fresh_database()}
        lite, lite_url = stack.enter_context(daemon_process(roots[0]))
        _a, url_a = stack.enter_context(daemon_process(roots[1], env=env))
        _b, url_b = stack.enter_context(daemon_process(roots[2], env=env))
        for url in (lite_url, url_a):  # A's install is B's too
            install_fixture(url, token)
        for url in (lite_url, url_a, url_b):
            check_echo(url, token)
        single = {"sqlite, one daemon": [lite_url], "postgresql, one daemon": [url_a]}
        alone = asyncio.run(measure_setups(single, token, seconds, lite.pid, 1))
        setups = {**single, "postgresql, two daemons": [url_a, url_b]}
        tallies = asyncio.run(measure_setups(setups, token, seconds, lite.pid, SHARED_CLIENTS))
    section = "shared state"
    lite_1, pg_1 = alone["sqlite, one daemon"], alone["postgresql, one daemon"]
    overhead_1 = (pg_1.percentile(0.5) - lite_1.percentile(0.5)) * 1e3
    print(
        f"  one client: p50 sqlite {lite_1.percentile(0.5) * 1e3:.2f} ms,"
        f" postgresql {pg_1.percentile(0.5) * 1e3:.2f} ms"
        f" — PostgreSQL costs {overhead_1:+.2f} ms per call"
    )
    RESULTS.figure(
        "shared.pg_overhead_p50_1client",
        section,
        "PostgreSQL per-call overhead, one client (p50)",
        overhead_1,
        "ms",
    )
    print(f"  {SHARED_CLIENTS} clients:")
    for name, tally in tallies.items():
        print(
            f"  {name:24} {tally.rate:8.1f} calls/s   p50 {tally.percentile(0.5) * 1e3:7.2f} ms"
            f"   p99 {tally.percentile(0.99) * 1e3:7.2f} ms   ({tally.ok} ok,"
            f" {tally.calls - tally.ok} not 2xx)"
        )
        key = "shared." + name.replace(", ", ".").replace(" ", "_")
        RESULTS.figure(f"{key}.rate", section, f"{name}: echo throughput", tally.rate, "calls/s")
        RESULTS.figure(
            f"{key}.p50", section, f"{name}: echo p50", tally.percentile(0.5) * 1e3, "ms"
        )
    lite_t = tallies["sqlite, one daemon"]
    one, two = tallies["postgresql, one daemon"], tallies["postgresql, two daemons"]
    pg_vs_lite = one.rate / lite_t.rate if lite_t.rate else 0.0
    two_vs_one = two.rate / one.rate if one.rate else 0.0
    overhead_ms = (one.percentile(0.5) - lite_t.percentile(0.5)) * 1e3
    print(f"  ratio postgresql/sqlite calls/s (one daemon): {pg_vs_lite:.2f}")
    print(f"  postgresql p50 latency difference under load: {overhead_ms:+.2f} ms")
    print(
        f"  ratio two daemons/one daemon calls/s (postgresql): {two_vs_one:.2f}"
        " (on 2 shared CPUs near 1 is expected: the daemons compete for the same cores)"
    )
    RESULTS.ratio(
        "shared.pg_over_sqlite",
        section,
        "PostgreSQL / SQLite echo calls/s, one daemon",
        pg_vs_lite,
        baseline="sqlite, one daemon",
    )
    RESULTS.ratio(
        "shared.two_over_one",
        section,
        "two daemons / one daemon echo calls/s on PostgreSQL",
        two_vs_one,
        baseline="postgresql, one daemon",
    )
    RESULTS.figure(
        "shared.pg_overhead_p50",
        section,
        f"PostgreSQL p50 latency difference, {SHARED_CLIENTS} clients",
        overhead_ms,
        "ms",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="seconds per route and concurrency"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here (report.py)")
    parser.add_argument(
        "--no-shared", action="store_true", help="skip the SQLite/PostgreSQL section"
    )
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    print(
        f"machine: {cpus} CPUs shared by the daemon (child process) and the load generator"
        f" (this process, one asyncio loop); Python {sys.version.split()[0]}"
    )
    print(f"{args.seconds:g} s per route and concurrency, in {SLICES} alternating slices")
    ratios: dict[int, float] = {}
    total: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory(prefix="palyra-bench-http-") as tmp:
        state_root = Path(tmp) / "state"
        token = load_or_create_token(state_root)
        with daemon_process(state_root) as (proc, url):
            install_fixture(url, token)
            check_echo(url, token)
            print(f"daemon: pid {proc.pid} at {url}; runner defaults (4 workers + 64 queued)")
            for count in CONCURRENCY:
                tallies = asyncio.run(measure(url, token, count, args.seconds, proc.pid))
                ratios[count] = report(count, tallies)
                for tally in tallies.values():
                    total.update(tally.answers)
    print("\nsummary: echo/ping calls/s " + ", ".join(f"{c}: {r:.2f}" for c, r in ratios.items()))
    if total:
        print(f"answers other than 2xx (all routes): {sum(total.values())} — {dict(total)}")
    else:
        print("answers other than 2xx (all routes): none")
    met = ratios[TARGET_CLIENTS] >= TARGET_RATIO
    print(
        f"target echo/ping >= {TARGET_RATIO} at {TARGET_CLIENTS} clients:"
        f" {ratios[TARGET_CLIENTS]:.2f} — {'met' if met else 'NOT met'}"
        + ("" if cpus > 2 else f" (on {cpus} shared CPUs)")
    )
    if not args.no_shared:
        shared_state(args.seconds)
    RESULTS.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
