"""Plain immutable values that flow through the scan pipeline; no behaviour beyond formatting.

``Envelope`` is what the transport says (sender, recipients); ``Segment`` and ``Unscannable`` are
the output of extraction; ``Hit`` and ``Verdict`` are the output of the scan. The JSON shape of a
verdict is the stable scan contract of DESIGN.md and is produced here, in one place.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Action(enum.IntEnum):
    """What happens to a message; the integer order is the precedence (higher wins)."""

    PASS = 0
    FLAG = 1
    HOLD = 2
    REJECT = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Action:
        return cls[text.strip().upper()]


@dataclass(frozen=True)
class Envelope:
    """Sender and recipients as the transport (or the CLI) gives them, not as headers claim."""

    sender: str
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class Segment:
    """A run of extracted text and where in the message it came from."""

    location: str
    text: str


@dataclass(frozen=True)
class Unscannable:
    """A part that could not be read (encrypted, corrupt, over a limit); never an exception."""

    location: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"location": self.location, "reason": self.reason}


@dataclass(frozen=True)
class Span:
    """Offsets of one occurrence in the original (pre-normalization) text of a segment."""

    start: int
    end: int


@dataclass(frozen=True)
class Hit:
    """One active rule found at one location, with the recipients outside its scope."""

    rule_id: str
    location: str
    out_of_scope: tuple[str, ...]
    action: Action
    spans: tuple[Span, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule_id,
            "location": self.location,
            "out_of_scope": list(self.out_of_scope),
        }


@dataclass(frozen=True)
class Verdict:
    """The outcome of a scan: the action, why, and what could not be read."""

    action: Action
    hits: tuple[Hit, ...]
    unscannable: tuple[Unscannable, ...]
    ruleset_version: str
    reasons: tuple[str, ...] = ()
    segments_scanned: int = 0
    chars_scanned: int = 0
    # Original text of each segment that had a hit, keyed by location, for reviewer context.
    # Never serialized into the contract JSON, logs or notices.
    context: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def rule_ids(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for hit in self.hits:
            seen.setdefault(hit.rule_id, None)
        return tuple(seen)

    def to_json(self) -> dict[str, Any]:
        """The scan contract of DESIGN.md; contains rule ids and locations, never a term."""
        return {
            "verdict": self.action.label,
            "hits": [h.to_json() for h in self.hits],
            "unscannable": [u.to_json() for u in self.unscannable],
        }
