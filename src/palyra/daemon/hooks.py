"""Hooks: run a plugin when something happens (design.md §5).

A hook binding names an event and a plugin binding. When the event fires (a committed state
change announced through ``ctx.fire``, or an operator's ``palyra hooks fire``), every enabled
hook bound to it runs its plugin's tool through the one runner — same gate, limits, grants and
receipts as any other call — with input ``{"event": <name>, "payload": <event payload>}``.

Rules (fixing the reference's gaps, runtime.md §5 and §11):
- dispatch is synchronous in the firing thread, after the change committed, hook by hook; a
  hook's failure (plugin gone or disabled, skill missing or inactive, bad input, a tool error,
  anything) is journaled as ``hook.failed`` and the next hook runs — nothing propagates to the
  action that fired the event;
- the payload reaches the plugin (the reference never delivered it);
- no self-triggering: hook runs are ``quiet_hooks`` (no ``tool:*`` events), and a per-context
  stack of running hooks means an event fired while a hook runs never dispatches that same hook
  again, and nesting deeper than :data:`MAX_HOOK_DEPTH` is refused (journaled);
- an approval-gated tool runs only inside an open approval window: a hook never blocks the
  firing action waiting for an operator.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import time
from dataclasses import dataclass, replace
from typing import Any

from palyra.daemon.bindings import (
    call_grants,
    check_plugin,
    find_tool,
    normalize_id,
    normalize_principal,
)
from palyra.daemon.context import ServiceContext
from palyra.daemon.errors import SkillNotActive
from palyra.daemon.lifecycle import resolve_version
from palyra.daemon.runner import CallRequest, Runner
from palyra.errors import NotFoundError, PalyraError, UsageError
from palyra.store.base import HookBinding, PluginBinding, SkillStatus
from palyra.store.sql import now_ms
from palyra.version import PRODUCT_VERSION

HOOK_EVENTS: tuple[str, ...] = (
    "gateway:startup",
    "skill:installed",
    "skill:enabled",
    "skill:disabled",
    "skill:quarantined",
    "tool:before_call",
    "tool:after_call",
)
HOOK_PRINCIPAL = "system:hooks"
MAX_HOOK_DEPTH = 2  # a hook's run may cause one more level of hooks, never a third
# A gated tool runs only in an open window; this covers a window closing mid-dispatch.
APPROVAL_RACE_TIMEOUT_S = 1.0
MAX_MESSAGE_CHARS = 500

# Hook ids running in this thread/context, outermost first.
_RUNNING: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "palyra_hooks_running", default=()
)


class UnknownHookEvent(UsageError):
    kind = "unknown_hook_event"


class PluginDisabled(PalyraError):
    kind = "plugin_disabled"


class HookApprovalRequired(PalyraError):
    """The hook's tool needs approval and no approval window is open."""

    kind = "approval_required"


class HookRecursion(PalyraError):
    """An event fired by a hook's own run would dispatch that hook again."""

    kind = "hook_recursion"


class HookDepthExceeded(PalyraError):
    kind = "hook_depth_exceeded"


def normalize_event(raw: object) -> str:
    """Case and whitespace are ignored (``" Skill:Installed "``); anything else is refused."""
    if not isinstance(raw, str):
        raise UnknownHookEvent(f"hook event must be a string (one of {', '.join(HOOK_EVENTS)})")
    value = "".join(raw.split()).lower()
    if value not in HOOK_EVENTS:
        shown = raw if len(raw) <= 80 else raw[:79] + "…"
        raise UnknownHookEvent(
            f"unsupported hook event {shown!r} (one of {', '.join(HOOK_EVENTS)})",
            details={"events": list(HOOK_EVENTS)},
        )
    return value


def _not_found(hook_id: str) -> NotFoundError:
    return NotFoundError(f"hook binding not found: {hook_id}")


# ---- bindings -----------------------------------------------------------------------------


