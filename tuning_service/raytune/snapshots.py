"""Tune's experiment snapshot, kept whole so a resume never reads a half-written one.

Ray Tune writes its snapshot (experiment_state-*.json with every trial, the searcher's
state, the stateful callbacks' states) into a staging folder on the driver, then copies
that folder into the sweep's `trials/` folder in a background thread, file by file and
in place. A driver killed during that copy leaves a truncated experiment state (Tune
then logs that it cannot restore and quietly starts the sweep afresh) or a searcher
state a step ahead of the trials it belongs to. With a snapshot after every step
(runner.snapshot_period) a copy is running much of the time: tests/sweeps/faults/test_resume.py
hit an empty experiment state every few runs before the archive below.

So after each step that saved a snapshot, `callbacks.SnapshotKeeper` packs the staging
folder's state files, which Tune wrote synchronously in that step and which therefore
belong together, into one archive that replaces the previous one atomically. `reinstate`
puts that archive back into `trials/` before a resume, and `RestoreWatch` stops a resume
whose snapshot Tune still could not read instead of letting it start over.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tarfile
from pathlib import Path

from tuning_service.core.errors import InputError, SweepError

log = logging.getLogger(__name__)

# In the sweep folder, beside Tune's own `trials/` folder (which Tune overwrites in place).
SNAPSHOT_FILE = "tune-snapshot.tar"
# Tune's experiment state; the searcher and callback states sit beside it.
STATE_PATTERN = "experiment_state-*.json"
# Written once by Tuner(...) straight into the sweep folder, never part of a step's snapshot.
_NOT_STATE = {"tuner.pkl"}
# The kept archive, set aside when a later step could not be archived (a full disk): Tune's
# newer copy is then what a resume reads, this one only if Tune's copy is damaged.
OUTDATED_FILE = "tune-snapshot.outdated.tar"
# Archives whose last update failed (warned about once, until one succeeds again).
_FAILING: set[Path] = set()
# Bytes the archive copies at a time: the experiment state holds every trial (megabytes at a
# few hundred), and tarfile's 16 KB default made it hundreds of reads and writes (``TarFile``'s
# ``copybufsize``, in its signature since Python 3.8).
COPY_BUFFER = 1 << 20
# Where reinstate moves Tune's own top-level state files that the kept snapshot replaces.
SET_ASIDE_DIR = "superseded-snapshot"


def state_files(folder: Path) -> list[Path]:
    """The files Tune restores an experiment from: every top-level .json and .pkl but
    tuner.pkl (what its own `sync_down_experiment_state` fetches), no temporary ones.

    Names are checked before types: the folder holds a folder per trial, and a name test
    costs no system call (`python -m benchmarks.snapshot_cost`)."""
    with os.scandir(folder) as entries:
        return sorted(
            folder / e.name
            for e in entries
            if e.name.endswith((".json", ".pkl"))
            and e.name not in _NOT_STATE
            and not e.name.startswith(("tmp", "."))
            and e.is_file()
        )


def _known_state(staging: Path, seen: Seen | None) -> tuple[Path, os.stat_result] | None:
    """The experiment state in ``staging`` and its stat: the file ``seen`` names, else the newest."""
    if seen is not None:
        try:
            return staging / seen[0], (staging / seen[0]).stat()
        except OSError:  # gone, or a name from before: look for it
            pass
    state = _newest_state(staging) if staging.is_dir() else None
    if state is None:
        return None
    try:
        return state, state.stat()
    except OSError:
        return None


def _newest_state(folder: Path) -> Path | None:
    found = sorted(folder.glob(STATE_PATTERN))  # Tune picks the greatest name
    return found[-1] if found else None


# The experiment state archived last: its file name, mtime and size.
Seen = tuple[str, int, int]


def keep(staging: Path, target: Path, seen: Seen | None) -> Seen | None:
    """Archive the snapshot in Tune's ``staging`` folder as ``target`` if it is not the one
    archived last (``seen``); returns what is archived now. The archive is written beside its
    final name and renamed over it: a reader sees the previous snapshot or the new one, never a mix.

    The staging folder holds a folder per trial; it is listed only while the state file's
    name is unknown (a driver keeps one name for its life), so a step costs the same at
    10,000 trials as at 10.
    """
    found = _known_state(staging, seen)
    if found is None:
        return seen
    state, stat = found
    now = (state.name, stat.st_mtime_ns, stat.st_size)
    if now == seen:
        return seen
    partial = target.with_name(target.name + ".partial")
    try:
        with tarfile.TarFile(partial, "w", copybufsize=COPY_BUFFER) as archive:
            for path in state_files(staging):
                archive.add(path, arcname=path.name)
        os.replace(partial, target)
    except OSError as exc:  # a full disk must not end the sweep; Tune's own copy remains
        if target not in _FAILING:  # one line when it starts failing, not one per step
            _FAILING.add(target)
            log.warning(
                "could not keep the sweep's snapshot in %s (%s); until it can, a resume reads Ray Tune's own copy",
                target,
                exc,
            )
        _remove(partial)
        _outdate(target)
        return seen
    if target in _FAILING:
        _FAILING.discard(target)
        log.warning("the sweep's snapshot is kept in %s again", target)
    _remove(target.with_name(OUTDATED_FILE))
    return now


def remove_checkpoint(path: Path, sweep_dir: Path) -> None:
    """Delete a trial's checkpoint folder, only ever inside ``sweep_dir``; a failure is logged."""
    try:
        inside = path.resolve().is_relative_to(sweep_dir.resolve())
    except OSError:
        inside = False
    if not inside:
        log.warning("left checkpoint %s in place: it is not inside the sweep folder %s", path, sweep_dir)
        return
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not delete the old checkpoint %s (%s)", path, exc)


