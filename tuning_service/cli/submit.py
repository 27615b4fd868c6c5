"""`tuning-service submit`: the `run` options, sent to a Ray cluster as a Ray Job."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from tuning_service.cli.options import parse_key_values
from tuning_service.cli.run import run
from tuning_service.searchers.points import read_points_file
from tuning_service.spec import DEFAULT_JOB, SweepSpec
from tuning_service.submission import DEFAULT_REMOTE_STORAGE

# `run` options that mean something else for a submission, or that the submission sets.
_NOT_FORWARDED = {"job", "address", "storage", "fmt"}
# `run` option name -> SweepSpec field, where they differ.
_RENAMED = {"time_budget": "time_budget_s"}
_KEY_VALUES = {"searcher_option": "searcher_options", "scheduler_option": "scheduler_options"}


def _run_params() -> list[click.Parameter]:
    """Every `run` option, so `submit` accepts the same ones as `run` does today."""
    return [p for p in run.params if p.name not in _NOT_FORWARDED]


def run_args(values: dict[str, Any]) -> list[str]:
    """The forwarded options back as argv, each as given (defaults left out), minus any password.

    This argv is the Ray Job's entrypoint, which every holder of the cluster token can
    read: ``--db`` travels without its password (the sweep on the head reads it from
    PGPASSWORD or ~/.pgpass there), and `SweepSpec` refuses an ``--mlflow`` URI with one.
    """
    from tuning_service.submission import remote_db

    argv: list[str] = []
    for param in _run_params():
        if not isinstance(param, click.Option):
            continue
        value, flag = values.get(param.name), param.opts[0]
        if param.name == "db" and value:
            value = remote_db(value)
        if value is None or value == () or (not param.multiple and value == param.default):
            continue
        if param.is_flag:
            argv += [flag] if value else []
        elif param.multiple:
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    return argv


def sweep_spec(job: str, storage: str, values: dict[str, Any]) -> SweepSpec:
    """The same SweepSpec `run` would build from these options, for checking before submitting."""
    fields = {f.name for f in dataclasses.fields(SweepSpec)}
    kwargs: dict[str, Any] = {"job": job, "storage": storage}
    for name, value in values.items():
        if name in kwargs:
            continue
        if name in _KEY_VALUES:
            kwargs[_KEY_VALUES[name]] = parse_key_values("--" + name.replace("_", "-"), value)
        elif _RENAMED.get(name, name) in fields:
            kwargs[_RENAMED.get(name, name)] = value
    return SweepSpec(**kwargs)


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
    from tuning_service.submission import submit_sweep

    spec = sweep_spec(job, storage, values)
    if values.get("warm_start"):
        # The file is read here; submit_sweep ships the configs with the submission.
        spec = spec.replace(points_to_evaluate=read_points_file(values.pop("warm_start")))
    submission_id = submit_sweep(spec, run_args(values), address=address, includes=include, python=python)
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
