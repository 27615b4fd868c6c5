"""A job's space field: takes a mapping or a Space, holds a Space; and a sweep's resolved scheduler (no Ray)."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from tuning_service.core.errors import InputError
from tuning_service.core.job import Job
from tuning_service.core.space import Choice, Space
from tuning_service.core.spec import SweepSpec


def _job(**changes: object) -> Job:
    fields: dict[str, object] = {
        "name": "mine",
        "description": "a job written the way job modules write it",
        "space": {"units": Choice((8, 16)), "layers": [1, 2]},
        "load_data": None,
        "build_model": None,
    }
    return Job(**{**fields, **changes})


def test_a_job_holds_its_mapping_as_a_space_through_replace_and_pickle() -> None:
    job = _job()
    assert isinstance(job.space, Space)
    assert job.space.to_dict() == {
        "units": {"type": "choice", "values": [8, 16]},
        "layers": {"type": "choice", "values": [1, 2]},
    }
    assert dataclasses.replace(job, max_epochs=3).space is job.space
    assert pickle.loads(pickle.dumps(job)) == job
    space = Space({"units": Choice((4,))})
    assert _job(space=space).space is space


def test_a_job_needs_a_space_and_keeps_it() -> None:
    fields = {"name": "mine", "description": "no space", "load_data": None, "build_model": None}
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'space'"):
        Job(**fields)
    job = _job()
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.space = Space({})


def test_a_bad_job_name_is_reported_before_its_bad_space() -> None:
    with pytest.raises(InputError, match=r"^job name '\.\./x' must be"):
        _job(name="../x", space={"a": {"type": "bad"}})
    with pytest.raises(InputError, match=r"^job 'x': parameter 'a': unknown type 'bad'"):
        _job(name="x", space={"a": {"type": "bad"}})


def test_a_sweep_without_a_scheduler_holds_its_searchers_partner() -> None:
    assert SweepSpec(searcher="bohb").scheduler == SweepSpec(searcher="bohb").scheduler_name == "bohb"
    assert SweepSpec(searcher="random").scheduler == "asha"
    assert SweepSpec(searcher="bohb", scheduler="fifo").scheduler == "fifo"
    spec = SweepSpec(searcher="random")
    # A copy keeps the scheduler it was given, whatever its searcher becomes.
    assert spec.replace(searcher="bohb").scheduler == "asha"
    assert pickle.loads(pickle.dumps(spec)) == spec
