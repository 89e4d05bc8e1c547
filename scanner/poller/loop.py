"""The poll loop of one watched folder: changes since the cursor → dedupe → fetch → scan → act.

It owns the order that makes the poller at-least-once and repeat-free: the cursor is committed
only after every item of its batch has been processed, and every action is guarded by the ledger
(mailbox + dedupe key + ruleset version), so a crash, a restart or a full resync after an invalid
cursor re-reads items but never repeats an incident. It also owns the backoff: throttling, outages
and rejected credentials slow the loop down and show up in ``FolderHealth``; nothing here crashes
the daemon. It must not block the event loop (store and source calls run in threads; ``scan``
runs through the injected ``ScanFn``) and never logs content: events carry mailbox, folder,
counts, rule ids and error types. Hazard: the first pass over a big Sent Items folder is a
flood; batches are bounded and fetched in one round trip each.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import random
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from scanner.errors import MaruhiError, TransientError
from scanner.logs import get_logger
from scanner.model import Envelope, Verdict
from scanner.poller.actions import ActionOptions, Plan, owners_of, plan
from scanner.poller.journal import unpack_journal
from scanner.poller.source import (
    CredentialError,
    CursorInvalidError,
    FolderKind,
    ItemRef,
    MailItem,
    MailSource,
    ThrottledError,
    WatchedFolder,
)
from scanner.rules.model import CompiledRuleset
from scanner.scan import scan
from scanner.store.base import QuarantineStore

_log = get_logger("maruhi.poller")

RulesetProvider = Callable[[], CompiledRuleset]
"""The active compiled ruleset (the relay's hot-swapped reference, or a fixed one)."""

ScanFn = Callable[[bytes, Envelope, CompiledRuleset], Awaitable[Verdict]]
"""Runs ``scan()`` off the event loop and returns the verdict."""


# One scanning thread: a compiled matcher may keep per-database scratch space (hyperscan raises
# ScratchInUseError when two threads scan with one database at once), and scan() holds the GIL
# anyway, so a second thread would add contention, not throughput. ``maruhi serve`` passes the
# relay's process pool instead.
_SCAN_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="maruhi-poll-scan")


async def thread_scan(raw: bytes, envelope: Envelope, ruleset: CompiledRuleset) -> Verdict:
    """The default ``ScanFn``: the pure ``scan()`` on the poller's scanning thread, dated today."""
    call = functools.partial(
        scan, raw, envelope, ruleset, today=dt.date.today(), clock=time.monotonic
    )
    return await asyncio.get_running_loop().run_in_executor(_SCAN_THREAD, call)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LoopOptions:
    """Pacing of one folder's loop; every value in seconds except ``batch``."""

    batch: int = 100  # items per change listing and per fetch round trip
    interval: float = 60.0  # between passes when nothing hints at a change
    backoff_first: float = 5.0
    backoff_max: float = 900.0  # outages and rejected credentials retry at least this often
    max_retry_after: float = 3600.0  # a server's Retry-After above this is capped
    hint_slice: float = 5.0  # longest blocking wait for a push hint (bounds shutdown latency)


@dataclass
class FolderHealth:
    """What metrics and ``/readyz`` report about one watched folder."""

    state: str = "starting"  # ok | throttled | unavailable | credentials | error
    last_success: datetime | None = None
    last_error: str | None = None  # an error class name, never a message
    consecutive_failures: int = 0
    passes: int = 0
    listed: int = 0
    fetched: int = 0
    scanned: int = 0
    deduped: int = 0
    incidents: int = 0
    tagged: int = 0
    moved: int = 0
    remediation_failures: int = 0
    resyncs: int = 0
    throttled: int = 0


@dataclass(frozen=True)
class PassReport:
    """What one pass did (for tests and the benchmark)."""

    listed: int
    fetched: int
    scanned: int
    deduped: int
    incidents: tuple[str, ...]
    resynced: bool


def expand_recipients(
    recipients: tuple[str, ...], groups: dict[str, tuple[str, ...]]
) -> tuple[str, ...]:
    """Each list replaced by its members (in order, without repeats), so the scope check —
    and the out-of-scope list of an incident — names the member, not the list."""
    out: dict[str, None] = {}
    for rcpt in recipients:
        for address in groups.get(rcpt, (rcpt,)):
            out.setdefault(address, None)
    return tuple(out)


def dedupe_key(kind: FolderKind, item: MailItem) -> str:
    """The ledger key: the Internet-Message-ID for sent mail; for a draft also its content,
    so an edited draft is checked again (its Message-ID, if any, does not change)."""
    if kind is FolderKind.DRAFTS:
        return "draft:" + hashlib.sha256(item.raw).hexdigest()[:32]
    return _listing_key(item.ref) if item.message_id is None else f"mid:{item.message_id}"


def _listing_key(ref: ItemRef) -> str:
    return f"mid:{ref.message_id}" if ref.message_id else f"item:{ref.item_id}"


