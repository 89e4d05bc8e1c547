"""Versioned rule sets: every upload is a version; one version is active; rollback re-activates.

This module owns the contract (``RuleStore``) and its records; implementations keep the
uploaded source bytes exactly as given (YAML or Excel CSV), who uploaded them, when and why, and
an append-only activation log whose last row is the active version. It must not import a
database driver or a web framework. Hazards: the source holds the very secrets Maruhi protects —
it is returned only by ``source``/``active_source`` and never logged; and activation must be
atomic (one committed row), so a scanner never sees half a change.

For several relay instances on PostgreSQL the same tables are used, and the activating
transaction ends with ``NOTIFY maruhi_rules`` so every instance calls ``active_source()`` and
hot-swaps its compiled ruleset.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from scanner.errors import MaruhiError


class RuleStoreError(MaruhiError):
    """A version that does not exist, or an activation that cannot happen."""


@dataclass(frozen=True)
class RuleVersion:
    """One uploaded rule set (without its source, which is read separately)."""

    id: int  # 1, 2, 3 ... in upload order
    content_hash: str  # ``scanner.rules.compile.ruleset_version`` of its content
    created_at: datetime
    author: str
    reason: str
    filename: str
    rule_count: int
    size: int


@dataclass(frozen=True)
class Activation:
    """One row of the activation log: which version became active, when, by whom and why."""

    seq: int
    version_id: int
    at: datetime
    by: str
    reason: str


@dataclass(frozen=True)
class GrantIn:
    """A time-limited scope extension to record with the version that adds it."""

    rule_id: str
    kind: str  # "address" | "domain"
    value: str
    until: date  # inclusive, like a rule's ``expires``: from the next day it lapses
    quarantine_id: str | None = None  # the held message whose release asked for it


@dataclass(frozen=True)
class ScopeGrant:
    """A recorded time-limited scope extension and, once lapsed, the version that removed it."""

    id: int
    version_id: int  # the version that added the entry
    rule_id: str
    kind: str
    value: str
    until: date
    quarantine_id: str | None
    by: str
    created_at: datetime
    closed_at: datetime | None = None  # lapsed (or superseded by a longer grant)
    closed_version_id: int | None = None  # the version that removed it (None: nothing to remove)

    @property
    def open(self) -> bool:
        return self.closed_at is None


class RuleStore(ABC):
    """Rule versions and the activation log. Blocking, thread-safe; times are passed in."""

    @abstractmethod
    def create_version(
        self,
        source: bytes,
        filename: str,
        *,
        author: str,
        reason: str,
        now: datetime,
        activate: bool,
        grants: Sequence[GrantIn] = (),
        close_grants: Sequence[int] = (),
    ) -> RuleVersion:
        """Validate ``source`` (``RuleError`` with every problem when invalid), store it as a new
        version and, with ``activate``, make it active in the same transaction.

        ``grants`` (time-limited extensions this version adds) are recorded and ``close_grants``
        (ids of grants this version removes) closed in that same transaction, so a crash can
        never leave a widened scope active without the record that makes it lapse."""

    @abstractmethod
    def update_grants(self, grants: Sequence[GrantIn], close_grants: Sequence[int], *,
                      version_id: int | None, by: str, now: datetime) -> None:
        """Record or close grants without a new version (the entry was already there / gone)."""

    @abstractmethod
    def grants(self, *, open_only: bool = True, limit: int = 500) -> list[ScopeGrant]:
        """Scope grants, soonest lapse first (open ones only by default)."""

    @abstractmethod
    def activate(self, version_id: int, *, by: str, reason: str, now: datetime) -> Activation:
        """Make ``version_id`` the active version (a rollback is this with an older id)."""

    @abstractmethod
    def get(self, version_id: int) -> RuleVersion:
        """The version, or ``RuleStoreError``."""

    @abstractmethod
    def source(self, version_id: int) -> bytes:
        """The uploaded bytes of a version."""

    @abstractmethod
    def find_by_hash(self, content_hash: str) -> RuleVersion | None:
        """The newest version with this content (e.g. the one that judged a held message)."""

    @abstractmethod
    def history(self, *, limit: int = 100) -> list[RuleVersion]:
        """Versions, newest first."""

    @abstractmethod
    def activations(self, *, limit: int = 100) -> list[Activation]:
        """The activation log, newest first."""

    @abstractmethod
    def active_version(self) -> RuleVersion | None:
        """The version scanners should run, or None before the first activation."""

    def active_source(self) -> tuple[bytes, str] | None:
        """The active version's source bytes and file name (what the relay hot-swaps to)."""
        version = self.active_version()
        if version is None:
            return None
        return self.source(version.id), version.filename

    @abstractmethod
    def close(self) -> None:
        """Release database handles."""
