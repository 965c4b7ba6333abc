"""``palyra.plugin.run``: the reference's generic run input, accepted by the service layer.

The input object is the reference's (reference/runtime.md §3.2, unknown fields refused at the
root and in ``capabilities``) plus our ``input`` (the tool input, default ``{}``)::

    {"skill_id"?, "skill_version"?, "module_path"?, "tool_id"?, "module_wat"?,
     "module_base64"?, "entrypoint"?, "input"?,
     "capabilities"?: {"http_hosts"?, "secrets"?, "storage_prefixes"?, "channels"?}}

Two ways to run, and what differs from the reference (its §11 gaps):

* **Installed skill** (``skill_id``, no inline payload): the call goes through
  :meth:`Runner.call`, so the status gate, input schema, approvals, limits, hooks and receipts
  are the ones every other face gets. ``tool_id`` selects the tool (else the manifest's
  ``operator.plugin.default_tool_id``, else the only tool); the tool selects the module and the
  export exactly as for any call. ``module_path`` and ``entrypoint`` do not choose anything: if
  given they must name what the tool resolves to, or the call is refused. ``capabilities``
  narrows the skill's effective grants (declared ∩ policy); asking for more is
  ``capability_denied``. Without ``capabilities`` the call gets the skill's effective grants.
* **Inline module** (``module_wat`` xor ``module_base64``): off unless the operator sets
  ``[runtime] allow_inline_modules = true``. There is no manifest, so a ``"*"`` in the policy
  ("as the manifest declares") allows nothing: every requested capability must be listed by
  name in the policy, wildcards are never granted, and the grants are exactly the requested
  ones (none when ``capabilities`` is absent). The call runs with the policy's limits under
  the runner's admission and concurrency limits, its storage lives apart from every installed
  skill's (``skill-data/@inline``), and a ``tool.call`` receipt keyed by the module's sha256 is
  journaled. ``skill_id``/``skill_version`` next to an inline payload are accepted (the
  reference allows them) but are metadata only: an inline module never acts as a skill.

Strings are checked in canonical form, as everywhere in this project: an id, host or path with
surrounding whitespace or upper case is refused rather than trimmed or lower-cased, and
``module_base64`` must be canonical standard base64. Secrets are named ``<scope>/<key>``
(``global/db_password``), the vault's and the policy's spelling.

The result never names a secret: it reports only how many were granted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from palyra.daemon.approvals import input_digest
from palyra.daemon.context import ServiceContext
from palyra.daemon.lifecycle import resolve_version
from palyra.daemon.runner import (
    CallRequest,
    Runner,
    egress_summary,
    missing_secrets_error,
)
from palyra.errors import PalyraError
from palyra.runtime import errors as rt_errors
from palyra.runtime.context import CallGrants
from palyra.runtime.limits import KIB, RuntimeLimits
from palyra.runtime.modules import CompiledModule
from palyra.runtime.sandbox import CallResult, choose_export
from palyra.runtime.tools import ANY, RuntimePolicy, effective_grants, find_tool, select_module
from palyra.skills import values
from palyra.skills.errors import SkillError
from palyra.skills.grants import CapabilityGrants, SecretGrant, capability_grants_from_manifest
from palyra.skills.inspect import SkillInspection
from palyra.skills.manifest import SkillManifest, Tool
from palyra.store.base import SkillVersionRecord

RUNNER_NAME = "palyra.plugin.run"
DEFAULT_ENTRYPOINT = "run"
# An inline module's identity towards host services: not a valid skill id ('@'), so its
# storage directory and channel messages can never be taken for an installed skill's.
INLINE_SKILL_ID = "@inline"

STRING_FIELDS = (
    "skill_id",
    "skill_version",
    "module_path",
    "tool_id",
    "module_wat",
    "module_base64",
    "entrypoint",
)
ROOT_FIELDS = (*STRING_FIELDS, "capabilities", "input")
CAPABILITY_FIELDS = ("http_hosts", "secrets", "storage_prefixes", "channels")

MAX_DEPTH = 64  # nesting of the request (and so of the tool input)
MAX_NODES = 200_000  # values in the request, counted while checking it is JSON
MAX_CAPABILITY_ENTRIES = 64  # per capability class


class InlineModulesDisabled(rt_errors.InvalidInput):
    """An inline module was supplied but the operator has not enabled them
    (``kind`` stays ``invalid_input``, as in the reference)."""


# ---- the request ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestedCapabilities:
    """The ``capabilities`` object, checked and de-duplicated (sorted)."""

    http_hosts: tuple[str, ...] = ()
    secrets: tuple[SecretGrant, ...] = ()
    storage_prefixes: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class PluginRunRequest:
    skill_id: str | None = None
    skill_version: str | None = None
    module_path: str | None = None
    tool_id: str | None = None
    module_wat: str | None = field(default=None, repr=False)
    module_base64: str | None = field(default=None, repr=False)
    entrypoint: str | None = None
    capabilities: RequestedCapabilities | None = None
    input: Any = field(default_factory=dict)

    @property
    def inline(self) -> bool:
        return self.module_wat is not None or self.module_base64 is not None


def _invalid(message: str, **details: Any) -> rt_errors.InvalidInput:
    return rt_errors.InvalidInput(f"{RUNNER_NAME} {message}", details=details or None)


def _reason(exc: SkillError) -> str:
    return exc.message.removeprefix("manifest validation failed: ")


def max_request_bytes(limits: RuntimeLimits) -> int:
    """The largest request text accepted: a module (escaped WAT or base64) plus an input."""
    return 2 * limits.max_module_bytes + limits.max_input_bytes + 64 * KIB


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate field `{key}`")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _loads(text: str | bytes | bytearray, limits: RuntimeLimits) -> Any:
    cap = max_request_bytes(limits)
    if len(text) > cap:
        raise _invalid(f"input is larger than {cap} bytes")
    if not isinstance(text, str):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid("input must be UTF-8 JSON text") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise _invalid(f"input must be valid JSON object: {reason[:300]}") from None


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid(f"{where} contains a lone surrogate (not valid Unicode)") from None


def _check_json(value: Any) -> None:
    """The request must be plain JSON: str keys, finite numbers, bounded depth and size
    (so nothing downstream — digests, schemas, the guest's input — meets a surprise)."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "$")]
    nodes = 0
    while stack:
        item, depth, where = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise _invalid(f"input has more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise _invalid(f"input nests deeper than {MAX_DEPTH} levels (at {where[:200]})")
        if item is None or isinstance(item, bool | int):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise _invalid(f"{where} is not a finite number")
        elif isinstance(item, str):
            _check_text(item, where)
        elif isinstance(item, list):
            stack.extend((v, depth + 1, f"{where}[{i}]") for i, v in enumerate(item))
        elif isinstance(item, dict):
            for key, v in item.items():
                if not isinstance(key, str):
                    raise _invalid(f"{where} has a non-string key ({type(key).__name__})")
                _check_text(key, f"a key of {where}")
                stack.append((v, depth + 1, f"{where}.{key[:40]}"))
        else:
            raise _invalid(f"{where} is a {type(item).__name__}, which is not a JSON value")


def _unknown(obj: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(obj) - set(known))
    if unknown:
        name = unknown[0][:80]
        raise _invalid(
            f"{where}: unknown field `{name}`, expected one of: {', '.join(known)}",
            field=name,
        )


def _string(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(f"{name} must be a string, not {_json_type(value)}", field=name)
    if not value.strip():
        raise _invalid(f"{name} cannot be empty when provided", field=name)
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__


def _checked(name: str, check: Any, raw: str) -> str:
    try:
        result: str = check(raw)
    except SkillError as exc:
        raise _invalid(f"{name} is invalid: {_reason(exc)}", field=name) from None
    return result


def _semver(raw: str) -> str:
    values.parse_semver("skill_version", raw)
    return raw


def _module_path(raw: str) -> str:
    path = _checked("module_path", values.canonical_path, raw)
    if not path.startswith("modules/") or not path.endswith(".wasm") or path == "modules/.wasm":
        raise _invalid(
            f"module_path must reference a modules/*.wasm artifact entry (got '{raw[:200]}')",
            field="module_path",
        )
    return path


def _entrypoint(raw: str) -> str:
    try:
        return values.entrypoint_name("entrypoint", raw)
    except SkillError:
        raise _invalid(
            f"entrypoint '{raw[:100]}' contains invalid characters (use [a-z0-9_-])",
            field="entrypoint",
        ) from None


def _secret(raw: str) -> SecretGrant:
    scope, sep, key = raw.rpartition("/")
    try:
        if not sep:
            raise SkillError("a secret is named <scope>/<key>, e.g. global/db_password")
        values.secret_scope(scope)
        values.identifier("secret key", key)
    except SkillError as exc:
        raise _invalid(
            f"capabilities.secrets contains invalid secret '{raw[:100]}': {_reason(exc)}",
            field="capabilities.secrets",
        ) from None
    return SecretGrant(scope, key)


def _capability_list(caps: dict[str, Any], name: str) -> tuple[str, ...]:
    where = f"capabilities.{name}"
    raw = caps.get(name)
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _invalid(f"{where} must be an array of strings, not {_json_type(raw)}", field=where)
    if len(raw) > MAX_CAPABILITY_ENTRIES:
        raise _invalid(f"{where} lists more than {MAX_CAPABILITY_ENTRIES} entries", field=where)
    items: set[str] = set()
    for entry in raw:
        if not isinstance(entry, str):
            raise _invalid(f"{where} entries must be strings, not {_json_type(entry)}", field=where)
        if not entry.strip():
            raise _invalid(f"{where} entries cannot be empty", field=where)
        items.add(entry)
    return tuple(sorted(items))


def _capabilities(raw: Any) -> RequestedCapabilities | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _invalid(
            f"capabilities must be an object, not {_json_type(raw)}", field="capabilities"
        )
    _unknown(raw, CAPABILITY_FIELDS, "capabilities")

    def each(name: str, label: str, check: Any) -> tuple[str, ...]:
        checked = []
        for entry in _capability_list(raw, name):
            try:
                checked.append(check(entry))
            except SkillError as exc:
                raise _invalid(
                    f"capabilities.{name} contains invalid {label} '{entry[:100]}': {_reason(exc)}",
                    field=f"capabilities.{name}",
                ) from None
        return tuple(checked)

    return RequestedCapabilities(
        http_hosts=each("http_hosts", "host", lambda h: values.host(h, wildcard_opt_in=True)),
        secrets=tuple(sorted({_secret(s) for s in _capability_list(raw, "secrets")})),
        storage_prefixes=each(
            "storage_prefixes",
            "storage prefix",
            lambda p: values.capability_path(p, wildcard_opt_in=True),
        ),
        channels=each("channels", "channel", lambda c: values.identifier("channel", c)),
    )


def parse_plugin_run_request(
    request_json: Any, limits: RuntimeLimits | None = None
) -> PluginRunRequest:
    """Check a ``palyra.plugin.run`` input (an object, or its JSON text) without touching
    any state. Every refusal is an ``invalid_input`` naming the offending field."""
    limits = limits or RuntimeLimits()
    obj = (
        _loads(request_json, limits)
        if isinstance(request_json, str | bytes | bytearray)
        else request_json
    )
    if not isinstance(obj, dict):
        raise _invalid(f"input must be a JSON object, not {_json_type(obj)}")
    _check_json(obj)
    _unknown(obj, ROOT_FIELDS, "input")
    strings = {name: _string(obj, name) for name in STRING_FIELDS}
    capabilities = _capabilities(obj.get("capabilities"))
    skill_id, version = strings["skill_id"], strings["skill_version"]
    module_path, tool_id = strings["module_path"], strings["tool_id"]
    entrypoint = strings["entrypoint"]
    request = PluginRunRequest(
        skill_id=None if skill_id is None else _checked("skill_id", values.skill_id, skill_id),
        skill_version=None if version is None else _checked("skill_version", _semver, version),
        module_path=None if module_path is None else _module_path(module_path),
        tool_id=None
        if tool_id is None
        else _checked("tool_id", lambda t: values.identifier("tool_id", t), tool_id),
        module_wat=strings["module_wat"],
        module_base64=strings["module_base64"],
        entrypoint=None if entrypoint is None else _entrypoint(entrypoint),
        capabilities=capabilities,
        input={} if obj.get("input") is None else obj["input"],
    )
    if request.module_wat is not None and request.module_base64 is not None:
        raise _invalid("accepts either module_wat or module_base64, not both")
    if request.inline and (request.module_path is not None or request.tool_id is not None):
        raise _invalid(
            "module_path/tool_id can only be used with installed skill artifacts, "
            "not with module_wat/module_base64"
        )
    if not request.inline and request.skill_id is None:
        raise _invalid(
            "requires skill_id when no inline module payload (module_wat or module_base64) "
            "is supplied"
        )
    return request


# ---- running ----------------------------------------------------------------------------------


def run_plugin(
    ctx: ServiceContext,
    runner: Runner,
    request_json: Any,
    *,
    principal: str = "operator",
    origin: str = "cli",
    approval_timeout_s: float | None = None,
) -> dict[str, Any]:
    """Run a ``palyra.plugin.run`` request; returns the result document (module docstring).

    Raises only :class:`PalyraError` subclasses."""
    request = parse_plugin_run_request(request_json, ctx.config.policy.limits)
    if request.inline:
        return _run_inline(ctx, runner, request, principal, origin)
    return _run_installed(ctx, runner, request, principal, origin, approval_timeout_s)


def _journal(ctx: ServiceContext, kind: str, principal: str, payload: dict[str, Any]) -> int:
    with ctx.store.write() as tx:
        return tx.append_event(kind, principal, payload).seq


def _granted(grants: CallGrants) -> dict[str, Any]:
    """What the call could reach, secrets as a count only."""
    return {
        "granted_http_hosts": sorted(grants.http_hosts),
        "granted_storage_prefixes": sorted(grants.storage_write),
        "granted_storage_read_prefixes": sorted(grants.storage_read),
        "granted_channels": sorted(grants.channels),
        "secret_count": len(grants.secrets),
    }


def _document(
    result: CallResult,
    entrypoint: str,
    resolved_from: str,
    skill: dict[str, Any] | None,
    grants: CallGrants,
    receipt_seq: int,
) -> dict[str, Any]:
    return {
        "exit_code": result.exit_code,
        "entrypoint": entrypoint,
        "duration_ms": round(result.duration_ms, 3),
        "resolved_from": resolved_from,
        "skill": skill,
        "capabilities": _granted(grants),
        "output": result.output,
        "fuel_used": result.fuel_used,
        "receipt_seq": receipt_seq,
    }


# ---- installed skills -------------------------------------------------------------------------


def _resolve_tool(manifest: SkillManifest, tool_id: str | None) -> Tool:
    if tool_id is not None:
        return find_tool(manifest, tool_id)
    default = manifest.operator.plugin.default_tool_id
    if default is not None:
        return find_tool(manifest, default)
    if len(manifest.tools) == 1:
        return manifest.tools[0]
    known = ", ".join(t.id for t in manifest.tools)
    raise _invalid(
        f"needs tool_id: skill {manifest.skill_id} declares {len(manifest.tools)} tools and no "
        f"operator.plugin.default_tool_id (tools: {known})",
        field="tool_id",
    )


def _expected_export(
    ctx: ServiceContext, inspection: SkillInspection, path: str, tool: Tool
) -> str:
    """The export a call of ``tool`` runs — the sandbox's own rule, not a second one."""
    compiled = ctx.sandbox.load(inspection.entries[path], ctx.config.policy.limits)
    if not isinstance(compiled, CompiledModule):
        return "call"  # a component's tools are all behind its ``call`` export
    return choose_export(
        compiled, tool.name, inspection.manifest.operator.plugin.default_entrypoint
    )


def _requested_grants(
    manifest: SkillManifest, caps: RequestedCapabilities | None
) -> CapabilityGrants | None:
    """The request as a narrowing of the skill's grants (``None``: no narrowing)."""
    if caps is None:
        return None
    read_only = set(capability_grants_from_manifest(manifest).storage_read_prefixes)
    return CapabilityGrants(
        http_hosts=caps.http_hosts,
        secrets=caps.secrets,
        storage_prefixes=tuple(p for p in caps.storage_prefixes if p not in read_only),
        storage_read_prefixes=tuple(p for p in caps.storage_prefixes if p in read_only),
        channels=caps.channels,
    )


@dataclass(frozen=True)
class _Resolved:
    record: SkillVersionRecord
    inspection: SkillInspection
    tool: Tool
    module_path: str
    requested: CapabilityGrants | None


def _resolve_installed(ctx: ServiceContext, request: PluginRunRequest) -> _Resolved:
    assert request.skill_id is not None
    with ctx.store.read() as tx:
        record = resolve_version(tx, request.skill_id, request.skill_version)
    Runner.gate(record)  # a quarantined skill says so, whatever else is wrong with the call
    inspection = ctx.artifacts.load(record)
    tool = _resolve_tool(inspection.manifest, request.tool_id)
    module_path = select_module(inspection, ctx.sandbox, tool)
    if request.module_path is not None and request.module_path != module_path:
        if request.module_path not in inspection.modules:
            raise _invalid(
                f"skill artifact does not contain module_path '{request.module_path}' "
                f"(modules: {', '.join(inspection.modules)})",
                field="module_path",
            )
        raise _invalid(
            f"module_path '{request.module_path}' is not the module tool {tool.id} runs "
            f"('{module_path}'); omit module_path or pass '{module_path}'",
            field="module_path",
        )
    if request.entrypoint is not None:
        expected = _expected_export(ctx, inspection, module_path, tool)
        if request.entrypoint != expected:
            raise _invalid(
                f"entrypoint '{request.entrypoint}' is not the export tool {tool.id} runs "
                f"('{expected}'); omit entrypoint or pass '{expected}'",
                field="entrypoint",
            )
    requested = _requested_grants(inspection.manifest, request.capabilities)
    return _Resolved(record, inspection, tool, module_path, requested)


def _run_installed(
    ctx: ServiceContext,
    runner: Runner,
    request: PluginRunRequest,
    principal: str,
    origin: str,
    approval_timeout_s: float | None,
) -> dict[str, Any]:
    try:
        resolved = _resolve_installed(ctx, request)
    except PalyraError as exc:
        # Refused before reaching the runner: journaled like the runner's own refusals.
        _journal(
            ctx,
            "tool.rejected",
            principal,
            {
                "skill_id": request.skill_id,
                "version": request.skill_version,
                "tool_id": request.tool_id,
                "input_sha256": input_digest(request.input),
                "origin": origin,
                "outcome": exc.kind,
                "error": exc.message[:500],
            },
        )
        raise
    record = resolved.record
    receipt = runner.call(
        CallRequest(
            skill_id=record.skill_id,
            tool=resolved.tool.id,
            input=request.input,
            version=record.version,  # the version resolved above, even if "current" moves
            principal=principal,
            origin=origin,
            requested=resolved.requested,
        ),
        approval_timeout_s=approval_timeout_s,
    )
    grants = effective_grants(resolved.inspection.manifest, ctx.config.policy, resolved.requested)
    skill = {
        "skill_id": receipt.skill_id,
        "version": receipt.version,
        "module_path": resolved.module_path,
        "tool_id": receipt.tool_id,
    }
    return _document(
        receipt.result,
        receipt.result.export,
        "installed_skill_artifact",
        skill,
        grants,
        receipt.receipt_seq,
    )


# ---- inline modules ---------------------------------------------------------------------------


def _inline_bytes(request: PluginRunRequest, max_bytes: int) -> bytes:
    if request.module_wat is not None:
        text = request.module_wat
        size = len(text.encode("utf-8"))
        if size > max_bytes:
            raise rt_errors.InvalidModule(
                f"{RUNNER_NAME} module_wat is {size} bytes, over the {max_bytes}-byte "
                "max_module_bytes limit"
            )
        import wasmtime

        try:
            data = bytes(wasmtime.wat2wasm(text))
        except wasmtime.WasmtimeError as exc:
            reason = " ".join(str(exc).split())[:300]
            raise _invalid(f"module_wat is not valid WAT: {reason}", field="module_wat") from None
    else:
        assert request.module_base64 is not None
        text = request.module_base64
        if len(text) > 4 * ((max_bytes + 2) // 3):
            raise rt_errors.InvalidModule(
                f"{RUNNER_NAME} module_base64 decodes to more than the {max_bytes}-byte "
                "max_module_bytes limit"
            )
        try:
            raw = text.encode("ascii")
            data = binascii.a2b_base64(raw, strict_mode=True)
        except (UnicodeEncodeError, binascii.Error) as exc:
            reason = "not ASCII" if isinstance(exc, UnicodeEncodeError) else str(exc)
            raise _invalid(
                f"module_base64 is invalid: {reason} (standard base64 with padding)",
                field="module_base64",
            ) from None
        if base64.b64encode(data) != raw:
            raise _invalid(
                "module_base64 is invalid: not canonical standard base64 (non-zero padding bits)",
                field="module_base64",
            )
    if not data:
        raise _invalid("module payload cannot be empty")
    if len(data) > max_bytes:
        raise rt_errors.InvalidModule(
            f"{RUNNER_NAME} module is {len(data)} bytes, over the {max_bytes}-byte "
            "max_module_bytes limit"
        )
    return data


def inline_grants(policy: RuntimePolicy, caps: RequestedCapabilities | None) -> CallGrants:
    """Exactly the requested capabilities, each listed by name in the policy.

    ``"*"`` in the policy means "as the manifest declares"; an inline module has no manifest,
    so it allows nothing here, and a wildcard request is never granted."""
    caps = caps or RequestedCapabilities()
    wanted = {
        "http_hosts": (caps.http_hosts, policy.http_hosts),
        "secrets": (tuple(str(s) for s in caps.secrets), policy.secrets),
        "storage_prefixes": (caps.storage_prefixes, policy.storage),
        "channels": (caps.channels, policy.channels),
    }
    denied: dict[str, list[str]] = {}
    for name, (requested, allowed) in wanted.items():
        concrete = allowed - {ANY}
        refused = [v for v in requested if "*" in v or v not in concrete]
        if refused:
            denied[name] = refused
    if denied:
        listed = "; ".join(f"{name}: {','.join(items)}" for name, items in denied.items())
        raise rt_errors.CapabilityDenied(
            f"{RUNNER_NAME} capability denied for {listed} (an inline module gets only "
            "capabilities that [runtime] in config.toml lists by name; '*' there covers "
            "installed skills' declared capabilities only)",
            details={"denied": denied},
        )
    return CallGrants(
        http_hosts=caps.http_hosts,
        allow_http=policy.allow_http,
        allow_private_network=policy.allow_private_network,
        allow_wildcards=False,
        allowed_ports=policy.allowed_ports,
        secrets=frozenset((s.scope, s.key) for s in caps.secrets),
        storage_read=(),
        storage_write=caps.storage_prefixes,
        channels=caps.channels,
    )


def _check_inline_entrypoint(compiled: Any, entrypoint: str) -> None:
    """An explicit entrypoint is that export or nothing (no fallback to ``run``)."""
    if not isinstance(compiled, CompiledModule):
        return  # a component: the entrypoint is the tool name its ``call`` export receives
    exported = {item.name for item in compiled.info.summary.exports if item.kind == "func"}
    if entrypoint not in exported:
        raise rt_errors.MissingExport(f"{RUNNER_NAME} missing exported entrypoint '{entrypoint}'")
    if entrypoint not in compiled.info.entry_exports:
        raise rt_errors.MissingExport(
            f"{RUNNER_NAME} entrypoint '{entrypoint}' does not have type () -> i32"
        )


def _run_inline(
    ctx: ServiceContext,
    runner: Runner,
    request: PluginRunRequest,
    principal: str,
    origin: str,
) -> dict[str, Any]:
    if not ctx.config.allow_inline_modules:
        raise InlineModulesDisabled(
            f"{RUNNER_NAME} inline modules (module_wat/module_base64) are disabled by the "
            "runtime policy; to allow them set `[runtime] allow_inline_modules = true` in "
            f"{ctx.state_root / 'config.toml'} and restart the daemon",
            details={"config_key": "runtime.allow_inline_modules"},
        )
    policy = ctx.config.policy
    limits = policy.limits
    module = _inline_bytes(request, limits.max_module_bytes)
    entrypoint = request.entrypoint or DEFAULT_ENTRYPOINT
    base: dict[str, Any] = {
        "inline_module_sha256": hashlib.sha256(module).hexdigest(),
        "entrypoint": entrypoint,
        "input_sha256": input_digest(request.input),
        "origin": origin,
    }
    try:
        grants = inline_grants(policy, request.capabilities)
    except PalyraError as exc:
        _journal(
            ctx,
            "tool.rejected",
            principal,
            {**base, "outcome": exc.kind, "error": exc.message[:500]},
        )
        raise
    base["grants"] = grants.to_json()
    slots = runner.slots  # the same admission and worker limits as every installed call
    with slots.admitted():
        started = time.monotonic()
        try:
            with slots.running(INLINE_SKILL_ID):
                compiled = ctx.sandbox.load(module, limits)
                _check_inline_entrypoint(compiled, entrypoint)
                result = ctx.sandbox.run_compiled(
                    compiled,
                    input_value=request.input,
                    skill_id=INLINE_SKILL_ID,
                    tool_id=f"{INLINE_SKILL_ID}.{entrypoint}",
                    tool_name=entrypoint,
                    grants=grants,
                    limits=limits,
                )
        except PalyraError as exc:
            error = missing_secrets_error(exc) or exc
            details = error.details if isinstance(error.details, dict) else {}
            _journal(
                ctx,
                "tool.call",
                principal,
                {
                    **base,
                    "outcome": error.kind,
                    "error": error.message[:500],
                    "fuel_used": details.get("fuel_used"),
                    "duration_ms": round((time.monotonic() - started) * 1000, 3),
                    "egress": egress_summary(details.get("egress", [])),
                },
            )
            if error is exc:
                raise
            raise error from None
    seq = _journal(
        ctx,
        "tool.call",
        principal,
        {
            **base,
            "outcome": "ok",
            "fuel_used": result.fuel_used,
            "duration_ms": round(result.duration_ms, 3),
            "egress": egress_summary(result.egress),
        },
    )
    return _document(result, entrypoint, "inline_module", None, grants, seq)
