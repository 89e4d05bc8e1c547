"""Factories for poller tests: inline RFC 5322 messages, the test ruleset, fast loop options."""

from __future__ import annotations

import datetime as dt
import itertools

from scanner.poller.loop import LoopOptions
from scanner.rules.compile import compile_ruleset
from scanner.rules.load import parse_rules_yaml
from scanner.rules.model import CompiledRuleset

MAILBOX = "tanaka@example.co.jp"
PASSWORD = "pw-Zx81!"  # a test credential; asserted never to appear in logs
SECRET = "Project Falcon"
TODAY = dt.date(2026, 1, 15)

RULES_YAML = """
version: 1
settings:
  internal_domains: [example.co.jp]
rules:
  - id: falcon
    customer: ACME Corp
    owner: owner@example.co.jp
    terms: ["Project Falcon"]
    allow:
      domains: [acme.example]
      internal: true
    action: hold
  - id: lynx
    customer: Lynx KK
    terms: ["Lynx merger"]
    allow:
      domains: [lynx.example]
    action: flag
"""

_counter = itertools.count(1)


def make_ruleset(yaml_text: str = RULES_YAML) -> CompiledRuleset:
    return compile_ruleset(parse_rules_yaml(yaml_text, "poller-test.yaml"), today=TODAY)


def make_message(
    *,
    to: tuple[str, ...] = ("cfo@rival.example",),
    cc: tuple[str, ...] = (),
    bcc: tuple[str, ...] = (),
    body: str = f"The {SECRET} price is 42.",
    subject: str = "quarterly numbers",
    message_id: str | None = None,
    sender: str = MAILBOX,
) -> bytes:
    """A CRLF message as a client stores it in Sent Items (Bcc only when given)."""
    mid = message_id or f"<poller-{next(_counter)}@client.example.co.jp>"
    lines = [f"From: Tanaka <{sender}>", f"To: {', '.join(to)}"]
    if cc:
        lines.append(f"Cc: {', '.join(cc)}")
    if bcc:
        lines.append(f"Bcc: {', '.join(bcc)}")
    lines += [
        f"Subject: {subject}",
        f"Message-ID: {mid}",
        "Date: Thu, 15 Jan 2026 10:00:00 +0900",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        body,
        "",
    ]
    return "\r\n".join(lines).encode("utf-8")


FAST = LoopOptions(
    batch=50,
    interval=0.05,
    backoff_first=0.05,
    backoff_max=0.2,
    max_retry_after=0.3,
    hint_slice=0.05,
)
