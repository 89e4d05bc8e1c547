"""The quarantine for reviewers: list, message view, body/raw on demand, decisions (one or bulk).

Owns the reviewer routes, HTML and ``/api/v1/quarantine``. Roles: reviewer (and admin) see
content and decide; an auditor sees the list and metadata, never content, and cannot decide; a
rules admin gets 403. Decisions go through ``store.release``/``reject`` (atomic, idempotent,
audited by the store with the reviewer's name and reason). Must not put a subject, address or
context into a URL, a log line or an error. Hazard: ids come from the URL; only ids of the
store's shape (26 Crockford base32 characters) reach the store, so no id can name a path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from scanner.accounts.base import Role
from scanner.rules.model import RulesetSpec
from scanner.store.base import ContentGoneError, Decision, NotFoundError, QuarantineRecord
from scanner.web.context import WebContext
from scanner.web.explain import explain
from scanner.web.extend import ExtensionResult, release_with_extension
from scanner.web.i18n import translator
from scanner.web.message import build_view
from scanner.web.queries import STATUS_GROUPS, ListFilter, ListRow
from scanner.web.render import language, render
from scanner.web.security import BODY_CSP, RAW_CSP, Principal, require

router = APIRouter()
ID_PATTERN = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
MAX_BULK = 500
MAX_REASON = 2000

Reader = Depends(require(Role.REVIEWER, Role.AUDITOR))
# The decision endpoints need a reviewer; widening a rule also needs rules-admin for that rule,
# checked per rule in ``release_with_extension``.
Reviewer = Depends(require(Role.REVIEWER))


def checked_id(quarantine_id: str) -> str:
    if not ID_PATTERN.match(quarantine_id):
        raise HTTPException(404)
    return quarantine_id


def _get(ctx: WebContext, quarantine_id: str) -> QuarantineRecord:
    try:
        return ctx.store.get(checked_id(quarantine_id))
    except NotFoundError as exc:
        raise HTTPException(404) from exc


@dataclass(frozen=True)
class RuleIndex:
    """Rule id → customer of the active version, and customer → rule ids."""

    customer_of: dict[str, str | None]
    spec: RulesetSpec | None

    def rules_of(self, customer: str) -> tuple[str, ...]:
        return tuple(r for r, c in self.customer_of.items() if c == customer)

    @property
    def customers(self) -> list[str]:
        return sorted({c for c in self.customer_of.values() if c})


def rule_index(ctx: WebContext) -> RuleIndex:
    version = ctx.rules.active_version()
    if version is None:
        return RuleIndex({}, None)
    spec = ctx.active.spec(version.id)
    return RuleIndex({r.id: r.customer for r in spec.rules}, spec)


def _filter(
    status: str | None, rule: str | None, customer: str | None, sender: str | None,
    domain: str | None, since: date | None, until: date | None, subject: str | None,
    index: RuleIndex,
) -> ListFilter:
    rule_ids: tuple[str, ...] = ()
    if rule:
        rule_ids = (rule,)
    elif customer:
        # A customer with no rules in the active version matches nothing, not everything.
        rule_ids = index.rules_of(customer) or ("\x00none",)
    return ListFilter(
        status=status if status in STATUS_GROUPS else None,
        rule_ids=rule_ids, sender=sender or None, recipient_domain=domain or None,
        since=since, until=until, subject=subject or None,
    )


def _row_json(row: ListRow, index: RuleIndex, with_content: bool) -> dict[str, Any]:
    return {
        "id": row.id,
        "received_at": row.received_at.isoformat(),
        "sender": row.sender,
        "recipients": list(row.recipients),
        "out_of_scope": list(row.out_of_scope),
        "rules": list(row.rule_ids),
        "customers": sorted({c for r in row.rule_ids if (c := index.customer_of.get(r))}),
        "size": row.size,
        "status": STATUS_PUBLIC.get(row.status, row.status),
        # The subject is content (it may carry the very secret): reviewers only.
        "subject": row.subject if with_content else None,
    }


STATUS_PUBLIC = {s: k for k, group in STATUS_GROUPS.items() for s in group}

StatusQ = Annotated[str | None, Query(max_length=20)]
TextQ = Annotated[str | None, Query(max_length=200)]


@router.get("/quarantine", include_in_schema=False)
def quarantine_page(
    request: Request,
    principal: Annotated[Principal, Reader],
    status: StatusQ = "held",
    rule: TextQ = None,
    customer: TextQ = None,
    sender: TextQ = None,
    domain: TextQ = None,
    since: date | None = None,
    until: date | None = None,
    q: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    ctx: WebContext = request.app.state.ctx
    index = rule_index(ctx)
    with_content = principal.user.has(Role.REVIEWER)
    # The subject text lives on the server (SavedSearches), never in the URL; and searching
    # subjects would let a role that may not read content test guesses against it.
    subject = ctx.searches.get(q, principal.name, ctx.now()) if with_content else None
    f = _filter(status, rule, customer, sender, domain, since, until, subject, index)
    rows, next_cursor = ctx.queries.page(f, cursor=cursor)
    now = ctx.now()
    params = {k: v for k, v in request.query_params.items() if k != "cursor" and v}
    requested = ctx.requests.counts([r.id for r in rows])
    return render(
        request, "quarantine_list.html", rows=rows, next_cursor=next_cursor, index=index,
        requested=requested, subject=subject or "",
        now=now, filters=params, statuses=list(STATUS_GROUPS), status_public=STATUS_PUBLIC,
        first=cursor is None, can_decide=with_content, show_subject=with_content,
    )


_FILTER_FIELDS = ("status", "rule", "customer", "sender", "domain", "since", "until")


@router.post("/quarantine/search", include_in_schema=False)
async def quarantine_search(
    request: Request, principal: Annotated[Principal, Reader]
) -> Response:
    """The filter form: keeps the subject text on the server, redirects to a text-free URL."""
    ctx: WebContext = request.app.state.ctx
    form = await request.form()
    params = {k: str(form.get(k, ""))[:200] for k in _FILTER_FIELDS if form.get(k)}
    subject = str(form.get("subject", "")).strip()[:200]
    if subject and principal.user.has(Role.REVIEWER):
        params["q"] = ctx.searches.save(principal.name, subject, ctx.now())
    return RedirectResponse("/quarantine?" + urlencode(params), status_code=303)


@router.get("/api/v1/quarantine", tags=["quarantine"])
def quarantine_list_api(
    request: Request,
    principal: Annotated[Principal, Reader],
    status: StatusQ = "held",
    rule: TextQ = None,
    customer: TextQ = None,
    sender: TextQ = None,
    domain: TextQ = None,
    since: date | None = None,
    until: date | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Held messages newest first with keyset paging (pass ``next_cursor`` back as ``cursor``).

    Subject search is ``POST /api/v1/quarantine/search``: message text never goes in a URL.
    """
    return _list_json(request, principal, ListQuery(
        status=status, rule=rule, customer=customer, sender=sender, domain=domain,
        since=since, until=until, cursor=cursor, limit=limit))


