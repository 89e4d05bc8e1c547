"""One test-side view of a mailbox server, so the contract suite runs unchanged on every backend.

A harness puts messages into a folder *server-side* (not through the source under test), reads
the server's state back (ids, tags, folder of each item), and provokes the faults the contract
needs: a cursor the server no longer accepts, an outage or throttling, wrong credentials.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from scanner.poller.source import FolderKind, MailSource, WatchedFolder
from tests.poller.factories import MAILBOX


@dataclass(frozen=True)
class ServerItem:
    """An item as the server holds it."""

    item_id: str
    message_id: str | None
    tags: tuple[str, ...]


class Harness(ABC):
    name: str
    sent_folder: str
    drafts_folder: str
    quarantine_folder: str = "Maruhi Quarantine"
    # Does the backend's item carry Bcc separately from the MIME (EWS, Graph)?
    bcc_outside_mime: bool = False
    # Can the backend expand distribution lists / groups (EWS ExpandDL, Graph members)?
    expands_groups: bool = False

    def add_group(self, address: str, members: tuple[str, ...]) -> None:
        """Create a distribution list / group on the server."""
        raise NotImplementedError(f"{self.name} has no groups")

    @property
    def sent(self) -> WatchedFolder:
        return WatchedFolder(MAILBOX, self.sent_folder, FolderKind.SENT)

    @property
    def drafts(self) -> WatchedFolder:
        return WatchedFolder(MAILBOX, self.drafts_folder, FolderKind.DRAFTS)

    @abstractmethod
    def close(self) -> None:
        """Stop the server."""

    @abstractmethod
    def source(self, *, password: str | None = None) -> MailSource:
        """A fresh source (a "restart"); ``password`` overrides the right one."""

    @abstractmethod
    def deliver(self, folder: str, raw: bytes, *, bcc: tuple[str, ...] = ()) -> None:
        """Store a message in ``folder`` server-side; ``bcc`` as item property where supported."""

    @abstractmethod
    def edit(self, folder: str, message_id: str, raw: bytes) -> None:
        """Change a stored message the way a mail client saves an edited draft."""

    @abstractmethod
    def items(self, folder: str) -> list[ServerItem]:
        """What the server holds in ``folder``."""

    @abstractmethod
    def invalidate_cursors(self) -> None:
        """Make the server reject every cursor handed out so far."""

    @abstractmethod
    @contextmanager
    def outage(self) -> Iterator[None]:
        """The server throttles or is unreachable inside the block."""
