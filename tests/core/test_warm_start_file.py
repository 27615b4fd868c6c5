"""--warm-start files: lists of configs or best-config exports, refused clearly otherwise."""

from __future__ import annotations

import json

import pytest

from tuning_service.core.errors import InputError
from tuning_service.core.spec import read_points_file


def test_a_list_of_configs_and_an_export_both_read(tmp_path):
    plain = tmp_path / "points.yaml"
    plain.write_text("- {lr: 1e-3, units: 32}\n- {lr: 1e-2, units: 64}\n")
    assert read_points_file(plain) == ({"lr": 0.001, "units": 32}, {"lr": 0.01, "units": 64})
    export = tmp_path / "best.json"
    export.write_text(json.dumps({"job": "digits", "value": 0.97, "config": {"lr": 0.003}}))
    assert read_points_file(export) == ({"lr": 0.003},)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "must hold a list of configs"),
        ("[]", "must hold a list of configs"),
        ("{a: [", "not valid JSON or YAML"),
    ],
)
def test_bad_files_are_refused(tmp_path, text, message):
    path = tmp_path / "points.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_points_file(path)


def test_submissions_ship_warm_start_configs_as_a_file(tmp_path, monkeypatch):
    from tuning_service.sweeps import submission

    sent = {}

    class Client:  # stands in for Ray's JobSubmissionClient: we check what we would send
        def submit_job(self, **kwargs):
            sent.update(kwargs)
            workdir = kwargs["runtime_env"]["working_dir"]  # removed once submitted: read it now
            with open(f"{workdir}/{submission.WARM_START_FILE}") as handle:
                sent["shipped"] = json.load(handle)

    monkeypatch.setattr(submission, "connect", lambda address: Client())
    monkeypatch.setattr(submission, "cluster_capacity", lambda address: None)
    from tuning_service.core.spec import SweepSpec

    spec = SweepSpec(
        job="digits",
        points_to_evaluate=(
            {"learning_rate": 0.01, "units": 16, "layers": 1, "activation": "relu", "batch_size": 32},
        ),
    )
    submission.submit_sweep(spec, ["--num-samples", "2"], address="http://127.0.0.1:8265")
    assert "--warm-start tuning_service_warm_start.json" in sent["entrypoint"]
    assert sent["shipped"] == [dict(spec.points_to_evaluate[0])]
