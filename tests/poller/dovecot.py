"""A real Dovecot IMAP server for tests: a throwaway config, a tmp maildir, a loopback port.

Started as a foreground subprocess (``dovecot -F -c CONF``), never as a system service. Users and
passwords come from a passwd-file in the tmp dir. When the tests run as root, the mail files
belong to the unprivileged ``dovecot`` user (Dovecot refuses mail access as uid 0).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def available() -> bool:
    return Path(DOVECOT).exists()


# .ci/run (tests/run.sh) installs dovecot-imapd as root; elsewhere these tests say why they skip.
requires_dovecot = pytest.mark.skipif(
    not available(), reason="dovecot not installed (apt-get install dovecot-imapd)"
)


@dataclass
class Dovecot:
    """One running Dovecot; ``add_user`` before ``start`` (or restart) to log in."""

    root: Path
    port: int = field(default_factory=free_port)
    users: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def _account(self) -> tuple[str, int, int]:
        if os.getuid() != 0:
            me = pwd.getpwuid(os.getuid())
            return me.pw_name, me.pw_uid, me.pw_gid
        entry = pwd.getpwnam("dovecot")
        return entry.pw_name, entry.pw_uid, entry.pw_gid

    def write_config(self) -> Path:
        name, uid, gid = self._account()
        for sub in ("run", "state", "mail", "home"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        passwd = self.root / "passwd"
        passwd.write_text(
            "".join(f"{user}:{{PLAIN}}{password}::::::\n" for user, password in self.users.items())
        )
        if os.getuid() == 0:
            # Dovecot's unprivileged processes must reach the passwd-file and the mail dirs.
            self.root.chmod(0o755)
            passwd.chmod(0o644)
            for path in (self.root / "mail", self.root / "home"):
                os.chown(path, uid, gid)
        conf = self.root / "dovecot.conf"
        conf.write_text(
            f"""
protocols = imap
listen = 127.0.0.1
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {name}
default_internal_group = {name if os.getuid() != 0 else "dovecot"}
default_login_user = {name if os.getuid() != 0 else "dovenull"}
first_valid_uid = {uid}
mail_location = maildir:{self.root}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={self.root}/home/%u
}}
namespace inbox {{
  inbox = yes
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = create
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
"""
        )
        return conf

    def start(self) -> Dovecot:
        conf = self.write_config()
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"dovecot exited: {err} {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not start: {self.log()}")

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None
