"""``run_poller`` — what ``maruhi serve`` starts — over two real Dovecot mailboxes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from scanner.aio import spawn
from scanner.config import Secret
from scanner.poller.actions import ActionOptions
from scanner.poller.service import PollerService, run_poller
from scanner.poller.settings import ImapServer, PollerSettings
from scanner.poller.source import FolderKind
from scanner.rules.model import CompiledRuleset
from scanner.store.base import Status
from scanner.store.sqlite import SqliteStore
from tests.poller.dovecot import Dovecot, requires_dovecot
from tests.poller.factories import FAST, PASSWORD, make_message
from tests.poller.imap_harness import ImapHarness

SECOND = "suzuki@example.co.jp"

pytestmark = requires_dovecot


def test_run_poller_watches_every_mailbox_and_stops_cleanly(
    tmp_path: Path, ruleset: CompiledRuleset
) -> None:
    """Every configured mailbox is polled concurrently; the stop event ends the coroutine with
    its sources closed; health reports each folder and readiness."""
    harness = ImapHarness()
    harness.server.stop()
    harness.server.users[SECOND] = PASSWORD
    harness.server.start()
    store = SqliteStore(tmp_path / "store")
    settings = PollerSettings(
        backend="imap",
        mailboxes=("tanaka@example.co.jp", SECOND),
        watch=(FolderKind.SENT,),
        loop=FAST,
        actions=ActionOptions(),
        max_concurrency=1,
        imap=ImapServer(
            host="127.0.0.1",
            port=harness.server.port,
            tls="none",
            password=Secret(PASSWORD),
            idle=True,
        ),
    )
    service = PollerService()

    async def main() -> float:
        stop = asyncio.Event()
        task = spawn(run_poller(settings, store, lambda: ruleset, stop, service=service))
        deliver_second(harness.server)
        harness.deliver("Sent", make_message())
        deadline = time.monotonic() + 10
        while len(store.list(status=Status.SENT)) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        stop.set()
        started = time.monotonic()
        await asyncio.wait_for(task, 10)
        return time.monotonic() - started

    try:
        stop_seconds = asyncio.run(main())
    finally:
        store_records = store.list(status=Status.SENT)
        store.close()
        harness.close()
    assert sorted(r.sender for r in store_records) == sorted(["tanaka@example.co.jp", SECOND])
    assert set(service.health()) == {"tanaka@example.co.jp/sent:Sent", f"{SECOND}/sent:Sent"}
    assert service.ready()
    assert stop_seconds < 5


def deliver_second(server: Dovecot) -> None:
    import imapclient  # type: ignore[import-untyped]

    client = imapclient.IMAPClient("127.0.0.1", port=server.port, ssl=False, timeout=10)
    client.login(SECOND, PASSWORD)
    client.append("Sent", make_message(sender=SECOND))
    client.logout()
