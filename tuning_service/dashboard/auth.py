"""The dashboard's token: a private file, asked for whenever the server listens beyond loopback."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from tuning_service.core.errors import InputError

COOKIE = "tuning_service_dashboard"
# What a browser can fetch before it logs in: the login form and the files it needs.
OPEN_PATHS = ("/login", "/static/")


def default_token_path() -> Path:
    return Path.home() / ".config" / "tuning-service" / "dashboard_token"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: only this machine can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_or_create_token(path: Path) -> str:
    """The token in ``path``; a new one (256 random bits, mode 0600, created exclusively) when absent.

    A file that others can read, that another user owns, or that is not a regular file is
    refused: anyone who reads it reads every result.
    """
    shown = str(path)
    if not path.exists() and not path.is_symlink():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise InputError(
                f"cannot create the dashboard token file {shown!r}: {exc.strerror or exc}"
            ) from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        raise InputError(
            f"dashboard token file {shown!r} is not a regular file (a link or a folder); remove it"
        )
    if info.st_uid != os.getuid():
        raise InputError(f"dashboard token file {shown!r} belongs to another user; use a file of your own")
    if info.st_mode & 0o077:
        raise InputError(
            f"dashboard token file {shown!r} can be read by other users (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"run `chmod 600 {shown}` and try again"
        )
    token = path.read_text(encoding="utf-8").strip()
    if len(token) < 16:
        raise InputError(
            f"dashboard token file {shown!r} holds {len(token)} characters; give at least 16 "
            "(remove the file and one of 64 random hex digits is made)"
        )
    return token


def cookie_value(token: str) -> str:
    """What the login cookie holds: derived from the token, never the token itself."""
    return hmac.new(token.encode(), b"tuning-service dashboard cookie", hashlib.sha256).hexdigest()


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def allowed(request: Request, token: str) -> bool:
    sent = _bearer(request)
    if sent is not None and hmac.compare_digest(sent.encode(), token.encode()):
        return True
    cookie = request.cookies.get(COOKIE)
    return cookie is not None and hmac.compare_digest(cookie.encode(), cookie_value(token).encode())


def guard(
    token: str | None,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """HTTP middleware: 401 without the token (header or login cookie); nothing asked without a token."""

    async def check(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if token is None or request.url.path.startswith(OPEN_PATHS) or allowed(request, token):
            return await call_next(request)
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(
                '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>401</title>'
                '<link rel="stylesheet" href="/static/dashboard.css"></head><body><main>'
                "<h1>Token required</h1><p>This dashboard listens beyond this machine: "
                '<a href="/login">log in with its token</a>.</p></main></body></html>',
                status_code=401,
            )
        return PlainTextResponse(
            "401: this dashboard needs its token: send `Authorization: Bearer TOKEN` or log in at /login\n",
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    return check


async def login(request: Request) -> Response:
    """GET: the form. POST: check the token; right, set the cookie and go to the overview."""
    token: str | None = request.app.state.token
    if token is None:
        return RedirectResponse("/", status_code=303)
    wrong = False
    if request.method == "POST":
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        sent = (form.get("token") or [""])[0].strip()
        if hmac.compare_digest(sent.encode(), token.encode()):
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(COOKIE, cookie_value(token), httponly=True, samesite="strict", path="/")
            return response
        wrong = True
    page: Response = request.app.state.templates.TemplateResponse(
        request, "login.html", {"wrong": wrong}, status_code=401 if wrong else 200
    )
    return page
