"""The console's page and assets are served at / without a token, with a strict CSP; the
API behind them still needs one."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from daemon_server import running_daemon
from palyra.daemon.console import CONSOLE_DIR_ENV


def test_the_built_console_is_served_with_security_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    (site / "assets").mkdir(parents=True)
    (site / "index.html").write_text("<!doctype html><title>console</title>")
    (site / "assets" / "app.js").write_text("console.log('hi')")
    (tmp_path / "secret.txt").write_text("not for you")
    monkeypatch.setenv(CONSOLE_DIR_ENV, str(site))
    with running_daemon(tmp_path / "state") as daemon, httpx.Client(base_url=daemon.url) as web:
        page = web.get("/")
        assert page.status_code == 200 and "console" in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert web.get("/assets/app.js").text == "console.log('hi')"
        for escape in ("/assets/../secret.txt", "/assets/%2e%2e/secret.txt", "/assets/"):
            response = web.get(escape)
            assert response.status_code in (401, 404), escape
            assert "not for you" not in response.text
        assert web.get("/api/v1/skills").status_code == 401  # the API still needs a token
        assert web.post("/").status_code == 401  # only reads are public


def test_an_unbuilt_console_says_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONSOLE_DIR_ENV, str(tmp_path / "nowhere"))
    monkeypatch.setattr("palyra.daemon.console.console_dir", lambda: None)
    with running_daemon(tmp_path / "state") as daemon, httpx.Client(base_url=daemon.url) as web:
        page = web.get("/")
        assert page.status_code == 200
        assert "make console" in page.text
        assert "content-security-policy" in page.headers
