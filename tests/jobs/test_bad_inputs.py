"""Bad jobs and bad data through the CLI: one line on stderr, exit code 2, nothing written."""

from __future__ import annotations

import pytest

from tuning_service.cli import main


def _csv(tmp_path, tiny_files, edit=None):
    import pandas as pd

    path = tiny_files.table(tmp_path / "data.csv")
    if edit is not None:
        frame = pd.read_csv(path)
        edit(frame)
        frame.to_csv(path, index=False)
    return path


def _garbage(frame):
    frame["spend"] = frame["spend"].astype(str)
    frame.loc[17, "spend"] = "n/a?"


def _one_class(frame):
    frame["label"] = "yes"


CASES = {
    "missing csv": ("csv: nowhere.csv\ntarget: label\n", None, "CSV file '{dir}/nowhere.csv' does not exist"),
    "missing target": (
        "csv: data.csv\ntarget: churn\n",
        None,
        "target column 'churn' is not in the CSV (columns: id, age",
    ),
    "one class": (
        "csv: data.csv\ntarget: label\n",
        _one_class,
        "target column 'label' has only one class ('yes' in all 120 rows)",
    ),
    "garbage number": (
        "csv: data.csv\ntarget: label\n",
        _garbage,
        "column 'spend' is numeric but row 19 holds 'n/a?'",
    ),
    "unknown key": ("csv: data.csv\ntarget: label\nepochs: 3\n", None, "unknown key 'epochs' (accepted: "),
    "wrong type": (
        "csv: data.csv\ntarget: label\nbatch_size: 1.5\n",
        None,
        "key 'batch_size' must be an integer >= 1, got 1.5",
    ),
}


def _run(tmp_path, capsys, ref, *extra):
    storage = tmp_path / "results"
    code = main(["run", ref, "--storage", str(storage), *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not storage.exists()
    return err


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_job_file_or_csv(tmp_path, capsys, tiny_files, case):
    text, edit, message = CASES[case]
    _csv(tmp_path, tiny_files, edit)
    (tmp_path / "job.yaml").write_text(text)
    err = _run(tmp_path, capsys, str(tmp_path / "job.yaml"))
    assert message.format(dir=tmp_path) in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"just one line of prose\nand another\n", "is not a table: found 1 column"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00", "is not a CSV table"),
        (b"age,label\n", "target column 'label' has no values"),
    ],
)
def test_empty_or_non_tabular_files(tmp_path, capsys, content, message):
    (tmp_path / "data.csv").write_bytes(content)
    (tmp_path / "job.yaml").write_text("csv: data.csv\ntarget: label\n")
    assert message in _run(tmp_path, capsys, str(tmp_path / "job.yaml"))


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("no_such_pkg.jobs:JOB", "job no_such_pkg.jobs:JOB: cannot import module 'no_such_pkg.jobs'"),
        ("jobs.telco_churn:NOPE", "module 'jobs.telco_churn' has no attribute 'NOPE'"),
        ("{dir}/missing.py", "job file '{dir}/missing.py' does not exist"),
        ("{dir}/missing.yaml", "job file '{dir}/missing.yaml' does not exist"),
    ],
)
def test_job_references_that_do_not_resolve(tmp_path, capsys, ref, message):
    err = _run(tmp_path, capsys, ref.format(dir=tmp_path))
    assert message.format(dir=tmp_path) in err


def test_lr_find_refuses_bad_input_before_training(tmp_path, capsys):
    out = tmp_path / "plots" / "lr.png"
    for argv, message in (
        (["lr-find", "nosuchjob"], "unknown job 'nosuchjob'"),
        (["lr-find", "digits", "--min-lr", "1", "--max-lr", "0.1"], "need 0 < --min-lr < --max-lr"),
        (["lr-find", "digits", "--set", "lerning_rate=1"], "--set: unknown model setting 'lerning_rate'"),
    ):
        assert main([*argv, "--output", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert not out.parent.exists()


def test_a_python_job_file_that_fails_to_import_is_one_line(tmp_path, capsys):
    broken = tmp_path / "broken.py"
    broken.write_text('"""A job with a missing dependency."""\n\nimport no_such_dependency  # noqa\n')
    err = _run(tmp_path, capsys, str(broken))
    assert f"job file '{broken}' failed to import: ModuleNotFoundError: " in err
    assert "No module named 'no_such_dependency' (line 3)" in err


@pytest.mark.parametrize("name", ["../../outside", "/tmp/abs", ".hidden", "-rf", "a b"])
def test_a_python_job_whose_name_is_not_one_folder_is_refused(tmp_path, capsys, name):
    """Before: the name went into <storage>/<name>/<sweep-id> unchecked (a job file's name was checked)."""
    job = tmp_path / "named.py"
    job.write_text(
        "import dataclasses\nfrom tuning_service.testing import tiny_job\n"
        f"JOB = dataclasses.replace(tiny_job(), name={name!r})\n"
    )
    err = _run(tmp_path, capsys, str(job))
    assert (
        f"job name {name!r} must be up to 100 letters, digits, '_', '-' or '.', starting with a letter" in err
    )


def test_a_job_file_whose_file_name_cannot_name_its_folder_says_to_add_a_name(tmp_path, capsys, tiny_files):
    _csv(tmp_path, tiny_files)
    job = tmp_path / "my churn.yaml"
    job.write_text("csv: data.csv\ntarget: label\n")
    err = _run(tmp_path, capsys, str(job))
    assert "the file's name 'my churn' cannot name the results folder; add a key 'name':" in err
