"""``POST /api/v1/check``: a draft in, the scan contract's JSON out, for mail-client add-ins.

Owns turning a draft (raw MIME in base64, or subject/body/attachments) into message bytes and
scanning it with the active rule version, compiled once per version. Must not store, log or echo
the draft: the answer is the contract JSON (rule ids and locations, never a term). Hazard:
``scan`` is CPU-bound; this is a sync endpoint, so it runs in the server's thread pool and the
event loop keeps serving.
"""

from __future__ import annotations

import base64
import binascii
from email.message import EmailMessage
from email.policy import SMTP
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from scanner.model import Envelope
from scanner.scan import scan
from scanner.web.context import WebContext
from scanner.web.security import Principal, require

router = APIRouter()
MAX_DRAFT = 30 * 1024 * 1024  # base64 text of a draft; the relay's own limit is larger


class AttachmentIn(BaseModel):
    name: str = Field(max_length=255)
    content_base64: str = Field(max_length=MAX_DRAFT)


class CheckIn(BaseModel):
    sender: str = Field(max_length=320)
    recipients: list[str] = Field(min_length=1, max_length=1000)
    raw: str | None = Field(default=None, max_length=MAX_DRAFT)
    subject: str | None = Field(default=None, max_length=10_000)
    body: str | None = Field(default=None, max_length=MAX_DRAFT)
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=100)


class HitOut(BaseModel):
    rule: str
    location: str
    out_of_scope: list[str]


class UnscannableOut(BaseModel):
    location: str
    reason: str


class CheckOut(BaseModel):
    verdict: str
    hits: list[HitOut]
    unscannable: list[UnscannableOut]


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise HTTPException(422, "invalid base64") from exc


def draft_bytes(draft: CheckIn) -> bytes:
    if draft.raw is not None:
        return _b64(draft.raw)
    msg = EmailMessage()
    msg["From"] = draft.sender
    msg["To"] = ", ".join(draft.recipients)
    if draft.subject:
        msg["Subject"] = draft.subject
    msg.set_content(draft.body or "")
    for att in draft.attachments:
        msg.add_attachment(_b64(att.content_base64), maintype="application",
                           subtype="octet-stream", filename=att.name)
    return msg.as_bytes(policy=SMTP)


@router.post("/api/v1/check", tags=["check"], response_model=CheckOut)
def check(request: Request, draft: CheckIn,
          principal: Annotated[Principal, Depends(require())]) -> dict[str, Any]:
    """Scan a draft against the active rules; the answer is the scan contract of DESIGN.md."""
    ctx: WebContext = request.app.state.ctx
    ruleset = ctx.active.get()
    if ruleset is None:
        raise HTTPException(503, "no active rules")
    raw = draft_bytes(draft)
    verdict = scan(raw, Envelope(draft.sender, tuple(draft.recipients)), ruleset,
                   ctx.settings.limits, today=ctx.now().date())
    result: dict[str, Any] = verdict.to_json()
    return result
