"""``scan(raw, envelope, ruleset, limits) -> Verdict``: the pure heart of Maruhi.

extract → normalize → match → scope → decide, with no socket, file, clock, environment, logging
or global state: the expiry day comes from the ruleset (or ``today``) and the time budget from an
injected ``clock``. Every adapter (relay, poller, CLI, web app) calls this one function, so a
verdict is the same wherever a message is checked. Hazard: this is where secrets meet message
text; nothing here may format a term or a body into a string that leaves the Verdict.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace

from scanner.extract.mime import extract_message
from scanner.limits import DEFAULT_LIMITS, Limits
from scanner.model import Envelope, Hit, Segment, Span, Verdict
from scanner.normalize import normalize
from scanner.policy.decide import decide
from scanner.policy.scope import Recipient, out_of_scope, parse_recipients, recipients_in_domains
from scanner.rules.model import CompiledRuleset

ENVELOPE_LOCATION = "envelope"


def merge_by_location(segments: list[Segment]) -> list[tuple[str, str]]:
    """One text per location, in first-seen order (a body in text and HTML is one location)."""
    merged: dict[str, list[str]] = {}
    for segment in segments:
        merged.setdefault(segment.location, []).append(segment.text)
    return [(location, "\n".join(texts)) for location, texts in merged.items()]


def _term_hits(
    location: str,
    text: str,
    ruleset: CompiledRuleset,
    day: dt.date,
    recipients: tuple[Recipient, ...],
) -> list[Hit]:
    normalized = normalize(text)
    spans: dict[int, list[Span]] = {}
    rules = ruleset.rules
    for pattern, start, end in ruleset.matcher.find(normalized.text):
        for rule_index in ruleset.pattern_rules[pattern]:
            # Expiry is checked per hit (rare), not per rule per scan (10k+ rules).
            if rules[rule_index].active_on(day):
                spans.setdefault(rule_index, []).append(
                    Span(*normalized.original_span(start, end))
                )
    hits = []
    for rule_index in sorted(spans):
        rule = ruleset.rules[rule_index]
        unique = tuple(sorted(set(spans[rule_index]), key=lambda s: (s.start, s.end)))
        hits.append(
            Hit(
                rule_id=rule.id,
                location=location,
                out_of_scope=out_of_scope(rule, recipients, ruleset.internal_domains),
                action=rule.action,
                spans=unique,
            )
        )
    return hits


_STRUCTURAL = ("body", "header:")


def _contains_term(name: str, ruleset: CompiledRuleset) -> bool:
    return next(iter(ruleset.matcher.find(normalize(name).text)), None) is not None


def redacted_locations(locations: list[str], ruleset: CompiledRuleset) -> dict[str, str]:
    """Locations whose attachment or member names contain a term, mapped to safe ones.

    A location names the attachment (``attachment:Project Falcon.docx``), and the verdict's
    JSON, logs and notices must never carry a term; such a name becomes ``redacted-N`` (with
    its extension when that is term-free), the same N for the same name within one message.
    """
    out: dict[str, str] = {}
    names: dict[str, str] = {}
    for location in dict.fromkeys(locations):
        parts = location.split("/")
        changed = False
        for index, part in enumerate(parts):
            prefix = ""
            if index == 0:
                if not part.startswith("attachment:"):
                    break
                prefix, part = "attachment:", part[len("attachment:"):]
            elif part.startswith(_STRUCTURAL):
                continue
            if part not in names and not _contains_term(part, ruleset):
                continue
            if part not in names:
                stem, dot, ext = part.rpartition(".")
                suffix = f".{ext}" if dot and stem and not _contains_term(ext, ruleset) else ""
                names[part] = f"redacted-{len(names) + 1}{suffix}"
            parts[index] = prefix + names[part]
            changed = True
        if changed:
            out[location] = "/".join(parts)
    return out


def scan(
    raw: bytes,
    envelope: Envelope,
    ruleset: CompiledRuleset,
    limits: Limits = DEFAULT_LIMITS,
    *,
    today: dt.date | None = None,
    clock: Callable[[], float] | None = None,
) -> Verdict:
    """Judge one message: every active rule's hits, out-of-scope recipients, and the action."""
    day = today or ruleset.as_of
    recipients = parse_recipients(envelope.recipients)
    extraction = extract_message(raw, limits, clock)

    hits: list[Hit] = []
    for index in ruleset.domain_rules:
        rule = ruleset.rules[index]
        if rule.active_on(day):
            addressed = recipients_in_domains(recipients, rule.recipient_domains)
            if addressed:
                hits.append(Hit(rule.id, ENVELOPE_LOCATION, addressed, rule.action))

    context: dict[str, str] = {}
    chars = 0
    merged = merge_by_location(extraction.segments)
    for location, text in merged:
        chars += len(text)
        found = _term_hits(location, text, ruleset, day, recipients)
        if found:
            context[location] = text
            hits.extend(found)

    unscannable = list(extraction.unscannable)
    renamed = redacted_locations([h.location for h in hits] + [u.location for u in unscannable],
                                 ruleset)
    if renamed:
        hits = [replace(h, location=renamed.get(h.location, h.location)) for h in hits]
        unscannable = [replace(u, location=renamed.get(u.location, u.location))
                       for u in unscannable]
        context = {renamed.get(loc, loc): text for loc, text in context.items()}
    action, reasons = decide(hits, unscannable, ruleset.unscannable_action)
    return Verdict(
        action=action,
        hits=tuple(hits),
        unscannable=tuple(unscannable),
        ruleset_version=ruleset.version,
        reasons=reasons,
        segments_scanned=len(merged),
        chars_scanned=chars,
        context=context,
    )
