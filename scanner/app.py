"""The composition root of ``maruhi serve``: settings → store → scan pool → relay → workers.

It owns the order of start-up (nothing listens before the rules are valid and the scanner pool
is warm), the long-running tasks (rules watcher, outbox worker, retention, metrics endpoint) and
the order of shutdown on SIGTERM/SIGINT: stop accepting, let in-flight transactions finish
(``relay.drain_seconds``), then stop the workers and close the store. It must not contain SMTP or
scanning logic itself. Hazard: every blocking call here (opening the store, reading and compiling
rules) runs in a thread, because the event loop already serves the metrics endpoint.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scanner.aio import spawn
from scanner.config import ConfigError, Settings
from scanner.errors import RuleError
from scanner.logs import get_logger
from scanner.metrics import Metrics, MetricsServer
from scanner.model import Envelope, Verdict
from scanner.relay.reload import RulesWatcher, Validator, read_snapshot
from scanner.relay.scanpool import (
    RulesInfo,
    RulesSnapshot,
    ScanPool,
    WorkerLoader,
    WorkerTask,
    compile_info,
    load_compiled,
    scan_task,
)
from scanner.relay.server import RelayConfig, RelayHandler, RelayServer
from scanner.relay.upstream import UpstreamConfig, UpstreamPool
from scanner.store.base import QuarantineStore

_log = get_logger("maruhi.app")

DEFAULT_RULES = Path("rules/example-en.yaml")
RETENTION_INTERVAL = 3600.0


@dataclass(frozen=True)
class ScanHooks:
    """What runs in the scanner workers and validates rules in the parent (tests swap them)."""

    task: WorkerTask = scan_task
    loader: WorkerLoader | None = load_compiled
    validate: Validator = compile_info


def resolve_rules(settings: Settings) -> Path:
    """The rules file: configured, else ``rules/example-en.yaml`` when present."""
    if settings.scan.rules is not None:
        return settings.scan.rules
    if DEFAULT_RULES.is_file():
        return DEFAULT_RULES
    raise ConfigError(f"{settings.source}: [scan] rules is required: no rules file given and "
                      f"{DEFAULT_RULES} does not exist (it has no other default)")


def _server_tls(settings: Settings) -> ssl.SSLContext | None:
    relay = settings.relay
    if relay.tls_cert is None or relay.tls_key is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(str(relay.tls_cert), str(relay.tls_key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{settings.source}: [relay] tls_cert/tls_key cannot be loaded "
                          f"({type(exc).__name__})") from exc
    return ctx


def open_default_store(data_dir: Path) -> QuarantineStore:
    from scanner.store import open_store

    data_dir.mkdir(parents=True, exist_ok=True)
    return open_store(data_dir)


class Daemon:
    """One running relay with its workers; ``start()``, then ``stop()`` (or ``serve_forever``)."""

    def __init__(
        self,
        settings: Settings,
        *,
        hooks: ScanHooks | None = None,
        store_factory: Callable[[Path], QuarantineStore] = open_default_store,
        run_outbox: bool = True,
    ) -> None:
        self.settings = settings
        self.hooks = hooks or ScanHooks()
        self._store_factory = store_factory
        self._run_outbox = run_outbox
        self.metrics = Metrics()
        self.store: QuarantineStore | None = None
        self.pool: ScanPool | None = None
        self.upstream: UpstreamPool | None = None
        self.relay: RelayServer | None = None
        self.handler: RelayHandler | None = None
        self.watcher: RulesWatcher | None = None
        self._metrics_server: MetricsServer | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._stop = asyncio.Event()
        self._outbox_stop = asyncio.Event()
        self.relay_address: tuple[str, int] | None = None
        self.metrics_address: tuple[str, int] | None = None

    def ready(self) -> bool:
        return bool(self.relay and self.relay.listening and self.pool and self.pool.ready)

    async def start(self) -> None:
        s = self.settings
        hostname = s.relay.hostname or await asyncio.to_thread(socket.getfqdn)
        tls = _server_tls(s)
        rules_path = resolve_rules(s)
        try:
            snapshot: RulesSnapshot = await asyncio.to_thread(
                read_snapshot, rules_path, self.hooks.validate)
        except OSError as exc:
            raise ConfigError(f"{rules_path}: cannot read rules ({type(exc).__name__})") from exc
        except RuleError:
            raise
        self.store = await asyncio.to_thread(self._store_factory, s.store.data_dir)
        store = self.store
        self.metrics.add_store(lambda: _store_stats(store))

        if s.metrics.listen is not None:
            self._metrics_server = MetricsServer(self.metrics, self.ready)
            self.metrics_address = await self._metrics_server.start(
                s.metrics.listen.host, s.metrics.listen.port)

        self.pool = ScanPool(workers=s.scan.workers, timeout=s.scan.timeout,
                             task=self.hooks.task, loader=self.hooks.loader)
        await self.pool.start(snapshot)
        self.upstream = UpstreamPool(UpstreamConfig(
            host=s.upstream.address.host, port=s.upstream.address.port, tls=s.upstream.tls,
            ca_file=s.upstream.ca_file, timeout=s.upstream.timeout,
            pool_size=s.upstream.pool_size, helo_name=s.upstream.helo_name or hostname,
            username=s.upstream.username or None,
            password=s.upstream.password.reveal() if s.upstream.password else None,
        ))
        pool = self.pool
        config = RelayConfig(
            hostname=hostname,
            max_message_bytes=s.relay.max_message_bytes,
            max_recipients=s.relay.max_recipients,
            max_connections=s.relay.max_connections,
            command_timeout=s.relay.command_timeout,
            data_timeout=s.relay.data_timeout,
            processing_timeout=s.scan.timeout + s.upstream.timeout + 30.0,
            tls_context=tls,
            require_tls=s.relay.require_tls,
            auth_users={u: p.reveal() for u, p in s.relay.auth_users.items()},
            auth_required=s.relay.auth_required,
            bare_lf=s.relay.bare_lf,
            notify_sender=s.notices.notify_sender,
            notify_owner=s.notices.notify_owner,
        )

        async def scan(raw: bytes, envelope: Envelope) -> Verdict:
            return await pool.scan(raw, envelope)

        def rules_info() -> RulesInfo:
            return pool.info

        self.handler = RelayHandler(config=config, scan=scan, upstream=self.upstream,
                                    store=store, rules_info=rules_info, metrics=self.metrics)
        self.relay = RelayServer(self.handler, self.metrics)

        self.watcher = RulesWatcher(rules_path, self.pool, interval=s.scan.reload_interval,
                                    validate=self.hooks.validate,
                                    on_reload=lambda _info: self.metrics.rules_reloads.labels(
                                        "ok").inc())
        assert snapshot.data is not None
        self.watcher.prime(snapshot.data)
        self._tasks.append(spawn(self.watcher.run(), name="rules.watch"))
        if self._run_outbox:
            self._tasks.append(spawn(self._outbox(store), name="outbox"))
            self._tasks.append(spawn(self._retention(store), name="retention"))

        self.relay_address = await self.relay.start(s.relay.listen.host, s.relay.listen.port)
        _log.info("serve.started", listen=f"{self.relay_address[0]}:{self.relay_address[1]}",
                  upstream=str(s.upstream.address), rules=str(rules_path),
                  ruleset_version=snapshot.info.version, workers=self.pool.workers,
                  data_dir=str(s.store.data_dir),
                  metrics=(f"{self.metrics_address[0]}:{self.metrics_address[1]}"
                           if self.metrics_address else None))

    async def _outbox(self, store: QuarantineStore) -> None:
        from scanner.notify.compose import NoticeOptions
        from scanner.outbox.target import UpstreamTarget
        from scanner.outbox.worker import run_outbox_loop

        await run_outbox_loop(
            store, UpstreamTarget.from_settings(self.settings), stop=self._outbox_stop,
            now_fn=lambda: datetime.now(UTC), worker_id=f"{socket.gethostname()}-relay",
            notices=NoticeOptions.from_settings(self.settings),
        )

    async def _retention(self, store: QuarantineStore) -> None:
        r = self.settings.retention
        while True:
            try:
                now = datetime.now(UTC)
                await asyncio.to_thread(store.expire_older_than, timedelta(days=r.hold_days),
                                        action=r.expire_action, now=now)
                await asyncio.to_thread(store.purge_content_older_than,
                                        timedelta(days=r.purge_days), now=now)
            except Exception as exc:  # retried next round; never stops the daemon
                _log.error("retention.failed", error=type(exc).__name__)
            await asyncio.sleep(RETENTION_INTERVAL)

    def request_stop(self) -> None:
        self._stop.set()

    async def serve_forever(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        await self._stop.wait()
        _log.info("serve.stopping", in_flight=self.relay.connections if self.relay else 0)
        await self.stop()

    async def stop(self) -> None:
        clean = True
        if self.relay is not None:
            clean = await self.relay.drain(self.settings.relay.drain_seconds)
        self._outbox_stop.set()
        for task in self._tasks:
            if task.get_name() != "outbox":
                task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10.0)
        if self.pool is not None:
            await self.pool.close()
        if self.upstream is not None:
            await self.upstream.close()
        if self._metrics_server is not None:
            await self._metrics_server.close()
        if self.store is not None:
            await asyncio.to_thread(self.store.close)
        _log.info("serve.stopped", drained=clean)


def _store_stats(store: QuarantineStore) -> tuple[dict[str, int], int, int]:
    stats = store.stats()
    return dict(stats.by_status), stats.outbox_pending, stats.outbox_failed


async def serve(settings: Settings, *, hooks: ScanHooks | None = None) -> int:
    """Run until SIGTERM/SIGINT; the exit code of ``maruhi serve``."""
    daemon = Daemon(settings, hooks=hooks)
    try:
        await daemon.start()
    except BaseException:
        await daemon.stop()
        raise
    await daemon.serve_forever()
    return 0
