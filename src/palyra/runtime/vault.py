"""Secrets at rest: an encrypted file under the state root.

AES-256-GCM (``cryptography``) over one JSON document of ``scope/key → value``; the 32-byte key
comes from ``$PALYRA_VAULT_KEY`` (hex or base64) or a key file created with mode 0600 beside the
vault. Writes are atomic, so a crash leaves the old or the new vault. Values never appear in
``repr``, logs or errors.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import secrets as pysecrets
import threading
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from palyra.errors import IoFailure, PalyraError
from palyra.fsutil import atomic_write, fsync_directory
from palyra.skills.errors import ManifestValidationError
from palyra.skills.values import identifier, secret_scope

VAULT_KEY_ENV = "PALYRA_VAULT_KEY"
MAX_SECRET_BYTES = 64 * 1024
_MAGIC = b"PALYRA-VAULT-1\n"
_NONCE = 12


class VaultError(PalyraError):
    kind = "vault_error"


def secret_ref(scope: str, key: str) -> str:
    """Validate and join a reference: ``<scope>/<key>``."""
    try:
        secret_scope(scope)
        identifier("secret key", key)
    except ManifestValidationError as exc:
        raise VaultError(exc.message.removeprefix("manifest validation failed: ")) from None
    return f"{scope}/{key}"


def parse_secret_ref(ref: str) -> tuple[str, str]:
    scope, sep, key = ref.rpartition("/")
    if not sep:
        raise VaultError(f"secret reference '{ref}' must be <scope>/<key>")
    secret_ref(scope, key)
    return scope, key


class Vault(Protocol):
    def get(self, scope: str, key: str) -> bytes | None: ...

    def set(self, scope: str, key: str, value: bytes) -> None: ...

    def delete(self, scope: str, key: str) -> bool: ...

    def names(self) -> list[tuple[str, str]]: ...


class MemoryVault:
    """A vault that lives only in memory (tests, development runs)."""

    def __init__(self, values: dict[tuple[str, str], bytes] | None = None) -> None:
        self._values = dict(values or {})

    def get(self, scope: str, key: str) -> bytes | None:
        return self._values.get((scope, key))

    def set(self, scope: str, key: str, value: bytes) -> None:
        secret_ref(scope, key)
        self._values[(scope, key)] = value

    def delete(self, scope: str, key: str) -> bool:
        return self._values.pop((scope, key), None) is not None

    def names(self) -> list[tuple[str, str]]:
        return sorted(self._values)

    def __repr__(self) -> str:
        return f"MemoryVault({len(self._values)} secrets)"


def _decode_key(text: str) -> bytes:
    text = text.strip()
    try:
        raw = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise VaultError(f"{VAULT_KEY_ENV} must be 32 bytes as hex or base64") from None
    if len(raw) != 32:
        raise VaultError(f"{VAULT_KEY_ENV} must be 32 bytes as hex or base64")
    return raw


class EncryptedFileVault:
    """``<dir>/secrets.vault`` encrypted with ``<dir>/vault.key`` (or ``$PALYRA_VAULT_KEY``)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "secrets.vault"
        self._key_path = directory / "vault.key"
        self._directory = directory
        self._lock = threading.Lock()

    def _key(self, create: bool) -> bytes | None:
        env = os.environ.get(VAULT_KEY_ENV, "")
        if env.strip():
            return _decode_key(env)
        try:
            raw = self._key_path.read_bytes()
        except FileNotFoundError:
            if not create:
                return None
            self._directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            raw = pysecrets.token_bytes(32)
            try:
                fd = os.open(self._key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return self._key(create=False)
            try:
                os.write(fd, raw)
            finally:
                os.close(fd)
        except OSError as exc:
            raise IoFailure(f"cannot read vault key: {exc.strerror}") from None
        if len(raw) != 32:
            raise VaultError(f"vault key file {self._key_path} is not 32 bytes")
        return raw

    def _load(self, key: bytes | None) -> dict[str, str]:
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise IoFailure(f"cannot read vault: {exc.strerror}") from None
        if key is None:
            raise VaultError("vault exists but its key is missing")
        if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + _NONCE + 16:
            raise VaultError(f"{self.path} is not a palyra vault")
        body = blob[len(_MAGIC) :]
        try:
            plain = AESGCM(key).decrypt(body[:_NONCE], body[_NONCE:], _MAGIC)
        except InvalidTag:
            raise VaultError("vault cannot be decrypted (wrong key or tampered file)") from None
        document = json.loads(plain)
        if not isinstance(document, dict):
            raise VaultError("vault contents are malformed")
        return {str(k): str(v) for k, v in document.items()}

    def _save(self, key: bytes, values: dict[str, str]) -> None:
        self._write(self.path, key, values)

    def _write(self, path: Path, key: bytes, values: dict[str, str]) -> None:
        nonce = pysecrets.token_bytes(_NONCE)
        plain = json.dumps(values, sort_keys=True).encode()
        self._directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(path, _MAGIC + nonce + AESGCM(key).encrypt(nonce, plain, _MAGIC), mode=0o600)

    def get(self, scope: str, key: str) -> bytes | None:
        with self._lock:
            encoded = self._load(self._key(create=False)).get(f"{scope}/{key}")
        return None if encoded is None else base64.b64decode(encoded)

    def set(self, scope: str, key: str, value: bytes) -> None:
        ref = secret_ref(scope, key)
        if len(value) > MAX_SECRET_BYTES:
            raise VaultError(f"secret values are limited to {MAX_SECRET_BYTES} bytes")
        with self._lock:
            vault_key = self._key(create=True)
            assert vault_key is not None
            values = self._load(vault_key)
            values[ref] = base64.b64encode(value).decode()
            self._save(vault_key, values)

    # ---- two-phase writes (the daemon's journal is the commit record) -----------------------
    # A staged change is the whole next vault, encrypted, in ``secrets.vault.pending``; the
    # caller journals it (with :meth:`staged_digest`) and then commits it. A crash before the
    # journal entry commits leaves the old vault (recovery discards the pending file), after
    # it the new one (recovery commits it): never a change without its entry, or the reverse.

    @property
    def pending_path(self) -> Path:
        return self.path.with_name(self.path.name + ".pending")

    def stage(self, scope: str, key: str, value: bytes | None) -> bool:
        """Stage setting (``value``) or deleting (``None``) one secret; False when deleting a
        secret that does not exist (nothing staged)."""
        ref = secret_ref(scope, key)
        if value is not None and len(value) > MAX_SECRET_BYTES:
            raise VaultError(f"secret values are limited to {MAX_SECRET_BYTES} bytes")
        with self._lock:
            vault_key = self._key(create=value is not None)
            values = self._load(vault_key)
            if value is None:
                if values.pop(ref, None) is None or vault_key is None:
                    return False
            else:
                values[ref] = base64.b64encode(value).decode()
            assert vault_key is not None
            self._write(self.pending_path, vault_key, values)
            return True

    def staged_digest(self) -> str | None:
        """SHA-256 of the staged vault file (unique: every write has a fresh nonce)."""
        try:
            return hashlib.sha256(self.pending_path.read_bytes()).hexdigest()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IoFailure(f"cannot read the staged vault: {exc.strerror}") from None

    def commit_staged(self) -> None:
        with self._lock:
            try:
                os.replace(self.pending_path, self.path)
            except FileNotFoundError:
                return
            except OSError as exc:
                raise IoFailure(f"cannot commit the vault: {exc.strerror}") from None
            fsync_directory(self._directory)

    def discard_staged(self) -> None:
        with self._lock, contextlib.suppress(FileNotFoundError):
            self.pending_path.unlink()

    def delete(self, scope: str, key: str) -> bool:
        with self._lock:
            vault_key = self._key(create=False)
            values = self._load(vault_key)
            if values.pop(f"{scope}/{key}", None) is None or vault_key is None:
                return False
            self._save(vault_key, values)
            return True

    def names(self) -> list[tuple[str, str]]:
        with self._lock:
            refs = self._load(self._key(create=False))
        return sorted(parse_secret_ref(ref) for ref in refs)

    def __repr__(self) -> str:
        return f"EncryptedFileVault({self.path})"
