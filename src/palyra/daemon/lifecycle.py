"""Install, update, remove and the status machine (design.md §5).

Install = verify (structure, signature, compatibility) → trust decision → audit → persist.
Persisting is: write the artifact file (a file with no row is an orphan, cleaned on start),
then one database transaction with the version row, "current" and the journal events, then
the TOFU pin. A crash before the commit leaves nothing; a crash after it leaves a row whose
pin :func:`recover` writes on the next start — so no pin ever exists for a failed install.

Statuses: ``active``, ``quarantined`` (failed audit or verification, operator action, or an
update awaiting capability approval) and ``disabled``. There is no hidden "missing" state:
a version row is born with a status.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from palyra.daemon.artifacts import StagedArtifact
from palyra.daemon.context import ServiceContext
from palyra.daemon.errors import (
    AlreadyInstalled,
    CapabilityApprovalRequired,
    Conflict,
    DowngradeRefused,
    PublisherMismatch,
    QuarantineRequired,
    RegistryError,
    SkillNotInstalled,
)
from palyra.daemon.sources import ResolvedArtifact
from palyra.errors import PalyraError, UsageError
from palyra.skills.audit import AuditReport, audit_verified
from palyra.skills.errors import TofuKeyMismatchError
from palyra.skills.grants import CapabilityGrants, capability_grants_from_manifest
from palyra.skills.inspect import SkillInspection, inspect_skill_artifact
from palyra.skills.manifest import SkillManifest
from palyra.skills.trust import TrustDecision
from palyra.skills.values import parse_semver
from palyra.skills.verify import VerificationReport, verify_inspection
from palyra.store.base import SkillStatus, SkillVersionRecord, Transaction
from palyra.store.sql import now_ms

SYSTEM = "system:daemon"


@dataclass
class Outcome:
    """A committed change: the record it produced and the hook events to fire."""

    record: SkillVersionRecord | None
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def audit_summary(report: AuditReport) -> dict[str, Any]:
    return {
        "passed": report.passed,
        "should_quarantine": report.should_quarantine,
        "failed_checks": report.failed_checks,
        "warning_checks": report.warning_checks,
        "quarantine_reasons": report.quarantine_reasons,
        "check_count": len(report.checks),
        "at_ms": now_ms(),
    }


def capability_increase(old: CapabilityGrants, new: CapabilityGrants) -> dict[str, list[str]]:
    """What ``new`` may reach that ``old`` could not, per capability class."""
    pairs = {
        "http_hosts": (old.http_hosts, new.http_hosts),
        "secrets": (old.secret_keys, new.secret_keys),
        "storage_prefixes": (old.storage_prefixes, new.storage_prefixes),
        "storage_read_prefixes": (
            old.storage_read_prefixes + old.storage_prefixes,
            new.storage_read_prefixes,
        ),
        "channels": (old.channels, new.channels),
    }
    return {
        name: sorted(set(after) - set(before))
        for name, (before, after) in pairs.items()
        if set(after) - set(before)
    }


def approval_dropped(old: SkillManifest, new: SkillManifest) -> list[str]:
    """Tools that needed an operator's approval in ``old`` and no longer do in ``new``: less
    oversight is held for the operator like more capabilities are."""
    gated = {tool.id for tool in old.tools if tool.risk.needs_approval}
    return sorted(t.id for t in new.tools if t.id in gated and not t.risk.needs_approval)


def _skill_event(record: SkillVersionRecord, **extra: Any) -> dict[str, Any]:
    return {
        "skill_id": record.skill_id,
        "version": record.version,
        "publisher": record.publisher,
        "status": record.status.value,
        "reason": record.status_reason,
        **extra,
    }


# ---- resolution ---------------------------------------------------------------------------


def resolve_version(tx: Transaction, skill_id: str, version: str | None) -> SkillVersionRecord:
    """The named version, else the current one; a typed not-found otherwise."""
    if version is None:
        version = tx.current_version(skill_id)
        if version is None:
            raise SkillNotInstalled(f"skill {skill_id} is not installed")
    record = tx.skill_version(skill_id, version)
    if record is None:
        raise SkillNotInstalled(f"skill {skill_id} version {version} is not installed")
    return record


def _semver(version: str) -> tuple[int, int, int]:
    return parse_semver("version", version)


# ---- install / update ---------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    inspection: SkillInspection
    verification: VerificationReport
    audit: AuditReport
    artifact_sha256: str


def check_artifact(ctx: ServiceContext, resolved: ResolvedArtifact, allow_tofu: bool) -> Checked:
    """Verify, trust and audit bytes without changing any state."""
    try:
        inspection = inspect_skill_artifact(resolved.data)
    except PalyraError as exc:
        # Prefix in place: some error classes have their own constructors.
        exc.message = f"skill artifact failed structural verification: {exc.message}"
        exc.args = (exc.message,)
        raise
    manifest = inspection.manifest
    promise = resolved.promise
    digest = hashlib.sha256(resolved.data).hexdigest()
    if promise is not None:
        if promise.artifact_sha256 is not None and promise.artifact_sha256 != digest:
            raise RegistryError(
                f"registry hash mismatch for {promise.skill_id} {promise.version}: "
                f"expected {promise.artifact_sha256}, got {digest}"
            )
        mismatched = [
            name
            for name, promised, actual in (
                ("skill_id", promise.skill_id, manifest.skill_id),
                ("version", promise.version, manifest.version),
                ("publisher", promise.publisher, manifest.publisher),
            )
            if promised is not None and promised != actual
        ]
        if mismatched and resolved.source_kind == "local_artifact":  # `update SKILL --artifact`
            raise UsageError(
                f"{resolved.source_ref} is {manifest.skill_id}, not {promise.skill_id}"
            )
        if mismatched:
            raise RegistryError(
                f"registry metadata mismatch ({', '.join(mismatched)}) for {resolved.source_ref}"
            )
    verification = verify_inspection(inspection, ctx.trust_store(), allow_tofu=allow_tofu)
    signer = resolved.index_signer
    if (
        signer is not None
        and signer[0] == manifest.publisher
        and signer[1] != (inspection.public_key_hex)
    ):
        # Both would be pinned on first use; two keys for one publisher cannot both be.
        raise RegistryError(
            f"the registry index and the artifact are signed by different keys of publisher "
            f"'{manifest.publisher}'"
        )
    report = audit_verified(verification, ctx.audit_policy())
    return Checked(inspection, verification, report, digest)


def _new_record(
    ctx: ServiceContext,
    checked: Checked,
    resolved: ResolvedArtifact,
    status: SkillStatus,
    reason: str | None,
    principal: str,
) -> SkillVersionRecord:
    m = checked.inspection.manifest
    at = now_ms()
    return SkillVersionRecord(
        skill_id=m.skill_id,
        version=m.version,
        publisher=m.publisher,
        name=m.name,
        artifact_sha256=checked.artifact_sha256,
        payload_sha256=checked.inspection.payload_sha256,
        key_id=checked.inspection.signature.key_id,
        public_key_hex=checked.inspection.public_key_hex,
        trust_decision=checked.verification.trust_decision.value,
        source_kind=resolved.source_kind,
        source_ref=resolved.source_ref,
        installed_at_ms=at,
        status=status,
        status_reason=reason,
        status_changed_at_ms=at,
        status_principal=principal,
        audit=audit_summary(checked.audit),
    )


def _initial_status(
    ctx: ServiceContext, checked: Checked, held: dict[str, list[str]] | None, *, is_new: bool
) -> tuple[SkillStatus, str | None]:
    if checked.audit.should_quarantine:
        return SkillStatus.QUARANTINED, "audit_failed: " + " | ".join(
            checked.audit.quarantine_reasons
        )
    if held:
        return SkillStatus.QUARANTINED, "capability_approval_required: " + "; ".join(
            f"{k} +{', '.join(v)}" for k, v in held.items()
        )
    if is_new and ctx.config.new_skills_start == "disabled":
        return SkillStatus.DISABLED, "policy: new skills start disabled"
    return SkillStatus.ACTIVE, None


def install(
    ctx: ServiceContext,
    resolved: ResolvedArtifact,
    *,
    allow_tofu: bool = False,
    force: bool = False,
    require_installed: bool = False,
    principal: str = "operator",
) -> Outcome:
    """Install (or, with ``require_installed``, update to) the resolved artifact.

    A new version becomes current unless it asks for capabilities the current version does
    not have: then it is stored quarantined with the capability diff and the current version
    keeps running until the operator approves (``enable --approve-capabilities``).

    Verification and the audit run outside any lock; every decision that depends on other
    installs (already installed? downgrade? capability increase? a second key for a publisher
    pinned on first use?) is taken again inside the write transaction, which serialises
    installs across threads and processes. The artifact is staged (beside its final path, or
    in memory for a shared store) and placed inside that transaction, so a losing racer never
    touches a winner's artifact.
    """
    checked = check_artifact(ctx, resolved, allow_tofu)
    m = checked.inspection.manifest
    staged = ctx.artifacts.stage(m.skill_id, m.version, resolved.data)
    try:
        with ctx.store.write() as tx:
            outcome = _commit_install(
                ctx, tx, checked, resolved, staged, force, require_installed, principal
            )
    finally:
        ctx.artifacts.discard(staged)
    record = outcome.record
    assert record is not None
    if not outcome.details.get("changed"):
        return outcome
    if checked.verification.trust_decision is TrustDecision.TOFU_NEWLY_PINNED:
        ctx.pin(m.publisher, checked.inspection.public_key_hex)
        _mark_pinned(ctx, record)
    if resolved.index_signer is not None:
        ctx.pin(*resolved.index_signer)
    return outcome


def _mark_pinned(ctx: ServiceContext, record: SkillVersionRecord) -> None:
    """The pin is written: recovery must never write it again (an operator may unpin it)."""
    with ctx.store.write() as tx:
        live = tx.skill_version(record.skill_id, record.version)
        if live is not None and live.trust_decision == TrustDecision.TOFU_NEWLY_PINNED.value:
            tx.set_verification(
                record.skill_id, record.version, TrustDecision.TOFU_PINNED.value, live.audit
            )


def _check_publisher_key(ctx: ServiceContext, tx: Transaction, checked: Checked) -> None:
    """Re-decide trust under the write lock: another install may have pinned (or be about
    to pin) a different key for this publisher since ``check_artifact`` looked."""
    m = checked.inspection.manifest
    key = checked.inspection.public_key_hex
    ctx.trust_store().decide(m.publisher, key, allow_tofu=True)  # raises on a pinned mismatch
    if checked.verification.trust_decision is not TrustDecision.TOFU_NEWLY_PINNED:
        return
    for other in tx.skill_versions():
        if (
            other.publisher == m.publisher
            and other.public_key_hex != key
            and other.trust_decision == TrustDecision.TOFU_NEWLY_PINNED.value
        ):  # committed by a concurrent install whose pin is not written yet
            raise TofuKeyMismatchError(m.publisher)


def _commit_install(
    ctx: ServiceContext,
    tx: Transaction,
    checked: Checked,
    resolved: ResolvedArtifact,
    staged: StagedArtifact,
    force: bool,
    require_installed: bool,
    principal: str,
) -> Outcome:
    m = checked.inspection.manifest
    installed = tx.skill_versions(m.skill_id)
    others = [r for r in installed if r.publisher != m.publisher]
    if others:
        raise PublisherMismatch(
            f"{m.skill_id} is published by {others[0].publisher}; an artifact signed by "
            f"{m.publisher} cannot install or update it (remove the skill to change publishers)"
        )
    existing = tx.skill_version(m.skill_id, m.version)
    if existing is None:  # 1.0.00 and +1.0.0 are 1.0.0: one version, one set of bytes
        existing = next((r for r in installed if _semver(r.version) == _semver(m.version)), None)
    if existing is not None:
        same_content = (
            existing.payload_sha256 == checked.inspection.payload_sha256
            and existing.public_key_hex == checked.inspection.public_key_hex
        )
        if same_content:  # byte-identical, or re-signed by the same key (a new signed_at)
            return Outcome(existing, details={"changed": False, "reason": "already_installed"})
        spelt = "" if existing.version == m.version else f" (as {existing.version})"
        raise AlreadyInstalled(
            f"{m.skill_id} {m.version} is already installed{spelt} with different bytes "
            "(versions are immutable: publish a new version)"
        )
    current_version = tx.current_version(m.skill_id)
    current = None if current_version is None else tx.skill_version(m.skill_id, current_version)
    if require_installed and current is None:
        raise SkillNotInstalled(f"skill {m.skill_id} is not installed (use install)")
    _check_publisher_key(ctx, tx, checked)
    held: dict[str, list[str]] | None = None
    if current is not None:
        if _semver(m.version) < _semver(current.version) and not force:
            raise DowngradeRefused(
                f"{m.skill_id} {m.version} is older than the installed {current.version} "
                "(pass --force to downgrade)"
            )
        old_manifest = ctx.artifacts.load(current).manifest
        old = capability_grants_from_manifest(old_manifest)
        held = capability_increase(old, capability_grants_from_manifest(m))
        dropped = approval_dropped(old_manifest, m)
        if dropped:
            held["approval_removed"] = dropped
        held = held or None
    status, reason = _initial_status(ctx, checked, held, is_new=current is None)
    record = _new_record(ctx, checked, resolved, status, reason, principal)
    if held:
        record = replace(record, pending_capabilities=held)
    verb = "skill.updated" if current is not None else "skill.installed"
    # A held or quarantined update waits beside the version that runs: a publisher's bad
    # update must not take a working skill down.
    kept_back = bool(held) or status is SkillStatus.QUARANTINED
    becomes_current = current is None or not kept_back
    tx.insert_skill_version(record)
    if becomes_current:
        tx.set_current(m.skill_id, m.version)
    payload = _skill_event(
        record,
        previous_version=None if current is None else current.version,
        artifact_sha256=record.artifact_sha256,
        payload_sha256=record.payload_sha256,
        signature_key_id=record.key_id,
        trust_decision=record.trust_decision,
        source={"kind": record.source_kind, "reference": record.source_ref},
        audit=record.audit,
        current=becomes_current,
        pending_capabilities=held,
    )
    tx.append_event("skill.update_held" if current and kept_back else verb, principal, payload)
    if status is SkillStatus.QUARANTINED:
        tx.append_event("skill.quarantined", principal, _skill_event(record))
    final = tx.skill_version(m.skill_id, m.version)
    # Last, so nothing can fail after the file is in place but before the commit.
    ctx.artifacts.place(staged, tx)
    events: list[tuple[str, dict[str, Any]]] = [
        ("skill:installed", _skill_event(record, action=verb))
    ]
    if status is SkillStatus.QUARANTINED:
        events.append(("skill:quarantined", _skill_event(record)))
    return Outcome(final, events, {"changed": True, "held_capabilities": held})


# ---- remove -------------------------------------------------------------------------------


def remove(
    ctx: ServiceContext, skill_id: str, version: str | None, principal: str = "operator"
) -> Outcome:
    """Remove one version (not the current one while others remain) or the whole skill."""
    with ctx.store.write() as tx:
        versions = tx.skill_versions(skill_id)
        if not versions:
            raise SkillNotInstalled(f"skill {skill_id} is not installed")
        if version is None:
            targets = versions
        else:
            targets = [v for v in versions if v.version == version]
            if not targets:
                raise SkillNotInstalled(f"skill {skill_id} version {version} is not installed")
            if targets[0].current and len(versions) > 1:
                raise Conflict(
                    f"{skill_id} {version} is the current version; remove the other versions "
                    "first, or the whole skill (omit --version)"
                )
        removing_all = len(targets) == len(versions)
        doomed = {t.version for t in targets}
        bound = [
            p.plugin_id
            for p in tx.plugins()
            if p.skill_id == skill_id and (removing_all or p.skill_version in doomed)
        ]
        if bound:
            raise Conflict(
                f"skill {skill_id} is bound by plugin(s) {', '.join(sorted(bound))}; "
                "unbind them first"
            )
        if removing_all:
            tx.set_current(skill_id, None)
        for target in targets:
            tx.delete_skill_version(skill_id, target.version)
        removed = [t.version for t in targets]
        ctx.artifacts.unlink(tx, skill_id, removed)
        tx.append_event(
            "skill.removed", principal, {"skill_id": skill_id, "removed_versions": removed}
        )
    ctx.artifacts.unlinked(skill_id, removed)
    return Outcome(None, details={"skill_id": skill_id, "removed_versions": removed})


# ---- status changes -----------------------------------------------------------------------


def _set_status(
    ctx: ServiceContext,
    record: SkillVersionRecord,
    status: SkillStatus,
    reason: str | None,
    principal: str,
    event: str,
    *,
    extra_writes: Any = None,
) -> SkillVersionRecord:
    with ctx.store.write() as tx:
        live = tx.skill_version(record.skill_id, record.version)
        if live is None:
            raise SkillNotInstalled(f"skill {record.skill_id} version {record.version} was removed")
        tx.set_status(record.skill_id, record.version, status, reason, principal, now_ms())
        if extra_writes is not None:
            extra_writes(tx)
        updated = tx.skill_version(record.skill_id, record.version)
        assert updated is not None
        tx.append_event(event, principal, _skill_event(updated))
    return updated


def disable(
    ctx: ServiceContext, skill_id: str, version: str | None, reason: str | None, principal: str
) -> Outcome:
    with ctx.store.read() as tx:
        record = resolve_version(tx, skill_id, version)
    updated = _set_status(ctx, record, SkillStatus.DISABLED, reason, principal, "skill.disabled")
    return Outcome(updated, [("skill:disabled", _skill_event(updated))])


def quarantine(
    ctx: ServiceContext, skill_id: str, version: str | None, reason: str | None, principal: str
) -> Outcome:
    with ctx.store.read() as tx:
        record = resolve_version(tx, skill_id, version)
    updated = _set_status(
        ctx, record, SkillStatus.QUARANTINED, reason, principal, "skill.quarantined"
    )
    return Outcome(updated, [("skill:quarantined", _skill_event(updated))])


def reverify(ctx: ServiceContext, record: SkillVersionRecord) -> AuditReport:
    """The stored bytes, checked again: hash, structure, signature, trust (no TOFU), audit."""
    ctx.artifacts.forget(record.skill_id, record.version)
    inspection = ctx.artifacts.load(record)
    verification = verify_inspection(inspection, ctx.trust_store(), allow_tofu=False)
    return audit_verified(verification, ctx.audit_policy())


def enable(
    ctx: ServiceContext,
    skill_id: str,
    version: str | None,
    reason: str | None,
    principal: str,
    *,
    approve_capabilities: bool = False,
) -> Outcome:
    """Re-verify and re-audit, then make the version active (and current if it was held)."""
    with ctx.store.read() as tx:
        record = resolve_version(tx, skill_id, version)
    if record.pending_capabilities and not approve_capabilities:
        raise CapabilityApprovalRequired(
            f"{skill_id} {record.version} asks for capabilities its predecessor did not have: "
            + "; ".join(f"{k} +{', '.join(v)}" for k, v in record.pending_capabilities.items())
            + " (pass --approve-capabilities to grant them)",
            details={"pending_capabilities": record.pending_capabilities},
        )
    report = reverify(ctx, record)
    summary = audit_summary(report)
    if report.should_quarantine:
        with ctx.store.write() as tx:
            tx.set_verification(skill_id, record.version, report.trust_decision.value, summary)
        raise QuarantineRequired(
            f"{skill_id} {record.version} still fails its audit: "
            + " | ".join(report.quarantine_reasons)
        )
    approved = record.pending_capabilities

    def writes(tx: Transaction) -> None:
        tx.set_verification(skill_id, record.version, report.trust_decision.value, summary)
        if approved:
            tx.set_pending_capabilities(skill_id, record.version, None)
            tx.set_current(skill_id, record.version)
            tx.append_event(
                "skill.capabilities_approved",
                principal,
                {"skill_id": skill_id, "version": record.version, "capabilities": approved},
            )

    updated = _set_status(
        ctx, record, SkillStatus.ACTIVE, reason, principal, "skill.enabled", extra_writes=writes
    )
    return Outcome(updated, [("skill:enabled", _skill_event(updated))])


# ---- verification and audit of installed skills ------------------------------------------


def verify_installed(
    ctx: ServiceContext, skill_id: str, version: str | None, principal: str
) -> Outcome:
    """Re-verify the stored artifact; one that stopped verifying is quarantined."""
    with ctx.store.read() as tx:
        record = resolve_version(tx, skill_id, version)
    return _recheck(ctx, record, principal, "skill.verified")


def _recheck(
    ctx: ServiceContext, record: SkillVersionRecord, principal: str, event: str
) -> Outcome:
    try:
        report = reverify(ctx, record)
    except PalyraError as exc:
        reason = f"verification_failed: {exc.kind}: {exc.message}"
        if record.status is SkillStatus.QUARANTINED:
            return Outcome(record, details={"ok": False, "error": exc.to_json()})
        updated = _set_status(
            ctx, record, SkillStatus.QUARANTINED, reason, principal, "skill.quarantined"
        )
        return Outcome(
            updated,
            [("skill:quarantined", _skill_event(updated))],
            {"ok": False, "error": exc.to_json()},
        )
    summary = audit_summary(report)
    with ctx.store.write() as tx:
        tx.set_verification(record.skill_id, record.version, report.trust_decision.value, summary)
        tx.append_event(
            event,
            principal,
            {
                "skill_id": record.skill_id,
                "version": record.version,
                "trust_decision": report.trust_decision.value,
                "audit": summary,
            },
        )
    if report.should_quarantine and record.status is not SkillStatus.QUARANTINED:
        reason = "audit_failed: " + " | ".join(report.quarantine_reasons)
        updated = _set_status(
            ctx, record, SkillStatus.QUARANTINED, reason, principal, "skill.quarantined"
        )
        return Outcome(
            updated,
            [("skill:quarantined", _skill_event(updated))],
            {"ok": False, "audit": report.to_json()},
        )
    with ctx.store.read() as tx:
        fresh = tx.skill_version(record.skill_id, record.version)
    return Outcome(fresh, details={"ok": not report.should_quarantine, "audit": report.to_json()})


def audit_installed(
    ctx: ServiceContext, skill_id: str, version: str | None, principal: str
) -> Outcome:
    with ctx.store.read() as tx:
        record = resolve_version(tx, skill_id, version)
    return _recheck(ctx, record, principal, "skill.audited")


def reaudit_all(ctx: ServiceContext) -> list[Outcome]:
    """The periodic re-audit: every installed version; never re-activates anything."""
    with ctx.store.read() as tx:
        records = tx.skill_versions()
    return [_recheck(ctx, record, SYSTEM, "skill.audited") for record in records]


# ---- recovery -----------------------------------------------------------------------------


def recover(ctx: ServiceContext) -> dict[str, Any]:
    """Finish what a crash interrupted: remove orphan artifacts, write committed TOFU pins."""
    # Under the write lock: an installer moves its file into place only inside its own write
    # transaction, so every final artifact without a row here is a crash's leftover.
    with ctx.store.write() as tx:
        records = tx.skill_versions()
        removed = ctx.artifacts.remove_orphans(tx, {(r.skill_id, r.version) for r in records})
    pinned: list[str] = []
    store = ctx.trust_store()
    for record in records:
        if record.trust_decision != TrustDecision.TOFU_NEWLY_PINNED.value:
            continue
        known = record.publisher in store.trusted_publishers or (
            record.publisher in store.tofu_publishers
        )
        if not known and ctx.pin(record.publisher, record.public_key_hex):
            pinned.append(record.publisher)
        _mark_pinned(ctx, record)
    return {"orphans_removed": removed, "pins_restored": pinned, "vault": recover_vault(ctx)}


VAULT_EVENTS = ("secret.set", "secret.deleted")


def recover_vault(ctx: ServiceContext) -> str | None:
    """Finish or undo a vault write a crash interrupted: a staged vault whose digest is in
    the journal was committed there (roll forward), any other is discarded (roll back)."""
    with ctx.vault_edit() as vault:
        digest = vault.staged_digest()
        if digest is None:
            return None
        with ctx.store.read() as tx:
            journaled = any(
                event.payload.get("vault_sha256") == digest
                for kind in VAULT_EVENTS
                for event in tx.events(0, 1_000_000, kind)
            )
        if journaled:
            vault.commit_staged()
            return "committed"
        vault.discard_staged()
        return "discarded"


# ---- reading ------------------------------------------------------------------------------


def manifest_of(ctx: ServiceContext, record: SkillVersionRecord) -> SkillManifest | None:
    """The manifest of an installed version, or None when its artifact cannot be loaded
    (one broken artifact must not break listing every other skill)."""
    try:
        return ctx.artifacts.load(record).manifest
    except PalyraError:
        return None


def absent_secrets(ctx: ServiceContext, refs: Iterable[str]) -> list[str]:
    """Which ``scope/key`` references (exact ones; wildcards cannot be checked) the vault
    does not hold. A vault that cannot be read reports nothing missing rather than failing
    a listing."""
    exact = [ref for ref in refs if "*" not in ref]
    if not exact:
        return []
    try:
        present = {f"{scope}/{key}" for scope, key in ctx.vault.names()}
    except PalyraError:
        return []
    return sorted(ref for ref in exact if ref not in present)


def missing_secrets(ctx: ServiceContext, manifest: SkillManifest) -> list[str]:
    """Declared secrets (exact keys) that are not in the vault, as ``scope/key``."""
    return absent_secrets(ctx, capability_grants_from_manifest(manifest).secret_keys)
