"""Read-only queries of the review app over the quarantine database: list pages, ledger, audit.

Owns the SQL the review screens need beyond ``QuarantineStore`` (filters, keyset paging, the
disclosure ledger, audit paging). It opens the embedded store's SQLite file with ``mode=ro`` and
never writes: decisions go through the store. Must not log subjects or addresses. Hazards:
(1) speed at 100k held messages — the first page and every next page are keyset queries on the
store's ``quarantine_received (received_at, id)`` / ``quarantine_status (status, received_at)``
indexes (no OFFSET), so a page costs the same wherever it is; filters on JSON columns (rule,
recipient domain) and subject search scan in index order until a page is full, which is fast when
matches are common and bounded by the table when they are rare; (2) LIKE patterns are built from
user input, so ``%``, ``_`` and ``\\`` are escaped.

PostgreSQL equivalent: the same keyset condition ``(received_at, id) < ($1, $2) ORDER BY
received_at DESC, id DESC``; rule ids and recipient domains in ``text[]`` columns with GIN indexes
(``hits_rules && $3``); subject search with ``pg_trgm`` (``subject ILIKE`` on a trigram GIN index).
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from scanner.errors import TransientError
from scanner.store.base import Status
from scanner.store.sqlite import DB_NAME

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

# Public status -> stored statuses (releasing/release_failed have not left the quarantine).
STATUS_GROUPS: dict[str, tuple[str, ...]] = {
    "held": (Status.HELD.value, Status.RELEASING.value, Status.RELEASE_FAILED.value),
    "released": (Status.RELEASED.value,),
    "rejected": (Status.REJECTED.value,),
    "expired": (Status.EXPIRED.value,),
    # Incidents the mailbox poller recorded: already sent, so there is nothing to decide.
    "sent": (Status.SENT.value,),
}


@dataclass(frozen=True)
class ListFilter:
    """What a reviewer asked for; every field optional."""

    status: str | None = "held"  # a key of STATUS_GROUPS, or None for all
    rule_ids: tuple[str, ...] = ()  # any of these (a customer filter expands to its rules)
    sender: str | None = None
    recipient_domain: str | None = None
    since: date | None = None
    until: date | None = None  # inclusive
    subject: str | None = None


@dataclass(frozen=True)
class ListRow:
    id: str
    received_at: datetime
    sender: str
    recipients: tuple[str, ...]
    size: int
    subject: str | None
    status: str
    rule_ids: tuple[str, ...]
    out_of_scope: tuple[str, ...]
    hits: tuple[dict[str, Any], ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class AuditRow:
    seq: int
    at: datetime
    actor: str
    action: str
    object_id: str | None
    details: dict[str, Any]
    hash: str


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _ts(dt: datetime) -> str:
    # The store's fixed-width format (see scanner.store.sqlite._ts), so text order is time order.
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


def encode_cursor(received_at: str, item_id: str) -> str:
    return base64.urlsafe_b64encode(f"{received_at}|{item_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str] | None:
    """The (received_at, id) of a cursor, or None when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, item_id = text.split("|", 1)
        datetime.fromisoformat(at)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return at, item_id


