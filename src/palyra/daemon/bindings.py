"""Plugin bindings: an operator's named use of one tool of one installed skill.

A binding says "plugin ``<id>`` runs tool ``<tool>`` of skill ``<skill>`` (at ``<version>``,
or whatever version is current) with this capability profile". Hooks run plugins; the
profile is what such a run may use, a narrowing of what the skill declares.

Fixes over the reference (runtime.md §4 and §11):
- one database transaction per change, with its journal event in the same transaction
  (no non-atomic JSON index, no orphan files);
- reads (list, get, check) never write anything;
- a profile that grants more than the skill declares is refused with the extras listed,
  never trimmed and never silently accepted;
- one capability vocabulary: the runner's (scoped secrets ``<scope>/<key>``, channels from
  ``channel:<name>`` node capabilities, read-only storage roots included);
- the diff reports each value once: ``excess_grant`` (granted, not declared),
  ``unused_declared_capability`` (declared, not granted) and ``policy_restricted``
  (granted and declared, but the operator's runtime policy withholds it);
- ids are normalised the same way everywhere, so a case variant cannot dodge the "still
  referenced by a hook" check.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from palyra.daemon.context import ServiceContext
from palyra.daemon.errors import Conflict, SkillNotInstalled
from palyra.daemon.lifecycle import absent_secrets, resolve_version
from palyra.errors import NotFoundError, PalyraError, UsageError
from palyra.runtime import errors as rt_errors
from palyra.runtime.tools import RuntimePolicy, effective_grants
from palyra.runtime.tools import find_tool as runtime_find_tool
from palyra.skills.grants import CapabilityGrants, SecretGrant, capability_grants_from_manifest
from palyra.skills.manifest import SkillManifest, Tool
from palyra.store.base import CapabilityProfile, PluginBinding, SkillStatus, SkillVersionRecord
from palyra.store.sql import now_ms

ID_MAX_BYTES = 128
NOTES_MAX_CHARS = 2000
PRINCIPAL_MAX_CHARS = 200
PROFILE_MAX_ENTRIES = 256  # per capability kind
PROFILE_ENTRY_MAX_CHARS = 512

CAPABILITY_KINDS: tuple[str, ...] = ("http_hosts", "secrets", "storage_prefixes", "channels")

_ID = re.compile(r"[a-z0-9._-]+")
_SKILL_ID = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
_TOKEN = re.compile(r"[^\s\x00-\x1f\x7f]+")

DIFF_MESSAGES = {
    "excess_grant": "the binding grants a capability the skill does not declare",
    "unused_declared_capability": "declared capability is unused because the binding omits it",
    "policy_restricted": "granted capability is withheld by the operator's runtime policy",
}


class CapabilityNotDeclared(UsageError):
    """A capability profile grants something the skill's manifest does not declare."""

    kind = "capability_not_declared"


# ---- normalisation ------------------------------------------------------------------------


def normalize_id(field: str, raw: object) -> str:
    """Trimmed and lower-cased; 1..128 bytes of ``[a-z0-9._-]``."""
    if not isinstance(raw, str):
        raise UsageError(f"{field} must be a string")
    value = raw.strip().lower()
    if not value:
        raise UsageError(f"{field} cannot be empty")
    if len(value.encode("utf-8")) > ID_MAX_BYTES:
        raise UsageError(f"{field} must be at most {ID_MAX_BYTES} bytes")
    if not _ID.fullmatch(value):
        raise UsageError(f"{field} must use only a-z, 0-9, '.', '_' or '-' (got {raw!r})")
    return value


def normalize_skill_id(raw: object) -> str:
    if not isinstance(raw, str):
        raise UsageError("skill_id must be a string")
    value = raw.strip().lower()
    if not value:
        raise UsageError("skill_id cannot be empty")
    if len(value.encode("utf-8")) > ID_MAX_BYTES or not _SKILL_ID.fullmatch(value):
        raise UsageError(
            f"skill_id must be dot-separated [a-z0-9_-] segments, at most {ID_MAX_BYTES} bytes "
            f"(got {raw!r})"
        )
    return value


