"""Bad input and faults, one test each: the relay answers like an MTA and never loses mail."""

from __future__ import annotations

import smtplib
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog

from scanner.errors import TransientError
from tests.relay.conftest import RunningRelay
from tests.relay.fakes import Upstream, write_fake_rules
from tests.relay.test_relay import client, message


class Raw:
    """A raw SMTP client on a socket, for what smtplib refuses to send."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.greeting = self.reply()

    def reply(self) -> bytes:
        lines = []
        while True:
            line = self.file.readline()
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return b"".join(lines)

    def cmd(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> Raw:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def raw_session(port: int) -> Raw:
    r = Raw(port)
    assert r.greeting.startswith(b"220")
    return r


def talk(s: Raw, line: bytes) -> bytes:
    return s.cmd(line)


def test_garbage_commands_get_500_and_session_survives(relay: RunningRelay,
                                                       upstream: Upstream) -> None:
    """Unknown commands, binary junk and over-long lines are refused; the session continues."""
    s = raw_session(relay.port)
    assert talk(s, b"EHLO client.test").startswith(b"250")
    assert talk(s, b"FOO bar").startswith(b"500")
    assert talk(s, b"\xff\xfe\x00garbage").startswith(b"500")
    assert talk(s, b"MAIL FROM:<" + b"a" * 5000 + b">").startswith(b"500")
    assert talk(s, b"RCPT TO:<b@example.net>").startswith(b"503")
    assert talk(s, b"DATA").startswith(b"503")
    assert talk(s, b"MAIL FROM:<a@example.com>").startswith(b"250")
    s.close()


def test_declared_size_over_limit_is_refused(start_relay: Callable[..., RunningRelay]) -> None:
    """MAIL FROM with SIZE above the limit gets 552 before any data is sent."""
    relay = start_relay(max_message_bytes=10_000)
    with client(relay) as c:
        code, _ = c.mail("a@example.com", ["SIZE=20000"])
    assert code == 552


def test_actual_size_over_limit_is_refused(start_relay: Callable[..., RunningRelay],
                                           upstream: Upstream) -> None:
    """A message larger than the limit (whatever SIZE said) gets 552; the session goes on."""
    relay = start_relay(max_message_bytes=10_000)
    with client(relay) as c:
        c.mail("a@example.com")
        c.rcpt("b@example.net")
        code, _ = c.data(message(body=b"x" * 998 + b"\r\n" * 1 + (b"y" * 998 + b"\r\n") * 20))
        assert code == 552
        c.sendmail("a@example.com", ["b@example.net"], message())
    assert len(upstream.delivered) == 1


def test_too_many_recipients(start_relay: Callable[..., RunningRelay],
                             upstream: Upstream) -> None:
    """Recipients beyond max_recipients get 452 4.5.3; the accepted ones still get the mail."""
    relay = start_relay(max_recipients=3)
    with client(relay) as c:
        c.mail("a@example.com")
        codes = [c.rcpt(f"r{i}@example.net")[0] for i in range(5)]
        assert c.data(message())[0] == 250
    assert codes == [250, 250, 250, 452, 452]
    assert len(upstream.delivered[0].recipients) == 3


def test_client_stops_mid_data(relay: RunningRelay, upstream: Upstream) -> None:
    """A client that disconnects mid-DATA delivers nothing, and the relay keeps serving."""
    s = raw_session(relay.port)
    talk(s, b"EHLO client.test")
    talk(s, b"MAIL FROM:<a@example.com>")
    talk(s, b"RCPT TO:<b@example.net>")
    assert talk(s, b"DATA").startswith(b"354")
    s.send(b"Subject: half\r\n\r\nsome of the body")
    s.close()
    time.sleep(0.3)
    with client(relay) as c:
        c.sendmail("a@example.com", ["b@example.net"], message())
    assert len(upstream.delivered) == 1


def test_slowloris_data_is_cut_off(start_relay: Callable[..., RunningRelay],
                                   upstream: Upstream) -> None:
    """A client trickling DATA past data_timeout is disconnected; nothing is delivered."""
    relay = start_relay(data_timeout=1.0, command_timeout=1.0)
    s = raw_session(relay.port)
    talk(s, b"EHLO client.test")
    talk(s, b"MAIL FROM:<a@example.com>")
    talk(s, b"RCPT TO:<b@example.net>")
    assert talk(s, b"DATA").startswith(b"354")
    closed = False
    for _ in range(30):
        try:
            s.send(b"x")
            time.sleep(0.1)
        except OSError:
            closed = True
            break
    if not closed:
        s.sock.settimeout(3)
        closed = s.file.read(100) == b""
    s.close()
    assert closed
    assert upstream.delivered == []


def test_idle_command_timeout(start_relay: Callable[..., RunningRelay]) -> None:
    """A client that sends nothing is disconnected after command_timeout."""
    relay = start_relay(command_timeout=0.5)
    with raw_session(relay.port) as s:
        s.sock.settimeout(5)
        assert s.file.read(100) == b""


def test_invalid_utf8_in_addresses(relay: RunningRelay, upstream: Upstream) -> None:
    """Malformed UTF-8 in MAIL/RCPT is refused with 553 5.6.7, never relayed."""
    s = raw_session(relay.port)
    talk(s, b"EHLO client.test")
    assert talk(s, b"MAIL FROM:<a\xff\xfe@example.com> SMTPUTF8").startswith(b"553")
    assert talk(s, b"MAIL FROM:<a@example.com> SMTPUTF8").startswith(b"250")
    assert talk(s, b"RCPT TO:<b\xc3@example.net>").startswith(b"553")
    s.close()


def test_non_ascii_address_needs_smtputf8(relay: RunningRelay) -> None:
    """A UTF-8 address without the SMTPUTF8 parameter is refused (RFC 6531)."""
    with client(relay):
        pass
    with raw_session(relay.port) as s:
        s.cmd(b"EHLO client.test")
        assert s.cmd("MAIL FROM:<山田@example.com>".encode()).startswith(b"553")


def test_upstream_refusing_some_recipients(relay: RunningRelay, upstream: Upstream) -> None:
    """Each RCPT gets the upstream's own answer; the message goes to the accepted ones only."""
    with client(relay) as c:
        c.mail("a@example.com")
        ok = c.rcpt("good@example.net")
        refused = c.rcpt("refuse-me@example.net")
        deferred = c.rcpt("tempfail@example.net")
        code, _ = c.data(message())
    assert ok[0] == 250
    assert refused[0] == 550
    assert b"5.1.1" in refused[1]
    assert deferred[0] == 450
    assert code == 250
    assert upstream.delivered[0].recipients == ["good@example.net"]


