"""Users and API tokens for admins: pages and API, audited, admin-only, no lock-out."""

from __future__ import annotations

import pytest

from scanner.accounts.base import Role
from tests.web.factories import PASSWORD, Env, csrf_of, login


def _csrf(env: Env, user: str = "boss") -> tuple[object, str]:
    client = env.client(user)
    return client, csrf_of(client.get("/admin").text)


@pytest.mark.parametrize("user", ["rev", "rules", "aud", "acme-admin"])
def test_non_admins_get_403_everywhere(env: Env, user: str) -> None:
    """Every admin page and endpoint refuses other roles."""
    client = env.client(user)
    assert client.get("/admin").status_code == 403
    assert client.get("/api/v1/users").status_code == 403
    assert client.get("/api/v1/tokens").status_code == 403
    token = csrf_of(client.get("/").text) if user != "x" else ""
    r = client.post("/admin/users", data={"name": "eve", "password": PASSWORD,
                                          "roles": ["admin"], "csrf_token": token})
    assert r.status_code == 403
    assert env.accounts.get_user("eve") is None


def test_add_user_change_roles_and_log_in(env: Env) -> None:
    """An admin adds a limited rules admin in the page; the new user can log in; audited."""
    client, token = _csrf(env)
    r = client.post("/admin/users", data={  # type: ignore[attr-defined]
        "name": "Sato", "password": PASSWORD, "roles": ["rules-admin"],
        "customers": "ACME Corp, Heron KK", "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    user = env.accounts.get_user("sato")
    assert user is not None
    assert user.roles == {Role.RULES_ADMIN}
    assert user.customers == ("ACME Corp", "Heron KK")
    assert login(env.client(), "sato").status_code == 303
    r = client.post("/admin/users/sato", data={  # type: ignore[attr-defined]
        "roles": ["reviewer"], "customers": "", "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert env.accounts.get_user("sato").roles == {Role.REVIEWER}  # type: ignore[union-attr]
    actions = [e.action for e in env.store.audit()]
    assert {"user_add", "user_roles"} <= set(actions)
    assert all(PASSWORD not in repr(e.details) for e in env.store.audit())


def test_weak_password_is_refused_with_message(env: Env) -> None:
    """The account store's rule is shown and nothing is created."""
    client, token = _csrf(env)
    r = client.post("/admin/users", data={"name": "weak", "password": "x",  # type: ignore[attr-defined]
                                          "roles": ["reviewer"], "csrf_token": token})
    assert r.status_code == 422
    assert "password" in r.text
    assert env.accounts.get_user("weak") is None


def test_last_admin_cannot_lock_everyone_out(env: Env) -> None:
    """Disabling or demoting the only enabled admin is refused."""
    client, token = _csrf(env)
    r = client.post("/admin/users/boss", data={  # type: ignore[attr-defined]
        "roles": ["admin"], "disabled": "true", "csrf_token": token})
    assert r.status_code == 409
    secret, _ = env.accounts.create_token("boss", "ops", now=env.clock[0])
    r = env.client().patch("/api/v1/users/boss", json={"roles": ["reviewer"]},
                           headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 409
    assert Role.ADMIN in env.accounts.get_user("boss").roles  # type: ignore[union-attr]


def test_token_shown_once_works_and_revokes(env: Env) -> None:
    """A created token is shown once, authenticates, and stops working when revoked."""
    client, token = _csrf(env)
    r = client.post("/admin/tokens", data={"user": "rev", "label": "add-in",  # type: ignore[attr-defined]
                                           "csrf_token": token})
    assert r.status_code == 201
    secret = r.text.split('<code class="secret">')[1].split("</code>")[0]
    auth = {"Authorization": f"Bearer {secret}"}
    assert env.client().get("/api/v1/quarantine", headers=auth).status_code == 200
    assert secret not in client.get("/admin").text  # type: ignore[attr-defined]
    [tok] = env.accounts.list_tokens("rev")
    r = client.post(f"/admin/tokens/{tok.id}/revoke", data={"csrf_token": token},  # type: ignore[attr-defined]
                    follow_redirects=False)
    assert r.status_code == 303
    assert env.client().get("/api/v1/quarantine", headers=auth).status_code == 401
    assert {"token_create", "token_revoke"} <= {e.action for e in env.store.audit()}


def test_users_and_tokens_api(env: Env) -> None:
    """The API creates users and tokens, lists them without secrets, and revokes."""
    admin, _ = env.accounts.create_token("boss", "ops", now=env.clock[0])
    auth = {"Authorization": f"Bearer {admin}"}
    client = env.client()
    r = client.post("/api/v1/users", headers=auth, json={
        "name": "kato", "password": PASSWORD, "roles": ["auditor"]})
    assert r.status_code == 201
    assert r.json()["roles"] == ["auditor"]
    assert client.post("/api/v1/users", headers=auth, json={
        "name": "kato", "password": PASSWORD}).status_code == 422
    assert client.patch("/api/v1/users/nobody", headers=auth,
                        json={"disabled": True}).status_code == 404
    r = client.post("/api/v1/tokens", headers=auth, json={"user": "kato", "label": "siem"})
    assert r.status_code == 201
    created = r.json()
    listed = client.get("/api/v1/tokens", headers=auth).json()["tokens"]
    assert created["secret"] not in repr(listed)
    assert client.delete(f"/api/v1/tokens/{created['token']['id']}",
                         headers=auth).status_code == 204
    doc = client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/users", "/api/v1/tokens", "/api/v1/users/{name}"} <= set(doc["paths"])
