"""Every input the fuzzers ever crashed a parser with (``tests/fuzz_regressions/<target>/``),
and every target's seeds, replayed through the same checks atheris runs (``fuzz/targets.py``):
each must end accepted or refused with the parser's typed error."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "fuzz"))

from targets import TARGETS  # noqa: E402

REGRESSIONS = Path(__file__).resolve().parent / "fuzz_regressions"


def _cases() -> list[tuple[str, str, bytes]]:
    cases: list[tuple[str, str, bytes]] = []
    for target, (_check, seeds) in TARGETS.items():
        cases += [(target, f"seed-{i}", seed) for i, seed in enumerate(seeds())]
        folder = REGRESSIONS / target
        if folder.is_dir():
            cases += [(target, p.name, p.read_bytes()) for p in sorted(folder.iterdir())]
    return cases


@pytest.mark.parametrize(
    ("target", "name", "data"), [pytest.param(*c, id=f"{c[0]}-{c[1]}") for c in _cases()]
)
def test_replays_cleanly(target: str, name: str, data: bytes) -> None:
    check, _seeds = TARGETS[target]
    check(data)


def test_every_target_has_seeds() -> None:
    assert set(TARGETS) == {"manifest", "artifact", "wasm", "api"}
    assert all(seeds() for _check, seeds in TARGETS.values())
