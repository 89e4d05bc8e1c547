"""``maruhi audit verify``: check the audit log's hash chain for tampering.

Owns the command only; the check is ``QuarantineStore.verify_audit``. Prints one content-free
line per problem and exits 1 when the chain is broken (0 when intact, 2 for unusable input), so
a cron job or monitoring can alert on it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from scanner.errors import TransientError
from scanner.store import open_store


def register(subparsers: Any) -> None:
    audit = subparsers.add_parser("audit", help="audit log tools",
                                  description="Audit log tools.")
    sub = audit.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)
    verify = sub.add_parser("verify", help="check the hash chain of the audit log",
                            description="Exit 0 when the audit log is intact, 1 when not.")
    verify.add_argument("--data-dir", type=Path, required=True, metavar="DIR")
    verify.set_defaults(func=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    if not (args.data_dir / "maruhi.sqlite3").is_file():
        print(f"maruhi audit verify: {args.data_dir}: no quarantine store there", file=sys.stderr)
        return 2
    try:
        store = open_store(args.data_dir)
    except TransientError as exc:
        print(f"maruhi audit verify: {exc}", file=sys.stderr)
        return 2
    try:
        problems = store.verify_audit()
        count = len(store.audit())
    finally:
        store.close()
    for line in problems:
        print(line)
    if problems:
        print(f"audit log TAMPERED: {len(problems)} problem(s) in {count} events", file=sys.stderr)
        return 1
    print(f"audit log intact: {count} events")
    return 0
