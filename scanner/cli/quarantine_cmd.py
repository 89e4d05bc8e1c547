"""``maruhi quarantine list|show|release|reject|expire|purge|verify-audit`` on the embedded store.

Owns the command-line contract other tools depend on: ``list --json`` prints an array of objects
with ``id``, ``status`` (held | released | rejected | expired), ``received_at`` (ISO 8601 UTC),
``sender``, ``recipients``, ``rules`` and ``message_id``; ``release``/``reject`` record the
decision and then deliver that message's outbox items at once (so it reaches the upstream within
seconds with or without a daemon; what cannot be delivered now stays queued for the daemon). It
must not decide anything itself (the store does) nor print a term: the subject and raw bytes are
shown only by ``show`` to whoever can already read the data directory. Exit codes: 0 done,
1 nothing changed or delivery refused, 2 unusable input (unknown id, bad option), 75 temporary
trouble (database busy, disk), with one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanner.errors import TransientError

EXIT_TEMPFAIL = 75  # sysexits.h EX_TEMPFAIL: try again later
DEFAULT_UPSTREAM = "127.0.0.1:10026"
PUBLIC_STATUSES = ("held", "released", "rejected", "expired")
DETAILED_STATUSES = ("releasing", "release_failed")

if TYPE_CHECKING:  # heavy imports stay lazy: `maruhi --help` must start fast
    from scanner.config import Settings
    from scanner.store.base import QuarantineRecord, QuarantineStore


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "quarantine",
        help="list, inspect, release or reject held messages",
        description="Work with the quarantine of held messages.",
    )
    sub = parser.add_subparsers(dest="quarantine_command", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", type=Path, metavar="DIR", help="the store's data directory")
        p.add_argument("--config", type=Path, metavar="FILE", help="maruhi.toml (for defaults)")

    def delivery(p: argparse.ArgumentParser) -> None:
        p.add_argument("--upstream", metavar="HOST:PORT", help=f"default {DEFAULT_UPSTREAM}")
        p.add_argument("--upstream-tls", choices=("none", "opportunistic", "required"))
        p.add_argument("--ca-file", type=Path, metavar="PEM")
        p.add_argument(
            "--no-deliver", action="store_true", help="only record; leave delivery to the daemon"
        )

    p = sub.add_parser("list", help="list quarantined messages, newest first")
    common(p)
    p.add_argument("--status", choices=PUBLIC_STATUSES + DETAILED_STATUSES)
    p.add_argument("--limit", type=int, default=0, help="at most N (default: all)")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="show one message's metadata, hits and outbox")
    common(p)
    p.add_argument("id", metavar="ID")
    p.add_argument("--json", action="store_true")
    p.add_argument("--raw", action="store_true", help="write the raw message bytes to stdout")
    p.set_defaults(func=cmd_show)

    for name, verb in (("release", "deliver it unchanged"), ("reject", "notify the sender")):
        p = sub.add_parser(name, help=f"{name} a held message and {verb}")
        common(p)
        delivery(p)
        p.add_argument("id", metavar="ID")
        p.add_argument("--reason", required=True, help="why (kept in the audit log)")
        p.add_argument("--by", default=None, help="who decides (default: the OS user)")
        p.set_defaults(func=cmd_decide, outcome=name)

    p = sub.add_parser("expire", help="expire held messages older than the hold period")
    common(p)
    delivery(p)
    p.add_argument("--older-than", type=float, metavar="DAYS", help="default: retention.hold_days")
    p.add_argument("--action", choices=("reject", "release"), help="default: retention config")
    p.add_argument("--by", default="retention")
    p.set_defaults(func=cmd_expire)

    p = sub.add_parser("purge", help="delete content of decided messages past retention")
    common(p)
    p.add_argument("--older-than", type=float, metavar="DAYS", help="default: retention.purge_days")
    p.set_defaults(func=cmd_purge)

    p = sub.add_parser("verify-audit", help="check the audit log's hash chain")
    common(p)
    p.set_defaults(func=cmd_verify_audit)


# -- helpers ------------------------------------------------------------------------------------


class _Usage(Exception):
    """Unusable input: printed as one line, exit 2."""


def _settings(args: argparse.Namespace) -> Settings:
    from scanner.config import ConfigError, load_settings

    try:
        settings = load_settings(args.config)
    except (ConfigError, OSError) as exc:
        raise _Usage(str(exc).splitlines()[0]) from exc
    return settings


def _open(args: argparse.Namespace) -> QuarantineStore:
    from scanner.store import open_store

    data_dir = args.data_dir or _settings(args).store.data_dir
    if not Path(data_dir).is_dir():
        raise _Usage(f"no quarantine at {data_dir} (no such directory)")
    return open_store(data_dir)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): fall back to the uid
        return f"uid:{os.getuid()}"


def _summary(rec: QuarantineRecord) -> dict[str, Any]:
    return {
        "id": rec.id,
        "status": rec.public_status,
        "state": rec.status.value,
        "received_at": _iso(rec.received_at),
        "sender": rec.sender,
        "recipients": list(rec.recipients),
        "rules": list(rec.rule_ids),
        "message_id": rec.message_id,
        "out_of_scope": list(rec.out_of_scope),
        "action": rec.action.label,
        "size": rec.size,
        "unscannable": [u.to_json() for u in rec.unscannable],
        "ruleset_version": rec.ruleset_version,
        "decided_by": rec.decided_by,
        "decided_at": _iso(rec.decided_at),
        "reason": rec.reason,
        "content_purged": rec.content_purged,
        "last_error": rec.last_error,
    }


def _run(args: argparse.Namespace, body: Any) -> int:
    """Open the store, run ``body(store)``, map our errors to exit codes and one line."""
    from scanner import logs
    from scanner.store import StoreError

    logs.configure(level="warning", fmt="console")  # stderr; stdout is for the JSON contract
    try:
        store = _open(args)
    except _Usage as exc:
        return _fail(str(exc), 2)
    except TransientError as exc:
        return _fail(str(exc), EXIT_TEMPFAIL)
    try:
        code: int = body(store)
        return code
    except _Usage as exc:
        return _fail(str(exc), 2)
    except StoreError as exc:  # unknown id, content purged: one line, exit 2
        return _fail(str(exc), 2)
    except TransientError as exc:
        return _fail(str(exc), EXIT_TEMPFAIL)
    finally:
        store.close()


def _fail(message: str, code: int) -> int:
    print(f"maruhi quarantine: {message}", file=sys.stderr)
    return code


def _deliver(args: argparse.Namespace, store: QuarantineStore, quarantine_id: str) -> None:
    """Try this message's due outbox items now; failures stay queued for the daemon."""
    from scanner.notify import NoticeOptions
    from scanner.outbox.target import UpstreamTarget
    from scanner.outbox.worker import run_outbox_once

    settings = _settings(args)
    target = UpstreamTarget.from_settings(settings)
    if args.upstream:
        try:
            parsed = UpstreamTarget.parse(args.upstream)
        except ValueError as exc:
            raise _Usage(str(exc)) from exc
        target = replace(target, host=parsed.host, port=parsed.port)
    elif not args.config:
        parsed = UpstreamTarget.parse(DEFAULT_UPSTREAM)
        target = replace(target, host=parsed.host, port=parsed.port)
    if args.upstream_tls:
        target = replace(target, tls=args.upstream_tls)
    if args.ca_file:
        target = replace(target, ca_file=args.ca_file)
    asyncio.run(
        run_outbox_once(
            store,
            target,
            now_fn=_now,
            worker_id=f"cli-{os.getpid()}",
            notices=NoticeOptions.from_settings(settings),
            quarantine_id=quarantine_id,
        )
    )


