"""Tune's copy of the staging folder into the sweep's folder: changed files only, the rest as Tune's."""

from __future__ import annotations

import os
import pickle
import shutil
import time

from tuning_service.raytune.stagingsync import CopiedFiles, changed_files_synced

AN_HOUR_AGO = time.time_ns() - 3600 * 10**9


def _write(path, text: str, *, at: int = AN_HOUR_AGO) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, ns=(at, at))


def test_a_settled_unchanged_file_is_not_copied_again_a_changed_one_is(tmp_path):
    staging, trials = tmp_path / "staging", tmp_path / "trials"
    _write(staging / "experiment_state.json", "state 1")
    _write(staging / "trial_1" / "result.json", "epoch 1\n")
    copied = CopiedFiles()
    copied.copy_changed(str(staging), str(trials))
    assert (trials / "experiment_state.json").read_text() == "state 1"
    assert (trials / "trial_1" / "result.json").read_text() == "epoch 1\n"

    (trials / "trial_1" / "result.json").write_text("marked")  # would be overwritten by a copy
    _write(staging / "experiment_state.json", "state 2")
    os.utime(staging / "experiment_state.json", ns=(AN_HOUR_AGO + 1, AN_HOUR_AGO + 1))  # same size, new mtime
    _write(staging / "trial_2" / "result.json", "epoch 1\n")
    copied.copy_changed(str(staging), str(trials))
    assert (trials / "trial_1" / "result.json").read_text() == "marked"  # unchanged: left alone
    assert (trials / "experiment_state.json").read_text() == "state 2"
    assert (trials / "trial_2" / "result.json").read_text() == "epoch 1\n"

    shutil.rmtree(trials / "trial_2")  # a folder removed from the sweep's: made again
    _write(staging / "trial_2" / "result.json", "epoch 2\n", at=AN_HOUR_AGO + 5)
    copied.copy_changed(str(staging), str(trials))
    assert (trials / "trial_2" / "result.json").read_text() == "epoch 2\n"


def test_a_file_stamped_in_the_tick_its_copy_began_is_copied_again(tmp_path):
    """On a filesystem with coarse timestamps, its next rewrite could keep its size and mtime."""
    staging, trials = tmp_path / "staging", tmp_path / "trials"
    not_yet_past = time.time_ns() + 3600 * 10**9  # the filesystem's clock has not left its tick
    _write(staging / "trial_1" / "result.json", "epoch 1\n", at=not_yet_past)
    copied = CopiedFiles()
    copied.copy_changed(str(staging), str(trials))
    (trials / "trial_1" / "result.json").write_text("marked")
    copied.copy_changed(str(staging), str(trials))
    assert (trials / "trial_1" / "result.json").read_text() == "epoch 1\n"
    assert sorted(p.name for p in trials.rglob("*")) == ["result.json", "trial_1"]  # no clock file


def test_sweeps_set_up_inside_copy_changed_files_and_tunes_syncer_is_back_after(tmp_path):
    from ray.train._internal.storage import StorageContext, _FilesystemSyncer

    with changed_files_synced():
        storage = StorageContext(storage_path=str(tmp_path / "results"), experiment_dir_name="trials")
    syncer = storage.syncer
    assert isinstance(syncer, _FilesystemSyncer) and type(syncer) is not _FilesystemSyncer
    staging = tmp_path / "staging"
    _write(staging / "trial_1" / "progress.csv", "a,b\n1,2\n")
    assert syncer.sync_up(str(staging), storage.experiment_fs_path)
    syncer.wait()
    copied = tmp_path / "results" / "trials" / "trial_1" / "progress.csv"
    assert copied.read_text() == "a,b\n1,2\n"
    copied.write_text("marked")
    assert syncer.sync_up(str(staging), storage.experiment_fs_path)
    syncer.wait()
    assert copied.read_text() == "marked"  # the driver's syncer remembers what it copied
    # A copy pickled with a trial starts with nothing copied, and no command of this driver's.
    unpickled = pickle.loads(pickle.dumps(syncer))
    assert unpickled._current_cmd is None
    assert unpickled.sync_up(str(staging), storage.experiment_fs_path)
    unpickled.wait()
    assert copied.read_text() == "a,b\n1,2\n"
    assert (
        type(StorageContext(storage_path=str(tmp_path / "r2"), experiment_dir_name="t").syncer)
        is _FilesystemSyncer
    )


def test_a_single_file_or_an_excluding_upload_keeps_tunes_copy(tmp_path):
    from ray.train._internal.storage import StorageContext, _upload_to_fs_path

    with changed_files_synced():
        storage = StorageContext(storage_path=str(tmp_path / "results"), experiment_dir_name="trials")
    single = tmp_path / "one.json"
    single.write_text("{}")
    target = str(tmp_path / "results" / "one.json")
    assert storage.syncer._sync_up_command(str(single), target)[0] is _upload_to_fs_path
    assert storage.syncer._sync_up_command(str(tmp_path), target, exclude=["*.pkl"])[0] is _upload_to_fs_path
    assert storage.syncer._sync_up_command(str(tmp_path), target)[0] is not _upload_to_fs_path


def test_a_ray_without_tunes_syncer_name_keeps_its_own_copy(tmp_path, monkeypatch):
    from ray.train._internal import storage

    from tuning_service.raytune import stagingsync

    monkeypatch.setattr(stagingsync, "_FilesystemSyncer", object)  # the import found no such class
    with changed_files_synced():
        made = storage.StorageContext(storage_path=str(tmp_path / "results"), experiment_dir_name="trials")
    assert type(made.syncer) is storage._FilesystemSyncer
    monkeypatch.delattr(storage, "_FilesystemSyncer")  # Tune renamed it
    with changed_files_synced():
        assert not hasattr(storage, "_FilesystemSyncer")
