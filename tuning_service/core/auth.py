"""Where this process finds the Ray cluster's token; the token itself is never logged or shipped."""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from tuning_service.core.errors import InputError

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
        path = Path(os.path.expanduser(configured))
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
    warn_if_auth_disabled()
    source = token_source()
    if source is not None and not os.environ.get(MODE_ENV):
        os.environ[MODE_ENV] = "token"
    return source


def warn_if_auth_disabled() -> None:
    """Say so, once, when the environment turns Ray's token authentication off (it is honoured)."""
    mode = os.environ.get(MODE_ENV, "").strip()
    if mode and mode.lower() != "token" and ("mode", mode) not in _warned:
        _warned.add(("mode", mode))
        log.warning(
            "%s=%s: Ray runs without token authentication, so anyone who can reach its ports can run "
            "code as you, and a cluster started by cluster/start-head.sh refuses this client; unset it",
            MODE_ENV,
            mode,
        )


def warn_if_sent_in_clear(url: str) -> None:
    """Say so, once per address, when the token is about to travel in plain HTTP beyond this machine."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "http" or _is_loopback(host) or token_source() is None:
        return
    if ("http", host) in _warned:
        return
    _warned.add(("http", host))
    log.warning(
        "the cluster token goes to %s in plain HTTP: anyone on the network path can read it and run code on "
        "the cluster; reach the Jobs API through `ssh -L 8265:127.0.0.1:8265 %s` and use "
        "--address http://127.0.0.1:8265 (or put HTTPS in front of it)",
        host,
        host,
    )


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# What has been warned about in this process: a scheduler would otherwise say it at every run.
_warned: set[tuple[str, str]] = set()


def missing_or_wrong(source: TokenSource | None) -> str:
    """The second half of an 'access refused' message: what this process sent, what to do."""
    if source is None:
        return f"this machine has no token ({TOKEN_ENV}, {TOKEN_PATH_ENV} or ~/.ray/auth_token); {HOW_TO_GET_TOKEN}"
    return f"the token from {source.where} is not this cluster's; {HOW_TO_GET_TOKEN}"


def _warn_if_readable_by_others(path: Path) -> None:
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        log.warning("token file %s is readable by other users; run: chmod 600 %s", path, path)
