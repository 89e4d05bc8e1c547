"""Where released messages and notices go: the upstream MTA and how to talk TLS to it.

Owns ``UpstreamTarget`` only (a frozen value); it must not open sockets. Its hazard is
``tls="opportunistic"``: it falls back to plain text when the upstream does not offer STARTTLS,
which is the right default for a loopback Postfix and the wrong one across a network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from scanner.config import Secret, Settings

TlsMode = Literal["none", "opportunistic", "required"]


@dataclass(frozen=True)
class UpstreamTarget:
    """An upstream SMTP server for re-injection: host, port, STARTTLS policy, CA, timeout."""

    host: str = "127.0.0.1"
    port: int = 10026
    tls: TlsMode = "opportunistic"
    ca_file: Path | None = None  # verify the upstream's certificate against this CA bundle
    timeout: float = 60.0  # seconds per SMTP command; a stalled upstream is retried later
    helo_name: str | None = None  # EHLO name; None: this host's name
    username: str = ""  # AUTH to the upstream when set (after STARTTLS)
    password: Secret | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> UpstreamTarget:
        """The upstream of the daemon's config (``[upstream]``)."""
        up = settings.upstream
        return cls(
            host=up.address.host,
            port=up.address.port,
            tls=up.tls,
            ca_file=up.ca_file,
            timeout=up.timeout,
            helo_name=up.helo_name or settings.relay.hostname or None,
            username=up.username,
            password=up.password,
        )

    @classmethod
    def parse(cls, text: str, **kw: object) -> UpstreamTarget:
        """``HOST:PORT`` (``[v6]:PORT`` for IPv6) into a target; other fields from ``kw``."""
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"expected HOST:PORT, got {text!r}")
        host = host.removeprefix("[").removesuffix("]")
        return cls(host=host, port=int(port), **kw)  # type: ignore[arg-type]
