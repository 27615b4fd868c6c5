"""Tune's copy of the driver's staging folder into the sweep's folder, of the changed files only.

Tune writes a sweep's files on the driver into a staging folder first (the experiment
snapshot, and each trial's result.json, progress.csv, params and TensorBoard file in a folder
of its own), and after each snapshot copies the whole folder into the sweep's `trials/`
folder, on a thread of the driver (its `_FilesystemSyncer`). With a snapshot in every step that
starts or ends a trial (`snapshotpace.py`), each copy rewrote every file of every trial so far:
at 256 short trials that thread was a seventh of the driver's CPU (`python -m
benchmarks.overhead --trials 256` under py-spy; RESULTS.md).

Where the sweep's folder is on a local or shared filesystem (the service's storage), the
copy here skips a file whose size and modification time are those it copied last, unless it
was modified within `SETTLING_S` of that copy (a filesystem with coarse timestamps could
show a file rewritten in the same tick with the same size as unchanged): that file is copied
again. Every other storage keeps Tune's copy. A driver starts with nothing copied, so its
first copy writes every file, as Tune's did.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ray.train._internal.storage import _FilesystemSyncer

from tuning_service.raytune.tunepatch import replaced

# A file modified this close to the copy that wrote it is copied again the next time.
SETTLING_S = 2.0


@contextmanager
def changed_files_synced() -> Iterator[None]:
    """While open, sweeps that Tune sets up copy only changed files into a local sweep folder."""
    from ray.train._internal import storage

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

        local = isinstance(self.storage_filesystem, pyarrow.fs.LocalFileSystem)
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
        settled_before = time.time_ns() - int(SETTLING_S * 1e9)
        for folder, _, names in os.walk(source):
            into = os.path.normpath(os.path.join(target, os.path.relpath(folder, source)))
            if into not in self._folders:
                os.makedirs(into, exist_ok=True)
                self._folders.add(into)
            for name in names:
                path = os.path.join(folder, name)
                try:
                    stat = os.stat(path)
                    seen = (stat.st_size, stat.st_mtime_ns)
                    if self._settled.get(path) == seen:
                        continue
                    shutil.copyfile(path, os.path.join(into, name))
                except FileNotFoundError:  # a temporary file, renamed since the listing
                    continue
                if seen[1] < settled_before:
                    self._settled[path] = seen
                else:
                    self._settled.pop(path, None)
