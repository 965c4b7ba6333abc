"""The Python example skills in examples/python/, run the way an installed skill runs.

Each example is built with componentize-py (cached under build/test-cache, like
component_guests.py), packaged and signed, verified against a trust store that holds the
signing key, audited, and every tool is called through ``run_tool`` in the real sandbox: the
input and the output are checked against skill.toml's schemas by the runtime, and again here
with jsonschema. The weather example talks HTTPS to a real server on loopback (a throwaway
CA; the resolver maps api.weather.example to 127.0.0.1) with its token injected by the host
from a vault.

Tests share one opened skill per module (and per xdist worker), so they never assume an
empty storage: each uses its own titles and tags, or compares before and after.
"""

from __future__ import annotations

import json
import re
import shutil
import ssl
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
from palyra_sdk import a2ui

from egress_servers import (
    LoopbackServer,
    Pki,
    Seen,
    StubResolver,
    make_pki,
    server_tls_context,
)
from palyra.authoring.local_skill import LocalSkill
from palyra.authoring.skill_dir import fill_tools
from palyra.runtime.context import HostServices
from palyra.runtime.errors import RuntimeFailure
from palyra.runtime.limits import RuntimeLimits
from palyra.runtime.sandbox import CallResult
from palyra.runtime.tools import RuntimePolicy, find_tool
from palyra.runtime.vault import MemoryVault
from palyra.skills.audit import AuditPolicy, audit_verified
from palyra.skills.inspect import inspect_skill_artifact
from palyra.skills.keys import SigningKey
from palyra.skills.trust import TrustDecision, TrustStore
from palyra.skills.verify import verify_inspection

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "python"
CACHE = REPO / "build" / "test-cache"
KEY = SigningKey.from_bytes(bytes([0x2A]) * 32)  # a test fixture, not a publisher's key

API_HOST = "api.weather.example"
SECRET_SCOPE = "skill:acme.http_json"
SECRET = "wx-4f1d-example-token-0b7e"  # a test fixture, not a credential
BEARER = f"Bearer {SECRET}"

# What each example's manifest grants (capability_grants_from_manifest), by directory.
GRANTS = {
    "notes": {"storage_prefixes": ["notes"], "http_hosts": [], "secret_keys": []},
    "http_json": {
        "storage_prefixes": [],
        "http_hosts": [API_HOST],
        "secret_keys": [f"{SECRET_SCOPE}/api_token"],
    },
    "report": {"storage_prefixes": ["report"], "http_hosts": [], "secret_keys": []},
}
SKILL_IDS = {"notes": "acme.notes", "http_json": "acme.http_json", "report": "acme.report"}
TOOLS = {
    "notes": ["add", "get", "list_notes", "delete"],
    "http_json": ["weather"],
    "report": ["report", "add_entry"],
}
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def open_example(name: str, services: HostServices) -> LocalSkill:
    return LocalSkill.open(
        EXAMPLES / name,
        key=KEY,
        services=services,
        build_cache=CACHE / "builds",
        code_cache=CACHE / "modules",
    )


def quota_policy(skill: LocalSkill) -> RuntimePolicy:
    """Grants what the manifest declares, with an operator fuel limit exactly as high as the
    manifest's fuel_budget, whatever the runtime's default operator limit is: a report (an
    A2UI document checked against its schema inside the component) takes 15-26 M fuel."""
    fuel = skill.manifest.capabilities.quotas.fuel_budget
    return RuntimePolicy.allow_declared(limits=RuntimeLimits(fuel=fuel))


def run(
    skill: LocalSkill, tool: str, value: Any, policy: RuntimePolicy | None = None
) -> CallResult:
    """One call; its output is checked against the tool's output schema here too."""
    result = skill.run(tool, value, policy)
    schema = find_tool(skill.manifest, tool).output_schema
    jsonschema.Draft202012Validator(schema).validate(result.output)
    return result


