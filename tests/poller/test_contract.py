"""The source contract, run unchanged against every backend (real Dovecot, EWS and Graph
stand-ins): initial sync, incremental, hold/move, restart, resync dedupe, backoff, credentials."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterator

import pytest
import structlog

from scanner.aio import spawn
from scanner.poller.actions import INCIDENT_TAG, ActionOptions
from scanner.poller.loop import FolderPoller, PassReport
from scanner.poller.source import MailSource, WatchedFolder
from scanner.rules.model import CompiledRuleset
from scanner.store.base import NoticeKind, Status
from scanner.store.sqlite import SqliteStore
from tests.poller.factories import FAST, MAILBOX, PASSWORD, SECRET, make_message
from tests.poller.harness import Harness


@contextlib.contextmanager
def poller(
    harness: Harness,
    store: SqliteStore,
    ruleset: CompiledRuleset,
    *,
    folder: WatchedFolder | None = None,
    actions: ActionOptions | None = None,
    password: str | None = None,
) -> Iterator[FolderPoller]:
    source: MailSource = harness.source(password=password)
    try:
        yield FolderPoller(
            source=source,
            folder=folder or harness.sent,
            store=store,
            rules=lambda: ruleset,
            actions=actions or ActionOptions(compliance=("compliance@example.co.jp",)),
            options=FAST,
        )
    finally:
        source.close()


def once(p: FolderPoller) -> PassReport:
    return asyncio.run(p.poll_once())


def run_loop(p: FolderPoller, *, until: Callable[[], bool], timeout: float = 8.0) -> None:
    """Run the poller's endless loop until ``until()`` holds (or ``timeout``), then stop it."""

    async def main() -> None:
        stop = asyncio.Event()
        task = spawn(p.run(stop), name="test-poller")
        deadline = time.monotonic() + timeout
        while not until() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())


def test_initial_sync_records_each_disclosure_once(
    harness: Harness, store: SqliteStore, ruleset: CompiledRuleset
) -> None:
    """Mail already in Sent Items is scanned on the first pass; a disclosure becomes a `sent`
    incident with notices to the owner and compliance, and the item is tagged."""
    leak = make_message(to=("cfo@rival.example",))
    harness.deliver(harness.sent_folder, leak)
    harness.deliver(harness.sent_folder, make_message(body="lunch on Friday?"))
    harness.deliver(harness.sent_folder, make_message(to=("buyer@acme.example",)))
    with poller(harness, store, ruleset) as p:
        report = once(p)
    assert (report.scanned, len(report.incidents)) == (3, 1)
    record = store.get(report.incidents[0])
    assert record.status is Status.SENT
    assert record.public_status == "sent"
    assert record.rule_ids == ("falcon",)
    assert record.out_of_scope == ("cfo@rival.example",)
    assert store.raw(record.id) == leak
    origin = store.incident_origin(record.id)
    assert (origin.source, origin.mailbox) == (harness.name, MAILBOX)
    notices = {(i.role, i.to) for i in store.outbox(quarantine_id=record.id)}
    assert notices == {
        ("owner", ("owner@example.co.jp",)),
        ("compliance", ("compliance@example.co.jp",)),
    }
    assert all(i.notice is NoticeKind.INCIDENT for i in store.outbox(quarantine_id=record.id))
    tagged = [i for i in harness.items(harness.sent_folder) if i.tags]
    assert [t.message_id for t in tagged] == [record.message_id]
    assert any(INCIDENT_TAG in t for t in tagged[0].tags)
    assert not any(SECRET in t for i in harness.items(harness.sent_folder) for t in i.tags)


def test_incremental_pass_fetches_only_new_items(
    harness: Harness, store: SqliteStore, ruleset: CompiledRuleset
) -> None:
    """After a pass, only items added since are fetched; a quiet folder fetches nothing."""
    harness.deliver(harness.sent_folder, make_message())
    with poller(harness, store, ruleset) as p:
        assert once(p).fetched == 1
        assert once(p).fetched == 0
        harness.deliver(harness.sent_folder, make_message(to=("x@lynx.example",)))
        report = once(p)
    assert (report.fetched, report.scanned, len(report.incidents)) == (1, 1, 1)


