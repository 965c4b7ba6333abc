"""The MCP face: every active skill's tools over the Model Context Protocol (design.md §7).

A thin face over the service layer (``palyra.daemon.service.Service``): calls take the same
path — approvals, limits, receipts — as the CLI and the HTTP API.
"""

from __future__ import annotations

from palyra.mcp.server import build_server, mcp_tool_name, serve_stdio

__all__ = ["build_server", "mcp_tool_name", "serve_stdio"]
