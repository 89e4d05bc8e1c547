"""A STAND-IN for an Exchange EWS endpoint, built from the EWS schema — it is NOT Exchange.

No Exchange server can run here, so this small SOAP server (stdlib HTTP on 127.0.0.1, lxml)
answers exactly the operations that unmodified exchangelib sends for the poller, as captured in
``../shared/reference/ews-requests/``: GetFolder (distinguished ids and FolderIds), FindFolder,
CreateFolder, SyncFolderItems (sync states with an epoch, so a test can invalidate them:
ErrorInvalidSyncStateData), GetItem (MimeContent, recipients incl. Bcc, categories), GetAttachment,
UpdateItem (categories), MoveItem (the moved item gets a new id), FindItem; HTTP Basic with a 401
challenge for missing or wrong credentials; and an ErrorServerBusy SOAP fault carrying
BackOffMilliseconds when a test asks for throttling. Response shapes follow Microsoft's
messages.xsd/types.xsd element names; anything not needed by the poller answers
ErrorInvalidOperation rather than pretending. It counts requests per operation for the benchmark.
"""

from __future__ import annotations

import base64
import email
import email.utils
import itertools
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lxml import etree

S = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
E = "http://schemas.microsoft.com/exchange/services/2006/errors"
NSMAP = {"s": S, "m": M, "t": T}

# Distinguished folders a mailbox has, with display names (a real mailbox has ~50; the others
# answer ErrorFolderNotFound, which exchangelib handles as "this mailbox lacks it").
DISTINGUISHED = {
    "root": ("", None),
    "msgfolderroot": ("Top of Information Store", "root"),
    "inbox": ("Inbox", "msgfolderroot"),
    "outbox": ("Outbox", "msgfolderroot"),
    "sentitems": ("Sent Items", "msgfolderroot"),
    "drafts": ("Drafts", "msgfolderroot"),
    "deleteditems": ("Deleted Items", "msgfolderroot"),
}


def _req(parent: etree._Element, tag: str) -> etree._Element:
    """A child the schema makes mandatory; its absence is a malformed request."""
    found = parent.find(tag)
    if found is None:
        raise ValueError(f"malformed request: no {tag}")
    return found


