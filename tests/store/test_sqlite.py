"""The embedded store on real SQLite files: holds, decisions, outbox, audit, retention."""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from scanner.errors import TransientError
from scanner.model import Action, Span
from scanner.store import (
    ContentGoneError,
    NotFoundError,
    NoticeKind,
    OutboxKind,
    OutboxState,
    QuarantineStore,
    Status,
    open_store,
)
from scanner.store.sqlite import DB_NAME, SqliteStore
from tests.store.factories import (
    T0,
    make_envelope,
    make_hit,
    make_raw,
    make_unscannable,
    make_verdict,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "data")
    yield s
    s.close()


def _hold(store: QuarantineStore, **kw: object) -> str:
    args: dict[str, object] = {
        "raw": make_raw(),
        "envelope": make_envelope(),
        "verdict": make_verdict(),
        "received_at": T0,
        "peer": "192.0.2.10",
        "message_id": "<abc.123@client.example.co.jp>",
        "mail_options": ("SIZE=512", "BODY=8BITMIME"),
    }
    args.update(kw)
    return store.hold(**args)  # type: ignore[arg-type]


def test_hold_round_trips_every_field(store: SqliteStore) -> None:
    """A held message reads back with its envelope, verdict, spans, options and exact bytes."""
    raw = make_raw()
    verdict = make_verdict(
        make_hit(spans=(Span(4, 17), Span(30, 43))),
        make_hit(rule_id="rival", location="envelope", spans=()),
        unscannable=(make_unscannable(),),
    )
    qid = _hold(store, raw=raw, verdict=verdict)
    rec = store.get(qid)
    assert rec.status is Status.HELD
    assert rec.public_status == "held"
    assert rec.received_at == T0
    assert rec.sender == "tanaka@example.co.jp"
    assert rec.recipients == ("cfo@rival.example", "suzuki@example.co.jp")
    assert rec.size == len(raw)
    assert rec.message_id == "<abc.123@client.example.co.jp>"
    assert rec.subject == "Re: Zephyr-9 acquisition price"
    assert rec.peer == "192.0.2.10"
    assert rec.action is Action.HOLD
    assert rec.hits == verdict.hits
    assert rec.unscannable == verdict.unscannable
    assert rec.rule_ids == ("falcon", "rival")
    assert rec.ruleset_version == "v7"
    assert rec.mail_options == ("SIZE=512", "BODY=8BITMIME")
    assert store.raw(qid) == raw


def test_ids_are_unique_unguessable_and_url_safe(store: SqliteStore) -> None:
    """Ids are 26-character Crockford base32 strings, distinct even within one millisecond."""
    ids = {_hold(store) for _ in range(20)}
    assert len(ids) == 20
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", i) for i in ids)


def test_hold_survives_reopening(tmp_path: Path) -> None:
    """A hold committed by one store instance is fully readable from a fresh one."""
    with open_store(tmp_path) as first:
        qid = _hold(first)
    with open_store(tmp_path) as second:
        assert second.get(qid).status is Status.HELD
        assert second.raw(qid) == make_raw()


def test_hold_queues_notices_for_sender_and_distinct_owners(store: SqliteStore) -> None:
    """Hold notices go to the sender and each owner once; an owner who is the sender gets one."""
    qid = _hold(
        store, owners=("owner@example.co.jp", "TANAKA@example.co.jp", "owner@example.co.jp")
    )
    items = store.outbox(quarantine_id=qid)
    assert [(i.kind, i.notice, i.role, i.to) for i in items] == [
        (OutboxKind.NOTICE, NoticeKind.HOLD, "sender", ("tanaka@example.co.jp",)),
        (OutboxKind.NOTICE, NoticeKind.HOLD, "owner", ("owner@example.co.jp",)),
    ]


@pytest.mark.parametrize("null", ["", "<>"])
def test_null_sender_gets_no_notice(store: SqliteStore, null: str) -> None:
    """A bounce (null reverse-path) is held without a notice, so notices cannot loop."""
    qid = _hold(store, envelope=make_envelope(sender=null))
    assert store.outbox(quarantine_id=qid) == []
    assert store.reject(qid, by="rev", reason="no", now=T0).changed
    assert store.outbox(quarantine_id=qid) == []


def test_notify_sender_false_skips_the_sender(store: SqliteStore) -> None:
    """With notify_sender=False only the owners are told."""
    qid = _hold(store, notify_sender=False, owners=("owner@example.co.jp",))
    assert [i.role for i in store.outbox(quarantine_id=qid)] == ["owner"]


