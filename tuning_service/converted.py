"""Converted: a frozen dataclass field that takes one type and holds another.

`Job` takes a space as a plain mapping or a `Space` and holds a `Space`; `SweepSpec` takes
``scheduler=None`` and holds the searcher's default scheduler. Declared as ``space: Space``
the type checker refused the mappings every job passes; declared as the union, every reader
would have to narrow a value that is never a mapping once built. This descriptor says both:
``space: Converted[Space | Mapping[str, Any], Space]`` (the type checker reads a descriptor
field's ``__init__`` argument from ``__set__`` and its value from ``__get__``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

In = TypeVar("In")
Out = TypeVar("Out")
_NO_DEFAULT: Any = object()


class Converted(Generic[In, Out]):
    """Runs ``convert(instance, value)`` when the dataclass's ``__init__`` sets the field.

    Fields are set in declaration order, so ``convert`` may read the fields declared before.
    ``default`` is what ``__init__`` passes when the caller leaves the field out.
    """

    def __init__(self, convert: Callable[[Any, In], Out], *, default: In = _NO_DEFAULT) -> None:
        self._convert = convert
        self._default = default

    def __set_name__(self, owner: type, name: str) -> None:
        self._attr = f"_{name}"

    @overload
    def __get__(self, instance: None, owner: type) -> In: ...
    @overload
    def __get__(self, instance: object, owner: type) -> Out: ...
    def __get__(self, instance: object | None, owner: type) -> In | Out:
        if instance is None:
            # dataclasses reads the field's default here; AttributeError means "required".
            if self._default is _NO_DEFAULT:
                raise AttributeError(self._attr[1:])
            return self._default
        value: Out = getattr(instance, self._attr)
        return value

    def __set__(self, instance: object, value: In) -> None:
        # object.__setattr__: frozen dataclasses refuse setattr, and __init__ goes through here.
        object.__setattr__(instance, self._attr, self._convert(instance, value))
