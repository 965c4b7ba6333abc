"""Every (method, path) the daemon serves, read from the app itself rather than from a list.

The security matrix (``test_api_matrix.py``) walks what :func:`derive_operations` returns, so
a route added to the app later is exercised without anyone editing the test. Anything the
walk cannot classify raises instead of being dropped, and the only things left out are in
:data:`SKIPPED_METHODS`, each with its reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

BodyKind = Literal["json", "octets", "none"]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Methods that are deliberately not walked. HEAD is the twin Starlette adds to every plain
# ``Route`` that answers GET (here the OpenAPI document): the Guard treats HEAD exactly like
# GET (both are in its safe set) and a HEAD answer has no body to hold the error envelope,
# so the GET of the same path stands for it.
SKIPPED_METHODS: dict[str, str] = {
    "HEAD": "GET's twin: the same Guard branch, and no body for the envelope",
}

# Routes the OpenAPI document does not list, because they are not JSON operations under
# ``/api/v1``. A catch-all route (``methods is None``: it takes every method) must be named
# here with the methods its protocol uses, else the walk refuses to guess.
NON_OPENAPI_METHODS: dict[str, tuple[tuple[str, BodyKind], ...]] = {
    # MCP streamable HTTP: GET opens the server-to-client stream, POST carries JSON-RPC,
    # DELETE ends a session (see the MCP transport spec).
    "/mcp": (("GET", "none"), ("POST", "json"), ("DELETE", "none")),
}

# Static mounts: the console's built assets (mounted only when the console was built).
STATIC_MOUNTS = frozenset({"/assets"})

_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


@dataclass(frozen=True)
class Operation:
    """One method on one route, with its path parameters filled with plausible values."""

    method: str
    template: str  # the route's path as declared, e.g. /api/v1/skills/{skill_id}
    path: str  # what is requested
    body: BodyKind  # what the route reads: a JSON document, raw bytes, or nothing
    documented: bool  # listed in the OpenAPI document

    @property
    def mutating(self) -> bool:
        return self.method not in SAFE_METHODS

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


class UnclassifiedRoute(AssertionError):
    """A route the walk does not know how to exercise: teach it (never skip it silently)."""


def fill(template: str, values: Mapping[str, str]) -> str:
    """The template with every ``{name}`` replaced; an unknown name fails loudly so a new
    route with a new parameter gets a plausible value rather than a dummy that only 404s."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise UnclassifiedRoute(
                f"no plausible value for path parameter {name!r} of {template}: add one"
            )
        return values[name]

    return _PARAM.sub(one, template)


def _body_kind(operation: Mapping[str, Any]) -> BodyKind:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        return "json"
    if content:
        return "octets"
    return "none"


def _first_file(directory: Path) -> Path | None:
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    return files[0] if files else None


def derive_operations(
    app: FastAPI, openapi: Mapping[str, Any], values: Mapping[str, str]
) -> tuple[list[Operation], dict[str, str]]:
    """Every operation of ``app`` plus what was left out and why (``"METHOD path"`` →
    reason). The OpenAPI document supplies what body each documented operation reads."""
    paths: Mapping[str, Mapping[str, Any]] = openapi["paths"]
    found: list[Operation] = []
    skipped: dict[str, str] = {}
    for route in app.routes:
        if isinstance(route, APIRoute):
            for method in sorted(route.methods or ()):
                if method in SKIPPED_METHODS:
                    skipped[f"{method} {route.path}"] = SKIPPED_METHODS[method]
                    continue
                documented = paths.get(route.path, {}).get(method.lower())
                if route.include_in_schema and documented is None:
                    raise UnclassifiedRoute(f"{method} {route.path} is missing from the OpenAPI")
                body = _body_kind(documented) if documented is not None else "none"
                found.append(
                    Operation(
                        method,
                        route.path,
                        fill(route.path, values),
                        body,
                        documented is not None,
                    )
                )
        elif isinstance(route, Route):
            if route.methods is None:
                if route.path not in NON_OPENAPI_METHODS:
                    raise UnclassifiedRoute(
                        f"{route.path} takes every method: list the ones its protocol uses"
                    )
                pairs = NON_OPENAPI_METHODS[route.path]
            else:
                pairs = tuple((m, "none") for m in sorted(route.methods))
            for method, body in pairs:
                if method in SKIPPED_METHODS:
                    skipped[f"{method} {route.path}"] = SKIPPED_METHODS[method]
                    continue
                found.append(Operation(method, route.path, fill(route.path, values), body, False))
        elif isinstance(route, Mount) and route.path in STATIC_MOUNTS:
            served = route.app
            if not isinstance(served, StaticFiles) or served.directory is None:
                raise UnclassifiedRoute(f"{route.path} is not a static directory")
            asset = _first_file(Path(served.directory))
            if asset is None:
                skipped[f"GET {route.path}/*"] = "the built console has no asset file to request"
                continue
            relative = asset.relative_to(Path(served.directory)).as_posix()
            found.append(
                Operation("GET", f"{route.path}/*", f"{route.path}/{relative}", "none", False)
            )
        else:
            raise UnclassifiedRoute(f"unknown kind of route: {route!r}")
    return found, skipped


_README_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def readme_routes(readme: str) -> set[tuple[str, str]]:
    """(METHOD, path) for each route the README's "HTTP API" table documents, paths under
    ``/api/v1`` made absolute and every ``{param}`` written ``{}``. ``GET|POST /x`` and
    ``/x/a|b`` expand to each combination; ``/mcp`` (no method given) counts as POST."""
    section = readme.split("### HTTP API", 1)[1].split("\n## ", 1)[0]
    found: set[tuple[str, str]] = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first_column = re.split(r"(?<!\\)\|", line)[1]
        for snippet in re.findall(r"`([^`]+)`", first_column):
            snippet = snippet.replace("\\|", "|")
            head, _, rest = snippet.partition(" ")
            methods = head.split("|")
            if all(m in _README_METHODS for m in methods):
                path = rest.strip()
            elif snippet == "/api/v1":
                continue  # the prefix, named in the /mcp row ("not under /api/v1")
            elif snippet.startswith("/"):
                methods, path = ["POST"], snippet
            else:
                continue  # a body sketch such as `{token}`
            path = path.split("?", 1)[0]
            prefix, _, last = path.rpartition("/")
            for method in methods:
                for leaf in last.split("|"):
                    full = f"{prefix}/{leaf}"
                    if full != "/mcp":
                        full = "/api/v1" + full
                    found.add((method, _PARAM.sub("{}", full)))
    return found


def normalized(template: str) -> str:
    return _PARAM.sub("{}", template)
