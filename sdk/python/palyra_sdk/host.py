"""The host's capabilities, as plain Python: ``log``, ``http``, ``secrets``, ``storage``,
``channels`` and :func:`call_info`.

Every capability except ``log`` and ``call_info`` is denied unless the skill's manifest declares
it and the operator's policy allows it; a refused or failed call raises a
:class:`~palyra_sdk.errors.HostError` subclass (``CapabilityDenied``, ``NotFound``,
``UpstreamError``, ``HostTimeout``, ...). A tool that lets one escape fails with the matching
error kind, so most tools need no ``try`` at all.

Outside a skill component (a plain CPython test), ``log`` writes to stderr and the other helpers
raise :class:`~palyra_sdk.errors.NotInComponent`.

``print()`` also works inside a component: the host captures stdout and stderr into the call's
log, like ``log.info``.
"""

from __future__ import annotations

import builtins
import codecs
import dataclasses
import json as jsonlib
import re
import sys
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, overload

from palyra_sdk import _bindings, _json, errors

__all__ = [
    "CallInfo",
    "Headers",
    "Response",
    "SecretRef",
    "call_info",
    "channels",
    "http",
    "log",
    "secret",
    "secrets",
    "storage",
]

_HEADER_NAME: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_METHOD: Final = re.compile(r"[A-Za-z]{1,16}")
_CHARSET: Final = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9._:\-]+)", re.IGNORECASE)


# ---- log --------------------------------------------------------------------------------------


class _Log:
    """``log.info("fetched %d items" % n)``: one line in the call's log (the host caps lines
    and bytes and redacts secrets)."""

    def _emit(self, level: str, message: object) -> None:
        text = message if isinstance(message, str) else str(message)
        try:
            host = _bindings.host_module(f"log.{level}")
        except errors.NotInComponent:
            print(f"[{level}] {text}", file=sys.stderr)
            return
        host.log(getattr(host.LogLevel, level.upper()), text)

    def trace(self, message: object) -> None:
        self._emit("trace", message)

    def debug(self, message: object) -> None:
        self._emit("debug", message)

    def info(self, message: object) -> None:
        self._emit("info", message)

    def warn(self, message: object) -> None:
        self._emit("warn", message)

    def warning(self, message: object) -> None:
        self._emit("warn", message)

    def error(self, message: object) -> None:
        self._emit("error", message)


log: Final = _Log()


# ---- call info --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CallInfo:
    """About the running call: the skill, the tool (manifest id and name), and the
    milliseconds left of its wall-clock budget."""

    skill_id: str
    tool_id: str
    tool: str
    remaining_ms: int


def call_info() -> CallInfo:
    """The running call's :class:`CallInfo`."""
    raw = _bindings.host_module("call_info").info()
    return CallInfo(
        skill_id=raw.skill_id, tool_id=raw.tool_id, tool=raw.tool, remaining_ms=raw.remaining_ms
    )


# ---- http -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SecretRef:
    """A header value the host fills from the vault: ``prefix + secret + suffix``. The skill
    never sees the secret; build it with :func:`secret`."""

    ref: str
    prefix: str = ""
    suffix: str = ""


def secret(ref: str, *, prefix: str = "", suffix: str = "") -> SecretRef:
    """A secret header value, e.g. ``{"Authorization": secret("skill:acme/token",
    prefix="Bearer ")}``. ``ref`` is ``"<scope>/<key>"`` of a secret the manifest declares."""
    scope, sep, key = ref.partition("/")
    if not sep or not scope.strip() or not key.strip() or "/" in key:
        raise ValueError(f"secret reference {ref[:80]!r} must be '<scope>/<key>'")
    for part, name in ((prefix, "prefix"), (suffix, "suffix")):
        if "\r" in part or "\n" in part:
            raise ValueError(f"secret {name} cannot contain line breaks")
    return SecretRef(ref, prefix, suffix)


