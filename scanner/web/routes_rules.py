"""Rules for sales admins: upload → validation → diff → confirm → active; history; rollback.

Owns the rules routes, HTML and ``/api/v1/rules``. An upload that fails validation shows every
problem with line and column and stores nothing; a valid one becomes an *inactive* version whose
diff against the active version must be confirmed; activation (and rollback, the same action on
an older version) is one atomic row in the rule store, audited. A rules admin limited to some
customers or rule-id prefixes may only upload or activate a change that touches their rules.
Must not log or audit a term: audit details carry rule ids and counts (``RulesetDiff.summary``).
Hazard: the diff page shows terms — only to rules admins (and admins), who manage them anyway.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from scanner.accounts.base import Role, User
from scanner.errors import RuleError
from scanner.model import Action
from scanner.rules.compile import compile_ruleset
from scanner.rules.load import parse_rules_bytes
from scanner.rules.model import RulesetSpec, RuleSpec
from scanner.rulestore.base import RuleStoreError, RuleVersion
from scanner.rulestore.diff import RulesetDiff, diff_rulesets
from scanner.rulestore.edit import RuleForm, edited_source, form_of
from scanner.scan import scan
from scanner.store.base import Status
from scanner.web.context import WebContext
from scanner.web.dryrun import CorpusLimits, CorpusReport, run_corpus
from scanner.web.render import render
from scanner.web.security import Principal, require

router = APIRouter()
MAX_UPLOAD = 20 * 1024 * 1024  # a 100k-term CSV is a few MB; more is a mistake or an attack
MAX_REASON = 2000

Admin = Depends(require(Role.RULES_ADMIN))
HistoryReader = Depends(require(Role.RULES_ADMIN, Role.AUDITOR))


def _active_spec(ctx: WebContext) -> tuple[RuleVersion | None, RulesetSpec | None]:
    version = ctx.rules.active_version()
    return version, (ctx.active.spec(version.id) if version else None)


def _version(ctx: WebContext, version_id: int) -> RuleVersion:
    try:
        return ctx.rules.get(version_id)
    except RuleStoreError as exc:
        raise HTTPException(404) from exc


def _visible(user: User, rules: tuple[RuleSpec, ...]) -> list[RuleSpec]:
    return [r for r in rules if user.may_manage_rule(r.id, r.customer)]


def expiring(spec: RulesetSpec | None, today: dt.date, days: int) -> list[RuleSpec]:
    if spec is None:
        return []
    end = today + dt.timedelta(days=days)
    return sorted((r for r in spec.rules if r.expires and today <= r.expires <= end),
                  key=lambda r: (r.expires or today, r.id))


def _problems_json(exc: RuleError) -> list[dict[str, Any]]:
    return [{"file": p.file, "line": p.line, "column": p.column, "rule": p.rule_id,
             "message": p.message} for p in exc.problems]


@router.get("/rules", include_in_schema=False)
def rules_page(request: Request, principal: Annotated[Principal, Admin]) -> Response:
    ctx: WebContext = request.app.state.ctx
    version, spec = _active_spec(ctx)
    today = ctx.now().date()
    visible = _visible(principal.user, spec.rules if spec else ())
    soon = [r for r in expiring(spec, today, ctx.settings.expiring_days) if r in visible]
    ids = {r.id for r in visible}
    grants = [g for g in ctx.rules.grants() if g.rule_id in ids]
    return render(request, "rules.html", version=version, rules=visible, expiring=soon,
                  today=today, grants=grants)


async def _read_upload(file: UploadFile) -> bytes:
    data = await file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise HTTPException(413)
    return data


def _safe_filename(name: str | None) -> str:
    # Shown in problems and kept with the version; only the base name, no path from the client.
    base = (name or "upload").replace("\\", "/").rsplit("/", 1)[-1][:100]
    return base or "upload"


def _upload(ctx: WebContext, principal: Principal, data: bytes, filename: str, reason: str,
            ) -> tuple[RuleVersion | None, RulesetDiff | None, list[str], RuleError | None]:
    """Validate, check scope, store as an inactive version; nothing stored on any problem."""
    try:
        spec = parse_rules_bytes(data, filename)
    except RuleError as exc:
        return None, None, [], exc
    _, active = _active_spec(ctx)
    diff = diff_rulesets(active, spec)
    refused = diff.outside(principal.user.may_manage_rule)
    if refused:
        return None, diff.visible_to(principal.user.may_manage_rule), refused, None
    version = ctx.rules.create_version(data, filename, author=principal.name, reason=reason,
                                       now=ctx.now(), activate=False)
    ctx.store.append_audit(
        actor=principal.name, action="rules_upload", object_id=f"rules:v{version.id}",
        details={"version": version.id, "hash": version.content_hash, "file": filename,
                 "reason": reason, "diff": diff.summary()},
        now=ctx.now(),
    )
    return version, diff, [], None


@router.post("/rules/upload", include_in_schema=False)
async def upload_form(
    request: Request,
    principal: Annotated[Principal, Admin],
    file: UploadFile,
    reason: Annotated[str, Form(max_length=MAX_REASON)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    from starlette.concurrency import run_in_threadpool

    ctx: WebContext = request.app.state.ctx
    data = await _read_upload(file)
    filename = _safe_filename(file.filename)
    if not reason.strip():
        return render(request, "error.html", 422, message_key="reason_required")
    version, _diff, refused, problems = await run_in_threadpool(
        _upload, ctx, principal, data, filename, reason.strip())
    if problems is not None:
        return render(request, "rules_problems.html", 422, problems=problems.problems,
                      filename=filename)
    if refused:
        return render(request, "error.html", 403, message_key="outside_scope", items=refused)
    assert version is not None
    return RedirectResponse(f"/rules/versions/{version.id}", status_code=303)


@router.get("/rules/versions/{version_id}", include_in_schema=False)
def version_page(request: Request, version_id: int,
                 principal: Annotated[Principal, Admin]) -> Response:
    ctx: WebContext = request.app.state.ctx
    version = _version(ctx, version_id)
    active_version, active = _active_spec(ctx)
    # A customer-limited rules admin must not read other customers' terms in the diff.
    diff = diff_rulesets(active, ctx.active.spec(version.id)).visible_to(
        principal.user.may_manage_rule)
    return render(request, "rules_version.html", version=version, diff=diff,
                  active_version=active_version,
                  is_active=active_version is not None and active_version.id == version.id)


def _activate(ctx: WebContext, principal: Principal, version_id: int, reason: str) -> None:
    version = _version(ctx, version_id)
    previous, active = _active_spec(ctx)
    diff = diff_rulesets(active, ctx.active.spec(version.id))
    refused = diff.outside(principal.user.may_manage_rule)
    if refused:
        raise HTTPException(403)
    ctx.rules.activate(version.id, by=principal.name, reason=reason, now=ctx.now())
    ctx.store.append_audit(
        actor=principal.name,
        action="rules_rollback" if previous and version.id < previous.id else "rules_activate",
        object_id=f"rules:v{version.id}",
        details={"version": version.id, "hash": version.content_hash, "reason": reason,
                 "previous": previous.id if previous else None, "diff": diff.summary()},
        now=ctx.now(),
    )


@router.post("/rules/versions/{version_id}/activate", include_in_schema=False)
def activate_form(
    request: Request,
    version_id: int,
    principal: Annotated[Principal, Admin],
    reason: Annotated[str, Form(max_length=MAX_REASON)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    ctx: WebContext = request.app.state.ctx
    if not reason.strip():
        return render(request, "error.html", 422, message_key="reason_required")
    _activate(ctx, principal, version_id, reason.strip())
    return RedirectResponse("/rules?activated=1", status_code=303)


def dry_run(ctx: WebContext, version_id: int) -> dict[str, int]:
    """Re-scan held messages with a version: how many would pass, change, stay the same."""
    compiled = compile_ruleset(ctx.active.spec(version_id), today=ctx.now().date())
    counts = {"checked": 0, "would_pass": 0, "would_change": 0, "unchanged": 0}
    held = ctx.store.list(status=[Status.HELD, Status.RELEASE_FAILED],
                          limit=ctx.settings.dry_run_limit)
    for record in held:
        try:
            raw = ctx.store.raw(record.id)
        except Exception:  # purged or unreadable content: nothing to re-scan
            continue
        verdict = scan(raw, record.envelope, compiled, ctx.settings.limits,
                       today=ctx.now().date())
        counts["checked"] += 1
        if verdict.action is Action.PASS:
            counts["would_pass"] += 1
        elif verdict.action is not record.action:
            counts["would_change"] += 1
        else:
            counts["unchanged"] += 1
    return counts


@router.post("/rules/versions/{version_id}/dryrun", include_in_schema=False)
def dry_run_form(
    request: Request,
    version_id: int,
    principal: Annotated[Principal, Admin],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    ctx: WebContext = request.app.state.ctx
    version = _version(ctx, version_id)
    return render(request, "rules_dryrun.html", version=version,
                  counts=dry_run(ctx, version.id), report=None)


# -- edit one rule in a form -------------------------------------------------------------------


def _editable(ctx: WebContext, principal: Principal, rule_id: str) -> tuple[RulesetSpec, RuleSpec]:
    _, spec = _active_spec(ctx)
    rule = next((r for r in spec.rules if r.id == rule_id), None) if spec else None
    if spec is None or rule is None:
        raise HTTPException(404)
    if not principal.user.may_manage_rule(rule.id, rule.customer):
        raise HTTPException(403)
    return spec, rule


def _items(text: str) -> tuple[str, ...]:
    # Lists are typed space-, comma- or line-separated (as in the CSV's list cells).
    return tuple(x for x in text.replace(",", " ").replace("、", " ").split() if x)


@router.get("/rules/edit/{rule_id}", include_in_schema=False)
def edit_page(request: Request, rule_id: str,
              principal: Annotated[Principal, Admin]) -> Response:
    ctx: WebContext = request.app.state.ctx
    _, rule = _editable(ctx, principal, rule_id)
    return render(request, "rules_edit.html", rule=rule, form=form_of(rule), problems=[])


@router.post("/rules/edit/{rule_id}", include_in_schema=False)
def edit_form(
    request: Request,
    rule_id: str,
    principal: Annotated[Principal, Admin],
    terms: Annotated[str, Form(max_length=1_000_000)] = "",
    allow_domains: Annotated[str, Form(max_length=100_000)] = "",
    allow_addresses: Annotated[str, Form(max_length=100_000)] = "",
    allow_groups: Annotated[str, Form(max_length=100_000)] = "",
    allow_internal: Annotated[bool, Form()] = False,
    action: Annotated[str, Form(max_length=20)] = "",
    expires: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=MAX_REASON)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Validation with the loader's messages → an inactive version → its diff to confirm."""
    ctx: WebContext = request.app.state.ctx
    spec, rule = _editable(ctx, principal, rule_id)
    form = RuleForm(
        terms=tuple(t.strip() for t in terms.splitlines() if t.strip()),
        allow_domains=_items(allow_domains), allow_addresses=_items(allow_addresses),
        allow_groups=_items(allow_groups), allow_internal=allow_internal,
        action=action.strip(), expires=expires.strip(),
    )
    if not reason.strip():
        return render(request, "rules_edit.html", 422, rule=rule, form=form, problems=[],
                      error_key="reason_required")
    data = edited_source(spec, rule.id, form)
    version, _diff, refused, problems = _upload(ctx, principal, data, f"edit-{rule.id}.yaml",
                                                reason.strip())
    if problems is not None:
        return render(request, "rules_edit.html", 422, rule=rule, form=form,
                      problems=problems.problems)
    if refused:
        return render(request, "error.html", 403, message_key="outside_scope", items=refused)
    assert version is not None
    return RedirectResponse(f"/rules/versions/{version.id}", status_code=303)