def _b64id(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass
class EwsItem:
    id: str
    change: int
    mailbox: str
    folder_id: str
    mime: bytes
    subject: str
    message_id: str | None
    sender: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    categories: list[str] = field(default_factory=list)
    attachments: dict[str, bytes] = field(default_factory=dict)

    @property
    def change_key(self) -> str:
        return f"CK{self.change}"


@dataclass
class EwsFolder:
    id: str
    mailbox: str
    name: str
    parent_id: str | None
    distinguished: str | None
    epoch: int = 1
    log: list[tuple[int, str, str]] = field(default_factory=list)  # (seq, Create|Delete, item id)


class Mailboxes:
    """The server-side state: folders, items and per-folder change logs of every mailbox."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.folders: dict[str, EwsFolder] = {}
        self.items: dict[str, EwsItem] = {}
        self.by_distinguished: dict[tuple[str, str], str] = {}
        self.groups: dict[str, tuple[str, ...]] = {}  # distribution list → members
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)

    def _new_id(self, kind: str) -> str:
        return _b64id(f"{kind}-{next(self._ids)}")

    def ensure_mailbox(self, mailbox: str) -> None:
        with self.lock:
            if (mailbox, "root") in self.by_distinguished:
                return
            for name, (display, parent) in DISTINGUISHED.items():
                fid = self._new_id("F")
                parent_id = None if parent is None else self.by_distinguished[(mailbox, parent)]
                self.folders[fid] = EwsFolder(fid, mailbox, display, parent_id, name)
                self.by_distinguished[(mailbox, name)] = fid

    def folder(self, mailbox: str, distinguished: str) -> EwsFolder:
        self.ensure_mailbox(mailbox)
        return self.folders[self.by_distinguished[(mailbox, distinguished)]]

    def folder_named(self, mailbox: str, name: str) -> EwsFolder | None:
        with self.lock:
            for f in self.folders.values():
                if f.mailbox == mailbox and (f.name == name or f.distinguished == name):
                    return f
            return None

    def add_item(self, folder: EwsFolder, item: EwsItem) -> EwsItem:
        with self.lock:
            self.items[item.id] = item
            folder.log.append((next(self._seq), "Create", item.id))
            return item

    def create_item(
        self,
        mailbox: str,
        folder: EwsFolder,
        mime: bytes,
        *,
        subject: str,
        message_id: str | None,
        sender: str,
        to: tuple[str, ...],
        cc: tuple[str, ...] = (),
        bcc: tuple[str, ...] = (),
    ) -> EwsItem:
        item = EwsItem(
            self._new_id("I"), 1, mailbox, folder.id, mime, subject, message_id, sender, to, cc, bcc
        )
        return self.add_item(folder, item)

    def update(self, item_id: str, mime: bytes | None = None) -> EwsItem:
        """A changed item keeps its id, gets a new change key and an Update in the sync log."""
        with self.lock:
            item = self.items[item_id]
            if mime is not None:
                item.mime = mime
            item.change += 1
            self.folders[item.folder_id].log.append((next(self._seq), "Update", item.id))
            return item

    def move(self, item_id: str, target: EwsFolder) -> EwsItem:
        """EWS semantics: a moved item is a new item with a new id; the old id is gone."""
        with self.lock:
            old = self.items.pop(item_id)
            self.folders[old.folder_id].log.append((next(self._seq), "Delete", old.id))
            new = EwsItem(
                **{**old.__dict__, "id": self._new_id("I"), "folder_id": target.id, "change": 1}
            )
            return self.add_item(target, new)

    def invalidate_sync_states(self) -> None:
        with self.lock:
            for f in self.folders.values():
                f.epoch += 1


class EwsStandIn:
    """The HTTP server; ``url`` is the EWS endpoint to configure in exchangelib."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self.state = Mailboxes()
        self.requests: Counter[str] = Counter()
        self.fetched_mime: Counter[str] = Counter()  # message id → MIME fetches (bench check)
        self.throttle_remaining = 0
        self.throttle_ms = 1000
        self.down = False
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/EWS/Exchange.asmx"

    def start(self) -> EwsStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def throttle(self, count: int, back_off_ms: int) -> None:
        self.throttle_remaining, self.throttle_ms = count, back_off_ms

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are separate writes: without this, Nagle + delayed ACK add
            # 40 ms to every keep-alive request and the benchmark measures the kernel.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: pytest output stays readable

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if not server._authorized(self.headers.get("Authorization")):
                    server.requests["401"] += 1
                    self._send(401, b"", {"WWW-Authenticate": 'Basic realm="ews-stand-in"'})
                    return
                status, payload = server.dispatch(body)
                self._send(status, payload, {"Content-Type": "text/xml; charset=utf-8"})

            def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return self.users.get(user) == password

    # -- SOAP ----------------------------------------------------------------------------------

    def dispatch(self, body: bytes) -> tuple[int, bytes]:
        request = etree.fromstring(body)
        operation = _req(request, f"{{{S}}}Body")[0]
        name = etree.QName(operation).localname
        self.requests[name] += 1
        if self.throttle_remaining > 0:
            self.throttle_remaining -= 1
            return 500, self._busy_fault()
        impersonated = request.findtext(
            f".//{{{T}}}ExchangeImpersonation//{{{T}}}PrimarySmtpAddress"
        )
        handler = getattr(self, f"op_{name}", None)
        response = etree.Element(f"{{{M}}}{name}Response", nsmap=NSMAP)
        messages = etree.SubElement(response, f"{{{M}}}ResponseMessages")
        if handler is None:
            self._error(messages, name, "ErrorInvalidOperation")
        else:
            handler(operation, messages, impersonated)
        return 200, self._envelope(response)

    def _envelope(self, content: etree._Element) -> bytes:
        env = etree.Element(f"{{{S}}}Envelope", nsmap=NSMAP)
        header = etree.SubElement(env, f"{{{S}}}Header")
        etree.SubElement(
            header,
            f"{{{T}}}ServerVersionInfo",
            MajorVersion="15",
            MinorVersion="1",
            MajorBuildNumber="2507",
            MinorBuildNumber="6",
            Version="V2017_07_11",
        )
        etree.SubElement(env, f"{{{S}}}Body").append(content)
        return bytes(etree.tostring(env, xml_declaration=True, encoding="utf-8"))

    def _busy_fault(self) -> bytes:
        env = etree.Element(f"{{{S}}}Envelope", nsmap={"s": S})
        fault = etree.SubElement(etree.SubElement(env, f"{{{S}}}Body"), f"{{{S}}}Fault")
        etree.SubElement(fault, "faultcode").text = "a:ErrorServerBusy"
        etree.SubElement(
            fault, "faultstring"
        ).text = "The server cannot service this request right now. Try again later."
        detail = etree.SubElement(fault, "detail")
        etree.SubElement(detail, f"{{{E}}}ResponseCode", nsmap={"e": E}).text = "ErrorServerBusy"
        etree.SubElement(
            detail, f"{{{E}}}Message", nsmap={"e": E}
        ).text = "The server cannot service this request right now. Try again later."
        xml = etree.SubElement(detail, f"{{{T}}}MessageXml", nsmap={"t": T})
        etree.SubElement(xml, f"{{{T}}}Value", Name="BackOffMilliseconds").text = str(
            self.throttle_ms
        )
        return bytes(etree.tostring(env, xml_declaration=True, encoding="utf-8"))

    @staticmethod
    def _message(messages: etree._Element, op: str, ok: bool = True) -> etree._Element:
        return etree.SubElement(
            messages, f"{{{M}}}{op}ResponseMessage", ResponseClass="Success" if ok else "Error"
        )

    def _error(self, messages: etree._Element, op: str, code: str) -> None:
        msg = self._message(messages, op, ok=False)
        etree.SubElement(msg, f"{{{M}}}MessageText").text = code
        etree.SubElement(msg, f"{{{M}}}ResponseCode").text = code
        etree.SubElement(msg, f"{{{M}}}DescriptiveLinkKey").text = "0"

    def _ok(self, messages: etree._Element, op: str) -> etree._Element:
        msg = self._message(messages, op)
        etree.SubElement(msg, f"{{{M}}}ResponseCode").text = "NoError"
        return msg

    # -- folders -------------------------------------------------------------------------------

    def _resolve_folder(self, elem: etree._Element, impersonated: str | None) -> EwsFolder | None:
        if etree.QName(elem).localname == "DistinguishedFolderId":
            mailbox = elem.findtext(f"{{{T}}}Mailbox/{{{T}}}EmailAddress") or impersonated
            if mailbox is None or elem.get("Id") not in DISTINGUISHED:
                return None
            return self.state.folder(mailbox, elem.get("Id", ""))
        return self.state.folders.get(elem.get("Id", ""))

    def _folder_xml(self, parent: etree._Element, f: EwsFolder) -> None:
        el = etree.SubElement(parent, f"{{{T}}}Folder")
        etree.SubElement(el, f"{{{T}}}FolderId", Id=f.id, ChangeKey="CK1")
        if f.parent_id:
            etree.SubElement(el, f"{{{T}}}ParentFolderId", Id=f.parent_id, ChangeKey="CK1")
        etree.SubElement(el, f"{{{T}}}FolderClass").text = "IPF.Note"
        etree.SubElement(el, f"{{{T}}}DisplayName").text = f.name
        if f.distinguished:
            etree.SubElement(el, f"{{{T}}}DistinguishedFolderId").text = f.distinguished
        count = sum(1 for i in self.state.items.values() if i.folder_id == f.id)
        children = sum(1 for c in self.state.folders.values() if c.parent_id == f.id)
        etree.SubElement(el, f"{{{T}}}TotalCount").text = str(count)
        etree.SubElement(el, f"{{{T}}}ChildFolderCount").text = str(children)
        etree.SubElement(el, f"{{{T}}}UnreadCount").text = "0"

    def op_GetFolder(
        self,
        op: etree._Element,
        messages: etree._Element,
        impersonated: str | None,
    ) -> None:
        for ref in _req(op, f"{{{M}}}FolderIds"):
            folder = self._resolve_folder(ref, impersonated)
            if folder is None:
                self._error(messages, "GetFolder", "ErrorFolderNotFound")
                continue
            msg = self._ok(messages, "GetFolder")
            self._folder_xml(etree.SubElement(msg, f"{{{M}}}Folders"), folder)

    def op_FindFolder(
        self,
        op: etree._Element,
        messages: etree._Element,
        impersonated: str | None,
    ) -> None:
        deep = op.get("Traversal") == "Deep"
        for ref in _req(op, f"{{{M}}}ParentFolderIds"):
            parent = self._resolve_folder(ref, impersonated)
            if parent is None:
                self._error(messages, "FindFolder", "ErrorFolderNotFound")
                continue
            found: list[EwsFolder] = []
            frontier = [parent.id]
            while frontier:
                pid = frontier.pop(0)
                kids = [f for f in self.state.folders.values() if f.parent_id == pid]
                found += kids
                if deep:
                    frontier += [k.id for k in kids]
            msg = self._ok(messages, "FindFolder")
            root = etree.SubElement(
                msg,
                f"{{{M}}}RootFolder",
                IndexedPagingOffset=str(len(found)),
                TotalItemsInView=str(len(found)),
                IncludesLastItemInRange="true",
            )
            folders = etree.SubElement(root, f"{{{T}}}Folders")
            for f in found:
                self._folder_xml(folders, f)

    def op_CreateFolder(
        self,
        op: etree._Element,
        messages: etree._Element,
        impersonated: str | None,
    ) -> None:
        parent = self._resolve_folder(_req(op, f"{{{M}}}ParentFolderId")[0], impersonated)
        if parent is None:
            self._error(messages, "CreateFolder", "ErrorFolderNotFound")
            return
        for spec in _req(op, f"{{{M}}}Folders"):
            name = spec.findtext(f"{{{T}}}DisplayName") or ""
            if self.state.folder_named(parent.mailbox, name):
                self._error(messages, "CreateFolder", "ErrorFolderExists")
                continue
            with self.state.lock:
                fid = self.state._new_id("F")
                folder = EwsFolder(fid, parent.mailbox, name, parent.id, None)
                self.state.folders[fid] = folder
            msg = self._ok(messages, "CreateFolder")
            el = etree.SubElement(etree.SubElement(msg, f"{{{M}}}Folders"), f"{{{T}}}Folder")
            etree.SubElement(el, f"{{{T}}}FolderId", Id=fid, ChangeKey="CK1")

    # -- items ---------------------------------------------------------------------------------

    @staticmethod
    def _wanted(op: etree._Element) -> set[str]:
        return {f.get("FieldURI", "") for f in op.iter(f"{{{T}}}FieldURI")}

    def _item_xml(self, parent: etree._Element, item: EwsItem, fields: set[str]) -> None:
        el = etree.SubElement(parent, f"{{{T}}}Message")
        if "item:MimeContent" in fields:
            self.fetched_mime[item.message_id or item.id] += 1
            etree.SubElement(
                el, f"{{{T}}}MimeContent", CharacterSet="UTF-8"
            ).text = base64.b64encode(item.mime).decode()
        etree.SubElement(el, f"{{{T}}}ItemId", Id=item.id, ChangeKey=item.change_key)
        if "item:Subject" in fields:
            etree.SubElement(el, f"{{{T}}}Subject").text = item.subject
        if "item:Categories" in fields and item.categories:
            cats = etree.SubElement(el, f"{{{T}}}Categories")
            for c in item.categories:
                etree.SubElement(cats, f"{{{T}}}String").text = c
        if "item:Attachments" in fields and item.attachments:
            atts = etree.SubElement(el, f"{{{T}}}Attachments")
            for aid, _ in item.attachments.items():
                fa = etree.SubElement(atts, f"{{{T}}}FileAttachment")
                etree.SubElement(fa, f"{{{T}}}AttachmentId", Id=aid)
        for uri, tag, values in (
            ("message:ToRecipients", "ToRecipients", item.to),
            ("message:CcRecipients", "CcRecipients", item.cc),
            ("message:BccRecipients", "BccRecipients", item.bcc),
        ):
            if uri in fields and values:
                box = etree.SubElement(el, f"{{{T}}}{tag}")
                for address in values:
                    kind = "PublicDL" if address in self.state.groups else "OneOff"
                    self._mailbox_xml(box, address, kind)
        if "message:From" in fields:
            self._mailbox_xml(etree.SubElement(el, f"{{{T}}}From"), item.sender)
        if "message:InternetMessageId" in fields and item.message_id:
            etree.SubElement(el, f"{{{T}}}InternetMessageId").text = item.message_id

    @staticmethod
    def _mailbox_xml(parent: etree._Element, address: str, kind: str = "OneOff") -> None:
        mb = etree.SubElement(parent, f"{{{T}}}Mailbox")
        etree.SubElement(mb, f"{{{T}}}EmailAddress").text = address
        etree.SubElement(mb, f"{{{T}}}RoutingType").text = "SMTP"
        etree.SubElement(mb, f"{{{T}}}MailboxType").text = kind

    def op_ExpandDL(
        self, op: etree._Element, messages: etree._Element, impersonated: str | None
    ) -> None:
        """One level, as Exchange does: nested lists come back with MailboxType PublicDL."""
        address = op.findtext(f".//{{{T}}}EmailAddress") or ""
        members = self.state.groups.get(address)
        if members is None:
            self._error(messages, "ExpandDL", "ErrorNameResolutionNoResults")
            return
        msg = self._ok(messages, "ExpandDL")
        expansion = etree.SubElement(
            msg,
            f"{{{M}}}DLExpansion",
            TotalItemsInView=str(len(members)),
            IncludesLastItemInRange="true",
        )
        for member in members:
            kind = "PublicDL" if member in self.state.groups else "Mailbox"
            self._mailbox_xml(expansion, member, kind)

    def op_SyncFolderItems(
        self,
        op: etree._Element,
        messages: etree._Element,
        impersonated: str | None,
    ) -> None:
        folder = self._resolve_folder(_req(op, f"{{{M}}}SyncFolderId")[0], impersonated)
        if folder is None:
            self._error(messages, "SyncFolderItems", "ErrorFolderNotFound")
            return
        state = op.findtext(f"{{{M}}}SyncState")
        limit = int(op.findtext(f"{{{M}}}MaxChangesReturned") or "100")
        after = 0
        if state:
            try:
                fid, epoch, seq = base64.b64decode(state).decode().split(":")
                if fid != folder.id or int(epoch) != folder.epoch:
                    raise ValueError("stale")
                after = int(seq)
            except ValueError:
                self._error(messages, "SyncFolderItems", "ErrorInvalidSyncStateData")
                # Exchange keeps the (empty) sync elements in an error message, and exchangelib
                # reads them before it looks at the ResponseCode.
                msg = messages[-1]
                etree.SubElement(msg, f"{{{M}}}SyncState")
                etree.SubElement(msg, f"{{{M}}}IncludesLastItemInRange").text = "true"
                return
        fields = self._wanted(op)
        with self.state.lock:
            pending = [entry for entry in folder.log if entry[0] > after]
            if not state:
                # A first sync reports what is in the folder now, not its history.
                pending = [e for e in pending if e[1] == "Create" and e[2] in self.state.items]
            page = pending[:limit]
            msg = self._ok(messages, "SyncFolderItems")
            last = page[-1][0] if page else after
            etree.SubElement(msg, f"{{{M}}}SyncState").text = base64.b64encode(
                f"{folder.id}:{folder.epoch}:{last}".encode()
            ).decode()
            etree.SubElement(msg, f"{{{M}}}IncludesLastItemInRange").text = (
                "true" if len(pending) <= limit else "false"
            )
            changes = etree.SubElement(msg, f"{{{M}}}Changes")
            for _seq, kind, item_id in page:
                item = self.state.items.get(item_id)
                if (
                    kind in ("Create", "Update")
                    and item is not None
                    and item.folder_id == folder.id
                ):
                    self._item_xml(etree.SubElement(changes, f"{{{T}}}{kind}"), item, fields)
                elif kind == "Delete":
                    d = etree.SubElement(changes, f"{{{T}}}Delete")
                    etree.SubElement(d, f"{{{T}}}ItemId", Id=item_id, ChangeKey="CK0")

    def op_ConvertId(
        self, op: etree._Element, messages: etree._Element, impersonated: str | None
    ) -> None:
        """Only as exchangelib's version probe uses it (a dummy id): the error Exchange gives,
        with the ServerVersionInfo header the probe actually reads."""
        for _ in _req(op, f"{{{M}}}SourceIds"):
            self._error(messages, "ConvertId", "ErrorInvalidIdMalformed")

    def op_CreateItem(
        self, op: etree._Element, messages: etree._Element, impersonated: str | None
    ) -> None:
        """SaveOnly of a message given as MimeContent (how the captured run filled Sent Items)."""
        target = op.find(f"{{{M}}}SavedItemFolderId")
        folder = None if target is None else self._resolve_folder(target[0], impersonated)
        for spec in _req(op, f"{{{M}}}Items"):
            mime_text = spec.findtext(f"{{{T}}}MimeContent")
            if folder is None or mime_text is None:
                self._error(messages, "CreateItem", "ErrorInvalidRequest")
                continue
            mime = base64.b64decode(mime_text)
            parsed = email.message_from_bytes(mime)
            addresses = {
                k: tuple(a for _, a in email.utils.getaddresses(parsed.get_all(k) or []) if a)
                for k in ("To", "Cc", "Bcc", "From")
            }
            item = self.state.create_item(
                folder.mailbox,
                folder,
                mime,
                subject=str(parsed.get("Subject", "")),
                message_id=parsed.get("Message-ID"),
                sender=(addresses["From"] or (folder.mailbox,))[0],
                to=addresses["To"],
                cc=addresses["Cc"],
                bcc=addresses["Bcc"],
            )
            msg = self._ok(messages, "CreateItem")
            el = etree.SubElement(etree.SubElement(msg, f"{{{M}}}Items"), f"{{{T}}}Message")
            etree.SubElement(el, f"{{{T}}}ItemId", Id=item.id, ChangeKey=item.change_key)

    def op_GetItem(
        self,
        op: etree._Element,
        messages: etree._Element,
        impersonated: str | None,
    ) -> None:
        fields = self._wanted(op)
        for ref in _req(op, f"{{{M}}}ItemIds"):
            item = self.state.items.get(ref.get("Id", ""))
            if item is None:
                self._error(messages, "GetItem", "ErrorItemNotFound")
                continue
            msg = self._ok(messages, "GetItem")
            self._item_xml(etree.SubElement(msg, f"{{{M}}}Items"), item, fields)

    def op_FindItem(
        self,
        op: etree._Element,
        messages: etree._Element,
        impersonated: str | None,
    ) -> None:
        fields = self._wanted(op)
        for ref in _req(op, f"{{{M}}}ParentFolderIds"):
            folder = self._resolve_folder(ref, impersonated)
            if folder is None:
                self._error(messages, "FindItem", "ErrorFolderNotFound")
                continue
            found = [i for i in self.state.items.values() if i.folder_id == folder.id]
            msg = self._ok(messages, "FindItem")
            root = etree.SubElement(
                msg,
                f"{{{M}}}RootFolder",
                IndexedPagingOffset=str(len(found)),
                TotalItemsInView=str(len(found)),
                IncludesLastItemInRange="true",
            )
            items = etree.SubElement(root, f"{{{T}}}Items")
            for item in found:
                self._item_xml(items, item, fields)

    def op_GetAttachment(
        self,
        op: etree._Element,
        messages: etree._Element,
        impersonated: str | None,
    ) -> None:
        for ref in _req(op, f"{{{M}}}AttachmentIds"):
            aid = ref.get("Id", "")
            content = next(
                (i.attachments[aid] for i in self.state.items.values() if aid in i.attachments),
                None,
            )
            if content is None:
                self._error(messages, "GetAttachment", "ErrorInvalidIdNotAnItemAttachmentId")
                continue
            msg = self._ok(messages, "GetAttachment")
            fa = etree.SubElement(
                etree.SubElement(msg, f"{{{M}}}Attachments"), f"{{{T}}}FileAttachment"
            )
            etree.SubElement(fa, f"{{{T}}}AttachmentId", Id=aid)
            etree.SubElement(fa, f"{{{T}}}Content").text = base64.b64encode(content).decode()

    def op_UpdateItem(
        self,
        op: etree._Element,
        messages: etree._Element,
        impersonated: str | None,
    ) -> None:
        for change in op.iter(f"{{{T}}}ItemChange"):
            ref = _req(change, f"{{{T}}}ItemId")
            item = self.state.items.get(ref.get("Id", ""))
            if item is None:
                self._error(messages, "UpdateItem", "ErrorItemNotFound")
                continue
            if ref.get("ChangeKey") not in (None, item.change_key):
                self._error(messages, "UpdateItem", "ErrorIrresolvableConflict")
                continue
            for update in _req(change, f"{{{T}}}Updates"):
                uri = update.find(f"{{{T}}}FieldURI")
                if uri is None or uri.get("FieldURI") != "item:Categories":
                    continue  # the poller only ever sets categories
                if etree.QName(update).localname == "DeleteItemField":
                    item.categories = []
                else:
                    item.categories = [s.text or "" for s in update.iter(f"{{{T}}}String")]
            self.state.update(item.id)
            msg = self._ok(messages, "UpdateItem")
            el = etree.SubElement(etree.SubElement(msg, f"{{{M}}}Items"), f"{{{T}}}Message")
            etree.SubElement(el, f"{{{T}}}ItemId", Id=item.id, ChangeKey=item.change_key)
            conflicts = etree.SubElement(msg, f"{{{M}}}ConflictResults")
            etree.SubElement(conflicts, f"{{{T}}}Count").text = "0"

    def op_MoveItem(
        self,
        op: etree._Element,
        messages: etree._Element,
        impersonated: str | None,
    ) -> None:
        target = self._resolve_folder(_req(op, f"{{{M}}}ToFolderId")[0], impersonated)
        for ref in _req(op, f"{{{M}}}ItemIds"):
            if target is None or ref.get("Id", "") not in self.state.items:
                self._error(messages, "MoveItem", "ErrorItemNotFound")
                continue
            new = self.state.move(ref.get("Id", ""), target)
            msg = self._ok(messages, "MoveItem")
            el = etree.SubElement(etree.SubElement(msg, f"{{{M}}}Items"), f"{{{T}}}Message")
            etree.SubElement(el, f"{{{T}}}ItemId", Id=new.id, ChangeKey=new.change_key)