def bind_hook(
    ctx: ServiceContext,
    hook_id: str,
    event: str,
    plugin_id: str,
    *,
    enabled: bool = True,
    principal: str,
) -> HookBinding:
    """Create or replace a hook (``created_at`` kept); the plugin binding must exist (it need
    not be enabled). Journals ``hook.bound``."""
    hid = normalize_id("hook_id", hook_id)
    name = normalize_event(event)
    pid = normalize_id("plugin_id", plugin_id)
    if not isinstance(enabled, bool):
        raise UsageError("enabled must be true or false")
    actor = normalize_principal(principal)
    at = now_ms()
    with ctx.store.write() as tx:
        if tx.plugin(pid) is None:
            raise NotFoundError(f"plugin binding not found: {pid} (bind the plugin first)")
        existing = tx.hook(hid)
        binding = HookBinding(
            hook_id=hid,
            event=name,
            plugin_id=pid,
            enabled=enabled,
            created_at_ms=existing.created_at_ms if existing is not None else at,
            updated_at_ms=at,
        )
        tx.upsert_hook(binding)
        tx.append_event(
            "hook.bound",
            actor,
            {
                "hook_id": hid,
                "event": name,
                "plugin_id": pid,
                "enabled": enabled,
                "replaced": existing is not None,
            },
        )
    return binding


def unbind_hook(ctx: ServiceContext, hook_id: str, *, principal: str) -> HookBinding:
    hid = normalize_id("hook_id", hook_id)
    actor = normalize_principal(principal)
    with ctx.store.write() as tx:
        binding = tx.hook(hid)
        if binding is None:
            raise _not_found(hid)
        tx.delete_hook(hid)
        tx.append_event(
            "hook.unbound",
            actor,
            {"hook_id": hid, "event": binding.event, "plugin_id": binding.plugin_id},
        )
    return binding


def set_hook_enabled(
    ctx: ServiceContext, hook_id: str, enabled: bool, *, principal: str
) -> HookBinding:
    """Journals ``hook.enabled``/``hook.disabled``; nothing is written when unchanged."""
    hid = normalize_id("hook_id", hook_id)
    if not isinstance(enabled, bool):
        raise UsageError("enabled must be true or false")
    actor = normalize_principal(principal)
    with ctx.store.write() as tx:
        binding = tx.hook(hid)
        if binding is None:
            raise _not_found(hid)
        if binding.enabled == enabled:
            return binding
        updated = replace(binding, enabled=enabled, updated_at_ms=now_ms())
        tx.upsert_hook(updated)
        tx.append_event(
            "hook.enabled" if enabled else "hook.disabled",
            actor,
            {"hook_id": hid, "event": binding.event, "plugin_id": binding.plugin_id},
        )
    return updated


def list_hooks(ctx: ServiceContext, event: str | None = None) -> list[HookBinding]:
    """Every hook (ordered by hook_id), or those bound to one event."""
    wanted = None if event is None else normalize_event(event)
    with ctx.store.read() as tx:
        hooks = tx.hooks()
    return [h for h in hooks if wanted is None or h.event == wanted]


def get_hook(ctx: ServiceContext, hook_id: str) -> HookBinding:
    hid = normalize_id("hook_id", hook_id)
    with ctx.store.read() as tx:
        binding = tx.hook(hid)
    if binding is None:
        raise _not_found(hid)
    return binding


def check_hook(ctx: ServiceContext, hook_id: str) -> dict[str, Any]:
    """``{hook_id, ready, reasons, hook, plugin}`` where ``plugin`` is the plugin's check
    (``null`` when the binding is gone). Writes nothing."""
    binding = get_hook(ctx, hook_id)
    reasons: list[str] = []
    if not binding.enabled:
        reasons.append("hook binding is disabled")
    plugin: dict[str, Any] | None = None
    try:
        plugin = check_plugin(ctx, binding.plugin_id)
    except NotFoundError as exc:
        reasons.append(exc.message)
    else:
        reasons.extend(f"plugin {binding.plugin_id}: {r}" for r in plugin["reasons"])
    return {
        "hook_id": binding.hook_id,
        "ready": not reasons,
        "reasons": reasons,
        "hook": binding.to_json(),
        "plugin": plugin,
    }


# ---- dispatch -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HookOutcome:
    hook_id: str
    plugin_id: str
    event: str
    ok: bool
    kind: str | None = None
    message: str | None = None
    receipt_seq: int | None = None
    fuel_used: int | None = None
    duration_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"hook_id": self.hook_id, "plugin_id": self.plugin_id, "ok": self.ok}
        if self.ok:
            body.update(
                receipt_seq=self.receipt_seq,
                fuel_used=self.fuel_used,
                duration_ms=self.duration_ms,
            )
        else:
            body.update(kind=self.kind, message=self.message)
        return body