class ListQuery(BaseModel):
    """Filters of the quarantine list; ``subject`` is a substring of the Subject header."""

    status: str | None = Field(default="held", max_length=20)
    rule: str | None = Field(default=None, max_length=200)
    customer: str | None = Field(default=None, max_length=200)
    sender: str | None = Field(default=None, max_length=200)
    domain: str | None = Field(default=None, max_length=200)
    since: date | None = None
    until: date | None = None
    subject: str | None = Field(default=None, max_length=200)
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=50, ge=1, le=500)


@router.post("/api/v1/quarantine/search", tags=["quarantine"])
def quarantine_search_api(request: Request, principal: Annotated[Principal, Reader],
                          query: ListQuery) -> dict[str, Any]:
    """The list with a subject search, the text in the body rather than the URL."""
    return _list_json(request, principal, query)


def _list_json(request: Request, principal: Principal, query: ListQuery) -> dict[str, Any]:
    ctx: WebContext = request.app.state.ctx
    index = rule_index(ctx)
    with_content = principal.user.has(Role.REVIEWER)
    subject = query.subject if with_content else None
    status, rule, customer, sender, domain = (
        query.status, query.rule, query.customer, query.sender, query.domain)
    since, until, cursor, limit = query.since, query.until, query.cursor, query.limit
    f = _filter(status, rule, customer, sender, domain, since, until, subject, index)
    rows, next_cursor = ctx.queries.page(f, cursor=cursor, limit=limit)
    requested = ctx.requests.counts([r.id for r in rows])
    return {"items": [{**_row_json(r, index, with_content),
                       "release_requests": requested.get(r.id, 0)}
                      for r in rows], "next_cursor": next_cursor}


