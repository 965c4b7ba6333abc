"""Running installed tools: resolve → gate → validate → approve → run → receipt.

Order of a call, and why:
1. admission: a full queue answers ``overloaded`` at once instead of piling up threads;
2. resolve skill/version/tool and validate the input (an operator is never asked to approve
   a call that would be rejected anyway);
3. approval, for ``requires_approval``/``default_sensitive`` tools, holding no worker;
4. a worker slot and the skill's own slot (per-skill concurrency);
5. the status gate, checked *now* — a quarantine issued while the call waited stops it;
6. the sandboxed run with effective limits = min(manifest quota, policy) and effective
   grants = declared ∩ policy (∩ the plugin binding's profile);
7. the receipt: a ``tool.call`` journal event with digests, grants, egress, fuel, outcome.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from palyra.daemon.approvals import Approvals, PendingListener, input_digest
from palyra.daemon.context import ServiceContext
from palyra.daemon.errors import MissingSecrets, Overloaded, SkillNotActive, SkillNotInstalled
from palyra.daemon.lifecycle import resolve_version
from palyra.errors import PalyraError
from palyra.runtime import errors as rt_errors
from palyra.runtime.sandbox import CallResult
from palyra.runtime.tools import effective_grants, find_tool, run_tool
from palyra.skills.grants import CapabilityGrants
from palyra.skills.inspect import SkillInspection
from palyra.skills.schemas import schema_violations
from palyra.store.base import SkillStatus, SkillVersionRecord

WORKER_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class CallRequest:
    skill_id: str
    tool: str
    input: Any = field(default_factory=dict)
    version: str | None = None
    principal: str = "operator"
    origin: str = "cli"  # cli | http | mcp | hook | console
    requested: CapabilityGrants | None = None  # a plugin binding's narrowing
    quiet_hooks: bool = False  # hook runs do not fire tool hooks (no loops)


@dataclass(frozen=True)
class CallReceipt:
    skill_id: str
    version: str
    tool_id: str
    result: CallResult
    receipt_seq: int
    approval_id: str | None

    def to_json(self) -> dict[str, Any]:
        body = self.result.to_json()
        return {
            "skill_id": self.skill_id,
            "version": self.version,
            "tool_id": self.tool_id,
            "receipt_seq": self.receipt_seq,
            "approval_id": self.approval_id,
            **body,
        }


class Slots:
    """Admission (queue bound), workers and per-skill limits."""

    def __init__(self, workers: int, queue: int, per_skill: int) -> None:
        self._lock = threading.Lock()
        self._admitted = 0
        self._capacity = workers + queue
        self._workers = threading.BoundedSemaphore(workers)
        self._per_skill_limit = per_skill
        self._per_skill: dict[str, threading.BoundedSemaphore] = {}

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        with self._lock:
            if self._admitted >= self._capacity:
                raise Overloaded(
                    f"the runner is at capacity ({self._capacity} calls running or queued); "
                    "retry later"
                )
            self._admitted += 1
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1

    @contextlib.contextmanager
    def running(self, skill_id: str) -> Iterator[bool]:
        """Hold a worker and the skill's slot; yields whether getting them meant waiting."""
        with self._lock:
            skill = self._per_skill.setdefault(
                skill_id, threading.BoundedSemaphore(self._per_skill_limit)
            )
        waited = not self._workers.acquire(blocking=False)
        if waited and not self._workers.acquire(timeout=WORKER_WAIT_SECONDS):
            raise Overloaded(f"no worker became free within {WORKER_WAIT_SECONDS:g} s")
        try:
            if not skill.acquire(blocking=False):
                waited = True
                if not skill.acquire(timeout=WORKER_WAIT_SECONDS):
                    raise Overloaded(
                        f"{skill_id} already runs {self._per_skill_limit} calls; retry later"
                    )
            try:
                yield waited
            finally:
                skill.release()
        finally:
            self._workers.release()