def call(skill: LocalSkill, tool: str, value: Any, policy: RuntimePolicy | None = None) -> Any:
    return run(skill, tool, value, policy).output


def fails(
    skill: LocalSkill, tool: str, value: Any, policy: RuntimePolicy | None = None
) -> RuntimeFailure:
    with pytest.raises(RuntimeFailure) as caught:
        skill.run(tool, value, policy)
    return caught.value


def kind(failure: RuntimeFailure) -> str:
    """The error kind as the tool meant it. The runtime reports a guest's ``not_found`` and
    ``upstream`` as ``tool_error`` carrying ``guest_kind`` (the WIT's error-kind rules)."""
    if failure.kind == "tool_error":
        return str(failure.details.get("guest_kind", "tool_error"))
    return failure.kind


# ---- the opened skills ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def notes(tmp_path_factory: pytest.TempPathFactory) -> LocalSkill:
    return open_example("notes", HostServices(state_root=tmp_path_factory.mktemp("notes")))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> LocalSkill:
    return open_example("report", HostServices(state_root=tmp_path_factory.mktemp("report")))


class _WeatherHandler(BaseHTTPRequestHandler):
    """A fictional weather API: ``GET /v1/current?city=&units=`` with a bearer token."""

    server: WeatherApi
    timeout = 10

    def setup(self) -> None:
        super().setup()
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.note(Seen("GET", self.path, headers.get("host"), headers, b""))
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        city = query.get("city", [""])[0]
        units = query.get("units", ["metric"])[0]
        if url.path != "/v1/current":
            self._json(404, {"error": "no such endpoint"})
        elif headers.get("authorization") != BEARER:
            self._json(401, {"error": "bad token"})
        elif city == "Atlantis":
            self._json(404, {"error": "unknown city"})
        elif city == "Crashville":
            self._json(503, {"error": "maintenance"})
        elif city == "Garbage":
            self._send(200, b"<html>not json</html>", "text/html")
        elif city == "Hothouse":
            self._json(200, {**self._reading(city, units), "temperature": "very hot"})
        elif city == "Swamp":
            self._json(200, {**self._reading(city, units), "humidity": 140})
        elif city == "Echo":  # an API that leaks the caller's credentials into its answer
            self._json(200, {**self._reading(city, units), "conditions": headers["authorization"]})
        else:
            self._json(200, self._reading(city, units))

    @staticmethod
    def _reading(city: str, units: str) -> dict[str, Any]:
        return {
            "city": city,
            "temperature": 21.5 if units == "metric" else 70.7,
            "conditions": "light rain",
            "humidity": 81,
            "observed_at": "2026-01-31T12:00:00Z",
            "station": {"id": "X-17"},  # extra fields are ignored
        }

    def _json(self, status: int, body: Any) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class WeatherApi(LoopbackServer):
    def __init__(self, tls: ssl.SSLContext) -> None:
        super().__init__(tls)
        self.RequestHandlerClass = _WeatherHandler


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), (API_HOST,))


@pytest.fixture(scope="module")
def ca_bundle(pki: Pki) -> str:
    return str(pki.ca_pem)


@pytest.fixture(scope="module")
def weather_api(pki: Pki) -> Iterator[WeatherApi]:
    server = WeatherApi(server_tls_context(pki))
    server.start()
    yield server
    server.stop()


def weather_services(ca_bundle: str, vault: MemoryVault) -> HostServices:
    return HostServices(
        resolver=StubResolver({API_HOST: ["127.0.0.1"]}), vault=vault, ca_bundle=ca_bundle
    )


@pytest.fixture(scope="module")
def weather(ca_bundle: str) -> LocalSkill:
    vault = MemoryVault({(SECRET_SCOPE, "api_token"): SECRET.encode()})
    return open_example("http_json", weather_services(ca_bundle, vault))


