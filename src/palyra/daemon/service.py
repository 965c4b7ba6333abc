"""The one service every face calls. Methods take plain values and return JSON-ready dicts,
so the CLI prints the same documents whether it runs the service in-process or asks a
daemon over HTTP (whose client implements the same methods)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from palyra.daemon import bindings, hooks, lifecycle
from palyra.daemon.approvals import Approvals, PendingListener
from palyra.daemon.context import ServiceContext
from palyra.daemon.hooks import HookDispatcher
from palyra.daemon.lifecycle import Outcome
from palyra.daemon.runner import CallRequest, Runner
from palyra.daemon.sources import Promise, ResolvedArtifact, from_file, from_registry_dir
from palyra.errors import NotFoundError, PalyraError, UsageError
from palyra.runtime.vault import EncryptedFileVault, VaultError, secret_ref
from palyra.skills.grants import capability_grants_from_manifest
from palyra.store.base import ApprovalRecord, ApprovalState, SkillVersionRecord
from palyra.store.journal_chain import verify_chain

MAX_JOURNAL_PAGE = 1000


class Service:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.approvals = Approvals(ctx)
        self.runner = Runner(ctx, self.approvals)
        self.hooks = HookDispatcher(ctx, self.runner).install()

    @classmethod
    def open(cls, state_root: Path) -> Service:
        service = cls(ServiceContext(state_root))
        lifecycle.recover(service.ctx)
        return service

    def close(self) -> None:
        self.ctx.close()

    def _done(self, outcome: Outcome) -> None:
        for event, payload in outcome.events:
            self.ctx.fire(event, payload)

    def _announced(self, outcome: Outcome) -> dict[str, Any]:
        """Tell listeners about a committed change to one version, and describe that version."""
        self._done(outcome)
        assert outcome.record is not None
        return self._entry(outcome.record)

    def _entry(self, record: SkillVersionRecord) -> dict[str, Any]:
        body = record.to_json()
        manifest = lifecycle.manifest_of(self.ctx, record)
        if manifest is None:
            body["artifact_error"] = "the stored artifact cannot be loaded (run skills verify)"
            body["tools"] = []
            body["missing_secrets"] = []
        else:
            body["tools"] = [
                {
                    "id": t.id,
                    "name": t.name,
                    "description": t.description,
                    "requires_approval": t.risk.needs_approval,
                }
                for t in manifest.tools
            ]
            body["missing_secrets"] = lifecycle.missing_secrets(self.ctx, manifest)
        body["needs_secrets"] = bool(body["missing_secrets"])
        return body

    # ---- skills: install and update ---------------------------------------------------------
    def install_artifact(
        self,
        data: bytes,
        *,
        source_ref: str = "upload",
        source_kind: str = "local_artifact",
        allow_tofu: bool = False,
        force: bool = False,
        update_of: str | None = None,
        principal: str = "operator",
    ) -> dict[str, Any]:
        """Install uploaded bytes (the API never reads a path the client names).

        ``update_of`` names the installed skill this must update: bytes of any other skill
        are refused before anything is written."""
        resolved = ResolvedArtifact(data, source_kind, source_ref, _update_promise(update_of))
        return self._install(resolved, allow_tofu, force, update_of is not None, principal)

    def install_file(
        self,
        path: Path,
        *,
        allow_tofu: bool = False,
        force: bool = False,
        update_of: str | None = None,
        principal: str = "operator",
    ) -> dict[str, Any]:
        resolved = from_file(path)
        return self.install_artifact(
            resolved.data,
            source_ref=resolved.source_ref,
            allow_tofu=allow_tofu,
            force=force,
            update_of=update_of,
            principal=principal,
        )

    def install_from_registry_dir(
        self,
        root: Path,
        skill_id: str,
        version: str | None = None,
        *,
        allow_tofu: bool = False,
        force: bool = False,
        update: bool = False,
        principal: str = "operator",
    ) -> dict[str, Any]:
        resolved = from_registry_dir(root, skill_id, version)
        return self._install(resolved, allow_tofu, force, update, principal)

    def install_from_registry_url(
        self,
        url: str,
        skill_id: str,
        version: str | None = None,
        *,
        allow_tofu: bool = False,
        force: bool = False,
        update: bool = False,
        ca_file: Path | None = None,
        principal: str = "operator",
    ) -> dict[str, Any]:
        from palyra.daemon.remote_registry import from_remote_registry

        resolved = from_remote_registry(
            url, skill_id, version, self.ctx.trust_store(), allow_tofu=allow_tofu, ca_file=ca_file
        )
        return self._install(resolved, allow_tofu, force, update, principal)

    def _install(
        self,
        resolved: ResolvedArtifact,
        allow_tofu: bool,
        force: bool,
        update: bool,
        principal: str,
    ) -> dict[str, Any]:
        outcome = lifecycle.install(
            self.ctx,
            resolved,
            allow_tofu=allow_tofu,
            force=force,
            require_installed=update,
            principal=principal,
        )
        return {**self._announced(outcome), **outcome.details}

    # ---- daemon -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        from palyra import __version__

        with self.ctx.store.read() as tx:
            records = tx.skill_versions()
            last = tx.last_event()
        counts: dict[str, int] = {"active": 0, "quarantined": 0, "disabled": 0}
        for record in records:
            if record.current:
                counts[record.status.value] += 1
        return {
            "version": __version__,
            "state_root": str(self.ctx.state_root),
            "database": self.ctx.store.location,
            "skills": len({r.skill_id for r in records}),
            "skill_status": counts,
            "pending_approvals": len(self.approvals.list(ApprovalState.PENDING)),
            "journal_last_seq": 0 if last is None else last.seq,
        }

    # ---- skills: status -----------------------------------------------------------------------
    def remove(
        self, skill_id: str, version: str | None = None, *, principal: str = "operator"
    ) -> dict[str, Any]:
        outcome = lifecycle.remove(self.ctx, skill_id, version, principal)
        return outcome.details

    def enable(
        self,
        skill_id: str,
        version: str | None = None,
        *,
        reason: str | None = None,
        approve_capabilities: bool = False,
        principal: str = "operator",
    ) -> dict[str, Any]:
        outcome = lifecycle.enable(
            self.ctx,
            skill_id,
            version,
            reason,
            principal,
            approve_capabilities=approve_capabilities,
        )
        return self._announced(outcome)

    def disable(
        self,
        skill_id: str,
        version: str | None = None,
        *,
        reason: str | None = None,
        principal: str = "operator",
    ) -> dict[str, Any]:
        outcome = lifecycle.disable(self.ctx, skill_id, version, reason, principal)
        return self._announced(outcome)

    def quarantine(
        self,
        skill_id: str,
        version: str | None = None,
        *,
        reason: str | None = None,
        principal: str = "operator",
    ) -> dict[str, Any]:
        outcome = lifecycle.quarantine(self.ctx, skill_id, version, reason, principal)
        return self._announced(outcome)

    def verify(
        self, skill_id: str, version: str | None = None, *, principal: str = "operator"
    ) -> dict[str, Any]:
        outcome = lifecycle.verify_installed(self.ctx, skill_id, version, principal)
        return {**self._announced(outcome), "result": outcome.details}

    def audit(
        self, skill_id: str, version: str | None = None, *, principal: str = "operator"
    ) -> dict[str, Any]:
        outcome = lifecycle.audit_installed(self.ctx, skill_id, version, principal)
        return {**self._announced(outcome), "result": outcome.details}

    def reaudit(self) -> dict[str, Any]:
        outcomes = lifecycle.reaudit_all(self.ctx)
        for outcome in outcomes:
            self._done(outcome)
        return {
            "audited": len(outcomes),
            "quarantined": [
                f"{o.record.skill_id} {o.record.version}"
                for o in outcomes
                if o.record is not None and o.events
            ],
        }

    # ---- skills: reading ----------------------------------------------------------------------
    def list_skills(self) -> dict[str, Any]:
        with self.ctx.store.read() as tx:
            records = tx.skill_versions()
        skills: dict[str, dict[str, Any]] = {}
        for record in records:
            entry = skills.setdefault(
                record.skill_id, {"skill_id": record.skill_id, "versions": []}
            )
            entry["versions"].append(self._entry(record))
        for entry in skills.values():
            current = next((v for v in entry["versions"] if v["current"]), entry["versions"][-1])
            entry.update(
                {
                    key: current[key]
                    for key in (
                        "name",
                        "publisher",
                        "status",
                        "status_reason",
                        "trust_decision",
                        "tools",
                        "missing_secrets",
                        "needs_secrets",
                    )
                }
            )
            entry["current_version"] = current["version"] if current["current"] else None
            entry["held_versions"] = [
                v["version"] for v in entry["versions"] if v["pending_capabilities"]
            ]
        rows = [skills[k] for k in sorted(skills)]
        return {"count": len(rows), "skills": rows}

    def info(self, skill_id: str, version: str | None = None) -> dict[str, Any]:
        with self.ctx.store.read() as tx:
            record = lifecycle.resolve_version(tx, skill_id, version)
            versions = [r.version for r in tx.skill_versions(skill_id)]
        body = self._entry(record)
        body["installed_versions"] = versions
        try:
            inspection = self.ctx.artifacts.load(record)
        except PalyraError as exc:
            body["artifact_error"] = exc.to_json()
            return body
        manifest = inspection.manifest
        body["manifest"] = manifest.to_json()
        body["capabilities"] = capability_grants_from_manifest(manifest).to_json()
        body["entries"] = sorted(inspection.entries)
        return body

    def check(self, skill_id: str | None = None, version: str | None = None) -> dict[str, Any]:
        """Verify and audit without changing anything; say what would block each skill."""
        with self.ctx.store.read() as tx:
            if skill_id is None:
                records = [r for r in tx.skill_versions() if r.current]
            else:
                records = [lifecycle.resolve_version(tx, skill_id, version)]
        results = []
        for record in records:
            reasons: list[str] = []
            audit_passed = False
            try:
                report = lifecycle.reverify(self.ctx, record)
                audit_passed = not report.should_quarantine
                reasons += [f"audit: {r}" for r in report.quarantine_reasons]
            except PalyraError as exc:
                reasons.append(f"verification failed: {exc.kind}: {exc.message}")
            if record.status.value != "active":
                reasons.append(f"status is {record.status.value}")
            entry = self._entry(record)
            blocked = bool(reasons)
            status = (
                "blocked" if blocked else "needs_secrets" if entry["needs_secrets"] else "ready"
            )
            if entry["needs_secrets"]:
                reasons.append("missing secrets: " + ", ".join(entry["missing_secrets"]))
            results.append(
                {
                    "skill_id": record.skill_id,
                    "version": record.version,
                    "check_status": status,
                    "status": record.status.value,
                    "audit_passed": audit_passed,
                    "reasons": reasons,
                }
            )
        return {"count": len(results), "results": results}

    # ---- running ------------------------------------------------------------------------------
    def run(
        self,
        skill_id: str,
        tool: str,
        input_value: Any = None,
        *,
        version: str | None = None,
        principal: str = "operator",
        origin: str = "cli",
        approval_timeout_s: float | None = None,
        on_approval_pending: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """One tool call through the runner; ``on_approval_pending`` hears (with the pending
        approval as JSON) when the call starts waiting for an operator."""
        request = CallRequest(
            skill_id=skill_id,
            tool=tool,
            input={} if input_value is None else input_value,
            version=version,
            principal=principal,
            origin=origin,
        )
        listener = None if on_approval_pending is None else _as_json(on_approval_pending)
        receipt = self.runner.call(
            request, approval_timeout_s=approval_timeout_s, on_approval_pending=listener
        )
        return receipt.to_json()

    # ---- approvals ----------------------------------------------------------------------------
    def list_approvals(self, state: str | None = "pending") -> dict[str, Any]:
        try:
            wanted = None if state in (None, "all") else ApprovalState(state)
        except ValueError:
            raise UsageError(
                f"unknown approval state '{state}' (pending, approved, denied, expired, all)"
            ) from None
        rows = [r.to_json() for r in self.approvals.list(wanted)]
        return {"count": len(rows), "approvals": rows}

    def decide_approval(
        self,
        approval_id: str,
        *,
        approve: bool,
        window_s: float | None = None,
        reason: str | None = None,
        principal: str = "operator",
    ) -> dict[str, Any]:
        record = self.approvals.decide(
            approval_id, approve=approve, principal=principal, window_s=window_s, reason=reason
        )
        return record.to_json()

    # ---- journal ------------------------------------------------------------------------------
    def journal(
        self, after_seq: int = 0, limit: int = 100, kind: str | None = None
    ) -> dict[str, Any]:
        if not 1 <= limit <= MAX_JOURNAL_PAGE:
            raise UsageError(f"limit must be 1..{MAX_JOURNAL_PAGE}")
        if not 0 <= after_seq < 2**63:
            raise UsageError("after must be 0..2^63-1")
        with self.ctx.store.read() as tx:
            events = tx.events(after_seq=after_seq, limit=limit, kind=kind)
        return {"count": len(events), "events": [e.to_json() for e in events]}

    def verify_journal(self) -> dict[str, Any]:
        return verify_chain(self.ctx.store.iter_events()).to_json()

    # ---- secrets ------------------------------------------------------------------------------
    def set_secret(
        self, scope: str, key: str, value: bytes, *, principal: str = "operator"
    ) -> dict[str, Any]:
        ref = secret_ref(scope, key)
        if not value:
            raise VaultError("a secret value must not be empty")
        with self.ctx.vault_edit() as vault:
            vault.stage(scope, key, value)
            self._commit_vault(vault, "secret.set", principal, ref)
        return {"secret": ref, "set": True}

    def list_secrets(self) -> dict[str, Any]:
        names = [f"{scope}/{key}" for scope, key in self.ctx.vault.names()]
        return {"count": len(names), "secrets": names}

    def delete_secret(self, scope: str, key: str, *, principal: str = "operator") -> dict[str, Any]:
        ref = secret_ref(scope, key)
        with self.ctx.vault_edit() as vault:
            if not vault.stage(scope, key, None):
                raise NotFoundError(f"no secret {ref}")
            self._commit_vault(vault, "secret.deleted", principal, ref)
        return {"secret": ref, "deleted": True}

    def _commit_vault(self, vault: EncryptedFileVault, kind: str, principal: str, ref: str) -> None:
        """Journal the staged vault (its digest ties the entry to the file), then commit it:
        the journal entry is the commit point (see ``lifecycle.recover_vault``)."""
        try:
            with self.ctx.store.write() as tx:
                tx.append_event(
                    kind, principal, {"secret": ref, "vault_sha256": vault.staged_digest()}
                )
        except BaseException:
            vault.discard_staged()
            raise
        vault.commit_staged()

    # ---- the generic palyra.plugin.run input --------------------------------------------------
    def plugin_run(
        self, request: Any, *, principal: str = "operator", origin: str = "cli"
    ) -> dict[str, Any]:
        from palyra.daemon.plugin_run import run_plugin

        return run_plugin(self.ctx, self.runner, request, principal=principal, origin=origin)

    # ---- plugin bindings ----------------------------------------------------------------------
    def list_plugins(self) -> dict[str, Any]:
        rows = [b.to_json() for b in bindings.list_plugins(self.ctx)]
        return {"count": len(rows), "plugins": rows}

    def bind_plugin(
        self,
        plugin_id: str,
        skill_id: str,
        tool: str,
        *,
        version: str | None = None,
        profile: dict[str, Any] | None = None,
        enabled: bool = True,
        notes: str | None = None,
        principal: str = "operator",
    ) -> dict[str, Any]:
        binding = bindings.bind_plugin(
            self.ctx,
            plugin_id,
            skill_id,
            tool,
            version=version,
            profile=None if profile is None else bindings.parse_profile(profile),
            enabled=enabled,
            notes=notes,
            principal=principal,
        )
        return bindings.check_plugin(self.ctx, binding.plugin_id)

    def unbind_plugin(self, plugin_id: str, *, principal: str = "operator") -> dict[str, Any]:
        return bindings.unbind_plugin(self.ctx, plugin_id, principal=principal).to_json()

    def set_plugin_enabled(
        self, plugin_id: str, enabled: bool, *, principal: str = "operator"
    ) -> dict[str, Any]:
        binding = bindings.set_plugin_enabled(self.ctx, plugin_id, enabled, principal=principal)
        return bindings.check_plugin(self.ctx, binding.plugin_id)

    def check_plugin(self, plugin_id: str) -> dict[str, Any]:
        return bindings.check_plugin(self.ctx, plugin_id)

    # ---- hooks --------------------------------------------------------------------------------
    def list_hooks(self, event: str | None = None) -> dict[str, Any]:
        rows = [h.to_json() for h in hooks.list_hooks(self.ctx, event)]
        return {"count": len(rows), "hooks": rows, "events": list(hooks.HOOK_EVENTS)}

    def bind_hook(
        self,
        hook_id: str,
        event: str,
        plugin_id: str,
        *,
        enabled: bool = True,
        principal: str = "operator",
    ) -> dict[str, Any]:
        binding = hooks.bind_hook(
            self.ctx, hook_id, event, plugin_id, enabled=enabled, principal=principal
        )
        return hooks.check_hook(self.ctx, binding.hook_id)

    def unbind_hook(self, hook_id: str, *, principal: str = "operator") -> dict[str, Any]:
        return hooks.unbind_hook(self.ctx, hook_id, principal=principal).to_json()

    def set_hook_enabled(
        self, hook_id: str, enabled: bool, *, principal: str = "operator"
    ) -> dict[str, Any]:
        binding = hooks.set_hook_enabled(self.ctx, hook_id, enabled, principal=principal)
        return hooks.check_hook(self.ctx, binding.hook_id)

    def check_hook(self, hook_id: str) -> dict[str, Any]:
        return hooks.check_hook(self.ctx, hook_id)

    def fire_hook(
        self, event: str, payload: Any = None, *, principal: str = "operator"
    ) -> dict[str, Any]:
        return self.hooks.fire(event, payload, principal=principal)


def _update_promise(skill_id: str | None) -> Promise | None:
    return None if skill_id is None else Promise(skill_id, None, None, None)


def _as_json(listener: Callable[[dict[str, Any]], None]) -> PendingListener:
    def announce(approval: ApprovalRecord) -> None:
        listener(approval.to_json())

    return announce
