"""Structured logging: structlog configured once by the entry point, JSON lines on stderr.

This module owns the processor chain and the context binding of a message (``message_id``,
``peer``, ``source``) through contextvars, so every event logged while a message is handled
carries them without passing a logger around. It must not be imported by the scan core, and no
caller may log a term, subject, body, attachment text or header value: events carry rule ids,
locations, sizes, codes and durations only. Hazard: aiosmtpd logs every SMTP command (addresses
included) to the stdlib ``mail.log`` logger at INFO; ``configure`` raises that logger to WARNING.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import structlog

_configured = False


def configure(level: str = "info", fmt: str = "json", *, stream: TextIO | None = None) -> None:
    """Set up structlog and the stdlib root logger; later calls change nothing."""
    global _configured
    if _configured:
        return
    _configured = True
    numeric = logging.getLevelNamesMapping()[level.upper()]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Third-party stdlib logging: warnings and up only; aiosmtpd's INFO lines contain addresses.
    logging.basicConfig(level=logging.WARNING, stream=stream or sys.stderr,
                        format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)


@contextmanager
def bind_message(**ids: str | None) -> Iterator[None]:
    """Bind ``message_id``/``peer``/``source`` for every event logged inside the block."""
    clean = {k: v for k, v in ids.items() if v is not None}
    with structlog.contextvars.bound_contextvars(**clean):
        yield


def get_logger(name: str) -> Any:
    """A structlog logger; event names are dotted (``scan.finished``, ``rules.reloaded``)."""
    return structlog.get_logger(name)
