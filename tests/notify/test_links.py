"""The sender's status link: per-message tokens, a shared key file, and the hold notice's link."""

from __future__ import annotations

import stat
from pathlib import Path

from scanner.notify import NoticeOptions, render
from scanner.notify.links import (
    KEY_FILE,
    load_link_key,
    status_token,
    status_url,
    valid_token,
)
from scanner.store import NoticeKind
from tests.notify.test_compose import make_record
from tests.store.factories import SECRET_SUBJECT, SECRET_TERM

QID = "01JQRAZBE0C8GT13FWFB7NW869"


def test_key_is_created_once_private_and_reused(tmp_path: Path) -> None:
    """The first call creates a 0600 key file; later calls (other processes) read the same key."""
    key = load_link_key(tmp_path / "data")
    assert load_link_key(tmp_path / "data") == key
    mode = stat.S_IMODE((tmp_path / "data" / KEY_FILE).stat().st_mode)
    assert mode == 0o600
    assert len(key) == 32


def test_token_is_bound_to_message_and_key() -> None:
    """A token validates only for its own message and key, and is URL-safe."""
    key, other_key = b"k" * 32, b"o" * 32
    token = status_token(key, QID)
    assert valid_token(key, QID, token)
    assert not valid_token(key, "01JQRAZBE0C8GT13FWFB7NW86A", token)
    assert not valid_token(other_key, QID, token)
    assert not valid_token(key, QID, token[:-1])
    assert not valid_token(b"", QID, token)
    assert token.replace("-", "").replace("_", "").isalnum()


def test_hold_notice_to_sender_carries_the_link_owner_notice_does_not() -> None:
    """With a public URL the sender's notice has the link (no subject or term in it)."""
    options = NoticeOptions(postmaster="pm@example.co.jp", public_url="https://maruhi.example/",
                            link_key=b"k" * 32)
    link = status_url("https://maruhi.example", b"k" * 32, QID)
    assert link.startswith(f"https://maruhi.example/status/{QID}/")
    _, body = render(NoticeKind.HOLD, "sender", make_record(), options)
    assert body.count(link) == 2  # Japanese and English sections
    _, owner_body = render(NoticeKind.HOLD, "owner", make_record(), options)
    assert "/status/" not in owner_body
    for text in (link, body):
        assert SECRET_TERM not in text
        assert SECRET_SUBJECT not in text


def test_no_public_url_no_link() -> None:
    """Without a public URL the notice reads as before, with no status section."""
    _, body = render(NoticeKind.HOLD, "sender", make_record(), NoticeOptions())
    assert "/status/" not in body
    assert "$" not in body
    assert repr(NoticeOptions(link_key=b"secret-key")).count("secret-key") == 0