class Headers(Mapping[str, str]):
    """Response headers: a case-insensitive mapping (repeated headers joined by ", "), with
    :meth:`get_all` for the separate values and :attr:`raw` for the pairs as received."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.raw: tuple[tuple[str, str], ...] = tuple(pairs)
        joined: dict[str, list[str]] = {}
        self._names: dict[str, str] = {}
        for name, value in self.raw:
            key = name.lower()
            joined.setdefault(key, []).append(value)
            self._names.setdefault(key, name)
        self._joined = {key: ", ".join(values) for key, values in joined.items()}
        self._all = joined

    def __getitem__(self, name: str) -> str:
        return self._joined[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return (self._names[key] for key in self._joined)

    def __len__(self) -> int:
        return len(self._joined)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._joined

    def get_all(self, name: str) -> builtins.list[str]:
        return builtins.list(self._all.get(name.lower(), ()))

    def __repr__(self) -> str:
        return f"Headers({builtins.list(self.raw)!r})"


@dataclasses.dataclass(frozen=True)
class Response:
    """An HTTP response. ``body`` is the raw bytes; :attr:`text` and :meth:`json` decode it."""

    status: int
    headers: Headers
    body: bytes
    url: str

    @property
    def ok(self) -> bool:
        """True for a 2xx status."""
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        """The body decoded with the Content-Type charset (UTF-8 by default; undecodable bytes
        become U+FFFD)."""
        match = _CHARSET.search(self.headers.get("content-type", ""))
        charset = "utf-8"
        if match:
            try:
                charset = codecs.lookup(match.group(1)).name
            except LookupError:
                charset = "utf-8"
        return self.body.decode(charset, errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; :class:`~palyra_sdk.errors.UpstreamError` if it is not."""
        try:
            return jsonlib.loads(self.body)
        except (ValueError, RecursionError) as exc:
            shown = self.url.split("?", 1)[0]
            raise errors.UpstreamError(
                f"the response from {shown} is not valid JSON ({exc})", operation="http"
            ) from None

    def raise_for_status(self) -> Response:
        """Return self for a 2xx status, else raise :class:`~palyra_sdk.errors.HttpStatusError`
        (an ``UpstreamError``: a tool that lets it escape fails with kind ``upstream``)."""
        if not self.ok:
            raise errors.HttpStatusError(self.status, self.url)
        return self


HeaderInput = Mapping[str, str] | Iterable[tuple[str, str]] | None
SecretHeaderInput = Mapping[str, SecretRef | str] | None
ParamsInput = Mapping[str, Any] | Iterable[tuple[str, Any]] | None


def _invalid(message: str) -> errors.InvalidRequest:
    return errors.InvalidRequest(message, operation="http")


