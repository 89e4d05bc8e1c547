"""The review and rules web app: ``create_app`` wires stores and routes; ``serve_web`` runs it.

Owns the FastAPI application (HTML pages for people, ``/api/v1`` JSON with an OpenAPI document
at ``/api/v1/openapi.json`` for integrations), its security headers and error mapping, and the
uvicorn server coroutine the composition root runs next to the relay. It must not scan on the
event loop, write the quarantine except through the store's decisions, or log request URLs (a
subject search is in the query string): uvicorn's access log is off.

Hazard: every page shows confidential mail to someone; headers forbid caching (``no-store``),
framing (except our own sanitised-body frame) and any script but our own file.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from scanner.accounts import AccountStore, open_accounts
from scanner.aio import spawn
from scanner.notify.links import load_link_key
from scanner.rulestore import RuleStore, open_rulestore
from scanner.rulestore.active import ActiveRuleset
from scanner.store import QuarantineStore, open_store
from scanner.web import (
    routes_admin,
    routes_api,
    routes_audit,
    routes_auth,
    routes_quarantine,
    routes_rules,
    routes_status,
)
from scanner.web.context import WebContext, WebSettings
from scanner.web.queries import QuarantineQueries
from scanner.web.render import error, is_api
from scanner.web.requests import ReleaseRequests
from scanner.web.security import PAGE_CSP, Forbidden, LoginLimiter, LoginRequired

_HERE = Path(__file__).parent
_log = structlog.get_logger("maruhi.web")


def _templates() -> Jinja2Templates:
    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Jinja2Templates(env=env)


def create_app(
    settings: WebSettings,
    *,
    store: QuarantineStore | None = None,
    accounts: AccountStore | None = None,
    rules: RuleStore | None = None,
    now: Callable[[], datetime] | None = None,
) -> FastAPI:
    """The app over ``settings.data_dir``; stores given by the caller are not closed by it."""
    owned: list[QuarantineStore | AccountStore | RuleStore] = []
    if store is None:
        store = open_store(settings.data_dir)
        owned.append(store)
    if accounts is None:
        accounts = open_accounts(settings.data_dir)
        owned.append(accounts)
    if rules is None:
        rules = open_rulestore(settings.data_dir)
        owned.append(rules)
    queries = QuarantineQueries(settings.data_dir)
    requests = ReleaseRequests(settings.data_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        lapser = None
        if settings.grant_check_interval is not None:
            lapser = spawn(_lapse_loop(app.state.ctx, settings.grant_check_interval),
                           name="web.scope_lapse")
        yield
        if lapser is not None:
            lapser.cancel()
        queries.close()
        requests.close()
        for handle in owned:
            handle.close()

    app = FastAPI(
        title="Maruhi review API",
        version="1",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # Swagger UI loads scripts from a CDN: not on a page that shows mail
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.ctx = WebContext(
        settings=settings,
        store=store,
        accounts=accounts,
        rules=rules,
        active=ActiveRuleset(rules),
        queries=queries,
        limiter=LoginLimiter(max_failures=settings.login_max_failures,
                             window=settings.login_window),
        templates=_templates(),
        now=now or (lambda: datetime.now(UTC)),
        requests=requests,
        link_key=load_link_key(settings.data_dir),
    )
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
    for module in (routes_auth, routes_quarantine, routes_rules, routes_audit, routes_api,
                   routes_status, routes_admin):
        app.include_router(module.router)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[..., object]) -> Response:
        response: Response = await call_next(request)  # type: ignore[misc]
        headers = response.headers
        headers.setdefault("Content-Security-Policy", PAGE_CSP)
        headers.setdefault("X-Frame-Options", "DENY")
        headers["X-Content-Type-Options"] = "nosniff"
        # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on form
        # posts, which the CSRF origin check must refuse; nothing leaks to other sites either way.
        # A route may ask for less (the sender's status link sets no-referrer).
        headers.setdefault("Referrer-Policy", "same-origin")
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if not request.url.path.startswith("/static/"):
            headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if is_api(request):
            return error(request, 401, "login")
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return error(request, 403, "csrf_failed" if exc.reason == "csrf" else "forbidden")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        key = {404: "not_found", 403: "forbidden"}.get(exc.status_code, "error")
        return error(request, exc.status_code, key)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        # Field names only: the values may be a message body or a term.
        if is_api(request):
            from fastapi.responses import JSONResponse

            fields = sorted({".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()})
            return JSONResponse({"error": "invalid_request", "fields": fields}, status_code=422)
        return error(request, 422, "reason_required")

    return app


async def _lapse_loop(ctx: WebContext, interval: timedelta) -> None:
    """Lapse time-limited scope extensions now (catching up after downtime), then periodically."""
    from starlette.concurrency import run_in_threadpool

    from scanner.web.extend import lapse_due

    while True:
        try:
            version = await run_in_threadpool(lapse_due, ctx)
            if version is not None:
                _log.info("web.scope_lapsed", rules_version=version.id)
        except Exception as exc:  # keep checking: the next round may succeed (database busy)
            _log.error("web.scope_lapse_failed", error=type(exc).__name__)
        await asyncio.sleep(interval.total_seconds())


async def serve_web(
    host: str,
    port: int,
    settings: WebSettings,
    *,
    store: QuarantineStore | None = None,
    accounts: AccountStore | None = None,
    rules: RuleStore | None = None,
    stop: asyncio.Event | None = None,
    started: asyncio.Event | None = None,
) -> None:
    """Serve the app until ``stop`` is set (a clean uvicorn shutdown) or until cancelled.

    ``started`` is set once the socket listens; a failed start (address in use) raises
    ``OSError`` instead of uvicorn's ``sys.exit``."""
    # Opening the stores and building the app is blocking work: not on the event loop.
    app = await asyncio.to_thread(create_app, settings, store=store, accounts=accounts,
                                  rules=rules)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,  # URLs may carry a subject search; never log them
        log_config=None,  # the daemon configured logging (structlog) already
        server_header=False,
        proxy_headers=False,
    )
    server = _Server(config)
    server.started_event = started
    if stop is None:
        await server.serve()
        return

    async def watch() -> None:
        await stop.wait()
        server.should_exit = True

    watcher = spawn(watch(), name="web.stop")
    try:
        await server.serve()
    finally:
        watcher.cancel()


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the daemon owns SIGTERM/SIGINT and stops us."""

    started_event: asyncio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        except SystemExit:
            raise OSError(f"review web app cannot listen on {self.config.host}:"
                          f"{self.config.port}") from None
        if self.started and self.started_event is not None:
            self.started_event.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
