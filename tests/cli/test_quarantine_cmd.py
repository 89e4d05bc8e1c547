"""``maruhi quarantine ...`` as other tools call it: a subprocess, a real store and upstream."""

from __future__ import annotations

import email
import getpass
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from scanner.store import open_store
from tests.outbox.sink import Sink, free_port
from tests.store.factories import (
    SECRET_TERM,
    T0,
    make_envelope,
    make_hit,
    make_raw,
    make_verdict,
)

REPO = Path(__file__).resolve().parents[2]


def maruhi(*args: str, input_: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "scanner.cli.main", "quarantine", *args],
        cwd=REPO,
        capture_output=True,
        timeout=60,
        input=input_,
        check=False,
    )


def list_json(data: Path, *extra: str) -> list[dict[str, Any]]:
    done = maruhi("list", "--data-dir", str(data), "--json", *extra)
    assert done.returncode == 0, done.stderr
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def hold(data: Path, *, minutes: int = 0, **kw: Any) -> str:
    args: dict[str, Any] = {
        "raw": make_raw(message_id=f"<m{minutes}@client.example.co.jp>"),
        "envelope": make_envelope(),
        "verdict": make_verdict(make_hit(), make_hit(rule_id="rival", location="envelope")),
        "received_at": T0 + timedelta(minutes=minutes),
        "peer": "192.0.2.7",
        "message_id": f"<m{minutes}@client.example.co.jp>",
        "notify_sender": False,
    }
    args.update(kw)
    with open_store(data) as store:
        return store.hold(**args)


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink().start()
    yield s
    s.stop()


def test_list_json_contract(data: Path) -> None:
    """list --json prints the contract fields (id, status, received_at, sender, rules, ...)."""
    first = hold(data, minutes=0)
    second = hold(data, minutes=5)
    rows = list_json(data)
    assert [r["id"] for r in rows] == [second, first]
    row = rows[1]
    assert row["status"] == "held"
    assert row["received_at"] == "2025-04-01T09:30:00Z"
    assert row["sender"] == "tanaka@example.co.jp"
    assert row["recipients"] == ["cfo@rival.example", "suzuki@example.co.jp"]
    assert row["rules"] == ["falcon", "rival"]
    assert row["message_id"] == "<m0@client.example.co.jp>"
    assert "subject" not in row


def test_list_on_an_empty_store_is_an_empty_array(data: Path) -> None:
    """An empty quarantine lists as [] so scripts need no special case."""
    open_store(data).close()
    assert list_json(data) == []


def test_list_table_and_status_filter(data: Path) -> None:
    """The human table shows ids; --status filters on the public status."""
    a = hold(data, minutes=0)
    b = hold(data, minutes=1)
    assert maruhi("reject", a, "--data-dir", str(data), "--reason", "x").returncode == 0
    table = maruhi("list", "--data-dir", str(data)).stdout.decode()
    assert a in table
    assert b in table
    assert "rejected" in table
    assert [r["id"] for r in list_json(data, "--status", "held")] == [b]
    assert [r["id"] for r in list_json(data, "--status", "rejected")] == [a]


def test_show_json_and_raw(data: Path) -> None:
    """show --json gives hits with spans; show --raw writes the byte-identical message."""
    qid = hold(data)
    done = maruhi("show", qid, "--data-dir", str(data), "--json")
    detail = json.loads(done.stdout)
    assert detail["hits"][0] == {
        "rule": "falcon",
        "location": "body",
        "out_of_scope": ["cfo@rival.example"],
        "action": "hold",
        "spans": [[4, 17]],
    }
    assert detail["peer"] == "192.0.2.7"
    assert maruhi("show", qid, "--data-dir", str(data), "--raw").stdout == make_raw(
        message_id="<m0@client.example.co.jp>"
    )
    human = maruhi("show", qid, "--data-dir", str(data)).stdout.decode()
    assert "falcon at body" in human


