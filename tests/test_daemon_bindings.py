"""Plugin bindings and hooks against a real service: SQLite, installed skills, wasmtime.

Two skills are installed: ``daemon_fixtures``' demo skill (the target of lifecycle actions;
its tools take only ``{"text"}``) and a "sink" skill built here whose tools accept any
object, so a hook can deliver ``{"event", "payload"}`` to them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import daemon_fixtures
from palyra.daemon import hooks
from palyra.daemon.approvals import input_digest
from palyra.daemon.bindings import (
    CapabilityNotDeclared,
    bind_plugin,
    check_plugin,
    list_plugins,
    parse_profile,
    profile_grants,
    set_plugin_enabled,
    unbind_plugin,
)
from palyra.daemon.errors import Conflict
from palyra.daemon.hooks import (
    HOOK_EVENTS,
    HookDispatcher,
    UnknownHookEvent,
    bind_hook,
    check_hook,
    list_hooks,
    set_hook_enabled,
    unbind_hook,
)
from palyra.daemon.runner import CallReceipt, CallRequest
from palyra.daemon.service import Service
from palyra.errors import NotFoundError, PalyraError, UsageError
from palyra.skills.build import build_signed_skill_artifact
from palyra.skills.grants import CapabilityGrants, SecretGrant
from palyra.store.base import CapabilityProfile, JournalEvent, PluginBinding
from runtime_fixtures import data_imports, wat

SINK_ID = "acme.hook_sink"
SECRET_REF = f"skill:{SINK_ID}/api_token"
OP = "operator:test"

SINK_MODULE = wat(
    f"""
(module
  {data_imports("input_len", "input_read", "output_write", "secret_get")}
  (memory (export "memory") 2)
  (data (i32.const 100000) "{SECRET_REF}")
  (data (i32.const 101000) "{{\\"ok\\":true}}")
  (func $echo (result i32)
    (local $n i32)
    (local.set $n (call $input_len))
    (drop (call $input_read (i32.const 0) (local.get $n)))
    (drop (call $output_write (i32.const 0) (local.get $n)))
    (i32.const 0))
  (func (export "echo") (result i32) (call $echo))
  (func (export "strict") (result i32) (call $echo))
  (func (export "guarded") (result i32) (call $echo))
  (func (export "needs_secret") (result i32)
    (if (i32.lt_s (call $secret_get (i32.const 100000) (i32.const {len(SECRET_REF)}))
                  (i32.const 0))
      (then (return (i32.const 1))))
    (drop (call $output_write (i32.const 101000) (i32.const 11)))
    (i32.const 0)))
"""
)

ANY_OBJECT = '{ type = "object" }'
STRICT = (
    '{ type = "object", properties = { text = { type = "string" } }, additionalProperties = false }'
)


def sink_manifest(version: str, hosts: tuple[str, ...]) -> str:
    tools = []
    for name, schema, approval in (
        ("echo", ANY_OBJECT, False),
        ("strict", STRICT, False),
        ("guarded", ANY_OBJECT, True),
        ("needs_secret", ANY_OBJECT, False),
    ):
        tools.append(
            f"""
[[entrypoints.tools]]
id = "acme.sink_{name}"
name = "{name}"
description = "{name} tool"
input_schema = {schema}
output_schema = {ANY_OBJECT}
risk = {{ default_sensitive = false, requires_approval = {str(approval).lower()} }}
"""
        )
    host_list = ", ".join(f'"{h}"' for h in hosts)
    return f"""\
manifest_version = 2
skill_id = "{SINK_ID}"
name = "Hook sink"
version = "{version}"
publisher = "{daemon_fixtures.PUBLISHER}"

[entrypoints]
{"".join(tools)}
[capabilities]
http_egress_allowlist = [{host_list}]
node_capabilities = ["channel:alerts"]

[capabilities.filesystem]
read_roots = ["skills/data"]
write_roots = ["skills/cache"]

[[capabilities.secrets]]
scope = "skill:{SINK_ID}"
key_names = ["api_token", "other_token"]