def _detail(ctx: WebContext, record: QuarantineRecord, with_content: bool, lang: str
            ) -> dict[str, Any]:
    raw = b""
    if not record.content_purged:
        try:
            raw = ctx.store.raw(record.id)
        except ContentGoneError:
            raw = b""
    view = build_view(raw, record.hits, with_content=with_content and bool(raw),
                      limits=ctx.settings.limits)
    judged = ctx.rules.find_by_hash(record.ruleset_version)
    spec = ctx.active.spec(judged.id) if judged else rule_index(ctx).spec
    rules = {r.id: r for r in spec.rules} if spec else {}
    t = translator(lang)
    explained = []
    for hit in view.hits:
        rule = rules.get(hit.rule_id)
        explained.append({
            "hit": hit,
            "owner": rule.owner if rule else None,
            "expires": rule.expires.isoformat() if rule and rule.expires else None,
            "customer": rule.customer if rule else None,
            "why": {a: [t(k, *args) for k, args in explain(rule, spec, a)]
                    for a in hit.out_of_scope},
        })
    # A sender's justification is free text that may quote the secret: content, for reviewers.
    requests = ctx.requests.for_message(record.id)
    return {"view": view, "explained": explained, "content_gone": not raw,
            "release_requests": requests if with_content else [],
            "release_request_count": len(requests)}


@router.get("/quarantine/{quarantine_id}", include_in_schema=False)
def message_page(request: Request, quarantine_id: str,
                 principal: Annotated[Principal, Reader]) -> Response:
    ctx: WebContext = request.app.state.ctx
    record = _get(ctx, quarantine_id)
    with_content = principal.user.has(Role.REVIEWER)
    detail = _detail(ctx, record, with_content, language(request))
    return render(request, "message.html", record=record, with_content=with_content,
                  can_decide=with_content and record.public_status == "held", now=ctx.now(),
                  status_public=STATUS_PUBLIC, **_extend_values(ctx, principal, record),
                  **detail)


def _extend_values(ctx: WebContext, principal: Principal, record: QuarantineRecord
                   ) -> dict[str, Any]:
    """The (rule, recipient) pairs this user may put in scope, for the extension form."""
    user = principal.user
    if not user.has(Role.REVIEWER) or not user.has(Role.RULES_ADMIN):
        return {"extend_picks": []}
    spec = rule_index(ctx).spec
    rules = {r.id: r for r in spec.rules} if spec else {}
    picks: dict[tuple[str, str], None] = {}
    for hit in record.hits:
        rule = rules.get(hit.rule_id)
        if rule is None or not rule.terms or not user.may_manage_rule(rule.id, rule.customer):
            continue
        for address in hit.out_of_scope:
            picks.setdefault((rule.id, address), None)
    return {"extend_picks": list(picks)}


@router.get("/api/v1/quarantine/{quarantine_id}", tags=["quarantine"])
def message_api(request: Request, quarantine_id: str,
                principal: Annotated[Principal, Reader]) -> dict[str, Any]:
    """One held message: envelope, hits with out-of-scope reasons and (reviewers) contexts."""
    ctx: WebContext = request.app.state.ctx
    record = _get(ctx, quarantine_id)
    with_content = principal.user.has(Role.REVIEWER)
    detail = _detail(ctx, record, with_content, language(request))
    view = detail["view"]
    return {
        "id": record.id,
        "received_at": record.received_at.isoformat(),
        "sender": record.sender,
        "recipients": list(record.recipients),
        "size": record.size,
        "status": record.public_status,
        "subject": record.subject if with_content else None,
        "ruleset_version": record.ruleset_version,
        "decided_by": record.decided_by,
        "reason": record.reason,
        "headers": [[k, v] for k, v in view.headers] if with_content else [],
        "hits": [
            {
                "rule": e["hit"].rule_id,
                "location": e["hit"].location,
                "out_of_scope": list(e["hit"].out_of_scope),
                "why": e["why"],
                "owner": e["owner"],
                "expires": e["expires"],
                "context": [
                    {"before": s.before, "match": s.match, "after": s.after}
                    for s in e["hit"].snippets
                ],
            }
            for e in detail["explained"]
        ],
        "attachments": [
            {"name": a.name, "content_type": a.content_type, "size": a.size}
            for a in view.attachments
        ],
        "unscannable": [u.to_json() for u in record.unscannable],
        "release_requests": [
            {"id": q.id, "at": q.at.isoformat(), "justification": q.justification}
            for q in detail["release_requests"]
        ] if with_content else detail["release_request_count"],
    }


