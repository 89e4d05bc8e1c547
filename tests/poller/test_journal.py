"""Exchange journal reports are judged as the journaled message with its real envelope."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scanner.poller.journal import unpack_journal
from scanner.poller.source import FolderKind, ItemRef, MailItem, WatchedFolder
from scanner.rules.model import CompiledRuleset
from scanner.store.base import Status
from scanner.store.sqlite import SqliteStore
from tests.poller.dovecot import requires_dovecot
from tests.poller.factories import MAILBOX, make_message
from tests.poller.imap_harness import ImapHarness
from tests.poller.test_contract import once, poller

JOURNAL = "journal@example.co.jp"


def journal_report(original: bytes, *, sender: str, to: tuple[str, ...],
                   bcc: tuple[str, ...] = ()) -> bytes:
    """An envelope-journal report as Exchange writes it: envelope lines, original attached."""
    lines = [f"Sender: {sender}", "Subject: quarterly numbers",
             "Message-Id: <orig-1@client.example.co.jp>"]
    lines += [f"To: {rcpt}" for rcpt in to]
    lines += [f"Bcc: {rcpt}, Expanded: deal-team@example.co.jp" for rcpt in bcc]
    body = "\r\n".join(lines)
    return (
        f"From: Microsoft Exchange <postmaster@example.co.jp>\r\nTo: {JOURNAL}\r\n"
        "Subject: quarterly numbers\r\nMessage-ID: <report-1@example.co.jp>\r\n"
        "X-MS-Journal-Report:\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="J"\r\n\r\n'
        f"--J\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{body}\r\n"
        "--J\r\nContent-Type: message/rfc822\r\n\r\n"
    ).encode() + original + b"\r\n--J--\r\n"


def _item(raw: bytes) -> MailItem:
    return MailItem(ItemRef("1", "<report-1@example.co.jp>"), raw, "postmaster@example.co.jp",
                    (JOURNAL,), "<report-1@example.co.jp>")


def test_report_is_unpacked_to_the_original_envelope() -> None:
    """Sender, To and Bcc (with its expansion note) come from the report; content from the
    attached original; the Message-ID is the original's."""
    original = make_message(to=("cfo@rival.example",), message_id="<orig-1@client.example.co.jp>")
    got = unpack_journal(_item(journal_report(
        original, sender=MAILBOX, to=("cfo@rival.example",), bcc=("buyer@acme.example",))))
    assert got.sender == MAILBOX
    assert got.recipients == ("cfo@rival.example", "buyer@acme.example")
    assert got.message_id == "<orig-1@client.example.co.jp>"
    assert b"price is 42" in got.raw
    assert b"X-MS-Journal-Report" not in got.raw


@pytest.mark.parametrize("raw", [
    make_message(),  # an ordinary message in a journal folder
    b"X-MS-Journal-Report:\r\nSubject: no parts\r\n\r\nSender: a@b.example\r\n",  # no original
    b"\x00garbage",
])
def test_anything_else_is_left_unchanged(raw: bytes) -> None:
    """A non-report, a report without an attached original, or garbage is not rewritten."""
    item = _item(raw)
    assert unpack_journal(item) == item


@pytest.fixture
def imap() -> Iterator[ImapHarness]:
    h = ImapHarness()
    yield h
    h.close()


@requires_dovecot
def test_journal_folder_records_the_real_disclosure(
    imap: ImapHarness, store: SqliteStore, ruleset: CompiledRuleset
) -> None:
    """Through a real IMAP server: the incident names the original's out-of-scope recipient,
    not the journal mailbox, and a second pass records nothing new."""
    original = make_message(to=("cfo@rival.example",), message_id="<orig-1@client.example.co.jp>")
    imap.deliver("INBOX", journal_report(original, sender=MAILBOX, to=("cfo@rival.example",)))
    folder = WatchedFolder(MAILBOX, "INBOX", FolderKind.JOURNAL)
    with poller(imap, store, ruleset, folder=folder) as p:
        first = once(p)
        second = once(p)
    assert len(first.incidents) == 1
    assert second.incidents == ()
    (record,) = store.list(status=Status.SENT)
    assert record.recipients == ("cfo@rival.example",)
    assert record.message_id == "<orig-1@client.example.co.jp>"
    assert [h.out_of_scope for h in record.hits] == [("cfo@rival.example",)]
