"""The compiled-ruleset cache: hits, invalidation, private files, pruning, bad files."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest

from scanner.errors import RuleError
from scanner.rulecache import KEEP, cache_key, load_ruleset

RULES = b"version: 1\nrules:\n  - id: a\n    terms: [Project Falcon]\n    action: hold\n"
TODAY = dt.date(2026, 11, 26)


def test_second_load_comes_from_cache_with_todays_date(tmp_path: Path) -> None:
    """The first load writes a private cache file; the next one reads it and sets as_of."""
    cache = tmp_path / "cache"
    first = load_ruleset(RULES, "r.yaml", today=TODAY, cache_dir=cache)
    files = list(cache.glob("ruleset-*.pickle"))
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    later = dt.date(2027, 1, 1)
    second = load_ruleset(RULES, "r.yaml", today=later, cache_dir=cache)
    assert second.version == first.version
    assert second.as_of == later
    assert list(second.matcher.find("project falcon")) == [(0, 0, 14)]


def test_key_changes_with_content_and_engine() -> None:
    """Different bytes or a different engine never share a cache entry."""
    assert cache_key(RULES, "r.yaml", None) != cache_key(RULES + b"\n", "r.yaml", None)
    assert cache_key(RULES, "r.yaml", "pyahocorasick") != cache_key(RULES, "r.yaml", "hyperscan")


def test_invalid_rules_are_never_cached(tmp_path: Path) -> None:
    """A bad file raises every time and leaves nothing in the cache."""
    with pytest.raises(RuleError):
        load_ruleset(b"version: 1\nrules: [{id: a}]\n", "r.yaml", today=TODAY,
                     cache_dir=tmp_path)
    assert list(tmp_path.glob("ruleset-*")) == []


def test_corrupt_or_foreign_cache_file_is_ignored(tmp_path: Path) -> None:
    """A truncated cache file or one writable by others is recompiled, not trusted."""
    load_ruleset(RULES, "r.yaml", today=TODAY, cache_dir=tmp_path)
    (path,) = tmp_path.glob("ruleset-*.pickle")
    path.write_bytes(b"\x80\x05garbage")
    assert load_ruleset(RULES, "r.yaml", today=TODAY, cache_dir=tmp_path).rules[0].id == "a"
    os.chmod(path, 0o666)
    assert load_ruleset(RULES, "r.yaml", today=TODAY, cache_dir=tmp_path).rules[0].id == "a"


def test_only_recent_entries_are_kept(tmp_path: Path) -> None:
    """Old versions' cache files (terms in clear) are pruned to the newest few."""
    for n in range(KEEP + 3):
        load_ruleset(RULES + f"# {n}\n".encode(), "r.yaml", today=TODAY, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("ruleset-*.pickle"))) == KEEP
