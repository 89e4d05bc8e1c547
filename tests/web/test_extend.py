"""Release with scope extension: roles, one new active version, audit, lapse of a dated grant."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from scanner.accounts.base import Role
from scanner.model import Action, Envelope
from scanner.rules.compile import compile_ruleset
from scanner.scan import scan
from scanner.store.base import Status
from scanner.web.extend import lapse_due
from tests.web.factories import PASSWORD, SECRET, Env, session_csrf


def _form(env: Env, user: str, qid: str, **fields: object) -> object:
    client = env.client(user)
    data = {"picks": ["falcon cfo@rival.example"], "kind": "address", "reason": "NDA signed",
            "csrf_token": session_csrf(client), **fields}
    return client.post(f"/quarantine/{qid}/extend", data=data, follow_redirects=False)


def _allow(env: Env, rule_id: str = "falcon") -> tuple[tuple[str, ...], tuple[str, ...]]:
    version = env.rules.active_version()
    assert version is not None
    rule = next(r for r in env.app.state.ctx.active.spec(version.id).rules if r.id == rule_id)
    return rule.allow.domains, rule.allow.addresses


def test_admin_release_with_address_creates_active_version(env: Env) -> None:
    """One action: a new active version allows the address, the message is released, audited."""
    qid = env.hold()
    r = _form(env, "boss", qid)
    assert r.status_code == 303  # type: ignore[attr-defined]
    assert "version=2" in r.headers["location"]  # type: ignore[attr-defined]
    assert env.rules.active_version().id == 2  # type: ignore[union-attr]
    assert _allow(env) == (("acme.example",), ("cfo@rival.example",))
    assert env.store.get(qid).status is Status.RELEASING
    actions = [e.action for e in env.store.audit()]
    assert "scope_extend" in actions
    assert "release" in actions
    assert all(SECRET not in repr(e.details) for e in env.store.audit())
    # The same message sent again now passes under the active version.
    version = env.rules.active_version()
    assert version is not None
    compiled = compile_ruleset(env.app.state.ctx.active.spec(version.id), today=date(2026, 3, 2))
    verdict = scan(env.store.raw(qid), Envelope("tanaka@example.co.jp", ("cfo@rival.example",)),
                   compiled)
    assert verdict.action is Action.PASS


@pytest.mark.parametrize("user", ["rev", "rules", "aud"])
def test_extension_needs_reviewer_and_rules_admin(env: Env, user: str) -> None:
    """A reviewer alone, a rules admin alone and an auditor get 403 and nothing changes."""
    qid = env.hold()
    assert _form(env, user, qid).status_code == 403  # type: ignore[attr-defined]
    assert env.rules.active_version().id == 1  # type: ignore[union-attr]
    assert env.store.get(qid).status is Status.HELD


def test_limited_rules_admin_extends_only_their_customer(env: Env) -> None:
    """A reviewer who manages Heron's rules only cannot widen ACME's falcon rule."""
    env.accounts.add_user("heron-rev", PASSWORD, [Role.REVIEWER, Role.RULES_ADMIN],
                          now=env.clock[0], customers=["Heron KK"])
    env.accounts.add_user("acme-rev", PASSWORD, [Role.REVIEWER, Role.RULES_ADMIN],
                          now=env.clock[0], customers=["ACME Corp"])
    qid = env.hold()
    page = env.client("heron-rev").get(f"/quarantine/{qid}").text
    assert 'action="/quarantine/' + qid + '/extend"' not in page
    assert _form(env, "heron-rev", qid).status_code == 403  # type: ignore[attr-defined]
    assert _form(env, "acme-rev", qid).status_code == 303  # type: ignore[attr-defined]


@pytest.mark.parametrize("fields", [
    {"reason": " "},
    {"picks": ["falcon buyer@acme.example"]},  # in scope: not a recipient to extend to
    {"picks": ["heron cfo@rival.example"]},  # heron did not hit
    {"until": "2026-03-01"},  # in the past
    {"kind": "group"},
])
def test_invalid_extension_changes_nothing(env: Env, fields: dict[str, object]) -> None:
    """A missing reason, a wrong pick, a past date or an unknown kind is refused unchanged."""
    qid = env.hold()
    assert _form(env, "boss", qid, **fields).status_code == 422  # type: ignore[attr-defined]
    assert env.rules.active_version().id == 1  # type: ignore[union-attr]
    assert env.store.get(qid).status is Status.HELD


def test_form_needs_csrf(env: Env) -> None:
    """Without the session's CSRF token the extension is refused."""
    qid = env.hold()
    assert _form(env, "boss", qid, csrf_token="x").status_code == 403  # type: ignore[attr-defined]


def test_second_click_creates_no_second_version(env: Env) -> None:
    """Repeating the action adds no version and delivers once; on a rejected message it is 409."""
    qid = env.hold()
    _form(env, "boss", qid)
    assert _form(env, "boss", qid).status_code == 303  # type: ignore[attr-defined]
    assert len(env.rules.history()) == 2
    delivers = [i for i in env.store.outbox(quarantine_id=qid) if i.kind.value == "deliver"]
    assert len(delivers) == 1
    other = env.hold()
    env.store.reject(other, by="rev", reason="no", now=env.clock[0])
    assert _form(env, "boss", other).status_code == 409  # type: ignore[attr-defined]


def test_dated_domain_grant_lapses_into_a_new_version(env: Env) -> None:
    """A domain granted until a date stays through that day and is removed the day after."""
    qid = env.hold()
    token, _ = env.accounts.create_token("boss", "bot", now=env.clock[0])
    r = env.client().post(
        f"/api/v1/quarantine/{qid}/release-with-scope",
        json={"reason": "trial", "kind": "domain", "until": "2026-03-05",
              "grants": [{"rule": "falcon", "recipient": "cfo@rival.example"}]},
        headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert r.json()["rules_version"] == 2
    assert r.json()["added"] == [{"rule": "falcon", "kind": "domain", "value": "rival.example"}]
    assert _allow(env)[0] == ("acme.example", "rival.example")
    [grant] = env.rules.grants()
    assert (grant.until, grant.quarantine_id) == (date(2026, 3, 5), qid)
    ctx = env.app.state.ctx
    env.clock[0] += timedelta(days=3)  # 2026-03-05: still valid on its last day
    assert lapse_due(ctx) is None
    env.clock[0] += timedelta(days=1)
    lapsed = lapse_due(ctx)
    assert lapsed is not None
    assert env.rules.active_version().id == lapsed.id  # type: ignore[union-attr]
    assert _allow(env)[0] == ("acme.example",)
    assert env.rules.grants() == []
    assert "scope_lapse" in [e.action for e in env.store.audit()]
    assert lapse_due(ctx) is None  # nothing left to lapse


def test_rules_page_lists_open_grants(env: Env) -> None:
    """Rules admins see which extensions will lapse and when."""
    qid = env.hold()
    _form(env, "boss", qid, until="2026-03-20")
    page = env.client("rules").get("/rules").text
    assert "cfo@rival.example" in page
    assert "2026-03-20" in page
