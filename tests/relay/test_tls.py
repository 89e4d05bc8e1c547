"""STARTTLS inbound (trustme CA), require_tls, AUTH only over TLS; STARTTLS to the upstream."""

from __future__ import annotations

import dataclasses
import smtplib
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from scanner.config import Secret
from tests.relay.conftest import RunningRelay, relay_settings
from tests.relay.fakes import Upstream, write_fake_rules
from tests.relay.test_relay import message


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_relay(ca: trustme.CA, tmp_path: Path, upstream: Upstream,
              start_relay: Callable[..., RunningRelay]) -> Callable[..., RunningRelay]:
    cert = ca.issue_cert("maruhi.test", "127.0.0.1")
    pem = tmp_path / "cert.pem"
    key = tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(pem))
    cert.private_key_pem.write_to_path(str(key))

    def start(**relay_kw: object) -> RunningRelay:
        rules = write_fake_rules(tmp_path / "rules.json")
        s = relay_settings(tmp_path, upstream.port, rules)
        s = dataclasses.replace(s, relay=dataclasses.replace(s.relay, tls_cert=pem, tls_key=key,
                                                             **relay_kw))
        return start_relay(settings=s)

    return start


def client_ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def test_starttls_then_send(tls_relay: Callable[..., RunningRelay], ca: trustme.CA,
                            upstream: Upstream) -> None:
    """A client upgrades with STARTTLS (certificate verified against the CA) and sends."""
    relay = tls_relay()
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as c:
        c.ehlo("client.test")
        assert c.has_extn("starttls")
        c.starttls(context=client_ctx(ca))
        c.ehlo("client.test")
        c.sendmail("a@example.com", ["b@example.net"], message())
    assert len(upstream.delivered) == 1


def test_require_tls_refuses_plaintext_mail(tls_relay: Callable[..., RunningRelay]) -> None:
    """With require_tls, MAIL before STARTTLS gets 530."""
    relay = tls_relay(require_tls=True)
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as c:
        c.ehlo("client.test")
        assert c.mail("a@example.com")[0] == 530


def test_auth_only_over_tls(tls_relay: Callable[..., RunningRelay], ca: trustme.CA,
                            upstream: Upstream) -> None:
    """AUTH is not offered in clear text; over TLS good credentials pass, bad ones get 535."""
    relay = tls_relay(auth_users={"app": Secret("s3cret")}, auth_required=True)
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as c:
        c.ehlo("client.test")
        assert not c.has_extn("auth")
        assert c.mail("a@example.com")[0] == 530
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as c:
        c.starttls(context=client_ctx(ca))
        c.ehlo("client.test")
        assert c.has_extn("auth")
        with pytest.raises(smtplib.SMTPAuthenticationError):
            c.login("app", "wrong")
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as c:
        c.starttls(context=client_ctx(ca))
        c.ehlo("client.test")
        c.login("app", "s3cret")
        c.sendmail("a@example.com", ["b@example.net"], message())
    assert len(upstream.delivered) == 1


# -- outbound: STARTTLS towards the upstream ---------------------------------------------------


@pytest.fixture
def tls_upstream(ca: trustme.CA) -> Iterator[Upstream]:
    """An upstream sink that offers STARTTLS with a certificate from the test CA."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    up = Upstream(tls_context=ctx).start()
    yield up
    up.stop()


def _outbound(tmp_path: Path, up: Upstream, tls: str, ca_file: Path | None,
              start_relay: Callable[..., RunningRelay]) -> RunningRelay:
    rules = write_fake_rules(tmp_path / "rules.json")
    s = relay_settings(tmp_path, up.port, rules)
    s = dataclasses.replace(s, upstream=dataclasses.replace(s.upstream, tls=tls,
                                                            ca_file=ca_file))
    return start_relay(settings=s)


def _send_one(relay: RunningRelay) -> int:
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as c:
        c.ehlo("client.test")
        code, _ = c.mail("a@example.com")  # the upstream transaction opens here
        if code != 250:
            return code
        assert c.rcpt("b@example.net")[0] == 250
        return c.data(message())[0]


def _ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    pem = tmp_path / "upstream-ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    return pem


def test_required_tls_verifies_against_ca_file(
        ca: trustme.CA, tls_upstream: Upstream, tmp_path: Path,
        start_relay: Callable[..., RunningRelay]) -> None:
    """tls = required: STARTTLS to the upstream, certificate verified against ca_file."""
    relay = _outbound(tmp_path, tls_upstream, "required", _ca_file(ca, tmp_path), start_relay)
    assert _send_one(relay) == 250
    assert [d.tls for d in tls_upstream.delivered] == [True]


def test_required_tls_refuses_unknown_certificate(
        tls_upstream: Upstream, tmp_path: Path,
        start_relay: Callable[..., RunningRelay]) -> None:
    """tls = required with a CA that did not sign the upstream's certificate: 451, not sent."""
    other = _ca_file(trustme.CA(), tmp_path)
    relay = _outbound(tmp_path, tls_upstream, "required", other, start_relay)
    assert _send_one(relay) == 451
    assert tls_upstream.delivered == []


def test_required_tls_refuses_upstream_without_starttls(
        ca: trustme.CA, upstream: Upstream, tmp_path: Path,
        start_relay: Callable[..., RunningRelay]) -> None:
    """tls = required and the upstream does not offer STARTTLS: 451, nothing sent in clear."""
    relay = _outbound(tmp_path, upstream, "required", _ca_file(ca, tmp_path), start_relay)
    assert _send_one(relay) == 451
    assert upstream.delivered == []


def test_opportunistic_uses_tls_when_offered(
        ca: trustme.CA, tls_upstream: Upstream, tmp_path: Path,
        start_relay: Callable[..., RunningRelay]) -> None:
    """tls = opportunistic: STARTTLS when the upstream offers it."""
    relay = _outbound(tmp_path, tls_upstream, "opportunistic", _ca_file(ca, tmp_path),
                      start_relay)
    assert _send_one(relay) == 250
    assert [d.tls for d in tls_upstream.delivered] == [True]


def test_opportunistic_falls_back_only_when_not_offered(
        ca: trustme.CA, upstream: Upstream, tls_upstream: Upstream, tmp_path: Path,
        start_relay: Callable[..., RunningRelay]) -> None:
    """Opportunistic sends in clear to an upstream without STARTTLS, never after a bad cert."""
    relay = _outbound(tmp_path, upstream, "opportunistic", _ca_file(ca, tmp_path), start_relay)
    assert _send_one(relay) == 250
    assert [d.tls for d in upstream.delivered] == [False]
    (tmp_path / "other").mkdir()
    other = _ca_file(trustme.CA(), tmp_path / "other")
    relay2 = _outbound(tmp_path / "other", tls_upstream, "opportunistic", other, start_relay)
    assert _send_one(relay2) == 451
    assert tls_upstream.delivered == []
