"""The sender's status page behind the link in a hold notice, and the release request it allows.

Owns ``/status/{id}/{token}`` (no log-in: the HMAC token of ``scanner.notify.links`` is the
capability, valid for that one message only). The page shows what the hold notice already said —
status, time, rule ids, out-of-scope recipients — and never the subject, body, attachment text,
a term or a reviewer's reason. The sender may ask for release with a justification: recorded in
``ReleaseRequests``, audited as ``release_request`` (length and digest, not the text), shown to
reviewers. Self-release is not offered: a request is only a request. The form is protected by a
double-submit token (cookie + field), as the log-in form is, since there is no session.
Must not log the path (it carries the token; uvicorn's access log is off). Hazard: a wrong token
and an unknown id answer the same 404, so the page does not reveal which ids exist.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from scanner.notify.links import valid_token
from scanner.store.base import NotFoundError, QuarantineRecord
from scanner.web.context import WebContext
from scanner.web.render import render
from scanner.web.requests import MAX_JUSTIFICATION, MAX_PER_MESSAGE, TooManyRequests
from scanner.web.routes_quarantine import ID_PATTERN
from scanner.web.security import same_token

router = APIRouter(include_in_schema=False)
STATUS_CSRF_COOKIE = "maruhi_status_csrf"


def _record(ctx: WebContext, quarantine_id: str, token: str) -> QuarantineRecord:
    if not ID_PATTERN.match(quarantine_id) or not valid_token(ctx.link_key, quarantine_id, token):
        raise HTTPException(404)
    try:
        return ctx.store.get(quarantine_id)
    except NotFoundError as exc:
        raise HTTPException(404) from exc


def _page(request: Request, ctx: WebContext, record: QuarantineRecord, token: str,
          status_code: int = 200, error_key: str | None = None) -> Response:
    form_token = secrets.token_urlsafe(32)
    requests = ctx.requests.for_message(record.id)
    response = render(
        request, "status.html", status_code, record=record, link_token=token,
        status_csrf=form_token, requests=requests, error_key=error_key,
        can_request=record.public_status == "held" and len(requests) < MAX_PER_MESSAGE,
        max_chars=MAX_JUSTIFICATION,
    )
    response.set_cookie(STATUS_CSRF_COOKIE, form_token, httponly=True, samesite="strict",
                        secure=ctx.settings.cookie_secure, path="/status/")
    # The link is a capability: no page it leads to may send it on in a Referer.
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@router.get("/status/{quarantine_id}/{token}")
def status_page(request: Request, quarantine_id: str, token: str) -> Response:
    ctx: WebContext = request.app.state.ctx
    record = _record(ctx, quarantine_id, token)
    return _page(request, ctx, record, token)


@router.post("/status/{quarantine_id}/{token}")
def request_release(
    request: Request,
    quarantine_id: str,
    token: str,
    justification: Annotated[str, Form(max_length=MAX_JUSTIFICATION)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    ctx: WebContext = request.app.state.ctx
    record = _record(ctx, quarantine_id, token)
    if not same_token(request.cookies.get(STATUS_CSRF_COOKIE), csrf_token):
        return _page(request, ctx, record, token, 403, "csrf_failed")
    if record.public_status != "held":
        return _page(request, ctx, record, token, 409, "status_decided")
    if not justification.strip():
        return _page(request, ctx, record, token, 422, "justification_required")
    try:
        req = ctx.requests.add(record.id, justification, now=ctx.now())
    except TooManyRequests:
        return _page(request, ctx, record, token, 429, "too_many_requests")
    ctx.store.append_audit(
        actor=f"sender:{record.sender or '<>'}", action="release_request", object_id=record.id,
        details={"request": req.id, "chars": len(req.justification),
                 # Digest, not text: the audit is read by auditors, who never see content.
                 "sha256": hashlib.sha256(req.justification.encode()).hexdigest()},
        now=ctx.now(),
    )
    return RedirectResponse(f"/status/{record.id}/{token}?requested=1", status_code=303)