def test_upstream_refusing_all_recipients(relay: RunningRelay, upstream: Upstream) -> None:
    """With every recipient refused upstream, DATA is refused too (no recipient to deliver to)."""
    with client(relay) as c:
        c.mail("a@example.com")
        assert c.rcpt("refuse@example.net")[0] == 550
        assert c.docmd("DATA")[0] == 503
    assert upstream.delivered == []


def test_upstream_down_answers_451(start_relay: Callable[..., RunningRelay],
                                   upstream: Upstream, tmp_path: Path) -> None:
    """With the upstream unreachable the client gets 451 and nothing is stored."""
    from tests.relay.conftest import relay_settings

    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()  # nothing listens there now
    rules = write_fake_rules(tmp_path / "r.json")
    relay = start_relay(settings=relay_settings(tmp_path, port, rules))
    with client(relay) as c:
        code, text = c.mail("a@example.com")
    assert code == 451
    assert text.startswith(b"4.4.1")
    store = relay.daemon.store
    assert store is not None
    assert store.list() == []


def test_upstream_4xx_on_data_answers_451(relay: RunningRelay, upstream: Upstream) -> None:
    """An upstream 4xx to DATA becomes 451 for the client (who retries); nothing stored."""
    upstream.handler.behaviour.data_reply = "452 4.3.1 Insufficient system storage"
    with client(relay) as c:
        c.mail("a@example.com")
        c.rcpt("b@example.net")
        code, text = c.data(message())
    assert code == 451
    assert text.startswith(b"4.3.1")


