"""The outbox worker against a real aiosmtpd upstream on 127.0.0.1: releases, notices, retries."""

from __future__ import annotations

import asyncio
import email
import ssl
import threading
from collections.abc import Callable, Coroutine, Iterator
from datetime import datetime, timedelta
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme

from scanner.notify import NoticeOptions
from scanner.outbox.target import UpstreamTarget
from scanner.outbox.worker import (
    GIVE_UP_AFTER,
    replay_options,
    run_outbox_loop,
    run_outbox_once,
)
from scanner.store import NoticeKind, OutboxState, Status
from scanner.store.sqlite import SqliteStore
from tests.outbox.sink import Sink, free_port
from tests.store.factories import (
    SECRET_SUBJECT,
    SECRET_TERM,
    T0,
    make_envelope,
    make_raw,
    make_verdict,
)

T = TypeVar("T")
NOTICES = NoticeOptions(postmaster="postmaster@example.co.jp")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro, debug=True)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "data")
    yield s
    s.close()


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink().start()
    yield s
    s.stop()


def target_for(sink_or_port: Sink | int, **kw: Any) -> UpstreamTarget:
    port = sink_or_port.port if isinstance(sink_or_port, Sink) else sink_or_port
    values: dict[str, Any] = {"host": "127.0.0.1", "port": port, "tls": "none", "timeout": 5.0}
    values.update(kw)
    return UpstreamTarget(**values)


def hold(store: SqliteStore, **kw: Any) -> str:
    args: dict[str, Any] = {
        "raw": make_raw(),
        "envelope": make_envelope(),
        "verdict": make_verdict(),
        "received_at": T0,
        "peer": None,
        "message_id": "<abc.123@client.example.co.jp>",
        "mail_options": ("SIZE=300", "BODY=8BITMIME"),
        "notify_sender": False,
    }
    args.update(kw)
    return store.hold(**args)


def once(
    store: SqliteStore, target: UpstreamTarget, clock: Callable[[], datetime], **kw: Any
) -> int:
    return run(run_outbox_once(store, target, now_fn=clock, worker_id="w1", notices=NOTICES, **kw))


def test_release_reinjects_byte_identical_message_with_original_envelope(
    store: SqliteStore, sink: Sink
) -> None:
    """A release reaches the upstream byte for byte, with MAIL FROM, options and every RCPT."""
    raw = make_raw(body="日本語の本文\r\n.leading dot line\r\n" + ("x" * 998 + "\r\n") * 8)
    qid = hold(store, raw=raw, mail_options=("SIZE=9000", "BODY=8BITMIME", "AUTH=<>"))
    store.release(qid, by="sato", reason="approved", now=T0)
    assert store.get(qid).public_status == "held"
    assert once(store, target_for(sink), Clock()) == 1
    [got] = sink.received
    assert got.data == raw
    assert got.mail_from == "tanaka@example.co.jp"
    assert got.rcpt_tos == ["cfo@rival.example", "suzuki@example.co.jp"]
    assert got.mail_options == ["SIZE=9000", "BODY=8BITMIME"]  # AUTH= is not replayed
    assert store.get(qid).public_status == "released"
    assert store.audit(object_id=qid)[-1].action == "delivered"


