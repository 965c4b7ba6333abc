"""The HTTP API against its own published OpenAPI document, on a real daemon over loopback.

1. Every route the live document lists (and the document itself) refuses a request without
   the right bearer token — no header, a wrong token, the ``Basic`` scheme (with the real
   token as its credential), an empty bearer — with 401 and the ``unauthorized`` envelope.
2. Schemathesis generates requests for every operation (valid and invalid, with the token)
   and no answer is a 5xx. The fixture skill is installed first and half or more of the
   generated requests name it, so the run, status and verify routes meet a real skill rather
   than only 404s. ``/journal/stream`` never ends, so it is read once by hand instead.
3. Requests schemathesis once found a 5xx with, pinned so they are tried on every run.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

import daemon_fixtures as df
from daemon_server import running_daemon
from palyra.daemon.server import Daemon

API = "/api/v1"
OPENAPI = f"{API}/openapi.json"
STREAM = f"{API}/journal/stream"
RUN = f"{API}/skills/{{skill_id}}/tools/{{tool}}/run"
MAX_EXAMPLES = 25  # per operation and phase; the whole file stays well under two minutes
RUN_MAX_EXAMPLES = 80
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon for the module, with the fixture skill installed (active) over the API."""
    with running_daemon(tmp_path_factory.mktemp("api-fuzz") / "state") as running:
        with _client(running) as client:
            installed = client.post(
                f"{API}/skills/install",
                params={"allow_tofu": "true"},
                content=df.artifact(),
                headers={"Content-Type": "application/octet-stream"},
            )
            assert installed.status_code == 200, installed.text
            ran = client.post(
                f"{API}/skills/{df.SKILL_ID}/tools/echo/run", json={"input": {"text": "hi"}}
            )
            assert ran.status_code == 200, ran.text
        yield running


def _client(daemon: Daemon, *, authorized: bool = True) -> httpx.Client:
    """A client that sends the daemon's token, or no Authorization header at all."""
    headers = {"Authorization": f"Bearer {daemon.token}"} if authorized else {}
    return httpx.Client(base_url=daemon.url, headers=headers, timeout=30.0, trust_env=False)


@pytest.fixture(scope="module")
def openapi(daemon: Daemon) -> dict[str, Any]:
    with _client(daemon) as client:
        response = client.get(OPENAPI)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


# ---- 1. authentication on every route ------------------------------------------------------