def test_upstream_5xx_on_data_passes_through(relay: RunningRelay, upstream: Upstream) -> None:
    """An upstream 5xx to DATA is the client's reply, code and text."""
    upstream.handler.behaviour.data_reply = "554 5.7.1 Spam refused"
    with client(relay) as c:
        c.mail("a@example.com")
        c.rcpt("b@example.net")
        assert c.data(message()) == (554, b"5.7.1 Spam refused")


def test_upstream_drops_connection_after_data(relay: RunningRelay, upstream: Upstream) -> None:
    """An upstream that closes the connection instead of answering DATA → 451, then recovery."""
    upstream.handler.behaviour.drop_after_data = True
    with client(relay) as c:
        c.mail("a@example.com")
        c.rcpt("b@example.net")
        code, _ = c.data(message())
        assert code == 451
        upstream.handler.behaviour.drop_after_data = False
        c.sendmail("a@example.com", ["b@example.net"], message())
    assert len(upstream.delivered) == 1


def test_disk_full_on_hold_answers_451(relay: RunningRelay, upstream: Upstream,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """When the quarantine cannot write (disk full), the client gets 451, never 250."""
    store = relay.daemon.store
    assert store is not None

    def full(*args: object, **kw: object) -> str:
        raise TransientError("No space left on device")

    monkeypatch.setattr(store, "hold", full)
    with client(relay) as c:
        c.mail("a@example.com")
        c.rcpt("b@example.net")
        code, text = c.data(message("hold; rules=r1"))
    assert code == 451
    assert text.startswith(b"4.3.1")
    assert upstream.delivered == []


def test_scan_timeout_fails_closed_and_replaces_worker(
        start_relay: Callable[..., RunningRelay], upstream: Upstream, tmp_path: Path) -> None:
    """A scan past the timeout gets the unscannable action (hold here); later mail still flows."""
    write_fake_rules(tmp_path / "rules.json")
    relay = start_relay(scan_kw={"timeout": 3.0})
    relay.lt.run(_set_unscannable(relay, "hold"))
    with client(relay) as c:
        c.mail("a@example.com")
        c.rcpt("b@example.net")
        slow = message(body=b"slow\r\n").replace(b"Subject:", b"X-Test-Sleep: 30\r\nSubject:")
        code, text = c.data(slow)
    assert code == 250
    assert b"held for review" in text
    qid = text.decode().rsplit(" ", 1)[1]
    store = relay.daemon.store
    assert store is not None
    assert [u.reason for u in store.get(qid).unscannable] == ["max_scan_seconds"]
    with client(relay) as c:
        c.sendmail("a@example.com", ["b@example.net"], message())
    assert len(upstream.delivered) == 1
    assert relay.daemon.pool is not None
    assert relay.daemon.pool.replacements == 1


async def _set_unscannable(relay: RunningRelay, action: str) -> None:
    import dataclasses

    from scanner.model import Action

    pool = relay.daemon.pool
    assert pool is not None
    assert pool._snapshot is not None
    info = dataclasses.replace(pool._snapshot.info, unscannable_action=Action.parse(action))
    pool._snapshot = dataclasses.replace(pool._snapshot, info=info)


def test_worker_crash_is_survived(relay: RunningRelay, upstream: Upstream) -> None:
    """A message that kills its scanner worker gets the unscannable action; the pool recovers."""
    with client(relay) as c:
        c.mail("a@example.com")
        c.rcpt("b@example.net")
        code, _ = c.data(message().replace(b"Subject:", b"X-Test-Crash: 1\r\nSubject:"))
        # Unscannable action of the fake rules is flag: relayed with the flag header.
        assert code == 250
        c.sendmail("a@example.com", ["b@example.net"], message())
    assert upstream.delivered[0].data.startswith(b"X-Maruhi-Verdict: flag\r\n")
    assert len(upstream.delivered) == 2


def test_hot_reload_swaps_rules_and_refuses_bad_ones(relay: RunningRelay,
                                                     upstream: Upstream) -> None:
    """A changed rules file is loaded without dropping the session; a bad one is refused."""
    with client(relay) as c:
        c.sendmail("a@example.com", ["b@example.net"], message())
        write_fake_rules(relay.rules, version="v2")
        deadline = time.monotonic() + 20
        while relay.daemon.pool.info.version != "v2" and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.1)
        with structlog.testing.capture_logs() as logs:
            relay.rules.write_text("{not json")
            deadline = time.monotonic() + 10
            while not any(e["event"] == "rules.reload_failed" for e in logs):
                assert time.monotonic() < deadline
                time.sleep(0.1)
        c.sendmail("a@example.com", ["b@example.net"], message("hold; rules=r1"))
    assert relay.daemon.pool is not None
    assert relay.daemon.pool.info.version == "v2"
    failed = next(e for e in logs if e["event"] == "rules.reload_failed")
    assert failed["problems"][0].startswith(str(relay.rules) + ":1:")
    store = relay.daemon.store
    assert store is not None
    assert store.list()[0].ruleset_version == "v2"


