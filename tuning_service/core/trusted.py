"""Folders and job files named by the results database, checked before their code is imported or unpickled.

`resume` unpickles Ray Tune's saved state from a sweep's folder and imports its job file;
`refit` imports the job file. Both paths come from a database row, which anyone who can
write to the database (or to the folders) could point elsewhere. So each is refused,
in one line, unless it is yours, writable by no one else, and (a sweep folder) inside
the results root this command was given.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path

from tuning_service.core.errors import InputError

# What Tune unpickles or reads as its state when a sweep is restored.
_STATE_SUFFIXES = (".pkl", ".json", ".tar")


def check_sweep_folder(
    sweep_id: str, sweep_dir: str | os.PathLike[str], storage: str | os.PathLike[str]
) -> Path:
    """The sweep's folder, resolved; InputError unless it is safe to load Tune's state from.

    Inside the results root ``storage`` (symbolic links resolved), and, from the root
    down to the folder, its ``trials`` folder and the state files Tune reads there:
    owned by this user and writable by no one else.
    """
    root = Path(os.path.expanduser(storage)).absolute().resolve()
    folder = Path(os.path.expanduser(sweep_dir)).absolute().resolve()
    if folder == root or root not in folder.parents:
        raise InputError(
            f"sweep {sweep_id}: its folder {str(folder)!r} is not inside the results root {str(root)!r}; "
            "pass the --storage it was run with (Ray Tune's saved state is code: it is loaded only from there)"
        )
    chain = [folder, *[p for p in folder.parents if p == root or root in p.parents]]
    trials = folder / "trials"
    state = [p for p in (trials.iterdir() if os.path.isdir(trials) else ()) if p.suffix in _STATE_SUFFIXES]
    for path in [*reversed(chain), trials, *sorted(state), *folder.glob("*.tar")]:
        if os.path.exists(path):
            _check_private(path, f"sweep {sweep_id}")
    return folder


def check_job_file(job_ref: str) -> None:
    """A job recorded as a file (``path.py[:ATTR]``, ``path.yaml``): yours and writable by no one else.

    Built-in names and ``package.module:JOB`` references are imported the usual way.
    """
    path = Path(job_ref)
    if not os.path.exists(path):
        path = Path(job_ref.partition(":")[0])
    if not os.path.isfile(path):
        return
    resolved = path.absolute().resolve()
    for checked in (resolved.parent, resolved):
        _check_private(checked, f"job file {str(path)!r}")


def _check_private(path: Path, what: str) -> None:
    info = path.stat()
    me = os.getuid()
    if info.st_uid != me:
        raise InputError(
            f"{what}: {str(path)!r} belongs to {_user(info.st_uid)}, not to you ({_user(me)}); "
            "only your own sweeps and job files are loaded (they hold code)"
        )
    if _writable_by_others(info):
        raise InputError(
            f"{what}: {str(path)!r} is writable by other users (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"if you trust its contents, run `chmod go-w {path}` and try again"
        )


def _writable_by_others(info: os.stat_result) -> bool:
    """World-writable, or group-writable by a group other than the owner's own (user private group)."""
    if info.st_mode & stat.S_IWOTH:
        return True
    return bool(info.st_mode & stat.S_IWGRP) and not _private_group(info.st_gid, info.st_uid)


def _private_group(gid: int, uid: int) -> bool:
    """The owner's own group (Debian's "user private groups", umask 002): its write bit admits no one else."""
    try:
        user, group = pwd.getpwuid(uid), grp.getgrgid(gid)
    except KeyError:
        return False
    return user.pw_gid == gid and group.gr_name == user.pw_name and set(group.gr_mem) <= {user.pw_name}


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
