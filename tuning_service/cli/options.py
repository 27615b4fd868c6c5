"""Options shared by subcommands: a sweep's settings as options, and KEY=VALUE parsing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click
import yaml

from tuning_service.core import yamlio
from tuning_service.core.settings import SweepSetting, sweep_settings
from tuning_service.core.spec import SweepSpec

F = TypeVar("F", bound=Callable[..., Any])


def parse_key_values(flag: str, pairs: tuple[str, ...]) -> dict[str, Any]:
    """``("grace_period=2", "brackets=1")`` -> ``{"grace_period": 2, "brackets": 1}`` (YAML 1.2 scalars)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.UsageError(f"{flag} takes KEY=VALUE, got {pair!r}")
        try:
            out[key.strip()] = yamlio.loads(value) if value.strip() else None
        except yaml.YAMLError as exc:
            raise click.UsageError(
                f"{flag} {pair!r}: the value is not valid YAML ({yamlio.describe(exc)}); quote it if it is a string"
            ) from None
    return out


def option_kwargs(item: SweepSetting) -> dict[str, Any]:
    """The `run`/`submit` option of one sweep setting, from its declaration."""
    kwargs: dict[str, Any] = {"help": item.help, "metavar": item.how.metavar}
    if item.kind is dict or (item.kind is tuple and item.how.load is None):
        kwargs["multiple"] = True  # repeatable: KEY=VALUE pairs, or a list
    elif item.how.path is not None:
        kwargs["type"] = click.Path(dir_okay=item.how.path == "dir", file_okay=item.how.path == "file")
    elif item.kind in (int, float):
        kwargs["type"] = item.kind
    if isinstance(item.default, int | float | str):  # not None, (), {}: those mean "not given"
        kwargs.update(default=item.default, show_default=True)
    return kwargs


def sweep_options(command: F) -> F:
    """Decorate a command with an option for every sweep setting that has one, in declaration order."""
    for item in reversed(sweep_settings()):
        if item.flag:
            command = click.option(item.flag, **option_kwargs(item))(command)
    return command


def spec_of_options(values: Mapping[str, Any], **given: Any) -> SweepSpec:
    """The SweepSpec of a command's sweep options (``given``: fields the command sets itself)."""
    kwargs = dict(given)
    for item in sweep_settings():
        if item.name in kwargs or not item.flag or item.param not in values:
            continue
        value = values[item.param]
        if item.kind is dict:
            value = parse_key_values(item.flag, value)
        elif item.how.load is not None:
            value = item.how.load(value) if value else item.default
        kwargs[item.name] = value
    return SweepSpec(**kwargs)
