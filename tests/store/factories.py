"""Factories for quarantine tests: envelopes, verdicts, inline messages (keyword-only overrides)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from scanner.model import Action, Envelope, Hit, Span, Unscannable, Verdict

T0 = datetime(2025, 4, 1, 9, 30, tzinfo=UTC)
SECRET_TERM = "ファルコン計画 Zephyr-9"
SECRET_SUBJECT = "Re: Zephyr-9 acquisition price"


def make_raw(
    *,
    subject: str = SECRET_SUBJECT,
    body: str = f"The {SECRET_TERM} number is 42.",
    message_id: str = "<abc.123@client.example.co.jp>",
) -> bytes:
    """An RFC 5322 message with CRLF line endings, as SMTP DATA delivers it."""
    lines = [
        "From: Tanaka <tanaka@example.co.jp>",
        "To: cfo@rival.example",
        f"Subject: {subject}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        body,
        "",
    ]
    return "\r\n".join(lines).encode("utf-8")


def make_envelope(**kw: Any) -> Envelope:
    values: dict[str, Any] = {
        "sender": "tanaka@example.co.jp",
        "recipients": ("cfo@rival.example", "suzuki@example.co.jp"),
    }
    values.update(kw)
    return Envelope(**values)


def make_hit(**kw: Any) -> Hit:
    values: dict[str, Any] = {
        "rule_id": "falcon",
        "location": "body",
        "out_of_scope": ("cfo@rival.example",),
        "action": Action.HOLD,
        "spans": (Span(4, 17),),
    }
    values.update(kw)
    return Hit(**values)


def make_verdict(*hits: Hit, **kw: Any) -> Verdict:
    values: dict[str, Any] = {
        "action": Action.HOLD,
        "hits": hits or (make_hit(),),
        "unscannable": (),
        "ruleset_version": "v7",
    }
    values.update(kw)
    return Verdict(**values)


def make_unscannable(**kw: Any) -> Unscannable:
    values: dict[str, Any] = {"location": "attachment:plan.zip", "reason": "encrypted"}
    values.update(kw)
    return Unscannable(**values)
