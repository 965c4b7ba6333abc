"""The state store's interface and records.

The service layer (``palyra.daemon``) reads and writes state only through a
:class:`Transaction`: a write transaction either commits every change (and every journal
event it appended) or none, which is what makes "a crash leaves the old or the new state"
true for install, update, remove and every status change.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from palyra.errors import PalyraError


class StoreError(PalyraError):
    """The database could not be opened, migrated, read or written."""

    kind = "store"


class UnstorableText(StoreError):
    """A text value the database cannot hold (NUL characters), refused before any write."""

    kind = "invalid_text"


class SkillStatus(enum.StrEnum):
    ACTIVE = "active"
    QUARANTINED = "quarantined"
    DISABLED = "disabled"


@dataclass(frozen=True)
class SkillVersionRecord:
    """One installed version of a skill, with its trust decision, audit summary and status."""

    skill_id: str
    version: str
    publisher: str
    name: str
    artifact_sha256: str
    payload_sha256: str
    key_id: str
    public_key_hex: str
    trust_decision: str
    source_kind: str  # local_artifact | local_registry | remote_registry
    source_ref: str
    installed_at_ms: int
    status: SkillStatus
    status_reason: str | None
    status_changed_at_ms: int
    status_principal: str
    audit: dict[str, Any]  # passed, failed_checks, warning_checks, quarantine_reasons, at_ms
    # An update that asks for more than its predecessor: the capability diff awaiting approval.
    pending_capabilities: dict[str, Any] | None = None
    current: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "skill_id": self.skill_id,
            "version": self.version,
            "publisher": self.publisher,
            "name": self.name,
            "current": self.current,
            "status": self.status.value,
            "status_reason": self.status_reason,
            "status_changed_at_ms": self.status_changed_at_ms,
            "status_principal": self.status_principal,
            "artifact_sha256": self.artifact_sha256,
            "payload_sha256": self.payload_sha256,
            "signature_key_id": self.key_id,
            "trust_decision": self.trust_decision,
            "source": {"kind": self.source_kind, "reference": self.source_ref},
            "installed_at_ms": self.installed_at_ms,
            "audit": self.audit,
            "pending_capabilities": self.pending_capabilities,
        }


@dataclass(frozen=True)
class CapabilityProfile:
    """What a plugin binding lets its skill use: a narrowing of the skill's declared grants."""

    http_hosts: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()  # "<scope>/<key>"
    storage_prefixes: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()

    def to_json(self) -> dict[str, list[str]]:
        return {
            "http_hosts": list(self.http_hosts),
            "secrets": list(self.secrets),
            "storage_prefixes": list(self.storage_prefixes),
            "channels": list(self.channels),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> CapabilityProfile:
        return cls(
            http_hosts=tuple(value.get("http_hosts", ())),
            secrets=tuple(value.get("secrets", ())),
            storage_prefixes=tuple(value.get("storage_prefixes", ())),
            channels=tuple(value.get("channels", ())),
        )


@dataclass(frozen=True)
class PluginBinding:
    plugin_id: str
    skill_id: str
    skill_version: str | None  # None: follow the current version
    tool_id: str
    enabled: bool
    profile: CapabilityProfile
    notes: str | None
    created_at_ms: int
    updated_at_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "plugin_id": self.plugin_id,
            "skill_id": self.skill_id,
            "skill_version": self.skill_version,
            "tool_id": self.tool_id,
            "enabled": self.enabled,
            "capability_profile": self.profile.to_json(),
            "notes": self.notes,
            "created_at_ms": self.created_at_ms,
            "updated_at_ms": self.updated_at_ms,
        }


@dataclass(frozen=True)
class HookBinding:
    hook_id: str
    event: str
    plugin_id: str
    enabled: bool
    created_at_ms: int
    updated_at_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "hook_id": self.hook_id,
            "event": self.event,
            "plugin_id": self.plugin_id,
            "enabled": self.enabled,
            "created_at_ms": self.created_at_ms,
            "updated_at_ms": self.updated_at_ms,
        }


class ApprovalState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


