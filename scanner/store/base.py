"""The quarantine store interface: held messages, decisions, the transactional outbox, the audit.

This module owns the contract every store implementation satisfies (SQLite + files today,
PostgreSQL next) and the plain records that cross it; it must not import a database driver or
expose a backend-specific notion (no rowids, no connection objects, no SQL). Its hazard is
durability: ``hold`` returns an id only once the content and the row are on stable storage, and a
decision changes the status *and* enqueues the outbox item in one transaction, so a crash between
"decided" and "delivered" never loses a release or a notice (delivery is at-least-once: after a
crash an item may be delivered twice, with the Message-ID unchanged so downstream can dedupe).

Status life cycle::

    held ──release──► releasing ──upstream 250──► released
      │                   └──upstream 5xx──► release_failed ──release (retry)──► releasing
      ├──reject──► rejected          (a reject notice is queued for the sender)
      └──expire──► expired           (action "reject": notice queued; action "release": the
                                      record goes to releasing like a reviewer's release)

    sent                             a poller incident: the message had already left when it
                                     was found (Sent Items, journal); a record of the disclosure,
                                     never releasable or rejectable, purged like a decided one

The poller also keeps two small tables here, because they must commit together with the
incident: the *ledger* (mailbox + message key + ruleset version → already processed, so a resync
never repeats an action) and the *cursor* of each watched folder (committed only after its batch).

``releasing`` and ``release_failed`` still count as ``held`` in the public contract
(``QuarantineRecord.public_status``): the message has not left the quarantine.
"""

from __future__ import annotations

import builtins
import enum
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from scanner.errors import MaruhiError
from scanner.model import Action, Envelope, Hit, Unscannable, Verdict


class Status(enum.StrEnum):
    """Where a quarantined message is in its life cycle (see the module docstring)."""

    HELD = "held"
    RELEASING = "releasing"
    RELEASED = "released"
    RELEASE_FAILED = "release_failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    SENT = "sent"  # a poller incident: already delivered when found, kept as a disclosure record

    @property
    def public(self) -> str:
        """The status of the CLI/JSON contract: held | released | rejected | expired | sent."""
        if self in (Status.RELEASING, Status.RELEASE_FAILED):
            return Status.HELD.value
        return self.value


class OutboxKind(enum.StrEnum):
    """What an outbox item asks the worker to do."""

    DELIVER = "deliver"  # re-inject the held message with its original envelope
    NOTICE = "notice"  # compose and send a notice (see NoticeKind)


class NoticeKind(enum.StrEnum):
    """Which notice to compose; the template is chosen by this and the recipient's role."""

    HOLD = "hold"  # to the sender (role "sender") or a rule owner (role "owner")
    REJECT = "reject"  # a reviewer rejected the message
    EXPIRE = "expire"  # retention rejected it because nobody decided in time
    RELEASE_FAILED = "release_failed"  # the upstream refused the released message for good
    INCIDENT = "incident"  # a poller found a disclosure already sent (roles "owner", "compliance")


