"""The tree walk shared by all extractors: where text goes, and how a container opens a child.

Leaf extractors (one per format) are ``(data, budget) -> str``. Container extractors (zip, .msg,
message/rfc822, TNEF) receive a ``Walk`` positioned at their own location and call
``walk.text(...)`` for their own text and ``walk.child(...)`` for each member; the walk dispatches
the member by sniffed type and turns any ``ExtractionError`` into an ``Unscannable`` at that
member's location, so one bad part never spoils the rest of the message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from scanner.extract.budget import Budget
from scanner.model import Segment, Unscannable


@dataclass
class Collector:
    """What extraction of one message produced so far."""

    segments: list[Segment] = field(default_factory=list)
    unscannable: list[Unscannable] = field(default_factory=list)


def join_location(parent: str, name: str) -> str:
    """Location of member ``name`` inside ``parent``; top-level members are ``attachment:NAME``."""
    name = name.replace("\\", "/").strip("/") or "unnamed"
    return f"{parent}/{name}" if parent else f"attachment:{name}"


def sub_location(parent: str, sub: str) -> str:
    """Location of a structural part (``body``, ``header:subject``) of ``parent``."""
    return f"{parent}/{sub}" if parent else sub


# Dispatch is injected by scanner.extract.dispatch to avoid an import cycle between the walk and
# the container modules it dispatches to.
ChildHandler = Callable[["Walk", bytes, str, "str | None"], None]


@dataclass
class Walk:
    """A position in the message tree; containers use it to emit text and open members."""

    location: str
    archive_depth: int
    budget: Budget
    out: Collector
    dispatch: ChildHandler
    mime_depth: int = 0

    def text(self, text: str, sub: str | None = None) -> None:
        """Record text found at this location (or at ``sub`` below it)."""
        if not text or text.isspace():
            return
        self.budget.charge_chars(len(text))
        location = sub_location(self.location, sub) if sub else self.location
        self.out.segments.append(Segment(location, text))

    def unscannable(self, reason: str, sub: str | None = None) -> None:
        location = sub_location(self.location, sub) if sub else self.location
        self.out.unscannable.append(Unscannable(location, reason))

    def below(self, name: str, *, archive: bool = True, mime: bool = False) -> Walk:
        """A walk for member ``name``; ``archive``/``mime`` count one more nesting level."""
        return Walk(
            location=join_location(self.location, name),
            archive_depth=self.archive_depth + (1 if archive else 0),
            budget=self.budget,
            out=self.out,
            dispatch=self.dispatch,
            mime_depth=self.mime_depth + (1 if mime else 0),
        )

    def child(self, data: bytes, name: str, content_type: str | None = None) -> None:
        """Extract member ``name`` (raw bytes) found inside this container."""
        self.dispatch(self.below(name), data, name, content_type)
