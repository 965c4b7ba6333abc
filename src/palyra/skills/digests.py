"""Hashing an artifact's entries: the payload hash and per-entry SHA-256 together.

Verification needs two independent SHA-256 passes over every byte (the payload hash and the
manifest's per-entry integrity digests). :mod:`hashlib` releases the GIL on large buffers, so
for big artifacts the two passes run on two threads; this is what keeps verifying a 16 MiB
module within about 2x of a single ``hashlib.sha256`` over the same bytes.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping

from palyra.skills.constants import MANIFEST_ENTRY, SIGNATURE_ENTRY
from palyra.skills.payload import payload_sha256

_PARALLEL_THRESHOLD = 1024 * 1024


def entry_digests(entries: Mapping[str, bytes]) -> dict[str, str]:
    """Lowercase hex SHA-256 of every entry except ``skill.toml`` and ``signature.json``."""
    return {
        name: hashlib.sha256(data).hexdigest()
        for name, data in sorted(entries.items())
        if name not in (MANIFEST_ENTRY, SIGNATURE_ENTRY)
    }


PARALLEL_THRESHOLD = _PARALLEL_THRESHOLD


def hash_entries(
    entries: Mapping[str, bytes], also: Callable[[], None] | None = None
) -> tuple[str, dict[str, str]]:
    """Return ``(payload_sha256, entry_digests)``, in parallel when the payload is large.

    ``also`` (e.g. deferred CRC checks) runs on the main thread after the entry digests; an
    exception from it propagates once the worker has finished.
    """
    total = sum(len(data) for data in entries.values())
    if total < _PARALLEL_THRESHOLD:
        digests = entry_digests(entries)
        if also is not None:
            also()
        return payload_sha256(entries), digests
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(payload_sha256(entries)), daemon=True)
    worker.start()
    try:
        digests = entry_digests(entries)
        if also is not None:
            also()
    finally:
        worker.join()
    return result[0], digests
