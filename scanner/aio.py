"""The one way to start a background task: ``spawn`` keeps a strong reference until it ends.

The event loop holds only weak references to tasks, so a task started with a bare
``asyncio.create_task`` and not stored anywhere can be garbage-collected mid-flight (ruff's
TID251 bans the bare call). This module must not swallow exceptions: a failed task is logged with
its name, never silently dropped. Hazard: the set grows if tasks never finish; every caller spawns
tasks that end (or are cancelled on shutdown through ``cancel_all``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import structlog

T = TypeVar("T")

_log = structlog.get_logger("maruhi.aio")
_tasks: set[asyncio.Task[Any]] = set()


def _done(task: asyncio.Task[Any]) -> None:
    _tasks.discard(task)
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        # Exception type only: a message could carry data we must not log.
        _log.error("task.failed", task=task.get_name(), error=type(exc).__name__)


def spawn(coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
    """Start ``coro`` as a task that is referenced until it finishes."""
    task = asyncio.create_task(coro, name=name)  # noqa: TID251 - the one sanctioned call
    _tasks.add(task)
    task.add_done_callback(_done)
    return task


def running_tasks() -> frozenset[asyncio.Task[Any]]:
    """The tasks started with ``spawn`` that have not finished (for shutdown and tests)."""
    return frozenset(_tasks)


async def cancel_all(timeout: float = 5.0) -> None:
    """Cancel every spawned task of the running loop and wait (bounded) for them to end."""
    loop = asyncio.get_running_loop()
    mine = [t for t in _tasks if t.get_loop() is loop and not t.done()]
    for task in mine:
        task.cancel()
    if mine:
        await asyncio.wait(mine, timeout=timeout)
