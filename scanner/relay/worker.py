"""A scanner worker process: ``python -m scanner.relay.worker``, driven by ``ScanPool`` over pipes.

It owns the worker side of the frame protocol on stdin/stdout: one init frame (the parent's
``sys.path``, the task and loader as ``module:qualname`` references, the rules bytes and the
limits), answered by ``ready`` or ``error``; then one request frame per message, answered by one
result frame, strictly one at a time. It must not write anything else to the pipe (stdout is
moved to a private descriptor and fd 1 is pointed at stderr, so a stray ``print`` cannot corrupt
a frame) and never writes message content anywhere. Hazard: it ignores SIGINT and SIGTERM (a
terminal's Ctrl-C or systemd's control-group SIGTERM must not kill scans the parent is still
draining); it exits when the parent closes stdin, which also happens when the parent dies.

Frames: 4-byte big-endian length, then a pickle. A request is two parts: a pickled header
``(job_id, envelope, raw_length)`` frame, then ``raw_length`` bytes of message, so the parent
never copies the message into a pickle.
"""

from __future__ import annotations

import importlib
import os
import pickle
import signal
import struct
import sys
from collections.abc import Callable
from typing import Any, BinaryIO

_LEN = struct.Struct(">I")


def resolve(ref: str) -> Any:
    """``module:qualname`` → the object (a module-level function)."""
    module, _, qualname = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def reference(fn: Callable[..., Any]) -> str:
    """The ``module:qualname`` reference of a module-level function (checked to resolve)."""
    ref = f"{fn.__module__}:{fn.__qualname__}"
    if "<" in ref:
        raise ValueError(f"{ref}: scanner hooks must be module-level functions")
    return ref


def _read_exactly(stream: BinaryIO, n: int) -> bytes | None:
    if n == 0:
        return b""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = stream.readinto(view[got:])  # type: ignore[attr-defined]
        if not k:
            return None
        got += k
    return bytes(buf)


def _read_frame(stream: BinaryIO) -> bytes | None:
    head = _read_exactly(stream, _LEN.size)
    if head is None:
        return None
    return _read_exactly(stream, _LEN.unpack(head)[0])


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _send(fd: int, obj: object) -> None:
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    _write_all(fd, _LEN.pack(len(body)) + body)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out = os.dup(1)
    os.dup2(2, 1)  # stray prints go to stderr, never into a frame
    stream: BinaryIO = open(0, "rb", buffering=0)  # noqa: SIM115 - lives as long as the process
    init = _read_frame(stream)
    if init is None:
        return 0
    path, task_ref, loader_ref, data, filename, limits, cache_dir = pickle.loads(init)
    for entry in reversed(path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    try:
        from scanner.relay import scanpool

        task = resolve(task_ref)
        loader = resolve(loader_ref) if loader_ref else None
        scanpool.RULES_CACHE_DIR = cache_dir
        scanpool._init_worker(loader, data, filename, limits)
    except Exception as exc:  # reported by type; RuleError text names file:line and rule ids
        _send(out, ("error", type(exc).__name__, str(exc)[:2000]))
        return 1
    del data
    _send(out, ("ready", os.getpid()))
    while True:
        head = _read_frame(stream)
        if head is None:
            return 0
        job_id, envelope, size = pickle.loads(head)
        raw = _read_exactly(stream, size)
        if raw is None:
            return 0
        try:
            verdict = task(raw, envelope)
        except Exception as exc:  # type only: an exception message can quote message bytes
            _send(out, (job_id, "error", type(exc).__name__))
        else:
            _send(out, (job_id, "ok", verdict))


if __name__ == "__main__":
    sys.exit(main())
