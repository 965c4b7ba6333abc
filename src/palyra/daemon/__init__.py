"""The service layer (design.md §3): every state change and every tool call goes through here.

The CLI, the HTTP API, the console and MCP are thin faces over
:class:`palyra.daemon.service.Service`; none of them holds a second copy of install, status,
approval or journal logic.
"""