def normalize_principal(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise UsageError("principal must be a non-empty string")
    value = raw.strip()
    if len(value) > PRINCIPAL_MAX_CHARS or not _TOKEN.fullmatch(value.replace(" ", "_")):
        raise UsageError(f"principal must be one line of at most {PRINCIPAL_MAX_CHARS} characters")
    return value


def _version(raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise UsageError("version must be a string")
    value = raw.strip()
    if not value:
        return None
    if len(value) > ID_MAX_BYTES or not _TOKEN.fullmatch(value):
        raise UsageError(f"invalid version {raw!r}")
    return value


def _notes(raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise UsageError("notes must be a string")
    value = raw.strip()
    if len(value) > NOTES_MAX_CHARS:
        raise UsageError(f"notes must be at most {NOTES_MAX_CHARS} characters")
    return value or None


def _flag(field: str, raw: object) -> bool:
    if not isinstance(raw, bool):
        raise UsageError(f"{field} must be true or false")
    return raw


def _entry(kind: str, raw: object) -> str:
    if not isinstance(raw, str):
        raise UsageError(f"capability_profile.{kind} entries must be strings")
    value = raw.strip()
    if not value:
        raise UsageError(f"capability_profile.{kind} has an empty entry")
    if len(value) > PROFILE_ENTRY_MAX_CHARS or not _TOKEN.fullmatch(value):
        raise UsageError(f"invalid {kind} capability {raw!r}")
    if kind == "http_hosts":
        value = value.lower().rstrip(".")
        if not value:
            raise UsageError(f"invalid http_hosts capability {raw!r}")
    elif kind == "secrets":
        scope, _, key = value.rpartition("/")
        if not scope or not key:
            raise UsageError(f"invalid secrets capability {raw!r} (expected '<scope>/<key>')")
    return value


def normalize_profile(profile: CapabilityProfile) -> CapabilityProfile:
    """Each list trimmed, checked, de-duplicated and sorted (hosts lower-cased)."""
    lists: dict[str, tuple[str, ...]] = {}
    for kind in CAPABILITY_KINDS:
        values = getattr(profile, kind)
        if isinstance(values, str) or not isinstance(values, Iterable):
            raise UsageError(f"capability_profile.{kind} must be a list of strings")
        entries = list(values)
        if len(entries) > PROFILE_MAX_ENTRIES:
            raise UsageError(
                f"capability_profile.{kind} has more than {PROFILE_MAX_ENTRIES} entries"
            )
        lists[kind] = tuple(sorted({_entry(kind, item) for item in entries}))
    return CapabilityProfile(**lists)


def parse_profile(value: object) -> CapabilityProfile:
    """A capability profile from JSON (HTTP body, CLI file): an object of string lists."""
    if not isinstance(value, dict):
        raise UsageError("capability_profile must be an object")
    unknown = sorted(str(k) for k in value if k not in CAPABILITY_KINDS)
    if unknown:
        raise UsageError(
            f"capability_profile has unknown key(s) {', '.join(unknown)} "
            f"(known: {', '.join(CAPABILITY_KINDS)})"
        )
    lists: dict[str, tuple[str, ...]] = {}
    for kind in CAPABILITY_KINDS:
        items = value.get(kind, [])
        if not isinstance(items, list):
            raise UsageError(f"capability_profile.{kind} must be a list of strings")
        lists[kind] = tuple(_entry(kind, item) for item in items)
    return normalize_profile(CapabilityProfile(**lists))


# ---- capability vocabulary ----------------------------------------------------------------


def declared_profile(declared: CapabilityGrants) -> CapabilityProfile:
    """What a skill declares, as a profile (storage = read-write and read-only roots)."""
    return CapabilityProfile(
        http_hosts=tuple(sorted(declared.http_hosts)),
        secrets=tuple(sorted(declared.secret_keys)),
        storage_prefixes=tuple(
            sorted({*declared.storage_prefixes, *declared.storage_read_prefixes})
        ),
        channels=tuple(sorted(declared.channels)),
    )


def _policy_profile(manifest: SkillManifest, policy: RuntimePolicy) -> CapabilityProfile:
    """Declared ∩ policy: what any call of this skill may reach under the current policy."""
    allowed = effective_grants(manifest, policy)
    return CapabilityProfile(
        http_hosts=tuple(sorted(allowed.http_hosts)),
        secrets=tuple(sorted(f"{scope}/{key}" for scope, key in allowed.secrets)),
        storage_prefixes=tuple(sorted({*allowed.storage_write, *allowed.storage_read})),
        channels=tuple(sorted(allowed.channels)),
    )


def _minus(left: CapabilityProfile, right: CapabilityProfile) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for kind in CAPABILITY_KINDS:
        extra = sorted(set(getattr(left, kind)) - set(getattr(right, kind)))
        if extra:
            out[kind] = extra
    return out


def _intersect(*profiles: CapabilityProfile) -> CapabilityProfile:
    lists: dict[str, tuple[str, ...]] = {}
    for kind in CAPABILITY_KINDS:
        common = set(getattr(profiles[0], kind))
        for other in profiles[1:]:
            common &= set(getattr(other, kind))
        lists[kind] = tuple(sorted(common))
    return CapabilityProfile(**lists)


def _secret_grant(ref: str) -> SecretGrant:
    scope, _, key = ref.rpartition("/")
    return SecretGrant(scope, key)


def profile_grants(
    binding: PluginBinding, declared: CapabilityGrants | None = None
) -> CapabilityGrants:
    """The binding's profile as the runner's ``requested`` narrowing.

    Storage prefixes that ``declared`` lists as read-only become read requests; without
    ``declared`` every storage prefix is requested read-write. Nothing is dropped: an entry
    the skill does not declare (say, after an update removed it) makes the runner refuse
    the call with ``capability_denied`` instead of running with a different set.
    """
    profile = binding.profile
    read_only = set(declared.storage_read_prefixes) if declared is not None else set()
    return CapabilityGrants(
        http_hosts=tuple(profile.http_hosts),
        secrets=tuple(sorted(_secret_grant(ref) for ref in profile.secrets)),
        storage_prefixes=tuple(p for p in profile.storage_prefixes if p not in read_only),
        storage_read_prefixes=tuple(p for p in profile.storage_prefixes if p in read_only),
        channels=tuple(profile.channels),
    )


def call_grants(
    binding: PluginBinding, manifest: SkillManifest, policy: RuntimePolicy
) -> CapabilityGrants:
    """What a run of this plugin requests: profile ∩ policy (policy-withheld values are
    left out, as for every other call; undeclared values stay so the runner refuses)."""
    requested = profile_grants(binding, capability_grants_from_manifest(manifest))
    withheld = _minus(
        _intersect(binding.profile, declared_profile(capability_grants_from_manifest(manifest))),
        _policy_profile(manifest, policy),
    )
    hosts = set(withheld.get("http_hosts", ()))
    secrets = set(withheld.get("secrets", ()))
    storage = set(withheld.get("storage_prefixes", ()))
    channels = set(withheld.get("channels", ()))
    return CapabilityGrants(
        http_hosts=tuple(h for h in requested.http_hosts if h not in hosts),
        secrets=tuple(s for s in requested.secrets if str(s) not in secrets),
        storage_prefixes=tuple(p for p in requested.storage_prefixes if p not in storage),
        storage_read_prefixes=tuple(p for p in requested.storage_read_prefixes if p not in storage),
        channels=tuple(c for c in requested.channels if c not in channels),
    )


def capability_diff(
    manifest: SkillManifest, granted: CapabilityProfile, policy: RuntimePolicy
) -> dict[str, Any]:
    """``{valid, declared, granted, effective, entries}``.

    effective = declared ∩ granted ∩ policy; ``valid`` = no excess_grant.
    """
    declared = declared_profile(capability_grants_from_manifest(manifest))
    allowed = _policy_profile(manifest, policy)
    effective = _intersect(declared, granted, allowed)
    entries: list[dict[str, str]] = []
    categories = (
        ("excess_grant", _minus(granted, declared)),
        ("unused_declared_capability", _minus(declared, granted)),
        ("policy_restricted", _minus(_intersect(granted, declared), allowed)),
    )
    for category, values in categories:
        for kind, items in values.items():
            entries.extend(
                {
                    "category": category,
                    "capability_kind": kind,
                    "value": value,
                    "message": DIFF_MESSAGES[category],
                }
                for value in items
            )
    entries.sort(key=lambda e: (e["capability_kind"], e["value"], e["category"]))
    return {
        "valid": not any(e["category"] == "excess_grant" for e in entries),
        "declared": declared.to_json(),
        "granted": granted.to_json(),
        "effective": effective.to_json(),
        "entries": entries,
    }


# ---- tools --------------------------------------------------------------------------------


def find_tool(manifest: SkillManifest, tool: str) -> Tool:
    """The runtime's lookup (by id or name); naming a missing tool is ``not_found`` here."""
    try:
        return runtime_find_tool(manifest, tool)
    except rt_errors.InvalidInput as exc:
        raise NotFoundError(
            exc.message, details={"tools": [t.id for t in manifest.tools]}
        ) from None


def _not_found(plugin_id: str) -> NotFoundError:
    return NotFoundError(f"plugin binding not found: {plugin_id}")


# ---- writes -------------------------------------------------------------------------------


def bind_plugin(
    ctx: ServiceContext,
    plugin_id: str,
    skill_id: str,
    tool: str,
    *,
    version: str | None = None,
    profile: CapabilityProfile | None = None,
    enabled: bool = True,
    notes: str | None = None,
    principal: str,
) -> PluginBinding:
    """Create or replace a binding (``created_at`` is kept on replace); journals
    ``plugin.bound`` in the same transaction. ``profile=None`` grants everything declared."""
    pid = normalize_id("plugin_id", plugin_id)
    sid = normalize_skill_id(skill_id)
    pinned = _version(version)
    if not isinstance(tool, str) or not tool.strip():
        raise UsageError("tool cannot be empty")
    wanted_tool = tool.strip()
    is_enabled = _flag("enabled", enabled)
    note = _notes(notes)
    actor = normalize_principal(principal)
    if profile is not None and not isinstance(profile, CapabilityProfile):
        raise UsageError("capability_profile must be a capability profile")

    with ctx.store.read() as tx:
        record = resolve_version(tx, sid, pinned)
    manifest = ctx.artifacts.load(record).manifest
    spec = find_tool(manifest, wanted_tool)
    declared = declared_profile(capability_grants_from_manifest(manifest))
    granted = declared if profile is None else normalize_profile(profile)
    extras = _minus(granted, declared)
    if extras:
        listed = "; ".join(f"{kind}: {', '.join(values)}" for kind, values in extras.items())
        raise CapabilityNotDeclared(
            f"capability profile grants what {sid} {record.version} does not declare "
            f"({listed}); a profile may only narrow the declared capabilities",
            details={"extras": extras, "declared": declared.to_json()},
        )

    at = now_ms()
    with ctx.store.write() as tx:
        live = tx.skill_version(record.skill_id, record.version)
        moved = pinned is None and tx.current_version(sid) != record.version
        if live is None or live.artifact_sha256 != record.artifact_sha256 or moved:
            raise Conflict(f"skill {sid} changed while the binding was checked; retry")
        existing = tx.plugin(pid)
        binding = PluginBinding(
            plugin_id=pid,
            skill_id=sid,
            skill_version=pinned,
            tool_id=spec.id,
            enabled=is_enabled,
            profile=granted,
            notes=note,
            created_at_ms=existing.created_at_ms if existing is not None else at,
            updated_at_ms=at,
        )
        tx.upsert_plugin(binding)
        tx.append_event(
            "plugin.bound",
            actor,
            {
                "plugin_id": pid,
                "skill_id": sid,
                "skill_version": pinned,
                "resolved_version": record.version,
                "tool_id": spec.id,
                "enabled": is_enabled,
                "capability_profile": granted.to_json(),
                "replaced": existing is not None,
            },
        )
    return binding


def unbind_plugin(ctx: ServiceContext, plugin_id: str, *, principal: str) -> PluginBinding:
    """Delete a binding; refused (``conflict``) while any hook references it."""
    pid = normalize_id("plugin_id", plugin_id)
    actor = normalize_principal(principal)
    with ctx.store.write() as tx:
        binding = tx.plugin(pid)
        if binding is None:
            raise _not_found(pid)
        referencing = sorted(h.hook_id for h in tx.hooks() if h.plugin_id.strip().lower() == pid)
        if referencing:
            raise Conflict(
                f"plugin binding {pid} is used by hook(s) {', '.join(referencing)}; "
                "unbind them first",
                details={"hooks": referencing},
            )
        tx.delete_plugin(pid)
        tx.append_event(
            "plugin.unbound",
            actor,
            {"plugin_id": pid, "skill_id": binding.skill_id, "tool_id": binding.tool_id},
        )
    return binding


def set_plugin_enabled(
    ctx: ServiceContext, plugin_id: str, enabled: bool, *, principal: str
) -> PluginBinding:
    """Enable or disable; journals ``plugin.enabled``/``plugin.disabled`` (nothing is
    written when the binding is already in that state)."""
    pid = normalize_id("plugin_id", plugin_id)
    wanted = _flag("enabled", enabled)
    actor = normalize_principal(principal)
    with ctx.store.write() as tx:
        binding = tx.plugin(pid)
        if binding is None:
            raise _not_found(pid)
        if binding.enabled == wanted:
            return binding
        updated = replace(binding, enabled=wanted, updated_at_ms=now_ms())
        tx.upsert_plugin(updated)
        tx.append_event(
            "plugin.enabled" if wanted else "plugin.disabled",
            actor,
            {"plugin_id": pid, "skill_id": binding.skill_id, "tool_id": binding.tool_id},
        )
    return updated


# ---- reads (no side effects) --------------------------------------------------------------


def list_plugins(ctx: ServiceContext) -> list[PluginBinding]:
    """Every binding, ordered by plugin_id."""
    with ctx.store.read() as tx:
        return tx.plugins()


def get_plugin(ctx: ServiceContext, plugin_id: str) -> PluginBinding:
    pid = normalize_id("plugin_id", plugin_id)
    with ctx.store.read() as tx:
        binding = tx.plugin(pid)
    if binding is None:
        raise _not_found(pid)
    return binding


def check_plugin(ctx: ServiceContext, plugin_id: str) -> dict[str, Any]:
    """Would a run of this plugin start, and with which capabilities? Writes nothing.

    ``ready`` is false when the binding is disabled, the skill (or the pinned version) is not
    installed, not active, its artifact does not load, the tool is gone, or the profile grants
    what the skill no longer declares. Policy-withheld grants and approval-gated tools are
    ``warnings``: the run starts, with less (or only inside an approval window).
    """
    pid = normalize_id("plugin_id", plugin_id)
    reasons: list[str] = []
    warnings: list[str] = []
    record: SkillVersionRecord | None = None
    with ctx.store.read() as tx:
        binding = tx.plugin(pid)
        if binding is None:
            raise _not_found(pid)
        try:
            record = resolve_version(tx, binding.skill_id, binding.skill_version)
        except SkillNotInstalled as exc:
            reasons.append(exc.message)
    if not binding.enabled:
        reasons.append("plugin binding is disabled")
    resolved: dict[str, Any] | None = None
    diff: dict[str, Any] | None = None
    if record is not None:
        if record.status is not SkillStatus.ACTIVE:
            why = f" ({record.status_reason})" if record.status_reason else ""
            reasons.append(f"skill status is {record.status.value}{why}")
        resolved = {
            "skill_id": record.skill_id,
            "version": record.version,
            "current": record.current,
            "follows_current": binding.skill_version is None,
            "tool_id": binding.tool_id,
            "tool_name": None,
            "requires_approval": None,
        }
        try:
            manifest = ctx.artifacts.load(record).manifest
        except PalyraError as exc:
            reasons.append(f"the installed artifact cannot be loaded: {exc.kind}: {exc.message}")
        else:
            try:
                spec = find_tool(manifest, binding.tool_id)
            except NotFoundError as exc:
                reasons.append(exc.message)
            else:
                resolved["tool_name"] = spec.name
                resolved["requires_approval"] = spec.risk.needs_approval
                if spec.risk.needs_approval:
                    warnings.append(
                        f"tool {spec.id} requires approval: hook runs fail unless an "
                        "approval window is open"
                    )
            diff = capability_diff(manifest, binding.profile, ctx.config.policy)
            excess = [e["value"] for e in diff["entries"] if e["category"] == "excess_grant"]
            if excess:
                reasons.append(
                    "capability profile grants what the skill does not declare: "
                    + ", ".join(excess)
                )
            restricted = [
                e["value"] for e in diff["entries"] if e["category"] == "policy_restricted"
            ]
            if restricted:
                warnings.append("withheld by runtime policy: " + ", ".join(restricted))
            missing = absent_secrets(ctx, diff["effective"]["secrets"])
            if missing:
                warnings.append("secret(s) not set in the vault: " + ", ".join(missing))
    return {
        "plugin_id": pid,
        "ready": not reasons,
        "reasons": sorted(set(reasons)),
        "warnings": sorted(set(warnings)),
        "binding": binding.to_json(),
        "skill_status": None if record is None else record.status.value,
        "resolved": resolved,
        "capability_diff": diff,
    }
