"""The poller as a service: builds sources and one ``FolderPoller`` per watched folder from
``PollerSettings`` and runs them until a stop event — ``run_poller`` is what ``maruhi poll``
and ``maruhi serve`` start.

It owns the fan-out (one task per mailbox folder, started with ``scanner.aio.spawn``), the
politeness gate (at most ``max_concurrency`` passes at once), the IDLE hint threads (a private
executor, so blocking IDLE waits never starve the default one that store and source calls use)
and the health snapshot for metrics and ``/readyz``. It must not scan or decide itself.
Hazard: shutdown — every task is cancelled and every source closed on the way out, even when a
backend call is still blocked in a thread (that thread finishes on its own timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from scanner.aio import spawn
from scanner.logs import get_logger
from scanner.poller.loop import FolderHealth, FolderPoller, RulesetProvider, ScanFn, thread_scan
from scanner.poller.settings import PollerSettings
from scanner.poller.source import FolderKind, MailSource, WatchedFolder
from scanner.store.base import QuarantineStore

_log = get_logger("maruhi.poller")


def build_sources(settings: PollerSettings) -> list[tuple[MailSource, WatchedFolder]]:
    """One (source, folder) pair per watched folder; EWS and Graph share one source (one
    service identity), IMAP has one connection per mailbox."""
    pairs: list[tuple[MailSource, WatchedFolder]] = []
    targets: list[tuple[str, FolderKind]] = [
        (m, k) for m in settings.mailboxes for k in settings.watch if k is not FolderKind.JOURNAL
    ]
    targets += [(m, FolderKind.JOURNAL) for m in settings.journal_mailboxes]
    shared: MailSource | None = None
    if settings.backend == "ews":
        from scanner.poller.ews import EwsSource

        assert settings.ews is not None
        shared = EwsSource(settings.ews)
    elif settings.backend == "graph":
        from scanner.poller.graph import GraphSource

        assert settings.graph is not None
        shared = GraphSource(settings.graph)
    per_mailbox: dict[str, MailSource] = {}
    for mailbox, kind in targets:
        folder = WatchedFolder(mailbox, settings.folder_name(kind), kind)
        source = shared
        if source is None:
            from scanner.poller.imap import ImapSource

            assert settings.imap is not None
            source = per_mailbox.get(mailbox)
            if source is None:
                source = per_mailbox[mailbox] = ImapSource(settings.imap.account(mailbox))
        pairs.append((source, folder))
    return pairs


@dataclass
class PollerService:
    """The running pollers; ``health()`` is for metrics and ``/readyz``."""

    pollers: list[FolderPoller] = field(default_factory=list)

    def health(self) -> dict[str, FolderHealth]:
        return {f"{p.folder.mailbox}/{p.folder.key}": p.health for p in self.pollers}

    def ready(self) -> bool:
        """Ready when no folder is stuck on rejected credentials (throttling is not unready)."""
        return all(p.health.state != "credentials" for p in self.pollers)


async def run_poller(
    settings: PollerSettings,
    store: QuarantineStore,
    ruleset_provider: RulesetProvider,
    stop_event: asyncio.Event,
    *,
    scan_fn: ScanFn = thread_scan,
    service: PollerService | None = None,
) -> None:
    """Poll every configured folder until ``stop_event`` is set; returns after cleanup.

    ``ruleset_provider`` returns the active compiled ruleset (the relay's hot-swapped one under
    ``maruhi serve``); ``scan_fn`` runs ``scan()`` off the loop (default: a worker thread; the
    relay may pass its process pool). Pass ``service`` to read health while it runs.
    """
    service = service or PollerService()
    pairs = build_sources(settings)
    gate = asyncio.Semaphore(settings.max_concurrency)
    idle = settings.imap is not None and settings.imap.idle
    hints = (
        ThreadPoolExecutor(max_workers=len(pairs), thread_name_prefix="maruhi-idle")
        if (idle and pairs)
        else None
    )
    tasks = []
    for source, folder in pairs:
        poller = FolderPoller(
            source=source,
            folder=folder,
            store=store,
            rules=ruleset_provider,
            scan_fn=scan_fn,
            actions=settings.actions,
            options=settings.loop,
            hints=hints,
            gate=gate,
        )
        service.pollers.append(poller)
        tasks.append(spawn(poller.run(stop_event), name=f"poller:{folder.mailbox}:{folder.key}"))
    _log.info("poller.started", backend=settings.backend, folders=len(pairs))
    try:
        await stop_event.wait()
    finally:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        if hints is not None:
            # IDLE waits end within hint_slice; let them, so no connection is closed under them.
            await asyncio.to_thread(hints.shutdown, wait=True, cancel_futures=True)
        for source in _unique(s for s, _ in pairs):
            with contextlib.suppress(Exception):  # closing is best effort on shutdown
                await asyncio.to_thread(source.close)
        _log.info("poller.stopped", backend=settings.backend)


def _unique(sources: Iterator[MailSource] | list[MailSource]) -> list[MailSource]:
    seen: dict[int, MailSource] = {}
    for source in sources:
        seen.setdefault(id(source), source)
    return list(seen.values())
