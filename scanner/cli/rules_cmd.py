"""``maruhi rules check | import-csv | export-csv``: the rules file tools for sales admins.

Owns the file I/O around the pure rules readers: reading the input bytes, printing problems as
``file:line:column: [rule ID] message`` lines, writing outputs atomically (tmp + rename, so a
failed import never leaves a half-written rules file that a watcher could pick up).

Must not: print a term (problems and summaries name rules, never their secrets) or a traceback.
Exit codes: 0 success, 2 unusable input (missing file, invalid rules) with messages on stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from scanner.errors import RuleError
from scanner.rules.csvio import parse_rules_csv, ruleset_to_csv, ruleset_to_yaml
from scanner.rules.load import parse_rules_bytes
from scanner.rules.model import RulesetSpec

# A rule whose expiry is this close is worth a warning in ``check``: long enough for the
# salesperson to renew it, short enough not to nag.
EXPIRY_WARNING_DAYS = 14


def register(subparsers: Any) -> None:
    rules = subparsers.add_parser(
        "rules", help="check and convert rules files", description="Check and convert rules files."
    )
    sub = rules.add_subparsers(dest="rules_command", metavar="SUBCOMMAND", required=True)

    check = sub.add_parser(
        "check",
        help="validate a rules file (YAML or CSV) and summarise it",
        description="Validate FILE; list every problem as file:line:column, or summarise it.",
    )
    check.add_argument("file", type=Path, metavar="FILE")
    check.set_defaults(func=run_check)

    imp = sub.add_parser(
        "import-csv",
        help="convert an Excel CSV rules file to YAML",
        description="Convert FILE.csv (UTF-8 with BOM or cp932) to a YAML rules file. "
        "Nothing is written if the CSV has any problem.",
    )
    imp.add_argument("file", type=Path, metavar="FILE.csv")
    imp.add_argument("-o", "--output", type=Path, required=True, metavar="RULES.yaml")
    imp.set_defaults(func=run_import_csv)

    exp = sub.add_parser(
        "export-csv",
        help="convert a rules file to Excel CSV (UTF-8 with BOM)",
        description="Convert FILE (YAML) to CSV for Excel; stdout unless -o is given.",
    )
    exp.add_argument("file", type=Path, metavar="FILE.yaml")
    exp.add_argument("-o", "--output", type=Path, default=None, metavar="OUT.csv")
    exp.set_defaults(func=run_export_csv)


def _fail(command: str, message: str) -> int:
    print(f"maruhi rules {command}: {message}", file=sys.stderr)
    return 2


def _read(command: str, path: Path) -> bytes | int:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return _fail(command, f"{path}: no such file")
    except IsADirectoryError:
        return _fail(command, f"{path}: is a directory")
    except OSError as exc:
        return _fail(command, f"{path}: cannot read ({exc.strerror or type(exc).__name__})")


def _report(error: RuleError) -> int:
    for problem in error.problems:
        print(problem, file=sys.stderr)
    count = len(error.problems)
    print(f"{count} problem{'s' if count != 1 else ''} found; nothing was changed", file=sys.stderr)
    return 2


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def summarise(spec: RulesetSpec, today: dt.date) -> list[str]:
    """Plain lines describing a valid ruleset: counts, then expired and soon-expiring rules."""
    terms = sum(len(rule.terms) for rule in spec.rules)
    lines = [
        f"{_count(len(spec.rules), 'rule')}, {_count(terms, 'term')}, "
        f"{_count(len(spec.groups), 'group')}"
    ]
    soon = today + dt.timedelta(days=EXPIRY_WARNING_DAYS)
    for rule in spec.rules:
        if rule.expires is None:
            continue
        if rule.expires < today:
            lines.append(f"expired: {rule.id} (on {rule.expires.isoformat()}; no longer applied)")
        elif rule.expires <= soon:
            days = (rule.expires - today).days
            lines.append(
                f"expires soon: {rule.id} (last day {rule.expires.isoformat()}, in {days} days)"
            )
    return lines


def run_check(args: argparse.Namespace) -> int:
    data = _read("check", args.file)
    if isinstance(data, int):
        return data
    try:
        spec = parse_rules_bytes(data, str(args.file))
    except RuleError as error:
        return _report(error)
    lines = summarise(spec, dt.date.today())
    if sys.stdout.isatty():
        from rich.console import Console

        console = Console(highlight=False)
        console.print(f"[green]OK[/green] {args.file}: {lines[0]}")
        for line in lines[1:]:
            console.print(f"[yellow]{line}[/yellow]")
    else:
        print(f"OK {args.file}: {lines[0]}")
        for line in lines[1:]:
            print(line)
    return 0


def run_import_csv(args: argparse.Namespace) -> int:
    data = _read("import-csv", args.file)
    if isinstance(data, int):
        return data
    try:
        spec = parse_rules_csv(data, str(args.file))
    except RuleError as error:
        return _report(error)
    try:
        _write_atomically(args.output, ruleset_to_yaml(spec).encode("utf-8"))
    except OSError as exc:
        return _fail("import-csv", f"{args.output}: cannot write ({exc.strerror or exc})")
    print(f"wrote {args.output}: {summarise(spec, dt.date.today())[0]}", file=sys.stderr)
    return 0


def run_export_csv(args: argparse.Namespace) -> int:
    data = _read("export-csv", args.file)
    if isinstance(data, int):
        return data
    try:
        spec = parse_rules_bytes(data, str(args.file))
    except RuleError as error:
        return _report(error)
    out = ruleset_to_csv(spec)
    if args.output is None:
        sys.stdout.buffer.write(out)
        sys.stdout.buffer.flush()
        return 0
    try:
        _write_atomically(args.output, out)
    except OSError as exc:
        return _fail("export-csv", f"{args.output}: cannot write ({exc.strerror or exc})")
    return 0
