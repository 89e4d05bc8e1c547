"""The audit view and the disclosure ledger (auditor/admin), with CSV export.

Owns the read-only routes over the hash-chained audit log and the per-customer ledger built from
quarantine records (held, incidents) and the relay's disclosure records (passed, flagged). Must
not change anything. CSV cells that start with ``= + - @`` are prefixed with ``'`` so that a
hostile sender address or reason cannot become a spreadsheet formula.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from scanner.accounts.base import Role
from scanner.model import Action
from scanner.web.context import WebContext
from scanner.web.queries import AuditRow, ListRow
from scanner.web.render import render
from scanner.web.routes_quarantine import STATUS_PUBLIC, rule_index
from scanner.web.security import Principal, require

router = APIRouter()
Auditor = Depends(require(Role.AUDITOR))
TextQ = Annotated[str | None, Query(max_length=200)]


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv(header: list[str], rows: list[list[object]], filename: str) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return Response(
        "\ufeff" + buffer.getvalue(),  # BOM: Excel opens UTF-8 with Japanese text correctly
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _audit_rows(ctx: WebContext, actor: str | None, action: str | None,
                object_id: str | None, before: int | None, limit: int) -> list[AuditRow]:
    return ctx.queries.audit_page(actor=actor, action=action, object_id=object_id,
                                  before_seq=before, limit=limit)


def _audit_json(r: AuditRow) -> dict[str, Any]:
    return {"seq": r.seq, "at": r.at.isoformat(), "actor": r.actor, "action": r.action,
            "object_id": r.object_id, "details": r.details, "hash": r.hash}


@router.get("/audit", include_in_schema=False)
def audit_page(request: Request, principal: Annotated[Principal, Auditor],
               actor: TextQ = None, action: TextQ = None, object_id: TextQ = None,
               before: int | None = None) -> Response:
    ctx: WebContext = request.app.state.ctx
    rows = _audit_rows(ctx, actor, action, object_id, before, 100)
    filters = {k: v for k, v in request.query_params.items() if k != "before" and v}
    return render(request, "audit.html", rows=rows, filters=filters,
                  next_before=rows[-1].seq if len(rows) == 100 else None, json=json)


@router.get("/audit.csv", include_in_schema=False)
def audit_csv(request: Request, principal: Annotated[Principal, Auditor],
              actor: TextQ = None, action: TextQ = None, object_id: TextQ = None) -> Response:
    ctx: WebContext = request.app.state.ctx
    rows = _audit_rows(ctx, actor, action, object_id, None, 100_000)
    return _csv(["seq", "at", "actor", "action", "object", "details", "hash"],
                [[r.seq, r.at.isoformat(), r.actor, r.action, r.object_id,
                  json.dumps(r.details, ensure_ascii=False, sort_keys=True), r.hash]
                 for r in rows], "maruhi-audit.csv")


@router.get("/api/v1/audit", tags=["audit"])
def audit_api(request: Request, principal: Annotated[Principal, Auditor],
              actor: TextQ = None, action: TextQ = None, object_id: TextQ = None,
              before: int | None = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """Audit events newest first; page with ``before`` = the last ``seq`` seen."""
    ctx: WebContext = request.app.state.ctx
    return {"events": [_audit_json(r)
                       for r in _audit_rows(ctx, actor, action, object_id, before, limit)]}


def _ledger(ctx: WebContext, customer: str) -> list[dict[str, Any]]:
    index = rule_index(ctx)
    rule_ids = index.rules_of(customer)
    entries = []
    rows: list[ListRow] = ctx.queries.ledger(rule_ids)
    wanted = set(rule_ids)
    for row in rows:
        for hit in row.hits:
            if hit["rule"] not in wanted:
                continue
            out = set(hit["out_of_scope"])
            entries.append({
                "at": row.received_at.isoformat(), "id": row.id, "rule": hit["rule"],
                "location": hit["location"], "sender": row.sender,
                "out_of_scope": sorted(out),
                "in_scope": sorted(r for r in row.recipients if r not in out),
                "outcome": STATUS_PUBLIC.get(row.status, row.status),
            })
    # Delivered mail that carried the customer's secrets: in scope (passed) or flagged.
    for d in ctx.store.disclosures(rule_ids=rule_ids):
        for found in d.hits:
            if found.rule_id not in wanted:
                continue
            out = set(found.out_of_scope)
            entries.append({
                "at": d.at.isoformat(), "id": "", "rule": found.rule_id,
                "location": found.location, "sender": d.sender,
                "out_of_scope": sorted(out),
                "in_scope": sorted(r for r in d.recipients if r not in out),
                "outcome": "passed" if d.action is Action.PASS else "flagged",
            })
    entries.sort(key=lambda e: e["at"], reverse=True)
    return entries


@router.get("/ledger", include_in_schema=False)
def ledger_page(request: Request, principal: Annotated[Principal, Auditor],
                customer: TextQ = None) -> Response:
    ctx: WebContext = request.app.state.ctx
    index = rule_index(ctx)
    entries = _ledger(ctx, customer) if customer else []
    return render(request, "ledger.html", customers=index.customers, customer=customer,
                  entries=entries)


@router.get("/ledger.csv", include_in_schema=False)
def ledger_csv(request: Request, principal: Annotated[Principal, Auditor],
               customer: Annotated[str, Query(max_length=200)]) -> Response:
    ctx: WebContext = request.app.state.ctx
    entries = _ledger(ctx, customer)
    return _csv(["at", "id", "rule", "location", "sender", "out_of_scope", "in_scope", "outcome"],
                [[e["at"], e["id"], e["rule"], e["location"], e["sender"],
                  " ".join(e["out_of_scope"]), " ".join(e["in_scope"]), e["outcome"]]
                 for e in entries], "maruhi-ledger.csv")


@router.get("/api/v1/ledger", tags=["audit"])
def ledger_api(request: Request, principal: Annotated[Principal, Auditor],
               customer: Annotated[str, Query(max_length=200)]) -> dict[str, Any]:
    """Which of a customer's secrets went (or tried to go) to whom, and what became of it."""
    ctx: WebContext = request.app.state.ctx
    return {"customer": customer, "entries": _ledger(ctx, customer)}
