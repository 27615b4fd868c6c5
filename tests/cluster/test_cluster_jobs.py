"""A sweep submitted through the Jobs API of a real head with token auth: followed, read, and refused without the token."""

from __future__ import annotations

import json

import pytest
import requests

pytestmark = pytest.mark.integration

JOB_FILE = '''"""A job of the user's own, with a function of its own: it must reach the trial workers."""
import dataclasses

from tuning_service.models import build_mlp
from tuning_service.testing import tiny_job


def build_model(config, input_spec):
    return build_mlp(config, input_spec)


JOB = dataclasses.replace(tiny_job(max_epochs=1), name="mine", build_model=build_model)
'''


@pytest.mark.slow
def test_a_submitted_sweep_runs_to_success_and_its_best_config_is_read_back(local_cluster, tmp_path):
    job_file = tmp_path / "my_job.py"
    job_file.write_text(JOB_FILE)
    url = local_cluster.jobs_url
    submitted = local_cluster.cli(
        "submit",
        str(job_file),
        "--address",
        url,
        "--storage",
        str(tmp_path / "results"),
        "--num-samples",
        "1",
        "--searcher",
        "random",
        "--scheduler",
        "fifo",
        "--seed",
        "3",
    )
    assert submitted.returncode == 0, submitted.stderr
    submission_id = submitted.stdout.strip()
    assert submission_id.startswith("tuning-mine-")

    followed = local_cluster.cli("submissions", "logs", submission_id, "--follow", "--address", url)
    assert followed.returncode == 0, followed.stdout[-2000:] + followed.stderr
    assert "1/1 trials: 1 done" in followed.stdout

    result = local_cluster.cli("submissions", "result", submission_id, "--address", url)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["job"] == "mine" and record["seed"] == 3 and record["metric"] == "val_accuracy"
    assert set(record["config"]) == {"learning_rate", "units"}
    on_head = tmp_path / "results" / "mine" / record["sweep_id"] / "best_config.json"
    assert json.loads(on_head.read_text())["config"] == record["config"]
    # The submission named its sweep; read from the database the head recorded it in, the
    # result is the same.
    assert submission_id == f"tuning-mine-{record['sweep_id']}"
    db = f"sqlite:///{tmp_path / 'results' / 'tuning.db'}"
    from_db = local_cluster.cli("submissions", "result", submission_id, "--address", url, "--db", db)
    assert from_db.returncode == 0, from_db.stderr
    recorded = json.loads(from_db.stdout)
    for key in ("sweep_id", "trial_id", "config", "metric", "mode", "epoch", "seed"):
        assert recorded[key] == record[key], key
    assert recorded["value"] == pytest.approx(record["value"])

    listed = local_cluster.cli("submissions", "list", "--address", url, "--format", "json")
    mine = [s for s in json.loads(listed.stdout) if s["submission_id"] == submission_id]
    assert [(s["status"], s["job"], s["sweep_id"]) for s in mine] == [
        ("SUCCEEDED", "mine", record["sweep_id"])
    ]

    # The token travelled only in request headers: not in what the cluster stored or logged.
    token = local_cluster.token_path.read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    stored = requests.get(f"{url}/api/jobs/{submission_id}", headers=headers, timeout=30)
    assert stored.status_code == 200 and stored.json()["runtime_env"].get("working_dir")
    logs = requests.get(f"{url}/api/jobs/{submission_id}/logs", headers=headers, timeout=30)
    assert token not in stored.text and token not in logs.text and token not in followed.stdout


def test_the_jobs_api_refuses_requests_without_the_right_token(local_cluster):
    url = local_cluster.jobs_url
    before = requests.get(
        f"{url}/api/jobs/",
        headers={"Authorization": f"Bearer {local_cluster.token_path.read_text().strip()}"},
        timeout=30,
    ).json()
    request = {"entrypoint": "echo should-never-run"}
    assert requests.post(f"{url}/api/jobs/", json=request, timeout=30).status_code == 401
    wrong = {"Authorization": "Bearer " + "0" * 64}
    assert requests.post(f"{url}/api/jobs/", json=request, headers=wrong, timeout=30).status_code == 403

    no_token = local_cluster.cli(
        "submit", "tuning_service.testing:tiny_job", "--address", url, env=local_cluster.without_token()
    )
    assert no_token.returncode == 2
    assert f"error: the Jobs API at {url} refused this client: this machine has no token" in no_token.stderr
    wrong_token = local_cluster.cli(
        "submissions", "list", "--address", url, env=local_cluster.without_token(RAY_AUTH_TOKEN="0" * 64)
    )
    assert wrong_token.returncode == 2
    assert (
        "the token from the RAY_AUTH_TOKEN environment variable is not this cluster's" in wrong_token.stderr
    )

    after = requests.get(
        f"{url}/api/jobs/",
        headers={"Authorization": f"Bearer {local_cluster.token_path.read_text().strip()}"},
        timeout=30,
    ).json()
    assert len(after) == len(before)


def test_an_unknown_submission_is_named_in_the_error(local_cluster):
    done = local_cluster.cli("submissions", "status", "tuning-nope", "--address", local_cluster.jobs_url)
    assert done.returncode == 2
    assert done.stderr == (
        f"error: no submission 'tuning-nope' at {local_cluster.jobs_url}; "
        "`tuning-service submissions list` shows them\n"
    )


def test_a_submission_that_outlives_the_schedulers_wait_is_stopped(local_cluster, monkeypatch):
    """Before: `target: submit` polled it for ever, and no later sweep of the schedule ran."""
    import secrets
    import time

    from tuning_service.core.errors import SweepError
    from tuning_service.sweeps.submission import connect, get_submission, wait_for_end

    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_MODE"):  # the shared embedded Ray's token is not this cluster's
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(local_cluster.token_path))
    url = local_cluster.jobs_url
    submission_id = f"tuning-sleeper-{secrets.token_hex(3)}"
    connect(url).submit_job(entrypoint="sleep 600", submission_id=submission_id)
    started = time.monotonic()
    with pytest.raises(
        SweepError,
        match=rf"submission {submission_id} was still (PENDING|RUNNING) after [34]s, the most the scheduler "
        r"waits \(wait_timeout_s: 3\); stopped it",
    ):
        wait_for_end(url, submission_id, timeout_s=3, poll_s=0.5)
    assert time.monotonic() - started < 15
    deadline = time.monotonic() + 60
    while (status := get_submission(url, submission_id).status) != "STOPPED" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert status == "STOPPED"
