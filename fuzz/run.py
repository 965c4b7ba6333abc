"""Run one fuzz target under atheris (libFuzzer for Python), coverage-guided over palyra.

    .venv/bin/python fuzz/run.py TARGET [--seconds N]

The corpus lives in ``build/fuzz/corpus/TARGET`` (seeded from the target's seeds, kept
between runs); ``tests/fuzz_regressions/TARGET`` (every crash found so far, committed) is read
as a second corpus. A crash is written to ``build/fuzz/crashes/TARGET-crash-…`` and the exit
status is non-zero; copy the file into ``tests/fuzz_regressions/TARGET/`` once fixed, so the
regression test replays it forever.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BUILD = REPO / "build" / "fuzz"
REGRESSIONS = REPO / "tests" / "fuzz_regressions"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--max-len", type=int, default=65536)
    args = parser.parse_args()

    import atheris

    with atheris.instrument_imports(include=["palyra"]):
        import palyra.daemon.api
        import palyra.daemon.service
        import palyra.skills.inspect
        import palyra.skills.manifest
        import palyra.skills.wasm_binary  # noqa: F401

    sys.path.insert(0, str(HERE))
    from targets import TARGETS

    if args.target not in TARGETS:
        parser.error(f"unknown target {args.target!r} (one of {', '.join(TARGETS)})")
    check, seeds = TARGETS[args.target]
    corpus = BUILD / "corpus" / args.target
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in seeds():
        (corpus / f"seed-{hashlib.sha256(seed).hexdigest()[:16]}").write_bytes(seed)
    crashes = BUILD / "crashes"
    crashes.mkdir(parents=True, exist_ok=True)
    regressions = REGRESSIONS / args.target
    libfuzzer = [
        sys.argv[0],
        str(corpus),
        *([str(regressions)] if regressions.is_dir() else []),
        f"-max_total_time={args.seconds}",
        f"-max_len={args.max_len}",
        f"-artifact_prefix={crashes}/{args.target}-",
        "-timeout=20",
        "-rss_limit_mb=4096",
        "-print_final_stats=1",
    ]
    atheris.Setup(libfuzzer, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
