"""Name tables that map a user-facing name to a lazily imported builder."""

from __future__ import annotations

import difflib
import importlib
import inspect
import math
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tuning_service.errors import InputError


def did_you_mean(name: str, choices: list[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest choice, or ''."""
    prefixed = [c for c in choices if c.startswith(name) or name.startswith(c)]
    close = prefixed[:1] or difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Registry(Mapping[str, Callable[..., Any]]):
    """A table of named builders imported only when chosen.

    Entries are ``"module.path:attribute"`` strings, so an optional library
    (Optuna, HyperOpt) is imported only by the sweep that uses it.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._targets: dict[str, str | Callable[..., Any]] = {}
        self._hints: dict[str, str] = {}

    def add_lazy(self, name: str, target: str, *, aliases: tuple[str, ...] = ()) -> None:
        """Register ``name`` as the callable at ``"module:attr"``.

        ``aliases`` are names users often try (``tpe`` for optuna); they are not
        accepted, only suggested, so files keep one spelling per plug-in.
        """
        self._targets[name] = target
        self._hints.update({alias: name for alias in aliases})

    def add(self, name: str, builder: Callable[..., Any]) -> None:
        """Register an already imported callable under ``name``."""
        self._targets[name] = builder

    def names(self) -> list[str]:
        return sorted(self._targets)

    def check(self, name: str) -> str:
        """Return ``name`` if registered, else raise an error listing the valid names."""
        if name not in self._targets:
            hint = (
                f" (did you mean '{self._hints[name]}'?)"
                if name in self._hints
                else did_you_mean(name, self.names())
            )
            raise InputError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}{hint}")
        return name

    def __getitem__(self, name: str) -> Callable[..., Any]:
        target = self._targets[self.check(name)]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module), attr)
        return target

    def get(self, name: str) -> Callable[..., Any]:  # type: ignore[override]
        return self[name]

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._targets)


@dataclass(frozen=True)
class AtMost:
    """A numeric option's upper bound, written ``Annotated[float, AtLeast(0), AtMost(1)]``."""

    high: float

    def admits(self, value: float) -> bool:
        return value <= self.high

    def __str__(self) -> str:
        return f"<= {self.high:g}"


@dataclass(frozen=True)
class AtLeast:
    """A numeric option's lower bound, written ``Annotated[int, AtLeast(1)]`` in a builder's signature."""

    low: float
    strict: bool = False  # the value must be greater than ``low``, not equal to it

    def admits(self, value: float) -> bool:
        return value > self.low if self.strict else value >= self.low

    def __str__(self) -> str:
        return f"{'>' if self.strict else '>='} {self.low:g}"


def check_options(
    kind: str,
    name: str,
    builder: Callable[..., Any],
    options: Mapping[str, Any],
    reserved: tuple[str, ...] = (),
) -> None:
    """Refuse options that ``builder`` does not take as keyword-only arguments, or of the wrong type.

    A builder's keyword-only parameters are its option schema: unknown ones are refused
    rather than silently dropped, and each value must have the parameter's type (``int``,
    ``float``, ``bool``, or ``tuple[str, ...]``: names, as a list or one comma-separated
    string) and bounds (`AtLeast`, `AtMost`), which Ray would otherwise check with an
    ``assert`` once the sweep had started, or not at all.
    """
    params = inspect.signature(builder).parameters
    accepted = sorted(
        p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY and p not in reserved
    )
    hints = typing.get_type_hints(builder, include_extras=True)
    for key, value in options.items():
        if key not in accepted:
            raise InputError(
                f"{kind} {name!r}: unknown option {key!r} "
                f"(accepted: {', '.join(accepted) or 'none'}){did_you_mean(key, accepted)}"
            )
        wanted = _option_type(hints.get(key))
        if wanted is not None and not _fits(value, *wanted):
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:60] + "..."
            raise InputError(f"{kind} {name!r}: option {key!r} must be {_describe(*wanted)}, got {shown}")


def _option_type(hint: Any) -> tuple[type, tuple[AtLeast | AtMost, ...]] | None:
    """(int, float, bool or tuple; its bounds) from an annotation such as ``Annotated[int, AtLeast(1)]``."""
    bounds: tuple[AtLeast | AtMost, ...] = ()
    if typing.get_origin(hint) is typing.Annotated:
        hint, *extras = typing.get_args(hint)
        bounds = tuple(e for e in extras if isinstance(e, AtLeast | AtMost))
    if hint == tuple[str, ...]:
        return tuple, ()
    return (hint, bounds) if hint in (int, float, bool) else None


def names_option(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """A names option as given (``"a,b"`` or ``["a", "b"]``) -> ``("a", "b")``."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    return tuple(p.strip() for p in parts if p.strip())


def _fits(value: Any, kind: type, bounds: tuple[AtLeast | AtMost, ...]) -> bool:
    if kind is tuple:
        items = [value] if isinstance(value, str) else value
        return isinstance(items, list | tuple) and all(isinstance(v, str) for v in items)
    if kind is bool:
        return isinstance(value, bool)
    numeric = isinstance(value, int) if kind is int else isinstance(value, int | float)
    if isinstance(value, bool) or not numeric:
        return False
    # Ray hands numbers to NumPy: a float must be finite, an int fit in 64 bits (10**400 would not).
    if (
        isinstance(value, float)
        and not math.isfinite(value)
        or isinstance(value, int)
        and abs(value) >= 2**63
    ):
        return False
    return all(bound.admits(value) for bound in bounds)


def _describe(kind: type, bounds: tuple[AtLeast | AtMost, ...]) -> str:
    what = {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        tuple: "a name or a list of names (comma-separated)",
    }[kind]
    return " and ".join([f"{what} {bounds[0]}", *map(str, bounds[1:])]) if bounds else what
