"""The before-queue SMTP relay: an aiosmtpd ``SMTP`` subclass and the handler that acts.

The client's transaction is mirrored upstream as it happens: MAIL opens a transaction on a pooled
upstream connection, each RCPT is forwarded and the upstream's reply (accept, 4xx or 5xx) is the
client's reply for that recipient, so a refused recipient is refused exactly as the upstream
said, before DATA (aiosmtpd's bundled Proxy answers 250 even then). At the end of DATA the
message is scanned and then: pass → upstream DATA, flag → upstream DATA with two headers
prepended, and the upstream's final reply is passed through (4xx → 451); hold → upstream RSET,
durable store, ``250 held``; reject → upstream RSET, ``550 5.7.1``. Anything unexpected → 451.

This module owns the wire (a chunked DATA reader instead of aiosmtpd's line-by-line one, limits,
STARTTLS, AUTH, connection count, graceful drain) and the per-message log line; replies come
from ``replies``, verdicts from the scan pool, storage from the store. It must not block the
loop: the store is called in a thread, scanning runs in processes. Hazard: 250 is only ever
written for an upstream 2xx or after ``store.hold`` returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.errors
import email.header
import email.parser
import hmac
import re
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import aiosmtpd.smtp
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, Session, syntax
from aiosmtpd.smtp import Envelope as SMTPEnvelope

from scanner.logs import bind_message, get_logger
from scanner.metrics import Metrics
from scanner.model import Action, Envelope, Verdict
from scanner.relay import replies
from scanner.relay.replies import Outcome, UpstreamUnavailable
from scanner.relay.scanpool import RulesInfo
from scanner.relay.upstream import UpstreamPool, UpstreamTransaction
from scanner.store.base import QuarantineStore

_log = get_logger("maruhi.relay")

ScanFn = Callable[[bytes, Envelope], Awaitable[Verdict]]

_TERMINATOR = b"\r\n.\r\n"
_READ_CHUNK = 1 << 18

# A plain ``<local@domain>`` path (dot-atom local part, LDH domain), as almost every MTA sends;
# anything else (quoted local parts, source routes, literals, comments, non-ASCII) goes through
# aiosmtpd's full RFC 5322 parser, which costs ~50 us per address.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_SIMPLE_PATH = re.compile(rf"[ \t]*<({_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*)>")


@dataclass(frozen=True)
class _Introspection:
    """What aiosmtpd's ``SMTP.__init__`` finds by ``inspect.getmembers``/``dir`` on every
    connection (~0.3 ms): computed once per (class, handler) and rebound per connection."""

    auth: tuple[tuple[str, str, bool, Any], ...]  # (mechanism, attribute, builtin, handler fn)
    hooks: dict[str, Any]
    ehlo_hook_ver: str | None
    smtp_methods: tuple[tuple[str, str], ...]  # (command, attribute)

    @classmethod
    def of(cls, proto: SMTP) -> _Introspection:
        auth: list[tuple[str, str, bool, Any]] = []
        for mech, attr in proto._auth_methods.items():
            if attr.is_builtin:
                name = getattr(attr.method, "__name__", "")
                auth.append((mech, name, True, None))
            else:
                auth.append((mech, "", False, attr.method))
        smtp = tuple((cmd, f"smtp_{cmd}") for cmd in proto._smtp_methods)
        return cls(tuple(auth), dict(proto._handle_hooks), proto._ehlo_hook_ver, smtp)


_INTROSPECTION: dict[tuple[type[Any], int], _Introspection] = {}


@dataclass(frozen=True)
class RelayConfig:
    hostname: str = "localhost"
    max_message_bytes: int = 50 * 1024 * 1024
    max_recipients: int = 1000
    max_connections: int = 200
    command_timeout: float = 300.0
    data_timeout: float = 600.0
    # After DATA the connection's idle timer is set to this, so that scanning and relaying are
    # never cut off by the command timeout (scan timeout + upstream timeout + margin).
    processing_timeout: float = 120.0
    tls_context: ssl.SSLContext | None = None
    require_tls: bool = False
    auth_users: Mapping[str, str] = field(default_factory=dict)
    auth_required: bool = False
    bare_lf: Literal["normalize", "reject"] = "normalize"
    notify_sender: bool = True
    notify_owner: bool = True


class RelaySession(Session):
    """aiosmtpd's session plus the upstream transaction mirroring the client's."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.txn: UpstreamTransaction | None = None


