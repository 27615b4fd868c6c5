"""One live driver per sweep: a lock on ``<sweep>/driver.lock``, held open for the driver's whole life.

The lock is a POSIX record lock (``fcntl.lockf``): the kernel drops it when its process
ends, however it ends (a SIGKILL, a crash, a reboot), so a dead driver never blocks a
resume, and a child process never inherits it. Every process that reaches the sweep's
folder sees it, on this machine (containers too) and on other machines sharing the folder
over NFS when the mount has locking (NFSv4, or NFSv3 with lockd; not `nolock` or
`local_lock=all`); an NFS server releases the lock of a node that crashed when its lease
expires (about 90 s on NFSv4). The results database's heartbeat check
(`resume.check_no_live_driver`) covers folders whose locks are not shared.

POSIX locks do not conflict within one process and are dropped when the process closes any
descriptor of the file, so this module keeps the one descriptor per folder, and a registry
refuses a second driver of the same sweep in this process too.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

from tuning_service.core.errors import InputError
from tuning_service.core.timestamps import iso_utc

log = logging.getLogger(__name__)

LOCK_FILE = "driver.lock"
# Folders whose lock this process holds -> who holds it (this process, as written in the file).
_HELD: dict[Path, dict[str, Any]] = {}


class DriverLock:
    """A held lock; `release` (or leaving the ``with`` block) gives it back."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path, self._fd = path, fd

    @classmethod
    def acquire(cls, sweep_dir: Path, sweep_id: str) -> DriverLock:
        """Take the lock of ``sweep_dir``; InputError naming the live driver if another holds it."""
        path = Path(sweep_dir).absolute() / LOCK_FILE
        if path in _HELD:
            raise InputError(_refusal(sweep_id, path, _HELD[path]))
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise InputError(
                f"sweep {sweep_id}: cannot open its driver lock {path} ({exc.strerror or exc}); "
                "its folder must be writable by whoever drives it"
            ) from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                holder = _holder(fd)
                os.close(fd)
                raise InputError(_refusal(sweep_id, path, holder)) from None
            # ENOLCK and friends: a filesystem without locks (an NFS mount with `nolock`).
            log.warning(
                "sweep %s: cannot lock %s (%s); only the results database's heartbeat guards against a "
                "second driver",
                sweep_id,
                path,
                exc.strerror or exc,
            )
            os.close(fd)
            return cls(path, None)
        me = {
            "sweep_id": sweep_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": iso_utc(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        _HELD[path] = me
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is not None:
            _HELD.pop(self.path, None)
            os.close(self._fd)  # closing drops the lock
            self._fd = None

    def __enter__(self) -> DriverLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder(fd: int) -> dict[str, Any]:
    """What the lock's holder wrote about itself (empty if it has not written yet)."""
    try:
        found = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _refusal(sweep_id: str, path: Path, holder: dict[str, Any]) -> str:
    who = (
        f"pid {holder['pid']} on {holder.get('host', '?')} since {holder.get('since', '?')}"
        if holder.get("pid")
        else "another process"
    )
    return (
        f"sweep {sweep_id} is still being driven by {who} (it holds {path}); one sweep cannot have two "
        "drivers: wait for it to end, or stop it first"
    )