def test_list_is_newest_first_with_filters_and_paging(store: SqliteStore) -> None:
    """Listing orders by received time (newest first), filters by status and pages."""
    ids = [_hold(store, received_at=T0 + timedelta(minutes=i)) for i in range(5)]
    store.reject(ids[0], by="rev", reason="r", now=T0)
    assert [r.id for r in store.list()] == ids[::-1]
    assert [r.id for r in store.list(status=Status.HELD)] == ids[:0:-1]
    assert [r.id for r in store.list(status=[Status.REJECTED, Status.RELEASED])] == [ids[0]]
    assert [r.id for r in store.list(limit=2, offset=1)] == [ids[3], ids[2]]


def test_unknown_id_raises_not_found(store: SqliteStore) -> None:
    """get, raw and decisions on an unknown id raise NotFoundError naming the id only."""
    for call in (
        lambda: store.get("NOPE"),
        lambda: store.raw("NOPE"),
        lambda: store.release("NOPE", by="r", reason="x", now=T0),
        lambda: store.reject("NOPE", by="r", reason="x", now=T0),
    ):
        with pytest.raises(NotFoundError, match="NOPE"):
            call()


def test_release_enqueues_one_delivery_and_repeats_are_idempotent(store: SqliteStore) -> None:
    """Releasing moves held → releasing with one deliver item; a second release changes nothing."""
    qid = _hold(store, notify_sender=False)
    first = store.release(qid, by="sato", reason="customer approved", now=T0)
    assert first.changed
    assert first.status is Status.RELEASING
    assert len(first.outbox_ids) == 1
    again = store.release(qid, by="kato", reason="again", now=T0)
    assert not again.changed
    assert again.outbox_ids == ()
    assert again.decided_by == "sato"
    assert again.reason == "customer approved"
    late_reject = store.reject(qid, by="kato", reason="no", now=T0)
    assert not late_reject.changed
    assert late_reject.status is Status.RELEASING
    deliveries = [i for i in store.outbox(quarantine_id=qid) if i.kind is OutboxKind.DELIVER]
    assert len(deliveries) == 1
    rec = store.get(qid)
    assert rec.public_status == "held"  # not delivered yet
    assert (rec.decided_by, rec.decided_at, rec.reason) == ("sato", T0, "customer approved")


def test_reject_enqueues_a_notice_and_blocks_release(store: SqliteStore) -> None:
    """Rejecting queues a reject notice to the sender; a later release is a no-op."""
    qid = _hold(store, notify_sender=False)
    d = store.reject(qid, by="sato", reason="wrong customer", now=T0)
    assert d.changed
    assert d.status is Status.REJECTED
    [item] = store.outbox(quarantine_id=qid)
    assert (item.kind, item.notice, item.to) == (
        OutboxKind.NOTICE,
        NoticeKind.REJECT,
        ("tanaka@example.co.jp",),
    )
    assert not store.release(qid, by="kato", reason="x", now=T0).changed
    assert store.get(qid).public_status == "rejected"


