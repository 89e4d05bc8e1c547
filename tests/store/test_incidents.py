"""Poller records in the embedded store: `sent` incidents, the dedupe ledger, folder cursors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from scanner.store import NotFoundError, NoticeKind, QuarantineStore, Status
from scanner.store.sqlite import SqliteStore
from tests.store.factories import T0, make_envelope, make_raw, make_verdict

MAILBOX = "tanaka@example.co.jp"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "data")
    yield s
    s.close()


def _incident(store: QuarantineStore, **kw: object) -> str:
    args: dict[str, object] = {
        "raw": make_raw(),
        "envelope": make_envelope(),
        "verdict": make_verdict(),
        "received_at": T0,
        "source": "ews",
        "mailbox": MAILBOX,
        "folder": "sent:sentitems",
        "item_id": "AAMk-1",
        "message_id": "<abc.123@client.example.co.jp>",
        "dedupe_key": "mid:<abc.123@client.example.co.jp>",
        "owners": ("owner@example.co.jp",),
        "compliance": ("compliance@example.co.jp",),
    }
    args.update(kw)
    return store.record_incident(**args)  # type: ignore[arg-type]


def test_incident_is_a_sent_record_with_origin_notices_and_audit(store: SqliteStore) -> None:
    """An incident is stored durably with status `sent`, where it was found, one notice per
    owner and compliance address, and an `incident` audit event that names no content."""
    qid = _incident(store)
    record = store.get(qid)
    assert (record.status, record.public_status) == (Status.SENT, "sent")
    assert record.peer == "poller:ews"
    assert store.raw(qid) == make_raw()
    origin = store.incident_origin(qid)
    assert (origin.source, origin.mailbox, origin.folder, origin.item_id) == (
        "ews",
        MAILBOX,
        "sent:sentitems",
        "AAMk-1",
    )
    items = store.outbox(quarantine_id=qid)
    assert {(i.notice, i.role, i.to) for i in items} == {
        (NoticeKind.INCIDENT, "owner", ("owner@example.co.jp",)),
        (NoticeKind.INCIDENT, "compliance", ("compliance@example.co.jp",)),
    }
    (event,) = store.audit(object_id=qid)
    assert (event.actor, event.action) == ("poller:ews", "incident")
    assert "Zephyr" not in repr(event.details)
    assert store.verify_audit() == []
    assert store.stats().by_status["sent"] == 1


def test_incident_is_idempotent_per_ledger_key(store: SqliteStore) -> None:
    """Recording the same mailbox + key + ruleset version twice returns the first id and
    writes nothing more (a resync or a second poller instance)."""
    first = _incident(store)
    again = _incident(store, item_id="AAMk-2-after-resync")
    assert again == first
    assert len(store.list()) == 1
    assert len(store.outbox()) == 2
    assert store.processed(MAILBOX, "mid:<abc.123@client.example.co.jp>", "v7") == "incident"


def test_incident_stands_across_ruleset_versions(store: SqliteStore) -> None:
    """Sent mail does not change: under a new ruleset version the same item is not a second
    incident, while an item that merely passed is judged again by the new rules."""
    first = _incident(store)
    second = _incident(store, verdict=make_verdict(ruleset_version="v8"))
    assert first == second
    assert len(store.list(status=Status.SENT)) == 1
    assert store.processed(MAILBOX, "mid:<abc.123@client.example.co.jp>", "v9") == "incident"
    store.mark_processed(MAILBOX, "mid:<passed@y>", "v7", outcome="pass", now=T0)
    assert store.processed(MAILBOX, "mid:<passed@y>", "v8") is None


def test_ledger_keeps_the_first_outcome(store: SqliteStore) -> None:
    """`mark_processed` enters an outcome once; a repeat reports False and changes nothing."""
    assert store.processed(MAILBOX, "mid:<x@y>", "v7") is None
    assert store.mark_processed(MAILBOX, "mid:<x@y>", "v7", outcome="pass", now=T0)
    assert not store.mark_processed(MAILBOX, "mid:<x@y>", "v7", outcome="tagged", now=T0)
    assert store.processed(MAILBOX, "mid:<x@y>", "v7") == "pass"
    assert store.processed("other@example.co.jp", "mid:<x@y>", "v7") is None


def test_cursor_round_trip_and_reset(store: SqliteStore, tmp_path: Path) -> None:
    """A folder cursor persists across store instances and can be forgotten (None)."""
    assert store.poll_cursor(MAILBOX, "sent:sentitems") is None
    store.save_poll_cursor(MAILBOX, "sent:sentitems", "state-1", now=T0)
    store.save_poll_cursor(MAILBOX, "sent:sentitems", "state-2", now=T0)
    store.close()
    reopened = SqliteStore(tmp_path / "data")
    try:
        assert reopened.poll_cursor(MAILBOX, "sent:sentitems") == "state-2"
        assert reopened.poll_cursor(MAILBOX, "drafts:drafts") is None
        reopened.save_poll_cursor(MAILBOX, "sent:sentitems", None, now=T0)
        assert reopened.poll_cursor(MAILBOX, "sent:sentitems") is None
    finally:
        reopened.close()


def test_incident_cannot_be_released_or_rejected(store: SqliteStore) -> None:
    """A disclosure already left: release and reject change nothing and queue nothing."""
    qid = _incident(store)
    for decide in (store.release, store.reject):
        decision = decide(qid, by="reviewer", reason="x", now=T0)
        assert (decision.changed, decision.status) == (False, Status.SENT)
    assert len(store.outbox(quarantine_id=qid)) == 2


def test_incident_content_is_purged_by_retention(store: SqliteStore) -> None:
    """Retention purges an old incident's content like a decided message's; the record stays."""
    qid = _incident(store)
    assert store.purge_content_older_than(timedelta(days=30), now=T0 + timedelta(days=31)) == [qid]
    assert store.get(qid).content_purged


def test_origin_of_a_held_message_is_not_found(store: SqliteStore) -> None:
    """Only incidents have an origin; a relay hold's id is not found there."""
    qid = store.hold(
        make_raw(), make_envelope(), make_verdict(), received_at=T0, peer=None, message_id=None
    )
    with pytest.raises(NotFoundError):
        store.incident_origin(qid)


def test_batch_commit_writes_ledger_and_cursor_together(store: SqliteStore) -> None:
    """The batch's outcomes and its cursor land in one commit; existing entries stand."""
    store.mark_processed(MAILBOX, "mid:<a@x>", "v7", outcome="tagged", now=T0)
    store.commit_poll_batch(
        MAILBOX,
        "sent:sentitems",
        "cursor-9",
        [("mid:<a@x>", "v7", "pass"), ("mid:<b@x>", "v7", "pass")],
        now=T0,
    )
    assert store.poll_cursor(MAILBOX, "sent:sentitems") == "cursor-9"
    assert store.processed(MAILBOX, "mid:<a@x>", "v7") == "tagged"
    assert store.processed(MAILBOX, "mid:<b@x>", "v7") == "pass"