def _operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(METHOD, concrete path) for every operation, path parameters replaced by dummies."""
    found: list[tuple[str, str]] = []
    for template, item in document["paths"].items():
        path = re.sub(r"\{[^}/]+\}", "dummy", template)
        found.extend((method.upper(), path) for method in item if method in HTTP_METHODS)
    return sorted(found)


def _bad_credentials(token: str) -> dict[str, dict[str, str]]:
    wrong = ("A" if token[0] != "A" else "B") + token[1:]  # same length, one character off
    return {
        "no Authorization header": {},
        "wrong token": {"Authorization": f"Bearer {wrong}"},
        "Basic scheme": {"Authorization": f"Basic {token}"},
        "empty bearer": {"Authorization": "Bearer"},
    }


def _refusal_problem(response: httpx.Response) -> str | None:
    if response.status_code != 401:
        return f"status {response.status_code}: {response.text[:200]}"
    if response.headers.get("www-authenticate") != "Bearer":
        return f"WWW-Authenticate is {response.headers.get('www-authenticate')!r}"
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"not the error envelope: {response.text[:200]}"
    if not isinstance(error, dict) or error.get("kind") != "unauthorized":
        return f"error is {error!r}, not kind 'unauthorized'"
    if not isinstance(error.get("message"), str):
        return f"error has no message: {error!r}"
    return None


def test_every_route_refuses_a_missing_or_wrong_token(
    daemon: Daemon, openapi: dict[str, Any]
) -> None:
    operations = _operations(openapi)
    # The document is the live one: it lists the routes this file exercises and many more.
    assert ("GET", f"{API}/ping") in operations
    assert ("POST", f"{API}/skills/dummy/tools/dummy/run") in operations
    assert ("GET", STREAM) in operations
    assert len(operations) >= 20, operations
    operations.append(("GET", OPENAPI))  # the document itself is protected too
    problems = []
    with _client(daemon, authorized=False) as client:
        for label, headers in _bad_credentials(daemon.token).items():
            for method, path in operations:
                body = b"{}" if method in ("POST", "PUT", "PATCH") else None
                response = client.request(
                    method,
                    path,
                    headers={**headers, "Content-Type": "application/json"},
                    content=body,
                )
                problem = _refusal_problem(response)
                if problem is not None:
                    problems.append(f"{label}: {method} {path}: {problem}")
    assert not problems, "\n".join(problems)


def test_the_token_is_what_opens_the_routes(daemon: Daemon) -> None:
    """The control: the same client with the right token gets through."""
    with _client(daemon) as client:
        assert client.get(f"{API}/ping").json() == {"ok": True}
        assert client.get(OPENAPI).status_code == 200


# ---- 2. schemathesis: no 5xx on any route ---------------------------------------------------


@pytest.fixture(scope="module")
def api_schema(daemon: Daemon) -> schemathesis.BaseSchema:
    """The live document (fetched with the token), requests sent with the token."""
    auth = {"Authorization": f"Bearer {daemon.token}"}
    config = schemathesis.Config.from_dict(
        {
            "base-url": daemon.url,
            "headers": auth,
            "request-timeout": 30,
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            # The route that runs guest code gets more: most of its cases reach the runner.
            "operations": [{"include-path": RUN, "generation": {"max-examples": RUN_MAX_EXAMPLES}}],
            # Nothing but "no 5xx" is asserted (see the test); the stateful phase would
            # chain calls the document declares no links for.
            "phases": {"stateful": {"enabled": False}},
        }
    )
    schema = schemathesis.openapi.from_url(
        f"{daemon.url}{OPENAPI}", config=config, headers=auth, timeout=30
    )

    @schema.hook
    def flatmap_path_parameters(
        context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
    ) -> st.SearchStrategy[dict[str, Any] | None]:
        """Half or more of the requests name the installed skill (and a tool that answers at
        once: ``guarded`` would wait for an approval, ``spin`` for 400 ms).

        Removal keeps the generated id, so the skill stays installed for the other routes."""
        operation = context.operation
        if operation is None or operation.method.upper() == "DELETE":
            return st.just(path_parameters)
        if not isinstance(path_parameters, dict) or "skill_id" not in path_parameters:
            return st.just(path_parameters)
        real = {**path_parameters, "skill_id": df.SKILL_ID}
        if "tool" not in real:
            return st.sampled_from([path_parameters, real])
        return st.sampled_from(
            [path_parameters, {**real, "tool": "echo"}, {**real, "tool": "needs_secret"}]
        )

    @schema.hook
    def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
        """Half the bodies drop ``version`` (a random one is only ever ``not_found``)."""
        return _maybe_without_version(body)

    @schema.hook
    def flatmap_query(context: schemathesis.HookContext, query: Any) -> st.SearchStrategy[Any]:
        return _maybe_without_version(query)

    return schema


def _maybe_without_version(values: Any) -> st.SearchStrategy[Any]:
    if not isinstance(values, dict) or "version" not in values:
        return st.just(values)
    return st.sampled_from([values, {k: v for k, v in values.items() if k != "version"}])


# Filters go on the lazy schema: the fixture's own filters are replaced when it is resolved.
schema = schemathesis.pytest.from_fixture("api_schema").exclude(path=STREAM)


def _no_server_error(case: schemathesis.Case[Any]) -> None:
    """Only ``not_a_server_error``: a 4xx for a bad request is the documented behaviour, and
    the document does not list every 4xx each route can answer. A failure names the exact
    request (as a curl command) and the response."""
    case.call_and_validate(checks=[not_a_server_error])


# Tool runs go first, while the fixture skill is still active: the other routes disable and
# quarantine it as they are fuzzed.
@schema.include(path=RUN).parametrize()
def test_tool_runs_never_answer_with_a_server_error(case: schemathesis.Case[Any]) -> None:
    _no_server_error(case)


@schema.exclude(path=RUN).parametrize()
def test_no_route_answers_with_a_server_error(case: schemathesis.Case[Any]) -> None:
    _no_server_error(case)


# ---- 3. pinned finds -------------------------------------------------------------------------


def test_an_archive_of_the_wrong_shape_is_a_client_error(daemon: Daemon) -> None:
    """Pinned from a schemathesis find: a ZIP holding only ``a.txt`` uploaded with
    ``force=true`` and control characters in ``source_ref`` answered 500 in one run
    (``TypeError: UnknownArtifactEntryError.__init__() got an unexpected keyword argument
    'details'``) while the daemon code was being edited; the right answer is this 400."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "a")
    with _client(daemon) as client:
        for params in ({}, {"force": "true", "source_ref": "_\u00bc\x03\u009bX0\u00d0\x19"}):
            response = client.post(
                f"{API}/skills/install",
                params=params,
                content=buffer.getvalue(),
                headers={"Content-Type": "application/octet-stream"},
            )
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["kind"] == "unknown_artifact_entry"
            assert error["details"] == {"path": "a.txt"}


def test_a_journal_cursor_past_int64_is_a_client_error(daemon: Daemon) -> None:
    """Pinned from a schemathesis find: ``GET /journal?after=353300638729493151744`` answered
    500 (``OverflowError: Python int too large to convert to SQLite INTEGER``); the stream
    route takes the same cursor and broke off mid-response."""
    statuses = {}
    with _client(daemon) as client:
        for path in (f"{API}/journal", STREAM):
            # Streamed, so a 200 event stream is seen as such rather than read forever.
            with client.stream("GET", path, params={"after": 2**63}, timeout=10.0) as response:
                statuses[path] = response.status_code
                if 400 <= response.status_code < 500:
                    assert response.read() and response.json()["error"]["kind"]
    assert all(400 <= status < 500 for status in statuses.values()), statuses


# ---- 4. the journal stream, by hand ---------------------------------------------------------


def test_the_journal_stream_sends_events_and_lets_go(daemon: Daemon) -> None:
    """The first event is the oldest journal entry; closing the client ends the stream."""
    with (
        _client(daemon) as client,
        client.stream("GET", STREAM, params={"after": 0}, timeout=10.0) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event: dict[str, str] = {}
        for line in response.iter_lines():
            if not line:
                if "data" in event:
                    break  # one complete event
                event = {}
                continue
            if line.startswith(":"):
                continue  # a comment (the stream's greeting)
            field, _, value = line.partition(":")
            event[field] = value.removeprefix(" ")
    assert event["event"] == "journal"
    data = json.loads(event["data"])
    assert data["seq"] == int(event["id"]) >= 1
    # The daemon still answers (the closed stream did not hold a worker or wedge the loop).
    with _client(daemon) as client:
        assert client.get(f"{API}/ping").status_code == 200