@dataclass(frozen=True)
class ApprovalRecord:
    approval_id: str
    skill_id: str
    version: str
    tool_id: str
    input_sha256: str
    input_preview: str  # truncated, secrets never reach it (inputs come from callers)
    requested_by: str
    requested_at_ms: int
    expires_at_ms: int
    state: ApprovalState
    decided_at_ms: int | None = None
    decided_by: str | None = None
    window_until_ms: int | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "approval_id": self.approval_id,
            "skill_id": self.skill_id,
            "version": self.version,
            "tool_id": self.tool_id,
            "input_sha256": self.input_sha256,
            "input_preview": self.input_preview,
            "requested_by": self.requested_by,
            "requested_at_ms": self.requested_at_ms,
            "expires_at_ms": self.expires_at_ms,
            "state": self.state.value,
            "decided_at_ms": self.decided_at_ms,
            "decided_by": self.decided_by,
            "window_until_ms": self.window_until_ms,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class JournalEvent:
    seq: int
    at_ms: int
    kind: str
    actor: str
    payload: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = ""
    hash: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at_ms": self.at_ms,
            "kind": self.kind,
            "actor": self.actor,
            "payload": self.payload,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


class Transaction(Protocol):
    """Reads and writes inside one database transaction."""

    # ---- skills -------------------------------------------------------------------------
    def skill_versions(self, skill_id: str | None = None) -> list[SkillVersionRecord]: ...
    def skill_version(self, skill_id: str, version: str) -> SkillVersionRecord | None: ...
    def current_version(self, skill_id: str) -> str | None: ...
    def insert_skill_version(self, record: SkillVersionRecord) -> None: ...
    def delete_skill_version(self, skill_id: str, version: str) -> None: ...
    def set_current(self, skill_id: str, version: str | None) -> None: ...
    def set_status(
        self,
        skill_id: str,
        version: str,
        status: SkillStatus,
        reason: str | None,
        principal: str,
        at_ms: int,
    ) -> None: ...
    def set_pending_capabilities(
        self, skill_id: str, version: str, pending: dict[str, Any] | None
    ) -> None: ...
    def set_verification(
        self, skill_id: str, version: str, trust_decision: str, audit: dict[str, Any]
    ) -> None: ...

    # ---- plugin and hook bindings -------------------------------------------------------
    def plugins(self) -> list[PluginBinding]: ...
    def plugin(self, plugin_id: str) -> PluginBinding | None: ...
    def upsert_plugin(self, binding: PluginBinding) -> None: ...
    def delete_plugin(self, plugin_id: str) -> None: ...
    def hooks(self) -> list[HookBinding]: ...
    def hook(self, hook_id: str) -> HookBinding | None: ...
    def upsert_hook(self, binding: HookBinding) -> None: ...
    def delete_hook(self, hook_id: str) -> None: ...

    # ---- approvals ----------------------------------------------------------------------
    def insert_approval(self, record: ApprovalRecord) -> None: ...
    def approval(self, approval_id: str) -> ApprovalRecord | None: ...
    def approvals(self, state: ApprovalState | None = None) -> list[ApprovalRecord]: ...
    def decide_approval(
        self,
        approval_id: str,
        state: ApprovalState,
        by: str,
        at_ms: int,
        window_until_ms: int | None,
        reason: str | None,
    ) -> None: ...
    def approval_window(self, skill_id: str, version: str, tool_id: str) -> int | None: ...
    def set_approval_window(
        self, skill_id: str, version: str, tool_id: str, until_ms: int, by: str
    ) -> None: ...

    # ---- artifacts and documents (used when the store is shared by several daemons) -----
    def put_artifact(self, sha256: str, data: bytes) -> None:
        """Store artifact bytes under their SHA-256 (a no-op when already stored)."""
        ...

    def artifact(self, sha256: str) -> bytes | None: ...
    def drop_unreferenced_artifacts(self) -> list[str]:
        """Delete stored artifacts no installed version names; returns their digests."""
        ...

    def document(self, name: str) -> str | None: ...
    def set_document(self, name: str, body: str) -> None: ...

    # ---- journal ------------------------------------------------------------------------
    def append_event(self, kind: str, actor: str, payload: dict[str, Any]) -> JournalEvent: ...
    def events(
        self, after_seq: int = 0, limit: int = 100, kind: str | None = None
    ) -> list[JournalEvent]: ...
    def last_event(self) -> JournalEvent | None: ...


class StateStore(Protocol):
    """Opens transactions; one instance is shared by every thread of a process."""

    location: str  # for messages: a path, or a database URL without its password
    # True when several daemons share this store: artifacts and the trust store then live in
    # it, not in one daemon's state root.
    shared: bool
    bindings_generation: int  # changes when this process commits plugin/hook bindings

    def read(self) -> AbstractContextManager[Transaction]:
        """A read-only snapshot."""
        ...

    def write(self) -> AbstractContextManager[Transaction]:
        """A write transaction: serialised with every other writer, all-or-nothing."""
        ...

    def iter_events(self, batch: int = 500) -> Iterator[JournalEvent]:
        """Every journal event in order (for verification), read in batches."""
        ...

    def close(self) -> None: ...
