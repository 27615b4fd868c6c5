"""Calls that a library makes without a timeout (Ray's Jobs client, Ray's GCS handshake, urlopen's DNS), bounded."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def within(seconds: float, call: Callable[[], T], *, what: str) -> T:
    """``call()``'s result, or its exception, if it ends within ``seconds``; TimeoutError if not.

    The call runs in a daemon thread: one that never returns is left behind (it holds
    only a socket) instead of hanging the command or the scheduler.
    """
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"within:{what}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"{what}: no answer within {seconds:g}s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]
