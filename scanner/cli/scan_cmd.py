"""``maruhi scan MESSAGE.eml --rules RULES [--sender A] [--rcpt B ...] [--json]``.

The stable scan contract of DESIGN.md: exit 0 whatever the verdict, exit 2 with one line on
stderr for unusable input (missing message file, invalid rules file). A malformed message is not
unusable input. Output never contains a secret term: the JSON is built by ``Verdict.to_json``
and the human report prints rule ids, locations and recipients only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from scanner.errors import RuleError
from scanner.model import Envelope, Verdict
from scanner.rulecache import default_cache_dir
from scanner.rulecache import load_ruleset as load_ruleset_bytes
from scanner.rules.model import CompiledRuleset
from scanner.scan import scan


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="scan one message against a rules file",
        description="Scan MESSAGE (RFC 5322 .eml) against RULES and print the verdict.",
    )
    parser.add_argument("message", type=Path, metavar="MESSAGE.eml")
    parser.add_argument("--rules", type=Path, required=True, metavar="RULES.yaml")
    parser.add_argument("--sender", metavar="ADDR", help="envelope sender (default: From)")
    parser.add_argument(
        "--rcpt",
        action="append",
        default=None,
        metavar="ADDR",
        help="envelope recipient, once per recipient (default: To, Cc and Bcc)",
    )
    parser.add_argument("--json", action="store_true", help="print the contract JSON")
    parser.add_argument(
        "--today",
        type=dt.date.fromisoformat,
        default=None,
        metavar="YYYY-MM-DD",
        help="day used for rule expiry (default: today)",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="compile the rules afresh instead of using the compiled-ruleset cache",
    )
    parser.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"maruhi scan: {message}", file=sys.stderr)
    return 2


def load_ruleset(path: Path, today: dt.date, *, use_cache: bool = True) -> CompiledRuleset:
    """Read and compile a rules file (YAML or CSV), via the cache; raises OSError or RuleError."""
    cache_dir = default_cache_dir() if use_cache else None
    return load_ruleset_bytes(path.read_bytes(), str(path), today=today, cache_dir=cache_dir)


def envelope_from_headers(raw: bytes, sender: str | None, rcpts: list[str] | None) -> Envelope:
    """The envelope given on the command line, completed from From/To/Cc/Bcc."""
    if sender is not None and rcpts is not None:
        return Envelope(sender, tuple(rcpts))
    headers = BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=True)
    if sender is None:
        froms = _addresses(headers.get_all("from") or [])
        sender = froms[0] if froms else ""
    if rcpts is None:
        values: list[str] = []
        for name in ("to", "cc", "bcc"):
            values.extend(headers.get_all(name) or [])
        rcpts = _addresses(values)
    return Envelope(sender, tuple(rcpts))


def _addresses(values: list[Any]) -> list[str]:
    import email.utils

    try:
        pairs = email.utils.getaddresses([str(v) for v in values])
    except Exception:
        return []
    return [addr for _, addr in pairs if addr and "@" in addr]


def run(args: argparse.Namespace) -> int:
    today: dt.date = args.today or dt.date.today()
    try:
        raw = args.message.read_bytes()
    except OSError as exc:
        return _fail(f"cannot read message {args.message}: {exc.strerror or exc}")
    try:
        ruleset = load_ruleset(args.rules, today, use_cache=not args.no_cache)
    except OSError as exc:
        return _fail(f"cannot read rules {args.rules}: {exc.strerror or exc}")
    except RuleError as exc:
        first = exc.problems[0]
        more = len(exc.problems) - 1
        suffix = f" (and {more} more; see 'maruhi rules check')" if more else ""
        return _fail(f"invalid rules: {first}{suffix}")
    envelope = envelope_from_headers(raw, args.sender, args.rcpt)
    verdict = scan(raw, envelope, ruleset, today=today, clock=time.monotonic)
    if args.json:
        json.dump(verdict.to_json(), sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print_report(verdict, envelope)
    return 0


_COLOURS = {"pass": "green", "flag": "yellow", "hold": "magenta", "reject": "red"}


def print_report(verdict: Verdict, envelope: Envelope) -> None:
    """A readable report; a coloured table when stdout is a terminal."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    label = verdict.action.label
    console.print(f"verdict: [bold {_COLOURS[label]}]{label.upper()}[/]")
    console.print(
        f"sender: {escape(envelope.sender or '-')}  recipients: {len(envelope.recipients)}"
    )
    console.print(f"ruleset: {verdict.ruleset_version}")
    if verdict.hits:
        table = Table(title="hits", show_lines=False)
        table.add_column("rule")
        table.add_column("location")
        table.add_column("out of scope")
        for hit in verdict.hits:
            table.add_row(
                escape(hit.rule_id),
                escape(hit.location),
                escape(", ".join(hit.out_of_scope)) or "(none)",
            )
        console.print(table)
    else:
        console.print("no rule hit")
    if verdict.unscannable:
        table = Table(title="unscannable")
        table.add_column("location")
        table.add_column("reason")
        for item in verdict.unscannable:
            table.add_row(escape(item.location), escape(item.reason))
        console.print(table)
    for reason in verdict.reasons:
        console.print(f"- {escape(reason)}")