# -- dry run over an uploaded sample corpus ------------------------------------------------------


async def _read_corpus(files: list[UploadFile], limits: CorpusLimits) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    left = limits.max_bytes
    for f in files[: limits.max_messages]:
        data = await f.read(left + 1)
        if len(data) > left:
            raise HTTPException(413)
        left -= len(data)
        out.append((_safe_filename(f.filename), data))
    return out


def _corpus_run(ctx: WebContext, version_id: int, files: list[tuple[str, bytes]], user: User,
                ) -> CorpusReport:
    """Both versions restricted to the rules ``user`` manages: a customer-limited admin must not
    learn, from a verdict on text of their choosing, whether it is another customer's secret."""
    today = ctx.now().date()

    def mine(spec: RulesetSpec) -> RulesetSpec:
        return dataclasses.replace(spec, rules=tuple(_visible(user, spec.rules)))

    new = compile_ruleset(mine(ctx.active.spec(version_id)), today=today)
    _, active_spec = _active_spec(ctx)
    old = compile_ruleset(mine(active_spec), today=today) if active_spec is not None else None
    return run_corpus(files, old, new, limits=ctx.settings.limits, today=today,
                      corpus_limits=ctx.settings.corpus_limits)


@router.post("/rules/versions/{version_id}/dryrun-corpus", include_in_schema=False)
async def corpus_form(
    request: Request,
    version_id: int,
    principal: Annotated[Principal, Admin],
    files: list[UploadFile],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    from starlette.concurrency import run_in_threadpool

    ctx: WebContext = request.app.state.ctx
    version = _version(ctx, version_id)
    corpus = await _read_corpus(files, ctx.settings.corpus_limits)
    # Scanning is CPU work: in the thread pool, so the server keeps answering meanwhile.
    report = await run_in_threadpool(_corpus_run, ctx, version.id, corpus, principal.user)
    return render(request, "rules_dryrun.html", version=version, counts=None, report=report,
                  corpus_counts=report.counts())


@router.post("/api/v1/rules/versions/{version_id}/dryrun-corpus", tags=["rules"])
async def corpus_api(request: Request, version_id: int, files: list[UploadFile],
                     principal: Annotated[Principal, Admin]) -> dict[str, Any]:
    """Scan uploaded samples (.eml files or an .mbox) with the active and this version."""
    from starlette.concurrency import run_in_threadpool

    ctx: WebContext = request.app.state.ctx
    version = _version(ctx, version_id)
    corpus = await _read_corpus(files, ctx.settings.corpus_limits)
    report = await run_in_threadpool(_corpus_run, ctx, version.id, corpus, principal.user)
    return {
        "counts": report.counts(), "total": report.total, "stopped_early": report.stopped_early,
        "unreadable": report.unreadable,
        "samples": [{"name": s.name, "old": s.old, "new": s.new, "old_rules": list(s.old_rules),
                     "new_rules": list(s.new_rules)} for s in report.samples],
    }


@router.get("/rules/history", include_in_schema=False)
def history_page(request: Request, principal: Annotated[Principal, HistoryReader]) -> Response:
    ctx: WebContext = request.app.state.ctx
    active = ctx.rules.active_version()
    return render(request, "rules_history.html", versions=ctx.rules.history(limit=200),
                  activations=ctx.rules.activations(limit=200),
                  active_id=active.id if active else None,
                  can_activate=principal.user.has(Role.RULES_ADMIN))


# -- API ------------------------------------------------------------------------------------


def _version_json(v: RuleVersion, active_id: int | None = None) -> dict[str, Any]:
    return {"id": v.id, "hash": v.content_hash, "created_at": v.created_at.isoformat(),
            "author": v.author, "reason": v.reason, "filename": v.filename,
            "rules": v.rule_count, "active": v.id == active_id}


@router.get("/api/v1/rules/versions", tags=["rules"])
def versions_api(request: Request,
                 principal: Annotated[Principal, HistoryReader]) -> dict[str, Any]:
    """Rule versions newest first, with the active one marked."""
    ctx: WebContext = request.app.state.ctx
    active = ctx.rules.active_version()
    return {"versions": [_version_json(v, active.id if active else None)
                         for v in ctx.rules.history(limit=500)]}


@router.post("/api/v1/rules/versions", tags=["rules"])
async def upload_api(
    request: Request,
    principal: Annotated[Principal, Admin],
    file: UploadFile,
    reason: Annotated[str, Form(min_length=1, max_length=MAX_REASON)],
    activate: Annotated[bool, Form()] = False,
) -> Response:
    """Upload a rules file (YAML or CSV); 422 lists every problem; ``activate`` makes it live."""
    from starlette.concurrency import run_in_threadpool

    ctx: WebContext = request.app.state.ctx
    data = await _read_upload(file)
    filename = _safe_filename(file.filename)
    version, diff, refused, problems = await run_in_threadpool(
        _upload, ctx, principal, data, filename, reason.strip())
    if problems is not None:
        return JSONResponse({"error": "invalid_rules", "problems": _problems_json(problems)},
                            status_code=422)
    if refused:
        return JSONResponse({"error": "outside_scope", "rules": refused}, status_code=403)
    assert version is not None
    assert diff is not None
    if activate:
        await run_in_threadpool(_activate, ctx, principal, version.id, reason.strip())
    return JSONResponse({"version": _version_json(version, version.id if activate else None),
                         "diff": diff.summary()}, status_code=201)


@router.get("/api/v1/rules/versions/{version_id}/diff", tags=["rules"])
def diff_api(request: Request, version_id: int,
             principal: Annotated[Principal, Admin]) -> dict[str, Any]:
    """What activating this version would change (rule ids and counts)."""
    ctx: WebContext = request.app.state.ctx
    version = _version(ctx, version_id)
    _, active = _active_spec(ctx)
    return diff_rulesets(active, ctx.active.spec(version.id)).summary()


class ActivateIn(BaseModel):
    reason: str = Field(min_length=1, max_length=MAX_REASON)


@router.post("/api/v1/rules/versions/{version_id}/activate", tags=["rules"])
def activate_api(request: Request, version_id: int, body: ActivateIn,
                 principal: Annotated[Principal, Admin]) -> dict[str, Any]:
    """Make a version active (a rollback when it is older than the active one)."""
    ctx: WebContext = request.app.state.ctx
    _activate(ctx, principal, version_id, body.reason.strip())
    return _version_json(_version(ctx, version_id), version_id)


@router.post("/api/v1/rules/versions/{version_id}/dryrun", tags=["rules"])
def dry_run_api(request: Request, version_id: int,
                principal: Annotated[Principal, Admin]) -> dict[str, int]:
    """Re-scan held messages with this version and count how their verdicts would change."""
    ctx: WebContext = request.app.state.ctx
    return dry_run(ctx, _version(ctx, version_id).id)


@router.get("/api/v1/rules/expiring", tags=["rules"])
def expiring_api(request: Request, principal: Annotated[Principal, Admin]) -> dict[str, Any]:
    """Active rules whose ``expires`` is within the next 14 days."""
    ctx: WebContext = request.app.state.ctx
    _, spec = _active_spec(ctx)
    rules = [r for r in expiring(spec, ctx.now().date(), ctx.settings.expiring_days)
             if principal.user.may_manage_rule(r.id, r.customer)]
    return {"rules": [{"id": r.id, "customer": r.customer, "owner": r.owner,
                       "expires": r.expires.isoformat() if r.expires else None} for r in rules]}
