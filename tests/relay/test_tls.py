"""STARTTLS inbound (trustme CA), require_tls, and AUTH offered only over TLS."""

from __future__ import annotations

import dataclasses
import smtplib
import ssl
from collections.abc import Callable
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
