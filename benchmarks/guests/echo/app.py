"""The benchmark's Python echo skill (benchmarks/runtime.py, section 6): one SDK tool that
returns its input unchanged, so its output equals the core-module echo's."""

from __future__ import annotations

from palyra_sdk import tool


@tool
def echo(text: str) -> dict[str, str]:
    """Return the text unchanged."""
    return {"text": text}