def test_double_release_delivers_once(store: SqliteStore, sink: Sink) -> None:
    """Two concurrent releases (threads) and two worker rounds deliver the message exactly once."""
    qid = hold(store)
    barrier = threading.Barrier(2)

    def release(by: str) -> None:
        barrier.wait()
        store.release(qid, by=by, reason="ok", now=T0)

    threads = [threading.Thread(target=release, args=(by,)) for by in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    clock = Clock()
    assert once(store, target_for(sink), clock) == 1
    assert once(store, target_for(sink), clock) == 0
    assert len(sink.received) == 1


def test_hold_notice_names_id_and_rules_but_never_the_secret(
    store: SqliteStore, sink: Sink
) -> None:
    """The hold notice goes from <> to the sender, in Japanese then English, without content."""
    qid = hold(store, notify_sender=True, owners=("owner@example.co.jp",))
    assert once(store, target_for(sink), Clock()) == 2
    by_rcpt = {tuple(r.rcpt_tos): r for r in sink.received}
    to_sender = by_rcpt[("tanaka@example.co.jp",)]
    assert to_sender.mail_from == "<>"
    msg = email.message_from_bytes(to_sender.data, policy=default_policy)
    assert msg["From"] == "Maruhi <postmaster@example.co.jp>"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["In-Reply-To"] == "<abc.123@client.example.co.jp>"
    body = msg.get_content()
    assert qid in body
    assert qid in msg["Subject"]
    assert "falcon" in body
    assert "cfo@rival.example" in body
    assert body.index("保留 ID") < body.index("Quarantine ID")  # Japanese first
    for received in sink.received:
        text = (
            received.data.decode("ascii")
            + email.message_from_bytes(received.data, policy=default_policy).get_content()
        )
        for forbidden in (SECRET_TERM, "Zephyr", SECRET_SUBJECT, "acquisition", "message 0"):
            assert forbidden not in text
    owner = email.message_from_bytes(by_rcpt[("owner@example.co.jp",)].data, policy=default_policy)
    assert "tanaka@example.co.jp" in owner.get_content()
    assert [i.state for i in store.outbox(quarantine_id=qid)] == [OutboxState.DONE] * 2


def test_reject_notice_is_delivered_to_the_sender(store: SqliteStore, sink: Sink) -> None:
    """Rejecting sends the sender a notice saying the message was not delivered."""
    qid = hold(store)
    store.reject(qid, by="sato", reason="Zephyr-9 must not go to rival", now=T0)
    assert once(store, target_for(sink), Clock()) == 1
    [got] = sink.received
    assert got.rcpt_tos == ["tanaka@example.co.jp"]
    content = email.message_from_bytes(got.data, policy=default_policy).get_content()
    assert "NOT been delivered" in content
    assert "Zephyr" not in content
    assert store.get(qid).public_status == "rejected"


def test_upstream_down_then_up_is_retried_with_backoff(store: SqliteStore) -> None:
    """With the upstream down the release stays queued; once it is up, the retry delivers it."""
    port = free_port()
    qid = hold(store)
    store.release(qid, by="sato", reason="ok", now=T0)
    clock = Clock()
    assert once(store, target_for(port), clock) == 0
    [item] = store.outbox(quarantine_id=qid)
    assert item.state is OutboxState.PENDING
    assert item.last_error == "connect"
    assert item.next_attempt_at is not None
    assert item.next_attempt_at > T0
    assert store.get(qid).status is Status.RELEASING
    sink = Sink(port=port).start()
    try:
        assert once(store, target_for(port), clock) == 0  # not due yet: backoff
        clock.now = item.next_attempt_at
        assert once(store, target_for(port), clock) == 1
        assert len(sink.received) == 1
    finally:
        sink.stop()
    assert store.get(qid).public_status == "released"


def test_permanent_refusal_surfaces_as_release_failed(store: SqliteStore) -> None:
    """A 5xx after DATA marks release_failed, keeps the message and notifies the sender."""
    sink = Sink(data_code="554 5.7.1 policy says no").start()
    try:
        qid = hold(store)
        store.release(qid, by="sato", reason="ok", now=T0)
        clock = Clock()
        assert once(store, target_for(sink), clock) == 0
        rec = store.get(qid)
        assert rec.status is Status.RELEASE_FAILED
        assert rec.last_error == "smtp-554"
        assert store.raw(qid) == make_raw()
        sink.handler.data_code = None
        assert once(store, target_for(sink), clock) == 1  # the release_failed notice
        notice = email.message_from_bytes(sink.received[0].data, policy=default_policy)
        assert notice["X-Maruhi-Notice"] == NoticeKind.RELEASE_FAILED.value
        assert "smtp-554" in notice.get_content()
        assert "policy says no" not in notice.get_content()
    finally:
        sink.stop()


def test_temporary_rcpt_refusal_retries_the_whole_transaction(store: SqliteStore) -> None:
    """A 4xx on one RCPT delivers to nobody now, so nobody gets the message twice later."""
    sink = Sink(rcpt_codes={"suzuki@example.co.jp": "451 4.3.0 try later"}).start()
    try:
        qid = hold(store)
        store.release(qid, by="sato", reason="ok", now=T0)
        clock = Clock()
        assert once(store, target_for(sink), clock) == 0
        assert sink.received == []
        [item] = store.outbox(quarantine_id=qid)
        assert item.last_error == "smtp-451"
        assert item.state is OutboxState.PENDING
        sink.handler.rcpt_codes.clear()
        assert item.next_attempt_at is not None
        clock.now = item.next_attempt_at
        assert once(store, target_for(sink), clock) == 1
        assert sink.received[0].rcpt_tos == ["cfo@rival.example", "suzuki@example.co.jp"]
    finally:
        sink.stop()


def test_permanent_rcpt_refusal_delivers_to_the_others(store: SqliteStore) -> None:
    """A 5xx for one recipient drops that recipient, as an MTA would, and delivers the rest."""
    sink = Sink(rcpt_codes={"cfo@rival.example": "550 5.1.1 no such user"}).start()
    try:
        qid = hold(store)
        store.release(qid, by="sato", reason="ok", now=T0)
        assert once(store, target_for(sink), Clock()) == 1
        assert sink.received[0].rcpt_tos == ["suzuki@example.co.jp"]
        assert store.get(qid).public_status == "released"
        partial = [e for e in store.audit(object_id=qid) if e.action == "release_partial"]
        assert [e.details for e in partial] == [{"refused": 1, "codes": [550]}]
    finally:
        sink.stop()


def test_crashed_worker_lease_expires_and_another_worker_delivers(
    store: SqliteStore, sink: Sink
) -> None:
    """An item claimed by a worker that died is delivered by another after the lease."""
    qid = hold(store)
    store.release(qid, by="sato", reason="ok", now=T0)
    store.claim_outbox(limit=10, worker_id="dead", now=T0, lease_seconds=300)
    clock = Clock()
    assert once(store, target_for(sink), clock) == 0
    clock.now = T0 + timedelta(seconds=301)
    assert once(store, target_for(sink), clock) == 1
    assert store.get(qid).public_status == "released"


def test_gives_up_visibly_after_the_queue_lifetime(store: SqliteStore) -> None:
    """After GIVE_UP_AFTER of temporary failures the release fails for good, audited."""
    qid = hold(store)
    store.release(qid, by="sato", reason="ok", now=T0)
    clock = Clock(T0 + GIVE_UP_AFTER)
    assert once(store, target_for(free_port()), clock) == 0
    rec = store.get(qid)
    assert rec.status is Status.RELEASE_FAILED
    assert rec.last_error == "gave-up-connect"
    assert "release_failed" in [e.action for e in store.audit(object_id=qid)]


def test_required_tls_never_falls_back_to_plain_text(store: SqliteStore, sink: Sink) -> None:
    """With tls="required" and an upstream without STARTTLS nothing is sent; it is retried."""
    qid = hold(store)
    store.release(qid, by="sato", reason="ok", now=T0)
    assert once(store, target_for(sink, tls="required"), Clock()) == 0
    assert sink.received == []
    [item] = store.outbox(quarantine_id=qid)
    assert item.state is OutboxState.PENDING


def test_starttls_verified_against_the_ca_file(store: SqliteStore, tmp_path: Path) -> None:
    """With tls="required" and a CA file, delivery runs over a verified STARTTLS session."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    sink = Sink().start(tls_context=server_ctx, require_starttls=True)
    try:
        qid = hold(store)
        store.release(qid, by="sato", reason="ok", now=T0)
        target = target_for(sink, tls="required", ca_file=ca_file)
        assert once(store, target, Clock()) == 1
        assert sink.received[0].data == make_raw()
    finally:
        sink.stop()


def test_loop_delivers_until_stopped(store: SqliteStore, sink: Sink) -> None:
    """The daemon loop delivers a release after a wake-up and returns when stop is set."""

    async def scenario() -> None:
        stop, wake = asyncio.Event(), asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(
                run_outbox_loop(
                    store,
                    target_for(sink),
                    stop=stop,
                    wake=wake,
                    now_fn=Clock(),
                    worker_id="daemon",
                    notices=NOTICES,
                    interval=30.0,
                )
            )
            qid = await asyncio.to_thread(hold, store)
            await asyncio.to_thread(store.release, qid, by="s", reason="ok", now=T0)
            wake.set()
            for _ in range(100):
                if sink.received:
                    break
                await asyncio.sleep(0.05)
            stop.set()
        assert len(sink.received) == 1

    run(asyncio.wait_for(scenario(), 20))


@pytest.mark.parametrize(
    ("options", "supported", "expected"),
    [
        (("SIZE=10", "BODY=8BITMIME"), {"size", "8bitmime"}, ["SIZE=10", "BODY=8BITMIME"]),
        (("SIZE=10", "BODY=8BITMIME"), set(), []),
        (("SMTPUTF8",), set(), ["SMTPUTF8"]),
        (("AUTH=<>", "RET=HDRS", "ENVID=x"), {"auth", "dsn"}, []),
        (("body=8bitmime",), {"8bitmime"}, ["body=8bitmime"]),
        (("BODY=BINARYMIME",), {"8bitmime", "binarymime"}, []),
    ],
)
def test_replay_options_table(
    options: tuple[str, ...], supported: set[str], expected: list[str]
) -> None:
    """Only SIZE/BODY (when advertised) and SMTPUTF8 (always) are replayed on release."""
    assert replay_options(options, lambda ext: ext in supported) == expected