@pytest.fixture(scope="module")
def examples(notes: LocalSkill, weather: LocalSkill, report: LocalSkill) -> dict[str, LocalSkill]:
    return {"notes": notes, "http_json": weather, "report": report}


def loopback(server: WeatherApi) -> RuntimePolicy:
    """The declared grants, plus what reaching a server on loopback takes."""
    return RuntimePolicy.allow_declared(
        allow_private_network=True, allowed_ports=frozenset({server.port})
    )


# ---- every example: packaged, verified, audited, manifest in sync ---------------------------


@pytest.mark.parametrize("name", sorted(SKILL_IDS))
def test_example_is_signed_verified_and_audited(examples: dict[str, LocalSkill], name: str) -> None:
    skill = examples[name]
    inspection = inspect_skill_artifact(skill.artifact)
    assert inspection.manifest.skill_id == SKILL_IDS[name]
    assert inspection.manifest.publisher == "acme"
    assert inspection.modules == ["modules/skill.wasm"]
    assert inspection.public_key_hex == KEY.public_key_hex
    store = TrustStore().with_extra_trust([("acme", KEY.public_key_hex)])
    verification = verify_inspection(inspection, store, allow_tofu=False)
    assert verification.trust_decision is TrustDecision.ALLOWLISTED
    grants = verification.capability_grants.to_json()
    assert {key: grants[key] for key in GRANTS[name]} == GRANTS[name]
    audit = audit_verified(verification, AuditPolicy())
    assert audit.passed, audit.quarantine_reasons
    assert not audit.should_quarantine
    quotas = inspection.manifest.capabilities.quotas
    assert quotas.fuel_budget >= 50_000_000
    assert quotas.max_memory_bytes == 64 * 1024 * 1024
    assert quotas.wall_clock_timeout_ms >= 5000


@pytest.mark.parametrize("name", sorted(SKILL_IDS))
def test_manifest_tools_are_what_the_component_describes(
    examples: dict[str, LocalSkill], name: str, tmp_path: Path
) -> None:
    skill = examples[name]
    described = skill.describe()
    assert [item["name"] for item in described] == TOOLS[name]
    assert [(t.id, t.name) for t in skill.manifest.tools] == [
        (f"{SKILL_IDS[name]}.{tool}", tool) for tool in TOOLS[name]
    ]
    shutil.copy(EXAMPLES / name / "skill.toml", tmp_path / "skill.toml")  # never the source
    filled = fill_tools(tmp_path, described)
    assert (filled.changed, filled.added, filled.updated, filled.removed) == (False, (), (), ())
    assert (tmp_path / "skill.toml").read_bytes() == (EXAMPLES / name / "skill.toml").read_bytes()


# ---- notes ----------------------------------------------------------------------------------


def test_notes_add_get_list_and_delete(notes: LocalSkill) -> None:
    tag = f"t{uuid.uuid4().hex[:12]}"
    first = call(notes, "add", {"title": "Buy milk & eggs!", "body": "2 litres", "tags": [tag]})
    assert re.fullmatch(r"buy-milk-eggs-\d+", first["id"])
    assert first["id"] == f"buy-milk-eggs-{first['number']}"
    assert (first["title"], first["body"], first["tags"]) == ("Buy milk & eggs!", "2 litres", [tag])
    assert ISO_UTC.match(first["created_at"])
    second = call(notes, "add", {"title": "Привет, мир", "body": "", "tags": [tag, "greetings"]})
    assert second["id"] == f"note-{second['number']}"  # no ASCII words: the fallback slug
    assert second["number"] == first["number"] + 1

    assert call(notes, "get", {"id": first["id"]}) == first
    assert call(notes, "get", {"id": second["id"]}) == second

    listed = call(notes, "list_notes", {"tag": tag})
    summary = ("id", "title", "tags", "created_at")
    assert listed == {
        "notes": [{k: note[k] for k in summary} for note in (second, first)],  # newest first
        "total": 2,
    }
    everything = call(notes, "list_notes", {})
    assert everything["total"] >= 2
    assert everything["notes"][0]["id"] == second["id"]
    assert call(notes, "list_notes", {"tag": tag, "limit": 1})["notes"] == listed["notes"][:1]

    assert call(notes, "delete", {"id": first["id"]}) == {"id": first["id"], "deleted": True}
    assert [n["id"] for n in call(notes, "list_notes", {"tag": tag})["notes"]] == [second["id"]]
    assert kind(fails(notes, "get", {"id": first["id"]})) == "not_found"
    assert call(notes, "delete", {"id": second["id"]})["deleted"] is True
    assert call(notes, "list_notes", {"tag": tag}) == {"notes": [], "total": 0}


