"""Prometheus metrics of the daemon and the small HTTP endpoint that serves them.

It owns the metric names and labels (verdicts, outcomes, error kinds: a closed set, never an
address, rule term or subject) and an asyncio HTTP server with ``/metrics``, ``/healthz`` (the
process is alive) and ``/readyz`` (the relay listens, the scanner pool is up). Each ``Metrics``
has its own registry so that tests can run several daemons in one process. Hazard: the gauges
read from the store (quarantine size, outbox depth) do blocking I/O, so the exposition is
generated in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from scanner.logs import get_logger

_log = get_logger("maruhi.metrics")

StatsSource = Callable[[], tuple[dict[str, int], int, int]]
"""Blocking: (quarantine count by status, outbox pending, outbox failed)."""


class _StoreCollector(Collector):
    def __init__(self, source: StatsSource) -> None:
        self._source = source

    def collect(self) -> Iterable[GaugeMetricFamily]:
        try:
            by_status, pending, failed = self._source()
        except Exception as exc:  # a scrape must not fail because the store is busy
            _log.warning("metrics.store_stats_failed", error=type(exc).__name__)
            return
        q = GaugeMetricFamily("maruhi_quarantine_messages", "Quarantined messages by status",
                              labels=["status"])
        for status, count in sorted(by_status.items()):
            q.add_metric([status], count)
        yield q
        o = GaugeMetricFamily("maruhi_outbox_items", "Outbox items by state", labels=["state"])
        o.add_metric(["pending"], pending)
        o.add_metric(["failed"], failed)
        yield o


class Metrics:
    """All metrics of one daemon instance."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter("maruhi_messages", "Messages finished, by verdict and outcome",
                                ["verdict", "outcome"], registry=r)
        self.scan_seconds = Histogram(
            "maruhi_scan_seconds", "Time to scan one message (process pool round trip)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20),
            registry=r)
        self.message_seconds = Histogram(
            "maruhi_message_seconds", "End of DATA to the reply: scan + hold or relay",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r)
        self.message_bytes = Histogram(
            "maruhi_message_bytes", "Size of received messages",
            buckets=(1e3, 1e4, 1e5, 1e6, 1e7, 5e7), registry=r)
        self.upstream_errors = Counter("maruhi_upstream_errors", "Upstream failures by kind",
                                       ["kind"], registry=r)
        self.connections = Gauge("maruhi_smtp_connections", "Open client connections",
                                 registry=r)
        self.refused_connections = Counter("maruhi_smtp_connections_refused",
                                           "Connections refused over max_connections",
                                           registry=r)
        self.rules_reloads = Counter("maruhi_rules_reloads", "Rules reloads by result",
                                     ["result"], registry=r)
        self.scanpool_replacements = Counter("maruhi_scanpool_replacements",
                                             "Scanner pools replaced (stuck or dead worker)",
                                             registry=r)

    def add_store(self, source: StatsSource) -> None:
        self.registry.register(_StoreCollector(source))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsServer:
    """``/metrics``, ``/healthz``, ``/readyz`` over HTTP/1.0-style one-request connections."""

    def __init__(self, metrics: Metrics, ready: Callable[[], bool]) -> None:
        self.metrics = metrics
        self.ready = ready
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._handle, host, port)
        sockname: Any = self._server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            parts = request.split(b" ", 2)
            path = parts[1].split(b"?", 1)[0] if len(parts) > 1 else b""
            if path == b"/metrics":
                body = await asyncio.to_thread(self.metrics.render)
                status, ctype = "200 OK", "text/plain; version=0.0.4; charset=utf-8"
            elif path == b"/healthz":
                status, ctype, body = "200 OK", "text/plain", b"ok\n"
            elif path == b"/readyz":
                ok = self.ready()
                status = "200 OK" if ok else "503 Service Unavailable"
                ctype, body = "text/plain", b"ready\n" if ok else b"not ready\n"
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"not found\n"
            head = (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
            writer.write(head.encode("ascii") + body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            pass
        finally:
            writer.close()
            with suppress(ConnectionError):
                await writer.wait_closed()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