class QuarantineQueries:
    """Read-only access to ``<data_dir>/maruhi.sqlite3``; one connection per thread."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / DB_NAME
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(f"{self._path.resolve().as_uri()}?mode=ro", uri=True,
                                     timeout=10)
            except sqlite3.Error as exc:
                raise TransientError(f"cannot open the quarantine ({type(exc).__name__})") from exc
            db.row_factory = sqlite3.Row
            self._local.db = db
        return db

    def _rows(self, sql: str, params: Iterable[Any]) -> list[sqlite3.Row]:
        try:
            return self._db().execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise TransientError(f"quarantine query failed ({type(exc).__name__})") from exc

    @staticmethod
    def _where(f: ListFilter) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if f.status:
            statuses = STATUS_GROUPS.get(f.status, (f.status,))
            # "+status": keep SQLite on the (received_at, id) index, reading newest first until a
            # page is full; the (status, received_at) index would sort every held row first.
            clauses.append(f"+status IN ({', '.join('?' for _ in statuses)})")
            params.extend(statuses)
        if f.rule_ids:
            ors = []
            for rule_id in f.rule_ids[:100]:
                ors.append("hits LIKE ? ESCAPE '\\'")
                params.append(f'%"rule": {_like(json.dumps(rule_id, ensure_ascii=False))}%')
            clauses.append(f"({' OR '.join(ors)})")
        if f.sender:
            clauses.append("sender LIKE ? ESCAPE '\\'")
            params.append(f"%{_like(f.sender.strip())}%")
        if f.recipient_domain:
            clauses.append("recipients LIKE ? ESCAPE '\\'")
            params.append(f'%@{_like(f.recipient_domain.strip().lower())}"%')
        if f.since:
            clauses.append("received_at >= ?")
            params.append(_ts(datetime(f.since.year, f.since.month, f.since.day, tzinfo=UTC)))
        if f.until:
            end = datetime(f.until.year, f.until.month, f.until.day, tzinfo=UTC)
            clauses.append("received_at < ?")
            params.append(_ts(end + timedelta(days=1)))
        if f.subject:
            clauses.append("subject LIKE ? ESCAPE '\\'")
            params.append(f"%{_like(f.subject.strip())}%")
        return clauses, params

    def page(
        self, f: ListFilter, *, cursor: str | None = None, limit: int = PAGE_SIZE
    ) -> tuple[list[ListRow], str | None]:
        """One page newest first and the cursor of the next page (None: last page)."""
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        clauses, params = self._where(f)
        if cursor:
            after = decode_cursor(cursor)
            if after is not None:
                # Row-value comparison: SQLite walks the (received_at, id) index from here.
                clauses.append("(received_at, id) < (?, ?)")
                params.extend(after)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._rows(
            "SELECT id, received_at, sender, recipients, size, subject, status, hits"
            f" FROM quarantine {where} ORDER BY received_at DESC, id DESC LIMIT ?",
            (*params, limit + 1),
        )
        out = [self._list_row(r) for r in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor(last["received_at"], last["id"])
        return out, next_cursor

    @staticmethod
    def _list_row(r: sqlite3.Row) -> ListRow:
        hits = tuple(json.loads(r["hits"]))
        rules: dict[str, None] = {}
        oos: dict[str, None] = {}
        for h in hits:
            rules.setdefault(h["rule"], None)
            for a in h["out_of_scope"]:
                oos.setdefault(a, None)
        return ListRow(
            id=r["id"],
            received_at=datetime.fromisoformat(r["received_at"]),
            sender=r["sender"],
            recipients=tuple(json.loads(r["recipients"])),
            size=r["size"],
            subject=r["subject"],
            status=r["status"],
            rule_ids=tuple(rules),
            out_of_scope=tuple(oos),
            hits=hits,
        )

    def ledger(self, rule_ids: tuple[str, ...], *, limit: int = 10_000) -> list[ListRow]:
        """Every stored message that hit one of ``rule_ids``, newest first (any status)."""
        if not rule_ids:
            return []
        rows, cursor = self.page(ListFilter(status=None, rule_ids=rule_ids), limit=MAX_PAGE_SIZE)
        out = list(rows)
        while cursor and len(out) < limit:
            more, cursor = self.page(
                ListFilter(status=None, rule_ids=rule_ids), cursor=cursor, limit=MAX_PAGE_SIZE
            )
            out.extend(more)
        return out[:limit]

    def audit_page(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        object_id: str | None = None,
        before_seq: int | None = None,
        limit: int = 100,
    ) -> list[AuditRow]:
        """Audit events newest first, filtered; page with ``before_seq``."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("actor", actor), ("action", action), ("object_id", object_id)):
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        if before_seq is not None:
            clauses.append("seq < ?")
            params.append(before_seq)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._rows(
            f"SELECT * FROM audit {where} ORDER BY seq DESC LIMIT ?",
            (*params, max(1, min(limit, 100_000))),
        )
        return [
            AuditRow(
                seq=r["seq"],
                at=datetime.fromisoformat(r["at"]),
                actor=r["actor"],
                action=r["action"],
                object_id=r["object_id"],
                details=json.loads(r["details"]),
                hash=r["hash"],
            )
            for r in rows
        ]

    def close(self) -> None:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
