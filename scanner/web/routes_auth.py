"""Log-in, log-out, the home redirect and the language switch.

Owns the session life cycle at the edge: the log-in form is protected by a double-submit token
(random, in a cookie and a hidden field), a successful log-in always issues a *new* session id
(never reusing one the browser brought: no fixation), failures are throttled per name and
client, and every attempt is audited (the typed name only when such a user exists, since people
type passwords into the name field). Must not say whether a user name exists.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from scanner.accounts.base import Role
from scanner.web.context import WebContext
from scanner.web.i18n import LANGUAGES
from scanner.web.render import render
from scanner.web.security import (
    LANG_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Principal,
    client_key,
    optional_principal,
    require,
    same_token,
)

router = APIRouter(include_in_schema=False)


def home_for(principal: Principal) -> str:
    user = principal.user
    if user.has(Role.REVIEWER) or Role.AUDITOR in user.roles:
        return "/quarantine"
    if user.has(Role.RULES_ADMIN):
        return "/rules"
    return "/login"


@router.get("/")
def home(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Response:
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(home_for(principal), status_code=303)


def _login_page(request: Request, status_code: int = 200, error_key: str | None = None) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", status_code, login_csrf=token, error_key=error_key)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
        secure=request.app.state.ctx.settings.cookie_secure, path="/login",
    )
    return response


@router.get("/login")
def login_form(
    request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]
) -> Response:
    if principal is not None:
        return RedirectResponse(home_for(principal), status_code=303)
    return _login_page(request)


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    ctx: WebContext = request.app.state.ctx
    if not same_token(request.cookies.get(LOGIN_CSRF_COOKIE), csrf_token):
        return _login_page(request, 403, "csrf_failed")
    name = username.strip().lower()
    name_key, ip_key = f"name:{name}", client_key(request)
    if ctx.limiter.blocked(name_key, ip_key):
        known = ctx.accounts.get_user(name) is not None
        ctx.store.append_audit(
            actor=name if known else "unknown", action="login_throttled", object_id=None,
            details={"client": ip_key[3:]}, now=ctx.now(),
        )
        return _login_page(request, 429, "login_throttled")
    user = ctx.accounts.verify_password(name, password)
    if user is None:
        ctx.limiter.failed(name_key, ip_key)
        known = ctx.accounts.get_user(name) is not None
        ctx.store.append_audit(
            actor=name if known else "unknown", action="login_failed", object_id=None,
            details={"client": ip_key[3:], "known_user": known}, now=ctx.now(),
        )
        return _login_page(request, 401, "login_failed")
    ctx.limiter.succeeded(name_key)
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        ctx.accounts.delete_session(old)  # whatever id the browser brought dies here
    session_id, _ = ctx.accounts.create_session(user.name, now=ctx.now())
    ctx.store.append_audit(
        actor=user.name, action="login", object_id=None,
        details={"client": ip_key[3:], "roles": sorted(r.value for r in user.roles)},
        now=ctx.now(),
    )
    response = RedirectResponse(home_for(Principal(user)), status_code=303)
    response.set_cookie(
        SESSION_COOKIE, session_id, httponly=True, samesite="strict",
        secure=ctx.settings.cookie_secure, path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, principal: Annotated[Principal, Depends(require())]) -> Response:
    ctx: WebContext = request.app.state.ctx
    if principal.session_id:
        ctx.accounts.delete_session(principal.session_id)
    ctx.store.append_audit(actor=principal.name, action="logout", object_id=None, details={},
                           now=ctx.now())
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/lang/{code}")
def switch_language(request: Request, code: str, next: str = "/") -> Response:
    # Only back to one of our own paths: never an open redirect ("//host", "/\\host").
    target = next if next.startswith("/") and not next.startswith(("//", "/\\")) else "/"
    response = RedirectResponse(target, status_code=303)
    if code in LANGUAGES:
        response.set_cookie(LANG_COOKIE, code, samesite="strict", max_age=365 * 86400,
                            secure=request.app.state.ctx.settings.cookie_secure, httponly=True)
    return response
