"""Where Palyra keeps its state (design.md §4)."""

from __future__ import annotations

import os
from pathlib import Path

STATE_ROOT_ENV = "PALYRA_STATE_ROOT"
TRUST_STORE_ENV = "PALYRA_SKILLS_TRUST_STORE"


def resolve_state_root(explicit: Path | None = None) -> Path:
    """``--state-root`` > ``$PALYRA_STATE_ROOT`` > ``$XDG_STATE_HOME/palyra`` > ~/.local/state."""
    if explicit is not None:
        return explicit
    env = os.environ.get(STATE_ROOT_ENV, "").strip()
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME", "").strip()
    if xdg:
        return Path(xdg) / "palyra"
    return Path.home() / ".local" / "state" / "palyra"


def resolve_trust_store(state_root: Path, explicit: Path | None = None) -> Path:
    """``--trust-store`` > ``$PALYRA_SKILLS_TRUST_STORE`` > ``<state>/skills/trust-store.json``."""
    if explicit is not None:
        return explicit
    env = os.environ.get(TRUST_STORE_ENV, "").strip()
    if env:
        return Path(env)
    return state_root / "skills" / "trust-store.json"
