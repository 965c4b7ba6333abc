"""Component-model guests: the palyra:skill world hosted with the same grants, firewall,
limits and error kinds as core modules (docs/abi.md, "Component ABI").

The probe guest (tests/guests/probe/app.py) is written on the raw bindings, not the SDK, so
these tests pin the ABI itself: each op's outcome is reported exactly as the host returned it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from component_guests import guest, sandbox
from egress_servers import LoopbackServer, StubResolver
from palyra import abi
from palyra.runtime import errors
from palyra.runtime.channels import MemoryChannelSink
from palyra.runtime.context import CallGrants, HostServices
from palyra.runtime.limits import RuntimeLimits
from palyra.runtime.sandbox import CallResult, Sandbox
from palyra.runtime.vault import MemoryVault

SECRET = b"s3cr3t-token-value"


@pytest.fixture(scope="module")
def probe() -> bytes:
    return guest("probe")


@pytest.fixture(scope="module")
def box() -> Sandbox:
    return sandbox()


def run(
    box: Sandbox, probe: bytes, *ops: dict[str, Any], tool: str = "probe", **kwargs: Any
) -> CallResult:
    return box.run(probe, input_value={"ops": list(ops)}, tool_name=tool, **kwargs)


def outcomes(box: Sandbox, probe: bytes, *ops: dict[str, Any], **kwargs: Any) -> Any:
    return run(box, probe, *ops, **kwargs).output


# ---- basics -------------------------------------------------------------------------------


def test_echo_info_and_log(box: Sandbox, probe: bytes) -> None:
    result = run(
        box,
        probe,
        {"op": "echo", "value": "héllo ✓"},
        {"op": "info"},
        {"op": "log", "level": "warn", "message": "careful"},
        skill_id="acme.probe",
        tool_id="acme.probe.probe",
    )
    echo, info, log = result.output
    assert echo == {"ok": "héllo ✓"}
    assert info["ok"]["skill_id"] == "acme.probe"
    assert info["ok"]["tool_id"] == "acme.probe.probe"
    assert info["ok"]["tool"] == "probe"
    assert 0 < info["ok"]["remaining_ms"] <= 30_000
    assert log == {"ok": None}
    assert [(line.level, line.message) for line in result.logs] == [("warn", "careful")]
    assert result.abi == "component"
    assert result.export == "call"
    assert result.fuel_used > 0
    assert json.loads(json.dumps(result.to_json()))["abi"] == "component"


def test_describe_export(box: Sandbox, probe: bytes) -> None:
    assert box.describe_component(probe) == [{"name": "probe"}, {"name": "fail"}]


def test_input_must_be_utf8(box: Sandbox, probe: bytes) -> None:
    with pytest.raises(errors.InvalidInput):
        box.run(probe, input_bytes=b"\xff\xfe", tool_name="probe")


def test_guest_exception_is_a_tool_error(box: Sandbox, probe: bytes) -> None:
    with pytest.raises(errors.ToolError) as info:
        run(box, probe, {"op": "nonsense"})
    assert "unknown op nonsense" in info.value.message
    assert info.value.details["reported_by"] == "guest"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("INVALID_INPUT", errors.InvalidInput),
        ("CAPABILITY_DENIED", errors.CapabilityDenied),
        ("TIMED_OUT", errors.TimedOut),
        ("MEMORY_LIMIT", errors.MemoryLimit),
        ("NOT_FOUND", errors.ToolError),
        ("UPSTREAM", errors.ToolError),
        ("TOOL_ERROR", errors.ToolError),
    ],
)
def test_guest_tool_error_kinds(
    box: Sandbox, probe: bytes, kind: str, expected: type[errors.RuntimeFailure]
) -> None:
    op = {"kind": kind, "message": "it failed", "details": '{"field": "x"}'}
    with pytest.raises(expected) as info:
        run(box, probe, op, tool="fail")
    assert type(info.value) is expected
    assert info.value.message == "it failed"
    assert info.value.details["guest_kind"] == kind.lower()
    assert info.value.details["guest_details"] == {"field": "x"}


def test_output_over_the_cap_is_invalid_output(box: Sandbox, probe: bytes) -> None:
    with pytest.raises(errors.InvalidOutput):
        run(
            box,
            probe,
            {"op": "echo", "value": "x" * 5000},
            limits=RuntimeLimits(max_output_bytes=4096),
        )


def test_component_over_max_component_bytes_is_invalid(box: Sandbox, probe: bytes) -> None:
    with pytest.raises(errors.InvalidModule, match="over the"):
        run(box, probe, {"op": "echo"}, limits=RuntimeLimits(max_component_bytes=1024))


def test_compiled_code_is_reused_from_the_disk_cache(probe: bytes, tmp_path: Path) -> None:
    first = Sandbox(cache_dir=tmp_path)
    first.load(probe)
    assert first.components.stats["compiles"] == 1
    second = Sandbox(cache_dir=tmp_path)
    second.load(probe)
    assert second.components.stats == {
        "memory_hits": 0, "disk_hits": 1, "compiles": 0, "rejected_cache_files": 0,
    }  # fmt: skip
    # A tampered cache file is refused (MAC) and the component recompiled, never loaded.
    (cached,) = [p for p in tmp_path.glob("*.cwasm") if p.stat().st_size > 1_000_000]
    data = bytearray(cached.read_bytes())
    data[len(data) // 2] ^= 0xFF
    cached.write_bytes(bytes(data))
    third = Sandbox(cache_dir=tmp_path)
    assert third.run(
        probe, input_value={"ops": [{"op": "echo", "value": 1}]}, tool_name="probe"
    ).output == [{"ok": 1}]
    assert third.components.stats["rejected_cache_files"] == 1
    assert third.components.stats["compiles"] == 1


# ---- hostile guests -----------------------------------------------------------------------


def test_infinite_loop_times_out(box: Sandbox, probe: bytes) -> None:
    with pytest.raises(errors.TimedOut):
        run(box, probe, {"op": "loop"}, limits=RuntimeLimits(fuel=10**15, timeout_ms=300))


def test_infinite_loop_runs_out_of_fuel(box: Sandbox, probe: bytes) -> None:
    with pytest.raises(errors.FuelExhausted):
        run(box, probe, {"op": "loop"}, limits=RuntimeLimits(fuel=5_000_000))


def test_memory_hog_is_memory_limit(box: Sandbox, probe: bytes) -> None:
    with pytest.raises(errors.MemoryLimit):
        run(box, probe, {"op": "hog"}, limits=RuntimeLimits(fuel=10**12, memory_bytes=48 * 2**20))
    # The sandbox stays usable.
    assert outcomes(box, probe, {"op": "echo", "value": 1}) == [{"ok": 1}]


def test_printing_100_mb_is_capped_into_the_log(box: Sandbox, probe: bytes) -> None:
    result = run(box, probe, {"op": "print", "chunk": 1 << 20, "times": 100},
                 limits=RuntimeLimits(fuel=10**11))  # fmt: skip
    assert result.output == [{"ok": "printed"}]
    limits = RuntimeLimits()
    assert len(result.logs) <= limits.max_log_lines
    assert sum(len(line.message.encode()) for line in result.logs) <= limits.max_log_bytes
    assert result.dropped_logs > 0
    assert all(line.level == "info" for line in result.logs)


def test_environment_is_empty(box: Sandbox, probe: bytes) -> None:
    assert outcomes(box, probe, {"op": "env"}) == [{"ok": {}}]


@pytest.mark.parametrize("path", ["/etc/passwd", "/", "./app.py", "/proc/self/environ"])
def test_no_file_can_be_opened(box: Sandbox, probe: bytes, path: str) -> None:
    ((outcome),) = outcomes(box, probe, {"op": "open", "path": path})
    assert "oserror" in outcome, outcome


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback TCP listener recording anything that connects."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    got: list[bytes] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            got.append(conn.recv(100) or b"<connected>")
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], got
    stop.set()
    thread.join()
    server.close()


def test_sockets_reach_nothing(
    box: Sandbox, probe: bytes, listener: tuple[int, list[bytes]]
) -> None:
    port, got = listener
    with pytest.raises(errors.ToolError):
        run(box, probe, {"op": "socket", "host": "127.0.0.1", "port": port})
    assert got == []


# ---- capabilities -------------------------------------------------------------------------


def test_every_capability_is_denied_without_grants(box: Sandbox, probe: bytes) -> None:
    result = run(
        box,
        probe,
        {"op": "secret_get", "scope": "s", "key": "k"},
        {"op": "storage_get", "key": "notes/a"},
        {"op": "storage_put", "key": "notes/a", "value": "1"},
        {"op": "storage_list", "prefix": ""},
        {"op": "storage_delete", "key": "notes/a"},
        {"op": "channel_send", "channel": "ops", "message": "hi"},
        {"op": "http_fetch", "url": "https://example.com/"},
    )
    assert [item.get("err") for item in result.output] == ["denied"] * 7
    assert result.egress == []


def test_storage_round_trip_with_grants(probe: bytes, tmp_path: Path) -> None:
    box = sandbox(HostServices(state_root=tmp_path))
    grants = CallGrants(storage_read=("notes",), storage_write=("notes",))
    result = run(
        box,
        probe,
        {"op": "storage_put", "key": "notes/a", "value": "héllo"},
        {"op": "storage_put", "key": "notes/b", "value": "x", "repeat": 100_000},
        {"op": "storage_get", "key": "notes/a"},
        {"op": "storage_list", "prefix": "notes"},
        {"op": "storage_get", "key": "notes/missing"},
        {"op": "storage_put", "key": "other/a", "value": "1"},
        {"op": "storage_delete", "key": "notes/a"},
        {"op": "storage_get", "key": "notes/a"},
        {"op": "storage_put", "key": "../escape", "value": "1"},
        grants=grants,
        skill_id="acme.notes",
    )
    out = result.output
    assert out[0] == {"ok": None} and out[1] == {"ok": None}
    assert out[2] == {"ok": "héllo"}
    assert sorted(out[3]["ok"]) == ["notes/a", "notes/b"]
    assert out[4]["err"] == "not-found"
    assert out[5]["err"] == "denied"
    assert out[6] == {"ok": None}
    assert out[7]["err"] == "not-found"
    assert out[8]["err"] in ("invalid", "denied")
    assert (tmp_path / "skill-data" / "acme.notes" / "notes" / "b").read_bytes() == b"x" * 100_000


def test_storage_value_over_the_cap_is_too_large(probe: bytes, tmp_path: Path) -> None:
    box = sandbox(HostServices(state_root=tmp_path))
    grants = CallGrants(storage_read=("notes",), storage_write=("notes",))
    out = outcomes(
        box, probe, {"op": "storage_put", "key": "notes/a", "value": "x", "repeat": 2048},
        grants=grants, limits=RuntimeLimits(max_storage_value_bytes=1024),
    )  # fmt: skip
    assert out[0]["err"] == "too-large"


def test_secret_is_readable_when_granted_and_redacted_everywhere(probe: bytes) -> None:
    box = sandbox(HostServices(vault=MemoryVault({("skill:acme", "token"): SECRET})))
    grants = CallGrants(secrets=frozenset({("skill:acme", "token")}))
    result = run(
        box,
        probe,
        {"op": "secret_get", "scope": "skill:acme", "key": "token"},
        {"op": "log", "message": f"leaking {SECRET.decode()}"},
        {"op": "secret_get", "scope": "skill:acme", "key": "other"},
        grants=grants,
    )
    text = json.dumps(result.to_json())
    assert SECRET.decode() not in text
    assert result.output[0] == {"ok": "[REDACTED]"}
    assert result.logs[0].message == "leaking [REDACTED]"
    assert result.output[2]["err"] == "denied"


def test_channel_send_when_granted(probe: bytes) -> None:
    sink = MemoryChannelSink()
    box = sandbox(HostServices(channel_sink=sink))
    grants = CallGrants(channels=("ops",))
    out = outcomes(
        box, probe,
        {"op": "channel_send", "channel": "ops", "message": "deployed ✓"},
        {"op": "channel_send", "channel": "other", "message": "no"},
        {"op": "channel_send", "channel": "ops", "message": "x", "repeat": 100_000},
        grants=grants, skill_id="acme.ops",
    )  # fmt: skip
    assert out[0] == {"ok": None}
    assert out[1]["err"] == "denied"
    assert out[2]["err"] == "too-large"
    assert [(m.skill_id, m.channel, m.text) for m in sink.messages] == [
        ("acme.ops", "ops", "deployed ✓")
    ]


@pytest.fixture
def http_server() -> Iterator[LoopbackServer]:
    server = LoopbackServer().start()
    yield server
    server.stop()


def test_http_fetch_through_the_firewall_with_an_injected_secret(
    probe: bytes, http_server: LoopbackServer
) -> None:
    services = HostServices(
        resolver=StubResolver({"api.test.local": ["127.0.0.1"]}),
        vault=MemoryVault({("skill:acme", "token"): SECRET}),
    )
    box = sandbox(services)
    port = http_server.port
    grants = CallGrants(
        http_hosts=("api.test.local",),
        allow_http=True,
        allow_private_network=True,
        allowed_ports=frozenset({port}),
        secrets=frozenset({("skill:acme", "token")}),
    )
    result = run(
        box,
        probe,
        {
            "op": "http_fetch",
            "method": "post",
            "url": f"http://api.test.local:{port}/v1/items",
            "headers": {"X-Test": "1"},
            "secret_headers": {
                "Authorization": {"secret": "skill:acme/token", "prefix": "Bearer "}
            },
            "body": "hello",
        },
        {"op": "http_fetch", "url": f"http://evil.test:{port}/"},
        {"op": "http_fetch", "url": f"http://api.test.local:{port}/", "headers": {"Host": "evil"}},
        grants=grants,
    )
    ok, evil, host_override = result.output
    assert ok["ok"]["status"] == 200
    assert json.loads(ok["ok"]["body"])["method"] == "POST"
    assert ["X-Test", "yes"] in ok["ok"]["headers"]
    assert evil["err"] == "denied"
    assert host_override["err"] == "invalid"
    (seen,) = http_server.seen
    assert seen.headers["authorization"] == "Bearer " + SECRET.decode()
    assert seen.body == b"hello"
    assert SECRET.decode() not in json.dumps(result.to_json())
    assert [record["decision"] for record in result.egress] == ["allowed", "denied", "denied"]


def test_http_fetch_names_the_secret_it_could_not_inject(
    probe: bytes, http_server: LoopbackServer
) -> None:
    box = sandbox(HostServices(resolver=StubResolver({"api.test.local": ["127.0.0.1"]})))
    port = http_server.port
    grants = CallGrants(
        http_hosts=("api.test.local",),
        allow_http=True,
        allow_private_network=True,
        allowed_ports=frozenset({port}),
        secrets=frozenset({("skill:acme", "token")}),
    )
    url = f"http://api.test.local:{port}/"

    def fetch(secret: str) -> dict[str, str]:
        op = {"op": "http_fetch", "url": url, "secret_headers": {"X-Key": {"secret": secret}}}
        # a refused request first, so a stale firewall reason would show
        evil = {"op": "http_fetch", "url": f"http://evil.test:{port}/"}
        _evil, outcome = run(box, probe, evil, op, grants=grants).output
        return dict(outcome)

    missing = fetch("skill:acme/token")  # granted, but the vault has no value
    assert missing["err"] == "not-found"
    assert (
        missing["message"]
        == "not found: secret 'skill:acme/token' for header 'X-Key' has no value in the vault"
    )
    ungranted = fetch("skill:acme/other")
    assert ungranted["err"] == "denied" and "is not granted" in ungranted["message"]
    assert http_server.seen == []


def test_http_fetch_of_a_large_body_is_fast_enough_to_finish(
    probe: bytes, http_server: LoopbackServer
) -> None:
    """A 1 MiB body crosses the list<u8> fast path both ways within the call's budget."""
    services = HostServices(resolver=StubResolver({"api.test.local": ["127.0.0.1"]}))
    box = sandbox(services)
    port = http_server.port
    grants = CallGrants(
        http_hosts=("api.test.local",), allow_http=True, allow_private_network=True,
        allowed_ports=frozenset({port}),
    )  # fmt: skip
    out = outcomes(
        box, probe,
        {"op": "http_fetch", "method": "POST", "url": f"http://api.test.local:{port}/echo",
         "body": "y" * 1024, "repeat": 1 << 10},
        grants=grants, limits=RuntimeLimits(fuel=10**10, timeout_ms=20_000,
                                            max_http_request_bytes=4 << 20, max_output_bytes=8 << 20),
    )  # fmt: skip
    assert len(json.loads(out[0]["ok"]["body"])["body"]) == 1 << 20


