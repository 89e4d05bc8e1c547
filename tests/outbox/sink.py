"""A real upstream for delivery tests: an aiosmtpd server on 127.0.0.1 that records what it gets.

It speaks the real wire protocol; tests can make it refuse (set ``data_code``/``rcpt_code``) or
stop it to simulate an upstream that is down.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]
    data: bytes


@dataclass
class SinkHandler:
    received: list[Received] = field(default_factory=list)
    data_code: str | None = None  # e.g. "550 5.7.1 no" to refuse after DATA
    rcpt_codes: dict[str, str] = field(default_factory=dict)  # per-address RCPT reply
    arrived: threading.Event = field(default_factory=threading.Event)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.rcpt_codes:
            return self.rcpt_codes[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_code:
            return self.data_code
        assert envelope.original_content is not None
        self.received.append(
            Received(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                mail_options=list(envelope.mail_options),
                data=bytes(envelope.original_content),
            )
        )
        self.arrived.set()
        return "250 2.0.0 queued"


class Sink:
    """Start/stop wrapper; the port is fixed at construction so a restart reuses it."""

    def __init__(self, port: int | None = None, **handler_kw: Any) -> None:
        self.port = port or free_port()
        self.handler = SinkHandler(**handler_kw)
        self._controller: Controller | None = None

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def start(self, **controller_kw: Any) -> Sink:
        self._controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            enable_SMTPUTF8=True,
            **controller_kw,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
