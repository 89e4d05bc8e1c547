"""``maruhi poll`` end to end as a subprocess against a real Dovecot, and its settings errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.config import ConfigError
from scanner.poller.settings import (
    PollerSettings,
    load_poller,
    load_with_poller,
    parse_poller,
)
from scanner.poller.source import FolderKind
from scanner.store.base import Status
from scanner.store.sqlite import SqliteStore
from tests.poller.dovecot import requires_dovecot
from tests.poller.factories import MAILBOX, PASSWORD, RULES_YAML, make_message
from tests.poller.imap_harness import ImapHarness

REPO = Path(__file__).resolve().parents[2]

pytestmark = requires_dovecot


@pytest.fixture
def imap() -> Iterator[ImapHarness]:
    h = ImapHarness()
    yield h
    h.close()


def _config(tmp_path: Path, port: int, extra: str = "") -> Path:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_YAML, encoding="utf-8")
    config = tmp_path / "maruhi.toml"
    config.write_text(
        f"""
[scan]
rules = "{rules}"

[store]
data_dir = "{tmp_path / "data"}"

[log]
format = "json"

[poller]
backend = "imap"
mailboxes = ["{MAILBOX}"]
compliance = ["compliance@example.co.jp"]

[poller.imap]
host = "127.0.0.1"
port = {port}
tls = "none"
password_env = "TEST_IMAP_PASSWORD"
{extra}
""",
        encoding="utf-8",
    )
    return config


def _maruhi(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scanner.cli.main", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_poll_once_records_the_disclosure(imap: ImapHarness, tmp_path: Path) -> None:
    """`maruhi poll --once` scans Sent and Drafts, records the incident, prints counts as JSON
    and never prints or logs the password."""
    imap.deliver("Sent", make_message())
    config = _config(tmp_path, imap.server.port)
    done = _maruhi("poll", "--config", str(config), "--once", env={"TEST_IMAP_PASSWORD": PASSWORD})
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(x["folder"], x["incidents"]) for x in lines] == [
        ("sent:Sent", 1),
        ("drafts:Drafts", 0),
    ]
    assert PASSWORD not in done.stdout + done.stderr
    store = SqliteStore(tmp_path / "data")
    try:
        assert [r.status for r in store.list()] == [Status.SENT]
    finally:
        store.close()


def test_poll_once_reports_rejected_credentials(imap: ImapHarness, tmp_path: Path) -> None:
    """Wrong credentials: exit 1 and a line saying so, without the password."""
    config = _config(tmp_path, imap.server.port)
    done = _maruhi(
        "poll", "--config", str(config), "--once", env={"TEST_IMAP_PASSWORD": "wrong-" + PASSWORD}
    )
    assert done.returncode == 1
    assert json.loads(done.stdout.splitlines()[0])["error"] == "credentials rejected"
    assert PASSWORD not in done.stdout + done.stderr


def test_missing_secret_exits_2_naming_the_key(tmp_path: Path) -> None:
    """An unset password variable is unusable configuration: exit 2, one line naming it."""
    config = _config(tmp_path, 1)
    done = _maruhi("poll", "--config", str(config), "--once", env={})
    assert done.returncode == 2
    assert done.stderr.strip().endswith(
        "[poller.imap] password_env: environment variable TEST_IMAP_PASSWORD is not set"
    )


def _parse(table: dict[str, object], env: dict[str, str] | None = None) -> PollerSettings:
    return parse_poller(table, env=env or {"P": "s3cret"}, source="t.toml")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"mailboxes": ["a@x"], "imap": {}}, "[poller] backend is required"),
        ({"backend": "pop3", "mailboxes": ["a@x"]}, "backend: must be one of ews, graph, imap"),
        (
            {"backend": "imap", "imap": {"host": "h", "password_env": "P"}},
            "[poller] mailboxes is required",
        ),
        (
            {
                "backend": "imap",
                "mailboxes": ["a@x"],
                "intervl": 5,
                "imap": {"host": "h", "password_env": "P"},
            },
            "[poller] unknown key 'intervl'",
        ),
        (
            {"backend": "imap", "mailboxes": ["a@x"], "imap": {"host": "h", "password": "x"}},
            "put the secret in a file (password_file) or an environment variable",
        ),
        (
            {
                "backend": "ews",
                "mailboxes": ["a@x"],
                "ews": {
                    "endpoint": "https://e/EWS",
                    "username": "u",
                    "password_env": "P",
                    "auth_type": "kerberos",
                },
            },
            "auth_type: must be one of basic, ntlm, oauth2",
        ),
    ],
)
def test_settings_errors_name_the_key(table: dict[str, object], message: str) -> None:
    """Each configuration mistake is reported with the table and key at fault."""
    with pytest.raises(ConfigError) as info:
        _parse(table)
    assert message in str(info.value)


def test_secret_from_file_is_masked(tmp_path: Path) -> None:
    """A secret read from a file is usable and prints as stars in any repr."""
    secret_file = tmp_path / "pw"
    secret_file.write_text("s3cret-from-file\n")
    settings = _parse(
        {
            "backend": "graph",
            "mailboxes": ["A@Example.co.jp"],
            "watch": ["sent", "journal"],
            "graph": {"tenant_id": "t", "client_id": "c", "client_secret_file": str(secret_file)},
        }
    )
    assert settings.graph is not None
    assert settings.graph.client_secret.reveal() == "s3cret-from-file"
    assert "s3cret" not in repr(settings)
    assert settings.mailboxes == ("a@example.co.jp",)
    assert settings.folder_name(FolderKind.SENT) == "sentitems"


def test_daemon_sections_load_beside_poller(tmp_path: Path) -> None:
    """The daemon's own sections still load (and are validated) from the same file."""
    config = _config(tmp_path, 143)
    settings, poller = load_with_poller(config, env={"TEST_IMAP_PASSWORD": "x"})
    assert settings.store.data_dir == tmp_path / "data"
    assert settings.source == str(config)
    assert poller.imap is not None
    assert poller.imap.port == 143
    broken = tmp_path / "broken.toml"
    broken.write_text(config.read_text().replace("[store]", "[store]\ndata_dri = 'x'"))
    with pytest.raises(ConfigError) as info:
        load_with_poller(broken, env={"TEST_IMAP_PASSWORD": "x"})
    assert str(info.value).startswith(f"{broken}: [store] unknown key 'data_dri'")