@router.get("/quarantine/{quarantine_id}/body", include_in_schema=False)
def message_body(request: Request, quarantine_id: str,
                 principal: Annotated[Principal, Reviewer]) -> Response:
    ctx: WebContext = request.app.state.ctx
    record = _get(ctx, quarantine_id)
    try:
        raw = ctx.store.raw(record.id)
    except ContentGoneError as exc:
        raise HTTPException(404) from exc
    view = build_view(raw, (), with_content=True, limits=ctx.settings.limits)
    page = (
        "<!doctype html><html><head><meta charset=utf-8>"
        "<style>body{font-family:sans-serif;margin:8px;color:#111}</style></head><body>"
        f"{view.body_html}</body></html>"
    )
    return Response(page, media_type="text/html; charset=utf-8", headers={
        "Content-Security-Policy": BODY_CSP, "X-Frame-Options": "SAMEORIGIN"})


@router.get("/quarantine/{quarantine_id}/raw", include_in_schema=False)
def message_raw(request: Request, quarantine_id: str,
                principal: Annotated[Principal, Reviewer]) -> Response:
    ctx: WebContext = request.app.state.ctx
    record = _get(ctx, quarantine_id)
    try:
        raw = ctx.store.raw(record.id)
    except ContentGoneError as exc:
        raise HTTPException(404) from exc
    ctx.store.append_audit(actor=principal.name, action="view_raw", object_id=record.id,
                           details={}, now=ctx.now())
    return PlainTextResponse(raw.decode("utf-8", "replace"),
                             headers={"Content-Security-Policy": RAW_CSP})


Decision_ = Literal["release", "reject"]


def decide(ctx: WebContext, principal: Principal, ids: list[str], decision: str,
           reason: str) -> list[Decision]:
    reason = reason.strip()
    if not reason:
        raise HTTPException(422)
    if decision not in ("release", "reject"):
        raise HTTPException(422)
    out = []
    for qid in ids[:MAX_BULK]:
        checked_id(qid)
        act = ctx.store.release if decision == "release" else ctx.store.reject
        try:
            out.append(act(qid, by=principal.name, reason=reason, now=ctx.now()))
        except NotFoundError as exc:
            raise HTTPException(404) from exc
    return out


