"""Run every benchmark and write ``docs/performance.md`` from their ``--json`` results.

Why a generated report: absolute times on a shared 2-CPU machine move by tens of percent from
one minute to the next, so a hand-copied number is stale (or wrong) at once. This script runs
each benchmark as its own process (as a reader would), repeats the short ones so every figure
comes with a median and a min–max over runs, puts each ratio next to the same-run baseline it
was measured against (the figure that does hold across machines), and records the machine and
how busy it was, so the reader can judge the numbers.

Run (full, what ``docs/performance.md`` must come from; several minutes)::

    .venv/bin/python benchmarks/report.py

Smoke run (fewer repeats and rounds, ``load.py --calls 2000``; marked as such in its header)::

    .venv/bin/python benchmarks/report.py --quick --output /tmp/performance.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from results import Figure, Results, load, meets

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PYTHON = ".venv/bin/python"  # how the report spells the commands (run from the repository)


@dataclass(frozen=True)
class Plan:
    """One benchmark: how to run it fully and quickly, and how often."""

    name: str
    title: str
    about: str
    full_args: tuple[str, ...]
    quick_args: tuple[str, ...]
    full_runs: int
    quick_runs: int = 1
    timeout_s: float = 20 * 60
    section_args: bool = False  # runtime.py: sections are numbered and ``--only N`` runs one


PLANS = (
    Plan(
        "verify",
        "Artifact verification",
        "Verifying a signed artifact with a near-limit (16 MiB) module — inspect, signature, "
        "integrity and trust — against `hashlib.sha256` over the same bytes, interleaved.",
        (),
        ("--rounds", "5"),
        full_runs=3,
    ),
    Plan(
        "runtime",
        "Runtime",
        "The sandbox against raw wasmtime-py and Extism's Python host (section 1), and its own "
        "cold/warm, threading, timeout, fuel and component figures, each against a baseline "
        "measured in the same run.",
        (),
        ("--quick", "--skip-cold-compile"),
        full_runs=3,
        section_args=True,
    ),
    Plan(
        "http",
        "HTTP API throughput",
        "A tool call (`POST /api/v1/skills/acme.daemon_demo/tools/echo/run`) through a real "
        "daemon process against the authenticated no-op `GET /api/v1/ping`, for 1, 8 and 32 "
        "closed-loop clients in alternating slices; then the same call on one daemon with "
        "SQLite, one with PostgreSQL and two sharing it (docs/deployment.md). The load "
        "generator and the database share the CPUs.",
        (),
        ("--seconds", "1"),
        full_runs=3,
    ),
    Plan(
        "load",
        "Sustained load",
        "20,000 tool calls from 32 concurrent keep-alive clients against a real daemon process, "
        "alternating with the no-op baseline from the same clients: errors, latency tail and "
        "the daemon's RSS after warm-up and at the end (limit: +10 %). One run; its latency "
        "figures are distributions over every call.",
        (),
        ("--calls", "2000"),
        full_runs=1,
    ),
)


@dataclass
class Outcome:
    """Every run of one benchmark."""

    plan: Plan
    args: tuple[str, ...]
    runs: list[Results] = field(default_factory=list)
    exit_codes: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    loadavg_before: list[str] = field(default_factory=list)


def read_loadavg() -> str:
    """The 1/5/15-minute load averages: the only cheap sign of other work on the machine."""
    return " ".join(Path("/proc/loadavg").read_text("ascii").split()[:3])


def run_once(plan: Plan, args: tuple[str, ...], json_path: Path) -> tuple[int, float]:
    """One benchmark process, its output passed through live; killed after the plan's timeout."""
    command = [sys.executable, str(HERE / f"{plan.name}.py"), *args, "--json", str(json_path)]
    print(f"\n=== {' '.join(command[1:])}", flush=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    watchdog = threading.Timer(plan.timeout_s, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
        code = proc.wait()
    finally:
        watchdog.cancel()
    return code, time.perf_counter() - start


def run_plan(plan: Plan, quick: bool, tmp: Path) -> Outcome:
    args = plan.quick_args if quick else plan.full_args
    outcome = Outcome(plan, args)
    for index in range(plan.quick_runs if quick else plan.full_runs):
        json_path = tmp / f"{plan.name}-{index}.json"
        outcome.loadavg_before.append(read_loadavg())
        code, seconds = run_once(plan, args, json_path)
        outcome.exit_codes.append(code)
        outcome.seconds.append(seconds)
        if json_path.exists():
            outcome.runs.append(load(json_path))
    return outcome


# ---- machine ------------------------------------------------------------------------------------


def proc_field(path: str, name: str) -> str:
    """The value of a ``name: value`` line of a /proc file, or ``unknown``."""
    try:
        for line in Path(path).read_text("ascii", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == name:
                return value.strip()
    except OSError:
        pass
    return "unknown"


def version_of(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine(loadavg_start: str, loadavg_end: str, outcomes: list[Outcome]) -> list[str]:
    """The machine section: what the numbers were measured on, and how busy it was."""
    mem_kib = proc_field("/proc/meminfo", "MemTotal").split()[0]
    ram = f"{int(mem_kib) / 2**20:.1f} GiB" if mem_kib.isdigit() else "unknown"
    dirty = len([line for line in git("status", "--porcelain").splitlines() if line.strip()])
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    tree = f"{commit}" + (f" plus {dirty} uncommitted changed paths" if dirty else "")
    cpus = os.cpu_count() or 1
    rows = [
        ("CPU", proc_field("/proc/cpuinfo", "model name")),
        ("Logical CPUs", str(cpus)),
        ("RAM", ram),
        ("Kernel", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("wasmtime-py", version_of("wasmtime")),
        ("Extism Python host", version_of("extism")),
        ("httpx / uvicorn", f"{version_of('httpx')} / {version_of('uvicorn')}"),
        ("Source", tree),
        ("Date (UTC)", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")),
        ("Load average (1/5/15 min) at start", loadavg_start),
        ("Load average at end", loadavg_end),
    ]
    lines = ["## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in rows]
    busiest = max(
        (float(avg.split()[0]) for o in outcomes for avg in o.loadavg_before),
        default=0.0,
    )
    lines.append("")
    if busiest > cpus * 0.5:
        lines.append(
            f"The machine was shared: the 1-minute load average before a benchmark run reached"
            f" {busiest:.2f} on {cpus} CPUs (other work, not these benchmarks, which run one at a"
            " time). Absolute times are inflated and noisy accordingly; the same-run ratios are"
            " the figures to compare."
        )
    else:
        lines.append(
            f"The 1-minute load average before any benchmark run stayed at or below"
            f" {busiest:.2f} on {cpus} CPUs."
        )
    return lines


# ---- tables -------------------------------------------------------------------------------------


def number(value: float, unit: str) -> str:
    """Enough digits to compare, never scientific notation."""
    if math.isnan(value):  # the benchmark had nothing to measure
        return "n/a"
    if unit == "" and float(value).is_integer():
        return f"{int(value):,}"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


@dataclass
class Row:
    """One figure over every run of a benchmark."""

    first: Figure
    values: list[float]

    def median(self) -> float:
        return statistics.median(self.values)

    def spread(self) -> str:
        unit = self.first.unit
        if len(self.values) > 1:
            return f"{number(min(self.values), unit)} – {number(max(self.values), unit)}"
        if self.first.low is not None and self.first.high is not None:
            low, high = number(self.first.low, unit), number(self.first.high, unit)
            return f"{low} – {high} ¹"
        return "—"


def rows_by_section(runs: Iterable[Results]) -> dict[str, list[Row]]:
    """Figures grouped by section in first-seen order, each with its value from every run."""
    rows: dict[str, Row] = {}
    for results in runs:
        for figure in results.figures:
            if figure.key in rows:
                rows[figure.key].values.append(figure.value)
            else:
                rows[figure.key] = Row(figure, [figure.value])
    sections: dict[str, list[Row]] = {}
    for row in rows.values():
        sections.setdefault(row.first.section, []).append(row)
    return sections


def command_for(outcome: Outcome, section: str) -> str:
    args = list(outcome.args)
    number_part = section.split(".", 1)[0]
    if outcome.plan.section_args and number_part.isdigit():
        args += ["--only", number_part]
    return " ".join([PYTHON, f"benchmarks/{outcome.plan.name}.py", *args])


def benchmark_section(outcome: Outcome) -> list[str]:
    plan = outcome.plan
    runs = len(outcome.runs)
    failed = [code for code in outcome.exit_codes if code != 0]
    lines = [f"## {plan.title} (`benchmarks/{plan.name}.py`)", "", plan.about, ""]
    seconds = ", ".join(f"{s:.0f}" for s in outcome.seconds)
    spread_note = (
        f"median and min – max over {runs} runs"
        if runs > 1
        else "one run; min – max marked ¹ is the spread of the per-round samples within it"
    )
    lines.append(
        f"Runs: {runs} ({spread_note}); wall time per run: {seconds} s;"
        f" exit status: {', '.join(map(str, outcome.exit_codes)) or 'none'}."
    )
    if failed:
        lines.append("")
        lines.append(f"**{len(failed)} run(s) exited non-zero** — see the benchmark's output.")
    if not outcome.runs:
        lines += ["", "No results (the benchmark did not write its JSON)."]
        return lines
    for section, rows in rows_by_section(outcome.runs).items():
        lines += [
            "",
            f"### {section}",
            "",
            f"Reproduce: `{command_for(outcome, section)}`",
            "",
            "| Figure | Median | Min – max | Unit | Same-run baseline (target) |",
            "|---|---:|---:|---|---|",
        ]
        for row in rows:
            figure = row.first
            unit = "×" if figure.kind == "ratio" else figure.unit
            against = figure.baseline or ""
            if figure.target:
                against += f" (target {figure.target})" if against else f"target {figure.target}"
            label = f"**{figure.label}**" if figure.kind == "ratio" else figure.label
            lines.append(
                f"| {label} | {number(row.median(), figure.unit)} | {row.spread()} | {unit}"
                f" | {against} |"
            )
    notes = sorted({note for results in outcome.runs for note in results.notes})
    if notes:
        lines.append("")
        lines += [f"Note: {note}." for note in notes]
    return lines


def targets_section(outcomes: list[Outcome]) -> list[str]:
    """Every figure that has a target, in one table: the reader's first question."""
    lines = [
        "## Targets at a glance",
        "",
        "| Benchmark | Figure | Median | Min – max | Target | Median meets it |",
        "|---|---|---:|---:|---|---|",
    ]
    for outcome in outcomes:
        for section, rows in rows_by_section(outcome.runs).items():
            for row in rows:
                target = row.first.target
                if not target:
                    continue
                median = row.median()
                unit = "×" if row.first.kind == "ratio" else row.first.unit
                goal = f"{target} {unit}".strip()
                lines.append(
                    f"| {outcome.plan.name} | {section}: {row.first.label} |"
                    f" {number(median, row.first.unit)} | {row.spread()} | {goal} |"
                    f" {'yes' if meets(median, target) else 'no'} |"
                )
    return lines


def render(outcomes: list[Outcome], quick: bool, total_s: float, loadavg: tuple[str, str]) -> str:
    how = f"{PYTHON} benchmarks/report.py" + (" --quick" if quick else "")
    header = [
        "# Performance",
        "",
        "<!-- Generated by benchmarks/report.py; do not edit by hand. -->",
        "",
        f"This file is generated: `{how}` ran every benchmark in `benchmarks/` as its own"
        f" process ({total_s / 60:.1f} min in all) and wrote it. To refresh it, run"
        f" `{PYTHON} benchmarks/report.py` (a full run) and commit the result; each table"
        " below names the command that reproduces its figures alone.",
        "",
        "Absolute times depend on the machine and on what else it was doing; every benchmark"
        " therefore measures its baseline in the same run, interleaved with the figure it is"
        " compared to, and the ratios are what to compare across runs and machines.",
    ]
    if quick:
        header += [
            "",
            "**Smoke run (`--quick`): fewer repeats and rounds, 2,000 load calls. Not for"
            " committing — regenerate with a full run.**",
        ]
    lines = [*header, "", *machine(loadavg[0], loadavg[1], outcomes), ""]
    lines += [*targets_section(outcomes), ""]
    for outcome in outcomes:
        lines += [*benchmark_section(outcome), ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer repeats/rounds")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated benchmarks to run (default: all: "
        + ",".join(p.name for p in PLANS)
        + ")",
    )
    parser.add_argument(
        "--output", type=Path, default=REPO / "docs" / "performance.md", help="where to write"
    )
    args = parser.parse_args()
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = wanted - {p.name for p in PLANS}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    plans = [p for p in PLANS if not wanted or p.name in wanted]
    loadavg_start = read_loadavg()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="palyra-bench-report-") as tmp:
        outcomes = [run_plan(plan, args.quick, Path(tmp)) for plan in plans]
    total = time.perf_counter() - start
    text = render(outcomes, args.quick, total, (loadavg_start, read_loadavg()))
    args.output.write_text(text, "utf-8")
    print(f"\nwrote {args.output} ({total / 60:.1f} min)")
    failed = [o.plan.name for o in outcomes if any(o.exit_codes) or not o.runs]
    if failed:
        print(f"benchmarks that failed or wrote no results: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
