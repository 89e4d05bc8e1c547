"""Poller benchmark: initial sync of one big Sent Items folder, then steady-state polling of
many mailboxes, against the loopback stand-ins (EWS, Graph) and a real Dovecot (IMAP).

    .venv/bin/python -m tests.bench.bench_poller [--quick] [--backends ews,graph,imap]

Initial sync: ``--items`` (default 10 000) messages in one folder, 1 % of them disclosures; one
``poll_once`` drains it. Steady state: ``--mailboxes`` (default 200) mailboxes, already synced;
each round 20 % of them get one new message, then every mailbox is polled once (16 passes at a
time, as ``max_concurrency`` in production). Reported: items/s scanned, protocol requests per
item, and two checks that fail the run: GetItem/$batch/FETCH is batched (far fewer requests
than items), and no item's MIME is fetched twice. Bounded: fixed counts, no open-ended loops.
The store is the real SQLite store (synchronous=FULL) in a temp dir; ``scan()`` runs in a
thread with a small ruleset. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from scanner.poller.loop import FolderPoller, LoopOptions
from scanner.poller.source import FolderKind, MailSource, WatchedFolder
from scanner.store.sqlite import SqliteStore
from tests.poller.factories import make_message, make_ruleset

BATCH = 100
CONCURRENCY = 16


@dataclass
class Result:
    backend: str
    phase: str
    items: int
    seconds: float
    requests: int
    fetch_requests: int
    max_mime_fetches: int

    def row(self) -> str:
        rate = self.items / self.seconds if self.seconds else 0.0
        per = self.requests / self.items if self.items else 0.0
        return (
            f"| {self.backend} | {self.phase} | {self.items} | {self.seconds:.2f} | {rate:,.0f} "
            f"| {per:.3f} | {self.fetch_requests} | {self.max_mime_fetches} |"
        )


def message(i: int, mailbox: str) -> bytes:
    leak = i % 100 == 0
    return make_message(
        sender=mailbox,
        to=("cfo@rival.example",) if leak else ("buyer@acme.example",),
        body=("Project Falcon numbers" if leak else "weekly report ") + "x" * 1500,
        message_id=f"<bench-{i}-{mailbox}>",
    )


# -- backends: start a server, fill mailboxes, make sources, read counters ---------------------


class Bench:
    name: str
    sent: str

    def fill(self, mailbox: str, raws: list[bytes]) -> None: ...
    def source(self) -> MailSource: ...
    def counters(self) -> tuple[int, int, int]:
        """(all requests, MIME-fetching requests, highest MIME fetch count of any item)"""
        raise NotImplementedError

    def close(self) -> None: ...


class EwsBench(Bench):
    name, sent = "ews", "sentitems"

    def __init__(self) -> None:
        from tests.poller.ews_harness import EwsHarness

        self.h = EwsHarness()
        self.shared: MailSource | None = None

    def fill(self, mailbox: str, raws: list[bytes]) -> None:
        state = self.h.server.state
        folder = state.folder(mailbox, "sentitems")
        for raw in raws:
            state.create_item(
                mailbox, folder, raw, subject="s", message_id=_mid(raw), sender=mailbox, to=_to(raw)
            )

    def source(self) -> MailSource:
        self.shared = self.shared or self.h.source()
        return self.shared

    def counters(self) -> tuple[int, int, int]:
        r = self.h.server.requests
        return sum(r.values()), r["GetItem"], max(self.h.server.fetched_mime.values(), default=0)

    def close(self) -> None:
        if self.shared:
            self.shared.close()
        self.h.close()


class GraphBench(Bench):
    name, sent = "graph", "sentitems"

    def __init__(self) -> None:
        from tests.poller.graph_harness import GraphHarness

        self.h = GraphHarness()
        self.shared: MailSource | None = None

    def fill(self, mailbox: str, raws: list[bytes]) -> None:
        self.h.server.ensure_mailbox(mailbox)
        folder = self.h.server.folder(mailbox, "sentitems")
        assert folder is not None
        for raw in raws:
            self.h.server.add_message(
                mailbox,
                folder,
                raw,
                subject="s",
                message_id=_mid(raw),
                sender=mailbox,
                to=_to(raw),
                cc=(),
                bcc=(),
            )

    def source(self) -> MailSource:
        self.shared = self.shared or self.h.source()
        return self.shared

    def counters(self) -> tuple[int, int, int]:
        r = self.h.server.requests
        calls = sum(v for k, v in r.items() if k not in ("token", "openid"))
        return calls, r["batch"], max(self.h.server.fetched_mime.values(), default=0)

    def close(self) -> None:
        if self.shared:
            self.shared.close()
        self.h.close()


class ImapBench(Bench):
    """Dovecot: one ImapSource (connection) per mailbox, as in production."""

    name, sent = "imap", "Sent"

    def __init__(self, mailboxes: list[str]) -> None:
        from tests.poller.dovecot import Dovecot
        from tests.poller.factories import PASSWORD

        self.root = Path(tempfile.mkdtemp(prefix="maruhi-bench-dovecot-"))
        self.password = PASSWORD
        self.server = Dovecot(self.root, users=dict.fromkeys(mailboxes, PASSWORD)).start()
        self.sources: list[Any] = []

    def fill(self, mailbox: str, raws: list[bytes]) -> None:
        import imapclient  # type: ignore[import-untyped]

        c = imapclient.IMAPClient("127.0.0.1", port=self.server.port, ssl=False)
        c.login(mailbox, self.password)
        for start in range(0, len(raws), 500):
            c.multiappend("Sent", raws[start : start + 500])
        c.logout()

    def source_for(self, mailbox: str) -> MailSource:
        from scanner.config import Secret
        from scanner.poller.imap import ImapAccount, ImapSource

        src = ImapSource(
            ImapAccount("127.0.0.1", self.server.port, mailbox, Secret(self.password), tls="none")
        )
        self.sources.append(src)
        return src

    def counters(self) -> tuple[int, int, int]:
        # Dovecot cannot count per message for us: FETCH BODY[] goes once per UID because the
        # cursor moves past it and the run checks scanned == items (each scanned once).
        total = sum(s.requests for s in self.sources)
        return total, sum(s.mime_requests for s in self.sources), 1

    def close(self) -> None:
        for s in self.sources:
            s.close()
        self.server.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _mid(raw: bytes) -> str:
    return raw.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()


def _to(raw: bytes) -> tuple[str, ...]:
    return (raw.split(b"\r\nTo: ", 1)[1].split(b"\r\n", 1)[0].decode(),)


# -- phases -------------------------------------------------------------------------------------


def _poller(
    bench: Bench,
    source: MailSource,
    mailbox: str,
    store: SqliteStore,
    rules: Callable[[], Any],
    gate: asyncio.Semaphore | None = None,
) -> FolderPoller:
    return FolderPoller(
        source=source,
        folder=WatchedFolder(mailbox, bench.sent, FolderKind.SENT),
        store=store,
        rules=rules,
        options=LoopOptions(batch=BATCH),
        gate=gate,
    )


def run_initial(
    bench: Bench, items: int, store: SqliteStore, rules: Callable[[], Any], source: MailSource
) -> Result:
    mailbox = "big@example.co.jp"
    bench.fill(mailbox, [message(i, mailbox) for i in range(items)])
    poller = _poller(bench, source, mailbox, store, rules)
    before = bench.counters()
    started = time.perf_counter()
    report = asyncio.run(poller.poll_once())
    seconds = time.perf_counter() - started
    after = bench.counters()
    if report.scanned != items:
        raise SystemExit(f"{bench.name}: scanned {report.scanned} of {items}")
    if len(report.incidents) != math.ceil(items / 100):
        raise SystemExit(f"{bench.name}: {len(report.incidents)} incidents")
    return Result(
        bench.name,
        f"initial sync {items}",
        items,
        seconds,
        after[0] - before[0],
        after[1] - before[1],
        after[2],
    )


def run_steady(
    bench: Bench,
    mailboxes: list[str],
    rounds: int,
    store: SqliteStore,
    rules: Callable[[], Any],
    sources: dict[str, MailSource],
) -> Result:
    for m in mailboxes:
        bench.fill(m, [message(i, m) for i in range(5)])

    async def one_round(pollers: list[FolderPoller]) -> int:
        reports = await asyncio.gather(*(p.poll_once() for p in pollers))
        return sum(r.scanned for r in reports)

    async def main() -> tuple[int, float, tuple[int, int, int]]:
        gate = asyncio.Semaphore(CONCURRENCY)
        pollers = [_poller(bench, sources[m], m, store, rules, gate) for m in mailboxes]
        await one_round(pollers)  # warm-up: sessions, folder ids, the first 5 items each
        before = bench.counters()
        scanned, elapsed = 0, 0.0
        for r in range(rounds):
            for i, m in enumerate(mailboxes):
                if i % 5 == r % 5:
                    await asyncio.to_thread(bench.fill, m, [message(1000 + r, m)])
            started = time.perf_counter()
            scanned += await one_round(pollers)
            elapsed += time.perf_counter() - started
        after = bench.counters()
        return scanned, elapsed, (after[0] - before[0], after[1] - before[1], after[2])

    scanned, elapsed, (requests, fetches, worst) = asyncio.run(main())
    expected = sum(1 for r in range(rounds) for i in range(len(mailboxes)) if i % 5 == r % 5)
    if scanned != expected:
        raise SystemExit(f"{bench.name}: steady state scanned {scanned}, expected {expected}")
    per_round = elapsed / rounds
    print(
        f"  {bench.name}: {len(mailboxes)} mailboxes, one polling round takes "
        f"{per_round * 1000:.0f} ms ({requests / rounds / len(mailboxes):.2f} requests "
        f"per mailbox per round)"
    )
    return Result(
        bench.name,
        f"steady {len(mailboxes)} mailboxes x{rounds}",
        scanned,
        elapsed,
        requests,
        fetches,
        worst,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 000 items, 20 mailboxes")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--mailboxes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", default="ews,graph,imap")
    args = parser.parse_args()
    # One log line per item would measure the terminal: warnings and errors only.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    items = 1_000 if args.quick else args.items
    count = 20 if args.quick else args.mailboxes
    ruleset = make_ruleset()
    results: list[Result] = []
    boxes = [f"user{i:03d}@example.co.jp" for i in range(count)]
    for name in args.backends.split(","):
        tmp = Path(tempfile.mkdtemp(prefix="maruhi-bench-store-"))
        store = SqliteStore(tmp)
        bench: Bench
        try:
            if name == "imap":
                imap = ImapBench(["big@example.co.jp", *boxes])
                bench = imap
                big = imap.source_for("big@example.co.jp")
                sources = {m: imap.source_for(m) for m in boxes}
            else:
                bench = EwsBench() if name == "ews" else GraphBench()
                big = bench.source()
                sources = {m: bench.source() for m in boxes}
            try:
                results.append(run_initial(bench, items, store, lambda: ruleset, big))
                results.append(
                    run_steady(bench, boxes, args.rounds, store, lambda: ruleset, sources)
                )
            finally:
                bench.close()
        finally:
            store.close()
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(
        "| backend | phase | items scanned | seconds | items/s | requests/item "
        "| MIME-fetch requests | max MIME fetches of one item |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(r.row())
    # Initial sync: MIME comes in batches (EWS/IMAP: one request per 100-item page, Graph:
    # one $batch per 20). Steady state: never more fetch requests than new items. Never the
    # same item's MIME twice.
    failed = [
        f"{r.backend} {r.phase}"
        for r in results
        if r.max_mime_fetches > 1
        or r.fetch_requests
        > (math.ceil(r.items / 20) if r.phase.startswith("initial") else r.items)
    ]
    if failed:
        raise SystemExit(f"batching or fetch-once violated: {failed}")


if __name__ == "__main__":
    main()
