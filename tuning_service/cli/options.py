"""Parsing helpers shared by subcommands: KEY=VALUE options."""

from __future__ import annotations

from typing import Any

import click
import yaml

from tuning_service import yamlio


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
