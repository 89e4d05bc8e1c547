"""``maruhi serve`` as a process with the real scan and rules: hold, notice, release by the CLI
delivered by the daemon's outbox, reject after hold, web app up, restart with quarantine intact."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from scanner.rulestore import open_rulestore
from tests.relay.fakes import Delivered, Upstream
from tests.relay.test_process import free_port

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "rules" / "example-en.yaml"


def _maruhi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scanner.cli.main", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)


def _serve(tmp_path: Path, upstream: Upstream, web_port: int) -> tuple[subprocess.Popen[bytes],
                                                                        int]:
    port = free_port()
    env = dict(os.environ, MARUHI_UPSTREAM_TLS="none", MARUHI_SCAN_WORKERS="1",
               MARUHI_RELAY_HOSTNAME="maruhi.test")
    log = open(tmp_path / f"serve-{port}.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner.cli.main", "serve", "--rules", str(RULES), "--data-dir",
         str(tmp_path / "data"), "--listen", f"127.0.0.1:{port}", "--upstream",
         f"127.0.0.1:{upstream.port}", "--metrics", "off", "--web", f"127.0.0.1:{web_port}"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log)
    log.close()
    _wait(lambda: _greets(port) or _died(proc, tmp_path), 60, "maruhi serve did not start")
    return proc, port


def _greets(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=2) as c:
            return c.noop()[0] == 250
    except OSError:
        return False


def _died(proc: subprocess.Popen[bytes], tmp_path: Path) -> bool:
    if proc.poll() is not None:
        logs = "".join(p.read_text() for p in tmp_path.glob("serve-*.log"))
        raise AssertionError(f"maruhi serve exited {proc.returncode}: {logs[-2000:]}")
    return False


def _wait(cond: Callable[[], object], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0


def _mail(body: str, n: int) -> bytes:
    return (f"From: bob@example.com\r\nTo: x@outside.example\r\nSubject: update {n}\r\n"
            f"Message-ID: <e2e-{n}@example.com>\r\n\r\n{body}\r\n").encode()


def _send(port: int, raw: bytes) -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("client.test")
        c.mail("bob@example.com")
        c.rcpt("x@outside.example")
        code, text = c.data(raw)
    return code, text.decode()


def _to(upstream: Upstream, rcpt: str) -> list[Delivered]:
    return [d for d in upstream.delivered if d.recipients == [rcpt]]


def test_hold_release_reject_and_restart(tmp_path: Path, upstream: Upstream) -> None:
    """Held mail is noticed, released via the CLI and delivered byte-identical by the daemon."""
    web_port = free_port()
    proc, port = _serve(tmp_path, upstream, web_port)
    data = str(tmp_path / "data")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/login", timeout=10) as resp:
            assert resp.status == 200

        held = _mail("Status of Project Bluebird attached.", 1)
        code, text = _send(port, held)
        assert code == 250
        assert "held for review as" in text
        qid = text.rsplit(" ", 1)[1]
        _wait(lambda: _to(upstream, "bob@example.com"), 20, "no hold notice")
        notice = _to(upstream, "bob@example.com")[0].data
        assert b"Bluebird" not in notice
        assert _to(upstream, "x@outside.example") == []

        out = _maruhi("quarantine", "release", qid, "--data-dir", data, "--reason", "fine",
                      "--no-deliver")
        assert out.returncode == 0, out.stderr
        _wait(lambda: _to(upstream, "x@outside.example"), 20, "release not delivered")
        released = _to(upstream, "x@outside.example")
        assert len(released) == 1
        assert released[0].data == held
        assert released[0].sender == "bob@example.com"

        code, text = _send(port, _mail("Project Bluebird, second try.", 2))
        assert code == 250
        qid2 = text.rsplit(" ", 1)[1]
        _wait(lambda: len(_to(upstream, "bob@example.com")) == 2, 20, "no second hold notice")
        out = _maruhi("quarantine", "reject", qid2, "--data-dir", data, "--reason", "no",
                      "--no-deliver")
        assert out.returncode == 0, out.stderr
        _wait(lambda: len(_to(upstream, "bob@example.com")) == 3, 20, "no reject notice")
        assert len(_to(upstream, "x@outside.example")) == 1
    finally:
        _stop(proc)

    proc, port = _serve(tmp_path, upstream, web_port)
    try:
        out = _maruhi("quarantine", "list", "--data-dir", data, "--json")
        assert out.returncode == 0, out.stderr
        status = {r["id"]: r["status"] for r in json.loads(out.stdout)}
        assert status == {qid: "released", qid2: "rejected"}
        shown = subprocess.run(
            [sys.executable, "-m", "scanner.cli.main", "quarantine", "show", qid, "--data-dir",
             data, "--raw"], cwd=REPO, capture_output=True, timeout=60, check=True)
        assert shown.stdout == held
        time.sleep(1.5)  # a poll of the rules file and the store: nothing to import or swap
        assert len(_to(upstream, "x@outside.example")) == 1
    finally:
        _stop(proc)
    rules = open_rulestore(tmp_path / "data")
    try:
        # The unchanged rules file was imported once, not again at the restart.
        assert [v.author for v in rules.history()] == ["rules-file"]
    finally:
        rules.close()
