"""Dry run of a rules version over a sample corpus the admin uploads (.eml files or an .mbox).

Owns reading the corpus (stdlib ``email``/``mailbox``), scanning each message with the active
version and with the candidate, and counting what would change: hit, pass, judged differently
(stricter or looser). The envelope of a sample comes from its From/To/Cc/Bcc headers. Must not
store the corpus (an mbox is spooled to a private temporary directory only because ``mailbox``
reads files, and removed at once) nor log anything of it; the result names samples by file name
and position, never by subject. Hazard: a corpus is unbounded input, so bytes, messages and
seconds are capped (``CorpusLimits``); a run that hits the time cap reports how far it got.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import mailbox
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from pathlib import Path

from scanner.limits import Limits
from scanner.model import Action, Envelope, Verdict
from scanner.rules.model import CompiledRuleset
from scanner.scan import scan


@dataclass(frozen=True)
class CorpusLimits:
    # A sample for judging a rule change, not an archive: a few thousand messages is plenty.
    max_bytes: int = 50 * 1024 * 1024
    max_messages: int = 2000
    # One request may not occupy a server thread for longer than this.
    max_seconds: float = 60.0


@dataclass(frozen=True)
class SampleResult:
    name: str  # "<file>" or "<file>#<n>" for the n-th message of an mbox
    old: str  # verdict under the active version ("-" when none is active)
    new: str
    old_rules: tuple[str, ...]
    new_rules: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.old != self.new


@dataclass
class CorpusReport:
    samples: list[SampleResult] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # file names that are not mail
    stopped_early: bool = False  # a limit was reached; ``samples`` is what was checked
    total: int = 0  # messages found (may exceed ``len(samples)`` when stopped early)

    def counts(self) -> dict[str, int]:
        order = {a.label: int(a) for a in Action}
        return {
            "checked": len(self.samples),
            "hit": sum(1 for s in self.samples if s.new_rules),
            "would_pass": sum(1 for s in self.samples if s.new == Action.PASS.label),
            "changed": sum(1 for s in self.samples if s.changed),
            "stricter": sum(1 for s in self.samples
                            if s.changed and order.get(s.new, 0) > order.get(s.old, 0)),
            "looser": sum(1 for s in self.samples
                          if s.changed and order.get(s.new, 0) < order.get(s.old, 0)),
        }


def envelope_of(raw: bytes) -> Envelope:
    """Sender and recipients from the headers, as ``maruhi scan`` does without --rcpt."""
    headers = BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=True)
    froms = email.utils.getaddresses([str(v) for v in headers.get_all("from") or []])
    rcpts = email.utils.getaddresses(
        [str(v) for name in ("to", "cc", "bcc") for v in headers.get_all(name) or []])
    return Envelope(froms[0][1] if froms else "", tuple(a for _, a in rcpts if a))


def _is_mbox(name: str, data: bytes) -> bool:
    return name.lower().endswith((".mbox", ".mbx")) or data.startswith(b"From ")


def iter_corpus(files: list[tuple[str, bytes]], report: CorpusReport
                ) -> Iterator[tuple[str, bytes]]:
    """(sample name, raw bytes) for every message of every file."""
    for name, data in files:
        if not data.strip():
            report.unreadable.append(name)
            continue
        if not _is_mbox(name, data):
            yield name, data
            continue
        with tempfile.TemporaryDirectory(prefix="maruhi-dryrun-") as tmp:
            path = Path(tmp) / "corpus.mbox"
            path.write_bytes(data)
            box = mailbox.mbox(path, create=False)
            try:
                for n, key in enumerate(box.iterkeys(), 1):
                    yield f"{name}#{n}", box.get_bytes(key)
            finally:
                box.close()


def _verdict(raw: bytes, envelope: Envelope, ruleset: CompiledRuleset | None, limits: Limits,
             today: dt.date) -> Verdict | None:
    if ruleset is None:
        return None
    return scan(raw, envelope, ruleset, limits, today=today)


def _rules(verdict: Verdict | None) -> tuple[str, ...]:
    if verdict is None:
        return ()
    return tuple(dict.fromkeys(h.rule_id for h in verdict.hits))


def run_corpus(
    files: list[tuple[str, bytes]],
    old: CompiledRuleset | None,
    new: CompiledRuleset,
    *,
    limits: Limits,
    today: dt.date,
    corpus_limits: CorpusLimits = CorpusLimits(),
    clock: Callable[[], float] = time.monotonic,
) -> CorpusReport:
    """Scan every sample with both versions (bounded by ``corpus_limits``)."""
    report = CorpusReport()
    deadline = clock() + corpus_limits.max_seconds
    for name, raw in iter_corpus(files, report):
        report.total += 1
        if len(report.samples) >= corpus_limits.max_messages or clock() > deadline:
            report.stopped_early = True
            continue  # keep counting what was there, scan no more
        envelope = envelope_of(raw)
        before = _verdict(raw, envelope, old, limits, today)
        after = scan(raw, envelope, new, limits, today=today)
        report.samples.append(SampleResult(
            name=name,
            old=before.action.label if before else "-",
            new=after.action.label,
            old_rules=_rules(before),
            new_rules=_rules(after),
        ))
    return report
