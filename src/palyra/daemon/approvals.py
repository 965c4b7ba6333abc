"""Operator approval for sensitive tools: approve once, approve for a time window, or deny.

A call that needs approval writes a pending request and waits — without holding a worker —
until an operator decides or the timeout passes. Decisions may come from this process (the
HTTP API wakes the waiter at once) or another one sharing the database (a local ``palyra
approvals approve``), which the waiter sees on its next poll.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from palyra.daemon.context import ServiceContext
from palyra.daemon.errors import ApprovalDenied, ApprovalTimeout, Conflict
from palyra.errors import NotFoundError, UsageError
from palyra.store.base import ApprovalRecord, ApprovalState, SkillVersionRecord
from palyra.store.sql import now_ms

POLL_SECONDS = 0.2
PREVIEW_CHARS = 400
MAX_WINDOW_SECONDS = 7 * 24 * 3600

PendingListener = Callable[[ApprovalRecord], None]


def input_digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _preview(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


class Approvals:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._changed = threading.Condition()

    def window_open(self, record: SkillVersionRecord, tool_id: str) -> bool:
        with self.ctx.store.read() as tx:
            until = tx.approval_window(record.skill_id, record.version, tool_id)
        return until is not None and until > now_ms()

    def wait_for_decision(
        self,
        record: SkillVersionRecord,
        tool_id: str,
        input_value: Any,
        principal: str,
        timeout_s: float,
        on_pending: PendingListener | None = None,
    ) -> ApprovalRecord:
        """Block until approved (returns the record), denied or timed out (typed errors).

        ``on_pending`` hears of the request once it is committed (so a face can tell its
        caller what it waits for, e.g. MCP progress); it must not raise or block."""
        at = now_ms()
        request = ApprovalRecord(
            approval_id=uuid.uuid4().hex,
            skill_id=record.skill_id,
            version=record.version,
            tool_id=tool_id,
            input_sha256=input_digest(input_value),
            input_preview=_preview(input_value),
            requested_by=principal,
            requested_at_ms=at,
            expires_at_ms=at + int(timeout_s * 1000),
            state=ApprovalState.PENDING,
        )
        with self.ctx.store.write() as tx:
            tx.insert_approval(request)
            tx.append_event("approval.requested", principal, request.to_json())
        if on_pending is not None:
            on_pending(request)
        deadline = time.monotonic() + timeout_s
        while True:
            with self.ctx.store.read() as tx:
                current = tx.approval(request.approval_id)
            assert current is not None
            if current.state is ApprovalState.APPROVED:
                return current
            if current.state is ApprovalState.DENIED:
                reason = f": {current.reason}" if current.reason else ""
                raise ApprovalDenied(
                    f"{current.decided_by} denied {tool_id} ({request.approval_id}){reason}",
                    details={"approval_id": request.approval_id},
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with self._changed:
                self._changed.wait(min(POLL_SECONDS, remaining))
        with self.ctx.store.write() as tx:  # expire it, unless a decision just landed
            current = tx.approval(request.approval_id)
            assert current is not None
            if current.state is ApprovalState.PENDING:
                tx.decide_approval(
                    request.approval_id,
                    ApprovalState.EXPIRED,
                    "system:daemon",
                    now_ms(),
                    None,
                    None,
                )
                tx.append_event(
                    "approval.expired", "system:daemon", {"approval_id": request.approval_id}
                )
        if current.state is ApprovalState.APPROVED:
            return current
        if current.state is ApprovalState.DENIED:
            raise ApprovalDenied(
                f"{current.decided_by} denied {tool_id} ({request.approval_id})",
                details={"approval_id": request.approval_id},
            )
        raise ApprovalTimeout(
            f"no operator decided on {tool_id} within {timeout_s:g} s ({request.approval_id})",
            details={"approval_id": request.approval_id},
        )

    def decide(
        self,
        approval_id: str,
        *,
        approve: bool,
        principal: str,
        window_s: float | None = None,
        reason: str | None = None,
    ) -> ApprovalRecord:
        if window_s is not None and not 0 < window_s <= MAX_WINDOW_SECONDS:
            raise UsageError(f"an approval window must be 1..{MAX_WINDOW_SECONDS} seconds")
        if window_s is not None and not approve:
            raise UsageError("a time window only applies to an approval")
        at = now_ms()
        with self.ctx.store.write() as tx:
            current = tx.approval(approval_id)
            if current is None:
                raise NotFoundError(f"no approval request {approval_id}")
            if current.state is not ApprovalState.PENDING:
                raise Conflict(f"approval request {approval_id} is already {current.state.value}")
            state = ApprovalState.APPROVED if approve else ApprovalState.DENIED
            until = None if window_s is None else at + int(window_s * 1000)
            tx.decide_approval(approval_id, state, principal, at, until, reason)
            if until is not None:
                tx.set_approval_window(
                    current.skill_id, current.version, current.tool_id, until, principal
                )
            decided = tx.approval(approval_id)
            assert decided is not None
            tx.append_event("approval.decided", principal, decided.to_json())
        with self._changed:
            self._changed.notify_all()
        return decided

    def list(self, state: ApprovalState | None = None) -> list[ApprovalRecord]:
        with self.ctx.store.read() as tx:
            return tx.approvals(state)
