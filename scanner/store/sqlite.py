"""The embedded quarantine store: SQLite (WAL, synchronous=FULL) for records, outbox and audit,
plus one content file per message (``files.ContentFiles``).

Owns the schema and every SQL statement of the embedded backend; nothing SQLite-specific leaves
this module (callers see ``QuarantineStore``). It must not log or raise with content: errors say
what failed, never what the message said. Its hazards: (1) ordering — the content file is made
durable *before* the row is committed, so a committed row always has its content, and a crash in
between leaves only an orphan file that no listing shows; (2) concurrency — one connection shared
by threads (the relay calls through ``asyncio.to_thread``) behind a lock, and write transactions
start with ``BEGIN IMMEDIATE`` so the daemon and a CLI process serialize on the database lock
instead of deadlocking on a read→write upgrade.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from scanner.errors import TransientError
from scanner.model import Action, Envelope, Hit, Span, Unscannable, Verdict
from scanner.sqlitetx import write_transaction
from scanner.store.base import (
    AuditEvent,
    ContentGoneError,
    Decision,
    Disclosure,
    IncidentOrigin,
    NotFoundError,
    NoticeKind,
    OutboxItem,
    OutboxKind,
    OutboxState,
    QuarantineRecord,
    QuarantineStore,
    Status,
    StoreStats,
    is_null_sender,
)
from scanner.store.files import ContentFiles

SCHEMA_VERSION = 1
GENESIS_HASH = "0" * 64
DB_NAME = "maruhi.sqlite3"
# An unreferenced content file younger than this may be a hold still being committed.
ORPHAN_GRACE = timedelta(hours=1)
# How long a writer waits for another process's transaction before giving up with a 451.
BUSY_TIMEOUT_MS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    id TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipients TEXT NOT NULL,
    size INTEGER NOT NULL,
    message_id TEXT,
    subject TEXT,
    peer TEXT,
    action TEXT NOT NULL,
    hits TEXT NOT NULL,
    unscannable TEXT NOT NULL,
    ruleset_version TEXT NOT NULL,
    status TEXT NOT NULL,
    mail_options TEXT NOT NULL,
    decided_by TEXT,
    decided_at TEXT,
    reason TEXT,
    content_purged INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS quarantine_status ON quarantine (status, received_at);
CREATE INDEX IF NOT EXISTS quarantine_received ON quarantine (received_at, id);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    quarantine_id TEXT NOT NULL REFERENCES quarantine (id),
    notice TEXT,
    role TEXT,
    recipients TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until TEXT,
    last_error TEXT,
    done_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS outbox_message ON outbox (quarantine_id);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object_id TEXT,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
-- Append-only: the hash chain detects tampering, the triggers stop accidents.
-- Poller: where an incident was found, what was processed with which rules, folder cursors.
-- New tables only (IF NOT EXISTS), so a store created before the poller existed just gains them.
CREATE TABLE IF NOT EXISTS disclosure (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipients TEXT NOT NULL,
    action TEXT NOT NULL,
    hits TEXT NOT NULL,
    message_id TEXT,
    ruleset_version TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS disclosure_rule (
    rule_id TEXT NOT NULL,
    disclosure_id INTEGER NOT NULL REFERENCES disclosure (id),
    PRIMARY KEY (rule_id, disclosure_id)
);
CREATE TABLE IF NOT EXISTS incident_origin (
    quarantine_id TEXT PRIMARY KEY REFERENCES quarantine (id),
    source TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    folder TEXT NOT NULL,
    item_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS poll_ledger (
    mailbox TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    ruleset_version TEXT NOT NULL,
    outcome TEXT NOT NULL,
    quarantine_id TEXT,
    at TEXT NOT NULL,
    PRIMARY KEY (mailbox, dedupe_key, ruleset_version)
);
CREATE TABLE IF NOT EXISTS poll_cursor (
    mailbox TEXT NOT NULL,
    folder TEXT NOT NULL,
    cursor TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (mailbox, folder)
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
"""

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(at: datetime | None = None) -> str:
    """A ULID-shaped id: 48-bit milliseconds + 80 random bits, Crockford base32, 26 chars.

    Sortable by time (handy for operators) and unguessable (the random part), URL-safe.
    """
    ms = int((at or datetime.now(UTC)).timestamp() * 1000) & ((1 << 48) - 1)
    value = (ms << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _ts(dt: datetime) -> str:
    """One fixed-width UTC format, so that text comparison in SQL is time comparison."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime given to the store; pass an aware UTC time")
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _canonical(
    seq: int, at: str, actor: str, action: str, object_id: str | None, details: str
) -> str:
    return json.dumps(
        {
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "object_id": object_id,
            "details": json.loads(details),
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )


def audit_hash(prev_hash: str, canonical: str) -> str:
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def _hits_json(hits: tuple[Hit, ...]) -> str:
    return json.dumps(
        [
            {
                "rule": h.rule_id,
                "location": h.location,
                "out_of_scope": list(h.out_of_scope),
                "action": h.action.label,
                "spans": [[s.start, s.end] for s in h.spans],
            }
            for h in hits
        ],
        ensure_ascii=False,
    )


def _hits_from(text: str) -> tuple[Hit, ...]:
    return tuple(
        Hit(
            rule_id=h["rule"],
            location=h["location"],
            out_of_scope=tuple(h["out_of_scope"]),
            action=Action.parse(h["action"]),
            spans=tuple(Span(s, e) for s, e in h["spans"]),
        )
        for h in json.loads(text)
    )


def _subject_of(raw: bytes) -> str | None:
    """The decoded Subject for the review UI; header-only parse, never raises."""
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        value = headers.get("subject")
        return None if value is None else str(value)
    except Exception:  # a broken header must not fail a hold: the subject is a convenience
        return None


def _insert_record(
    db: sqlite3.Connection,
    qid: str,
    raw: bytes,
    envelope: Envelope,
    verdict: Verdict,
    *,
    received_at: datetime,
    message_id: str | None,
    subject: str | None,
    peer: str | None,
    status: Status,
    mail_options: tuple[str, ...],
) -> None:
    """The one INSERT of a quarantine record (a hold or a poller incident)."""
    db.execute(
        "INSERT INTO quarantine (id, received_at, sender, recipients, size,"
        " message_id, subject, peer, action, hits, unscannable, ruleset_version,"
        " status, mail_options) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            qid,
            _ts(received_at),
            envelope.sender,
            json.dumps(list(envelope.recipients), ensure_ascii=False),
            len(raw),
            message_id,
            subject,
            peer,
            verdict.action.label,
            _hits_json(verdict.hits),
            json.dumps([u.to_json() for u in verdict.unscannable], ensure_ascii=False),
            verdict.ruleset_version,
            status.value,
            json.dumps(list(mail_options)),
        ),
    )


class _AlreadyRecorded(Exception):
    """Internal: the ledger already holds an incident for this key (rolls the transaction back)."""

    def __init__(self, quarantine_id: str) -> None:
        self.quarantine_id = quarantine_id
        super().__init__(quarantine_id)


class SqliteStore(QuarantineStore):
    """``QuarantineStore`` on one SQLite file and a directory of content files."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        try:
            self.files = ContentFiles(data_dir)
        except OSError as exc:
            raise TransientError(f"cannot use the data directory ({type(exc).__name__})") from exc
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                data_dir / DB_NAME,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # guarded by self._lock instead
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            # FULL: a commit is on disk when it returns, which is what "250 held" promises.
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._init_schema()
        except sqlite3.Error as exc:
            raise TransientError(
                f"cannot open the quarantine database ({type(exc).__name__})"
            ) from exc
        self.files.sweep_tmp()

    def _init_schema(self) -> None:
        with self._lock:
            # executescript() runs outside our explicit transactions; CREATE ... IF NOT EXISTS
            # makes it safe for two processes opening the store at the same time.
            self._db.executescript(_SCHEMA)
            with self._tx() as db:
                db.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )

    # -- plumbing -----------------------------------------------------------------------------

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A write transaction under the thread lock; SQLite errors become TransientError."""
        return write_transaction(self._db, self._lock, "quarantine database")

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> builtins.list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise TransientError(f"quarantine database error ({type(exc).__name__})") from exc

    def _audit(
        self,
        db: sqlite3.Connection,
        *,
        actor: str,
        action: str,
        object_id: str | None,
        details: dict[str, Any],
        now: datetime,
    ) -> AuditEvent:
        """Append to the chain inside the caller's transaction (so state and audit agree)."""
        last = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq = 1 if last is None else last["seq"] + 1
        prev = GENESIS_HASH if last is None else last["hash"]
        at = _ts(now)
        details_text = json.dumps(details, sort_keys=True, ensure_ascii=False)
        digest = audit_hash(prev, _canonical(seq, at, actor, action, object_id, details_text))
        db.execute(
            "INSERT INTO audit (seq, at, actor, action, object_id, details, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, at, actor, action, object_id, details_text, prev, digest),
        )
        return AuditEvent(seq, now, actor, action, object_id, details, prev, digest)

    def _notify_sender(
        self,
        db: sqlite3.Connection,
        quarantine_id: str,
        sender: str,
        notice: NoticeKind,
        now: datetime,
    ) -> str | None:
        """Queue ``notice`` to the sender, unless the reverse-path is null (never to <>)."""
        if is_null_sender(sender):
            return None
        return self._enqueue(db, kind=OutboxKind.NOTICE, quarantine_id=quarantine_id, now=now,
                             notice=notice, role="sender", to=(sender,))

    def _enqueue(
        self,
        db: sqlite3.Connection,
        *,
        kind: OutboxKind,
        quarantine_id: str,
        now: datetime,
        notice: NoticeKind | None = None,
        role: str | None = None,
        to: tuple[str, ...] = (),
    ) -> str:
        item_id = new_id(now)
        db.execute(
            "INSERT INTO outbox (id, kind, quarantine_id, notice, role, recipients, state,"
            " created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                item_id,
                kind.value,
                quarantine_id,
                None if notice is None else notice.value,
                role,
                json.dumps(list(to)),
                OutboxState.PENDING.value,
                _ts(now),
                _ts(now),
            ),
        )
        return item_id

    @staticmethod
    def _record(row: sqlite3.Row) -> QuarantineRecord:
        return QuarantineRecord(
            id=row["id"],
            received_at=datetime.fromisoformat(row["received_at"]),
            sender=row["sender"],
            recipients=tuple(json.loads(row["recipients"])),
            size=row["size"],
            message_id=row["message_id"],
            subject=row["subject"],
            peer=row["peer"],
            action=Action.parse(row["action"]),
            hits=_hits_from(row["hits"]),
            unscannable=tuple(Unscannable(**u) for u in json.loads(row["unscannable"])),
            ruleset_version=row["ruleset_version"],
            status=Status(row["status"]),
            mail_options=tuple(json.loads(row["mail_options"])),
            decided_by=row["decided_by"],
            decided_at=_dt(row["decided_at"]),
            reason=row["reason"],
            content_purged=bool(row["content_purged"]),
            last_error=row["last_error"],
        )

    @staticmethod
    def _item(row: sqlite3.Row) -> OutboxItem:
        return OutboxItem(
            id=row["id"],
            kind=OutboxKind(row["kind"]),
            quarantine_id=row["quarantine_id"],
            created_at=datetime.fromisoformat(row["created_at"]),
            attempts=row["attempts"],
            notice=None if row["notice"] is None else NoticeKind(row["notice"]),
            role=row["role"],
            to=tuple(json.loads(row["recipients"])),
            state=OutboxState(row["state"]),
            last_error=row["last_error"],
            next_attempt_at=_dt(row["next_attempt_at"]),
        )

    # -- holding ------------------------------------------------------------------------------

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
        qid = new_id(received_at)
        # 1. content durable first: a committed row must never point at missing bytes.
        self.files.write(qid, raw)
        if subject is None:
            subject = _subject_of(raw)
        try:
            with self._tx() as db:
                _insert_record(db, qid, raw, envelope, verdict, received_at=received_at,
                               message_id=message_id, subject=subject, peer=peer,
                               status=Status.HELD, mail_options=mail_options)
                # 2. notices in the same transaction: a committed hold always gets its notices.
                if notify_sender and not is_null_sender(envelope.sender):
                    self._enqueue(
                        db,
                        kind=OutboxKind.NOTICE,
                        quarantine_id=qid,
                        now=received_at,
                        notice=NoticeKind.HOLD,
                        role="sender",
                        to=(envelope.sender,),
                    )
                told = {envelope.sender.lower(), "", "<>"} if notify_sender else {"", "<>"}
                for owner in owners:
                    if owner.lower() not in told:
                        told.add(owner.lower())
                        self._enqueue(
                            db,
                            kind=OutboxKind.NOTICE,
                            quarantine_id=qid,
                            now=received_at,
                            notice=NoticeKind.HOLD,
                            role="owner",
                            to=(owner,),
                        )
                self._audit(
                    db,
                    actor="relay",
                    action="hold",
                    object_id=qid,
                    details={
                        "action": verdict.action.label,
                        "rules": list(verdict.rule_ids),
                        "unscannable": [u.location for u in verdict.unscannable],
                        "recipients": len(envelope.recipients),
                        "size": len(raw),
                        "ruleset_version": verdict.ruleset_version,
                    },
                    now=received_at,
                )
        except BaseException:
            # Not committed: the client gets a 451 and will retry, so drop the orphan content.
            # An orphan file left by a failed delete is harmless: no row points at it.
            with contextlib.suppress(TransientError):
                self.files.delete(qid)
            raise
        return qid

    # -- poller incidents, ledger and cursors ---------------------------------------------------

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
        ledger_key = (mailbox, dedupe_key, verdict.ruleset_version)
        existing = self._ledger_incident(ledger_key)
        if existing is not None:
            return existing  # a resync found it again: the first record stands
        qid = new_id(received_at)
        self.files.write(qid, raw)  # content durable before the row, as for a hold
        if subject is None:
            subject = _subject_of(raw)
        try:
            with self._tx() as db:
                row = db.execute(
                    "SELECT quarantine_id FROM poll_ledger WHERE mailbox = ? AND dedupe_key = ?"
                    " AND quarantine_id IS NOT NULL LIMIT 1",
                    ledger_key[:2],
                ).fetchone()
                if row is not None and row["quarantine_id"] is not None:
                    # Another poller instance recorded it between our check and this lock.
                    raise _AlreadyRecorded(row["quarantine_id"])
                _insert_record(db, qid, raw, envelope, verdict, received_at=received_at,
                               message_id=message_id, subject=subject,
                               peer=f"poller:{source}", status=Status.SENT, mail_options=())
                db.execute(
                    "INSERT INTO incident_origin (quarantine_id, source, mailbox, folder, item_id)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (qid, source, mailbox, folder, item_id),
                )
                # An earlier non-incident outcome for the same key (e.g. a failed attempt noted
                # as "pass") is superseded: the incident is what the ledger must answer.
                db.execute(
                    "INSERT OR REPLACE INTO poll_ledger (mailbox, dedupe_key, ruleset_version,"
                    " outcome, quarantine_id, at) VALUES (?, ?, ?, 'incident', ?, ?)",
                    (*ledger_key, qid, _ts(received_at)),
                )
                told = {"", "<>"}
                for role, addresses in (("owner", owners), ("compliance", compliance)):
                    for address in addresses:
                        if address.lower() in told:
                            continue
                        told.add(address.lower())
                        self._enqueue(
                            db,
                            kind=OutboxKind.NOTICE,
                            quarantine_id=qid,
                            now=received_at,
                            notice=NoticeKind.INCIDENT,
                            role=role,
                            to=(address,),
                        )
                self._audit(
                    db,
                    actor=f"poller:{source}",
                    action="incident",
                    object_id=qid,
                    details={
                        "action": verdict.action.label,
                        "rules": list(verdict.rule_ids),
                        "unscannable": [u.location for u in verdict.unscannable],
                        "recipients": len(envelope.recipients),
                        "size": len(raw),
                        "ruleset_version": verdict.ruleset_version,
                        "mailbox": mailbox,
                        "folder": folder,
                    },
                    now=received_at,
                )
        except _AlreadyRecorded as exc:
            with contextlib.suppress(TransientError):
                self.files.delete(qid)
            return exc.quarantine_id
        except BaseException:
            with contextlib.suppress(TransientError):
                self.files.delete(qid)
            raise
        return qid

    def _ledger_incident(self, key: tuple[str, str, str]) -> str | None:
        """The incident already recorded for this item under ANY ruleset version: sent mail
        does not change, so a rules change must not report (and notify) it a second time."""
        rows = self._read(
            "SELECT quarantine_id FROM poll_ledger WHERE mailbox = ? AND dedupe_key = ?"
            " AND quarantine_id IS NOT NULL LIMIT 1",
            key[:2],
        )
        return rows[0]["quarantine_id"] if rows else None

    def record_disclosure(
        self,
        envelope: Envelope,
        verdict: Verdict,
        *,
        at: datetime,
        message_id: str | None,
        source: str = "relay",
    ) -> None:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO disclosure (at, sender, recipients, action, hits, message_id,"
                " ruleset_version, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _ts(at),
                    envelope.sender,
                    json.dumps(list(envelope.recipients), ensure_ascii=False),
                    verdict.action.label,
                    _hits_json(verdict.hits),
                    message_id,
                    verdict.ruleset_version,
                    source,
                ),
            )
            db.executemany(
                "INSERT OR IGNORE INTO disclosure_rule (rule_id, disclosure_id) VALUES (?, ?)",
                [(rule_id, cur.lastrowid) for rule_id in verdict.rule_ids],
            )

    def disclosures(
        self, *, rule_ids: Collection[str], limit: int = 10_000
    ) -> builtins.list[Disclosure]:
        wanted = sorted(set(rule_ids))
        if not wanted:
            return []
        marks = ", ".join("?" * len(wanted))
        rows = self._read(
            "SELECT * FROM disclosure WHERE id IN (SELECT disclosure_id FROM disclosure_rule"
            f" WHERE rule_id IN ({marks})) ORDER BY at DESC, id DESC LIMIT ?",
            (*wanted, limit),
        )
        out: builtins.list[Disclosure] = []
        for r in rows:
            at = _dt(r["at"])
            assert at is not None
            out.append(
                Disclosure(
                    at=at,
                    sender=r["sender"],
                    recipients=tuple(json.loads(r["recipients"])),
                    action=Action.parse(r["action"]),
                    hits=_hits_from(r["hits"]),
                    message_id=r["message_id"],
                    ruleset_version=r["ruleset_version"],
                    source=r["source"],
                )
            )
        return out

    def incident_origin(self, quarantine_id: str) -> IncidentOrigin:
        rows = self._read("SELECT * FROM incident_origin WHERE quarantine_id = ?", (quarantine_id,))
        if not rows:
            raise NotFoundError(quarantine_id)
        r = rows[0]
        return IncidentOrigin(
            r["quarantine_id"], r["source"], r["mailbox"], r["folder"], r["item_id"]
        )

    def processed(self, mailbox: str, dedupe_key: str, ruleset_version: str) -> str | None:
        # An incident stands across versions; any other outcome is re-judged by new rules.
        if self._ledger_incident((mailbox, dedupe_key, ruleset_version)) is not None:
            return "incident"
        rows = self._read(
            "SELECT outcome FROM poll_ledger WHERE mailbox = ? AND dedupe_key = ?"
            " AND ruleset_version = ?",
            (mailbox, dedupe_key, ruleset_version),
        )
        return rows[0]["outcome"] if rows else None

    def mark_processed(
        self,
        mailbox: str,
        dedupe_key: str,
        ruleset_version: str,
        *,
        outcome: str,
        now: datetime,
    ) -> bool:
        with self._tx() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO poll_ledger (mailbox, dedupe_key, ruleset_version,"
                " outcome, quarantine_id, at) VALUES (?, ?, ?, ?, NULL, ?)",
                (mailbox, dedupe_key, ruleset_version, outcome, _ts(now)),
            )
            return cursor.rowcount == 1

    def commit_poll_batch(
        self,
        mailbox: str,
        folder: str,
        cursor: str,
        processed: Sequence[tuple[str, str, str]],
        *,
        now: datetime,
    ) -> None:
        at = _ts(now)
        with self._tx() as db:
            db.executemany(
                "INSERT OR IGNORE INTO poll_ledger (mailbox, dedupe_key, ruleset_version,"
                " outcome, quarantine_id, at) VALUES (?, ?, ?, ?, NULL, ?)",
                [(mailbox, key, version, outcome, at) for key, version, outcome in processed],
            )
            db.execute(
                "INSERT INTO poll_cursor (mailbox, folder, cursor, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (mailbox, folder) DO UPDATE SET cursor = excluded.cursor,"
                " updated_at = excluded.updated_at",
                (mailbox, folder, cursor, at),
            )

    def poll_cursor(self, mailbox: str, folder: str) -> str | None:
        rows = self._read(
            "SELECT cursor FROM poll_cursor WHERE mailbox = ? AND folder = ?", (mailbox, folder)
        )
        return rows[0]["cursor"] if rows else None

    def save_poll_cursor(
        self, mailbox: str, folder: str, cursor: str | None, *, now: datetime
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO poll_cursor (mailbox, folder, cursor, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (mailbox, folder) DO UPDATE SET cursor = excluded.cursor,"
                " updated_at = excluded.updated_at",
                (mailbox, folder, cursor, _ts(now)),
            )

    # -- reading ------------------------------------------------------------------------------

    def get(self, quarantine_id: str) -> QuarantineRecord:
        rows = self._read("SELECT * FROM quarantine WHERE id = ?", (quarantine_id,))
        if not rows:
            raise NotFoundError(quarantine_id)
        return self._record(rows[0])

    def list(
        self,
        *,
        status: Status | Collection[Status] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[QuarantineRecord]:
        where, params = "", []
        if status is not None:
            wanted = [Status(status)] if isinstance(status, str) else builtins.list(status)
            where = f"WHERE status IN ({', '.join('?' for _ in wanted)})"
            params = [s.value for s in wanted]
        rows = self._read(
            f"SELECT * FROM quarantine {where} ORDER BY received_at DESC, id DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [self._record(r) for r in rows]

    def raw(self, quarantine_id: str) -> bytes:
        record = self.get(quarantine_id)
        if record.content_purged:
            raise ContentGoneError(quarantine_id)
        content = self.files.read(quarantine_id)
        if content is None:
            # Purge deletes the file before it marks the row; a crash in between lands here.
            raise ContentGoneError(quarantine_id)
        return content

    def stats(self) -> StoreStats:
        by_status = {s.value: 0 for s in Status}
        for row in self._read("SELECT status, COUNT(*) AS n FROM quarantine GROUP BY status"):
            by_status[row["status"]] = row["n"]
        depth = {s.value: 0 for s in OutboxState}
        for row in self._read("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state"):
            depth[row["state"]] = row["n"]
        return StoreStats(
            by_status=by_status,
            outbox_pending=depth[OutboxState.PENDING.value],
            outbox_failed=depth[OutboxState.FAILED.value],
        )

    # -- decisions ----------------------------------------------------------------------------

    _DECIDABLE = (Status.HELD.value, Status.RELEASE_FAILED.value)

    def _decide(
        self, quarantine_id: str, *, outcome: str, by: str, reason: str, now: datetime
    ) -> Decision:
        with self._tx() as db:
            row = db.execute(
                "SELECT status, sender, decided_by, decided_at, reason, content_purged"
                " FROM quarantine WHERE id = ?",
                (quarantine_id,),
            ).fetchone()
            if row is None:
                raise NotFoundError(quarantine_id)
            if row["status"] not in self._DECIDABLE:
                # A repeat (or a conflicting late decision): report what is, change nothing.
                return Decision(
                    id=quarantine_id,
                    status=Status(row["status"]),
                    changed=False,
                    decided_by=row["decided_by"],
                    decided_at=_dt(row["decided_at"]),
                    reason=row["reason"],
                )
            if outcome == "release":
                new_status = Status.RELEASING
                item: str | None = self._enqueue(
                    db, kind=OutboxKind.DELIVER, quarantine_id=quarantine_id, now=now
                )
            else:
                new_status = Status.REJECTED
                item = self._notify_sender(db, quarantine_id, row["sender"], NoticeKind.REJECT,
                                           now)
            db.execute(
                "UPDATE quarantine SET status = ?, decided_by = ?, decided_at = ?, reason = ?,"
                " last_error = NULL WHERE id = ?",
                (new_status.value, by, _ts(now), reason, quarantine_id),
            )
            self._audit(
                db,
                actor=by,
                action=outcome,
                object_id=quarantine_id,
                details={"reason": reason, "from_status": row["status"]},
                now=now,
            )
            return Decision(
                id=quarantine_id,
                status=new_status,
                changed=True,
                decided_by=by,
                decided_at=now,
                reason=reason,
                outbox_ids=() if item is None else (item,),
            )

    def release(self, quarantine_id: str, *, by: str, reason: str, now: datetime) -> Decision:
        return self._decide(quarantine_id, outcome="release", by=by, reason=reason, now=now)

    def reject(self, quarantine_id: str, *, by: str, reason: str, now: datetime) -> Decision:
        return self._decide(quarantine_id, outcome="reject", by=by, reason=reason, now=now)

    # -- outbox -------------------------------------------------------------------------------

    def claim_outbox(
        self,
        *,
        limit: int,
        worker_id: str,
        now: datetime,
        lease_seconds: float,
        quarantine_id: str | None = None,
    ) -> builtins.list[OutboxItem]:
        # SQLite has no SKIP LOCKED; BEGIN IMMEDIATE serializes claimers, and the lease makes a
        # crashed claimer's items due again. PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED.
        until = _ts(now + timedelta(seconds=lease_seconds))
        extra, params = "", []
        if quarantine_id is not None:
            extra, params = "AND quarantine_id = ?", [quarantine_id]
        with self._tx() as db:
            rows = db.execute(
                "SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?"
                f" AND (lease_until IS NULL OR lease_until <= ?) {extra}"
                " ORDER BY next_attempt_at, rowid LIMIT ?",
                (_ts(now), _ts(now), *params, limit),
            ).fetchall()
            ids = [r["id"] for r in rows]
            claimed = []
            for item_id in ids:
                db.execute(
                    "UPDATE outbox SET lease_owner = ?, lease_until = ?, attempts = attempts + 1"
                    " WHERE id = ?",
                    (worker_id, until, item_id),
                )
                claimed.append(
                    self._item(
                        db.execute("SELECT * FROM outbox WHERE id = ?", (item_id,)).fetchone()
                    )
                )
            return claimed

    def _item_row(self, db: sqlite3.Connection, item_id: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM outbox WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise NotFoundError(item_id)
        return row  # type: ignore[no-any-return]

    def complete(self, item_id: str, *, now: datetime) -> None:
        with self._tx() as db:
            row = self._item_row(db, item_id)
            if row["state"] == OutboxState.DONE.value:
                return  # a second worker whose lease had expired also delivered: at-least-once
            db.execute(
                "UPDATE outbox SET state = 'done', done_at = ?, lease_owner = NULL,"
                " lease_until = NULL, last_error = NULL WHERE id = ?",
                (_ts(now), item_id),
            )
            if row["kind"] == OutboxKind.DELIVER.value:
                db.execute(
                    "UPDATE quarantine SET status = ?, last_error = NULL"
                    " WHERE id = ? AND status IN (?, ?)",
                    (
                        Status.RELEASED.value,
                        row["quarantine_id"],
                        Status.RELEASING.value,
                        Status.RELEASE_FAILED.value,
                    ),
                )
                action = "delivered"
            else:
                action = "notice_sent"
            self._audit(
                db,
                actor="outbox",
                action=action,
                object_id=row["quarantine_id"],
                details={
                    "item": item_id,
                    "notice": row["notice"],
                    "role": row["role"],
                    "attempts": row["attempts"],
                },
                now=now,
            )

    def fail(
        self, item_id: str, *, error_kind: str, retry_at: datetime | None, now: datetime
    ) -> None:
        with self._tx() as db:
            row = self._item_row(db, item_id)
            if row["state"] != OutboxState.PENDING.value:
                return  # already settled by another worker
            if retry_at is not None:
                db.execute(
                    "UPDATE outbox SET next_attempt_at = ?, last_error = ?, lease_owner = NULL,"
                    " lease_until = NULL WHERE id = ?",
                    (_ts(retry_at), error_kind, item_id),
                )
                return
            db.execute(
                "UPDATE outbox SET state = 'failed', done_at = ?, last_error = ?,"
                " lease_owner = NULL, lease_until = NULL WHERE id = ?",
                (_ts(now), error_kind, item_id),
            )
            qid = row["quarantine_id"]
            if row["kind"] == OutboxKind.DELIVER.value:
                db.execute(
                    "UPDATE quarantine SET status = ?, last_error = ? WHERE id = ? AND status = ?",
                    (Status.RELEASE_FAILED.value, error_kind, qid, Status.RELEASING.value),
                )
                sender = db.execute(
                    "SELECT sender FROM quarantine WHERE id = ?", (qid,)
                ).fetchone()["sender"]
                if not is_null_sender(sender):
                    self._enqueue(
                        db,
                        kind=OutboxKind.NOTICE,
                        quarantine_id=qid,
                        now=now,
                        notice=NoticeKind.RELEASE_FAILED,
                        role="sender",
                        to=(sender,),
                    )
                action = "release_failed"
            else:
                action = "notice_failed"
            self._audit(
                db,
                actor="outbox",
                action=action,
                object_id=qid,
                details={
                    "item": item_id,
                    "error": error_kind,
                    "attempts": row["attempts"],
                    "notice": row["notice"],
                },
                now=now,
            )

    def outbox(
        self, *, quarantine_id: str | None = None, state: OutboxState | None = None
    ) -> builtins.list[OutboxItem]:
        clauses, params = [], []
        if quarantine_id is not None:
            clauses.append("quarantine_id = ?")
            params.append(quarantine_id)
        if state is not None:
            clauses.append("state = ?")
            params.append(state.value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._read(f"SELECT * FROM outbox {where} ORDER BY created_at, rowid", tuple(params))
        return [self._item(r) for r in rows]

    # -- retention ----------------------------------------------------------------------------

    def expire_older_than(
        self, age: timedelta, *, action: str = "reject", now: datetime, by: str = "retention"
    ) -> builtins.list[Decision]:
        if action not in ("reject", "release"):
            raise ValueError("expire action must be 'reject' or 'release'")
        cutoff = _ts(now - age)
        reason = f"expired after {age.days} days without a decision"
        decisions = []
        rows = self._read(
            "SELECT id FROM quarantine WHERE status = ? AND received_at < ? ORDER BY received_at",
            (Status.HELD.value, cutoff),
        )
        for (qid,) in rows:
            # One transaction per message: a crash halfway leaves the rest held, not lost.
            with self._tx() as db:
                row = db.execute(
                    "SELECT status, sender FROM quarantine WHERE id = ?", (qid,)
                ).fetchone()
                if row["status"] != Status.HELD.value:
                    continue  # a reviewer decided meanwhile
                if action == "release":
                    new_status = Status.RELEASING
                    items: tuple[str, ...] = (
                        self._enqueue(db, kind=OutboxKind.DELIVER, quarantine_id=qid, now=now),
                    )
                else:
                    new_status = Status.EXPIRED
                    notice = self._notify_sender(db, qid, row["sender"], NoticeKind.EXPIRE, now)
                    items = (notice,) if notice is not None else ()
                db.execute(
                    "UPDATE quarantine SET status = ?, decided_by = ?, decided_at = ?,"
                    " reason = ? WHERE id = ?",
                    (new_status.value, by, _ts(now), reason, qid),
                )
                self._audit(
                    db,
                    actor=by,
                    action="expire",
                    object_id=qid,
                    details={"action": action, "age_days": age.days},
                    now=now,
                )
            decisions.append(Decision(qid, new_status, True, by, now, reason, items))
        return decisions

    def purge_content_older_than(self, age: timedelta, *, now: datetime) -> builtins.list[str]:
        cutoff = _ts(now - age)
        final = (
            Status.RELEASED.value,
            Status.REJECTED.value,
            Status.EXPIRED.value,
            Status.SENT.value,  # an incident's copy is evidence, kept as long as decided mail
        )
        rows = self._read(
            "SELECT id FROM quarantine WHERE content_purged = 0 AND status IN (?, ?, ?, ?)"
            " AND received_at < ? ORDER BY received_at",
            (*final, cutoff),
        )
        purged = []
        for (qid,) in rows:
            # File first, then the mark: a crash in between leaves a record whose content is
            # gone (raw() says so) and the next run marks it; never a mark over live content.
            self.files.delete(qid)
            with self._tx() as db:
                db.execute("UPDATE quarantine SET content_purged = 1 WHERE id = ?", (qid,))
                self._audit(
                    db,
                    actor="retention",
                    action="purge",
                    object_id=qid,
                    details={"age_days": age.days},
                    now=now,
                )
            purged.append(qid)
        self._sweep_orphans(now)
        return purged

    def _sweep_orphans(self, now: datetime) -> None:
        """Delete content files that no row points at (a crash between fsync and commit).

        Such a hold was never acknowledged (the client got no 250 and retried), so the file is
        only a confidential leftover. Files younger than ORPHAN_GRACE may belong to a hold whose
        row is being committed right now by another thread or process.
        """
        known = {r["id"] for r in self._read("SELECT id FROM quarantine")}
        cutoff = time.time() - ORPHAN_GRACE.total_seconds()
        removed = 0
        for qid in self.files.stored_ids() - known:
            if self.files.mtime(qid) < cutoff:
                self.files.delete(qid)
                removed += 1
        if removed:
            self.append_audit(
                actor="retention",
                action="purge_orphans",
                object_id=None,
                details={"files": removed},
                now=now,
            )

    # -- audit --------------------------------------------------------------------------------

    def append_audit(
        self,
        *,
        actor: str,
        action: str,
        object_id: str | None,
        details: dict[str, Any],
        now: datetime,
    ) -> AuditEvent:
        with self._tx() as db:
            return self._audit(
                db, actor=actor, action=action, object_id=object_id, details=details, now=now
            )

    def audit(self, *, object_id: str | None = None) -> builtins.list[AuditEvent]:
        if object_id is None:
            rows = self._read("SELECT * FROM audit ORDER BY seq")
        else:
            rows = self._read("SELECT * FROM audit WHERE object_id = ? ORDER BY seq", (object_id,))
        return [
            AuditEvent(
                seq=r["seq"],
                at=datetime.fromisoformat(r["at"]),
                actor=r["actor"],
                action=r["action"],
                object_id=r["object_id"],
                details=json.loads(r["details"]),
                prev_hash=r["prev_hash"],
                hash=r["hash"],
            )
            for r in rows
        ]

    def verify_audit(self) -> builtins.list[str]:
        problems = []
        expected_seq, prev = 1, GENESIS_HASH
        for r in self._read("SELECT * FROM audit ORDER BY seq"):
            seq = r["seq"]
            if seq != expected_seq:
                problems.append(f"seq {seq}: expected seq {expected_seq} (rows missing)")
            if r["prev_hash"] != prev:
                problems.append(f"seq {seq}: prev_hash does not match the previous row")
            canonical = _canonical(
                seq, r["at"], r["actor"], r["action"], r["object_id"], r["details"]
            )
            if audit_hash(r["prev_hash"], canonical) != r["hash"]:
                problems.append(f"seq {seq}: hash does not match the row's content")
            expected_seq, prev = seq + 1, r["hash"]
        return problems

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()
