"""``maruhi poll --config maruhi.toml [--rules FILE] [--once]``: the mailbox poller on its own.

Reads the daemon's settings and the ``[poller]`` table, compiles the rules once (re-compiling
when the file changes; a bad new file keeps the old rules running), opens the quarantine store
and runs ``run_poller`` until SIGTERM/SIGINT, with the outbox worker alongside so incident
notices are sent. ``--once`` makes one pass over every folder, prints one JSON line per folder
(counts only) and exits — for cron and for checking a configuration. Unusable configuration or
rules exit 2 with one line on stderr (never a secret: ``Secret`` values print as stars). It
must not contain poller logic: that is ``scanner.poller``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import signal
import socket
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scanner import logs
from scanner.config import ConfigError, Settings, environment
from scanner.errors import MaruhiError, RuleError
from scanner.rules.compile import compile_ruleset
from scanner.rules.load import parse_rules_bytes
from scanner.rules.model import CompiledRuleset

_log = logs.get_logger("maruhi.poll")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "poll",
        help="watch mailboxes (EWS, Graph, IMAP): record disclosures, tag drafts",
        description="Run the mailbox poller alone: scan Sent Items / journal / Drafts with the "
        "active rules, record every out-of-scope disclosure as an incident (status 'sent') and "
        "tag drafts. It detects after the fact; it cannot stop a message already sent.",
    )
    parser.add_argument("--config", type=Path, required=True, metavar="maruhi.toml")
    parser.add_argument("--rules", type=Path, metavar="FILE", help="rules file (YAML or CSV)")
    parser.add_argument(
        "--once",
        action="store_true",
        help="one pass over every folder, print counts as JSON lines, exit",
    )
    parser.set_defaults(func=run)


class FileRuleset:
    """A ``RulesetProvider`` over a rules file: recompiled when its mtime changes; a broken
    new version is logged (file, line, rule id — never a term) and the old one keeps running."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mtime = path.stat().st_mtime_ns
        self._ruleset = self._compile()

    def _compile(self) -> CompiledRuleset:
        data = self.path.read_bytes()
        return compile_ruleset(parse_rules_bytes(data, str(self.path)), today=dt.date.today())

    def __call__(self) -> CompiledRuleset:
        with self._lock:
            try:
                mtime = self.path.stat().st_mtime_ns
            except OSError:
                return self._ruleset  # a file being replaced: keep the running rules
            if mtime != self._mtime:
                self._mtime = mtime
                try:
                    self._ruleset = self._compile()
                    _log.info("rules.reloaded", version=self._ruleset.version)
                except (RuleError, OSError) as exc:
                    _log.error("rules.reload_failed", error=type(exc).__name__)
            return self._ruleset


def _fail(message: str) -> int:
    print(f"maruhi poll: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from scanner.poller.settings import load_with_poller

    try:
        settings, poller = load_with_poller(args.config, env=environment())
    except ConfigError as exc:
        return _fail(str(exc))
    rules_path = args.rules or settings.scan.rules
    if rules_path is None:
        return _fail(f"{args.config}: [scan] rules is required by maruhi poll (or --rules)")
    try:
        rules = FileRuleset(rules_path)
    except OSError as exc:
        return _fail(f"{rules_path}: cannot read the rules file ({type(exc).__name__})")
    except RuleError as exc:
        return _fail(str(exc).splitlines()[0])
    logs.configure(settings.log.level, settings.log.format)
    from scanner.store import open_store

    try:
        store = open_store(settings.store.data_dir)
    except MaruhiError as exc:
        return _fail(str(exc))
    try:
        if args.once:
            return asyncio.run(_once(poller, store, rules))
        return asyncio.run(_forever(settings, poller, store, rules))
    finally:
        store.close()


async def _once(poller: Any, store: Any, rules: FileRuleset) -> int:
    from scanner.poller.loop import FolderPoller
    from scanner.poller.service import build_sources
    from scanner.poller.source import CredentialError

    code = 0
    pairs = build_sources(poller)
    try:
        for source, folder in pairs:
            fp = FolderPoller(
                source=source,
                folder=folder,
                store=store,
                rules=rules,
                actions=poller.actions,
                options=poller.loop,
            )
            line: dict[str, Any] = {"mailbox": folder.mailbox, "folder": folder.key}
            try:
                report = await fp.poll_once()
                line |= {
                    "listed": report.listed,
                    "scanned": report.scanned,
                    "deduped": report.deduped,
                    "incidents": len(report.incidents),
                    "resynced": report.resynced,
                }
            except CredentialError:
                line["error"] = "credentials rejected"
                code = 1
            except MaruhiError as exc:
                line["error"] = type(exc).__name__
                code = 1
            print(json.dumps(line), flush=True)
    finally:
        for source in {id(s): s for s, _ in pairs}.values():
            await asyncio.to_thread(source.close)
    return code


async def _forever(settings: Settings, poller: Any, store: Any, rules: FileRuleset) -> int:
    from scanner.aio import spawn
    from scanner.notify.compose import NoticeOptions
    from scanner.outbox.target import UpstreamTarget
    from scanner.outbox.worker import run_outbox_loop
    from scanner.poller.service import run_poller

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    outbox = spawn(
        run_outbox_loop(
            store,
            UpstreamTarget.from_settings(settings),
            stop=stop,
            now_fn=lambda: datetime.now(UTC),
            worker_id=f"{socket.gethostname()}-poller",
            notices=NoticeOptions.from_settings(settings),
        ),
        name="outbox",
    )
    await run_poller(poller, store, rules, stop)
    await asyncio.wait([outbox], timeout=10)
    return 0
