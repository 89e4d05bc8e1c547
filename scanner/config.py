"""Typed settings for the daemon, read once at start-up from a TOML file and the environment.

This module owns the only read of ``os.environ`` in Maruhi and the mapping from the config file's
sections/keys to frozen dataclasses; every other module receives a ``Settings`` (or a part of it)
and must not read configuration itself. Precedence, lowest first: built-in defaults, the TOML
file, ``MARUHI_<SECTION>_<KEY>`` environment variables, then command-line flags (applied by the
caller with ``dataclasses.replace``). Unknown keys are errors (a typo must not silently fall back
to a default), and an error names the section and key. Hazard: credentials live here; they are
``Secret`` values whose repr is ``'**********'`` so that logging a settings object leaks nothing.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from scanner.errors import MaruhiError

ENV_PREFIX = "MARUHI_"


class ConfigError(MaruhiError):
    """The configuration is unusable; the message names the file, section and key."""


class Secret:
    """A credential: usable through ``reveal()``, never shown by ``repr``/``str``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'**********'"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, *, what: str = "address") -> HostPort:
        """``HOST:PORT`` or ``[V6]:PORT``; the message names ``what`` on error."""
        host, sep, port = text.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError(f"{what}: expected HOST:PORT, got {text!r}")
        return cls(host.strip("[]"), int(port))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class RelaySettings:
    """[relay]: the inbound SMTP side."""

    listen: HostPort = HostPort("127.0.0.1", 10025)
    hostname: str = ""  # greeting/EHLO name; empty = this host's FQDN
    max_message_bytes: int = 50 * 1024 * 1024
    max_recipients: int = 1000
    max_connections: int = 200
    command_timeout: float = 300.0  # RFC 5321 4.5.3.2.7: 5 minutes between commands
    data_timeout: float = 600.0  # whole DATA phase; bounds slowloris uploads
    tls_cert: Path | None = None
    tls_key: Path | None = None
    require_tls: bool = False
    auth_users: Mapping[str, Secret] = field(default_factory=dict)
    auth_required: bool = False
    bare_lf: Literal["normalize", "reject"] = "normalize"
    drain_seconds: float = 30.0  # SIGTERM: how long in-flight transactions may take


@dataclass(frozen=True)
class UpstreamSettings:
    """[upstream]: where passed and flagged mail goes (and released mail, by the outbox)."""

    address: HostPort = HostPort("127.0.0.1", 10026)
    tls: Literal["none", "opportunistic", "required"] = "opportunistic"
    ca_file: Path | None = None
    timeout: float = 60.0
    pool_size: int = 50
    helo_name: str = ""  # empty = relay hostname
    username: str = ""
    password: Secret | None = None


@dataclass(frozen=True)
class ScanSettings:
    """[scan]: rules and the scanner process pool."""

    rules: Path | None = None
    workers: int = 0  # 0 = one per CPU core
    timeout: float = 20.0  # per message; on expiry the unscannable action applies
    reload_interval: float = 1.0


@dataclass(frozen=True)
class StoreSettings:
    """[store]: the quarantine (SQLite + files under data_dir)."""

    data_dir: Path = Path("var/maruhi")


@dataclass(frozen=True)
class NoticeSettings:
    """[notices]: who is told about a held message."""

    from_address: str = ""  # empty = postmaster@<relay hostname>
    notify_sender: bool = True
    notify_owner: bool = True


@dataclass(frozen=True)
class RetentionSettings:
    """[retention]: what happens to held mail nobody decides on, and when content is purged."""

    hold_days: float = 14.0
    expire_action: Literal["reject", "release"] = "reject"
    purge_days: float = 90.0


@dataclass(frozen=True)
class MetricsSettings:
    """[metrics]: Prometheus /metrics, /healthz, /readyz; empty listen disables."""

    listen: HostPort | None = HostPort("127.0.0.1", 9125)


@dataclass(frozen=True)
class WebAppSettings:
    """[web]: the review and rules web app, served by ``maruhi serve``; empty listen disables."""

    listen: HostPort | None = HostPort("127.0.0.1", 8025)
    cookie_secure: bool = True  # browsers treat http://127.0.0.1 as secure; else use HTTPS
    idle_minutes: float = 30.0
    session_hours: float = 12.0
    # Base URL senders can reach; hold notices link to a per-message status page under it.
    # Empty: notices carry no link.
    public_url: str = ""


@dataclass(frozen=True)
class LogSettings:
    """[log]"""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


