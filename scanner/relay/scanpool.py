"""Runs ``scan()`` off the event loop: a process pool, a per-message timeout, hot rule swaps.

It owns the worker processes (one per core by default), the compiled ruleset inside each worker
(loaded once, by the pool's initializer, from rules bytes the parent has already validated) and
the replacement of a pool whose worker is stuck or has died. A hot reload builds and warms a new
pool with the new rules, swaps one reference, and retires the old pool after its in-flight scans
finish, so no transaction fails and no connection drops. It must not decide what to do with a
verdict (that is the relay's job) and never logs message content. Hazard: a scan that times out
or crashes its worker must still yield a verdict: the ruleset's unscannable action (fail closed),
never a pass.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import datetime as dt
import multiprocessing
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from scanner.aio import spawn
from scanner.limits import DEFAULT_LIMITS, Limits
from scanner.logs import get_logger
from scanner.model import Action, Envelope, Unscannable, Verdict

_log = get_logger("maruhi.scanpool")

WorkerLoader = Callable[[bytes, str], object]
"""Runs in a worker: rules bytes + file name → the object ``WorkerTask`` scans with."""

WorkerTask = Callable[[bytes, Envelope], Verdict]
"""Runs in a worker: the message and its envelope → a verdict (module-level, picklable)."""


@dataclass(frozen=True)
class RulesInfo:
    """What the parent needs to know about the active ruleset without scanning with it."""

    version: str
    unscannable_action: Action = Action.FLAG
    owners: Mapping[str, str] = field(default_factory=dict)  # rule id → owner address


@dataclass(frozen=True)
class RulesSnapshot:
    """Validated rules content, shipped to every worker of a pool at start-up."""

    data: bytes | None
    filename: str
    info: RulesInfo


# -- worker side --------------------------------------------------------------------------------

_worker_ruleset: object = None
_worker_limits: Limits = DEFAULT_LIMITS


def _init_worker(loader: WorkerLoader | None, data: bytes | None, filename: str,
                 limits: Limits) -> None:
    global _worker_ruleset, _worker_limits
    _worker_limits = limits
    _worker_ruleset = loader(data, filename) if (loader is not None and data is not None) else None


def worker_ruleset() -> object:
    """The ruleset loaded in this worker (for tasks)."""
    return _worker_ruleset


def _warm(delay: float) -> int:
    # Occupies a worker briefly so that each warm-up call lands on a different process.
    time.sleep(delay)
    return os.getpid()


def load_compiled(data: bytes, filename: str) -> object:
    """The real loader: parse and compile a rules file (in a worker, or in the parent)."""
    from scanner.rules.compile import compile_ruleset
    from scanner.rules.load import parse_rules_bytes

    spec = parse_rules_bytes(data, filename)
    return compile_ruleset(spec, today=dt.date.today())


def scan_task(raw: bytes, envelope: Envelope) -> Verdict:
    """The real task: ``scan()`` with the worker's ruleset and an in-scan time budget."""
    from scanner.rules.model import CompiledRuleset
    from scanner.scan import scan

    ruleset = _worker_ruleset
    if not isinstance(ruleset, CompiledRuleset):
        raise RuntimeError("scanner worker has no ruleset")
    return scan(raw, envelope, ruleset, _worker_limits, today=dt.date.today(),
                clock=time.monotonic)


def compile_info(data: bytes, filename: str) -> RulesInfo:
    """Validate rules in the parent (raises ``RuleError``) and extract what the relay needs."""
    from scanner.rules.model import CompiledRuleset

    compiled = load_compiled(data, filename)
    assert isinstance(compiled, CompiledRuleset)
    owners = {r.id: r.owner for r in compiled.rules if r.owner}
    return RulesInfo(version=compiled.version, unscannable_action=compiled.unscannable_action,
                     owners=owners)


# -- parent side --------------------------------------------------------------------------------


