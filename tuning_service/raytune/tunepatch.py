"""One of Ray Tune's methods (or a module's names) replaced while a sweep runs, and Tune's put back after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def replaced(owner: object, name: str, value: Any) -> Iterator[None]:
    """``owner.name`` is ``value`` while this context is open, then what it was."""
    tunes = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, tunes)