def test_concurrent_releases_enqueue_exactly_one_delivery(store: SqliteStore) -> None:
    """Eight threads releasing the same message at once produce one decision and one delivery."""
    qid = _hold(store, notify_sender=False)
    barrier = threading.Barrier(8)
    results = []

    def go(n: int) -> None:
        barrier.wait()
        results.append(store.release(qid, by=f"r{n}", reason="ok", now=T0))

    threads = [threading.Thread(target=go, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(d.changed for d in results) == 1
    assert len(store.outbox(quarantine_id=qid)) == 1


def test_claim_leases_items_until_the_lease_expires(store: SqliteStore) -> None:
    """A claimed item is invisible to other workers until its lease runs out, then reclaimed."""
    qid = _hold(store, notify_sender=False)
    store.release(qid, by="r", reason="ok", now=T0)
    [item] = store.claim_outbox(limit=10, worker_id="a", now=T0, lease_seconds=60)
    assert item.attempts == 1
    assert store.claim_outbox(limit=10, worker_id="b", now=T0, lease_seconds=60) == []
    later = T0 + timedelta(seconds=61)
    [again] = store.claim_outbox(limit=10, worker_id="b", now=later, lease_seconds=60)
    assert again.id == item.id
    assert again.attempts == 2


def test_claim_can_be_restricted_to_one_message(store: SqliteStore) -> None:
    """The CLI claims only the items of the message it just decided."""
    a = _hold(store, notify_sender=False)
    b = _hold(store, notify_sender=False)
    store.release(a, by="r", reason="ok", now=T0)
    store.release(b, by="r", reason="ok", now=T0)
    claimed = store.claim_outbox(limit=10, worker_id="w", now=T0, lease_seconds=60, quarantine_id=b)
    assert [i.quarantine_id for i in claimed] == [b]


def test_complete_marks_the_release_delivered(store: SqliteStore) -> None:
    """Completing a deliver item turns releasing into released and settles the item."""
    qid = _hold(store, notify_sender=False)
    store.release(qid, by="r", reason="ok", now=T0)
    [item] = store.claim_outbox(limit=1, worker_id="w", now=T0, lease_seconds=60)
    store.complete(item.id, now=T0)
    store.complete(item.id, now=T0)  # a second (late) worker completing is harmless
    assert store.get(qid).public_status == "released"
    assert [i.state for i in store.outbox(quarantine_id=qid)] == [OutboxState.DONE]
    assert [e.action for e in store.audit(object_id=qid)] == ["hold", "release", "delivered"]


def test_failed_attempt_is_retried_after_retry_at(store: SqliteStore) -> None:
    """A temporary failure keeps the item pending and hides it until its retry time."""
    qid = _hold(store, notify_sender=False)
    store.release(qid, by="r", reason="ok", now=T0)
    [item] = store.claim_outbox(limit=1, worker_id="w", now=T0, lease_seconds=60)
    store.fail(item.id, error_kind="connect", retry_at=T0 + timedelta(minutes=5), now=T0)
    assert store.claim_outbox(limit=1, worker_id="w", now=T0, lease_seconds=60) == []
    [again] = store.claim_outbox(
        limit=1, worker_id="w", now=T0 + timedelta(minutes=5), lease_seconds=60
    )
    assert again.id == item.id
    assert again.last_error == "connect"
    assert store.get(qid).status is Status.RELEASING


def test_permanent_failure_is_visible_audited_and_retryable(store: SqliteStore) -> None:
    """A 5xx on release marks release_failed, notifies the sender, audits; re-release works."""
    qid = _hold(store, notify_sender=False)
    store.release(qid, by="r", reason="ok", now=T0)
    [item] = store.claim_outbox(limit=1, worker_id="w", now=T0, lease_seconds=60)
    store.fail(item.id, error_kind="smtp-550", retry_at=None, now=T0)
    rec = store.get(qid)
    assert rec.status is Status.RELEASE_FAILED
    assert rec.last_error == "smtp-550"
    assert rec.public_status == "held"
    items = store.outbox(quarantine_id=qid)
    assert [(i.kind, i.state) for i in items] == [
        (OutboxKind.DELIVER, OutboxState.FAILED),
        (OutboxKind.NOTICE, OutboxState.PENDING),
    ]
    assert items[1].notice is NoticeKind.RELEASE_FAILED
    assert store.stats().outbox_failed == 1
    assert "release_failed" in [e.action for e in store.audit(object_id=qid)]
    assert store.release(qid, by="r", reason="upstream fixed", now=T0).changed


def test_audit_chain_verifies_and_detects_tampering(store: SqliteStore) -> None:
    """The hash chain verifies intact, refuses updates, and reports a forged row."""
    qid = _hold(store)
    store.release(qid, by="r", reason="ok", now=T0)
    assert store.verify_audit() == []
    events = store.audit()
    assert [e.seq for e in events] == [1, 2]
    assert events[1].prev_hash == events[0].hash
    db = sqlite3.connect(store.data_dir / DB_NAME)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 2")
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 2")
    db.commit()
    db.close()
    assert store.verify_audit() == ["seq 2: hash does not match the row's content"]


def test_audit_details_never_hold_the_subject_or_body(store: SqliteStore) -> None:
    """Audit rows carry rule ids and counts, never the subject or body text."""
    qid = _hold(store)
    store.reject(qid, by="r", reason="wrong customer", now=T0)
    dump = repr(store.audit())
    assert "Zephyr" not in dump
    assert "ファルコン" not in dump


def test_expire_rejects_old_held_messages_with_a_notice(store: SqliteStore) -> None:
    """Retention expires held messages past the age (notice queued) and leaves newer ones."""
    old = _hold(store, notify_sender=False, received_at=T0)
    new = _hold(store, notify_sender=False, received_at=T0 + timedelta(days=13))
    decided = _hold(store, notify_sender=False, received_at=T0)
    store.reject(decided, by="r", reason="x", now=T0)
    now = T0 + timedelta(days=14, hours=1)
    result = store.expire_older_than(timedelta(days=14), now=now)
    assert [d.id for d in result] == [old]
    assert store.get(old).public_status == "expired"
    assert store.get(new).status is Status.HELD
    assert [i.notice for i in store.outbox(quarantine_id=old)] == [NoticeKind.EXPIRE]
    assert [e.action for e in store.audit(object_id=old)] == ["hold", "expire"]


def test_expire_with_release_action_queues_delivery(store: SqliteStore) -> None:
    """With expire action "release", an undecided message goes out like a reviewer's release."""
    qid = _hold(store, notify_sender=False)
    [d] = store.expire_older_than(timedelta(days=1), action="release", now=T0 + timedelta(days=2))
    assert d.status is Status.RELEASING
    assert [i.kind for i in store.outbox(quarantine_id=qid)] == [OutboxKind.DELIVER]


def test_purge_deletes_content_of_decided_messages_only(store: SqliteStore) -> None:
    """Purging removes old decided content, keeps record and audit, never touches held mail."""
    decided = _hold(store, notify_sender=False)
    held = _hold(store, notify_sender=False)
    store.reject(decided, by="r", reason="x", now=T0)
    purged = store.purge_content_older_than(timedelta(days=90), now=T0 + timedelta(days=91))
    assert purged == [decided]
    with pytest.raises(ContentGoneError):
        store.raw(decided)
    assert store.get(decided).content_purged
    assert store.raw(held) == make_raw()
    assert store.audit(object_id=decided)[-1].action == "purge"
    assert store.verify_audit() == []
    assert store.purge_content_older_than(timedelta(days=90), now=T0 + timedelta(days=91)) == []


def test_disk_full_while_holding_raises_transient_and_leaves_nothing(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC during the content write → TransientError, no file, no row, no audit, no outbox."""

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("scanner.store.files.os.write", full)
    with pytest.raises(TransientError, match="ENOSPC") as info:
        _hold(store)
    assert "Zephyr" not in str(info.value)
    monkeypatch.undo()
    assert list(store.files.tmp.iterdir()) == []
    assert store.files.stored_ids() == set()
    assert store.list() == []
    assert store.audit() == []
    assert store.outbox() == []


def test_fsync_failure_while_holding_raises_transient(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An fsync I/O error is a TransientError too, with the tmp file removed."""

    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr("scanner.store.files.os.fsync", broken)
    with pytest.raises(TransientError):
        _hold(store)
    monkeypatch.undo()
    assert list(store.files.tmp.iterdir()) == []
    assert store.files.stored_ids() == set()


def test_database_failure_after_content_write_removes_the_content(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the row cannot be committed, the already-written content file is deleted again."""

    def locked(*args: object, **kw: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(store, "_audit", locked)
    with pytest.raises(TransientError):
        _hold(store)
    monkeypatch.undo()
    assert store.files.stored_ids() == set()
    assert store.list() == []


def test_naive_datetimes_are_refused(store: SqliteStore) -> None:
    """Times must be timezone-aware so that stored text compares as time."""
    with pytest.raises(ValueError, match="naive"):
        _hold(store, received_at=T0.replace(tzinfo=None))


def test_stats_count_statuses_and_outbox_depth(store: SqliteStore) -> None:
    """Stats report quarantine size by status and pending outbox items."""
    a = _hold(store)
    _hold(store, notify_sender=False)
    store.release(a, by="r", reason="ok", now=T0)
    stats = store.stats()
    assert stats.by_status["held"] == 1
    assert stats.by_status["releasing"] == 1
    assert stats.outbox_pending == 2  # a's hold notice + a's delivery
    assert stats.outbox_failed == 0


def test_content_files_are_private(store: SqliteStore) -> None:
    """Held content is readable by the daemon's user only."""
    qid = _hold(store)
    assert os.stat(store.files.path(qid)).st_mode & 0o077 == 0


def test_stale_tmp_files_are_swept_on_open(tmp_path: Path) -> None:
    """Leftover tmp files from a crash are removed on open once they are old, never counted."""
    with open_store(tmp_path) as s:
        stale = tmp_path / "tmp" / "X.dead.tmp"
        stale.write_bytes(b"partial")
        fresh = tmp_path / "tmp" / "Y.live.tmp"
        fresh.write_bytes(b"in progress")
        os.utime(stale, (0, 0))
        assert s.list() == []
    with open_store(tmp_path):
        assert not stale.exists()
        assert fresh.exists()


def test_purge_removes_orphan_content_of_unacknowledged_holds(store: SqliteStore) -> None:
    """A content file without a row (crash before commit) is deleted once past the grace time."""
    kept = _hold(store)
    old_orphan = "01JQRAZBE0AAAAAAAAAAAAAAAA"
    young_orphan = "01JQRAZBE0BBBBBBBBBBBBBBBB"
    store.files.write(old_orphan, b"never acknowledged")
    store.files.write(young_orphan, b"being committed")
    os.utime(store.files.path(old_orphan), (0, 0))
    store.purge_content_older_than(timedelta(days=90), now=T0)
    assert store.files.stored_ids() == {kept, young_orphan}
    assert store.audit()[-1].action == "purge_orphans"
    assert store.verify_audit() == []
