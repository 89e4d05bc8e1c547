"""The relay's hot-path shortcuts give exactly what the slow stock code gives; the worker pool."""

from __future__ import annotations

import asyncio
import types
from pathlib import Path
from typing import Any

import aiosmtplib.protocol
import pytest
from aiosmtpd.smtp import SMTP

from scanner.aio import spawn
from scanner.model import Envelope
from scanner.relay import replies
from scanner.relay.replies import ScannerBusy
from scanner.relay.scanpool import RulesSnapshot, ScanPool
from scanner.relay.server import RelayConfig, RelayHandler, RelayServer, RelaySMTP
from scanner.relay.upstream import UpstreamConfig, UpstreamPool, data_payload
from tests.relay.fakes import fake_loader, fake_validate, header_verdict_task
from tests.relay.test_relay import message


def _comparable(value: Any) -> Any:
    if isinstance(value, types.MethodType):
        return ("method", value.__func__)
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return tuple(_comparable(v) for v in value)
    if isinstance(value, asyncio.StreamReader | asyncio.AbstractEventLoop | asyncio.Future):
        return type(value)
    return value


async def _two_protocols() -> tuple[RelaySMTP, RelaySMTP]:
    handler = RelayHandler(
        config=RelayConfig(hostname="maruhi.test", auth_users={"u": "p"}),
        scan=_never_scan, upstream=UpstreamPool(UpstreamConfig("127.0.0.1", 9)), store=None,
        rules_info=_no_info)
    server = RelayServer(handler)
    return server._factory(), server._factory()


async def _never_scan(raw: bytes, envelope: Envelope) -> Any:
    raise AssertionError("not called")


def _no_info() -> Any:
    raise AssertionError("not called")


def test_fast_init_matches_aiosmtpd() -> None:
    """A connection built by the cached fast path has the stock constructor's state."""
    slow, fast = asyncio.run(_two_protocols())
    assert set(vars(slow)) == set(vars(fast))
    for key, value in vars(slow).items():
        if key.startswith("_stream_reader") or key in ("_source_traceback",):
            continue
        assert _comparable(value) == _comparable(vars(fast)[key]), key
    # Bound methods are bound to their own connection, not to the first one.
    assert all(m.__self__ is fast for m in fast._smtp_methods.values())
    assert fast._auth_methods["PLAIN"].method.__self__ is fast


@pytest.mark.parametrize("arg", [
    "<a@b.example>", "<a@b.example> SIZE=100 BODY=8BITMIME", "<a.b+c@d-e.example>  X=1",
    "<a@b.example>SIZE=1", "<>", "<a..b@c.example>", "<a@b.example>  ", "<a@[192.0.2.1]>",
    '<"q r"@b.example>', "<@relay.example:a@b.example>", "<a@b.example.>",
    "<a@b.example> (comment) SIZE=3", "<a@b.example>\t SIZE=3", "a@b.example",
    "<ü@b.example>", "<a@b.example",
])
def test_getaddr_fast_path_matches_parser(arg: str) -> None:
    """The plain-address shortcut returns what aiosmtpd's RFC 5322 parser returns."""
    stock = SMTP.__new__(SMTP)
    relay = RelaySMTP.__new__(RelaySMTP)
    assert relay._getaddr(arg) == stock._getaddr(arg)


@pytest.mark.parametrize("raw", [
    b"Subject: x\r\n\r\nhello\r\n", b".starts with a dot\r\n..two\r\n.\r\nend\r\n",
    b"no final newline", b"bare\nlf\r\n", b"bare\rcr\r\n", b"", b"\r\n.\r\n",
])
def test_data_payload_matches_aiosmtplib(raw: bytes) -> None:
    """The upstream DATA payload equals aiosmtplib's normalized, dot-stuffed one (or defers)."""
    expected = aiosmtplib.protocol.PERIOD_REGEX.sub(
        b"..", aiosmtplib.protocol.normalize_message_line_endings(raw))
    got = data_payload(raw)
    if b"\n" in raw.replace(b"\r\n", b"") or b"\r" in raw.replace(b"\r\n", b""):
        assert got is None
    else:
        assert got == expected


def _snapshot(tmp_path: Path, version: str) -> RulesSnapshot:
    data = f'{{"version": "{version}"}}'.encode()
    return RulesSnapshot(data=data, filename=str(tmp_path / "r.json"),
                         info=fake_validate(data, "r.json"))


def _pool(**kw: Any) -> ScanPool:
    return ScanPool(workers=1, task=header_verdict_task, loader=fake_loader, **kw)


ENV = Envelope(sender="a@example.com", recipients=("b@example.net",))


def test_overload_answers_busy_not_unscannable(tmp_path: Path) -> None:
    """A message that waits past the queue timeout gets ScannerBusy (451), not a verdict."""
    slow = message().replace(b"Subject:", b"X-Test-Sleep: 1.5\r\nSubject:")

    async def run() -> None:
        pool = _pool(timeout=5.0, queue_timeout=0.3)
        await pool.start(_snapshot(tmp_path, "v1"))
        try:
            first = spawn(pool.scan(slow, ENV))
            await asyncio.sleep(0.1)
            with pytest.raises(ScannerBusy):
                await pool.scan(message(), ENV)
            assert (await first).action.label == "pass"
            assert pool.replacements == 0
        finally:
            await pool.close()

    asyncio.run(run())
    assert replies.for_exception(ScannerBusy("x"))[0].startswith("451 4.3.0")


def test_swap_lets_in_flight_scan_finish_on_old_rules(tmp_path: Path) -> None:
    """During a hot swap the in-flight scan finishes on v1, the next one runs on v2."""
    slow = message().replace(b"Subject:", b"X-Test-Sleep: 1.0\r\nSubject:")

    async def run() -> None:
        pool = _pool(timeout=5.0)
        await pool.start(_snapshot(tmp_path, "v1"))
        try:
            first = spawn(pool.scan(slow, ENV))
            await asyncio.sleep(0.2)
            await pool.swap(_snapshot(tmp_path, "v2"))
            second = await pool.scan(message(), ENV)
            assert (await first).ruleset_version == "v1"
            assert second.ruleset_version == "v2"
            assert pool.info.version == "v2"
        finally:
            await pool.close()
        assert pool._all == set()

    asyncio.run(run())