@dataclass(frozen=True)
class Settings:
    relay: RelaySettings = field(default_factory=RelaySettings)
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)
    scan: ScanSettings = field(default_factory=ScanSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    notices: NoticeSettings = field(default_factory=NoticeSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    web: WebAppSettings = field(default_factory=WebAppSettings)
    log: LogSettings = field(default_factory=LogSettings)
    source: str = "<defaults>"  # where the settings came from, for messages
    # Raw tables of sections parsed by the component that owns them (``[poller]``: see
    # ``scanner.poller.settings``), so one file and one reader serve every component.
    components: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False)


# -- loading -----------------------------------------------------------------------------------


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Convert one TOML/env value to the annotated type, or raise naming ``where``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if value is None or value == "":
            return None
        return _convert(value, non_none[0], where)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{where}: must be one of {choices}, got {value!r}")
        return value
    if origin in (Mapping, dict) or tp is Mapping:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table")
        return {str(k): _convert(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false",
                                                        "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int or tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            number = tp(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        if number < 0:
            raise ConfigError(f"{where}: must not be negative")
        return number
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string")
        return value
    if tp is Path:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a path string")
        return Path(value)
    if tp is Secret:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string")
        return Secret(value)
    if tp is HostPort:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected \"HOST:PORT\"")
        return HostPort.parse(value, what=where)
    raise ConfigError(f"{where}: unsupported setting type")  # pragma: no cover - programming error


def _section(cls: type[Any], table: Mapping[str, Any], env: Mapping[str, str], name: str,
             source: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{source}: [{name}] unknown key {unknown[0]!r}")
    values: dict[str, Any] = {}
    for key in known:
        env_key = f"{ENV_PREFIX}{name}_{key}".upper()
        where = f"{source}: [{name}] {key}"
        if env_key in env:
            values[key] = _convert(env[env_key], hints[key], f"environment {env_key}")
        elif key in table:
            values[key] = _convert(table[key], hints[key], where)
    return cls(**values)


# Sections whose keys belong to another component, which validates them itself.
COMPONENT_SECTIONS = ("poller",)

_SECTIONS: dict[str, type[Any]] = {
    f.name: typing.get_type_hints(Settings)[f.name]
    for f in dataclasses.fields(Settings)
    if f.name not in ("source", "components")
}


def environment() -> Mapping[str, str]:
    """The process environment, for components that read credentials from it (the poller)."""
    return os.environ


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/maruhi`` or ``~/.cache/maruhi`` (compiled rulesets of CLI runs)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "maruhi"


def load_settings(path: Path | None = None, *, env: Mapping[str, str] | None = None) -> Settings:
    """Read the TOML file (if any) and the environment into frozen ``Settings``."""
    environ = os.environ if env is None else env
    source = str(path) if path is not None else "<defaults>"
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read ({type(exc).__name__})") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML ({exc})") from exc
    unknown = sorted(set(data) - set(_SECTIONS) - set(COMPONENT_SECTIONS))
    if unknown:
        raise ConfigError(f"{source}: unknown section [{unknown[0]}]")
    components: dict[str, dict[str, Any]] = {}
    for name in COMPONENT_SECTIONS:
        if name in data:
            if not isinstance(data[name], dict):
                raise ConfigError(f"{source}: [{name}] must be a table")
            components[name] = data[name]
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
        sections[name] = _section(cls, table, environ, name, source)
    settings = Settings(**sections, source=source, components=components)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Cross-key checks; each message says which key is missing and that it has no default."""
    relay = settings.relay
    where = settings.source
    if (relay.tls_cert is None) != (relay.tls_key is None):
        missing = "tls_key" if relay.tls_key is None else "tls_cert"
        raise ConfigError(f"{where}: [relay] {missing} is required when STARTTLS is configured "
                          "(it has no default)")
    if relay.require_tls and relay.tls_cert is None:
        raise ConfigError(f"{where}: [relay] tls_cert is required by require_tls "
                          "(it has no default)")
    if relay.auth_required and not relay.auth_users:
        raise ConfigError(f"{where}: [relay] auth_users is required by auth_required "
                          "(it has no default)")
    if relay.auth_users and relay.tls_cert is None:
        raise ConfigError(f"{where}: [relay] tls_cert is required by auth_users: AUTH is "
                          "offered only over TLS (it has no default)")
    if settings.upstream.username and settings.upstream.password is None:
        raise ConfigError(f"{where}: [upstream] password is required by username "
                          "(it has no default)")
    if settings.upstream.pool_size < 1:
        raise ConfigError(f"{where}: [upstream] pool_size must be at least 1")
    if settings.web.idle_minutes <= 0 or settings.web.session_hours <= 0:
        raise ConfigError(f"{where}: [web] idle_minutes and session_hours must be positive")
    if settings.scan.timeout <= 0:
        raise ConfigError(f"{where}: [scan] timeout must be positive")
