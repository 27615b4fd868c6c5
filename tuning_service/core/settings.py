"""A sweep's settings as users give them, derived from SweepSpec's fields: file keys, argv, records.

SweepSpec declares each setting once (its type, default and `Setting`); the `run` and
`submit` options (`cli.options.sweep_options`), the schedule file's keys, the argv a
submission or a scheduled sweep forwards to `run` on the cluster, and what the results
database records of a sweep all come from that declaration. Adding a setting is one
field plus the code that uses it.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

from tuning_service.core.spec import INT_MAX, SETTING, Setting, SweepSpec, value_type


@dataclass(frozen=True)
class SweepSetting:
    """One SweepSpec field and how users set it."""

    name: str  # the SweepSpec field
    kind: type  # its values' type: int, float, str, dict, or tuple (of strings: a repeatable option)
    default: Any
    how: Setting

    @property
    def flag(self) -> str | None:
        return self.how.flag

    @property
    def param(self) -> str:
        """The `run` option's parameter name, as click derives it: ``--time-budget`` -> time_budget."""
        return self.flag.removeprefix("--").replace("-", "_") if self.flag else self.name

    @property
    def file_key(self) -> str | None:
        """The schedule-file key: the option's name, unless the field says otherwise."""
        return self.param if self.how.file_key == "" else self.how.file_key

    @property
    def help(self) -> str | None:
        return self.how.help() if callable(self.how.help) else self.how.help

    def argv(self, value: Any) -> list[str]:
        """``value`` as `run` options: KEY=VALUE pairs for a mapping, the option repeated for a tuple."""
        flag = str(self.flag)
        if self.kind is dict:  # JSON is YAML: `run` reads each value back unchanged
            return [part for key, item in value.items() for part in (flag, f"{key}={json.dumps(item)}")]
        if self.kind is tuple:
            return [part for item in value for part in (flag, str(item))]
        return [flag, str(value)]

    def accepts(self) -> str:
        """What a schedule file may give, in the words of its errors."""
        if self.kind is int:
            return f"an integer from {int(self.how.minimum or 0)} to {INT_MAX}"
        if self.kind is float:
            return f"a number {'>' if self.how.above else '>='} {self.how.minimum or 0:g}"
        if self.kind is dict:
            return "a mapping"
        if self.kind is tuple:
            return "a list of non-empty strings"
        return "a non-empty string"

    def takes(self, value: Any) -> bool:
        """Whether a schedule file's ``value`` has the type and range this setting accepts."""
        if self.kind is dict:
            return isinstance(value, Mapping)
        if self.kind is tuple:
            return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)
        if self.kind is str:
            return isinstance(value, str) and bool(value.strip())
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind is int and not (isinstance(value, int) and value <= INT_MAX):
            return False
        least = self.how.minimum or 0
        return math.isfinite(value) and (value > least if self.how.above else value >= least)


@functools.cache
def sweep_settings() -> tuple[SweepSetting, ...]:
    """Every SweepSpec field with a Setting, in declaration order (`run --help`'s order)."""
    found = []
    for item in fields(SweepSpec):
        how = item.metadata.get(SETTING)
        if how is None:
            continue
        default = item.default if item.default_factory is MISSING else item.default_factory()
        found.append(SweepSetting(item.name, value_type(item.name), default, how))
    return tuple(found)


def by_name() -> dict[str, SweepSetting]:
    """SweepSpec field name -> setting."""
    return {item.name: item for item in sweep_settings()}


def by_file_key() -> dict[str, SweepSetting]:
    """Schedule-file key -> setting, today's names and the earlier ones (aliases) alike."""
    keys: dict[str, SweepSetting] = {}
    for item in sweep_settings():
        if item.file_key is not None:
            for key in (item.file_key, *item.how.aliases):
                keys[key] = item
    return keys


def by_flag() -> dict[str, SweepSetting]:
    """`run` option -> setting."""
    return {item.flag: item for item in sweep_settings() if item.flag}


def run_args(spec: SweepSpec) -> list[str]:
    """The `tuning-service run` options that rebuild ``spec`` on the cluster (the one conversion to argv).

    Used by `submit` and by the scheduler's `submit` target. Settings that are the
    submission's own (job, address, storage; warm-start points travel as a file) are left
    out, and so is every value `run` would take by default. This argv becomes the Ray
    Job's entrypoint, which every holder of the cluster token can read: a secret setting
    (``--db``) travels without its password (the sweep on the head reads it from
    PGPASSWORD or ~/.pgpass there).
    """
    # A None default is resolved as the spec is built (the scheduler: the searcher's partner).
    resolved = SweepSpec(searcher=spec.searcher)
    argv: list[str] = []
    for item in sweep_settings():
        value = getattr(spec, item.name)
        default = item.default if item.default is not None else getattr(resolved, item.name)
        if not item.how.forwarded or not item.flag or value is None or value == default:
            continue
        if item.how.secret:
            from tuning_service.core.dburl import remote_db

            value = remote_db(value)
        argv += item.argv(value)
    return argv


def recorded(spec: SweepSpec) -> dict[str, Any]:
    """What the results database keeps of a sweep's settings: every field but the secret ones."""
    secret = {item.name for item in sweep_settings() if item.how.secret}
    return {name: value for name, value in asdict(spec).items() if name not in secret}


def from_record(record: Mapping[str, Any], **secrets: Any) -> SweepSpec:
    """The SweepSpec `recorded` kept, with the secret settings (never recorded) given again.

    Keys of settings since removed are ignored; settings added since take their defaults.
    """
    values: dict[str, Any] = {}
    for item in sweep_settings():
        if item.name in record:
            value = record[item.name]
            values[item.name] = tuple(value or ()) if item.kind is tuple else value  # JSON has no tuples
    return SweepSpec(**values, **secrets)
