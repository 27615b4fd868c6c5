"""Errors the service raises on purpose, each mapped to a CLI exit code."""

from __future__ import annotations


class TuningServiceError(Exception):
    """Base class: anything the CLI reports as one line instead of a traceback."""

    exit_code = 1


class InputError(TuningServiceError, ValueError):
    """The user asked for something invalid; nothing was started or written (exit 2)."""

    exit_code = 2


class SweepError(TuningServiceError):
    """The sweep started but could not produce a result (exit 1)."""

    exit_code = 1


class NotRecordedError(SweepError):
    """The sweep ran and its files are written, but the results database could not record its
    end (exit 1). ``result`` is the sweep's outcome, for the caller to show all the same."""

    def __init__(self, message: str, result: object) -> None:
        super().__init__(message)
        self.result = result


class SweepStopped(SweepError):
    """The sweep was stopped before it finished because it must not go on: a scheduled run whose
    lock another scheduler took over (exit 1). Recorded as interrupted."""
