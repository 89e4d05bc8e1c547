"""Crash safety: SIGKILL while holding never leaves a committed hold unreadable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from scanner.store import open_store
from scanner.store.sqlite import SqliteStore
from tests.store.factories import make_raw

REPO = Path(__file__).resolve().parents[2]

# The child holds messages in a loop and prints "<id> <n>" after each hold() returns, i.e.
# exactly when the relay would answer 250.
CHILD = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from scanner.store import open_store
    from tests.store.factories import make_envelope, make_raw, make_verdict

    store = open_store(sys.argv[1])
    n = 0
    while True:
        raw = make_raw(body=f"message {n} " + "x" * 200_000)
        qid = store.hold(raw, make_envelope(), make_verdict(), received_at=datetime.now(UTC),
                         peer=None, message_id=f"<{n}@t>")
        print(qid, n, flush=True)
        n += 1
    """
)


@pytest.mark.parametrize("kill_after", [3, 11, 25])
def test_sigkill_during_holds_leaves_every_acknowledged_hold_intact(
    tmp_path: Path, kill_after: int
) -> None:
    """Every id printed before SIGKILL reopens fully readable; tmp files never count as messages."""
    data = tmp_path / "data"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.stdout is not None
    acknowledged: dict[str, int] = {}
    deadline = time.monotonic() + 60
    while len(acknowledged) < kill_after and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        qid, count = line.split()
        acknowledged[qid] = int(count)
    # Kill mid-flight: the child is somewhere inside its next hold (write, fsync or commit).
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    for line in child.stdout:  # ids printed between our last read and the kill
        qid, count = line.split()
        acknowledged[qid] = int(count)
    child.stdout.close()
    assert len(acknowledged) >= kill_after

    with open_store(data) as store:
        listed = {r.id for r in store.list(limit=10_000)}
        assert set(acknowledged) <= listed
        for qid, n in acknowledged.items():
            assert store.raw(qid) == make_raw(body=f"message {n} " + "x" * 200_000)
            assert store.get(qid).message_id == f"<{n}@t>"
        # Every listed record has its content; leftover tmp files are not records.
        assert isinstance(store, SqliteStore)
        assert listed <= store.files.stored_ids()
        assert len(listed) <= len(acknowledged) + 1  # at most the one committed but unprinted
        assert store.verify_audit() == []
