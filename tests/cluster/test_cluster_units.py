"""The cluster client's pieces without a cluster: tokens, addresses, what a submission carries."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tuning_service.cli.submit import run_args, submit, sweep_spec
from tuning_service.core import auth
from tuning_service.core.errors import InputError
from tuning_service.raytune.raysession import parse_address
from tuning_service.sweeps.submission import best_record, check_id, entrypoint, parse_jobs_url, stage
from tuning_service.testing.localcluster import command_line, kill_session, session_cpu


@pytest.fixture
def no_token(monkeypatch, tmp_path):
    for name in (auth.TOKEN_ENV, auth.TOKEN_PATH_ENV, auth.MODE_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def test_the_token_is_found_in_rays_order(no_token, monkeypatch):
    assert auth.token_source() is None and auth.bearer_headers() == {}
    default = no_token / "home" / ".ray" / "auth_token"
    default.parent.mkdir(parents=True)
    default.write_text("d" * 64 + "\n")
    assert auth.token_source().path == default and auth.read_token() == "d" * 64
    named = no_token / "named"
    named.write_text("n" * 64)
    monkeypatch.setenv(auth.TOKEN_PATH_ENV, str(named))
    assert auth.read_token() == "n" * 64
    monkeypatch.setenv(auth.TOKEN_ENV, "e" * 64)
    assert auth.bearer_headers() == {"Authorization": "Bearer " + "e" * 64}
    assert "e" * 64 not in auth.token_source().where  # messages name the source, never the token


def test_a_token_path_naming_no_file_is_refused_before_ray_can_abort(no_token, monkeypatch):
    monkeypatch.setenv(auth.TOKEN_PATH_ENV, str(no_token / "missing"))
    with pytest.raises(InputError, match=r"RAY_AUTH_TOKEN_PATH='.*missing' names no token file"):
        auth.token_source()


def test_a_client_with_a_token_turns_rays_token_mode_on(no_token, monkeypatch):
    assert auth.prepare_client_auth() is None
    assert auth.MODE_ENV not in __import__("os").environ
    token = no_token / "token"
    token.write_text("t" * 64)
    token.chmod(0o600)
    monkeypatch.setenv(auth.TOKEN_PATH_ENV, str(token))
    auth.prepare_client_auth()
    assert __import__("os").environ[auth.MODE_ENV] == "token"


def test_a_token_file_others_can_read_is_warned_about(no_token, monkeypatch, caplog):
    token = no_token / "token"
    token.write_text("t" * 64)
    token.chmod(0o644)
    monkeypatch.setenv(auth.TOKEN_PATH_ENV, str(token))
    auth.token_source()
    assert f"chmod 600 {token}" in caplog.text
    assert stat.S_IMODE(token.stat().st_mode) == 0o644  # warned, not changed behind the user's back


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:6379", ("127.0.0.1", 6379)),
        ("ray://head.example:10001", ("head.example", 10001)),
        ("[::1]:6379", ("::1", 6379)),
        ("head", None),
    ],
)
def test_cluster_addresses_are_split_into_host_and_port(address, expected):
    assert parse_address(address) == expected


def test_auto_reads_rays_address_variable(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    assert parse_address("auto") == ("10.0.0.5", 6379)
    monkeypatch.delenv("RAY_ADDRESS")
    assert parse_address("auto") is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [("http://127.0.0.1:8265", ("127.0.0.1", 8265)), ("https://ray.example/", ("ray.example", 443))],
)
def test_jobs_api_urls(url, expected):
    assert parse_jobs_url(url) == expected


@pytest.mark.parametrize("url", ["127.0.0.1:8265", "ray://head:10001", "http://head:port"])
def test_a_jobs_address_that_is_not_a_url_is_refused(url):
    with pytest.raises(InputError, match=r"--address must be the Jobs API URL http://HOST:PORT .*got"):
        parse_jobs_url(url)


def test_a_py_job_file_travels_in_the_working_dir_as_a_module(tmp_path):
    job = tmp_path / "src" / "my_sweep_job.py"
    job.parent.mkdir()
    job.write_text("JOB = None\n")
    helper = tmp_path / "src" / "helpers"
    helper.mkdir()
    (helper / "features.py").write_text("")
    into = tmp_path / "staged"
    into.mkdir()
    staged = stage(f"{job}:MY_JOB", [str(helper)], into)
    assert staged.job_ref == "my_sweep_job:MY_JOB"
    assert staged.runtime_env["working_dir"] == str(into)
    assert sorted(p.relative_to(into).as_posix() for p in into.rglob("*")) == [
        "helpers",
        "helpers/features.py",
        "my_sweep_job.py",
    ]


def test_a_yaml_job_travels_with_the_csv_it_names(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_text("x,y\n1,0\n")
    job = tmp_path / "churn.yaml"
    job.write_text("csv: data/rows.csv\ntarget: y\n")
    into = tmp_path / "staged"
    into.mkdir()
    staged = stage(str(job), [], into)
    assert staged.job_ref == "churn.yaml"
    assert (into / "churn.yaml").exists() and (into / "data" / "rows.csv").exists()


def test_a_builtin_job_travels_as_its_name_alone(tmp_path):
    staged = stage("digits", [], tmp_path)
    assert staged.job_ref == "digits" and "working_dir" not in staged.runtime_env
    assert not any(tmp_path.iterdir())


def test_the_entrypoint_runs_the_sweep_on_the_cluster_and_quotes_everything():
    command = entrypoint("python3", "my job.py", ["--searcher-option", "n_startup_trials=3"], "~/results")
    assert shlex.split(command) == [
        "python3",
        "-m",
        "tuning_service",
        "run",
        "my job.py",
        "--searcher-option",
        "n_startup_trials=3",
        "--address",
        "auto",
        "--storage",
        "~/results",  # quoted: expanded by the sweep on the head, not by a shell
        "--format",
        "json",
    ]


def test_submit_takes_every_run_option_and_forwards_only_what_was_given():
    names = {p.name for p in submit.params}
    assert {"searcher", "num_samples", "cpus_per_trial", "searcher_option", "address", "include"} <= names
    given = ["--address", "http://h:8265", "--num-samples", "4", "--time-budget", "30"]
    given += ["--searcher-option", "n_startup_trials=2", "--cpus-per-trial", "1"]  # 1 is the default
    values = submit.make_context("submit", given).params
    assert run_args(values) == [
        "--num-samples",
        "4",
        "--time-budget",
        "30.0",
        "--searcher-option",
        "n_startup_trials=2",
    ]
    spec = sweep_spec("digits", "~/r", values)
    assert spec.num_samples == 4 and spec.time_budget_s == 30.0
    assert spec.searcher_options == {"n_startup_trials": 2} and spec.storage == "~/r"


def test_the_best_record_is_the_last_json_object_in_the_logs():
    record = {"job": "tiny", "metric": "val_accuracy", "value": 0.9, "config": {"units": 8}}
    logs = (
        "Running entrypoint ...\n{not json\n"
        + json.dumps({"job": "old", "metric": "m", "config": {}}, indent=2)
        + "\n1/1 trials: 1 done\n"
        + json.dumps(record, indent=2)
        + "\nINFO closing\n"
    )
    assert best_record(logs) == record
    assert best_record("no record here\n") is None


@pytest.mark.parametrize("bad", ["", "a b", "../jobs", "x/y", "-f"])
def test_a_submission_id_that_is_not_one_is_refused_before_any_request(bad):
    with pytest.raises(InputError, match=r"a submission id is letters, digits, .* got"):
        check_id(bad)
    assert check_id("tuning-digits-20261123-163541-e76eb2") == "tuning-digits-20261123-163541-e76eb2"


def test_submit_never_ships_the_database_password_in_the_entrypoint(caplog):
    """Before: `submit --db postgresql://u:PW@...` forwarded --db as given into the Ray Job's entrypoint."""
    given = [
        "--address",
        "http://h:8265",
        "--db",
        "postgresql://tuner:s3cret@db.example:5432/results?password=s3cret",
    ]
    argv = run_args(submit.make_context("submit", given).params)
    command = entrypoint("python", "digits", argv, "~/r")
    assert "s3cret" not in command
    assert argv == ["--db", "postgresql://tuner@db.example:5432/results"]
    assert "PGPASSWORD" in caplog.text  # says where the head reads it from
    # A SQLite file on the head travels as given; there is no password to drop.
    sqlite = ["--address", "http://h:8265", "--db", "sqlite:////srv/results/tuning.db"]
    assert run_args(submit.make_context("submit", sqlite).params) == [
        "--db",
        "sqlite:////srv/results/tuning.db",
    ]


