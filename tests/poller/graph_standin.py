"""A STAND-IN for Microsoft Graph mail and the Entra ID token endpoint — it is NOT Microsoft's
service: a small JSON-over-HTTPS server on 127.0.0.1 (trustme CA) built from the Graph v1.0
documentation, for the calls the poller makes: OpenID discovery and the client-credentials
token request (what msal sends), ``messages/delta`` per folder with ``@odata.nextLink`` /
``@odata.deltaLink`` paging (``Prefer: odata.maxpagesize``), JSON ``$batch`` with base64 bodies
for ``$value``, message GET/PATCH (categories), ``/move`` (new id), mailFolders list/filter/create,
429 with ``Retry-After`` on request and 410 Gone for a delta token the test invalidated.
It counts requests per route for the benchmark.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import ssl
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import trustme

WELL_KNOWN = {"sentitems": "Sent Items", "drafts": "Drafts", "inbox": "Inbox"}


@dataclass
class GraphMessage:
    id: str
    mailbox: str
    folder_id: str
    mime: bytes
    props: dict[str, Any]
    categories: list[str] = field(default_factory=list)


@dataclass
class GraphFolder:
    id: str
    mailbox: str
    name: str
    well_known: str | None
    epoch: int = 1
    log: list[tuple[int, str, str]] = field(default_factory=list)  # (seq, created|removed, id)


def _recipients(addresses: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"emailAddress": {"name": "", "address": a}} for a in addresses]


class GraphStandIn:
    """HTTPS server; ``graph_url`` and ``authority_host`` go into ``GraphSettings``."""

    def __init__(self, tenant: str, client_id: str, client_secret: str, tmp: Path) -> None:
        self.tenant, self.client_id, self.client_secret = tenant, client_id, client_secret
        self.lock = threading.RLock()
        self.folders: dict[str, GraphFolder] = {}
        self.messages: dict[str, GraphMessage] = {}
        self.tokens: set[str] = set()
        self.groups: dict[str, tuple[str, ...]] = {}  # group mail → members (mails)
        self.requests: Counter[str] = Counter()
        self.fetched_mime: Counter[str] = Counter()
        self.throttle_remaining = 0
        self.retry_after = "1"
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        ca = trustme.CA()
        self.ca_file = tmp / "graph-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def graph_url(self) -> str:
        return f"{self.base}/v1.0"

    def start(self) -> GraphStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- state ---------------------------------------------------------------------------------

    def _new_id(self, kind: str) -> str:
        return f"{kind}{next(self._ids):06d}-{secrets.token_hex(4)}"

    def ensure_mailbox(self, mailbox: str) -> None:
        with self.lock:
            for wk, name in WELL_KNOWN.items():
                if self.folder(mailbox, wk) is None:
                    fid = self._new_id("F")
                    self.folders[fid] = GraphFolder(fid, mailbox, name, wk)

    def folder(self, mailbox: str, ref: str) -> GraphFolder | None:
        with self.lock:
            for f in self.folders.values():
                if f.mailbox == mailbox and ref in (f.id, f.well_known, f.name):
                    return f
            return None

    def add_message(
        self,
        mailbox: str,
        folder: GraphFolder,
        mime: bytes,
        *,
        subject: str,
        message_id: str | None,
        sender: str,
        to: tuple[str, ...],
        cc: tuple[str, ...],
        bcc: tuple[str, ...],
    ) -> GraphMessage:
        props = {
            "subject": subject,
            "internetMessageId": message_id,
            "from": {"emailAddress": {"address": sender}},
            "toRecipients": _recipients(to),
            "ccRecipients": _recipients(cc),
            "bccRecipients": _recipients(bcc),
        }
        with self.lock:
            msg = GraphMessage(self._new_id("M"), mailbox, folder.id, mime, props)
            self.messages[msg.id] = msg
            folder.log.append((next(self._seq), "created", msg.id))
            return msg

    def update(self, mid: str, mime: bytes | None = None) -> None:
        """A changed message keeps its id and shows up again in the folder's delta."""
        with self.lock:
            msg = self.messages[mid]
            if mime is not None:
                msg.mime = mime
            self.folders[msg.folder_id].log.append((next(self._seq), "updated", msg.id))

    def invalidate(self) -> None:
        with self.lock:
            for f in self.folders.values():
                f.epoch += 1

    # -- HTTP ----------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are separate writes: without this, Nagle + delayed ACK add
            # 40 ms to every keep-alive request and the benchmark measures the kernel.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def do_GET(self) -> None:
                self._dispatch("GET", b"")

            def do_POST(self) -> None:
                self._dispatch("POST", self._body())

            def do_PATCH(self) -> None:
                self._dispatch("PATCH", self._body())

            def _dispatch(self, method: str, body: bytes) -> None:
                status, payload, headers = server.handle(
                    method, self.path, dict(self.headers), body
                )
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                ctype = (
                    "application/octet-stream"
                    if isinstance(payload, bytes)
                    else ("application/json")
                )
                self.send_header("Content-Type", ctype)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(path)
        route = parts.path
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if route.endswith("/v2.0/.well-known/openid-configuration"):
            self.requests["openid"] += 1
            return 200, self._openid(), {}
        if route.endswith("/oauth2/v2.0/token"):
            self.requests["token"] += 1
            return self._token(body)
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            self.requests["401"] += 1
            return 401, {"error": {"code": "InvalidAuthenticationToken"}}, {}
        if self.throttle_remaining > 0:
            self.throttle_remaining -= 1
            self.requests["429"] += 1
            return 429, {"error": {"code": "TooManyRequests"}}, {"Retry-After": self.retry_after}
        if not route.startswith("/v1.0/"):
            return 404, {"error": {"code": "NotFound"}}, {}
        return self.route(method, route[len("/v1.0") :], query, headers, body)

    def _openid(self) -> dict[str, Any]:
        base = f"{self.base}/{self.tenant}"
        return {
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code", "token"],
        }

    def _token(self, body: bytes) -> tuple[int, Any, dict[str, str]]:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return (
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                },
                {},
            )
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return 200, {"token_type": "Bearer", "expires_in": 3599, "access_token": token}, {}

    def route(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        m = re.fullmatch(r"/users/([^/]+)/mailFolders/([^/]+)/messages/delta", path)
        if m and method == "GET":
            self.requests["delta"] += 1
            prefer = headers.get("Prefer", "")
            size = int(prefer.partition("=")[2]) if "maxpagesize" in prefer else 10
            return self._delta(unquote(m[1]), unquote(m[2]), query, size)
        if path == "/$batch" and method == "POST":
            self.requests["batch"] += 1
            return (
                200,
                {"responses": [self._batch_one(r) for r in json.loads(body)["requests"]]},
                {},
            )
        if path == "/groups" and method == "GET":
            self.requests["groups"] += 1
            m = re.fullmatch(r"mail eq '(.*)'", query.get("$filter", ""))
            mail = m[1].replace("''", "'") if m else ""
            found = [{"id": f"G-{mail}"}] if mail in self.groups else []
            return 200, {"value": found}, {}
        m = re.fullmatch(r"/groups/G-([^/]+)/transitiveMembers", path)
        if m and method == "GET":
            self.requests["members"] += 1
            return 200, {"value": self._transitive(unquote(m[1]))}, {}
        m = re.fullmatch(r"/users/([^/]+)/mailFolders", path)
        if m:
            return self._folders(method, unquote(m[1]), query, body)
        m = re.fullmatch(r"/users/([^/]+)/messages/([^/]+)/move", path)
        if m and method == "POST":
            self.requests["move"] += 1
            return self._move(unquote(m[2]), json.loads(body)["destinationId"])
        m = re.fullmatch(r"/users/([^/]+)/messages/([^/]+)", path)
        if m:
            return self._message(method, unquote(m[2]), body)
        return 404, {"error": {"code": "NotFound"}}, {}

    def _transitive(self, group: str) -> list[dict[str, Any]]:
        """Members of nested groups too, and the nested groups themselves (as Graph does)."""
        out: list[dict[str, Any]] = []
        pending, seen = [group], {group}
        while pending:
            for member in self.groups.get(pending.pop(0), ()):
                if member in self.groups:
                    out.append({"@odata.type": "#microsoft.graph.group", "mail": member})
                    if member not in seen:
                        seen.add(member)
                        pending.append(member)
                else:
                    out.append({"@odata.type": "#microsoft.graph.user", "mail": member})
        return out

    def _delta(
        self, mailbox: str, folder_ref: str, query: dict[str, str], size: int
    ) -> tuple[int, Any, dict[str, str]]:
        folder = self.folder(mailbox, folder_ref)
        if folder is None:
            return 404, {"error": {"code": "ErrorItemNotFound"}}, {}
        token = query.get("$skiptoken") or query.get("$deltatoken")
        after, first = 0, token is None
        if token:
            fid, epoch, seq, initial = base64.urlsafe_b64decode(token).decode().split(":")
            if fid != folder.id or int(epoch) != folder.epoch:
                return 410, {"error": {"code": "SyncStateNotFound"}}, {}
            after, first = int(seq), initial == "1" and "$skiptoken" in query
        with self.lock:
            pending = [e for e in folder.log if e[0] > after]
            if first:
                # The initial round reports what is in the folder, not its history.
                pending = [
                    e
                    for e in pending
                    if e[1] == "created"
                    and self.messages.get(e[2])
                    and self.messages[e[2]].folder_id == folder.id
                ]
            page = pending[:size]
            last = page[-1][0] if page else after
            values: list[dict[str, Any]] = []
            for _seq, kind, mid in page:
                msg = self.messages.get(mid)
                if (
                    kind in ("created", "updated")
                    and msg is not None
                    and msg.folder_id == folder.id
                ):
                    values.append({"id": msg.id, **msg.props, "categories": msg.categories})
                elif kind == "removed":
                    values.append({"id": mid, "@removed": {"reason": "deleted"}})
        more = len(pending) > size
        link_token = base64.urlsafe_b64encode(
            f"{folder.id}:{folder.epoch}:{last}:{1 if first else 0}".encode()
        ).decode()
        base = f"{self.graph_url}/users/{mailbox}/mailFolders/{folder_ref}/messages/delta"
        result: dict[str, Any] = {"value": values}
        if more:
            result["@odata.nextLink"] = f"{base}?$skiptoken={link_token}"
        else:
            result["@odata.deltaLink"] = f"{base}?$deltatoken={link_token}"
        return 200, result, {}

    def _batch_one(self, req: dict[str, Any]) -> dict[str, Any]:
        m = re.fullmatch(r"/users/([^/]+)/messages/([^/]+)/\$value", req["url"])
        if not m or req["method"] != "GET":
            return {"id": req["id"], "status": 400, "body": {"error": {"code": "BadRequest"}}}
        msg = self.messages.get(unquote(m[2]))
        if msg is None:
            return {
                "id": req["id"],
                "status": 404,
                "body": {"error": {"code": "ErrorItemNotFound"}},
            }
        self.fetched_mime[msg.props.get("internetMessageId") or msg.id] += 1
        return {
            "id": req["id"],
            "status": 200,
            "headers": {"Content-Type": "text/plain"},
            "body": base64.b64encode(msg.mime).decode(),
        }

    def _folders(
        self, method: str, mailbox: str, query: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        self.requests[f"folders-{method}"] += 1
        if method == "POST":
            name = json.loads(body)["displayName"]
            with self.lock:
                fid = self._new_id("F")
                self.folders[fid] = GraphFolder(fid, mailbox, name, None)
            return 201, {"id": fid, "displayName": name}, {}
        wanted = None
        m = re.fullmatch(r"displayName eq '(.*)'", query.get("$filter", ""))
        if m:
            wanted = m[1].replace("''", "'")
        found = [
            {"id": f.id, "displayName": f.name}
            for f in self.folders.values()
            if f.mailbox == mailbox and (wanted is None or f.name == wanted)
        ]
        return 200, {"value": found}, {}

    def _message(self, method: str, mid: str, body: bytes) -> tuple[int, Any, dict[str, str]]:
        self.requests[f"message-{method}"] += 1
        msg = self.messages.get(mid)
        if msg is None:
            return 404, {"error": {"code": "ErrorItemNotFound"}}, {}
        if method == "PATCH":
            change = json.loads(body)
            if "categories" in change:
                msg.categories = list(change["categories"])
            self.update(msg.id)
        return 200, {"id": msg.id, **msg.props, "categories": msg.categories}, {}

    def _move(self, mid: str, destination: str) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            msg = self.messages.pop(mid, None)
            target = self.folders.get(destination) or (
                self.folder(msg.mailbox, destination) if msg else None
            )
            if msg is None or target is None:
                return 404, {"error": {"code": "ErrorItemNotFound"}}, {}
            self.folders[msg.folder_id].log.append((next(self._seq), "removed", msg.id))
            new = GraphMessage(
                self._new_id("M"), msg.mailbox, target.id, msg.mime, msg.props, msg.categories
            )
            self.messages[new.id] = new
            target.log.append((next(self._seq), "created", new.id))
        return 201, {"id": new.id}, {}
