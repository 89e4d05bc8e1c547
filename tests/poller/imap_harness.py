"""The IMAP harness: a real Dovecot; messages are APPENDed by an independent admin connection."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import imapclient  # type: ignore[import-untyped]

from scanner.config import Secret
from scanner.poller.imap import ImapAccount, ImapSource
from scanner.poller.source import MailSource
from tests.poller.dovecot import Dovecot
from tests.poller.factories import MAILBOX, PASSWORD
from tests.poller.harness import Harness, ServerItem


class ImapHarness(Harness):
    name = "imap"
    sent_folder = "Sent"
    drafts_folder = "Drafts"

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="maruhi-dovecot-"))
        self.server = Dovecot(self.root, users={MAILBOX: PASSWORD}).start()

    def close(self) -> None:
        self.server.stop()

    def account(self, password: str | None = None) -> ImapAccount:
        return ImapAccount(
            host="127.0.0.1",
            port=self.server.port,
            username=MAILBOX,
            password=Secret(PASSWORD if password is None else password),
            tls="none",
            timeout=10,
        )

    def source(self, *, password: str | None = None) -> MailSource:
        return ImapSource(self.account(password))

    @contextmanager
    def admin(self) -> Iterator[imapclient.IMAPClient]:
        client = imapclient.IMAPClient("127.0.0.1", port=self.server.port, ssl=False, timeout=10)
        client.login(MAILBOX, PASSWORD)
        try:
            yield client
        finally:
            client.logout()

    def deliver(self, folder: str, raw: bytes, *, bcc: tuple[str, ...] = ()) -> None:
        with self.admin() as c:
            c.append(folder, raw)

    def edit(self, folder: str, message_id: str, raw: bytes) -> None:
        """IMAP messages are immutable: a client appends the new version, expunges the old."""
        with self.admin() as c:
            c.select_folder(folder)
            old = c.search(["HEADER", "Message-ID", message_id])
            c.append(folder, raw)
            c.delete_messages(old)
            c.expunge()

    def items(self, folder: str) -> list[ServerItem]:
        with self.admin() as c:
            if not c.folder_exists(folder):
                return []
            c.select_folder(folder, readonly=True)
            uids = c.search(["ALL"])
            if not uids:
                return []
            data = c.fetch(uids, ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
            out = []
            for uid in sorted(data):
                entry = data[uid]
                header = next(
                    (bytes(v) for k, v in entry.items() if k.startswith(b"BODY[HEADER")), b""
                )
                mid = header.decode().partition(":")[2].strip() or None
                tags = tuple(f.decode() for f in entry[b"FLAGS"] if not f.startswith(b"\\"))
                out.append(ServerItem(str(uid), mid, tags))
            return out

    def invalidate_cursors(self) -> None:
        """Recreate Sent with the same messages: Dovecot gives it a new UIDVALIDITY."""
        with self.admin() as c:
            c.select_folder(self.sent_folder)
            uids = c.search(["ALL"])
            raws = [bytes(v[b"BODY[]"]) for v in c.fetch(uids, ["BODY.PEEK[]"]).values()]
            c.close_folder()
            c.rename_folder(self.sent_folder, "Sent-old")
            c.create_folder(self.sent_folder)
            for raw in raws:
                c.append(self.sent_folder, raw)
            c.delete_folder("Sent-old")

    @contextmanager
    def outage(self) -> Iterator[None]:
        """IMAP has no standard throttling reply: the server goes away and comes back."""
        self.server.stop()
        try:
            yield
        finally:
            self.server.start()
