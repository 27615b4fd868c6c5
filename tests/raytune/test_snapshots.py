"""The kept snapshot: archived whole after each step, put back whole before a resume."""

from __future__ import annotations

import json
import logging
import os
import pickle
import tarfile

import pytest

from tuning_service.core.errors import InputError, SweepError
from tuning_service.raytune.callbacks import SnapshotKeeper
from tuning_service.raytune.snapshots import (
    OUTDATED_FILE,
    SET_ASIDE_DIR,
    SNAPSHOT_FILE,
    RestoreWatch,
    keep,
    reinstate,
)

STATE = "experiment_state-2026-01-01_00-00-00.json"
SEARCHER = "searcher-state-2026-01-01_00-00-00.pkl"
CALLBACKS = "callback-states-2026-01-01_00-00-00.pkl"


def _save(folder, step: int) -> None:
    """What Tune's save_to_dir leaves in its staging folder at ``step``."""
    folder.mkdir(exist_ok=True)
    (folder / STATE).write_text(json.dumps({"trial_data": list(range(step))}))
    (folder / SEARCHER).write_bytes(pickle.dumps({"suggested": step}))
    (folder / CALLBACKS).write_bytes(pickle.dumps({0: {"rung": step}}))


def _archived(path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_keep_archives_each_new_snapshot_once(tmp_path):
    staging, target = tmp_path / "staging", tmp_path / SNAPSHOT_FILE
    _save(staging, 1)
    (staging / "tuner.pkl").write_bytes(b"written once by Tuner()")
    (staging / f"tmp-{SEARCHER}").write_bytes(b"half")
    seen = keep(staging, target, None)
    assert sorted(_archived(target)) == sorted([STATE, SEARCHER, CALLBACKS])
    written = target.stat().st_mtime_ns
    assert keep(staging, target, seen) == seen and target.stat().st_mtime_ns == written
    _save(staging, 2)
    os.utime(staging / STATE, ns=(written + 10**9, written + 10**9))
    assert keep(staging, target, seen) != seen
    assert json.loads(_archived(target)[STATE]) == {"trial_data": [0, 1]}
    assert not target.with_name(SNAPSHOT_FILE + ".partial").exists()


def test_keep_archives_state_files_only_and_whole(tmp_path):
    """Trial folders (even one named like a state file) and other files stay out; a state
    larger than the archive's copy buffer comes back byte for byte."""
    from tuning_service.raytune.snapshots import COPY_BUFFER

    staging, target = tmp_path / "staging", tmp_path / SNAPSHOT_FILE
    _save(staging, 1)
    (staging / "KerasTrainable_00001").mkdir()
    (staging / "odd.json").mkdir()
    (staging / "notes.txt").write_text("not Tune's")
    big = os.urandom(2 * COPY_BUFFER + 7).hex().encode()
    (staging / STATE).write_bytes(big)
    keep(staging, target, None)
    archived = _archived(target)
    assert sorted(archived) == sorted([STATE, SEARCHER, CALLBACKS])
    assert archived[STATE] == big


def test_keep_lists_the_staging_folder_only_while_the_state_file_is_unknown(tmp_path, monkeypatch):
    """Tune's staging folder holds a folder per trial: listing it every step costs O(trials) a step."""
    from tuning_service.raytune import snapshots

    staging, target = tmp_path / "staging", tmp_path / SNAPSHOT_FILE
    _save(staging, 1)
    seen = keep(staging, target, None)
    listed = []
    monkeypatch.setattr(snapshots, "_newest_state", lambda folder: listed.append(folder))
    _save(staging, 2)
    written = target.stat().st_mtime_ns
    os.utime(staging / STATE, ns=(written + 10**9, written + 10**9))
    assert keep(staging, target, seen) != seen and listed == []
    assert json.loads(_archived(target)[STATE]) == {"trial_data": [0, 1]}
    (staging / STATE).unlink()  # a name it no longer has: looked for again
    assert keep(staging, target, seen) == seen and listed == [staging]


def test_keep_waits_for_tunes_first_snapshot(tmp_path):
    staging = tmp_path / "staging"
    staging.mkdir()
    assert keep(staging, tmp_path / SNAPSHOT_FILE, None) is None
    assert not (tmp_path / SNAPSHOT_FILE).exists()


def test_reinstate_replaces_a_copy_the_killed_driver_left_half_written(tmp_path):
    staging, trials = tmp_path / "staging", tmp_path / "trials"
    _save(staging, 3)
    keep(staging, tmp_path / SNAPSHOT_FILE, None)
    _save(trials, 4)  # Tune's copy of the next step: searcher state copied, experiment state cut
    (trials / STATE).write_bytes(b"")
    later = "experiment_state-2026-01-02_00-00-00.json"
    (trials / later).write_text("{}")  # a later run's state, never archived
    (trials / "tuner.pkl").write_bytes(b"tuner")

    reinstate("20260101-000000-aaaaaa", trials)

    for name in (STATE, SEARCHER, CALLBACKS):
        assert (trials / name).read_bytes() == (staging / name).read_bytes(), name
    assert not (trials / later).exists() and (trials / "tuner.pkl").read_bytes() == b"tuner"
    aside = trials / SET_ASIDE_DIR
    assert sorted(p.name for p in aside.iterdir()) == sorted([STATE, SEARCHER, CALLBACKS, later])
    assert (aside / STATE).read_bytes() == b""


def test_reinstate_leaves_a_whole_copy_alone(tmp_path):
    staging, trials = tmp_path / "staging", tmp_path / "trials"
    _save(staging, 3)
    _save(trials, 3)
    keep(staging, tmp_path / SNAPSHOT_FILE, None)
    reinstate("20260101-000000-aaaaaa", trials)
    assert not (trials / SET_ASIDE_DIR).exists()
    assert json.loads((trials / STATE).read_text()) == {"trial_data": [0, 1, 2]}


def test_reinstate_refuses_a_damaged_snapshot_without_a_kept_copy(tmp_path):
    trials = tmp_path / "trials"
    _save(trials, 2)
    (trials / STATE).write_text('{"trial_data": [0, ')
    with pytest.raises(InputError, match=r"sweep 20260101-000000-aaaaaa cannot be resumed: .* is damaged"):
        reinstate("20260101-000000-aaaaaa", trials)


def test_reinstate_refuses_a_sweep_tune_never_snapshotted(tmp_path):
    trials = tmp_path / "trials"
    trials.mkdir()
    with pytest.raises(InputError, match="stopped before Ray Tune saved its first snapshot"):
        reinstate("20260101-000000-aaaaaa", trials)


def test_a_restore_tune_gave_up_on_stops_before_any_trial_starts(tmp_path):
    tune_log = logging.getLogger(RestoreWatch.LOGGER)
    with RestoreWatch() as watch:
        keeper = SnapshotKeeper(tmp_path, watch)
        tune_log.error("Restoring the run from the latest experiment state file")
        keeper.on_step_begin(0, [])  # an unrelated error is not a failed restore
        try:
            raise ValueError("Expecting value: line 1 column 1 (char 0)")
        except ValueError:
            tune_log.exception(RestoreWatch.MESSAGE)
        with pytest.raises(
            SweepError, match=r"could not restore .*ValueError: Expecting value.*nothing was run"
        ):
            keeper.on_step_begin(0, [])
    assert watch not in tune_log.handlers
    # Tune pickles its callbacks into the snapshot: the watch stays behind.
    assert pickle.loads(pickle.dumps(keeper)).watch is None


def _archive_fails_once(staging, target) -> None:
    """A step whose archive cannot be written (as on a full disk): its partial file cannot be created."""
    partial = target.with_name(SNAPSHOT_FILE + ".partial")
    partial.mkdir()
    seen = keep(staging, target, ("no-such-state.json", 0, 0))
    partial.rmdir()
    assert seen == ("no-such-state.json", 0, 0)


def test_an_archive_that_could_not_be_updated_never_wins_over_tunes_newer_copy(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="tuning_service.raytune.snapshots")  # whatever a CLI test left
    staging, trials, target = tmp_path / "staging", tmp_path / "trials", tmp_path / SNAPSHOT_FILE
    _save(staging, 3)
    keep(staging, target, None)
    _save(staging, 4)  # the next step: Tune copies it into trials/, the archive fails
    _save(trials, 4)
    _archive_fails_once(staging, target)
    assert "could not keep the sweep's snapshot" in caplog.text and not target.exists()
    assert (tmp_path / OUTDATED_FILE).is_file()
    reinstate("20260101-000000-aaaaaa", trials)
    assert json.loads((trials / STATE).read_text()) == {"trial_data": [0, 1, 2, 3]}
    assert not (trials / SET_ASIDE_DIR).exists()
    # The next step archives again: the set-aside copy goes.
    _save(staging, 5)
    keep(staging, target, None)
    assert target.is_file() and not (tmp_path / OUTDATED_FILE).exists()


def test_the_set_aside_archive_serves_only_when_tunes_copy_is_damaged(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="tuning_service.raytune.snapshots")  # whatever a CLI test left
    staging, trials, target = tmp_path / "staging", tmp_path / "trials", tmp_path / SNAPSHOT_FILE
    _save(staging, 3)
    keep(staging, target, None)
    _save(staging, 4)
    _archive_fails_once(staging, target)
    _save(trials, 4)
    (trials / STATE).write_bytes(b'{"trial_data": [0, 1')  # Tune's copy cut off too
    reinstate("20260101-000000-aaaaaa", trials)
    assert json.loads((trials / STATE).read_text()) == {"trial_data": [0, 1, 2]}
    assert "resuming from the older kept snapshot" in caplog.text


@pytest.mark.parametrize("damage", [b"not a tar archive" * 40, b""])
def test_a_damaged_archive_falls_back_to_tunes_copy_with_a_warning(tmp_path, caplog, damage):
    caplog.set_level(logging.WARNING, logger="tuning_service.raytune.snapshots")  # whatever a CLI test left
    trials = tmp_path / "trials"
    _save(trials, 4)
    (tmp_path / SNAPSHOT_FILE).write_bytes(damage)
    reinstate("20260101-000000-aaaaaa", trials)
    assert json.loads((trials / STATE).read_text()) == {"trial_data": [0, 1, 2, 3]}
    assert "is damaged" in caplog.text and "resuming from Ray Tune's own copy" in caplog.text


def test_an_archive_whose_experiment_state_is_damaged_is_not_put_back(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="tuning_service.raytune.snapshots")  # whatever a CLI test left
    trials = tmp_path / "trials"
    _save(trials, 4)
    with tarfile.open(tmp_path / SNAPSHOT_FILE, "w") as tar:
        (tmp_path / STATE).write_bytes(b"{")
        tar.add(tmp_path / STATE, arcname=STATE)
    reinstate("20260101-000000-aaaaaa", trials)
    assert json.loads((trials / STATE).read_text()) == {"trial_data": [0, 1, 2, 3]}
    assert "is damaged" in caplog.text


def test_an_archive_failing_step_after_step_is_one_warning_until_it_works_again(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="tuning_service.raytune.snapshots")
    staging, target = tmp_path / "staging", tmp_path / SNAPSHOT_FILE
    for step in (1, 2, 3):
        _save(staging, step)
        _archive_fails_once(staging, target)
    assert caplog.text.count("could not keep the sweep's snapshot") == 1
    keep(staging, target, None)
    assert "is kept in" in caplog.text and target.is_file()


class _Trial:
    def __init__(self, trial_id: str, staging) -> None:
        self.trial_id, self.local_experiment_path = trial_id, str(staging)


class _Checkpoint:
    def __init__(self, path) -> None:
        path.mkdir(parents=True)
        (path / "model.npz").write_bytes(b"weights")
        self.path = str(path)


def test_old_checkpoints_go_only_once_a_kept_snapshot_was_taken_after_them(tmp_path):
    staging, sweep = tmp_path / "staging", tmp_path / "sweep"
    sweep.mkdir()
    trial, other = _Trial("a", staging), _Trial("b", staging)
    keeper = SnapshotKeeper(sweep, checkpoints_kept=2)
    _save(staging, 1)
    keeper.on_step_end(1, [trial])
    saved = [sweep / "trials" / "a" / f"checkpoint_{i:06d}" for i in range(4)]
    for path in saved:
        keeper.on_checkpoint(2, [trial], trial, _Checkpoint(path))
    keeper.on_checkpoint(2, [trial], other, _Checkpoint(sweep / "trials" / "b" / "checkpoint_000000"))
    keeper.on_step_end(2, [trial])  # no new snapshot this step: the archived one may name any of them
    assert all(p.is_dir() for p in saved)
    _save(staging, 3)  # a snapshot taken after all four: it names the newest
    keeper.on_step_end(3, [trial])
    assert [p.is_dir() for p in saved] == [False, False, True, True]
    assert (sweep / "trials" / "b" / "checkpoint_000000").is_dir()
    # The next checkpoint again waits for a snapshot before the one it replaces goes.
    newer = sweep / "trials" / "a" / "checkpoint_000004"
    keeper.on_checkpoint(4, [trial], trial, _Checkpoint(newer))
    keeper.on_step_end(4, [trial])
    assert saved[2].is_dir()
    _save(staging, 5)
    keeper.on_experiment_end([trial])
    assert [p.is_dir() for p in (*saved, newer)] == [False, False, False, True, True]
    # A resumed driver starts afresh: what this one saw is not pickled into Tune's state.
    restored = pickle.loads(pickle.dumps(keeper))
    assert restored._saved == {} and restored.checkpoints_kept == 2


def test_a_checkpoint_outside_the_sweep_folder_is_never_deleted(tmp_path, caplog):
    staging, sweep = tmp_path / "staging", tmp_path / "sweep"
    sweep.mkdir()
    trial = _Trial("a", staging)
    keeper = SnapshotKeeper(sweep, checkpoints_kept=1)
    elsewhere = [tmp_path / "elsewhere" / f"checkpoint_{i}" for i in range(2)]
    for path in elsewhere:
        keeper.on_checkpoint(1, [trial], trial, _Checkpoint(path))
    _save(staging, 1)
    keeper.on_step_end(1, [trial])
    assert all(p.is_dir() for p in elsewhere)
    assert "it is not inside the sweep folder" in caplog.text
