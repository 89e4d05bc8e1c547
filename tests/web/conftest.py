"""Fixtures for review-app tests: a fresh data dir with users, rules and the app; for browser
tests the app served on loopback and Debian's chromium (skipped where it is not installed)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn

from tests.outbox.sink import free_port
from tests.web.factories import Env, make_env

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    """An app over a temporary data dir; stores closed afterwards."""
    e = make_env(tmp_path)
    yield e
    e.store.close()
    e.accounts.close()
    e.rules.close()


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # pragma: no cover - older uvicorn
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Env, str]]:
    """The app over real stores, served by uvicorn in a thread on a free loopback port."""
    env = make_env(tmp_path)
    port = free_port()
    server = _Server(uvicorn.Config(env.app, host="127.0.0.1", port=port, access_log=False,
                                    log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    env.clock[0] = datetime.now(UTC)  # the browser's session must not look idle
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield env, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    env.store.close()
    env.accounts.close()
    env.rules.close()


@pytest.fixture
def browser() -> Iterator[object]:
    """Headless Debian chromium; never a downloaded browser."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip("needs Debian's chromium (.ci/run installs it)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield b
        b.close()
