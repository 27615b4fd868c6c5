"""Numbers read from environment variables, checked when used: a bad value is one line naming the variable."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager

from tuning_service.core.errors import InputError


def seconds(name: str, default: float, *, zero: bool = False, words: tuple[str, ...] = ()) -> float | str:
    """The number of seconds in ``$name`` (``default`` when unset or empty).

    ``zero`` allows 0; ``words`` are other values taken as they are (Tune's ``auto``).
    Read at each use, not at import, so a bad value is reported by the command that
    needs it, as bad input, and a test or a long-lived process can change it.
    """
    text = os.environ.get(name, "").strip()
    return parse_seconds(name, text, zero=zero, words=words) if text else default


def parse_seconds(name: str, text: str, *, zero: bool = False, words: tuple[str, ...] = ()) -> float | str:
    """``text``, the value of ``$name``, as seconds (or one of ``words``); InputError naming it if not."""
    text = text.strip()
    if text in words:
        return text
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        bound = ">= 0" if zero else "> 0"
        also = "".join(f" or {w!r}" for w in words)
        raise InputError(f"{name} must be a number of seconds {bound}{also}, got {text!r}; fix or unset it")
    return value


def positive_seconds(name: str, default: float) -> float:
    """``$name`` as a number of seconds > 0 (``default`` when unset)."""
    return float(seconds(name, default))


@contextmanager
def env_restored(*names: str) -> Iterator[None]:
    """Environment variables ``names`` put back as they were (or unset again) when the block
    ends, whatever the block set them to."""
    before = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
