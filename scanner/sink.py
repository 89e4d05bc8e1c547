"""A local upstream for the demo: an SMTP server that stores each delivered message as a file.

``maruhi sink --listen 127.0.0.1:10026 --dir var/sink`` stands in for the real MTA behind the
relay, so that the README's first commands show what got through (and with which
``X-Maruhi-*`` headers). It logs one line per message: file name, size, recipient count and the
Maruhi headers (rule ids only). It must not be used as a real MTA: it never delivers anywhere.
Hazard: files are written tmp → rename in a thread, so a reader never sees half a message and
the loop never blocks on the disk.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from scanner.logs import get_logger

_log = get_logger("maruhi.sink")


def _maruhi_headers(raw: bytes) -> dict[str, str]:
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    found: dict[str, str] = {}
    for line in head.splitlines():
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() in (b"x-maruhi-verdict", b"x-maruhi-rules"):
            found[name.strip().decode("ascii", "replace").lower()] = value.strip().decode(
                "utf-8", "replace")
    return found


class SinkHandler:
    """Stores every message under ``directory`` and answers 250 once it is on disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._counter = itertools.count(1)
        self.count = 0

    def _write(self, name: str, raw: bytes) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / name
        tmp = self.directory / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.rename(final)
        return final

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{next(self._counter):06d}.eml"
        path = await asyncio.to_thread(self._write, name, raw)
        self.count += 1
        _log.info("sink.delivered", file=str(path), size=len(raw),
                  recipients=len(envelope.rcpt_tos), **_maruhi_headers(raw))
        return f"250 2.0.0 OK stored as {name}"


async def start_sink(host: str, port: int, directory: Path) -> tuple[asyncio.Server,
                                                                     SinkHandler]:
    handler = SinkHandler(directory)
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return SMTP(handler, hostname="maruhi-sink", ident="Maruhi sink",
                    enable_SMTPUTF8=True, data_size_limit=None, loop=loop)

    server = await loop.create_server(factory, host, port, reuse_address=True)
    return server, handler


async def run_sink(host: str, port: int, directory: Path) -> int:
    server, _ = await start_sink(host, port, directory)
    sock: Any = server.sockets[0].getsockname()
    _log.info("sink.listening", listen=f"{sock[0]}:{sock[1]}", dir=str(directory))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()
    return 0
