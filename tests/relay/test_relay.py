"""The relay's outcomes over real sockets: pass, flag, hold, reject, replies, envelope, logs."""

from __future__ import annotations

import asyncio
import smtplib
import urllib.request

import aiosmtplib
import pytest
import structlog

from tests.relay.conftest import RunningRelay
from tests.relay.fakes import Upstream

MSG = (b"From: a@example.com\r\nTo: b@example.net\r\nSubject: quarterly\r\n"
       b"Message-ID: <m1@example.com>\r\n\r\nbody line\r\n..leading dot\r\n.\r\n")  # no end


def message(verdict: str | None = None, body: bytes = b"hello\r\n") -> bytes:
    head = b"From: a@example.com\r\nTo: b@example.net\r\nSubject: secret plans\r\n"
    head += b"Message-ID: <t1@example.com>\r\n"
    if verdict:
        head += b"X-Test-Verdict: " + verdict.encode() + b"\r\n"
    return head + b"\r\n" + body


def client(relay: RunningRelay) -> smtplib.SMTP:
    c = smtplib.SMTP("127.0.0.1", relay.port, timeout=20)
    c.ehlo("client.test")
    return c


def test_pass_is_relayed_byte_identical_with_upstream_reply(relay: RunningRelay,
                                                            upstream: Upstream) -> None:
    """A passed message reaches the upstream unchanged and the client sees the upstream's 250."""
    raw = message(body=b"line one\r\n.dot-stuffed line\r\n..two dots\r\n\r\n")
    with client(relay) as c:
        c.mail("a@example.com", [f"SIZE={len(raw)}", "BODY=8BITMIME"])
        c.rcpt("b@example.net")
        c.rcpt("c@example.org")
        code, text = c.data(raw)
    assert code == 250
    assert b"queued as UP1" in text
    [got] = upstream.delivered
    assert got.data == raw
    assert got.sender == "a@example.com"
    assert got.recipients == ["b@example.net", "c@example.org"]
    assert got.mail_options == [f"SIZE={len(raw)}", "BODY=8BITMIME"]


def test_smtputf8_envelope_passes_through(relay: RunningRelay, upstream: Upstream) -> None:
    """SMTPUTF8 addresses and the parameter reach the upstream as sent."""
    raw = message()
    with client(relay) as c:
        c.mail("山田@例え.jp", ["SMTPUTF8", "BODY=8BITMIME"])
        c.rcpt("b@example.net")
        code, _ = c.data(raw)
    assert code == 250
    [got] = upstream.delivered
    assert got.sender == "山田@例え.jp"
    assert "SMTPUTF8" in got.mail_options


def test_null_sender_is_relayed(relay: RunningRelay, upstream: Upstream) -> None:
    """Bounces (MAIL FROM:<>) pass through with the null reverse-path."""
    with client(relay) as c:
        assert c.docmd("MAIL FROM:<>")[0] == 250
        assert c.docmd("RCPT TO:<b@example.net>")[0] == 250
        code, _ = c.data(message())
    assert code == 250
    assert upstream.delivered[0].sender == "<>"


def test_flag_prepends_rule_headers_only(relay: RunningRelay, upstream: Upstream) -> None:
    """A flagged message carries X-Maruhi-Verdict/Rules (rule ids) and is otherwise identical."""
    raw = message("flag; rules=r1,r2")
    with client(relay) as c:
        c.sendmail("a@example.com", ["b@example.net"], raw)
    [got] = upstream.delivered
    assert got.data == b"X-Maruhi-Verdict: flag\r\nX-Maruhi-Rules: r1, r2\r\n" + raw


def test_hold_stores_durably_and_answers_held(relay: RunningRelay, upstream: Upstream) -> None:
    """A held message is in the quarantine byte-identical, and the 250 names its id."""
    raw = message("hold; rules=r1")
    with client(relay) as c:
        c.mail("a@example.com")
        c.rcpt("b@example.net")
        code, text = c.data(raw)
    assert code == 250
    assert text.startswith(b"2.0.0 held for review as ")
    qid = text.decode().rsplit(" ", 1)[1]
    store = relay.daemon.store
    assert store is not None
    rec = store.get(qid)
    assert rec.rule_ids == ("r1",)
    assert rec.recipients == ("b@example.net",)
    assert rec.message_id == "<t1@example.com>"
    assert store.raw(qid) == raw
    assert upstream.delivered == []


def test_reject_names_rule_ids_never_terms(relay: RunningRelay, upstream: Upstream) -> None:
    """A rejected message gets 550 5.7.1 with the rule ids; nothing reaches the upstream."""
    with client(relay) as c:
        c.mail("a@example.com")
        c.rcpt("b@example.net")
        code, text = c.data(message("reject; rules=price-2027"))
    assert code == 550
    assert text.startswith(b"5.7.1 ")
    assert b"price-2027" in text
    assert b"secret" not in text
    assert upstream.delivered == []


