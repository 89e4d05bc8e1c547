"""``ImapSource`` against a real Dovecot: UID cursors with UIDVALIDITY, keywords, IDLE hints."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from scanner.aio import spawn
from scanner.poller.imap import ImapSource, keyword
from scanner.poller.loop import FolderPoller
from scanner.poller.source import CursorInvalidError
from scanner.rules.model import CompiledRuleset
from scanner.store.sqlite import SqliteStore
from tests.poller.dovecot import requires_dovecot
from tests.poller.factories import FAST, make_message
from tests.poller.imap_harness import ImapHarness

pytestmark = requires_dovecot


@pytest.fixture
def imap() -> Iterator[ImapHarness]:
    h = ImapHarness()
    yield h
    h.close()


@pytest.mark.parametrize(
    ("tag", "atom"),
    [
        ("Maruhi-Incident", "Maruhi-Incident"),
        ("Maruhi: ACME Corp (falcon) → a@x.example", "Maruhi:_ACME_Corp__falcon____a@x.example"),
        ("顧客 (falcon)", "falcon"),
        ('"%*\\]', "Maruhi"),
    ],
)
def test_tags_become_keyword_atoms(tag: str, atom: str) -> None:
    """A tag maps to an IMAP atom: no spaces, atom-specials or 8-bit characters."""
    assert keyword(tag) == atom


def test_uidvalidity_change_invalidates_the_cursor(imap: ImapHarness) -> None:
    """A cursor from before the folder was recreated is refused, not misread as new UIDs."""
    imap.deliver("Sent", make_message())
    source = imap.source()
    try:
        cursor = source.changes(imap.sent, None, limit=10).cursor
        imap.invalidate_cursors()
        with pytest.raises(CursorInvalidError):
            source.changes(imap.sent, cursor, limit=10)
    finally:
        source.close()


def test_uid_star_never_repeats_the_last_message(imap: ImapHarness) -> None:
    """`UID n:*` matches the highest UID even below n; a quiet folder still lists nothing."""
    imap.deliver("Sent", make_message())
    source = imap.source()
    try:
        cursor = source.changes(imap.sent, None, limit=10).cursor
        assert source.changes(imap.sent, cursor, limit=10).items == ()
    finally:
        source.close()


def test_idle_wakes_the_loop_before_the_interval(
    imap: ImapHarness, tmp_path: Path, ruleset: CompiledRuleset
) -> None:
    """With IDLE hints, mail appended while the loop waits is picked up long before the
    (here: one minute) polling interval."""
    store = SqliteStore(tmp_path / "store")
    source = imap.source()
    assert isinstance(source, ImapSource)
    hints = ThreadPoolExecutor(max_workers=1)
    options = FAST.__class__(**{**FAST.__dict__, "interval": 60.0, "hint_slice": 1.0})
    poller = FolderPoller(
        source=source,
        folder=imap.sent,
        store=store,
        rules=lambda: ruleset,
        options=options,
        hints=hints,
    )

    async def main() -> float:
        stop = asyncio.Event()
        task = spawn(poller.run(stop), name="idle-test")
        while poller.health.passes < 1:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # the loop is now in IDLE
        started = time.monotonic()
        threading.Thread(target=imap.deliver, args=("Sent", make_message())).start()
        while poller.health.incidents < 1 and time.monotonic() - started < 10:
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - started
        stop.set()
        await asyncio.wait_for(task, 5)
        return elapsed

    try:
        elapsed = asyncio.run(main())
    finally:
        source.close()
        hints.shutdown(wait=True)
        store.close()
    assert poller.health.incidents == 1
    assert elapsed < 5.0