def test_a_jobs_api_that_takes_the_connection_but_never_answers_fails_within_the_timeout(
    silent_port, monkeypatch, capsys
):
    """Before: Ray's job client sent its first request without a timeout and waited for ever."""
    import threading
    import time

    from tuning_service.cli import main

    monkeypatch.setenv("TUNING_SERVICE_CONNECT_TIMEOUT_S", "1")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "0" * 64)  # a token to send: the request itself must go out
    outcome: dict[str, int] = {}
    started = time.monotonic()
    command = threading.Thread(
        target=lambda: outcome.setdefault(
            "code", main(["submissions", "list", "--address", f"http://127.0.0.1:{silent_port}"])
        ),
        daemon=True,
    )
    command.start()
    command.join(30)
    assert outcome.get("code") == 2, "the command was still waiting after 30 s"
    assert time.monotonic() - started < 10
    err = capsys.readouterr().err
    assert err == (
        f"error: the Jobs API at http://127.0.0.1:{silent_port} did not answer within 1s; check that the "
        "address is the head's dashboard port (8265) and that the head is not overloaded\n"
    )


@pytest.fixture
def fresh_warnings(monkeypatch):
    """Each test sees the once-per-process warnings anew."""
    monkeypatch.setattr(auth, "_warned", set())


def test_ray_auth_mode_disabled_is_said_out_loud(no_token, monkeypatch, caplog, fresh_warnings):
    """Before: an embedded Ray or a cluster client ran without token authentication, silently."""
    from tuning_service.raytune.raysession import ensure_local_token

    monkeypatch.setenv(auth.MODE_ENV, "disabled")
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    ensure_local_token()
    auth.prepare_client_auth()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "RAY_AUTH_MODE=disabled: Ray runs without token authentication, so anyone who can reach its ports "
        "can run code as you, and a cluster started by cluster/start-head.sh refuses this client; unset it"
    ]  # once per process, not at every sweep of a scheduler