class ScanPool:
    """``await pool.scan(raw, envelope)`` → ``Verdict``, within ``timeout`` seconds, always."""

    def __init__(
        self,
        *,
        workers: int = 0,
        timeout: float = 20.0,
        task: WorkerTask = scan_task,
        loader: WorkerLoader | None = load_compiled,
        limits: Limits = DEFAULT_LIMITS,
        start_method: str = "forkserver",
        warm_timeout: float = 600.0,
    ) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.timeout = timeout
        self._task = task
        self._loader = loader
        # The in-scan budget ends before the outer kill so that a slow message normally gets a
        # precise unscannable reason from the scanner itself.
        self._limits = dataclasses.replace(limits, max_scan_seconds=timeout * 0.8)
        self._ctx = multiprocessing.get_context(start_method)
        self._warm_timeout = warm_timeout
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._snapshot: RulesSnapshot | None = None
        self._replacing: asyncio.Task[None] | None = None
        self._swap_lock = asyncio.Lock()
        self.replacements = 0

    @property
    def info(self) -> RulesInfo:
        assert self._snapshot is not None, "ScanPool.start() first"
        return self._snapshot.info

    @property
    def ready(self) -> bool:
        return self._pool is not None

    async def start(self, snapshot: RulesSnapshot) -> None:
        self._pool = await self._build(snapshot)
        self._snapshot = snapshot

    async def _build(self, snapshot: RulesSnapshot) -> concurrent.futures.ProcessPoolExecutor:
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=self._ctx,
            initializer=_init_worker,
            initargs=(self._loader, snapshot.data, snapshot.filename, self._limits),
        )
        loop = asyncio.get_running_loop()
        try:
            warmups = [loop.run_in_executor(pool, _warm, 0.05) for _ in range(self.workers)]
            await asyncio.wait_for(asyncio.gather(*warmups), self._warm_timeout)
        except BaseException:
            await self._retire(pool, graceful=False)
            raise
        return pool

    async def swap(self, snapshot: RulesSnapshot) -> None:
        """Hot reload: warm a pool with the new rules, switch to it, retire the old one."""
        async with self._swap_lock:
            new = await self._build(snapshot)
            old, self._pool, self._snapshot = self._pool, new, snapshot
            if old is not None:
                spawn(self._retire(old, graceful=True), name="scanpool.retire")

    async def _retire(self, pool: concurrent.futures.ProcessPoolExecutor, *,
                      graceful: bool) -> None:
        if graceful:
            # In-flight scans finish on the old rules; a stuck one is cut off by its timeout.
            done = asyncio.to_thread(pool.shutdown, True)
            try:
                await asyncio.wait_for(asyncio.shield(done), self.timeout + 5.0)
                return
            except TimeoutError:
                pass
        for proc in list(pool._processes.values()):  # no public API to kill a pool's workers
            if proc.is_alive():
                proc.kill()
        await asyncio.to_thread(pool.shutdown, True, cancel_futures=True)

    def _replace(self, broken: concurrent.futures.ProcessPoolExecutor, why: str) -> None:
        """Replace a pool with a stuck or dead worker; idempotent per pool."""
        if broken is not self._pool or self._replacing is not None:
            return
        self.replacements += 1
        _log.warning("scanpool.replacing", reason=why)

        async def replace() -> None:
            try:
                assert self._snapshot is not None
                async with self._swap_lock:
                    new = await self._build(self._snapshot)
                    old, self._pool = self._pool, new
                if old is not None:
                    await self._retire(old, graceful=False)
            finally:
                self._replacing = None

        self._replacing = spawn(replace(), name="scanpool.replace")

    def _fallback(self, reason: str) -> Verdict:
        info = self.info
        return Verdict(
            action=info.unscannable_action,
            hits=(),
            unscannable=(Unscannable(location="message", reason=reason),),
            ruleset_version=info.version,
            reasons=(f"unscannable: {reason}",),
        )

    async def scan(self, raw: bytes, envelope: Envelope) -> Verdict:
        loop = asyncio.get_running_loop()
        for attempt in (0, 1):
            pool = self._pool
            if pool is None:
                raise RuntimeError("scan pool is closed")
            try:
                fut = loop.run_in_executor(pool, self._task, raw, envelope)
                return await asyncio.wait_for(fut, self.timeout)
            except TimeoutError:
                self._replace(pool, "timeout")
                return self._fallback("max_scan_seconds")
            except (BrokenProcessPool, RuntimeError) as exc:
                # BrokenProcessPool is a RuntimeError; other RuntimeErrors count only when the
                # pool was shut down by a swap between our read of it and the submit.
                if not isinstance(exc, BrokenProcessPool) and "shutdown" not in str(exc):
                    raise
                # The pool died (a worker crashed) or was retired under us: retry once on the
                # replacement; a message that crashes two pools is unscannable (fail closed).
                self._replace(pool, "worker_died")
                if self._replacing is not None:
                    await asyncio.shield(self._replacing)
                if attempt == 1:
                    return self._fallback("scanner_crashed")
        raise AssertionError("unreachable")  # pragma: no cover

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if self._replacing is not None:
            self._replacing.cancel()
        if pool is not None:
            await self._retire(pool, graceful=False)

    def stats(self) -> dict[str, Any]:
        return {"workers": self.workers, "replacements": self.replacements}
