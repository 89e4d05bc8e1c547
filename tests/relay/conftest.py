"""Fixtures for relay tests: a real upstream sink and real relay daemons on loopback ports."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scanner.app import Daemon, ScanHooks
from scanner.config import (
    HostPort,
    MetricsSettings,
    RelaySettings,
    ScanSettings,
    Settings,
    StoreSettings,
    UpstreamSettings,
    WebAppSettings,
)
from tests.relay.fakes import (
    LoopThread,
    Upstream,
    fake_loader,
    fake_validate,
    header_verdict_task,
    write_fake_rules,
)

FAKE_HOOKS = ScanHooks(task=header_verdict_task, loader=fake_loader, validate=fake_validate,
                       rulestore=False)


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[Upstream]:
    up = Upstream().start()
    yield up
    up.stop()


@pytest.fixture
def upstream(upstream_server: Upstream) -> Upstream:
    """The shared upstream sink, with default behaviour and no delivered mail."""
    upstream_server.reset()
    return upstream_server


@dataclass
class RunningRelay:
    daemon: Daemon
    lt: LoopThread
    rules: Path

    @property
    def port(self) -> int:
        assert self.daemon.relay_address is not None
        return self.daemon.relay_address[1]

    @property
    def metrics_port(self) -> int:
        assert self.daemon.metrics_address is not None
        return self.daemon.metrics_address[1]

    def stop(self) -> None:
        self.lt.run(self.daemon.stop(), timeout=60)
        self.lt.close()


def relay_settings(tmp_path: Path, upstream_port: int, rules: Path, **relay_kw: Any) -> Settings:
    return Settings(
        relay=RelaySettings(listen=HostPort("127.0.0.1", 0), hostname="maruhi.test",
                            drain_seconds=10.0, **relay_kw),
        upstream=UpstreamSettings(address=HostPort("127.0.0.1", upstream_port), tls="none",
                                  timeout=5.0),
        scan=ScanSettings(rules=rules, workers=1, timeout=5.0, reload_interval=0.2),
        store=StoreSettings(data_dir=tmp_path / "data"),
        metrics=MetricsSettings(listen=HostPort("127.0.0.1", 0)),
        web=WebAppSettings(listen=None),
    )


@pytest.fixture
def start_relay(tmp_path: Path, upstream: Upstream) -> Iterator[Callable[..., RunningRelay]]:
    """Factory: start a relay daemon (fake header-driven scan) with relay setting overrides."""
    running: list[RunningRelay] = []

    def start(*, settings: Settings | None = None, hooks: ScanHooks = FAKE_HOOKS,
              scan_kw: dict[str, Any] | None = None, **relay_kw: Any) -> RunningRelay:
        rules = write_fake_rules(tmp_path / "rules.json", owners={"r1": "owner@example.com"})
        s = settings or relay_settings(tmp_path, upstream.port, rules, **relay_kw)
        if scan_kw:
            s = dataclasses.replace(s, scan=dataclasses.replace(s.scan, **scan_kw))
        lt = LoopThread()
        daemon = lt.run(_make(s, hooks))
        try:
            lt.run(daemon.start(), timeout=120)
        except BaseException:
            lt.run(daemon.stop())
            lt.close()
            raise
        r = RunningRelay(daemon, lt, s.scan.rules or rules)
        running.append(r)
        return r

    yield start
    for r in running:
        r.stop()


async def _make(settings: Settings, hooks: ScanHooks) -> Daemon:
    # Daemon creates asyncio primitives: construct it on the loop that will run it.
    return Daemon(settings, hooks=hooks)


@pytest.fixture
def relay(start_relay: Callable[..., RunningRelay]) -> RunningRelay:
    """A relay with default limits and the fake scan."""
    return start_relay()