def test_release_delivers_at_once_and_lists_released(data: Path, sink: Sink) -> None:
    """release records the decision and the message reaches the upstream before the command ends."""
    qid = hold(data, mail_options=("BODY=8BITMIME",))
    done = maruhi(
        "release", qid, "--data-dir", str(data), "--reason", "approved by customer",
        "--upstream", f"127.0.0.1:{sink.port}", "--upstream-tls", "none",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert b"delivered" in done.stdout
    [got] = sink.received
    assert got.data == make_raw(message_id="<m0@client.example.co.jp>")
    assert got.rcpt_tos == ["cfo@rival.example", "suzuki@example.co.jp"]
    [row] = list_json(data)
    assert row["status"] == "released"
    assert row["decided_by"] == getpass.getuser()
    assert row["reason"] == "approved by customer"


def test_release_with_upstream_down_stays_queued(data: Path) -> None:
    """With the upstream down, release still succeeds, the message stays held and queued."""
    qid = hold(data)
    done = maruhi(
        "release", qid, "--data-dir", str(data), "--reason", "ok", "--by", "sato",
        "--upstream", f"127.0.0.1:{free_port()}", "--upstream-tls", "none",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert b"queued" in done.stdout
    [row] = list_json(data)
    assert (row["status"], row["state"], row["decided_by"]) == ("held", "releasing", "sato")


def test_reject_sends_the_sender_a_notice(data: Path, sink: Sink) -> None:
    """reject marks the message rejected and delivers the reject notice, without the secret."""
    qid = hold(data)
    done = maruhi(
        "reject", qid, "--data-dir", str(data), "--reason", f"mentions {SECRET_TERM}",
        "--upstream", f"127.0.0.1:{sink.port}", "--upstream-tls", "none",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [row] = list_json(data)
    assert row["status"] == "rejected"
    [notice] = sink.received
    assert notice.rcpt_tos == ["tanaka@example.co.jp"]
    msg = email.message_from_bytes(notice.data, policy=default_policy)
    assert qid in msg.get_content()
    assert SECRET_TERM not in msg.get_content()


def test_unknown_id_exits_2_with_one_line(data: Path) -> None:
    """An unknown id is unusable input: exit 2 and exactly one line on stderr."""
    hold(data)
    for action in ("release", "reject"):
        done = maruhi(action, "NOSUCHID", "--data-dir", str(data), "--reason", "x")
        assert done.returncode == 2
        assert done.stderr.decode().count("\n") == 1
        assert b"NOSUCHID" in done.stderr
    assert maruhi("show", "NOSUCHID", "--data-dir", str(data)).returncode == 2


def test_missing_data_dir_exits_2(tmp_path: Path) -> None:
    """A data directory that does not exist is reported, not silently created."""
    done = maruhi("list", "--data-dir", str(tmp_path / "nope"), "--json")
    assert done.returncode == 2
    assert b"no quarantine" in done.stderr
    assert not (tmp_path / "nope").exists()


def test_repeated_and_conflicting_decisions(data: Path) -> None:
    """A repeated reject exits 0 without change; a release after a reject exits 1."""
    qid = hold(data)
    args = ("--data-dir", str(data), "--reason", "x", "--no-deliver")
    assert maruhi("reject", qid, *args).returncode == 0
    again = maruhi("reject", qid, *args)
    assert again.returncode == 0
    assert b"already" in again.stdout
    conflict = maruhi("release", qid, *args)
    assert conflict.returncode == 1
    assert b"already rejected" in conflict.stderr
    assert list_json(data)[0]["status"] == "rejected"


def test_expire_purge_and_verify_audit_from_cron(data: Path) -> None:
    """expire and purge run as retention jobs; the audit chain stays intact."""
    qid = hold(data)  # received in 2025: older than any retention age below
    done = maruhi("expire", "--data-dir", str(data), "--older-than", "14", "--no-deliver")
    assert done.returncode == 0
    assert qid.encode() in done.stdout
    assert list_json(data)[0]["status"] == "expired"
    assert maruhi("purge", "--data-dir", str(data), "--older-than", "90").returncode == 0
    assert list_json(data)[0]["content_purged"] is True
    assert maruhi("show", qid, "--data-dir", str(data), "--raw").returncode == 2
    verify = maruhi("verify-audit", "--data-dir", str(data))
    assert verify.returncode == 0
    assert b"intact" in verify.stdout
