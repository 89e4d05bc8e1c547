"""Content files of the embedded store: one file per held message, written so a crash never
leaves a half-written message where a reader would find it.

Owns the on-disk layout under ``<data_dir>/messages`` and the write protocol (tmp file in
``<data_dir>/tmp`` → write → fsync → rename into place → fsync of the directory); it must not
know about the database, and it never logs or puts content in an exception. Its hazard is
``rename`` across file systems (not atomic), so ``tmp/`` lives under the same data directory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import time
from pathlib import Path

from scanner.errors import TransientError

_TMP_SUFFIX = ".tmp"
_EXT = ".eml"
_DIR_MODE = 0o700  # held mail is confidential: only the daemon's user may read it
_FILE_MODE = 0o600


def _fsync_dir(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable (POSIX needs the directory fsynced)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ContentFiles:
    """Durable write, read and delete of raw messages keyed by quarantine id."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.messages = root / "messages"
        self.tmp = root / "tmp"
        for d in (root, self.messages, self.tmp):
            d.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)

    def path(self, item_id: str) -> Path:
        # Fan out on the last two characters: the random part of the id, so directories fill
        # evenly (the leading characters are a timestamp and change slowly).
        return self.messages / item_id[-2:].lower() / f"{item_id}{_EXT}"

    def write(self, item_id: str, raw: bytes) -> Path:
        """Write ``raw`` durably; on any OS error remove the tmp file and raise TransientError."""
        tmp = self.tmp / f"{item_id}.{secrets.token_hex(4)}{_TMP_SUFFIX}"
        final = self.path(item_id)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
            try:
                view = memoryview(raw)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            if not final.parent.is_dir():
                final.parent.mkdir(mode=_DIR_MODE, exist_ok=True)
                _fsync_dir(self.messages)
            os.rename(tmp, final)
            _fsync_dir(final.parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            # If the rename happened but the directory fsync failed, the file may or may not
            # survive a crash: remove it so the caller's "not held" answer (451) stays true.
            with contextlib.suppress(OSError):
                if final.exists():
                    final.unlink()
            kind = errno.errorcode.get(exc.errno or 0, "EIO")
            raise TransientError(f"cannot store message content ({kind})") from exc
        return final

    def read(self, item_id: str) -> bytes | None:
        """The content, or None when the file does not exist."""
        try:
            return self.path(item_id).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TransientError("cannot read message content") from exc

    def mtime(self, item_id: str) -> float:
        """Modification time of the content file (0.0 when it is gone)."""
        try:
            return self.path(item_id).stat().st_mtime
        except OSError:
            return 0.0

    def exists(self, item_id: str) -> bool:
        return self.path(item_id).is_file()

    def delete(self, item_id: str) -> None:
        """Remove the content durably; a missing file is not an error (purge is re-runnable)."""
        path = self.path(item_id)
        try:
            path.unlink(missing_ok=True)
            if path.parent.is_dir():
                _fsync_dir(path.parent)
        except OSError as exc:
            raise TransientError("cannot delete message content") from exc

    def sweep_tmp(self, *, older_than_seconds: float = 3600.0) -> int:
        """Remove leftovers of writes interrupted by a crash; they were never acknowledged.

        Only files older than ``older_than_seconds``: another process (the daemon while the CLI
        runs) may be writing a fresh one right now.
        """
        removed = 0
        cutoff = time.time() - older_than_seconds
        for leftover in self.tmp.glob(f"*{_TMP_SUFFIX}"):
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
                    removed += 1
        return removed

    def stored_ids(self) -> set[str]:
        """Ids with a content file (for consistency checks; tmp files are never counted)."""
        return {p.name.removesuffix(_EXT) for p in self.messages.glob(f"*/*{_EXT}")}
