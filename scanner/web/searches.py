"""Subject searches kept on the server, so that searched text never appears in a URL.

A subject search is message text (it may be the very secret), and URLs end up in browser
history, proxies and logs. The search form posts the text; this store keeps it for one hour
under a random token bound to the user, and the list page carries only ``q=<token>``. Per
process and bounded: with several web instances a token from another instance simply resets
the search. Hazard: never log or render a token's text for another user.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from datetime import datetime, timedelta

TTL = timedelta(hours=1)
MAX_ENTRIES = 10_000


class SavedSearches:
    """token → (user, subject text, expiry), oldest evicted first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[str, str, datetime]] = OrderedDict()

    def save(self, user: str, subject: str, now: datetime) -> str:
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._entries[token] = (user, subject, now + TTL)
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)
        return token

    def get(self, token: str | None, user: str, now: datetime) -> str | None:
        """The subject saved under ``token`` by ``user``, or None (unknown, expired, other user)."""
        if not token:
            return None
        with self._lock:
            entry = self._entries.get(token)
        if entry is None or entry[0] != user or entry[2] < now:
            return None
        return entry[1]