def test_notes_keeps_every_key_under_its_root(notes: LocalSkill) -> None:
    tag = f"t{uuid.uuid4().hex[:12]}"
    note = call(notes, "add", {"title": "Layout", "body": "body text ✓", "tags": [tag]})
    assert notes.services.state_root is not None
    root = notes.services.state_root / "skill-data" / "acme.notes"
    assert {path.name for path in root.iterdir()} == {"notes"}
    assert (root / "notes" / "bodies" / note["id"]).read_text() == "body text ✓"
    assert (root / "notes" / "tags" / tag / note["id"]).read_bytes() == b""
    assert json.loads((root / "notes" / "index" / note["id"]).read_text())["title"] == "Layout"
    call(notes, "delete", {"id": note["id"]})
    assert not (root / "notes" / "bodies" / note["id"]).exists()
    assert not (root / "notes" / "tags" / tag / note["id"]).exists()


def test_notes_lists_the_longest_notes_within_the_default_fuel(notes: LocalSkill) -> None:
    """Listing reads small index entries, never bodies: ten maximal notes (the most one call
    lists) stay within 10 M fuel, a fifth of the manifest's budget."""
    tag = f"t{uuid.uuid4().hex[:12]}"
    tags = [tag, *(f"{tag}-{i}" for i in range(4))]
    for index in range(10):
        call(notes, "add", {"title": f"{index} " + "x" * 190, "body": "y" * 4000, "tags": tags})
    result = run(notes, "list_notes", {"tag": tag, "limit": 10})
    assert result.output["total"] == 10
    assert [n["title"][0] for n in result.output["notes"]] == list("9876543210")
    assert result.fuel_used < 10_000_000


@pytest.mark.parametrize(
    ("tool", "value", "expected"),
    [
        ("get", {"id": "../../etc/passwd"}, "invalid_input"),
        ("get", {"id": "notes/index/x-1"}, "invalid_input"),
        ("get", {"id": "x" * 70 + "-1"}, "invalid_input"),
        ("get", {}, "invalid_input"),
        ("get", {"id": "no-such-note-999999"}, "not_found"),
        ("delete", {"id": "no-such-note-999999"}, "not_found"),
        ("add", {"title": "", "body": ""}, "invalid_input"),
        ("add", {"title": " \t ", "body": ""}, "invalid_input"),
        ("add", {"title": "t" * 201, "body": ""}, "invalid_input"),
        ("add", {"title": "t", "body": "b" * 4001}, "invalid_input"),
        ("add", {"title": "t", "body": "", "tags": ["Upper"]}, "invalid_input"),
        ("add", {"title": "t", "body": "", "tags": ["../x"]}, "invalid_input"),
        ("add", {"title": "t", "body": "", "tags": ["a", "a"]}, "invalid_input"),
        ("add", {"title": "t", "body": "", "tags": list("abcdef")}, "invalid_input"),
        ("add", {"title": "t", "body": "", "owner": "root"}, "invalid_input"),
        ("add", {"title": 5, "body": ""}, "invalid_input"),
        ("list_notes", {"limit": 0}, "invalid_input"),
        ("list_notes", {"limit": 11}, "invalid_input"),
        ("list_notes", {"tag": "../index"}, "invalid_input"),
    ],
)
def test_notes_refuses_bad_input(
    notes: LocalSkill, tool: str, value: dict[str, Any], expected: str
) -> None:
    assert kind(fails(notes, tool, value)) == expected


