"""The sender's status link in a hold notice: unguessable, scoped to one held message.

Owns the link's token: HMAC-SHA256 of the quarantine id under a random 256-bit key kept in the
data directory (``status-link.key``, created 0600 on first use), so the relay that writes the
notice and the web app that answers the link agree without storing a token per message, and a
link for one message says nothing about any other. The URL carries the quarantine id and the
token only — never a subject, term or address. Must not log a token. Hazards: anyone holding the
link (a forwarded notice) sees the status and may ask for release — never the content, and a
request is only a request; deleting the key file revokes every link at once (a new key is made).
Several hosts serving one quarantine must share the key file.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_FILE = "status-link.key"
_KEY_BYTES = 32
_DOMAIN = b"maruhi-status-link-v1\x00"  # separates these MACs from any other use of the key


def load_link_key(data_dir: Path) -> bytes:
    """The key under ``data_dir``, created atomically (first writer wins) when missing."""
    path = data_dir / KEY_FILE
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fresh = secrets.token_bytes(_KEY_BYTES)
        tmp = data_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, fresh)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if another process made the key meanwhile: use theirs
        except FileExistsError:
            pass
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        key = path.read_bytes()
    if len(key) < _KEY_BYTES:
        raise ValueError(f"{path} is too short to be a link key")
    return key


def status_token(key: bytes, quarantine_id: str) -> str:
    """The token of one message's status link (43 URL-safe characters)."""
    mac = hmac.new(key, _DOMAIN + quarantine_id.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def valid_token(key: bytes, quarantine_id: str, token: str) -> bool:
    """Whether ``token`` is the status token of ``quarantine_id`` (constant-time compare)."""
    if not key or len(token) > 100:
        return False
    return hmac.compare_digest(status_token(key, quarantine_id).encode(), token.encode())


def status_path(key: bytes, quarantine_id: str) -> str:
    return f"/status/{quarantine_id}/{status_token(key, quarantine_id)}"


def status_url(public_url: str, key: bytes, quarantine_id: str) -> str:
    """The absolute link for a notice: the web app's public base URL plus the status path."""
    return public_url.rstrip("/") + status_path(key, quarantine_id)
