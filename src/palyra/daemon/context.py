"""What every service function shares: state root, database, trust store, vault, sandbox.

One :class:`ServiceContext` per process. Its store decides where shared things live: a
daemon on its own SQLite file keeps artifacts and the trust store as files under the state
root; daemons sharing PostgreSQL keep both in the database (:mod:`palyra.daemon.artifacts`,
:mod:`palyra.daemon.trust_home`). The vault, the compiled-code cache and skill storage stay
in each daemon's state root.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from palyra.daemon.artifacts import artifact_store
from palyra.daemon.config import DaemonConfig, load_config
from palyra.daemon.trust_home import trust_home
from palyra.errors import IoFailure
from palyra.fsutil import exclusive_lock
from palyra.paths import resolve_trust_store
from palyra.runtime.vault import EncryptedFileVault
from palyra.skills.audit import AuditPolicy, Blocklist
from palyra.skills.trust import TrustStore
from palyra.store import open_store
from palyra.store.base import StateStore

if TYPE_CHECKING:
    from palyra.runtime.sandbox import Sandbox

# Fired after a state change commits: (event name, payload). Hooks subscribe here.
EventListener = Callable[[str, dict[str, Any]], None]


class ServiceContext:
    def __init__(
        self,
        state_root: Path,
        *,
        config: DaemonConfig | None = None,
        store: StateStore | None = None,
    ) -> None:
        self.state_root = state_root
        try:
            state_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise IoFailure(f"cannot create state root {state_root}: {exc.strerror}") from None
        self.config = config or load_config(state_root)
        self.store = store or open_store(state_root)
        self.trust_path = resolve_trust_store(state_root)  # used when the store is not shared
        self.trust = trust_home(self.store, self.trust_path)
        self.vault = EncryptedFileVault(state_root / "vault")
        self.artifacts = artifact_store(state_root, self.store)
        self.listeners: list[EventListener] = []
        self._sandbox: Sandbox | None = None
        self._sandbox_lock = threading.Lock()

    # ---- vault ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def vault_edit(self) -> Iterator[EncryptedFileVault]:
        """The vault, with its writers (and recovery) serialised across processes."""
        with exclusive_lock(self.state_root / "vault" / ".lock"):
            yield self.vault

    # ---- trust store ------------------------------------------------------------------------
    def trust_store(self) -> TrustStore:
        return self.trust.load()

    def trust_edit(self) -> AbstractContextManager[TrustStore]:
        """Load, let the caller edit, save if changed — serialised with every other editor."""
        return self.trust.edit()

    def pin(self, publisher: str, key_hex: str) -> bool:
        """Pin a TOFU key unless this publisher is already allowlisted or pinned."""
        with self.trust_edit() as store:
            if publisher in store.trusted_publishers or publisher in store.tofu_publishers:
                return False
            store.pin(publisher, key_hex)
            return True

    # ---- audit policy -----------------------------------------------------------------------
    def audit_policy(self) -> AuditPolicy:
        blocklist = Blocklist.from_environment()
        default = self.state_root / "skills" / "blocklist.json"
        if blocklist is None and default.exists():
            blocklist = Blocklist.load(default)
        return AuditPolicy(blocklist=blocklist)

    # ---- sandbox ----------------------------------------------------------------------------
    @property
    def sandbox(self) -> Sandbox:
        """Created on first use: listing and installing skills never pay for an engine."""
        with self._sandbox_lock:
            if self._sandbox is None:
                from palyra.runtime.context import HostServices
                from palyra.runtime.sandbox import Sandbox

                services = HostServices(state_root=self.state_root, vault=self.vault)
                self._sandbox = Sandbox(cache_dir=self.code_cache_dir(), services=services)
            return self._sandbox

    def code_cache_dir(self) -> Path:
        """Compiled code lives only in a daemon-owned 0700 directory (design.md §6)."""
        override = os.environ.get("PALYRA_CODE_CACHE", "").strip()
        path = Path(override) if override else self.state_root / "cache" / "code"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    # ---- events -----------------------------------------------------------------------------
    def fire(self, event: str, payload: dict[str, Any]) -> None:
        """Tell listeners (hooks) about a committed change; a listener never breaks it."""
        for listener in list(self.listeners):
            with contextlib.suppress(Exception):
                listener(event, payload)

    def close(self) -> None:
        self.store.close()
