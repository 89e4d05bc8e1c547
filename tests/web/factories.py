"""Factories for review-app tests: a data dir with users, an active rule version, held mail."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from scanner.accounts.base import Role
from scanner.accounts.sqlite import SqliteAccounts
from scanner.model import Envelope
from scanner.rules.compile import compile_ruleset
from scanner.rules.load import parse_rules_bytes
from scanner.rulestore.sqlite import SqliteRuleStore
from scanner.scan import scan
from scanner.store.sqlite import SqliteStore
from scanner.web.app import create_app
from scanner.web.context import WebSettings

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
SECRET = "Zephyr-9"

RULES_YAML = f"""\
version: 1
settings:
  internal_domains: [example.co.jp]
rules:
  - id: falcon
    customer: ACME Corp
    owner: tanaka@example.co.jp
    terms: ["{SECRET}", "ファルコン計画"]
    allow:
      domains: [acme.example]
    action: hold
    expires: 2026-03-10
  - id: heron
    customer: Heron KK
    owner: suzuki@example.co.jp
    terms: ["Heron-77"]
    allow:
      domains: [heron.example]
    action: hold
""".encode()

USERS: dict[str, dict[str, Any]] = {
    "rev": {"roles": [Role.REVIEWER]},
    "rules": {"roles": [Role.RULES_ADMIN]},
    "acme-admin": {"roles": [Role.RULES_ADMIN], "customers": ["ACME Corp"]},
    "aud": {"roles": [Role.AUDITOR]},
    "boss": {"roles": [Role.ADMIN]},
}


def fast_hasher() -> PasswordHasher:
    """Argon2 with test-sized cost: same code path, milliseconds per hash."""
    return PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)


def make_raw(*, subject: str = f"Re: {SECRET} price", body: str = f"The {SECRET} price is 42.",
             to: str = "cfo@rival.example", extra_headers: str = "",
             html: str | None = None, attachment_name: str | None = None) -> bytes:
    headers = (
        f"From: tanaka@example.co.jp\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <m1@example.co.jp>\r\nMIME-Version: 1.0\r\n{extra_headers}"
    )
    if html is None and attachment_name is None:
        plain = "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        return (headers + plain + body + "\r\n").encode()
    parts = [f"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"]
    if html is not None:
        parts.append(f"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n")
    if attachment_name is not None:
        parts.append(
            "--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f'Content-Disposition: attachment; filename="{attachment_name}"\r\n\r\n'
            f"attached {SECRET}\r\n"
        )
    kind = "alternative" if attachment_name is None else "mixed"
    return (headers + f'Content-Type: multipart/{kind}; boundary="b"\r\n\r\n'
            + "".join(parts) + "--b--\r\n").encode()


@dataclass
class Env:
    data_dir: Path
    store: SqliteStore
    accounts: SqliteAccounts
    rules: SqliteRuleStore
    app: FastAPI
    clock: list[datetime]

    def hold(self, raw: bytes | None = None, *, recipients: tuple[str, ...] = (
            "cfo@rival.example", "buyer@acme.example"), received_at: datetime | None = None
             ) -> str:
        raw = raw if raw is not None else make_raw()
        version = self.rules.active_version()
        assert version is not None
        compiled = compile_ruleset(parse_rules_bytes(self.rules.source(version.id), "r.yaml"),
                                   today=date(2026, 3, 1))
        envelope = Envelope("tanaka@example.co.jp", recipients)
        verdict = scan(raw, envelope, compiled)
        return self.store.hold(raw, envelope, verdict, received_at=received_at or NOW,
                               peer="127.0.0.1", message_id="<m1@example.co.jp>")

    def client(self, user: str | None = None) -> TestClient:
        client = TestClient(self.app, base_url="https://testserver")
        if user is not None:
            login(client, user)
        return client


def make_env(data_dir: Path, **settings: Any) -> Env:
    store = SqliteStore(data_dir)
    accounts = SqliteAccounts(data_dir, hasher=fast_hasher())
    for name, spec in USERS.items():
        accounts.add_user(name, PASSWORD, spec["roles"], now=NOW,
                          customers=spec.get("customers", ()))
    rules = SqliteRuleStore(data_dir)
    rules.create_version(RULES_YAML, "rules.yaml", author="boss", reason="initial", now=NOW,
                         activate=True)
    clock = [NOW]
    app = create_app(WebSettings(data_dir=data_dir, **settings), store=store,
                     accounts=accounts, rules=rules, now=lambda: clock[0])
    return Env(data_dir, store, accounts, rules, app, clock)


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token in page"
    return found.group(1)


def login(client: TestClient, user: str, password: str = PASSWORD) -> Any:
    page = client.get("/login")
    token = csrf_of(page.text)
    return client.post("/login", data={"username": user, "password": password,
                                       "csrf_token": token}, follow_redirects=False)


def session_csrf(client: TestClient) -> str:
    """The CSRF token of the client's session (every logged-in page has the log-out form)."""
    return csrf_of(client.get("/quarantine").text)
