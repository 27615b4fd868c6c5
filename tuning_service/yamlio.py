"""YAML loading with YAML 1.2 scalars, so `1e-3` is a float and `no` stays a string."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader whose implicit types follow the YAML 1.2 core schema.

    PyYAML implements YAML 1.1: it reads ``1e-3`` as a string, ``no``/``on`` as
    booleans and ``12:30`` as a base-60 integer. Search spaces are full of such
    values, so we resolve them the way JSON and YAML 1.2 do.
    """


_Yaml12Loader.yaml_implicit_resolvers = {}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    return int(loader.construct_scalar(node), 0)  # type: ignore[arg-type]


_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def loads(text: str) -> Any:
    """Parse YAML (or JSON, a subset) text with YAML 1.2 scalar rules."""
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


def compose(text: str) -> yaml.Node | None:
    """The node tree of YAML text (with line marks), resolved with YAML 1.2 scalar rules."""
    return yaml.compose(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


def construct(node: yaml.Node) -> Any:
    """Plain data from a node tree made by `compose`."""
    return _Yaml12Loader("").construct_document(node)


def load_file(path: str | Path) -> Any:
    """Parse a YAML or JSON file with YAML 1.2 scalar rules."""
    return loads(Path(path).read_text(encoding="utf-8"))


def dumps(data: Any) -> str:
    """Write plain data as block-style YAML that `loads` reads back unchanged."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
