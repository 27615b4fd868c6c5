"""Tune's copy of the driver's staging folder into the sweep's folder, of the changed files only.

Tune writes a sweep's files on the driver into a staging folder first (the experiment
snapshot, and each trial's result.json, progress.csv, params and TensorBoard file in a folder
of its own), and after each snapshot copies the whole folder into the sweep's `trials/`
folder, on a thread of the driver (its `_FilesystemSyncer`). With a snapshot in every step that
starts or ends a trial (`snapshotpace.py`), each copy rewrote every file of every trial so far,
on the driver's CPU (`python -m benchmarks.overhead --trials 256`; RESULTS.md, "What the
changes did").

Where the sweep's folder is on a local or shared filesystem (the service's storage), the
copy here skips a file whose size and modification time are those it copied last, provided
that time was already in the past when that copy began, as the filesystem's clock tells it
(a marker file beside the staging folder, touched as each copy begins: a filesystem with
coarse timestamps could show a file rewritten in the same tick with the same size as
unchanged, so such a file is copied again). Every other storage keeps Tune's copy. A driver
starts with nothing copied, so its first copy writes every file, as Tune's did.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tuning_service.raytune.tunepatch import replaced

try:
    from ray.train._internal.storage import _FilesystemSyncer
except ImportError:  # a Ray that copies otherwise: it keeps its own copy (`changed_files_synced`)
    _FilesystemSyncer = object  # type: ignore[misc, assignment]

log = logging.getLogger(__name__)

# Beside the staging folder: its modification time is the filesystem's clock as a copy begins.
CLOCK_FILE = ".tuning-service-sync-clock"


@contextmanager
def changed_files_synced() -> Iterator[None]:
    """While open, sweeps that Tune sets up copy only changed files into a local sweep folder;
    a Ray whose Tune copies otherwise (its private names) keeps its copy, and the log says so."""
    from ray.train._internal import storage

    if _FilesystemSyncer is object or getattr(storage, "_FilesystemSyncer", None) is not _FilesystemSyncer:
        log.debug("Tune's copy of the staging folder is kept: this Ray has no _FilesystemSyncer")
        yield
        return
    with replaced(storage, "_FilesystemSyncer", ChangedFilesSyncer):
        yield


class ChangedFilesSyncer(_FilesystemSyncer):
    """Tune's `_FilesystemSyncer`, uploading a folder to a local filesystem a changed file at a time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._copied = CopiedFiles()

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles storage (and its syncer) with each trial: what this driver copied stays here.
        return {**super().__getstate__(), "_copied": CopiedFiles(), "_current_cmd": None}

    def _sync_up_command(
        self, local_path: str, uri: str, exclude: list[str] | None = None
    ) -> tuple[Callable[..., None], dict[str, Any]]:
        import pyarrow.fs

        local = isinstance(getattr(self, "storage_filesystem", None), pyarrow.fs.LocalFileSystem)
        if exclude or not local or not os.path.isdir(local_path):
            return super()._sync_up_command(local_path, uri, exclude)
        return self._copied.copy_changed, {"source": local_path, "target": uri}


class CopiedFiles:
    """What one driver copied from a folder: each settled file's size and mtime (ns) as copied."""

    def __init__(self) -> None:
        self._settled: dict[str, tuple[int, int]] = {}
        self._folders: set[str] = set()

    def copy_changed(self, source: str, target: str) -> None:
        """Copy each file under ``source`` to the same place under ``target``, but those that
        were settled when last copied and are unchanged since."""
        began = _filesystem_clock(source)
        folders = [(source, target)]
        while folders:
            folder, into = folders.pop()
            if into not in self._folders:
                os.makedirs(into, exist_ok=True)
                self._folders.add(into)
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        folders.append((entry.path, os.path.join(into, entry.name)))
                    elif entry.is_file():
                        self._copy(entry, os.path.join(into, entry.name), began)

    def _copy(self, entry: os.DirEntry[str], to: str, began: int) -> None:
        """``entry``'s file copied to ``to`` unless it is settled and unchanged."""
        try:
            stat = entry.stat()
        except FileNotFoundError:  # a temporary file, renamed since the listing
            return
        seen = (stat.st_size, stat.st_mtime_ns)
        if self._settled.get(entry.path) == seen:
            return
        try:
            shutil.copyfile(entry.path, to)
        except FileNotFoundError:
            if not os.path.exists(entry.path):  # renamed since the listing
                return
            os.makedirs(os.path.dirname(to), exist_ok=True)  # its folder in the sweep's was removed
            shutil.copyfile(entry.path, to)
        if seen[1] < began:  # written in an earlier tick of the filesystem's clock: a change would show
            self._settled[entry.path] = seen
        else:
            self._settled.pop(entry.path, None)


def _filesystem_clock(folder: str) -> int:
    """Now, in ns, as the filesystem holding ``folder`` stamps a file (its own resolution)."""
    marker = os.path.join(os.path.dirname(os.path.abspath(folder)), CLOCK_FILE)
    with open(marker, "a"):
        os.utime(marker)
    return os.stat(marker).st_mtime_ns
