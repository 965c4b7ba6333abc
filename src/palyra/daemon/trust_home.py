"""Where the publisher trust store lives: the reference's JSON file, or the shared database.

A daemon on its own keeps ``<state>/skills/trust-store.json`` (edited under an advisory
file lock: the daemon and a local CLI may both pin keys). Daemons sharing one PostgreSQL
keep the same JSON document in it, edited inside a write transaction, so a key pinned on
first use by one daemon is the pin every daemon enforces.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from palyra.fsutil import exclusive_lock
from palyra.paths import resolve_trust_store
from palyra.skills.trust import TrustStore
from palyra.store import DATABASE_URL_ENV, open_store
from palyra.store.base import StateStore

TRUST_DOCUMENT = "trust-store"


class TrustHome(Protocol):
    where: str  # for messages: a path, or the database and document name

    def load(self) -> TrustStore: ...
    def edit(self) -> AbstractContextManager[TrustStore]:
        """Load, let the caller edit, save if changed — serialised with other editors."""
        ...


class FileTrustHome:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def load(self) -> TrustStore:
        return TrustStore.load(self.path)

    @contextlib.contextmanager
    def edit(self) -> Iterator[TrustStore]:
        with exclusive_lock(self.path.with_name(self.path.name + ".lock")):
            store = TrustStore.load(self.path)
            before = store.to_bytes()
            yield store
            if store.to_bytes() != before:
                store.save(self.path)


class DatabaseTrustHome:
    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.where = f"{store.location} ({TRUST_DOCUMENT})"

    def load(self) -> TrustStore:
        with self.store.read() as tx:
            body = tx.document(TRUST_DOCUMENT)
        return TrustStore.parse((body or "").encode(), self.where)

    @contextlib.contextmanager
    def edit(self) -> Iterator[TrustStore]:
        with self.store.write() as tx:
            body = tx.document(TRUST_DOCUMENT)
            store = TrustStore.parse((body or "").encode(), self.where)
            before = store.to_bytes()
            yield store
            after = store.to_bytes()
            if after != before:
                tx.set_document(TRUST_DOCUMENT, after.decode())


def trust_home(store: StateStore, file: Path) -> TrustHome:
    """The shared document for a shared store, else ``file``."""
    return DatabaseTrustHome(store) if store.shared else FileTrustHome(file)


@contextlib.contextmanager
def open_trust_home(state_root: Path, explicit: Path | None = None) -> Iterator[TrustHome]:
    """For tools outside a daemon (``palyra trust``, ``skills verify``): ``explicit``'s file;
    else the shared database's document when ``PALYRA_DATABASE_URL`` is set (what every
    daemon on it enforces); else the state root's file."""
    if explicit is None and os.environ.get(DATABASE_URL_ENV, "").strip():
        store = open_store(state_root)
        try:
            yield DatabaseTrustHome(store)
        finally:
            store.close()
        return
    yield FileTrustHome(resolve_trust_store(state_root, explicit))