def _header_pairs(headers: HeaderInput) -> builtins.list[tuple[str, str]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    pairs: builtins.list[tuple[str, str]] = []
    for name, value in items:
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise _invalid(f"header name {str(name)[:64]!r} is not a valid HTTP token")
        if not isinstance(value, str):
            raise _invalid(f"header {name!r} must have a string value")
        if "\r" in value or "\n" in value or "\0" in value:
            raise _invalid(f"header {name!r} contains a line break or NUL")
        pairs.append((name, value))
    return pairs


def _secret_pairs(
    secret_headers: SecretHeaderInput, plain: set[str]
) -> builtins.list[tuple[str, SecretRef]]:
    pairs: builtins.list[tuple[str, SecretRef]] = []
    seen = set(plain)
    for name, ref in (secret_headers or {}).items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise _invalid(f"header name {str(name)[:64]!r} is not a valid HTTP token")
        if name.lower() in seen:
            raise _invalid(f"header {name!r} is given twice (plainly and as a secret?)")
        seen.add(name.lower())
        try:
            value = secret(ref) if isinstance(ref, str) else ref
        except ValueError as exc:
            raise _invalid(f"secret header {name!r}: {exc}") from None
        if not isinstance(value, SecretRef):
            raise _invalid(f"secret header {name!r} needs secret('scope/key')")
        pairs.append((name, value))
    return pairs


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _with_params(url: str, params: ParamsInput) -> str:
    if params is None:
        return url
    items = params.items() if isinstance(params, Mapping) else params
    query = urllib.parse.urlencode([(str(k), _query_value(v)) for k, v in items])
    if not query:
        return url
    base, hash_mark, fragment = url.partition("#")
    joiner = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        joiner = ""
    return f"{base}{joiner}{query}{hash_mark}{fragment}"


class _Http:
    """HTTP through the host's egress firewall (only hosts the manifest declares)."""

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: HeaderInput = None,
        secret_headers: SecretHeaderInput = None,
        params: ParamsInput = None,
        json: Any = None,
        data: bytes | str | Mapping[str, Any] | None = None,
    ) -> Response:
        """One HTTP exchange. ``json`` sends a JSON body, ``data`` raw bytes, text or a form;
        ``params`` are appended to the query string. A non-2xx status is *not* an error
        (call :meth:`Response.raise_for_status`); a refused or failed exchange raises a
        :class:`~palyra_sdk.errors.HostError`."""
        if not isinstance(method, str) or not _METHOD.fullmatch(method):
            raise _invalid(f"method {str(method)[:20]!r} is not a valid HTTP method")
        if not isinstance(url, str) or not url.strip():
            raise _invalid("url must be a non-empty string")
        if json is not None and data is not None:
            raise _invalid("give json or data, not both")
        pairs = _header_pairs(headers)
        names = {name.lower() for name, _ in pairs}
        if len(names) != len(pairs):
            raise _invalid("a header is given twice (header names are case-insensitive)")
        body = b""
        content_type: str | None = None
        if json is not None:
            body = _json.dumps(json).encode()
            content_type = "application/json"
        elif isinstance(data, (bytes, bytearray, memoryview)):
            body = bytes(data)
        elif isinstance(data, str):
            body = data.encode()
            content_type = "text/plain; charset=utf-8"
        elif isinstance(data, Mapping):
            body = urllib.parse.urlencode(
                [(str(k), _query_value(v)) for k, v in data.items()]
            ).encode()
            content_type = "application/x-www-form-urlencoded"
        elif data is not None:
            raise _invalid(f"data must be bytes, str or a mapping, not {type(data).__name__}")
        if content_type is not None and "content-type" not in names:
            pairs.append(("Content-Type", content_type))
        secret_pairs = _secret_pairs(secret_headers, names)
        full_url = _with_params(url, params)
        upper = method.upper()

        def fetch(host: Any) -> Any:
            request = host.HttpRequest(
                upper,
                full_url,
                [host.Header(n, v) for n, v in pairs],
                [host.SecretHeader(n, s.ref, s.prefix, s.suffix) for n, s in secret_pairs],
                body,
            )
            return host.http_fetch(request)

        raw = _bindings.call(f"http.{method.lower()}", fetch)
        return Response(
            status=int(raw.status),
            headers=Headers((h.name, h.value) for h in raw.headers),
            body=bytes(raw.body),
            url=full_url,
        )

    def get(
        self,
        url: str,
        *,
        headers: HeaderInput = None,
        secret_headers: SecretHeaderInput = None,
        params: ParamsInput = None,
    ) -> Response:
        """``GET url`` (see :meth:`request`)."""
        return self.request(
            "GET", url, headers=headers, secret_headers=secret_headers, params=params
        )

    def post(
        self,
        url: str,
        *,
        json: Any = None,
        data: bytes | str | Mapping[str, Any] | None = None,
        headers: HeaderInput = None,
        secret_headers: SecretHeaderInput = None,
        params: ParamsInput = None,
    ) -> Response:
        """``POST url`` with a ``json`` or ``data`` body (see :meth:`request`)."""
        return self.request(
            "POST",
            url,
            headers=headers,
            secret_headers=secret_headers,
            params=params,
            json=json,
            data=data,
        )

    def put(
        self,
        url: str,
        *,
        json: Any = None,
        data: bytes | str | Mapping[str, Any] | None = None,
        headers: HeaderInput = None,
        secret_headers: SecretHeaderInput = None,
        params: ParamsInput = None,
    ) -> Response:
        """``PUT url`` (see :meth:`request`)."""
        return self.request(
            "PUT",
            url,
            headers=headers,
            secret_headers=secret_headers,
            params=params,
            json=json,
            data=data,
        )

    def delete(
        self,
        url: str,
        *,
        headers: HeaderInput = None,
        secret_headers: SecretHeaderInput = None,
        params: ParamsInput = None,
    ) -> Response:
        """``DELETE url`` (see :meth:`request`)."""
        return self.request(
            "DELETE", url, headers=headers, secret_headers=secret_headers, params=params
        )


