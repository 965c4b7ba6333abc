"""The console end to end: real headless Chromium (Debian's, driven by Playwright) against a
real daemon serving the built console (`make console`).

Signs in, uploads and installs the report example (a Python component), runs it and sees
its A2UI table and chart, submits its form and sees the follow-up result, approves a call
of a tool that needs approval, quarantines the skill and sees the runner refuse.
Screenshots go to build/test-artifacts/console/.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

import daemon_fixtures as df
from daemon_server import running_daemon
from palyra.authoring.local_skill import LocalSkill
from palyra.daemon.console import CONSOLE_DIR_ENV
from palyra.skills.keys import SigningKey

REPO = Path(__file__).resolve().parent.parent
CONSOLE = REPO / "build" / "console"
CACHE = REPO / "build" / "test-cache"
SHOTS = REPO / "build" / "test-artifacts" / "console"
KEY = SigningKey.from_bytes(bytes([0x2A]) * 32)  # a test fixture, not a publisher's key
# Generous: on a cold CI machine the first report call compiles the component (cached
# afterwards) while the rest of the suite runs beside it.
TIMEOUT_MS = 180_000


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is not installed (apt-get install chromium; .ci/run does this)")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not (CONSOLE / "index.html").is_file():
        pytest.fail("the console is not built: run `make console` (make test does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=_chromium(),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield launched
        launched.close()


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


UNLABELLED_CONTROLS = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button')].filter((el) => {
        if (el.closest('[hidden]') || el.offsetParent === null) return false;
        const name = el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
            || (el.labels && el.labels.length) || (el.tagName === 'BUTTON' && el.textContent.trim());
        return !name;
    }).map((el) => el.outerHTML.slice(0, 120))"""


def _accessible(page: Page, view: str) -> None:
    """Every visible control has an accessible name (a label, aria-label or button text)."""
    unlabelled = page.evaluate(UNLABELLED_CONTROLS)
    assert unlabelled == [], f"{view}: controls without a name: {unlabelled}"


def _install(page: Page, artifact: Path, skill_id: str) -> None:
    page.goto(page.url.split("#")[0] + "#/skills")
    page.get_by_test_id("install-file").set_input_files(str(artifact))
    page.get_by_test_id("install-allow-tofu").check()
    page.get_by_test_id("install-button").click()
    row = page.get_by_test_id(f"skill-row-{skill_id}")
    expect(row).to_have_attribute("data-status", "active", timeout=TIMEOUT_MS)


def _run(page: Page, skill_id: str, tool: str) -> None:
    page.goto(page.url.split("#")[0] + f"#/run?skill={skill_id}&tool={tool}")
    button = page.get_by_test_id("run-button")
    expect(button).to_be_enabled(timeout=TIMEOUT_MS)
    button.click()


