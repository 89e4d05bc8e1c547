"""Compose notices about held messages (to the sender, to a rule owner) from package templates.

Owns the mapping (notice kind, role) → template file under ``templates/`` and the headers of a
notice (From the postmaster, Auto-Submitted, a fresh Message-ID); it must not send anything
(the outbox worker does) and must not read the held message's content. Its hazard is leakage: a
notice is built only from a ``QuarantineRecord``'s metadata — quarantine id, rule ids,
out-of-scope recipients, times, the original Message-ID — never the subject, body, attachment
text, a secret term or the reviewer's free-text reason (which might quote the secret).
"""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from functools import cache
from importlib import resources
from string import Template
from typing import TYPE_CHECKING

from scanner.notify.links import load_link_key, status_url
from scanner.store.base import NoticeKind, OutboxItem, QuarantineRecord

if TYPE_CHECKING:
    from scanner.config import Settings

# A Message-ID we may echo in In-Reply-To: one <...> token, no whitespace or control characters.
_MSGID_RE = re.compile(r"^<[^<>\s\x00-\x1f\x7f]{1,250}>$")


@dataclass(frozen=True)
class NoticeOptions:
    """What a notice says about the process and who signs it."""

    postmaster: str = "postmaster@localhost"
    hold_days: float = 14.0
    expire_action: str = "reject"  # "reject" | "release": what retention does to undecided mail
    # The review web app as senders reach it (e.g. "https://maruhi.example.co.jp"); empty: hold
    # notices carry no status link.
    public_url: str = ""
    link_key: bytes = field(default=b"", repr=False)  # see scanner.notify.links

    @classmethod
    def from_settings(cls, settings: Settings) -> NoticeOptions:
        """From ``[notices]``, ``[retention]`` and ``[web] public_url``; no from_address:
        postmaster@<relay host>. With a public URL, the link key comes from the data dir."""
        host = settings.relay.hostname or platform.node() or "localhost"
        public_url = settings.web.public_url
        return cls(
            postmaster=settings.notices.from_address or f"postmaster@{host}",
            hold_days=settings.retention.hold_days,
            expire_action=settings.retention.expire_action,
            public_url=public_url,
            link_key=load_link_key(settings.store.data_dir) if public_url else b"",
        )

    def status_link(self, quarantine_id: str) -> str | None:
        """The sender's status link for a held message, or None when not configured."""
        if not self.public_url or not self.link_key:
            return None
        return status_url(self.public_url, self.link_key, quarantine_id)


@dataclass(frozen=True)
class Notice:
    """A composed notice: its envelope and the wire bytes (CRLF line endings)."""

    sender: str  # envelope MAIL FROM: always the null reverse-path, so notices never bounce back
    recipients: tuple[str, ...]
    message: EmailMessage

    def as_bytes(self) -> bytes:
        return self.message.as_bytes(policy=SMTP)


def _template_name(kind: NoticeKind, role: str | None) -> str:
    if kind is NoticeKind.HOLD:
        return "hold_owner.txt" if role == "owner" else "hold_sender.txt"
    return f"{kind.value}.txt"


@cache
def _load(name: str) -> tuple[str, Template]:
    """First line: the subject; the rest: the body (ja section first, then en)."""
    text = resources.files("scanner.notify").joinpath("templates", name).read_text("utf-8")
    subject, _, body = text.partition("\n")
    return subject.strip(), Template(body)


def _fmt_days(days: float) -> str:
    return str(int(days)) if float(days).is_integer() else f"{days:g}"


def render(
    kind: NoticeKind, role: str | None, record: QuarantineRecord, options: NoticeOptions
) -> tuple[str, str]:
    """(subject, body) for one notice; only metadata of the record is substituted."""
    subject_t, body_t = _load(_template_name(kind, role))
    if record.rule_ids:
        rules = ", ".join(record.rule_ids)
    elif record.unscannable:
        rules = "読み取れない内容 / unscannable content"
    else:
        rules = "-"
    values = {
        "id": record.id,
        "rules": rules,
        "out_of_scope": ", ".join(record.out_of_scope) or "-",
        "sender": record.sender or "<>",
        "received_at": record.received_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "message_id": record.message_id or "-",
        "postmaster": options.postmaster,
        "hold_days": _fmt_days(options.hold_days),
        "expire_ja": "送信されます" if options.expire_action == "release" else "却下されます",
        "expire_en": "released" if options.expire_action == "release" else "rejected",
        # Only the error class (e.g. "smtp-550"), never the upstream's text, which may quote.
        "error": record.last_error or "-",
        "status_ja": "",
        "status_en": "",
    }
    link = options.status_link(record.id) if role != "owner" else None
    if link is not None:
        # The link is the sender's own: the owner's notice never carries it.
        values["status_ja"] = f"\n状況の確認と送信許可の依頼 (理由を添えて):\n  {link}\n"
        values["status_en"] = (
            f"\nSee the status or ask for release (with a justification):\n  {link}\n")
    subject = Template(subject_t).substitute(values)
    body = body_t.substitute(values)
    return subject, body


def compose_notice(
    item: OutboxItem, record: QuarantineRecord, options: NoticeOptions, *, now: datetime
) -> Notice:
    """Build the notice an outbox item asks for."""
    if item.notice is None:
        raise ValueError("outbox item is not a notice")
    subject, body = render(item.notice, item.role, record, options)
    msg = EmailMessage()
    msg["From"] = f"Maruhi <{options.postmaster}>"
    msg["To"] = ", ".join(item.to)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now.astimezone(UTC))
    domain = options.postmaster.rpartition("@")[2] or platform.node() or "localhost"
    msg["Message-ID"] = make_msgid("maruhi-notice", domain=domain)
    if record.message_id and _MSGID_RE.match(record.message_id):
        msg["In-Reply-To"] = record.message_id
        msg["References"] = record.message_id
    # RFC 3834: an automatic message; tells autoresponders not to answer it.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Maruhi-Quarantine-Id"] = record.id
    msg["X-Maruhi-Notice"] = item.notice.value
    msg.set_content(body, charset="utf-8", cte="base64")
    return Notice(sender="", recipients=item.to, message=msg)
