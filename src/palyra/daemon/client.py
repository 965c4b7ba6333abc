"""A running daemon, seen through the same methods as :class:`Service`.

The CLI picks this or an in-process ``Service`` and prints whatever comes back, so the two
paths cannot drift: each method here is one HTTP request to the route that calls the
service method of the same name. Errors come back as the daemon's typed envelope and are
re-raised with the same ``kind`` and message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from palyra.daemon.sources import from_file, from_registry_dir
from palyra.errors import PalyraError

API = "/api/v1"
TIMEOUT_S = 60.0
# A tool call may wait for an operator's approval (default 300 s) before it runs.
RUN_TIMEOUT_S = 3600.0


class RemoteError(PalyraError):
    """An error reported by the daemon; ``kind`` is whatever the daemon said."""

    def __init__(self, kind: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.kind = kind  # type: ignore[misc]  # the instance carries the daemon's kind


class DaemonUnavailable(PalyraError):
    kind = "daemon_unavailable"


def _q(value: str) -> str:
    return quote(value, safe="")


class DaemonClient:
    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT_S,
            trust_env=False,
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, API + path, **kwargs)
        except httpx.HTTPError as exc:
            raise DaemonUnavailable(f"cannot reach the daemon at {self.url}: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            raise DaemonUnavailable(
                f"the daemon at {self.url} answered {response.status_code} without JSON"
            ) from None
        if response.is_error:
            error = body.get("error") if isinstance(body, dict) else None
            if not isinstance(error, dict):
                raise DaemonUnavailable(f"the daemon answered {response.status_code}")
            raise RemoteError(
                str(error.get("kind", "internal")),
                str(error.get("message", "")),
                error.get("details") if isinstance(error.get("details"), dict) else None,
            )
        if not isinstance(body, dict):
            raise DaemonUnavailable("the daemon answered with something other than an object")
        return body

    @staticmethod
    def _version(version: str | None) -> dict[str, str]:
        return {} if version is None else {"version": version}

    # ---- daemon -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return self._call("GET", "/status")

    # ---- install ------------------------------------------------------------------------------
    def install_artifact(
        self,
        data: bytes,
        *,
        source_ref: str = "upload",
        source_kind: str = "local_artifact",
        allow_tofu: bool = False,
        force: bool = False,
        update_of: str | None = None,
        principal: str = "operator",
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "allow_tofu": allow_tofu,
            "force": force,
            "source_ref": source_ref,
        }
        if update_of is not None:
            params["update_of"] = update_of
        return self._call(
            "POST",
            "/skills/install",
            content=data,
            params=params,
            headers={"Content-Type": "application/octet-stream"},
        )

    def install_file(
        self,
        path: Path,
        *,
        allow_tofu: bool = False,
        force: bool = False,
        update_of: str | None = None,
        principal: str = "operator",
    ) -> dict[str, Any]:
        resolved = from_file(path)
        return self.install_artifact(
            resolved.data,
            source_ref=resolved.source_ref,
            allow_tofu=allow_tofu,
            force=force,
            update_of=update_of,
        )

    def install_from_registry_dir(
        self,
        root: Path,
        skill_id: str,
        version: str | None = None,
        *,
        allow_tofu: bool = False,
        force: bool = False,
        update: bool = False,
        principal: str = "operator",
    ) -> dict[str, Any]:
        # The directory is the client's: resolved here, and only the chosen bytes travel.
        resolved = from_registry_dir(root, skill_id, version)
        return self.install_artifact(
            resolved.data,
            source_ref=resolved.source_ref,
            allow_tofu=allow_tofu,
            force=force,
            update_of=skill_id if update else None,
        )

    def install_from_registry_url(
        self,
        url: str,
        skill_id: str,
        version: str | None = None,
        *,
        allow_tofu: bool = False,
        force: bool = False,
        update: bool = False,
        ca_file: Path | None = None,
        principal: str = "operator",
    ) -> dict[str, Any]:
        if ca_file is not None:
            raise PalyraError("--registry-ca-cert applies to the daemon's configuration")
        body = {
            "registry_url": url,
            "skill_id": skill_id,
            "version": version,
            "allow_tofu": allow_tofu,
            "force": force,
            "update": update,
        }
        return self._call("POST", "/skills/install-from-registry", json=body)

    # ---- status -------------------------------------------------------------------------------
    def remove(
        self, skill_id: str, version: str | None = None, *, principal: str = "operator"
    ) -> dict[str, Any]:
        return self._call("DELETE", f"/skills/{_q(skill_id)}", params=self._version(version))

    def enable(
        self,
        skill_id: str,
        version: str | None = None,
        *,
        reason: str | None = None,
        approve_capabilities: bool = False,
        principal: str = "operator",
    ) -> dict[str, Any]:
        body = {"version": version, "reason": reason, "approve_capabilities": approve_capabilities}
        return self._call("POST", f"/skills/{_q(skill_id)}/enable", json=body)

    def disable(
        self,
        skill_id: str,
        version: str | None = None,
        *,
        reason: str | None = None,
        principal: str = "operator",
    ) -> dict[str, Any]:
        body = {"version": version, "reason": reason}
        return self._call("POST", f"/skills/{_q(skill_id)}/disable", json=body)

    def quarantine(
        self,
        skill_id: str,
        version: str | None = None,
        *,
        reason: str | None = None,
        principal: str = "operator",
    ) -> dict[str, Any]:
        body = {"version": version, "reason": reason}
        return self._call("POST", f"/skills/{_q(skill_id)}/quarantine", json=body)

    def verify(
        self, skill_id: str, version: str | None = None, *, principal: str = "operator"
    ) -> dict[str, Any]:
        return self._call("POST", f"/skills/{_q(skill_id)}/verify", json={"version": version})

    def audit(
        self, skill_id: str, version: str | None = None, *, principal: str = "operator"
    ) -> dict[str, Any]:
        return self._call("POST", f"/skills/{_q(skill_id)}/audit", json={"version": version})

    def reaudit(self) -> dict[str, Any]:
        return self._call("POST", "/skills/reaudit")

    # ---- reading ------------------------------------------------------------------------------
    def list_skills(self) -> dict[str, Any]:
        return self._call("GET", "/skills")

    def info(self, skill_id: str, version: str | None = None) -> dict[str, Any]:
        return self._call("GET", f"/skills/{_q(skill_id)}", params=self._version(version))

    def check(self, skill_id: str | None = None, version: str | None = None) -> dict[str, Any]:
        if skill_id is None:
            return self._call("GET", "/skills-check")
        return self._call("GET", f"/skills/{_q(skill_id)}/check", params=self._version(version))

    # ---- running ------------------------------------------------------------------------------
    def run(
        self,
        skill_id: str,
        tool: str,
        input_value: Any = None,
        *,
        version: str | None = None,
        principal: str = "operator",
        origin: str = "cli",
        approval_timeout_s: float | None = None,
    ) -> dict[str, Any]:
        return self._call(
            "POST",
            f"/skills/{_q(skill_id)}/tools/{_q(tool)}/run",
            json={"input": input_value, "version": version},
            timeout=RUN_TIMEOUT_S,
        )

    # ---- approvals ----------------------------------------------------------------------------
    def list_approvals(self, state: str | None = "pending") -> dict[str, Any]:
        return self._call("GET", "/approvals", params={"state": state or "all"})

    def decide_approval(
        self,
        approval_id: str,
        *,
        approve: bool,
        window_s: float | None = None,
        reason: str | None = None,
        principal: str = "operator",
    ) -> dict[str, Any]:
        verb = "approve" if approve else "deny"
        body = {"window_s": window_s, "reason": reason}
        return self._call("POST", f"/approvals/{_q(approval_id)}/{verb}", json=body)

    # ---- journal ------------------------------------------------------------------------------
    def journal(
        self, after_seq: int = 0, limit: int = 100, kind: str | None = None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"after": after_seq, "limit": limit}
        if kind is not None:
            params["kind"] = kind
        return self._call("GET", "/journal", params=params)

    def verify_journal(self) -> dict[str, Any]:
        return self._call("GET", "/journal/verify")

    # ---- secrets ------------------------------------------------------------------------------
    def set_secret(
        self, scope: str, key: str, value: bytes, *, principal: str = "operator"
    ) -> dict[str, Any]:
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            raise PalyraError("secret values sent to a daemon must be UTF-8 text") from None
        return self._call("PUT", f"/secrets/{_q(scope)}/{_q(key)}", json={"value": text})

    def list_secrets(self) -> dict[str, Any]:
        return self._call("GET", "/secrets")

    def delete_secret(self, scope: str, key: str, *, principal: str = "operator") -> dict[str, Any]:
        return self._call("DELETE", f"/secrets/{_q(scope)}/{_q(key)}")

    # ---- generic run, plugins, hooks ----------------------------------------------------------
    def plugin_run(
        self, request: Any, *, principal: str = "operator", origin: str = "cli"
    ) -> dict[str, Any]:
        return self._call("POST", "/plugin/run", json=request, timeout=RUN_TIMEOUT_S)

    def list_plugins(self) -> dict[str, Any]:
        return self._call("GET", "/plugins")

    def bind_plugin(
        self,
        plugin_id: str,
        skill_id: str,
        tool: str,
        *,
        version: str | None = None,
        profile: dict[str, Any] | None = None,
        enabled: bool = True,
        notes: str | None = None,
        principal: str = "operator",
    ) -> dict[str, Any]:
        body = {
            "plugin_id": plugin_id,
            "skill_id": skill_id,
            "tool": tool,
            "version": version,
            "profile": profile,
            "enabled": enabled,
            "notes": notes,
        }
        return self._call("POST", "/plugins", json=body)

    def unbind_plugin(self, plugin_id: str, *, principal: str = "operator") -> dict[str, Any]:
        return self._call("DELETE", f"/plugins/{_q(plugin_id)}")

    def set_plugin_enabled(
        self, plugin_id: str, enabled: bool, *, principal: str = "operator"
    ) -> dict[str, Any]:
        verb = "enable" if enabled else "disable"
        return self._call("POST", f"/plugins/{_q(plugin_id)}/{verb}")

    def check_plugin(self, plugin_id: str) -> dict[str, Any]:
        return self._call("GET", f"/plugins/{_q(plugin_id)}/check")

    def list_hooks(self, event: str | None = None) -> dict[str, Any]:
        return self._call("GET", "/hooks", params={} if event is None else {"event": event})

    def bind_hook(
        self,
        hook_id: str,
        event: str,
        plugin_id: str,
        *,
        enabled: bool = True,
        principal: str = "operator",
    ) -> dict[str, Any]:
        body = {"hook_id": hook_id, "event": event, "plugin_id": plugin_id, "enabled": enabled}
        return self._call("POST", "/hooks", json=body)

    def unbind_hook(self, hook_id: str, *, principal: str = "operator") -> dict[str, Any]:
        return self._call("DELETE", f"/hooks/{_q(hook_id)}")

    def set_hook_enabled(
        self, hook_id: str, enabled: bool, *, principal: str = "operator"
    ) -> dict[str, Any]:
        verb = "enable" if enabled else "disable"
        return self._call("POST", f"/hooks/{_q(hook_id)}/{verb}")

    def check_hook(self, hook_id: str) -> dict[str, Any]:
        return self._call("GET", f"/hooks/{_q(hook_id)}/check")

    def fire_hook(
        self, event: str, payload: Any = None, *, principal: str = "operator"
    ) -> dict[str, Any]:
        return self._call(
            "POST", "/hooks/fire", json={"event": event, "payload": payload}, timeout=RUN_TIMEOUT_S
        )
