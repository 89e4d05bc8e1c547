"""Notice composition: every template renders, in Japanese then English, and never leaks content."""

from __future__ import annotations

import dataclasses
import email
from datetime import timedelta
from email.policy import default as default_policy
from typing import Any

import pytest

from scanner.model import Action
from scanner.notify import NoticeOptions, compose_notice, render
from scanner.store import NoticeKind, OutboxItem, OutboxKind, QuarantineRecord, Status
from tests.store.factories import (
    SECRET_SUBJECT,
    SECRET_TERM,
    T0,
    make_hit,
    make_unscannable,
)

OPTIONS = NoticeOptions(postmaster="postmaster@example.co.jp", hold_days=14, expire_action="reject")
CASES = [
    (NoticeKind.HOLD, "sender"),
    (NoticeKind.HOLD, "owner"),
    (NoticeKind.REJECT, "sender"),
    (NoticeKind.EXPIRE, "sender"),
    (NoticeKind.RELEASE_FAILED, "sender"),
]


def make_record(**kw: Any) -> QuarantineRecord:
    values: dict[str, Any] = {
        "id": "01JQRAZBE0C8GT13FWFB7NW869",
        "received_at": T0,
        "sender": "tanaka@example.co.jp",
        "recipients": ("cfo@rival.example", "suzuki@example.co.jp"),
        "size": 1234,
        "message_id": "<abc.123@client.example.co.jp>",
        "subject": SECRET_SUBJECT,
        "peer": "192.0.2.1",
        "action": Action.HOLD,
        "hits": (make_hit(), make_hit(rule_id="rival", location="envelope")),
        "unscannable": (),
        "ruleset_version": "v7",
        "status": Status.REJECTED,
        "reason": f"contains {SECRET_TERM}",  # a careless reviewer quoting the secret
        "last_error": "smtp-550",
    }
    values.update(kw)
    return QuarantineRecord(**values)


def make_item(notice_kind: NoticeKind | None, role: str, **kw: Any) -> OutboxItem:
    values: dict[str, Any] = {
        "id": "01JQRAZBE0SMPYW469WY8T8PEQ",
        "kind": OutboxKind.NOTICE,
        "quarantine_id": "01JQRAZBE0C8GT13FWFB7NW869",
        "created_at": T0,
        "attempts": 1,
        "notice": notice_kind,
        "role": role,
        "to": ("tanaka@example.co.jp",),
    }
    values.update(kw)
    return OutboxItem(**values)


@pytest.mark.parametrize(("kind", "role"), CASES)
def test_every_notice_names_the_id_in_both_languages(kind: NoticeKind, role: str) -> None:
    """Each template renders with the quarantine id, Japanese section before English."""
    subject, body = render(kind, role, make_record(), OPTIONS)
    assert "01JQRAZBE0C8GT13FWFB7NW869" in subject
    assert "01JQRAZBE0C8GT13FWFB7NW869" in body
    assert body.index("--- ja ---") < body.index("--- en ---")
    assert "$" not in body
    assert "$" not in subject


@pytest.mark.parametrize(("kind", "role"), CASES)
def test_no_notice_contains_the_secret_subject_or_reason(kind: NoticeKind, role: str) -> None:
    """Neither the term, the subject nor the reviewer's text appears, decoded or on the wire."""
    notice = compose_notice(make_item(kind, role), make_record(), OPTIONS, now=T0)
    wire = notice.as_bytes()
    decoded = email.message_from_bytes(wire, policy=default_policy)
    text = wire.decode("ascii") + str(decoded["Subject"]) + decoded.get_content()
    for forbidden in (SECRET_TERM, "Zephyr", SECRET_SUBJECT, "acquisition", "contains"):
        assert forbidden not in text


def test_hold_notice_lists_rules_and_out_of_scope_recipients() -> None:
    """The sender learns which rules and which recipients caused the hold, and what happens next."""
    _, body = render(NoticeKind.HOLD, "sender", make_record(status=Status.HELD), OPTIONS)
    assert "falcon, rival" in body
    assert "cfo@rival.example" in body
    assert "suzuki@example.co.jp" not in body
    assert "14 日以内" in body
    assert "within 14 days" in body
    assert "rejected automatically" in body
    assert "postmaster@example.co.jp" in body


def test_expire_action_release_is_announced() -> None:
    """When retention releases undecided mail, the hold notice says so."""
    options = dataclasses.replace(OPTIONS, expire_action="release", hold_days=7.5)
    _, body = render(NoticeKind.HOLD, "sender", make_record(), options)
    assert "送信されます" in body
    assert "released automatically" in body
    assert "7.5" in body


def test_unscannable_hold_says_so_without_rules() -> None:
    """A message held only because it could not be read names that instead of rule ids."""
    record = make_record(hits=(), unscannable=(make_unscannable(),))
    _, body = render(NoticeKind.HOLD, "sender", record, OPTIONS)
    assert "unscannable content" in body


def test_notice_headers_are_automatic_and_threaded() -> None:
    """A notice comes from the postmaster with a null envelope sender and Auto-Submitted."""
    notice = compose_notice(
        make_item(NoticeKind.HOLD, "sender"), make_record(), OPTIONS, now=T0 + timedelta(hours=9)
    )
    assert notice.sender == ""
    assert notice.recipients == ("tanaka@example.co.jp",)
    msg = notice.message
    assert msg["From"] == "Maruhi <postmaster@example.co.jp>"
    assert msg["To"] == "tanaka@example.co.jp"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["In-Reply-To"] == "<abc.123@client.example.co.jp>"
    assert msg["X-Maruhi-Quarantine-Id"] == "01JQRAZBE0C8GT13FWFB7NW869"
    assert str(msg["Message-ID"]).endswith("@example.co.jp>")
    assert b"\n" not in notice.as_bytes().replace(b"\r\n", b"")  # CRLF only, SMTP-ready


def test_a_hostile_message_id_is_not_echoed_into_headers() -> None:
    """A Message-ID that is not one clean <...> token is never copied into a header."""
    record = make_record(message_id="<x@y>\r\nBcc: victim@example.org")
    msg = compose_notice(make_item(NoticeKind.HOLD, "sender"), record, OPTIONS, now=T0).message
    assert msg["In-Reply-To"] is None
    assert msg["Bcc"] is None


def test_a_non_notice_item_is_refused() -> None:
    """Composing for a deliver item is a programming error, caught early."""
    item = make_item(None, "sender", kind=OutboxKind.DELIVER)
    with pytest.raises(ValueError, match="not a notice"):
        compose_notice(item, make_record(), OPTIONS, now=T0)