class OutboxState(enum.StrEnum):
    """An outbox item is pending until delivered (done) or refused for good (failed)."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"  # permanent failure: kept, audited and visible, never silently dropped


def is_null_sender(sender: str) -> bool:
    """The null reverse-path (bounces): never send it a notice, or notices could loop."""
    return sender.strip() in ("", "<>")


class StoreError(MaruhiError):
    """Root of store errors a caller handles separately from I/O trouble (TransientError)."""


class NotFoundError(StoreError):
    """No quarantined message (or outbox item) has this id."""

    def __init__(self, object_id: str) -> None:
        self.object_id = object_id
        super().__init__(f"no quarantined message with id {object_id}")


class ContentGoneError(StoreError):
    """The record exists but its content was purged by retention."""

    def __init__(self, object_id: str) -> None:
        self.object_id = object_id
        super().__init__(f"content of {object_id} was purged by retention")


@dataclass(frozen=True)
class QuarantineRecord:
    """One held message's metadata; the raw bytes are read separately with ``raw(id)``."""

    id: str
    received_at: datetime
    sender: str
    recipients: tuple[str, ...]
    size: int
    message_id: str | None  # the Message-ID header as written, or None when absent
    subject: str | None  # for the review UI only: never log it, never put it in a notice
    peer: str | None
    action: Action  # the verdict's action (hold, or the unscannable action that held it)
    hits: tuple[Hit, ...]
    unscannable: tuple[Unscannable, ...]
    ruleset_version: str
    status: Status
    mail_options: tuple[str, ...] = ()  # MAIL FROM parameters to replay on release
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    content_purged: bool = False
    last_error: str | None = None  # e.g. the upstream's reply code class after release_failed

    @property
    def envelope(self) -> Envelope:
        return Envelope(sender=self.sender, recipients=self.recipients)

    @property
    def rule_ids(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for hit in self.hits:
            seen.setdefault(hit.rule_id, None)
        return tuple(seen)

    @property
    def out_of_scope(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for hit in self.hits:
            for rcpt in hit.out_of_scope:
                seen.setdefault(rcpt, None)
        return tuple(seen)

    @property
    def public_status(self) -> str:
        return self.status.public


@dataclass(frozen=True)
class Decision:
    """The outcome of a release/reject/expire call; ``changed`` is False when it was a repeat."""

    id: str
    status: Status
    changed: bool
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    outbox_ids: tuple[str, ...] = ()  # the items enqueued by *this* call (empty on a repeat)


@dataclass(frozen=True)
class OutboxItem:
    """One unit of work for the outbox worker, claimed under a lease."""

    id: str
    kind: OutboxKind
    quarantine_id: str
    created_at: datetime
    attempts: int  # including the current claim
    notice: NoticeKind | None = None
    role: str | None = None  # for notices: "sender" or "owner"
    to: tuple[str, ...] = ()  # for notices: the notice's recipients
    state: OutboxState = OutboxState.PENDING
    last_error: str | None = None
    next_attempt_at: datetime | None = None


@dataclass(frozen=True)
class AuditEvent:
    """One row of the append-only, hash-chained audit log; ``details`` never holds content."""

    seq: int
    at: datetime
    actor: str
    action: str
    object_id: str | None
    details: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = ""
    hash: str = ""


@dataclass(frozen=True)
class IncidentOrigin:
    """Where the poller found an incident: which backend, mailbox, folder and item."""

    quarantine_id: str
    source: str  # "ews" | "graph" | "imap"
    mailbox: str
    folder: str
    item_id: str


@dataclass(frozen=True)
class Disclosure:
    """A delivered message that carried registered secrets (relayed: passed or flagged).

    Together with the quarantine (held, and how that ended) and poller incidents (sent), this is
    the disclosure ledger a customer can ask for. No content: rule ids, locations, recipients.
    """

    at: datetime
    sender: str
    recipients: tuple[str, ...]
    action: Action  # what the relay did: pass or flag
    hits: tuple[Hit, ...]
    message_id: str | None
    ruleset_version: str
    source: str  # "relay"


@dataclass(frozen=True)
class StoreStats:
    """Gauges for metrics and health checks."""

    by_status: dict[str, int]
    outbox_pending: int
    outbox_failed: int


class QuarantineStore(ABC):
    """What the relay, the outbox worker, the CLI and the review app need from storage.

    Every method is blocking and thread-safe: async callers use ``asyncio.to_thread``. Every
    ``datetime`` is timezone-aware (UTC); times are passed in (``now``) so tests control the clock.
    I/O failures (disk full, database locked for too long) raise ``TransientError``.
    """

    # -- holding ------------------------------------------------------------------------------

    @abstractmethod
    def hold(
        self,
        raw: bytes,
        envelope: Envelope,
        verdict: Verdict,
        *,
        received_at: datetime,
        peer: str | None,
        message_id: str | None,
        mail_options: tuple[str, ...] = (),
        subject: str | None = None,
        notify_sender: bool = True,
        owners: tuple[str, ...] = (),
    ) -> str:
        """Store the message durably and return its quarantine id.

        Returns only after the content is fsynced and the row committed; in the same transaction
        the hold notices are enqueued: to the sender when ``notify_sender`` (never to a null
        reverse-path) and one per address in ``owners`` (the rule owners to tell). ``subject``
        is the decoded Subject header for the review UI. Raises ``TransientError`` on I/O
        failure, leaving nothing half-written behind.
        """

    # -- poller incidents, ledger and cursors ---------------------------------------------------

    @abstractmethod
    def record_incident(
        self,
        raw: bytes,
        envelope: Envelope,
        verdict: Verdict,
        *,
        received_at: datetime,
        source: str,
        mailbox: str,
        folder: str,
        item_id: str,
        message_id: str | None,
        dedupe_key: str,
        subject: str | None = None,
        owners: tuple[str, ...] = (),
        compliance: tuple[str, ...] = (),
    ) -> str:
        """Record a disclosure the poller found (status ``sent``) and return its id.

        Durable like ``hold`` (content fsynced before the commit). In the same transaction: the
        ledger entry (``mailbox``, ``dedupe_key``, the verdict's ruleset version) with outcome
        ``incident``, an ``incident`` audit event, and one incident notice per address of
        ``owners`` (role "owner") and ``compliance`` (role "compliance"). Idempotent: when that
        ledger entry already points at an incident, nothing is written and its id is returned.
        """

    @abstractmethod
    def record_disclosure(
        self,
        envelope: Envelope,
        verdict: Verdict,
        *,
        at: datetime,
        message_id: str | None,
        source: str = "relay",
    ) -> None:
        """Record a delivered message whose verdict has hits (the disclosure ledger).

        Called after the upstream accepted the message, so it must never affect delivery;
        raises ``TransientError`` on I/O failure for the caller to log.
        """

    @abstractmethod
    def disclosures(
        self, *, rule_ids: Collection[str], limit: int = 10_000
    ) -> builtins.list[Disclosure]:
        """Delivered messages that hit any of ``rule_ids``, newest first."""

    @abstractmethod
    def incident_origin(self, quarantine_id: str) -> IncidentOrigin:
        """Where the incident was found; ``NotFoundError`` for an id that is not an incident."""

    @abstractmethod
    def processed(self, mailbox: str, dedupe_key: str, ruleset_version: str) -> str | None:
        """The recorded outcome when this message was already processed with these rules, or
        ``"incident"`` when an incident was recorded for it under any rules version."""

    @abstractmethod
    def mark_processed(
        self,
        mailbox: str,
        dedupe_key: str,
        ruleset_version: str,
        *,
        outcome: str,
        now: datetime,
    ) -> bool:
        """Enter a non-incident outcome ("pass", "tagged", ...) in the ledger.

        Returns False (and changes nothing) when the entry already exists: the first outcome
        stands.
        """

    @abstractmethod
    def commit_poll_batch(
        self,
        mailbox: str,
        folder: str,
        cursor: str,
        processed: Sequence[tuple[str, str, str]],
        *,
        now: datetime,
    ) -> None:
        """One transaction: ledger entries ``(dedupe_key, ruleset_version, outcome)`` for the
        batch's non-incident items (first outcome stands) and the folder's new cursor.

        One commit per batch instead of one per item: a crash before it re-reads the batch,
        which the ledger then answers for the incidents already recorded.
        """

    @abstractmethod
    def poll_cursor(self, mailbox: str, folder: str) -> str | None:
        """The last committed cursor of a watched folder (opaque to the store), or None."""

    @abstractmethod
    def save_poll_cursor(
        self, mailbox: str, folder: str, cursor: str | None, *, now: datetime
    ) -> None:
        """Commit a folder's cursor (None forgets it: the next poll is a full resync)."""

    # -- reading ------------------------------------------------------------------------------

    @abstractmethod
    def get(self, quarantine_id: str) -> QuarantineRecord:
        """The record, or ``NotFoundError``."""

    @abstractmethod
    def list(
        self,
        *,
        status: Status | Collection[Status] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[QuarantineRecord]:
        """Records newest first, optionally only those whose status is (one of) ``status``."""

    @abstractmethod
    def raw(self, quarantine_id: str) -> bytes:
        """The byte-identical message; ``NotFoundError`` or ``ContentGoneError``."""

    @abstractmethod
    def stats(self) -> StoreStats:
        """Counts by status and outbox depth."""

    # -- decisions ----------------------------------------------------------------------------

    @abstractmethod
    def release(self, quarantine_id: str, *, by: str, reason: str, now: datetime) -> Decision:
        """Decide to release: held/release_failed → releasing + one "deliver" outbox item.

        Atomic and idempotent: on a record already releasing/released/rejected/expired it changes
        nothing, enqueues nothing and returns the existing outcome with ``changed=False``.
        """

    @abstractmethod
    def reject(self, quarantine_id: str, *, by: str, reason: str, now: datetime) -> Decision:
        """Decide to reject: held/release_failed → rejected + a reject notice to the sender.

        Atomic and idempotent like ``release``.
        """

    # -- outbox -------------------------------------------------------------------------------

    @abstractmethod
    def claim_outbox(
        self,
        *,
        limit: int,
        worker_id: str,
        now: datetime,
        lease_seconds: float,
        quarantine_id: str | None = None,
    ) -> builtins.list[OutboxItem]:
        """Lease up to ``limit`` due pending items (not leased, or whose lease expired).

        A worker that crashes loses its lease after ``lease_seconds`` and the items are claimed
        again: delivery is at-least-once. ``quarantine_id`` restricts the claim to one message
        (the CLI delivers the decision it just made).
        """

    @abstractmethod
    def complete(self, item_id: str, *, now: datetime) -> None:
        """The item was delivered (upstream 250): mark it done; a "deliver" marks the record
        released, in the same transaction."""

    @abstractmethod
    def fail(
        self, item_id: str, *, error_kind: str, retry_at: datetime | None, now: datetime
    ) -> None:
        """Delivery failed: retry at ``retry_at``, or with ``None`` fail for good.

        A permanent failure is audited and stays visible: the item's state becomes ``failed``,
        a "deliver" turns the record into ``release_failed`` and enqueues a release-failed notice
        to the sender. ``error_kind`` is short and content-free (e.g. ``"smtp-550"``).
        """

    @abstractmethod
    def outbox(
        self, *, quarantine_id: str | None = None, state: OutboxState | None = None
    ) -> builtins.list[OutboxItem]:
        """Outbox items for inspection (CLI, metrics, tests)."""

    # -- retention ----------------------------------------------------------------------------

    @abstractmethod
    def expire_older_than(
        self, age: timedelta, *, action: str = "reject", now: datetime, by: str = "retention"
    ) -> builtins.list[Decision]:
        """Expire every still-held record received before ``now - age``.

        ``action="reject"``: status expired + an expire notice to the sender; ``"release"``: the
        record is released as if by a reviewer. Audited as ``expire`` either way.
        """

    @abstractmethod
    def purge_content_older_than(self, age: timedelta, *, now: datetime) -> builtins.list[str]:
        """Delete the content of decided records and incidents (``sent``) received before
        ``now - age``; keep the record and the audit. Never purges held/releasing/release_failed
        messages. Also removes content that no record points at (a hold that crashed before its
        commit, never acknowledged). Returns the purged record ids."""

    # -- audit --------------------------------------------------------------------------------

    @abstractmethod
    def append_audit(
        self,
        *,
        actor: str,
        action: str,
        object_id: str | None,
        details: dict[str, Any],
        now: datetime,
    ) -> AuditEvent:
        """Append one event (for events outside the store: rule uploads, logins)."""

    @abstractmethod
    def audit(self, *, object_id: str | None = None) -> builtins.list[AuditEvent]:
        """Audit events in order, optionally only those about ``object_id``."""

    @abstractmethod
    def verify_audit(self) -> builtins.list[str]:
        """Check the hash chain; returns one content-free line per problem (empty: intact)."""

    # -- lifecycle ----------------------------------------------------------------------------

    @abstractmethod
    def close(self) -> None:
        """Release database handles; the store is unusable afterwards."""

    def __enter__(self) -> QuarantineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
