"""The EWS backend (Exchange Server SE on premises; Exchange Online where EWS is still allowed)
through exchangelib, which is synchronous: the loop calls it in a worker thread.

Owns one ``exchangelib.Account`` per mailbox with everything explicit — service endpoint (no
autodiscover), server version (no version-guessing probe), auth type (no auth-type probe),
``access_type`` (delegate or impersonation) — and the mapping of exchangelib's errors to the
poller's. The cursor is the ``SyncFolderItems`` sync state; one page per ``changes`` call, so the
loop commits progress page by page. GetItem is batched (one request per ``changes`` page).
Retry policy: ``FaultTolerance`` absorbs short ErrorServerBusy back-offs and outages (up to
``max_wait`` seconds), longer ones surface as ``ThrottledError``; a 401 is a credential failure
at once (exchangelib would otherwise treat it as throttling and retry until ``max_wait``).
It must not scan or decide. Hazard: exchangelib's exception texts can contain server responses;
only class names and status codes go into our errors.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests
from exchangelib import (  # type: ignore[import-untyped]
    DELEGATE,
    IMPERSONATION,
    Account,
    Build,
    Configuration,
    Credentials,
    FaultTolerance,
    Version,
)
from exchangelib import errors as ews_errors
from exchangelib.credentials import OAuth2Credentials  # type: ignore[import-untyped]
from exchangelib.fields import FieldPath  # type: ignore[import-untyped]
from exchangelib.folders import Drafts, Folder, Inbox, Outbox, SentItems  # type: ignore[import-untyped]
from exchangelib.items import Message  # type: ignore[import-untyped]
from exchangelib.services import SyncFolderItems  # type: ignore[import-untyped]
from exchangelib.transport import BASIC, NTLM, OAUTH2  # type: ignore[import-untyped]

from scanner.config import Secret
from scanner.poller.source import (
    Changes,
    CredentialError,
    CursorInvalidError,
    FolderKind,
    ItemRef,
    MailboxLocks,
    MailItem,
    MailSource,
    Recent,
    SourceError,
    ThrottledError,
    WatchedFolder,
)

_DISTINGUISHED: dict[str, type[Folder]] = {
    "sentitems": SentItems,
    "drafts": Drafts,
    "outbox": Outbox,
    "inbox": Inbox,  # a journal mailbox receives its reports here
}
_LIST_TYPES = ("PublicDL", "PrivateDL")
MAX_LIST_DEPTH = 3  # nested distribution lists expanded this deep (cycles are skipped)
MEMBERS_TTL = 3600.0  # seconds a list's membership is reused before ExpandDL is asked again
_AUTH = {"basic": BASIC, "ntlm": NTLM, "oauth2": OAUTH2}
_BUILDS = {"2013": Build(15, 0), "2016": Build(15, 1), "2019": Build(15, 2)}
_FETCH_FIELDS = [
    "mime_content",
    "subject",
    "message_id",
    "author",
    "to_recipients",
    "cc_recipients",
    "bcc_recipients",
    "categories",
]


@dataclass(frozen=True)
class EwsSettings:
    """How to reach EWS: endpoint, credentials and the choices exchangelib would otherwise guess."""

    endpoint: str  # https://mail.example.co.jp/EWS/Exchange.asmx
    username: str  # DOMAIN\\user or UPN (basic/ntlm); the app's client id (oauth2)
    secret: Secret  # password or client secret
    auth_type: str = "ntlm"  # basic | ntlm | oauth2 (client credentials)
    access_type: str = "delegate"  # delegate (service account has FullAccess) | impersonation
    version: str = "2016"  # 2013 | 2016 | 2019 (Exchange Server SE speaks 2019's EWS)
    tenant_id: str | None = None  # oauth2 only
    max_wait: float = 30.0  # longest FaultTolerance back-off inside one call (seconds)


class _Policy(FaultTolerance):  # type: ignore[misc]
    """FaultTolerance, except that a 401 means bad credentials, not "slow down"."""

    def raise_response_errors(self, response: requests.Response) -> None:
        if response.status_code == 401:
            raise ews_errors.UnauthorizedError(f"HTTP 401 from {response.url}")
        super().raise_response_errors(response)


def _map_errors(exc: BaseException) -> Exception:
    """exchangelib's error → ours; the new message names only the class."""
    name = type(exc).__name__
    if isinstance(exc, ews_errors.ErrorInvalidSyncStateData):
        return CursorInvalidError("ews: sync state no longer valid")
    if isinstance(exc, ews_errors.UnauthorizedError | ews_errors.ErrorAccessDenied):
        return CredentialError(f"ews: credentials or permissions rejected ({name})")
    if isinstance(exc, ews_errors.RateLimitError):
        # FaultTolerance gave up: the server asked for a longer pause than max_wait.
        return ThrottledError("ews: server busy", float(exc.wait or 60.0))
    if isinstance(exc, ews_errors.ErrorServerBusy):
        back_off = float(getattr(exc, "back_off", None) or 60.0)
        return ThrottledError("ews: server busy", back_off)
    if isinstance(exc, ews_errors.ErrorImpersonateUserDenied | ews_errors.ErrorNonExistentMailbox):
        return CredentialError(f"ews: cannot open the mailbox ({name})")
    return SourceError(f"ews: request failed ({name})")


