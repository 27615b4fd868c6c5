"""Run the CLI in-process on generated input, stopping where Ray would start, and judge what came out.

Every input must end with exit 0 (the command would run) or exit 2 with one error line,
never a traceback, within a few seconds, and a refused input writes nothing. `run` and
`submit` go as far as a real sweep goes before Ray starts: the CLI parses and checks the
input (`prepare`), then, instead of starting Ray, the searcher and scheduler are built as
the sweep would build them, so an input that would only fail once Ray is up fails here.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from tuning_service.cli import main

# The most one input may take, however bad: a typical one takes milliseconds, the slowest about a
# second (a dataset's first read); the margin is for a machine shared with other work. A hang, or a
# grid or alias that expands without bound, takes minutes.
LIMIT_S = 10.0
# Jobs whose data is tiny and loads fast (no Ray, no Keras until a sweep runs).
TINY = "tuning_service.testing:tiny_job"


class WouldRun(BaseException):
    """The sweep passed every check and would start Ray now (not an Exception: nothing may catch it)."""


def dry_run_sweep(spec: Any, *, job: Any = None, progress: Any = None, trainable: Any = None) -> Any:
    """`runner.run_sweep` up to the point where Ray starts: searcher and scheduler built, no Ray."""
    from tuning_service.raytune.schedulers import create_scheduler
    from tuning_service.raytune.searchers import create_searcher
    from tuning_service.sweeps.runner import prepare

    prepared = prepare(spec, job)
    create_searcher(
        spec.searcher,
        prepared.job.space,
        seed=spec.seed,
        points_to_evaluate=spec.points_to_evaluate,
        max_concurrent=spec.max_concurrent,
        **spec.searcher_options,
    )
    create_scheduler(
        spec.scheduler, max_t=prepared.max_epochs, space=prepared.job.space, **spec.scheduler_options
    )
    raise WouldRun


@dataclass(frozen=True)
class Outcome:
    argv: list[str]
    code: int
    out: str
    err: str
    seconds: float

    def describe(self) -> str:
        return f"argv={self.argv!r}\nexit {self.code} after {self.seconds:.1f}s\nstdout: {self.out[-1500:]}\nstderr: {self.err[-3000:]}"


def invoke(argv: list[str], env: Mapping[str, str] | None = None) -> Outcome:
    """`tuning-service ARGV` in this process, with Ray replaced by `dry_run_sweep`."""
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with (
        mock.patch.dict(os.environ, dict(env or {})),
        mock.patch("tuning_service.sweeps.runner.run_sweep", dry_run_sweep),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            code = main(argv)
        except WouldRun:
            code = 0
        except Exception as exc:  # noqa: BLE001 - a crash is what the fuzzer looks for: report it
            import traceback

            err.write("Traceback (most recent call last):\n" + "".join(traceback.format_exception(exc)))
            code = 1
    return Outcome(argv, code, out.getvalue(), err.getvalue(), time.monotonic() - started)


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    """A fresh folder per input (Hypothesis runs many inputs in one test: no tmp_path)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="fuzz-") as folder:
        yield Path(folder)


def check(outcome: Outcome, *, before: set[Path], after: set[Path], problem_lines: bool = False) -> None:
    """Exit 0 or 2, one error line (a schedule file may list several problems under it), no
    traceback, in time, and nothing written (every command fuzzed here only reads until Ray starts)."""
    from hypothesis import event

    # --hypothesis-show-statistics: how far the inputs got (exit 0: every check passed).
    event(f"exit {outcome.code}")
    if outcome.code == 2:
        message = re.sub(r"\S*/fuzz-[^/\s]+/\S+?(:\d+)?: ", "", outcome.err.partition("error: ")[2])
        event("refused: " + message.split("'")[0][:40])
    assert outcome.code in (0, 2), outcome.describe()
    assert "Traceback" not in outcome.err + outcome.out, outcome.describe()
    assert outcome.seconds < LIMIT_S, outcome.describe()
    lines = outcome.err.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    logged = [line for line in lines if line.split(" ", 1)[0] in ("WARNING", "ERROR", "INFO", "DEBUG")]
    if outcome.code == 2:
        assert len(errors) == 1, outcome.describe()
        extra = [line for line in lines if line not in errors and line not in logged]
        if problem_lines:  # "error: FILE: N problems", then one "  FILE:LINE: key: message" each
            assert all(line.startswith("  ") for line in extra), outcome.describe()
        else:
            assert not extra, outcome.describe()
    else:
        assert not errors, outcome.describe()
    assert after == before, f"files written: {sorted(map(str, after ^ before))}\n{outcome.describe()}"
