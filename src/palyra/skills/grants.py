"""From a manifest to runtime capability grants and policy bindings (§6).

Differences from the reference, both listed gaps there: ``read_roots`` become read-only storage
grants instead of being dropped, and channels are granted from ``node_capabilities`` entries of
the form ``channel:<name>``. Secret grants keep their structure (scope, key) as well as the
reference's ``<scope>/<key>`` string, so no later stage re-parses them with a narrower charset
(the reference's runner did, which made every non-global secret ungrantable).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from palyra.skills.manifest import SkillManifest

CHANNEL_CAPABILITY_PREFIX = "channel:"


@dataclass(frozen=True, order=True)
class SecretGrant:
    scope: str
    key: str

    def __str__(self) -> str:
        return f"{self.scope}/{self.key}"


@dataclass(frozen=True)
class CapabilityGrants:
    http_hosts: tuple[str, ...] = ()
    secrets: tuple[SecretGrant, ...] = ()
    storage_prefixes: tuple[str, ...] = ()  # read-write (write_roots)
    storage_read_prefixes: tuple[str, ...] = ()  # read-only (read_roots not also writable)
    channels: tuple[str, ...] = ()

    @property
    def secret_keys(self) -> tuple[str, ...]:
        return tuple(str(grant) for grant in self.secrets)

    def to_json(self) -> dict[str, Any]:
        return {
            "http_hosts": list(self.http_hosts),
            "secret_keys": list(self.secret_keys),
            "storage_prefixes": list(self.storage_prefixes),
            "storage_read_prefixes": list(self.storage_read_prefixes),
            "channels": list(self.channels),
        }


@dataclass(frozen=True, order=True)
class PolicyBinding:
    action: str
    resource: str
    requires_approval: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "resource": self.resource,
            "requires_approval": self.requires_approval,
        }


def _canonical(items: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return tuple(sorted({item.strip() for item in items if item.strip()}))


def capability_grants_from_manifest(manifest: SkillManifest) -> CapabilityGrants:
    caps = manifest.capabilities
    writable = _canonical(caps.filesystem.write_roots)
    readable = tuple(
        root for root in _canonical(caps.filesystem.read_roots) if root not in writable
    )
    secrets = sorted({SecretGrant(req.scope, key) for req in caps.secrets for key in req.key_names})
    channels = _canonical(
        [
            node[len(CHANNEL_CAPABILITY_PREFIX) :]
            for node in caps.node_capabilities
            if node.startswith(CHANNEL_CAPABILITY_PREFIX)
        ]
    )
    return CapabilityGrants(
        http_hosts=_canonical(caps.http_egress_allowlist),
        secrets=tuple(secrets),
        storage_prefixes=writable,
        storage_read_prefixes=readable,
        channels=channels,
    )


def policy_bindings_from_manifest(manifest: SkillManifest) -> list[PolicyBinding]:
    caps = manifest.capabilities
    resource = f"skill:{manifest.skill_id}"
    bindings = {
        PolicyBinding("tool.execute", f"tool:{tool.id}", tool.risk.needs_approval)
        for tool in manifest.tools
    }
    if caps.http_egress_allowlist:
        bindings.add(PolicyBinding("skill.capability.http.egress", resource, True))
    if caps.filesystem.write_roots:
        bindings.add(PolicyBinding("skill.capability.filesystem.write", resource, True))
    if caps.secrets:
        bindings.add(PolicyBinding("skill.capability.vault.read", resource, True))
    if caps.device_capabilities or caps.node_capabilities:
        bindings.add(PolicyBinding("skill.capability.device.use", resource, True))
    return sorted(bindings)


def policy_requests_from_manifest(manifest: SkillManifest) -> list[dict[str, str]]:
    principal = f"skill:{manifest.skill_id}"
    return [
        {"principal": principal, "action": b.action, "resource": b.resource}
        for b in policy_bindings_from_manifest(manifest)
    ]
