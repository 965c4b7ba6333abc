"""The journal's hash chain: each event commits to its content and to the event before it.

Changing, removing or reordering any event breaks every later hash, so ``palyra journal
verify`` detects tampering with the database file even though SQLite itself cannot stop it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from palyra.store.base import JournalEvent

GENESIS_HASH = "0" * 64


def canonical_payload(payload: dict[str, Any]) -> str:
    """The exact text stored and hashed: sorted keys, no whitespace, UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(prev_hash: str, seq: int, at_ms: int, kind: str, actor: str, payload: str) -> str:
    material = json.dumps(
        [prev_hash, seq, at_ms, kind, actor, payload], separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int
    last_seq: int
    last_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
        }


def verify_chain(events: Iterable[JournalEvent]) -> ChainReport:
    """Recompute every link; report the first event that does not match."""
    prev, count, last_seq = GENESIS_HASH, 0, 0
    for event in events:
        count += 1
        if event.seq <= last_seq:
            return ChainReport(False, count, last_seq, prev, event.seq, "sequence goes backwards")
        if event.prev_hash != prev:
            return ChainReport(
                False, count, last_seq, prev, event.seq, "previous-hash link is broken"
            )
        expected = event_hash(
            prev, event.seq, event.at_ms, event.kind, event.actor, canonical_payload(event.payload)
        )
        if event.hash != expected:
            return ChainReport(
                False, count, last_seq, prev, event.seq, "event content does not match its hash"
            )
        prev, last_seq = event.hash, event.seq
    return ChainReport(True, count, last_seq, prev)