def test_ehlo_advertises_esmtp_extensions(relay: RunningRelay) -> None:
    """EHLO offers SIZE with the limit, 8BITMIME, SMTPUTF8, PIPELINING (no AUTH without TLS)."""
    with client(relay) as c:
        feats = c.esmtp_features
    assert feats["size"] == str(50 * 1024 * 1024)
    for ext in ("8bitmime", "smtputf8", "pipelining"):
        assert ext in feats
    assert "auth" not in feats
    assert "starttls" not in feats


def test_pipelined_session_with_several_messages(relay: RunningRelay, upstream: Upstream) -> None:
    """Commands pipelined after the final dot are read by the command loop, not lost."""
    raw = message()
    with client(relay) as c:
        sock = c.sock
        assert sock is not None
        batch = (b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n" + raw
                 + b".\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n"
                 + raw + b".\r\nNOOP\r\n")
        sock.sendall(batch)
        codes = [c.getreply()[0] for _ in range(9)]
    assert codes == [250, 250, 354, 250, 250, 250, 354, 250, 250]
    assert [d.recipients for d in upstream.delivered] == [["b@example.net"], ["c@example.net"]]


def test_rset_and_second_transaction(relay: RunningRelay, upstream: Upstream) -> None:
    """RSET abandons the upstream transaction; a new one on the same session works."""
    with client(relay) as c:
        c.mail("a@example.com")
        c.rcpt("x@example.net")
        assert c.rset()[0] == 250
        c.sendmail("a@example.com", ["y@example.net"], message())
    assert [d.recipients for d in upstream.delivered] == [["y@example.net"]]


def test_aiosmtplib_client(relay: RunningRelay, upstream: Upstream) -> None:
    """An asyncio client (aiosmtplib) sends through the relay."""
    raw = message()

    async def send() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=relay.port, start_tls=False)
        await smtp.connect()
        errors, _ = await smtp.sendmail("a@example.com", ["b@example.net"], raw)
        assert errors == {}
        await smtp.quit()

    asyncio.run(send())
    assert upstream.delivered[0].data == raw


def test_one_canonical_log_line_without_content(relay: RunningRelay,
                                                upstream: Upstream) -> None:
    """Each message logs one scan.finished event with ids and sizes, never subject or body."""
    raw = message("flag; rules=r1", body=b"Project Falcon numbers\r\n")
    merge = structlog.contextvars.merge_contextvars
    with structlog.testing.capture_logs(processors=[merge]) as logs, client(relay) as c:
        c.sendmail("a@example.com", ["b@example.net"], raw)
    finished = [e for e in logs if e["event"] == "scan.finished"]
    assert len(finished) == 1
    ev = finished[0]
    assert ev["verdict"] == "flag"
    assert ev["rules"] == ["r1"]
    assert ev["size"] == len(raw)
    assert ev["outcome"] == "relayed"
    assert ev["reply_code"] == 250
    assert ev["message_id"]
    assert ev["peer"].startswith("127.0.0.1:")
    assert "scan_ms" in ev
    assert "total_ms" in ev
    text = repr(logs)
    assert "secret plans" not in text
    assert "Falcon" not in text


def test_metrics_health_and_ready(relay: RunningRelay, upstream: Upstream) -> None:
    """/metrics counts messages by verdict; /healthz and /readyz answer 200."""
    with client(relay) as c:
        c.sendmail("a@example.com", ["b@example.net"], message("flag; rules=r1"))
    base = f"http://127.0.0.1:{relay.metrics_port}"
    body = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    assert 'maruhi_messages_total{outcome="relayed",verdict="flag"} 1.0' in body
    assert "maruhi_scan_seconds_bucket" in body
    assert "maruhi_quarantine_messages" in body
    assert urllib.request.urlopen(base + "/healthz", timeout=10).status == 200
    assert urllib.request.urlopen(base + "/readyz", timeout=10).status == 200


@pytest.mark.parametrize("verdict", ["pass", "flag", "hold", "reject"])
def test_swaks_client(relay: RunningRelay, upstream: Upstream, verdict: str, tmp_path) -> None:
    """swaks (a real command-line SMTP client) gets the expected reply class for each verdict."""
    import shutil
    import subprocess

    swaks = shutil.which("swaks")
    if swaks is None:
        pytest.skip("swaks not installed (apt-get install swaks)")
    eml = tmp_path / "m.eml"
    eml.write_bytes(message(f"{verdict}; rules=r1"))
    proc = subprocess.run(
        [swaks, "--server", "127.0.0.1", "--port", str(relay.port), "--from", "a@example.com",
         "--to", "b@example.net", "--data", f"@{eml}", "--helo", "client.test",
         "--timeout", "20"],
        capture_output=True, text=True, timeout=60, check=False)
    expected = {"pass": "<~  250 2.0.0 Ok", "flag": "<~  250 2.0.0 Ok",
                "hold": "250 2.0.0 held for review", "reject": "550 5.7.1"}[verdict]
    out = proc.stdout.replace("<-", "<~")
    assert expected in out, out