class Runner:
    def __init__(self, ctx: ServiceContext, approvals: Approvals) -> None:
        self.ctx = ctx
        self.approvals = approvals
        cfg = ctx.config.runner
        self.slots = Slots(cfg.workers, cfg.queue, cfg.per_skill)
        # Failures _run already wrote a receipt for (identity set; cleared on the way out).
        self._journaled: weakref.WeakSet[BaseException] = weakref.WeakSet()

    def _record(self, request: CallRequest) -> SkillVersionRecord:
        with self.ctx.store.read() as tx:
            return resolve_version(tx, request.skill_id, request.version)

    @staticmethod
    def gate(record: SkillVersionRecord) -> None:
        if record.status is not SkillStatus.ACTIVE:
            reason = f" ({record.status_reason})" if record.status_reason else ""
            raise SkillNotActive(
                f"{record.skill_id} {record.version} is {record.status.value}{reason}",
                details={"status": record.status.value, "reason": record.status_reason},
            )

    def call(
        self,
        request: CallRequest,
        *,
        approval_timeout_s: float | None = None,
        on_approval_pending: PendingListener | None = None,
    ) -> CallReceipt:
        with self.slots.admitted():
            try:
                return self._admitted_call(request, approval_timeout_s, on_approval_pending)
            except PalyraError as exc:
                if exc in self._journaled:
                    self._journaled.discard(exc)
                    raise
                # Refused before it ran (not installed, not active, bad input, denied
                # approval…): still a call attempt the operator can see in the journal.
                self._journal(
                    request,
                    {
                        "skill_id": request.skill_id,
                        "version": request.version,
                        "tool_id": request.tool,
                        "input_sha256": input_digest(request.input),
                        "origin": request.origin,
                        "outcome": exc.kind,
                        "error": exc.message[:500],
                    },
                    kind="tool.rejected",
                )
                raise

    def _admitted_call(
        self,
        request: CallRequest,
        approval_timeout_s: float | None,
        on_approval_pending: PendingListener | None,
    ) -> CallReceipt:
        record = self._record(request)
        self.gate(record)
        inspection = self.ctx.artifacts.load(record)
        tool = find_tool(inspection.manifest, request.tool)
        violations = schema_violations(tool.input_schema, request.input)
        if violations:
            raise rt_errors.InvalidInput(
                f"input does not match {tool.id} input_schema: " + "; ".join(violations),
                details={"violations": violations},
            )
        approval_id = None
        if tool.risk.needs_approval and not self.approvals.window_open(record, tool.id):
            decided = self.approvals.wait_for_decision(
                record,
                tool.id,
                request.input,
                request.principal,
                approval_timeout_s or self.ctx.config.runner.approval_timeout_s,
                on_approval_pending,
            )
            approval_id = decided.approval_id
        # Tool hooks fire outside the slots: a hook's own call must not wait for the
        # worker its triggering call holds.
        event = {
            "skill_id": record.skill_id,
            "version": record.version,
            "tool_id": tool.id,
            "origin": request.origin,
            "input_sha256": input_digest(request.input),
        }
        if not request.quiet_hooks:
            self.ctx.fire("tool:before_call", event)
        try:
            with self.slots.running(record.skill_id) as waited:
                if waited or approval_id is not None:
                    record = self._reload(record)  # the status may have changed meanwhile
                    self.gate(record)
                receipt = self._run(request, record, tool.id, approval_id, inspection)
        except PalyraError as exc:
            if not request.quiet_hooks:
                self.ctx.fire("tool:after_call", {**event, "outcome": exc.kind})
            raise
        if not request.quiet_hooks:
            self.ctx.fire("tool:after_call", {**event, "outcome": "ok"})
        return receipt

    def _reload(self, record: SkillVersionRecord) -> SkillVersionRecord:
        """The same version, read again (not "current" again: that may have moved on)."""
        with self.ctx.store.read() as tx:
            fresh = tx.skill_version(record.skill_id, record.version)
        if fresh is None:
            raise SkillNotInstalled(f"{record.skill_id} {record.version} was removed")
        return fresh

    def _run(
        self,
        request: CallRequest,
        record: SkillVersionRecord,
        tool_id: str,
        approval_id: str | None,
        inspection: SkillInspection,
    ) -> CallReceipt:
        policy = self.ctx.config.policy
        base: dict[str, Any] = {
            "skill_id": record.skill_id,
            "version": record.version,
            "artifact_sha256": record.artifact_sha256,
            "payload_sha256": record.payload_sha256,
            "tool_id": tool_id,
            "input_sha256": input_digest(request.input),
            "origin": request.origin,
            "approval_id": approval_id,
        }
        started = time.monotonic()
        try:
            grants = effective_grants(inspection.manifest, policy, request.requested)
            base["grants"] = grants.to_json()
            result = run_tool(
                self.ctx.sandbox,
                inspection,
                tool_id,
                request.input,
                policy,
                requested=request.requested,
                input_checked=True,  # validated before approval, in _admitted_call
                grants=grants,
            )
        except PalyraError as exc:
            error = missing_secrets_error(exc) or exc
            details = error.details if isinstance(error.details, dict) else {}
            receipt = {
                **base,
                "outcome": error.kind,
                "error": error.message[:500],
                "fuel_used": details.get("fuel_used"),
                "duration_ms": round((time.monotonic() - started) * 1000, 3),
                "egress": egress_summary(details.get("egress", [])),
            }
            self._journal(request, receipt)
            self._journaled.add(error)
            if error is exc:
                raise
            raise error from None
        receipt = {
            **base,
            "outcome": "ok",
            "fuel_used": result.fuel_used,
            "duration_ms": round(result.duration_ms, 3),
            "egress": egress_summary(result.egress),
        }
        seq = self._journal(request, receipt)
        return CallReceipt(record.skill_id, record.version, tool_id, result, seq, approval_id)

    def _journal(
        self, request: CallRequest, receipt: dict[str, Any], kind: str = "tool.call"
    ) -> int:
        with self.ctx.store.write() as tx:
            return tx.append_event(kind, request.principal, receipt).seq


def egress_summary(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Destinations and decisions only: a URL's path and query are the guest's data."""
    from urllib.parse import urlsplit

    summary = []
    for record in records[:64]:
        url = str(record.get("url", ""))
        try:
            parts = urlsplit(url)
            destination = f"{parts.scheme}://{parts.hostname}" + (
                f":{parts.port}" if parts.port else ""
            )
        except ValueError:
            destination = "(unparsable)"
        summary.append(
            {
                "destination": destination,
                "method": record.get("method"),
                "decision": record.get("decision"),
                "status": record.get("status"),
            }
        )
    return summary


def missing_secrets_error(exc: PalyraError) -> PalyraError | None:
    missing = exc.details.get("missing_secrets") if isinstance(exc.details, dict) else None
    if not missing:
        return None
    names = ", ".join(missing)
    first_scope, _, first_key = missing[0].rpartition("/")
    return MissingSecrets(
        f"the tool needs secret(s) that are not set: {names} "
        f"(set with: palyra secrets set {first_scope} {first_key})",
        details={"missing_secrets": missing, "cause": exc.kind},
    )
