"""``maruhi serve`` as a process: SIGTERM drains gracefully; SIGKILL never loses a 250'd message."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from scanner.store import open_store
from tests.relay.fakes import Upstream, write_fake_rules
from tests.relay.test_relay import message

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(tmp_path: Path, upstream: Upstream, *extra: str) -> tuple[subprocess.Popen[bytes],
                                                                           int]:
    port = free_port()
    rules = write_fake_rules(tmp_path / "rules.json")
    env = dict(os.environ, MARUHI_UPSTREAM_TLS="none", MARUHI_SCAN_WORKERS="1")
    log = tmp_path / f"serve-{port}.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.relay.serve_fake", "serve", "--rules", str(rules),
             "--data-dir", str(tmp_path / "data"), "--listen", f"127.0.0.1:{port}",
             "--upstream", f"127.0.0.1:{upstream.port}", "--metrics", "off", "--no-web",
             *extra],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(100).startswith(b"220"):
                    return proc, port
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(log.read_text()) from None
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("maruhi serve did not start")


def test_sigterm_drains_in_flight_and_refuses_new(tmp_path: Path, upstream: Upstream) -> None:
    """On SIGTERM an in-flight transaction completes, new connections are refused, exit 0."""
    proc, port = start_serve(tmp_path, upstream)
    upstream.handler.behaviour.delay = 1.5  # keep the transaction in flight
    result: dict[str, object] = {}
    in_data = threading.Event()

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            c.ehlo("client.test")
            c.mail("a@example.com")
            c.rcpt("b@example.net")
            in_data.set()
            result["reply"] = c.data(message())

    t = threading.Thread(target=send)
    t.start()
    # The transaction is in flight once RCPT is answered; the upstream then holds DATA 1.5 s.
    assert in_data.wait(30)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    refused = False
    while not refused and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            time.sleep(0.05)
        except ConnectionRefusedError:
            refused = True
    assert refused, "the listening socket stayed open after SIGTERM"
    t.join(30)
    assert proc.wait(30) == 0
    reply = result["reply"]
    assert isinstance(reply, tuple)
    assert reply[0] == 250
    assert len(upstream.delivered) == 1


def test_sigkill_during_holds_loses_nothing(tmp_path: Path, upstream: Upstream) -> None:
    """Kill -9 while holds are written: every message that got 250 is in the quarantine."""
    proc, port = start_serve(tmp_path, upstream)
    accepted: list[str] = []
    stop = threading.Event()

    def sender(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
                    c.ehlo("client.test")
                    c.mail("a@example.com")
                    c.rcpt("b@example.net")
                    code, text = c.data(message("hold; rules=r1",
                                                body=f"m{n}-{i}\r\n".encode()))
                    if code == 250:
                        accepted.append(text.decode().rsplit(" ", 1)[1])
            except (OSError, smtplib.SMTPException):
                if stop.is_set():
                    return
                time.sleep(0.05)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    stop.set()
    for t in threads:
        t.join(20)
    assert accepted, "no message was held before the kill"
    # Restart on the same data directory: the quarantine is intact and complete.
    proc2, _ = start_serve(tmp_path, upstream)
    try:
        with open_store(tmp_path / "data") as store:
            held = {r.id for r in store.list(limit=100_000)}
            missing = [q for q in accepted if q not in held]
            assert missing == []
            for qid in accepted:
                assert store.raw(qid).endswith(b"\r\n")
    finally:
        proc2.send_signal(signal.SIGTERM)
        proc2.wait(30)
