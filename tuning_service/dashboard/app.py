"""The dashboard's Starlette application: routes, templates, the token guard and security headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from tuning_service.cli.database import fmt, fmt_duration
from tuning_service.core.errors import InputError
from tuning_service.dashboard import auth, downloads, figures, pages
from tuning_service.store import Store, StoreError

HERE = Path(__file__).resolve().parent
# Everything a page loads comes from this server: a browser refuses anything else.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=str(HERE / "templates"))
    found.env.filters.update(fmt=fmt, duration=fmt_duration, when=_when)
    found.env.globals["css_status"] = lambda status: "status-" + str(status).split()[0]
    return found


async def _security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "json" not in request.headers.get("accept", "")


async def _not_found(request: Request, exc: Exception) -> Response:
    return _error(request, str(exc), 404)


async def _store_failed(request: Request, exc: Exception) -> Response:
    return _error(request, str(exc), 503)


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # registered for HTTPException only
        raise exc
    return _error(request, str(exc.detail), exc.status_code)


def _error(request: Request, message: str, status: int) -> Response:
    if not _wants_html(request):
        return JSONResponse({"error": message}, status_code=status)
    page: Response = request.app.state.templates.TemplateResponse(
        request, "error.html", {"message": message, "status": status}, status_code=status
    )
    return page


def create_app(store: Store, *, token: str | None = None, schedule_files: Sequence[Path] = ()) -> Starlette:
    """The application over ``store`` (open it with `open_read_only`); ``token``: required of every
    request; ``schedule_files``: schedule files whose sweeps' next runs the schedules page shows."""
    routes = [
        Route("/", pages.overview),
        Route("/sweeps/{sweep_id}", pages.sweep),
        Route("/jobs/{job}", pages.job),
        Route("/schedules", pages.schedules),
        Route("/compare", pages.compare),
        Route("/login", auth.login, methods=["GET", "POST"]),
        Route("/api/state", figures.state),
        Route("/api/sweeps/{sweep_id}/figures/{name}", figures.sweep_figure),
        Route("/api/jobs/{job}/history", figures.job_history),
        Route("/api/compare", figures.compare),
        Route("/sweeps/{sweep_id}/export.{fmt}", downloads.sweep_export),
        Route("/sweeps/{sweep_id}/pareto.{fmt}", downloads.pareto_export),
        Route("/jobs/{job}/export.{fmt}", downloads.job_export),
        Route("/sweeps/{sweep_id}/report.html", downloads.report),
        Route("/healthz", lambda request: PlainTextResponse("ok\n")),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(BaseHTTPMiddleware, dispatch=_security_headers),
            Middleware(BaseHTTPMiddleware, dispatch=auth.guard(token)),
        ],
        exception_handlers={InputError: _not_found, StoreError: _store_failed, HTTPException: _http_error},
    )
    app.state.store = store
    app.state.token = token
    app.state.templates = templates()
    app.state.cache = {}
    app.state.schedule_files = tuple(schedule_files)
    return app
