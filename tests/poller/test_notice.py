"""The incident notice the outbox sends for a poller finding: metadata only, never content."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from scanner.model import Envelope
from scanner.notify.compose import NoticeOptions, compose_notice
from scanner.rules.model import CompiledRuleset
from scanner.scan import scan
from scanner.store.base import NoticeKind
from scanner.store.sqlite import SqliteStore
from tests.poller.factories import MAILBOX, SECRET, TODAY, make_message


def test_incident_notice_names_rule_and_recipient_not_content(
    tmp_path: Path, ruleset: CompiledRuleset
) -> None:
    """The owner's notice says which rule and recipient, that the mail had already left, and
    carries neither the term nor the subject."""
    raw = make_message(subject="Q3 acquisition secret plan", to=("cfo@rival.example",))
    envelope = Envelope(MAILBOX, ("cfo@rival.example",))
    verdict = scan(raw, envelope, ruleset, today=TODAY)
    store = SqliteStore(tmp_path / "store")
    try:
        qid = store.record_incident(
            raw,
            envelope,
            verdict,
            received_at=datetime(2026, 1, 15, tzinfo=UTC),
            source="imap",
            mailbox=MAILBOX,
            folder="sent:Sent",
            item_id="7",
            message_id="<m@x>",
            dedupe_key="mid:<m@x>",
            owners=("owner@example.co.jp",),
        )
        (item,) = store.outbox(quarantine_id=qid)
        notice = compose_notice(item, store.get(qid), NoticeOptions(), now=datetime.now(UTC))
    finally:
        store.close()
    assert item.notice is NoticeKind.INCIDENT
    text = notice.message.get_content()
    assert "falcon" in text
    assert "cfo@rival.example" in text
    assert "already been sent" in text
    headers = "\n".join(f"{k}: {v}" for k, v in notice.message.items())
    for secret in (SECRET, "acquisition", "Q3"):
        assert secret not in text
        assert secret not in headers
