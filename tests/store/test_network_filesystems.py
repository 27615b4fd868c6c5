"""SQLite is never used on a network filesystem: its WAL locking is unsafe there and writes get lost.

The mount table is Linux's own format; these tests point the check at a copy that says
where an NFS, CIFS or sshfs share is mounted (mounting one needs a server this machine has not).
"""

from __future__ import annotations

import pytest

from tuning_service.cli import main
from tuning_service.store import filesystems


@pytest.fixture
def shared(tmp_path, monkeypatch):
    """A folder the mount table says is an NFS 4 share, under a local root."""
    share = tmp_path / "shared data"
    share.mkdir()
    table = tmp_path / "mounts"
    escaped = str(share).replace(" ", "\\040")
    table.write_text(
        "/dev/vda / ext4 rw,relatime 0 0\n"
        f"tmpfs {tmp_path} tmpfs rw 0 0\n"
        f"fileserver:/export/results {escaped} nfs4 rw,relatime,vers=4.2 0 0\n"
    )
    monkeypatch.setattr(filesystems, "MOUNTS", table)
    return share


@pytest.mark.parametrize(
    "argv",
    [["run", "digits"], ["results"], ["export"], ["resume", "20260101-000000-aaaaaa"]],
    ids=["run", "results", "export", "resume"],
)
def test_sqlite_on_a_network_share_is_refused_in_one_line(shared, capsys, argv):
    """Before: the sweep wrote SQLite in WAL mode onto the share."""
    storage = shared / "results"
    code = main([*argv, "--storage", str(storage)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err == (
        f"error: results database '{storage}/tuning.db' would be SQLite on a network filesystem (nfs4 at "
        f"'{shared}'), where its locking is unsafe and writes get lost; use PostgreSQL: --db "
        "postgresql://USER@HOST/DB (or TUNING_SERVICE_DB), or keep --storage on a local disk\n"
    )
    assert not storage.exists()


def test_the_nearest_mount_decides(shared, tmp_path):
    assert filesystems.network_mount(shared / "results" / "tuning.db").fstype == "nfs4"
    assert filesystems.mount_of(tmp_path / "local" / "tuning.db").fstype == "tmpfs"
    assert filesystems.network_mount(tmp_path / "local" / "tuning.db") is None


@pytest.mark.parametrize(
    "fstype", ["nfs", "cifs", "smb3", "fuse.sshfs", "lustre", "gpfs", "ceph", "fuse.s3fs"]
)
def test_every_kind_of_network_filesystem_is_known(tmp_path, monkeypatch, fstype):
    table = tmp_path / "mounts"
    table.write_text(f"/dev/vda / ext4 rw 0 0\nremote:/x {tmp_path} {fstype} rw 0 0\n")
    monkeypatch.setattr(filesystems, "MOUNTS", table)
    assert filesystems.network_mount(tmp_path / "r" / "tuning.db").fstype == fstype


def test_without_a_mount_table_nothing_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(filesystems, "MOUNTS", tmp_path / "no-such-table")
    assert filesystems.network_mount(tmp_path) is None
