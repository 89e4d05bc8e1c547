"""The source interface every mailbox backend (IMAP, EWS, Graph) implements, and its records.

It owns the vocabulary the poll loop speaks: a watched folder, an opaque cursor, a change batch,
a fetched item with its authoritative recipients, and the few errors the loop treats differently
(throttled, unavailable, cursor invalid, credentials rejected). Backends are synchronous (the
loop calls them through ``asyncio.to_thread``) and must not scan, decide or touch the store.
Hazard: an error message may end up in a log line, so a backend's errors name operations and
status codes only, never a subject, a body, a password or a token.

    MaruhiError
    ├── CredentialError          the server refused our credentials (operator must act)
    ├── CursorInvalidError       the cursor is no longer valid: the loop resyncs from scratch
    └── TransientError
        └── SourceError          the server is unreachable or failed; retry with backoff
            └── ThrottledError   the server asked us to slow down (``retry_after`` seconds)
"""

from __future__ import annotations

import enum
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from scanner.errors import MaruhiError, TransientError

V = TypeVar("V")


class FolderKind(enum.StrEnum):
    """What a watched folder holds, which decides what the poller does with a finding."""

    SENT = "sent"  # the sender's copy of mail already sent: record an incident
    JOURNAL = "journal"  # a journal mailbox (copies of everything sent): record an incident
    DRAFTS = "drafts"  # not sent yet: advisory tag only


@dataclass(frozen=True)
class WatchedFolder:
    """One folder of one mailbox; ``folder`` is the backend's name for it (e.g. ``sentitems``)."""

    mailbox: str
    folder: str
    kind: FolderKind

    @property
    def key(self) -> str:
        """Stable name of the folder for cursors and logs."""
        return f"{self.kind.value}:{self.folder}"


@dataclass(frozen=True)
class ItemRef:
    """An item as a change listing names it; ``message_id`` lets the loop dedupe before fetch."""

    item_id: str
    message_id: str | None = None  # the Internet-Message-ID, when the listing carries it
    change_key: str | None = None  # EWS only: the version of the item the id refers to


@dataclass(frozen=True)
class Changes:
    """One batch of new or changed items and the cursor that follows it."""

    items: tuple[ItemRef, ...]
    cursor: str
    more: bool  # True: call again with ``cursor`` right away


@dataclass(frozen=True)
class MailItem:
    """A fetched item: raw MIME plus the sender and recipients the mail store holds for it.

    ``recipients`` comes from the item's properties (To, Cc *and* Bcc) where the backend has
    them, not from the headers of ``raw`` (a sent copy's MIME usually lacks Bcc).
    """

    ref: ItemRef
    raw: bytes
    sender: str
    recipients: tuple[str, ...]
    message_id: str | None
    subject: str | None = None  # for the review UI only; never logged
    groups: tuple[str, ...] = ()  # recipients the server says are distribution lists


class CredentialError(MaruhiError):
    """The server rejected the credentials; retrying will not help until an operator acts."""


class CursorInvalidError(MaruhiError):
    """The cursor (sync state, delta link, UIDVALIDITY) is no longer valid: resync."""


class SourceError(TransientError):
    """The server failed or could not be reached; the loop backs off and retries."""


class ThrottledError(SourceError):
    """The server asked us to slow down for ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class Recent(dict[str, V]):
    """A dict that forgets its oldest entries beyond ``cap``: per-item facts a backend learns
    in one call and needs in the next (properties from a listing, categories from a fetch).
    Bounded, because most items are never tagged and a daemon runs for months."""

    def __init__(self, cap: int = 20_000) -> None:
        super().__init__()
        self.cap = cap
        self._lock = threading.Lock()  # several mailboxes' threads write at once

    def __setitem__(self, key: str, value: V) -> None:
        with self._lock:
            self.pop(key, None)  # re-insert at the end: recently used
            super().__setitem__(key, value)
            while len(self) > self.cap:
                del self[next(iter(self))]


class MailboxLocks:
    """One lock per mailbox: calls for different mailboxes run in parallel through one shared
    client (exchangelib's session pool, one httpx client), calls for one mailbox in order."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def __call__(self, mailbox: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(mailbox, threading.Lock())


class MailSource(ABC):
    """What the poll loop needs from a mailbox backend; every method blocks and may raise the
    errors of this module. Implementations serialize their own connection use (the loop may
    call one source from several threads, one folder each)."""

    name: str = "source"

    @abstractmethod
    def changes(self, folder: WatchedFolder, cursor: str | None, *, limit: int) -> Changes:
        """Items new or changed since ``cursor`` (None: everything), at most ``limit``."""

    @abstractmethod
    def fetch(self, folder: WatchedFolder, refs: Sequence[ItemRef]) -> list[MailItem]:
        """Raw MIME and authoritative recipients of ``refs``, in as few round trips as the
        protocol allows; items that vanished meanwhile are left out."""

    @abstractmethod
    def ensure_folder(self, mailbox: str, name: str) -> str:
        """Create the folder ``name`` (top level) unless it exists; returns its handle."""

    @abstractmethod
    def tag(self, folder: WatchedFolder, ref: ItemRef, tags: Sequence[str]) -> ItemRef:
        """Add ``tags`` (categories / keywords) to the item; returns its possibly new ref."""

    @abstractmethod
    def move(self, folder: WatchedFolder, ref: ItemRef, target: str) -> str | None:
        """Move the item to the folder handle ``target``; returns the new item id if known."""

    def expand(
        self, folder: WatchedFolder, item: MailItem, internal_domains: frozenset[str]
    ) -> dict[str, tuple[str, ...]]:
        """Members of the item's recipients that are distribution lists or groups, where the
        backend can tell (EWS ExpandDL, Graph group members); nested lists are flattened.

        The default (IMAP) cannot: no lists are expanded.
        """
        return {}

    def wait_for_changes(self, folder: WatchedFolder, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for a hint that the folder changed (IMAP IDLE).

        Only a hint: the loop polls on its interval anyway. The default has no push channel
        and returns False at once (the loop then sleeps).
        """
        return False

    def close(self) -> None:  # noqa: B027 - optional hook: most backends have nothing to close
        """Release connections."""
