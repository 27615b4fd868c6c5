"""One rule for a trial's status and its error line, used by the summary, progress view and store."""

from __future__ import annotations

import errno

import pytest

from tuning_service.core.outcomes import classify_error, describe_exception, trial_status


@pytest.mark.parametrize(
    ("last", "config", "status"),
    [
        ({"training_iteration": 10}, {}, "completed"),
        ({"training_iteration": 4}, {}, "stopped early"),
        # A config that caps its own epochs below the sweep's budget ran its full course.
        ({"training_iteration": 4}, {"epochs": 4}, "completed"),
        ({"training_iteration": 10, "early_stopped": True}, {}, "stopped early"),
        ({"training_iteration": 2, "diverged": True}, {}, "diverged"),
        ({"training_iteration": 1, "error": "out of memory: ..."}, {}, "errored"),
        ({"training_iteration": 3, "replayed": "stopped early"}, {}, "stopped early"),
        # A model that breaks a constraint ends after its first epoch: infeasible, not stopped early.
        ({"training_iteration": 1, "infeasible": "params=9 breaks params<=5"}, {}, "infeasible"),
    ],
)
def test_trial_status(last, config, status):
    assert trial_status(last, 10, config) == status


def test_a_failure_reported_by_ray_is_an_error_whatever_the_last_result():
    assert trial_status({"training_iteration": 10}, 10, error=True) == "errored"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            "Traceback ...\nray.exceptions.ActorDiedError: The actor died unexpectedly\n\tpid: 12",
            "worker died: ray.exceptions.ActorDiedError: The actor died unexpectedly",
        ),
        (
            "OSError: [Errno 28] No space left on device while saving",
            "disk full: OSError: [Errno 28] No space left on device while saving",
        ),
        (
            "ResourceExhaustedError: OOM when allocating tensor with shape[64,68719476736]",
            "out of memory: ResourceExhaustedError: OOM when allocating tensor with shape[64,68719476736]",
        ),
        ("ValueError: bad activation 'relux'", "ValueError: bad activation 'relux'"),
        ("", "raised an error (no message recorded)"),
    ],
)
def test_classify_error(text, line):
    assert classify_error(text) == line


def test_describe_exception_names_memory_and_disk():
    assert describe_exception(MemoryError("Unable to allocate 16.0 TiB")) == (
        "out of memory: MemoryError: Unable to allocate 16.0 TiB"
    )
    full = OSError(errno.ENOSPC, "No space left on device")
    assert describe_exception(full).startswith("disk full: OSError: ")
    assert describe_exception(KeyError("units")) == "KeyError: 'units'"
