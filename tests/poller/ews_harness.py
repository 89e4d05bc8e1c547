"""The EWS harness: the EWS stand-in (see ews_standin: built from the schema, not Exchange)
driven by the real, unmodified exchangelib inside ``EwsSource``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.utils import getaddresses

from scanner.config import Secret
from scanner.poller.ews import EwsSettings, EwsSource
from scanner.poller.source import MailSource
from tests.poller.ews_standin import EwsStandIn
from tests.poller.factories import MAILBOX, PASSWORD
from tests.poller.harness import Harness, ServerItem

SERVICE_USER = "svc-maruhi"


class EwsHarness(Harness):
    name = "ews"
    sent_folder = "sentitems"
    drafts_folder = "drafts"
    bcc_outside_mime = True
    expands_groups = True

    def __init__(self) -> None:
        self.server = EwsStandIn({SERVICE_USER: PASSWORD}).start()
        self.server.state.ensure_mailbox(MAILBOX)

    def close(self) -> None:
        self.server.stop()

    def settings(self, password: str | None = None) -> EwsSettings:
        return EwsSettings(
            endpoint=self.server.url,
            username=SERVICE_USER,
            secret=Secret(PASSWORD if password is None else password),
            auth_type="basic",
            max_wait=0.2,
        )

    def source(self, *, password: str | None = None) -> MailSource:
        return EwsSource(self.settings(password))

    def _folder(self, name: str):  # type: ignore[no-untyped-def]
        return self.server.state.folder_named(MAILBOX, name)

    def deliver(self, folder: str, raw: bytes, *, bcc: tuple[str, ...] = ()) -> None:
        msg = message_from_bytes(raw)
        self.server.state.create_item(
            MAILBOX,
            self._folder(folder),
            raw,
            subject=str(msg["Subject"]),
            message_id=msg["Message-ID"],
            sender=getaddresses([msg["From"]])[0][1],
            to=tuple(a for _, a in getaddresses(msg.get_all("To") or [])),
            cc=tuple(a for _, a in getaddresses(msg.get_all("Cc") or [])),
            bcc=bcc or tuple(a for _, a in getaddresses(msg.get_all("Bcc") or [])),
        )

    def edit(self, folder: str, message_id: str, raw: bytes) -> None:
        """Exchange keeps the draft's id and reports an Update."""
        f = self._folder(folder)
        (item,) = [
            i
            for i in self.server.state.items.values()
            if i.folder_id == f.id and i.message_id == message_id
        ]
        self.server.state.update(item.id, raw)

    def items(self, folder: str) -> list[ServerItem]:
        f = self._folder(folder)
        if f is None:
            return []
        return [
            ServerItem(i.id, i.message_id, tuple(i.categories))
            for i in self.server.state.items.values()
            if i.folder_id == f.id
        ]

    def add_group(self, address: str, members: tuple[str, ...]) -> None:
        self.server.state.groups[address] = members

    def invalidate_cursors(self) -> None:
        self.server.state.invalidate_sync_states()

    @contextmanager
    def outage(self) -> Iterator[None]:
        """ErrorServerBusy with a BackOffMilliseconds longer than the source's max_wait."""
        self.server.throttle(10_000, back_off_ms=250)
        try:
            yield
        finally:
            self.server.throttle(0, back_off_ms=0)
