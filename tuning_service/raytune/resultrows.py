"""A sweep's trials' reported results read as rows from each trial's result.json, not as Ray
Tune's pandas tables.

As a run ends, Ray Tune reads every trial's result.json into a pandas DataFrame
(`ExperimentAnalysis`, for `Result.metrics_dataframe`): the driver imports pandas for it (a
quarter of a second of one core) and normalises each trial's rows into a table, one trial after
another, before the sweep can write its outputs. The sweep reads each trial's results once, to
summarise the trial (`runner._summarize`), and wants rows: inside `tables_unread` Tune makes no
table (a result's `metrics_dataframe` is None), and `reported_rows` reads the same file as JSON
lines. A sweep whose job's data is not a table (digits) then never loads pandas in its driver,
which imports Ray Tune with pandas deferred (`lazydata`).
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

# The file in a trial's folder where Tune's JSON logger appends each result (Tune's
# EXPR_RESULT_FILE; `runner.callbacks` always adds that logger).
RESULT_FILE = "result.json"


@contextmanager
def tables_unread() -> Iterator[None]:
    """While inside, the runs Tune ends read no trial's results into a pandas table. A Tune whose
    analysis reads them elsewhere (a Ray upgrade) makes its tables as before."""
    from ray.tune.analysis.experiment_analysis import ExperimentAnalysis

    fetch = ExperimentAnalysis.__dict__.get("_fetch_trial_dataframes")
    if fetch is None:
        yield
        return
    ExperimentAnalysis._fetch_trial_dataframes = _no_tables  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        ExperimentAnalysis._fetch_trial_dataframes = fetch  # type: ignore[method-assign]


def _no_tables(analysis: Any) -> dict[str, Any]:
    return {}


def reported_rows(result: Any) -> list[dict[str, Any]]:
    """Every result the trial reported, oldest first: Tune's table where it made one, else the
    trial's result.json (a line that is not JSON, as a killed driver's last, is left out)."""
    frame = result.metrics_dataframe
    if frame is not None:
        rows: list[dict[str, Any]] = frame.to_dict("records")
        return rows
    path = posixpath.join(result.path, RESULT_FILE)
    try:
        with result.filesystem.open_input_stream(path) as stream:
            content = stream.readall().decode("utf-8")
    except FileNotFoundError:
        return []  # the trial reported nothing
    except OSError as exc:
        log.warning("could not read the results of trial %s: %s", posixpath.basename(result.path), exc)
        return []
    rows = []
    for number, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            log.warning("%s: line %d is not JSON; left out", path, number)
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