def _json_safe(payload: Any) -> Any:
    """The payload as plain JSON (a stray non-JSON value becomes its string form)."""
    return json.loads(json.dumps(payload, default=str, ensure_ascii=False))


def startup_payload() -> dict[str, Any]:
    return {"source": "gateway.startup", "palyra_version": PRODUCT_VERSION, "at_ms": now_ms()}


class HookDispatcher:
    """Runs hooks for events; install it once per service (``ctx.listeners``)."""

    # Bindings changed by another process are seen within this many seconds; changes made
    # through this process are seen at once (the store's bindings_generation).
    CACHE_SECONDS = 1.0

    def __init__(self, ctx: ServiceContext, runner: Runner) -> None:
        self.ctx = ctx
        self.runner = runner
        self._cache: tuple[int, float, list[HookBinding], dict[str, PluginBinding]] | None = None

    def _bindings(self) -> tuple[list[HookBinding], dict[str, PluginBinding]]:
        """Every call fires two events; reading both tables each time was most of a small
        call's database work."""
        generation = self.ctx.store.bindings_generation
        now = time.monotonic()
        cached = self._cache
        if cached is not None and cached[0] == generation and now - cached[1] < self.CACHE_SECONDS:
            return cached[2], cached[3]
        with self.ctx.store.read() as tx:
            hooks = tx.hooks()
            plugins = {p.plugin_id: p for p in tx.plugins()} if hooks else {}
        self._cache = (generation, now, hooks, plugins)
        return hooks, plugins

    def install(self) -> HookDispatcher:
        if self.on_event not in self.ctx.listeners:
            self.ctx.listeners.append(self.on_event)
        return self

    def uninstall(self) -> None:
        with contextlib.suppress(ValueError):
            self.ctx.listeners.remove(self.on_event)

    def on_event(self, event: str, payload: dict[str, Any]) -> None:
        """The listener: never raises, whatever happens."""
        with contextlib.suppress(Exception):
            self.dispatch(event, payload)

    def dispatch(self, event: str, payload: Any) -> list[HookOutcome]:
        """Run every enabled hook bound to ``event``, in hook_id order, each isolated.

        An event no hook can bind (not in :data:`HOOK_EVENTS`) dispatches nothing. Raises only
        when the hook list itself cannot be read.
        """
        try:
            name = normalize_event(event)
        except UnknownHookEvent:
            return []
        every_hook, plugins = self._bindings()
        hooks = [h for h in every_hook if h.enabled and h.event == name]
        if not hooks:
            return []
        try:
            body = _json_safe(payload)
        except (TypeError, ValueError):  # a circular structure, say
            body = {"unserializable": True}
        return [self._run_one(hook, plugins.get(hook.plugin_id), name, body) for hook in hooks]

    def fire(
        self, event: str, payload: Any = None, *, principal: str = "operator"
    ) -> dict[str, Any]:
        """Operator-triggered dispatch: ``{event, dispatched: [outcome...]}``.

        The request itself is journaled (``hook.fired``) before the hooks run.
        """
        name = normalize_event(event)
        actor = normalize_principal(principal)
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            raise UsageError("hook payload must be a JSON object")
        try:
            body = _json_safe(payload)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"hook payload is not JSON: {exc}") from None
        with self.ctx.store.write() as tx:
            tx.append_event("hook.fired", actor, {"event": name})
        outcomes = self.dispatch(name, body)
        return {"event": name, "dispatched": [o.to_json() for o in outcomes]}

    def announce_startup(self) -> None:
        """Fire ``gateway:startup`` to every listener (the daemon calls this once)."""
        self.ctx.fire("gateway:startup", startup_payload())

    # ---- one hook -------------------------------------------------------------------------
    def _run_one(
        self, hook: HookBinding, plugin: PluginBinding | None, event: str, payload: Any
    ) -> HookOutcome:
        stack = _RUNNING.get()
        outcome: HookOutcome
        if hook.hook_id in stack:
            outcome = self._failure(
                hook,
                event,
                HookRecursion(
                    f"hook {hook.hook_id} is already running ({' > '.join(stack)}); "
                    "a hook never re-triggers itself"
                ),
            )
        elif len(stack) >= MAX_HOOK_DEPTH:
            outcome = self._failure(
                hook,
                event,
                HookDepthExceeded(
                    f"hooks nest at most {MAX_HOOK_DEPTH} deep ({' > '.join(stack)})"
                ),
            )
        else:
            token = _RUNNING.set((*stack, hook.hook_id))
            try:
                outcome = self._execute(hook, plugin, event, payload)
            except PalyraError as exc:
                outcome = self._failure(hook, event, exc)
            except Exception as exc:  # a hook failure never reaches the firing action
                outcome = self._failure(hook, event, PalyraError(f"{type(exc).__name__}: {exc}"))
            finally:
                _RUNNING.reset(token)
        self._journal(outcome)
        return outcome

    def _execute(
        self, hook: HookBinding, plugin: PluginBinding | None, event: str, payload: Any
    ) -> HookOutcome:
        if plugin is None:
            raise NotFoundError(f"plugin binding not found: {hook.plugin_id}")
        if not plugin.enabled:
            raise PluginDisabled(f"plugin binding {plugin.plugin_id} is disabled")
        with self.ctx.store.read() as tx:
            record = resolve_version(tx, plugin.skill_id, plugin.skill_version)
        if record.status is not SkillStatus.ACTIVE:
            why = f" ({record.status_reason})" if record.status_reason else ""
            raise SkillNotActive(
                f"{record.skill_id} {record.version} is {record.status.value}{why}",
                details={"status": record.status.value},
            )
        manifest = self.ctx.artifacts.load(record).manifest
        tool = find_tool(manifest, plugin.tool_id)
        if tool.risk.needs_approval and not self.runner.approvals.window_open(record, tool.id):
            raise HookApprovalRequired(
                f"tool {tool.id} requires approval and no approval window is open "
                f"for {record.skill_id} {record.version}"
            )
        request = CallRequest(
            skill_id=record.skill_id,
            tool=tool.id,
            input={"event": event, "payload": payload},
            version=record.version,  # the version the grants were computed for
            principal=HOOK_PRINCIPAL,
            origin="hook",
            requested=call_grants(plugin, manifest, self.ctx.config.policy),
            quiet_hooks=True,
        )
        receipt = self.runner.call(request, approval_timeout_s=APPROVAL_RACE_TIMEOUT_S)
        return HookOutcome(
            hook_id=hook.hook_id,
            plugin_id=plugin.plugin_id,
            event=event,
            ok=True,
            receipt_seq=receipt.receipt_seq,
            fuel_used=receipt.result.fuel_used,
            duration_ms=round(receipt.result.duration_ms, 3),
        )

    @staticmethod
    def _failure(hook: HookBinding, event: str, exc: PalyraError) -> HookOutcome:
        message = exc.message
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 1] + "…"
        return HookOutcome(
            hook_id=hook.hook_id,
            plugin_id=hook.plugin_id,
            event=event,
            ok=False,
            kind=exc.kind,
            message=message,
        )

    def _journal(self, outcome: HookOutcome) -> None:
        base = {"hook_id": outcome.hook_id, "plugin_id": outcome.plugin_id, "event": outcome.event}
        if outcome.ok:
            kind = "hook.run"
            payload = {
                **base,
                "receipt_seq": outcome.receipt_seq,
                "fuel_used": outcome.fuel_used,
                "duration_ms": outcome.duration_ms,
            }
        else:
            kind = "hook.failed"
            payload = {**base, "kind": outcome.kind, "message": outcome.message}
        with contextlib.suppress(Exception), self.ctx.store.write() as tx:
            tx.append_event(kind, HOOK_PRINCIPAL, payload)


__all__ = [
    "HOOK_EVENTS",
    "HOOK_PRINCIPAL",
    "MAX_HOOK_DEPTH",
    "HookApprovalRequired",
    "HookDepthExceeded",
    "HookDispatcher",
    "HookOutcome",
    "HookRecursion",
    "PluginDisabled",
    "UnknownHookEvent",
    "bind_hook",
    "check_hook",
    "get_hook",
    "list_hooks",
    "normalize_event",
    "set_hook_enabled",
    "startup_payload",
    "unbind_hook",
]
