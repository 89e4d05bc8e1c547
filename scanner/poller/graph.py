"""The Microsoft Graph backend (Exchange Online) with httpx and msal client credentials.

Owns the HTTP client, the app-only token (msal's ``ConfidentialClientApplication``, which caches
it until shortly before expiry), per-folder delta queries (the cursor is the opaque
``@odata.nextLink``/``@odata.deltaLink``), MIME download through JSON ``$batch`` (20 ``$value``
requests per round trip), categories, ``/move`` and the quarantine folder. Recipients, sender
and Internet-Message-ID come with the delta page (``$select``), so no per-item property request
is needed. It must not scan or decide. Hazards: (1) the delta link is a bearer of state, not of
credentials, but the access token is: it never reaches a log or an error message; (2) 429/503
carry ``Retry-After``: honoured as ``ThrottledError``; (3) 410 Gone means the delta token
expired: ``CursorInvalidError``, the loop resyncs and the ledger absorbs the repeat.
"""

from __future__ import annotations

import base64
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import msal  # type: ignore[import-untyped]
import requests

from scanner.config import Secret
from scanner.poller.source import (
    Changes,
    CredentialError,
    CursorInvalidError,
    ItemRef,
    MailboxLocks,
    MailItem,
    MailSource,
    Recent,
    SourceError,
    ThrottledError,
    WatchedFolder,
)

MEMBERS_TTL = 3600.0  # seconds a group lookup is reused
BATCH_LIMIT = 20  # Graph's JSON batching accepts at most 20 requests per $batch
_SELECT = "internetMessageId,subject,from,toRecipients,ccRecipients,bccRecipients,categories"


@dataclass(frozen=True)
class GraphSettings:
    """App registration (client credentials) and endpoints; the defaults are the public cloud."""

    tenant_id: str
    client_id: str
    client_secret: Secret
    graph_url: str = "https://graph.microsoft.com/v1.0"
    authority_host: str = "https://login.microsoftonline.com"
    ca_file: str | None = None  # a private CA (tests; TLS-inspecting proxies)
    timeout: float = 60.0


