"""The review app's settings and the handles every route uses (stores, clock, templates).

Owns ``WebSettings`` (a frozen value the composition root fills from the config) and
``WebContext`` (what ``create_app`` wires together and puts on ``app.state.ctx``). It must not
read the environment or files: the caller passes everything. Hazard: the stores are blocking;
routes call them from sync endpoints (FastAPI's thread pool) or ``run_in_threadpool``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from fastapi.templating import Jinja2Templates

from scanner.accounts.base import AccountStore
from scanner.limits import DEFAULT_LIMITS, Limits
from scanner.rulestore.active import ActiveRuleset
from scanner.rulestore.base import RuleStore
from scanner.store.base import QuarantineStore
from scanner.web.dryrun import CorpusLimits
from scanner.web.queries import QuarantineQueries
from scanner.web.requests import ReleaseRequests
from scanner.web.searches import SavedSearches
from scanner.web.security import LoginLimiter


@dataclass(frozen=True)
class WebSettings:
    """``[web]`` of the config."""

    data_dir: Path
    # Secure cookies need HTTPS (or a browser that treats 127.0.0.1 as secure); only a
    # loopback test setup turns this off.
    cookie_secure: bool = True
    idle_timeout: timedelta = timedelta(minutes=30)
    session_lifetime: timedelta = timedelta(hours=12)
    login_max_failures: int = 5
    login_window: timedelta = timedelta(minutes=15)
    # Held messages re-scanned by a dry run: bounded so one click cannot occupy the server.
    dry_run_limit: int = 500
    expiring_days: int = 14
    # How often time-limited scope extensions are checked for lapse (None: never, in tests).
    grant_check_interval: timedelta | None = timedelta(minutes=5)
    limits: Limits = field(default=DEFAULT_LIMITS)
    corpus_limits: CorpusLimits = field(default=CorpusLimits())


@dataclass
class WebContext:
    settings: WebSettings
    store: QuarantineStore
    accounts: AccountStore
    rules: RuleStore
    active: ActiveRuleset
    queries: QuarantineQueries
    limiter: LoginLimiter
    templates: Jinja2Templates
    now: Callable[[], datetime]
    requests: ReleaseRequests
    link_key: bytes = field(repr=False, default=b"")  # scanner.notify.links
    searches: SavedSearches = field(default_factory=SavedSearches, repr=False)