[capabilities.quotas]
wall_clock_timeout_ms = 10000
fuel_budget = 150000000
max_memory_bytes = 33554432

[compat]
required_protocol_major = 1
min_palyra_version = "0.1.0"
"""


def write_sink(
    directory: Path,
    version: str = "1.0.0",
    hosts: tuple[str, ...] = ("api.example.com", "cdn.example.com"),
) -> Path:
    path = directory / f"{SINK_ID}-{version}.palyra-skill"
    built = build_signed_skill_artifact(
        sink_manifest(version, hosts), [("module.wasm", SINK_MODULE)], daemon_fixtures.KEY
    )
    path.write_bytes(built.artifact)
    return path


def open_service(tmp_path: Path, config: str | None = None) -> Service:
    state = tmp_path / "state"
    if config is not None:
        state.mkdir(mode=0o700)
        (state / "config.toml").write_text(config)
    service = Service.open(state)
    service.install_file(daemon_fixtures.write_artifact(tmp_path), allow_tofu=True)
    service.install_file(write_sink(tmp_path), allow_tofu=True)
    return service


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    svc = open_service(tmp_path)
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture
def dispatcher(service: Service) -> HookDispatcher:
    return service.hooks  # the service installs its own dispatcher


def events(service: Service, kind: str | None = None) -> list[JournalEvent]:
    with service.ctx.store.read() as tx:
        return tx.events(after_seq=0, limit=10_000, kind=kind)


def last_seq(service: Service) -> int:
    with service.ctx.store.read() as tx:
        last = tx.last_event()
    return 0 if last is None else last.seq


def event_at(service: Service, seq: int) -> JournalEvent:
    with service.ctx.store.read() as tx:
        found = tx.events(after_seq=seq - 1, limit=1)
    assert found and found[0].seq == seq
    return found[0]


def bind_sink(service: Service, plugin_id: str, tool: str = "echo", **kw: Any) -> None:
    bind_plugin(service.ctx, plugin_id, SINK_ID, tool, principal=OP, **kw)


def assert_chain_ok(service: Service) -> None:
    report = service.verify_journal()
    assert report["ok"], report


# ---- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "   ", "has space", "slash/no", "ü", "x" * 129, 7])
def test_bad_plugin_ids_are_usage_errors(service: Service, bad: Any) -> None:
    with pytest.raises(UsageError) as info:
        bind_plugin(service.ctx, bad, SINK_ID, "echo", principal=OP)
    assert info.value.kind == "usage"
    assert "plugin_id" in info.value.message


def test_validation_errors_are_typed_and_write_nothing(service: Service) -> None:
    before = last_seq(service)
    ctx = service.ctx
    with pytest.raises(NotFoundError) as missing_skill:
        bind_plugin(ctx, "p", "acme.nope", "echo", principal=OP)
    assert missing_skill.value.kind == "not_found"
    with pytest.raises(NotFoundError, match=r"version 9\.9\.9"):
        bind_plugin(ctx, "p", SINK_ID, "echo", version="9.9.9", principal=OP)
    with pytest.raises(NotFoundError, match=r"declares no tool 'nope' \(tools: acme\.sink_echo"):
        bind_plugin(ctx, "p", SINK_ID, "nope", principal=OP)
    with pytest.raises(UsageError, match="skill_id"):
        bind_plugin(ctx, "p", "../etc", "echo", principal=OP)
    with pytest.raises(UsageError, match="principal"):
        bind_plugin(ctx, "p", SINK_ID, "echo", principal="  ")
    with pytest.raises(UsageError, match="enabled"):
        bind_plugin(ctx, "p", SINK_ID, "echo", enabled="yes", principal=OP)  # type: ignore[arg-type]

    # A profile beyond the declaration is refused with the extras named, never trimmed.
    beyond = CapabilityProfile(
        http_hosts=("api.example.com", "evil.example.net"),
        secrets=(SECRET_REF, "global/root_password"),
        channels=("alerts", "ops"),
    )
    with pytest.raises(CapabilityNotDeclared) as excess:
        bind_plugin(ctx, "p", SINK_ID, "echo", profile=beyond, principal=OP)
    assert excess.value.kind == "capability_not_declared"
    assert "evil.example.net" in excess.value.message
    assert "global/root_password" in excess.value.message
    assert excess.value.details["extras"] == {
        "http_hosts": ["evil.example.net"],
        "secrets": ["global/root_password"],
        "channels": ["ops"],
    }
    assert "api.example.com" not in str(excess.value.details["extras"])

    with pytest.raises(UsageError, match="scope"):
        bind_plugin(
            ctx, "p", SINK_ID, "echo", profile=CapabilityProfile(secrets=("nokey",)), principal=OP
        )
    with pytest.raises(UsageError, match="empty entry"):
        bind_plugin(
            ctx, "p", SINK_ID, "echo", profile=CapabilityProfile(http_hosts=(" ",)), principal=OP
        )
    with pytest.raises(UsageError, match="unknown key"):
        parse_profile({"http_hosts": [], "filesystem": ["/"]})
    with pytest.raises(UsageError, match="list of strings"):
        parse_profile({"http_hosts": "api.example.com"})

    # Hooks: unknown events list the valid ones; the plugin must exist.
    with pytest.raises(UnknownHookEvent) as unknown:
        bind_hook(ctx, "h", "run:before_tool", "p", principal=OP)
    assert unknown.value.kind == "unknown_hook_event"
    for name in HOOK_EVENTS:
        assert name in unknown.value.message
    with pytest.raises(NotFoundError, match="plugin binding not found: p"):
        bind_hook(ctx, "h", "skill:installed", "p", principal=OP)
    with pytest.raises(UsageError, match="hook_id"):
        bind_hook(ctx, "bad id", "skill:installed", "p", principal=OP)
    with pytest.raises(UnknownHookEvent):
        list_hooks(ctx, "skill:removed")

    assert list_plugins(ctx) == []
    assert list_hooks(ctx) == []
    assert last_seq(service) == before


# ---- plugin bindings ----------------------------------------------------------------------


def test_bind_list_check_enable_disable_unbind(service: Service) -> None:
    ctx = service.ctx
    binding = bind_plugin(
        ctx, "  Sink-Echo ", f" {SINK_ID.upper()} ", "echo", notes=" watches ", principal=OP
    )
    assert binding.plugin_id == "sink-echo"
    assert binding.skill_id == SINK_ID
    assert binding.skill_version is None
    assert binding.tool_id == "acme.sink_echo"  # resolved from the tool's name
    assert binding.notes == "watches"
    # No profile: everything declared, in the runner's vocabulary.
    assert binding.profile.to_json() == {
        "http_hosts": ["api.example.com", "cdn.example.com"],
        "secrets": [f"skill:{SINK_ID}/api_token", f"skill:{SINK_ID}/other_token"],
        "storage_prefixes": ["skills/cache", "skills/data"],
        "channels": ["alerts"],
    }
    bound = events(service, "plugin.bound")
    assert len(bound) == 1
    assert bound[0].actor == OP
    assert bound[0].payload["plugin_id"] == "sink-echo"
    assert bound[0].payload["resolved_version"] == "1.0.0"

    # Re-binding replaces, keeping created_at.
    again = bind_plugin(
        ctx,
        "sink-echo",
        SINK_ID,
        "acme.sink_needs_secret",
        version="1.0.0",
        profile=CapabilityProfile(http_hosts=("API.example.com.",)),
        principal=OP,
    )
    assert again.created_at_ms == binding.created_at_ms
    assert again.updated_at_ms >= binding.updated_at_ms
    assert again.skill_version == "1.0.0"
    assert again.profile.http_hosts == ("api.example.com",)
    assert events(service, "plugin.bound")[-1].payload["replaced"] is True
    assert [p.plugin_id for p in list_plugins(ctx)] == ["sink-echo"]

    # check is read-only and reports readiness.
    seq = last_seq(service)
    report = check_plugin(ctx, "SINK-ECHO")
    assert last_seq(service) == seq
    assert report["ready"] is True, report
    assert report["reasons"] == []
    assert report["skill_status"] == "active"
    assert report["binding"]["plugin_id"] == "sink-echo"
    assert report["resolved"]["tool_id"] == "acme.sink_needs_secret"
    assert report["resolved"]["version"] == "1.0.0"
    assert report["resolved"]["follows_current"] is False
    assert report["warnings"] == []
    assert list_plugins(ctx)[0] == again  # nothing was persisted by the read

    disabled = set_plugin_enabled(ctx, "sink-echo", False, principal=OP)
    assert disabled.enabled is False
    report = check_plugin(ctx, "sink-echo")
    assert report["ready"] is False
    assert "plugin binding is disabled" in report["reasons"]
    seq = last_seq(service)
    assert set_plugin_enabled(ctx, "sink-echo", False, principal=OP).enabled is False
    assert last_seq(service) == seq  # no change, no write
    assert set_plugin_enabled(ctx, "sink-echo", True, principal=OP).enabled is True

    # A skill that is not active makes the binding not ready.
    service.disable(SINK_ID, principal=OP)
    report = check_plugin(ctx, "sink-echo")
    assert report["ready"] is False
    assert report["skill_status"] == "disabled"
    assert any(r.startswith("skill status is disabled") for r in report["reasons"])
    service.enable(SINK_ID, principal=OP)

    removed = unbind_plugin(ctx, "Sink-Echo", principal=OP)
    assert removed.plugin_id == "sink-echo"
    assert list_plugins(ctx) == []
    with pytest.raises(NotFoundError, match="plugin binding not found: sink-echo"):
        check_plugin(ctx, "sink-echo")
    with pytest.raises(NotFoundError):
        unbind_plugin(ctx, "sink-echo", principal=OP)
    with pytest.raises(NotFoundError):
        set_plugin_enabled(ctx, "sink-echo", True, principal=OP)

    kinds = [e.kind for e in events(service) if e.kind.startswith("plugin.")]
    assert kinds == [
        "plugin.bound",
        "plugin.bound",
        "plugin.disabled",
        "plugin.enabled",
        "plugin.unbound",
    ]
    assert_chain_ok(service)


def test_unbind_refused_while_a_hook_references_it(service: Service) -> None:
    ctx = service.ctx
    bind_sink(service, "sink-echo")
    bind_hook(ctx, "on-install", "skill:installed", "Sink-Echo", principal=OP)
    with pytest.raises(Conflict) as refused:
        unbind_plugin(ctx, "SINK-ECHO", principal=OP)  # a case variant does not dodge it
    assert refused.value.kind == "conflict"
    assert "on-install" in refused.value.message
    assert refused.value.details == {"hooks": ["on-install"]}
    assert [p.plugin_id for p in list_plugins(ctx)] == ["sink-echo"]
    # Removing the skill is refused too while a plugin binds it.
    with pytest.raises(Conflict):
        service.remove(SINK_ID, principal=OP)

    unbind_hook(ctx, "on-install", principal=OP)
    unbind_plugin(ctx, "sink-echo", principal=OP)
    assert list_plugins(ctx) == []
    assert [e.kind for e in events(service) if e.kind.startswith(("hook.", "plugin."))] == [
        "plugin.bound",
        "hook.bound",
        "hook.unbound",
        "plugin.unbound",
    ]


def test_capability_diff_categories(tmp_path: Path) -> None:
    # The operator's policy honours only one of the two declared hosts and one secret.
    config = (
        "[runtime]\n"
        'http_hosts = ["api.example.com"]\n'
        f'secrets = ["{SECRET_REF}"]\n'
        'storage = ["*"]\n'
        "channels = []\n"
    )
    service = open_service(tmp_path, config)
    try:
        ctx = service.ctx
        profile = parse_profile(
            {
                "http_hosts": ["cdn.example.com", "api.example.com"],
                "secrets": [SECRET_REF],
                "storage_prefixes": ["skills/data"],
                "channels": ["alerts"],
            }
        )
        bind_plugin(ctx, "diffed", SINK_ID, "echo", profile=profile, principal=OP)
        report = check_plugin(ctx, "diffed")
        diff = report["capability_diff"]
        assert report["ready"] is True  # policy-withheld grants are warnings, not blockers
        assert diff["valid"] is True
        assert diff["declared"]["http_hosts"] == ["api.example.com", "cdn.example.com"]
        assert diff["granted"]["storage_prefixes"] == ["skills/data"]
        assert diff["effective"] == {
            "http_hosts": ["api.example.com"],
            "secrets": [SECRET_REF],
            "storage_prefixes": ["skills/data"],
            "channels": [],
        }
        entries = {(e["category"], e["capability_kind"], e["value"]) for e in diff["entries"]}
        assert entries == {
            ("unused_declared_capability", "secrets", f"skill:{SINK_ID}/other_token"),
            ("unused_declared_capability", "storage_prefixes", "skills/cache"),
            ("policy_restricted", "http_hosts", "cdn.example.com"),
            ("policy_restricted", "channels", "alerts"),
        }
        assert all(e["message"] for e in diff["entries"])
        assert any("withheld by runtime policy" in w for w in report["warnings"])
        assert any(SECRET_REF in w for w in report["warnings"])  # not in the vault

        # The hook run gets declared ∩ granted ∩ policy: the receipt shows exactly that.
        dispatcher = service.hooks
        bind_hook(ctx, "h", "gateway:startup", "diffed", principal=OP)
        result = dispatcher.fire("gateway:startup", {})
        assert result["dispatched"][0]["ok"] is True, result
        receipt = event_at(service, result["dispatched"][0]["receipt_seq"])
        assert receipt.payload["grants"] == {
            "http_hosts": ["api.example.com"],
            "secrets": [SECRET_REF],
            "storage_read": ["skills/data"],
            "storage_write": [],
            "channels": [],
        }

        # An update that stops declaring a granted host: the binding (following the current
        # version) now grants more than declared → excess_grant, not ready, and runs refuse.
        service.install_file(
            write_sink(tmp_path, "1.1.0", hosts=("api.example.com",)), allow_tofu=True
        )
        report = check_plugin(ctx, "diffed")
        assert report["resolved"]["version"] == "1.1.0"
        assert report["ready"] is False
        assert report["capability_diff"]["valid"] is False
        assert {
            (e["category"], e["value"])
            for e in report["capability_diff"]["entries"]
            if e["category"] == "excess_grant"
        } == {("excess_grant", "cdn.example.com")}
        assert any("does not declare: cdn.example.com" in r for r in report["reasons"])
        result = dispatcher.fire("gateway:startup", {})
        assert result["dispatched"][0]["ok"] is False
        assert result["dispatched"][0]["kind"] == "capability_denied"
        assert_chain_ok(service)
    finally:
        service.close()


def test_profile_grants_split_read_only_storage() -> None:
    binding = PluginBinding(
        plugin_id="p",
        skill_id=SINK_ID,
        skill_version=None,
        tool_id="acme.sink_echo",
        enabled=True,
        profile=CapabilityProfile(
            http_hosts=("api.example.com",),
            secrets=(SECRET_REF,),
            storage_prefixes=("skills/cache", "skills/data"),
            channels=("alerts",),
        ),
        notes=None,
        created_at_ms=0,
        updated_at_ms=0,
    )
    declared = CapabilityGrants(
        storage_prefixes=("skills/cache",), storage_read_prefixes=("skills/data",)
    )
    grants = profile_grants(binding, declared)
    assert grants.http_hosts == ("api.example.com",)
    assert grants.secrets == (SecretGrant(f"skill:{SINK_ID}", "api_token"),)
    assert grants.storage_prefixes == ("skills/cache",)
    assert grants.storage_read_prefixes == ("skills/data",)
    assert grants.channels == ("alerts",)
    assert profile_grants(binding).storage_prefixes == ("skills/cache", "skills/data")


# ---- hooks --------------------------------------------------------------------------------


def test_hook_bindings_bind_list_enable_disable(service: Service) -> None:
    ctx = service.ctx
    bind_sink(service, "sink-echo")
    first = bind_hook(ctx, " On-Q ", "  SKILL:Quarantined ", "sink-echo", principal=OP)
    assert (first.hook_id, first.event, first.plugin_id) == (
        "on-q",
        "skill:quarantined",
        "sink-echo",
    )
    bind_hook(ctx, "after", "tool:after_call", "sink-echo", enabled=False, principal=OP)
    again = bind_hook(ctx, "on-q", "skill:quarantined", "sink-echo", principal=OP)
    assert again.created_at_ms == first.created_at_ms
    assert [h.hook_id for h in list_hooks(ctx)] == ["after", "on-q"]
    assert [h.hook_id for h in list_hooks(ctx, "Tool:After_Call")] == ["after"]

    report = check_hook(ctx, "after")
    assert report["ready"] is False
    assert report["reasons"] == ["hook binding is disabled"]
    assert report["plugin"]["ready"] is True
    assert set_hook_enabled(ctx, "after", True, principal=OP).enabled is True
    assert check_hook(ctx, "after")["ready"] is True
    set_plugin_enabled(ctx, "sink-echo", False, principal=OP)
    assert check_hook(ctx, "after")["reasons"] == ["plugin sink-echo: plugin binding is disabled"]

    unbind_hook(ctx, "after", principal=OP)
    with pytest.raises(NotFoundError, match="hook binding not found: after"):
        unbind_hook(ctx, "after", principal=OP)
    with pytest.raises(NotFoundError):
        set_hook_enabled(ctx, "after", True, principal=OP)
    kinds = [e.kind for e in events(service) if e.kind.startswith("hook.")]
    assert kinds == ["hook.bound", "hook.bound", "hook.bound", "hook.enabled", "hook.unbound"]
    assert_chain_ok(service)


def test_quarantine_runs_hook_with_receipt(service: Service, dispatcher: HookDispatcher) -> None:
    ctx = service.ctx
    bind_sink(service, "sink-echo")
    bind_hook(ctx, "on-quarantine", "skill:quarantined", "sink-echo", principal=OP)

    result = service.quarantine(daemon_fixtures.SKILL_ID, reason="suspicious", principal=OP)
    assert result["status"] == "quarantined"

    runs = events(service, "hook.run")
    assert len(runs) == 1
    run = runs[0]
    assert run.actor == hooks.HOOK_PRINCIPAL
    assert run.payload["hook_id"] == "on-quarantine"
    assert run.payload["plugin_id"] == "sink-echo"
    assert run.payload["event"] == "skill:quarantined"
    assert run.payload["fuel_used"] > 0
    assert run.payload["duration_ms"] >= 0
    receipt = event_at(service, run.payload["receipt_seq"])
    assert receipt.kind == "tool.call"
    assert receipt.actor == hooks.HOOK_PRINCIPAL
    assert receipt.payload["origin"] == "hook"
    assert receipt.payload["skill_id"] == SINK_ID
    assert receipt.payload["tool_id"] == "acme.sink_echo"
    assert receipt.payload["outcome"] == "ok"
    assert receipt.seq < run.seq
    # The hook ran after the quarantine committed.
    quarantined = events(service, "skill.quarantined")[-1]
    assert quarantined.seq < receipt.seq
    assert events(service, "hook.failed") == []
    assert_chain_ok(service)


def test_failing_hooks_never_break_the_action(service: Service, dispatcher: HookDispatcher) -> None:
    ctx = service.ctx
    bind_sink(service, "p-disabled")
    set_plugin_enabled(ctx, "p-disabled", False, principal=OP)
    bind_sink(service, "p-secret", "needs_secret")  # the secret is not in the vault
    bind_sink(service, "p-schema", "strict")  # rejects {"event", "payload"}
    bind_sink(service, "p-approval", "guarded")  # approval-gated, no window open
    # The demo skill's own echo: that skill is being quarantined by the action itself.
    bind_plugin(ctx, "p-demo", daemon_fixtures.SKILL_ID, "echo", principal=OP)
    bind_sink(service, "p-ok")
    for plugin in ("p-disabled", "p-secret", "p-schema", "p-approval", "p-demo", "p-ok"):
        bind_hook(ctx, f"h-{plugin[2:]}", "skill:quarantined", plugin, principal=OP)

    result = service.quarantine(daemon_fixtures.SKILL_ID, principal=OP)
    assert result["status"] == "quarantined"

    failed = {e.payload["hook_id"]: e.payload for e in events(service, "hook.failed")}
    assert {hook: body["kind"] for hook, body in failed.items()} == {
        "h-disabled": "plugin_disabled",
        "h-secret": "missing_secrets",
        "h-schema": "invalid_input",
        "h-approval": "approval_required",
        "h-demo": "skill_not_active",
    }
    for body in failed.values():
        assert set(body) == {"hook_id", "plugin_id", "event", "kind", "message"}
        assert body["event"] == "skill:quarantined"
        assert body["message"]
    assert failed["h-secret"]["plugin_id"] == "p-secret"
    assert [e.payload["hook_id"] for e in events(service, "hook.run")] == ["h-ok"]
    # No approval request was left waiting for an operator.
    assert service.list_approvals("all")["count"] == 0
    assert_chain_ok(service)


def test_unexpected_exception_in_a_hook_is_contained(
    service: Service, dispatcher: HookDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    bind_sink(service, "sink-echo")
    bind_hook(service.ctx, "boom", "skill:disabled", "sink-echo", principal=OP)

    def explode(request: CallRequest, **_: Any) -> CallReceipt:
        raise RuntimeError("the runner fell over")

    monkeypatch.setattr(service.runner, "call", explode)
    result = service.disable(daemon_fixtures.SKILL_ID, principal=OP)
    assert result["status"] == "disabled"
    (failed,) = events(service, "hook.failed")
    assert failed.payload["kind"] == "internal"
    assert "RuntimeError: the runner fell over" in failed.payload["message"]


def test_after_call_hook_runs_once_per_operator_call(
    service: Service, dispatcher: HookDispatcher
) -> None:
    ctx = service.ctx
    bind_sink(service, "sink-echo")
    bind_hook(ctx, "after", "tool:after_call", "sink-echo", principal=OP)
    bind_hook(ctx, "before", "tool:before_call", "sink-echo", principal=OP)

    for text in ("one", "two"):
        out = service.run(SINK_ID, "echo", {"text": text}, principal=OP)
        assert out["output"] == {"text": text}

    runs = events(service, "hook.run")
    assert sorted(e.payload["hook_id"] for e in runs) == ["after", "after", "before", "before"]
    calls = events(service, "tool.call")
    assert [c.payload["origin"] for c in calls].count("cli") == 2
    assert [c.payload["origin"] for c in calls].count("hook") == 4
    assert events(service, "hook.failed") == []
    # The after_call hook saw the operator's call (who, what, outcome), not its input.
    after = next(e for e in runs if e.payload["hook_id"] == "after")
    receipt = event_at(service, after.payload["receipt_seq"])
    operator_call = next(c for c in calls if c.payload["origin"] == "cli")
    expected_payload = {
        "skill_id": SINK_ID,
        "version": "1.0.0",
        "tool_id": "acme.sink_echo",
        "origin": "cli",
        "input_sha256": operator_call.payload["input_sha256"],
        "outcome": "ok",
    }
    assert receipt.payload["input_sha256"] == input_digest(
        {"event": "tool:after_call", "payload": expected_payload}
    )
    assert_chain_ok(service)


def test_an_event_fired_inside_a_hook_never_reruns_it(
    service: Service, dispatcher: HookDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = service.ctx
    bind_sink(service, "sink-echo")
    for hook_id in ("a", "b", "c"):
        bind_hook(ctx, hook_id, "gateway:startup", "sink-echo", principal=OP)
    real_call = service.runner.call
    nested = 0

    def call_and_refire(request: CallRequest, **kw: Any) -> CallReceipt:
        # As if the hook's run caused the same event again (e.g. via another listener).
        nonlocal nested
        nested += 1
        assert nested < 50, "hooks are looping"
        ctx.fire("gateway:startup", {"nested": True})
        return real_call(request, **kw)

    monkeypatch.setattr(service.runner, "call", call_and_refire)
    result = dispatcher.fire("gateway:startup", {})
    assert [d["hook_id"] for d in result["dispatched"]] == ["a", "b", "c"]
    assert all(d["ok"] for d in result["dispatched"]), result
    kinds = {e.payload["kind"] for e in events(service, "hook.failed")}
    assert kinds == {"hook_recursion", "hook_depth_exceeded"}
    # Depth: a top-level hook (1) may cause one nested level (2), never a third.
    for failed in events(service, "hook.failed"):
        if failed.payload["kind"] == "hook_depth_exceeded":
            assert "at most 2 deep" in failed.payload["message"]
    assert_chain_ok(service)


def test_fire_returns_per_hook_results(service: Service, dispatcher: HookDispatcher) -> None:
    ctx = service.ctx
    bind_sink(service, "sink-echo")
    bind_sink(service, "sink-strict", "strict")
    bind_hook(ctx, "good", "gateway:startup", "sink-echo", principal=OP)
    bind_hook(ctx, "bad", "gateway:startup", "sink-strict", principal=OP)
    bind_hook(ctx, "off", "gateway:startup", "sink-echo", enabled=False, principal=OP)
    bind_hook(ctx, "elsewhere", "skill:enabled", "sink-echo", principal=OP)

    result = dispatcher.fire("  Gateway:Startup ", {"reason": "manual"}, principal=OP)
    assert result["event"] == "gateway:startup"
    by_id = {d["hook_id"]: d for d in result["dispatched"]}
    assert list(by_id) == ["bad", "good"]  # enabled hooks of this event, in id order
    assert by_id["good"]["ok"] is True
    assert isinstance(by_id["good"]["receipt_seq"], int)
    assert by_id["bad"] == {
        "hook_id": "bad",
        "plugin_id": "sink-strict",
        "ok": False,
        "kind": "invalid_input",
        "message": by_id["bad"]["message"],
    }
    receipt = event_at(service, by_id["good"]["receipt_seq"])
    assert receipt.payload["input_sha256"] == input_digest(
        {"event": "gateway:startup", "payload": {"reason": "manual"}}
    )
    fired = events(service, "hook.fired")
    assert [(e.actor, e.payload) for e in fired] == [(OP, {"event": "gateway:startup"})]

    with pytest.raises(UnknownHookEvent, match="gateway:startup"):
        dispatcher.fire("gateway:shutdown", {})
    with pytest.raises(UsageError, match="JSON object"):
        dispatcher.fire("gateway:startup", ["not", "an", "object"])
    assert dispatcher.fire("skill:disabled", {}) == {"event": "skill:disabled", "dispatched": []}

    # The daemon's start-up announcement goes through ctx.fire to the same hooks.
    before = len(events(service, "hook.run"))
    dispatcher.announce_startup()
    assert len(events(service, "hook.run")) == before + 1
    assert_chain_ok(service)


def test_dispatcher_ignores_unknown_events_and_installs_once(
    service: Service, dispatcher: HookDispatcher
) -> None:
    dispatcher.install()
    assert service.ctx.listeners.count(dispatcher.on_event) == 1
    assert dispatcher.dispatch("skill:removed", {}) == []
    dispatcher.on_event("not-an-event", {})  # silently nothing
    dispatcher.uninstall()
    assert dispatcher.on_event not in service.ctx.listeners


def test_error_kinds_are_snake_case() -> None:
    for cls in (
        CapabilityNotDeclared,
        UnknownHookEvent,
        hooks.PluginDisabled,
        hooks.HookApprovalRequired,
        hooks.HookRecursion,
        hooks.HookDepthExceeded,
    ):
        assert issubclass(cls, PalyraError)
        assert cls.kind.replace("_", "").isalpha() and cls.kind == cls.kind.lower()
