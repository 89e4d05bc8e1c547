"""The upstream side of the relay: a pool of persistent aiosmtplib connections and, on one of
them, a transaction that mirrors the client's (MAIL, each RCPT, DATA or RSET).

It owns connection reuse (a connection returns to the pool only after a clean end of
transaction), TLS towards the upstream (none / opportunistic / required and verified against a CA
file) and the translation of network failures into ``UpstreamUnavailable``. Upstream replies are
returned as ``(code, text)``, never raised, so that the relay can pass them through faithfully.
It must not block the loop (no smtplib) and must not log message content. Hazard: a pooled
connection may have been closed by the upstream while idle; the first command on a reused
connection is retried once on a fresh connection before giving up.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiosmtplib

from scanner.relay.replies import UpstreamUnavailable

_NETWORK_ERRORS = (
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPTimeoutError,
    aiosmtplib.SMTPConnectTimeoutError,
    aiosmtplib.SMTPConnectResponseError,
    OSError,
    TimeoutError,
    ssl.SSLError,
)


@dataclass(frozen=True)
class UpstreamConfig:
    host: str
    port: int
    tls: Literal["none", "opportunistic", "required"] = "opportunistic"
    ca_file: Path | None = None
    timeout: float = 60.0
    pool_size: int = 50
    helo_name: str = "localhost"
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class Reply:
    code: int
    message: str

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300


def _tls_context(config: UpstreamConfig) -> ssl.SSLContext | None:
    if config.tls == "none":
        return None
    if config.tls == "required":
        # Verified: against the configured CA file, else the system store.
        return ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    # Opportunistic (RFC 7435): encrypt when offered; verify only when a CA file is given.
    if config.ca_file is not None:
        return ssl.create_default_context(cafile=str(config.ca_file))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _address(addr: str) -> bytes:
    # aiosmtpd gives "<>" for the null reverse-path; surrogateescape keeps non-UTF-8 bytes intact.
    if addr in ("", "<>"):
        return b"<>"
    return b"<" + addr.encode("utf-8", "surrogateescape") + b">"


def data_payload(message: bytes) -> bytes | None:
    """The DATA payload of a message with CRLF line ends only: dot-stuffed and ending in CRLF
    (without the final ".CRLF"); None when it has a bare CR or LF (aiosmtplib normalizes those).

    The same bytes as aiosmtplib's regex-based normalization, at a fraction of its cost."""
    crlf = message.count(b"\r\n")
    if message.count(b"\n") != crlf or message.count(b"\r") != crlf:
        return None
    body = message.replace(b"\r\n.", b"\r\n..")
    if body.startswith(b"."):
        body = b"." + body
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body


async def _send_data(client: aiosmtplib.SMTP, message: bytes) -> Reply:
    """DATA with the upstream's replies returned (354 refusals and final 4xx/5xx alike)."""
    body = data_payload(message)
    proto = client.protocol
    if body is None or proto is None:
        try:
            resp = await client.data(message)
        except aiosmtplib.SMTPResponseException as exc:
            return Reply(exc.code, exc.message)
        return Reply(resp.code, resp.message)
    resp = await client.execute_command(b"DATA")
    if resp.code != 354:
        return Reply(resp.code, resp.message)
    proto.write(body)
    proto.write(b".\r\n")
    timeout = client.timeout
    resp = await proto.read_response(timeout=timeout if isinstance(timeout, float | int) else None)
    return Reply(resp.code, resp.message)


