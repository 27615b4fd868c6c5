"""Converted: a frozen dataclass field that takes one type and holds another.

`Job` takes a search space as a plain mapping (the way job modules write it) or a `Space`, and
holds a `Space`. Declared as ``space: Space`` the type checker refused the mappings every job
passes; declared as the union, every reader would have to narrow a value that is never a
mapping once built. This descriptor says both: ``space: Converted[Space | Mapping[str, Any],
Space]`` (the type checker reads a descriptor field's ``__init__`` argument from ``__set__``
and its value from ``__get__``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

In = TypeVar("In")
Out = TypeVar("Out")


class Converted(Generic[In, Out]):
    """Runs ``convert(instance, value)`` when the dataclass's ``__init__`` sets the field.

    Fields are set in declaration order, so ``convert`` may read the fields declared before.
    The field has no default; the type checker takes the assignment for one, so declare it
    after the other fields without a default.
    """

    def __init__(self, convert: Callable[[Any, In], Out]) -> None:
        self._convert = convert

    def __set_name__(self, owner: type, name: str) -> None:
        self._attr = f"_{name}"

    @overload
    def __get__(self, instance: None, owner: type) -> Converted[In, Out]: ...
    @overload
    def __get__(self, instance: object, owner: type) -> Out: ...
    def __get__(self, instance: object | None, owner: type) -> Converted[In, Out] | Out:
        if instance is None:
            # dataclasses reads the field's default here; AttributeError means "required".
            raise AttributeError(self._attr[1:])
        value: Out = getattr(instance, self._attr)
        return value

    def __set__(self, instance: object, value: In) -> None:
        # object.__setattr__: frozen dataclasses refuse setattr, and __init__ goes through here.
        object.__setattr__(instance, self._attr, self._convert(instance, value))
