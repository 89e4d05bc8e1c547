"""The EWS stand-in (built from the schema, not Exchange) answers every request exchangelib
sent in the captured reference run, and exchangelib's own probes (401 auth, ConvertId)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from exchangelib import DELEGATE, Account, Configuration, Credentials  # type: ignore[import-untyped]
from lxml import etree

from tests.poller.ews_standin import EwsStandIn, M, S, _req

REQUESTS = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "ews-requests"
CAPTURED = sorted(REQUESTS.glob("*.req.xml"))


@pytest.fixture
def standin() -> Iterator[EwsStandIn]:
    server = EwsStandIn({"svc": "pw"}).start()
    server.state.ensure_mailbox("alice@example.test")
    yield server
    server.stop()


def _post(server: EwsStandIn, body: bytes, user: str = "svc:pw") -> requests.Response:
    auth = "Basic " + base64.b64encode(user.encode()).decode()
    return requests.post(
        server.url,
        data=body,
        headers={"Authorization": auth, "Content-Type": "text/xml"},
        timeout=10,
    )


@pytest.mark.skipif(not CAPTURED, reason=f"reference requests not found in {REQUESTS}")
@pytest.mark.parametrize("path", CAPTURED, ids=[p.name for p in CAPTURED])
def test_captured_request_gets_a_schema_shaped_answer(standin: EwsStandIn, path: Path) -> None:
    """Each captured request is answered 200 with `<m:{Op}Response>` whose messages carry a
    ResponseCode — never "operation not supported" (ids from the capture may not exist here:
    then the code is the matching not-found error, as Exchange answers)."""
    body = path.read_bytes()
    operation = etree.QName(_req(etree.fromstring(body), f"{{{S}}}Body")[0]).localname
    reply = _post(standin, body)
    assert reply.status_code == 200
    root = etree.fromstring(reply.content)
    response = root.find(f"{{{S}}}Body/{{{M}}}{operation}Response")
    assert response is not None
    codes = [e.text for e in response.iter(f"{{{M}}}ResponseCode")]
    assert codes
    assert "ErrorInvalidOperation" not in codes


def test_missing_or_wrong_credentials_get_a_basic_challenge(standin: EwsStandIn) -> None:
    """Unauthenticated or wrongly authenticated requests get 401 with WWW-Authenticate."""
    body = CAPTURED[0].read_bytes() if CAPTURED else b"<x/>"
    anonymous = requests.post(standin.url, data=body, timeout=10)
    wrong = _post(standin, body, user="svc:nope")
    for reply in (anonymous, wrong):
        assert reply.status_code == 401
        assert reply.headers["WWW-Authenticate"].startswith("Basic")


def test_exchangelib_probes_work_when_nothing_is_configured(standin: EwsStandIn) -> None:
    """Without auth type and version, exchangelib probes (401 challenge, ConvertId) and still
    finds Basic and Exchange 2016 — what the poller's explicit settings avoid."""
    config = Configuration(service_endpoint=standin.url, credentials=Credentials("svc", "pw"))
    account = Account("alice@example.test", config=config, autodiscover=False, access_type=DELEGATE)
    try:
        assert account.protocol.auth_type == "basic"
        assert account.version.api_version == "Exchange2016"
        assert account.sent.name == "Sent Items"
    finally:
        account.protocol.close()
    assert standin.requests["401"] >= 1
    assert standin.requests["ConvertId"] == 1