def test_notes_without_a_storage_grant_is_denied(notes: LocalSkill) -> None:
    policy = RuntimePolicy.allow_declared(storage=frozenset())
    failure = fails(notes, "add", {"title": "t", "body": "b"}, policy)
    assert failure.kind == "capability_denied"
    assert "storage" in failure.message


# ---- http_json: the weather lookup ----------------------------------------------------------


def test_weather_calls_the_api_with_the_injected_token(
    weather: LocalSkill, weather_api: WeatherApi
) -> None:
    weather_api.reset()
    value = {"city": "São Paulo", "units": "imperial", "port": weather_api.port}
    result = run(weather, "weather", value, loopback(weather_api))
    assert result.output == {
        "city": "São Paulo",
        "temperature": 70.7,
        "units": "imperial",
        "conditions": "light rain",
        "humidity": 81,
        "observed_at": "2026-01-31T12:00:00Z",
    }
    (seen,) = weather_api.seen
    assert seen.headers["authorization"] == BEARER  # the vault's value reached the API...
    assert seen.headers["accept"] == "application/json"
    assert seen.host == f"{API_HOST}:{weather_api.port}"
    url = urlsplit(seen.path)
    assert url.path == "/v1/current"
    assert parse_qs(url.query) == {"city": ["São Paulo"], "units": ["imperial"]}
    assert weather_api.sni == [API_HOST]
    assert [(e["host"], e["decision"]) for e in result.egress] == [(API_HOST, "allowed")]
    assert SECRET not in json.dumps(result.to_json())  # ...and nowhere else
    assert [line.message for line in result.logs] == ["weather for 'São Paulo' (imperial)"]


def test_weather_token_echoed_by_the_api_is_redacted(
    weather: LocalSkill, weather_api: WeatherApi
) -> None:
    result = run(
        weather, "weather", {"city": "Echo", "port": weather_api.port}, loopback(weather_api)
    )
    assert result.output["conditions"] == "Bearer [REDACTED]"
    assert result.output["temperature"] == 21.5
    assert SECRET not in json.dumps(result.to_json())


@pytest.mark.parametrize(
    ("city", "expected", "message"),
    [
        ("Atlantis", "not_found", "knows no city 'Atlantis'"),
        ("Crashville", "upstream", "HTTP 503"),
        ("Garbage", "upstream", "not valid JSON"),
        ("Hothouse", "upstream", "no valid 'temperature'"),
        ("Swamp", "upstream", "humidity of 140%"),
    ],
)
def test_weather_maps_bad_answers_to_typed_errors(
    weather: LocalSkill, weather_api: WeatherApi, city: str, expected: str, message: str
) -> None:
    failure = fails(
        weather, "weather", {"city": city, "port": weather_api.port}, loopback(weather_api)
    )
    assert kind(failure) == expected
    assert message in failure.message
    assert SECRET not in json.dumps(failure.details)


@pytest.mark.parametrize(
    ("hosts", "private_network", "port", "reason"),
    [
        (False, True, True, "http egress is not granted"),
        (True, True, False, "port {port} not granted"),
        (True, False, True, "private address 127.0.0.1"),
    ],
    ids=["host", "port", "private-network"],
)
def test_weather_beyond_the_policy_is_capability_denied(
    weather: LocalSkill,
    weather_api: WeatherApi,
    hosts: bool,
    private_network: bool,
    port: bool,
    reason: str,
) -> None:
    weather_api.reset()
    policy = RuntimePolicy.allow_declared(
        http_hosts=frozenset({"*"} if hosts else ()),
        allow_private_network=private_network,
        allowed_ports=frozenset({weather_api.port}) if port else None,
    )
    failure = fails(weather, "weather", {"city": "Paris", "port": weather_api.port}, policy)
    assert failure.kind == "capability_denied"
    assert reason.format(port=weather_api.port) in failure.message
    assert weather_api.connections == 0  # refused before connecting


