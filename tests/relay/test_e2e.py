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


def _rules(term: str) -> bytes:
    return (f"version: 1\nsettings:\n  internal_domains: [example.com]\nrules:\n"
            f"  - id: swap-test\n    terms: [\"{term}\"]\n    action: reject\n").encode()


def _wait_version(relay: RunningRelay, old: str) -> None:
    import time

    deadline = time.monotonic() + 30
    while relay.daemon.pool is not None and relay.daemon.pool.info.version == old:
        assert time.monotonic() < deadline, "ruleset was not swapped"
        time.sleep(0.1)


def _code(relay: RunningRelay, body: str) -> int:
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as c:
        c.ehlo("client.test")
        c.mail("bob@example.com")
        c.rcpt("x@outside.example")
        return c.data(mail(body))[0]


def test_rule_versions_from_store_and_file_are_hot_swapped(
        start_relay: Callable[..., RunningRelay], upstream: Upstream, tmp_path: Path) -> None:
    """A version activated in the rule store (web app) and a changed rules file both go live."""
    from datetime import UTC, datetime

    from scanner.rulestore import open_rulestore

    rules_file = tmp_path / "live.yaml"
    rules_file.write_bytes(_rules("Alpha Kestrel"))
    s = relay_settings(tmp_path, upstream.port, rules_file)
    relay = start_relay(settings=s, hooks=ScanHooks())
    assert relay.daemon.pool is not None
    assert _code(relay, "about Alpha Kestrel") == 550
    assert _code(relay, "about Beta Kestrel") == 250

    store = open_rulestore(tmp_path / "data")
    try:
        before = relay.daemon.pool.info.version
        store.create_version(_rules("Beta Kestrel"), "web.yaml", author="admin", reason="test",
                             now=datetime.now(UTC), activate=True)
        _wait_version(relay, before)
        assert _code(relay, "about Beta Kestrel") == 550
        assert _code(relay, "about Alpha Kestrel") == 250

        before = relay.daemon.pool.info.version
        rules_file.write_bytes(_rules("Gamma Kestrel"))
        _wait_version(relay, before)
        assert _code(relay, "about Gamma Kestrel") == 550
        history = store.history()
        assert [v.author for v in history] == ["rules-file", "admin", "rules-file"]
        assert store.active_version() == history[0]
    finally:
        store.close()


def test_relayed_secrets_are_recorded_in_the_disclosure_ledger(
        real_relay: RunningRelay, upstream: Upstream) -> None:
    """A flagged message is delivered and recorded (rule ids, recipients, no content); a clean
    message leaves no record."""
    for body in ("Here are the Fabrikam pilot results.", "Lunch on Friday?"):
        with smtplib.SMTP("127.0.0.1", real_relay.port, timeout=30) as c:
            c.sendmail("bob@example.com", ["x@outside.example"], mail(body))
    store = real_relay.daemon.store
    assert store is not None
    records = store.disclosures(rule_ids=["fabrikam-pilot", "contoso-price-2027"])
    assert [(d.sender, d.recipients, d.action.label, d.message_id) for d in records] == [
        ("bob@example.com", ("x@outside.example",), "flag", "<e2e@example.com>")]
    assert [h.rule_id for h in records[0].hits] == ["fabrikam-pilot"]
    assert len(upstream.delivered) == 2
