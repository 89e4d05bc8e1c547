"""``maruhi serve`` (the relay daemon) and ``maruhi sink`` (a local upstream for the demo).

Builds ``Settings`` from ``--config`` and the environment, applies the command-line overrides
(``--rules --data-dir --listen --upstream --metrics --workers --web --no-web``), configures
logging once and runs the daemon (relay and review web app) until SIGTERM/SIGINT. Unusable
configuration or rules exit 2 with one line on stderr (rule problems as ``file:line`` with rule
ids, never a term). It must not contain daemon logic: that is ``scanner.app``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import Any

from scanner import logs
from scanner.config import ConfigError, HostPort, Settings, load_settings
from scanner.errors import RuleError


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the before-queue SMTP relay",
        description="Run the relay: scan every message, relay, flag, hold or reject it. "
        "Defaults without a config: listen 127.0.0.1:10025, upstream 127.0.0.1:10026, data "
        "directory ./var/maruhi, rules from rules/example-en.yaml, review web app on "
        "http://127.0.0.1:8025/.",
    )
    serve.add_argument("--config", type=Path, metavar="maruhi.toml")
    serve.add_argument("--rules", type=Path, metavar="FILE", help="rules file (YAML or CSV)")
    serve.add_argument("--data-dir", type=Path, metavar="DIR", help="quarantine directory")
    serve.add_argument("--listen", metavar="HOST:PORT", help="SMTP listen address")
    serve.add_argument("--upstream", metavar="HOST:PORT", help="upstream MTA")
    serve.add_argument("--metrics", metavar="HOST:PORT",
                       help="metrics/health HTTP address, or 'off'")
    serve.add_argument("--workers", type=int, metavar="N", help="scanner processes (0 = cores)")
    web = serve.add_mutually_exclusive_group()
    web.add_argument("--web", metavar="HOST:PORT",
                     help="review web app address (default 127.0.0.1:8025)")
    web.add_argument("--no-web", action="store_true", help="do not serve the review web app")
    serve.add_argument("--log-format", choices=("json", "console"))
    serve.set_defaults(func=run)

    sink = subparsers.add_parser(
        "sink",
        help="a local upstream that stores delivered mail as .eml files (demo)",
        description="Accept mail over SMTP and store each message as DIR/<time>-<n>.eml.",
    )
    sink.add_argument("--listen", default="127.0.0.1:10026", metavar="HOST:PORT")
    sink.add_argument("--dir", type=Path, default=Path("var/sink"), metavar="DIR")
    sink.set_defaults(func=run_sink)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Config file + environment, then the flags (the flags win)."""
    s = load_settings(args.config)
    if args.rules is not None:
        s = dataclasses.replace(s, scan=dataclasses.replace(s.scan, rules=args.rules))
    if args.workers is not None:
        s = dataclasses.replace(s, scan=dataclasses.replace(s.scan, workers=args.workers))
    if args.data_dir is not None:
        s = dataclasses.replace(s, store=dataclasses.replace(s.store, data_dir=args.data_dir))
    if args.listen is not None:
        listen = HostPort.parse(args.listen, what="--listen")
        s = dataclasses.replace(s, relay=dataclasses.replace(s.relay, listen=listen))
    if args.upstream is not None:
        up = HostPort.parse(args.upstream, what="--upstream")
        s = dataclasses.replace(s, upstream=dataclasses.replace(s.upstream, address=up))
    if args.metrics is not None:
        metrics = None if args.metrics == "off" else HostPort.parse(args.metrics,
                                                                    what="--metrics")
        s = dataclasses.replace(s, metrics=dataclasses.replace(s.metrics, listen=metrics))
    if args.web is not None or args.no_web:
        web = None if args.no_web else HostPort.parse(args.web, what="--web")
        s = dataclasses.replace(s, web=dataclasses.replace(s.web, listen=web))
    if args.log_format is not None:
        s = dataclasses.replace(s, log=dataclasses.replace(s.log, format=args.log_format))
    return s


def _fail(message: str) -> int:
    print(f"maruhi serve: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace, hooks: Any = None) -> int:
    from scanner.app import serve

    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        return _fail(str(exc))
    logs.configure(settings.log.level, settings.log.format)
    try:
        return asyncio.run(serve(settings, hooks=hooks))
    except ConfigError as exc:
        return _fail(str(exc))
    except RuleError as exc:
        first = str(exc.problems[0]) if exc.problems else "invalid rules"
        more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
        return _fail(f"invalid rules: {first}{more}")
    except OSError as exc:
        # Typically the listen address is in use; errno text only, no content.
        return _fail(f"cannot start ({type(exc).__name__}: {exc.strerror or exc})")


def run_sink(args: argparse.Namespace) -> int:
    from scanner.sink import run_sink as sink_main

    try:
        listen = HostPort.parse(args.listen, what="--listen")
    except ConfigError as exc:
        print(f"maruhi sink: {exc}", file=sys.stderr)
        return 2
    logs.configure("info", "console")
    return asyncio.run(sink_main(listen.host, listen.port, args.dir))
