"""The outbox worker: delivers released messages and notices that the store has queued.

Owns the delivery of outbox items to the upstream over SMTP (aiosmtplib) and the retry policy
(exponential backoff, permanent failure on 5xx or after ``GIVE_UP_AFTER``); it must not decide
anything about a message (the store's ``release``/``reject`` did) and never calls the store on
the event loop (every call goes through ``asyncio.to_thread``). Its hazards: (1) marking an item
done before the upstream's 250 would lose mail, so ``complete`` is called only after DATA is
accepted; (2) a crash after that 250 and before ``complete`` re-delivers the item once the lease
expires — at-least-once, with the Message-ID unchanged so that duplicates can be recognized;
(3) logs carry ids, kinds and SMTP codes only, never addresses' mail content or reply texts.
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiosmtplib
import structlog

from scanner.notify.compose import NoticeOptions, compose_notice
from scanner.outbox.target import UpstreamTarget
from scanner.store.base import (
    ContentGoneError,
    NotFoundError,
    OutboxItem,
    OutboxKind,
    QuarantineStore,
)

_log = structlog.get_logger("maruhi.outbox")

LEASE_SECONDS = 300.0  # longer than one delivery can take (connect + 5 commands × timeout)
BATCH = 20  # items per claim: bounded work per round, other instances get the rest
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
# Like an MTA's queue lifetime: after this long of temporary failures the item fails for good
# (visible as release_failed / notice_failed, audited), instead of retrying forever unseen.
GIVE_UP_AFTER = timedelta(days=5)

# MAIL FROM parameters worth replaying on release, and the EHLO keyword each needs.
_REPLAYABLE = {"SIZE": "size", "BODY": "8bitmime", "SMTPUTF8": "smtputf8"}


class DeliveryError(Exception):
    """One failed delivery attempt; ``kind`` is short and content-free (``smtp-451``)."""

    def __init__(self, kind: str, permanent: bool) -> None:
        self.kind = kind
        self.permanent = permanent
        super().__init__(kind)


@dataclass(frozen=True)
class SmtpEnvelope:
    """What goes on the wire before DATA: reverse-path, forward-paths, MAIL FROM parameters."""

    sender: str
    recipients: tuple[str, ...]
    mail_options: tuple[str, ...] = ()


def replay_options(options: Sequence[str], supported: Callable[[str], bool]) -> list[str]:
    """The MAIL FROM parameters to send upstream: known ones the upstream advertises.

    SMTPUTF8 is kept even when not advertised: the upstream must then refuse (5xx) rather than
    we silently send a UTF-8 envelope it cannot handle.
    """
    kept = []
    for option in options:
        keyword = option.partition("=")[0].upper()
        ext = _REPLAYABLE.get(keyword)
        if ext is None:
            continue
        if keyword == "BODY" and option.partition("=")[2].upper() not in ("7BIT", "8BITMIME"):
            continue  # BINARYMIME needs BDAT (CHUNKING); we re-inject with DATA
        if keyword == "SMTPUTF8" or supported(ext):
            kept.append(option)
    return kept


def _tls_kwargs(target: UpstreamTarget) -> dict[str, object]:
    if target.tls == "none":
        return {"start_tls": False}
    context = ssl.create_default_context(cafile=str(target.ca_file) if target.ca_file else None)
    if target.tls == "required":
        return {"start_tls": True, "tls_context": context}
    if target.ca_file is None:
        # Opportunistic without a CA: encrypt if offered, as MTAs do (RFC 7435), don't verify.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return {"start_tls": None, "tls_context": context}


async def smtp_send(target: UpstreamTarget, envelope: SmtpEnvelope, data: bytes) -> list[int]:
    """One SMTP transaction; returns only after the upstream accepted DATA with 2xx.

    Returns the 5xx codes of recipients the upstream refused (empty: all accepted).

    All recipients or none: if any RCPT gets a 4xx the transaction is reset and retried later as
    a whole (so no recipient gets it twice); recipients refused with 5xx are dropped from the
    transaction (as an MTA would bounce them) and the rest delivered; all refused → permanent.
    """
    client = aiosmtplib.SMTP(
        hostname=target.host,
        port=target.port,
        timeout=target.timeout,
        local_hostname=target.helo_name or platform.node() or "localhost",
        username=target.username or None,
        password=target.password.reveal() if target.password is not None else None,
        **_tls_kwargs(target),  # type: ignore[arg-type]
    )
    try:
        try:
            await client.connect()
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(f"smtp-{exc.code}", exc.code >= 500) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError("connect", False) from exc
        try:
            if client.last_ehlo_response is None:  # connect() only greets when it did STARTTLS
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()  # an old upstream: no extensions, no options replayed
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(f"smtp-{exc.code}", exc.code >= 500) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError("disconnected", False) from exc
        options = replay_options(envelope.mail_options, client.supports_extension)
        utf8 = any(o.upper() == "SMTPUTF8" for o in options)
        encoding = "utf-8" if utf8 else "ascii"
        try:
            await client.mail(envelope.sender, options=options, encoding=encoding)
            refused: list[int] = []
            for rcpt in envelope.recipients:
                try:
                    await client.rcpt(rcpt, encoding=encoding)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    if exc.code < 500:
                        await client.rset()
                        raise DeliveryError(f"smtp-{exc.code}", False) from exc
                    refused.append(exc.code)
            if len(refused) == len(envelope.recipients):
                await client.rset()
                raise DeliveryError(f"smtp-{refused[0]}", True)
            await client.data(data)
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(f"smtp-{exc.code}", exc.code >= 500) from exc
        except UnicodeEncodeError as exc:
            # A non-ASCII address without SMTPUTF8: the upstream cannot take it as it is.
            raise DeliveryError("smtputf8-required", True) from exc
        except aiosmtplib.SMTPTimeoutError as exc:
            raise DeliveryError("timeout", False) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError("disconnected", False) from exc
        return refused
    finally:
        if client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


def next_attempt(item: OutboxItem, now: datetime) -> datetime:
    """Exponential backoff from the number of attempts made so far, capped."""
    delay = BACKOFF_FIRST * (1 << max(0, min(item.attempts - 1, 16)))
    return now + min(delay, BACKOFF_MAX)


async def _deliver_one(
    store: QuarantineStore,
    item: OutboxItem,
    target: UpstreamTarget,
    notices: NoticeOptions,
    now: datetime,
) -> None:
    record = await asyncio.to_thread(store.get, item.quarantine_id)
    if item.kind is OutboxKind.DELIVER:
        try:
            raw = await asyncio.to_thread(store.raw, item.quarantine_id)
        except ContentGoneError as exc:
            raise DeliveryError("content-gone", True) from exc
        envelope = SmtpEnvelope(record.sender, record.recipients, record.mail_options)
        refused = await smtp_send(target, envelope, raw)
        if refused:
            # Delivered to the others; the refused recipients are recorded, not silently lost.
            await asyncio.to_thread(
                store.append_audit,
                actor="outbox",
                action="release_partial",
                object_id=item.quarantine_id,
                details={"refused": len(refused), "codes": sorted(set(refused))},
                now=now,
            )
            _log.warning("outbox.partial", refused=len(refused), codes=sorted(set(refused)))
    else:
        notice = compose_notice(item, record, notices, now=now)
        await smtp_send(target, SmtpEnvelope(notice.sender, notice.recipients), notice.as_bytes())


async def run_outbox_once(
    store: QuarantineStore,
    upstream: UpstreamTarget,
    *,
    now_fn: Callable[[], datetime],
    worker_id: str,
    notices: NoticeOptions | None = None,
    quarantine_id: str | None = None,
    limit: int = BATCH,
    lease_seconds: float = LEASE_SECONDS,
) -> int:
    """Claim due items and try each once; returns how many were delivered.

    Failures are recorded in the store (retry later, or failed for good and audited); nothing
    claimed is ever left without an outcome other than by a crash, which the lease covers.
    """
    notices = notices or NoticeOptions()
    items = await asyncio.to_thread(
        store.claim_outbox,
        limit=limit,
        worker_id=worker_id,
        now=now_fn(),
        lease_seconds=lease_seconds,
        quarantine_id=quarantine_id,
    )
    delivered = 0
    for item in items:
        log = _log.bind(
            item=item.id,
            kind=item.kind.value,
            quarantine_id=item.quarantine_id,
            attempt=item.attempts,
        )
        try:
            await _deliver_one(store, item, upstream, notices, now_fn())
        except DeliveryError as exc:
            now = now_fn()
            permanent = exc.permanent or now - item.created_at >= GIVE_UP_AFTER
            kind = exc.kind if exc.permanent or not permanent else f"gave-up-{exc.kind}"
            retry_at = None if permanent else next_attempt(item, now)
            await asyncio.to_thread(
                store.fail, item.id, error_kind=kind, retry_at=retry_at, now=now
            )
            log.warning("outbox.failed", error=kind, permanent=permanent)
            continue
        except NotFoundError:
            # The record vanished (cannot happen with the embedded store): fail it visibly.
            await asyncio.to_thread(
                store.fail, item.id, error_kind="record-missing", retry_at=None, now=now_fn()
            )
            log.error("outbox.failed", error="record-missing", permanent=True)
            continue
        except Exception as exc:
            # Unknown trouble (store I/O, a bug): retry later rather than lose the item.
            now = now_fn()
            # If even this fails, the lease expires and the item is claimed again.
            with contextlib.suppress(Exception):
                await asyncio.to_thread(
                    store.fail,
                    item.id,
                    error_kind=type(exc).__name__,
                    retry_at=next_attempt(item, now),
                    now=now,
                )
            log.error("outbox.error", error=type(exc).__name__)
            continue
        await asyncio.to_thread(store.complete, item.id, now=now_fn())
        log.info("outbox.delivered")
        delivered += 1
    return delivered


async def run_outbox_loop(
    store: QuarantineStore,
    upstream: UpstreamTarget,
    *,
    stop: asyncio.Event,
    now_fn: Callable[[], datetime],
    worker_id: str,
    notices: NoticeOptions | None = None,
    wake: asyncio.Event | None = None,
    interval: float = 2.0,
) -> None:
    """Run ``run_outbox_once`` until ``stop`` is set; ``wake`` shortens the wait (after a hold).

    Never raises for a failing round: store trouble is logged and retried after ``interval``.
    """
    wake = wake or asyncio.Event()
    while not stop.is_set():
        try:
            delivered = await run_outbox_once(
                store, upstream, now_fn=now_fn, worker_id=worker_id, notices=notices
            )
        except Exception as exc:
            _log.error("outbox.round_failed", error=type(exc).__name__)
            delivered = 0
        if delivered:
            continue  # more may be due: go again without waiting
        wake.clear()
        await _wait_any(stop, wake, interval)


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, timeout: float) -> None:
    """Wait until ``stop`` or ``wake`` is set, or ``timeout`` passes."""
    async with asyncio.TaskGroup() as tg:
        watchers = [tg.create_task(stop.wait()), tg.create_task(wake.wait())]
        await asyncio.wait(watchers, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for watcher in watchers:
            watcher.cancel()
