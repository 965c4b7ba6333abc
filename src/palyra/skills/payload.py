"""The payload hash: what the publisher's signature actually covers (§2.5).

``SHA-256("palyra.skill.payload.v1" || for each entry sorted by name except signature.json:
u64be(len(name)) || name || u64be(len(data)) || data)``, as lowercase hex. Names are the
normalized entry names; Python's ``str`` ordering equals Rust's byte-wise UTF-8 ordering.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from palyra.skills.constants import PAYLOAD_DOMAIN, SIGNATURE_ENTRY


def payload_sha256(entries: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256(PAYLOAD_DOMAIN)
    for name in sorted(entries):
        if name == SIGNATURE_ENTRY:
            continue
        encoded = name.encode("utf-8")
        data = entries[name]
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()
