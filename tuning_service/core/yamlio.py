"""The one YAML reader: YAML 1.2 scalars, plain JSON types only, and no alias bombs or recursion."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

# A document whose aliases expand it beyond this many times its written size (and beyond
# MIN_EXPANDED nodes) is refused: "billion laughs" is a few lines that expand to 10^9 nodes.
MAX_EXPANSION = 10
MIN_EXPANDED = 10_000


class UnsafeYamlError(yaml.YAMLError):
    """A document this reader refuses although it parses: recursive, nested too deep, or an alias bomb."""


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader whose implicit types follow the YAML 1.2 core schema, building JSON types only.

    PyYAML implements YAML 1.1: it reads ``1e-3`` as a string, ``no``/``on`` as
    booleans, ``12:30`` as a base-60 integer and ``08`` as an error. Search spaces and
    schedule files are full of such values, so they resolve the way JSON and YAML 1.2
    do. Explicit tags that build other types (``!!timestamp``, ``!!set``, ``!!binary``)
    are refused: nothing downstream expects them.
    """

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        _check_aliases(node)
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError, KeyError):  # e.g. `!!float abc`, a 5000-digit int
            value = str(node.value)
            shown = value if len(value) <= 40 else value[:40] + "..."
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {shown!r} as {node.tag.rsplit(':', 1)[-1]}", node.start_mark
            ) from None


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


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    """YAML 1.2 core: decimal (``08`` is 8, not a bad octal), ``0o`` octal, ``0x`` hexadecimal."""
    text = str(loader.construct_scalar(node))
    if text[:2] in ("0o", "0x"):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)


def _construct_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    text = str(loader.construct_scalar(node)).lower()
    special = {".inf": "inf", "+.inf": "inf", "-.inf": "-inf", ".nan": "nan"}
    return float(special.get(text, text))


def _construct_str(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    """Text that UTF-8 can hold. PyYAML reads JSON's ``"\\ud83d\\ude00"`` as two halves of a pair:
    joined here, as JSON does; a lone half (``"\\ud800"``), which no file name, log line or
    database takes, is refused here rather than failing far from the file."""
    text = str(loader.construct_scalar(node))
    if any("\ud800" <= c <= "\udfff" for c in text):
        # A lone surrogate fails to decode: a ValueError, reported with the node's line.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    return text


def _construct_bool(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> bool:
    return {"true": True, "false": False}[str(loader.construct_scalar(node)).lower()]


# JSON's types and nothing else; an unknown tag fails with PyYAML's "could not determine a constructor".
_Yaml12Loader.yaml_constructors = {
    tag: yaml.SafeLoader.yaml_constructors[tag] for tag in ("tag:yaml.org,2002:null", "tag:yaml.org,2002:seq")
}
_Yaml12Loader.add_constructor("tag:yaml.org,2002:str", _construct_str)
_Yaml12Loader.add_constructor(
    "tag:yaml.org,2002:map", yaml.SafeLoader.yaml_constructors["tag:yaml.org,2002:map"]
)
_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Yaml12Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_Yaml12Loader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
_Yaml12Loader.add_constructor(None, yaml.SafeLoader.yaml_constructors[None])


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_aliases(root: yaml.Node | None) -> None:
    """Refuse a node graph with a cycle (``a: &x [*x]``) or one whose aliases expand it enormously.

    PyYAML builds an alias as the same node again, so a document is a graph: its
    expanded size (what any code walking the data sees) is counted once per node,
    iteratively, without expanding anything.
    """
    if root is None:
        return
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(child)] for child in _children(node))
            continue
        if key in size:
            continue
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise UnsafeYamlError(
                    f"a recursive alias (an anchor used inside itself) at line {child.start_mark.line + 1}"
                )
            if id(child) not in size:
                stack.append((child, False))
    written = len(size)
    expanded = size[id(root)]
    if expanded > max(MIN_EXPANDED, MAX_EXPANSION * written):
        raise UnsafeYamlError(
            f"aliases expand this document from {written} to {expanded} values "
            f"(at most {MAX_EXPANSION}x, or {MIN_EXPANDED}, are read); write the values out"
        )


def _parse(parse: Any, text: str) -> Any:
    try:
        return parse(text, Loader=_Yaml12Loader)
    except RecursionError:  # PyYAML's composer recurses once per level of nesting
        raise UnsafeYamlError("nested too deeply to read") from None


def loads(text: str) -> Any:
    """Parse YAML (or JSON, a subset) text with YAML 1.2 scalar rules; yaml.YAMLError if it cannot."""
    return _parse(yaml.load, text)


def compose(text: str) -> yaml.Node | None:
    """The node tree of YAML text (with line marks), resolved with YAML 1.2 scalar rules."""
    node: yaml.Node | None = _parse(yaml.compose, text)
    return node


def construct(node: yaml.Node) -> Any:
    """Plain data from a node tree made by `compose`."""
    return _Yaml12Loader("").construct_document(node)


def load_file(path: str | Path) -> Any:
    """Parse a YAML or JSON file with YAML 1.2 scalar rules."""
    return loads(Path(path).read_text(encoding="utf-8"))


def describe(exc: BaseException) -> str:
    """A YAML error as one line: what is wrong and where (PyYAML's own spans several lines)."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    text = str(problem) if problem else str(exc)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return " ".join(text.split()) + where


def dumps(data: Any) -> str:
    """Write plain data as block-style YAML that `loads` reads back unchanged."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
