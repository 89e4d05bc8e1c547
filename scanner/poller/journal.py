"""Exchange journal reports → the journaled message with its real envelope.

An envelope-journaling report (header ``X-MS-Journal-Report``) is addressed to the journal
mailbox; the real sender and recipients are lines of its text body (``Sender:``, ``To:``,
``Cc:``, ``Bcc:`` or older ``Recipient:``, each possibly followed by ``, Expanded: list`` or
``, Forwarded: address``), and the original message is attached as message/rfc822. The scope
check must see that envelope and the original's content, and the ledger must dedupe on the
original's Message-ID. Anything that is not a journal report is returned unchanged. Hazard:
never log the report body (it names the subject).
"""

from __future__ import annotations

import dataclasses
import email.utils
from email import policy
from email.message import Message
from email.parser import BytesParser

from scanner.poller.source import MailItem

_PARSER = BytesParser(policy=policy.compat32)
_RECIPIENT_KEYS = {"to", "cc", "bcc", "recipient"}


def _address(value: str) -> str | None:
    first = value.split(",", 1)[0].strip()  # drop ", Expanded: ..." / ", Forwarded: ..."
    _, address = email.utils.parseaddr(first)
    return address if "@" in address else None


def _report_parts(msg: Message) -> tuple[str | None, Message | None]:
    """The report's own text and the attached original (first of each, outside the original)."""
    text: str | None = None
    original: Message | None = None
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822" and original is None:
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                original = payload[0]
        elif ctype == "text/plain" and text is None and original is None:
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                text = data.decode(part.get_content_charset() or "utf-8", "replace")
    return text, original


def unpack_journal(item: MailItem) -> MailItem:
    """The journaled message and envelope of ``item`` if it is a journal report, else ``item``."""
    try:
        msg = _PARSER.parsebytes(item.raw)
    except Exception:
        return item
    if msg.get("X-MS-Journal-Report") is None:
        return item
    text, original = _report_parts(msg)
    if text is None or original is None:
        return item
    sender: str | None = None
    recipients: dict[str, None] = {}
    message_id: str | None = None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key == "sender":
            sender = _address(value) or sender
        elif key in _RECIPIENT_KEYS and (address := _address(value)):
            recipients.setdefault(address, None)
        elif key == "message-id" and value.strip():
            message_id = value.strip()
    if sender is None or not recipients:
        return item
    subject = original.get("Subject")
    return dataclasses.replace(
        item,
        raw=original.as_bytes(),
        sender=sender,
        recipients=tuple(recipients),
        message_id=message_id or original.get("Message-ID") or item.message_id,
        subject=str(subject) if subject is not None else item.subject,
        groups=(),
    )
