"""Watches where the rules come from and hot-swaps the scanner pool when they change.

Two sources. Without a rule store (test doubles with their own rules format), the rules file is
the truth: a changed file is validated and swapped in. With the data directory's rule store (the
normal case, shared with the review web app), the store's active version is the truth: a changed
rules file is imported as a new, activated version (so the web app's history shows it), and the
store's active version id is polled, so a version activated or rolled back in the web app is
swapped in the same way. Polling: mtime and size every ``interval`` seconds, then a SHA-256 of
the bytes so that a touch without a change does nothing; the active version id is one indexed
read. Events ``rules.reloaded`` / ``rules.reload_failed`` / ``rules.imported``; a bad ruleset
leaves the old one running, and the failure event lists ``file:line`` problems and rule ids, never
a term (``RuleError`` messages are written to that standard). Hazard: compiling a large ruleset
takes seconds; it runs in a thread so the event loop keeps serving, and the swap itself warms the
new workers before switching.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from scanner.errors import RuleError
from scanner.logs import get_logger
from scanner.relay.scanpool import RulesInfo, RulesSnapshot, ScanPool, compile_info
from scanner.rulestore.base import RuleStore, RuleVersion

_log = get_logger("maruhi.rules")

Validator = Callable[[bytes, str], RulesInfo]

FILE_AUTHOR = "rules-file"
"""Author of the versions imported from the rules file (the web app's history shows it)."""


def read_snapshot(path: Path, validate: Validator = compile_info) -> RulesSnapshot:
    """Read and validate a rules file (blocking; raises ``RuleError`` or ``OSError``)."""
    data = path.read_bytes()
    info = validate(data, str(path))
    return RulesSnapshot(data=data, filename=str(path), info=info)


def import_rules_file(store: RuleStore, path: Path, data: bytes,
                      now: datetime | None = None) -> RuleVersion | None:
    """Blocking: store the file's bytes as a new active version, unless they are what was last
    imported from this file (so a restart does not undo an activation made in the web app).
    Raises ``RuleError`` (nothing stored) for an invalid file."""
    name = str(path)
    for version in store.history(limit=1000):
        if version.author == FILE_AUTHOR and version.filename == name:
            if store.source(version.id) == data:
                return None
            break
    return store.create_version(data, name, author=FILE_AUTHOR,
                                reason="rules file changed on disk", now=now or datetime.now(UTC),
                                activate=True)


def store_snapshot(store: RuleStore, validate: Validator = compile_info
                   ) -> tuple[int, RulesSnapshot] | None:
    """Blocking: the active version's id and validated snapshot, or None without one."""
    version = store.active_version()
    if version is None:
        return None
    data = store.source(version.id)
    info = validate(data, version.filename)
    return version.id, RulesSnapshot(data=data, filename=version.filename, info=info)


class RulesWatcher:
    """Polls the rules file (and the rule store, when given); swaps the pool on a valid change."""

    def __init__(self, path: Path | None, pool: ScanPool, *, interval: float = 1.0,
                 validate: Validator = compile_info,
                 on_reload: Callable[[RulesInfo], None] | None = None,
                 store: RuleStore | None = None) -> None:
        self.path = path
        self.pool = pool
        self.interval = interval
        self.store = store
        self._validate = validate
        self._on_reload = on_reload
        self._stat: tuple[int, int] | None = None
        self._digest: str | None = None
        self._active_id: int | None = None
        self._refused_id: int | None = None
        self.reloads = 0
        self.failures = 0

    def prime(self, data: bytes | None, active_id: int | None = None) -> None:
        """Record what the pool started with, so it is not reloaded at once."""
        if data is not None and self.path is not None:
            self._digest = hashlib.sha256(data).hexdigest()
            self._stat = self._current_stat()
        self._active_id = active_id

    def _current_stat(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _failed(self, source: str, exc: BaseException) -> None:
        self.failures += 1
        if isinstance(exc, RuleError):
            _log.error("rules.reload_failed", source=source,
                       problems=[str(p) for p in exc.problems][:50], kept="previous")
        else:
            _log.error("rules.reload_failed", source=source, error=type(exc).__name__,
                       kept="previous")

    async def check(self) -> bool:
        """One poll; True when a new ruleset was swapped in."""
        swapped = await self._check_file()
        if self.store is not None:
            swapped = await self._check_store() or swapped
        return swapped

    async def _check_file(self) -> bool:
        path = self.path
        stat = self._current_stat()
        if path is None or stat is None or stat == self._stat:
            return False
        self._stat = stat
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            self._failed(str(path), exc)
            return False
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._digest:
            return False
        self._digest = digest  # do not retry the same bad bytes every second
        if self.store is not None:
            try:
                version = await asyncio.to_thread(import_rules_file, self.store, path, data)
            except Exception as exc:
                self._failed(str(path), exc)
                return False
            if version is not None:
                _log.info("rules.imported", file=str(path), store_version=version.id)
            return False  # the store poll swaps it in
        try:
            info = await asyncio.to_thread(self._validate, data, str(path))
        except RuleError as exc:
            self._failed(str(path), exc)
            return False
        await self._swap(RulesSnapshot(data=data, filename=str(path), info=info),
                         source=str(path), sha256=digest[:16])
        return True

    async def _check_store(self) -> bool:
        store = self.store
        assert store is not None
        version = await asyncio.to_thread(store.active_version)
        if version is None or version.id in (self._active_id, self._refused_id):
            return False
        try:
            data = await asyncio.to_thread(store.source, version.id)
            info = await asyncio.to_thread(self._validate, data, version.filename)
        except RuleError as exc:
            self._refused_id = version.id
            self._failed(f"store version {version.id}", exc)
            return False
        await self._swap(RulesSnapshot(data=data, filename=version.filename, info=info),
                         source=f"store version {version.id}", store_version=version.id)
        self._active_id = version.id
        return True

    async def _swap(self, snapshot: RulesSnapshot, **event: object) -> None:
        await self.pool.swap(snapshot)
        self.reloads += 1
        _log.info("rules.reloaded", version=snapshot.info.version, **event)
        if self._on_reload is not None:
            self._on_reload(snapshot.info)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep watching; the old rules stay active
                self._failed(str(self.path) if self.path else "store", exc)
