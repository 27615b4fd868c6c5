"""Which filesystem a path is on (Linux's mount table), so SQLite is never used over a network."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

# This process's mount table; absent outside Linux, where nothing is checked.
MOUNTS = Path("/proc/self/mounts")
# Filesystems whose locking SQLite's WAL mode cannot rely on (it needs shared memory and POSIX
# locks that every client sees): network and cluster filesystems, and FUSE ones over a network.
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "lustre", "gpfs", "ceph",
        "glusterfs", "beegfs", "ocfs2", "gfs2", "orangefs", "pvfs2",
        "fuse.sshfs", "fuse.ceph", "fuse.ceph-fuse", "fuse.glusterfs", "fuse.s3fs", "fuse.gcsfuse",
        "fuse.rclone", "fuse.juicefs", "fuse.lizardfs", "fuse.mfs", "fuse.moosefs", "fuse.davfs",
        "fuse.goofys", "fuse.blobfuse", "fuse.blobfuse2", "fuse.cvmfs", "fuse.weka", "fuse.beegfs",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Mount:
    """One line of the mount table."""

    point: Path
    fstype: str
    source: str


def mount_of(path: str | os.PathLike[str]) -> Mount | None:
    """The mount holding ``path`` (or its nearest existing folder); None without a mount table."""
    try:
        table = MOUNTS.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    probe = Path(os.path.expanduser(path)).absolute()
    while not os.path.exists(probe) and probe != probe.parent:
        probe = probe.parent
    probe = probe.resolve()
    found: Mount | None = None
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = Path(_unescape(fields[1]))
        if (point == probe or point in probe.parents) and (
            found is None or len(point.parts) >= len(found.point.parts)
        ):
            found = Mount(point, fields[2], _unescape(fields[0]))  # the last of equal points wins
    return found


def network_mount(path: str | os.PathLike[str]) -> Mount | None:
    """The network filesystem holding ``path``, if it is on one."""
    mount = mount_of(path)
    return mount if mount is not None and mount.fstype.lower() in NETWORK_FILESYSTEMS else None


def _unescape(field: str) -> str:
    """The mount table writes space, tab, newline and backslash in paths as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)
