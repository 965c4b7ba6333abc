"""Sustained load: N tool calls over HTTP from C concurrent clients against a real daemon.

``http.py`` measures short slices for throughput; this one asks what a long run does to the
daemon: does any call fail, how wide is the latency tail, and does the daemon's memory grow
with the number of calls served (a leak shows up only after thousands of calls, not in a
3-second slice).

A daemon child process (loopback, port 0, a throwaway state root) gets the fixture skill
installed over the API. After a warm-up, ``--calls`` calls of
``POST /api/v1/skills/acme.daemon_demo/tools/echo/run`` run from ``--clients`` closed-loop
clients (each with one keep-alive connection), in slices alternating with the same-run
baseline: ``GET /api/v1/ping`` (authentication and routing only) from the same number of
clients. Every echo answer is checked: a non-200, a transport error or a 200 whose output is
not the input counts as an error, and the first few are printed.

Daemon memory is VmRSS from ``/proc/<pid>/status`` after the warm-up and at the end (and
after every slice, to tell a steady leak from a one-off step). Exit status 1 when any call
failed, RSS grew by 10 % or more, or the hard time limit cut the run short.

The load generator is one asyncio loop in this process by default; ``--processes P`` splits
the clients over P worker processes instead. The printed load-generator CPU share says
whether the generator, rather than the daemon, was the limit.

Run: ``.venv/bin/python benchmarks/load.py [--calls N] [--clients C] [--processes P]
[--json PATH]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# ``python benchmarks/load.py`` puts this directory first on sys.path, where ``http.py``
# would shadow the standard library's ``http`` (which httpx imports): take it off, and append
# it (for ``results``) and the tests directory (for the fixture skill) at the end instead.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]
sys.path.append(str(Path(__file__).resolve().parent))
sys.path.append(str(Path(__file__).resolve().parent.parent / "tests"))

import argparse
import asyncio
import collections
import importlib.util
import multiprocessing
import os
import tempfile
import time
from dataclasses import dataclass, field
from types import ModuleType

import httpx

from daemon_server import daemon_process
from palyra.daemon.auth import load_or_create_token
from results import Results

HERE = Path(__file__).resolve().parent


def _load_http_bench() -> ModuleType:
    """``benchmarks/http.py``, for its daemon start-up and request helpers.

    It cannot be imported by name (``http`` is the standard library's), so it is loaded from
    its path under another name; sharing the helpers keeps both benchmarks measuring the same
    daemon set up the same way.
    """
    spec = importlib.util.spec_from_file_location("palyra_bench_http", HERE / "http.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {HERE / 'http.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


HB = _load_http_bench()

DEFAULT_CALLS = 20_000
DEFAULT_CLIENTS = 32
TIME_LIMIT_S = 15 * 60.0  # the whole run, daemon start to stop
REQUEST_TIMEOUT_S = 30.0
SLICES = 4  # echo and ping alternate in this many slices each
RSS_GROWTH_LIMIT = 0.10
SHOWN_ERRORS = 5

ECHO_BODY = {"input": HB.ECHO_INPUT}
ROUTES = ("echo", "ping")


@dataclass
class SliceResult:
    """What one generator process saw for one route in one slice (picklable for the pool)."""

    latencies: list[float] = field(default_factory=list)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    first_errors: list[str] = field(default_factory=list)
    not_sent: int = 0
    started: float = 0.0  # time.monotonic(): one clock for every process on Linux
    ended: float = 0.0
    cpu: float = 0.0  # this process's CPU seconds during the slice


@dataclass
class Tally:
    """One route summed over its slices (and over generator processes)."""

    latencies: list[float] = field(default_factory=list)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    first_errors: list[str] = field(default_factory=list)
    not_sent: int = 0
    elapsed: float = 0.0
    generator_cpu: float = 0.0
    daemon_cpu: float = 0.0

    def add(self, parts: list[SliceResult], daemon_cpu: float) -> None:
        for part in parts:
            self.latencies += part.latencies
            self.errors.update(part.errors)
            self.first_errors += part.first_errors[: SHOWN_ERRORS - len(self.first_errors)]
            self.not_sent += part.not_sent
            self.generator_cpu += part.cpu
        self.elapsed += max(p.ended for p in parts) - min(p.started for p in parts)
        self.daemon_cpu += daemon_cpu

    @property
    def calls(self) -> int:
        return len(self.latencies) + sum(self.errors.values())

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, fraction: float) -> float:
        """Nearest-rank percentile of the successful calls' latencies, in seconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def read_status_kib(pid: int, name: str) -> int:
    """A ``kB`` line of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text("ascii").splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {name} in /proc/{pid}/status")


def check(route: str, response: httpx.Response) -> str | None:
    """Why an answer counts as an error, or None: any non-200, or an echo that did not echo."""
    if response.status_code != 200:
        return f"{HB.describe(response)}: {response.text[:300]}"
    if route == "echo":
        try:
            output = response.json().get("output")
        except ValueError:
            output = None
        if output != HB.ECHO_INPUT:
            return f"200 with the wrong output: {response.text[:300]}"
    return None


async def drive(
    url: str, token: str, route: str, clients: int, calls: int, budget_s: float
) -> SliceResult:
    """``calls`` calls from ``clients`` closed-loop clients; stops issuing after ``budget_s``."""
    result = SliceResult()
    remaining = calls
    pool = [
        httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {token}"},
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=REQUEST_TIMEOUT_S,
            trust_env=False,
        )
        for _ in range(clients)
    ]

    async def caller(client: httpx.AsyncClient) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            why: str | None
            try:
                if route == "echo":
                    response = await client.post(HB.ECHO_PATH, json=ECHO_BODY)
                else:
                    response = await client.get(f"{HB.API}/ping")
                why = check(route, response)
            except httpx.HTTPError as exc:
                why = f"transport error: {type(exc).__name__}: {exc}"
            if why is None:
                result.latencies.append(time.perf_counter() - start)
            else:
                result.errors[why.split(":", 1)[0]] += 1
                if len(result.first_errors) < SHOWN_ERRORS:
                    result.first_errors.append(why)

    cpu_before = time.process_time()
    result.started = time.monotonic()
    try:
        async with asyncio.timeout(budget_s):
            await asyncio.gather(*(caller(client) for client in pool))
    except TimeoutError:
        result.not_sent = max(remaining, 0)
    finally:
        result.ended = time.monotonic()
        result.cpu = time.process_time() - cpu_before
        for client in pool:
            await client.aclose()
    return result


def drive_sync(
    url: str, token: str, route: str, clients: int, calls: int, budget_s: float
) -> SliceResult:
    """``drive`` for a pool worker (a fresh event loop per slice)."""
    return asyncio.run(drive(url, token, route, clients, calls, budget_s))


class Generator:
    """The load generator: this process's event loop, or a pool of worker processes."""

    def __init__(self, url: str, token: str, clients: int, processes: int) -> None:
        self.url, self.token, self.clients, self.processes = url, token, clients, processes
        # spawn, not fork: workers start clean instead of inheriting this process's state.
        self.pool = multiprocessing.get_context("spawn").Pool(processes) if processes > 1 else None

    def run(self, route: str, calls: int, budget_s: float) -> list[SliceResult]:
        if self.pool is None:
            return [drive_sync(self.url, self.token, route, self.clients, calls, budget_s)]
        shares = [
            (
                self.url,
                self.token,
                route,
                self.clients // self.processes + (i < self.clients % self.processes),
                calls // self.processes + (i < calls % self.processes),
                budget_s,
            )
            for i in range(self.processes)
        ]
        pending = self.pool.starmap_async(drive_sync, shares)
        # The workers stop themselves at the budget; this bounds a wedged worker too.
        parts: list[SliceResult] = pending.get(timeout=budget_s + REQUEST_TIMEOUT_S + 10)
        return parts

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool.join()


def ms(seconds: float) -> float:
    return seconds * 1e3


def print_route(name: str, tally: Tally) -> None:
    calls = max(tally.calls, 1)
    print(
        f"  {name:4}  {tally.calls:6d} calls, {tally.error_count} errors,"
        f" {tally.rate:7.1f} calls/s   p50 {ms(tally.percentile(0.5)):7.2f}"
        f"  p90 {ms(tally.percentile(0.9)):7.2f}  p99 {ms(tally.percentile(0.99)):7.2f}"
        f"  max {ms(max(tally.latencies, default=float('nan'))):7.2f} ms"
    )
    print(
        f"        CPU/call: daemon {tally.daemon_cpu / calls * 1e6:5.0f} µs, load generator"
        f" {tally.generator_cpu / calls * 1e6:5.0f} µs; load generator busy"
        f" {tally.generator_cpu / tally.elapsed * 100 if tally.elapsed else 0:4.0f} % of one"
        f" core, daemon {tally.daemon_cpu / tally.elapsed * 100 if tally.elapsed else 0:4.0f} %"
    )
    for answer, count in sorted(tally.errors.items()):
        print(f"        error: {count} x {answer}")
    if tally.not_sent:
        print(f"        not sent (time limit): {tally.not_sent}")
    for body in tally.first_errors:
        print(f"        first errors: {body}")


def record(results: Results, tallies: dict[str, Tally], clients: int) -> None:
    """The printed figures, for ``--json``."""
    names = {"echo": "tool call (echo)", "ping": "no-op (GET /ping)"}
    for route, tally in tallies.items():
        section = f"{names[route]}, {clients} clients"
        results.figure(f"{route}.calls", section, "calls", tally.calls, "")
        results.figure(f"{route}.errors", section, "errors", tally.error_count, "", target="== 0")
        results.figure(f"{route}.rate", section, "throughput", tally.rate, "calls/s")
        for label, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            value = ms(tally.percentile(fraction))
            results.figure(f"{route}.{label}", section, f"{label} latency", value, "ms")
        worst = ms(max(tally.latencies, default=float("nan")))
        results.figure(f"{route}.max", section, "max latency", worst, "ms")
        calls = max(tally.calls, 1)
        for side, cpu in (("daemon", tally.daemon_cpu), ("generator", tally.generator_cpu)):
            what = "daemon" if side == "daemon" else "load generator"
            per_call = cpu / calls * 1e6
            results.figure(f"{route}.cpu_{side}", section, f"CPU per call, {what}", per_call, "µs")
            busy = cpu / tally.elapsed * 100 if tally.elapsed else 0.0
            results.figure(f"{route}.busy_{side}", section, f"{what} CPU busy", busy, "% core")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=DEFAULT_CALLS, help="tool calls to send")
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS, help="concurrent clients")
    parser.add_argument(
        "--baseline-calls",
        type=int,
        help="no-op calls for the same-run baseline (default: a quarter of --calls)",
    )
    parser.add_argument(
        "--warmup", type=int, help="echo calls before the start RSS (default: 5 %% of --calls)"
    )
    parser.add_argument(
        "--processes", type=int, default=1, help="load-generator processes (default 1)"
    )
    parser.add_argument("--time-limit", type=float, default=TIME_LIMIT_S, help="seconds, overall")
    parser.add_argument("--json", type=Path, help="also write the figures here (report.py)")
    args = parser.parse_args()
    if args.calls < SLICES or args.clients < 1 or args.processes < 1:
        parser.error("need --calls >= 4, --clients >= 1, --processes >= 1")
    baseline_calls = args.baseline_calls or max(SLICES, args.calls // 4)
    warmup = args.warmup if args.warmup is not None else max(args.clients, args.calls // 20)
    deadline = time.monotonic() + args.time_limit
    results = Results("load")
    cpus = os.cpu_count() or 1
    print(
        f"machine: {cpus} CPUs shared by the daemon (child process) and the load generator"
        f" ({args.processes} process{'es' if args.processes > 1 else ''}, asyncio + httpx);"
        f" Python {sys.version.split()[0]}"
    )
    print(
        f"{args.calls} echo calls and {baseline_calls} ping calls from {args.clients} clients,"
        f" in {SLICES} alternating slices each; warm-up {warmup} echo calls;"
        f" per-request timeout {REQUEST_TIMEOUT_S:g} s, time limit {args.time_limit:g} s"
    )
    tallies = {route: Tally() for route in ROUTES}
    rss_trend: list[int] = []
    timed_out = False
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="palyra-bench-load-") as tmp:
        state_root = Path(tmp) / "state"
        token = load_or_create_token(state_root)
        with daemon_process(state_root) as (proc, url):
            pid = int(proc.pid)
            HB.install_fixture(url, token)
            HB.check_echo(url, token)
            print(f"daemon: pid {pid} at {url}")
            generator = Generator(url, token, args.clients, args.processes)
            try:
                warm = Tally()
                for route, count in (("ping", args.clients), ("echo", warmup)):
                    warm.add(generator.run(route, count, deadline - time.monotonic()), 0.0)
                if warm.error_count or warm.not_sent:
                    print(f"warm-up failed: {dict(warm.errors)} {warm.first_errors}")
                    return 1
                rss_start = read_status_kib(pid, "VmRSS")
                print(f"daemon RSS after warm-up: {rss_start / 1024:.1f} MiB")
                for index in range(SLICES):
                    order = ROUTES if index % 2 == 0 else ROUTES[::-1]
                    for route in order:
                        total = args.calls if route == "echo" else baseline_calls
                        count = total // SLICES + (index < total % SLICES)
                        budget = deadline - time.monotonic()
                        cpu_before = HB.process_cpu_seconds(pid)
                        parts = generator.run(route, count, budget)
                        tallies[route].add(parts, HB.process_cpu_seconds(pid) - cpu_before)
                        if any(part.not_sent for part in parts):
                            timed_out = True
                    rss_trend.append(read_status_kib(pid, "VmRSS"))
                    if timed_out:
                        break
                rss_end = read_status_kib(pid, "VmRSS")
                rss_peak = read_status_kib(pid, "VmHWM")
            finally:
                generator.close()
    wall = time.perf_counter() - started
    print(f"\n{args.clients} concurrent clients ({wall:.0f} s in all)")
    for route, tally in tallies.items():
        print_route(route, tally)
    echo, ping = tallies["echo"], tallies["ping"]
    ratios: dict[str, float] = {}
    for label, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        ratios[label] = echo.percentile(fraction) / ping.percentile(fraction)
    ratios["calls/s"] = echo.rate / ping.rate if ping.rate else float("nan")
    print(
        "  ratio echo/ping: latency "
        + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items() if k != "calls/s")
        + f"; calls/s {ratios['calls/s']:.2f}"
    )
    growth = (rss_end - rss_start) / rss_start
    print(
        f"\ndaemon RSS: {rss_start / 1024:.1f} MiB after warm-up -> {rss_end / 1024:.1f} MiB"
        f" at the end ({growth * 100:+.1f} %, limit +{RSS_GROWTH_LIMIT * 100:.0f} %);"
        f" peak {rss_peak / 1024:.1f} MiB"
    )
    print("  after each slice: " + ", ".join(f"{kib / 1024:.1f}" for kib in rss_trend) + " MiB")

    record(results, tallies, args.clients)
    section = f"tool call / no-op, {args.clients} clients"
    baseline = "GET /api/v1/ping (authenticated no-op), same clients, alternating slices"
    for key, value in ratios.items():
        what = "throughput" if key == "calls/s" else f"{key} latency"
        name = "rate" if key == "calls/s" else key
        results.ratio(f"ratio.{name}", section, f"echo / ping {what}", value, baseline=baseline)
    section = "daemon memory (VmRSS)"
    results.figure("rss.start", section, "RSS after warm-up", rss_start / 1024, "MiB")
    results.figure("rss.end", section, "RSS at the end", rss_end / 1024, "MiB")
    results.figure("rss.peak", section, "peak RSS (VmHWM)", rss_peak / 1024, "MiB")
    limit = f"< {RSS_GROWTH_LIMIT * 100:g}"
    results.figure("rss.growth", section, "RSS growth", growth * 100, "%", target=limit)
    trend = ", ".join(f"{kib / 1024:.1f}" for kib in rss_trend)
    results.note(f"daemon RSS after each of the {SLICES} echo+ping slices: {trend} MiB")
    results.note(
        f"{args.calls} echo + {baseline_calls} ping calls, {args.clients} clients,"
        f" {args.processes} generator process(es); RSS growth limit"
        f" {RSS_GROWTH_LIMIT * 100:.0f} %"
    )
    results.write(args.json)

    errors = echo.error_count + ping.error_count
    failures = []
    if errors:
        failures.append(f"{errors} calls failed")
    if growth >= RSS_GROWTH_LIMIT:
        failures.append(f"RSS grew {growth * 100:.1f} %")
    if timed_out:
        failures.append(f"the {args.time_limit:g} s time limit cut the run short")
    print("\nverdict: " + ("; ".join(failures) if failures else "no errors, RSS within limit"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