# -- commands -----------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from scanner.store import Status

    def body(store: QuarantineStore) -> int:
        status: Any = None
        if args.status == "held":  # the public "held" includes releasing and release_failed
            status = (Status.HELD, Status.RELEASING, Status.RELEASE_FAILED)
        elif args.status:
            status = Status(args.status)
        limit = args.limit if args.limit > 0 else 2**62
        records = store.list(status=status, limit=limit)
        if args.json:
            json.dump([_summary(r) for r in records], sys.stdout, ensure_ascii=False, indent=1)
            sys.stdout.write("\n")
            return 0
        _print_table(records)
        return 0

    return _run(args, body)


def _print_table(records: list[QuarantineRecord]) -> None:
    header = ("ID", "STATUS", "RECEIVED (UTC)", "SENDER", "RCPTS", "RULES")
    rows = [
        (
            r.id,
            r.status.value,
            r.received_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            r.sender or "<>",
            str(len(r.recipients)),
            ",".join(r.rule_ids) or ("unscannable" if r.unscannable else "-"),
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if not rows:
        print("(no messages)")


def cmd_show(args: argparse.Namespace) -> int:
    def body(store: QuarantineStore) -> int:
        if args.raw:
            sys.stdout.flush()
            sys.stdout.buffer.write(store.raw(args.id))
            sys.stdout.buffer.flush()
            return 0
        rec = store.get(args.id)
        detail = _summary(rec)
        detail["subject"] = rec.subject
        detail["peer"] = rec.peer
        detail["mail_options"] = list(rec.mail_options)
        detail["hits"] = [
            {**h.to_json(), "action": h.action.label, "spans": [[s.start, s.end] for s in h.spans]}
            for h in rec.hits
        ]
        detail["outbox"] = [
            {
                "id": i.id,
                "kind": i.kind.value,
                "notice": None if i.notice is None else i.notice.value,
                "to": list(i.to),
                "state": i.state.value,
                "attempts": i.attempts,
                "last_error": i.last_error,
                "next_attempt_at": _iso(i.next_attempt_at),
            }
            for i in store.outbox(quarantine_id=rec.id)
        ]
        if args.json:
            json.dump(detail, sys.stdout, ensure_ascii=False, indent=1)
            sys.stdout.write("\n")
            return 0
        for key in (
            "id",
            "status",
            "state",
            "received_at",
            "sender",
            "recipients",
            "message_id",
            "subject",
            "peer",
            "size",
            "action",
            "rules",
            "out_of_scope",
            "ruleset_version",
            "decided_by",
            "decided_at",
            "reason",
            "last_error",
        ):
            value = detail[key]
            if isinstance(value, list):
                value = ", ".join(str(v) for v in value) or "-"
            print(f"{key + ':':17} {'-' if value is None else value}")
        for h in detail["hits"]:
            oos = ", ".join(h["out_of_scope"]) or "(all in scope)"
            print(f"hit:              {h['rule']} at {h['location']} -> {oos}")
        for u in rec.unscannable:
            print(f"unscannable:      {u.location} ({u.reason})")
        for i in detail["outbox"]:
            err = f" ({i['last_error']})" if i["last_error"] else ""
            print(f"outbox:           {i['kind']} {i['notice'] or ''} {i['state']}{err}")
        return 0

    return _run(args, body)


def cmd_decide(args: argparse.Namespace) -> int:
    from scanner.store import Status

    def body(store: QuarantineStore) -> int:
        by = args.by or _operator()
        decide = store.release if args.outcome == "release" else store.reject
        decision = decide(args.id, by=by, reason=args.reason, now=_now())
        wanted = {
            "release": (Status.RELEASING, Status.RELEASED),
            "reject": (Status.REJECTED,),
        }[args.outcome]
        if not decision.changed and decision.status not in wanted:
            return _fail(
                f"{args.id} is already {decision.status.value}"
                f" (by {decision.decided_by or '-'}); nothing changed",
                1,
            )
        if not args.no_deliver:
            _deliver(args, store, args.id)
        rec = store.get(args.id)
        again = "" if decision.changed else " (already decided earlier)"
        if rec.status is Status.RELEASED:
            print(f"{rec.id} released{again}: delivered to the upstream")
        elif rec.status is Status.RELEASE_FAILED:
            return _fail(
                f"{rec.id}: release recorded but the upstream refused it ({rec.last_error})", 1
            )
        elif rec.status is Status.RELEASING:
            pending = [i for i in store.outbox(quarantine_id=rec.id) if i.state.value == "pending"]
            why = f" ({pending[0].last_error})" if pending and pending[0].last_error else ""
            print(f"{rec.id} release recorded{again}; delivery queued for the daemon{why}")
        else:
            print(f"{rec.id} {rec.status.value}{again}")
        return 0

    return _run(args, body)


def cmd_expire(args: argparse.Namespace) -> int:
    def body(store: QuarantineStore) -> int:
        retention = _settings(args).retention
        days = args.older_than if args.older_than is not None else retention.hold_days
        action = args.action or retention.expire_action
        decisions = store.expire_older_than(
            timedelta(days=days), action=action, now=_now(), by=args.by
        )
        for d in decisions:
            if not args.no_deliver:
                _deliver(args, store, d.id)
            print(f"{d.id} expired ({action})")
        print(f"{len(decisions)} message(s) expired", file=sys.stderr)
        return 0

    return _run(args, body)


def cmd_purge(args: argparse.Namespace) -> int:
    def body(store: QuarantineStore) -> int:
        retention = _settings(args).retention
        days = args.older_than if args.older_than is not None else retention.purge_days
        purged = store.purge_content_older_than(timedelta(days=days), now=_now())
        for qid in purged:
            print(f"{qid} content purged")
        print(f"{len(purged)} message(s) purged", file=sys.stderr)
        return 0

    return _run(args, body)


def cmd_verify_audit(args: argparse.Namespace) -> int:
    def body(store: QuarantineStore) -> int:
        problems = store.verify_audit()
        for p in problems:
            print(p)
        if problems:
            return 1
        print(f"audit chain intact ({len(store.audit())} events)")
        return 0

    return _run(args, body)