def test_component_abi_host_functions_match_the_wit() -> None:
    wit = (
        Path(__file__).resolve().parent.parent / "sdk/python/palyra_sdk/wit/palyra-skill.wit"
    ).read_text()
    declared = {
        line.split(":")[0].strip()
        for line in wit.split("interface host {")[1].split("\n}")[0].splitlines()
        if ": func(" in line
    }
    assert declared == set(abi.COMPONENT_HOST_FUNCTIONS)
    assert "package palyra:skill@1.0.0;" in wit


def test_copying_too_much_across_the_boundary_is_resource_limit(
    probe: bytes, http_server: LoopbackServer
) -> None:
    services = HostServices(resolver=StubResolver({"api.test.local": ["127.0.0.1"]}))
    box = sandbox(services)
    port = http_server.port
    grants = CallGrants(
        http_hosts=("api.test.local",), allow_http=True, allow_private_network=True,
        allowed_ports=frozenset({port}),
    )  # fmt: skip
    with pytest.raises(errors.ResourceLimit, match="copied more data"):
        run(
            box, probe,
            {"op": "http_fetch", "method": "POST", "url": f"http://api.test.local:{port}/echo",
             "body": "y" * 1024, "repeat": 4 << 10},
            grants=grants, limits=RuntimeLimits(fuel=10**10, timeout_ms=20_000,
                                                max_http_request_bytes=8 << 20),
        )  # fmt: skip