def test_the_console_end_to_end(
    browser: Browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LocalSkill.open(
        REPO / "examples" / "python" / "report",
        key=KEY,
        build_cache=CACHE / "builds",
        code_cache=CACHE / "modules",
    ) as report:
        report_file = tmp_path / "acme.report.palyra-skill"
        report_file.write_bytes(report.artifact)
    demo_file = df.write_artifact(tmp_path, key=KEY)  # one publisher, one key
    monkeypatch.setenv(CONSOLE_DIR_ENV, str(CONSOLE))
    monkeypatch.setenv("PALYRA_CODE_CACHE", str(CACHE / "modules"))
    with running_daemon(tmp_path / "state") as daemon:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)  # assertions wait as long as actions do
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        # sign in (a wrong token first)
        page.goto(daemon.url + "/")
        page.get_by_test_id("signin-token").fill("not the token")
        page.get_by_test_id("signin-button").click()
        expect(page.get_by_test_id("signin-error")).to_be_visible()
        page.get_by_test_id("signin-token").fill(daemon.token)
        page.get_by_test_id("signin-button").click()
        expect(page.get_by_test_id("nav-skills")).to_be_visible()

        # upload and install the report skill and the demo skill
        _install(page, report_file, "acme.report")
        _install(page, demo_file, df.SKILL_ID)
        _shot(page, "skills")
        _accessible(page, "skills")
        page.reload()
        expect(page.get_by_test_id(f"skill-row-{df.SKILL_ID}")).to_be_visible()
        page.keyboard.press("Tab")  # the skip link comes first, then the navigation
        focused = page.evaluate("document.activeElement && document.activeElement.textContent")
        assert focused and "Skip" in focused, focused

        # run the report: an A2UI table and chart
        _run(page, "acme.report", "report")
        a2ui = page.get_by_test_id("run-a2ui")
        expect(a2ui.locator("table")).to_be_visible()
        expect(a2ui.locator("svg")).to_be_visible()
        _shot(page, "report")
        _accessible(page, "runner with an A2UI result")

        # submit the document's form: the follow-up result renders in place
        form = a2ui.locator("form")
        form.locator("select").select_option("software")
        form.locator("input[type=number]").fill("12.5")
        form.locator("input[type=text]").fill("from the browser")
        form.locator("button[type=submit]").click()
        expect(page.get_by_test_id("run-a2ui").locator("table")).to_contain_text("from the browser")
        _shot(page, "form-submitted")

        # a tool that needs approval: approved from the console
        _run(page, df.SKILL_ID, "guarded")
        approve = page.locator(
            '[data-testid^="approval-approve-"]:not([data-testid^="approval-approve-window-"])'
        ).first
        approve.click()
        expect(page.get_by_test_id("run-receipt")).to_be_visible()
        expect(page.get_by_test_id("run-approval")).to_be_visible()

        # an update that asks for a new host is held; the operator rejects it
        update = df.write_artifact(tmp_path, "1.1.0", hosts=("api.example.com",), key=KEY)
        _install(page, update, df.SKILL_ID)
        held = page.get_by_test_id(f"held-{df.SKILL_ID}-1.1.0")
        expect(held).to_contain_text("api.example.com")
        _shot(page, "held-update")
        page.get_by_test_id(f"skill-reject-update-{df.SKILL_ID}").click()
        page.get_by_test_id("confirm-ok").click()
        expect(held).to_have_count(0)

        # quarantine the report skill: the runner refuses it
        page.goto(daemon.url + "/#/skills")
        page.get_by_test_id("skill-quarantine-acme.report").click()
        page.get_by_test_id("confirm-reason").fill("checking the e2e path")
        page.get_by_test_id("confirm-ok").click()
        row = page.get_by_test_id("skill-row-acme.report")
        expect(row).to_have_attribute("data-status", "quarantined")
        page.goto(daemon.url + "/#/run?skill=acme.report&tool=report")
        expect(page.get_by_test_id("run-tool-info")).to_contain_text("quarantined")
        expect(page.get_by_test_id("run-button")).to_be_disabled()
        _shot(page, "quarantined")
        # ...and the runner itself refuses, whoever asks (here: this browser session)
        status, body = page.evaluate(
            """async () => {
                const session = await (await fetch("/api/v1/session")).json();
                const response = await fetch("/api/v1/skills/acme.report/tools/report/run", {
                    method: "POST",
                    headers: {"content-type": "application/json",
                              "x-csrf-token": session.csrf_token},
                    body: JSON.stringify({input: {}}),
                });
                return [response.status, await response.json()];
            }"""
        )
        assert status == 409 and body["error"]["kind"] == "skill_not_active", body

        # the journal view shows a verified chain
        page.get_by_test_id("nav-journal").click()
        expect(page.get_by_test_id("journal-chain")).to_have_attribute("data-ok", "true")
        _shot(page, "journal")
        _accessible(page, "journal")
        page.get_by_test_id("nav-approvals").click()
        _accessible(page, "approvals")
        assert errors == [], errors
        page.close()
