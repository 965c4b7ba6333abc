"""Console sessions: the API token buys an HttpOnly, SameSite=Strict cookie; every mutating
cookie request also needs the session's CSRF token; sign-in is rate-limited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import daemon_fixtures as df
from daemon_server import running_daemon
from palyra.daemon.server import Daemon
from palyra.daemon.sessions import COOKIE, MAX_SIGN_INS_PER_MINUTE, Sessions, cookie_value

API = "/api/v1"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with running_daemon(tmp_path / "state") as running:
        yield running


def _browser(daemon: Daemon) -> httpx.Client:
    return httpx.Client(base_url=daemon.url, timeout=30)


def _sign_in(client: httpx.Client, token: str) -> str:
    response = client.post(f"{API}/session", json={"token": token})
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/"):
        assert flag in cookie
    assert response.headers["cache-control"] == "no-store"
    csrf = response.json()["csrf_token"]
    assert isinstance(csrf, str) and len(csrf) >= 32
    return csrf


def test_a_session_reads_freely_and_writes_only_with_csrf(daemon: Daemon) -> None:
    with _browser(daemon) as browser:
        assert browser.get(f"{API}/skills").status_code == 401  # no cookie yet
        csrf = _sign_in(browser, daemon.token)
        assert browser.get(f"{API}/skills").json() == {"count": 0, "skills": []}
        info = browser.get(f"{API}/session").json()
        assert info == {**info, "authenticated": True, "via": "session", "csrf_token": csrf}

        install = f"{API}/skills/install?allow_tofu=true"
        octets = {"content-type": "application/octet-stream"}
        refused = browser.post(install, content=df.artifact(), headers=octets)
        assert refused.status_code == 403
        assert refused.json()["error"]["kind"] == "csrf"
        wrong = browser.post(
            install, content=df.artifact(), headers={**octets, "x-csrf-token": "not-it"}
        )
        assert wrong.status_code == 403
        assert browser.get(f"{API}/skills").json()["count"] == 0  # nothing happened
        ok = browser.post(install, content=df.artifact(), headers={**octets, "x-csrf-token": csrf})
        assert ok.status_code == 200, ok.text
        ran = browser.post(
            f"{API}/skills/{df.SKILL_ID}/tools/echo/run",
            json={"input": {"text": "from the console"}},
            headers={"x-csrf-token": csrf},
        )
        assert ran.json()["output"] == {"text": "from the console"}

        out = browser.request("DELETE", f"{API}/session", headers={"x-csrf-token": csrf})
        assert out.json() == {"signed_out": True}
        assert "Max-Age=0" in out.headers["set-cookie"]
        assert browser.get(f"{API}/skills").status_code == 401


def test_sign_in_refuses_wrong_tokens_and_is_rate_limited(daemon: Daemon) -> None:
    with _browser(daemon) as browser:
        for token in ("", "x" * 40, daemon.token + "x"):
            response = browser.post(f"{API}/session", json={"token": token})
            assert response.status_code == 401
            assert response.json()["error"]["kind"] == "unauthorized"
            assert "set-cookie" not in response.headers
        for _ in range(MAX_SIGN_INS_PER_MINUTE):
            browser.post(f"{API}/session", json={"token": "guess"})
        limited = browser.post(f"{API}/session", json={"token": daemon.token})
        assert limited.status_code == 429
        assert limited.json()["error"]["kind"] == "rate_limited"


def test_a_forged_or_foreign_cookie_opens_nothing(daemon: Daemon) -> None:
    with _browser(daemon) as browser:
        browser.cookies.set(COOKIE, "forged")
        assert browser.get(f"{API}/skills").status_code == 401
    with _browser(daemon) as browser:  # a bearer client is not a session
        info = browser.get(f"{API}/session", headers={"authorization": f"Bearer {daemon.token}"})
        assert info.json() == {"authenticated": True, "via": "bearer"}


def test_sessions_expire_and_are_bounded() -> None:
    sessions = Sessions("t", ttl_s=0.0)
    session = sessions.sign_in("t")
    assert sessions.lookup(session.session_id) is None  # already expired
    live = Sessions("t")
    first = live.sign_in("t")
    assert live.lookup(first.session_id) is first
    assert live.end(first.session_id) and live.lookup(first.session_id) is None
    assert cookie_value(f"a=1; {COOKIE}=abc; b=2") == "abc"
    assert cookie_value("a=1") is None
    assert cookie_value(f"{COOKIE}=") is None
