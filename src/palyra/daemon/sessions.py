"""Browser sessions for the console: sign in once with the API token, then a cookie.

A session cookie is ``HttpOnly`` and ``SameSite=Strict`` and names a random id held only in
the daemon's memory (a restart signs everyone out). Every mutating request made with the
cookie must also carry the session's CSRF token in ``X-CSRF-Token`` — a value a cross-site
page cannot read — so the cookie alone never authorises a change. Sign-in attempts are
rate-limited, and the number of live sessions is bounded.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

from palyra.errors import PalyraError

COOKIE = "palyra_session"
CSRF_HEADER = "x-csrf-token"
TTL_SECONDS = 12 * 3600
MAX_SESSIONS = 64
MAX_SIGN_INS_PER_MINUTE = 10


class SignInFailed(PalyraError):
    kind = "unauthorized"


class TooManySignIns(PalyraError):
    kind = "rate_limited"


@dataclass
class Session:
    session_id: str
    csrf_token: str
    expires_at: float  # time.time()

    @property
    def expires_at_ms(self) -> int:
        return int(self.expires_at * 1000)


class Sessions:
    def __init__(self, token: str, *, ttl_s: float = TTL_SECONDS) -> None:
        self._token = token
        self._ttl = ttl_s
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._attempts: deque[float] = deque()

    def sign_in(self, presented: str) -> Session:
        now = time.time()
        with self._lock:
            while self._attempts and now - self._attempts[0] > 60:
                self._attempts.popleft()
            if len(self._attempts) >= MAX_SIGN_INS_PER_MINUTE:
                raise TooManySignIns("too many sign-in attempts; wait a minute")
            self._attempts.append(now)
        if not presented or not hmac.compare_digest(presented.encode(), self._token.encode()):
            raise SignInFailed("wrong token (see `palyra daemon token`)")
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now + self._ttl)
        with self._lock:
            self._expire(now)
            while len(self._sessions) >= MAX_SESSIONS:  # the oldest one goes
                oldest = min(self._sessions.values(), key=lambda s: s.expires_at)
                del self._sessions[oldest.session_id]
            self._sessions[session.session_id] = session
        return session

    def _expire(self, now: float) -> None:
        for session_id in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[session_id]

    def lookup(self, session_id: str) -> Session | None:
        """The live session for a cookie value (its lifetime slides forward), else None."""
        now = time.time()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if session.expires_at <= now:
                del self._sessions[session_id]
                return None
            session.expires_at = now + self._ttl
            return session

    @staticmethod
    def csrf_ok(session: Session, presented: str) -> bool:
        return bool(presented) and hmac.compare_digest(
            presented.encode(), session.csrf_token.encode()
        )

    def end(self, session_id: str) -> bool:
        with self._lock:
            return self._sessions.pop(session_id, None) is not None


def cookie_value(header: str) -> str | None:
    """The session id from a ``Cookie`` header (no other cookie is read)."""
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == COOKIE:
            return value.strip() or None
    return None


def set_cookie(session: Session, *, secure: bool) -> str:
    flags = "; Secure" if secure else ""
    return (
        f"{COOKIE}={session.session_id}; Path=/; HttpOnly; SameSite=Strict; "
        f"Max-Age={TTL_SECONDS}{flags}"
    )


def clear_cookie() -> str:
    return f"{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