class GraphSource(MailSource):
    """``MailSource`` over Graph for any mailbox the app has Mail.ReadWrite (application) on."""

    name = "graph"

    def __init__(self, settings: GraphSettings) -> None:
        self.settings = settings
        verify: Any = settings.ca_file or True  # msal (requests) takes a CA path
        context = ssl.create_default_context(cafile=settings.ca_file)
        self._http = httpx.Client(timeout=settings.timeout, verify=context)
        # msal speaks requests; it gets its own session with the same trust anchors.
        self._msal_http = _PinnedSession(verify)
        self._app: Any = None  # built on first use: its construction already does discovery
        self._lock = MailboxLocks()
        self._props: Recent[dict[str, Any]] = Recent()  # message id → delta properties
        self._categories: Recent[list[str]] = Recent()  # message id → categories at fetch
        # address → (when, members or None for "not a group"), kept for MEMBERS_TTL seconds
        self._groups: Recent[tuple[float, tuple[str, ...] | None]] = Recent(cap=20_000)
        self.requests = 0

    # -- plumbing ------------------------------------------------------------------------------

    def _token(self) -> str:
        try:
            if self._app is None:
                self._app = msal.ConfidentialClientApplication(
                    self.settings.client_id,
                    client_credential=self.settings.client_secret.reveal(),
                    authority=f"{self.settings.authority_host.rstrip('/')}/{self.settings.tenant_id}",
                    http_client=self._msal_http,
                    instance_discovery=False,  # a configured authority: no lookup at Microsoft
                    timeout=self.settings.timeout,
                )
            result = self._app.acquire_token_for_client(
                scopes=[f"{_origin(self.settings.graph_url)}/.default"]
            )
        except (requests.RequestException, OSError, ValueError) as exc:  # network, bad reply
            raise SourceError(f"graph: token endpoint failed ({type(exc).__name__})") from exc
        token = result.get("access_token") if isinstance(result, dict) else None
        if not token:
            error = result.get("error", "unknown") if isinstance(result, dict) else "unknown"
            if error in (
                "invalid_client",
                "unauthorized_client",
                "invalid_request",
                "invalid_grant",
                "invalid_scope",
            ):
                raise CredentialError(f"graph: client credentials rejected ({error})")
            raise SourceError(f"graph: no token ({error})")
        return str(token)

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if not url.startswith("http"):
            url = self.settings.graph_url.rstrip("/") + url
        headers = {"Authorization": f"Bearer {self._token()}", **kwargs.pop("headers", {})}
        self.requests += 1
        try:
            response = self._http.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise SourceError(f"graph: connection failed ({type(exc).__name__})") from exc
        _check(response)
        return response

    # -- MailSource ----------------------------------------------------------------------------

    def changes(self, folder: WatchedFolder, cursor: str | None, *, limit: int) -> Changes:
        with self._lock(folder.mailbox):
            url = cursor or (
                f"/users/{quote(folder.mailbox)}/mailFolders/{quote(folder.folder)}"
                f"/messages/delta?$select={_SELECT}"
            )
            if not url.startswith(self.settings.graph_url.rstrip("/") + "/") and cursor:
                # A cursor is a link we were given; never send our token anywhere else.
                raise CursorInvalidError("graph: delta link points outside the Graph endpoint")
            page = self._request(
                "GET", url, headers={"Prefer": f"odata.maxpagesize={limit}"}
            ).json()
        refs: list[ItemRef] = []
        for entry in page.get("value", []):
            if "@removed" in entry:
                continue  # moved away or deleted: nothing to check
            self._props[entry["id"]] = entry
            refs.append(ItemRef(entry["id"], message_id=entry.get("internetMessageId")))
        next_link = page.get("@odata.nextLink")
        link = next_link or page.get("@odata.deltaLink")
        if not link:
            raise SourceError("graph: delta page without a next or delta link")
        return Changes(tuple(refs), str(link), next_link is not None)

    def fetch(self, folder: WatchedFolder, refs: Sequence[ItemRef]) -> list[MailItem]:
        items: list[MailItem] = []
        box = quote(folder.mailbox)
        with self._lock(folder.mailbox):
            for start in range(0, len(refs), BATCH_LIMIT):
                chunk = refs[start : start + BATCH_LIMIT]
                body = {
                    "requests": [
                        {
                            "id": str(i),
                            "method": "GET",
                            "url": f"/users/{box}/messages/{quote(r.item_id)}/$value",
                        }
                        for i, r in enumerate(chunk)
                    ]
                }
                answers = self._request("POST", "/$batch", json=body).json()["responses"]
                by_id = {int(a["id"]): a for a in answers}
                for i, ref in enumerate(chunk):
                    answer = by_id.get(i)
                    if answer is None or answer["status"] == 404:
                        continue  # gone since the listing
                    _check_batch(answer)
                    props = self._props.pop(ref.item_id, {})
                    self._categories[ref.item_id] = list(props.get("categories") or [])
                    items.append(_item(ref, folder, _batch_body(answer), props))
        return items

    def expand(
        self, folder: WatchedFolder, item: MailItem, internal_domains: frozenset[str]
    ) -> dict[str, tuple[str, ...]]:
        """Internal recipients that are groups → their transitive members (one lookup per
        address per MEMBERS_TTL; Graph does not mark groups in a message's recipients)."""
        result: dict[str, tuple[str, ...]] = {}
        for rcpt in item.recipients:
            if rcpt.rpartition("@")[2].lower() not in internal_domains:
                continue  # groups live in the tenant: an external address is never one
            members = self._group_members(rcpt)
            if members is not None:
                result[rcpt] = members
        return result

    def _group_members(self, address: str) -> tuple[str, ...] | None:
        entry = self._groups.get(address.lower())
        if entry is not None and time.monotonic() - entry[0] <= MEMBERS_TTL:
            return entry[1]
        escaped = address.replace("'", "''")
        found = self._request(
            "GET", "/groups", params={"$filter": f"mail eq '{escaped}'", "$select": "id"}
        ).json()["value"]
        members: tuple[str, ...] | None = None
        if found:
            collected: dict[str, None] = {}
            url: str | None = f"/groups/{quote(found[0]['id'])}/transitiveMembers?$select=mail"
            while url:  # paged; transitiveMembers already flattens nested groups
                page = self._request("GET", url).json()
                for member in page.get("value", []):
                    if member.get("@odata.type") != "#microsoft.graph.group" and member.get("mail"):
                        collected.setdefault(member["mail"], None)
                url = page.get("@odata.nextLink")
            members = tuple(collected)
        self._groups[address.lower()] = (time.monotonic(), members)
        return members

    def ensure_folder(self, mailbox: str, name: str) -> str:
        with self._lock(mailbox):
            box = quote(mailbox)
            escaped = name.replace("'", "''")
            found = self._request(
                "GET",
                f"/users/{box}/mailFolders",
                params={"$filter": f"displayName eq '{escaped}'"},
            ).json()["value"]
            if found:
                return str(found[0]["id"])
            created = self._request(
                "POST", f"/users/{box}/mailFolders", json={"displayName": name}
            ).json()
            return str(created["id"])

    def tag(self, folder: WatchedFolder, ref: ItemRef, tags: Sequence[str]) -> ItemRef:
        with self._lock(folder.mailbox):
            url = f"/users/{quote(folder.mailbox)}/messages/{quote(ref.item_id)}"
            current = self._categories.get(ref.item_id)
            if current is None:
                reply = self._request("GET", url, params={"$select": "categories"}).json()
                current = list(reply.get("categories", []))
            wanted = current + [t for t in tags if t not in current]
            if wanted != current:  # already tagged: no write (and no new delta entry)
                self._request("PATCH", url, json={"categories": wanted})
            self._categories[ref.item_id] = wanted
        return ref

    def move(self, folder: WatchedFolder, ref: ItemRef, target: str) -> str | None:
        with self._lock(folder.mailbox):
            moved = self._request(
                "POST",
                f"/users/{quote(folder.mailbox)}/messages/{quote(ref.item_id)}/move",
                json={"destinationId": target},
            ).json()
        self._categories.pop(ref.item_id, None)
        return str(moved["id"])  # a moved message has a new id

    def close(self) -> None:
        self._http.close()
        self._msal_http.close()


