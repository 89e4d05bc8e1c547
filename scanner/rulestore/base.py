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
from dataclasses import dataclass
from datetime import datetime

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
    ) -> RuleVersion:
        """Validate ``source`` (``RuleError`` with every problem when invalid), store it as a new
        version and, with ``activate``, make it active in the same transaction."""

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