def test_max_connections(start_relay: Callable[..., RunningRelay]) -> None:
    """Connections beyond max_connections get 421 4.7.0 and are closed."""
    relay = start_relay(max_connections=2)
    a, b = raw_session(relay.port), raw_session(relay.port)
    c = Raw(relay.port)
    assert c.greeting.startswith(b"421 4.7.0")
    for s in (a, b, c):
        s.close()


def test_bare_lf_dot_does_not_end_data(relay: RunningRelay, upstream: Upstream) -> None:
    """SMTP smuggling: LF.LF inside DATA is content; upstream sees it CRLF-normalized, one mail."""
    s = raw_session(relay.port)
    talk(s, b"EHLO client.test")
    talk(s, b"MAIL FROM:<a@example.com>")
    talk(s, b"RCPT TO:<b@example.net>")
    assert talk(s, b"DATA").startswith(b"354")
    s.send(b"Subject: a\r\n\r\nfirst\n.\nMAIL FROM:<evil@example.com>\r\n.\r\n")
    assert s.reply().startswith(b"250")
    s.close()
    [got] = upstream.delivered
    assert got.sender == "a@example.com"
    assert got.data == b"Subject: a\r\n\r\nfirst\r\n.\r\nMAIL FROM:<evil@example.com>\r\n"


def test_bare_lf_reject_policy(start_relay: Callable[..., RunningRelay],
                               upstream: Upstream) -> None:
    """With bare_lf = "reject", a message with bare LF line endings is refused with 550."""
    relay = start_relay(bare_lf="reject")
    s = raw_session(relay.port)
    talk(s, b"EHLO client.test")
    talk(s, b"MAIL FROM:<a@example.com>")
    talk(s, b"RCPT TO:<b@example.net>")
    talk(s, b"DATA")
    s.send(b"Subject: a\n\nbody\n\r\n.\r\n")
    assert s.reply().startswith(b"550 5.6.11")
    s.close()
    assert upstream.delivered == []


def test_empty_message(relay: RunningRelay, upstream: Upstream) -> None:
    """A DATA with no content at all ('.' at once) is relayed as an empty message."""
    s = raw_session(relay.port)
    talk(s, b"EHLO client.test")
    talk(s, b"MAIL FROM:<a@example.com>")
    talk(s, b"RCPT TO:<b@example.net>")
    talk(s, b"DATA")
    s.send(b".\r\n")
    assert s.reply().startswith(b"250")
    s.close()
    # aiosmtplib ends DATA with CRLF: the only representable form of an empty message.
    assert upstream.delivered[0].data in (b"", b"\r\n")


def test_smtplib_error_reply_is_never_250_for_unsafe(relay: RunningRelay,
                                                     upstream: Upstream) -> None:
    """smtplib's sendmail raises for a reject: no silent acceptance."""
    with client(relay) as c, pytest.raises(smtplib.SMTPDataError):
        c.sendmail("a@example.com", ["b@example.net"], message("reject; rules=r9"))