@router.post("/quarantine/{quarantine_id}/decide", include_in_schema=False)
def decide_form(
    request: Request,
    quarantine_id: str,
    principal: Annotated[Principal, Reviewer],
    decision: Annotated[str, Form(max_length=10)],
    reason: Annotated[str, Form(max_length=MAX_REASON)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    ctx: WebContext = request.app.state.ctx
    if not reason.strip():
        record = _get(ctx, quarantine_id)
        detail = _detail(ctx, record, True, language(request))
        return render(request, "message.html", 422, record=record, with_content=True,
                      can_decide=True, now=ctx.now(), status_public=STATUS_PUBLIC,
                      error_key="reason_required", **_extend_values(ctx, principal, record),
                      **detail)
    decide(ctx, principal, [quarantine_id], decision, reason)
    return RedirectResponse(f"/quarantine/{quarantine_id}?done=1", status_code=303)


@router.post("/quarantine/bulk", include_in_schema=False)
def bulk_form(
    request: Request,
    principal: Annotated[Principal, Reviewer],
    decision: Annotated[str, Form(max_length=10)],
    ids: Annotated[list[str], Form()],
    reason: Annotated[str, Form(max_length=MAX_REASON)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    ctx: WebContext = request.app.state.ctx
    if not reason.strip():
        return render(request, "error.html", 422, message_key="reason_required")
    decide(ctx, principal, ids, decision, reason)
    return RedirectResponse("/quarantine?done=1", status_code=303)


class DecisionIn(BaseModel):
    reason: str = Field(min_length=1, max_length=MAX_REASON)


class BulkIn(BaseModel):
    ids: list[str] = Field(min_length=1, max_length=MAX_BULK)
    decision: Decision_
    reason: str = Field(min_length=1, max_length=MAX_REASON)


def _decision_json(d: Decision) -> dict[str, Any]:
    return {"id": d.id, "status": d.status.public, "changed": d.changed,
            "decided_by": d.decided_by, "reason": d.reason}


# Registered before the {decision} route below, which would otherwise match this path.
class ExtendIn(BaseModel):
    rule: str = Field(max_length=64)
    recipient: str = Field(max_length=320)


class ReleaseExtendIn(BaseModel):
    reason: str = Field(min_length=1, max_length=MAX_REASON)
    kind: Literal["address", "domain"]
    grants: list[ExtendIn] = Field(min_length=1, max_length=200)
    until: date | None = None


def _extension_json(r: ExtensionResult) -> dict[str, Any]:
    return {**_decision_json(r.decision),
            "rules_version": r.version.id if r.version else None,
            "added": [{"rule": e.rule_id, "kind": e.kind, "value": e.value} for e in r.added]}


@router.post("/api/v1/quarantine/{quarantine_id}/release-with-scope", tags=["quarantine"])
def extend_api(request: Request, quarantine_id: str, body: ReleaseExtendIn,
               principal: Annotated[Principal, Reviewer]) -> dict[str, Any]:
    """Release and add each recipient (or its domain) to the rule's allowed scope, optionally
    until a date, as a new active rules version. Needs reviewer and rules-admin for the rule."""
    ctx: WebContext = request.app.state.ctx
    checked_id(quarantine_id)
    result = release_with_extension(ctx, principal, quarantine_id,
                                    [(g.rule, g.recipient) for g in body.grants], body.kind,
                                    body.until, body.reason)
    return _extension_json(result)


@router.post("/api/v1/quarantine/{quarantine_id}/{decision}", tags=["quarantine"])
def decide_api(request: Request, quarantine_id: str, decision: Decision_, body: DecisionIn,
               principal: Annotated[Principal, Reviewer]) -> dict[str, Any]:
    """Release or reject one message; repeating a decision changes nothing (``changed`` false)."""
    ctx: WebContext = request.app.state.ctx
    return _decision_json(decide(ctx, principal, [quarantine_id], decision, body.reason)[0])


@router.post("/api/v1/quarantine:bulk", tags=["quarantine"])
def bulk_api(request: Request, body: BulkIn,
             principal: Annotated[Principal, Reviewer]) -> dict[str, Any]:
    """Release or reject many messages with one reason."""
    ctx: WebContext = request.app.state.ctx
    decisions = decide(ctx, principal, body.ids, body.decision, body.reason)
    return {"decisions": [_decision_json(d) for d in decisions]}


# -- release with scope extension ---------------------------------------------------------------


def _pick(value: str) -> tuple[str, str]:
    # "<rule id> <address>": rule ids and addresses never contain a space.
    rule_id, _, address = value.partition(" ")
    if not rule_id or not address:
        raise HTTPException(422)
    return rule_id, address


@router.post("/quarantine/{quarantine_id}/extend", include_in_schema=False)
def extend_form(
    request: Request,
    quarantine_id: str,
    principal: Annotated[Principal, Reviewer],
    picks: Annotated[list[str], Form(max_length=200)],
    kind: Annotated[Literal["address", "domain"], Form()],
    until: Annotated[date | None, Form()] = None,
    reason: Annotated[str, Form(max_length=MAX_REASON)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    ctx: WebContext = request.app.state.ctx
    checked_id(quarantine_id)
    if not reason.strip():
        record = _get(ctx, quarantine_id)
        detail = _detail(ctx, record, True, language(request))
        return render(request, "message.html", 422, record=record, with_content=True,
                      can_decide=True, now=ctx.now(), status_public=STATUS_PUBLIC,
                      error_key="reason_required", **_extend_values(ctx, principal, record),
                      **detail)
    result = release_with_extension(ctx, principal, quarantine_id, [_pick(p) for p in picks],
                                    kind, until, reason)
    version = f"&version={result.version.id}" if result.version else ""
    return RedirectResponse(f"/quarantine/{quarantine_id}?done=1{version}", status_code=303)