def test_weather_without_the_secret_and_with_a_wrong_one(
    ca_bundle: str, weather_api: WeatherApi
) -> None:
    vault = MemoryVault()
    skill = open_example("http_json", weather_services(ca_bundle, vault))
    weather_api.reset()
    value = {"city": "Paris", "port": weather_api.port}
    missing = fails(skill, "weather", value, loopback(weather_api))
    assert kind(missing) == "not_found"
    assert "skill:acme.http_json/api_token" in missing.message
    assert weather_api.connections == 0  # refused before anything was sent
    vault.set(SECRET_SCOPE, "api_token", b"not-the-right-token")
    wrong = fails(skill, "weather", value, loopback(weather_api))
    assert kind(wrong) == "upstream"
    assert "refused the API token (HTTP 401)" in wrong.message
    assert "not-the-right-token" not in json.dumps([wrong.message, wrong.details])


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"city": ""},
        {"city": "   "},
        {"city": "x" * 81},
        {"city": "Paris", "units": "kelvin"},
        {"city": "Paris", "port": 0},
        {"city": "Paris", "port": 70000},
        {"city": "Paris", "url": "https://evil.example/"},
    ],
)
def test_weather_refuses_bad_input(weather: LocalSkill, value: dict[str, Any]) -> None:
    assert kind(fails(weather, "weather", value)) == "invalid_input"


# ---- report: A2UI with a form that submits back ---------------------------------------------


def components(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in document["components"]}


def test_report_schemas_are_the_sdks(report: LocalSkill) -> None:
    for tool in report.manifest.tools:
        assert tool.output_schema == a2ui.A2UI_DOCUMENT_SCHEMA
    assert find_tool(report.manifest, "add_entry").input_schema == a2ui.FORM_SUBMISSION_SCHEMA


def test_report_shows_a_chart_a_table_and_a_form(report: LocalSkill) -> None:
    document = call(report, "report", {}, quota_policy(report))
    jsonschema.Draft202012Validator(a2ui.A2UI_DOCUMENT_SCHEMA).validate(document)
    assert document["v"] == 1 and document["surface"] == "main"
    parts = components(document)
    assert [c["type"] for c in document["components"]] == [
        "markdown", "text", "chart", "table", "form",
    ]  # fmt: skip
    assert parts["title"]["props"] == {"value": "# Expense report"}
    chart = parts["totals"]["props"]
    assert [point["label"] for point in chart["series"]] == [
        "Travel",
        "Meals",
        "Software",
        "Office",
    ]
    assert chart["kind"] == "bar"
    assert parts["latest"]["props"]["columns"] == [
        "#", "Date", "Category", "Amount (EUR)", "Description",
    ]  # fmt: skip
    form = parts["add-expense"]["props"]
    assert form["submit_tool"] == "add_entry"
    assert [(f["id"], f["type"]) for f in form["fields"]] == [
        ("category", "select"), ("amount", "number"), ("description", "text"),
    ]  # fmt: skip
    assert [o["value"] for o in form["fields"][0]["options"]] == [
        "travel", "meals", "software", "office",
    ]  # fmt: skip


