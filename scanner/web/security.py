"""Who is asking and may they: sessions, API tokens, roles, CSRF, log-in throttling, headers.

Owns the request-side security of the review app. Browsers authenticate with a server-side
session (random id in a ``Secure; HttpOnly; SameSite=Strict`` cookie, a new id at every log-in so
a planted id is worthless, idle and absolute timeouts); integrations with an API token in
``Authorization: Bearer``. Every state-changing request made with a cookie must carry the
session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``) and, when the browser
sends one, a same-origin ``Origin``; token requests are exempt (a browser never adds that header
by itself). Must not log or echo a password, session id, token or CSRF token.

Hazard: the log-in throttle is per process (in memory); with several web instances each counts
on its own, which multiplies the allowance by the number of instances (a shared table in the
PostgreSQL store would close that).
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from scanner.accounts.base import Role, User

if TYPE_CHECKING:
    from scanner.web.context import WebContext

SESSION_COOKIE = "maruhi_session"
LOGIN_CSRF_COOKIE = "maruhi_login_csrf"
LANG_COOKIE = "maruhi_lang"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Pages may load only our own script and style; nothing framed except the sanitised body view.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "connect-src 'self'"
)
# The rendered body of a held message: a sandbox (unique origin, no scripts, no forms), only
# inline styles, nothing fetched from anywhere, framed only by our own pages.
BODY_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"
# Raw source and downloads: never rendered as anything active.
RAW_CSP = "sandbox; default-src 'none'"


class LoginRequired(Exception):
    """No valid session or token."""


class Forbidden(Exception):
    """Authenticated, but the role does not allow it (or a CSRF/origin check failed)."""

    def __init__(self, reason: str = "forbidden") -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a browser session (with CSRF token) or an API token."""

    user: User
    session_id: str | None = None
    csrf_token: str | None = None

    @property
    def via_token(self) -> bool:
        return self.session_id is None

    @property
    def name(self) -> str:
        return self.user.name


class LoginLimiter:
    """At most ``max_failures`` failed log-ins per user name and per client in ``window``."""

    def __init__(self, *, max_failures: int = 5, window: timedelta = timedelta(minutes=15),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window = window.total_seconds()
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def blocked(self, *keys: str) -> bool:
        now = self._clock()
        with self._lock:
            # A client gets more tries than one name: several users may share an office NAT.
            return any(
                len(self._recent(k, now)) >= self.max_failures * (4 if k.startswith("ip:") else 1)
                for k in keys
            )

    def failed(self, *keys: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) > 100_000:  # bounded memory under a spraying attack
                self._failures.clear()
            for k in keys:
                self._recent(k, now).append(now)

    def succeeded(self, name_key: str) -> None:
        with self._lock:
            self._failures.pop(name_key, None)


def same_token(expected: str | None, supplied: str | None) -> bool:
    return bool(expected) and bool(supplied) and hmac.compare_digest(
        str(expected).encode(), str(supplied).encode()
    )


def _resolve(ctx: WebContext, request: Request) -> Principal | None:
    """Blocking: looks the session or token up in the account store."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        user = ctx.accounts.token_user(auth[7:].strip())
        return None if user is None else Principal(user)
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id or len(session_id) > 200:
        return None
    session = ctx.accounts.touch_session(
        session_id,
        now=ctx.now(),
        idle=ctx.settings.idle_timeout,
        lifetime=ctx.settings.session_lifetime,
    )
    if session is None:
        return None
    return Principal(session.user, session_id, session.csrf_token)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # No Origin (older clients): SameSite=Strict and the CSRF token still protect.
        return origin is None
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


async def _check_csrf(request: Request, principal: Principal) -> None:
    if request.method in SAFE_METHODS or principal.via_token:
        return
    if not _same_origin(request):
        raise Forbidden("csrf")
    supplied = request.headers.get("x-csrf-token")
    if supplied is None:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get("csrf_token")
            supplied = value if isinstance(value, str) else None
    if not same_token(principal.csrf_token, supplied):
        raise Forbidden("csrf")


def require(*roles: Role) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A FastAPI dependency: an authenticated principal holding any of ``roles`` (none: any)."""

    async def dependency(request: Request) -> Principal:
        ctx: WebContext = request.app.state.ctx
        principal = await run_in_threadpool(_resolve, ctx, request)
        if principal is None:
            raise LoginRequired
        request.state.principal = principal
        await _check_csrf(request, principal)
        if roles and not principal.user.has(*roles):
            raise Forbidden
        return principal

    return dependency


async def optional_principal(request: Request) -> Principal | None:
    """The caller if logged in (for pages like the log-in form), without any role check."""
    ctx: WebContext = request.app.state.ctx
    principal = await run_in_threadpool(_resolve, ctx, request)
    request.state.principal = principal
    return principal


def client_key(request: Request) -> str:
    return "ip:" + (request.client.host if request.client else "unknown")
