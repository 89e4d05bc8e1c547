"""Notices to senders and rule owners about held, rejected, expired or undeliverable messages.

Composition only (``compose``); the outbox worker sends them. Templates live in ``templates/``
as package data, Japanese first, then English, in one plain-text message.
"""

from __future__ import annotations

from scanner.notify.compose import Notice, NoticeOptions, compose_notice, render

__all__ = ["Notice", "NoticeOptions", "compose_notice", "render"]