class UpstreamPool:
    """Idle connections kept for reuse; at most ``pool_size`` connections in use at once."""

    def __init__(self, config: UpstreamConfig) -> None:
        self.config = config
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(config.pool_size)
        self._tls = _tls_context(config)
        self._closed = False

    async def _connect(self) -> aiosmtplib.SMTP:
        cfg = self.config
        start_tls: bool | None
        if cfg.tls == "none":
            start_tls = False
        elif cfg.tls == "required":
            start_tls = True
        else:
            start_tls = None  # aiosmtplib: STARTTLS when the server offers it
        client = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            timeout=cfg.timeout,
            local_hostname=cfg.helo_name,
            start_tls=start_tls,
            tls_context=self._tls,
            username=cfg.username,
            password=cfg.password,
        )
        try:
            await client.connect()
            if not client.last_ehlo_response:
                await client.ehlo()
        except _NETWORK_ERRORS as exc:
            client.close()
            raise UpstreamUnavailable("upstream connect failed") from exc
        except aiosmtplib.SMTPException as exc:
            client.close()
            raise UpstreamUnavailable("upstream refused the session") from exc
        return client

    async def acquire(self) -> tuple[aiosmtplib.SMTP, bool]:
        """A connected client and whether it was reused from the pool."""
        if self._closed:
            raise UpstreamUnavailable("relay shutting down")
        try:
            await asyncio.wait_for(self._slots.acquire(), self.config.timeout)
        except TimeoutError as exc:
            raise UpstreamUnavailable("upstream pool exhausted") from exc
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:
                return client, True
            client.close()
        try:
            return await self._connect(), False
        except BaseException:
            self._slots.release()
            raise

    def release(self, client: aiosmtplib.SMTP, *, reusable: bool) -> None:
        if reusable and client.is_connected and not self._closed:
            self._idle.append(client)
        else:
            client.close()
        self._slots.release()

    def transaction(self) -> UpstreamTransaction:
        return UpstreamTransaction(self)

    async def close(self) -> None:
        """Close idle connections politely; in-use ones close when their transaction ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                await asyncio.wait_for(client.quit(), 2.0)
            except (*_NETWORK_ERRORS, aiosmtplib.SMTPException):
                pass
            finally:
                client.close()

    @property
    def idle_count(self) -> int:
        return len(self._idle)


class UpstreamTransaction:
    """One client transaction mirrored upstream. Use ``mail`` first; end with ``data`` or
    ``abort``. Replies are returned; network trouble raises ``UpstreamUnavailable``."""

    def __init__(self, pool: UpstreamPool) -> None:
        self._pool = pool
        self._client: aiosmtplib.SMTP | None = None

    @property
    def active(self) -> bool:
        return self._client is not None

    async def _command(self, *args: bytes) -> Reply:
        assert self._client is not None
        try:
            resp = await self._client.execute_command(*args)
        except _NETWORK_ERRORS as exc:
            self._drop()
            raise UpstreamUnavailable("upstream connection lost") from exc
        return Reply(resp.code, resp.message)

    async def mail(self, sender: str, options: Sequence[str]) -> Reply:
        """Start the upstream transaction (on a pooled connection) with the client's MAIL."""
        if self._client is not None:
            await self.abort()
        args = (b"MAIL", b"FROM:" + _address(sender), *(o.encode("ascii") for o in options))
        for attempt in (0, 1):
            self._client, reused = await self._pool.acquire()
            try:
                reply = await self._command(*args)
            except UpstreamUnavailable:
                if reused and attempt == 0:
                    continue  # the idle connection had been closed upstream: try a fresh one
                raise
            if not reply.ok:
                await self.abort()
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    async def rcpt(self, recipient: str, options: Sequence[str] = ()) -> Reply:
        if self._client is None:
            raise UpstreamUnavailable("no upstream transaction")
        args = (b"RCPT", b"TO:" + _address(recipient), *(o.encode("ascii") for o in options))
        return await self._command(*args)

    async def data(self, message: bytes) -> Reply:
        """Send the message and end the transaction; the connection goes back to the pool."""
        client = self._client
        if client is None:
            raise UpstreamUnavailable("no upstream transaction")
        try:
            reply = await _send_data(client, message)
        except _NETWORK_ERRORS as exc:
            self._drop()
            raise UpstreamUnavailable("upstream connection lost") from exc
        if reply.code == 421:
            self._drop()
            raise UpstreamUnavailable("upstream closing")
        self._client = None
        self._pool.release(client, reusable=True)
        return reply

    async def abort(self) -> None:
        """RSET the upstream transaction and give the connection back (or close it)."""
        client = self._client
        if client is None:
            return
        self._client = None
        reusable = False
        try:
            resp = await asyncio.wait_for(client.execute_command(b"RSET"), 5.0)
            reusable = resp.code == 250
        except (*_NETWORK_ERRORS, aiosmtplib.SMTPException):
            reusable = False
        finally:
            self._pool.release(client, reusable=reusable)

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            self._pool.release(client, reusable=False)

    def discard(self) -> None:
        """Synchronous teardown (the client vanished): close the connection, no RSET."""
        self._drop()
