"""The one table from a message's outcome (verdict, upstream reply, exception) to an SMTP reply.

Every reply the relay writes after DATA comes from here, so that the promise "never 250 before
the message is safe" can be checked in one place: 250 only for an upstream 2xx (relayed) and for
a durable hold. This module must not contain a secret term, subject or body text: a reject names
rule ids only, and an exception becomes a fixed text with no exception message in it. Hazard:
passing an upstream reply through verbatim must keep its code class; a 4xx from upstream is
always answered 451 so that the client keeps the message and retries.
"""

from __future__ import annotations

import enum
import ssl
from collections.abc import Sequence

from scanner.errors import TransientError


class Outcome(enum.StrEnum):
    """What finally happened to a message; also the ``outcome`` label of metrics and logs."""

    RELAYED = "relayed"  # upstream 2xx
    UPSTREAM_REFUSED = "upstream_refused"  # upstream 5xx, passed through
    UPSTREAM_DEFERRED = "upstream_deferred"  # upstream 4xx → 451
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"  # connect failure, dropped, timeout → 451
    HELD = "held"
    REJECTED = "rejected"
    STORE_FAILED = "store_failed"  # disk full etc. → 451
    SCANNER_BUSY = "scanner_busy"  # no scanner worker free within the queue timeout → 451
    BARE_LF = "bare_lf"  # refused by the bare_lf = "reject" policy
    ERROR = "error"  # anything unexpected → 451 4.3.0


class UpstreamUnavailable(TransientError):
    """The upstream could not be reached, dropped the connection or timed out."""


class ScannerBusy(TransientError):
    """No scanner worker became free within the queue timeout (overload): the client retries."""


# Fixed replies. Enhanced status codes per RFC 3463.
TRY_AGAIN = "451 4.3.0 Temporary local problem, please try again later"
UPSTREAM_UNAVAILABLE = "451 4.4.1 Upstream unavailable, please try again later"
UPSTREAM_TIMEOUT = "451 4.4.2 Upstream timed out, please try again later"
STORE_UNAVAILABLE = "451 4.3.1 Quarantine storage unavailable, please try again later"
SCANNER_BUSY = "451 4.3.0 Content scanner busy, please try again later"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections, try again later"
SHUTTING_DOWN = "421 4.3.2 Service shutting down, try again later"
TOO_BIG = "552 5.3.4 Message size exceeds fixed maximum message size"
BARE_LF = "550 5.6.11 Bare LF line endings are not allowed (RFC 5321 2.3.8)"
HELD = "250 2.0.0 held for review as {qid}"


def held(quarantine_id: str) -> str:
    """The only 250 Maruhi writes itself: after the hold is fsynced and committed."""
    return HELD.format(qid=quarantine_id)


def rejected(rule_ids: Sequence[str]) -> str:
    """``550 5.7.1`` naming the rule ids (never a term)."""
    ids = ", ".join(rule_ids) if rule_ids else "unscannable content"
    return f"550 5.7.1 Message refused by data-loss-prevention policy ({ids})"


def format_reply(code: int, message: str) -> str:
    """An SMTP reply (multi-line if ``message`` has newlines) for aiosmtpd's ``push``."""
    lines = [line.rstrip("\r") for line in message.split("\n")] or [""]
    head = [f"{code}-{line}" for line in lines[:-1]]
    return "\r\n".join([*head, f"{code} {lines[-1]}"])


def upstream_reply(code: int, message: str) -> tuple[str, Outcome]:
    """Translate the upstream's final reply to DATA (or to MAIL/RCPT) for our client."""
    if 200 <= code < 300:
        return format_reply(code, message), Outcome.RELAYED
    if 500 <= code < 600:
        return format_reply(code, message), Outcome.UPSTREAM_REFUSED
    # 4xx (and anything malformed): transient; keep the upstream's enhanced code if it has one.
    enhanced = message.split(" ", 1)[0] if message[:2] == "4." else "4.4.0"
    return f"451 {enhanced} Upstream deferred ({code}), please try again later", (
        Outcome.UPSTREAM_DEFERRED
    )


def for_exception(exc: BaseException) -> tuple[str, Outcome]:
    """Any exception while scanning or acting: a 451, never a silent accept or drop."""
    if isinstance(exc, UpstreamUnavailable):
        cause = type(exc.__cause__).__name__.lower()
        if isinstance(exc.__cause__, TimeoutError) or "timeout" in cause:
            return UPSTREAM_TIMEOUT, Outcome.UPSTREAM_UNAVAILABLE
        return UPSTREAM_UNAVAILABLE, Outcome.UPSTREAM_UNAVAILABLE
    if isinstance(exc, ScannerBusy):
        return SCANNER_BUSY, Outcome.SCANNER_BUSY
    if isinstance(exc, TransientError):
        return STORE_UNAVAILABLE, Outcome.STORE_FAILED
    if isinstance(exc, ssl.SSLError):
        return UPSTREAM_UNAVAILABLE, Outcome.UPSTREAM_UNAVAILABLE
    return TRY_AGAIN, Outcome.ERROR
