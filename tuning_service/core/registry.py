"""Name tables that map a user-facing name to a lazily imported builder."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import math
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tuning_service.core.errors import InputError


def did_you_mean(name: str, choices: list[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest choice, or ''."""
    prefixed = [c for c in choices if c.startswith(name) or name.startswith(c)]
    close = prefixed[:1] or difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass(frozen=True)
class Extra:
    """An install extra of tuning-service that a plug-in needs: its name and the modules it brings.

    Checked with ``importlib.util.find_spec``, so asking imports nothing (PyTorch takes seconds).
    """

    name: str
    modules: tuple[str, ...]

    def missing(self) -> list[str]:
        return [m for m in self.modules if importlib.util.find_spec(m) is None]

    @property
    def pip(self) -> str:
        return f"pip install 'tuning-service[{self.name}]'"


class Registry(Mapping[str, Callable[..., Any]]):
    """A table of named builders imported only when chosen.

    Entries are ``"module.path:attribute"`` strings, so an optional library
    (Optuna, HyperOpt) is imported only by the sweep that uses it.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._targets: dict[str, str | Callable[..., Any]] = {}
        self._hints: dict[str, str] = {}
        self._extras: dict[str, Extra] = {}

    def add_lazy(
        self, name: str, target: str, *, aliases: tuple[str, ...] = (), needs: Extra | None = None
    ) -> None:
        """Register ``name`` as the callable at ``"module:attr"``.

        ``aliases`` are names users often try (``tpe`` for optuna); they are not
        accepted, only suggested, so files keep one spelling per plug-in. ``needs`` is the
        install extra the plug-in's libraries come with, when they are not installed by default.
        """
        self._targets[name] = target
        self._hints.update({alias: name for alias in aliases})
        if needs is not None:
            self._extras[name] = needs

    def module_of(self, name: str) -> str:
        """The module a lazily registered ``name`` lives in (its docstring says what it is)."""
        target = self._targets[self.check(name)]
        return target.partition(":")[0] if isinstance(target, str) else target.__module__

    def extra(self, name: str) -> Extra | None:
        """The install extra ``name`` needs, or None when the default install has everything."""
        return self._extras.get(name)

    def check_installed(self, name: str) -> None:
        """Raise one line naming the pip command when ``name``'s extra is not installed."""
        extra = self._extras.get(name)
        missing = extra.missing() if extra else []
        if extra and missing:
            raise InputError(
                f"{self.kind} {name!r} needs {', '.join(missing)}, which is not installed: {extra.pip}"
            )

    def describe(self, name: str) -> str:
        """``name``, followed by the extra it needs if any: ``gp (needs the gp extra)``."""
        extra = self._extras.get(name)
        return f"{name} (needs the {extra.name} extra)" if extra else name

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
class AtLeast:
    """A numeric option's lower bound, written ``Annotated[int, AtLeast(1)]`` in a builder's signature."""

    low: float
    strict: bool = False  # the value must be greater than ``low``, not equal to it

    def admits(self, value: float) -> bool:
        return value > self.low if self.strict else value >= self.low

    def __str__(self) -> str:
        return f"{'>' if self.strict else '>='} {self.low:g}"


@dataclass(frozen=True)
class AtMost:
    """A numeric option's upper bound, written ``Annotated[float, AtLeast(0), AtMost(1)]``."""

    high: float

    def admits(self, value: float) -> bool:
        return value <= self.high

    def __str__(self) -> str:
        return f"<= {self.high:g}"


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
    ``float``, ``bool``, one of a ``Literal``'s values, ``tuple[str, ...]``: names, as a list or
    one comma-separated string, or None where the type says ``| None``) and bounds (`AtLeast`,
    `AtMost`), which Ray would otherwise check with an
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
                f"(accepted: {', '.join(accepted) or 'none'}){did_you_mean(str(key), accepted)}"
            )
        wanted = _OptionType.of(hints.get(key))
        if wanted is not None and not wanted.fits(value):
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:60] + "..."
            raise InputError(f"{kind} {name!r}: option {key!r} must be {wanted}, got {shown}")


@dataclass(frozen=True)
class _OptionType:
    """What an option's annotation admits: a type or a Literal's values, its bounds, and maybe None."""

    kind: type | tuple[Any, ...]  # int, float, bool or tuple (names); or a Literal's values
    bounds: tuple[AtLeast | AtMost, ...] = ()
    optional: bool = False

    @classmethod
    def of(cls, hint: Any) -> _OptionType | None:
        """From ``Annotated[int, AtLeast(1)] | None``, ``Literal["a", "b"]``, ``bool`` ...; None if unchecked."""
        optional = False
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            optional = len(args) < len(typing.get_args(hint))
            if len(args) != 1:
                return None
            hint = args[0]
        bounds: tuple[AtLeast | AtMost, ...] = ()
        if typing.get_origin(hint) is typing.Annotated:
            hint, *extras = typing.get_args(hint)
            bounds = tuple(e for e in extras if isinstance(e, AtLeast | AtMost))
        if typing.get_origin(hint) is typing.Literal:
            return cls(typing.get_args(hint), optional=optional)
        if hint == tuple[str, ...]:
            return cls(tuple, (), optional)
        return cls(hint, bounds, optional) if hint in (int, float, bool) else None

    def fits(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if isinstance(self.kind, tuple):
            return any(value == v and type(value) is type(v) for v in self.kind)
        if self.kind is tuple:
            items = [value] if isinstance(value, str) else value
            return isinstance(items, list | tuple) and all(isinstance(v, str) for v in items)
        if self.kind is bool:
            return isinstance(value, bool)
        numeric = isinstance(value, int) if self.kind is int else isinstance(value, int | float)
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
        return all(bound.admits(value) for bound in self.bounds)

    def __str__(self) -> str:
        if isinstance(self.kind, tuple):
            what = "one of: " + ", ".join(str(v) for v in self.kind)
        else:
            what = {
                bool: "true or false",
                int: "an integer",
                float: "a number",
                tuple: "a name or a list of names (comma-separated)",
            }[self.kind]
            what = " and ".join(
                [what + (f" {self.bounds[0]}" if self.bounds else ""), *map(str, self.bounds[1:])]
            )
        return what + (" (or left empty)" if self.optional else "")


def names_option(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """A names option as given (``"a,b"`` or ``["a", "b"]``) -> ``("a", "b")``."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    return tuple(p.strip() for p in parts if p.strip())
