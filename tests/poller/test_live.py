"""Opt-in, read-only checks against a real Exchange (EWS) or Microsoft 365 (Graph) mailbox.

Set ``MARUHI_LIVE_EWS_ENDPOINT``, ``_USERNAME``, ``_PASSWORD``, ``_MAILBOX`` (optional
``_AUTH`` basic|ntlm|oauth2, ``_ACCESS`` delegate|impersonation, ``_VERSION``, ``_TENANT``) or
``MARUHI_LIVE_GRAPH_TENANT``, ``_CLIENT_ID``, ``_CLIENT_SECRET``, ``_MAILBOX``. Without them the
tests are skipped and say which variables are missing. They list one page of Sent Items and
fetch it: nothing is tagged, moved or written.
"""

from __future__ import annotations

import os

import pytest

from scanner.config import Secret
from scanner.poller.ews import EwsSettings, EwsSource
from scanner.poller.graph import GraphSettings, GraphSource
from scanner.poller.source import FolderKind, MailSource, WatchedFolder


def _env(prefix: str, names: tuple[str, ...]) -> dict[str, str]:
    missing = [f"{prefix}{n}" for n in names if not os.environ.get(f"{prefix}{n}")]
    if missing:
        pytest.skip(f"live test not configured: set {', '.join(missing)}")
    return {n: os.environ[f"{prefix}{n}"] for n in names}


def _check(source: MailSource, mailbox: str) -> None:
    folder = WatchedFolder(mailbox, "sentitems", FolderKind.SENT)
    try:
        changes = source.changes(folder, None, limit=5)
        items = source.fetch(folder, changes.items)
    finally:
        source.close()
    assert changes.cursor
    assert len(items) == len(changes.items)
    for item in items:
        assert item.raw.count(b"\n") > 1  # real MIME, not an empty body
        assert item.recipients  # a sent item has at least one recipient


def test_live_ews_lists_and_fetches_sent_items() -> None:
    """exchangelib, configured as the poller configures it, reads a real Sent Items folder."""
    env = _env("MARUHI_LIVE_EWS_", ("ENDPOINT", "USERNAME", "PASSWORD", "MAILBOX"))
    settings = EwsSettings(
        endpoint=env["ENDPOINT"],
        username=env["USERNAME"],
        secret=Secret(env["PASSWORD"]),
        auth_type=os.environ.get("MARUHI_LIVE_EWS_AUTH", "ntlm"),
        access_type=os.environ.get("MARUHI_LIVE_EWS_ACCESS", "delegate"),
        version=os.environ.get("MARUHI_LIVE_EWS_VERSION", "2016"),
        tenant_id=os.environ.get("MARUHI_LIVE_EWS_TENANT"),
    )
    _check(EwsSource(settings), env["MAILBOX"])


def test_live_graph_lists_and_fetches_sent_items() -> None:
    """httpx + msal client credentials read a real Sent Items folder through delta + $batch."""
    env = _env("MARUHI_LIVE_GRAPH_", ("TENANT", "CLIENT_ID", "CLIENT_SECRET", "MAILBOX"))
    settings = GraphSettings(
        tenant_id=env["TENANT"],
        client_id=env["CLIENT_ID"],
        client_secret=Secret(env["CLIENT_SECRET"]),
    )
    _check(GraphSource(settings), env["MAILBOX"])
