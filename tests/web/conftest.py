"""Fixtures for review-app tests: a fresh data dir with users, rules and the app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web.factories import Env, make_env


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    """An app over a temporary data dir; stores closed afterwards."""
    e = make_env(tmp_path)
    yield e
    e.store.close()
    e.accounts.close()
    e.rules.close()
