"""Users and API tokens, for admins: the page ``/admin`` and ``/api/v1/users``, ``/api/v1/tokens``.

Owns account management in the browser and over the API (the CLI's ``maruhi users`` does the same
from a shell). Every change is audited (``user_add``, ``user_roles``, ``user_password``,
``user_disable``/``user_enable``, ``token_create``, ``token_revoke``) without a password or token.
A token's secret is shown once, in the response that creates it, and never again. Must not let the
last enabled admin lock everybody out (disabling or demoting them is refused). Hazard: role
changes end the user's sessions (the account store does this), so a demoted admin's open page
stops working at the next click.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from scanner.accounts.base import AccountError, ApiToken, Role, User
from scanner.web.context import WebContext
from scanner.web.render import render
from scanner.web.security import Principal, require

router = APIRouter()
AdminOnly = Depends(require(Role.ADMIN))
ROLE_NAMES = [r.value for r in Role]


def _user_json(u: User) -> dict[str, Any]:
    return {"name": u.name, "roles": sorted(r.value for r in u.roles),
            "customers": list(u.customers), "rule_prefixes": list(u.rule_prefixes),
            "disabled": u.disabled}


def _token_json(t: ApiToken) -> dict[str, Any]:
    return {"id": t.id, "user": t.user_name, "label": t.label,
            "created_at": t.created_at.isoformat(), "revoked": t.revoked}


def _list(text: str) -> list[str]:
    return [x for x in text.replace(",", " ").split() if x]


def _names(text: str) -> list[str]:
    # Customer names contain spaces ("ACME Corp"): separated by commas only.
    return [x.strip() for x in text.replace("、", ",").split(",") if x.strip()]


def _audit(ctx: WebContext, principal: Principal, action: str, object_id: str,
           details: dict[str, Any]) -> None:
    ctx.store.append_audit(actor=principal.name, action=action, object_id=object_id,
                           details=details, now=ctx.now())


def _keeps_an_admin(ctx: WebContext, name: str, roles: set[str] | None, disabled: bool) -> bool:
    """Whether some enabled admin remains after ``name`` gets ``roles``/``disabled``."""
    for u in ctx.accounts.list_users():
        if u.name == name:
            is_admin = Role.ADMIN.value in (roles if roles is not None else
                                            {r.value for r in u.roles})
            if is_admin and not disabled:
                return True
        elif Role.ADMIN in u.roles and not u.disabled:
            return True
    return False


def add_user(ctx: WebContext, principal: Principal, name: str, password: str, roles: list[str],
             customers: list[str], rule_prefixes: list[str]) -> User:
    user = ctx.accounts.add_user(name, password, [Role(r) for r in roles if r in ROLE_NAMES],
                                 now=ctx.now(), customers=customers, rule_prefixes=rule_prefixes)
    _audit(ctx, principal, "user_add", f"user:{user.name}", _user_json(user))
    return user


def change_user(ctx: WebContext, principal: Principal, name: str, *,
                roles: list[str] | None = None, customers: list[str] | None = None,
                rule_prefixes: list[str] | None = None, disabled: bool | None = None,
                password: str | None = None) -> User:
    """Apply the given changes; 404 for an unknown user, 409 if no enabled admin would remain."""
    user = ctx.accounts.get_user(name)
    if user is None:
        raise HTTPException(404)
    wanted_roles = set(roles) if roles is not None else None
    if not _keeps_an_admin(ctx, name, wanted_roles,
                           user.disabled if disabled is None else disabled):
        raise HTTPException(409)
    if password is not None:
        ctx.accounts.set_password(name, password, now=ctx.now())
        _audit(ctx, principal, "user_password", f"user:{name}", {})
    if roles is not None or customers is not None or rule_prefixes is not None:
        user = ctx.accounts.set_roles(
            name, [Role(r) for r in (roles if roles is not None else
                                     [x.value for x in user.roles]) if r in ROLE_NAMES],
            customers=customers if customers is not None else user.customers,
            rule_prefixes=rule_prefixes if rule_prefixes is not None else user.rule_prefixes)
        _audit(ctx, principal, "user_roles", f"user:{name}", _user_json(user))
    if disabled is not None and disabled != user.disabled:
        ctx.accounts.set_disabled(name, disabled)
        _audit(ctx, principal, "user_disable" if disabled else "user_enable", f"user:{name}", {})
    found = ctx.accounts.get_user(name)
    assert found is not None
    return found


def create_token(ctx: WebContext, principal: Principal, user: str, label: str
                 ) -> tuple[str, ApiToken]:
    if ctx.accounts.get_user(user) is None:
        raise HTTPException(404)
    secret, token = ctx.accounts.create_token(user, label, now=ctx.now())
    _audit(ctx, principal, "token_create", f"token:{token.id}", {"user": user, "label": label})
    return secret, token


def revoke_token(ctx: WebContext, principal: Principal, token_id: str) -> None:
    if not any(t.id == token_id for t in ctx.accounts.list_tokens()):
        raise HTTPException(404)
    ctx.accounts.revoke_token(token_id)
    _audit(ctx, principal, "token_revoke", f"token:{token_id}", {})


# -- HTML --------------------------------------------------------------------------------------


def _page(request: Request, status_code: int = 200, **values: Any) -> Response:
    ctx: WebContext = request.app.state.ctx
    return render(request, "admin.html", status_code, users=ctx.accounts.list_users(),
                  tokens=ctx.accounts.list_tokens(), role_names=ROLE_NAMES, **values)


@router.get("/admin", include_in_schema=False)
def admin_page(request: Request, principal: Annotated[Principal, AdminOnly]) -> Response:
    return _page(request)


def _account_call(request: Request, action: Any) -> Response:
    try:
        action()
    except AccountError as exc:
        # The account store's messages name the rule broken (length, role, duplicate), no secret.
        return _page(request, 422, problem=str(exc))
    return RedirectResponse("/admin?done=1", status_code=303)


@router.post("/admin/users", include_in_schema=False)
def add_user_form(
    request: Request,
    principal: Annotated[Principal, AdminOnly],
    name: Annotated[str, Form(max_length=128)],
    password: Annotated[str, Form(max_length=1000)],
    roles: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies form defaults
    customers: Annotated[str, Form(max_length=2000)] = "",
    rule_prefixes: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    ctx: WebContext = request.app.state.ctx
    return _account_call(request, lambda: add_user(
        ctx, principal, name.strip().lower(), password, roles, _names(customers),
        _list(rule_prefixes)))


@router.post("/admin/users/{name}", include_in_schema=False)
def change_user_form(
    request: Request,
    name: str,
    principal: Annotated[Principal, AdminOnly],
    roles: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies form defaults
    customers: Annotated[str, Form(max_length=2000)] = "",
    rule_prefixes: Annotated[str, Form(max_length=2000)] = "",
    disabled: Annotated[bool, Form()] = False,
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    ctx: WebContext = request.app.state.ctx
    return _account_call(request, lambda: change_user(
        ctx, principal, name, roles=roles, customers=_names(customers),
        rule_prefixes=_list(rule_prefixes), disabled=disabled, password=password or None))


@router.post("/admin/tokens", include_in_schema=False)
def create_token_form(
    request: Request,
    principal: Annotated[Principal, AdminOnly],
    user: Annotated[str, Form(max_length=128)],
    label: Annotated[str, Form(min_length=1, max_length=200)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    ctx: WebContext = request.app.state.ctx
    secret, token = create_token(ctx, principal, user, label)
    # Shown once, on this response only (no-store): the store keeps only its hash.
    return _page(request, 201, new_secret=secret, new_token=token)


@router.post("/admin/tokens/{token_id}/revoke", include_in_schema=False)
def revoke_token_form(
    request: Request,
    token_id: str,
    principal: Annotated[Principal, AdminOnly],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    revoke_token(request.app.state.ctx, principal, token_id)
    return RedirectResponse("/admin?done=1", status_code=303)


# -- API ---------------------------------------------------------------------------------------


class UserIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1000)
    roles: list[Role] = Field(default_factory=list)
    customers: list[str] = Field(default_factory=list, max_length=500)
    rule_prefixes: list[str] = Field(default_factory=list, max_length=500)


class UserPatch(BaseModel):
    roles: list[Role] | None = None
    customers: list[str] | None = Field(default=None, max_length=500)
    rule_prefixes: list[str] | None = Field(default=None, max_length=500)
    disabled: bool | None = None
    password: str | None = Field(default=None, max_length=1000)


class TokenIn(BaseModel):
    user: str = Field(min_length=1, max_length=128)
    label: str = Field(min_length=1, max_length=200)


def _api_call(action: Any) -> Any:
    try:
        return action()
    except AccountError as exc:
        raise HTTPException(422, str(exc)) from exc


@router.get("/api/v1/users", tags=["admin"])
def users_api(request: Request, principal: Annotated[Principal, AdminOnly]) -> dict[str, Any]:
    """All local users with roles and limits (never a password hash)."""
    ctx: WebContext = request.app.state.ctx
    return {"users": [_user_json(u) for u in ctx.accounts.list_users()]}


@router.post("/api/v1/users", tags=["admin"], status_code=201)
def add_user_api(request: Request, body: UserIn,
                 principal: Annotated[Principal, AdminOnly]) -> dict[str, Any]:
    """Create a user; 422 for a taken name, a weak password or an unknown role."""
    ctx: WebContext = request.app.state.ctx
    user = _api_call(lambda: add_user(ctx, principal, body.name.strip().lower(), body.password,
                                      [r.value for r in body.roles], body.customers,
                                      body.rule_prefixes))
    return _user_json(user)


@router.patch("/api/v1/users/{name}", tags=["admin"])
def change_user_api(request: Request, name: str, body: UserPatch,
                    principal: Annotated[Principal, AdminOnly]) -> dict[str, Any]:
    """Change roles, limits, the password or disable; 409 when no enabled admin would remain."""
    ctx: WebContext = request.app.state.ctx
    user = _api_call(lambda: change_user(
        ctx, principal, name,
        roles=[r.value for r in body.roles] if body.roles is not None else None,
        customers=body.customers, rule_prefixes=body.rule_prefixes, disabled=body.disabled,
        password=body.password))
    return _user_json(user)


@router.get("/api/v1/tokens", tags=["admin"])
def tokens_api(request: Request, principal: Annotated[Principal, AdminOnly]) -> dict[str, Any]:
    """API tokens (never their secrets)."""
    ctx: WebContext = request.app.state.ctx
    return {"tokens": [_token_json(t) for t in ctx.accounts.list_tokens()]}


@router.post("/api/v1/tokens", tags=["admin"], status_code=201)
def create_token_api(request: Request, body: TokenIn,
                     principal: Annotated[Principal, AdminOnly]) -> dict[str, Any]:
    """Create a token for a user; the ``secret`` is in this response only."""
    ctx: WebContext = request.app.state.ctx
    secret, token = _api_call(lambda: create_token(ctx, principal, body.user, body.label))
    return {"secret": secret, "token": _token_json(token)}


@router.delete("/api/v1/tokens/{token_id}", tags=["admin"], status_code=204)
def revoke_token_api(request: Request, token_id: str,
                     principal: Annotated[Principal, AdminOnly]) -> Response:
    """Revoke a token: it stops working at once."""
    revoke_token(request.app.state.ctx, principal, token_id)
    return Response(status_code=204)
