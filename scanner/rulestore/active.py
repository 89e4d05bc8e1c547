"""The active rule version, compiled once per version, for in-process scanning.

Owns the cache from a rule version id to its ``CompiledRuleset`` (the check API and dry runs scan
in the web process); it must not scan or log. Hazard: compiling 100k terms takes seconds, so it
happens once per version under a lock (concurrent callers wait for the same build instead of
building twice), and a request always gets a complete ruleset: the reference is swapped whole.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from scanner.rules.compile import compile_ruleset
from scanner.rules.load import parse_rules_bytes
from scanner.rules.model import CompiledRuleset, RulesetSpec
from scanner.rulestore.base import RuleStore


class ActiveRuleset:
    """``get()`` returns the compiled active version (or None before any activation)."""

    def __init__(self, store: RuleStore, *, today: Callable[[], dt.date] = dt.date.today) -> None:
        self._store = store
        self._today = today
        self._lock = threading.Lock()
        self._current: tuple[int, CompiledRuleset] | None = None
        self._specs: dict[int, RulesetSpec] = {}

    def get(self) -> CompiledRuleset | None:
        version = self._store.active_version()
        if version is None:
            return None
        current = self._current
        if current is not None and current[0] == version.id:
            return current[1]
        with self._lock:
            current = self._current
            if current is not None and current[0] == version.id:
                return current[1]
            compiled = compile_ruleset(self.spec(version.id), today=self._today())
            self._current = (version.id, compiled)
            return compiled

    def spec(self, version_id: int) -> RulesetSpec:
        """The parsed spec of any stored version (cached: versions never change)."""
        spec = self._specs.get(version_id)
        if spec is None:
            version = self._store.get(version_id)
            spec = parse_rules_bytes(self._store.source(version_id), version.filename)
            if len(self._specs) > 32:  # bounded: specs of big rule sets are large
                self._specs.clear()
            self._specs[version_id] = spec
        return spec
