"""The ``maruhi`` console script: builds the argument parser from each command module.

Each command module exposes ``register(subparsers)`` and sets ``func`` on its parser; ``func``
returns the exit code. Exit 2 means unusable input and comes with a one-line message on stderr;
no command ever shows a Python traceback to the user.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from scanner import __version__

# Command modules, in help order. Each registers its own subcommands.
COMMAND_MODULES = (
    "scanner.cli.scan_cmd",
    "scanner.cli.rules_cmd",
    "scanner.cli.serve_cmd",
    "scanner.cli.quarantine_cmd",
    "scanner.cli.users_cmd",
    "scanner.cli.audit_cmd",
    "scanner.cli.poll_cmd",
)


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors already; keep its one-line message style."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="maruhi", description="Maruhi (マル秘): pre-send DLP for e-mail.")
    parser.add_argument("--version", action="version", version=f"maruhi {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the last line of defence: never a traceback for users
        print(f"maruhi: internal error ({type(exc).__name__}); please report it", file=sys.stderr)
        return 70
    return code


if __name__ == "__main__":
    sys.exit(main())