def _raise_if_error(value: object) -> None:
    # exchangelib yields per-item errors as exception instances in bulk results.
    if isinstance(value, BaseException):
        raise value


class EwsSource(MailSource):
    """``MailSource`` over EWS for any number of mailboxes reachable with one service account."""

    name = "ews"

    def __init__(self, settings: EwsSettings) -> None:
        self.settings = settings
        self._lock = MailboxLocks()
        self._accounts: dict[str, Account] = {}
        self._folders: dict[tuple[str, str], Folder] = {}
        self._categories: Recent[list[str]] = Recent()  # item id → categories at fetch
        # list address → (when, (member, is a list) pairs), kept for MEMBERS_TTL seconds
        self._members: Recent[tuple[float, tuple[tuple[str, bool], ...]]] = Recent(cap=5_000)
        self._quarantine: dict[str, Folder] = {}  # folder id → folder (ensure_folder handles)

    # -- plumbing ------------------------------------------------------------------------------

    def _config(self) -> Configuration:
        s = self.settings
        credentials: Any
        if s.auth_type == "oauth2":
            credentials = OAuth2Credentials(
                client_id=s.username, client_secret=s.secret.reveal(), tenant_id=s.tenant_id
            )
        else:
            credentials = Credentials(s.username, s.secret.reveal())
        return Configuration(
            service_endpoint=s.endpoint,
            credentials=credentials,
            auth_type=_AUTH[s.auth_type],
            version=Version(build=_BUILDS[s.version]),
            retry_policy=_Policy(max_wait=s.max_wait),
        )

    def _account(self, mailbox: str) -> Account:
        account = self._accounts.get(mailbox)
        if account is None:
            account = Account(
                primary_smtp_address=mailbox,
                config=self._config(),
                autodiscover=False,
                access_type=IMPERSONATION
                if self.settings.access_type == "impersonation"
                else DELEGATE,
            )
            self._accounts[mailbox] = account
        return account

    def _folder(self, account: Account, mailbox: str, name: str) -> Folder:
        key = (mailbox, name)
        folder = self._folders.get(key)
        if folder is None:
            cls = _DISTINGUISHED.get(name.lower())
            folder = (
                account.root.get_default_folder(cls)
                if cls is not None
                else account.msg_folder_root / name
            )
            self._folders[key] = folder
        return folder

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (CursorInvalidError, CredentialError, SourceError):
            raise
        except ews_errors.EWSError as exc:
            raise _map_errors(exc) from exc
        except (requests.RequestException, OSError) as exc:
            raise SourceError(f"ews: connection failed ({type(exc).__name__})") from exc

    # -- MailSource ----------------------------------------------------------------------------

    def changes(self, folder: WatchedFolder, cursor: str | None, *, limit: int) -> Changes:
        with self._lock(folder.mailbox):
            return self._call(self._changes, folder, cursor, limit)  # type: ignore[no-any-return]

    def _changes(self, folder: WatchedFolder, cursor: str | None, limit: int) -> Changes:
        account = self._account(folder.mailbox)
        target = self._folder(account, folder.mailbox, folder.folder)
        svc = SyncFolderItems(account=account)
        fields = {
            FieldPath(field=Message.get_field_by_fieldname("message_id")),
        }
        refs: list[ItemRef] = []
        for change_type, item in svc.call(
            folder=target,
            shape="IdOnly",
            additional_fields=fields,
            sync_state=cursor,
            ignore=None,
            max_changes_returned=limit,
            sync_scope=None,
        ):
            _raise_if_error(item)
            if change_type == SyncFolderItems.UPDATE and folder.kind is FolderKind.DRAFTS:
                pass  # an edited draft must be checked again (the ledger keys it by content)
            elif change_type != SyncFolderItems.CREATE:
                continue  # sent mail does not change: updates are our own tags or read flags
            refs.append(
                ItemRef(
                    item.id, message_id=getattr(item, "message_id", None), change_key=item.changekey
                )
            )
        more = not svc.includes_last_item_in_range
        return Changes(tuple(refs), svc.sync_state, more)

    def fetch(self, folder: WatchedFolder, refs: Sequence[ItemRef]) -> list[MailItem]:
        if not refs:
            return []
        with self._lock(folder.mailbox):
            return self._call(self._fetch, folder, refs)  # type: ignore[no-any-return]

    def _fetch(self, folder: WatchedFolder, refs: Sequence[ItemRef]) -> list[MailItem]:
        account = self._account(folder.mailbox)
        target = self._folder(account, folder.mailbox, folder.folder)
        ids = [(r.item_id, r.change_key) for r in refs]
        # account.fetch batches GetItem (up to 100 ids per request) and keeps the order.
        results = list(
            account.fetch(ids=ids, folder=target, only_fields=_FETCH_FIELDS, chunk_size=len(ids))
        )
        items: list[MailItem] = []
        for ref, result in zip(refs, results, strict=True):
            if isinstance(result, ews_errors.ErrorItemNotFound):
                continue  # moved or deleted since the listing
            _raise_if_error(result)
            recipients: dict[str, None] = {}
            lists: dict[str, None] = {}
            for group in (result.to_recipients, result.cc_recipients, result.bcc_recipients):
                for mb in group or ():
                    if mb.email_address:
                        recipients.setdefault(mb.email_address, None)
                        if mb.mailbox_type in _LIST_TYPES:
                            lists.setdefault(mb.email_address, None)
            author = result.author.email_address if result.author else None
            self._categories[result.id] = list(result.categories or [])
            items.append(
                MailItem(
                    ref=ItemRef(result.id, ref.message_id or result.message_id, result.changekey),
                    raw=bytes(result.mime_content or b""),
                    sender=author or folder.mailbox,
                    recipients=tuple(recipients),
                    message_id=result.message_id,
                    subject=result.subject,
                    groups=tuple(lists),
                )
            )
        return items

    def expand(
        self, folder: WatchedFolder, item: MailItem, internal_domains: frozenset[str]
    ) -> dict[str, tuple[str, ...]]:
        if not item.groups:
            return {}
        with self._lock(folder.mailbox):
            return self._call(self._expand, folder.mailbox, item.groups)  # type: ignore[no-any-return]

    def _expand(self, mailbox: str, groups: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
        protocol = self._account(mailbox).protocol
        result: dict[str, tuple[str, ...]] = {}
        for group in groups:
            members: dict[str, None] = {}
            pending, seen = [(group, 0)], {group.lower()}
            while pending:
                current, depth = pending.pop(0)
                entry = self._members.get(current.lower())
                if entry is None or time.monotonic() - entry[0] > MEMBERS_TTL:
                    found = protocol.expand_dl(current)
                    entry = (
                        time.monotonic(),
                        tuple(
                            (m.email_address, m.mailbox_type in _LIST_TYPES)
                            for m in found
                            if not isinstance(m, BaseException) and m.email_address
                        ),
                    )
                    self._members[current.lower()] = entry
                cached = entry[1]
                for address, is_list in cached:
                    if is_list and depth < MAX_LIST_DEPTH and address.lower() not in seen:
                        seen.add(address.lower())
                        pending.append((address, depth + 1))  # nested list: expand it too
                    elif not is_list or depth >= MAX_LIST_DEPTH:
                        members.setdefault(address, None)
            result[group] = tuple(members)
        return result

    def ensure_folder(self, mailbox: str, name: str) -> str:
        with self._lock(mailbox):
            return self._call(self._ensure_folder, mailbox, name)  # type: ignore[no-any-return]

    def _ensure_folder(self, mailbox: str, name: str) -> str:
        account = self._account(mailbox)
        root = account.msg_folder_root
        try:
            folder = root / name
        except ews_errors.ErrorFolderNotFound:
            folder = Folder(parent=root, name=name)
            folder.save()
        self._quarantine[folder.id] = folder
        return str(folder.id)

    def tag(self, folder: WatchedFolder, ref: ItemRef, tags: Sequence[str]) -> ItemRef:
        with self._lock(folder.mailbox):
            return self._call(self._tag, folder, ref, tags)  # type: ignore[no-any-return]

    def _tag(self, folder: WatchedFolder, ref: ItemRef, tags: Sequence[str]) -> ItemRef:
        account = self._account(folder.mailbox)
        current = self._categories.get(ref.item_id, [])
        wanted = current + [t for t in tags if t not in current]
        if wanted == current:
            return ref  # already tagged (a re-checked draft): no write, no new change event
        msg = Message(account=account, id=ref.item_id, changekey=ref.change_key, categories=wanted)
        (result,) = account.bulk_update(items=[(msg, ["categories"])])
        _raise_if_error(result)
        item_id, change_key = result
        self._categories[item_id] = wanted
        return ItemRef(item_id, ref.message_id, change_key)

    def move(self, folder: WatchedFolder, ref: ItemRef, target: str) -> str | None:
        with self._lock(folder.mailbox):
            return self._call(self._move, folder, ref, target)  # type: ignore[no-any-return]

    def _move(self, folder: WatchedFolder, ref: ItemRef, target: str) -> str | None:
        account = self._account(folder.mailbox)
        (result,) = account.bulk_move(
            ids=[(ref.item_id, ref.change_key)], to_folder=self._quarantine[target]
        )
        _raise_if_error(result)
        new_id, _change_key = result
        self._categories.pop(ref.item_id, None)
        return str(new_id)  # MoveItem gives the item a new id in its new folder

    def close(self) -> None:
        for account in self._accounts.values():
            account.protocol.close()
        self._accounts.clear()
        self._folders.clear()
