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
import contextlib
import signal
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from scanner.aio import spawn
from scanner.config import ConfigError, Settings
from scanner.logs import get_logger
from scanner.metrics import Metrics, MetricsServer
from scanner.model import Envelope, Verdict
from scanner.poller.service import PollerService
from scanner.relay import scanpool
from scanner.relay.reload import (
    RulesWatcher,
    Validator,
    import_rules_file,
    read_snapshot,
    store_snapshot,
)
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
from scanner.rules.model import CompiledRuleset
from scanner.rulestore.base import RuleStore
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
    # Rule versions live in the data directory's rule store, shared with the web app (the real
    # rules format only; test doubles with their own format run from the file alone).
    rulestore: bool = True


def resolve_rules(settings: Settings, *, required: bool = True) -> Path | None:
    """The rules file: configured, else ``rules/example-en.yaml`` when present."""
    if settings.scan.rules is not None:
        return settings.scan.rules
    if DEFAULT_RULES.is_file():
        return DEFAULT_RULES
    if not required:
        return None
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


class PoolRulesetMirror:
    """The scan pool's current rules compiled in this process, for in-process scanners.

    The poller scans in the daemon process and needs the same ruleset the relay's workers run;
    it reads it on the event loop, so the (cached, ~0.1 s) load happens in a thread whenever the
    pool's rules version or the day changes, and reading is a plain attribute access.
    """

    def __init__(self, pool: ScanPool, cache_dir: Path) -> None:
        self._pool = pool
        self._cache_dir = cache_dir
        self._key: tuple[str, date] | None = None
        self._ruleset: CompiledRuleset | None = None

    async def refresh(self) -> None:
        snapshot = self._pool.snapshot
        key = (snapshot.info.version, date.today())
        if key == self._key or snapshot.data is None:
            return
        from scanner.rulecache import load_ruleset

        self._ruleset = await asyncio.to_thread(
            load_ruleset, snapshot.data, snapshot.filename, today=key[1],
            cache_dir=self._cache_dir)
        self._key = key

    async def follow(self, stop: asyncio.Event, interval: float) -> None:
        while not stop.is_set():
            try:
                await self.refresh()
            except Exception as exc:  # the pool validated these rules; keep the last good ones
                _log.error("poller.rules_failed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    def __call__(self) -> CompiledRuleset:
        assert self._ruleset is not None, "refresh() first"
        return self._ruleset


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
        self.rulestore: RuleStore | None = None
        self._web_task: asyncio.Task[None] | None = None
        self._web_stop = asyncio.Event()
        self.web_address: tuple[str, int] | None = None
        self._metrics_server: MetricsServer | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.poller_service: PollerService | None = None
        self._stop = asyncio.Event()
        self._outbox_stop = asyncio.Event()
        self.relay_address: tuple[str, int] | None = None
        self.metrics_address: tuple[str, int] | None = None

    def ready(self) -> bool:
        relay_ok = bool(self.relay and self.relay.listening and self.pool and self.pool.ready)
        return relay_ok and (self.poller_service is None or self.poller_service.ready())

    async def start(self) -> None:
        s = self.settings
        hostname = s.relay.hostname or await asyncio.to_thread(socket.getfqdn)
        tls = _server_tls(s)
        self.store = await asyncio.to_thread(self._store_factory, s.store.data_dir)
        store = self.store
        self.metrics.add_store(lambda: _store_stats(store))
        rules_path, file_data, active_id, snapshot = await self._initial_rules()

        if s.metrics.listen is not None:
            self._metrics_server = MetricsServer(self.metrics, self.ready)
            self.metrics_address = await self._metrics_server.start(
                s.metrics.listen.host, s.metrics.listen.port)

        metrics = self.metrics
        scanpool.RULES_CACHE_DIR = s.store.data_dir / "cache"
        self.pool = ScanPool(workers=s.scan.workers, timeout=s.scan.timeout,
                             task=self.hooks.task, loader=self.hooks.loader,
                             on_replace=lambda _why: metrics.scanpool_replacements.inc())
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
            # Waiting for a free scanner (queue timeout = scan timeout) + scanning + upstream.
            processing_timeout=2 * s.scan.timeout + s.upstream.timeout + 30.0,
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
                                    validate=self.hooks.validate, store=self.rulestore,
                                    on_reload=lambda _info: self.metrics.rules_reloads.labels(
                                        "ok").inc())
        self.watcher.prime(file_data, active_id)
        self._tasks.append(spawn(self.watcher.run(), name="rules.watch"))
        if self._run_outbox:
            self._tasks.append(spawn(self._outbox(store), name="outbox"))
            self._tasks.append(spawn(self._retention(store), name="retention"))

        if s.web.listen is not None:
            await self._start_web(store)
        await self._start_poller(store)
        self.relay_address = await self.relay.start(s.relay.listen.host, s.relay.listen.port)
        _log.info("serve.started", listen=f"{self.relay_address[0]}:{self.relay_address[1]}",
                  upstream=str(s.upstream.address), rules=str(rules_path),
                  rules_version=active_id, ruleset_version=snapshot.info.version,
                  workers=self.pool.workers, data_dir=str(s.store.data_dir),
                  metrics=(f"{self.metrics_address[0]}:{self.metrics_address[1]}"
                           if self.metrics_address else None),
                  web=(f"http://{self.web_address[0]}:{self.web_address[1]}/"
                       if self.web_address else None))

    async def _initial_rules(self) -> tuple[Path | None, bytes | None, int | None,
                                            RulesSnapshot]:
        """(rules file, its bytes, active store version id, snapshot the workers start with).

        With the rule store, a changed rules file is first imported as the active version; then
        the store's active version runs (it may be one activated in the web app)."""
        s = self.settings
        hooks = self.hooks
        rules_path = resolve_rules(s, required=not hooks.rulestore)
        if not hooks.rulestore:
            assert rules_path is not None
            try:
                snapshot: RulesSnapshot = await asyncio.to_thread(
                    read_snapshot, rules_path, hooks.validate)
            except OSError as exc:
                raise ConfigError(
                    f"{rules_path}: cannot read rules ({type(exc).__name__})") from exc
            return rules_path, snapshot.data, None, snapshot
        from scanner.rulestore import open_rulestore

        self.rulestore = rulestore = await asyncio.to_thread(open_rulestore, s.store.data_dir)
        file_data: bytes | None = None
        if rules_path is not None:
            try:
                file_data = await asyncio.to_thread(rules_path.read_bytes)
            except OSError as exc:
                raise ConfigError(
                    f"{rules_path}: cannot read rules ({type(exc).__name__})") from exc
            version = await asyncio.to_thread(import_rules_file, rulestore, rules_path, file_data)
            if version is not None:
                _log.info("rules.imported", file=str(rules_path), store_version=version.id)
        found = await asyncio.to_thread(store_snapshot, rulestore, hooks.validate)
        if found is None:
            raise ConfigError(f"{s.source}: [scan] rules is required: no rules file given and no "
                              "active rules version in the data directory")
        active_id, snapshot = found
        return rules_path, file_data, active_id, snapshot

    async def _start_poller(self, store: QuarantineStore) -> None:
        """The mailbox poller beside the relay, when ``[poller]`` is configured."""
        from scanner.config import environment
        from scanner.poller.service import run_poller
        from scanner.poller.settings import poller_of

        poller = poller_of(self.settings, env=environment())
        if poller is None or self.pool is None or self.pool.snapshot.data is None:
            return
        mirror = PoolRulesetMirror(self.pool, self.settings.store.data_dir / "cache")
        await mirror.refresh()
        self.poller_service = PollerService()
        self._tasks.append(spawn(mirror.follow(self._stop, self.settings.scan.reload_interval),
                                 name="poller.rules"))
        self._tasks.append(spawn(run_poller(poller, store, mirror, self._stop,
                                            service=self.poller_service), name="poller"))

    async def _start_web(self, store: QuarantineStore) -> None:
        """The review web app on [web] listen; returns once it listens (OSError if it cannot)."""
        import importlib

        listen = self.settings.web.listen
        assert listen is not None
        # fastapi/uvicorn take a second to import: not on the event loop.
        web_app = await asyncio.to_thread(importlib.import_module, "scanner.web.app")
        from scanner.web.context import WebSettings

        w = self.settings.web
        web_settings = WebSettings(data_dir=self.settings.store.data_dir,
                                   cookie_secure=w.cookie_secure,
                                   idle_timeout=timedelta(minutes=w.idle_minutes),
                                   session_lifetime=timedelta(hours=w.session_hours))
        started = asyncio.Event()
        self._web_task = spawn(web_app.serve_web(
            listen.host, listen.port, web_settings, store=store, rules=self.rulestore,
            stop=self._web_stop, started=started), name="web")
        waiter = spawn(started.wait(), name="web.started")
        await asyncio.wait({self._web_task, waiter}, timeout=60.0,
                           return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._web_task.done():
            exc = self._web_task.exception()
            raise exc if exc is not None else OSError("review web app stopped at start")
        if not started.is_set():
            raise OSError("review web app did not start within 60 s")
        self.web_address = (listen.host, listen.port)

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
        if self._web_task is not None:
            self._web_stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._web_task), 10.0)
            except TimeoutError:
                self._web_task.cancel()
            except Exception as exc:  # already reported by spawn; shutdown goes on
                _log.error("web.stop_failed", error=type(exc).__name__)
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
        if self.rulestore is not None:
            await asyncio.to_thread(self.rulestore.close)
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
