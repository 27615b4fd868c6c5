"""Tune's modules that run ``from pandas import X`` as they load, rewritten to read ``pd.X``
where the code runs (`lazydata.pandas_names_read_late`): no Ray, no pandas, a module of our own."""

from __future__ import annotations

import ast
import sys
import textwrap
import types
from typing import Any

import pytest

from tuning_service.raytune.lazydata import pandas_names_read_late

SOURCE = """
try:
    import pandas as pd
    from pandas import DataFrame, Series as S
except ImportError:
    pd = None
    DataFrame = None

def table(rows: DataFrame) -> DataFrame:
    return DataFrame(rows), S(rows)
"""


class _Pandas(types.ModuleType):
    """Stands in for pandas: records each name read from it."""

    def __init__(self) -> None:
        super().__init__("pandas")
        self.read: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        self.read.append(name)
        return lambda *args: (name, *args)


def _run(source: str, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], _Pandas]:
    pandas = _Pandas()
    monkeypatch.setitem(sys.modules, "pandas", pandas)
    tree = pandas_names_read_late(ast.parse(textwrap.dedent(source)))
    namespace: dict[str, Any] = {"__name__": "reader"}
    exec(
        compile(tree, "reader.py", "exec", flags=__import__("__future__").annotations.compiler_flag),
        namespace,
    )
    return namespace, pandas


def test_names_imported_from_pandas_are_read_where_the_code_runs(monkeypatch):
    module, pandas = _run(SOURCE, monkeypatch)
    assert pandas.read == []  # nothing read as the module loaded
    assert "DataFrame" not in module and "S" not in module
    frame, series = module["table"]([1])
    assert pandas.read == ["DataFrame", "Series"]  # read when the function ran
    assert frame == ("DataFrame", [1]) and series == ("Series", [1])


def test_without_the_alias_the_module_is_left_to_read_them_as_it_loads(monkeypatch):
    source = "from pandas import DataFrame\n\ndef table():\n    return DataFrame()\n"
    assert ast.dump(pandas_names_read_late(ast.parse(source))) == ast.dump(ast.parse(source))
    module, pandas = _run(source, monkeypatch)
    assert pandas.read == ["DataFrame"]  # as Python runs it: read as the module loads


@pytest.mark.parametrize(
    "rebinding",
    [
        "def f():\n    DataFrame = list\n",
        "def f(pd):\n    return pd\n",
        "class C:\n    S = 1\n",
        "g = lambda DataFrame: 1\n",
    ],
)
def test_a_module_that_rebinds_a_name_in_a_scope_of_its_own_is_left_as_it_is(rebinding):
    source = SOURCE + rebinding
    assert ast.dump(pandas_names_read_late(ast.parse(source))) == ast.dump(ast.parse(source))
