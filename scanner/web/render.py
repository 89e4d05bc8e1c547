"""Page rendering shared by the routes: the language, the user and the CSRF token in every page.

Owns ``render`` (template + common values) and the HTML/JSON error responses. It must not put
request data into an error message (errors name what failed, never what was sent).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from scanner.web.i18n import pick_language, translator
from scanner.web.security import LANG_COOKIE, Principal


def language(request: Request) -> str:
    return pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    principal: Principal | None = getattr(request.state, "principal", None)
    lang = language(request)
    values.setdefault("csrf_token", principal.csrf_token if principal else "")
    response: HTMLResponse = request.app.state.ctx.templates.TemplateResponse(
        request,
        template,
        {"t": translator(lang), "lang": lang, "user": principal.user if principal else None,
         **values},
        status_code=status_code,
    )
    return response


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error(request: Request, status_code: int, key: str) -> Response:
    """An error as JSON for the API, as a page for browsers; ``key`` is an i18n key."""
    if is_api(request):
        return JSONResponse({"error": key}, status_code=status_code)
    return render(request, "error.html", status_code=status_code, message_key=key)
