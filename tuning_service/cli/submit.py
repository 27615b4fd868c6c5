"""`tuning-service submit`: the `run` options, sent to a Ray cluster as a Ray Job."""

from __future__ import annotations

from typing import Any

import click

from tuning_service.cli.options import spec_of_options
from tuning_service.cli.run import run
from tuning_service.core import settings
from tuning_service.core.spec import DEFAULT_JOB, SweepSpec
from tuning_service.sweeps.submission import DEFAULT_REMOTE_STORAGE

# `run` options that mean something else for a submission, which sets them itself.
_SUBMISSION_OWN = {"job", "address", "storage", "fmt"}


def _run_params() -> list[click.Parameter]:
    """Every `run` option, so `submit` accepts the same ones as `run` does today."""
    return [p for p in run.params if p.name not in _SUBMISSION_OWN]


def run_args(values: dict[str, Any]) -> list[str]:
    """The options given to `submit` as the argv `run` gets on the head (see `settings.run_args`)."""
    return settings.run_args(spec_of_options(values))


def sweep_spec(job: str, storage: str, values: dict[str, Any]) -> SweepSpec:
    """The same SweepSpec `run` would build from these options, for checking before submitting."""
    return spec_of_options(values, job=job, storage=storage)


def _submit(
    job: str,
    address: str,
    storage: str,
    include: tuple[str, ...],
    python: str,
    follow: bool,
    **values: Any,
) -> None:
    """Submit a sweep of JOB to the Ray cluster at --address; prints the submission id.

    Takes every `tuning-service run` option. The job's own files travel with the
    submission (a .py or YAML job file, its CSV, and --include paths); the results
    are written on the head, under --storage. The token is read as for `run`
    (RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token) and sent only in the request header.
    """
    from tuning_service.sweeps.submission import submit_sweep

    spec = sweep_spec(job, storage, values)  # --warm-start is read here and travels as a file
    submission_id = submit_sweep(
        spec, settings.run_args(spec), address=address, includes=include, python=python
    )
    click.echo(submission_id)
    if follow:
        from tuning_service.cli.submissions import follow_to_end

        follow_to_end(address, submission_id)


def _build() -> click.Command:
    params: list[click.Parameter] = [
        click.Argument(["job"], default=DEFAULT_JOB),
        click.Option(
            ["--address"],
            envvar="RAY_API_SERVER_ADDRESS",
            required=True,
            help="The cluster's Jobs API, http://HEAD:8265 [env: RAY_API_SERVER_ADDRESS].",
        ),
        click.Option(
            ["--storage"],
            default=DEFAULT_REMOTE_STORAGE,
            show_default=True,
            help="Results root on the head node (~ is the head's home).",
        ),
        click.Option(
            ["--include"],
            multiple=True,
            type=click.Path(exists=True),
            help="Another file or directory the job needs on the cluster (repeatable).",
        ),
        click.Option(
            ["--python"],
            default="python",
            show_default=True,
            help="The cluster's Python with tuning-service installed.",
        ),
        click.Option(["--follow"], is_flag=True, help="Stream the logs until the sweep ends."),
        *_run_params(),
    ]
    return click.Command("submit", params=params, callback=_submit, help=_submit.__doc__)


submit = _build()
