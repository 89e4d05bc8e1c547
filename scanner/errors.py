"""The one exception tree of Maruhi; callers catch by the class that tells them what to do.

    MaruhiError                 root: never escapes an adapter as a traceback
    ├── RuleError               a rules file or upload is invalid (user-facing: file, line, rule id)
    ├── ExtractionError         one part could not be read; becomes an ``Unscannable`` reason
    │   ├── EncryptedError      the part is password-protected (reason ``encrypted``)
    │   └── LimitExceeded       a hostile-input limit was hit (reason = the limit's name)
    └── TransientError          I/O that may succeed later (becomes SMTP 451 / retry)

Third-party errors are wrapped with ``raise ... from exc`` so that the cause stays visible to a
developer while a user sees only our message, which never contains a secret term or body text.
"""

from __future__ import annotations

from dataclasses import dataclass


class MaruhiError(Exception):
    """Root of every error Maruhi raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a rules file, located as precisely as the input allows."""

    file: str
    line: int | None
    column: int | None
    message: str
    rule_id: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        rule = f" [rule {self.rule_id}]" if self.rule_id else ""
        return f"{where}:{rule} {self.message}"


class RuleError(MaruhiError):
    """A rules file (YAML or CSV) is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ExtractionError(MaruhiError):
    """A part could not be read; ``reason`` is short, stable and free of content."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class EncryptedError(ExtractionError):
    """The part is encrypted or password-protected."""

    def __init__(self) -> None:
        super().__init__("encrypted")


class LimitExceeded(ExtractionError):
    """A limit on hostile input was reached; ``reason`` is the limit's name."""

    def __init__(self, limit_name: str) -> None:
        super().__init__(limit_name)


class TransientError(MaruhiError):
    """An I/O failure that may succeed on retry (upstream down, disk full, database busy)."""