def test_form_submission_is_stored_and_shown_by_the_next_report(report: LocalSkill) -> None:
    policy = quota_policy(report)
    before = components(call(report, "report", {"limit": 20}, policy))
    count = int(before["summary"]["props"]["value"].split()[0])
    meals = before["totals"]["props"]["series"][1]["value"]
    description = f"Team lunch {uuid.uuid4().hex[:8]}"
    submission = {
        "componentId": "add-expense",
        "values": {"category": "meals", "amount": 12.5, "description": f"  {description}  "},
    }
    answer = call(report, "add_entry", submission, policy)
    jsonschema.Draft202012Validator(a2ui.A2UI_DOCUMENT_SCHEMA).validate(answer)
    shown = components(answer)
    notice = shown["notice"]["props"]
    assert notice["tone"] == "success"
    assert re.fullmatch(r"Added expense #\d+: 12\.50 EUR for Meals\.", notice["value"])
    after = components(call(report, "report", {"limit": 20}, policy))
    assert int(after["summary"]["props"]["value"].split()[0]) == count + 1
    assert after["totals"]["props"]["series"][1]["value"] == pytest.approx(meals + 12.5)
    number, date, category, amount, text = after["latest"]["props"]["rows"][0]
    assert (category, amount, text) == ("Meals", "12.50", description)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", date)
    assert notice["value"].startswith(f"Added expense #{number}:")
    assert "notice" not in after
    one = components(call(report, "report", {"limit": 1}, policy))
    assert len(one["latest"]["props"]["rows"]) == 1


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (
            {"componentId": "other-form", "values": {"category": "meals", "amount": 1}},
            "componentId",
        ),
        ({"componentId": "add-expense", "values": {"category": "bribes", "amount": 1}}, "category"),
        ({"componentId": "add-expense", "values": {"amount": 1}}, "category"),
        ({"componentId": "add-expense", "values": {"category": "meals"}}, "amount"),
        ({"componentId": "add-expense", "values": {"category": "meals", "amount": "12"}}, "amount"),
        ({"componentId": "add-expense", "values": {"category": "meals", "amount": True}}, "amount"),
        ({"componentId": "add-expense", "values": {"category": "meals", "amount": 0}}, "amount"),
        ({"componentId": "add-expense", "values": {"category": "meals", "amount": -5}}, "amount"),
        (
            {"componentId": "add-expense", "values": {"category": "meals", "amount": 5000.01}},
            "amount",
        ),
        (
            {"componentId": "add-expense", "values": {"category": "meals", "amount": 1.234}},
            "amount",
        ),
        (
            {"componentId": "add-expense", "values": {"category": "meals", "amount": 1, "d": "x"}},
            "d",
        ),
        (
            {
                "componentId": "add-expense",
                "values": {"category": "meals", "amount": 1, "description": "x" * 121},
            },
            "description",
        ),
        (
            {
                "componentId": "add-expense",
                "values": {"category": "meals", "amount": 1, "description": False},
            },
            "description",
        ),
    ],
)
def test_bad_form_submissions_are_refused_and_store_nothing(
    report: LocalSkill, value: dict[str, Any], field: str
) -> None:
    policy = quota_policy(report)
    before = components(call(report, "report", {}, policy))["summary"]
    failure = fails(report, "add_entry", value, policy)
    assert kind(failure) == "invalid_input"
    assert failure.details["guest_details"] == {"field": field}
    assert components(call(report, "report", {}, policy))["summary"] == before


@pytest.mark.parametrize(
    ("tool", "value"),
    [
        ("add_entry", {"componentId": "../../x", "values": {}}),
        ("add_entry", {"componentId": "add-expense"}),
        ("add_entry", {"componentId": "add-expense", "values": {"amount": {"$gt": 0}}}),
        ("add_entry", {"componentId": "add-expense", "values": {"amount": [1]}}),
        ("add_entry", {"componentId": "add-expense", "values": {}, "extra": 1}),
        ("report", {"limit": 0}),
        ("report", {"limit": 21}),
        ("report", {"limit": "10"}),
    ],
)
def test_report_refuses_input_outside_its_schemas(
    report: LocalSkill, tool: str, value: dict[str, Any]
) -> None:
    failure = fails(report, tool, value, quota_policy(report))
    assert failure.kind == "invalid_input"
    assert "reported_by" not in failure.details  # the host refused it before the guest ran
