"""Watches the rules file and hot-swaps the scanner pool when its content changes.

It owns the polling loop (mtime and size every ``interval`` seconds, then a SHA-256 of the bytes
so that a touch without a change does nothing), validation in the parent before anything is
swapped, and the ``rules.reloaded`` / ``rules.reload_failed`` events. A bad file leaves the old
ruleset running; the failure event lists ``file:line`` problems and rule ids, never a term (the
``RuleError`` messages are written to that standard). Hazard: compiling a large ruleset takes
seconds; it runs in a thread so the event loop keeps serving, and the pool swap itself is one
reference assignment.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path

from scanner.errors import RuleError
from scanner.logs import get_logger
from scanner.relay.scanpool import RulesInfo, RulesSnapshot, ScanPool, compile_info

_log = get_logger("maruhi.rules")

Validator = Callable[[bytes, str], RulesInfo]


def read_snapshot(path: Path, validate: Validator = compile_info) -> RulesSnapshot:
    """Read and validate a rules file (blocking; raises ``RuleError`` or ``OSError``)."""
    data = path.read_bytes()
    info = validate(data, str(path))
    return RulesSnapshot(data=data, filename=str(path), info=info)


class RulesWatcher:
    """Polls one rules file; on a valid change, swaps the pool's ruleset."""

    def __init__(self, path: Path, pool: ScanPool, *, interval: float = 1.0,
                 validate: Validator = compile_info,
                 on_reload: Callable[[RulesInfo], None] | None = None) -> None:
        self.path = path
        self.pool = pool
        self.interval = interval
        self._validate = validate
        self._on_reload = on_reload
        self._stat: tuple[int, int] | None = None
        self._digest: str | None = None
        self.reloads = 0
        self.failures = 0

    def prime(self, data: bytes) -> None:
        """Record the content the pool started with, so it is not reloaded at once."""
        self._digest = hashlib.sha256(data).hexdigest()
        self._stat = self._current_stat()

    def _current_stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    async def check(self) -> bool:
        """One poll; True when a new ruleset was swapped in."""
        stat = self._current_stat()
        if stat is None or stat == self._stat:
            return False
        self._stat = stat
        try:
            data = await asyncio.to_thread(self.path.read_bytes)
        except OSError as exc:
            self.failures += 1
            _log.error("rules.reload_failed", file=str(self.path), error=type(exc).__name__)
            return False
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._digest:
            return False
        try:
            info = await asyncio.to_thread(self._validate, data, str(self.path))
        except RuleError as exc:
            self.failures += 1
            self._digest = digest  # do not retry the same bad bytes every second
            _log.error("rules.reload_failed", file=str(self.path),
                       problems=[str(p) for p in exc.problems][:50], kept="previous")
            return False
        await self.pool.swap(RulesSnapshot(data=data, filename=str(self.path), info=info))
        self._digest = digest
        self.reloads += 1
        _log.info("rules.reloaded", file=str(self.path), version=info.version,
                  sha256=digest[:16])
        if self._on_reload is not None:
            self._on_reload(info)
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep watching; the old rules stay active
                self.failures += 1
                _log.error("rules.reload_failed", file=str(self.path),
                           error=type(exc).__name__)
