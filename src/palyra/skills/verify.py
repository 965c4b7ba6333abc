"""Trust verification: inspection plus the publisher decision (§3.2, §3.4).

:func:`verify_skill_artifact` never edits the trust store. When the decision is
``tofu_newly_pinned`` the report says which key to pin, and the caller pins it with
:meth:`VerificationReport.apply_pin` only after the rest of its operation (audit, install)
succeeded — the reference pinned even when a later step rejected the artifact.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from palyra.skills.constants import VERIFIED_EVENT_KIND
from palyra.skills.grants import (
    CapabilityGrants,
    PolicyBinding,
    capability_grants_from_manifest,
    policy_bindings_from_manifest,
)
from palyra.skills.inspect import SkillInspection, inspect_skill_artifact
from palyra.skills.trust import TrustDecision, TrustStore


@dataclass(frozen=True)
class VerificationReport:
    inspection: SkillInspection
    trust_decision: TrustDecision
    capability_grants: CapabilityGrants
    policy_bindings: list[PolicyBinding]
    verified_at_unix_ms: int

    @property
    def publisher(self) -> str:
        return self.inspection.manifest.publisher

    @property
    def public_key_hex(self) -> str:
        return self.inspection.public_key_hex

    def apply_pin(self, store: TrustStore) -> bool:
        """Record a TOFU pin in ``store`` if this verification created one."""
        if self.trust_decision is TrustDecision.TOFU_NEWLY_PINNED:
            store.pin(self.publisher, self.public_key_hex)
            return True
        return False

    def to_json(self) -> dict[str, Any]:
        m = self.inspection.manifest
        bindings = [b.to_json() for b in self.policy_bindings]
        return {
            "accepted": True,
            "trust_decision": self.trust_decision.value,
            "payload_sha256": self.inspection.payload_sha256,
            "manifest": m.to_json(),
            "manifest_warnings": [w.to_json() for w in self.inspection.manifest_warnings],
            "capability_grants": self.capability_grants.to_json(),
            "policy_bindings": bindings,
            "audit_event": {
                "event_kind": VERIFIED_EVENT_KIND,
                "skill_id": m.skill_id,
                "publisher": m.publisher,
                "version": m.version,
                "payload_sha256": self.inspection.payload_sha256,
                "trust_decision": self.trust_decision.value,
                "verified_at_unix_ms": self.verified_at_unix_ms,
                "policy_bindings": bindings,
            },
            "signature_key_id": self.inspection.signature.key_id,
        }


def verify_inspection(
    inspection: SkillInspection, store: TrustStore, *, allow_tofu: bool
) -> VerificationReport:
    decision = store.decide(
        inspection.manifest.publisher, inspection.public_key_hex, allow_tofu=allow_tofu
    )
    return VerificationReport(
        inspection=inspection,
        trust_decision=decision,
        capability_grants=capability_grants_from_manifest(inspection.manifest),
        policy_bindings=policy_bindings_from_manifest(inspection.manifest),
        verified_at_unix_ms=int(time.time() * 1000),
    )


def verify_skill_artifact(
    data: bytes, store: TrustStore, *, allow_tofu: bool
) -> VerificationReport:
    return verify_inspection(inspect_skill_artifact(data), store, allow_tofu=allow_tofu)
