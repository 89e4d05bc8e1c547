"""Runs ``scan()`` off the event loop: worker processes, a per-message timeout, hot rule swaps.

It owns the scanner worker processes (``scanner.relay.worker``, one per core by default), each
started with ``asyncio.create_subprocess_exec`` and driven over its stdin/stdout pipes with
length-prefixed frames, one message at a time per worker; the parent has no threads of its own
on this path (``concurrent.futures.ProcessPoolExecutor`` was measured to cost more CPU in its
management and feeder threads than the scan itself for 10 KB mail). The compiled ruleset is
loaded once per worker at start. A hot reload starts and warms a new generation of workers with
the new rules, switches new jobs to them, and retires the old ones after their in-flight scan, so
no transaction fails and no connection drops. It must not decide what to do with a verdict (the
relay's job) and never logs message content. Hazards: a scan that times out (its worker is
killed and replaced) or crashes its worker twice must still yield a verdict: the ruleset's
unscannable action (fail closed), never a pass; a message that waits longer than the queue
timeout for a free worker (overload) raises ``ScannerBusy`` (451, the client retries) rather than
taking the unscannable action.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import os
import pickle
import struct
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanner.aio import spawn
from scanner.limits import DEFAULT_LIMITS, Limits
from scanner.logs import get_logger
from scanner.model import Action, Envelope, Unscannable, Verdict
from scanner.relay.replies import ScannerBusy

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
# Where compiled rulesets are cached (set by the composition root, shipped to every worker):
# the parent compiles a new version once, and each worker loads it in ~0.1 s instead of
# compiling it again (seconds, and hundreds of MB, for 100k terms).
RULES_CACHE_DIR: Path | None = None


def _init_worker(loader: WorkerLoader | None, data: bytes | None, filename: str,
                 limits: Limits) -> None:
    global _worker_ruleset, _worker_limits
    _worker_limits = limits
    _worker_ruleset = loader(data, filename) if (loader is not None and data is not None) else None


def worker_ruleset() -> object:
    """The ruleset loaded in this worker (for tasks)."""
    return _worker_ruleset


def load_compiled(data: bytes, filename: str) -> object:
    """The real loader: the compiled rules file, from the cache when another process (the
    parent validating it, or a sibling worker) already compiled the same bytes."""
    from scanner.rulecache import load_ruleset

    return load_ruleset(data, filename, today=dt.date.today(), cache_dir=RULES_CACHE_DIR)


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

_LEN = struct.Struct(">I")
_WORKER_MODULE = "scanner.relay.worker"


class ScanTaskError(RuntimeError):
    """The scan task raised inside the worker (exception type only: 451, never a pass)."""


class WorkerStartError(RuntimeError):
    """A scanner worker could not be started or could not load the rules."""


@dataclass(eq=False)
class _Job:
    id: int
    raw: bytes
    envelope: Envelope
    future: asyncio.Future[Verdict]
    attempts: int = 0
    timer: asyncio.TimerHandle | None = None  # queue timer while queued, scan timer after


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process, generation: int) -> None:
        self.proc = proc
        self.generation = generation
        self.job: _Job | None = None
        self.retiring = False
        self.gone = False
        self.reader: asyncio.Task[None] | None = None

    @property
    def stdin(self) -> asyncio.StreamWriter:
        assert self.proc.stdin is not None
        return self.proc.stdin


async def _read_frame(reader: asyncio.StreamReader) -> Any:
    head = await reader.readexactly(_LEN.size)
    return pickle.loads(await reader.readexactly(_LEN.unpack(head)[0]))


class ScanPool:
    """``await pool.scan(raw, envelope)`` → ``Verdict`` (or ``ScannerBusy`` under overload)."""

    def __init__(
        self,
        *,
        workers: int = 0,
        timeout: float = 20.0,
        task: WorkerTask = scan_task,
        loader: WorkerLoader | None = load_compiled,
        limits: Limits = DEFAULT_LIMITS,
        warm_timeout: float = 600.0,
        queue_timeout: float | None = None,
        on_replace: Callable[[str], None] | None = None,
    ) -> None:
        from scanner.relay.worker import reference

        self.workers = workers or os.cpu_count() or 1
        self.timeout = timeout
        self.queue_timeout = timeout if queue_timeout is None else queue_timeout
        self._task_ref = reference(task)
        self._loader_ref = reference(loader) if loader is not None else None
        # The in-scan budget ends before the outer kill so that a slow message normally gets a
        # precise unscannable reason from the scanner itself.
        self._limits = dataclasses.replace(limits, max_scan_seconds=timeout * 0.8)
        self._warm_timeout = warm_timeout
        self._on_replace = on_replace
        self._snapshot: RulesSnapshot | None = None
        self._generation = 0
        self._current: set[_Worker] = set()  # workers of the current generation
        self._all: set[_Worker] = set()  # every live worker, retiring ones included
        self._idle: list[_Worker] = []
        self._queue: collections.deque[_Job] = collections.deque()
        self._ids = 0
        self._swap_lock = asyncio.Lock()
        self._replacing: set[asyncio.Task[None]] = set()
        self._started = False
        self._closed = False
        self.replacements = 0

    @property
    def snapshot(self) -> RulesSnapshot:
        """The rules the current generation of workers runs."""
        assert self._snapshot is not None, "ScanPool.start() first"
        return self._snapshot

    @property
    def info(self) -> RulesInfo:
        assert self._snapshot is not None, "ScanPool.start() first"
        return self._snapshot.info

    @property
    def ready(self) -> bool:
        return self._started and not self._closed

    @property
    def queued(self) -> int:
        return len(self._queue)

    # -- workers -------------------------------------------------------------------------------

    async def _spawn(self, snapshot: RulesSnapshot, generation: int) -> _Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", _WORKER_MODULE,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        worker = _Worker(proc, generation)
        assert proc.stdout is not None
        try:
            init = pickle.dumps((list(sys.path), self._task_ref, self._loader_ref, snapshot.data,
                                 snapshot.filename, self._limits, RULES_CACHE_DIR),
                                protocol=pickle.HIGHEST_PROTOCOL)
            worker.stdin.write(_LEN.pack(len(init)) + init)
            await worker.stdin.drain()
            reply = await asyncio.wait_for(_read_frame(proc.stdout), self._warm_timeout)
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError) as exc:
            await self._reap(worker, kill=True)
            raise WorkerStartError(f"scanner worker did not start ({type(exc).__name__})") from exc
        except BaseException:
            await self._reap(worker, kill=True)
            raise
        if reply[0] != "ready":
            await self._reap(worker, kill=True)
            raise WorkerStartError(f"scanner worker could not load the rules ({reply[1]})")
        self._all.add(worker)
        worker.reader = spawn(self._read_loop(worker), name="scanpool.reader")
        return worker

    async def _spawn_many(self, snapshot: RulesSnapshot, generation: int) -> list[_Worker]:
        results = await asyncio.gather(
            *(self._spawn(snapshot, generation) for _ in range(self.workers)),
            return_exceptions=True)
        started = [w for w in results if isinstance(w, _Worker)]
        failed = [e for e in results if isinstance(e, BaseException)]
        if failed:
            for w in started:
                self._retire(w)
            raise failed[0]
        return started

    async def _read_loop(self, worker: _Worker) -> None:
        assert worker.proc.stdout is not None
        stdout = worker.proc.stdout
        try:
            while True:
                self._on_result(worker, await _read_frame(stdout))
        except (asyncio.IncompleteReadError, OSError, pickle.UnpicklingError, EOFError,
                ValueError, TypeError):
            pass
        finally:
            self._lost(worker, "worker_died")
            await self._reap(worker, kill=False)

    async def _reap(self, worker: _Worker, *, kill: bool) -> None:
        """Close the worker's stdin (it exits at EOF) and wait for it; kill when it lingers."""
        proc = worker.proc
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        if kill and proc.returncode is None:
            proc.kill()
        try:
            await asyncio.wait_for(proc.wait(), 5.0)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        self._all.discard(worker)

    def _retire(self, worker: _Worker) -> None:
        """No more jobs for this worker; it exits once its stdin is closed (after its job)."""
        worker.retiring = True
        self._current.discard(worker)
        if worker in self._idle:
            self._idle.remove(worker)
        if worker.job is None and worker.proc.stdin is not None:
            worker.proc.stdin.close()

    def _lost(self, worker: _Worker, reason: str) -> None:
        """The worker is gone (crashed, killed, exited); idempotent."""
        if worker.gone:
            return
        worker.gone = True
        was_current = worker in self._current
        self._current.discard(worker)
        if worker in self._idle:
            self._idle.remove(worker)
        job, worker.job = worker.job, None
        if job is not None and not job.future.done():
            if job.timer is not None:
                job.timer.cancel()
            job.attempts += 1
            if job.attempts >= 2:
                # It crashed two workers: unscannable (fail closed), never a pass.
                job.future.set_result(self._fallback("scanner_crashed"))
            else:
                self._enqueue(job, front=True)
        if was_current and not worker.retiring and not self._closed:
            self._replace(reason)

    def _replace(self, reason: str) -> None:
        self.replacements += 1
        _log.warning("scanpool.replacing", reason=reason)
        if self._on_replace is not None:
            self._on_replace(reason)
        task = spawn(self._replacement(self._generation), name="scanpool.replace")
        self._replacing.add(task)
        task.add_done_callback(self._replacing.discard)

    async def _replacement(self, generation: int) -> None:
        delay = 0.5
        while not self._closed and generation == self._generation:
            assert self._snapshot is not None
            try:
                worker = await self._spawn(self._snapshot, generation)
            except WorkerStartError as exc:
                _log.error("scanpool.replace_failed", error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            if self._closed or generation != self._generation:
                self._retire(worker)
                return
            self._current.add(worker)
            self._idle.append(worker)
            self._pump()
            return

    # -- jobs ----------------------------------------------------------------------------------

    def _enqueue(self, job: _Job, *, front: bool = False) -> None:
        loop = asyncio.get_running_loop()
        job.timer = loop.call_later(self.queue_timeout, self._queue_expired, job)
        if front:
            self._queue.appendleft(job)
        else:
            self._queue.append(job)
        self._pump()

    def _queue_expired(self, job: _Job) -> None:
        try:
            self._queue.remove(job)
        except ValueError:
            return
        if not job.future.done():
            job.future.set_exception(ScannerBusy("no scanner worker free in time"))

    def _pump(self) -> None:
        while self._idle and self._queue:
            job = self._queue.popleft()
            if job.timer is not None:
                job.timer.cancel()
            if job.future.done():
                continue  # the client went away while the message waited
            self._dispatch(self._idle.pop(), job)

    def _dispatch(self, worker: _Worker, job: _Job) -> None:
        worker.job = job
        head = pickle.dumps((job.id, job.envelope, len(job.raw)),
                            protocol=pickle.HIGHEST_PROTOCOL)
        stdin = worker.stdin
        stdin.write(_LEN.pack(len(head)) + head)
        stdin.write(job.raw)  # no copy into a pickle; a dead pipe shows up as EOF on stdout
        job.timer = asyncio.get_running_loop().call_later(self.timeout, self._expired,
                                                          worker, job)

    def _expired(self, worker: _Worker, job: _Job) -> None:
        """The scan took too long: the message gets the unscannable action; the worker dies."""
        if worker.job is not job:
            return
        worker.job = None
        if not job.future.done():
            job.future.set_result(self._fallback("max_scan_seconds"))
        if worker.proc.returncode is None:
            worker.proc.kill()
        self._lost(worker, "timeout")

    def _on_result(self, worker: _Worker, message: Any) -> None:
        job_id, kind, payload = message
        job = worker.job
        if job is None or job.id != job_id:
            return  # the job timed out and the worker is being killed
        worker.job = None
        if job.timer is not None:
            job.timer.cancel()
        if not job.future.done():
            if kind == "ok":
                job.future.set_result(payload)
            else:
                job.future.set_exception(ScanTaskError(f"scan failed in worker ({payload})"))
        if worker.retiring or worker.gone:
            self._retire(worker)
        else:
            self._idle.append(worker)
            self._pump()

    def _fallback(self, reason: str) -> Verdict:
        info = self.info
        return Verdict(
            action=info.unscannable_action,
            hits=(),
            unscannable=(Unscannable(location="message", reason=reason),),
            ruleset_version=info.version,
            reasons=(f"unscannable: {reason}",),
        )

    # -- public --------------------------------------------------------------------------------

    async def start(self, snapshot: RulesSnapshot) -> None:
        self._generation = 1
        workers = await self._spawn_many(snapshot, 1)
        self._snapshot = snapshot
        self._current = set(workers)
        self._idle = list(workers)
        self._started = True

    async def swap(self, snapshot: RulesSnapshot) -> None:
        """Hot reload: warm new workers with the new rules, switch to them, retire the old."""
        async with self._swap_lock:
            generation = self._generation + 1
            new = await self._spawn_many(snapshot, generation)
            if self._closed:
                for w in new:
                    self._retire(w)
                return
            old = list(self._current)
            self._generation, self._snapshot = generation, snapshot
            self._current = set(new)
            self._idle = list(new)
            for w in old:
                self._retire(w)  # in-flight scans finish on the old rules
            self._pump()

    async def scan(self, raw: bytes, envelope: Envelope) -> Verdict:
        if self._closed or not self._started:
            raise RuntimeError("scan pool is closed")
        self._ids += 1
        job = _Job(self._ids, raw, envelope, asyncio.get_running_loop().create_future())
        self._enqueue(job)
        return await job.future

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in list(self._replacing):
            task.cancel()
        while self._queue:
            job = self._queue.popleft()
            if job.timer is not None:
                job.timer.cancel()
            if not job.future.done():
                job.future.set_exception(RuntimeError("scan pool is closed"))
        workers = list(self._all)
        for w in workers:
            self._retire(w)
        readers = [w.reader for w in workers if w.reader is not None]
        if readers:
            _done, pending = await asyncio.wait(readers, timeout=self.timeout + 5.0)
            for w in workers:
                if w.proc.returncode is None:
                    w.proc.kill()
            if pending:
                await asyncio.wait(pending, timeout=10.0)

    def stats(self) -> dict[str, Any]:
        return {"workers": self.workers, "replacements": self.replacements,
                "queued": len(self._queue)}
