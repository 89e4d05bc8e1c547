"""End to end with the real scan engine and rules/example-en.yaml: pass, flag, hold, reject."""

from __future__ import annotations

import dataclasses
import smtplib
from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.app import ScanHooks
from tests.relay.conftest import RunningRelay, relay_settings
from tests.relay.fakes import Upstream

RULES = Path(__file__).resolve().parents[2] / "rules" / "example-en.yaml"


@pytest.fixture
def real_relay(start_relay: Callable[..., RunningRelay], upstream: Upstream,
               tmp_path: Path) -> RunningRelay:
    s = relay_settings(tmp_path, upstream.port, RULES)
    s = dataclasses.replace(s, scan=dataclasses.replace(s.scan, timeout=20.0))
    return start_relay(settings=s, hooks=ScanHooks())


def mail(body: str) -> bytes:
    return (f"From: bob@example.com\r\nTo: x@outside.example\r\nSubject: update\r\n"
            f"Message-ID: <e2e@example.com>\r\n\r\n{body}\r\n").encode()


@pytest.mark.parametrize(("body", "code", "delivered", "check"), [
    ("Lunch on Friday?", 250, True, None),
    ("Here are the Fabrikam pilot results.", 250, True, b"X-Maruhi-Rules: fabrikam-pilot"),
    ("Status of Project Bluebird attached.", 250, False, b"held for review as"),
    ("The price is USD 1,284,500 net.", 550, False, b"contoso-price-2027"),
])
def test_real_rules(real_relay: RunningRelay, upstream: Upstream, body: str, code: int,
                    delivered: bool, check: bytes | None) -> None:
    """Each example rule's action happens over SMTP; replies name rule ids, never terms."""
    with smtplib.SMTP("127.0.0.1", real_relay.port, timeout=30) as c:
        c.ehlo("client.test")
        c.mail("bob@example.com")
        c.rcpt("x@outside.example")
        got_code, text = c.data(mail(body))
    assert got_code == code
    assert bool(upstream.delivered) == delivered
    if check is not None:
        where = upstream.delivered[0].data if delivered else text
        assert check in where
    assert b"Bluebird" not in text
    assert b"1,284,500" not in text
