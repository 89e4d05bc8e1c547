"""Typed poller settings: the ``[poller]`` table (and its ``ews``/``graph``/``imap`` sub-tables)
of the daemon's TOML file, read once at start-up into frozen values.

It owns the mapping from keys to ``PollerSettings`` and the reading of credentials: a secret is
never written in the TOML itself but named there — ``password_file`` (a file readable by the
service only) or ``password_env`` (an environment variable) — and wrapped in ``Secret``, whose
repr is ``'**********'``. The environment is passed in (``env``), never read here. It must not
connect anywhere. Unknown keys are errors that name the table and key, as in
``scanner.config``. Hazard: ``maruhi serve``'s ``load_settings`` rejects sections it does not
know, so ``load_with_poller`` hands it the file without ``[poller]`` until the composition root
accepts the section itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanner.config import ConfigError, Secret, Settings, load_settings
from scanner.model import Action
from scanner.poller.actions import QUARANTINE_FOLDER, ActionOptions
from scanner.poller.ews import EwsSettings
from scanner.poller.graph import GraphSettings
from scanner.poller.imap import ImapAccount
from scanner.poller.loop import LoopOptions
from scanner.poller.source import FolderKind

BACKENDS = ("ews", "graph", "imap")
# Each backend's name for the folders of a kind (EWS/Graph well-known names, IMAP defaults).
DEFAULT_FOLDERS: dict[str, dict[FolderKind, str]] = {
    "ews": {FolderKind.SENT: "sentitems", FolderKind.DRAFTS: "drafts", FolderKind.JOURNAL: "inbox"},
    "graph": {
        FolderKind.SENT: "sentitems",
        FolderKind.DRAFTS: "drafts",
        FolderKind.JOURNAL: "inbox",
    },
    "imap": {FolderKind.SENT: "Sent", FolderKind.DRAFTS: "Drafts", FolderKind.JOURNAL: "INBOX"},
}


@dataclass(frozen=True)
class ImapServer:
    """``[poller.imap]``: one server; each mailbox logs in as ``username_template``."""

    host: str
    port: int = 993
    tls: str = "ssl"
    ca_file: str | None = None
    username_template: str = "{mailbox}"  # Dovecot master user: "{mailbox}*maruhi"
    password: Secret = field(default_factory=lambda: Secret(""))
    timeout: float = 60.0
    idle: bool = False  # IDLE wake-ups: one extra connection and thread per folder

    def account(self, mailbox: str) -> ImapAccount:
        return ImapAccount(
            host=self.host,
            port=self.port,
            username=self.username_template.format(mailbox=mailbox),
            password=self.password,
            tls=self.tls,
            timeout=self.timeout,
            ca_file=self.ca_file,
        )


@dataclass(frozen=True)
class PollerSettings:
    """Everything ``run_poller`` needs; ``folders`` maps each watched kind to a folder name."""

    backend: str
    mailboxes: tuple[str, ...] = ()
    journal_mailboxes: tuple[str, ...] = ()
    watch: tuple[FolderKind, ...] = (FolderKind.SENT, FolderKind.DRAFTS)
    folders: Mapping[FolderKind, str] = field(default_factory=dict)
    loop: LoopOptions = field(default_factory=LoopOptions)
    actions: ActionOptions = field(default_factory=ActionOptions)
    max_concurrency: int = 16  # folders polled at the same time (server politeness)
    ews: EwsSettings | None = None
    graph: GraphSettings | None = None
    imap: ImapServer | None = None

    def folder_name(self, kind: FolderKind) -> str:
        return self.folders.get(kind) or DEFAULT_FOLDERS[self.backend][kind]


# -- parsing ------------------------------------------------------------------------------------


class _Table:
    """One TOML table with typed getters that name ``[where] key`` in every error."""

    def __init__(self, data: Mapping[str, Any], where: str, source: str) -> None:
        self.data, self.where, self.source = data, where, source
        self.used: set[str] = set()

    def _err(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: [{self.where}] {key}: {problem}")

    def get(self, key: str, kind: type[Any], default: Any = None, *, required: bool = False) -> Any:
        self.used.add(key)
        if key not in self.data:
            if required:
                raise ConfigError(
                    f"{self.source}: [{self.where}] {key} is required (it has no default)"
                )
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self._err(key, f"expected {kind.__name__}, got {value!r}")
        if kind in (int, float) and value < 0:
            raise self._err(key, "must not be negative")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.get(key, list, [])
        if not all(isinstance(v, str) for v in value):
            raise self._err(key, "expected a list of strings")
        return tuple(value)

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        value = self.get(key, str, default, required=default is None)
        if value not in choices:
            raise self._err(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return str(value)

    def secret(self, key: str, env: Mapping[str, str]) -> Secret:
        """``KEY_file`` or ``KEY_env`` (exactly one); the value itself never sits in the TOML."""
        if key in self.data:
            raise self._err(
                key,
                f"put the secret in a file ({key}_file) or an environment "
                f"variable ({key}_env), not in the config file",
            )
        path = self.get(f"{key}_file", str)
        var = self.get(f"{key}_env", str)
        if (path is None) == (var is None):
            raise ConfigError(
                f"{self.source}: [{self.where}] exactly one of {key}_file or {key}_env is "
                "required (it has no default)"
            )
        if path is not None:
            try:
                return Secret(Path(path).read_text(encoding="utf-8").strip())
            except OSError as exc:
                raise self._err(f"{key}_file", f"cannot read ({type(exc).__name__})") from exc
        if var not in env:
            raise self._err(f"{key}_env", f"environment variable {var} is not set")
        return Secret(env[var])

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(f"{self.source}: [{self.where}] unknown key {unknown[0]!r}")


def parse_poller(data: Mapping[str, Any], *, env: Mapping[str, str], source: str) -> PollerSettings:
    """The ``[poller]`` table → ``PollerSettings``; raises ``ConfigError`` naming the key."""
    t = _Table(data, "poller", source)
    backend = t.choice("backend", BACKENDS)
    watch_names = t.strings("watch") or ("sent", "drafts")
    try:
        watch = tuple(FolderKind(w) for w in watch_names)
    except ValueError:
        raise t._err("watch", "entries must be sent, drafts or journal") from None
    folder_table = t.get("folders", dict, {})
    try:
        folders = {FolderKind(k): str(v) for k, v in folder_table.items()}
    except ValueError:
        raise t._err("folders", "keys must be sent, drafts or journal") from None
    defaults = LoopOptions()
    loop = LoopOptions(
        batch=t.get("batch", int, defaults.batch),
        interval=t.get("interval", float, defaults.interval),
        backoff_first=t.get("backoff_first", float, defaults.backoff_first),
        backoff_max=t.get("backoff_max", float, defaults.backoff_max),
        max_retry_after=t.get("max_retry_after", float, defaults.max_retry_after),
    )
    if loop.batch < 1:
        raise t._err("batch", "must be at least 1")
    threshold = t.choice("move_threshold", ("flag", "hold", "reject"), "hold")
    actions = ActionOptions(
        move_sent=t.get("move_sent", bool, False),
        move_threshold=Action.parse(threshold),
        quarantine_folder=t.get("quarantine_folder", str, QUARANTINE_FOLDER),
        compliance=t.strings("compliance"),
    )
    mailboxes = tuple(m.lower() for m in t.strings("mailboxes"))
    journal = tuple(m.lower() for m in t.strings("journal_mailboxes"))
    if not mailboxes and not journal:
        raise ConfigError(f"{source}: [poller] mailboxes is required (it has no default)")
    settings = PollerSettings(
        backend=backend,
        mailboxes=mailboxes,
        journal_mailboxes=journal,
        watch=watch,
        folders=folders,
        loop=loop,
        actions=actions,
        max_concurrency=max(1, t.get("max_concurrency", int, 16)),
    )
    sub = t.get(backend, dict, None, required=True)
    for other in BACKENDS:
        if other != backend:
            t.get(other, dict, {})  # present but unused: allowed (switching backends)
    t.finish()
    s = _Table(sub, f"poller.{backend}", source)
    if backend == "ews":
        result = dataclasses.replace(
            settings,
            ews=EwsSettings(
                endpoint=s.get("endpoint", str, required=True),
                username=s.get("username", str, required=True),
                secret=s.secret("password", env),
                auth_type=s.choice("auth_type", ("basic", "ntlm", "oauth2"), "ntlm"),
                access_type=s.choice("access_type", ("delegate", "impersonation"), "delegate"),
                version=s.choice("version", ("2013", "2016", "2019"), "2016"),
                tenant_id=s.get("tenant_id", str),
                max_wait=s.get("max_wait", float, 30.0),
            ),
        )
    elif backend == "graph":
        result = dataclasses.replace(
            settings,
            graph=GraphSettings(
                tenant_id=s.get("tenant_id", str, required=True),
                client_id=s.get("client_id", str, required=True),
                client_secret=s.secret("client_secret", env),
                graph_url=s.get("graph_url", str, "https://graph.microsoft.com/v1.0"),
                authority_host=s.get("authority_host", str, "https://login.microsoftonline.com"),
                ca_file=s.get("ca_file", str),
                timeout=s.get("timeout", float, 60.0),
            ),
        )
    else:
        result = dataclasses.replace(
            settings,
            imap=ImapServer(
                host=s.get("host", str, required=True),
                port=s.get("port", int, 993),
                tls=s.choice("tls", ("ssl", "starttls", "none"), "ssl"),
                ca_file=s.get("ca_file", str),
                username_template=s.get("username_template", str, "{mailbox}"),
                password=s.secret("password", env),
                timeout=s.get("timeout", float, 60.0),
                idle=s.get("idle", bool, False),
            ),
        )
    s.finish()
    return result


def load_poller(path: Path, *, env: Mapping[str, str]) -> PollerSettings | None:
    """Only the ``[poller]`` table of ``path``, or None when it has none (``maruhi serve``:
    the poller runs beside the relay only when configured)."""
    return poller_of(load_settings(path, env=env), env=env)


def poller_of(settings: Settings, *, env: Mapping[str, str]) -> PollerSettings | None:
    """The poller settings inside already loaded daemon settings, or None when absent."""
    table = settings.components.get("poller")
    if table is None:
        return None
    return parse_poller(table, env=env, source=settings.source)


def load_with_poller(path: Path, *, env: Mapping[str, str]) -> tuple[Settings, PollerSettings]:
    """The daemon's settings and the poller's from one TOML file (``maruhi poll``)."""
    settings = load_settings(path, env=env)
    poller = poller_of(settings, env=env)
    if poller is None:
        raise ConfigError(f"{path}: [poller] is required by maruhi poll (it has no default)")
    return settings, poller