def test_bcc_recipient_is_checked(
    harness: Harness, store: SqliteStore, ruleset: CompiledRuleset
) -> None:
    """A Bcc recipient out of scope is found even when every visible recipient is in scope."""
    raw = make_message(
        to=("buyer@acme.example",),
        bcc=() if harness.bcc_outside_mime else ("leak@rival.example",),
    )
    harness.deliver(harness.sent_folder, raw, bcc=("leak@rival.example",))
    with poller(harness, store, ruleset) as p:
        report = once(p)
    assert len(report.incidents) == 1
    assert store.get(report.incidents[0]).out_of_scope == ("leak@rival.example",)


def test_distribution_list_members_are_checked(
    harness: Harness, store: SqliteStore, ruleset: CompiledRuleset
) -> None:
    """An internal list (nested lists too) is expanded before the scope check, and the
    incident names the member outside the scope, not the list."""
    if not harness.expands_groups:
        pytest.skip(f"{harness.name} has no distribution lists (IMAP cannot expand them)")
    harness.add_group("partners@example.co.jp", ("advisor@rival.example",))
    harness.add_group("deal-team@example.co.jp", ("suzuki@example.co.jp", "partners@example.co.jp"))
    harness.deliver(harness.sent_folder, make_message(to=("deal-team@example.co.jp",)))
    with poller(harness, store, ruleset) as p:
        report = once(p)
    (qid,) = report.incidents
    record = store.get(qid)
    assert record.out_of_scope == ("advisor@rival.example",)
    assert set(record.recipients) == {"suzuki@example.co.jp", "advisor@rival.example"}


def test_hold_moves_the_senders_copy_and_is_not_seen_again(
    harness: Harness, store: SqliteStore, ruleset: CompiledRuleset
) -> None:
    """With move enabled, a hold-strength disclosure leaves Sent Items for the quarantine
    folder (its id changes there) and later passes record nothing more."""
    hold = make_message(message_id="<hold@client.example.co.jp>")
    harness.deliver(harness.sent_folder, hold)
    harness.deliver(harness.sent_folder, make_message(body="Lynx merger", to=("a@rival.example",)))
    before = {i.message_id: i.item_id for i in harness.items(harness.sent_folder)}
    actions = ActionOptions(move_sent=True)
    with poller(harness, store, ruleset, actions=actions) as p:
        report = once(p)
        assert len(report.incidents) == 2
        assert once(p).incidents == ()
    (moved,) = harness.items(harness.quarantine_folder)  # the flag (lynx) is not moved
    assert moved.message_id == "<hold@client.example.co.jp>"
    assert any(INCIDENT_TAG in t for t in moved.tags)  # tagged before the move
    if harness.name != "imap":  # IMAP UIDs are per folder; EWS/Graph ids are per mailbox
        assert moved.item_id != before["<hold@client.example.co.jp>"]
    (remaining,) = harness.items(harness.sent_folder)
    assert remaining.tags
    origin = store.incident_origin(
        next(q for q in report.incidents if store.get(q).rule_ids == ("falcon",))
    )
    assert origin.item_id == before["<hold@client.example.co.jp>"]  # where it was found


def test_cursor_survives_a_restart(
    harness: Harness, store: SqliteStore, ruleset: CompiledRuleset
) -> None:
    """A new source (a restarted daemon) continues from the committed cursor."""
    for _ in range(3):
        harness.deliver(harness.sent_folder, make_message())
    with poller(harness, store, ruleset) as p:
        assert once(p).fetched == 3
    assert store.poll_cursor(MAILBOX, harness.sent.key) is not None
    harness.deliver(harness.sent_folder, make_message())
    with poller(harness, store, ruleset) as p:
        report = once(p)
    # Graph lists our own category changes again (listed > 1); none of them is re-fetched.
    assert (report.fetched, report.scanned) == (1, 1)


def test_invalid_cursor_resyncs_without_repeating_actions(
    harness: Harness, store: SqliteStore, ruleset: CompiledRuleset
) -> None:
    """When the server invalidates the cursor, the full resync re-lists everything but the
    ledger stops any re-fetch and any second incident."""
    for _ in range(3):
        harness.deliver(harness.sent_folder, make_message())
    with poller(harness, store, ruleset) as p:
        first = once(p)
        harness.invalidate_cursors()
        second = once(p)
    assert len(first.incidents) == 3
    assert second.resynced
    assert second.listed == 3
    assert (second.fetched, second.incidents) == (0, ())
    assert len(store.list(status=Status.SENT)) == 3