def test_the_token_in_plain_http_beyond_this_machine_is_warned_about(monkeypatch, capsys, fresh_warnings):
    """Before: `submit --address http://HEAD:8265` sent the bearer token in clear text without a word."""
    from tuning_service.cli import main

    monkeypatch.setenv("RAY_AUTH_TOKEN", "0" * 64)
    monkeypatch.setenv("TUNING_SERVICE_CONNECT_TIMEOUT_S", "1")
    assert main(["submissions", "list", "--address", "http://head.invalid:8265"]) == 2
    err = capsys.readouterr().err
    assert (
        "WARNING tuning_service.core.auth: the cluster token goes to head.invalid in plain HTTP: anyone on the network "
        "path can read it and run code on the cluster; reach the Jobs API through "
        "`ssh -L 8265:127.0.0.1:8265 head.invalid`" in err
    )
    for quiet in ("http://127.0.0.2:1", "http://[::1]:1", "https://head.invalid:8265"):
        main(["submissions", "list", "--address", quiet])
        assert "plain HTTP" not in capsys.readouterr().err, quiet


def test_rays_log_in_the_sweep_folder_is_readable_by_its_owner_only(tmp_path):
    """Before: ray.log was created with the umask's mode, readable by every user of the machine."""
    import logging
    import os

    from tuning_service.raytune.raysession import RAY_LOG, ray_logs_to

    previous = os.umask(0o022)
    try:
        with ray_logs_to(tmp_path / RAY_LOG):
            logging.getLogger("ray").warning("a line from Ray")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / RAY_LOG).stat().st_mode) == 0o600
    assert "a line from Ray" in (tmp_path / RAY_LOG).read_text()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_session_is_read_from_proc_with_each_process_cpu_and_killed_whole():
    # The leader burns CPU, then starts a child that leaves the process group but not the
    # session, as Ray's workers do.
    script = (
        "import os, subprocess, sys, time\n"
        "end = time.process_time() + 0.3\n"
        "while time.process_time() < end: pass\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], process_group=0)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    leader = subprocess.Popen(
        [sys.executable, "-c", script, "session-marker"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert leader.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 10
        while len(session_cpu(leader.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        members = session_cpu(leader.pid)
        assert len(members) == 2 and members[leader.pid] >= 0.25
        assert "session-marker" in command_line(leader.pid)
        child = next(pid for pid in members if pid != leader.pid)
        assert os.getpgid(child) != os.getpgid(leader.pid)
        assert kill_session(leader.pid) == 2
        leader.wait(timeout=10)
        while session_cpu(leader.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert session_cpu(leader.pid) == {} and command_line(leader.pid) is None
    finally:
        if leader.poll() is None:
            kill_session(leader.pid)
            leader.wait()
