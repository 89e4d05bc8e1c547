"""``GraphSource`` (real httpx + real msal) against the Graph stand-in (not Microsoft's
service): delta paging, $batch MIME, one token for many calls, 429/Retry-After, 410, 401."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scanner.poller.graph import GraphSource
from scanner.poller.source import CredentialError, CursorInvalidError, ThrottledError
from tests.poller.factories import make_message
from tests.poller.graph_harness import GraphHarness


@pytest.fixture
def graph() -> Iterator[GraphHarness]:
    h = GraphHarness()
    yield h
    h.close()


@pytest.fixture
def source(graph: GraphHarness) -> Iterator[GraphSource]:
    s = GraphSource(graph.settings())
    yield s
    s.close()


def test_delta_pages_then_only_new_items(graph: GraphHarness, source: GraphSource) -> None:
    """The initial delta round pages with nextLink; the deltaLink then yields only new mail."""
    for _ in range(5):
        graph.deliver("sentitems", make_message())
    first = source.changes(graph.sent, None, limit=3)
    second = source.changes(graph.sent, first.cursor, limit=3)
    assert (len(first.items), first.more, len(second.items), second.more) == (3, True, 2, False)
    assert source.changes(graph.sent, second.cursor, limit=3).items == ()
    graph.deliver("sentitems", make_message())
    assert len(source.changes(graph.sent, second.cursor, limit=3).items) == 1


def test_mime_comes_in_batches_of_twenty_with_one_token(
    graph: GraphHarness, source: GraphSource
) -> None:
    """45 items cost three $batch calls, each MIME is fetched once, and msal asks the token
    endpoint once for the whole run (the token is cached)."""
    for _ in range(45):
        graph.deliver("sentitems", make_message(bcc=("hidden@rival.example",)))
    changes = source.changes(graph.sent, None, limit=100)
    items = source.fetch(graph.sent, changes.items)
    assert len(items) == 45
    assert graph.server.requests["batch"] == 3
    assert set(graph.server.fetched_mime.values()) == {1}
    assert graph.server.requests["token"] == 1
    assert all("hidden@rival.example" in i.recipients for i in items)


def test_429_carries_retry_after(graph: GraphHarness, source: GraphSource) -> None:
    """HTTP 429 becomes ThrottledError with the server's Retry-After seconds."""
    graph.server.throttle_remaining, graph.server.retry_after = 1, "7"
    with pytest.raises(ThrottledError) as info:
        source.changes(graph.sent, None, limit=10)
    assert info.value.retry_after == 7.0


def test_expired_delta_token_is_cursor_invalid(graph: GraphHarness, source: GraphSource) -> None:
    """410 Gone for a delta link means resync: CursorInvalidError."""
    graph.deliver("sentitems", make_message())
    cursor = source.changes(graph.sent, None, limit=10).cursor
    graph.invalidate_cursors()
    with pytest.raises(CursorInvalidError):
        source.changes(graph.sent, cursor, limit=10)


def test_foreign_delta_link_is_refused(graph: GraphHarness, source: GraphSource) -> None:
    """A stored cursor pointing at another host is never followed (the token would go there)."""
    with pytest.raises(CursorInvalidError):
        source.changes(graph.sent, "https://attacker.example/v1.0/delta?$deltatoken=x", limit=1)
    assert graph.server.requests["delta"] == 0


def test_bad_client_secret_is_a_credential_error(graph: GraphHarness) -> None:
    """invalid_client from the token endpoint is CredentialError, and no Graph call is made."""
    bad = GraphSource(graph.settings(password="wrong"))
    try:
        with pytest.raises(CredentialError):
            bad.changes(graph.sent, None, limit=10)
    finally:
        bad.close()
    assert graph.server.requests["delta"] == 0
