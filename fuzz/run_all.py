"""Every fuzz target, one after another: the bounded run in ``make test`` and the long one in
``make fuzz``.

    .venv/bin/python fuzz/run_all.py [--seconds N] [--a2ui-runs N]

Each Python target (``fuzz/targets.py``) runs under atheris for ``--seconds`` in its own
process (libFuzzer exits the process when done); the console's A2UI normaliser and patch
engine run their fast-check properties (``console/tests/a2ui.fuzz.test.ts``) ``--a2ui-runs``
times each. Prints one line per target and exits 1 if any found a crash (the input is in
``build/fuzz/crashes/``).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PYTHON_TARGETS = ("manifest", "artifact", "wasm", "api")
STAT = re.compile(r"^stat::(number_of_executed_units|new_units_added):\s+(\d+)", re.M)


def run_python(target: str, seconds: int) -> bool:
    started = time.monotonic()
    process = subprocess.run(
        [sys.executable, str(HERE / "run.py"), target, "--seconds", str(seconds)],
        capture_output=True,
        text=True,
        check=False,
    )
    stats = dict(STAT.findall(process.stderr))
    took = time.monotonic() - started
    ok = process.returncode == 0
    print(
        f"{target:10} {'ok' if ok else 'CRASH':6} {took:6.1f} s  "
        f"{stats.get('number_of_executed_units', '?'):>9} inputs  "
        f"{stats.get('new_units_added', '?'):>5} new coverage units",
        flush=True,
    )
    if not ok:
        print(process.stderr[-4000:], file=sys.stderr)
    return ok


def run_a2ui(runs: int) -> bool:
    started = time.monotonic()
    env = {**os.environ, "A2UI_FUZZ_RUNS": str(runs)}
    process = subprocess.run(
        ["npx", "vitest", "run", "tests/a2ui.fuzz.test.ts"],
        cwd=REPO / "console",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    ok = process.returncode == 0
    took = time.monotonic() - started
    print(f"{'a2ui':10} {'ok' if ok else 'CRASH':6} {took:6.1f} s  {runs:>9} runs per property")
    if not ok:
        print(process.stdout[-4000:], file=sys.stderr)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=12, help="per Python target")
    parser.add_argument("--a2ui-runs", type=int, default=2000, help="per A2UI property")
    args = parser.parse_args()
    results = [run_python(target, args.seconds) for target in PYTHON_TARGETS]
    results.append(run_a2ui(args.a2ui_runs))
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
