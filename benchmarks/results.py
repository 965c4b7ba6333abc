"""Machine-readable benchmark results: what ``--json PATH`` writes and ``report.py`` reads.

Every benchmark prints for a human; the report needs the same numbers without parsing that
text, so each script records its figures here as it prints them and writes one JSON file at
the end. Keeping the schema in one small module means the writers and the reader cannot drift.

Schema (version 1)::

    {"schema": 1, "benchmark": "verify", "argv": [...], "figures": [
        {"key": "incompressible.verify", "section": "...", "label": "...", "value": 12.3,
         "unit": "ms", "kind": "figure", "low": 11.9, "high": 13.0},
        {"key": "incompressible.ratio", "section": "...", "label": "...", "value": 1.4,
         "unit": "x", "kind": "ratio", "baseline": "hashlib.sha256 over the same bytes",
         "target": "<= 2.0"}], "notes": ["..."]}

``low``/``high`` are the spread *within* one run (per-round samples) where the script has it;
the report prefers the spread *across* runs when it repeats a benchmark.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

SCHEMA = 1


@dataclass
class Figure:
    """One number as the script printed it (already in ``unit``, not in SI base units)."""

    key: str
    section: str
    label: str
    value: float
    unit: str
    kind: Literal["figure", "ratio"] = "figure"
    low: float | None = None
    high: float | None = None
    baseline: str | None = None
    target: str | None = None


@dataclass
class Results:
    """Collects the figures of one benchmark run; ``write`` is a no-op without a path."""

    benchmark: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def figure(
        self,
        key: str,
        section: str,
        label: str,
        value: float,
        unit: str,
        *,
        low: float | None = None,
        high: float | None = None,
        target: str | None = None,
    ) -> None:
        """``target``: ``"<op> <bound>"`` with op one of ``<= >= < > ==`` (e.g. ``"== 0"``)."""
        self.figures.append(
            Figure(key, section, label, value, unit, low=low, high=high, target=target)
        )

    def ratio(
        self,
        key: str,
        section: str,
        label: str,
        value: float,
        *,
        baseline: str,
        target: str | None = None,
    ) -> None:
        """A ratio against a baseline measured in the same run (the only cross-run-stable
        kind of figure on a shared machine)."""
        self.figures.append(
            Figure(key, section, label, value, "x", kind="ratio", baseline=baseline, target=target)
        )

    def note(self, text: str) -> None:
        self.notes.append(text)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "benchmark": self.benchmark,
            "argv": sys.argv[1:],
            "figures": [asdict(f) for f in self.figures],
            "notes": self.notes,
        }

    def write(self, path: Path | None) -> None:
        if path is None:
            return
        path.write_text(json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n", "utf-8")


def load(path: Path) -> Results:
    """Read what ``Results.write`` wrote (the report's side)."""
    data = json.loads(path.read_text("utf-8"))
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: unknown results schema {data.get('schema')!r}")
    results = Results(str(data["benchmark"]), notes=[str(n) for n in data.get("notes", [])])
    for item in data["figures"]:
        results.figures.append(Figure(**item))
    return results


def meets(value: float, target: str) -> bool:
    """Whether ``value`` meets a ``"<op> <bound>"`` target."""
    op, _, bound = target.partition(" ")
    limit = float(bound)
    checks = {
        "<=": value <= limit,
        ">=": value >= limit,
        "<": value < limit,
        ">": value > limit,
        "==": value == limit,
    }
    return checks[op]


def spread(samples: list[float], scale: float = 1.0) -> tuple[float, float]:
    """(min, max) of ``samples`` times ``scale``: the within-run spread ``figure`` takes."""
    return min(samples) * scale, max(samples) * scale
