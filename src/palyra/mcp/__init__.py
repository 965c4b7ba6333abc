"""The MCP face: every active skill's tools over the Model Context Protocol (design.md §7).

A thin face over the service layer (``palyra.daemon.service.Service``): calls take the same
path — approvals, limits, receipts — as the CLI and the HTTP API. ``tools`` decides what is
exposed and what a call returns, ``live`` announces list changes, ``server`` wires both to the
SDK and its transports.
"""

from __future__ import annotations

from palyra.mcp.server import build_server, http_mount, serve_stdio

__all__ = ["build_server", "http_mount", "serve_stdio"]
