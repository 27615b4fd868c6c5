"""Hypothesis strategies for what users type and write: option values, URLs, YAML, spaces, job and schedule files."""

from __future__ import annotations

import json
import socket

import yaml
from hypothesis import strategies as st

# Values people type, and values that broke parsers before (a leading zero, YAML that does not
# parse, aliases, tags, huge and non-finite numbers).
TRICKY_TEXT = st.sampled_from(
    [
        "", " ", "0", "-0", "08", "010", "0o17", "0x1F", "1e3", "1e-3", "-1", "1.5", "nan", "inf", "-inf",
        ".inf", ".nan", "true", "no", "null", "~", "12:30", "[1", "{a: 1", "&x [*x]", "*x", "!!float x",
        "!!timestamp 2001-01-01", "!!python/object/apply:os.system [id]", "'", '"', "a: b", "- 1", "[]",
        "{}", "9" * 400, "1" + "0" * 30, "-1e309", "🙂", "\t", "a\nb", "../x", "/abs", "%s", "{0}",
        "[/bold]", "[red]x", "\\", "--help", "-h", "=", "a=b=c",
    ]
)  # fmt: skip
TEXT = st.one_of(TRICKY_TEXT, st.text(max_size=30))
NUMBER_TEXT = st.one_of(
    TRICKY_TEXT,
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)

# JSON-like values of any shape: what a YAML key may hold.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens: a connection is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def dump(data: object, form: str) -> str:
    """``data`` as a file of ``form`` (YAML or JSON); values JSON cannot hold become YAML."""
    if form == "json":
        try:
            return json.dumps(data)
        except (TypeError, ValueError):
            pass
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


# -- database URLs: every form, always on this machine (no name lookups, no waits) -------------------

_HOSTS = st.sampled_from(
    ["127.0.0.1", "[::1]", "", "127.0.0.1:{port}", "127.0.0.1:notaport", "127.0.0.1:99999"]
)


@st.composite
def database_urls(draw: st.DrawFn) -> str:
    """``{folder}`` in the URL stands for the test's own folder; ``{port}`` for a closed port."""
    scheme = draw(
        st.sampled_from(
            [
                "postgresql",
                "postgres",
                "postgresql+psycopg",
                "postgresql+asyncpg",
                "sqlite",
                "sqlite+pysqlite",
                "mysql",
                "oracle",
                "",
                "http",
            ]
        )  # fmt: skip
    )
    if scheme.startswith("sqlite"):
        path = draw(
            st.sampled_from(["", "/", ":memory:", "/{folder}/db.sqlite", "/{folder}/missing/x.db", "rel.db"])
        )
        tail = draw(st.sampled_from(["", "?mode=ro", "?password=secret"]))
        return f"{scheme}://{path}{tail}" if draw(st.booleans()) else draw(TEXT)
    user = draw(st.one_of(st.just(""), st.sampled_from(["tuner", "u@x", "u:v"]), TEXT))
    password = draw(st.one_of(st.just(None), st.just("s3cret"), TEXT))
    host = draw(_HOSTS)
    database = draw(st.one_of(st.just("tuning"), st.just(""), TEXT))
    query = draw(
        st.sampled_from(["", "?password=s3cret", "?sslmode=require", "?connect_timeout=abc", "?x=%zz"])
    )
    auth = f"{user}{':' + password if password is not None else ''}@" if user or password else ""
    return f"{scheme}://{auth}{host}/{database}{query}"


# -- search spaces ---------------------------------------------------------------------------------

NUMBERS = st.one_of(
    st.integers(min_value=-(10**13), max_value=10**13),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 2, 3, 1e-4, 0.1, 10**9]),
)
# Model settings a job file's space may name (anything else is refused as an unknown setting).
SETTINGS = [
    "learning_rate",
    "units",
    "layers",
    "activation",
    "batch_size",
    "dropout",
    "optimizer",
    "momentum",
]
PARAM_NAMES = st.one_of(st.sampled_from(SETTINGS), st.sampled_from(SETTINGS), TEXT)


@st.composite
def good_param(draw: st.DrawFn) -> object:
    """A parameter the service accepts: a range, a choice, a fixed value, in every written form."""
    kind = draw(st.sampled_from(["int", "float", "choice", "list", "fixed", "scalar"]))
    if kind == "int":
        low = draw(st.integers(-50, 1000))
        spec: dict[str, object] = {"type": "int", "low": low, "high": low + draw(st.integers(0, 2000))}
        if draw(st.booleans()):
            spec["grid"] = sorted({low, spec["high"]})  # type: ignore[type-var]
    elif kind == "float":
        low = draw(st.floats(1e-6, 1.0))
        spec = {
            "type": "float",
            "low": low,
            "high": low * draw(st.floats(1.0, 1e4)),
            "log": draw(st.booleans()),
        }
        if draw(st.booleans()):
            spec["grid"] = [low]
    elif kind in ("choice", "list"):
        values = draw(
            st.lists(
                st.one_of(st.integers(1, 512), st.sampled_from(["relu", "tanh", "adam", "sgd"])),
                min_size=1,
                max_size=6,
            )
        )
        return values if kind == "list" else {"type": "choice", "values": values}
    elif kind == "fixed":
        return {"type": "fixed", "value": draw(st.one_of(st.integers(1, 9), st.just("adam")))}
    else:
        return draw(st.one_of(st.integers(1, 9), st.just("relu")))
    return spec


@st.composite
def params(draw: st.DrawFn) -> object:
    """Mostly a good parameter with one part made bad; sometimes anything at all."""
    spec = draw(good_param())
    if draw(st.integers(0, 3)) == 0:
        return draw(st.one_of(SCALARS, VALUES))
    if isinstance(spec, dict) and draw(st.booleans()):
        key = draw(
            st.sampled_from(
                ["type", "low", "high", "step", "log", "grid", "values", "value", "when", draw(TEXT)]
            )
        )
        spec[key] = draw(
            st.one_of(
                NUMBERS,
                SCALARS,
                st.lists(SCALARS, max_size=4),
                st.dictionaries(PARAM_NAMES, st.lists(SCALARS, max_size=3), max_size=2),
            )
        )
    return spec


SPACES = st.dictionaries(PARAM_NAMES, params(), max_size=6)
