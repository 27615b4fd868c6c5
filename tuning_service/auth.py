"""Where this process finds the Ray cluster's token; the token itself is never logged or shipped."""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from tuning_service.errors import InputError

log = logging.getLogger(__name__)

# Ray's own settings (Ray >= 2.52); it reads them when it is imported.
MODE_ENV = "RAY_AUTH_MODE"
TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"

HOW_TO_GET_TOKEN = (
    "copy the head's token file (mode 0600) to this machine and point RAY_AUTH_TOKEN_PATH at it, "
    "e.g. `scp HEAD:~/.ray/auth_token ~/.ray/auth_token && chmod 600 ~/.ray/auth_token`"
)


def default_token_path() -> Path:
    """Where Ray looks last, and where `cluster/start-head.sh` writes a new token."""
    return Path.home() / ".ray" / "auth_token"


@dataclass(frozen=True)
class TokenSource:
    """Where the token comes from, in words fit for a message (never the token)."""

    where: str
    path: Path | None = None


def token_source() -> TokenSource | None:
    """The token Ray will use, in Ray's own order: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token.

    A RAY_AUTH_TOKEN_PATH naming a missing or empty file is refused here: Ray
    aborts the whole process on it, with no message a user can act on.
    """
    if os.environ.get(TOKEN_ENV):
        return TokenSource(f"the {TOKEN_ENV} environment variable")
    configured = os.environ.get(TOKEN_PATH_ENV)
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file() or path.stat().st_size == 0:
            raise InputError(
                f"{TOKEN_PATH_ENV}={configured!r} names no token file (missing or empty); "
                f"{HOW_TO_GET_TOKEN}, or unset {TOKEN_PATH_ENV}"
            )
        _warn_if_readable_by_others(path)
        return TokenSource(f"{TOKEN_PATH_ENV} ({path})", path)
    path = default_token_path()
    if path.is_file() and path.stat().st_size > 0:
        _warn_if_readable_by_others(path)
        return TokenSource(str(path), path)
    return None


def read_token() -> str | None:
    """The token's value, for an HTTP Authorization header; None when there is none."""
    source = token_source()
    if source is None:
        return None
    if source.path is None:
        return os.environ[TOKEN_ENV].strip()
    return source.path.read_text(encoding="utf-8").strip()


def bearer_headers() -> dict[str, str]:
    """Headers for Ray's dashboard and Jobs API; empty without a token."""
    token = read_token()
    return {"Authorization": f"Bearer {token}"} if token else {}


def prepare_client_auth() -> TokenSource | None:
    """Turn Ray's token mode on for a cluster client that has a token (before Ray is imported).

    Ray sends no token unless RAY_AUTH_MODE=token, even when one is configured, and
    a cluster started with token authentication refuses such a client.
    """
    source = token_source()
    if source is not None and not os.environ.get(MODE_ENV):
        os.environ[MODE_ENV] = "token"
    return source


def missing_or_wrong(source: TokenSource | None) -> str:
    """The second half of an 'access refused' message: what this process sent, what to do."""
    if source is None:
        return f"this machine has no token ({TOKEN_ENV}, {TOKEN_PATH_ENV} or ~/.ray/auth_token); {HOW_TO_GET_TOKEN}"
    return f"the token from {source.where} is not this cluster's; {HOW_TO_GET_TOKEN}"


def _warn_if_readable_by_others(path: Path) -> None:
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        log.warning("token file %s is readable by other users; run: chmod 600 %s", path, path)