def format_peer(peer: Any) -> str | None:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return None if peer is None else str(peer)


def flag_headers(verdict: Verdict) -> bytes:
    """The two headers a flagged message carries: rule ids only, never a term."""
    head = b"X-Maruhi-Verdict: flag\r\n"
    if verdict.rule_ids:
        head += b"X-Maruhi-Rules: " + ", ".join(verdict.rule_ids).encode("utf-8") + b"\r\n"
    return head


def _header_block(raw: bytes) -> bytes:
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(sep)
        if end >= 0:
            return raw[: end + len(sep)]
    return raw[:65536]


def header_facts(raw: bytes) -> tuple[str | None, str | None]:
    """(Message-ID as written, decoded Subject) for the quarantine record; blocking-safe."""
    msg = email.parser.BytesHeaderParser().parsebytes(_header_block(raw))
    message_id = msg.get("Message-ID")
    subject_raw = msg.get("Subject")
    subject: str | None = None
    if subject_raw is not None:
        try:
            subject = str(email.header.make_header(email.header.decode_header(str(subject_raw))))
        except (LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
            subject = str(subject_raw)
    return (str(message_id).strip() if message_id is not None else None), subject


class _Registry:
    """Live client connections, for the connection limit and the graceful drain."""

    def __init__(self, limit: int, metrics: Metrics | None) -> None:
        self.limit = limit
        self.live: set[RelaySMTP] = set()
        self.draining = False
        self.metrics = metrics

    def add(self, proto: RelaySMTP) -> None:
        self.live.add(proto)
        if self.metrics:
            self.metrics.connections.set(len(self.live))

    def discard(self, proto: RelaySMTP) -> None:
        self.live.discard(proto)
        if self.metrics:
            self.metrics.connections.set(len(self.live))


_FAST_KWARGS = frozenset({
    "loop", "data_size_limit", "enable_SMTPUTF8", "decode_data", "hostname", "ident",
    "tls_context", "require_starttls", "timeout", "auth_required", "auth_require_tls",
    "authenticator",
})


class RelaySMTP(SMTP):
    """aiosmtpd's SMTP with a chunked DATA reader, a connection limit and drain support."""

    def __init__(self, handler: RelayHandler, *, registry: _Registry, config: RelayConfig,
                 **kwargs: Any) -> None:
        key = (type(self), id(handler))
        known = _INTROSPECTION.get(key)
        if known is None or set(kwargs) - _FAST_KWARGS:
            super().__init__(handler, **kwargs)
            _INTROSPECTION[key] = _Introspection.of(self)
        else:
            self._fast_init(handler, known, **kwargs)
        self._registry = registry
        self._config = config
        self._refused = False
        self.in_data = False

    def _fast_init(self, handler: RelayHandler, known: _Introspection, *,
                   loop: asyncio.AbstractEventLoop, data_size_limit: int | None,
                   enable_SMTPUTF8: bool, decode_data: bool, hostname: str, ident: str,
                   tls_context: ssl.SSLContext | None, require_starttls: bool, timeout: float,
                   auth_required: bool, auth_require_tls: bool,
                   authenticator: Callable[..., AuthResult]) -> None:
        """aiosmtpd 1.4's ``SMTP.__init__`` for the arguments ``RelayServer`` passes, with the
        introspection taken from ``known``; ``test_fast_init_matches_aiosmtpd`` compares the
        resulting state with the stock constructor's, so an aiosmtpd upgrade cannot drift."""
        self.__ident__ = ident
        self.loop = loop
        asyncio.StreamReaderProtocol.__init__(
            self, asyncio.StreamReader(loop=loop, limit=self.line_length_limit),
            client_connected_cb=self._cb_client_connected, loop=loop)
        self.event_handler = handler
        self.data_size_limit = data_size_limit
        self.enable_SMTPUTF8 = enable_SMTPUTF8
        self._decode_data = decode_data
        self.command_size_limits.clear()
        self.hostname = hostname
        self.tls_context = tls_context
        self.require_starttls = tls_context and require_starttls
        self._timeout_duration = timeout
        self._timeout_handle = None
        self._tls_handshake_okay = True
        self._tls_protocol = None
        self._original_transport = None
        self.session = None
        self.envelope = None
        self.transport = None
        self._handler_coroutine = None
        self._auth_require_tls = auth_require_tls
        self._proxy_timeout = None
        self._authenticator = authenticator
        self._auth_callback = None
        self._auth_required = auth_required
        self._auth_methods = {
            mech: aiosmtpd.smtp._AuthMechAttr(getattr(self, name) if builtin else fn, builtin)
            for mech, name, builtin, fn in known.auth
        }
        self._handle_hooks = dict(known.hooks)
        self._ehlo_hook_ver = known.ehlo_hook_ver
        self._smtp_methods = {cmd: getattr(self, name) for cmd, name in known.smtp_methods}
        self._enforce_call_limit = False

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's address parser with a fast path for a plain ``<local@domain>``."""
        m = _SIMPLE_PATH.match(arg)
        if m is not None and not self.local_part_limit:
            rest = arg[m.end():].lstrip(" \t")
            if not rest.startswith("("):  # a comment: the full parser decides
                return m.group(1), rest
        result: tuple[str | None, str | None] = super()._getaddr(arg)
        return result

    def _create_session(self) -> RelaySession:
        return RelaySession(self.loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None and (
            self._registry.draining or len(self._registry.live) >= self._registry.limit
        ):
            # Refuse before the greeting, as RFC 5321 3.1 allows with 421.
            self._refused = True
            reply = replies.SHUTTING_DOWN if self._registry.draining else (
                replies.TOO_MANY_CONNECTIONS)
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(reply.encode("ascii") + b"\r\n")
            transport.close()
            if self._registry.metrics:
                self._registry.metrics.refused_connections.inc()
            return
        if self.transport is None:
            self._registry.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        self._registry.discard(self)
        session = self.session
        if isinstance(session, RelaySession) and session.txn is not None:
            txn, session.txn = session.txn, None
            txn.discard()
        super().connection_lost(error)

    @property
    def busy(self) -> bool:
        """In a transaction: its end must be awaited by a graceful drain."""
        session = self.session
        return self.in_data or (
            isinstance(session, RelaySession) and session.txn is not None
        ) or bool(self.envelope is not None and self.envelope.mail_from)

    def close_idle(self) -> None:
        """Drain: tell an idle client we are going away and close (RFC 5321 4.2.2: 421)."""
        transport = self.transport
        if transport is None or self.busy or transport.is_closing():
            return
        assert isinstance(transport, asyncio.WriteTransport)
        # A TLS transport can be torn down under us: then closing is all that is left to do.
        with contextlib.suppress(AttributeError, RuntimeError, OSError):
            transport.write(replies.SHUTTING_DOWN.encode("ascii") + b"\r\n")
        transport.close()

    async def _read_data(self) -> bytes | None:
        """Read the DATA stream up to CRLF.CRLF in chunks; None when over the size limit.

        Only CRLF.CRLF ends the data (a bare LF before or after the dot does not, as aiosmtpd
        1.4.5 decided against SMTP smuggling); dot-stuffing is undone with one ``replace``. A
        virtual CRLF in front lets an empty message (".\r\n" at once) match the same pattern.
        """
        reader = self._reader
        limit = self.data_size_limit or 0
        buf = bytearray(b"\r\n")
        search_from = 0
        too_big = False
        while True:
            chunk = await reader.read(_READ_CHUNK)
            if not chunk:
                raise ConnectionResetError("client closed the connection during DATA")
            buf += chunk
            end = buf.find(_TERMINATOR, search_from)
            if end >= 0:
                rest = bytes(buf[end + len(_TERMINATOR):])
                if rest:
                    # Pipelined commands after the dot belong to the command reader.
                    reader._buffer[:0] = rest  # type: ignore[attr-defined]  # no public unread
                if too_big or (limit and end > limit):  # content is buf[2:end + 2]
                    return None
                del buf[end + 2:]
                return bytes(buf).replace(b"\r\n..", b"\r\n.")[2:]
            if limit and len(buf) - 2 > limit:
                too_big = True
                # Keep only what could be the start of the terminator; discard the rest.
                del buf[: len(buf) - len(_TERMINATOR) + 1]
                search_from = 0
            else:
                search_from = max(0, len(buf) - len(_TERMINATOR) + 1)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        self.in_data = True
        try:
            self._reset_timeout(self._config.data_timeout)
            content = await self._read_data()
            self._reset_timeout(self._config.processing_timeout)
            if content is None:
                handler = self.event_handler
                if isinstance(handler, RelayHandler):
                    await handler.abort(self.session)
                self._set_post_data_state()  # type: ignore[no-untyped-call]
                await self.push(replies.TOO_BIG)
                return
            self.envelope.content = content
            self.envelope.original_content = content
            status = await self._call_handler_hook("DATA")
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            await self.push(status)
        finally:
            self.in_data = False
            if self.transport is not None:
                self._reset_timeout()


class RelayHandler:
    """aiosmtpd hooks: mirror the transaction upstream, scan, act, answer from ``replies``."""

    def __init__(
        self,
        *,
        config: RelayConfig,
        scan: ScanFn,
        upstream: UpstreamPool,
        store: QuarantineStore | None,
        rules_info: Callable[[], RulesInfo],
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.scan = scan
        self.upstream = upstream
        self.store = store
        self.rules_info = rules_info
        self.metrics = metrics

    # -- session and envelope ------------------------------------------------------------------

    async def abort(self, session: Session | None) -> None:
        if isinstance(session, RelaySession) and session.txn is not None:
            txn, session.txn = session.txn, None
            await txn.abort()

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: SMTPEnvelope,
                          hostname: str, responses: list[str]) -> list[str]:
        await self.abort(session)
        session.host_name = hostname
        out = [r for r in responses if not (r.startswith("250-AUTH") and not
                                            self.config.auth_users)]
        out.insert(-1, "250-PIPELINING")
        out.insert(-1, "250-ENHANCEDSTATUSCODES")
        return out

    async def handle_HELO(self, server: SMTP, session: Session, envelope: SMTPEnvelope,
                          hostname: str) -> str:
        await self.abort(session)
        session.host_name = hostname
        return f"250 {self.config.hostname}"

    async def handle_RSET(self, server: SMTP, session: Session, envelope: SMTPEnvelope) -> str:
        await self.abort(session)
        return "250 2.0.0 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: SMTPEnvelope) -> str:
        await self.abort(session)
        return "221 2.0.0 Bye"

    def _address_problem(self, address: str, envelope: SMTPEnvelope) -> str | None:
        try:
            address.encode("utf-8")
        except UnicodeEncodeError:
            return "553 5.6.7 Malformed UTF-8 in address"
        if not address.isascii() and not envelope.smtp_utf8:
            return "553 5.6.7 Non-ASCII address requires the SMTPUTF8 parameter"
        return None

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: SMTPEnvelope,
                          address: str, mail_options: list[str]) -> str:
        problem = self._address_problem(address, envelope)
        if problem:
            return problem
        assert isinstance(session, RelaySession)
        txn = self.upstream.transaction()
        session.txn = txn
        try:
            reply = await txn.mail(address, mail_options)
        except UpstreamUnavailable as exc:
            session.txn = None
            self._upstream_error("mail")
            return replies.for_exception(exc)[0]
        if not reply.ok:
            session.txn = None
            return replies.format_reply(reply.code, reply.message)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return replies.format_reply(reply.code, reply.message)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: SMTPEnvelope,
                          address: str, rcpt_options: list[str]) -> str:
        problem = self._address_problem(address, envelope)
        if problem:
            return problem
        if len(envelope.rcpt_tos) >= self.config.max_recipients:
            return replies.TOO_MANY_RECIPIENTS
        assert isinstance(session, RelaySession)
        txn = session.txn
        if txn is None:
            # The upstream transaction was lost after MAIL (connection dropped).
            return replies.UPSTREAM_UNAVAILABLE
        try:
            reply = await txn.rcpt(address, rcpt_options)
        except UpstreamUnavailable as exc:
            session.txn = None
            self._upstream_error("rcpt")
            return replies.for_exception(exc)[0]
        if reply.ok:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
        return replies.format_reply(reply.code, reply.message)

    # -- the message ---------------------------------------------------------------------------

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SMTPEnvelope) -> str:
        assert isinstance(session, RelaySession)
        raw = envelope.original_content
        assert isinstance(raw, bytes)
        started = time.perf_counter()
        message_id = uuid.uuid4().hex[:20]
        peer = format_peer(session.peer)
        sender = "" if envelope.mail_from in (None, "<>") else str(envelope.mail_from)
        env = Envelope(sender=sender, recipients=tuple(envelope.rcpt_tos))
        txn, session.txn = session.txn, None
        verdict: Verdict | None = None
        quarantine_id: str | None = None
        scan_seconds = 0.0
        with bind_message(message_id=message_id, peer=peer, source="smtp"):
            try:
                if self.config.bare_lf == "reject" and raw.count(b"\n") != raw.count(b"\r\n"):
                    reply, outcome = replies.BARE_LF, Outcome.BARE_LF
                    if txn is not None:
                        await txn.abort()
                else:
                    t0 = time.perf_counter()
                    verdict = await self.scan(raw, env)
                    scan_seconds = time.perf_counter() - t0
                    reply, outcome, quarantine_id = await self._act(
                        raw, env, verdict, txn, peer, tuple(envelope.mail_options))
            except asyncio.CancelledError:
                if txn is not None:
                    txn.discard()
                raise
            except Exception as exc:
                if txn is not None:
                    try:
                        await txn.abort()
                    except Exception:  # already failing; the reply below is what matters
                        txn.discard()
                reply, outcome = replies.for_exception(exc)
                if outcome is Outcome.ERROR:
                    # Type only: exception messages can quote message bytes.
                    _log.error("relay.unexpected_error", error=type(exc).__name__)
                elif outcome is Outcome.UPSTREAM_UNAVAILABLE:
                    self._upstream_error("data")
            total = time.perf_counter() - started
            self._finished(raw, env, verdict, outcome, reply, quarantine_id, scan_seconds, total)
        return reply

    async def _act(self, raw: bytes, env: Envelope, verdict: Verdict,
                   txn: UpstreamTransaction | None, peer: str | None,
                   mail_options: tuple[str, ...]) -> tuple[str, Outcome, str | None]:
        action = verdict.action
        if action in (Action.PASS, Action.FLAG):
            if txn is None:
                raise UpstreamUnavailable("upstream transaction lost before DATA")
            data = raw if action is Action.PASS else flag_headers(verdict) + raw
            up = await txn.data(data)
            reply, outcome = replies.upstream_reply(up.code, up.message)
            if outcome is Outcome.UPSTREAM_DEFERRED:
                self._upstream_error("deferred")
            if outcome is Outcome.RELAYED and verdict.hits and self.store is not None:
                await self._record_disclosure(raw, env, verdict)
            return reply, outcome, None
        if txn is not None:
            await txn.abort()
        if action is Action.HOLD:
            if self.store is None:
                raise RuntimeError("hold verdict but no quarantine store configured")
            qid = await asyncio.to_thread(self._hold, raw, env, verdict, peer, mail_options)
            return replies.held(qid), Outcome.HELD, qid
        return replies.rejected(verdict.rule_ids), Outcome.REJECTED, None

    async def _record_disclosure(self, raw: bytes, env: Envelope, verdict: Verdict) -> None:
        """Ledger entry for a delivered message that carried secrets (in scope, or flagged).

        The upstream has accepted the message, so a failure here is logged, never answered.
        """
        store = self.store
        assert store is not None
        message_id, _ = header_facts(raw)
        try:
            await asyncio.to_thread(store.record_disclosure, env, verdict,
                                    at=datetime.now(UTC), message_id=message_id)
        except Exception as exc:
            _log.error("disclosure.record_failed", error=type(exc).__name__,
                       rules=list(verdict.rule_ids))

    def _hold(self, raw: bytes, env: Envelope, verdict: Verdict, peer: str | None,
              mail_options: tuple[str, ...]) -> str:
        """Blocking (runs in a thread): durable store; returns only once fsynced/committed."""
        assert self.store is not None
        message_id, subject = header_facts(raw)
        owners: tuple[str, ...] = ()
        if self.config.notify_owner:
            known = self.rules_info().owners
            owners = tuple(sorted({known[r] for r in verdict.rule_ids if r in known}))
        return self.store.hold(
            raw, env, verdict,
            received_at=datetime.now(UTC), peer=peer, message_id=message_id,
            mail_options=mail_options, subject=subject,
            notify_sender=self.config.notify_sender, owners=owners,
        )

    def _upstream_error(self, kind: str) -> None:
        if self.metrics:
            self.metrics.upstream_errors.labels(kind).inc()

    def _finished(self, raw: bytes, env: Envelope, verdict: Verdict | None, outcome: Outcome,
                  reply: str, quarantine_id: str | None, scan_seconds: float,
                  total: float) -> None:
        """The one canonical line per message: ids, sizes, verdict, rule ids, durations."""
        label = verdict.action.label if verdict is not None else "none"
        _log.info(
            "scan.finished",
            size=len(raw),
            recipients=len(env.recipients),
            verdict=label,
            rules=list(verdict.rule_ids) if verdict is not None else [],
            unscannable=[u.reason for u in verdict.unscannable] if verdict is not None else [],
            ruleset_version=verdict.ruleset_version if verdict is not None else None,
            outcome=outcome.value,
            reply_code=int(reply[:3]),
            quarantine_id=quarantine_id,
            scan_ms=round(scan_seconds * 1000, 2),
            total_ms=round(total * 1000, 2),
        )
        if self.metrics:
            self.metrics.messages.labels(label, outcome.value).inc()
            self.metrics.message_bytes.observe(len(raw))
            self.metrics.message_seconds.observe(total)
            if verdict is not None:
                self.metrics.scan_seconds.observe(scan_seconds)

    # -- AUTH ----------------------------------------------------------------------------------

    def authenticate(self, server: SMTP, session: Session, envelope: SMTPEnvelope,
                     mechanism: str, auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode("utf-8", "replace")
        expected = self.config.auth_users.get(user)
        ok = expected is not None and hmac.compare_digest(
            expected.encode("utf-8"), auth_data.password)
        return AuthResult(success=ok, handled=False)


class RelayServer:
    """Listening socket, connection registry and graceful drain around ``RelayHandler``."""

    def __init__(self, handler: RelayHandler, metrics: Metrics | None = None) -> None:
        self.handler = handler
        self.config = handler.config
        self._registry = _Registry(self.config.max_connections, metrics)
        self._server: asyncio.AbstractServer | None = None

    def _factory(self) -> RelaySMTP:
        cfg = self.config
        return RelaySMTP(
            self.handler,
            registry=self._registry,
            config=cfg,
            data_size_limit=cfg.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=cfg.hostname,
            ident="Maruhi ESMTP",
            tls_context=cfg.tls_context,
            require_starttls=cfg.require_tls,
            timeout=cfg.command_timeout,
            auth_required=cfg.auth_required,
            auth_require_tls=True,
            authenticator=self.handler.authenticate,
            loop=asyncio.get_running_loop(),
        )

    async def start(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._factory, host, port, reuse_address=True)
        sockname: Any = self._server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    @property
    def connections(self) -> int:
        return len(self._registry.live)

    async def drain(self, timeout: float) -> bool:
        """Stop accepting, let in-flight transactions finish, close idle sessions (421).

        Returns True when every session ended within ``timeout``.
        """
        self._registry.draining = True
        if self._server is not None:
            self._server.close()
        deadline = time.monotonic() + timeout
        while self._registry.live and time.monotonic() < deadline:
            for proto in list(self._registry.live):
                proto.close_idle()
            await asyncio.sleep(0.05)
        clean = not self._registry.live
        for proto in list(self._registry.live):
            if proto.transport is not None:
                proto.transport.close()
        if self._server is not None:
            await self._server.wait_closed()
        return clean

    async def close(self) -> None:
        await self.drain(0)

