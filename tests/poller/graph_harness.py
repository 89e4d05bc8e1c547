"""The Graph harness: the Graph stand-in (see graph_standin: not Microsoft's service) behind
the real httpx client and the real msal client-credentials flow inside ``GraphSource``."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.utils import getaddresses
from pathlib import Path

from scanner.config import Secret
from scanner.poller.graph import GraphSettings, GraphSource
from scanner.poller.source import MailSource
from tests.poller.factories import MAILBOX, PASSWORD
from tests.poller.graph_standin import GraphStandIn
from tests.poller.harness import Harness, ServerItem

TENANT = "00000000-0000-0000-0000-0000000000aa"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"


class GraphHarness(Harness):
    name = "graph"
    sent_folder = "sentitems"
    drafts_folder = "drafts"
    bcc_outside_mime = True
    expands_groups = True

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="maruhi-graph-"))
        self.server = GraphStandIn(TENANT, CLIENT_ID, PASSWORD, self.tmp).start()
        self.server.ensure_mailbox(MAILBOX)

    def close(self) -> None:
        self.server.stop()

    def settings(self, password: str | None = None) -> GraphSettings:
        return GraphSettings(
            tenant_id=TENANT,
            client_id=CLIENT_ID,
            client_secret=Secret(PASSWORD if password is None else password),
            graph_url=self.server.graph_url,
            authority_host=self.server.base,
            ca_file=str(self.server.ca_file),
            timeout=10,
        )

    def source(self, *, password: str | None = None) -> MailSource:
        return GraphSource(self.settings(password))

    def deliver(self, folder: str, raw: bytes, *, bcc: tuple[str, ...] = ()) -> None:
        msg = message_from_bytes(raw)
        target = self.server.folder(MAILBOX, folder)
        assert target is not None
        self.server.add_message(
            MAILBOX,
            target,
            raw,
            subject=str(msg["Subject"]),
            message_id=msg["Message-ID"],
            sender=getaddresses([msg["From"]])[0][1],
            to=tuple(a for _, a in getaddresses(msg.get_all("To") or [])),
            cc=tuple(a for _, a in getaddresses(msg.get_all("Cc") or [])),
            bcc=bcc or tuple(a for _, a in getaddresses(msg.get_all("Bcc") or [])),
        )

    def edit(self, folder: str, message_id: str, raw: bytes) -> None:
        """Graph keeps the draft's id; the delta reports it again."""
        target = self.server.folder(MAILBOX, folder)
        assert target is not None
        (msg,) = [
            m
            for m in self.server.messages.values()
            if m.folder_id == target.id and m.props.get("internetMessageId") == message_id
        ]
        self.server.update(msg.id, raw)

    def items(self, folder: str) -> list[ServerItem]:
        target = self.server.folder(MAILBOX, folder)
        if target is None:
            return []
        return [
            ServerItem(m.id, m.props.get("internetMessageId"), tuple(m.categories))
            for m in self.server.messages.values()
            if m.folder_id == target.id
        ]

    def add_group(self, address: str, members: tuple[str, ...]) -> None:
        self.server.groups[address] = members

    def invalidate_cursors(self) -> None:
        self.server.invalidate()

    @contextmanager
    def outage(self) -> Iterator[None]:
        """429 Too Many Requests with Retry-After on every call inside the block."""
        self.server.throttle_remaining = 10_000
        try:
            yield
        finally:
            self.server.throttle_remaining = 0
