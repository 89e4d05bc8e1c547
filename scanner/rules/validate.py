"""The value checks shared by the YAML and the CSV reader, so both accept exactly the same rules.

Each check takes one value as written and returns either the parsed value or a plain message
saying what is wrong; the reader that called it knows where the value is and makes the
``Problem``. Owns: the vocabulary (key names, actions), the id pattern, term/domain/address/date
checks and "did you mean" suggestions.

Must not: put a term into a message. Terms are the secrets Maruhi protects; a message about a
term says where it is (line, column, rule id), never what it is.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable

from scanner.errors import Problem
from scanner.model import Action
from scanner.normalize import normalize_term
from scanner.rules.domains import normalize_address, to_alabel

SUPPORTED_VERSION = 1

TOP_KEYS = ("version", "settings", "groups", "rules")
SETTINGS_KEYS = ("internal_domains", "unscannable")
RULE_KEYS = (
    "id",
    "customer",
    "owner",
    "description",
    "terms",
    "recipient_domains",
    "allow",
    "action",
    "expires",
)
ALLOW_KEYS = ("domains", "addresses", "groups", "internal")

# ``pass`` is deliberately absent: a rule that passes is not a rule. A rule without ``action``
# holds, because a forgotten action must fail safe (quarantine), not leak.
RULE_ACTIONS = {"flag": Action.FLAG, "hold": Action.HOLD, "reject": Action.REJECT}
DEFAULT_RULE_ACTION = Action.HOLD
UNSCANNABLE_ACTIONS = {a.label: a for a in Action}

# Ids travel in SMTP replies, X-Maruhi-Rules headers, URLs and audit records: ASCII only, no
# spaces, so that none of those needs quoting or encoding.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_ID = re.compile(ID_PATTERN)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def suggestion(word: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known word, or an empty string."""
    close = difflib.get_close_matches(word.lower(), list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown_key(key: str, known: Iterable[str], where: str) -> str:
    known = tuple(known)
    # The key itself is not echoed: a term typed as a key would leak into logs and terminals.
    return f"unknown key in {where}{suggestion(key, known)}; known keys: {', '.join(known)}"


def check_id(text: str, what: str = "rule id") -> str | None:
    if not text:
        return f"empty {what}"
    if not _ID.match(text):
        return (
            f"{what} may use only ASCII letters, digits, '.', '_' and '-' "
            "(at most 64, starting with a letter or digit)"
        )
    return None


def check_term(term: str) -> str | None:
    """A message if ``term`` (already stripped) can never match anything, else None."""
    if not term:
        return "empty term"
    if not normalize_term(term).strip():
        return "term is empty after normalization (only spaces or invisible characters)"
    return None


def check_domain(text: str) -> str | None:
    try:
        to_alabel(text)
    except ValueError as exc:
        return f"invalid domain: {exc}"
    return None


def check_address(text: str) -> str | None:
    try:
        normalize_address(text)
    except ValueError as exc:
        return f"invalid address: {exc}"
    return None


def parse_date(text: str) -> dt.date | str:
    """The date of ``YYYY-MM-DD`` text, or a message saying what is wrong."""
    if not _DATE.fullmatch(text):
        return "invalid date: write expires as YYYY-MM-DD (e.g. 2027-03-31)"
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return "invalid date: no such day"


def parse_rule_action(text: str) -> Action | str:
    key = text.strip().lower()
    if key in RULE_ACTIONS:
        return RULE_ACTIONS[key]
    if key == "pass":
        return "'pass' is not a rule action: use flag, hold or reject"
    return f"invalid action: use flag, hold or reject{suggestion(key, RULE_ACTIONS)}"


def parse_unscannable(text: str) -> Action | str:
    key = text.strip().lower()
    if key in UNSCANNABLE_ACTIONS:
        return UNSCANNABLE_ACTIONS[key]
    return (
        "invalid unscannable setting: use pass, flag, hold or reject"
        f"{suggestion(key, UNSCANNABLE_ACTIONS)}"
    )


def in_reading_order(problems: list[Problem]) -> list[Problem]:
    """Problems sorted by line and column (stable), as a person reads and fixes the file."""
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))
