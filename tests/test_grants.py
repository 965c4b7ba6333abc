"""Capability grants and policy bindings derived from a manifest (reference §6, item 28)."""

from __future__ import annotations

from conftest import SAMPLE_MANIFEST, replace_manifest
from palyra.skills.grants import (
    PolicyBinding,
    SecretGrant,
    capability_grants_from_manifest,
    policy_bindings_from_manifest,
    policy_requests_from_manifest,
)
from palyra.skills.manifest import parse_manifest_toml


def test_reference_item_28() -> None:
    manifest = parse_manifest_toml(SAMPLE_MANIFEST)
    grants = capability_grants_from_manifest(manifest)
    assert grants.http_hosts == ("api.example.com",)
    assert grants.storage_prefixes == ("skills/cache",)
    assert any(
        request["action"] == "tool.execute" for request in policy_requests_from_manifest(manifest)
    )


def test_read_roots_are_read_only_grants_and_secrets_keep_structure() -> None:
    grants = capability_grants_from_manifest(parse_manifest_toml(SAMPLE_MANIFEST))
    assert grants.storage_read_prefixes == ("skills/data",)
    assert grants.secrets == (SecretGrant("skill:acme.echo_http", "api_token"),)
    # The reference string form, with the ':' its runner's charset used to reject.
    assert grants.secret_keys == ("skill:acme.echo_http/api_token",)
    assert grants.to_json()["secret_keys"] == ["skill:acme.echo_http/api_token"]


def test_channels_come_from_node_capabilities() -> None:
    text = replace_manifest(
        "node_capabilities = []", 'node_capabilities = ["channel:ops", "channel:ops", "gpu"]'
    )
    grants = capability_grants_from_manifest(parse_manifest_toml(text))
    assert grants.channels == ("ops",)


def test_writable_root_is_not_repeated_as_read_only() -> None:
    text = replace_manifest('read_roots = ["skills/data"]', 'read_roots = ["skills/cache"]')
    grants = capability_grants_from_manifest(parse_manifest_toml(text))
    assert grants.storage_read_prefixes == ()
    assert grants.storage_prefixes == ("skills/cache",)


def test_policy_bindings_sorted_like_the_reference() -> None:
    bindings = policy_bindings_from_manifest(parse_manifest_toml(SAMPLE_MANIFEST))
    assert bindings == [
        PolicyBinding("skill.capability.filesystem.write", "skill:acme.echo_http", True),
        PolicyBinding("skill.capability.http.egress", "skill:acme.echo_http", True),
        PolicyBinding("skill.capability.vault.read", "skill:acme.echo_http", True),
        PolicyBinding("tool.execute", "tool:acme.echo", False),
        PolicyBinding("tool.execute", "tool:acme.http_get", True),
    ]
    requests = policy_requests_from_manifest(parse_manifest_toml(SAMPLE_MANIFEST))
    assert requests[0] == {
        "principal": "skill:acme.echo_http",
        "action": "skill.capability.filesystem.write",
        "resource": "skill:acme.echo_http",
    }


def test_device_binding() -> None:
    text = replace_manifest("device_capabilities = []", 'device_capabilities = ["camera"]')
    bindings = policy_bindings_from_manifest(parse_manifest_toml(text))
    assert PolicyBinding("skill.capability.device.use", "skill:acme.echo_http", True) in bindings
