"""The IMAP backend (any standard server; tested against Dovecot) on top of ``imapclient``.

Owns one authenticated connection per mailbox (plus one for IDLE), the cursor format
``{"v": UIDVALIDITY, "uid": last UID}`` and the mapping of tags to IMAP keywords. IMAP messages
are immutable (an edited draft is a new UID), so new UIDs are all the poller needs: CONDSTORE's
MODSEQ would only report flag changes, which include our own tags. It must not scan or decide.
Hazards: (1) a UIDVALIDITY change makes every UID meaningless: ``CursorInvalidError``, the loop
resyncs and the ledger absorbs the repeat; (2) ``UID n:*`` always matches the highest UID even
below ``n``, so results are filtered; (3) recipients come from the stored copy's headers (To,
Cc, Bcc): IMAP has no envelope, and a client that strips Bcc from its sent copy hides it here.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import re
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any, TypeVar

import imapclient  # type: ignore[import-untyped]
import imapclient.exceptions  # type: ignore[import-untyped]

from scanner.config import Secret
from scanner.errors import MaruhiError
from scanner.poller.source import (
    Changes,
    CredentialError,
    CursorInvalidError,
    ItemRef,
    MailItem,
    MailSource,
    SourceError,
    WatchedFolder,
)

T = TypeVar("T")

_NON_ATOM = re.compile(r"[^\x21-\x7e]|[(){%*\"\\\]]")  # RFC 3501 atom-specials, CTL, SP, 8-bit
MAX_KEYWORD = 100  # Dovecot accepts longer; other servers are stricter


@dataclass(frozen=True)
class ImapAccount:
    """How to reach and log in to one mailbox."""

    host: str
    port: int
    username: str
    password: Secret
    tls: str = "ssl"  # "ssl" (993) | "starttls" | "none" (loopback tests only)
    timeout: float = 60.0
    ca_file: str | None = None


def keyword(tag: str) -> str:
    """A tag as an IMAP keyword atom: ASCII printable minus atom-specials, no spaces."""
    atom = _NON_ATOM.sub("_", tag).strip("_") or "Maruhi"
    return atom[:MAX_KEYWORD]


def _addresses(values: list[str]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for _name, addr in email.utils.getaddresses(values):
        if addr:
            found.setdefault(addr, None)
    return tuple(found)


class ImapSource(MailSource):
    """``MailSource`` for one IMAP mailbox (``WatchedFolder.folder`` is the IMAP folder name)."""

    name = "imap"

    def __init__(
        self,
        account: ImapAccount,
        connect: Callable[[ImapAccount], imapclient.IMAPClient] | None = None,
    ) -> None:
        self.account = account
        self._connect_fn = connect or _connect
        self._lock = threading.Lock()
        self._client: imapclient.IMAPClient | None = None
        self._idle_lock = threading.Lock()  # guards the two dicts below
        self._idle_locks: dict[str, threading.Lock] = {}
        self._idle_clients: dict[str, imapclient.IMAPClient] = {}
        self._closed = False
        self.requests = 0  # protocol commands issued, for the benchmark
        self.mime_requests = 0  # FETCH BODY[] commands (one per batch), for the benchmark
        self._selected: str | None = None

    # -- connection ----------------------------------------------------------------------------

    @contextmanager
    def _session(self) -> Iterator[imapclient.IMAPClient]:
        """The connection under the lock; any protocol/socket failure drops it and maps to our
        errors (the next call reconnects)."""
        with self._lock:
            try:
                if self._client is None:
                    self._client = self._connect_fn(self.account)
                    self.requests += 2  # greeting/capability + LOGIN
                yield self._client
            except imapclient.exceptions.LoginError as exc:
                self._drop()
                if b"UNAVAILABLE" in str(exc).encode() or "UNAVAILABLE" in str(exc):
                    raise SourceError("imap: authentication temporarily unavailable") from exc
                raise CredentialError(f"imap: login rejected for {self.account.username}") from exc
            except (OSError, ssl.SSLError, imapclient.exceptions.IMAPClientAbortError) as exc:
                self._drop()
                raise SourceError(f"imap: connection failed ({type(exc).__name__})") from exc
            except imapclient.exceptions.IMAPClientError as exc:
                self._drop()
                raise SourceError(f"imap: command failed ({type(exc).__name__})") from exc

    def _drop(self) -> None:
        client, self._client = self._client, None
        self._selected = None
        if client is not None:
            with contextlib.suppress(Exception):  # already broken; closing is best effort
                client.shutdown()

    def _select(self, client: imapclient.IMAPClient, folder: str) -> dict[bytes, Any]:
        """SELECT (always: its reply carries UIDVALIDITY/UIDNEXT/EXISTS as of now)."""
        self.requests += 1
        info: dict[bytes, Any] = client.select_folder(folder)
        self._selected = folder
        return info

    def _ensure_selected(self, client: imapclient.IMAPClient, folder: str) -> None:
        """SELECT only when another folder is selected (fetch/tag/move right after a listing)."""
        if self._selected != folder:
            self._select(client, folder)

    # -- MailSource ----------------------------------------------------------------------------

    def changes(self, folder: WatchedFolder, cursor: str | None, *, limit: int) -> Changes:
        with self._session() as client:
            info = self._select(client, folder.folder)
            validity = int(info[b"UIDVALIDITY"])
            last = 0
            if cursor is not None:
                state = json.loads(cursor)
                if int(state["v"]) != validity:
                    raise CursorInvalidError("imap: UIDVALIDITY changed")
                last = int(state["uid"])
            uidnext = info.get(b"UIDNEXT")
            if int(info.get(b"EXISTS", 0)) == 0 or (
                uidnext is not None and int(uidnext) <= last + 1
            ):
                # Nothing above our last UID: the SELECT reply answers it, no SEARCH needed.
                return Changes((), json.dumps({"v": validity, "uid": last}), False)
            self.requests += 1
            uids = sorted(u for u in client.search(["UID", f"{last + 1}:*"]) if u > last)
            batch, more = uids[:limit], len(uids) > limit
            refs: list[ItemRef] = []
            if batch:
                self.requests += 1
                data = client.fetch(batch, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
                for uid in batch:
                    header = _header_bytes(data.get(uid, {}))
                    refs.append(ItemRef(str(uid), message_id=_message_id(header)))
            new_last = batch[-1] if batch else last
            return Changes(tuple(refs), json.dumps({"v": validity, "uid": new_last}), more)

    def fetch(self, folder: WatchedFolder, refs: Sequence[ItemRef]) -> list[MailItem]:
        if not refs:
            return []
        with self._session() as client:
            self._ensure_selected(client, folder.folder)
            uids = [int(r.item_id) for r in refs]
            self.requests += 1
            self.mime_requests += 1
            data = client.fetch(uids, ["BODY.PEEK[]"])  # one round trip for the whole batch
        items: list[MailItem] = []
        for ref in refs:
            entry = data.get(int(ref.item_id))
            if entry is None:
                continue  # expunged meanwhile
            raw = bytes(entry[b"BODY[]"])
            headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
            senders = _addresses([str(v) for v in headers.get_all("from") or []])
            recipients = _addresses(
                [str(v) for name in ("to", "cc", "bcc") for v in headers.get_all(name) or []]
            )
            subject = headers.get("subject")
            items.append(
                MailItem(
                    ref=ref,
                    raw=raw,
                    sender=senders[0] if senders else folder.mailbox,
                    recipients=recipients,
                    message_id=_message_id(raw[: raw.find(b"\r\n\r\n") + 2 or None]),
                    subject=None if subject is None else str(subject),
                )
            )
        return items

    def ensure_folder(self, mailbox: str, name: str) -> str:
        with self._session() as client:
            self.requests += 1
            if not client.folder_exists(name):
                self.requests += 1
                client.create_folder(name)
        return name

    def tag(self, folder: WatchedFolder, ref: ItemRef, tags: Sequence[str]) -> ItemRef:
        with self._session() as client:
            self._ensure_selected(client, folder.folder)
            self.requests += 1
            client.add_flags([int(ref.item_id)], [keyword(t).encode("ascii") for t in tags])
        return ref

    def move(self, folder: WatchedFolder, ref: ItemRef, target: str) -> str | None:
        with self._session() as client:
            self._ensure_selected(client, folder.folder)
            uid = int(ref.item_id)
            self.requests += 1
            if client.has_capability("MOVE"):
                client.move([uid], target)
            else:  # RFC 3501 fallback: copy, flag deleted, expunge just this UID
                client.copy([uid], target)
                client.delete_messages([uid])
                client.uid_expunge([uid])
        return None  # the new UID (COPYUID) is not needed: the target folder is not watched

    def wait_for_changes(self, folder: WatchedFolder, timeout: float) -> bool:
        """IDLE for up to ``timeout`` seconds on a connection of this folder's own (IDLE
        watches the selected folder only); True when the server announced new messages."""
        with self._idle_lock:
            lock = self._idle_locks.setdefault(folder.folder, threading.Lock())
        with lock:
            if self._closed:
                return False
            client = self._idle_clients.get(folder.folder)
            try:
                if client is None:
                    client = self._connect_fn(self.account)
                    client.select_folder(folder.folder, readonly=True)
                    self._idle_clients[folder.folder] = client
                if not client.has_capability("IDLE"):
                    return False
                client.idle()
                try:
                    responses = client.idle_check(timeout=timeout)
                finally:
                    client.idle_done()
            except (OSError, imapclient.exceptions.IMAPClientError, MaruhiError):
                # (_connect reports a refused or failed connection as a SourceError.)
                # A lost hint channel only costs latency: drop it, the interval poll goes on.
                self._idle_clients.pop(folder.folder, None)
                if client is not None:
                    with contextlib.suppress(Exception):  # best effort on a broken connection
                        client.shutdown()
                return False
            return any(len(r) > 1 and r[1] == b"EXISTS" for r in responses)

    def close(self) -> None:
        with self._lock:
            self._drop()
        with self._idle_lock:
            self._closed = True
            clients = list(self._idle_clients.values())
            self._idle_clients.clear()
        for client in clients:
            with contextlib.suppress(Exception):  # closing is best effort
                client.logout()


def _header_bytes(entry: dict[bytes, Any]) -> bytes:
    for key, value in entry.items():
        if key.startswith(b"BODY[HEADER.FIELDS"):
            return bytes(value)
    return b""


def _message_id(header: bytes) -> str | None:
    parsed = BytesHeaderParser(policy=default_policy).parsebytes(header)
    value = parsed.get("message-id")
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _connect(account: ImapAccount) -> imapclient.IMAPClient:
    context = None
    if account.tls in ("ssl", "starttls"):
        context = ssl.create_default_context(cafile=account.ca_file)
    try:
        client = imapclient.IMAPClient(
            account.host,
            port=account.port,
            ssl=account.tls == "ssl",
            ssl_context=context,
            timeout=account.timeout,
        )
        if account.tls == "starttls":
            client.starttls(context)
    except OSError as exc:  # includes timeouts and TLS failures
        raise SourceError(f"imap: cannot connect ({type(exc).__name__})") from exc
    try:
        client.login(account.username, account.password.reveal())
    except BaseException:
        with contextlib.suppress(Exception):  # do not leak the socket of a refused login
            client.shutdown()
        raise
    return client
