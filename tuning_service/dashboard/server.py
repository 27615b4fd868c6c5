"""Serve the dashboard with uvicorn on a socket bound (and checked) before anything is announced."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from starlette.applications import Starlette

from tuning_service.core.errors import InputError

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one); one line when it cannot be had."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        raise InputError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port, or a --host "
            "address of this machine"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(app: Starlette, sock: socket.socket, *, on_start: Callable[[], None] | None = None) -> None:
    """Serve until interrupted (Ctrl-C, SIGTERM); ``on_start`` runs once the socket answers."""
    import uvicorn

    # log_config=None: uvicorn's messages go through the CLI's handlers (one line per event off a terminal).
    config = uvicorn.Config(
        app, log_config=None, log_level="warning", access_log=False, lifespan="off", server_header=False
    )
    server = uvicorn.Server(config)
    if on_start is not None:
        original = server.startup

        async def startup(sockets: list[socket.socket] | None = None) -> None:
            await original(sockets=sockets)
            on_start()

        server.startup = startup  # type: ignore[method-assign]
    server.run(sockets=[sock])