class _PinnedSession(requests.Session):
    """A requests session whose CA choice wins over ``REQUESTS_CA_BUNDLE`` (requests lets the
    environment override ``Session.verify``, which would silently ignore ``ca_file``)."""

    def __init__(self, verify: str | bool) -> None:
        super().__init__()
        self._verify = verify

    def request(
        self, method: str, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("verify", self._verify)
        return super().request(method, str(url), *args, **kwargs)


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}"


def _retry_after(headers: httpx.Headers | dict[str, str]) -> float:
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(1.0, float(value)) if value else 30.0
    except ValueError:
        return 30.0  # an HTTP-date: rare from Graph; a fixed pause is good enough


def _check(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    if status in (429, 503, 504) and "retry-after" in response.headers:
        raise ThrottledError(f"graph: throttled (HTTP {status})", _retry_after(response.headers))
    if status == 410:
        raise CursorInvalidError("graph: delta token expired (HTTP 410)")
    if status in (401, 403):
        raise CredentialError(f"graph: access denied (HTTP {status})")
    raise SourceError(f"graph: HTTP {status}")


def _check_batch(answer: dict[str, Any]) -> None:
    status = int(answer["status"])
    if status < 400:
        return
    if status == 429:
        raise ThrottledError("graph: throttled in $batch", _retry_after(answer.get("headers", {})))
    if status in (401, 403):
        raise CredentialError(f"graph: access denied (HTTP {status})")
    raise SourceError(f"graph: HTTP {status} in $batch")


def _batch_body(answer: dict[str, Any]) -> bytes:
    """A non-JSON body in a $batch response is base64 (Graph's JSON batching contract)."""
    body = answer.get("body", "")
    return base64.b64decode(body) if isinstance(body, str) else bytes(str(body), "utf-8")


def _address(entry: dict[str, Any] | None) -> str | None:
    if not entry:
        return None
    address = entry.get("emailAddress", {}).get("address")
    return str(address) if address else None


def _item(ref: ItemRef, folder: WatchedFolder, raw: bytes, props: dict[str, Any]) -> MailItem:
    recipients: dict[str, None] = {}
    for key in ("toRecipients", "ccRecipients", "bccRecipients"):
        for entry in props.get(key) or []:
            address = _address(entry)
            if address:
                recipients.setdefault(address, None)
    return MailItem(
        ref=ref,
        raw=raw,
        sender=_address(props.get("from")) or folder.mailbox,
        recipients=tuple(recipients),
        message_id=props.get("internetMessageId") or ref.message_id,
        subject=props.get("subject"),
    )
