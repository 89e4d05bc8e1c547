"""Editing one rule in a form: the loader's messages, a diff to confirm, roles and scope limits."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.factories import Env, session_csrf

FIELDS = {"terms": "Zephyr-9\nファルコン計画\nFalcon-X", "allow_domains": "acme.example",
          "allow_addresses": "", "allow_groups": "", "action": "hold", "expires": "2026-03-10",
          "reason": "new code name"}


def _post(env: Env, user: str, rule_id: str = "falcon", **overrides: str) -> Any:
    client = env.client(user)
    data = {**FIELDS, **overrides, "csrf_token": session_csrf_for(env, client)}
    return client.post(f"/rules/edit/{rule_id}", data=data, follow_redirects=False)


def session_csrf_for(env: Env, client: Any) -> str:
    from tests.web.factories import csrf_of

    return csrf_of(client.get("/rules").text)


def test_edit_form_prefilled(env: Env) -> None:
    """The form shows the rule's current terms, scope, action and expiry."""
    page = env.client("rules").get("/rules/edit/falcon").text
    assert "ファルコン計画" in page
    assert 'value="acme.example"' in page
    assert 'value="2026-03-10"' in page


def test_valid_edit_makes_inactive_version_with_diff(env: Env) -> None:
    """A valid edit stores an inactive version whose diff shows the added term."""
    r = _post(env, "rules")
    assert r.status_code == 303
    assert r.headers["location"] == "/rules/versions/2"
    assert env.rules.active_version().id == 1  # type: ignore[union-attr]
    page = env.client("rules").get("/rules/versions/2").text
    assert "Falcon-X" in page
    spec = env.app.state.ctx.active.spec(2)
    assert [r.id for r in spec.rules] == ["falcon", "heron"]
    assert spec.rules[1] == env.app.state.ctx.active.spec(1).rules[1]  # heron untouched


@pytest.mark.parametrize(("field", "value", "message"), [
    ("action", "explode", "invalid action: use flag, hold or reject"),
    ("expires", "2027-13-01", "invalid date"),
    ("allow_domains", "bad_domain!", "invalid domain"),
    ("allow_groups", "nobody", "unknown group"),
])
def test_invalid_edit_shows_loader_message_and_stores_nothing(env: Env, field: str, value: str,
                                                              message: str) -> None:
    """Each mistake gets the same message an uploaded file would, and no version is stored."""
    r = _post(env, "rules", **{field: value})
    assert r.status_code == 422
    assert message in r.text
    assert len(env.rules.history()) == 1


def test_edit_needs_reason(env: Env) -> None:
    """Without a reason nothing is stored."""
    assert _post(env, "rules", reason=" ").status_code == 422
    assert len(env.rules.history()) == 1


@pytest.mark.parametrize(("user", "rule_id", "status"), [
    ("rev", "falcon", 403), ("aud", "falcon", 403), ("acme-admin", "heron", 403),
    ("acme-admin", "falcon", 303), ("boss", "heron", 303), ("rules", "nope", 404),
])
def test_edit_roles_and_scope(env: Env, user: str, rule_id: str, status: int) -> None:
    """Only rules admins may edit, a limited one only their customers' rules."""
    client = env.client(user)
    assert client.get(f"/rules/edit/{rule_id}").status_code == (200 if status == 303 else status)
    data = {**FIELDS, "terms": "Heron-77", "csrf_token": session_csrf(client) if user in (
        "rev", "aud") else session_csrf_for(env, client)}
    r = client.post(f"/rules/edit/{rule_id}", data=data, follow_redirects=False)
    assert r.status_code == status