@dataclass
class FolderPoller:
    """Polls one folder of one mailbox through ``source``; ``poll_once`` is one full pass."""

    source: MailSource
    folder: WatchedFolder
    store: QuarantineStore
    rules: RulesetProvider
    scan_fn: ScanFn = thread_scan
    actions: ActionOptions = field(default_factory=ActionOptions)
    options: LoopOptions = field(default_factory=LoopOptions)
    now: Callable[[], datetime] = _utcnow
    health: FolderHealth = field(default_factory=FolderHealth)
    # Where blocking push waits (IMAP IDLE) run; None: no push hints, the loop sleeps instead.
    hints: Executor | None = None
    # Shared by the folders of one service: at most N passes at once (server politeness).
    gate: asyncio.Semaphore | None = None
    _quarantine_handle: str | None = None

    # -- one pass ------------------------------------------------------------------------------

    async def poll_once(self) -> PassReport:
        """Drain every change since the committed cursor, committing after each batch."""
        folder = self.folder
        cursor = await asyncio.to_thread(self.store.poll_cursor, folder.mailbox, folder.key)
        listed = fetched = scanned = deduped = 0
        incidents: list[str] = []
        resynced = False
        while True:
            try:
                changes = await asyncio.to_thread(
                    self.source.changes, folder, cursor, limit=self.options.batch
                )
            except CursorInvalidError:
                if resynced:
                    raise  # invalid again right after a reset: a server problem, back off
                resynced = True
                self.health.resyncs += 1
                _log.warning("poller.resync", mailbox=folder.mailbox, folder=folder.key)
                cursor = None
                continue
            # A provider may recompile a changed rules file: never on the event loop.
            ruleset = await asyncio.to_thread(self.rules)
            todo = await asyncio.to_thread(self._not_yet_processed, changes.items, ruleset)
            listed += len(changes.items)
            deduped += len(changes.items) - len(todo)
            items = await asyncio.to_thread(self.source.fetch, folder, todo) if todo else []
            fetched += len(items)
            if folder.kind is FolderKind.JOURNAL:
                # Judge the journaled message with its real envelope, not the report's.
                items = [unpack_journal(item) for item in items]
            seen_now: set[str] = set()
            marks: list[tuple[str, str, str]] = []  # committed with the cursor, below
            for item in items:
                key = dedupe_key(folder.kind, item)
                done = await asyncio.to_thread(
                    self.store.processed, folder.mailbox, key, ruleset.version
                )
                if key in seen_now or done is not None:
                    deduped += 1
                    continue
                seen_now.add(key)
                groups = await asyncio.to_thread(
                    self.source.expand, folder, item, ruleset.internal_domains
                )
                if groups:
                    item = dataclasses.replace(
                        item, recipients=expand_recipients(item.recipients, groups)
                    )
                verdict = await self.scan_fn(
                    item.raw, Envelope(item.sender, item.recipients), ruleset
                )
                scanned += 1
                qid, outcome = await self._act(item, key, verdict, ruleset)
                if qid is not None:
                    incidents.append(qid)
                else:
                    marks.append((key, verdict.ruleset_version, outcome))
            # Every item of the batch is processed: only now may the cursor move past it, in
            # the same transaction as the batch's ledger entries (an idle folder writes nothing).
            if marks or changes.cursor != cursor:
                await asyncio.to_thread(
                    self.store.commit_poll_batch,
                    folder.mailbox,
                    folder.key,
                    changes.cursor,
                    marks,
                    now=self.now(),
                )
            cursor = changes.cursor
            if not changes.more:
                break
        h = self.health
        h.passes += 1
        h.listed += listed
        h.fetched += fetched
        h.scanned += scanned
        h.deduped += deduped
        return PassReport(listed, fetched, scanned, deduped, tuple(incidents), resynced)

    def _not_yet_processed(
        self, refs: tuple[ItemRef, ...], ruleset: CompiledRuleset
    ) -> list[ItemRef]:
        """Refs whose Internet-Message-ID the ledger does not know yet (drafts: all of them,
        since their key depends on content): a resync re-lists but does not re-fetch."""
        if self.folder.kind is FolderKind.DRAFTS:
            return list(refs)
        todo: list[ItemRef] = []
        for ref in refs:
            if (
                ref.message_id
                and self.store.processed(self.folder.mailbox, _listing_key(ref), ruleset.version)
                is not None
            ):
                continue
            todo.append(ref)
        return todo

    async def _act(
        self, item: MailItem, key: str, verdict: Verdict, ruleset: CompiledRuleset
    ) -> tuple[str | None, str]:
        """Perform the plan; returns the incident id (if one was recorded) and the outcome."""
        folder = self.folder
        decided: Plan = plan(folder.kind, verdict, ruleset, self.actions)
        log = _log.bind(
            mailbox=folder.mailbox,
            folder=folder.key,
            verdict=verdict.action.label,
            rules=list(verdict.rule_ids),
            outcome=decided.outcome,
        )
        qid: str | None = None
        if decided.incident:
            # The record first: it is what compliance needs, and the ledger entry it writes
            # in the same transaction is what stops a resync from recording it twice.
            qid = await asyncio.to_thread(
                self.store.record_incident,
                item.raw,
                Envelope(item.sender, item.recipients),
                verdict,
                received_at=self.now(),
                source=self.source.name,
                mailbox=folder.mailbox,
                folder=folder.key,
                item_id=item.ref.item_id,
                message_id=item.message_id,
                dedupe_key=key,
                subject=item.subject,
                owners=owners_of(verdict, ruleset),
                compliance=self.actions.compliance,
            )
            self.health.incidents += 1
        if decided.tags or decided.move_to:
            await self._remediate(item.ref, decided)
        log.info("poller.item", quarantine_id=qid, size=len(item.raw))
        return qid, decided.outcome

    async def _remediate(self, ref: ItemRef, decided: Plan) -> None:
        """Tag, then move. Advisory: a failure is counted and logged, the record stands."""
        folder = self.folder
        try:
            if decided.tags:
                ref = await asyncio.to_thread(self.source.tag, folder, ref, decided.tags)
                self.health.tagged += 1
            if decided.move_to:
                if self._quarantine_handle is None:
                    self._quarantine_handle = await asyncio.to_thread(
                        self.source.ensure_folder, folder.mailbox, decided.move_to
                    )
                await asyncio.to_thread(self.source.move, folder, ref, self._quarantine_handle)
                self.health.moved += 1
        except MaruhiError as exc:
            self.health.remediation_failures += 1
            _log.warning(
                "poller.remediation_failed",
                mailbox=folder.mailbox,
                folder=folder.key,
                error=type(exc).__name__,
            )

    # -- the loop ------------------------------------------------------------------------------

    def _backoff(self) -> float:
        n = self.health.consecutive_failures
        growth = 2.0 ** min(max(0, n - 1), 20)
        base = min(self.options.backoff_max, self.options.backoff_first * growth)
        jitter: float = random.uniform(0.8, 1.0)
        return base * jitter  # jitter: 200 mailboxes must not retry in step

    async def run(self, stop: asyncio.Event) -> None:
        """Pass after pass until ``stop`` is set; never raises except on cancellation."""
        folder = self.folder
        h = self.health
        while not stop.is_set():
            wait = self.options.interval
            try:
                async with self.gate or contextlib.nullcontext():
                    await self.poll_once()
            except ThrottledError as exc:
                h.state, h.last_error = "throttled", type(exc).__name__
                h.throttled += 1
                wait = min(max(exc.retry_after, 1.0), self.options.max_retry_after)
                _log.warning(
                    "poller.throttled", mailbox=folder.mailbox, folder=folder.key, retry_after=wait
                )
            except CredentialError as exc:
                h.consecutive_failures += 1
                h.state, h.last_error = "credentials", type(exc).__name__
                wait = self.options.backoff_max
                _log.error(
                    "poller.credentials_rejected",
                    mailbox=folder.mailbox,
                    folder=folder.key,
                    source=self.source.name,
                )
            except (TransientError, CursorInvalidError) as exc:
                h.consecutive_failures += 1
                h.state, h.last_error = "unavailable", type(exc).__name__
                wait = self._backoff()
                _log.warning(
                    "poller.unavailable",
                    mailbox=folder.mailbox,
                    folder=folder.key,
                    error=type(exc).__name__,
                    retry_in=round(wait, 1),
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug or an unexpected reply: keep the loop alive
                h.consecutive_failures += 1
                h.state, h.last_error = "error", type(exc).__name__
                wait = self._backoff()
                _log.error(
                    "poller.pass_failed",
                    mailbox=folder.mailbox,
                    folder=folder.key,
                    error=type(exc).__name__,
                )
            else:
                h.state, h.last_error, h.consecutive_failures = "ok", None, 0
                h.last_success = self.now()
            try:
                await self._wait(stop, wait, hint=h.state == "ok")
            except Exception as exc:  # a broken wake-up hint must not end this folder's loop
                _log.warning("poller.hint_failed", mailbox=folder.mailbox, folder=folder.key,
                             error=type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)

    async def _wait(self, stop: asyncio.Event, seconds: float, *, hint: bool) -> None:
        """Sleep until ``seconds`` pass, ``stop`` is set, or (after a good pass) the source
        hints at a change; a push wait is sliced so shutdown never waits long for it."""
        deadline = time.monotonic() + seconds
        pushes = type(self.source).wait_for_changes is not MailSource.wait_for_changes
        executor = self.hints if hint and pushes else None
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if executor is not None:
                slice_ = min(left, self.options.hint_slice)
                if await loop.run_in_executor(
                    executor, self.source.wait_for_changes, self.folder, slice_
                ):
                    return
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=left)
