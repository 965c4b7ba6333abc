"""The operator's policy: ``<state>/config.toml``, every key optional.

Defaults are the safe ones a workstation operator expects: installed skills get what their
manifest declares (the operator saw it at install, and updates that ask for more are held),
no plain http, no private addresses, inline modules off, API on 127.0.0.1 only.

```toml
[skills]
new_skills_start = "active"      # or "disabled"
reaudit_interval_s = 21600       # 0 turns the periodic re-audit off

[runtime]
http_hosts = ["*"]               # "*" = as declared; else only these of the declared ones
secrets = ["*"]
storage = ["*"]
channels = ["*"]
allow_http = false
allow_private_network = false
allow_inline_modules = false
fuel = 200000000
timeout_ms = 30000
memory_bytes = 67108864

[runner]
workers = 4                      # calls that run at once
queue = 64                       # calls that may wait for a worker; more are "overloaded"
per_skill = 4                    # calls of one skill that run at once
approval_timeout_s = 300

[api]
host = "127.0.0.1"
port = 7142
max_body_bytes = 1048576
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from palyra.daemon.errors import ConfigError
from palyra.runtime.limits import RuntimeLimits
from palyra.runtime.tools import RuntimePolicy

MAX_CONFIG_BYTES = 256 * 1024
DEFAULT_PORT = 7142


@dataclass(frozen=True)
class RunnerConfig:
    workers: int = 4
    queue: int = 64
    per_skill: int = 4
    approval_timeout_s: float = 300.0


@dataclass(frozen=True)
class ApiConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    max_body_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class DaemonConfig:
    new_skills_start: str = "active"
    reaudit_interval_s: float = 6 * 3600
    policy: RuntimePolicy = field(default_factory=RuntimePolicy.allow_declared)
    allow_inline_modules: bool = False
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    api: ApiConfig = field(default_factory=ApiConfig)


def _table(doc: dict[str, Any], name: str, known: set[str]) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"config: [{name}] must be a table")
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"config: unknown key(s) in [{name}]: {', '.join(unknown)}")
    return value


def _typed(table: dict[str, Any], section: str, key: str, kind: type, default: Any) -> Any:
    value = table.get(key, default)
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ConfigError(f"config: [{section}] {key} must be a {kind.__name__}")
    return value


def _positive(value: Any, section: str, key: str) -> Any:
    if value <= 0:
        raise ConfigError(f"config: [{section}] {key} must be positive")
    return value


def _names(table: dict[str, Any], section: str, key: str) -> frozenset[str]:
    value = table.get(key, ["*"])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"config: [{section}] {key} must be a list of non-empty strings")
    return frozenset(value)


def parse_config(text: str, source: str = "config.toml") -> DaemonConfig:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - {"skills", "runtime", "runner", "api"})
    if unknown:
        raise ConfigError(f"config: unknown table(s): {', '.join(unknown)}")
    skills = _table(doc, "skills", {"new_skills_start", "reaudit_interval_s"})
    start = _typed(skills, "skills", "new_skills_start", str, "active")
    if start not in ("active", "disabled"):
        raise ConfigError('config: [skills] new_skills_start must be "active" or "disabled"')
    interval = _typed(skills, "skills", "reaudit_interval_s", float, 6 * 3600.0)
    if interval < 0:
        raise ConfigError("config: [skills] reaudit_interval_s must not be negative")

    rt_keys = {"http_hosts", "secrets", "storage", "channels", "allow_http"}
    rt_keys |= {"allow_private_network", "allow_inline_modules", "fuel", "timeout_ms"}
    rt_keys |= {"memory_bytes"}
    rt = _table(doc, "runtime", rt_keys)
    limits = RuntimeLimits()
    overrides: dict[str, Any] = {}
    for key in ("fuel", "timeout_ms", "memory_bytes"):
        if key in rt:
            overrides[key] = _positive(_typed(rt, "runtime", key, int, 0), "runtime", key)
    try:
        limits = limits.with_overrides(**overrides) if overrides else limits
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"config: [runtime] {exc}") from None
    policy = RuntimePolicy(
        http_hosts=_names(rt, "runtime", "http_hosts"),
        secrets=_names(rt, "runtime", "secrets"),
        storage=_names(rt, "runtime", "storage"),
        channels=_names(rt, "runtime", "channels"),
        allow_http=_typed(rt, "runtime", "allow_http", bool, False),
        allow_private_network=_typed(rt, "runtime", "allow_private_network", bool, False),
        limits=limits,
    )
    if policy.allow_private_network:
        # A loopback development server listens on any port; public hosts keep 80/443.
        policy = replace(policy, allowed_ports=frozenset(range(1, 65536)))

    rn = _table(doc, "runner", {"workers", "queue", "per_skill", "approval_timeout_s"})
    runner = RunnerConfig(
        workers=_positive(_typed(rn, "runner", "workers", int, 4), "runner", "workers"),
        queue=_positive(_typed(rn, "runner", "queue", int, 64), "runner", "queue"),
        per_skill=_positive(_typed(rn, "runner", "per_skill", int, 4), "runner", "per_skill"),
        approval_timeout_s=_positive(
            _typed(rn, "runner", "approval_timeout_s", float, 300.0), "runner", "approval_timeout_s"
        ),
    )
    api_t = _table(doc, "api", {"host", "port", "max_body_bytes"})
    port = _typed(api_t, "api", "port", int, DEFAULT_PORT)
    if not 0 <= port <= 65535:
        raise ConfigError("config: [api] port must be 0..65535")
    api = ApiConfig(
        host=_typed(api_t, "api", "host", str, "127.0.0.1"),
        port=port,
        max_body_bytes=_positive(
            _typed(api_t, "api", "max_body_bytes", int, 1024 * 1024), "api", "max_body_bytes"
        ),
    )
    return DaemonConfig(
        new_skills_start=start,
        reaudit_interval_s=interval,
        policy=policy,
        allow_inline_modules=_typed(rt, "runtime", "allow_inline_modules", bool, False),
        runner=runner,
        api=api,
    )


def load_config(state_root: Path) -> DaemonConfig:
    path = state_root / "config.toml"
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return DaemonConfig()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8") from None
    return parse_config(text, str(path))
