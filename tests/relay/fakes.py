"""Test doubles for the relay: a header-driven scan task, its rules loader, an upstream sink.

``header_verdict_task`` is a FAKE scan (runs in the real scanner worker processes): the verdict
is chosen by an ``X-Test-Verdict: ACTION[; rules=id1,id2]`` header of the test message, so relay
behaviour can be tested apart from the scan engine. ``X-Test-Sleep: SECONDS`` makes it slow (scan
timeout tests) and ``X-Test-Crash: 1`` kills the worker (pool replacement tests). Its "rules file"
is JSON: ``{"version": "v1", "unscannable": "hold", "owners": {"r1": "owner@x"}}``.
The ``Upstream`` sink is a real aiosmtpd server with scriptable refusals.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SMTPEnvelope

from scanner.errors import Problem, RuleError
from scanner.model import Action, Envelope, Hit, Verdict
from scanner.relay.scanpool import RulesInfo, worker_ruleset

_VERDICT = re.compile(rb"^X-Test-Verdict:\s*(\w+)(?:;\s*rules=([\w,.-]+))?", re.M | re.I)
_SLEEP = re.compile(rb"^X-Test-Sleep:\s*([\d.]+)", re.M | re.I)
_CRASH = re.compile(rb"^X-Test-Crash:\s*1", re.M | re.I)


def fake_loader(data: bytes, filename: str) -> dict[str, Any]:
    """Worker side: the fake rules are JSON."""
    loaded: dict[str, Any] = json.loads(data)
    return loaded


def fake_validate(data: bytes, filename: str) -> RulesInfo:
    """Parent side: validate the fake JSON rules; invalid JSON is a RuleError with a line."""
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict) or "version" not in doc:
            raise ValueError("no version")
    except ValueError as exc:
        raise RuleError([Problem(filename, 1, None, f"invalid fake rules ({exc})")]) from None
    return RulesInfo(version=str(doc["version"]),
                     unscannable_action=Action.parse(doc.get("unscannable", "flag")),
                     owners=dict(doc.get("owners", {})))


def header_verdict_task(raw: bytes, envelope: Envelope) -> Verdict:
    """FAKE scan: the verdict named by the message's X-Test-Verdict header (default pass)."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    if _CRASH.search(head):
        os._exit(1)
    sleep = _SLEEP.search(head)
    if sleep:
        time.sleep(float(sleep.group(1)))
    rules = worker_ruleset()
    version = str(rules.get("version")) if isinstance(rules, dict) else "none"
    found = _VERDICT.search(head)
    if not found:
        return Verdict(action=Action.PASS, hits=(), unscannable=(), ruleset_version=version)
    action = Action.parse(found.group(1).decode())
    ids = found.group(2).decode().split(",") if found.group(2) else ["fake-rule"]
    hits = tuple(Hit(rule_id=i, location="body", out_of_scope=envelope.recipients,
                     action=action) for i in ids)
    return Verdict(action=action, hits=hits, unscannable=(), ruleset_version=version)


def write_fake_rules(path: Path, version: str = "v1", **extra: Any) -> Path:
    path.write_text(json.dumps({"version": version, **extra}))
    return path


@dataclass
class Delivered:
    sender: str
    recipients: list[str]
    mail_options: list[str]
    data: bytes
    tls: bool = False  # the upstream session was encrypted (STARTTLS)


@dataclass
class UpstreamBehaviour:
    """Scripted upstream replies; addresses containing the markers are refused."""

    refuse_marker: str = "refuse"  # RCPT → 550
    tempfail_marker: str = "tempfail"  # RCPT → 450
    data_reply: str | None = None  # e.g. "451 4.3.0 busy" or "554 5.7.1 no"
    drop_after_data: bool = False  # read the message, then close without a reply
    delay: float = 0.0


class UpstreamHandler:
    def __init__(self) -> None:
        self.behaviour = UpstreamBehaviour()
        self.delivered: list[Delivered] = []
        self.lock = threading.Lock()
        self.sessions = 0

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: SMTPEnvelope,
                          address: str, rcpt_options: list[str]) -> str:
        b = self.behaviour
        if b.refuse_marker in address:
            return f"550 5.1.1 <{address}>: Recipient address rejected"
        if b.tempfail_marker in address:
            return f"450 4.2.0 <{address}>: Recipient temporarily unavailable"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SMTPEnvelope) -> str:
        b = self.behaviour
        if b.delay:
            await asyncio.sleep(b.delay)
        if b.drop_after_data:
            assert server.transport is not None
            server.transport.abort()
            return "250 never sent"
        if b.data_reply:
            return b.data_reply
        assert isinstance(envelope.original_content, bytes)
        with self.lock:
            self.delivered.append(Delivered(str(envelope.mail_from), list(envelope.rcpt_tos),
                                            list(envelope.mail_options),
                                            envelope.original_content, session.ssl is not None))
        return f"250 2.0.0 Ok: queued as UP{len(self.delivered)}"


class LoopThread:
    """An asyncio loop in a daemon thread, so blocking test clients (smtplib) can talk to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Upstream:
    """A real aiosmtpd upstream on an ephemeral loopback port, in its own loop thread."""

    def __init__(self, tls_context: ssl.SSLContext | None = None) -> None:
        self.handler = UpstreamHandler()
        self.tls_context = tls_context  # offer STARTTLS with this server context
        self.port = 0
        self._lt: LoopThread | None = None
        self._server: asyncio.Server | None = None

    def start(self) -> Upstream:
        self._lt = LoopThread()
        loop = self._lt.loop
        handler = self.handler

        async def listen() -> asyncio.Server:
            return await loop.create_server(
                lambda: SMTP(handler, hostname="upstream.test", enable_SMTPUTF8=True,
                             data_size_limit=None, tls_context=self.tls_context, loop=loop),
                "127.0.0.1", 0)

        self._server = self._lt.run(listen())
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._lt is not None and self._server is not None:
            server = self._server

            async def close() -> None:
                server.close()

            self._lt.run(close())
            self._lt.close()

    @property
    def delivered(self) -> list[Delivered]:
        with self.handler.lock:
            return list(self.handler.delivered)

    def reset(self) -> None:
        self.handler.behaviour = UpstreamBehaviour()
        with self.handler.lock:
            self.handler.delivered.clear()
