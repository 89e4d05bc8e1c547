"""``maruhi users add | passwd | roles | list | token``: local accounts of the review app.

Owns the command-line side of ``scanner.accounts``: passwords are read with ``getpass`` (or one
line of stdin with ``--password-stdin`` for scripts), never from an argument, so they do not land
in shell history or ``ps``. Must not print a password; a new API token is printed once. Exit 2 with
a one-line message for unusable input (unknown user, weak password, unknown role).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scanner.accounts import AccountError, open_accounts
from scanner.accounts.base import Role


def _csv(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def register(subparsers: Any) -> None:
    users = subparsers.add_parser("users", help="manage review app accounts",
                                  description="Manage local accounts of the review app.")
    sub = users.add_subparsers(dest="users_command", metavar="SUBCOMMAND", required=True)
    roles_help = f"comma-separated roles: {', '.join(r.value for r in Role)}"

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", type=Path, required=True, metavar="DIR")

    add = sub.add_parser("add", help="create a user")
    common(add)
    add.add_argument("name")
    add.add_argument("--roles", required=True, help=roles_help)
    add.add_argument("--customers", help="limit a rules admin to these customers (comma list)")
    add.add_argument("--rule-prefixes", help="limit a rules admin to rule ids with these prefixes")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(func=run_add)

    pw = sub.add_parser("passwd", help="set a user's password (ends their sessions)")
    common(pw)
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true")
    pw.set_defaults(func=run_passwd)

    roles = sub.add_parser("roles", help="replace a user's roles and limits")
    common(roles)
    roles.add_argument("name")
    roles.add_argument("--roles", required=True, help=roles_help)
    roles.add_argument("--customers")
    roles.add_argument("--rule-prefixes")
    roles.set_defaults(func=run_roles)

    ls = sub.add_parser("list", help="list users")
    common(ls)
    ls.set_defaults(func=run_list)

    token = sub.add_parser("token", help="create an API token for a user (printed once)")
    common(token)
    token.add_argument("name")
    token.add_argument("--label", default="integration")
    token.set_defaults(func=run_token)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise AccountError("the passwords differ")
    return first


def _fail(message: str) -> int:
    print(f"maruhi users: {message}", file=sys.stderr)
    return 2


def _now() -> datetime:
    return datetime.now(UTC)


def run_add(args: argparse.Namespace) -> int:
    try:
        accounts = open_accounts(args.data_dir)
        try:
            from scanner.accounts.sqlite import parse_roles

            user = accounts.add_user(
                args.name, _password(args), parse_roles(_csv(args.roles)), now=_now(),
                customers=_csv(args.customers), rule_prefixes=_csv(args.rule_prefixes))
        finally:
            accounts.close()
    except AccountError as exc:
        return _fail(str(exc))
    print(f"added {user.name} ({', '.join(sorted(user.roles))})")
    return 0


def run_passwd(args: argparse.Namespace) -> int:
    try:
        accounts = open_accounts(args.data_dir)
        try:
            accounts.set_password(args.name, _password(args), now=_now())
        finally:
            accounts.close()
    except AccountError as exc:
        return _fail(str(exc))
    print(f"password of {args.name.strip().lower()} changed; their sessions ended")
    return 0


def run_roles(args: argparse.Namespace) -> int:
    try:
        accounts = open_accounts(args.data_dir)
        try:
            from scanner.accounts.sqlite import parse_roles

            user = accounts.set_roles(args.name, parse_roles(_csv(args.roles)),
                                      customers=_csv(args.customers),
                                      rule_prefixes=_csv(args.rule_prefixes))
        finally:
            accounts.close()
    except AccountError as exc:
        return _fail(str(exc))
    print(f"{user.name}: {', '.join(sorted(user.roles))}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    accounts = open_accounts(args.data_dir)
    try:
        for user in accounts.list_users():
            limits = ""
            if user.customers or user.rule_prefixes:
                limits = f" customers={','.join(user.customers)}" \
                         f" prefixes={','.join(user.rule_prefixes)}"
            state = " (disabled)" if user.disabled else ""
            print(f"{user.name}\t{','.join(sorted(user.roles))}{limits}{state}")
    finally:
        accounts.close()
    return 0


def run_token(args: argparse.Namespace) -> int:
    try:
        accounts = open_accounts(args.data_dir)
        try:
            secret, token = accounts.create_token(args.name, args.label, now=_now())
        finally:
            accounts.close()
    except AccountError as exc:
        return _fail(str(exc))
    print(secret)
    print(f"token {token.id} for {token.user_name}: shown once, store it now", file=sys.stderr)
    return 0