def test_rules_change_never_repeats_an_incident(
    harness: Harness, store: SqliteStore, ruleset: CompiledRuleset
) -> None:
    """Sent mail does not change: after an unrelated rules change and a full resync, an item
    already reported gets no second incident and no second notice."""
    from tests.poller.factories import RULES_YAML, make_ruleset

    harness.deliver(harness.sent_folder, make_message())
    with poller(harness, store, ruleset) as p:
        first = once(p)
    changed = make_ruleset(RULES_YAML + "  - id: kite\n    terms: [\"Kite plan\"]\n")
    assert changed.version != ruleset.version
    notices_before = len(store.outbox())
    with poller(harness, store, changed) as p:
        harness.invalidate_cursors()
        second = once(p)
    assert len(first.incidents) == 1
    assert second.incidents == ()
    assert len(store.list(status=Status.SENT)) == 1
    assert len(store.outbox()) == notices_before


def test_outage_backs_off_and_recovers(
    harness: Harness, store: SqliteStore, ruleset: CompiledRuleset
) -> None:
    """Throttling or an unreachable server never ends the loop: it reports and retries, and
    picks the mail up once the server is back."""
    harness.deliver(harness.sent_folder, make_message())
    with poller(harness, store, ruleset) as p:
        with harness.outage():
            run_loop(p, until=lambda: p.health.throttled + p.health.consecutive_failures >= 2)
            during = p.health.state
        run_loop(p, until=lambda: p.health.incidents == 1)
    assert during in ("throttled", "unavailable")
    assert p.health.incidents == 1
    assert p.health.state == "ok"


def test_rejected_credentials_are_reported_clearly(
    harness: Harness, store: SqliteStore, ruleset: CompiledRuleset
) -> None:
    """Wrong credentials put the folder in state `credentials` with one clear log event, and
    the password never appears in any log line."""
    harness.deliver(harness.sent_folder, make_message())
    wrong = "wrong-" + PASSWORD
    with (
        structlog.testing.capture_logs() as logs,
        poller(harness, store, ruleset, password=wrong) as p,
    ):
        run_loop(p, until=lambda: p.health.state != "starting")
    assert p.health.state == "credentials"
    events = [e for e in logs if e["event"] == "poller.credentials_rejected"]
    assert [e["mailbox"] for e in events] == [MAILBOX]
    assert PASSWORD not in repr(logs)
    assert store.list() == []


def test_drafts_get_an_advisory_tag_with_the_reason(
    harness: Harness, store: SqliteStore, ruleset: CompiledRuleset
) -> None:
    """A draft with a secret to an out-of-scope recipient is tagged with customer, rule and
    recipient — never the term — and no incident is recorded (it has not been sent)."""
    harness.deliver(harness.drafts_folder, make_message(to=("cfo@rival.example",)))
    with poller(harness, store, ruleset, folder=harness.drafts) as p:
        report = once(p)
    assert (report.scanned, report.incidents) == (1, ())
    (item,) = harness.items(harness.drafts_folder)
    joined = " ".join(item.tags)
    bare = re.sub(r"[\W_]", "", joined)  # IMAP keywords are atoms: spaces became "_"
    for expected in ("falcon", "ACMECorp", "cforivalexample"):
        assert expected in bare
    assert "Falcon" not in joined  # the term (any case variant of it) never leaves the scan
    assert store.list() == []


def test_edited_draft_is_checked_again_and_tagged_once(
    harness: Harness, store: SqliteStore, ruleset: CompiledRuleset
) -> None:
    """A harmless draft gets no tag; once edited to carry a secret it is tagged; further
    passes (which may see our own tag as a change) write nothing more."""
    mid = "<draft-1@client.example.co.jp>"
    harness.deliver(harness.drafts_folder, make_message(body="see you", message_id=mid))
    with poller(harness, store, ruleset, folder=harness.drafts) as p:
        once(p)
        assert [i.tags for i in harness.items(harness.drafts_folder)] == [()]
        harness.edit(harness.drafts_folder, mid, make_message(message_id=mid))
        edited = once(p)
        tags = [i.tags for i in harness.items(harness.drafts_folder)]
        later = [once(p) for _ in range(2)]
    assert edited.scanned == 1
    assert len(tags) == 1
    assert len(tags[0]) == 1
    assert [r.scanned for r in later] == [0, 0]
    assert [i.tags for i in harness.items(harness.drafts_folder)] == tags