def test_load_poller_is_none_without_the_table(tmp_path: Path) -> None:
    """`maruhi serve` starts the poller only when [poller] exists; its settings load alone."""
    plain = tmp_path / "plain.toml"
    plain.write_text("[store]\ndata_dir = 'x'\n")
    assert load_poller(plain, env={}) is None
    config = _config(tmp_path, 993)
    loaded = load_poller(config, env={"TEST_IMAP_PASSWORD": "x"})
    assert loaded is not None
    assert loaded.backend == "imap"


def test_serve_runs_the_poller_beside_the_relay(imap: ImapHarness, tmp_path: Path) -> None:
    """`maruhi serve` with a [poller] section polls the mailbox: a sent disclosure becomes an
    incident while the relay keeps listening."""
    import socket
    import time

    imap.deliver("Sent", make_message())
    relay_port, upstream_port = _free_port(), _free_port()
    config = _config(tmp_path, imap.server.port, extra=f"""
[relay]
listen = "127.0.0.1:{relay_port}"

[upstream]
address = "127.0.0.1:{upstream_port}"
tls = "none"

[metrics]
listen = ""

[web]
listen = ""
""")
    # [relay]/[upstream] come after [poller.imap] in the file: TOML tables are independent.
    log = tmp_path / "serve.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scanner.cli.main", "serve", "--config", str(config)],
            cwd=tmp_path, env={**os.environ, "TEST_IMAP_PASSWORD": PASSWORD},
            stdout=subprocess.DEVNULL, stderr=err,
        )
    try:
        deadline = time.monotonic() + 60
        statuses: list[Status] = []
        while time.monotonic() < deadline and statuses != [Status.SENT]:
            time.sleep(0.5)
            assert proc.poll() is None, log.read_text(errors="replace")
            if (tmp_path / "data").exists():
                store = SqliteStore(tmp_path / "data")
                try:
                    statuses = [r.status for r in store.list()]
                finally:
                    store.close()
        assert statuses == [Status.SENT]
        with socket.create_connection(("127.0.0.1", relay_port), timeout=5) as conn:
            assert conn.recv(100).startswith(b"220")
    finally:
        proc.terminate()
        proc.wait(30)
    assert proc.returncode == 0
    assert PASSWORD not in log.read_text(errors="replace")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
