"""Who recorded a row (host, pid and what makes that pid unique) and whether that process still runs.

A host name and a pid say little on their own: containers share host names, and pids are
reused. On Linux a process is also pinned down by the machine's boot id, its pid
namespace and its start time, so a process of this machine and namespace can be proved
alive or gone; one elsewhere cannot, and callers fall back on its heartbeat.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tuning_service.core.timestamps import iso_utc

ALIVE, GONE, UNKNOWN = "alive", "gone", "unknown"
_BOOT_ID = "/proc/sys/kernel/random/boot_id"  # new at every boot of a Linux machine


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or None if it does not exist here."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    try:  # the command name (field 2) may hold spaces and parentheses: count from its end
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def resident_mib(pid: int | str = "self") -> float | None:
    """Process ``pid``'s resident memory now, in MiB (None off Linux or once it has ended)."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def private_mib(pid: int | str = "self") -> float | None:
    """Process ``pid``'s own memory now, in MiB: the pages no other process maps, such as a
    fork's pages written since it was forked (None off Linux or once it has ended)."""
    rollup = _read(f"/proc/{pid}/smaps_rollup")
    if rollup is None:
        return None
    kib = sum(
        int(line.split()[1])
        for line in rollup.splitlines()
        if line.startswith(("Private_Clean:", "Private_Dirty:"))
    )
    return kib / 1024


def age_s(pid: int) -> float | None:
    """Seconds since process ``pid`` started (None off Linux or once it has ended)."""
    started, uptime = start_ticks(pid), _read("/proc/uptime")
    if started is None or uptime is None:
        return None
    return float(uptime.split()[0]) - started / os.sysconf("SC_CLK_TCK")


def pid_alive(pid: int) -> bool:
    """Whether a process of this host with ``pid`` still exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def identity() -> dict[str, Any]:
    """This process as a row records it beside its host and pid (None fields off Linux)."""
    return {
        "boot": _read(_BOOT_ID),
        "pidns": _pid_namespace(),
        "start": start_ticks(os.getpid()),
        "since": iso_utc(),
    }


def is_this_process(host: str | None, pid: int | None, recorded: Mapping[str, Any] | None) -> bool:
    return pid == os.getpid() and state(host, pid, recorded) == ALIVE


def state(host: str | None, pid: int | None, recorded: Mapping[str, Any] | None) -> str:
    """ALIVE or GONE when the recorded process is of this machine and pid namespace; UNKNOWN
    otherwise (another node, another container with the same host name)."""
    if pid is None:
        return UNKNOWN
    recorded = recorded or {}
    boot = _read(_BOOT_ID)
    if recorded.get("boot") and boot:
        if (recorded["boot"], recorded.get("pidns")) != (boot, _pid_namespace()):
            return UNKNOWN
        started = start_ticks(pid)
        if started is None:
            return GONE
        return ALIVE if recorded.get("start") in (None, started) else GONE  # else: the pid was reused
    if host == socket.gethostname():  # recorded without an identity (an older version, or not Linux)
        return ALIVE if pid_alive(pid) else GONE
    return UNKNOWN
