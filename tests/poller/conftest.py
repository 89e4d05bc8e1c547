"""Fixtures for the poller: one harness per backend (a real Dovecot, the EWS and Graph
stand-ins), a fresh SQLite store, the test ruleset."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.rules.model import CompiledRuleset
from scanner.store.sqlite import SqliteStore
from tests.poller.factories import make_ruleset
from tests.poller.harness import Harness

BACKENDS = ["imap", "ews", "graph"]


def _make(name: str) -> Harness:
    if name == "imap":
        from tests.poller.dovecot import available
        from tests.poller.imap_harness import ImapHarness

        if not available():
            pytest.skip("dovecot not installed (apt-get install dovecot-imapd; .ci/run does)")
        return ImapHarness()
    if name == "ews":
        from tests.poller.ews_harness import EwsHarness

        return EwsHarness()
    from tests.poller.graph_harness import GraphHarness

    return GraphHarness()


@pytest.fixture(params=BACKENDS)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """A fresh server per test (isolation is cheap: Dovecot starts in ~50 ms)."""
    h = _make(request.param)
    try:
        yield h
    finally:
        h.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "store")
    yield s
    s.close()


@pytest.fixture(scope="session")
def ruleset() -> CompiledRuleset:
    return make_ruleset()
