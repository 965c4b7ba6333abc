"""Host helpers over the real generated bindings (with an in-memory host behind them)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from palyra_sdk import (
    CapabilityDenied,
    HostError,
    HostTimeout,
    HttpStatusError,
    InvalidRequest,
    NotFound,
    QuotaExceeded,
    TooLarge,
    UpstreamError,
    call_info,
    channels,
    http,
    log,
    secret,
    secrets,
    storage,
)
from palyra_sdk.host import Headers, Response

from tests.conftest import SDK_ROOT, Bindings, FakeHost


def test_log_levels(fake_host: FakeHost) -> None:
    log.trace("t")
    log.debug("d")
    log.info("i")
    log.warn("w")
    log.warning("w2")
    log.error({"not": "a string"})
    assert fake_host.logs == [
        ("trace", "t"),
        ("debug", "d"),
        ("info", "i"),
        ("warn", "w"),
        ("warn", "w2"),
        ("error", "{'not': 'a string'}"),
    ]


def test_call_info(fake_host: FakeHost) -> None:
    info = call_info()
    assert (info.skill_id, info.tool_id, info.tool, info.remaining_ms) == (
        "acme.skill",
        "acme.tool",
        "tool",
        1234,
    )


def test_get_with_params_and_secret_headers(fake_host: FakeHost, bindings: Bindings) -> None:
    fake_host.http_handler = lambda request: bindings.host.HttpResponse(
        200,
        [
            bindings.host.Header("Content-Type", "application/json; charset=utf-8"),
            bindings.host.Header("Set-Cookie", "a=1"),
            bindings.host.Header("set-cookie", "b=2"),
        ],
        b'{"temp": 21.5}',
    )
    response = http.get(
        "https://api.example.com/now?x=1",
        headers={"Accept": "application/json"},
        secret_headers={
            "Authorization": secret("skill:acme/token", prefix="Bearer "),
            "X-Api-Key": "global/api_key",
        },
        params={"q": "Oslo Sentrum", "metric": True},
    )
    [request] = fake_host.requests
    assert request.method == "GET"
    assert request.url == "https://api.example.com/now?x=1&q=Oslo+Sentrum&metric=true"
    assert [(h.name, h.value) for h in request.headers] == [("Accept", "application/json")]
    assert [(s.name, s.secret, s.prefix, s.suffix) for s in request.secret_headers] == [
        ("Authorization", "skill:acme/token", "Bearer ", ""),
        ("X-Api-Key", "global/api_key", "", ""),
    ]
    assert request.body == b""
    assert response.ok
    assert response.status == 200
    assert response.json() == {"temp": 21.5}
    assert response.text == '{"temp": 21.5}'
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["SET-COOKIE"] == "a=1, b=2"
    assert response.headers.get_all("set-cookie") == ["a=1", "b=2"]
    assert list(response.headers) == ["Content-Type", "Set-Cookie"]
    assert response.raise_for_status() is response


def test_post_bodies(fake_host: FakeHost) -> None:
    http.post("https://h/a", json={"b": [1, 2], "é": None})
    http.post("https://h/b", data="plain", headers={"content-type": "text/csv"})
    http.post("https://h/c", data={"a": "1 2", "b": 3})
    http.put("https://h/d", data=b"\x00\x01")
    http.delete("https://h/e")
    http.request("patch", "https://h/f#frag", params=[("k", "v")])
    a, b, c, d, e, f = fake_host.requests
    assert json.loads(a.body) == {"b": [1, 2], "é": None}
    assert [(h.name, h.value) for h in a.headers] == [("Content-Type", "application/json")]
    assert (b.body, [(h.name, h.value) for h in b.headers]) == (
        b"plain",
        [("content-type", "text/csv")],
    )
    assert c.body == b"a=1+2&b=3"
    assert c.headers[0].value == "application/x-www-form-urlencoded"
    assert (d.method, d.body, d.headers) == ("PUT", b"\x00\x01", [])
    assert e.method == "DELETE"
    assert (f.method, f.url) == ("PATCH", "https://h/f?k=v#frag")


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: http.request("GE T", "https://h"), "is not a valid HTTP method"),
        (lambda: http.get(""), "url must be a non-empty string"),
        (lambda: http.get("https://h", headers={"Bad Name": "x"}), "not a valid HTTP token"),
        (lambda: http.get("https://h", headers={"X": "a\r\nInjected: 1"}), "line break"),
        (lambda: http.get("https://h", headers=[("X", "1"), ("x", "2")]), "given twice"),
        (
            lambda: http.get(
                "https://h",
                headers={"Authorization": "x"},
                secret_headers={"authorization": secret("s/k")},
            ),
            "given twice",
        ),
        (lambda: http.get("https://h", secret_headers={"A": "no-slash"}), "'<scope>/<key>'"),
        (lambda: http.get("https://h", secret_headers={"A": 3}), "needs secret"),  # type: ignore[dict-item]
        (lambda: http.post("https://h", json=1, data="x"), "not both"),
        (lambda: http.post("https://h", data=3), "data must be bytes"),  # type: ignore[arg-type]
    ],
)
def test_bad_requests_are_refused_before_the_host(
    fake_host: FakeHost, call: Any, fragment: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        call()
    assert fragment in str(caught.value)
    assert caught.value.code == "invalid"
    assert fake_host.requests == []


def test_secret_helper() -> None:
    assert secret("global/key", prefix="Token ", suffix="!").prefix == "Token "
    for bad in ("nokey", "/k", "s/", "a/b/c"):
        with pytest.raises(ValueError, match="must be '<scope>/<key>'"):
            secret(bad)
    with pytest.raises(ValueError, match="line breaks"):
        secret("s/k", prefix="a\n")


@pytest.mark.parametrize(
    ("code", "cls", "kind"),
    [
        ("DENIED", CapabilityDenied, "capability_denied"),
        ("INVALID", InvalidRequest, "tool_error"),
        ("NOT_FOUND", NotFound, "not_found"),
        ("TOO_LARGE", TooLarge, "tool_error"),
        ("UPSTREAM", UpstreamError, "upstream"),
        ("TIMEOUT", HostTimeout, "timed_out"),
        ("QUOTA", QuotaExceeded, "tool_error"),
    ],
)
def test_every_host_error_code_maps(
    fake_host: FakeHost, bindings: Bindings, code: str, cls: type[HostError], kind: str
) -> None:
    def fail(request: Any) -> Any:
        raise bindings.error(code, "because\nreasons")

    fake_host.http_handler = fail
    with pytest.raises(cls) as caught:
        http.get("https://h/x")
    error = caught.value
    assert str(error) == "http.get: because reasons"
    assert error.tool_kind == kind
    assert error.__cause__ is None and error.__suppress_context__


def test_status_errors(fake_host: FakeHost, bindings: Bindings) -> None:
    fake_host.http_handler = lambda request: bindings.host.HttpResponse(404, [], b"nope")
    response = http.get("https://h/secret?token=abc")
    assert not response.ok
    with pytest.raises(HttpStatusError) as caught:
        response.raise_for_status()
    assert str(caught.value) == "http: HTTP 404 from https://h/secret"
    assert caught.value.status == 404
    assert caught.value.tool_kind == "upstream"
    with pytest.raises(UpstreamError, match="is not valid JSON"):
        response.json()


def test_response_text_charsets() -> None:
    def make(content_type: str, body: bytes) -> Response:
        return Response(200, Headers([("Content-Type", content_type)]), body, "https://h")

    assert make("text/plain; charset=latin-1", b"caf\xe9").text == "café"
    assert make("text/plain", "café".encode()).text == "café"
    assert make("text/plain; charset=nonsense", b"ok\xff").text == "ok\ufffd"


def test_denied_capability(fake_host: FakeHost) -> None:
    fake_host.denied.add("http")
    with pytest.raises(CapabilityDenied, match="capability not granted: http"):
        http.get("https://h")


def test_storage(fake_host: FakeHost) -> None:
    assert storage.get("missing") is None
    assert storage.get("missing", b"dflt") == b"dflt"
    assert storage.get_text("missing", "d") == "d"
    assert storage.get_json("missing", {"d": 1}) == {"d": 1}
    storage.put("a", "text é")
    storage.put("b", b"\xff")
    storage.put_json("c", {"n": (1, 2)})
    assert fake_host.storage == {"a": "text é".encode(), "b": b"\xff", "c": b'{"n":[1,2]}'}
    assert storage.get("a") == "text é".encode()
    assert storage.get_text("a") == "text é"
    assert storage.get_json("c") == {"n": [1, 2]}
    with pytest.raises(ValueError, match="storage key 'b' does not hold JSON"):
        storage.get_json("b")
    assert storage.list() == ["a", "b", "c"]
    assert storage.list("b") == ["b"]
    storage.put("dir/x", b"1")
    assert storage.list("dir/") == ["dir/x"]
    assert storage.delete("a") is True
    assert storage.delete("a") is False
    with pytest.raises(TypeError, match=r"use storage\.put_json"):
        storage.put("x", 3)  # type: ignore[arg-type]
    fake_host.denied.add("storage")
    with pytest.raises(CapabilityDenied, match=r"^storage.get: capability not granted"):
        storage.get("a")


def test_secrets(fake_host: FakeHost) -> None:
    fake_host.secrets[("global", "token")] = b"s3cret"
    fake_host.secrets[("global", "binary")] = b"\xff\xfe"
    assert secrets.get("global", "token") == "s3cret"
    assert secrets.get_bytes("global", "binary") == b"\xff\xfe"
    with pytest.raises(ValueError) as caught:
        secrets.get("global", "binary")
    assert "use secrets.get_bytes" in str(caught.value)
    assert "\\xff" not in str(caught.value)
    with pytest.raises(NotFound, match=r"secrets\.get: secret 'global/none'"):
        secrets.get("global", "none")


def test_channels(fake_host: FakeHost) -> None:
    channels.send("ops", "deployed")
    assert fake_host.sent == [("ops", "deployed")]
    with pytest.raises(TypeError):
        channels.send("ops", b"bytes")  # type: ignore[arg-type]
    fake_host.denied.add("channels")
    with pytest.raises(CapabilityDenied):
        channels.send("ops", "x")


def test_outside_a_component() -> None:
    """Without the bindings: log goes to stderr, every other helper says why it cannot work."""
    code = """
import sys
from palyra_sdk import log, http, storage, NotInComponent, dispatch, tool
log.info("hello")
for call in (lambda: http.get("https://h"), lambda: storage.get("k")):
    try:
        call()
    except NotInComponent as exc:
        print(exc)

@tool
def uses_storage() -> str:
    '''Use storage.'''
    return str(storage.get("k"))

try:
    dispatch("uses_storage", "{}")
except Exception as exc:
    print(type(exc).__name__, exc.kind, exc.message)
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=SDK_ROOT,
        check=True,
    )
    assert done.stderr == "[info] hello\n"
    assert done.stdout.splitlines() == [
        "http.get needs the Palyra host: it is only available inside a skill component",
        "storage.get needs the Palyra host: it is only available inside a skill component",
        "ToolFailure tool_error NotInComponent: storage.get needs the Palyra host: it is only "
        "available inside a skill component",
    ]