def _outdate(target: Path) -> None:
    """Set the archive aside once Tune's copy has moved past it: a resume must not go back to it
    while Tune's newer copy is readable. Renaming needs no free space; removing is the fallback."""
    try:
        if target.exists():
            os.replace(target, target.with_name(OUTDATED_FILE))
    except OSError:
        _remove(target)


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove %s (%s)", path, exc)


def reinstate(sweep_id: str, trials_dir: Path) -> None:
    """Make ``trials_dir`` hold a snapshot Tune can restore from; InputError if none is left.

    The kept archive is the last snapshot known to be whole: its files replace Tune's
    copies, which are often a step or more behind (Tune skips a copy while the previous
    one runs) and cut off if the driver died mid-copy. Those copies, and state files the
    archive does not hold, are moved to ``trials/superseded-snapshot/``, not deleted.
    Without a readable archive (none kept, a damaged one, or one set aside because a later
    step could not be archived) Tune's own copy is used; an archive set aside is put back
    only when Tune's copy cannot be read.
    """
    folder = trials_dir.parent
    kept = _archived(folder / SNAPSHOT_FILE)
    if kept is None and _state_problem(trials_dir) is not None:
        kept = _archived(folder / OUTDATED_FILE)
        if kept is not None:
            log.warning(
                "sweep %s: Ray Tune's snapshot in %s cannot be read; resuming from the older kept snapshot %s",
                sweep_id,
                trials_dir,
                folder / OUTDATED_FILE,
            )
    if kept is not None:
        _put_back(kept, trials_dir)
    state = _newest_state(trials_dir)
    if state is None:
        raise InputError(
            f"sweep {sweep_id} cannot be resumed: it stopped before Ray Tune saved its first snapshot in {trials_dir}; "
            "run it again instead"
        )
    problem = _state_problem(trials_dir)
    if problem is not None:
        raise InputError(
            f"sweep {sweep_id} cannot be resumed: its Ray Tune snapshot {state} is damaged ({problem}) and no whole copy "
            f"({SNAPSHOT_FILE}) was kept; run it again instead"
        )


def _archived(archive: Path) -> dict[str, bytes] | None:
    """The state files a kept archive holds, or None if there is none or it cannot be read (a warning)."""
    if not archive.is_file():
        return None
    try:
        with tarfile.open(archive) as tar:
            kept = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
        states = sorted(name for name in kept if Path(name).match(STATE_PATTERN))
        if not states:
            raise ValueError("it holds no experiment state")
        json.loads(kept[states[-1]])
    except (tarfile.TarError, OSError, EOFError, ValueError, UnicodeDecodeError) as exc:
        log.warning("the kept snapshot %s is damaged (%s); resuming from Ray Tune's own copy", archive, exc)
        return None
    return kept


def _put_back(kept: dict[str, bytes], trials_dir: Path) -> None:
    aside = trials_dir / SET_ASIDE_DIR
    for path in state_files(trials_dir):
        if kept.get(path.name) != path.read_bytes():
            aside.mkdir(exist_ok=True)
            os.replace(path, aside / path.name)
    for name, data in kept.items():
        target = trials_dir / name
        if not target.exists():
            partial = target.with_name(f"tmp-{name}")
            partial.write_bytes(data)
            os.replace(partial, target)


def _state_problem(trials_dir: Path) -> str | None:
    """Why Tune's newest experiment state in ``trials_dir`` cannot be read, or None if it can (or is absent)."""
    state = _newest_state(trials_dir)
    if state is None:
        return None
    try:
        json.loads(state.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        return str(exc)
    return None


class RestoreWatch(logging.Handler):
    """Notices Tune giving up on a snapshot, which it logs before starting the sweep afresh.

    Attached to Tune's controller logger for the restored run; `callbacks.SnapshotKeeper`
    calls ``check`` on the first step, before any trial starts, so the store's finished
    trials are not replaced by a new sweep.
    """

    LOGGER = "ray.tune.execution.tune_controller"
    MESSAGE = "Failed to restore the run state."

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.failure: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == self.MESSAGE and self.failure is None:
            exc = record.exc_info[1] if record.exc_info else None
            self.failure = f"{type(exc).__name__}: {exc}" if exc else self.MESSAGE

    def __enter__(self) -> RestoreWatch:
        logging.getLogger(self.LOGGER).addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger(self.LOGGER).removeHandler(self)

    def check(self) -> None:
        if self.failure is not None:
            raise SweepError(
                f"Ray Tune could not restore the sweep's snapshot ({self.failure}); nothing was run"
            )
