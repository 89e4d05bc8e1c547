"""What unmodified exchangelib sends through ``EwsSource`` to the EWS stand-in (built from the
schema, not Exchange): no probes, batched GetItem, impersonation, throttling and 401 mapping."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scanner.poller.ews import EwsSource
from scanner.poller.source import CredentialError, CursorInvalidError, ThrottledError
from tests.poller.ews_harness import EwsHarness
from tests.poller.factories import PASSWORD, make_message


@pytest.fixture
def ews() -> Iterator[EwsHarness]:
    h = EwsHarness()
    yield h
    h.close()


def test_no_autodiscover_version_or_auth_probe(ews: EwsHarness) -> None:
    """With endpoint, version and auth type configured, exchangelib sends neither ConvertId
    (version guess) nor an unauthenticated probe: every request is an operation we asked for."""
    ews.deliver("sentitems", make_message())
    source = ews.source()
    try:
        changes = source.changes(ews.sent, None, limit=100)
        source.fetch(ews.sent, changes.items)
    finally:
        source.close()
    assert ews.server.requests["ConvertId"] == 0
    assert ews.server.requests["401"] == 0
    assert set(ews.server.requests) <= {"GetFolder", "SyncFolderItems", "GetItem"}


def test_getitem_is_batched_and_mime_fetched_once(ews: EwsHarness) -> None:
    """A page of 30 changes costs one GetItem, and each item's MIME is downloaded once."""
    for _ in range(30):
        ews.deliver("sentitems", make_message())
    source = ews.source()
    try:
        changes = source.changes(ews.sent, None, limit=100)
        items = source.fetch(ews.sent, changes.items)
    finally:
        source.close()
    assert len(items) == 30
    assert ews.server.requests["GetItem"] == 1
    assert set(ews.server.fetched_mime.values()) == {1}


def test_sync_state_pages_and_resumes(ews: EwsHarness) -> None:
    """SyncFolderItems pages by MaxChangesReturned; the returned state resumes after the page,
    and a state the server invalidated raises CursorInvalidError."""
    for _ in range(5):
        ews.deliver("sentitems", make_message())
    source = ews.source()
    try:
        first = source.changes(ews.sent, None, limit=3)
        second = source.changes(ews.sent, first.cursor, limit=3)
        assert (len(first.items), first.more, len(second.items), second.more) == (3, True, 2, False)
        ews.invalidate_cursors()
        with pytest.raises(CursorInvalidError):
            source.changes(ews.sent, second.cursor, limit=3)
    finally:
        source.close()


def test_server_busy_becomes_throttled_with_back_off(ews: EwsHarness) -> None:
    """ErrorServerBusy with BackOffMilliseconds beyond FaultTolerance's max_wait surfaces as
    ThrottledError carrying the server's back-off."""
    ews.server.throttle(100, back_off_ms=5000)
    source = ews.source()
    try:
        with pytest.raises(ThrottledError) as info:
            source.changes(ews.sent, None, limit=10)
    finally:
        source.close()
    assert info.value.retry_after == pytest.approx(5.0)


def test_short_server_busy_is_absorbed_by_fault_tolerance(ews: EwsHarness) -> None:
    """A back-off shorter than max_wait is waited out inside exchangelib: the call succeeds."""
    ews.deliver("sentitems", make_message())
    ews.server.throttle(1, back_off_ms=50)
    source = ews.source()
    try:
        changes = source.changes(ews.sent, None, limit=10)
    finally:
        source.close()
    assert len(changes.items) == 1


def test_wrong_password_is_a_credential_error_at_once(ews: EwsHarness) -> None:
    """A 401 is reported as CredentialError after one attempt, not retried as throttling."""
    source = ews.source(password="nope")
    try:
        with pytest.raises(CredentialError):
            source.changes(ews.sent, None, limit=10)
    finally:
        source.close()
    assert ews.server.requests["401"] == 1


def test_impersonation_sends_the_exchange_impersonation_header(ews: EwsHarness) -> None:
    """access_type=impersonation adds ExchangeImpersonation (as captured in 017-*.req.xml)."""
    import dataclasses

    seen: list[bytes] = []
    original = ews.server.dispatch

    def spy(body: bytes) -> tuple[int, bytes]:
        seen.append(body)
        return original(body)

    ews.server.dispatch = spy  # type: ignore[method-assign]
    settings = dataclasses.replace(ews.settings(), access_type="impersonation")
    source = EwsSource(settings)
    try:
        source.changes(ews.sent, None, limit=10)
    finally:
        source.close()
    assert seen
    assert all(b"ExchangeImpersonation" in body for body in seen)
    assert all(PASSWORD.encode() not in body for body in seen)