http: Final = _Http()


# ---- secrets ------------------------------------------------------------------------------


class _Secrets:
    """Secrets the manifest declares (``capabilities.secrets``). Prefer
    ``http(..., secret_headers=...)`` when the secret only goes into a header: then the
    skill never holds it."""

    def get_bytes(self, scope: str, key: str) -> bytes:
        """The secret's raw bytes."""
        value = _bindings.call("secrets.get", lambda host: host.secret_get(scope, key))
        return bytes(value)

    def get(self, scope: str, key: str) -> str:
        """The secret as UTF-8 text (ValueError, without the value, if it is not UTF-8)."""
        raw = self.get_bytes(scope, key)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(
                f"secret '{scope}/{key}' is not UTF-8 text; use secrets.get_bytes"
            ) from None


secrets: Final = _Secrets()


# ---- storage ------------------------------------------------------------------------------


class _Storage:
    """The skill's own key-value storage: bytes values under path-like keys
    (``"cache/notes/today"``: ``/``-separated segments of ``[A-Za-z0-9_][A-Za-z0-9._-]*``,
    at most 512 bytes) inside the storage roots the manifest declares and the operator
    grants."""

    @overload
    def get(self, key: str) -> bytes | None: ...
    @overload
    def get(self, key: str, default: bytes) -> bytes: ...
    def get(self, key: str, default: bytes | None = None) -> bytes | None:
        """The value of ``key``, or ``default`` when it does not exist."""
        try:
            value = _bindings.call("storage.get", lambda host: host.storage_get(key))
        except errors.NotFound:
            return default
        return bytes(value)

    def get_text(self, key: str, default: str | None = None) -> str | None:
        """The value of ``key`` as UTF-8 text, or ``default`` when it does not exist."""
        raw = self.get(key)
        return default if raw is None else raw.decode("utf-8", errors="replace")

    def get_json(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` parsed as JSON, or ``default`` when it does not exist.
        A stored value that is not JSON raises ValueError naming the key."""
        raw = self.get(key)
        if raw is None:
            return default
        try:
            return jsonlib.loads(raw)
        except (ValueError, RecursionError):
            raise ValueError(f"storage key {key[:100]!r} does not hold JSON") from None

    def put(self, key: str, value: bytes | str) -> None:
        """Store ``value`` (text is stored as UTF-8) under ``key``."""
        if isinstance(value, str):
            data = value.encode("utf-8")
        elif isinstance(value, (bytes, bytearray, memoryview)):
            data = bytes(value)
        else:
            raise TypeError(
                f"storage.put needs bytes or str, not {type(value).__name__} "
                "(use storage.put_json for other values)"
            )
        _bindings.call("storage.put", lambda host: host.storage_put(key, data))

    def put_json(self, key: str, value: Any) -> None:
        """Store ``value`` as compact JSON (dataclasses, Enums and tuples are converted)."""
        self.put(key, _json.dumps(value))

    def delete(self, key: str) -> bool:
        """Delete ``key``; False when it did not exist."""
        try:
            _bindings.call("storage.delete", lambda host: host.storage_delete(key))
        except errors.NotFound:
            return False
        return True

    def list(self, prefix: str = "") -> builtins.list[str]:
        """The keys under the key directory ``prefix`` (``"cache/notes"`` lists
        ``cache/notes/a`` and ``cache/notes/b/c``; a trailing ``/`` is ignored), sorted and
        capped by the host (1000)."""
        directory = prefix.rstrip("/")
        keys = _bindings.call("storage.list", lambda host: host.storage_list(directory))
        return [str(key) for key in keys]


storage: Final = _Storage()


# ---- channels -----------------------------------------------------------------------------


class _Channels:
    """Chat channels the manifest declares."""

    def send(self, channel: str, message: str) -> None:
        """Send ``message`` to ``channel``."""
        if not isinstance(message, str):
            raise TypeError(f"channels.send needs a str message, not {type(message).__name__}")
        _bindings.call("channels.send", lambda host: host.channel_send(channel, message))


channels: Final = _Channels()
