"""Serving the web console (``console/``, built by Vite into ``build/console``) at ``/``.

The page and its assets are public (they hold no data; everything they show comes from the
authenticated API). They are sent with a strict Content-Security-Policy — no inline script,
no other origin, no framing — so a string from a skill that slipped past the renderer could
still not run.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import StaticFiles

CONSOLE_DIR_ENV = "PALYRA_CONSOLE_DIR"
PUBLIC_PATHS = frozenset({"/", "/index.html", "/favicon.ico"})
ASSETS_PREFIX = "/assets/"

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
}

_NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Palyra console</title></head><body><h1>Palyra console</h1>
<p>The console has not been built. Run <code>make console</code> (or <code>make run</code>),
then reload. The API is at <code>/api/v1</code>.</p></body></html>"""


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(ASSETS_PREFIX)


def console_dir() -> Path | None:
    """``$PALYRA_CONSOLE_DIR``, else ``build/console`` of the source tree, if built."""
    override = os.environ.get(CONSOLE_DIR_ENV, "").strip()
    candidates = [Path(override)] if override else []
    candidates.append(Path(__file__).resolve().parents[3] / "build" / "console")
    for candidate in candidates:
        if (candidate / "index.html").is_file():
            return candidate
    return None


def mount_console(app: FastAPI) -> None:
    root = console_dir()

    @app.get("/", include_in_schema=False)
    @app.get("/index.html", include_in_schema=False)
    def index() -> Response:
        if root is None:
            return HTMLResponse(_NOT_BUILT, headers=SECURITY_HEADERS)
        return FileResponse(root / "index.html", headers=SECURITY_HEADERS)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    if root is not None and (root / "assets").is_dir():
        # StaticFiles refuses paths that leave the directory (and serves no listings).
        app.mount("/assets", StaticFiles(directory=root / "assets"), name="assets")
